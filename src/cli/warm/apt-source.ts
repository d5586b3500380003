/**
 * Debian package names → an APT backend of the vault (`{prefix}` = the mirror's root):
 *
 * 1. the suite's `InRelease` (else `Release`), as `apt-get update` starts — with it cached, the
 *    vault also knows the digests to verify the pool files against;
 * 2. for each component and architecture, the `Packages` index the Release lists (`.xz`, else
 *    `.gz`, else plain), by its `by-hash/SHA256/<hex>` path when the Release says
 *    `Acquire-By-Hash: yes` (the path apt asks for, verified by the vault against it);
 * 3. each named package's newest version there (dpkg's order; `name=version` pins one) → its
 *    `Filename:` in the pool, once per architecture it is listed for (`Architecture: all`
 *    packages are one file).
 *
 * Only the named packages are warmed, not their dependencies: list every package a machine
 * needs (`apt-get install --print-uris` or `apt-cache depends --recurse` can make that list).
 */
import { Readable } from "node:stream";
import { decompressIndex } from "../../upstreams/apt/index-decompress.js";
import { PACKAGES_FILES, PackagesScanner, parseRelease, pickVersion, type PackageStanza, type ReleaseIndexes } from "./debian-packages.js";
import { vaultUrlFor } from "./vault-urls.js";
import type { WarmContext, WarmSource } from "./warm-run.js";

export interface AptRequest {
  readonly name: string;
  /** `name=version`: exactly this version. */
  readonly version: string | undefined;
}

export interface AptOptions {
  readonly prefix: string;
  readonly suite: string;
  readonly components: readonly string[];
  readonly architectures: readonly string[];
}

/** `name` or `name=version`; throws an Error for anything else. */
export function parseAptRequest(text: string): AptRequest {
  const [name = "", version] = text.trim().split("=", 2);
  // Debian policy: lower-case letters, digits, `+`, `-`, `.`; at least two characters.
  if (!/^[a-z0-9][a-z0-9+.-]+$/.test(name)) throw new Error(`not a Debian package name: ${JSON.stringify(text)}`);
  if (version !== undefined && !/^[A-Za-z0-9.+~:-]+$/.test(version)) throw new Error(`not a Debian version: ${JSON.stringify(version)}`);
  return { name, version };
}

export function aptSource(packages: readonly AptRequest[], options: AptOptions, base: URL): WarmSource {
  const dists = `${options.prefix}dists/${options.suite}/`;
  return {
    run: async (context) => {
      const release = await readRelease(context, base, dists, options.suite);
      if (release === undefined) return;
      const wanted = new Set(packages.map((request) => request.name));
      const indexes = options.components.flatMap((component) => options.architectures.map((architecture) => ({ component, architecture })));
      const found = await Promise.all(indexes.map(({ component, architecture }) => readPackages(context, base, dists, release, `${component}/binary-${architecture}`, wanted)));
      const where = `${options.suite} ${options.components.join(", ")} (${options.architectures.join(", ")})`;
      for (const request of packages) {
        const label = `apt: ${request.name}${request.version === undefined ? "" : `=${request.version}`}`;
        const listed = found.flatMap((stanzas) => (stanzas === undefined ? [] : [stanzas.get(request.name) ?? []]));
        if (found.every((stanzas) => stanzas === undefined)) continue; // no index could be read: that failure is listed
        const chosen = listed.map((stanzas) => pickVersion(stanzas, request.version)).filter((stanza): stanza is PackageStanza => stanza !== undefined);
        if (chosen.length === 0) {
          const versions = [...new Set(listed.flat().map((stanza) => stanza.version))];
          context.failed(label, versions.length === 0 ? `not in ${where}` : `no version ${request.version ?? ""} in ${where} (it has ${versions.join(", ")})`);
          continue;
        }
        for (const stanza of chosen) {
          context.artifact(vaultUrlFor(base, `${options.prefix}${encodePath(stanza.filename)}`), `apt: ${stanza.name} ${stanza.version} (${stanza.architecture})`);
        }
      }
    },
  };
}

async function readRelease(context: WarmContext, base: URL, dists: string, suite: string): Promise<ReleaseIndexes | undefined> {
  const signed = await context.document(vaultUrlFor(base, `${dists}InRelease`), `apt: ${suite} InRelease`, { optional: true });
  const document = signed ?? (await context.document(vaultUrlFor(base, `${dists}Release`), `apt: ${suite} Release`));
  return document === undefined ? undefined : parseRelease(document.body.toString("utf8"));
}

/** The stanzas of the wanted packages in one `Packages` index; undefined when none could be read (listed as failed). */
async function readPackages(
  context: WarmContext,
  base: URL,
  dists: string,
  release: ReleaseIndexes,
  directory: string,
  wanted: ReadonlySet<string>,
): Promise<ReadonlyMap<string, readonly PackageStanza[]> | undefined> {
  const names = PACKAGES_FILES.map((file) => `${directory}/${file}`);
  const listed = names.filter((name) => release.sha256.has(name));
  for (const name of listed.length > 0 ? listed : names) {
    const hex = release.sha256.get(name);
    // By hash when the Release offers it (what apt asks for), else — or if the mirror lacks that copy — by name.
    const paths = release.byHash && hex !== undefined ? [`${directory}/by-hash/SHA256/${hex}`, name] : [name];
    let document;
    for (const path of paths) {
      document = await context.document(vaultUrlFor(base, `${dists}${path}`), `apt: ${name}`, { optional: true });
      if (document !== undefined) break;
    }
    if (document === undefined) continue;
    const scanner = new PackagesScanner(wanted);
    try {
      for await (const chunk of decompressIndex(Readable.from([document.body]))) scanner.push(chunk);
      scanner.end();
    } catch (error) {
      context.failed(`apt: ${name}`, `cannot read the index: ${(error as Error).message}`);
      return undefined;
    }
    return scanner.found;
  }
  context.failed(`apt: ${directory}`, `no Packages index (${PACKAGES_FILES.join(", ")}) in ${dists}`);
  return undefined;
}

/** A pool path as a URL path: each segment percent-encoded (`libstdc++6_…` → `libstdc%2B%2B6_…`, as apt sends it). */
function encodePath(path: string): string {
  return path
    .split("/")
    .map((segment) => encodeURIComponent(segment))
    .join("/");
}
