/**
 * `npm run bench:objects` — the object store against nginx + WebDAV, side by side in one run:
 *
 *   - GET and PUT of 4 KiB objects, 64 connections, wrk (ops/s, p99)
 *   - GET and PUT of one 256 MiB object, curl, best of 3 (MB/s)
 *   - peak RSS of each server during the 256 MiB transfers
 *   - one list page of 100 keys at random positions in stores of 10,000 and 100,000 objects
 *
 * Servers run on core 0 (nginx with one worker), load generators on core 1. Everything lives in a
 * temp dir that is removed at the end, whatever happens. See bench/README.md.
 */
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { curlGet, curlPut, writeRandomFile } from "./lib/curl.js";
import { makeWorkDir, onAllCores, pinCpus, requireTools, type CpuLayout } from "./lib/environment.js";
import { BenchClient } from "./lib/http-client.js";
import { runBenchmark, UsageError } from "./lib/lifecycle.js";
import { startNginxWebdav } from "./lib/nginx.js";
import { openFilesystemDriver, writeThroughDriver } from "./lib/populate.js";
import { cpuSeconds, PeakRssMeter } from "./lib/proc-stats.js";
import { runChecked } from "./lib/processes.js";
import { renderTable, type Row } from "./lib/report.js";
import { best, median, quantile } from "./lib/stats.js";
import { objectPath, type SystemUnderTest } from "./lib/system-under-test.js";
import { startVault, VAULT_CLI, vaultIsBuilt, type VaultServer } from "./lib/vault.js";
import { runWrk, type WrkResult } from "./lib/wrk.js";

const USAGE = `usage: npm run bench:objects -- [options]

  --seconds N        measured seconds per wrk run (default 6)
  --warmup N         warm-up seconds before each wrk run (default 2)
  --rounds N         wrk rounds per system, alternating order; the best counts (default 2)
  --connections N    wrk connections (default 64)
  --large-mib N      size of the large object in MiB (default 256)
  --list-sizes A,B   store sizes for the list benchmark (default 10000,100000)
  --only LIST        sections to run: small,large,list (default all)
  --profile          run the vault under --cpu-prof; the .cpuprofile files are kept and named
  --quick            a short smoke run (1 s wrk, 32 MiB, stores of 1,000 and 5,000)
  -h, --help`;

interface Options {
  readonly seconds: number;
  readonly warmup: number;
  readonly rounds: number;
  readonly connections: number;
  readonly largeBytes: number;
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
  const sections = new Set((parsed.only ?? "small,large,list").split(",").map((s) => s.trim()));
  for (const section of sections) {
    if (!["small", "large", "list"].includes(section)) throw new UsageError(`--only: unknown section "${section}"`);
  }
  return {
    seconds: int("seconds", parsed.seconds, quick ? 1 : 6),
    warmup: int("warmup", parsed.warmup, quick ? 1 : 2),
    rounds: Math.max(1, int("rounds", parsed.rounds, quick ? 1 : 2)),
    connections: Math.max(1, int("connections", parsed.connections, 64)),
    largeBytes: int("large-mib", parsed["large-mib"], quick ? 32 : 256) * 1024 * 1024,
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

async function smallObjects(
  workDir: string,
  systems: readonly SystemUnderTest[],
  options: Options,
  cpus: CpuLayout,
): Promise<Map<string, { get: WrkBest; put: WrkBest }>> {
  log(`small objects: storing ${SMALL_KEYS} × 4 KiB in each system`);
  for (const system of systems) {
    const client = new BenchClient(system, 16);
    try {
      await client.putMany(SMALL_KEYS, (i) => objectPath(GET_KEY(i)), smallBody, 16);
    } finally {
      await client.close();
    }
  }
  await verifySmallObjects(systems);

  const results = new Map<string, { get: WrkResult[]; put: WrkResult[] }>();
  for (const system of systems) results.set(system.name, { get: [], put: [] });
  for (const method of ["GET", "PUT"] as const) {
    for (let round = 0; round < options.rounds; round++) {
      // Alternate who goes first, so drift on a noisy machine does not favour one side.
      const order = round % 2 === 0 ? systems : [...systems].reverse();
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
            (result.errors > 0 ? `, ${result.errors} ERRORS` : ""),
        );
        const entry = results.get(system.name);
        (method === "GET" ? entry?.get : entry?.put)?.push(result);
      }
    }
  }
  const pick = (all: WrkResult[]): WrkBest => ({
    best: all.reduce((a, b) => (b.opsPerSecond > a.opsPerSecond ? b : a)),
    all,
  });
  const out = new Map<string, { get: WrkBest; put: WrkBest }>();
  for (const [name, { get, put }] of results) out.set(name, { get: pick(get), put: pick(put) });
  return out;
}

interface LargeResult {
  readonly getBytesPerSecond: number;
  readonly putBytesPerSecond: number;
  /** Share of one core the server used over the 3 GETs / the 3 PUTs. */
  readonly getCpu: number;
  readonly putCpu: number;
  readonly peakRssBytes: number;
  readonly rssMethod: string;
}

async function largeObject(
  file: string,
  size: number,
  system: SystemUnderTest,
  cpus: CpuLayout,
): Promise<LargeResult> {
  const path = objectPath("large-object.bin");
  const meter = new PeakRssMeter(system.pids);
  meter.start();
  const puts: number[] = [];
  const gets: number[] = [];
  let rss: ReturnType<PeakRssMeter["stop"]>;
  const cpuNow = (): number => system.pids.reduce((sum, pid) => sum + cpuSeconds(pid), 0);
  const cpuShare = (since: { cpu: number; at: number }): number =>
    (cpuNow() - since.cpu) / ((performance.now() - since.at) / 1000);
  let putCpu = 0;
  let getCpu = 0;
  try {
    let since = { cpu: cpuNow(), at: performance.now() };
    for (let i = 0; i < 3; i++) {
      const put = await curlPut(system, path, file, cpus.load);
      if (put.status < 200 || put.status >= 300 || put.bytes !== size) {
        throw new Error(`${system.name}: PUT of ${size} bytes answered ${put.status} after ${put.bytes} bytes`);
      }
      puts.push(put.bytesPerSecond);
    }
    putCpu = cpuShare(since);
    since = { cpu: cpuNow(), at: performance.now() };
    for (let i = 0; i < 3; i++) {
      const get = await curlGet(system, path, cpus.load);
      if (get.status !== 200 || get.bytes !== size) {
        throw new Error(`${system.name}: GET answered ${get.status} with ${get.bytes} of ${size} bytes`);
      }
      gets.push(get.bytesPerSecond);
    }
    getCpu = cpuShare(since);
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
    getCpu,
    putCpu,
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

function nginxVersion(): string {
  const result = spawnSync("nginx", ["-v"], { encoding: "utf8" });
  return (result.stderr || result.stdout).trim().replace(/^nginx version:\s*/, "");
}

async function main(): Promise<void> {
  const options = parseOptions();
  requireTools(["nginx", "wrk", "taskset", "curl"]);
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
    try {
      if (options.sections.has("small")) {
        const small = await smallObjects(workDir, systems, options, cpus);
        const v = small.get("vault");
        const n = small.get("nginx");
        const g = (r: WrkBest | undefined): WrkResult | undefined => r?.best;
        rows.push(
          {
            measurement: `GET 4 KiB ×${options.connections}`,
            unit: "ops/s",
            vault: g(v?.get)?.opsPerSecond,
            reference: g(n?.get)?.opsPerSecond,
            target: "≥ 0.50× nginx",
            pass: (g(v?.get)?.opsPerSecond ?? 0) >= 0.5 * (g(n?.get)?.opsPerSecond ?? Infinity),
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
            `best of ${options.rounds} round(s) alternating order; ${SMALL_KEYS} keys cycled (PUT overwrites).`,
          `4 KiB server CPU in the best round, share of its core (CPU time per request): ` +
            `GET vault ${cpu(v?.get)}, nginx ${cpu(n?.get)}; PUT vault ${cpu(v?.put)}, nginx ${cpu(n?.put)}. ` +
            `A server well under 100% was not the bottleneck (client core or disk was).`,
        );
        const errors = [...small].flatMap(([name, r]) =>
          [...r.get.all, ...r.put.all].some((x) => x.errors > 0) ? [name] : [],
        );
        if (errors.length > 0) {
          notes.push(`WARNING: non-2xx responses or socket errors during wrk runs of: ${errors.join(", ")}`);
        }
      }

      if (options.sections.has("large")) {
        const file = join(workDir, "large-object.bin");
        log(`large object: writing ${options.largeBytes / 1024 / 1024} MiB of random data`);
        writeRandomFile(file, options.largeBytes);
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
    `${nginxVersion()}, ${cpus.cores} cores`;
  console.log(`\n${renderTable(title, "nginx", rows, notes)}\n`);
}

runBenchmark(main);
