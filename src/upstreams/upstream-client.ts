import type { UpstreamAnswer } from "../core/cache/artifact-source.js";
import type { UpstreamPathRules } from "./upstream-path.js";

/**
 * The single outbound HTTP edge (implemented with undici in `http-client.ts`). Every request to
 * an upstream goes through one of these, bound to ONE configured base URL: callers pass only a
 * path relative to it, so no client input can make the vault talk to another host.
 */
export interface UpstreamClientOptions {
  /** e.g. `https://archive.apache.org/dist` (a path prefix is kept). */
  readonly baseUrl: string;
  /** Seconds for connect, for response headers, and between body chunks. */
  readonly timeoutSeconds: number;
  /** Basic auth sent to the base URL's host only (never to a redirect target on another host). */
  readonly username?: string | undefined;
  readonly password?: string | undefined;
  /** Attempts before the first byte for connection errors and 502/503/504 (default 3). */
  readonly retries?: number | undefined;
  /** Redirects followed (default 5). */
  readonly maxRedirects?: number | undefined;
  /** What request paths may hold beyond the common rules (npm's scoped names). */
  readonly pathRules?: UpstreamPathRules | undefined;
}

/** Query parameters: by name, or as name/value pairs in order (a name may repeat). */
export type UpstreamQuery = Readonly<Record<string, string>> | readonly (readonly [string, string])[];

/** The encoded query string (without `?`) of `query`. */
export function encodeUpstreamQuery(query: UpstreamQuery): string {
  const pairs: [string, string][] = isPairs(query) ? query.map(([name, value]) => [name, value]) : Object.entries(query);
  return new URLSearchParams(pairs).toString();
}

function isPairs(query: UpstreamQuery): query is readonly (readonly [string, string])[] {
  return Array.isArray(query);
}

export interface UpstreamRequest {
  /** POST only for requests a backend forwards (npm's audit): never cached. */
  readonly method: "GET" | "HEAD" | "POST";
  /** Relative to the base URL; must already be normalised (see `normaliseUpstreamPath`). */
  readonly path: string;
  /** Query parameters, encoded here (never taken raw from a client); pairs when a name repeats (`expand=a&expand=b`). */
  readonly query?: UpstreamQuery | undefined;
  readonly headers?: Readonly<Record<string, string>> | undefined;
  /** A POST's body, whole (so that a retry can send it again). */
  readonly body?: Buffer | undefined;
  readonly signal?: AbortSignal | undefined;
}

/**
 * What the upstream answered: status, headers (lowercase names, repeated ones joined with ", "),
 * the final URL after redirects, and the body (empty for HEAD and statuses without one; must be
 * consumed or destroyed). The fill's view of it (`UpstreamAnswer`) may add a digest to verify.
 */
export type UpstreamResponse = Omit<UpstreamAnswer, "digest">;

export interface UpstreamClient {
  /**
   * Sends the request, following redirects and retrying before the first byte. Resolves with
   * whatever status the upstream answered (404s included); rejects with a VaultError of kind
   * `upstream_timeout` or `upstream_failed` when no answer came.
   */
  request(request: UpstreamRequest): Promise<UpstreamResponse>;
  close(): Promise<void>;
}
