import type { FastifyRequest } from "fastify";
import type { ArtifactRef } from "../core/cache/artifact-ref.js";
import type { CachedArtifact } from "../core/cache/artifact-source.js";
import type { Backend } from "../upstreams/backend.js";

/**
 * `cache.redirect_hits`: a cache hit on a large immutable artifact stored on S3 is answered
 * `307 Temporary Redirect` to a short-lived presigned URL of its object, so the bytes flow from
 * the bucket and not through the vault (the Docker registry's `redirect` storage middleware).
 */
export interface RedirectHits {
  /** Hits smaller than this are served by the vault: a redirect costs the client a round trip. */
  readonly minSize: number;
  /** How long a presigned URL works (S3 checks it when the download starts, not while it runs). */
  readonly expirySeconds: number;
}

/** The `cache` config keys of `redirect_hits` (as `src/config/schema.ts` gives them). */
export interface RedirectHitsConfig {
  readonly redirect_hits: boolean;
  readonly redirect_min_size: number;
  readonly redirect_expiry_ms: number;
}

/**
 * The proxy routes' redirect settings, from the `cache` section and the cache's store: undefined
 * when `redirect_hits` is off, and also — with a warning, once at start — when the store cannot
 * sign URLs (memory, filesystem), where it would have no effect.
 */
export function redirectHitsSettings(
  config: RedirectHitsConfig,
  store: { readonly kind: string; readonly presign?: unknown },
  warn: (message: string) => void,
): RedirectHits | undefined {
  if (!config.redirect_hits) return undefined;
  if (store.presign === undefined) {
    warn(`cache.redirect_hits has no effect: the ${store.kind} store cannot sign URLs (only s3 can); every hit is served by the vault`);
    return undefined;
  }
  return { minSize: config.redirect_min_size, expirySeconds: Math.max(1, Math.round(config.redirect_expiry_ms / 1000)) };
}

/**
 * Request headers the vault answers itself. S3 would judge them against its own ETag (MD5-based,
 * not the vault's `"<sha256>"`) and its own Last-Modified: a revalidation that is a 304 here would
 * download again, and a resumed download's `If-Range` would get the whole object.
 */
const CONDITIONAL_HEADERS = ["if-none-match", "if-modified-since", "if-range", "if-match", "if-unmodified-since"] as const;

/**
 * Where to send this client instead of serving `artifact`: a presigned URL of its stored object,
 * or undefined to serve it as usual. Redirected: a GET (not a HEAD, answered by the vault with
 * the same headers as always) of a stored immutable hit at least `minSize` long, without
 * conditional headers, from a client that can follow the redirect — one of a backend whose
 * clients do, and not a request through apt's proxy mode (apt would send the bucket's URL to the
 * vault as a proxy request, which it refuses). A `Range` goes along: S3 answers it.
 * Never throws: a URL that cannot be signed is logged and the hit is served by the vault.
 */
export async function redirectLocation(
  request: FastifyRequest,
  backend: Backend,
  ref: ArtifactRef,
  artifact: CachedArtifact,
  settings: RedirectHits | undefined,
): Promise<string | undefined> {
  if (settings === undefined || request.method !== "GET") return undefined;
  const { presign, size } = artifact;
  if (presign === undefined || artifact.status !== "HIT" || size === undefined || size < settings.minSize) return undefined;
  if (isForwardProxied(request) || CONDITIONAL_HEADERS.some((name) => request.headers[name] !== undefined)) return undefined;
  if (backend.clientsFollowRedirects?.(ref) !== true) return undefined;
  try {
    return await presign(settings.expirySeconds);
  } catch (error) {
    request.log.warn({ err: error, key: ref.cacheKey }, "could not sign a URL for a hit: served by the vault");
    return undefined;
  }
}

/** apt's proxy mode: an absolute-form request (`GET http://mirror/...`), mapped onto a prefix by `rewriteUrl`. */
function isForwardProxied(request: FastifyRequest): boolean {
  return !request.originalUrl.startsWith("/");
}
