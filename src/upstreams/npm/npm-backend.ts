import { Readable } from "node:stream";
import type { Logger } from "pino";
import type { ArtifactRef, ExpectedDigest, Freshness } from "../../core/cache/artifact-ref.js";
import { digestFromIntegrity } from "../../core/cache/artifact-ref.js";
import type { CachedArtifact, ResumeRequest, UpstreamAnswer, Validators } from "../../core/cache/artifact-source.js";
import { VaultError } from "../../core/errors.js";
import type { Backend, BackendContext, ForwardedRequest, ProxyRequest, Resolution } from "../backend.js";
import { createUpstreamClient } from "../http-client.js";
import type { UpstreamClient } from "../upstream-client.js";
import type { UpstreamPathRules } from "../upstream-path.js";
import { cacheKeyFor, fillRequestHeaders, readUpstreamBody, rewrittenAnswer, withTrailingSlash } from "../upstream-request.js";
import type { NpmBackendConfig } from "./npm-config.js";
import { packumentPath, parseNpmPath, tarballPath, type PackageName } from "./npm-paths.js";
import { negotiatePackumentFormat, upstreamAccept, type PackumentFormat } from "./packument-format.js";
import { PackumentJobs } from "./packument-jobs.js";
import { presentPackument } from "./packument-present.js";
import type { TarballSource } from "./packument-rewrite.js";
import { bearerHeaders } from "../upstream-credentials.js";

/**
 * The `npm` backend: an npm registry (the public one, Verdaccio, Artifactory, Nexus, GitHub
 * Packages...) for npm, pnpm and yarn.
 *
 *     {prefix}<name>                      packument, full or abbreviated by Accept (mutable, per form)
 *     {prefix}<name>/<version or tag>     one version's manifest (mutable)
 *     {prefix}<name>/-/<bare>-<ver>.tgz   tarball (immutable, verified against dist.integrity)
 *     {prefix}-/v1/search, -/ping, -/npm/v1/security/...   forwarded upstream, never cached
 *
 * Names come as `@scope%2fname`, `@scope%2Fname` or `@scope/name`. Packuments are cached with
 * every tarball URL pointing at the vault by a marker, which each answer replaces with the
 * vault's URL as that client reached it (packument-rewrite.ts). A tarball is verified against
 * its version's `dist.integrity` (or `shasum`) from the packument — the one remembered from the
 * last rewrite, else the cached one, else fetched — so a tarball asked for straight from a
 * lockfile is verified too. Writes (publish, unpublish, login) are refused with 405.
 */

/** Which kind of document a ref is (`ArtifactRef.upstream`). */
type NpmUpstream = "packument" | "manifest" | "tarball";

const NPM_PATHS: UpstreamPathRules = { npmScopes: true };
/** Packuments are read whole to be rewritten; the largest public ones are tens of MB. */
const MAX_DOCUMENT_BYTES = 512 * 1024 * 1024;
/** Packages whose tarball sources are remembered between a packument's rewrite and its tarball requests. */
const REMEMBERED_PACKAGES = 5000;

const WRITE_REFUSED =
  "the vault is a read-only cache: npm publish, unpublish, deprecate, dist-tag and owner changes go to your registry directly";
const LOGIN_REFUSED =
  "npm login is not needed for the vault: it is anonymous, or (with auth.proxy: token) takes a vault token set as _authToken for its URL in .npmrc";

/** Registry API calls passed upstream as they are (not cached), so that installs and `npm audit`/`search` work. */
const FORWARDED: ReadonlyArray<{ readonly method: "GET" | "POST"; readonly path: string; readonly query?: readonly string[] }> = [
  { method: "GET", path: "-/v1/search", query: ["text", "size", "from", "quality", "popularity", "maintenance"] },
  { method: "GET", path: "-/ping", query: ["write"] },
  { method: "POST", path: "-/npm/v1/security/advisories/bulk" },
  { method: "POST", path: "-/npm/v1/security/audits/quick" },
  { method: "POST", path: "-/npm/v1/security/audits" },
];

export async function createNpmBackend(name: string, config: NpmBackendConfig, context: BackendContext, where: string): Promise<Backend> {
  const registryBase = withTrailingSlash(config.registry_url);
  const registryOrigin = `${new URL(registryBase).origin}/`;
  const credentials = bearerHeaders(config, where);
  const common = { timeoutSeconds: config.timeout, retries: config.retries, username: config.username, password: config.password, pathRules: NPM_PATHS };
  const registry = createUpstreamClient({ ...common, baseUrl: registryBase });
  // Tarballs a registry serves from elsewhere on its host (outside registry_url's path).
  const registryHost = registryOrigin === registryBase ? registry : createUpstreamClient({ ...common, baseUrl: registryOrigin });
  const jobs = new PackumentJobs();
  const remembered = new TarballSources(REMEMBERED_PACKAGES);
  const logger = context.logger.child({ backend: name });
  const metadata: Freshness = { kind: "mutable", ttlMs: config.ttl ?? context.metadataTtlMs };

  const packumentRef = (pkg: PackageName, format: PackumentFormat): ArtifactRef => ({
    backend: name,
    cacheKey: cacheKeyFor(name, `packuments/${pkg.full}/${format}.json`),
    upstreamPath: packumentPath(pkg),
    upstream: "packument" satisfies NpmUpstream,
    freshness: metadata,
    upstreamHeaders: { accept: upstreamAccept(format) },
    responseHeaders: { vary: "Accept" },
  });

  // Upstream paths are built from names and versions `parseNpmPath` checked (npm's URL-safe
  // characters, never a dot segment): already what `normaliseUpstreamPath` would return, which
  // the upstream client applies again before any request anyway.
  const resolve = (request: ProxyRequest): Resolution => {
    const target = parseNpmPath(request.path);
    switch (target.kind) {
      case "packument":
        return packumentRef(target.name, negotiatePackumentFormat(request.headers["accept"]));
      case "version":
        return {
          backend: name,
          cacheKey: cacheKeyFor(name, `manifests/${target.name.full}/${target.spec}.json`),
          upstreamPath: `${packumentPath(target.name)}/${target.spec}`,
          upstream: "manifest" satisfies NpmUpstream,
          freshness: metadata,
          upstreamHeaders: { accept: "application/json" },
        };
      case "tarball":
        return {
          backend: name,
          cacheKey: cacheKeyFor(name, `tarballs/${target.name.full}/${target.name.bare}-${target.version}.tgz`),
          upstreamPath: tarballPath(target.name, target.version),
          upstream: "tarball" satisfies NpmUpstream,
          freshness: { kind: "immutable" },
        };
      case "api":
        throw new VaultError("not_found", `the vault does not serve /${target.path} of the npm registry API`);
    }
  };

  /** A packument or manifest, rewritten so that its tarball URLs come back to the vault. */
  const fetchDocument = async (ref: ArtifactRef, validators: Validators | undefined, signal: AbortSignal): Promise<UpstreamAnswer> => {
    const target = parseNpmPath(ref.upstreamPath);
    if (target.kind !== "packument" && target.kind !== "version") throw new VaultError("internal", `not a document ref: ${ref.upstreamPath}`);
    const response = await registry.request({ method: "GET", path: ref.upstreamPath, headers: { ...fillRequestHeaders(ref, validators), ...credentials }, signal });
    if (response.status !== 200) return response;
    const json = await readUpstreamBody(response.body, MAX_DOCUMENT_BYTES, `the packument of ${target.name.full}`);
    const rewritten = ref.upstream === "packument" ? await jobs.rewritePackument(json, target.name, registryBase) : await jobs.rewriteManifest(json, target.name);
    if (ref.upstream === "packument") remembered.set(target.name.full, rewritten.tarballs);
    if (rewritten.dropped.length > 0) {
      logger.warn({ package: target.name.full, versions: rewritten.dropped.slice(0, 5) }, "packument lists versions whose number cannot name a tarball; they were left out");
    }
    return rewrittenAnswer(response, rewritten.text);
  };

  /** Reads a cached packument's tarball sources (and remembers them). */
  const sourcesFrom = async (artifact: CachedArtifact, pkg: PackageName): Promise<Record<string, TarballSource>> => {
    const json = artifact.contents ?? (await readUpstreamBody(artifact.body(), MAX_DOCUMENT_BYTES, `the cached packument of ${pkg.full}`));
    artifact.release();
    const sources = await jobs.tarballSources(json, pkg, registryBase);
    remembered.set(pkg.full, sources);
    return sources;
  };

  /**
   * Where a version's tarball comes from and what it must hash to: remembered from the last
   * rewrite, else from a cached packument (however stale: a version's integrity never changes),
   * else from the packument through the cache (fetched if need be), else — a version newer than
   * the cached packument, named by a lockfile — from the upstream's packument right now.
   */
  const tarballSource = async (pkg: PackageName, version: string, signal: AbortSignal): Promise<TarballSource | undefined> => {
    const known = remembered.get(pkg.full)?.[version];
    if (known !== undefined) return known;
    for (const format of ["full", "abbreviated"] as const) {
      const stored = await context.artifacts.peek(packumentRef(pkg, format));
      if (stored === undefined) continue;
      const source = (await sourcesFrom(stored, pkg))[version];
      if (source !== undefined) return source;
    }
    const current = await context.artifacts.get(packumentRef(pkg, "abbreviated"), fetch);
    const source = (await sourcesFrom(current, pkg))[version];
    if (source !== undefined || current.status === "MISS") return source;
    const latest = await fetchDocument(packumentRef(pkg, "abbreviated"), undefined, signal);
    latest.body.destroy();
    return latest.status === 200 ? remembered.get(pkg.full)?.[version] : undefined;
  };

  const fetchTarball = async (ref: ArtifactRef, signal: AbortSignal, resume: ResumeRequest | undefined): Promise<UpstreamAnswer> => {
    const target = parseNpmPath(ref.upstreamPath);
    if (target.kind !== "tarball") throw new VaultError("internal", `not a tarball ref: ${ref.upstreamPath}`);
    const source = await tarballSource(target.name, target.version, signal);
    if (source === undefined) {
      // Not a version the registry lists (unpublished, or a typo in a lockfile): a 404, remembered briefly.
      return { status: 404, headers: {}, url: registryBase, body: Readable.from([]) };
    }
    const digest = digestOf(source);
    if (digest === undefined) logger.warn({ package: target.name.full, version: target.version }, "the registry gives no integrity for this version; its tarball is cached unverified");
    const { client, path, query } = tarballLocation(source.upstreamUrl ?? `${registryBase}${tarballPath(target.name, target.version)}`, target.name, logger);
    const response = await client.request({ method: "GET", path, query, headers: { ...fillRequestHeaders(ref, undefined, resume), ...credentials }, signal });
    return { ...response, digest };
  };

  /** Which client fetches an upstream tarball URL, and its path: only registry_url's host is ever asked. */
  const tarballLocation = (url: string, pkg: PackageName, log: Logger): { client: UpstreamClient; path: string; query: Record<string, string> | undefined } => {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      throw new VaultError("upstream_failed", `the registry names an invalid tarball URL for ${pkg.full}`);
    }
    const query = parsed.search === "" ? undefined : Object.fromEntries(parsed.searchParams);
    const location = `${parsed.origin}${parsed.pathname}`;
    if (location.startsWith(registryBase)) return { client: registry, path: location.slice(registryBase.length), query };
    if (parsed.origin === new URL(registryOrigin).origin) return { client: registryHost, path: parsed.pathname.slice(1), query };
    log.warn({ package: pkg.full, host: parsed.host }, "the registry serves this tarball from another host, which the vault does not fetch from");
    throw new VaultError("upstream_failed", `the tarball of ${pkg.full} is on another host than the registry's`);
  };

  // Tarballs resume (a broken-off download asks for the rest); packuments are rewritten whole, never resumed.
  const fetch = (ref: ArtifactRef, validators: Validators | undefined, signal: AbortSignal, resume?: ResumeRequest): Promise<UpstreamAnswer> =>
    ref.upstream === "tarball" ? fetchTarball(ref, signal, resume) : fetchDocument(ref, validators, signal);

  return {
    type: "npm",
    name,
    prefix: config.prefix,
    resolve,
    fetch,
    present: (artifact, ref, request) => (ref.upstream === "tarball" ? artifact : presentPackument(artifact, request.baseUrl)),
    forward: (request) => forward(request, registry, credentials),
    // npm, pnpm and yarn follow a tarball's redirect (registries commonly serve them from a CDN).
    clientsFollowRedirects: (ref) => ref.upstream === "tarball",
    close: async () => {
      await jobs.close();
      await Promise.all([registry.close(), registryHost === registry ? undefined : registryHost.close()]);
    },
  };
}

/**
 * Registry API calls that go upstream as they are: search, ping and the audit endpoints (npm
 * and pnpm post their dependency lists there after every install). Writes are refused; other
 * reads are resolved and cached as usual (undefined).
 */
function forward(request: ForwardedRequest, registry: UpstreamClient, credentials: Record<string, string>): ((signal: AbortSignal) => Promise<UpstreamAnswer>) | undefined {
  const isRead = request.method === "GET" || request.method === "HEAD";
  if (!request.path.startsWith("-/")) {
    if (isRead) return undefined;
    throw new VaultError("method_not_allowed", WRITE_REFUSED, { allow: ["GET", "HEAD"] });
  }
  const method = request.method === "HEAD" ? "GET" : request.method;
  const route = FORWARDED.find((candidate) => candidate.path === request.path && candidate.method === method);
  if (route === undefined) {
    if (isRead) return undefined;
    throw new VaultError("method_not_allowed", request.path.startsWith("-/user/") ? LOGIN_REFUSED : WRITE_REFUSED, { allow: ["GET", "HEAD"] });
  }
  const params = new URLSearchParams(request.query);
  const query = Object.fromEntries((route.query ?? []).flatMap((key) => (params.has(key) ? [[key, params.get(key) ?? ""]] : [])));
  const headers: Record<string, string> = { accept: request.headers["accept"] ?? "application/json", "accept-encoding": "identity", ...credentials };
  for (const name of ["content-type", "content-encoding"]) {
    const value = request.headers[name];
    if (value !== undefined && request.body !== undefined) headers[name] = value;
  }
  return (signal) => registry.request({ method: route.method, path: route.path, query, headers, body: request.body, signal });
}

/** The digest a tarball must have: the strongest in `dist.integrity`, else `dist.shasum` (SHA-1). */
function digestOf(source: TarballSource): ExpectedDigest | undefined {
  const fromIntegrity = source.integrity === undefined ? undefined : digestFromIntegrity(source.integrity);
  if (fromIntegrity !== undefined) return fromIntegrity;
  const shasum = source.shasum?.toLowerCase();
  return shasum !== undefined && /^[0-9a-f]{40}$/.test(shasum) ? { algorithm: "sha1", hex: shasum } : undefined;
}

/** Each package's tarball sources by version, for the most recently used packages. */
class TarballSources {
  readonly #byPackage = new Map<string, Readonly<Record<string, TarballSource>>>();

  constructor(private readonly limit: number) {}

  get(name: string): Readonly<Record<string, TarballSource>> | undefined {
    const sources = this.#byPackage.get(name);
    if (sources !== undefined) {
      this.#byPackage.delete(name);
      this.#byPackage.set(name, sources);
    }
    return sources;
  }

  set(name: string, sources: Readonly<Record<string, TarballSource>>): void {
    this.#byPackage.delete(name);
    this.#byPackage.set(name, sources);
    if (this.#byPackage.size > this.limit) {
      const oldest = this.#byPackage.keys().next().value;
      if (oldest !== undefined) this.#byPackage.delete(oldest);
    }
  }
}
