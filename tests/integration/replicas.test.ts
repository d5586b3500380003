/**
 * Several vault replicas — separate OS processes of the built CLI — on one S3 bucket (s3rver with
 * native conditional writes), coordinated through one Redis (Debian's redis-server): a fill is
 * leased, so the upstream sees one request per artifact whichever replicas are asked; a dead
 * replica's lease is taken over; rate limits and cache statistics are shared; a replica keeps
 * serving, and says it is degraded, when Redis goes away.
 *
 * Each test has its own S3 prefix and Redis key prefix (the servers are shared by the file, but
 * the Redis-stopping test has a Redis of its own), and stops every process it started.
 */
import { after, afterEach, before, describe, it, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { writeTokensFile } from "../../src/auth/tokens-file.js";
import { rawRequest } from "../support/http.js";
import { OriginServer } from "../support/origin-server.js";
import { waitFor } from "../support/process.js";
import { startRedis, type RedisServer } from "../support/redis-server.js";
import { startTestS3, type TestS3 } from "../support/s3-server.js";
import { tokenRecords } from "../support/test-vault.js";
import { findTool, requireTool } from "../support/tools.js";
import { assertWhole, describeFetch, get, startGet, waitForValue } from "../support/streaming-get.js";
import { spawnVault, type VaultProcess } from "../support/vault-process.js";

const MiB = 1024 * 1024;
/** The replicas' `coordination.lease_ttl`: a dead replica's fill is taken over after at most this long. */
const LEASE_TTL = "2s";


interface Health {
  readonly httpStatus: number;
  readonly body: { status?: unknown; service?: unknown; coordination?: unknown };
}

async function health(replica: VaultProcess): Promise<Health> {
  const response = await rawRequest(replica.url, "/health");
  let body: Health["body"];
  try {
    body = response.json<Health["body"]>();
  } catch {
    body = { status: `not JSON: ${response.body.toString("utf8").slice(0, 200)}` };
  }
  return { httpStatus: response.status, body };
}

function healthIs(status: string, coordination: unknown): (value: Health) => boolean {
  return (value) => {
    try {
      assert.equal(value.httpStatus, 200);
      assert.equal(value.body.status, status);
      assert.equal(value.body.service, "artifact-vault");
      assert.deepEqual(value.body.coordination, coordination);
      return true;
    } catch {
      return false;
    }
  };
}

/** The replica's JSON log lines (pino), skipping anything else it printed. */
function logLines(replica: VaultProcess): Array<{ level?: unknown; msg?: unknown }> {
  const lines: Array<{ level?: unknown; msg?: unknown }> = [];
  for (const line of replica.output().split("\n")) {
    if (!line.startsWith("{")) continue;
    try {
      lines.push(JSON.parse(line) as { level?: unknown; msg?: unknown });
    } catch {
      // a line cut by a kill
    }
  }
  return lines;
}

const PINO_WARN = 40;

// ------------------------------------------------------------------------------------------------
// The shared servers, the replicas, their config.

interface Shared {
  readonly dir: string;
  readonly tokensFile: string;
  /** Plaintext tokens by name: `admin` (admin scope), `limited` (read; only test e uses it). */
  readonly tokens: Readonly<Record<string, string>>;
  readonly s3: TestS3;
  readonly origin: OriginServer;
  /** Undefined on a machine without redis-server (each test then skips, or fails under CI). */
  readonly redis: RedisServer | undefined;
  /** Makes this run's Redis key prefixes unique. */
  readonly run: string;
}

/** Every replica a test started and has not stopped yet. */
const running = new Set<VaultProcess>();
// Should the runner die before `afterEach`, no replica outlives it.
process.once("exit", () => {
  for (const replica of running) replica.kill("SIGKILL");
});

async function stopReplica(replica: VaultProcess, signal: NodeJS.Signals = "SIGTERM"): Promise<void> {
  replica.kill(signal);
  const timer = setTimeout(() => replica.kill("SIGKILL"), 10_000);
  try {
    await replica.exited();
  } finally {
    clearTimeout(timer);
    running.delete(replica);
  }
}

async function stopAllReplicas(): Promise<void> {
  await Promise.all([...running].map((replica) => stopReplica(replica)));
}

interface ReplicaConfig {
  readonly file: string;
  /** The S3 key prefix of this test's store (`<prefix>cache/objects/...` holds the cache). */
  readonly prefix: string;
}

/**
 * Writes one config file for a test's replicas (they all read the same one): a fresh S3 prefix,
 * `coordination` on `redisUrl` with a Redis key prefix of the test's own (none: run alone), the
 * `files` http backend on the origin's `/dist`.
 */
async function writeConfig(shared: Shared, name: string, options: { redisUrl?: string | undefined; extra?: readonly string[] } = {}): Promise<ReplicaConfig> {
  const store = shared.s3.storeConfig({ conditional_writes: "native" });
  const file = join(shared.dir, `${name}.yml`);
  const lines = [
    "http_host: 127.0.0.1",
    "http_port: 0",
    "log_level: info",
    // One process per replica: what is tested here is the replicas' coordination (workers.test.ts has the workers').
    "workers: 1",
    "shutdown_timeout: 5s",
    `auth: {tokens_file: ${JSON.stringify(shared.tokensFile)}}`,
    `storage: {stores: {s3: {type: s3, config: ${JSON.stringify(store)}}}, main: s3}`,
    ...(options.redisUrl === undefined
      ? []
      : [`coordination: {redis_url: ${JSON.stringify(options.redisUrl)}, key_prefix: ${JSON.stringify(`${shared.run}:${name}:`)}, lease_ttl: ${LEASE_TTL}}`]),
    ...(options.extra ?? []),
    "backends:",
    `  - {type: http, name: files, config: {prefix: /files/, base_url: ${JSON.stringify(`${shared.origin.url}/dist`)}, timeout: 30, retries: 1}}`,
  ];
  await writeFile(file, `${lines.join("\n")}\n`);
  return { file, prefix: store.prefix };
}

/** Starts `count` replicas on one config, each with a temp dir (its download spool) inside the test's dir. */
async function startReplicas(shared: Shared, config: ReplicaConfig, count: number): Promise<VaultProcess[]> {
  const started = await Promise.allSettled(
    Array.from({ length: count }, async () => {
      const temporary = await mkdtemp(join(shared.dir, "replica-tmp-"));
      const replica = await spawnVault(config.file, { TMPDIR: temporary });
      running.add(replica);
      return replica;
    }),
  );
  const failed = started.find((outcome) => outcome.status === "rejected");
  if (failed !== undefined) throw failed.reason;
  return started.map((outcome) => (outcome as PromiseFulfilledResult<VaultProcess>).value);
}

/**
 * Waits until the bucket holds `count` cache entries under the test's prefix. A client gets its
 * last byte once the download is verified; the entry becomes durable (and visible to the other
 * replicas through the bucket) a moment later.
 */
async function waitForStored(shared: Shared, config: ReplicaConfig, count: number): Promise<void> {
  await waitForValue(`${count} cache entries in the bucket`, () => shared.s3.names(`${config.prefix}cache/objects/`), (names) => names.length >= count);
}

/** Replicas `[0, 1, 2]` of a list the test knows the length of. */
function three(replicas: readonly VaultProcess[]): [VaultProcess, VaultProcess, VaultProcess] {
  const [a, b, c] = replicas;
  assert.ok(a !== undefined && b !== undefined && c !== undefined);
  return [a, b, c];
}

// ------------------------------------------------------------------------------------------------

describe("replicas on one bucket, coordinated through Redis", () => {
  let shared: Shared | undefined;

  before(async () => {
    const dir = await mkdtemp(join(tmpdir(), "vault-replicas-"));
    const tokensFile = join(dir, "tokens.json");
    const { records, tokens } = await tokenRecords([
      { name: "admin", scopes: ["admin"] },
      { name: "limited", scopes: ["read"] },
    ]);
    await writeTokensFile(tokensFile, records);
    let s3: TestS3 | undefined;
    let origin: OriginServer | undefined;
    try {
      s3 = await startTestS3({ conditionalWrites: true });
      origin = await new OriginServer().start();
      const redis = findTool("redis-server") === undefined ? undefined : await startRedis();
      shared = { dir, tokensFile, tokens, s3, origin, redis, run: `replicas-${randomBytes(6).toString("hex")}` };
    } catch (error) {
      await origin?.stop();
      await s3?.close();
      await rm(dir, { recursive: true, force: true });
      throw error;
    }
  });

  afterEach(stopAllReplicas);

  after(async () => {
    await stopAllReplicas();
    if (shared === undefined) return;
    try {
      await shared.redis?.stop();
      await shared.origin.stop();
      await shared.s3.close();
    } finally {
      await rm(shared.dir, { recursive: true, force: true });
    }
  });

  /** The shared servers with Redis, or undefined when the test is skipped (no redis-server). */
  const withRedis = (t: TestContext): (Shared & { redis: RedisServer }) | undefined => {
    if (requireTool(t, "redis-server") === undefined) return undefined;
    assert.ok(shared?.redis !== undefined, "the shared servers did not start");
    return shared as Shared & { redis: RedisServer };
  };

  it("an artifact one replica filled is a HIT on the others, and the upstream saw one request", async (t) => {
    const env = withRedis(t);
    if (env === undefined) return;
    const config = await writeConfig(env, "fill-then-hit", { redisUrl: env.redis.url });
    const replicas = three(await startReplicas(env, config, 3));
    const body = randomBytes(3 * MiB + 17);
    env.origin.files.set("/dist/a/tool-1.0.tar.gz", { body, contentType: "application/gzip" });

    const filled = await get(replicas[0].url, "/files/a/tool-1.0.tar.gz");
    assertWhole(filled, body, "replica 0");
    assert.equal(filled.headers["x-cache"], "MISS");
    await waitForStored(env, config, 1);
    for (const index of [1, 2]) {
      const hit = await get(replicas[index]?.url ?? "", "/files/a/tool-1.0.tar.gz");
      assertWhole(hit, body, `replica ${index}`);
      assert.equal(hit.headers["x-cache"], "HIT", `replica ${index} should serve what replica 0 stored`);
    }
    assert.equal(env.origin.count("/dist/a/tool-1.0.tar.gz"), 1, "one upstream request for the three replicas");
  });

  it("30 concurrent cold requests over 3 replicas make one upstream request, and all get the same bytes", async (t) => {
    const env = withRedis(t);
    if (env === undefined) return;
    const config = await writeConfig(env, "herd", { redisUrl: env.redis.url });
    const replicas = three(await startReplicas(env, config, 3));
    const body = randomBytes(8 * MiB);
    // 64 writes 40 ms apart: about 2.5 s, so all 30 requests arrive while the download runs.
    env.origin.files.set("/dist/b/herd.bin", { body, chunkSize: 128 * 1024, delayMs: 40 });

    const gets = Array.from({ length: 30 }, (_, index) => startGet(replicas[index % 3]?.url ?? "", "/files/b/herd.bin"));
    await Promise.all(gets.map((pending) => pending.sent));
    assert.ok((env.origin.bytesSent.get("/dist/b/herd.bin") ?? 0) < body.length, "the requests did not overlap the download: the origin had already sent everything");
    const results = await Promise.all(gets.map((pending) => pending.done));
    results.forEach((fetched, index) => assertWhole(fetched, body, `client ${index} (replica ${index % 3})`));
    assert.equal(env.origin.count("/dist/b/herd.bin"), 1, "the upstream saw one request for the 30 clients on 3 replicas");
  });

  it("when the replica holding the fill lease is killed mid-download, another takes over and stores the artifact once", async (t) => {
    const env = withRedis(t);
    if (env === undefined) return;
    const config = await writeConfig(env, "lease-takeover", { redisUrl: env.redis.url });
    const [leader, second, third] = three(await startReplicas(env, config, 3));
    // Larger than a part (8 MiB): the takeover's commit is a multipart upload.
    const body = randomBytes(12 * MiB);
    const origin = env.origin;
    // A trickle: 64 KiB every 50 ms, about 10 s for the whole file if left alone.
    origin.files.set("/dist/c/big.iso", { body, chunkSize: 64 * 1024, delayMs: 50 });
    const path = "/files/c/big.iso";

    // Replica 0 is asked first; once the origin has its request, replica 0 holds the lease.
    const leaderClient = startGet(leader.url, path);
    await waitFor("replica 0's upstream request", () => (origin.count("/dist/c/big.iso") >= 1 ? true : undefined), 20_000);
    const joiner = startGet(leader.url, path);
    const followers = [startGet(second.url, path), startGet(third.url, path), startGet(second.url, path), startGet(third.url, path)];
    await Promise.all([joiner, ...followers].map((pending) => pending.sent));
    await waitFor("bytes flowing to replica 0's client", () => (leaderClient.received() >= MiB ? true : undefined), 20_000);

    // From now on the origin answers at once: the replica that takes over gets the file fast.
    origin.files.set("/dist/c/big.iso", { body });
    const upstreamBeforeKill = origin.count("/dist/c/big.iso");
    const sentBeforeKill = origin.bytesSent.get("/dist/c/big.iso") ?? 0;
    await stopReplica(leader, "SIGKILL");
    assert.equal(upstreamBeforeKill, 1, "no other replica went upstream while replica 0 held the lease");
    assert.ok(sentBeforeKill < body.length, "replica 0 was killed mid-download");

    for (const [who, pending] of [["replica 0's first client", leaderClient], ["replica 0's second client", joiner]] as const) {
      const fetched = await pending.done;
      assert.ok(!fetched.complete, `${who} must see the response abort, not end: ${describeFetch(fetched)}`);
      assert.ok(fetched.bytes < body.length, `${who}: ${describeFetch(fetched)}`);
    }
    const survivors = await Promise.all(followers.map((pending) => pending.done));
    survivors.forEach((fetched, index) => assertWhole(fetched, body, `client ${index} of the surviving replicas`));
    assert.equal(origin.count("/dist/c/big.iso"), 2, "one upstream request by replica 0, one by the replica that took over");

    await waitForStored(env, config, 1);
    const hit = await get(second.url, path);
    assertWhole(hit, body, "replica 1, afterwards");
    assert.equal(hit.headers["x-cache"], "HIT");
    const hitOnThird = await get(third.url, path);
    assertWhole(hitOnThird, body, "replica 2, afterwards");
    assert.equal(hitOnThird.headers["x-cache"], "HIT");
    assert.equal(origin.count("/dist/c/big.iso"), 2, "the hits afterwards made no upstream request");
    const stored = await env.s3.names(config.prefix);
    assert.equal(stored.length, 1, `the bucket holds the one verified object: ${JSON.stringify(stored)}`);
    assert.ok(stored[0]?.startsWith(`${config.prefix}cache/objects/`), `the bucket holds the one verified object: ${JSON.stringify(stored)}`);
    assert.deepEqual(await env.s3.openUploads(config.prefix), [], "no multipart upload is left");
  });

  it("with Redis gone, replicas keep serving hits and cold fills, and /health says degraded", async (t) => {
    const env = withRedis(t);
    if (env === undefined) return;
    // A Redis of this test's own: it is stopped mid-test.
    const redis = await startRedis();
    try {
      const config = await writeConfig(env, "redis-down", { redisUrl: redis.url });
      const replicas = await startReplicas(env, config, 2);
      for (const [index, replica] of replicas.entries()) {
        await waitForValue(`replica ${index} healthy with Redis up`, () => health(replica), healthIs("healthy", { mode: "redis", redis: "up" }));
      }
      const cached = randomBytes(2 * MiB + 5);
      env.origin.files.set("/dist/d/cached.bin", { body: cached });
      assertWhole(await get(replicas[0]?.url ?? "", "/files/d/cached.bin"), cached, "replica 0 (fill)");
      await waitForStored(env, config, 1);
      const hitBefore = await get(replicas[1]?.url ?? "", "/files/d/cached.bin");
      assertWhole(hitBefore, cached, "replica 1 (hit)");
      assert.equal(hitBefore.headers["x-cache"], "HIT");

      await redis.stop();

      for (const [index, replica] of replicas.entries()) {
        await waitForValue(`replica ${index} degraded with Redis down`, () => health(replica), healthIs("degraded", { mode: "redis", redis: "down" }), 30_000);
        await waitForValue(
          `replica ${index}'s warning that Redis is unreachable`,
          async () => logLines(replica).filter((line) => line.level === PINO_WARN).map((line) => String(line.msg)),
          (warnings) => warnings.some((msg) => msg.includes("Redis unreachable")),
        );
      }
      for (const [index, replica] of replicas.entries()) {
        const hit = await get(replica.url, "/files/d/cached.bin", 30_000);
        assertWhole(hit, cached, `replica ${index}, hit with Redis down`);
        assert.equal(hit.headers["x-cache"], "HIT");
      }
      // A cold artifact asked of both at once: each fills alone (at most one upstream request each).
      const cold = randomBytes(3 * MiB + 1);
      env.origin.files.set("/dist/d/cold.bin", { body: cold, chunkSize: 256 * 1024, delayMs: 10 });
      const fills = await Promise.all(replicas.map((replica) => get(replica.url, "/files/d/cold.bin", 30_000)));
      fills.forEach((fetched, index) => assertWhole(fetched, cold, `replica ${index}, cold fill with Redis down`));
      const upstream = env.origin.count("/dist/d/cold.bin");
      assert.ok(upstream >= 1 && upstream <= replicas.length, `upstream requests for the cold artifact: ${upstream}`);
    } finally {
      await stopAllReplicas();
      await redis.stop();
    }
  });

  it("a replica without coordination reports mode alone and is healthy", async () => {
    assert.ok(shared !== undefined, "the shared servers did not start");
    const config = await writeConfig(shared, "alone");
    const [replica] = await startReplicas(shared, config, 1);
    assert.ok(replica !== undefined);
    const answer = await health(replica);
    assert.ok(healthIs("healthy", { mode: "alone" })(answer), `GET /health: ${JSON.stringify(answer)}`);
  });

  it("rate limits are counted across replicas: one window for a token, whichever replica it asks", async (t) => {
    const env = withRedis(t);
    if (env === undefined) return;
    const config = await writeConfig(env, "rate-limits", {
      redisUrl: env.redis.url,
      extra: ["rate_limit: {per_ip_per_minute: 20, per_token_per_minute: 20}"],
    });
    const [first, second] = await startReplicas(env, config, 2);
    assert.ok(first !== undefined && second !== undefined);
    // Proxy routes and /health are not rate-limited, and a request without a token never reaches
    // the limiter (401 first): the object listing with a read token is counted per token.
    const ask = async (replica: VaultProcess): Promise<number> =>
      (await rawRequest(replica.url, "/objects?limit=1", { headers: { authorization: `Bearer ${env.tokens["limited"] ?? ""}` } })).status;
    // Should the shared window be a wall-clock minute, 30 quick requests must not straddle two.
    await waitFor("a moment not within 5 s of a minute's end", () => (Date.now() % 60_000 < 55_000 ? true : undefined), 10_000);
    const onFirst: number[] = [];
    for (let i = 0; i < 15; i++) onFirst.push(await ask(first));
    assert.deepEqual(onFirst, Array<number>(15).fill(200), "15 requests are within the limit of 20");
    const onSecond: number[] = [];
    for (let i = 0; i < 15; i++) onSecond.push(await ask(second));
    assert.deepEqual(
      onSecond.filter((status) => status !== 200 && status !== 429),
      [],
      `replica B answered ${onSecond.join(", ")}`,
    );
    const refused = onSecond.filter((status) => status === 429).length;
    assert.ok(refused >= 10, `replica B must refuse what is over the shared limit (at least 10 of 15): it answered ${onSecond.join(", ")}`);
  });

  it("cache statistics are the whole cluster's, on any replica", async (t) => {
    const env = withRedis(t);
    if (env === undefined) return;
    const config = await writeConfig(env, "stats", { redisUrl: env.redis.url });
    const replicas = three(await startReplicas(env, config, 3));
    const one = randomBytes(100_000);
    const two = randomBytes(250_000);
    env.origin.files.set("/dist/f/one.bin", { body: one });
    env.origin.files.set("/dist/f/two.bin", { body: two });
    // one: a miss on replica 0, hits on 1 and 2; two: a miss on 1, hits on 2 and 0.
    const plan: Array<[number, string, Buffer, "MISS" | "HIT"]> = [
      [0, "/files/f/one.bin", one, "MISS"],
      [1, "/files/f/one.bin", one, "HIT"],
      [2, "/files/f/one.bin", one, "HIT"],
      [1, "/files/f/two.bin", two, "MISS"],
      [2, "/files/f/two.bin", two, "HIT"],
      [0, "/files/f/two.bin", two, "HIT"],
    ];
    let stored = 0;
    for (const [index, path, body, status] of plan) {
      const fetched = await get(replicas[index]?.url ?? "", path);
      assertWhole(fetched, body, `replica ${index} ${path}`);
      assert.equal(fetched.headers["x-cache"], status, `replica ${index} ${path}`);
      if (status === "MISS") await waitForStored(env, config, ++stored);
    }
    assert.equal(env.origin.count("/dist/f/one.bin"), 1);
    assert.equal(env.origin.count("/dist/f/two.bin"), 1);
    const expected = { hits: 4, misses: 2, entry_count: 2, total_bytes: one.length + two.length };
    for (const [index, replica] of replicas.entries()) {
      await waitForValue(
        `replica ${index}'s stats to count the whole cluster`,
        async () => {
          const response = await rawRequest(replica.url, "/admin/cache/stats", { headers: { authorization: `Bearer ${env.tokens["admin"] ?? ""}` } });
          assert.equal(response.status, 200, response.body.toString("utf8"));
          const stats = response.json<Record<string, unknown>>();
          return { hits: stats["hits"], misses: stats["misses"], entry_count: stats["entry_count"], total_bytes: stats["total_bytes"] };
        },
        (seen) => seen.hits === expected.hits && seen.misses === expected.misses && seen.entry_count === expected.entry_count && seen.total_bytes === expected.total_bytes,
      );
    }
  });
});
