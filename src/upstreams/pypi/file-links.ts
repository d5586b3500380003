import type { DigestAlgorithm, ExpectedDigest } from "../../core/cache/artifact-ref.js";

/**
 * Where a file an index page links to is served by the vault: a path below `{prefix}packages/`
 * that carries everything needed to fetch AND verify it, so a file request needs no index page
 * (after a restart, or when a lock file names the URL directly):
 *
 *     [<algo>/<hex>/][metadata-<algo>/<hex>/][~index/]<path>
 *
 * - `<algo>/<hex>`: the file's digest from the index (`#sha256=` or the JSON `hashes`); the
 *   download is verified against it before it is cached. `algo` is sha256, sha512 or sha1.
 * - `metadata-<algo>/<hex>`: the digest of its PEP 658 `.metadata` file. pip asks for
 *   `<file URL>.metadata`, so the same path with `.metadata` appended is verified against this.
 * - `~index/`: the file lives on the index's own host, outside `packages_url`; `<path>` is then
 *   relative to that host's root. Without it `<path>` is relative to `packages_url`.
 *
 * A path without digests (the source design's `{prefix}packages/<path>`, or a link the index
 * gave no usable hash for) is still served, unverified, and cached apart from verified copies.
 */
export type FileSource = "packages" | "index";

export interface FileLink {
  readonly source: FileSource;
  /** Relative to the source's base; still percent-encoded, not yet checked. */
  readonly path: string;
  readonly fileDigest: ExpectedDigest | undefined;
  readonly metadataDigest: ExpectedDigest | undefined;
}

const INDEX_MARKER = "~index";
const METADATA_MARKER = "metadata-";
const HEX_LENGTH: Readonly<Record<DigestAlgorithm, number>> = { sha256: 64, sha512: 128, sha1: 40 };
/** The index's hash names we can verify, strongest first among the common ones. */
const PREFERRED: readonly DigestAlgorithm[] = ["sha256", "sha512", "sha1"];

/** The vault path below `{prefix}packages/` for a link (no leading `/`). */
export function formatFileLink(link: FileLink): string {
  const parts: string[] = [];
  if (link.fileDigest !== undefined) parts.push(link.fileDigest.algorithm, link.fileDigest.hex);
  if (link.metadataDigest !== undefined) parts.push(`${METADATA_MARKER}${link.metadataDigest.algorithm}`, link.metadataDigest.hex);
  if (link.source === "index") parts.push(INDEX_MARKER);
  parts.push(link.path);
  return parts.join("/");
}

/** Reads a request path below `{prefix}packages/` back (the inverse of `formatFileLink`). */
export function parseFileLink(path: string): FileLink {
  const segments = path.split("/");
  let at = 0;
  let metadataDigest: ExpectedDigest | undefined;
  const digestAt = (algorithmName: string | undefined): ExpectedDigest | undefined => {
    const algorithm = PREFERRED.find((name) => name === algorithmName);
    const hex = segments[at + 1]?.toLowerCase();
    if (algorithm === undefined || hex === undefined || hex.length !== HEX_LENGTH[algorithm] || !/^[0-9a-f]+$/.test(hex)) return undefined;
    return { algorithm, hex };
  };
  const fileDigest = digestAt(segments[at]);
  if (fileDigest !== undefined) at += 2;
  const marker = segments[at];
  if (marker?.startsWith(METADATA_MARKER) === true) {
    metadataDigest = digestAt(marker.slice(METADATA_MARKER.length));
    if (metadataDigest !== undefined) at += 2;
  }
  let source: FileSource = "packages";
  if (segments[at] === INDEX_MARKER) {
    source = "index";
    at += 1;
  }
  return { source, path: segments.slice(at).join("/"), fileDigest, metadataDigest };
}

/**
 * The digest to verify a file with, from a PEP 503 fragment (`sha256=<hex>`) or a PEP 691
 * `hashes` object; undefined when none we can check (md5 only, or malformed).
 */
export function digestFromHashes(hashes: Readonly<Record<string, unknown>>): ExpectedDigest | undefined {
  for (const algorithm of PREFERRED) {
    const value = hashes[algorithm];
    if (typeof value !== "string") continue;
    const hex = value.toLowerCase();
    if (hex.length === HEX_LENGTH[algorithm] && /^[0-9a-f]+$/.test(hex)) return { algorithm, hex };
  }
  return undefined;
}

/** `sha256=<hex>` (a URL fragment or a PEP 658/714 attribute value) as a hashes object. */
export function hashesFromFragment(fragment: string): Record<string, string> {
  const match = /^([A-Za-z0-9_]+)=([0-9A-Fa-f]+)$/.exec(fragment.trim());
  return match === null ? {} : { [(match[1] ?? "").toLowerCase()]: match[2] ?? "" };
}
