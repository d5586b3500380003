import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { ClusterCoordinator } from "../coordination/cluster-coordinator.js";
import { ClusterHub } from "./hub.js";
import { SharedStores, type EventLink } from "./store-link.js";

/**
 * The workers' side (ClusterCoordinator, SharedStores) against the primary's (ClusterHub) over an
 * in-process link that carries what the IPC channel carries: JSON, asynchronously, in order.
 * The real channel (node:cluster, batching) is covered by tests/integration/workers.test.ts.
 */
class Cluster {
  readonly hub: ClusterHub;
  readonly #links = new Map<number, FakeLink>();

  constructor() {
    this.hub = new ClusterHub({
      emit: (worker, name, data) => this.#links.get(worker)?.deliver(name, data),
      workers: () => this.#links.keys(),
    });
  }

  worker(id: number): { coordinator: ClusterCoordinator; stores: SharedStores; link: FakeLink } {
    const link = new FakeLink(this.hub, id);
    this.#links.set(id, link);
    this.hub.workerStarted(id);
    return { coordinator: new ClusterCoordinator(link, { id, count: 2 }), stores: new SharedStores(link), link };
  }

  kill(id: number): void {
    this.#links.delete(id);
    this.hub.workerGone(id);
  }
}

class FakeLink implements EventLink {
  readonly #events = new Map<string, (data: unknown) => void>();
  #queue: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly hub: ClusterHub,
    private readonly id: number,
  ) {}

  call(op: string, ...args: unknown[]): Promise<unknown> {
    const wire = JSON.parse(JSON.stringify(args)) as unknown[];
    // Operations reach the hub in order; their answers come whenever each is ready (wrapped, so
    // that a pending answer does not hold up the operations behind it).
    const dispatched = this.#queue.then(() => ({ answer: this.hub.handle(this.id, op, wire) }));
    this.#queue = dispatched.then(
      () => undefined,
      () => undefined,
    );
    // An answer crosses the channel as JSON too (undefined disappears).
    return dispatched
      .then(({ answer }) => answer)
      .then((value) => (value === undefined ? undefined : (JSON.parse(JSON.stringify(value)) as unknown)));
  }

  post(op: string, ...args: unknown[]): void {
    void this.call(op, ...args);
  }

  onEvent(name: string, handler: (data: unknown) => void): void {
    this.#events.set(name, handler);
  }

  deliver(name: string, data: unknown): void {
    setImmediate(() => this.#events.get(name)?.(JSON.parse(JSON.stringify(data))));
  }
}

/** Whether `promise` has settled after the pending I/O and microtasks of this turn. */
async function settled(promise: Promise<unknown>): Promise<boolean> {
  let done = false;
  promise.then(
    () => (done = true),
    () => (done = true),
  );
  await new Promise((resolve) => setImmediate(resolve));
  await new Promise((resolve) => setImmediate(resolve));
  return done;
}

describe("ClusterHub with ClusterCoordinators", () => {
  it("a lease is one worker's at a time; the other gets the holder's note, then its release, then a larger fence", async () => {
    const cluster = new Cluster();
    const one = cluster.worker(1).coordinator;
    const two = cluster.worker(2).coordinator;
    const lease = await one.claim("fill:k");
    assert.ok(lease !== undefined);
    assert.equal(await two.claim("fill:k"), undefined);
    const note = two.noteOf("fill:k");
    const released = two.released("fill:k");
    assert.equal(await settled(note), false, "no note before the holder publishes one");
    lease.publish?.("spool at /x");
    assert.equal(await note, "spool at /x");
    assert.equal(await two.noteOf("fill:k"), "spool at /x", "asked later, the note is there at once");
    assert.equal(await settled(released), false);
    assert.equal(await lease.stillHeld(), true);
    await lease.release();
    await released;
    assert.equal(await two.noteOf("fill:k"), undefined, "nobody holds it: no note");
    const next = await two.claim("fill:k");
    assert.ok(next !== undefined && next.fence > lease.fence);
  });

  it("a worker that dies gives up its leases and key locks at once; waiters go on", async () => {
    const cluster = new Cluster();
    const one = cluster.worker(1);
    const two = cluster.worker(2);
    assert.ok((await one.coordinator.claim("fill:k")) !== undefined);
    const note = two.coordinator.noteOf("fill:k");
    const released = two.coordinator.released("fill:k");

    let unlockOne!: () => void;
    const holding = one.stores.sharing("cache").withKeyLock("a", () => new Promise<void>((resolve) => (unlockOne = resolve)));
    await new Promise((resolve) => setImmediate(resolve));
    const order: string[] = [];
    const waiting = two.stores.sharing("cache").withKeyLock("a", async () => void order.push("two"));
    assert.equal(await settled(waiting), false, "the key is locked by worker 1");

    cluster.kill(1);
    assert.equal(await note, undefined);
    await released;
    await waiting;
    assert.deepEqual(order, ["two"]);
    unlockOne(); // the dead worker's own callback ending changes nothing
    await holding;
    assert.ok((await two.coordinator.claim("fill:k")) !== undefined);
  });

  it("key locks are per store and key: others do not wait", async () => {
    const cluster = new Cluster();
    const one = cluster.worker(1).stores;
    const two = cluster.worker(2).stores;
    let release!: () => void;
    const held = one.sharing("cache").withKeyLock("a", () => new Promise<void>((resolve) => (release = resolve)));
    await new Promise((resolve) => setImmediate(resolve));
    await two.sharing("cache").withKeyLock("b", async () => undefined);
    await two.sharing("").withKeyLock("a", async () => undefined);
    release();
    await held;
  });

  it("an announced change reaches every other worker's store before the announcement resolves", async () => {
    const cluster = new Cluster();
    const one = cluster.worker(1).stores;
    const two = cluster.worker(2).stores;
    const three = cluster.worker(3).stores;
    const seen: string[] = [];
    two.sharing("cache").onChange((change) => seen.push(`two ${change.key} ${change.removed}`));
    three.sharing("cache").onChange((change) => seen.push(`three ${change.key} ${change.removed}`));
    three.sharing("").onChange((change) => seen.push(`three objects ${change.key}`));
    one.sharing("cache").onChange(() => seen.push("one: never its own"));
    await one.sharing("cache").announce({ key: "k", removed: false });
    assert.deepEqual(seen.sort(), ["three k false", "two k false"]);
    // A worker that dies before acknowledging does not hold the writer up.
    cluster.kill(3);
    await one.sharing("cache").announce({ key: "k", removed: true });
    assert.equal(seen.at(-1), "two k true");
  });

  it("counters, rate windows, the access index and shared facts are the sum of the workers", async () => {
    const cluster = new Cluster();
    const one = cluster.worker(1).coordinator;
    const two = cluster.worker(2).coordinator;
    one.count("hits", 2);
    two.count("hits");
    two.count("bytesFromUpstream", 100);
    // Posts are not answered: a call on the same link is what shows they have arrived (between
    // workers, as between their links, there is no order).
    await two.counters();
    assert.deepEqual(
      { hits: (await one.counters()).hits, bytes: (await two.counters()).bytesFromUpstream, misses: (await one.counters()).misses },
      { hits: 3, bytes: 100, misses: 0 },
    );
    assert.deepEqual([(await one.rateHit("ip:1", 60_000)).count, (await two.rateHit("ip:1", 60_000)).count, (await two.rateHit("ip:2", 60_000)).count], [1, 2, 1]);

    one.access.record("pypi/a", 10, 1);
    await one.access.isSeeded();
    two.access.record("npm/b", 5, 2);
    two.access.record("pypi/c", 1, 3);
    await two.access.isSeeded();
    const usage = await one.access.usage();
    assert.deepEqual({ entries: usage.entries, bytes: usage.bytes, pypi: usage.byBackend.get("pypi") }, { entries: 3, bytes: 16, pypi: { entries: 2, bytes: 11 } });
    assert.deepEqual((await two.access.oldest(2)).map((record) => record.key), ["pypi/a", "npm/b"]);
    await two.access.forget("pypi/a");
    assert.equal((await one.access.usage()).entries, 2);
    assert.equal(await one.access.isSeeded(), false);
    await two.access.seed([{ key: "npm/old", size: 7, at: 0 }], true);
    assert.equal(await one.access.isSeeded(), true);
    assert.equal((await one.access.oldest(1))[0]?.key, "npm/old", "listed entries rank oldest");

    assert.equal(await two.recall("404:x"), undefined);
    one.remember("404:x", 1234);
    assert.equal(await two.recall("404:x"), 1234);
    two.remember("404:x", 0);
    assert.equal(await one.recall("404:x"), undefined, "0 forgets");
  });

  it("per-backend tallies add up or keep the latest over the workers; last use is the shared index's", async () => {
    const cluster = new Cluster();
    const one = cluster.worker(1).coordinator;
    const two = cluster.worker(2).coordinator;
    one.tally("pypi", "exchanges", 1, "add");
    one.tally("pypi", "exchanges", 1, "add");
    one.tally("pypi", "last_exchange_at", 500, "latest");
    two.tally("pypi", "exchanges", 3, "add");
    two.tally("pypi", "last_exchange_at", 400, "latest");
    two.tally("npm", "errors:timeout", 1, "add");
    await two.tallies(); // sends two's (each worker sends its own at the end of its event-loop turn)
    const tallies = await one.tallies();
    assert.deepEqual(Object.fromEntries(tallies), { pypi: { exchanges: 5, last_exchange_at: 500 }, npm: { "errors:timeout": 1 } });

    one.access.record("pypi/a", 10, 111);
    await one.access.isSeeded(); // sends one's records
    two.access.record("pypi/a", 10, 222); // used again, on the other worker
    two.access.record("npm/b", 5, 50);
    await two.access.isSeeded(); // sends two's records
    assert.deepEqual(await one.access.lastUsed(["pypi/a", "nope", "npm/b"]), [222, undefined, 50]);
    assert.deepEqual(await two.access.lastUsed([]), []);
  });

  it("health and description say this is a worker", () => {
    const coordinator = new Cluster().worker(2).coordinator;
    assert.deepEqual(coordinator.health(), { mode: "workers" });
    assert.match(coordinator.describe(), /^worker 2 of 2: /);
  });
});
