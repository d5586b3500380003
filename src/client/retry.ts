/**
 * The retry policy of `RestStore`, apart from HTTP: which failures are worth another attempt,
 * how long to wait, and the loop that waits. Time comes from an injected `RetryClock` so tests
 * can record the delays (or use `mock.timers`) instead of sleeping.
 */
import { abortableSleep } from "../core/abortable-sleep.js";
import { errorCode } from "../core/error-code.js";

/** Time and chance, injected. */
export interface RetryClock {
  /** Wall-clock milliseconds since the epoch: for `Retry-After` dates and the total-time bound. */
  now(): number;
  /** Resolves after `ms`; rejects with the signal's reason if it is aborted first. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
  /** A number in [0, 1) for jitter. */
  random(): number;
}

/** The real clock. `setTimeout` is looked up at call time, so node:test's `mock.timers` governs it. */
export const systemClock: RetryClock = {
  now: () => Date.now(),
  sleep: abortableSleep,
  random: () => Math.random(),
};

export interface RetryPolicy {
  /** Requests in total, the first included (at least 1). */
  readonly maxAttempts: number;
  /** The first backoff; each later one doubles. */
  readonly baseDelayMs: number;
  /** No retry is started if its wait would end later than this long after the call began. */
  readonly maxElapsedMs: number;
  readonly clock: RetryClock;
  /** Told before each wait: which attempt failed, why, and how long the client will wait. */
  readonly onRetry?: ((event: RetryEvent) => void) | undefined;
}

export interface RetryEvent {
  /** The attempt that just failed (1 = the first request). */
  readonly attempt: number;
  readonly delayMs: number;
  /** The status that is retried, or the network error. */
  readonly reason: number | Error;
}

/** One attempt's outcome: a value, or a retryable failure with the error to throw if retries run out. */
export type AttemptResult<T> =
  | { readonly ok: true; readonly value: T }
  | {
      readonly ok: false;
      readonly error: Error;
      readonly reason: number | Error;
      /** The server's `Retry-After`, in milliseconds, which replaces the backoff. */
      readonly retryAfterMs?: number | undefined;
    };

/**
 * Runs `attempt` until it succeeds, throws (a failure that must not be retried), or the policy
 * runs out of attempts or time, in which case the last failure's error is thrown.
 */
export async function retrying<T>(
  policy: RetryPolicy,
  signal: AbortSignal | undefined,
  attempt: (n: number) => Promise<AttemptResult<T>>,
): Promise<T> {
  const startedAt = policy.clock.now();
  for (let n = 1; ; n++) {
    signal?.throwIfAborted();
    const result = await attempt(n);
    if (result.ok) return result.value;
    if (n >= policy.maxAttempts) throw result.error;
    const delayMs = result.retryAfterMs ?? backoffDelay(n, policy.baseDelayMs, policy.clock.random());
    if (policy.clock.now() + delayMs - startedAt > policy.maxElapsedMs) throw result.error;
    policy.onRetry?.({ attempt: n, delayMs, reason: result.reason });
    await policy.clock.sleep(delayMs, signal);
  }
}

/**
 * The wait after the `failedAttempts`-th failure: `baseDelayMs · 2^(failedAttempts − 1)`, jittered
 * by ±20% (`random` = 0.5 gives the nominal delay) so clients that failed together spread out.
 */
export function backoffDelay(failedAttempts: number, baseDelayMs: number, random: number): number {
  const nominal = baseDelayMs * 2 ** (failedAttempts - 1);
  return Math.round(nominal * (0.8 + 0.4 * random));
}

/** `Retry-After` as delta-seconds or an HTTP date (RFC 9110 §10.2.3), in milliseconds from `nowMs`. */
export function parseRetryAfter(value: string | undefined, nowMs: number): number | undefined {
  if (value === undefined) return undefined;
  const text = value.trim();
  if (/^\d+(\.\d+)?$/.test(text)) return Math.round(Number(text) * 1000);
  // The three HTTP date formats all start with the day's name; `Date.parse` alone would take "-5".
  const date = /^[A-Za-z]{3}/.test(text) ? Date.parse(text) : Number.NaN;
  if (Number.isNaN(date)) return undefined;
  return Math.max(0, date - nowMs);
}

/** Statuses that mean "try again later": rate limited, and the gateway/unavailable family. */
export function isRetryableStatus(status: number): boolean {
  return status === 429 || status === 502 || status === 503 || status === 504;
}

/** Network failures that a new connection may not repeat. */
const RETRYABLE_CODES = new Set([
  "ECONNRESET",
  "ECONNREFUSED",
  "ECONNABORTED",
  "EPIPE",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENETDOWN",
  "EHOSTDOWN",
  "EAI_AGAIN",
  "UND_ERR_SOCKET",
  "UND_ERR_CONNECT_TIMEOUT",
  "UND_ERR_HEADERS_TIMEOUT",
  "UND_ERR_BODY_TIMEOUT",
]);

/** Failures that happen before the request can have reached the server. */
const NOT_SENT_CODES = new Set(["ECONNREFUSED", "EHOSTUNREACH", "ENETUNREACH", "ENETDOWN", "EHOSTDOWN", "EAI_AGAIN", "UND_ERR_CONNECT_TIMEOUT"]);

const TIMEOUT_CODES = new Set(["ETIMEDOUT", "UND_ERR_CONNECT_TIMEOUT", "UND_ERR_HEADERS_TIMEOUT", "UND_ERR_BODY_TIMEOUT"]);

export function isRetryableNetworkError(error: unknown): boolean {
  const code = errorCode(error);
  if (code !== undefined && RETRYABLE_CODES.has(code)) return true;
  return error instanceof Error && /socket hang up/i.test(error.message);
}

/** Whether the server may have received (and acted on) the request despite the failure. */
export function mayHaveReachedServer(error: unknown): boolean {
  const code = errorCode(error);
  return code === undefined || !NOT_SENT_CODES.has(code);
}

export function isTimeout(error: unknown): boolean {
  const code = errorCode(error);
  return code !== undefined && TIMEOUT_CODES.has(code);
}

