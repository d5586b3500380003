import { test } from "node:test";
import assert from "node:assert/strict";
import { LocalCoordinator } from "../coordination/local-coordinator.js";
import { upstreamHealth, UpstreamTallies } from "./upstream-health.js";

test("upstream health: unknown before any exchange, failing while the latest failed, ok once one is answered", async () => {
  const coordinator = new LocalCoordinator();
  let now = 1_000;
  const tallies = new UpstreamTallies(coordinator, () => now);
  const health = async (backend = "pypi") => upstreamHealth(await coordinator.tallies(), backend);

  const before = await health();
  assert.equal(before.state, "unknown");
  assert.equal(before.exchanges, 0);
  assert.equal(before.errors, 0);
  assert.equal(before.lastExchangeAt, undefined);

  tallies.upstreamRequest("pypi");
  assert.equal((await health()).state, "ok");

  // A failed exchange is told in the same instant as the exchange itself: failing.
  now = 2_000;
  tallies.upstreamRequest("pypi");
  tallies.upstreamError("pypi", "timeout");
  now = 2_500;
  tallies.upstreamRequest("pypi");
  tallies.upstreamError("pypi", "status_5xx");
  const failing = await health();
  assert.equal(failing.state, "failing");
  assert.equal(failing.exchanges, 3);
  assert.equal(failing.errors, 2);
  assert.deepEqual(failing.errorsByKind, { timeout: 1, failed: 0, broken_body: 0, status_5xx: 1, status_4xx: 0, other: 0 });
  assert.equal(failing.lastErrorAt?.getTime(), 2_500);

  now = 3_000;
  tallies.upstreamRequest("pypi");
  const recovered = await health();
  assert.equal(recovered.state, "ok");
  assert.equal(recovered.lastExchangeAt?.getTime(), 3_000);
  assert.equal(recovered.lastErrorAt?.getTime(), 2_500);

  // A body that breaks off after its answer: failing again, until the next exchange.
  now = 3_100;
  tallies.upstreamError("pypi", "broken_body");
  assert.equal((await health()).state, "failing");

  assert.equal((await health("npm")).state, "unknown", "each backend apart");
});
