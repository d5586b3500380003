/**
 * The seam between the artifact cache and the backends, in both directions:
 * - a backend supplies an `UpstreamFetch` (one GET upstream, conditional when given validators)
 *   and the cache interprets what it answers;
 * - the cache hands routes (and backends that need another artifact first, such as npm's
 *   packument before a tarball) a `CachedArtifact` through an `ArtifactSource`.
 * Types only: `upstreams/` and `http/` depend on the cache through this file, never on
 * `cache/` itself.
 */
import type { Readable } from "node:stream";
import type { ByteRange } from "../byte-range.js";
import type { ArtifactRef, ExpectedDigest } from "./artifact-ref.js";

/** How a response was produced, sent as `X-Cache`. */
export type CacheStatus = "HIT" | "MISS" | "STALE" | "REVALIDATED";

/** Validators for a conditional upstream request. */
export interface Validators {
  readonly etag?: string | undefined;
  readonly lastModified?: string | undefined;
}

/**
 * Asks for the rest of a download that broke off: the bytes from `offset` to the end, of the
 * same file. `fillRequestHeaders` sends it as `Range: bytes=<offset>-` and `If-Range`.
 */
export interface ResumeRequest {
  readonly offset: number;
  /**
   * The first answer's strong ETag or (lacking any ETag) its Last-Modified date, sent as
   * `If-Range`; undefined when only the artifact's known digest can tell the same file.
   */
  readonly ifRange?: string | undefined;
}

/** What an upstream answered to a fill or a revalidation. */
export interface UpstreamAnswer {
  readonly status: number;
  /** Lowercase names. */
  readonly headers: Readonly<Record<string, string>>;
  /** The final URL after redirects (for logs and for resolving relative links). */
  readonly url: string;
  /** Must be consumed or destroyed. */
  readonly body: Readable;
  /**
   * A digest the body must have, learnt while fetching when the ref could not know it (npm's
   * `dist.integrity` from the packument, an APT pool file's SHA256 from a Packages index). It
   * adds to `ref.digest`, which wins when both are set.
   */
  readonly digest?: ExpectedDigest | undefined;
  /**
   * `false` when asking the fetch again with a `resume` cannot give the rest of this body: the
   * backend made the body itself (a rewritten index page or packument) or cannot pass a range
   * on (a plugin). Otherwise a 200 whose body breaks off may be resumed (when it has a length
   * and a validator or a known digest; see `core/cache/resume-plan.ts`).
   */
  readonly resumable?: boolean | undefined;
}

/**
 * The upstream side of a lookup, supplied by the backend that resolved the ref: one GET (or a
 * conditional GET when `validators` are given). It answers whatever the upstream said; the
 * cache interprets 200, 304, 404/410 and the rest.
 *
 * With `resume` (and no validators), the cache asks for the rest of a 200 whose body broke
 * off: the fetch passes it on upstream (`fillRequestHeaders` does) and answers the upstream's
 * reply as it came — a 206 whose body is the upstream's bytes from `resume.offset` on. A fetch
 * that cannot do that ignores `resume` (or marks its answers `resumable: false`): the cache
 * splices only a 206 whose `Content-Range` starts at the offset and ends at the known length,
 * so a plain 200 just fails the download as it would have without resuming.
 */
export type UpstreamFetch = (
  ref: ArtifactRef,
  validators: Validators | undefined,
  signal: AbortSignal,
  resume?: ResumeRequest,
) => Promise<UpstreamAnswer>;

/** What the cache hands a route: the artifact's description and a way to stream it. */
export interface CachedArtifact {
  readonly status: CacheStatus;
  /** Length when known (always on hits; on a miss when the upstream announced it). */
  readonly size: number | undefined;
  readonly contentType: string | undefined;
  /** Our strong ETag (hits), or undefined while the digest is not known yet. */
  readonly etag: string | undefined;
  readonly lastModified: Date | undefined;
  /** Headers for the client: those kept from upstream (`ArtifactRef.keepHeaders`), lowercase names. */
  readonly upstreamHeaders: Readonly<Record<string, string>>;
  /** The whole body when it is already in memory (small hits). */
  readonly contents: Buffer | undefined;
  /**
   * Tells the cache how many bytes of `contents` a route sent (counted as bytes from the cache,
   * as `body()` counts what it streams). Absent: nothing to count.
   */
  readonly sent?: ((bytes: number) => void) | undefined;
  /** Streams the artifact or a range of it (a range only when `size` is known). Call once. */
  body(range?: ByteRange): Readable;
  /** Lets go without reading (after a 304, a HEAD, or an error). */
  release(): void;
  /** A download still arriving (its body follows the upstream's pace). */
  readonly arriving?: boolean | undefined;
  /**
   * Stored immutable hits on a store that can sign URLs (S3): a short-lived URL the client can
   * fetch the same bytes from, for `redirect_hits`. Absent otherwise (fills, mutable entries,
   * stores without signed URLs). The caller still calls `release`.
   */
  readonly presign?: ((expiresInSeconds: number) => Promise<string>) | undefined;
}

/** Artifacts through the cache: a hit, a shared download, or a stale copy when upstream fails. */
export interface ArtifactSource {
  /**
   * Throws VaultError `not_found` for an upstream 404, `upstream_failed` / `upstream_timeout` /
   * `rate_limited` when the upstream could not answer and nothing stale stands in.
   */
  get(ref: ArtifactRef, fetch: UpstreamFetch): Promise<CachedArtifact>;
  /**
   * What the cache holds of `ref` without asking upstream (HTTP's `only-if-cached`): its download
   * in progress (whose last bytes come only once verified, and whose body errors if it fails),
   * else the stored copy however stale; undefined when neither. Not counted as a hit or a miss.
   */
  peek(ref: ArtifactRef): Promise<CachedArtifact | undefined>;
}
