import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { errorCode } from "../core/error-code.js";
import {
  backoffDelay,
  isRetryableNetworkError,
  isRetryableStatus,
  mayHaveReachedServer,
  parseRetryAfter,
  retrying,
  systemClock,
  type AttemptResult,
  type RetryClock,
  type RetryPolicy,
} from "./retry.js";

/** A clock whose sleeps return at once and are recorded; time moves only when slept. */
function recordingClock(random = 0.5): RetryClock & { delays: number[] } {
  let now = Date.UTC(2025, 0, 1);
  const delays: number[] = [];
  return { delays, now: () => now, random: () => random, sleep: async (ms) => void (delays.push(ms), (now += ms)) };
}

function policy(clock: RetryClock, overrides: Partial<RetryPolicy> = {}): RetryPolicy {
  return { maxAttempts: 3, baseDelayMs: 1000, maxElapsedMs: 120_000, clock, ...overrides };
}

const fail = (reason: number, retryAfterMs?: number): AttemptResult<string> => ({ ok: false, error: new Error(`status ${reason}`), reason, retryAfterMs });

describe("retry policy", () => {
  test("backoff doubles from the base, jittered ±20% around it", () => {
    assert.deepEqual([1, 2, 3, 4].map((n) => backoffDelay(n, 1000, 0.5)), [1000, 2000, 4000, 8000]);
    assert.deepEqual([1, 2, 3].map((n) => backoffDelay(n, 1000, 0)), [800, 1600, 3200]);
    assert.deepEqual([1, 2, 3].map((n) => backoffDelay(n, 1000, 0.999999)), [1200, 2400, 4800]);
  });

  test("Retry-After as delta-seconds or an HTTP date; garbage is ignored", () => {
    const now = Date.UTC(2025, 0, 1, 12, 0, 0);
    assert.equal(parseRetryAfter("1", now), 1000);
    assert.equal(parseRetryAfter(" 120 ", now), 120_000);
    assert.equal(parseRetryAfter("0", now), 0);
    assert.equal(parseRetryAfter(new Date(now + 7000).toUTCString(), now), 7000);
    assert.equal(parseRetryAfter(new Date(now - 7000).toUTCString(), now), 0, "a date in the past means now");
    assert.equal(parseRetryAfter("soon", now), undefined);
    assert.equal(parseRetryAfter("-5", now), undefined);
    assert.equal(parseRetryAfter(undefined, now), undefined);
  });

  test("retryable statuses are 429, 502, 503, 504 and nothing else", () => {
    for (const status of [429, 502, 503, 504]) assert.ok(isRetryableStatus(status), String(status));
    for (const status of [200, 400, 401, 403, 404, 409, 412, 413, 416, 500, 501]) assert.ok(!isRetryableStatus(status), String(status));
  });

  test("network errors: codes on the error, its cause, or an AggregateError", () => {
    const withCode = (code: string) => Object.assign(new Error(code), { code });
    assert.ok(isRetryableNetworkError(withCode("ECONNRESET")));
    assert.ok(isRetryableNetworkError(withCode("UND_ERR_SOCKET")));
    assert.ok(isRetryableNetworkError(new Error("socket hang up")));
    assert.ok(isRetryableNetworkError(new Error("wrapped", { cause: withCode("ECONNREFUSED") })));
    assert.equal(errorCode(new AggregateError([withCode("ECONNREFUSED"), withCode("ECONNREFUSED")])), "ECONNREFUSED");
    assert.ok(!isRetryableNetworkError(withCode("ENOTFOUND")));
    assert.ok(!isRetryableNetworkError(withCode("UND_ERR_ABORTED")));
    assert.ok(!isRetryableNetworkError(new TypeError("bad")));
    assert.ok(!mayHaveReachedServer(withCode("ECONNREFUSED")));
    assert.ok(mayHaveReachedServer(withCode("ECONNRESET")));
  });

  test("the loop stops at maxAttempts and throws the last failure", async () => {
    const clock = recordingClock();
    let calls = 0;
    await assert.rejects(
      retrying(policy(clock), undefined, async () => {
        calls++;
        return fail(503);
      }),
      /status 503/,
    );
    assert.equal(calls, 3);
    assert.deepEqual(clock.delays, [1000, 2000]);
  });

  test("Retry-After replaces the backoff; a wait past maxElapsed ends the retries without waiting", async () => {
    const clock = recordingClock();
    const outcomes = [fail(429, 3000), fail(429, 500), { ok: true as const, value: "done" }];
    assert.equal(await retrying(policy(clock), undefined, async (n) => outcomes[n - 1]!), "done");
    assert.deepEqual(clock.delays, [3000, 500]);

    const bounded = recordingClock();
    let calls = 0;
    await assert.rejects(
      retrying(policy(bounded, { maxElapsedMs: 10_000 }), undefined, async () => {
        calls++;
        return fail(429, 60_000);
      }),
    );
    assert.equal(calls, 1);
    assert.deepEqual(bounded.delays, []);
  });

  test("maxAttempts 1 never waits; onRetry hears each wait", async () => {
    const clock = recordingClock();
    await assert.rejects(retrying(policy(clock, { maxAttempts: 1 }), undefined, async () => fail(503)));
    assert.deepEqual(clock.delays, []);
    const events: unknown[] = [];
    await assert.rejects(retrying(policy(clock, { onRetry: (event) => events.push(event) }), undefined, async () => fail(502)));
    assert.deepEqual(events, [
      { attempt: 1, delayMs: 1000, reason: 502 },
      { attempt: 2, delayMs: 2000, reason: 502 },
    ]);
  });

  test("the system clock's sleep runs on setTimeout (mock.timers) and stops on abort", async (t) => {
    t.mock.timers.enable({ apis: ["setTimeout"] });
    let woke = false;
    const sleeping = systemClock.sleep(1000).then(() => (woke = true));
    t.mock.timers.tick(999);
    await Promise.resolve();
    assert.equal(woke, false);
    t.mock.timers.tick(1);
    await sleeping;
    assert.equal(woke, true);

    const controller = new AbortController();
    const aborted = systemClock.sleep(60_000, controller.signal);
    controller.abort(new Error("stop"));
    await assert.rejects(aborted, /stop/);
    await assert.rejects(systemClock.sleep(1, controller.signal), /stop/);
  });

  test("an aborted signal stops the loop before the next attempt", async () => {
    const controller = new AbortController();
    const clock = recordingClock();
    let calls = 0;
    await assert.rejects(
      retrying(policy(clock), controller.signal, async () => {
        calls++;
        controller.abort(new Error("cancelled"));
        return fail(503);
      }),
      /cancelled/,
    );
    assert.equal(calls, 1);
  });
});

