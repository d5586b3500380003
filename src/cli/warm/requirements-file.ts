/**
 * The pinned packages of a pip requirements file (`pip freeze`, `pip-compile`, `uv pip compile`):
 *
 *     requests==2.32.3 \
 *         --hash=sha256:70761c... \
 *         --hash=sha256:55365...
 *     urllib3[socks]==2.2.2 ; python_version >= "3.8"    # extras and markers are ignored
 *     -r other.txt                                        # followed (as are -c constraints files)
 *
 * A line pinned with `==` (no wildcard) or `===` is warmed; with `--hash` options, only the
 * files with one of those hashes (what pip downloads with `--require-hashes`), else every file
 * of that version. Unpinned lines are failures (which version would be warmed?); editable
 * installs, local paths and direct URLs are skipped (they are not on the index). Other pip
 * options (`--index-url`, `--only-binary`, …) are ignored: files come from the vault's index.
 * Pure.
 */
import type { UnwarmedInput } from "./unwarmed-input.js";

export interface PinnedRequirement {
  /** As written (`Django_Rest.Framework`). */
  readonly name: string;
  readonly version: string;
  /** `===`: the version is compared as text, not as a PEP 440 version. */
  readonly exact: boolean;
  /** `algorithm:hex`, lower-case; empty when the line lists none. */
  readonly hashes: readonly string[];
  /** `name==version`, for messages. */
  readonly text: string;
}

export interface RequirementsListing {
  readonly pinned: readonly PinnedRequirement[];
  /** Lines that name a package but not one version of it. */
  readonly unpinned: readonly UnwarmedInput[];
  /** Lines that are not index packages (editable, paths, URLs). */
  readonly skipped: readonly UnwarmedInput[];
  /** `-r` / `-c` files, as written (relative to the file that names them). */
  readonly includes: readonly string[];
}

const NAME = /^([A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)\s*(?:\[[^\]]*\])?\s*(.*)$/s;
const INCLUDE = /^(?:-r|--requirement|-c|--constraint)(?:\s*=\s*|\s+|(?=[^\s-]))(\S.*)$/;
const HASH_OPTION = /--hash[=\s]\s*([A-Za-z0-9]+):([0-9A-Fa-f]+)/g;

export function parseRequirements(text: string): RequirementsListing {
  const pinned: PinnedRequirement[] = [];
  const unpinned: Array<{ text: string; reason: string }> = [];
  const skipped: Array<{ text: string; reason: string }> = [];
  const includes: string[] = [];
  for (const line of logicalLines(text)) {
    const include = INCLUDE.exec(line);
    if (include !== null) {
      includes.push((include[1] ?? "").trim());
      continue;
    }
    if (/^(?:-e|--editable)\b/.test(line)) {
      skipped.push({ text: line, reason: "an editable install, not a package on the index" });
      continue;
    }
    // Other options (--index-url, --extra-index-url, --only-binary, -f …) on lines of their own.
    if (line.startsWith("-")) continue;
    const hashes = [...line.matchAll(HASH_OPTION)].map((match) => `${(match[1] ?? "").toLowerCase()}:${(match[2] ?? "").toLowerCase()}`);
    // The requirement is what comes before its options and its environment marker.
    const requirement = (line.split(/\s--?[A-Za-z]/)[0] ?? "").split(";")[0]?.trim() ?? "";
    if (/^(?:\.{0,2}\/|[A-Za-z][A-Za-z0-9+.-]*:\/\/)/.test(requirement) || /\.(?:whl|tar\.gz|zip)$/.test(requirement)) {
      skipped.push({ text: requirement, reason: "a local path or a URL, not a package on the index" });
      continue;
    }
    const match = NAME.exec(requirement);
    if (match === null) {
      unpinned.push({ text: requirement, reason: "not a requirement pip would read" });
      continue;
    }
    const name = match[1] ?? "";
    const constraint = (match[2] ?? "").trim();
    if (constraint.startsWith("@")) {
      skipped.push({ text: requirement, reason: "a direct URL reference, not a package on the index" });
      continue;
    }
    const exact = /^===\s*(\S+)$/.exec(constraint);
    const equal = /^==\s*([^\s,*]+)$/.exec(constraint);
    const version = exact?.[1] ?? equal?.[1];
    if (version === undefined) {
      unpinned.push({ text: requirement, reason: "not pinned to one version (write name==version)" });
      continue;
    }
    pinned.push({ name, version, exact: exact !== null, hashes, text: `${name}${exact !== null ? "===" : "=="}${version}` });
  }
  return { pinned, unpinned, skipped, includes };
}

/** Lines with their `\` continuations joined and comments removed, blank ones left out. */
function logicalLines(text: string): string[] {
  const lines: string[] = [];
  let pending = "";
  for (const raw of text.split(/\r?\n/)) {
    // A comment starts with `#` at the line's start or after whitespace (a URL's #fragment stays).
    const line = raw.replace(/(?:^|\s)#.*$/, "");
    if (/\\\s*$/.test(line)) {
      pending += `${line.replace(/\\\s*$/, "")} `;
      continue;
    }
    const joined = `${pending}${line}`.trim();
    pending = "";
    if (joined !== "") lines.push(joined);
  }
  if (pending.trim() !== "") lines.push(pending.trim());
  return lines;
}
