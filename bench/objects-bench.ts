/**
 * `npm run bench:objects` — the object store against nginx + WebDAV, side by side in one run:
 *
 *   - GET and PUT of 4 KiB objects, 64 connections, wrk (ops/s, p99); the GET also against the
 *     "Node ceiling", a bare node:http server serving the same objects at the same URLs after
 *     checking the same bearer token (bench/lib/node-ceiling-main.ts)
 *   - GET and PUT of one 256 MiB object, curl, best of 3 (MB/s)
 *   - peak RSS of each server during the 256 MiB transfers
 *   - one list page of 100 keys at random positions in stores of 10,000 and 100,000 objects
 *   - `s3`: the 4 KiB and large-object rows again (64 MiB by default) for a vault on the S3 driver
 *     (the tests' s3rver, in a process of its own on the server core) against a vault on the
 *     filesystem driver, with the S3 server's share of the CPU
 *
 * Servers run on core 0 (nginx with one worker), load generators on core 1. Everything lives in a
 * temp dir that is removed at the end, whatever happens. See bench/README.md.
 */
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, statSync, writeFileSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { curlGet, curlPut, writeRandomFile } from "./lib/curl.js";
import { makeWorkDir, onAllCores, pinCpus, requireTools, type CpuLayout } from "./lib/environment.js";
import { BenchClient } from "./lib/http-client.js";
import { runBenchmark, UsageError } from "./lib/lifecycle.js";
import { startNginxWebdav } from "./lib/nginx.js";
import { NODE_CEILING, startNodeCeiling } from "./lib/node-ceiling.js";
import { openFilesystemDriver, writeThroughDriver } from "./lib/populate.js";
import { cpuSeconds, PeakRssMeter } from "./lib/proc-stats.js";
import { runChecked } from "./lib/processes.js";
import { s3RequestsBetween, startS3Server, startVaultsOnFsAndS3, type S3Server } from "./lib/s3.js";
import { renderTable, type Row } from "./lib/report.js";
import { best, median, quantile } from "./lib/stats.js";
import { objectPath, type SystemUnderTest } from "./lib/system-under-test.js";
import { startVault, VAULT_CLI, vaultIsBuilt, type VaultServer } from "./lib/vault.js";
import { runWrk, type WrkResult } from "./lib/wrk.js";

const SECTIONS: readonly string[] = ["small", "large", "list", "s3"];

const USAGE = `usage: npm run bench:objects -- [options]

  --seconds N        measured seconds per wrk run (default 6)
  --warmup N         warm-up seconds before each wrk run (default 2)
  --rounds N         wrk rounds per system, alternating order; the best counts (default 2)
  --connections N    wrk connections (default 64)
  --large-mib N      size of the large object in MiB (default 256)
  --s3-large-mib N   size of the large object in the s3 section, MiB (default 64)
  --list-sizes A,B   store sizes for the list benchmark (default 10000,100000)
  --only LIST        sections to run: small,large,list,s3 (default all)
  --profile          run the vault under --cpu-prof; the .cpuprofile files are kept and named
  --quick            a short smoke run (1 s wrk, 32 MiB, stores of 1,000 and 5,000)
  -h, --help`;

interface Options {
  readonly seconds: number;
  readonly warmup: number;
  readonly rounds: number;
  readonly connections: number;
  readonly largeBytes: number;
  readonly s3LargeBytes: number;
  readonly listSizes: readonly number[];
  readonly sections: ReadonlySet<string>;
  readonly profile: boolean;
}

function parseOptions(): Options {
  let parsed;
  try {
    parsed = parseArgs({
      options: {
        seconds: { type: "string" },
        warmup: { type: "string" },
        rounds: { type: "string" },
        connections: { type: "string" },
        "large-mib": { type: "string" },
        "s3-large-mib": { type: "string" },
        "list-sizes": { type: "string" },
        only: { type: "string" },
        profile: { type: "boolean", default: false },
        quick: { type: "boolean", default: false },
        help: { type: "boolean", short: "h", default: false },
      },
      strict: true,
    }).values;
  } catch (error) {
    throw new UsageError(`${error instanceof Error ? error.message : String(error)}\n${USAGE}`);
  }
  if (parsed.help) {
    console.log(USAGE);
    process.exit(0);
  }
  const quick = parsed.quick;
  const int = (name: string, value: string | undefined, fallback: number): number => {
    if (value === undefined) return fallback;
    const n = Number(value);
    if (!Number.isInteger(n) || n < 0) throw new UsageError(`--${name}: expected a whole number, got "${value}"`);
    return n;
  };
  const listSizes = (parsed["list-sizes"] ?? (quick ? "1000,5000" : "10000,100000"))
    .split(",")
    .map((s) => int("list-sizes", s.trim(), 0));
  if (listSizes.length !== 2 || listSizes.some((n) => n < 200) || (listSizes[0] ?? 0) >= (listSizes[1] ?? 0)) {
    throw new UsageError("--list-sizes: expected two increasing sizes of at least 200, e.g. 10000,100000");
  }
  const sections = new Set((parsed.only ?? SECTIONS.join(",")).split(",").map((s) => s.trim()));
  for (const section of sections) {
    if (!SECTIONS.includes(section)) throw new UsageError(`--only: unknown section "${section}" (known: ${SECTIONS.join(", ")})`);
  }
  return {
    seconds: int("seconds", parsed.seconds, quick ? 1 : 6),
    warmup: int("warmup", parsed.warmup, quick ? 1 : 2),
    rounds: Math.max(1, int("rounds", parsed.rounds, quick ? 1 : 2)),
    connections: Math.max(1, int("connections", parsed.connections, 64)),
    largeBytes: int("large-mib", parsed["large-mib"], quick ? 32 : 256) * 1024 * 1024,
    s3LargeBytes: int("s3-large-mib", parsed["s3-large-mib"], quick ? 32 : 64) * 1024 * 1024,
    listSizes,
    sections,
    profile: parsed.profile,
  };
}

const SMALL_BYTES = 4096;
const SMALL_KEYS = 1000;
const GET_KEY = (i: number): string => `get4k-${String(i).padStart(5, "0")}`;
const LIST_PAGE = 100;
const LIST_SAMPLES = 300;
const LIST_WARMUP = 20;
const MB = 1e6;

function log(message: string): void {
  console.error(`[bench:objects] ${message}`);
}

function smallBody(i: number): Buffer {
  return Buffer.alloc(SMALL_BYTES, `object ${i} `);
}

/** Checks that both systems serve the same bytes for the same URL before timing anything. */
async function verifySmallObjects(systems: readonly SystemUnderTest[]): Promise<void> {
  for (const system of systems) {
    const client = new BenchClient(system, 1);
    try {
      for (const i of [0, SMALL_KEYS - 1]) {
        const { status, body } = await client.request("GET", objectPath(GET_KEY(i)));
        if (status !== 200 || !body.equals(smallBody(i))) {
          throw new Error(`${system.name}: GET ${GET_KEY(i)} returned ${status} with ${body.length} bytes`);
        }
      }
    } finally {
      await client.close();
    }
  }
}

interface WrkBest {
  readonly best: WrkResult;
  readonly all: readonly WrkResult[];
}

/**
 * The 4 KiB GET and PUT wrk rounds. `readOnly` systems (the Node ceiling) already serve the
 * objects (written before they started): they are checked and take part in the GET rounds, not
 * in the PUT rounds (their `put` is undefined).
 */
async function smallObjects(
  workDir: string,
  systems: readonly SystemUnderTest[],
  options: Options,
  cpus: CpuLayout,
  readOnly: readonly SystemUnderTest[] = [],
): Promise<Map<string, { get: WrkBest; put: WrkBest | undefined }>> {
  log(`small objects: storing ${SMALL_KEYS} × 4 KiB in each system`);
  for (const system of systems) {
    const client = new BenchClient(system, 16);
    try {
      await client.putMany(SMALL_KEYS, (i) => objectPath(GET_KEY(i)), smallBody, 16);
    } finally {
      await client.close();
    }
  }
  const all = [...systems, ...readOnly];
  await verifySmallObjects(all);

  const results = new Map<string, { get: WrkResult[]; put: WrkResult[] }>();
  for (const system of all) results.set(system.name, { get: [], put: [] });
  for (const method of ["GET", "PUT"] as const) {
    const measured = method === "GET" ? all : systems;
    for (let round = 0; round < options.rounds; round++) {
      // Alternate who goes first, so drift on a noisy machine does not favour one side.
      const order = round % 2 === 0 ? measured : [...measured].reverse();
      for (const system of order) {
        const result = await runWrk(
          workDir,
          system,
          {
            method,
            pathPattern: method === "GET" ? "/objects/get4k-%05d" : "/objects/put4k-{thread}-%05d",
            keyCount: SMALL_KEYS,
            ...(method === "PUT" ? { bodyBytes: SMALL_BYTES } : {}),
            connections: options.connections,
            warmupSeconds: options.warmup,
            seconds: options.seconds,
          },
          cpus.load,
        );
        log(
          `${method} 4 KiB ${system.name} round ${round + 1}: ${Math.round(result.opsPerSecond)} ops/s, ` +
            `p99 ${result.p99Ms.toFixed(2)} ms, server CPU ${Math.round(result.serverCpu * 100)}%` +
            (system.backing === undefined ? "" : ` + ${system.backing.name} ${Math.round(result.backingCpu * 100)}%`) +
            (result.errors > 0 ? `, ${result.errors} ERRORS` : ""),
        );
        const entry = results.get(system.name);
        (method === "GET" ? entry?.get : entry?.put)?.push(result);
      }
    }
  }
  const pick = (rounds: WrkResult[]): WrkBest => ({
    best: rounds.reduce((a, b) => (b.opsPerSecond > a.opsPerSecond ? b : a)),
    all: rounds,
  });
  const out = new Map<string, { get: WrkBest; put: WrkBest | undefined }>();
  for (const [name, { get, put }] of results) out.set(name, { get: pick(get), put: put.length === 0 ? undefined : pick(put) });
  return out;
}

interface LargeResult {
  readonly getBytesPerSecond: number;
  readonly putBytesPerSecond: number;
  /** Share of one core the server used over the 3 GETs / the 3 PUTs. */
  readonly getCpu: number;
  readonly putCpu: number;
  /** The same for the system's `backing` processes (the S3 server); 0 without. */
  readonly getBackingCpu: number;
  readonly putBackingCpu: number;
  /** The S3 requests the 3 PUTs / the 3 GETs caused, when an S3 server is given. */
  readonly putS3Requests?: string;
  readonly getS3Requests?: string;
  readonly peakRssBytes: number;
  readonly rssMethod: string;
}

async function largeObject(
  file: string,
  size: number,
  system: SystemUnderTest,
  cpus: CpuLayout,
  s3?: S3Server,
): Promise<LargeResult> {
  const path = objectPath("large-object.bin");
  const meter = new PeakRssMeter(system.pids);
  meter.start();
  const puts: number[] = [];
  const gets: number[] = [];
  let rss: ReturnType<PeakRssMeter["stop"]>;
  const cpuOf = (pids: readonly number[]): number => pids.reduce((sum, pid) => sum + cpuSeconds(pid), 0);
  const backingPids = system.backing?.pids ?? [];
  const mark = async (): Promise<{ cpu: number; backing: number; at: number; s3: Awaited<ReturnType<S3Server["stats"]>> | undefined }> => ({
    s3: await s3?.stats(),
    cpu: cpuOf(system.pids),
    backing: cpuOf(backingPids),
    at: performance.now(),
  });
  const since = async (start: Awaited<ReturnType<typeof mark>>): Promise<{ cpu: number; backing: number; s3Requests: string | undefined }> => {
    const seconds = (performance.now() - start.at) / 1000;
    const cpu = (cpuOf(system.pids) - start.cpu) / seconds;
    const backing = (cpuOf(backingPids) - start.backing) / seconds;
    const s3Now = await s3?.stats();
    return { cpu, backing, s3Requests: start.s3 === undefined || s3Now === undefined ? undefined : s3RequestsBetween(start.s3, s3Now).text };
  };
  let putCpu = { cpu: 0, backing: 0, s3Requests: undefined as string | undefined };
  let getCpu = putCpu;
  try {
    let start = await mark();
    for (let i = 0; i < 3; i++) {
      const put = await curlPut(system, path, file, cpus.load);
      if (put.status < 200 || put.status >= 300 || put.bytes !== size) {
        throw new Error(`${system.name}: PUT of ${size} bytes answered ${put.status} after ${put.bytes} bytes`);
      }
      puts.push(put.bytesPerSecond);
    }
    putCpu = await since(start);
    start = await mark();
    for (let i = 0; i < 3; i++) {
      const get = await curlGet(system, path, cpus.load);
      if (get.status !== 200 || get.bytes !== size) {
        throw new Error(`${system.name}: GET answered ${get.status} with ${get.bytes} of ${size} bytes`);
      }
      gets.push(get.bytesPerSecond);
    }
    getCpu = await since(start);
  } finally {
    rss = meter.stop();
  }
  log(
    `large object ${system.name}: PUT ${puts.map((b) => Math.round(b / MB)).join("/")} MB/s, ` +
      `GET ${gets.map((b) => Math.round(b / MB)).join("/")} MB/s, peak RSS ${Math.round(rss.bytes / MB)} MB`,
  );
  return {
    getBytesPerSecond: best(gets),
    putBytesPerSecond: best(puts),
    getCpu: getCpu.cpu,
    putCpu: putCpu.cpu,
    getBackingCpu: getCpu.backing,
    putBackingCpu: putCpu.backing,
    ...(putCpu.s3Requests === undefined ? {} : { putS3Requests: putCpu.s3Requests }),
    ...(getCpu.s3Requests === undefined ? {} : { getS3Requests: getCpu.s3Requests }),
    peakRssBytes: rss.bytes,
    rssMethod: rss.method,
  };
}

interface ListResult {
  readonly size: number;
  readonly medianMs: number;
  readonly p99Ms: number;
}

const LIST_KEY = (i: number): string =>
  `datasets/group-${String(i % 100).padStart(3, "0")}/object-${String(i).padStart(7, "0")}.bin`;

/** The source design's cursor: base64 of `{"last_key": ...}`. Checked against a real one first. */
function cursorAfter(key: string): string {
  return Buffer.from(JSON.stringify({ last_key: key }), "utf8").toString("base64");
}

interface ListPageBody {
  readonly keys: readonly string[];
  readonly next_cursor: string | null;
  readonly has_more: boolean;
}

/** Times single list pages at random positions of one store, checking each page's keys. */
class ListProbe {
  readonly latencies: number[] = [];
  readonly #client: BenchClient;
  /** Keys are ASCII, so JavaScript's sort is the server's UTF-8 byte order. */
  readonly #sorted: readonly string[];

  constructor(
    readonly vault: VaultServer,
    readonly size: number,
  ) {
    this.#client = new BenchClient(vault, 1);
    this.#sorted = Array.from({ length: size }, (_, i) => LIST_KEY(i)).sort();
  }

  async checkFirstPage(): Promise<void> {
    const first = await this.#client.getJson<ListPageBody>(`/objects?limit=${LIST_PAGE}`);
    if (first.keys.length !== LIST_PAGE || first.keys[0] !== this.#sorted[0] || first.next_cursor === null) {
      throw new Error(`list: first page does not match the ${this.size} stored keys: ${JSON.stringify(first).slice(0, 300)}`);
    }
    const decoded = Buffer.from(first.next_cursor, "base64").toString("utf8");
    if (!decoded.includes(JSON.stringify(first.keys.at(-1)))) {
      log(`list: next_cursor is not base64 {"last_key"} (${decoded.slice(0, 80)}); crafted cursors may be refused`);
    }
  }

  async sample(record: boolean): Promise<void> {
    const at = Math.floor(Math.random() * (this.size - LIST_PAGE - 1));
    const after = this.#sorted[at] ?? "";
    const path = `/objects?limit=${LIST_PAGE}&cursor=${encodeURIComponent(cursorAfter(after))}`;
    const started = performance.now();
    const page = await this.#client.getJson<ListPageBody>(path);
    const elapsed = performance.now() - started;
    if (page.keys.length !== LIST_PAGE || page.keys[0] !== this.#sorted[at + 1] || !page.has_more) {
      throw new Error(`list: page after ${after} starts at ${page.keys[0]} with ${page.keys.length} keys`);
    }
    if (record) this.latencies.push(elapsed);
  }

  result(): ListResult {
    return { size: this.size, medianMs: median(this.latencies), p99Ms: quantile(this.latencies, 0.99) };
  }

  close(): Promise<void> {
    return this.#client.close();
  }
}

/**
 * Two stores, the small one and the large one, each behind its own vault, measured in the same
 * loop (alternating, in random order) so that machine noise hits both alike. The large store
 * starts as a copy of the small one.
 */
async function listPages(
  workDir: string,
  options: Options,
  cpus: CpuLayout,
  vaultFlags: readonly string[],
): Promise<{ results: ListResult[]; method: string }> {
  const [smallSize, largeSize] = options.listSizes as [number, number];
  const dirs = [join(workDir, "vault-list-small"), join(workDir, "vault-list-large")] as const;
  const dataDirs = dirs.map((dir) => join(dir, "data"));
  const body = (i: number): Uint8Array => Buffer.from(`object ${i}\n`);
  const started = performance.now();
  const fill = async (dataDir: string, from: number, to: number): Promise<boolean> => {
    const driver = await openFilesystemDriver(dataDir);
    if (driver === undefined) return false;
    log(`list: writing keys ${from}..${to} through the filesystem driver`);
    try {
      await writeThroughDriver(driver, from, to, LIST_KEY, body, 64, (done) =>
        log(`list: ${from + done} keys written`),
      );
    } finally {
      await driver.close();
    }
    return true;
  };

  let method: string;
  const start = (index: 0 | 1): Promise<VaultServer> =>
    startVault({
      dir: dirs[index],
      dataDir: dataDirs[index],
      cpu: cpus.server,
      nodeFlags: vaultFlags,
      readyTimeoutMs: 180_000,
      name: `vault-list-${index === 0 ? smallSize : largeSize}`,
    });
  let vaults: VaultServer[];
  for (const dir of dataDirs) mkdirSync(dir, { recursive: true });
  // In-process, before the servers start, on every core (nothing is being measured yet): the
  // fastest way to a large store.
  const filled = await onAllCores(cpus, async () => {
    if (!(await fill(dataDirs[0] ?? "", 0, smallSize))) return false;
    await runChecked("cp", ["-a", `${dataDirs[0]}/.`, `${dataDirs[1]}/`]);
    await fill(dataDirs[1] ?? "", smallSize, largeSize);
    return true;
  });
  if (filled) {
    method = "written in-process through createStorageDriver (fsync off) before the servers started";
    vaults = [await start(0), await start(1)];
  } else {
    method = "PUT over HTTP (64 keep-alive connections)";
    vaults = [await start(0), await start(1)];
    for (const [index, vault] of vaults.entries()) {
      const size = index === 0 ? smallSize : largeSize;
      log(`list: PUTting ${size} keys over HTTP`);
      const client = new BenchClient(vault, 64);
      try {
        await client.putMany(size, (i) => objectPath(LIST_KEY(i)), body, 64, (done) => {
          if (done % 10_000 === 0) log(`list: ${done} keys stored`);
        });
      } finally {
        await client.close();
      }
    }
  }
  log(`list: stores of ${smallSize} and ${largeSize} keys ready in ${((performance.now() - started) / 1000).toFixed(1)} s`);

  const probes = vaults.map((vault, index) => new ListProbe(vault, index === 0 ? smallSize : largeSize));
  try {
    for (const probe of probes) await probe.checkFirstPage();
    for (let i = 0; i < LIST_WARMUP + LIST_SAMPLES; i++) {
      const order = Math.random() < 0.5 ? probes : [...probes].reverse();
      for (const probe of order) await probe.sample(i >= LIST_WARMUP);
    }
  } finally {
    for (const probe of probes) await probe.close();
    for (const vault of vaults) await vault.stop();
  }
  const results = probes.map((probe) => probe.result());
  for (const r of results) {
    log(`list 100 of ${r.size}: median ${r.medianMs.toFixed(2)} ms, p99 ${r.p99Ms.toFixed(2)} ms`);
  }
  return { results, method };
}

/** Writes the large test file unless an earlier section already did (same size). */
function largeFile(workDir: string, bytes: number): string {
  const file = join(workDir, "large-object.bin");
  let size = -1;
  try {
    size = statSync(file).size;
  } catch {
    // not written yet
  }
  if (size !== bytes) {
    log(`large object: writing ${bytes / 1024 / 1024} MiB of random data`);
    writeRandomFile(file, bytes);
  }
  return file;
}

/** Content-Length, Content-Type and ETag each system answers `GET path` with, as text. */
async function answerHeaders(systems: readonly SystemUnderTest[], path: string): Promise<string[]> {
  const out: string[] = [];
  for (const system of systems) {
    const response = await fetch(`${system.baseUrl}${path}`, { headers: system.headers, signal: AbortSignal.timeout(10_000) });
    await response.arrayBuffer();
    out.push(["content-length", "content-type", "etag"].map((name) => `${name}: ${response.headers.get(name) ?? "-"}`).join(", "));
  }
  return out;
}

/**
 * The Node ceiling of the GET 4 KiB row: the objects the vault and nginx get through their PUTs
 * written as files first (`<dir>/objects/<key>`), then served from memory at the same URLs,
 * checking the vault's bearer token.
 */
async function startObjectsCeiling(workDir: string, vault: VaultServer, cpus: CpuLayout): Promise<SystemUnderTest> {
  const dir = join(workDir, "node-ceiling");
  const objects = join(dir, "root", "objects");
  mkdirSync(objects, { recursive: true });
  for (let i = 0; i < SMALL_KEYS; i++) writeFileSync(join(objects, GET_KEY(i)), smallBody(i));
  return startNodeCeiling({ dir, cpu: cpus.server, mounts: [{ prefix: "/objects/", dir: objects }], token: vault.token });
}

const S3_AGAINST = "vault on fs";
const S3_PROBES = 50;

/** The S3 requests one object API GET and one PUT (an overwrite) of 4 KiB cause, counted by the S3 server. */
async function s3RequestsPerRequest(system: SystemUnderTest, s3: S3Server): Promise<{ get: string; put: string }> {
  const client = new BenchClient(system, 1);
  const count = async (method: "GET" | "PUT"): Promise<string> => {
    // The vault may still be finishing what the last wrk run left in flight: wait until the S3 server is idle.
    let before = await s3.stats();
    for (let waited = 0; waited < 10_000; waited += 300) {
      await new Promise((resolve) => setTimeout(resolve, 300));
      const now = await s3.stats();
      if (now.requests === before.requests) break;
      before = now;
    }
    for (let i = 0; i < S3_PROBES; i++) {
      const { status } = await client.request(method, objectPath(GET_KEY(i)), method === "PUT" ? smallBody(i) : undefined);
      if (status < 200 || status >= 300) throw new Error(`${system.name}: ${method} ${GET_KEY(i)} answered ${status}`);
    }
    const between = s3RequestsBetween(before, await s3.stats());
    const perMethod = between.text.replace(/^[\d,]+ /, "");
    return `${(between.total / S3_PROBES).toFixed(2)} ${perMethod}`.trim();
  };
  try {
    return { get: await count("GET"), put: await count("PUT") };
  } finally {
    await client.close();
  }
}

/**
 * The `s3` section: the 4 KiB and large-object rows for a vault on the S3 driver against a vault
 * on the filesystem driver, side by side in one run. The S3 server (the tests' s3rver, native
 * conditional writes) runs in a process of its own on the server core with the vault: its CPU
 * time is read apart from the vault's, and reported as its share.
 */
async function s3Objects(workDir: string, options: Options, cpus: CpuLayout, vaultFlags: readonly string[], rows: Row[], notes: string[]): Promise<void> {
  const dir = join(workDir, "s3-section");
  const tmp = join(dir, "tmp");
  mkdirSync(tmp, { recursive: true });
  const s3 = await startS3Server({ dir: join(dir, "s3rver"), cpu: cpus.server });
  const stops: Array<() => Promise<void>> = [() => s3.stop()];
  try {
    const { onFs, onS3, prefix } = await startVaultsOnFsAndS3({ dir, cpu: cpus.server, nodeFlags: vaultFlags, tmp, s3, prefixName: "bench-objects", stops });
    const systems = [onFs, onS3];
    log(`s3: s3rver at ${s3.endpoint} (pid ${s3.pid}), bucket ${s3.bucket}, prefix ${prefix}`);

    // -- 4 KiB GET / PUT, wrk
    const small = await smallObjects(workDir, systems, options, cpus);
    const perRequest = await s3RequestsPerRequest(onS3, s3);
    const f = small.get(onFs.name);
    const v = small.get(onS3.name);
    const op = (label: string, unit: "ops/s" | "p99 ms", pick: (r: WrkResult) => number, vault: WrkBest | undefined, fs: WrkBest | undefined): Row => ({
      measurement: `S3: ${label} ×${options.connections}`,
      unit,
      vault: vault === undefined ? undefined : pick(vault.best),
      reference: fs === undefined ? undefined : pick(fs.best),
      against: S3_AGAINST,
      target: "–",
      pass: undefined,
    });
    /** s3rver's share of the CPU the two processes used, in %. */
    const share = (vault: number, backing: number): number => (vault + backing > 0 ? (100 * backing) / (vault + backing) : Number.NaN);
    const shareRow = (label: string, value: number | undefined): Row => ({
      measurement: `S3: ${label}, S3 server's share of CPU`,
      unit: "%",
      vault: value,
      reference: undefined,
      against: "–",
      ratioText: "–",
      target: "–",
      pass: undefined,
    });
    rows.push(
      op("GET 4 KiB", "ops/s", (r) => r.opsPerSecond, v?.get, f?.get),
      op("GET 4 KiB", "p99 ms", (r) => r.p99Ms, v?.get, f?.get),
      shareRow("GET 4 KiB", v === undefined ? undefined : share(v.get.best.serverCpu, v.get.best.backingCpu)),
      op("PUT 4 KiB", "ops/s", (r) => r.opsPerSecond, v?.put, f?.put),
      op("PUT 4 KiB", "p99 ms", (r) => r.p99Ms, v?.put, f?.put),
      shareRow("PUT 4 KiB", v?.put === undefined ? undefined : share(v.put.best.serverCpu, v.put.best.backingCpu)),
    );
    const perOp = (r: WrkResult, cpu: number): number => (cpu / r.opsPerSecond) * 1e6;
    const cpuText = (fs: WrkBest | undefined, vault: WrkBest | undefined): string => {
      if (fs === undefined || vault === undefined) return "?";
      const b = vault.best;
      return (
        `vault on S3 ${Math.round(b.serverCpu * 100)}% + s3rver ${Math.round(b.backingCpu * 100)}% of the core ` +
        `(${Math.round(perOp(b, b.serverCpu))} + ${Math.round(perOp(b, b.backingCpu))} = ${Math.round(perOp(b, b.serverCpu + b.backingCpu))} µs/op), ` +
        `vault on fs ${Math.round(fs.best.serverCpu * 100)}% (${Math.round(perOp(fs.best, fs.best.serverCpu))} µs/op)`
      );
    };
    notes.push(
      `S3 section: two vaults side by side, one on the filesystem driver (fsync on, as shipped) and one on the S3 driver ` +
        `(force_path_style, conditional_writes: native, prefix ${prefix}) against the tests' s3rver (tests/support/s3-server.ts: ` +
        `atomic writes, conditional writes on) in a node process of its own; s3rver runs on the server core with the vault, so the ` +
        `S3 rows pay for the S3 server too, and "S3 server's share" = s3rver CPU ÷ (vault + s3rver CPU) over the measured interval ` +
        `(/proc/<pid>/stat of each). s3rver keeps objects in files on the same disk; a real S3 is remote, so the vault's own µs/op is the ` +
        `figure that carries over. No list rows on S3: a list page is one ListObjectsV2, which s3rver answers by walking its whole directory tree.`,
      `S3 4 KiB: same wrk runs as the 4 KiB rows (${options.warmup} s warm-up + ${options.seconds} s, best of ${options.rounds}, alternating order). ` +
        `Server CPU in the best round: GET ${cpuText(f?.get, v?.get)}; PUT ${cpuText(f?.put, v?.put)}. ` +
        `S3 requests per object API request (${S3_PROBES} sequential GETs, then ${S3_PROBES} PUTs overwriting stored 4 KiB objects, after the wrk runs): ` +
        `GET ${perRequest.get}; PUT ${perRequest.put}.`,
    );
    const errors = [...small].flatMap(([name, r]) => ([...r.get.all, ...(r.put?.all ?? [])].some((x) => x.errors > 0) ? [name] : []));
    if (errors.length > 0) notes.push(`WARNING: non-2xx responses or socket errors during the S3 section's wrk runs of: ${errors.join(", ")}`);

    // -- the large object, curl
    const file = largeFile(workDir, options.s3LargeBytes);
    const fl = await largeObject(file, options.s3LargeBytes, onFs, cpus);
    const vl = await largeObject(file, options.s3LargeBytes, onS3, cpus, s3);
    const mib = options.s3LargeBytes / 1024 / 1024;
    const mbRow = (label: string, vault: number, fs: number): Row => ({
      measurement: `S3: ${label} ${mib} MiB`,
      unit: "MB/s",
      vault: vault / MB,
      reference: fs / MB,
      against: S3_AGAINST,
      target: "–",
      pass: undefined,
    });
    rows.push(
      mbRow("GET", vl.getBytesPerSecond, fl.getBytesPerSecond),
      shareRow(`GET ${mib} MiB`, share(vl.getCpu, vl.getBackingCpu)),
      mbRow("PUT", vl.putBytesPerSecond, fl.putBytesPerSecond),
      shareRow(`PUT ${mib} MiB`, share(vl.putCpu, vl.putBackingCpu)),
      {
        measurement: `S3: peak RSS, ${mib} MiB transfers`,
        unit: "MB",
        vault: vl.peakRssBytes / MB,
        reference: fl.peakRssBytes / MB,
        against: S3_AGAINST,
        target: "–",
        pass: undefined,
      },
    );
    const pct = (x: number): string => `${Math.round(x * 100)}%`;
    notes.push(
      `S3 ${mib} MiB (--s3-large-mib; smaller than the nginx rows' by default, since s3rver writes a large PUT three times: parts, ` +
        `their concatenation, the copy): curl, best of 3 PUTs then best of 3 GETs, as the large rows; peak RSS of the vault process only. ` +
        `Share of the core over the 3 runs: GET vault on S3 ${pct(vl.getCpu)} + s3rver ${pct(vl.getBackingCpu)}, vault on fs ${pct(fl.getCpu)}; ` +
        `PUT vault on S3 ${pct(vl.putCpu)} + s3rver ${pct(vl.putBackingCpu)}, vault on fs ${pct(fl.putCpu)}. ` +
        `S3 requests for the 3 PUTs: ${vl.putS3Requests ?? "?"}; for the 3 GETs: ${vl.getS3Requests ?? "?"} ` +
        `(a PUT past 8 MiB streams to a staging object with multipart, then CopyObject to its name with its description).`,
    );
  } finally {
    for (const stop of stops.reverse()) await stop();
  }
}

function nginxVersion(): string {
  const result = spawnSync("nginx", ["-v"], { encoding: "utf8" });
  return (result.stderr || result.stdout).trim().replace(/^nginx version:\s*/, "");
}

async function main(): Promise<void> {
  const options = parseOptions();
  // The s3 section alone compares two vaults: no nginx.
  const needsNginx = ["small", "large"].some((section) => options.sections.has(section));
  requireTools([...(needsNginx ? ["nginx"] : []), "wrk", "taskset", "curl"], needsNginx ? {} : { nginxModules: [] });
  if (!vaultIsBuilt()) throw new Error(`${VAULT_CLI} is missing: the vault is not built (npm run build)`);
  const startedAt = Date.now();
  const cpus = pinCpus();
  const workDir = makeWorkDir("bench-objects");
  log(`work dir ${workDir}; ${cpus.note}`);

  let vaultFlags: string[] = [];
  let profileDir: string | undefined;
  if (options.profile) {
    profileDir = mkdtempSync(join(tmpdir(), "artifact-vault-profile-")); // kept: it is the output
    vaultFlags = ["--cpu-prof", `--cpu-prof-dir=${profileDir}`];
  }

  const rows: Row[] = [];
  const notes: string[] = [cpus.note];
  const loadBefore = loadavg()[0] ?? 0;
  const smallOrLarge = options.sections.has("small") || options.sections.has("large");

  if (smallOrLarge) {
    const nginx = await startNginxWebdav(join(workDir, "nginx"), cpus.server);
    const vault = await startVault({ dir: join(workDir, "vault"), cpu: cpus.server, nodeFlags: vaultFlags });
    const systems = [vault, nginx];
    let ceiling: SystemUnderTest | undefined;
    try {
      if (options.sections.has("small")) {
        ceiling = await startObjectsCeiling(workDir, vault, cpus);
        const small = await smallObjects(workDir, systems, options, cpus, [ceiling]);
        const headers = await answerHeaders([vault, ceiling], objectPath(GET_KEY(0)));
        const v = small.get("vault");
        const n = small.get("nginx");
        const c = small.get(NODE_CEILING);
        const g = (r: WrkBest | undefined): WrkResult | undefined => r?.best;
        const vaultOps = g(v?.get)?.opsPerSecond;
        const ceilingOps = g(c?.get)?.opsPerSecond;
        rows.push(
          {
            measurement: `GET 4 KiB ×${options.connections}`,
            unit: "ops/s",
            vault: vaultOps,
            reference: g(n?.get)?.opsPerSecond,
            target: "≥ 0.50× nginx",
            pass: (vaultOps ?? 0) >= 0.5 * (g(n?.get)?.opsPerSecond ?? Infinity),
          },
          {
            measurement: `GET 4 KiB ×${options.connections}`,
            unit: "ops/s",
            vault: vaultOps,
            reference: ceilingOps,
            against: NODE_CEILING,
            target: `≥ 0.60× ${NODE_CEILING}`,
            pass: vaultOps !== undefined && ceilingOps !== undefined && vaultOps >= 0.6 * ceilingOps,
          },
          {
            measurement: `GET 4 KiB ×${options.connections}`,
            unit: "p99 ms",
            vault: g(v?.get)?.p99Ms,
            reference: g(n?.get)?.p99Ms,
            target: "–",
            pass: undefined,
          },
          {
            measurement: `GET 4 KiB ×${options.connections}`,
            unit: "p99 ms",
            vault: g(v?.get)?.p99Ms,
            reference: g(c?.get)?.p99Ms,
            against: NODE_CEILING,
            target: "–",
            pass: undefined,
          },
          {
            measurement: `PUT 4 KiB ×${options.connections}`,
            unit: "ops/s",
            vault: g(v?.put)?.opsPerSecond,
            reference: g(n?.put)?.opsPerSecond,
            target: "–",
            pass: undefined,
          },
          {
            measurement: `PUT 4 KiB ×${options.connections}`,
            unit: "p99 ms",
            vault: g(v?.put)?.p99Ms,
            reference: g(n?.put)?.p99Ms,
            target: "–",
            pass: undefined,
          },
        );
        const cpu = (r: WrkBest | undefined): string => {
          if (r === undefined) return "?";
          const perOp = (r.best.serverCpu / r.best.opsPerSecond) * 1e6;
          return `${Math.round(r.best.serverCpu * 100)}% (${Math.round(perOp)} µs/op)`;
        };
        notes.push(
          `4 KiB: wrk -t1 -c${options.connections} --latency, ${options.warmup} s warm-up + ${options.seconds} s, ` +
            `best of ${options.rounds} round(s) alternating order (GET: vault, nginx and the ${NODE_CEILING}; PUT: vault and nginx); ` +
            `${SMALL_KEYS} keys cycled (PUT overwrites).`,
          `${NODE_CEILING} (GET rows): a bare node:http server in a process of its own on the server core (bench/lib/node-ceiling-main.ts) ` +
            `with the same ${SMALL_KEYS} objects in a Map loaded at start, answering GET /objects/<key> with Content-Length, Content-Type ` +
            `and ETag and one res.end(buffer), after checking the request's bearer token (SHA-256, constant-time compare with the one ` +
            `hash) — the minimum the vault must do; wrk sends both the same requests (the vault's token). No PUT: it stores nothing. ` +
            `${GET_KEY(0)}: vault ${headers[0]}; ${NODE_CEILING} ${headers[1]}` +
            (headers[0] === headers[1] ? " (the same)." : " — WARNING: they differ."),
          `4 KiB server CPU in the best round, share of its core (CPU time per request): ` +
            `GET vault ${cpu(v?.get)}, ${NODE_CEILING} ${cpu(c?.get)}, nginx ${cpu(n?.get)}; PUT vault ${cpu(v?.put)}, nginx ${cpu(n?.put)}. ` +
            `A server well under 100% was not the bottleneck (client core or disk was).`,
        );
        const errors = [...small].flatMap(([name, r]) =>
          [...r.get.all, ...(r.put?.all ?? [])].some((x) => x.errors > 0) ? [name] : [],
        );
        if (errors.length > 0) {
          notes.push(`WARNING: non-2xx responses or socket errors during wrk runs of: ${errors.join(", ")}`);
        }
      }

      if (options.sections.has("large")) {
        const file = largeFile(workDir, options.largeBytes);
        const v = await largeObject(file, options.largeBytes, vault, cpus);
        const n = await largeObject(file, options.largeBytes, nginx, cpus);
        const mib = options.largeBytes / 1024 / 1024;
        rows.push(
          {
            measurement: `GET ${mib} MiB`,
            unit: "MB/s",
            vault: v.getBytesPerSecond / MB,
            reference: n.getBytesPerSecond / MB,
            target: "≥ 0.70× nginx",
            pass: v.getBytesPerSecond >= 0.7 * n.getBytesPerSecond,
          },
          {
            measurement: `PUT ${mib} MiB`,
            unit: "MB/s",
            vault: v.putBytesPerSecond / MB,
            reference: n.putBytesPerSecond / MB,
            target: "–",
            pass: undefined,
          },
          {
            measurement: `peak RSS, ${mib} MiB transfers`,
            unit: "MB",
            vault: v.peakRssBytes / MB,
            reference: n.peakRssBytes / MB,
            target: "vault < 150 MB",
            pass: v.peakRssBytes < 150 * MB,
          },
        );
        notes.push(
          `${mib} MiB: curl, best of 3 PUTs (-T, no Expect) then best of 3 GETs, page cache warm. ` +
            `Peak RSS over all 6 transfers: ${v.rssMethod}; for nginx, its worker process.`,
          `${mib} MiB server CPU, share of its core over the 3 runs: GET vault ${Math.round(v.getCpu * 100)}%, ` +
            `nginx ${Math.round(n.getCpu * 100)}%; PUT vault ${Math.round(v.putCpu * 100)}%, nginx ${Math.round(n.putCpu * 100)}%.`,
        );
      }
    } finally {
      await ceiling?.stop();
      await vault.stop();
      await nginx.stop();
    }
  }

  if (options.sections.has("list")) {
    const [smallSize, largeSize] = options.listSizes as [number, number];
    const { results, method } = await listPages(workDir, options, cpus, vaultFlags);
    const [a, b] = results as [ListResult, ListResult];
    const growth = b.medianMs / a.medianMs;
    rows.push(
      {
        measurement: `list 100 keys, ${smallSize.toLocaleString("en-US")} stored`,
        unit: "median ms",
        vault: a.medianMs,
        reference: undefined,
        target: "–",
        pass: undefined,
      },
      {
        measurement: `list 100 keys, ${largeSize.toLocaleString("en-US")} stored`,
        unit: "median ms",
        vault: b.medianMs,
        reference: undefined,
        ratioText: `${growth.toFixed(2)}× ${smallSize / 1000}k`,
        target: `≤ 20 ms, ≤ 1.5× ${smallSize / 1000}k`,
        pass: b.medianMs <= 20 && growth <= 1.5,
      },
    );
    notes.push(
      `list: GET /objects?limit=100&cursor=<random position>, ${LIST_SAMPLES} requests per store after ` +
        `${LIST_WARMUP} warm-up, both stores (each its own vault) alternating in random order, ` +
        `one keep-alive connection each; p99 ${a.p99Ms.toFixed(1)} / ${b.p99Ms.toFixed(1)} ms. ` +
        `Store ${method}. nginx has no paged listing (n/a); the ratio column compares the two store sizes.`,
    );
  }

  if (options.sections.has("s3")) await s3Objects(workDir, options, cpus, vaultFlags, rows, notes);

  if (profileDir !== undefined) notes.push(`vault CPU profiles (.cpuprofile, open in Chrome DevTools): ${profileDir}`);
  notes.push(
    `total run time ${Math.round((Date.now() - startedAt) / 1000)} s; 1-minute load average ` +
      `${loadBefore.toFixed(1)} at the start, ${(loadavg()[0] ?? 0).toFixed(1)} at the end` +
      (Math.max(loadBefore, loadavg()[0] ?? 0) > cpus.cores * 0.75
        ? ` — other work was competing for these ${cpus.cores} cores: expect noise, re-run on a quiet machine`
        : ""),
  );

  const title =
    `artifact-vault objects benchmark — ${new Date().toISOString().slice(0, 16)}Z, node ${process.version}, ` +
    `${cpus.cores} cores; reference: ` +
    [
      ...(needsNginx ? [nginxVersion()] : []),
      ...(options.sections.has("small") ? [`a bare node:http server, node ${process.version} (${NODE_CEILING} rows)`] : []),
      ...(options.sections.has("s3") ? ["the vault on the filesystem driver (S3 rows; S3 server: the tests' s3rver)"] : []),
    ].join("; ");
  console.log(`\n${renderTable(title, "nginx", rows, notes)}\n`);
}

runBenchmark(main);
