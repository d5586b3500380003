import { VaultError } from "../../core/errors.js";
import { tarballPath, type PackageName } from "./npm-paths.js";

/**
 * Packuments (and single-version manifests) are cached with every `dist.tarball` pointing at the
 * vault — but the vault's address depends on how each client reaches it (`localhost:8080`,
 * `vault.internal`, a TLS proxy in front). So the cached document names the vault by a marker,
 * `VAULT_BASE`, and each answer swaps the marker for the client's own base URL
 * (`presentPackument`): a plain byte substitution, no JSON work per request.
 *
 * The marker holds NUL characters, which JSON can only carry escaped (`\u0000`): no package's
 * text can produce it by accident, and whatever replaces it is a URL of safe characters, so the
 * document stays valid JSON.
 */
export const VAULT_BASE = "\u0000artifact-vault\u0000";
/** `VAULT_BASE` as it reads inside JSON text. */
export const VAULT_BASE_IN_JSON = JSON.stringify(VAULT_BASE).slice(1, -1);

/**
 * Where each version's tarball comes from upstream, kept in the cached packument (a private
 * top-level field, like CouchDB's `_attachments`) for versions whose `dist.tarball` is not the
 * registry's usual path — the vault serves every tarball at the usual path.
 */
export const UPSTREAM_TARBALLS_FIELD = "_vault_upstream_tarballs";

/** What verifying and fetching one version's tarball needs. */
export interface TarballSource {
  /** `dist.integrity` (SRI, e.g. `sha512-...`). */
  readonly integrity: string | undefined;
  /** `dist.shasum` (hex SHA-1), for old packages without integrity. */
  readonly shasum: string | undefined;
  /** The upstream URL of the tarball as the registry named it. */
  readonly upstreamUrl: string | undefined;
}

export interface RewrittenPackument {
  readonly text: string;
  /** By version. */
  readonly tarballs: Readonly<Record<string, TarballSource>>;
  /** Versions left out: their number cannot be a tarball path. */
  readonly dropped: readonly string[];
}

const VERSION = /^[A-Za-z0-9~-][A-Za-z0-9._+~-]*$/;

/**
 * Rewrites a packument (full or abbreviated): every version's `dist.tarball` becomes
 * `VAULT_BASE/<name>/-/<bare>-<version>.tgz`. `registryBase` (ending in `/`) tells which
 * upstream tarball URLs are the usual ones; the others are kept in `UPSTREAM_TARBALLS_FIELD`.
 */
export function rewritePackument(json: string, name: PackageName, registryBase: string): RewrittenPackument {
  const document = parseObject(json, "packument");
  const versions = document["versions"];
  const tarballs: Record<string, TarballSource> = {};
  const dropped: string[] = [];
  const unusual: Record<string, string> = {};
  if (isRecord(versions)) {
    for (const [version, manifest] of Object.entries(versions)) {
      if (!VERSION.test(version)) {
        delete versions[version];
        dropped.push(version);
        continue;
      }
      if (!isRecord(manifest)) continue;
      const source = rewriteDist(manifest, name, version);
      if (source === undefined) continue;
      tarballs[version] = source;
      if (source.upstreamUrl !== undefined && source.upstreamUrl !== `${registryBase}${tarballPath(name, version)}`) unusual[version] = source.upstreamUrl;
    }
  }
  delete document[UPSTREAM_TARBALLS_FIELD];
  if (Object.keys(unusual).length > 0) document[UPSTREAM_TARBALLS_FIELD] = unusual;
  return { text: JSON.stringify(document), tarballs, dropped };
}

/** One version's manifest (`/<name>/<version>`): its `dist.tarball` rewritten the same way. */
export function rewriteManifest(json: string, name: PackageName): RewrittenPackument {
  const manifest = parseObject(json, "manifest");
  const version = manifest["version"];
  if (typeof version !== "string" || !VERSION.test(version)) return { text: json, tarballs: {}, dropped: [] };
  const source = rewriteDist(manifest, name, version);
  return { text: JSON.stringify(manifest), tarballs: source === undefined ? {} : { [version]: source }, dropped: [] };
}

/**
 * The tarball sources a cached (rewritten) packument records, for verifying a tarball after a
 * restart: the vault's own document, so only its fields are read.
 */
export function tarballSourcesOf(json: string, name: PackageName, registryBase: string): Record<string, TarballSource> {
  const document = parseObject(json, "packument");
  const versions = isRecord(document["versions"]) ? document["versions"] : {};
  const unusual = isRecord(document[UPSTREAM_TARBALLS_FIELD]) ? document[UPSTREAM_TARBALLS_FIELD] : {};
  const sources: Record<string, TarballSource> = {};
  for (const [version, manifest] of Object.entries(versions)) {
    const dist = isRecord(manifest) && isRecord(manifest["dist"]) ? manifest["dist"] : undefined;
    if (dist === undefined) continue;
    const recorded = unusual[version];
    sources[version] = {
      integrity: text(dist["integrity"]),
      shasum: text(dist["shasum"]),
      upstreamUrl: typeof recorded === "string" ? recorded : `${registryBase}${tarballPath(name, version)}`,
    };
  }
  return sources;
}

function rewriteDist(manifest: Record<string, unknown>, name: PackageName, version: string): TarballSource | undefined {
  const dist = manifest["dist"];
  if (!isRecord(dist)) return undefined;
  const upstreamUrl = text(dist["tarball"]);
  dist["tarball"] = `${VAULT_BASE}/${tarballPath(name, version)}`;
  return { integrity: text(dist["integrity"]), shasum: text(dist["shasum"]), upstreamUrl };
}

function parseObject(json: string, what: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch (error) {
    throw new VaultError("upstream_failed", `the upstream registry sent a ${what} that is not JSON: ${(error as Error).message}`);
  }
  if (!isRecord(value)) throw new VaultError("upstream_failed", `the upstream registry sent a ${what} that is not a JSON object`);
  return value;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function text(value: unknown): string | undefined {
  return typeof value === "string" && value !== "" ? value : undefined;
}
