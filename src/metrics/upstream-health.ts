/**
 * How each backend's upstream is doing, for `/admin/backends` and the web UI: exchanges and their
 * failures by kind, and whether the latest exchange failed. The rule: counted in the
 * coordinator's per-backend tallies (`Coordinator.tally`), so that with `workers: N` (and across
 * replicas sharing a Redis) any process answers for the whole vault, like `cache stats` — unlike
 * the Prometheus metrics, which count per process and are summed by the scrape.
 *
 * Fed by the same events as the metrics (`UpstreamObserver`, from `meteredBackend`): an exchange
 * is told first (`upstreamRequest`), then at once its failure if it failed, and a body that
 * breaks off later is told as a failure when it does. So "the latest exchange failed" is exactly
 * "the last failure is no older than the last exchange".
 */
import type { Coordinator, Tallies } from "../coordination/coordinator.js";
import { UPSTREAM_ERROR_KINDS, type UpstreamErrorKind, type UpstreamObserver } from "./metered-backend.js";

/** The tally names, made once (observers allocate nothing per call). */
const EXCHANGES = "exchanges";
const LAST_EXCHANGE_AT = "last_exchange_at";
const LAST_ERROR_AT = "last_error_at";
const ERRORS: Readonly<Record<UpstreamErrorKind, string>> = Object.fromEntries(UPSTREAM_ERROR_KINDS.map((kind) => [kind, `errors:${kind}`])) as Record<UpstreamErrorKind, string>;

/** Counts every upstream exchange and failure into the coordinator's tallies. */
export class UpstreamTallies implements UpstreamObserver {
  constructor(
    private readonly coordinator: Pick<Coordinator, "tally">,
    private readonly clock: () => number = Date.now,
  ) {}

  upstreamRequest(backend: string): void {
    this.coordinator.tally(backend, EXCHANGES, 1, "add");
    this.coordinator.tally(backend, LAST_EXCHANGE_AT, this.clock(), "latest");
  }

  upstreamError(backend: string, kind: UpstreamErrorKind): void {
    this.coordinator.tally(backend, ERRORS[kind], 1, "add");
    this.coordinator.tally(backend, LAST_ERROR_AT, this.clock(), "latest");
  }
}

/** Tells `first`, then `second`, everything. */
export function observeUpstreamBoth(first: UpstreamObserver, second: UpstreamObserver): UpstreamObserver {
  return {
    upstreamRequest(backend, seconds) {
      first.upstreamRequest(backend, seconds);
      second.upstreamRequest(backend, seconds);
    },
    upstreamError(backend, kind) {
      first.upstreamError(backend, kind);
      second.upstreamError(backend, kind);
    },
  };
}

/**
 * `unknown`: no exchange since the vault started (tallies live in memory, or in Redis); `ok`: the
 * latest exchange got an answer (404 included: it is an answer); `failing`: it failed.
 */
export type UpstreamState = "unknown" | "ok" | "failing";

export interface UpstreamHealth {
  readonly state: UpstreamState;
  readonly exchanges: number;
  /** Failures of every kind. */
  readonly errors: number;
  /** Failures by kind (`timeout`, `failed`, `broken_body`, `status_5xx`, `status_4xx`, `other`), every kind present. */
  readonly errorsByKind: Readonly<Record<UpstreamErrorKind, number>>;
  readonly lastExchangeAt: Date | undefined;
  readonly lastErrorAt: Date | undefined;
}

/** One backend's health from the tallies (pure). */
export function upstreamHealth(tallies: Tallies, backend: string): UpstreamHealth {
  const figures = tallies.get(backend) ?? {};
  const errorsByKind = Object.fromEntries(UPSTREAM_ERROR_KINDS.map((kind) => [kind, figures[ERRORS[kind]] ?? 0])) as Record<UpstreamErrorKind, number>;
  const lastExchange = figures[LAST_EXCHANGE_AT];
  const lastError = figures[LAST_ERROR_AT];
  const state: UpstreamState = lastError !== undefined && (lastExchange === undefined || lastError >= lastExchange) ? "failing" : lastExchange === undefined ? "unknown" : "ok";
  return {
    state,
    exchanges: figures[EXCHANGES] ?? 0,
    errors: UPSTREAM_ERROR_KINDS.reduce((sum, kind) => sum + errorsByKind[kind], 0),
    errorsByKind,
    lastExchangeAt: lastExchange === undefined ? undefined : new Date(lastExchange),
    lastErrorAt: lastError === undefined ? undefined : new Date(lastError),
  };
}
