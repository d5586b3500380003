/**
 * The module versions a `go.sum` records, as the files a module proxy serves for them: a
 * `<module> <version> h1:…` line is the module's source (its `.info` and `.zip`, what
 * `go mod download` and a build fetch), a `<module> <version>/go.mod h1:…` line its `go.mod`
 * alone (the `.mod`: a build reads the go.mod of every module in the graph, the source of only
 * those it compiles). The hashes are not needed: the vault checks what it caches against its
 * checksum database. Lines that are no module version (a path the go command would refuse, a
 * version that is not canonical) are reported, not warmed. Pure.
 */
import { escapeCase, isCanonicalVersion, modulePathProblem } from "../../upstreams/go/module-path.js";
import type { UnwarmedInput } from "./unwarmed-input.js";

export interface GoSumFile {
  readonly module: string;
  readonly version: string;
  /** `source`: `.info` and `.zip`; `mod`: the `.mod` only. */
  readonly kind: "source" | "mod";
  /** Below a module proxy, case-escaped: `github.com/!azure/sdk/@v/v1.0.0` (+ `.info`, `.mod`, `.zip`). */
  readonly base: string;
}

export interface GoSumListing {
  readonly files: readonly GoSumFile[];
  readonly problems: readonly UnwarmedInput[];
}

/** `h1:` and base64 SHA-256 today; a later hash would be `h2:…`. */
const HASH = /^h[0-9]+:[A-Za-z0-9+/]+=*$/;

/** Throws an Error naming the first line that is not a go.sum line (the text is no go.sum). */
export function parseGoSum(text: string): GoSumListing {
  const files: GoSumFile[] = [];
  const problems: Array<{ text: string; reason: string }> = [];
  const seen = new Set<string>();
  for (const [index, raw] of text.split(/\r?\n/).entries()) {
    const line = raw.trim();
    if (line === "") continue;
    const fields = line.split(/\s+/);
    const [module = "", versionField = "", hash = ""] = fields;
    if (fields.length !== 3 || !HASH.test(hash)) throw new Error(`line ${index + 1} is no go.sum line (<module> <version>[/go.mod] h1:<hash>): ${JSON.stringify(line.slice(0, 80))}`);
    const kind = versionField.endsWith("/go.mod") ? "mod" : "source";
    const version = kind === "mod" ? versionField.slice(0, -"/go.mod".length) : versionField;
    const label = `${module}@${version}${kind === "mod" ? " (go.mod)" : ""}`;
    const pathProblem = modulePathProblem(module);
    if (pathProblem !== undefined) {
      problems.push({ text: label, reason: `not a module path: ${pathProblem}` });
      continue;
    }
    if (!isCanonicalVersion(version)) {
      problems.push({ text: label, reason: "not a canonical version" });
      continue;
    }
    const escapedModule = escapeCase(module);
    const escapedVersion = escapeCase(version);
    if (escapedModule === undefined || escapedVersion === undefined) {
      problems.push({ text: label, reason: "not a module path the GOPROXY protocol can name" });
      continue;
    }
    const key = `${kind} ${module} ${version}`;
    if (seen.has(key)) continue;
    seen.add(key);
    files.push({ module, version, kind, base: `${escapedModule}/@v/${escapedVersion}` });
  }
  return { files, problems };
}
