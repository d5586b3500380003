/**
 * The vault's Prometheus metrics (`/metrics`), one `prom-client` registry per process.
 *
 * The rule: every count is of what THIS process did — the requests it answered, the hits it
 * served, the downloads it ran, the upstream exchanges it made — so that the processes of one
 * vault (its workers) add up: a scrape sums every worker's registry (`cluster/metrics-link.ts`),
 * and Prometheus sums replicas. Nothing here reads the coordinator's shared counters (those of
 * `cache stats`, already the sum of every worker and replica): summing them per worker would
 * count each hit N times. Both are fed by the same events (`cache/cache-events.ts`). The only
 * shared readings are the cache's size and entry count (the access index is the primary's, or
 * Redis'): every worker reports the same numbers, so they aggregate by `max`, not by sum.
 *
 * Hot paths (every request, every hit) count into plain tallies — a map lookup and an addition
 * — which the metrics copy at scrape time (`collect`); prom-client's own `inc` with labels costs
 * about 0.3 µs, several times per request.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client";
import type { CacheObserver, CacheResult } from "../cache/cache-events.js";
import { CACHE_RESULTS } from "../cache/cache-events.js";
import type { AccessUsage } from "../coordination/coordinator.js";
import { VERSION } from "../version.js";
import { UPSTREAM_ERROR_KINDS, type UpstreamErrorKind, type UpstreamObserver } from "./metered-backend.js";

/** Which limit refused a request (429): a token's budget, an address's, or failed logins from an address. */
export type RateLimit = "token" | "address" | "failed_logins";
const RATE_LIMITS: readonly RateLimit[] = ["token", "address", "failed_logins"];

/** What the HTTP edge tells the metrics. */
export interface HttpObserver {
  /**
   * One answer: its method, the route that took it (`/objects/*`, `/files/*`; `unmatched` when
   * none did), the backend it was for ("" when none) and its status.
   */
  request(method: string, route: string, backend: string, status: number): void;
  /** A request refused with 429 by `limit`. */
  rateLimited(limit: RateLimit): void;
}

/** The route label of a request no route took (a 404 of the router). */
export const UNMATCHED_ROUTE = "unmatched";

/** The cache as the size gauges read it. */
export interface MeasuredCache {
  readonly maxSize: number | undefined;
  readonly index: { readonly ready: boolean; usage(): Promise<AccessUsage> };
}

/** Upstream latency buckets, seconds: a hot CDN answers in milliseconds, a cold registry in seconds. */
const UPSTREAM_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

type ResultTally = Record<CacheResult, number> & { bytesFromCache: number };

export class VaultMetrics implements CacheObserver, HttpObserver, UpstreamObserver {
  readonly registry = new Registry();
  /** route → backend → method → status → answers. */
  readonly #requests = new Map<string, Map<string, Map<string, Map<number, number>>>>();
  /** backend → results and bytes served from the cache. */
  readonly #results = new Map<string, ResultTally>();
  #backends: readonly string[] = [];
  #cache: MeasuredCache | undefined;

  readonly #bytesFromUpstream: Counter<"backend">;
  readonly #fillsInProgress: Gauge<"backend">;
  readonly #fills: Counter<"backend" | "outcome">;
  readonly #evictions: Counter<"backend">;
  readonly #evictedBytes: Counter<"backend">;
  readonly #rateLimited: Counter<"limit">;
  readonly #upstreamDuration: Histogram<"backend">;
  readonly #upstreamErrors: Counter<"backend" | "kind">;

  constructor(options: { readonly processMetrics?: boolean } = {}) {
    const registers = [this.registry];
    const requests = this.#requests;
    const results = this.#results;
    new Counter({
      name: "artifact_vault_http_requests_total",
      help: "HTTP requests answered, by method, route, backend (proxy routes) and status",
      labelNames: ["method", "route", "backend", "status"],
      registers,
      collect(this: Counter<"method" | "route" | "backend" | "status">) {
        this.reset();
        for (const [route, byBackend] of requests) {
          for (const [backend, byMethod] of byBackend) {
            for (const [method, byStatus] of byMethod) {
              for (const [status, count] of byStatus) this.inc({ method, route, backend, status }, count);
            }
          }
        }
      },
    });
    new Counter({
      name: "artifact_vault_cache_requests_total",
      help: "Requests for artifacts by how the cache answered them: hit, miss, stale, revalidated, not_found, error",
      labelNames: ["backend", "result"],
      registers,
      collect(this: Counter<"backend" | "result">) {
        this.reset();
        for (const [backend, tally] of results) for (const result of CACHE_RESULTS) this.inc({ backend, result }, tally[result]);
      },
    });
    new Counter({
      name: "artifact_vault_cache_bytes_from_cache_total",
      help: "Bytes of stored artifacts sent to clients (hits, stale and revalidated answers)",
      labelNames: ["backend"],
      registers,
      collect(this: Counter<"backend">) {
        this.reset();
        for (const [backend, tally] of results) this.inc({ backend }, tally.bytesFromCache);
      },
    });
    this.#bytesFromUpstream = new Counter({
      name: "artifact_vault_cache_bytes_from_upstream_total",
      help: "Bytes downloaded from upstream by cache fills (counted when each download ends)",
      labelNames: ["backend"],
      registers,
    });
    this.#fillsInProgress = new Gauge({
      name: "artifact_vault_cache_fills_in_progress",
      help: "Downloads from upstream running now",
      labelNames: ["backend"],
      registers,
    });
    this.#fills = new Counter({
      name: "artifact_vault_cache_fills_total",
      help: "Downloads from upstream that ended, by outcome: cached (verified and stored) or failed",
      labelNames: ["backend", "outcome"],
      registers,
    });
    this.#evictions = new Counter({
      name: "artifact_vault_cache_evictions_total",
      help: "Cached artifacts removed to keep the cache within cache.max_size",
      labelNames: ["backend"],
      registers,
    });
    this.#evictedBytes = new Counter({
      name: "artifact_vault_cache_evicted_bytes_total",
      help: "Bytes of the cached artifacts removed to keep the cache within cache.max_size",
      labelNames: ["backend"],
      registers,
    });
    const usage = (): Promise<Map<string, { entries: number; bytes: number }>> => this.#usage();
    const maxSize = (): number | undefined => this.#cache?.maxSize;
    const indexReady = (): boolean => this.#cache?.index.ready === true;
    // Shared readings: the same in every worker, so `max` rather than a sum across them.
    const usageGauge = (name: string, help: string, reading: "bytes" | "entries"): void => {
      new Gauge({
        name,
        help: `${help}, per backend (the whole cache, as shared by the vault's workers and replicas)`,
        labelNames: ["backend"],
        registers,
        aggregator: "max",
        async collect(this: Gauge<"backend">) {
          const used = await usage();
          this.reset();
          for (const [backend, counts] of used) this.set({ backend }, counts[reading]);
        },
      });
    };
    usageGauge("artifact_vault_cache_size_bytes", "Bytes cached", "bytes");
    usageGauge("artifact_vault_cache_entries", "Artifacts cached", "entries");
    new Gauge({
      name: "artifact_vault_cache_max_size_bytes",
      help: "cache.max_size in bytes (absent when the cache is unbounded)",
      registers,
      aggregator: "max",
      collect(this: Gauge) {
        this.reset();
        const bound = maxSize();
        if (bound !== undefined) this.set(bound);
      },
    });
    new Gauge({
      name: "artifact_vault_cache_index_ready",
      help: "1 once the cache is indexed (sizes are whole, eviction is on), 0 while it is indexed at start",
      registers,
      aggregator: "min",
      collect(this: Gauge) {
        this.set(indexReady() ? 1 : 0);
      },
    });
    this.#rateLimited = new Counter({
      name: "artifact_vault_rate_limited_total",
      help: "Requests refused with 429, by the limit that refused them: token, address, failed_logins",
      labelNames: ["limit"],
      registers,
    });
    for (const limit of RATE_LIMITS) this.#rateLimited.inc({ limit }, 0);
    this.#upstreamDuration = new Histogram({
      name: "artifact_vault_upstream_request_duration_seconds",
      help: "Time from asking an upstream to its answer's headers (retries and redirects included), failures too",
      labelNames: ["backend"],
      buckets: UPSTREAM_BUCKETS,
      registers,
    });
    this.#upstreamErrors = new Counter({
      name: "artifact_vault_upstream_errors_total",
      help: "Upstream exchanges that failed, by kind: timeout, failed, broken_body, status_5xx, status_4xx, other",
      labelNames: ["backend", "kind"],
      registers,
    });
    const info = new Gauge({
      name: "artifact_vault_build_info",
      help: "The vault's version (always 1)",
      labelNames: ["version"],
      registers,
      aggregator: "max",
    });
    info.set({ version: VERSION }, 1);
    if (options.processMetrics !== false) collectDefaultMetrics({ register: this.registry });
  }

  /**
   * The cache whose size the gauges report, and the configured backends: each gets its series
   * at 0 from the start, so that `rate()` and `increase()` see its first events.
   */
  watch(cache: MeasuredCache, backends: readonly string[]): void {
    this.#cache = cache;
    this.#backends = backends;
    for (const backend of backends) {
      this.#tally(backend);
      this.#bytesFromUpstream.inc({ backend }, 0);
      this.#fillsInProgress.set({ backend }, 0);
      for (const outcome of ["cached", "failed"]) this.#fills.inc({ backend, outcome }, 0);
      this.#evictions.inc({ backend }, 0);
      this.#evictedBytes.inc({ backend }, 0);
      for (const kind of UPSTREAM_ERROR_KINDS) this.#upstreamErrors.inc({ backend, kind }, 0);
      this.#upstreamDuration.zero({ backend });
    }
  }

  // HttpObserver ---------------------------------------------------------------------------------

  request(method: string, route: string, backend: string, status: number): void {
    let byBackend = this.#requests.get(route);
    if (byBackend === undefined) this.#requests.set(route, (byBackend = new Map<string, Map<string, Map<number, number>>>()));
    let byMethod = byBackend.get(backend);
    if (byMethod === undefined) byBackend.set(backend, (byMethod = new Map<string, Map<number, number>>()));
    let byStatus = byMethod.get(method);
    if (byStatus === undefined) byMethod.set(method, (byStatus = new Map<number, number>()));
    byStatus.set(status, (byStatus.get(status) ?? 0) + 1);
  }

  rateLimited(limit: RateLimit): void {
    this.#rateLimited.inc({ limit });
  }

  // CacheObserver --------------------------------------------------------------------------------

  result(backend: string, result: CacheResult): void {
    this.#tally(backend)[result]++;
  }

  bytesFromCache(backend: string, bytes: number): void {
    this.#tally(backend).bytesFromCache += bytes;
  }

  fillStarted(backend: string): void {
    this.#fillsInProgress.inc({ backend });
  }

  fillEnded(backend: string, bytes: number, outcome: "cached" | "failed"): void {
    this.#fillsInProgress.dec({ backend });
    this.#fills.inc({ backend, outcome });
    this.#bytesFromUpstream.inc({ backend }, bytes);
  }

  evicted(backend: string, bytes: number): void {
    this.#evictions.inc({ backend });
    this.#evictedBytes.inc({ backend }, bytes);
  }

  // UpstreamObserver -----------------------------------------------------------------------------

  upstreamRequest(backend: string, seconds: number): void {
    this.#upstreamDuration.observe({ backend }, seconds);
  }

  upstreamError(backend: string, kind: UpstreamErrorKind): void {
    this.#upstreamErrors.inc({ backend, kind });
  }

  // ----------------------------------------------------------------------------------------------

  #tally(backend: string): ResultTally {
    let tally = this.#results.get(backend);
    if (tally === undefined) {
      tally = { hit: 0, miss: 0, stale: 0, revalidated: 0, not_found: 0, error: 0, bytesFromCache: 0 };
      this.#results.set(backend, tally);
    }
    return tally;
  }

  /** Entries and bytes per backend: every configured one (0 when empty), and any other cached. */
  async #usage(): Promise<Map<string, { entries: number; bytes: number }>> {
    const usage = new Map<string, { entries: number; bytes: number }>();
    for (const backend of this.#backends) usage.set(backend, { entries: 0, bytes: 0 });
    if (this.#cache === undefined) return usage;
    for (const [backend, used] of (await this.#cache.index.usage()).byBackend) usage.set(backend, { entries: used.entries, bytes: used.bytes });
    return usage;
  }
}

/** How `/metrics` gets its text: this process's registry, or every worker's summed. */
export interface MetricsExposition {
  render(): Promise<{ readonly contentType: string; readonly text: string }>;
}

/** A vault of one process: its own registry. */
export function localExposition(registry: Registry): MetricsExposition {
  return {
    render: async () => ({ contentType: registry.contentType, text: await registry.metrics() }),
  };
}
