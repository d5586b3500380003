/**
 * The coordination interface against a real Redis (Debian's redis-server, started here): two
 * coordinators stand for two replicas. And two caches over one store, each with its own
 * coordinator, for the cache's side of it (one upstream request for a herd spread over both,
 * fenced commits). The multi-process version, with vault processes on S3, is replicas.test.ts.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { pino, type Logger } from "pino";
import { ArtifactCache } from "../../src/cache/artifact-cache.js";
import type { UpstreamFetch } from "../../src/core/cache/artifact-source.js";
import type { ArtifactRef } from "../../src/core/cache/artifact-ref.js";
import { LocalCoordinator } from "../../src/coordination/local-coordinator.js";
import { RedisCoordinator, redactedRedisUrl } from "../../src/coordination/redis-coordinator.js";
import { MemoryDriver } from "../../src/storage/memory-driver.js";
import type { StorageDriver } from "../../src/storage/storage-driver.js";
import type { UpstreamResponse } from "../../src/upstreams/upstream-client.js";
import { startRedis, type RedisServer } from "../support/redis-server.js";
import { waitFor } from "../support/process.js";

const silent = pino({ level: "silent" });
let redis: RedisServer;
let run = 0;

before(async () => {
  redis = await startRedis();
});
after(async () => {
  await redis.stop();
});

/** Two replicas' coordinators on one Redis under a key prefix of this test's own. */
async function pair(leaseTtlMs = 1000, logger = silent): Promise<[RedisCoordinator, RedisCoordinator]> {
  const keyPrefix = `t${++run}:`;
  return [
    await RedisCoordinator.connect({ url: redis.url, keyPrefix, leaseTtlMs, logger }),
    await RedisCoordinator.connect({ url: redis.url, keyPrefix, leaseTtlMs, logger }),
  ];
}

async function closeAll(...coordinators: RedisCoordinator[]): Promise<void> {
  for (const coordinator of coordinators) await coordinator.close();
}

/** A pino logger whose lines are kept as parsed objects. */
function capturingLogger(): { logger: Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const logger = pino({ level: "info" }, { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) });
  return { logger, lines };
}

describe("RedisCoordinator", () => {
  test("a lease is one replica's at a time; its release wakes the other at once, with a larger fence after", async () => {
    const [a, b] = await pair(10_000);
    try {
      const held = await a.claim("fill:x");
      assert.ok(held !== undefined);
      assert.equal(await b.claim("fill:x"), undefined);
      assert.equal(await a.claim("fill:x"), undefined, "a lease is not re-entrant");
      const waited = b.released("fill:x");
      let woke = false;
      void waited.then(() => (woke = true));
      await new Promise((resolve) => setTimeout(resolve, 100));
      assert.equal(woke, false, "the waiter woke while the lease was held");
      const releasedAt = Date.now();
      await held.release();
      await waited;
      // Woken by the release message, not by the poll (a quarter of the 10 s TTL).
      assert.ok(Date.now() - releasedAt < 1000, `woke ${Date.now() - releasedAt} ms after the release`);
      const next = await b.claim("fill:x");
      assert.ok(next !== undefined && next.fence > held.fence);
      assert.equal(await held.stillHeld(), false);
      assert.equal(await next.stillHeld(), true);
      await next.release();
    } finally {
      await closeAll(a, b);
    }
  });

  test("a holder that dies without releasing loses the lease at its expiry, and a waiter takes over", async () => {
    const [a, b] = await pair(600);
    try {
      const held = await a.claim("fill:y");
      assert.ok(held !== undefined);
      // Closing stops the renewals without a release: as if the process were killed.
      await a.close();
      const started = Date.now();
      await b.released("fill:y");
      const waited = Date.now() - started;
      assert.ok(waited >= 400 && waited < 3000, `the lease ended after ${waited} ms (TTL 600 ms)`);
      const taken = await b.claim("fill:y");
      assert.ok(taken !== undefined && taken.fence > held.fence);
      await taken.release();
    } finally {
      await closeAll(a, b);
    }
  });

  test("a lease is renewed while held: it outlives its TTL", async () => {
    const [a, b] = await pair(300);
    try {
      const held = await a.claim("fill:long");
      assert.ok(held !== undefined);
      await new Promise((resolve) => setTimeout(resolve, 1200));
      assert.equal(await b.claim("fill:long"), undefined);
      assert.equal(await held.stillHeld(), true);
      await held.release();
    } finally {
      await closeAll(a, b);
    }
  });

  test("counters, rate-limit windows and the access index are the sum of both replicas", async () => {
    const [a, b] = await pair();
    try {
      a.count("hits", 3);
      b.count("hits", 2);
      b.count("bytesFromCache", 1000);
      await waitFor("counters summed", async () => {
        const totals = await a.counters();
        return totals.hits === 5 && totals.bytesFromCache === 1000 ? totals : undefined;
      });
      const hits = [await a.rateHit("ip:1", 60_000), await b.rateHit("ip:1", 60_000), await a.rateHit("ip:1", 60_000)];
      assert.deepEqual(
        hits.map((hit) => hit.count),
        [1, 2, 3],
      );
      assert.ok(hits.every((hit) => hit.resetInMs > 0 && hit.resetInMs <= 60_000));
      assert.equal((await b.rateHit("ip:2", 60_000)).count, 1, "windows are per bucket");

      a.access.record("pypi/a", 100, 1_000);
      b.access.record("npm/b", 50, 2_000);
      a.access.record("pypi/c", 10, 3_000);
      b.access.record("pypi/a", 100, 4_000); // used again, on the other replica: now the newest
      const usage = await b.access.usage(); // flushes b's records; a's are flushed by its timer
      assert.ok(usage.entries >= 1);
      await waitFor("both replicas' records in the index", async () => ((await a.access.usage()).entries === 3 ? true : undefined));
      const shared = await a.access.usage();
      assert.equal(shared.bytes, 160);
      assert.deepEqual(Object.fromEntries(shared.byBackend), { pypi: { entries: 2, bytes: 110 }, npm: { entries: 1, bytes: 50 } });
      assert.deepEqual(
        (await b.access.oldest(3)).map((record) => record.key),
        ["npm/b", "pypi/c", "pypi/a"],
      );
      await b.access.forget("pypi/c");
      await b.access.forget("pypi/c"); // twice: counted once
      const after = await a.access.usage();
      assert.equal(after.entries, 2);
      assert.equal(after.bytes, 150);
      // A listing loaded later never makes a used entry look older, and is loaded once.
      assert.equal(await a.access.isSeeded(), false);
      await a.access.seed([{ key: "npm/b", size: 50, at: 1 }, { key: "apt/d", size: 7, at: 500 }], true);
      assert.equal(await b.access.isSeeded(), true);
      assert.deepEqual(
        (await b.access.oldest(10)).map((record) => [record.key, record.at]),
        [["apt/d", 500], ["npm/b", 2_000], ["pypi/a", 4_000]],
      );
    } finally {
      await closeAll(a, b);
    }
  });

  test("per-backend tallies add up or keep the latest over both replicas; last use is the shared index's", async () => {
    const [a, b] = await pair();
    try {
      a.tally("pypi", "exchanges", 2, "add");
      a.tally("pypi", "last_error_at", 700, "latest");
      b.tally("pypi", "exchanges", 1, "add");
      b.tally("pypi", "last_error_at", 600, "latest");
      b.tally("npm", "errors:failed", 1, "add");
      await b.tallies(); // flushes b's; a's are flushed by its own read
      assert.deepEqual(Object.fromEntries(await a.tallies()), { pypi: { exchanges: 3, last_error_at: 700 }, npm: { "errors:failed": 1 } });
      b.tally("pypi", "last_error_at", 900, "latest");
      assert.equal((await b.tallies()).get("pypi")?.["last_error_at"], 900);
      assert.equal((await a.tallies()).get("pypi")?.["last_error_at"], 900, "the other replica reads it too");

      a.access.record("pypi/x", 10, 1_000);
      b.access.record("pypi/x", 10, 2_000);
      b.access.record("npm/y", 5, 1_500);
      await a.access.usage(); // flushes a's records
      assert.deepEqual(await b.access.lastUsed(["pypi/x", "npm/y", "apt/none"]), [2_000, 1_500, undefined]);
    } finally {
      await closeAll(a, b);
    }
  });

  test("with Redis gone a replica serves alone (and says so); with Redis back it coordinates again", async () => {
    const own = await startRedis();
    const { logger, lines } = capturingLogger();
    const a = await RedisCoordinator.connect({ url: own.url, keyPrefix: "down:", leaseTtlMs: 1000, logger });
    try {
      assert.deepEqual(a.health(), { mode: "redis", redis: "up" });
      await own.stop();
      await waitFor("the replica noticed", () => (JSON.stringify(a.health()) === '{"mode":"redis","redis":"down"}' ? true : undefined));
      const warned = lines.find((line) => String(line["msg"]).includes("Redis unreachable"));
      assert.ok(warned !== undefined, "no warning that Redis is unreachable");
      assert.equal(warned["level"], 40);
      // Alone: leases are granted by the replica itself, counters and windows are its own.
      const lease = await a.claim("fill:z");
      assert.ok(lease !== undefined);
      assert.equal(await a.claim("fill:z"), undefined, "alone, the replica still keeps one download per key");
      await lease.release();
      a.count("misses");
      assert.equal((await a.counters()).misses, 1);
      assert.equal((await a.rateHit("ip:9", 60_000)).count, 1);
      a.access.record("pypi/alone", 10, 5);
      assert.equal((await a.access.usage()).entries, 1);
      await a.released("fill:other"); // nothing to wait for: returns

      await own.restart();
      await waitFor("the replica reconnected", () => (JSON.stringify(a.health()) === '{"mode":"redis","redis":"up"}' ? true : undefined), 15_000);
      assert.ok(lines.some((line) => String(line["msg"]).includes("Redis reachable again")));
      // What it counted alone reaches the (fresh) Redis.
      await waitFor("counts kept while alone are sent", async () => ((await a.counters()).misses === 1 ? true : undefined));
      await waitFor("access records kept while alone are sent", async () => ((await a.access.usage()).entries === 1 ? true : undefined));
    } finally {
      await a.close();
      await own.stop();
    }
  });

  test("a replica that starts while Redis is unreachable starts alone and says so, with the URL's password left out", async () => {
    const own = await startRedis();
    const url = `redis://user:hunter2@127.0.0.1:${own.port}`;
    await own.stop();
    const { logger, lines } = capturingLogger();
    const a = await RedisCoordinator.connect({ url, keyPrefix: "late:", leaseTtlMs: 1000, logger, connectWaitMs: 300 });
    try {
      assert.deepEqual(a.health(), { mode: "redis", redis: "down" });
      assert.ok(lines.some((line) => String(line["msg"]).includes("Redis unreachable")));
      assert.ok(!JSON.stringify(lines).includes("hunter2"));
      assert.ok(!a.describe().includes("hunter2"));
      assert.equal(redactedRedisUrl(url), `redis://127.0.0.1:${own.port}`);
      assert.ok((await a.claim("fill:q")) !== undefined);
    } finally {
      await a.close();
    }
  });
});

// ---- two caches over one store, as two replicas over one bucket ----

function ref(key: string, extra: Partial<ArtifactRef> = {}): ArtifactRef {
  return { backend: "t", cacheKey: `t/${key}`, upstreamPath: key, freshness: { kind: "immutable" }, ...extra };
}

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** An upstream that sends `body` in pieces over ~`ms` and counts its requests. */
function slowUpstream(body: Buffer, ms: number): { fetch: UpstreamFetch; calls: () => number } {
  let calls = 0;
  return {
    calls: () => calls,
    fetch: async () => {
      calls++;
      const pieces = 10;
      const size = Math.ceil(body.length / pieces);
      async function* trickle(): AsyncGenerator<Buffer> {
        for (let i = 0; i < pieces; i++) {
          await new Promise((resolve) => setTimeout(resolve, ms / pieces));
          yield body.subarray(i * size, (i + 1) * size);
        }
      }
      const response: UpstreamResponse = { status: 200, headers: { "content-length": String(body.length) }, url: "http://upstream/x", body: Readable.from(trickle()) };
      return response;
    },
  };
}

/** Counts how often each replica opens a key of the shared store (a replica's own view of it). */
function countingOpens(driver: StorageDriver): { driver: StorageDriver; opens: Map<string, number> } {
  const opens = new Map<string, number>();
  const counted = new Proxy(driver, {
    get(target, property, receiver) {
      const value: unknown = Reflect.get(target, property, receiver);
      if (property === "open" && typeof value === "function") {
        return (key: string) => {
          opens.set(key, (opens.get(key) ?? 0) + 1);
          return (value as (key: string) => unknown).call(target, key);
        };
      }
      return typeof value === "function" ? (value as (...given: unknown[]) => unknown).bind(target) : value;
    },
  });
  return { driver: counted, opens };
}

async function twoReplicas(
  leaseTtlMs: number,
  use: (caches: [ArtifactCache, ArtifactCache], store: MemoryDriver, opens: [Map<string, number>, Map<string, number>]) => Promise<void>,
): Promise<void> {
  const store = new MemoryDriver();
  const [a, b] = await pair(leaseTtlMs);
  const spools = [await mkdtemp(join(tmpdir(), "replica-a-")), await mkdtemp(join(tmpdir(), "replica-b-"))];
  const views = [countingOpens(store), countingOpens(store)];
  const caches = [a, b].map(
    (coordinator, i) => new ArtifactCache({ driver: views[i]?.driver ?? store, logger: silent, spoolDirectory: spools[i] ?? "", negativeTtlMs: 0, coordinator }),
  ) as [ArtifactCache, ArtifactCache];
  try {
    for (const cache of caches) await cache.start();
    await use(caches, store, [views[0]?.opens ?? new Map<string, number>(), views[1]?.opens ?? new Map<string, number>()]);
  } finally {
    for (const cache of caches) await cache.close();
    await closeAll(a, b);
    for (const spool of spools) await rm(spool, { recursive: true, force: true });
    await store.close();
  }
}

describe("ArtifactCache replicas over one store", () => {
  test("a herd spread over two replicas makes one upstream request; every body is whole", async () => {
    await twoReplicas(5_000, async (caches) => {
      const body = randomBytes(512 * 1024);
      const upstream = slowUpstream(body, 400);
      const answers = await Promise.all(
        Array.from({ length: 10 }, async (_, i) => {
          const cache = caches[i % 2] as ArtifactCache;
          const artifact = await cache.get(ref("blob"), upstream.fetch);
          return { status: artifact.status, bytes: await readAll(artifact.body()) };
        }),
      );
      assert.equal(upstream.calls(), 1);
      for (const answer of answers) assert.ok(answer.bytes.equals(body));
      // The replica that waited served the other's copy from the store.
      assert.ok(answers.every((answer) => answer.status === "MISS"));
      const again = await caches[1].get(ref("blob"), upstream.fetch);
      assert.equal(again.status, "HIT");
      again.release();
    });
  });

  test("a large artifact another replica stored is read from the store once per replica, however many wait for it", async () => {
    await twoReplicas(5_000, async (caches, _store, opens) => {
      const body = randomBytes(3 * 1024 * 1024);
      const upstream = slowUpstream(body, 300);
      const first = await caches[0].get(ref("big"), upstream.fetch);
      const reading = readAll(first.body());
      // Replica B's herd arrives while A downloads: B waits for A's lease, then reads A's copy.
      const herd = await Promise.all(
        Array.from({ length: 8 }, async () => {
          const artifact = await caches[1].get(ref("big"), upstream.fetch);
          return readAll(artifact.body());
        }),
      );
      assert.ok((await reading).equals(body));
      for (const bytes of herd) assert.ok(bytes.equals(body));
      assert.equal(upstream.calls(), 1);
      // Each request's first look (nothing there yet), then one read of A's copy for all of them
      // (not a second read per waiting request).
      assert.ok((opens[1].get("t/big") ?? 0) <= herd.length + 1, `replica B opened the entry ${opens[1].get("t/big")} times`);
    });
  });

  test("a download of a mutable entry never overwrites a newer copy stored while it ran", async () => {
    await twoReplicas(5_000, async (caches, store) => {
      const mutable = ref("index", { freshness: { kind: "mutable", ttlMs: 60_000 } });
      const old = Buffer.from("the version replica A is downloading");
      const newer = Buffer.from("a newer version another replica stored");
      const slow = slowUpstream(old, 400);
      const artifact = await caches[0].get(mutable, slow.fetch);
      const reading = readAll(artifact.body());
      // While A downloads, a newer copy lands (a replica that took over A's expired lease).
      await store.write("t/index", Readable.from([newer]));
      // A's client still gets the whole (verified) body it was sent...
      assert.ok((await reading).equals(old));
      await waitFor("A's fill settled", () => (caches[0].fillsInProgress().length === 0 ? true : undefined));
      // ...but the store keeps the newer copy: A's create-only commit was refused.
      const stored = await store.read("t/index");
      assert.ok(stored !== undefined);
      assert.ok((await readAll(stored.body)).equals(newer), "the later download overwrote a newer entry");
    });
  });
});

test("LocalCoordinator: one lease per resource, released wakes waiters, windows count", async () => {
  const local = new LocalCoordinator();
  const held = local.claimNow("eviction");
  assert.ok(held !== undefined);
  assert.equal(await local.claim("eviction"), undefined);
  const waiting = local.released("eviction");
  await held.release();
  await waiting;
  assert.ok((await local.claim("eviction")) !== undefined);
  assert.equal((await local.rateHit("k", 1000)).count, 1);
  assert.equal((await local.rateHit("k", 1000)).count, 2);
  assert.deepEqual(local.health(), { mode: "alone" });
});
