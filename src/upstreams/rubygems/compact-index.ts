import { createHash } from "node:crypto";
import type { ExpectedDigest } from "../../core/cache/artifact-ref.js";

/**
 * The compact index's documents, as far as the vault reads them (pure, on bytes):
 *
 *     info/<gem>:  ---
 *                  1.0.0 |checksum:<sha256 hex>
 *                  1.1.0 dep:>= 1.0&< 2,other:~> 3.1|checksum:<sha256 hex>,ruby:>= 2.7
 *                  1.1.0-java dep:>= 1.0|checksum:<sha256 hex>
 *
 * Each line is `VERSION[-PLATFORM] DEPENDENCIES|REQUIREMENTS`; the requirement `checksum` is
 * the SHA-256 of that version's `.gem`, which the vault verifies a download against before it
 * is cached. Lines are only ever appended (a yanked version's line stays; `versions` marks it).
 *
 * The documents are served as the upstream wrote them, with the validators the clients check:
 * an ETag that is the body's MD5, quoted (Bundler compares it with the MD5 of the file it holds
 * after a ranged update, and refuses the file otherwise), and `Repr-Digest` (newer Bundlers
 * check its `sha-256` instead). Both describe the whole document, also on a 206.
 */

/** The `checksum` of each `VERSION[-PLATFORM]` an info file lists (lowercase hex); undefined when a line has none. */
export function infoChecksums(info: Buffer | string): Map<string, string | undefined> {
  const checksums = new Map<string, string | undefined>();
  for (const line of (typeof info === "string" ? info : info.toString("utf8")).split("\n")) {
    if (line === "" || line === "---") continue;
    const space = line.indexOf(" ");
    if (space <= 0) continue;
    const version = line.slice(0, space);
    const bar = line.indexOf("|", space);
    const requirements = bar < 0 ? [] : line.slice(bar + 1).split(",");
    const checksum = requirements.map((requirement) => /^checksum:([0-9a-fA-F]{64})$/.exec(requirement.trim())?.[1]).find((hex) => hex !== undefined);
    checksums.set(version, checksum?.toLowerCase());
  }
  return checksums;
}

/** What `infoChecksums` found for `version`: a digest, `unlisted`, or `unchecked` (a line without a checksum). */
export function gemDigest(info: Buffer | string, version: string): ExpectedDigest | "unlisted" | "unchecked" {
  const checksums = infoChecksums(info);
  if (!checksums.has(version)) return "unlisted";
  const hex = checksums.get(version);
  return hex === undefined ? "unchecked" : { algorithm: "sha256", hex };
}

/** The header the vault keeps with a compact index document: its `Repr-Digest`, with the MD5 the ETag is made of. */
export const REPR_DIGEST = "repr-digest";

/** `sha-256=:<base64>:, md5=:<base64>:` of a whole document (RFC 9530's form). */
export function reprDigest(body: Buffer): string {
  const sha256 = createHash("sha256").update(body).digest("base64");
  const md5 = createHash("md5").update(body).digest("base64");
  return `sha-256=:${sha256}:, md5=:${md5}:`;
}

/** The ETag Bundler expects of a compact index document, from its `Repr-Digest`: `"<md5 hex>"`; undefined without an md5. */
export function md5Etag(reprDigestValue: string | undefined): string | undefined {
  const base64 = /(?:^|,)\s*md5=:([A-Za-z0-9+/]+={0,2}):/.exec(reprDigestValue ?? "")?.[1];
  if (base64 === undefined) return undefined;
  const hex = Buffer.from(base64, "base64").toString("hex");
  return hex.length === 32 ? `"${hex}"` : undefined;
}
