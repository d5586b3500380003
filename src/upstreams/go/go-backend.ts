import { Readable } from "node:stream";
import type { ArtifactRef, Freshness } from "../../core/cache/artifact-ref.js";
import type { ResumeRequest, UpstreamAnswer, Validators } from "../../core/cache/artifact-source.js";
import { VaultError } from "../../core/errors.js";
import type { Backend, BackendContext, ForwardedRequest, ProxyRequest } from "../backend.js";
import { createUpstreamClient } from "../http-client.js";
import { cacheKeyFor, fillRequestHeaders, withTrailingSlash } from "../upstream-request.js";
import type { GoBackendConfig } from "./go-config.js";
import { parseGoPath, type SumdbRequest, type Version } from "./goproxy-paths.js";
import { matchesPrefixPattern, type ModulePath } from "./module-path.js";
import { SumdbVerifier, type ModuleHashes } from "./sumdb-verifier.js";
import { tilePath, TILE_HEIGHT, type Tile } from "./sumdb-tlog.js";
import { checkedBody, goModCheck, moduleZipCheck } from "./verified-body.js";
import { bearerHeaders } from "../upstream-credentials.js";

/**
 * The `go` backend: a Go module proxy (GOPROXY protocol) in front of proxy.golang.org or a
 * private one, for `GOPROXY=http://vault:8080/go/`.
 *
 *     {prefix}<module>/@v/list, {prefix}<module>/@latest      mutable (ttl)
 *     {prefix}<module>/@v/<query>.info                        mutable (a branch, `v1.2`, ...)
 *     {prefix}<module>/@v/<version>.info|.mod|.zip            immutable (canonical versions)
 *     {prefix}sumdb/<name>/...                                the checksum database, when configured
 *
 * With `sumdb`, every `.mod` and `.zip` is verified against the h1 hash the checksum database
 * proves for it (sumdb-verifier.ts) before it is cached — except modules matching `nosumdb`.
 * The database's own answers are proxied too, cached as their protocol allows: lookups and the
 * latest tree head are mutable, full tiles never change (a partial tile is revalidated after
 * `ttl`: the log publishes a wider one as it grows). Paths are checked (goproxy-paths.ts) before
 * any upstream request: only the proxy's and the database's hosts are ever asked.
 *
 * Nothing in the protocol's documents names a URL, so nothing is rewritten: the go command asks
 * the vault for everything by itself. Errors are plain text; an upstream 404 or 410 reaches the
 * go command as a 404, on which it falls back to the next GOPROXY entry.
 */

/** What a ref is, for the fetch (`ArtifactRef.upstream`). */
type GoUpstream = "list" | "latest" | "info" | "mod" | "zip" | "sumdb";

export async function createGoBackend(name: string, config: GoBackendConfig, context: BackendContext, where: string): Promise<Backend> {
  const credentials = bearerHeaders(config, where);
  const common = { timeoutSeconds: config.timeout, retries: config.retries };
  const proxy = createUpstreamClient({ ...common, baseUrl: withTrailingSlash(config.proxy_url), username: config.username, password: config.password });
  const sumdb = config.sumdb;
  // The database is public: the proxy's credentials never go there.
  const database = sumdb === undefined ? undefined : createUpstreamClient({ ...common, baseUrl: withTrailingSlash(sumdb.url) });
  const metadata: Freshness = { kind: "mutable", ttlMs: config.ttl ?? context.metadataTtlMs };
  const immutable: Freshness = { kind: "immutable" };
  const logger = context.logger.child({ backend: name });

  const moduleRef = (module: ModulePath, kind: GoUpstream, file: string, freshness: Freshness): ArtifactRef => ({
    backend: name,
    cacheKey: cacheKeyFor(name, `${module.escaped}/${file}`),
    upstreamPath: `${module.escaped}/${file}`,
    upstream: kind,
    freshness,
  });

  const sumdbRef = (request: Exclude<SumdbRequest, { kind: "supported" }>): ArtifactRef => {
    const path =
      request.kind === "latest" ? "latest" : request.kind === "lookup" ? `lookup/${request.module.escaped}@${request.version.escaped}` : request.path;
    const partialTile = request.kind === "tile" && request.tile.width < 2 ** TILE_HEIGHT;
    return {
      backend: name,
      cacheKey: cacheKeyFor(name, `sumdb/${sumdb?.name ?? ""}/${path}`),
      upstreamPath: path,
      upstream: "sumdb" satisfies GoUpstream,
      freshness: request.kind === "tile" && !partialTile ? immutable : metadata,
    };
  };

  const verifier =
    sumdb === undefined
      ? undefined
      : new SumdbVerifier({
          key: sumdb.key,
          artifacts: context.artifacts,
          fetch: (ref, validators, signal, resume) => fetch(ref, validators, signal, resume),
          lookupRef: (module: ModulePath, version: Version) => sumdbRef({ kind: "lookup", module, version }),
          tileRef: (tile: Tile) => sumdbRef({ kind: "tile", tile, path: tilePath(tile) }),
        });

  const resolve = (request: ProxyRequest): ArtifactRef => {
    const target = parseGoPath(request.path);
    switch (target.kind) {
      case "list":
        return moduleRef(target.module, "list", "@v/list", metadata);
      case "latest":
        return moduleRef(target.module, "latest", "@latest", metadata);
      case "info":
      case "mod":
      case "zip":
        // A query's answer changes (a branch moves); a canonical version's never does.
        return moduleRef(target.module, target.kind, `@v/${target.version.escaped}.${target.kind}`, target.version.canonical ? immutable : metadata);
      case "sumdb":
        if (sumdb === undefined || target.name !== sumdb.name) {
          throw new VaultError("not_found", `this vault does not proxy the checksum database ${target.name}`);
        }
        // `supported` is answered by `forward`; only an odd spelling of it (`%73upported`) gets here.
        if (target.request.kind === "supported") throw new VaultError("not_found", `ask for sumdb/${sumdb.name}/supported as it is spelt`);
        return sumdbRef(target.request);
    }
  };

  /** The hashes `.mod` and `.zip` of a version must have; undefined when they are not verified. */
  const expectedHashes = (ref: ArtifactRef): { hashes: Promise<ModuleHashes>; what: string } | undefined => {
    if (verifier === undefined || (ref.upstream !== "mod" && ref.upstream !== "zip")) return undefined;
    const target = parseGoPath(ref.upstreamPath);
    if (target.kind !== "mod" && target.kind !== "zip") return undefined;
    if (matchesPrefixPattern(config.nosumdb, target.module.path)) return undefined;
    const hashes = verifier.hashes(target.module, target.version);
    // Observed below once the upstream answered 200; a 404 makes it moot.
    hashes.catch(() => undefined);
    return { hashes, what: `${target.module.path}@${target.version.version}.${target.kind}` };
  };

  const fetch = async (ref: ArtifactRef, validators: Validators | undefined, signal: AbortSignal, resume?: ResumeRequest): Promise<UpstreamAnswer> => {
    if (ref.upstream === "sumdb") {
      if (database === undefined) throw new VaultError("internal", "no checksum database is configured");
      return database.request({ method: "GET", path: ref.upstreamPath, signal, headers: fillRequestHeaders(ref, validators, resume) });
    }
    // The database is asked alongside the proxy: a version the proxy does not have stays a 404.
    const expected = expectedHashes(ref);
    const response = await proxy.request({ method: "GET", path: ref.upstreamPath, signal, headers: { ...fillRequestHeaders(ref, validators, resume), ...credentials } });
    if (expected === undefined || response.status !== 200) return response;
    let hash: string | undefined;
    try {
      const hashes = await expected.hashes;
      hash = ref.upstream === "zip" ? hashes.zip : hashes.mod;
      if (hash === undefined) throw new VaultError("upstream_failed", `the checksum database lists no hash for ${expected.what}`);
    } catch (error) {
      response.body.destroy();
      logger.warn({ key: ref.cacheKey, reason: (error as Error).message }, "cannot verify against the checksum database; nothing cached");
      throw error;
    }
    const check = ref.upstream === "zip" ? moduleZipCheck(hash, expected.what) : goModCheck(hash, expected.what);
    // Checked as a whole at the end: a resumed range could not be, so a broken download starts over.
    return { ...response, body: checkedBody(response.body, check), resumable: false };
  };

  return {
    type: "go",
    name,
    prefix: config.prefix,
    resolve,
    fetch,
    forward: (request) => (sumdb === undefined ? undefined : supported(request, sumdb.name)),
    // The go command follows redirects (net/http); zips are the large files worth sending to the store.
    clientsFollowRedirects: (ref) => ref.upstream === "zip",
    close: async () => {
      await Promise.all([proxy.close(), database?.close()]);
    },
  };
}

/**
 * `sumdb/<name>/supported`: the go command asks it before it sends checksum database requests
 * through its GOPROXY; a 200 from the vault itself says the vault proxies that database.
 */
function supported(request: ForwardedRequest, name: string): ((signal: AbortSignal) => Promise<UpstreamAnswer>) | undefined {
  if ((request.method !== "GET" && request.method !== "HEAD") || request.path !== `sumdb/${name}/supported`) return undefined;
  return () => Promise.resolve({ status: 200, headers: { "content-type": "text/plain; charset=utf-8", "content-length": "0" }, url: "", body: Readable.from([]) });
}
