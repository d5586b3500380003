import { Readable } from "node:stream";
import type { ArtifactRef, Freshness } from "../../core/cache/artifact-ref.js";
import type { CachedArtifact, ResumeRequest, UpstreamAnswer, Validators } from "../../core/cache/artifact-source.js";
import { isVaultError, VaultError } from "../../core/errors.js";
import type { Backend, BackendContext, ForwardedRequest, ProxyRequest } from "../backend.js";
import { createUpstreamClient } from "../http-client.js";
import { bearerHeaders } from "../upstream-credentials.js";
import { cacheKeyFor, fillRequestHeaders, readUpstreamBody, withTrailingSlash } from "../upstream-request.js";
import type { CargoBackendConfig } from "./cargo-config.js";
import { downloadPath, downloadTemplate, findVersion, indexPath, parseCargoPath, type IndexedVersion } from "./sparse-index.js";

/**
 * The `cargo` backend: a sparse cargo registry (crates.io's index, or a private one) for cargo,
 * as `sparse+http://vault:8080/cargo/`.
 *
 *     {prefix}config.json                          answered by the vault: `dl` names the vault
 *     {prefix}1/a, 2/ab, 3/a/abc, ab/cd/abcd...    index files (mutable, ttl)
 *     {prefix}crates/<crate>/<version>/download    `.crate` files (immutable, verified)
 *
 * `config.json` is built for each request from the address the client used (`request.baseUrl`),
 * so cargo downloads from the vault whatever name it knows the vault by; it asks for
 * authentication (`auth-required`) when the request carried an `Authorization` header (cargo
 * sends its token once a registry answered 401). Index files are served as the upstream wrote
 * them: nothing in them names a URL.
 *
 * The rule: a `.crate` is cached only once its bytes hash to the `cksum` its version's line in
 * the crate's index file gives — read from the cached index file (however stale: a version's
 * checksum never changes), else from the index file through the cache, else (a version newer
 * than the cached file) from the upstream's file right now. A version no index line lists is a
 * 404, and its `.crate` is not asked for. The upstream download URL is the configured `dl_url`
 * expanded as cargo expands `dl` (markers, or `/{crate}/{version}/download`), with the crate's
 * name as the index spells it. Paths are checked (sparse-index.ts) before any upstream request.
 */

/** What a ref is, for the fetch (`ArtifactRef.upstream`). */
type CargoUpstream = "index" | "crate";

/** The largest index file read whole (crates.io's largest are a few MB). */
const MAX_INDEX_BYTES = 64 * 1024 * 1024;

export async function createCargoBackend(name: string, config: CargoBackendConfig, context: BackendContext, where: string): Promise<Backend> {
  // Sent as cargo sends a registry token: the whole `Authorization` value (write `Bearer <token>` for a registry that wants that).
  const bearer = bearerHeaders(config, where).authorization;
  const credentials: Record<string, string> = bearer === undefined ? {} : { authorization: bearer.replace(/^Bearer /, "") };
  const common = { timeoutSeconds: config.timeout, retries: config.retries, username: config.username, password: config.password };
  const index = createUpstreamClient({ ...common, baseUrl: withTrailingSlash(config.index_url) });
  const template = downloadTemplate(config.dl_url);
  const downloads = createUpstreamClient({ ...common, baseUrl: template.base });
  const metadata: Freshness = { kind: "mutable", ttlMs: config.ttl ?? context.metadataTtlMs };
  const logger = context.logger.child({ backend: name });

  const indexRef = (crate: string): ArtifactRef => {
    const path = indexPath(crate);
    return { backend: name, cacheKey: cacheKeyFor(name, `index/${path}`), upstreamPath: path, upstream: "index" satisfies CargoUpstream, freshness: metadata };
  };

  const crateRef = (crate: string, version: string): ArtifactRef => ({
    backend: name,
    // One copy whatever case the client spells the name in; the upstream path is made once the index is read.
    cacheKey: cacheKeyFor(name, `crates/${crate.toLowerCase()}/${version}.crate`),
    upstreamPath: `crates/${crate}/${version}/download`,
    upstream: "crate" satisfies CargoUpstream,
    freshness: { kind: "immutable" },
  });

  const resolve = (request: ProxyRequest): ArtifactRef => {
    const target = parseCargoPath(request.path);
    switch (target.kind) {
      case "index":
        return indexRef(target.name);
      case "crate":
        return crateRef(target.name, target.version);
      case "config":
        // Answered by `forward` for GET and HEAD.
        throw new VaultError("not_found", "config.json is answered by the vault itself");
    }
  };

  const fetchIndex = (target: ArtifactRef, validators: Validators | undefined, signal: AbortSignal): Promise<UpstreamAnswer> =>
    index.request({ method: "GET", path: target.upstreamPath, headers: { ...fillRequestHeaders(target, validators), ...credentials }, signal });

  const readIndex = async (artifact: CachedArtifact, crate: string): Promise<Buffer> => {
    try {
      return artifact.contents ?? (await readUpstreamBody(artifact.body(), MAX_INDEX_BYTES, `the cached index file of ${crate}`));
    } finally {
      artifact.release();
    }
  };

  /** The index line of a version; undefined when no index file lists it. */
  const indexedVersion = async (crate: string, version: string, signal: AbortSignal): Promise<IndexedVersion | undefined> => {
    const stored = await context.artifacts.peek(indexRef(crate));
    if (stored !== undefined) {
      const found = findVersion(await readIndex(stored, crate), crate, version);
      if (found !== undefined) return found;
    }
    let current: CachedArtifact;
    try {
      current = await context.artifacts.get(indexRef(crate), fetch);
    } catch (error) {
      if (isVaultError(error, "not_found")) return undefined;
      throw error;
    }
    const status = current.status;
    const found = findVersion(await readIndex(current, crate), crate, version);
    if (found !== undefined || status === "MISS") return found;
    // A version published since the cached index file was fetched (a lockfile names it): the upstream's file now.
    const latest = await fetchIndex(indexRef(crate), undefined, signal);
    if (latest.status !== 200) {
      latest.body.destroy();
      return undefined;
    }
    return findVersion(await readUpstreamBody(latest.body, MAX_INDEX_BYTES, `the index file of ${crate}`), crate, version);
  };

  const fetchCrate = async (target: ArtifactRef, signal: AbortSignal, resume: ResumeRequest | undefined): Promise<UpstreamAnswer> => {
    const parsed = parseCargoPath(target.upstreamPath);
    if (parsed.kind !== "crate") throw new VaultError("internal", `not a crate ref: ${target.upstreamPath}`);
    const listed = await indexedVersion(parsed.name, parsed.version, signal);
    if (listed === undefined) {
      // Not a version the index lists: a 404, and nothing asked of the download host.
      return { status: 404, headers: {}, url: target.upstreamPath, body: Readable.from([]) };
    }
    const path = downloadPath(template, listed, parsed.version);
    logger.debug({ crate: listed.name, version: parsed.version, path }, "downloading a crate");
    const response = await downloads.request({ method: "GET", path, headers: { ...fillRequestHeaders(target, undefined, resume), ...credentials }, signal });
    return { ...response, digest: { algorithm: "sha256", hex: listed.cksum } };
  };

  const fetch = async (target: ArtifactRef, validators: Validators | undefined, signal: AbortSignal, resume?: ResumeRequest): Promise<UpstreamAnswer> =>
    (target.upstream as CargoUpstream) === "crate" ? fetchCrate(target, signal, resume) : fetchIndex(target, validators, signal);

  return {
    type: "cargo",
    name,
    prefix: config.prefix,
    resolve,
    fetch,
    forward: registryConfig,
    // cargo follows redirects (crates.io's own `dl` redirects to its CDN).
    clientsFollowRedirects: (target) => target.upstream === "crate",
    close: async () => {
      await Promise.all([index.close(), downloads.close()]);
    },
  };
}

/**
 * `config.json`, answered by the vault: `dl` names the vault as this client reached it, no `api`
 * (the vault does not publish). With an `Authorization` header — cargo sends its token only to a
 * registry that asked for it, by a 401 — `auth-required` keeps cargo sending it.
 */
export function registryConfig(request: ForwardedRequest): ((signal: AbortSignal) => Promise<UpstreamAnswer>) | undefined {
  if (request.path !== "config.json" || (request.method !== "GET" && request.method !== "HEAD")) return undefined;
  const document: Record<string, unknown> = { dl: `${request.baseUrl}/crates/{crate}/{version}/download` };
  if (request.headers["authorization"] !== undefined) document["auth-required"] = true;
  const body = Buffer.from(`${JSON.stringify(document)}\n`, "utf8");
  const headers = { "content-type": "application/json", "content-length": String(body.length), "cache-control": "no-cache" };
  return () => Promise.resolve({ status: 200, headers, url: "", body: Readable.from(request.method === "HEAD" ? [] : [body]) });
}

/** `type: cargo`: a sparse cargo registry for cargo. */
