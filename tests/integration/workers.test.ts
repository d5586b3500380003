/**
 * `workers: 2`: one vault — the built CLI, a primary process and two worker processes on one
 * listening socket — over one filesystem store, coordinated through the primary. Every request
 * here goes on a fresh TCP connection (`agent: false`), and the primary hands connections to the
 * workers in turn, so consecutive requests are answered by both workers: a fill is made once
 * however the herd is spread and every waiter streams; what one worker writes to the object API
 * the other serves at once (its small objects held in memory are dropped); rate limits, cache
 * statistics and the downloads in progress are the whole vault's; a worker that dies is replaced;
 * SIGTERM drains every worker; workers whose primary is killed exit by themselves. (The
 * failed-authentication throttle is not shared yet: its test is a `todo`.)
 *
 * Each test starts its own vault (its own store under the file's temp dir) and stops every
 * process it started, workers included, even when it fails.
 */
import { after, afterEach, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { writeTokensFile } from "../../src/auth/tokens-file.js";
import { encodeKeyPath, rawRequest, type RawResponse } from "../support/http.js";
import { OriginServer } from "../support/origin-server.js";
import { waitFor } from "../support/process.js";
import { tokenRecords } from "../support/test-vault.js";
import { assertWhole, describeFetch, get, startGet, waitForValue } from "../support/streaming-get.js";
import { spawnVault, type VaultProcess } from "../support/vault-process.js";

const MiB = 1024 * 1024;
const KiB = 1024;
const WORKERS = 2;
const PINO_WARN = 40;

// ------------------------------------------------------------------------------------------------
// What the vault says: /health of the worker that answered, and its log lines.

interface WorkerInfo {
  readonly id: number;
  readonly count: number;
  readonly pid: number;
}

interface HealthAnswer {
  readonly status?: unknown;
  readonly coordination?: unknown;
  readonly worker?: WorkerInfo;
}

/** `GET /health` on a fresh connection: the worker that took the connection answers. */
async function health(vault: VaultProcess): Promise<HealthAnswer> {
  const response = await rawRequest(vault.url, "/health");
  assert.equal(response.status, 200, `GET /health: ${response.status} ${response.body.toString("utf8")}`);
  return response.json<HealthAnswer>();
}

/**
 * Asks /health on fresh connections until every worker id 1..WORKERS has answered; returns the
 * pids by id. A connection that fails (a worker just killed) is asked again.
 */
async function workerPids(vault: VaultProcess, timeoutMs = 10_000): Promise<Map<number, number>> {
  const seen = new Map<number, number>();
  await waitForValue(
    `/health answered by each of the ${WORKERS} workers`,
    async () => {
      const answer = await health(vault).catch(() => undefined);
      if (answer?.worker !== undefined) seen.set(answer.worker.id, answer.worker.pid);
      return [...seen.entries()];
    },
    (entries) => entries.length === WORKERS,
    timeoutMs,
  );
  return seen;
}

interface LogLine {
  readonly level?: unknown;
  readonly msg?: unknown;
  /** Present on a worker's lines, absent on the primary's. */
  readonly worker?: unknown;
  readonly url?: unknown;
  readonly status?: unknown;
  readonly [field: string]: unknown;
}

/** The vault's JSON log lines (pino), every process's, skipping anything else printed. */
function logLines(vault: VaultProcess): LogLine[] {
  const lines: LogLine[] = [];
  for (const line of vault.output().split("\n")) {
    if (!line.startsWith("{")) continue;
    try {
      lines.push(JSON.parse(line) as LogLine);
    } catch {
      // a line cut by a kill
    }
  }
  return lines;
}

/** The workers whose access log has a line for `url` (exactly as logged, query included). */
function workersThatServed(vault: VaultProcess, url: string): number[] {
  const workers = logLines(vault)
    .filter((line) => line.msg === "request" && line.url === url)
    .map((line) => Number(line.worker));
  return [...new Set(workers)].sort((a, b) => a - b);
}

/**
 * Waits until the access log has `count` lines for `url` (workers write theirs every 200 ms) and
 * returns the workers that wrote them.
 */
async function awaitAccessLines(vault: VaultProcess, url: string, count: number): Promise<number[]> {
  await waitForValue(
    `${count} access-log lines for ${url}`,
    async () => logLines(vault).filter((line) => line.msg === "request" && line.url === url).length,
    (seen) => seen >= count,
    10_000,
  );
  return workersThatServed(vault, url);
}

/** True while a process with this pid exists (`kill(pid, 0)` throws ESRCH once it is gone). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ESRCH") return false;
    throw error;
  }
}

// ------------------------------------------------------------------------------------------------
// The vaults of the tests, and what they are stopped with.

/** Every vault (primary) a test started and has not stopped yet. */
const running = new Set<VaultProcess>();
/** Every worker pid seen: they exit with their vault; one still running after its test is killed. */
const workerPidsSeen = new Set<number>();

/**
 * SIGKILLs each worker pid seen that is still a worker of a vault (its command line names
 * `worker-main`: the pid of a worker gone long ago may belong to another process by now).
 */
function killStrayWorkers(): void {
  for (const pid of workerPidsSeen) {
    try {
      if (readFileSync(`/proc/${pid}/cmdline`, "utf8").includes("worker-main")) process.kill(pid, "SIGKILL");
    } catch {
      // gone, as it should be (or no /proc: a worker whose primary is gone exits by itself)
    }
  }
  workerPidsSeen.clear();
}

// Should the runner die before `afterEach`, no vault outlives it.
process.once("exit", () => {
  for (const vault of running) vault.kill("SIGKILL");
  killStrayWorkers();
});

/** Waits (at most 20 s, then SIGKILL) for a vault that was told to stop to exit. */
async function exitOf(vault: VaultProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  const timer = setTimeout(() => vault.kill("SIGKILL"), 20_000);
  try {
    return await vault.exited();
  } finally {
    clearTimeout(timer);
    running.delete(vault);
  }
}

async function stopVault(vault: VaultProcess, signal: NodeJS.Signals = "SIGTERM"): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  vault.kill(signal);
  return exitOf(vault);
}

async function stopAll(): Promise<void> {
  await Promise.all([...running].map((vault) => stopVault(vault)));
  // A worker outliving its primary (the test of that failed) is killed by its pid.
  killStrayWorkers();
}

interface Shared {
  readonly dir: string;
  readonly tokensFile: string;
  /** `admin` (admin), `rw` (read, write, delete), `limited` (read). */
  readonly tokens: Readonly<Record<string, string>>;
  readonly origin: OriginServer;
}

function bearer(shared: Shared, name: string): { authorization: string } {
  return { authorization: `Bearer ${shared.tokens[name] ?? "missing-token"}` };
}

/**
 * Starts a vault of `workers: 2` on a store of its own (`cache_dir` under `<dir>/<name>`), an
 * `http` backend `files` on the origin's `/dist`, and `extra` config lines; resolves once the
 * primary says all workers listen (the first `"url"` in the output may be one worker's).
 */
async function startVault(shared: Shared, name: string, extra: readonly string[] = []): Promise<VaultProcess> {
  const home = join(shared.dir, name);
  const spool = join(home, "tmp");
  await mkdir(spool, { recursive: true });
  const file = join(home, "config.yml");
  const lines = [
    "http_host: 127.0.0.1",
    "http_port: 0",
    "log_level: info",
    `workers: ${WORKERS}`,
    "shutdown_timeout: 10s",
    `cache_dir: ${JSON.stringify(join(home, "data"))}`,
    `auth: {tokens_file: ${JSON.stringify(shared.tokensFile)}}`,
    ...extra,
    "backends:",
    `  - {type: http, name: files, config: {prefix: /files/, base_url: ${JSON.stringify(`${shared.origin.url}/dist`)}, timeout: 30, retries: 1}}`,
  ];
  await writeFile(file, `${lines.join("\n")}\n`);
  // TMPDIR: each worker's download spool lands in the test's dir, removed with it.
  const vault = await spawnVault(file, { TMPDIR: spool });
  running.add(vault);
  const listening = await waitForValue(
    "the primary's line that all workers listen",
    async () => logLines(vault).find((line) => line.worker === undefined && line.msg === "artifact-vault listening"),
    (line) => line !== undefined,
    20_000,
  );
  const pids = listening?.["pids"];
  assert.ok(Array.isArray(pids) && pids.length === WORKERS, `the primary's listening line: ${JSON.stringify(listening)}`);
  for (const pid of pids) workerPidsSeen.add(Number(pid));
  assert.equal(listening?.["workers"], WORKERS);
  return vault;
}

/** An entry in the cache listing for `count` entries: the fill is committed in the shared store. */
async function waitForCached(shared: Shared, vault: VaultProcess, count: number): Promise<void> {
  await waitForValue(
    `${count} entries in the cache listing`,
    async () => {
      const response = await rawRequest(vault.url, "/admin/cache/entries", { headers: bearer(shared, "admin") });
      assert.equal(response.status, 200, response.body.toString("utf8"));
      return response.json<{ entries: unknown[] }>().entries.length;
    },
    (entries) => entries >= count,
  );
}

// ------------------------------------------------------------------------------------------------

describe("workers: 2 — one vault, two worker processes on one socket and one filesystem store", { timeout: 300_000 }, () => {
  let shared: Shared | undefined;

  before(async () => {
    const dir = await mkdtemp(join(tmpdir(), "vault-workers-"));
    try {
      const tokensFile = join(dir, "tokens.json");
      const { records, tokens } = await tokenRecords([
        { name: "admin", scopes: ["admin"] },
        { name: "rw", scopes: ["read", "write", "delete"] },
        { name: "limited", scopes: ["read"] },
      ]);
      await writeTokensFile(tokensFile, records);
      const origin = await new OriginServer().start();
      shared = { dir, tokensFile, tokens, origin };
    } catch (error) {
      await rm(dir, { recursive: true, force: true });
      throw error;
    }
  });

  afterEach(stopAll);

  after(async () => {
    await stopAll();
    if (shared === undefined) return;
    try {
      await shared.origin.stop();
    } finally {
      await rm(shared.dir, { recursive: true, force: true });
    }
  });

  const env = (): Shared => {
    assert.ok(shared !== undefined, "the origin did not start");
    return shared;
  };

  it("both workers serve: /health over fresh connections names worker 1 and worker 2, with two pids", { timeout: 60_000 }, async () => {
    const vault = await startVault(env(), "health");
    const answers: HealthAnswer[] = [];
    for (let i = 0; i < 4; i++) answers.push(await health(vault));
    for (const answer of answers) {
      assert.equal(answer.status, "healthy", JSON.stringify(answer));
      assert.deepEqual(answer.coordination, { mode: "workers" }, JSON.stringify(answer));
      assert.equal(answer.worker?.count, WORKERS, JSON.stringify(answer));
    }
    const ids = answers.map((answer) => answer.worker?.id);
    assert.deepEqual([...new Set(ids)].sort((a, b) => (a ?? 0) - (b ?? 0)), [1, 2], `consecutive connections go to the workers in turn: ${JSON.stringify(answers)}`);
    assert.notEqual(ids[0], ids[1], `two consecutive connections went to one worker: ${JSON.stringify(answers)}`);
    const pidsById = new Map(answers.map((answer) => [answer.worker?.id, answer.worker?.pid]));
    assert.equal(new Set(pidsById.values()).size, 2, `two distinct pids: ${JSON.stringify(answers)}`);
    for (const answer of answers) assert.equal(pidsById.get(answer.worker?.id), answer.worker?.pid, `a worker id always has one pid: ${JSON.stringify(answers)}`);
    assert.ok(!pidsById.has(undefined));
    assert.ok(![...pidsById.values()].includes(vault.child.pid), "the primary serves no request itself");
  });

  it("a herd of 30 cold GETs over both workers makes one upstream request, every waiter streams before it ends, all get the bytes", { timeout: 120_000 }, async () => {
    const { origin } = env();
    const vault = await startVault(env(), "herd");
    const body = randomBytes(8 * MiB);
    let release!: () => void;
    const until = new Promise<void>((resolve) => (release = resolve));
    origin.files.set("/dist/herd/big.bin", { body, pauseAfter: { bytes: 2 * MiB, until } });
    const path = "/files/herd/big.bin";

    const gets = Array.from({ length: 30 }, () => startGet(vault.url, path));
    /** Kept and thrown at the end, so that a failure also says how the rest went. */
    let streamingFailure: Error | undefined;
    try {
      await Promise.all(gets.map((pending) => pending.sent));
      await waitFor("the fill's upstream request", () => (origin.count("/dist/herd/big.bin") >= 1 ? true : undefined), 20_000);
      try {
        // Every waiter streams, whichever worker it is on, while the download is held part-way.
        await waitForValue(
          "every one of the 30 clients to receive body bytes while the origin holds the download at 2 MiB",
          async () => gets.map((pending) => pending.received()),
          (received) => received.every((bytes) => bytes > 0),
          20_000,
        );
      } catch (error) {
        streamingFailure = error as Error;
      }
      assert.ok((origin.bytesSent.get("/dist/herd/big.bin") ?? 0) < body.length, "the origin was still holding the download");
    } finally {
      release();
    }
    const results = await Promise.all(gets.map((pending) => pending.done));
    results.forEach((fetched, index) => assertWhole(fetched, body, `client ${index}`));
    assert.equal(origin.count("/dist/herd/big.bin"), 1, "the upstream saw one request for the 30 clients on 2 workers");
    const workers = await awaitAccessLines(vault, path, 30);
    assert.deepEqual(workers, [1, 2], "the herd was spread over both workers");
    if (streamingFailure !== undefined) throw streamingFailure;
  });

  it("downloads in progress: either worker lists every worker's, a download followed by the other worker once with the waiters of both, and stats count them", { timeout: 120_000 }, async () => {
    const shared = env();
    const { origin } = shared;
    const vault = await startVault(shared, "fills");
    const held = 1 * MiB;
    let release!: () => void;
    const until = new Promise<void>((resolve) => (release = resolve));
    const bodies = new Map([
      ["one", randomBytes(3 * MiB)],
      ["two", randomBytes(3 * MiB + 1)],
      ["herd", randomBytes(4 * MiB)],
    ]);
    for (const [name, body] of bodies) origin.files.set(`/dist/fills/${name}.bin`, { body, pauseAfter: { bytes: held, until } });
    const started = (name: string) => () => (origin.count(`/dist/fills/${name}.bin`) >= 1 ? true : undefined);
    const HERD = 4;

    interface FillAnswer {
      readonly key: string;
      readonly backend: string;
      readonly bytes: number;
      readonly total: number | null;
      readonly percent: number | null;
      readonly started_at: string;
      readonly waiters: number;
    }
    const admin = bearer(shared, "admin");
    /** `GET /admin/cache/fills` on a fresh connection: the next worker answers. */
    const fills = async (): Promise<FillAnswer[]> => {
      const response = await rawRequest(vault.url, "/admin/cache/fills", { headers: admin });
      assert.equal(response.status, 200, response.body.toString("utf8"));
      return response.json<{ fills: FillAnswer[] }>().fills;
    };
    const fillsInProgress = async (): Promise<number> => {
      const response = await rawRequest(vault.url, "/admin/cache/stats", { headers: admin });
      assert.equal(response.status, 200, response.body.toString("utf8"));
      return response.json<{ fills_in_progress: number }>().fills_in_progress;
    };

    // Two downloads on consecutive connections (one on each worker), then a herd over both workers.
    const gets = new Map<string, ReturnType<typeof startGet>[]>();
    try {
      gets.set("one", [startGet(vault.url, "/files/fills/one.bin")]);
      await waitFor("the first download's upstream request", started("one"), 20_000);
      gets.set("two", [startGet(vault.url, "/files/fills/two.bin")]);
      await waitFor("the second download's upstream request", started("two"), 20_000);
      const herd = Array.from({ length: HERD }, () => startGet(vault.url, "/files/fills/herd.bin"));
      gets.set("herd", herd);
      await waitForValue(
        "every client of the herd to receive bytes (the other worker follows the download)",
        async () => herd.map((pending) => pending.received()),
        (received) => received.every((bytes) => bytes > 0),
      );

      // Held at `held` bytes each: the list is steady once every download has written them.
      const expected = ["one", "two", "herd"].map((name) => ({ key: `files/fills/${name}.bin`, bytes: held, waiters: name === "herd" ? HERD : 1 }));
      const [first] = await waitForValue(
        "two consecutive answers (both workers) listing the three downloads held",
        async () => [await fills(), await fills()] as const,
        (answers) => answers.every((list) => JSON.stringify(list.map(({ key, bytes, waiters }) => ({ key, bytes, waiters }))) === JSON.stringify(expected)),
      );
      for (const fill of first) {
        const body = bodies.get(fill.key.slice("files/fills/".length, -".bin".length));
        assert.equal(fill.backend, "files");
        assert.equal(fill.total, body?.length, `${fill.key}: its size`);
        assert.equal(fill.percent, Math.round((held / (body?.length ?? 1)) * 1000) / 10, `${fill.key}: its percent`);
        assert.ok(Date.parse(fill.started_at) <= Date.now(), `${fill.key}: started_at ${fill.started_at}`);
      }
      for (let i = 0; i < 6; i++) assert.deepEqual(await fills(), first, `answer ${i}: the same list from either worker`);
      for (let i = 0; i < 4; i++) assert.equal(await fillsInProgress(), first.length, `stats ${i}: fills_in_progress`);
      assert.deepEqual(await awaitAccessLines(vault, "/admin/cache/fills", 8), [1, 2], "the downloads were listed by both workers");
      assert.deepEqual(await awaitAccessLines(vault, "/admin/cache/stats", 4), [1, 2], "the stats were answered by both workers");
    } finally {
      release();
    }
    for (const [name, pendings] of gets) {
      const results = await Promise.all(pendings.map((pending) => pending.done));
      results.forEach((fetched, index) => assertWhole(fetched, bodies.get(name) ?? Buffer.alloc(0), `${name}, client ${index}`));
    }
    await waitForValue(
      "two consecutive answers (both workers) listing no download",
      async () => [await fills(), await fills()],
      (answers) => answers.every((list) => list.length === 0),
    );
    assert.equal(await fillsInProgress(), 0);
    // What the lists were made of: a download on each worker, and the herd's download followed by the other.
    const one = await awaitAccessLines(vault, "/files/fills/one.bin", 1);
    const two = await awaitAccessLines(vault, "/files/fills/two.bin", 1);
    assert.equal(one.length, 1);
    assert.notDeepEqual(one, two, "the first two downloads ran on different workers");
    assert.deepEqual(await awaitAccessLines(vault, "/files/fills/herd.bin", HERD), [1, 2], "the herd was spread over both workers");
    for (const name of bodies.keys()) assert.equal(origin.count(`/dist/fills/${name}.bin`), 1, `${name}: one upstream request`);
  });

  it("the object API: what one worker stores, overwrites and deletes is what the other serves next; one create-only PUT wins a race", { timeout: 60_000 }, async () => {
    const shared = env();
    const vault = await startVault(shared, "objects");
    const auth = bearer(shared, "rw");
    const prefix = `workers/${randomBytes(4).toString("hex")}/`;
    const key = `${prefix}small.bin`;
    const keyPath = `/objects/${encodeKeyPath(key)}`;
    const first = randomBytes(2 * KiB);
    const put = async (bytes: Buffer, headers: Record<string, string> = {}): Promise<RawResponse> =>
      rawRequest(vault.url, keyPath, { method: "PUT", body: bytes, headers: { ...auth, "content-type": "application/octet-stream", ...headers } });
    /** 10 GETs, each on a fresh connection (so by both workers, in turn). */
    const tenGets = async (): Promise<RawResponse[]> => {
      const answers: RawResponse[] = [];
      for (let i = 0; i < 10; i++) answers.push(await rawRequest(vault.url, keyPath, { headers: auth }));
      return answers;
    };
    const assertAllServe = (answers: RawResponse[], bytes: Buffer, what: string): void => {
      answers.forEach((answer, index) => {
        assert.equal(answer.status, 200, `${what}, GET ${index}: ${answer.status} ${answer.body.toString("utf8").slice(0, 200)}`);
        assert.ok(answer.body.equals(bytes), `${what}, GET ${index}: other bytes (${answer.body.length})`);
      });
    };
    const listed = async (): Promise<string[]> => {
      const response = await rawRequest(vault.url, `/objects?prefix=${encodeURIComponent(prefix)}`, { headers: auth });
      assert.equal(response.status, 200, response.body.toString("utf8"));
      return [...response.json<{ keys: string[] }>().keys];
    };

    const created = await put(first);
    assert.equal(created.status, 200, created.body.toString("utf8"));
    assert.equal(created.json<{ size: number }>().size, first.length);
    assertAllServe(await tenGets(), first, "after the PUT");
    for (let i = 0; i < 4; i++) assert.deepEqual(await listed(), [key], `listing ${i} after the PUT`);

    const second = randomBytes(2 * KiB);
    const overwritten = await put(second);
    assert.equal(overwritten.status, 200, overwritten.body.toString("utf8"));
    // Both workers held the first version in memory after serving it: each must drop it.
    assertAllServe(await tenGets(), second, "after the overwrite");

    const deleted = await rawRequest(vault.url, keyPath, { method: "DELETE", headers: auth });
    assert.equal(deleted.status, 204, deleted.body.toString("utf8"));
    const gone = await tenGets();
    assert.deepEqual(
      gone.map((answer) => answer.status),
      Array<number>(10).fill(404),
      "after the DELETE",
    );
    for (let i = 0; i < 4; i++) assert.deepEqual(await listed(), [], `listing ${i} after the DELETE`);
    const served = await awaitAccessLines(vault, keyPath, 33);
    assert.deepEqual(served, [1, 2], "the object requests were answered by both workers");

    // A create-only race: ten PUTs of a new key at once, on ten connections (both workers).
    const raceKey = `${prefix}race.bin`;
    const racePath = `/objects/${encodeKeyPath(raceKey)}`;
    const bodies = Array.from({ length: 10 }, () => randomBytes(2 * KiB));
    const answers = await Promise.all(
      bodies.map((bytes) =>
        rawRequest(vault.url, racePath, { method: "PUT", body: bytes, headers: { ...auth, "content-type": "application/octet-stream", "if-none-match": "*" } }),
      ),
    );
    const statuses = answers.map((answer) => answer.status);
    const winners = statuses.flatMap((status, index) => (status >= 200 && status < 300 ? [index] : []));
    assert.equal(winners.length, 1, `exactly one create-only PUT succeeds: ${statuses.join(", ")}`);
    assert.equal(statuses.filter((status) => status === 412).length, 9, `the others are 412: ${statuses.join(", ")}`);
    const winner = bodies[winners[0] ?? -1];
    assert.ok(winner !== undefined);
    for (let i = 0; i < 6; i++) {
      const answer = await rawRequest(vault.url, racePath, { headers: auth });
      assert.equal(answer.status, 200, `GET ${i} of the raced key`);
      assert.ok(answer.body.equals(winner), `GET ${i} of the raced key: the winner's bytes`);
    }
    assert.deepEqual(await awaitAccessLines(vault, racePath, 16), [1, 2], "the race was spread over both workers");
  });

  it("a token's rate limit is one window for the whole vault, whichever worker answers", { timeout: 60_000 }, async () => {
    const shared = env();
    const vault = await startVault(shared, "rate-token", ["rate_limit: {per_ip_per_minute: 8, per_token_per_minute: 8}"]);
    // Proxy routes and /health are not rate-limited; the object listing with a token is, per token.
    const url = "/objects?prefix=rate-token";
    const statuses: number[] = [];
    for (let i = 0; i < 12; i++) statuses.push((await rawRequest(vault.url, url, { headers: bearer(shared, "limited") })).status);
    assert.deepEqual(statuses, [...Array<number>(8).fill(200), ...Array<number>(4).fill(429)], `12 requests of one token, limit 8: ${statuses.join(", ")}`);
    assert.deepEqual(await awaitAccessLines(vault, url, 12), [1, 2], "the requests were answered by both workers");
  });

  it("failed authentication is throttled per address for the whole vault, whichever worker answers", { timeout: 60_000 }, async () => {
    const shared = env();
    const vault = await startVault(shared, "rate-anonymous", ["rate_limit: {per_ip_per_minute: 8, per_token_per_minute: 8}"]);
    // Without a token the object API answers 401 before its rate limiter runs; past
    // `per_ip_per_minute` failures an address gets 429 instead, counted in the primary.
    const url = "/objects?prefix=rate-anonymous";
    const statuses: number[] = [];
    for (let i = 0; i < 12; i++) statuses.push((await rawRequest(vault.url, url)).status);
    assert.deepEqual(await awaitAccessLines(vault, url, 12), [1, 2], "the requests were answered by both workers");
    assert.deepEqual(statuses, [...Array<number>(8).fill(401), ...Array<number>(4).fill(429)], `12 anonymous requests, 8 failures allowed per address: ${statuses.join(", ")}`);
  });

  it("cache statistics count the hits of both workers, asked of either", { timeout: 60_000 }, async () => {
    const shared = env();
    const vault = await startVault(shared, "stats");
    const body = randomBytes(300 * KiB + 7);
    shared.origin.files.set("/dist/stats/one.bin", { body });
    const path = "/files/stats/one.bin";
    const miss = await get(vault.url, path);
    assertWhole(miss, body, "the first GET");
    assert.equal(miss.headers["x-cache"], "MISS");
    await waitForCached(shared, vault, 1);
    for (let i = 0; i < 10; i++) {
      const hit = await get(vault.url, path);
      assertWhole(hit, body, `hit ${i}`);
      assert.equal(hit.headers["x-cache"], "HIT", `hit ${i}`);
    }
    assert.deepEqual(await awaitAccessLines(vault, path, 11), [1, 2], "the hits were answered by both workers");
    assert.equal(shared.origin.count("/dist/stats/one.bin"), 1);

    const expected = { hits: 10, misses: 1, entry_count: 1, total_bytes: body.length };
    const stats = async (): Promise<typeof expected> => {
      const response = await rawRequest(vault.url, "/admin/cache/stats", { headers: bearer(shared, "admin") });
      assert.equal(response.status, 200, response.body.toString("utf8"));
      const answer = response.json<Record<string, unknown>>();
      return { hits: answer["hits"] as number, misses: answer["misses"] as number, entry_count: answer["entry_count"] as number, total_bytes: answer["total_bytes"] as number };
    };
    // Counts reach the primary in batches: ask (twice, on two connections: both workers) until they are all in.
    const [one, two] = await waitForValue(
      "both workers' stats to count every request",
      async () => [await stats(), await stats()] as const,
      ([a, b]) => JSON.stringify(a) === JSON.stringify(expected) && JSON.stringify(b) === JSON.stringify(expected),
    );
    assert.deepEqual(one, two);
    await waitForValue("access-log lines of /admin/cache/stats from both workers", async () => workersThatServed(vault, "/admin/cache/stats"), (workers) => workers.length === 2, 5_000);
  });

  it("a worker killed with SIGKILL is replaced (same id, new pid) and requests keep succeeding", { timeout: 60_000 }, async (t) => {
    const shared = env();
    const vault = await startVault(shared, "crash");
    const body = randomBytes(256 * KiB + 3);
    shared.origin.files.set("/dist/crash/cached.bin", { body });
    const path = "/files/crash/cached.bin";
    assertWhole(await get(vault.url, path), body, "the fill");
    await waitForCached(shared, vault, 1);
    const initial = await workerPids(vault);
    const victim = 1;
    const victimPid = initial.get(victim);
    const survivorPid = initial.get(2);
    assert.ok(victimPid !== undefined && survivorPid !== undefined);

    process.kill(victimPid, "SIGKILL");
    const killedAt = Date.now();
    let retried = 0;
    /**
     * A GET on a fresh connection, retried once if no response head arrives: the primary may have
     * handed the connection to the killed worker before it saw it die. Such a connection is not
     * even reset: node:cluster's round-robin handle keeps its copy of the socket open until the
     * worker says it accepted it, which a dead worker never does, so the client waits in vain —
     * hence the short timeout of a first attempt (a hit of 256 KiB takes milliseconds). A second
     * failure, or any answer but the whole body, fails the test.
     */
    const getOnce = async (): Promise<void> => {
      let fetched = await get(vault.url, path, 5_000);
      if (fetched.status === undefined) {
        retried++;
        t.diagnostic(`retrying a GET after the kill: ${describeFetch(fetched)}`);
        fetched = await get(vault.url, path, 20_000);
      }
      assertWhole(fetched, body, "a GET while a worker is replaced");
    };
    await getOnce();
    await getOnce();

    const warning = `worker ${victim} exited (SIGKILL): starting a new one`;
    await waitForValue(
      `the primary's warning "${warning}"`,
      async () => logLines(vault).filter((line) => line.level === PINO_WARN).map((line) => String(line.msg)),
      (warnings) => warnings.includes(warning),
      10_000,
    ).catch((error: unknown) => {
      throw new Error(`${(error as Error).message}\n${Date.now() - killedAt} ms after the kill; output:\n${vault.output()}`);
    });
    // Until the replacement answers /health: a GET and two /health (so both workers are asked) each round.
    const seen = new Map<number, number>();
    const replacement = await waitForValue(
      `worker ${victim} answering /health with a new pid`,
      async () => {
        await getOnce();
        for (let i = 0; i < 2; i++) {
          const answer = await health(vault).catch(() => undefined);
          if (answer?.worker !== undefined) seen.set(answer.worker.id, answer.worker.pid);
        }
        return seen.get(victim);
      },
      (pid) => pid !== undefined && pid !== victimPid,
      20_000,
    );
    assert.ok(replacement !== undefined);
    workerPidsSeen.add(replacement);
    assert.equal(alive(victimPid), false, "the killed worker is gone");
    const now = await workerPids(vault);
    assert.deepEqual(Object.fromEntries(now), { 1: replacement, 2: survivorPid }, "worker 1 has a new pid, worker 2 its old one");
    for (let i = 0; i < 6; i++) await getOnce();
    const replaced = await awaitAccessLines(vault, path, 1);
    assert.ok(replaced.length > 0);
    t.diagnostic(`connection errors retried after the kill: ${retried}`);
  });

  it("SIGTERM drains both workers: downloads in flight complete, every worker exits, the primary exits 0", { timeout: 60_000 }, async () => {
    const shared = env();
    const vault = await startVault(shared, "drain");
    const pids = await workerPids(vault);
    // 24 writes 50 ms apart: about 1.2 s each.
    const bodies = [randomBytes(1536 * KiB), randomBytes(1536 * KiB + 1)];
    bodies.forEach((body, index) => shared.origin.files.set(`/dist/drain/slow-${index}.bin`, { body, chunkSize: 64 * KiB, delayMs: 50 }));
    // Two consecutive fresh connections: one to each worker.
    const gets = bodies.map((_, index) => startGet(vault.url, `/files/drain/slow-${index}.bin`));
    await waitForValue(
      "both downloads receiving bytes",
      async () => gets.map((pending) => pending.received()),
      (received) => received.every((bytes) => bytes > 0),
    );
    vault.kill("SIGTERM");
    const results = await Promise.all(gets.map((pending) => pending.done));
    results.forEach((fetched, index) => assertWhole(fetched, bodies[index] ?? Buffer.alloc(0), `download ${index}, across SIGTERM`));
    const exit = await exitOf(vault);
    assert.deepEqual(exit, { code: 0, signal: null }, `the primary's exit:\n${vault.output().slice(-3000)}`);
    for (const [id, pid] of pids) assert.equal(alive(pid), false, `worker ${id} (pid ${pid}) is gone`);
    const stopped = logLines(vault)
      .filter((line) => line.msg === "stopped")
      .map((line) => Number(line.worker));
    assert.deepEqual(stopped.sort((a, b) => a - b), [1, 2], "each worker logged that it stopped");
    const served = bodies.flatMap((_, index) => workersThatServed(vault, `/files/drain/slow-${index}.bin`));
    assert.deepEqual(served.sort((a, b) => a - b), [1, 2], "one download was on each worker");
  });

  it("workers whose primary is killed with SIGKILL exit by themselves", { timeout: 60_000 }, async () => {
    const vault = await startVault(env(), "orphans");
    const pids = await workerPids(vault);
    const exit = await stopVault(vault, "SIGKILL");
    assert.equal(exit.signal, "SIGKILL");
    await waitForValue(
      "every worker to exit",
      async () => [...pids].filter(([, pid]) => alive(pid)),
      (living) => living.length === 0,
      10_000,
    );
  });
});
