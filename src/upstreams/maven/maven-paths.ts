import type { DigestAlgorithm } from "../../core/cache/artifact-ref.js";
import { VaultError } from "../../core/errors.js";
import { decodePathSegment } from "../upstream-request.js";
import { normaliseUpstreamPath } from "../upstream-path.js";

/**
 * What a path in a Maven 2 layout repository names, decided from the path alone:
 *
 *     <group/as/dirs>/<artifactId>/<version>/<artifactId>-<version>[-<classifier>].<ext>   a release file: immutable, verified
 *     .../maven-metadata.xml                                                               metadata: mutable
 *     .../<version>-SNAPSHOT/...                                                           snapshots: mutable
 *     <file>.md5 | .sha1 | .sha256 | .sha512                                               the checksum of <file>: as <file>
 *
 * Anything else (`archetype-catalog.xml`, `.meta/prefixes.txt`, a file in a version directory that
 * is not named after it) is served as mutable: nothing says it never changes.
 */
export type MavenFile =
  | { readonly kind: "release"; readonly path: string }
  | { readonly kind: "mutable"; readonly path: string }
  | { readonly kind: "checksum"; readonly path: string; readonly algorithm: ChecksumAlgorithm; readonly of: MavenFile & { kind: "release" | "mutable" } };

export type ChecksumAlgorithm = "md5" | DigestAlgorithm;

/** Checksum file extensions Maven repositories publish, by algorithm. */
export const CHECKSUM_EXTENSIONS: Readonly<Record<ChecksumAlgorithm, string>> = { md5: ".md5", sha1: ".sha1", sha256: ".sha256", sha512: ".sha512" };

/** The checksums a release file is verified against, strongest first (MD5 is too weak to count). */
export const VERIFYING_ALGORITHMS: readonly DigestAlgorithm[] = ["sha512", "sha256", "sha1"];

/** Hex digits of each algorithm's digest. */
const HEX_LENGTH: Readonly<Record<ChecksumAlgorithm, number>> = { md5: 32, sha1: 40, sha256: 64, sha512: 128 };

/** A path segment, decoded: coordinate characters only, not starting with a dot. */
const SEGMENT = /^[A-Za-z0-9_+~-][A-Za-z0-9._+~-]*$/;

/** Top-level directories of repository metadata that start with a dot (Maven 3.9's `.meta/prefixes.txt`). */
const DOT_DIRECTORIES = new Set([".meta"]);

/**
 * Checks a request path below the backend's prefix (still percent-encoded) and says what it
 * names. Refused with `bad_request`, before any upstream request: everything
 * `normaliseUpstreamPath` refuses (traversal, encoded slashes, control characters, ...), and
 * segments with characters no Maven coordinate has or that start with a dot. Percent-encoded
 * coordinate characters (`%2B` for `+`) are decoded, so each file has one spelling in the cache
 * and upstream. A directory (trailing `/`) or the root is `not_found`: Maven clients ask for files.
 */
export function parseMavenPath(rawPath: string): MavenFile {
  normaliseUpstreamPath(rawPath);
  const raw = rawPath.split("/");
  if (rawPath === "" || raw.at(-1) === "") throw new VaultError("not_found", "this backend serves files, not directory listings");
  const segments = raw.map((segment, index) => {
    const decoded = decodePathSegment(segment);
    if (!SEGMENT.test(decoded) && !(index === 0 && raw.length > 1 && DOT_DIRECTORIES.has(decoded))) {
      throw new VaultError("bad_request", `invalid Maven repository path: '${segment}' is not a group, artifact, version or file name`);
    }
    return decoded;
  });
  return classify(segments);
}

function classify(segments: readonly string[]): MavenFile {
  const path = segments.join("/");
  const name = segments.at(-1) ?? "";
  for (const [algorithm, extension] of Object.entries(CHECKSUM_EXTENSIONS) as [ChecksumAlgorithm, string][]) {
    if (name.endsWith(extension) && name.length > extension.length) {
      const of = classify([...segments.slice(0, -1), name.slice(0, -extension.length)]);
      // A checksum of a checksum is just a file: served as mutable, never used to verify.
      if (of.kind === "checksum") return { kind: "mutable", path };
      return { kind: "checksum", path, algorithm, of };
    }
  }
  return { kind: isReleaseFile(segments) ? "release" : "mutable", path };
}

/**
 * `<group...>/<artifactId>/<version>/<artifactId>-<version><rest>` with a version that is not a
 * snapshot and a file that is not metadata: a file of a released version, which never changes.
 */
function isReleaseFile(segments: readonly string[]): boolean {
  if (segments.length < 4) return false;
  const [artifactId = "", version = "", name = ""] = segments.slice(-3);
  if (version.endsWith("-SNAPSHOT") || name.startsWith("maven-metadata")) return false;
  const stem = `${artifactId}-${version}`;
  return name.startsWith(stem) && /^[-.]./.test(name.slice(stem.length));
}

/**
 * The digest a checksum file gives, as lowercase hex; undefined when it holds none. Accepts what
 * repositories publish: the bare digest, `<digest>  <file name>` (sha1sum's output), and
 * `SHA1(<file>)= <digest>` / `MD5 (<file>) = <digest>` (openssl's and BSD's).
 */
export function parseChecksumFile(text: string, algorithm: ChecksumAlgorithm): string | undefined {
  const length = HEX_LENGTH[algorithm];
  const content = text.trim();
  const tagged = /=\s*([0-9A-Fa-f]+)\s*$/.exec(content.split(/\r?\n/, 1)[0] ?? "");
  const candidate = tagged?.[1] ?? content.split(/\s+/, 1)[0] ?? "";
  return candidate.length === length && /^[0-9A-Fa-f]+$/.test(candidate) ? candidate.toLowerCase() : undefined;
}
