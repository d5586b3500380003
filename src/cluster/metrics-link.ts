/**
 * `/metrics` with `workers: N`: a scrape reaches one worker, and must show the whole vault. The
 * worker asks the primary (`METRICS_OPS.gather`); the primary asks every live worker for its
 * registry (`METRICS_REQUEST_EVENT`, answered with `getMetricsAsJSON()`), adds its own (the
 * primary's process metrics), sums them with prom-client's `AggregatorRegistry.aggregate` and
 * answers the text. A worker that exits meanwhile counts as answered (what it had counted stays
 * in the totals); one that does not answer within `GATHER_TIMEOUT_MS` fails the scrape (503)
 * rather than show totals that drop, which Prometheus would take for counter resets.
 *
 * Summing is right because each worker counts only what it did itself (`metrics/vault-metrics.ts`);
 * the cache's shared size gauges aggregate by `max`.
 */
import { AggregatorRegistry, collectDefaultMetrics, prometheusContentType, Registry } from "prom-client";
import { VaultError } from "../core/errors.js";
import type { MetricsExposition } from "../metrics/vault-metrics.js";
import { ANSWER_OP, type ClusterHub } from "./hub.js";
import type { EventLink } from "./store-link.js";

export const METRICS_OPS = { gather: "metrics.gather" } as const;
/** The event the primary sends each worker for its registry. */
export const METRICS_REQUEST_EVENT = "metrics.request";
/** How long the primary waits for every worker's registry. */
export const GATHER_TIMEOUT_MS = 5_000;

/** A worker's answer: its registry as JSON, or why it has none. */
type WorkerAnswer = { readonly metrics: object[] } | { readonly error: string };

/**
 * The worker's side, set up as soon as its link exists: it answers the primary's requests for
 * its registry — with nothing while the worker is still starting (it has counted nothing yet),
 * so that a scrape during a worker's replacement does not wait for it — and `/metrics` asks
 * for everyone's.
 */
export class WorkerMetrics {
  #registry: Registry | undefined;

  constructor(private readonly link: EventLink) {
    link.onEvent(METRICS_REQUEST_EVENT, (data) => {
      const { ask } = data as { readonly ask: number };
      const answer = (value: WorkerAnswer) => link.post(ANSWER_OP, ask, value);
      if (this.#registry === undefined) {
        answer({ metrics: [] });
        return;
      }
      this.#registry.getMetricsAsJSON().then(
        (metrics) => answer({ metrics }),
        (error: unknown) => answer({ error: error instanceof Error ? error.message : String(error) }),
      );
    });
  }

  /** The worker's registry, from now on; what `/metrics` renders with. */
  exposition(registry: Registry): MetricsExposition {
    this.#registry = registry;
    const link = this.link;
    return {
      render: async () => {
        let text: unknown;
        try {
          text = await link.call(METRICS_OPS.gather);
        } catch (error) {
          throw new VaultError("unavailable", `the workers' metrics could not be gathered: ${(error as Error).message}`, { cause: error });
        }
        return { contentType: prometheusContentType, text: String(text) };
      },
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
  hub.on(METRICS_OPS.gather, async () => {
    if (own === undefined) {
      own = new Registry();
      collectDefaultMetrics({ register: own });
    }
    const answers = (await hub.ask(METRICS_REQUEST_EVENT, {}, GATHER_TIMEOUT_MS)) as Map<number, WorkerAnswer>;
    const registries: object[][] = [await own.getMetricsAsJSON()];
    for (const [worker, answer] of answers) {
      if ("error" in answer) throw new Error(`worker ${worker}'s metrics failed: ${answer.error}`);
      lastSeen.set(worker, answer.metrics);
      registries.push(answer.metrics);
    }
    if (retired.length > 1) retired = [await AggregatorRegistry.aggregate(retired).getMetricsAsJSON()];
    return AggregatorRegistry.aggregate([...registries, ...retired]).metrics();
  });
}

/** The metric types whose totals must never drop. */
const MONOTONIC: ReadonlySet<unknown> = new Set(["counter", "histogram"]);
