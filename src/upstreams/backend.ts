import type { Logger } from "pino";
import type { ArtifactRef } from "../core/cache/artifact-ref.js";
import type { UpstreamFetch } from "../cache/artifact-cache.js";

/** A proxy request as a backend sees it: plain data, no HTTP framework types. */
export interface ProxyRequest {
  readonly method: "GET" | "HEAD";
  /** The raw path below the backend's prefix, still percent-encoded, without the query. */
  readonly path: string;
  /** The raw query string without `?` ("" when none). */
  readonly query: string;
  /** Lowercase header names. */
  readonly headers: Readonly<Record<string, string | undefined>>;
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

/**
 * One ecosystem's knowledge (generic files, PyPI, npm, OCI, APT): how a request names an
 * artifact, where upstream it comes from, and how to fetch it. It knows nothing about caching;
 * the `ArtifactCache` does the rest.
 */
export interface Backend {
  readonly type: string;
  readonly name: string;
  /** The URL prefix it owns, e.g. `/apache/` (starts and ends with `/`). */
  readonly prefix: string;
  /** How its routes render errors: plain text (default) or the OCI JSON of container registries. */
  readonly errorFormat?: "plain" | "oci";
  /** Pure: the artifact a request names, or where to go instead. Throws VaultError (`bad_request`, `not_found`, ...). */
  resolve(request: ProxyRequest): Resolution;
  /** The upstream side of a cache fill or revalidation for a ref this backend resolved. */
  readonly fetch: UpstreamFetch;
  close(): Promise<void>;
}

/** What every backend factory gets from the composition root. */
export interface BackendContext {
  readonly logger: Logger;
  /** `cache.metadata_ttl`: freshness of mutable artifacts unless a backend sets `ttl`. */
  readonly metadataTtlMs: number;
}

/** Makes a backend from its validated config (the output of its type's option schema). */
export type BackendFactory = (name: string, config: never, context: BackendContext) => Promise<Backend>;
