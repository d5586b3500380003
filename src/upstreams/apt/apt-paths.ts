import type { DigestAlgorithm, ExpectedDigest } from "../../core/cache/artifact-ref.js";
import { VaultError } from "../../core/errors.js";

/**
 * What a path below a Debian or Ubuntu mirror names (the mirror's root holds `dists/` and
 * `pool/`), which decides how the vault caches it:
 *
 *     dists/<suite>/InRelease, Release, Release.gpg      release   mutable (the suite's signed list of indexes)
 *     dists/<suite>/**\/by-hash/<ALGO>/<hex>             by-hash   immutable; SHA256, SHA512, SHA1 verified against <hex>
 *     dists/<suite>/** (Packages*, Sources*, i18n, ...)   index     mutable
 *     pool/**                                            pool      immutable; verified against a cached index when it lists them
 *     anything else (README, project/trace/...)          other     mutable
 *
 * Paths here are decoded (`libstdc++6`, not `libstdc%2b%2b6`: apt percent-encodes `+` and `~`)
 * and were checked by `normaliseUpstreamPath` first, so they hold no `..` and no empty segment.
 * Pure: no I/O, no state.
 */
export type AptPath =
  /** `suite` is the Release file's directory, e.g. `dists/bookworm` (or `dists/stable/updates`). */
  | { readonly kind: "release"; readonly suite: string; readonly file: "InRelease" | "Release" | "Release.gpg" }
  | { readonly kind: "by-hash"; readonly digest: ExpectedDigest | undefined }
  | { readonly kind: "index" }
  /** `listedIn`: the kind of index that lists the file with its SHA256, if any. */
  | { readonly kind: "pool"; readonly listedIn: PoolIndexKind | undefined }
  | { readonly kind: "other" };

/** `Packages` lists binary packages (`Filename`, `SHA256`); `Sources` lists source package files (`Directory`, `Checksums-Sha256`). */
export type PoolIndexKind = "Packages" | "Sources";

const RELEASE_FILES = new Set(["InRelease", "Release", "Release.gpg"]);
/** Directories of a suite's component that hold indexes (and a per-directory `Release`). */
const INDEX_DIRECTORY = /^(?:binary-[^/]+|source|i18n)$/;

/** The by-hash directories apt knows; `MD5Sum` cannot be verified by the cache (no MD5 there), so it is not here. */
const BY_HASH_ALGORITHMS: ReadonlyMap<string, { readonly algorithm: DigestAlgorithm; readonly hexLength: number }> = new Map([
  ["SHA256", { algorithm: "sha256", hexLength: 64 }],
  ["SHA512", { algorithm: "sha512", hexLength: 128 }],
  ["SHA1", { algorithm: "sha1", hexLength: 40 }],
]);

const BINARY_PACKAGE = /\.(?:deb|udeb|ddeb)$/;
/** What a `Sources` stanza lists: the `.dsc`, tarballs (and their `.asc` signatures), old-style `.diff.gz`. */
const SOURCE_PACKAGE_FILE = /\.(?:dsc|diff\.gz)$|\.tar(?:\.[A-Za-z0-9]+)*$/;

/**
 * Classifies a decoded path below the mirror. Throws VaultError `not_found` for a by-hash name
 * that cannot be a digest of its algorithm (no upstream can have it, and the vault would
 * otherwise have to store it unverified).
 */
export function classifyAptPath(path: string): AptPath {
  const segments = path.split("/");
  const file = segments.at(-1) ?? "";
  if (segments[0] === "pool" && segments.length > 1) return { kind: "pool", listedIn: poolIndexKind(file) };
  if (segments[0] !== "dists" || segments.length < 3) return { kind: "other" };
  const byHash = segments.length >= 5 ? segments.at(-3) === "by-hash" : false;
  if (byHash) return { kind: "by-hash", digest: byHashDigest(segments.at(-2) ?? "", file) };
  // `main/binary-amd64/Release` describes one index directory, not a suite: an index like the rest.
  if (RELEASE_FILES.has(file) && !INDEX_DIRECTORY.test(segments.at(-2) ?? "")) {
    return { kind: "release", suite: segments.slice(0, -1).join("/"), file: file as "InRelease" | "Release" | "Release.gpg" };
  }
  return { kind: "index" };
}

/** Which index would list a pool file with its SHA256, judged by its name. */
export function poolIndexKind(fileName: string): PoolIndexKind | undefined {
  if (BINARY_PACKAGE.test(fileName)) return "Packages";
  if (SOURCE_PACKAGE_FILE.test(fileName)) return "Sources";
  return undefined;
}

/** Whether the path is cached for good (content-addressed or a pool file) or revalidated after the TTL. */
export function isImmutable(path: AptPath): boolean {
  return path.kind === "by-hash" || path.kind === "pool";
}

function byHashDigest(directory: string, name: string): ExpectedDigest | undefined {
  const known = BY_HASH_ALGORITHMS.get(directory);
  if (known === undefined) return undefined;
  if (name.length !== known.hexLength || !/^[0-9A-Fa-f]+$/.test(name)) {
    throw new VaultError("not_found", `not a ${directory} digest: ${name}`);
  }
  return { algorithm: known.algorithm, hex: name.toLowerCase() };
}
