import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Counter, Gauge, Registry } from "prom-client";
import { FakeCluster } from "../../tests/support/fake-cluster.js";
import { METRICS_REQUEST_EVENT, serveClusterMetrics, WorkerMetrics } from "./metrics-link.js";

/**
 * Both sides of `/metrics` with workers — `WorkerMetrics` in each worker, `serveClusterMetrics`
 * in the primary — over an in-process link (`FakeCluster`). A real vault of two worker processes
 * is `tests/integration/metrics-workers.test.ts`.
 */
class Cluster extends FakeCluster {
  constructor() {
    super(serveClusterMetrics);
  }
}

/** A worker's registry: a counter of what it did, and a reading shared by all (aggregated by max). */
function workerRegistry(hits: number, shared: number): Registry {
  const registry = new Registry();
  new Counter({ name: "hits_total", help: "hits", labelNames: ["backend"], registers: [registry] }).inc({ backend: "files" }, hits);
  new Gauge({ name: "cache_entries", help: "entries", registers: [registry], aggregator: "max" }).set(shared);
  return registry;
}

function sample(text: string, line: string): string | undefined {
  return text.split("\n").find((candidate) => candidate.startsWith(`${line} `))?.slice(line.length + 1);
}

describe("/metrics over the workers' link", () => {
  it("any worker's scrape shows every worker's counts summed, shared readings once, and the primary's process", async () => {
    const cluster = new Cluster();
    const one = new WorkerMetrics(cluster.worker(1)).exposition(workerRegistry(3, 7));
    const two = new WorkerMetrics(cluster.worker(2)).exposition(workerRegistry(4, 7));
    for (const exposition of [one, two]) {
      const { text, contentType } = await exposition.render();
      assert.match(contentType, /^text\/plain; version=0\.0\.4/);
      assert.equal(sample(text, 'hits_total{backend="files"}'), "7");
      assert.equal(sample(text, "cache_entries"), "7");
      assert.ok(sample(text, "process_resident_memory_bytes") !== undefined, "the primary's process metrics");
    }
  });

  it("a worker that exits while asked counts as answered", async () => {
    const cluster = new Cluster();
    const one = new WorkerMetrics(cluster.worker(1)).exposition(workerRegistry(3, 1));
    const leaving = cluster.worker(2);
    new WorkerMetrics(leaving).exposition(workerRegistry(100, 1));
    leaving.intercept = (name) => {
      assert.equal(name, METRICS_REQUEST_EVENT);
      cluster.kill(2);
    };
    const { text } = await one.render();
    assert.equal(sample(text, 'hits_total{backend="files"}'), "3");
  });

  it("what a worker had counted when it last answered stays in the totals after it exits", async () => {
    const cluster = new Cluster();
    const one = new WorkerMetrics(cluster.worker(1)).exposition(workerRegistry(3, 5));
    new WorkerMetrics(cluster.worker(2)).exposition(workerRegistry(4, 5));
    assert.equal(sample((await one.render()).text, 'hits_total{backend="files"}'), "7");
    cluster.kill(2);
    const afterExit = (await one.render()).text;
    assert.equal(sample(afterExit, 'hits_total{backend="files"}'), "7", "no drop: Prometheus would read it as a reset");
    assert.equal(sample(afterExit, "cache_entries"), "5", "a reading is not kept");
    // Its replacement counts from 0, on top; and a second exit adds up with the first.
    new WorkerMetrics(cluster.worker(2)).exposition(workerRegistry(2, 5));
    assert.equal(sample((await one.render()).text, 'hits_total{backend="files"}'), "9");
    cluster.kill(2);
    new WorkerMetrics(cluster.worker(2)).exposition(workerRegistry(1, 5));
    assert.equal(sample((await one.render()).text, 'hits_total{backend="files"}'), "10");
  });

  it("a worker still starting answers with nothing", async () => {
    const cluster = new Cluster();
    const one = new WorkerMetrics(cluster.worker(1)).exposition(workerRegistry(3, 1));
    new WorkerMetrics(cluster.worker(2)); // no registry yet
    const { text } = await one.render();
    assert.equal(sample(text, 'hits_total{backend="files"}'), "3");
  });

  it("a worker that does not answer fails the question, and nothing is left waiting", async () => {
    const cluster = new Cluster();
    cluster.worker(1).intercept = () => undefined;
    await assert.rejects(cluster.hub.ask(METRICS_REQUEST_EVENT, {}, 20), /worker 1 did not answer/);
    cluster.kill(1);
    assert.equal((await cluster.hub.ask(METRICS_REQUEST_EVENT, {}, 20)).size, 0, "no worker, no answers");
  });
});
