import type { Logger } from "pino";
import type { ArtifactRef } from "../core/cache/artifact-ref.js";
import type { ArtifactSource, CachedArtifact, UpstreamAnswer, UpstreamFetch } from "../core/cache/artifact-source.js";

/** A proxy request as a backend sees it: plain data, no HTTP framework types. */
export interface ProxyRequest {
  readonly method: string;
  /** The raw path below the backend's prefix, still percent-encoded, without the query. */
  readonly path: string;
  /** The raw query string without `?` ("" when none). */
  readonly query: string;
  /** Lowercase header names. */
  readonly headers: Readonly<Record<string, string | undefined>>;
  /**
   * The vault's own URL for the backend's prefix as this client reached it (`http://vault:8080/npm`,
   * no trailing slash): from `Host` and `X-Forwarded-Proto`/`-Host`. For documents that must hold
   * absolute links back to the vault; never stored in the cache, since each client may name the
   * vault its own way.
   */
  readonly baseUrl: string;
}

/** A request a backend forwards upstream without caching (npm's audit and search). */
export interface ForwardedRequest extends ProxyRequest {
  /** The request body, already read (bounded); undefined for GET and HEAD. */
  readonly body: Buffer | undefined;
}

/**
 * Sends the client to another URL of the same backend (a project name that is not in its
 * normal form, a missing trailing slash). `location` is relative to the request's URL, so it
 * stays right behind any host name or path prefix the vault is reached by.
 */
export interface ProxyRedirect {
  readonly redirect: string;
  readonly status: 301 | 302 | 307 | 308;
}

/** What a backend makes of a request: the artifact to serve, or a redirect. */
export type Resolution = ArtifactRef | ProxyRedirect;

export function isRedirect(resolution: Resolution): resolution is ProxyRedirect {
  return "redirect" in resolution;
}

/** Routes a backend answers besides `{prefix}*`. */
export interface BackendMounts {
  /** The OCI distribution API at `/v2/`, where container clients look for a registry. */
  readonly registryApi?: boolean | undefined;
  /**
   * Forward-proxy requests (absolute-form, `GET http://mirror/debian/...`) for URLs under these
   * bases, as apt sends them with `Acquire::http::Proxy`. Requests for any other URL are refused
   * without contacting it.
   */
  readonly forwardProxy?: readonly URL[] | undefined;
}

/**
 * One ecosystem's knowledge (generic files, PyPI, npm, OCI, APT): how a request names an
 * artifact, where upstream it comes from, and how to fetch it. It knows nothing about caching;
 * the `ArtifactCache` does the rest. How its errors render is its type's business
 * (`BackendType.errors`).
 */
export interface Backend {
  /** Its type's canonical name (`npm`, `dockerhub`, `custom`, ...). */
  readonly type: string;
  readonly name: string;
  /** The URL prefix it owns, e.g. `/apache/` (starts and ends with `/`). */
  readonly prefix: string;
  readonly mounts?: BackendMounts | undefined;
  /** Pure: the artifact a request names, or where to go instead. Throws VaultError (`bad_request`, `not_found`, ...). */
  resolve(request: ProxyRequest): Resolution;
  /** The upstream side of a cache fill or revalidation for a ref this backend resolved. */
  readonly fetch: UpstreamFetch;
  /**
   * Optional: what this client gets of a cached artifact, when that depends on the request —
   * headers a protocol wants on every answer, or a document whose links must name the vault as
   * this client reached it (`request.baseUrl`). Pure but for wrapping the body; the artifact it
   * returns owns `artifact`'s body and release.
   */
  present?(artifact: CachedArtifact, ref: ArtifactRef, request: ProxyRequest): CachedArtifact;
  /**
   * Optional: requests answered by the upstream directly, never cached (npm's `audit` and
   * `search`), for any method: the exchange to run, given a signal that aborts when the client
   * goes. Undefined when the request is not one of them (decided from the request alone, cheaply:
   * every proxy request asks); the route then resolves it (GET, HEAD) or refuses it (405).
   */
  forward?(request: ForwardedRequest): ((signal: AbortSignal) => Promise<UpstreamAnswer>) | undefined;
  /**
   * Optional: whether this backend's clients follow a redirect for `ref` to another host and need
   * nothing of the answer but its bytes, so that with `cache.redirect_hits` a stored hit may be
   * answered `307` to the store's presigned URL. True only where every client of the ecosystem
   * does (pip/uv/poetry, npm/pnpm/yarn, container clients for blobs, apt); absent means never —
   * the generic `http` backend's clients may be a plain `curl` without `-L`, and a plugin's
   * clients are unknown.
   */
  clientsFollowRedirects?(ref: ArtifactRef): boolean;
  close(): Promise<void>;
}

/** What every backend factory gets from the composition root. */
export interface BackendContext {
  readonly logger: Logger;
  /** `cache.metadata_ttl`: freshness of mutable artifacts unless a backend sets `ttl`. */
  readonly metadataTtlMs: number;
  /**
   * Other artifacts through the cache, for a backend that must read one to serve another (npm
   * reads a package's packument for the integrity of a tarball).
   */
  readonly artifacts: ArtifactSource;
}
