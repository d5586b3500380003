import type { Freshness } from "./artifact-ref.js";

export type FreshnessDecision = "fresh" | "stale";

/**
 * Whether a cached copy can be served as it is. Immutable artifacts are always fresh; mutable
 * ones for `ttlMs` after they were last fetched or revalidated. Clients' `Cache-Control` does
 * not enter into it: the vault's TTL is what protects the upstream (pip sends `max-age=0` on
 * every index request).
 */
export function decideFreshness(freshness: Freshness, validatedAt: number, now: number): FreshnessDecision {
  if (freshness.kind === "immutable") return "fresh";
  return now - validatedAt < freshness.ttlMs ? "fresh" : "stale";
}
