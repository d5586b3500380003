import { test } from "node:test";
import assert from "node:assert/strict";
import { FailedAuthThrottle } from "./failed-auth-throttle.js";

test("past the limit of failures in a minute an address must wait for the rest of the minute", () => {
  let now = 1_000_000;
  const throttle = new FailedAuthThrottle({ limit: 3, clock: () => now });
  for (let i = 0; i < 3; i++) assert.equal(throttle.failed("10.0.0.1"), undefined);
  assert.equal(throttle.failed("10.0.0.1"), 60);
  now += 45_500;
  assert.equal(throttle.failed("10.0.0.1"), 15);
  // Another address has its own count.
  assert.equal(throttle.failed("10.0.0.2"), undefined);
  now += 15_000;
  assert.equal(throttle.failed("10.0.0.1"), undefined, "a new minute starts afresh");
});

test("memory stays bounded: the oldest addresses are forgotten first", () => {
  const now = 0;
  const throttle = new FailedAuthThrottle({ limit: 1, maxAddresses: 2, clock: () => now });
  throttle.failed("a");
  throttle.failed("b");
  throttle.failed("c");
  // "a" was forgotten: its next failure is its first again.
  assert.equal(throttle.failed("a"), undefined);
  assert.equal(throttle.failed("c"), 60);
});
