import type { ArtifactRef, ExpectedDigest, Freshness } from "../../core/cache/artifact-ref.js";
import type { UpstreamAnswer, UpstreamFetch } from "../../core/cache/artifact-source.js";
import { VaultError } from "../../core/errors.js";
import type { Backend, BackendContext, BackendMounts, ProxyRequest } from "../backend.js";
import { createUpstreamClient } from "../http-client.js";
import type { UpstreamResponse } from "../upstream-client.js";
import { normaliseUpstreamPath } from "../upstream-path.js";
import { cacheKeyFor, decodeOrKeep, fillRequestHeaders } from "../upstream-request.js";
import type { AptBackendConfig } from "./apt-config.js";
import { classifyAptPath, isImmutable, type AptPath, type PoolIndexKind } from "./apt-paths.js";
import { CachedIndexes } from "./cached-indexes.js";

/**
 * The `apt` backend: one Debian or Ubuntu mirror (the directory holding `dists/` and `pool/`)
 * under a prefix, `GET {prefix}{path}` being `{mirror_url}/{path}` upstream; and, with
 * `proxy_mode`, the same mirror for apt's proxy mode (`GET http://mirror-host/debian/...`).
 *
 * The vault never rewrites an APT file: InRelease, Release.gpg and every index pass through byte
 * for byte, so apt checks the archive's signatures itself. What the vault adds is freshness
 * (apt-paths.ts: `dists/` revalidated after `ttl`, `pool/` and `by-hash/` kept for good) and
 * verification before anything becomes a hit:
 * - `by-hash/SHA256|SHA512|SHA1/<hex>` against the digest in its path;
 * - a plain `dists/` index (`Packages.xz` by name) against the SHA256 its suite's cached
 *   Release lists, unless the upstream's copy is newer than that Release (the mirror published
 *   again since: the old list cannot judge it, apt will, against the new Release); a mismatch
 *   (a stale or broken copy upstream) is not cached, and the client's download is aborted;
 * - `.deb`, `.udeb`, `.dsc`, `.tar.*`, `.diff.gz` pool files against the SHA256 that a cached
 *   `Packages` or `Sources` index lists (cached-indexes.ts); one no cached index lists is
 *   stored unverified (logged at debug).
 *
 * Cache keys are `<name>/<path>` with the path percent-decoded: apt sends `libstdc%2b%2b6`, curl
 * `libstdc++6`, and both name one file. `resolve` notes the suites whose Release file is asked
 * for (a memo that tells the backend where to look for indexes; it changes no answer).
 */
export async function createAptBackend(name: string, config: AptBackendConfig, context: BackendContext): Promise<Backend> {
  const client = createUpstreamClient({
    baseUrl: config.mirror_url,
    timeoutSeconds: config.timeout,
    username: config.username,
    password: config.password,
    retries: config.retries,
  });
  const mutable: Freshness = { kind: "mutable", ttlMs: config.ttl ?? context.metadataTtlMs };
  const immutable: Freshness = { kind: "immutable" };
  const logger = context.logger.child({ backend: name });

  /** The ref of a path checked by `normaliseUpstreamPath` (still percent-encoded as the client sent it), and what it names. */
  const describe = (upstreamPath: string): { ref: ArtifactRef; names: AptPath } => {
    if (upstreamPath === "" || upstreamPath.endsWith("/")) {
      throw new VaultError("not_found", "directory listings are not proxied; ask for a file");
    }
    const path = decodeOrKeep(upstreamPath);
    const names = classifyAptPath(path);
    const ref: ArtifactRef = {
      backend: name,
      cacheKey: cacheKeyFor(name, path),
      upstreamPath,
      freshness: isImmutable(names) ? immutable : mutable,
      digest: names.kind === "by-hash" ? names.digest : undefined,
    };
    return { ref, names };
  };

  const indexes = new CachedIndexes({
    artifacts: context.artifacts,
    logger,
    refFor: (path) => {
      try {
        return describe(normaliseUpstreamPath(path)).ref;
      } catch {
        return undefined;
      }
    },
  });

  /** A pool file: its download and the digest the cached indexes give it, learnt side by side. */
  const fetchPoolFile = async (ref: ArtifactRef, listedIn: PoolIndexKind, request: Promise<UpstreamResponse>, signal: AbortSignal): Promise<UpstreamAnswer> => {
    const path = decodeOrKeep(ref.upstreamPath);
    const [answered, listed] = await Promise.allSettled([request, indexes.poolDigest(path, listedIn, signal)]);
    if (answered.status === "rejected") throw answered.reason;
    const response = answered.value;
    if (listed.status === "rejected") {
      response.body.destroy();
      throw listed.reason;
    }
    const known = listed.value;
    if (response.status !== 200) return response;
    if (known === undefined) {
      logger.debug({ key: ref.cacheKey }, "pool file listed in no index the vault has cached: stored unverified");
      return response;
    }
    const announced = response.headers["content-length"];
    if (announced !== undefined && response.headers["content-encoding"] === undefined && Number(announced) !== known.size) {
      response.body.destroy();
      throw new VaultError("upstream_failed", `upstream announced ${announced} bytes for ${path}; its index lists ${known.size}`);
    }
    return withDigest(response, { algorithm: "sha256", hex: known.sha256 });
  };

  /** A `dists/` index file by name: checked against its suite's cached Release when that lists it. */
  const fetchIndexFile = async (path: string, response: UpstreamResponse): Promise<UpstreamAnswer> => {
    let digest: ExpectedDigest | undefined;
    try {
      digest = await indexes.indexDigest(path, response.headers["last-modified"]);
    } catch (error) {
      logger.warn({ err: error, path }, "could not read the suite's cached Release; the index is stored unverified");
    }
    return digest === undefined ? response : withDigest(response, digest);
  };

  const fetch: UpstreamFetch = async (ref, validators, signal, resume) => {
    const path = decodeOrKeep(ref.upstreamPath);
    const names = classifyAptPath(path);
    const request = client.request({ method: "GET", path: ref.upstreamPath, signal, headers: fillRequestHeaders(ref, validators, resume) });
    // The rest of a download that broke off goes back as it came: the digest learnt with its start stands.
    if (resume !== undefined) return request;
    if (names.kind === "pool" && names.listedIn !== undefined) return fetchPoolFile(ref, names.listedIn, request, signal);
    const response = await request;
    if (response.status !== 200) return response;
    if (path.startsWith("dists/")) indexes.noteFetched(ref.cacheKey);
    return names.kind === "index" ? fetchIndexFile(path, response) : response;
  };

  return {
    type: "apt",
    name,
    prefix: config.prefix,
    mounts: proxyMounts(config),
    resolve(request: ProxyRequest): ArtifactRef {
      const { ref, names } = describe(normaliseUpstreamPath(request.path));
      if (names.kind === "release") indexes.noteSuite(names.suite);
      return ref;
    },
    fetch,
    // apt follows redirects (as it did for httpredir.debian.org); in proxy mode the route never redirects.
    clientsFollowRedirects: () => true,
    close: async () => {
      indexes.close();
      await client.close();
    },
  };
}

/**
 * apt's proxy mode for this mirror: requests for URLs under `mirror_url`; for an https mirror
 * also under its http twin, since apt sends only `http://` sources through an HTTP proxy (the
 * vault still fetches over https).
 */
function proxyMounts(config: AptBackendConfig): BackendMounts | undefined {
  if (!config.proxy_mode) return undefined;
  const mirror = new URL(config.mirror_url);
  const bases = [mirror];
  if (mirror.protocol === "https:" && mirror.port === "") {
    const plain = new URL(mirror.href);
    plain.protocol = "http:";
    bases.push(plain);
  }
  return { forwardProxy: bases };
}

function withDigest(response: UpstreamResponse, digest: ExpectedDigest): UpstreamAnswer {
  return { status: response.status, headers: response.headers, url: response.url, body: response.body, digest };
}

/** `type: apt`: a Debian or Ubuntu mirror. Errors are plain text: apt prints the status line. */
