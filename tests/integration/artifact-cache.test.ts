import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { pino } from "pino";
import { ArtifactCache } from "../../src/cache/artifact-cache.js";
import type { UpstreamFetch } from "../../src/core/cache/artifact-source.js";
import type { ArtifactRef } from "../../src/core/cache/artifact-ref.js";
import { isVaultError } from "../../src/core/errors.js";
import { MemoryDriver } from "../../src/storage/memory-driver.js";
import { S3Driver } from "../../src/storage/s3-driver.js";
import type { StorageDriver } from "../../src/storage/storage-driver.js";
import type { UpstreamResponse } from "../../src/upstreams/upstream-client.js";
import { startTestS3 } from "../support/s3-server.js";

const logger = pino({ level: "silent" });

function ref(key: string, extra: Partial<ArtifactRef> = {}): ArtifactRef {
  return { backend: "t", cacheKey: `t/${key}`, upstreamPath: key, freshness: { kind: "immutable" }, ...extra };
}

function response(status: number, body: Buffer = Buffer.alloc(0), headers: Record<string, string> = {}): UpstreamResponse {
  return { status, headers: { "content-length": String(body.length), ...headers }, url: "http://upstream/x", body: Readable.from([body]) };
}

/** An upstream double for the cache's unit-level behaviour: answers from a map, counts calls. */
function upstream(answers: Map<string, () => UpstreamResponse>): { fetch: UpstreamFetch; calls: string[] } {
  const calls: string[] = [];
  return {
    calls,
    fetch: async (artifact) => {
      calls.push(artifact.upstreamPath);
      const answer = answers.get(artifact.upstreamPath);
      return answer === undefined ? response(404) : answer();
    },
  };
}

const s3 = await startTestS3({ conditionalWrites: true });
after(() => s3.close());

/** The stores the cache is tried on: in memory, and a bucket (uploaded once verified, hits by GET). */
const STORES: ReadonlyArray<readonly [string, () => Promise<StorageDriver>]> = [
  ["memory", async () => new MemoryDriver()],
  ["s3", () => S3Driver.open(s3.storeConfig())],
];

/** A store that counts its listings: the cache must not list on a request's path. */
function countingLists(driver: StorageDriver): { driver: StorageDriver; lists: () => number } {
  let lists = 0;
  const counted = new Proxy(driver, {
    get(target, property, receiver) {
      const value: unknown = Reflect.get(target, property, receiver);
      if ((property === "list" || property === "listEntries") && typeof value === "function") {
        return (...args: unknown[]) => {
          lists++;
          return (value as (...given: unknown[]) => unknown).apply(target, args);
        };
      }
      return typeof value === "function" ? (value as (...given: unknown[]) => unknown).bind(target) : value;
    },
  });
  return { driver: counted, lists: () => lists };
}

async function withCacheOn(
  makeDriver: () => Promise<StorageDriver>,
  options: { maxSize?: number; negativeTtlMs?: number; clock?: () => number },
  run: (cache: ArtifactCache, driver: StorageDriver) => Promise<void>,
): Promise<void> {
  const spool = await mkdtemp(join(tmpdir(), "cache-unit-"));
  const driver = await makeDriver();
  const cache = new ArtifactCache({
    driver,
    logger,
    spoolDirectory: spool,
    maxSize: options.maxSize,
    negativeTtlMs: options.negativeTtlMs ?? 60_000,
    ...(options.clock === undefined ? {} : { clock: options.clock }),
  });
  await cache.start();
  await cache.index.scanned();
  try {
    await run(cache, driver);
  } finally {
    await cache.close();
    await driver.close();
    await rm(spool, { recursive: true, force: true });
  }
}

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

async function settle(cache: ArtifactCache): Promise<void> {
  while (cache.fillsInProgress().length > 0) await new Promise((resolve) => setTimeout(resolve, 5));
}

for (const [store, makeDriver] of STORES) describe(`ArtifactCache (${store} store)`, () => {
  const withCache = (
    options: { maxSize?: number; negativeTtlMs?: number; clock?: () => number },
    run: (cache: ArtifactCache, driver: StorageDriver) => Promise<void>,
  ): Promise<void> => withCacheOn(makeDriver, options, run);

  test("a digest mismatch aborts every reader and caches nothing", async () => {
    await withCache({}, async (cache, driver) => {
      const body = randomBytes(100_000);
      const wrong = { algorithm: "sha256" as const, hex: "0".repeat(64) };
      const { fetch } = upstream(new Map([["blob", () => response(200, body)]]));
      const artifact = await cache.get(ref("blob", { digest: wrong }), fetch);
      await assert.rejects(readAll(artifact.body()), (error: unknown) => isVaultError(error, "upstream_failed"));
      await settle(cache);
      assert.equal(await driver.stat("t/blob"), undefined);
      const right = { algorithm: "sha256" as const, hex: createHash("sha256").update(body).digest("hex") };
      const good = await cache.get(ref("blob", { digest: right }), fetch);
      assert.ok((await readAll(good.body())).equals(body));
      await settle(cache);
      assert.equal((await driver.stat("t/blob"))?.size, body.length);
    });
  });

  test("a reader caught up with a download of known length gets every byte but the last before verification", async () => {
    await withCache({}, async (cache) => {
      const chunks = [randomBytes(1000), randomBytes(1000), randomBytes(1000)];
      const body = Buffer.concat(chunks);
      const wrong = { algorithm: "sha256" as const, hex: "0".repeat(64) };
      let release: () => void = () => undefined;
      const lastChunkDue = new Promise<void>((resolve) => (release = resolve));
      async function* arriving(): AsyncGenerator<Buffer> {
        yield chunks[0] ?? Buffer.alloc(0);
        yield chunks[1] ?? Buffer.alloc(0);
        await lastChunkDue;
        yield chunks[2] ?? Buffer.alloc(0);
      }
      const fetch: UpstreamFetch = async () => ({ status: 200, headers: { "content-length": String(body.length) }, url: "http://upstream/x", body: Readable.from(arriving()) });
      const artifact = await cache.get(ref("arriving", { digest: wrong }), fetch);
      const received: Buffer[] = [];
      let beforeTheLastChunk: number | undefined;
      const reading = (async () => {
        for await (const chunk of artifact.body()) {
          received.push(chunk as Buffer);
          const length = Buffer.concat(received).length;
          if (beforeTheLastChunk === undefined && length >= 1999) {
            beforeTheLastChunk = length;
            release();
          }
        }
      })();
      await assert.rejects(reading, (error: unknown) => isVaultError(error, "upstream_failed"));
      // None of the first two chunks' bytes is the last one: they went out whole, as they arrived.
      assert.equal(beforeTheLastChunk, 2000);
      const got = Buffer.concat(received);
      assert.ok(got.length >= 2000 && got.length < body.length, `${got.length} bytes reached the reader`);
      assert.ok(got.equals(body.subarray(0, got.length)));
      await settle(cache);
    });
  });

  test("sha512 digests (npm integrity) are verified too", async () => {
    await withCache({}, async (cache) => {
      const body = Buffer.from("tarball bytes");
      const { fetch } = upstream(new Map([["pkg.tgz", () => response(200, body)]]));
      const hex = createHash("sha512").update(body).digest("hex");
      const artifact = await cache.get(ref("pkg.tgz", { digest: { algorithm: "sha512", hex } }), fetch);
      assert.ok((await readAll(artifact.body())).equals(body));
      await settle(cache);
      assert.equal((await cache.get(ref("pkg.tgz"), fetch)).status, "HIT");
    });
  });

  test("negative entries expire after negative_ttl (injected clock)", async () => {
    let now = 1_000_000;
    await withCache({ negativeTtlMs: 5_000, clock: () => now }, async (cache) => {
      const answers = new Map<string, () => UpstreamResponse>();
      const { fetch, calls } = upstream(answers);
      for (let i = 0; i < 3; i++) {
        await assert.rejects(cache.get(ref("later"), fetch), (error: unknown) => isVaultError(error, "not_found"));
      }
      assert.equal(calls.length, 1);
      answers.set("later", () => response(200, Buffer.from("published")));
      now += 4_999;
      await assert.rejects(cache.get(ref("later"), fetch), (error: unknown) => isVaultError(error, "not_found"));
      now += 2;
      const artifact = await cache.get(ref("later"), fetch);
      assert.equal((await readAll(artifact.body())).toString(), "published");
      assert.equal(calls.length, 2);
    });
  });

  test("mutable artifacts are fresh for their TTL, then revalidated (injected clock)", async () => {
    let now = 5_000_000;
    await withCache({ clock: () => now }, async (cache) => {
      const validators: Array<string | undefined> = [];
      const fetch: UpstreamFetch = async (_artifact, given) => {
        validators.push(given?.etag);
        return given?.etag === '"e1"' ? response(304) : response(200, Buffer.from("index v1"), { etag: '"e1"' });
      };
      const mutable = ref("index", { freshness: { kind: "mutable", ttlMs: 60_000 } });
      assert.equal((await readAll((await cache.get(mutable, fetch)).body())).toString(), "index v1");
      await settle(cache);
      now += 59_999;
      assert.equal((await cache.get(mutable, fetch)).status, "HIT");
      now += 1;
      const revalidated = await cache.get(mutable, fetch);
      assert.equal(revalidated.status, "REVALIDATED");
      revalidated.release();
      assert.deepEqual(validators, [undefined, '"e1"']);
      now += 59_999;
      assert.equal((await cache.get(mutable, fetch)).status, "HIT", "a 304 renews the TTL");
    });
  });

  test("close abandons a download nobody reads and stores nothing", async () => {
    const spool = await mkdtemp(join(tmpdir(), "cache-close-"));
    const driver = await makeDriver();
    const cache = new ArtifactCache({ driver, logger, spoolDirectory: spool, negativeTtlMs: 0 });
    await cache.start();
    try {
      const fetch: UpstreamFetch = async (_artifact, _validators, signal) => {
        // An upstream that sends one chunk and then nothing, until the download is cancelled.
        const body = new Readable({ read() {} });
        body.push(Buffer.alloc(1000, 1));
        signal.addEventListener("abort", () => body.destroy(new Error("cancelled")));
        return { status: 200, headers: { "content-length": "1000000" }, url: "http://upstream/slow", body };
      };
      const artifact = await cache.get(ref("endless"), fetch);
      artifact.release();
      assert.equal(cache.fillsInProgress().length, 1);
      const closing = cache.close();
      const outcome = await Promise.race([closing.then(() => "closed"), new Promise((resolve) => setTimeout(resolve, 5_000, "hung"))]);
      assert.equal(outcome, "closed");
      assert.equal(await driver.stat("t/endless"), undefined);
    } finally {
      await driver.close();
      await rm(spool, { recursive: true, force: true });
    }
  });

  test("a small fresh hit is answered from memory (heldHit) once served; a mutable one only while fresh; a purge drops it", async () => {
    let now = 1_000_000;
    await withCache({ clock: () => now }, async (cache) => {
      const body = Buffer.from("a small artifact");
      const { fetch, calls } = upstream(new Map([["small", () => response(200, body)], ["doc", () => response(200, body)]]));
      const immutable = ref("small");
      const mutable = ref("doc", { freshness: { kind: "mutable", ttlMs: 1_000 } });
      assert.equal(cache.heldHit(immutable), undefined, "nothing held before the first fill");
      for (const artifact of [immutable, mutable]) {
        await readAll((await cache.get(artifact, fetch)).body());
        await settle(cache);
        // Served once from the store: held from then on (by the store itself, or by the cache).
        const hit = await cache.get(artifact, fetch);
        assert.equal(hit.status, "HIT");
        hit.release();
      }
      const held = cache.heldHit(immutable);
      assert.ok(held !== undefined && held.contents.equals(body));
      if (store === "memory") assert.ok(cache.heldHit(mutable) !== undefined, "a store that holds the object answers a fresh mutable hit too");
      else assert.equal(cache.heldHit(mutable), undefined, "a mutable entry is not held from a store that may change under us");
      now += 2_000; // the mutable entry is stale now: never a held hit
      assert.equal(cache.heldHit(mutable), undefined);
      await cache.purge("t/small");
      assert.equal(cache.heldHit(immutable), undefined, "a purged entry was still answered from memory");
      assert.deepEqual(calls, ["small", "doc"]);
    });
  });

  test("eviction keeps the newest under max_size and never evicts an artifact being read", async () => {
    await withCache({ maxSize: 3_000 }, async (cache, driver) => {
      const answers = new Map<string, () => UpstreamResponse>();
      for (const name of ["a", "b", "c", "d", "e", "f"]) answers.set(name, () => response(200, Buffer.alloc(1_000, name)));
      const { fetch } = upstream(answers);
      const fill = async (name: string) => {
        await readAll((await cache.get(ref(name), fetch)).body());
        await settle(cache);
      };
      await fill("a");
      await fill("b");
      await fill("c");
      // Hold a read of "a" open (the oldest), then add two more.
      const reading = await cache.get(ref("a"), fetch);
      assert.equal(reading.status, "HIT");
      const stream = reading.body();
      // Recency is now b, c, a, and d, e, f push a back to the oldest place: only its lease keeps it.
      await fill("d");
      await fill("e");
      await fill("f");
      const present = async (name: string) => (await driver.stat(`t/${name}`)) !== undefined;
      // Evictions run in the background, a store round trip each.
      for (let wait = 0; wait < 100 && (await present("d")); wait++) await new Promise((resolve) => setTimeout(resolve, 20));
      assert.equal(await present("a"), true, "an artifact being read was evicted");
      assert.equal(await present("e"), true);
      assert.equal(await present("f"), true);
      for (const name of ["b", "c", "d"]) assert.equal(await present(name), false, `${name} should have been evicted`);
      await cache.index.evicted();
      assert.ok((await cache.index.usage()).bytes <= 3_000);
      stream.destroy();
    });
  });

  test("a document asked for by digest is found under another key through the digest index, without listing the store", async () => {
    let counter: ReturnType<typeof countingLists> | undefined;
    await withCacheOn(async () => (counter = countingLists(await makeDriver())).driver, {}, async (cache) => {
      const lists = (): number => counter?.lists() ?? 0;
      const listed = lists();
      const s3Before = s3.requests.length;
      const manifest = Buffer.from('{"schemaVersion":2,"layers":[]}');
      const hex = createHash("sha256").update(manifest).digest("hex");
      const { fetch, calls } = upstream(new Map([["repo/manifests/v1", () => response(200, manifest, { "content-type": "application/vnd.oci.image.manifest.v1+json" })]]));
      const tag = ref("repo/tags/v1", { upstreamPath: "repo/manifests/v1", freshness: { kind: "mutable", ttlMs: 60_000 } });
      await readAll((await cache.get(tag, fetch)).body());
      await settle(cache);
      const byDigest = (digestHex: string): ArtifactRef =>
        ref(`repo/manifests/sha256/${digestHex}`, {
          upstreamPath: `repo/manifests/sha256:${digestHex}`,
          digest: { algorithm: "sha256", hex: digestHex },
          staleFallback: { prefix: "t/repo/tags/", exact: true, accepts: (entry) => entry.sha256 === digestHex },
        });
      const hit = await cache.get(byDigest(hex), fetch);
      assert.equal(hit.status, "HIT");
      assert.equal(hit.etag, `"${hex}"`);
      assert.ok((await readAll(hit.body())).equals(manifest));
      // Bytes nobody cached go upstream (a 404 here), also without a listing.
      await assert.rejects(cache.get(byDigest("0".repeat(64)), fetch), (error: unknown) => isVaultError(error, "not_found"));
      assert.deepEqual(calls, ["repo/manifests/v1", `repo/manifests/sha256:${"0".repeat(64)}`]);
      assert.equal(lists(), listed, "the store was listed on a request's path");
      if (store === "s3") assert.deepEqual(s3.requests.slice(s3Before).filter((request) => request.query.includes("list-type")), []);
    });
  });

  test("indexes the store once at start: a listing per thousand entries, no read per entry", async () => {
    const driver = await makeDriver();
    const spool = await mkdtemp(join(tmpdir(), "cache-scan-"));
    try {
      for (let i = 0; i < 30; i++) await driver.write(`t/entry-${i}`, Readable.from([Buffer.alloc(100 + i)]));
      const s3Before = s3.requests.length;
      const cache = new ArtifactCache({ driver, logger, spoolDirectory: spool, maxSize: 1_000_000, negativeTtlMs: 0 });
      await cache.start();
      await cache.index.scanned();
      const usage = await cache.index.usage();
      assert.equal(usage.entries, 30);
      assert.equal(usage.bytes, 30 * 100 + (29 * 30) / 2);
      if (store === "s3") {
        const requests = s3.requests.slice(s3Before);
        assert.equal(requests.filter((request) => request.query.includes("list-type")).length, 1);
        assert.deepEqual(requests.filter((request) => request.method === "HEAD" || (request.method === "GET" && !request.query.includes("list-type"))), []);
      }
      await cache.close();
    } finally {
      await driver.close();
      await rm(spool, { recursive: true, force: true });
    }
  });
});
