/**
 * What the artifact cache tells about its work, as it happens: how each request was answered,
 * the bytes it served and fetched, the downloads it ran and the entries it evicted. The cache
 * counts nothing itself; it tells one `CacheObserver`, and each reader of those facts is an
 * observer: `CoordinatorCounts` keeps the counters `cache stats` reads (the coordinator's, shared
 * by the workers and replicas), the metrics module keeps Prometheus' (`metrics/vault-metrics.ts`).
 *
 * The rule for observers: they are called synchronously on the request's path — a hit calls one
 * or two of them — so they only count: no I/O, no throwing, and nothing allocated per call.
 */
import type { Coordinator } from "../coordination/coordinator.js";

/**
 * How the cache answered one request for an artifact: from a stored copy (`hit`; `stale` when the
 * upstream failed and an old copy stood in; `revalidated` after a 304), from a download (`miss`),
 * or not at all (`not_found`: the upstream says there is no such artifact; `error`: it could not
 * be had — the upstream failed with nothing cached, the store failed, ...).
 */
export type CacheResult = "hit" | "miss" | "stale" | "revalidated" | "not_found" | "error";

export const CACHE_RESULTS: readonly CacheResult[] = ["hit", "miss", "stale", "revalidated", "not_found", "error"];

export interface CacheObserver {
  /** One request answered (or failed) by the cache, for an artifact of `backend`. */
  result(backend: string, result: CacheResult): void;
  /** Bytes of a stored copy handed to a client: a hit's body, or the range of it asked for. */
  bytesFromCache(backend: string, bytes: number): void;
  /** A download from upstream started in this process (not one it follows or relays). */
  fillStarted(backend: string): void;
  /** That download ended: `bytes` arrived from upstream, and were stored (`cached`) or not. */
  fillEnded(backend: string, bytes: number, outcome: "cached" | "failed"): void;
  /** An entry of `bytes` was removed to keep the cache within `max_size`. */
  evicted(backend: string, bytes: number): void;
}

/** Tells `first`, then `second`, everything. */
export function observeBoth(first: CacheObserver, second: CacheObserver): CacheObserver {
  return {
    result(backend, result) {
      first.result(backend, result);
      second.result(backend, result);
    },
    bytesFromCache(backend, bytes) {
      first.bytesFromCache(backend, bytes);
      second.bytesFromCache(backend, bytes);
    },
    fillStarted(backend) {
      first.fillStarted(backend);
      second.fillStarted(backend);
    },
    fillEnded(backend, bytes, outcome) {
      first.fillEnded(backend, bytes, outcome);
      second.fillEnded(backend, bytes, outcome);
    },
    evicted(backend, bytes) {
      first.evicted(backend, bytes);
      second.evicted(backend, bytes);
    },
  };
}

/**
 * The cache statistics of `cache stats` (`Coordinator.count`): vault-wide totals without a
 * backend, shared by every worker and replica. A request that found nothing (`not_found`,
 * `error`) has no counter there.
 */
export class CoordinatorCounts implements CacheObserver {
  constructor(private readonly coordinator: Pick<Coordinator, "count">) {}

  result(_backend: string, result: CacheResult): void {
    switch (result) {
      case "hit":
        this.coordinator.count("hits");
        return;
      case "miss":
        this.coordinator.count("misses");
        return;
      case "stale":
        this.coordinator.count("stale");
        return;
      case "revalidated":
        this.coordinator.count("revalidated");
        return;
      default:
        return;
    }
  }

  bytesFromCache(_backend: string, bytes: number): void {
    this.coordinator.count("bytesFromCache", bytes);
  }

  fillStarted(): void {}

  fillEnded(_backend: string, bytes: number): void {
    this.coordinator.count("bytesFromUpstream", bytes);
  }

  evicted(): void {
    this.coordinator.count("evictions");
  }
}
