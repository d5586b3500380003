/**
 * `/metrics` with `workers: N`: a scrape reaches one worker, and must show the whole vault. It is
 * a question put to every worker (`gather.ts`): each answers with its registry
 * (`getMetricsAsJSON()`); the primary adds its own (its process metrics), sums them with
 * prom-client's `AggregatorRegistry.aggregate` and answers the text. A worker that exits meanwhile
 * counts as answered (what it had counted stays in the totals); one that does not answer in time
 * fails the scrape (503) rather than show totals that drop, which Prometheus would take for
 * counter resets.
 *
 * Summing is right because each worker counts only what it did itself (`metrics/vault-metrics.ts`);
 * the cache's shared size gauges aggregate by `max`.
 */
import { AggregatorRegistry, collectDefaultMetrics, prometheusContentType, Registry } from "prom-client";
import type { MetricsExposition } from "../metrics/vault-metrics.js";
import { answerGather, askGather, serveGather, type Gather } from "./gather.js";
import type { ClusterHub } from "./hub.js";
import type { EventLink } from "./store-link.js";

/** The event the primary sends each worker for its registry. */
export const METRICS_REQUEST_EVENT = "metrics.request";
const METRICS: Gather = { op: "metrics.gather", event: METRICS_REQUEST_EVENT, what: "the workers' metrics" };

/**
 * The worker's side, set up as soon as its link exists: it answers the primary's requests for
 * its registry — with nothing while the worker is still starting (it has counted nothing yet) —
 * and `/metrics` asks for everyone's.
 */
export class WorkerMetrics {
  #registry: Registry | undefined;

  constructor(private readonly link: EventLink) {
    answerGather(link, METRICS, () => this.#registry?.getMetricsAsJSON() ?? []);
  }

  /** The worker's registry, from now on; what `/metrics` renders with. */
  exposition(registry: Registry): MetricsExposition {
    this.#registry = registry;
    const link = this.link;
    return {
      render: async () => ({ contentType: prometheusContentType, text: String(await askGather(link, METRICS)) }),
    };
  }
}

/**
 * The primary's side: gathers every worker's registry and its own, summed, for whichever worker
 * asks. The counters (and histograms) a worker had when it last answered outlive it: a worker
 * that dies and is replaced would otherwise take its part out of every total, a drop that
 * Prometheus reads as a reset of the whole vault's counters (and `rate()` as a burst). What it
 * counted after its last answer is lost: at most what happened since the last scrape.
 */
export function serveClusterMetrics(hub: ClusterHub): void {
  // Its own process metrics (memory, CPU of the primary), made at the first scrape.
  let own: Registry | undefined;
  /** Each live worker's last answer; what exited workers had counted. */
  const lastSeen = new Map<number, object[]>();
  let retired: object[][] = [];
  hub.onGone((worker) => {
    const last = lastSeen.get(worker);
    lastSeen.delete(worker);
    if (last !== undefined) retired.push(last.filter((metric) => MONOTONIC.has((metric as { type?: unknown }).type)));
  });
  serveGather(hub, METRICS, async (answers) => {
    if (own === undefined) {
      own = new Registry();
      collectDefaultMetrics({ register: own });
    }
    const registries: object[][] = [await own.getMetricsAsJSON()];
    for (const [worker, value] of answers) {
      const metrics = value as object[];
      lastSeen.set(worker, metrics);
      registries.push(metrics);
    }
    if (retired.length > 1) retired = [await AggregatorRegistry.aggregate(retired).getMetricsAsJSON()];
    return AggregatorRegistry.aggregate([...registries, ...retired]).metrics();
  });
}

/** The metric types whose totals must never drop. */
const MONOTONIC: ReadonlySet<unknown> = new Set(["counter", "histogram"]);
