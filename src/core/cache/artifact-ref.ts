/**
 * What a proxy request names, decided by a backend without I/O: where it lives in the cache,
 * where it comes from upstream, how long it stays fresh, and how to verify it.
 */

/** Immutable artifacts (versioned or content-addressed) never change once fetched. */
export type Freshness =
  | { readonly kind: "immutable" }
  /** Mutable metadata (index pages, tags, Release files) is revalidated after `ttlMs`. */
  | { readonly kind: "mutable"; readonly ttlMs: number };

export type DigestAlgorithm = "sha256" | "sha512" | "sha1";

/** A digest the artifact's bytes must have (from an OCI digest, a PyPI hash, npm integrity...). */
export interface ExpectedDigest {
  readonly algorithm: DigestAlgorithm;
  /** Lowercase hex. */
  readonly hex: string;
}

export interface ArtifactRef {
  /** The backend that resolved it (its configured name). */
  readonly backend: string;
  /** The storage key the artifact is cached under (valid per `validateKey`). */
  readonly cacheKey: string;
  /**
   * The path to request upstream, relative to the backend's base URL: already normalised and
   * checked (no `..`, no encoded slashes, no scheme or host), so joining it to the base URL can
   * never leave the configured host.
   */
  readonly upstreamPath: string;
  readonly freshness: Freshness;
  readonly digest?: ExpectedDigest | undefined;
  /** The length the artifact must have, when the backend knows it beforehand. */
  readonly size?: number | undefined;
  /** Request headers to send upstream (e.g. `accept` for content negotiation). */
  readonly upstreamHeaders?: Readonly<Record<string, string>> | undefined;
  /**
   * Which of the backend's upstreams `upstreamPath` is relative to, for backends with more than
   * one (PyPI's index and file hosts); the backend's own vocabulary, opaque to the cache.
   */
  readonly upstream?: string | undefined;
  /**
   * Upstream response headers (lowercase names) kept with the artifact and given back to the
   * client on every answer, e.g. `docker-content-digest` for a manifest fetched by tag.
   */
  readonly keepHeaders?: readonly string[] | undefined;
  /**
   * Stored entries that may stand in for this artifact, served `STALE`, when the upstream fails
   * and nothing is cached under `cacheKey` — e.g. a registry tag cached for another `Accept`, or
   * a manifest asked for by digest that is cached under its tag. Keys under `prefix` are
   * offered to `accepts` in order; the first it takes is served.
   */
  readonly staleFallback?: StaleFallback | undefined;
  /** Headers the client gets with the artifact whatever the cache status (e.g. `Vary: Accept`). */
  readonly responseHeaders?: Readonly<Record<string, string>> | undefined;
  /**
   * A document people read in a browser (PyPI's simple index pages): served inline even when it
   * is HTML, under the same sandbox CSP as every artifact. Other HTML is served as a download.
   */
  readonly browsable?: boolean | undefined;
  /**
   * The id of the request that asked for it, when a route did: the cache's log lines about it (a
   * stale copy served, the download it started) carry it as `reqId`, as the request's own do.
   */
  readonly requestId?: string | undefined;
}

export interface StaleFallback {
  readonly prefix: string;
  /**
   * The entries `accepts` takes are byte for byte the artifact (it checks the digest): one is
   * then served as a HIT before asking upstream at all, not only when the upstream fails. They
   * are looked up by `ref.digest` (SHA-256) in the cache's index of mutable entries' digests —
   * one read, never a listing; other fallbacks (a few variants under a short prefix) list `prefix`.
   */
  readonly exact?: boolean;
  accepts(entry: { readonly contentType: string | undefined; readonly sha256: string }): boolean;
}

/** Our preference among the algorithms an SRI string may list. */
const SRI_STRENGTH: readonly DigestAlgorithm[] = ["sha512", "sha256", "sha1"];

/**
 * Parses an SRI string (`sha512-<base64>`, npm's `dist.integrity`) into an expected digest: the
 * strongest of the hashes it lists that we can check; undefined when none.
 */
export function digestFromIntegrity(integrity: string): ExpectedDigest | undefined {
  const found = new Map<DigestAlgorithm, string>();
  for (const token of integrity.trim().split(/\s+/)) {
    const match = /^(sha256|sha512|sha1)-([A-Za-z0-9+/]+={0,2})(?:\?.*)?$/.exec(token);
    if (match === null) continue;
    const algorithm = SRI_STRENGTH.find((name) => name === match[1]);
    if (algorithm !== undefined && !found.has(algorithm)) found.set(algorithm, Buffer.from(match[2] ?? "", "base64").toString("hex"));
  }
  for (const algorithm of SRI_STRENGTH) {
    const hex = found.get(algorithm);
    if (hex !== undefined) return { algorithm, hex };
  }
  return undefined;
}
