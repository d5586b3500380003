/**
 * `npm run bench:cache` — the pull-through cache (the `http` backend) against nginx `proxy_cache`,
 * side by side in one run, both in front of the same nginx upstream serving the same files:
 *
 *   - cache hit of 4 KiB files, 64 connections, wrk (req/s, p99)
 *   - cache hit of one 256 MiB file, curl, 1 and 4 concurrent clients (MB/s)
 *   - for both hit rows, also against the "Node ceiling": a bare node:http server serving the
 *     same bytes at the same URLs (bench/lib/node-ceiling-main.ts), what the vault would reach
 *     if its own code cost nothing
 *   - cold miss of a 256 MiB file: first byte and total time, against the upstream direct
 *   - 32 concurrent cold GETs of a 64 MiB file from a rate-limited upstream: requests that reached
 *     the upstream, and the time until all 32 finished, against one download direct
 *   - peak RSS while serving 16 concurrent 256 MiB downloads, half hits and half misses
 *
 * and the `oci` backend against Debian's docker-registry as a pull-through proxy, both in front
 * of one upstream docker-registry: a cached 4 KiB blob (wrk req/s) and a cached 256 MiB blob
 * (curl MB/s, 1 and 4 clients);
 *
 * and the `npm` backend against Verdaccio (the devDependency) as a caching proxy, both in front of
 * one nginx serving a static registry: a cached packument and a cached small tarball (wrk req/s);
 *
 * `huggingface`: a model file (1 GiB, `--hf-mib`) through the `huggingface` backend, cold (first
 * byte, total) and cached (MB/s), against a direct download from the tests' fake hub and its CDN
 * (curl -L on the hub's resolve URL), with the vault's CPU per MB;
 *
 * `go`: a cached Go module zip (~257 KiB) from the `go` backend against nginx proxy_cache, both in
 * front of one nginx serving a static GOPROXY tree (wrk req/s, p99);
 *
 * `s3`: the cache-hit rows again for a vault on the S3 driver (the tests' s3rver in a process of
 * its own) against a vault on the filesystem driver, with the S3 server's share of the CPU;
 *
 * `replicas`: a herd of cold GETs of one artifact spread over 3 vault processes on one S3 bucket
 * and one Redis (`coordination`), against the same herd sent to one of them;
 *
 * `workers`: the vault with `workers: 2` against nginx proxy_cache with `worker_processes 2`, both
 * on every core (no taskset), with the vault with `workers: 1` and nginx with one worker for
 * scale: the 4 KiB hits (wrk req/s, p99, CPU per request) and the large hit with 4 clients (MB/s).
 *
 * Elsewhere the systems under test (the vault with `workers: 1`, nginx proxy_cache with one worker, the registry
 * proxy, Verdaccio) run on core 0; the load generators and the upstreams (which stand in for remote servers) on
 * core 1. Everything lives in a temp dir that is removed at the end, whatever happens. See bench/README.md.
 */
import { spawnSync } from "node:child_process";
import { linkSync, mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { createHash, randomBytes } from "node:crypto";
import { parseArgs } from "node:util";
import { request as undiciRequest } from "undici";
import { curlTimed, writeRandomFile, type TimedTransfer } from "./lib/curl.js";
import { startFakeHub, type FakeHubStats, type PublishedFile } from "./lib/fake-hub.js";
import { dockerRegistryVersion, pushBlob, pushManifest, startDockerRegistry } from "./lib/docker-registry.js";
import { makeWorkDir, onAllCores, pinCpus, requireTools, type CpuLayout } from "./lib/environment.js";
import { BenchClient } from "./lib/http-client.js";
import { runBenchmark, UsageError } from "./lib/lifecycle.js";
import { StaticModuleProxy, storedZip, zipEntries, type ModuleVersion } from "../tests/support/go/module-proxy.js";
import { countRequests, startNginxProxyCache, startNginxUpstream, type NginxUpstream } from "./lib/nginx.js";
import { NODE_CEILING, startNodeCeiling } from "./lib/node-ceiling.js";
import { packumentLocation, writeNpmPackage, type NpmPackage } from "./lib/npm-package.js";
import { cpuSeconds, PeakRssMeter } from "./lib/proc-stats.js";
import { startRedis } from "./lib/redis.js";
import { renderTable, type Row } from "./lib/report.js";
import { s3RequestsBetween, startS3Server, startVaultsOnFsAndS3 } from "./lib/s3.js";
import { best } from "./lib/stats.js";
import type { SystemUnderTest } from "./lib/system-under-test.js";
import { expectBytes } from "./lib/verify.js";
import { startVault, VAULT_CLI, vaultHasWorkers, vaultIsBuilt } from "./lib/vault.js";
import { startVerdaccioProxy, verdaccioVersion } from "./lib/verdaccio.js";
import { runWrk, type WrkLoad, type WrkResult } from "./lib/wrk.js";

const SECTIONS = ["small", "large", "miss", "herd", "rss", "oci", "npm", "huggingface", "go", "s3", "replicas", "workers"] as const;
type Section = (typeof SECTIONS)[number];
/** The sections that measure the `http` backend against nginx proxy_cache. */
const HTTP_SECTIONS: readonly Section[] = ["small", "large", "miss", "herd", "rss"];

const USAGE = `usage: npm run bench:cache -- [options]

  --seconds N        measured seconds per wrk run (default 6)
  --warmup N         warm-up seconds before each wrk run (default 2)
  --rounds N         rounds per measurement, alternating which system goes first (default 2 for
                     wrk and the herd, 3 for the large hits and cold misses)
  --connections N    wrk connections (default 64)
  --large-mib N      size of the large artifact (and of the large oci blob) in MiB (default 256)
  --herd-mib N       size of the artifact the herd asks for, in MiB (default 64)
  --herd-clients N   concurrent cold requests in the herd (default 32)
  --rate N           the upstream's limit_rate for the herd, MB/s (default 64)
  --rss-clients N    concurrent large downloads while RSS is measured, half hits (default 16)
  --replicas N       vault processes in the replicas section (default 3)
  --replica-clients N  concurrent cold requests in the replicas section (default 30)
  --hf-mib N         size of the model file of the huggingface section, in MiB (default 1024; the
                     fake hub holds it in memory)
  --only LIST        sections to run: ${SECTIONS.join(",")} (default all)
  --profile          run the vault under --cpu-prof; the .cpuprofile files are kept and named
  --quick            a short smoke run (1 s wrk, 32 MiB large, 16 MiB herd, 1 round)
  -h, --help`;

interface Options {
  readonly seconds: number;
  readonly warmup: number;
  readonly wrkRounds: number;
  readonly rounds: number;
  readonly connections: number;
  readonly largeBytes: number;
  readonly herdBytes: number;
  readonly herdClients: number;
  readonly rateBytesPerSecond: number;
  readonly rssClients: number;
  readonly replicas: number;
  readonly replicaClients: number;
  readonly hfBytes: number;
  readonly sections: ReadonlySet<Section>;
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
        "herd-mib": { type: "string" },
        "herd-clients": { type: "string" },
        rate: { type: "string" },
        "rss-clients": { type: "string" },
        replicas: { type: "string" },
        "replica-clients": { type: "string" },
        "hf-mib": { type: "string" },
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
  const int = (name: string, value: string | undefined, fallback: number, min = 0): number => {
    if (value === undefined) return fallback;
    const n = Number(value);
    if (!Number.isInteger(n) || n < min) throw new UsageError(`--${name}: expected a whole number ≥ ${min}, got "${value}"`);
    return n;
  };
  const sections = new Set<Section>();
  for (const name of (parsed.only ?? SECTIONS.join(",")).split(",").map((s) => s.trim())) {
    if (!(SECTIONS as readonly string[]).includes(name)) throw new UsageError(`--only: unknown section "${name}" (known: ${SECTIONS.join(", ")})`);
    sections.add(name as Section);
  }
  const rounds = parsed.rounds === undefined ? undefined : int("rounds", parsed.rounds, 1, 1);
  const rssClients = int("rss-clients", parsed["rss-clients"], 16, 2);
  if (rssClients % 2 !== 0) throw new UsageError("--rss-clients: expected an even number (half hits, half misses)");
  return {
    seconds: int("seconds", parsed.seconds, quick ? 1 : 6, 1),
    warmup: int("warmup", parsed.warmup, quick ? 1 : 2),
    wrkRounds: rounds ?? (quick ? 1 : 2),
    rounds: rounds ?? (quick ? 1 : 3),
    connections: int("connections", parsed.connections, 64, 1),
    largeBytes: int("large-mib", parsed["large-mib"], quick ? 32 : 256, 1) * MiB,
    herdBytes: int("herd-mib", parsed["herd-mib"], quick ? 16 : 64, 1) * MiB,
    herdClients: int("herd-clients", parsed["herd-clients"], 32, 1),
    rateBytesPerSecond: int("rate", parsed.rate, quick ? 32 : 64, 1) * MB,
    rssClients,
    replicas: int("replicas", parsed.replicas, 3, 2),
    replicaClients: int("replica-clients", parsed["replica-clients"], 30, 1),
    hfBytes: int("hf-mib", parsed["hf-mib"], quick ? 64 : 1024, 1) * MiB,
    sections,
    profile: parsed.profile,
  };
}

const MiB = 1024 * 1024;
const MB = 1e6;
const SMALL_BYTES = 4096;
const SMALL_FILES = 1000;
const SMALL_PATTERN = "small/s-%05d.bin";
const smallName = (i: number): string => `small/s-${String(i).padStart(5, "0")}.bin`;
/** The vault's http backend and nginx's proxy_cache location share this prefix. */
const PREFIX = "/files/";

function log(message: string): void {
  console.error(`[bench:cache] ${message}`);
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * The files behind the upstream. Large artifacts are hard links to one random file each (same
 * bytes, warm in the page cache for the upstream alike), under a fresh name whenever a
 * measurement needs a really cold miss: nothing cached it under that name yet.
 */
class UpstreamFiles {
  #fresh = 0;
  readonly smallSha256 = new Map<number, string>();
  largeSha256 = "";
  herdSha256 = "";

  constructor(
    private readonly root: string,
    private readonly blobs: string,
  ) {
    mkdirSync(blobs, { recursive: true });
  }

  writeSmall(): void {
    mkdirSync(join(this.root, "small"), { recursive: true });
    for (let i = 0; i < SMALL_FILES; i++) {
      const body = randomBytes(SMALL_BYTES);
      writeFileSync(join(this.root, smallName(i)), body);
      if (i === 0 || i === SMALL_FILES - 1) this.smallSha256.set(i, createHash("sha256").update(body).digest("hex"));
    }
  }

  writeLarge(bytes: number): void {
    this.largeSha256 = writeRandomFile(join(this.blobs, "large.bin"), bytes);
    this.link("large", "large/hit.bin");
  }

  writeHerd(bytes: number): void {
    this.herdSha256 = writeRandomFile(join(this.blobs, "herd.bin"), bytes);
  }

  /** A new name for the large or the herd file; returns the path below the upstream's root. */
  fresh(blob: "large" | "herd", label: string): string {
    const name = blob === "large" ? `large/cold-${label}-${++this.#fresh}.bin` : `slow/herd-${label}-${++this.#fresh}.bin`;
    this.link(blob, name);
    return name;
  }

  private link(blob: "large" | "herd", name: string): void {
    mkdirSync(dirname(join(this.root, name)), { recursive: true });
    linkSync(join(this.blobs, `${blob}.bin`), join(this.root, name));
  }
}

/** A system that answers GETs for the upstream's files: one of the caches, or the upstream itself. */
interface Target {
  readonly name: string;
  readonly system: SystemUnderTest;
  /** URL path of a file below the upstream's root. */
  path(name: string): string;
  readonly isCache: boolean;
}

function cacheTarget(system: SystemUnderTest): Target {
  return { name: system.name, system, path: (name) => `${PREFIX}${name}`, isCache: true };
}

/**
 * The Node ceiling (a bare node:http server) at the caches' URLs: not a cache, so no X-Cache is
 * asked of it; it serves what the upstream's root held when it started.
 */
function ceilingTarget(system: SystemUnderTest): Target {
  return { name: system.name, system, path: (name) => `${PREFIX}${name}`, isCache: false };
}

function directTarget(upstream: NginxUpstream): Target {
  return { name: "upstream direct", system: upstream, path: (name) => `/${name}`, isCache: false };
}

function checkTransfer(target: Target, name: string, got: TimedTransfer, size: number, xCache?: readonly string[]): void {
  if (got.status !== 200 || got.bytes !== size) {
    throw new Error(`${target.name}: GET ${target.path(name)} answered ${got.status} with ${got.bytes} of ${size} bytes`);
  }
  if (xCache !== undefined && target.isCache && !xCache.includes(got.xCache)) {
    throw new Error(`${target.name}: GET ${target.path(name)} was X-Cache "${got.xCache}", expected ${xCache.join(" or ")}`);
  }
}

function rotate<T>(items: readonly T[], round: number): T[] {
  const k = round % items.length;
  return [...items.slice(k), ...items.slice(0, k)];
}

/** CPU seconds a system's processes (and apart, its `backing` processes) used while `fn` ran. */
async function withCpu<T>(
  system: SystemUnderTest,
  fn: () => Promise<T>,
): Promise<{ value: T; cpuSeconds: number; backingCpuSeconds: number; seconds: number }> {
  const cpuOf = (pids: readonly number[]): number => pids.reduce((sum, pid) => sum + cpuSeconds(pid), 0);
  const backingPids = system.backing?.pids ?? [];
  const cpu = cpuOf(system.pids);
  const backing = cpuOf(backingPids);
  const started = performance.now();
  const value = await fn();
  return { value, cpuSeconds: cpuOf(system.pids) - cpu, backingCpuSeconds: cpuOf(backingPids) - backing, seconds: (performance.now() - started) / 1000 };
}

/**
 * GETs with wrk for each system, `options.wrkRounds` rounds alternating which system goes first
 * (warm-up, then the measured seconds); every round's result by system name.
 */
async function wrkRounds(
  label: string,
  workDir: string,
  systems: readonly SystemUnderTest[],
  requests: (system: SystemUnderTest) => Pick<WrkLoad, "pathPattern" | "keyCount">,
  options: Options,
  cpus: CpuLayout,
): Promise<Map<string, WrkResult[]>> {
  const results = new Map<string, WrkResult[]>(systems.map((system) => [system.name, []]));
  for (let round = 0; round < options.wrkRounds; round++) {
    for (const system of rotate(systems, round)) {
      const load: WrkLoad = { method: "GET", ...requests(system), connections: options.connections, warmupSeconds: options.warmup, seconds: options.seconds };
      const result = await runWrk(workDir, system, load, cpus.load);
      log(
        `${label} ${system.name} round ${round + 1}: ${Math.round(result.opsPerSecond)} req/s, p99 ${result.p99Ms.toFixed(2)} ms, ` +
          `server CPU ${Math.round(result.serverCpu * 100)}%` +
          (system.backing === undefined ? "" : ` + ${system.backing.name} ${Math.round(result.backingCpu * 100)}%`) +
          (result.errors > 0 ? `, ${result.errors} ERRORS` : ""),
      );
      results.get(system.name)?.push(result);
    }
  }
  return results;
}

/** A system's round with the most req/s. */
const bestRound = (results: ReadonlyMap<string, readonly WrkResult[]>, name: string): WrkResult | undefined =>
  results.get(name)?.reduce((a, b) => (b.opsPerSecond > a.opsPerSecond ? b : a));

/** "87% (41 µs/req)": the share of its core a server used in a wrk run, and its CPU time per request. */
const cpuPerRequest = (r: WrkResult | undefined): string =>
  r === undefined ? "?" : `${Math.round(r.serverCpu * 100)}% (${Math.round((r.serverCpu / r.opsPerSecond) * 1e6)} µs/req)`;

/** A warning note naming the systems whose wrk runs saw non-2xx answers or socket errors, if any. */
function wrkErrorNote(results: ReadonlyMap<string, readonly WrkResult[]>, what: string): string[] {
  const errors = [...results].filter(([, all]) => all.some((r) => r.errors > 0)).map(([name]) => name);
  return errors.length === 0 ? [] : [`WARNING: non-2xx responses or socket errors during the ${what} of: ${errors.join(", ")}`];
}

/** The req/s row of a wrk measurement against `against` (target: `factor`× its req/s) and its p99 row (information). */
function wrkRows(measurement: string, vault: WrkResult | undefined, reference: WrkResult | undefined, against: string, factor: number): Row[] {
  return [
    {
      measurement,
      unit: "req/s",
      vault: vault?.opsPerSecond,
      reference: reference?.opsPerSecond,
      against,
      target: `≥ ${factor.toFixed(2)}× ${against}`,
      pass: (vault?.opsPerSecond ?? 0) >= factor * (reference?.opsPerSecond ?? Infinity),
    },
    { measurement, unit: "p99 ms", vault: vault?.p99Ms, reference: reference?.p99Ms, against, target: "–", pass: undefined },
  ];
}

// ------------------------------------------------------------------------------------------------

/**
 * Before timing: every system answers with the right bytes (SHA-256) for a small file, the large
 * file and a cold large file, and the caches answer HIT the second time.
 */
async function verify(files: UpstreamFiles, caches: readonly Target[], direct: Target, options: Options): Promise<string> {
  const checked: string[] = [];
  for (const target of [...caches, direct]) {
    const url = (name: string): string => `${target.system.baseUrl}${target.path(name)}`;
    const expect = async (name: string, sha256: string, size: number, xCache: string): Promise<void> => {
      const got = await expectBytes(target.name, url(name), sha256, size);
      if (target.isCache && got.xCache !== xCache) throw new Error(`${target.name}: ${url(name)} was X-Cache "${got.xCache}", expected ${xCache}`);
    };
    for (const [i, sha256] of files.smallSha256) {
      await expect(smallName(i), sha256, SMALL_BYTES, "MISS");
      await expect(smallName(i), sha256, SMALL_BYTES, "HIT");
    }
    if (files.largeSha256 !== "") {
      await expect("large/hit.bin", files.largeSha256, options.largeBytes, "MISS");
      await expect("large/hit.bin", files.largeSha256, options.largeBytes, "HIT");
      await expect(files.fresh("large", `verify-${target.name.replace(/\W+/g, "-")}`), files.largeSha256, options.largeBytes, "MISS");
    }
    checked.push(target.name);
  }
  return checked.join(", ");
}

async function primeSmall(caches: readonly Target[]): Promise<void> {
  for (const target of caches) {
    const client = new BenchClient(target.system, 16);
    try {
      let next = 0;
      const worker = async (): Promise<void> => {
        while (next < SMALL_FILES) {
          const path = target.path(smallName(next++));
          const { status, body } = await client.request("GET", path);
          if (status !== 200 || body.length !== SMALL_BYTES) throw new Error(`${target.name}: GET ${path} answered ${status} with ${body.length} bytes`);
        }
      };
      await Promise.all(Array.from({ length: 16 }, worker));
    } finally {
      await client.close();
    }
  }
}

/** `others` (the Node ceiling) need no priming: they are measured in the same rounds, in turn. */
async function smallHits(workDir: string, caches: readonly Target[], options: Options, cpus: CpuLayout, others: readonly Target[] = []): Promise<Map<string, WrkResult[]>> {
  log(`4 KiB hits: fetching ${SMALL_FILES} files once through each cache`);
  await primeSmall(caches);
  return wrkRounds(
    "4 KiB hits",
    workDir,
    [...caches, ...others].map((target) => target.system),
    () => ({ pathPattern: `${PREFIX}${SMALL_PATTERN}`, keyCount: SMALL_FILES }),
    options,
    cpus,
  );
}

/** CPU seconds a system used over the runs with one number of clients, and the requests they made. */
interface CpuPerRequest {
  cpuSeconds: number;
  requests: number;
}

interface LargeHits {
  readonly one: number[];
  readonly four: number[];
  /** The same CPU seconds as `cpuSeconds`, split by runs of 1 and of 4 clients, with their requests. */
  readonly oneCpu: CpuPerRequest;
  readonly fourCpu: CpuPerRequest;
  cpuSeconds: number;
  /** The system's `backing` processes (the S3 server); 0 without. */
  backingCpuSeconds: number;
  seconds: number;
  /** The system's peak resident memory over all its large-hit runs (`PeakRssMeter`). */
  peakRss?: ReturnType<PeakRssMeter["stop"]>;
}

/**
 * Large hits from each target (the caches, and the Node ceiling), rounds rotating the order: with
 * 1 client, then with 4 at once (or just the `clientCounts` given).
 */
async function largeHits(caches: readonly Target[], options: Options, cpus: CpuLayout, clientCounts: readonly (1 | 4)[] = [1, 4]): Promise<Map<string, LargeHits>> {
  const results = new Map<string, LargeHits>(
    caches.map((target) => [
      target.name,
      { one: [], four: [], oneCpu: { cpuSeconds: 0, requests: 0 }, fourCpu: { cpuSeconds: 0, requests: 0 }, cpuSeconds: 0, backingCpuSeconds: 0, seconds: 0 },
    ]),
  );
  const name = "large/hit.bin";
  // Each system's own processes: the others' runs in between do not move its resident memory.
  const meters = new Map(caches.map((target) => [target.name, new PeakRssMeter(target.system.pids)]));
  for (const meter of meters.values()) meter.start();
  for (const clients of clientCounts) {
    for (let round = 0; round < options.rounds; round++) {
      for (const target of rotate(caches, round)) {
        const entry = results.get(target.name);
        if (entry === undefined) continue;
        const { value, cpuSeconds: cpu, backingCpuSeconds, seconds } = await withCpu(target.system, () =>
          Promise.all(Array.from({ length: clients }, () => curlTimed(target.system.baseUrl, target.path(name), cpus.load))),
        );
        for (const got of value) checkTransfer(target, name, got, options.largeBytes, ["HIT"]);
        entry.backingCpuSeconds += backingCpuSeconds;
        // All clients start together; the slowest one's time covers every byte sent.
        const rate = (clients * options.largeBytes) / Math.max(...value.map((got) => got.totalSeconds));
        (clients === 1 ? entry.one : entry.four).push(rate);
        const perClients = clients === 1 ? entry.oneCpu : entry.fourCpu;
        perClients.cpuSeconds += cpu;
        perClients.requests += clients;
        entry.cpuSeconds += cpu;
        entry.seconds += seconds;
        log(`${options.largeBytes / MiB} MiB hit ×${clients} ${target.name} round ${round + 1}: ${Math.round(rate / MB)} MB/s`);
      }
    }
  }
  for (const [target, meter] of meters) {
    const entry = results.get(target);
    if (entry !== undefined) entry.peakRss = meter.stop();
  }
  return results;
}

interface ColdMiss {
  readonly firstByteMs: number[];
  readonly totalSeconds: number[];
  /** Server CPU seconds and wall seconds over the rounds (caches only). */
  cpuSeconds: number;
  seconds: number;
}

async function coldMisses(files: UpstreamFiles, targets: readonly Target[], options: Options, cpus: CpuLayout): Promise<Map<string, ColdMiss>> {
  const results = new Map<string, ColdMiss>(targets.map((target) => [target.name, { firstByteMs: [], totalSeconds: [], cpuSeconds: 0, seconds: 0 }]));
  for (let round = 0; round < options.rounds; round++) {
    for (const target of rotate(targets, round)) {
      const name = files.fresh("large", "miss");
      const { value: got, cpuSeconds: cpu, seconds } = await withCpu(target.system, () =>
        curlTimed(target.system.baseUrl, target.path(name), cpus.load),
      );
      checkTransfer(target, name, got, options.largeBytes, ["MISS"]);
      const entry = results.get(target.name);
      entry?.firstByteMs.push(got.firstByteSeconds * 1000);
      entry?.totalSeconds.push(got.totalSeconds);
      if (entry !== undefined) {
        entry.cpuSeconds += cpu;
        entry.seconds += seconds;
      }
      log(
        `cold miss ${options.largeBytes / MiB} MiB ${target.name} round ${round + 1}: first byte ${(got.firstByteSeconds * 1000).toFixed(2)} ms, ` +
          `total ${got.totalSeconds.toFixed(3)} s`,
      );
    }
  }
  return results;
}

interface Herd {
  /** Wall time from starting the clients until the last one finished, seconds. */
  readonly seconds: number;
  readonly upstreamRequests: number;
  readonly xCache: Readonly<Record<string, number>>;
  readonly slowestClientSeconds: number;
  /** Share of one core the system's processes used meanwhile (the caches; the upstream direct: its worker). */
  readonly cpu: number;
}

/** `clients` concurrent cold GETs of one fresh name through `target`, timed until the last one ends. */
async function herd(files: UpstreamFiles, upstream: NginxUpstream, target: Target, clients: number, options: Options, cpus: CpuLayout): Promise<Herd> {
  const name = files.fresh("herd", target.isCache ? "herd" : "single");
  const { value: results, cpuSeconds: cpu, seconds } = await withCpu(target.system, () =>
    Promise.all(Array.from({ length: clients }, () => curlTimed(target.system.baseUrl, target.path(name), cpus.load))),
  );
  for (const got of results) checkTransfer(target, name, got, options.herdBytes, ["MISS", "HIT"]);
  // nginx logs a request when it has finished it; both caches finish their one fetch before
  // their clients do, but give the log line a moment anyway.
  await sleep(300);
  const xCache: Record<string, number> = {};
  for (const got of results) xCache[got.xCache || "-"] = (xCache[got.xCache || "-"] ?? 0) + 1;
  return {
    seconds,
    upstreamRequests: countRequests(upstream.accessLog, `/${name}`),
    xCache,
    slowestClientSeconds: Math.max(...results.map((got) => got.totalSeconds)),
    cpu: cpu / seconds,
  };
}

async function herds(
  files: UpstreamFiles,
  upstream: NginxUpstream,
  caches: readonly Target[],
  direct: Target,
  options: Options,
  cpus: CpuLayout,
): Promise<{ single: Herd[]; herds: Map<string, Herd[]> }> {
  const single: Herd[] = [];
  const results = new Map<string, Herd[]>(caches.map((target) => [target.name, []]));
  for (let round = 0; round < options.wrkRounds; round++) {
    for (const target of rotate([direct, ...caches], round)) {
      const clients = target.isCache ? options.herdClients : 1;
      const result = await herd(files, upstream, target, clients, options, cpus);
      (target.isCache ? results.get(target.name) : single)?.push(result);
      log(
        `${clients} cold GET(s) of ${options.herdBytes / MiB} MiB at ${options.rateBytesPerSecond / MB} MB/s, ${target.name} round ${round + 1}: ` +
          `${result.seconds.toFixed(3)} s, ${result.upstreamRequests} upstream request(s), X-Cache ${JSON.stringify(result.xCache)}`,
      );
    }
  }
  return { single, herds: results };
}

interface RssResult {
  readonly bytes: number;
  readonly method: string;
  readonly seconds: number;
}

async function peakRss(files: UpstreamFiles, target: Target, options: Options, cpus: CpuLayout): Promise<RssResult> {
  const half = options.rssClients / 2;
  const misses = Array.from({ length: half }, () => files.fresh("large", "rss"));
  const meter = new PeakRssMeter(target.system.pids);
  meter.start();
  const started = performance.now();
  let rss: ReturnType<PeakRssMeter["stop"]>;
  try {
    const [hits, cold] = await Promise.all([
      Promise.all(Array.from({ length: half }, () => curlTimed(target.system.baseUrl, target.path("large/hit.bin"), cpus.load))),
      Promise.all(misses.map((name) => curlTimed(target.system.baseUrl, target.path(name), cpus.load))),
    ]);
    for (const got of hits) checkTransfer(target, "large/hit.bin", got, options.largeBytes, ["HIT"]);
    for (const [i, got] of cold.entries()) checkTransfer(target, misses[i] ?? "", got, options.largeBytes, ["MISS"]);
  } finally {
    rss = meter.stop();
  }
  const seconds = (performance.now() - started) / 1000;
  log(`peak RSS ${target.name}, ${half} hits + ${half} misses of ${options.largeBytes / MiB} MiB: ${Math.round(rss.bytes / MB)} MB in ${seconds.toFixed(1)} s`);
  return { ...rss, seconds };
}

// ------------------------------------------------------------------------------------------------
// oci: cached blobs from the vault's oci backend and from docker-registry's pull-through proxy

const OCI_REPOSITORY = "bench/blobs";
const OCI_SMALL_BYTES = 4096;
const OCI_REFERENCE = "registry proxy";

interface OciBlob {
  readonly file: string;
  /** `sha256:<hex>` */
  readonly digest: string;
  readonly sha256: string;
  readonly size: number;
}

function randomBlob(file: string, bytes: number): OciBlob {
  const sha256 = writeRandomFile(file, bytes);
  return { file, digest: `sha256:${sha256}`, sha256, size: bytes };
}

function fileBlob(file: string, bytes: Buffer): OciBlob {
  writeFileSync(file, bytes);
  const sha256 = createHash("sha256").update(bytes).digest("hex");
  return { file, digest: `sha256:${sha256}`, sha256, size: bytes.length };
}

const ociBlobPath = (blob: OciBlob): string => `/v2/${OCI_REPOSITORY}/blobs/${blob.digest}`;

async function waitUntil(what: string, check: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(100);
  }
}

interface OciLarge {
  readonly one: number[];
  readonly four: number[];
  cpuSeconds: number;
  seconds: number;
}

async function ociLargeHits(systems: readonly SystemUnderTest[], blob: OciBlob, options: Options, cpus: CpuLayout): Promise<Map<string, OciLarge>> {
  const results = new Map<string, OciLarge>(systems.map((system) => [system.name, { one: [], four: [], cpuSeconds: 0, seconds: 0 }]));
  for (const clients of [1, 4]) {
    for (let round = 0; round < options.rounds; round++) {
      for (const system of rotate(systems, round)) {
        const entry = results.get(system.name);
        if (entry === undefined) continue;
        const { value, cpuSeconds: cpu, seconds } = await withCpu(system, () =>
          Promise.all(Array.from({ length: clients }, () => curlTimed(system.baseUrl, ociBlobPath(blob), cpus.load))),
        );
        for (const got of value) {
          if (got.status !== 200 || got.bytes !== blob.size) throw new Error(`${system.name}: GET ${ociBlobPath(blob)} answered ${got.status} with ${got.bytes} of ${blob.size} bytes`);
          if (system.name === "vault" && got.xCache !== "HIT") throw new Error(`vault: GET ${ociBlobPath(blob)} was X-Cache "${got.xCache}", expected HIT`);
        }
        const rate = (clients * blob.size) / Math.max(...value.map((got) => got.totalSeconds));
        (clients === 1 ? entry.one : entry.four).push(rate);
        entry.cpuSeconds += cpu;
        entry.seconds += seconds;
        log(`oci: cached ${blob.size / MiB} MiB blob ×${clients} ${system.name} round ${round + 1}: ${Math.round(rate / MB)} MB/s`);
      }
    }
  }
  return results;
}

/**
 * The `oci` section: one upstream docker-registry holding a 4 KiB and a large blob (and a
 * manifest naming them); in front of it, on the server core, the vault with an `oci` backend and
 * docker-registry as a pull-through proxy. Both get each blob once, then serve it from their
 * cache at the same URL, `/v2/bench/blobs/blobs/<digest>`.
 */
async function ociBlobs(options: Options, cpus: CpuLayout, workDir: string, vaultFlags: readonly string[], rows: Row[], notes: string[]): Promise<void> {
  const dir = join(workDir, "oci");
  mkdirSync(join(dir, "blobs"), { recursive: true });
  const mib = options.largeBytes / MiB;
  log(`oci: writing a 4 KiB and a ${mib} MiB blob`);
  const small = randomBlob(join(dir, "blobs", "small.bin"), OCI_SMALL_BYTES);
  const large = randomBlob(join(dir, "blobs", "large.bin"), options.largeBytes);
  // Uncompressed "layers": a registry never looks inside a blob, so their diff_ids are their digests.
  const layerType = "application/vnd.oci.image.layer.v1.tar";
  const config = fileBlob(
    join(dir, "blobs", "config.json"),
    Buffer.from(JSON.stringify({ architecture: "amd64", os: "linux", rootfs: { type: "layers", diff_ids: [small.digest, large.digest] } })),
  );
  const manifestType = "application/vnd.oci.image.manifest.v1+json";
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: manifestType,
      config: { mediaType: "application/vnd.oci.image.config.v1+json", digest: config.digest, size: config.size },
      layers: [small, large].map((blob) => ({ mediaType: layerType, digest: blob.digest, size: blob.size })),
    }),
  );

  const stops: Array<() => Promise<void>> = [];
  try {
    const upstream = await startDockerRegistry({ dir: join(dir, "upstream"), cpu: cpus.load, name: "upstream registry", accessLog: true });
    stops.push(() => upstream.stop());
    log(`oci: pushing the blobs and a manifest to the upstream registry ${upstream.baseUrl}`);
    for (const blob of [config, small, large]) await pushBlob(upstream, OCI_REPOSITORY, blob.digest, blob.file);
    await pushManifest(upstream, OCI_REPOSITORY, "v1", manifestType, manifest);

    const proxy = await startDockerRegistry({ dir: join(dir, "proxy"), cpu: cpus.server, name: OCI_REFERENCE, proxyOf: upstream.baseUrl });
    stops.push(() => proxy.stop());
    const vaultServer = await startVault({
      dir: join(dir, "vault"),
      cpu: cpus.server,
      nodeFlags: vaultFlags,
      extraConfig: { backends: [{ type: "oci", name: "hub", config: { prefix: "/hub/", registry_url: upstream.baseUrl } }] },
    });
    stops.push(() => vaultServer.stop());
    // Registry routes are anonymous (auth.proxy: anonymous), as for a docker pull.
    const vault: SystemUnderTest = { ...vaultServer, headers: {} };
    const systems: SystemUnderTest[] = [vault, proxy];

    log("oci: pulling each blob once through each system (the proxy stores its copy in the background)");
    for (const system of systems) {
      for (const blob of [small, large]) await expectBytes(system.name, `${system.baseUrl}${ociBlobPath(blob)}`, blob.sha256, blob.size);
    }
    await waitUntil("the registry proxy to store both blobs", () => proxy.hasBlob(small.digest) && proxy.hasBlob(large.digest), 300_000);
    const upstreamBlobGets = (): number => upstream.requests().filter((entry) => entry.method === "GET" && entry.path.includes("/blobs/sha256:")).length;
    await sleep(300);
    const before = upstreamBlobGets();
    for (const system of systems) {
      for (const blob of [small, large]) {
        const got = await expectBytes(system.name, `${system.baseUrl}${ociBlobPath(blob)}`, blob.sha256, blob.size);
        if (system === vault && got.xCache !== "HIT") throw new Error(`vault: ${ociBlobPath(blob)} was X-Cache "${got.xCache}" the second time, expected HIT`);
      }
    }
    await sleep(300);
    if (upstreamBlobGets() !== before) throw new Error(`a cached blob was fetched from the upstream again (${before} → ${upstreamBlobGets()} blob GETs)`);
    notes.push(
      `oci: an upstream docker-registry (on the load core, access log on) holds a 4 KiB and a ${mib} MiB blob; the vault (oci backend) and ` +
        `docker-registry in proxy mode (on the server core like the vault: GOMAXPROCS follows taskset; access log off, log level warn) pull each once; then ` +
        `both serve GET /v2/${OCI_REPOSITORY}/blobs/<digest> from their cache: bytes checked (sha256) and the upstream's access log ` +
        `shows no further blob GET before timing.`,
    );

    const smallResults = await wrkRounds("oci: cached 4 KiB blob", workDir, systems, () => ({ pathPattern: ociBlobPath(small), keyCount: 1 }), options, cpus);
    const vs = bestRound(smallResults, vault.name);
    const ps = bestRound(smallResults, proxy.name);
    rows.push(...wrkRows(`oci: cached 4 KiB blob ×${options.connections}`, vs, ps, OCI_REFERENCE, 2));
    notes.push(
      `oci 4 KiB: wrk -t1 -c${options.connections} --latency on the one blob, ${options.warmup} s warm-up + ${options.seconds} s, best of ` +
        `${options.wrkRounds} round(s) alternating order. Server CPU in the best round: vault ${cpuPerRequest(vs)}, ${OCI_REFERENCE} ${cpuPerRequest(ps)}.`,
      ...wrkErrorNote(smallResults, "oci wrk runs"),
    );

    const largeResults = await ociLargeHits(systems, large, options, cpus);
    const vl = largeResults.get(vault.name);
    const pl = largeResults.get(proxy.name);
    for (const [clients, pick] of [[1, (r: OciLarge) => r.one], [4, (r: OciLarge) => r.four]] as const) {
      const vb = vl === undefined ? undefined : best(pick(vl));
      const pb = pl === undefined ? undefined : best(pick(pl));
      rows.push({
        measurement: `oci: cached ${mib} MiB blob, ${clients} client${clients === 1 ? "" : "s"}`,
        unit: "MB/s",
        vault: vb === undefined ? undefined : vb / MB,
        reference: pb === undefined ? undefined : pb / MB,
        against: OCI_REFERENCE,
        target: `≥ 1.00× ${OCI_REFERENCE}`,
        pass: (vb ?? 0) >= (pb ?? Infinity),
      });
    }
    notes.push(
      `oci ${mib} MiB: curl -o /dev/null on a new connection, best of ${options.rounds}; with 4 clients at once, 4 × ${mib} MiB ÷ the ` +
        `slowest client's time. Server CPU over these runs: vault ${cpuShare(vl)}, ${OCI_REFERENCE} ${cpuShare(pl)} of its core.`,
    );
  } finally {
    for (const stop of stops.reverse()) await stop();
  }
}

// ------------------------------------------------------------------------------------------------
// npm: a cached packument and tarball from the vault's npm backend and from Verdaccio

const NPM_PACKAGE = "vault-bench-lib";
const NPM_VERSIONS = 20;
const NPM_PREFIX = "/npm";
const NPM_REFERENCE = "verdaccio";
/** What `npm view` and a full-metadata install send for a packument. No Accept-Encoding: both answer identity. */
const NPM_PACKUMENT_HEADERS: Readonly<Record<string, string>> = { accept: "application/json" };
/** Verdaccio asks its uplink again after this; no run comes near it (nor the vault's 10 min default TTL). */
const NPM_UPLINK_MAX_AGE = "30m";

interface PackumentAnswer {
  readonly bytes: number;
  readonly contentType: string;
  readonly xCache: string;
}

/**
 * GET a packument as wrk will (`Accept: application/json`, no Accept-Encoding) and check it: 200,
 * unencoded JSON naming every version with its tarball's integrity and a tarball URL back to the
 * system that answered.
 */
async function checkPackument(system: SystemUnderTest, path: string, pkg: NpmPackage): Promise<PackumentAnswer> {
  const response = await undiciRequest(`${system.baseUrl}${path}`, { headers: NPM_PACKUMENT_HEADERS });
  const body = Buffer.from(await response.body.arrayBuffer());
  const header = (name: string): string => [response.headers[name] ?? ""].flat().join(", ");
  const fail = (why: string): Error => new Error(`${system.name}: GET ${path} (Accept: application/json) ${why}`);
  if (response.statusCode !== 200) throw fail(`answered ${response.statusCode}: ${body.toString("utf8").slice(0, 300)}`);
  if (!["", "identity"].includes(header("content-encoding"))) throw fail(`came ${header("content-encoding")}-encoded, unasked`);
  let packument: { name?: unknown; "dist-tags"?: { latest?: unknown }; versions?: Record<string, { dist?: { integrity?: unknown; tarball?: unknown } }> };
  try {
    packument = JSON.parse(body.toString("utf8")) as typeof packument;
  } catch {
    throw fail(`is not JSON: ${body.toString("utf8").slice(0, 200)}`);
  }
  const listed = Object.keys(packument.versions ?? {});
  if (packument.name !== pkg.name || packument["dist-tags"]?.latest !== pkg.latest.version || listed.join() !== pkg.versions.join()) {
    throw fail(`names ${String(packument.name)} with versions ${listed.join(", ")}, latest ${String(packument["dist-tags"]?.latest)}`);
  }
  for (const [version, tarball] of pkg.tarballs) {
    const dist = packument.versions?.[version]?.dist;
    const url = String(dist?.tarball);
    if (dist?.integrity !== tarball.integrity) throw fail(`gives ${version} the integrity ${String(dist?.integrity)}, not the tarball's`);
    if (!url.startsWith(system.baseUrl) || !url.endsWith(tarball.path)) throw fail(`gives ${version} the tarball URL ${url}, not one of its own`);
  }
  return { bytes: body.length, contentType: header("content-type"), xCache: header("x-cache") };
}

/**
 * The `npm` section: an nginx upstream (on the load core, access log on) serving a static
 * registry — the packument of one package with 20 versions and their tarballs; in front of it, on
 * the server core, the vault with an `npm` backend and Verdaccio with the upstream as its uplink.
 * Both get the packument and the latest tarball once, then serve them from their cache.
 */
async function npmPackages(options: Options, cpus: CpuLayout, workDir: string, vaultFlags: readonly string[], rows: Row[], notes: string[]): Promise<void> {
  const dir = join(workDir, "npm");
  const packuments = join(dir, "upstream", "packuments");
  const stops: Array<() => Promise<void>> = [];
  try {
    const upstream = await startNginxUpstream(join(dir, "upstream"), cpus.load, {
      rateBytesPerSecond: options.rateBytesPerSecond,
      name: "npm upstream",
      locations: packumentLocation(packuments),
    });
    stops.push(() => upstream.stop());
    log(`npm: writing ${NPM_PACKAGE}'s packument and ${NPM_VERSIONS} tarballs (tar czf) for the upstream ${upstream.baseUrl}`);
    const pkg = await writeNpmPackage({
      name: NPM_PACKAGE,
      versionCount: NPM_VERSIONS,
      root: upstream.root,
      packuments,
      registryUrl: upstream.baseUrl,
      scratch: join(dir, "sources"),
    });
    const tarball = pkg.latest;
    await expectBytes(upstream.name, `${upstream.baseUrl}${pkg.path}`, pkg.packumentSha256, pkg.packumentBytes);
    await expectBytes(upstream.name, `${upstream.baseUrl}${tarball.path}`, tarball.sha256, tarball.size);

    const verdaccio = await startVerdaccioProxy({ dir: join(dir, "verdaccio"), cpu: cpus.server, name: NPM_REFERENCE, uplinkUrl: `${upstream.baseUrl}/`, uplinkMaxAge: NPM_UPLINK_MAX_AGE });
    stops.push(() => verdaccio.stop());
    const vaultServer = await startVault({
      dir: join(dir, "vault"),
      cpu: cpus.server,
      nodeFlags: vaultFlags,
      extraConfig: { backends: [{ type: "npm", name: "npm", config: { prefix: `${NPM_PREFIX}/`, registry_url: `${upstream.baseUrl}/` } }] },
    });
    stops.push(() => vaultServer.stop());
    // npm routes are anonymous (auth.proxy: anonymous), as for an npm install.
    const vault: SystemUnderTest = { ...vaultServer, headers: {} };
    const systems: SystemUnderTest[] = [vault, verdaccio];
    const prefixOf = (system: SystemUnderTest): string => (system.name === vault.name ? NPM_PREFIX : "");
    const upstreamGets = (): [number, number] => [countRequests(upstream.accessLog, pkg.path), countRequests(upstream.accessLog, tarball.path)];
    const [packumentsBefore, tarballsBefore] = upstreamGets();
    const fetchedSince = (): string => {
      const [packumentGets, tarballGets] = upstreamGets();
      return `${packumentGets - packumentsBefore} packument, ${tarballGets - tarballsBefore} tarball`;
    };

    log("npm: fetching the packument and the latest tarball once through each system");
    const answers = new Map<string, PackumentAnswer>();
    for (const system of systems) {
      answers.set(system.name, await checkPackument(system, `${prefixOf(system)}${pkg.path}`, pkg));
      await expectBytes(system.name, `${system.baseUrl}${prefixOf(system)}${tarball.path}`, tarball.sha256, tarball.size);
    }
    await waitUntil("Verdaccio to store the tarball", () => verdaccio.hasTarball(pkg.name, tarball.version), 30_000);
    await sleep(300);
    const primed = fetchedSince();
    for (const system of systems) {
      const again = await checkPackument(system, `${prefixOf(system)}${pkg.path}`, pkg);
      const bytes = await expectBytes(system.name, `${system.baseUrl}${prefixOf(system)}${tarball.path}`, tarball.sha256, tarball.size);
      if (system === vault && (again.xCache !== "HIT" || bytes.xCache !== "HIT")) {
        throw new Error(`vault: the second GETs were X-Cache "${again.xCache}" (packument) and "${bytes.xCache}" (tarball), expected HIT`);
      }
    }
    await sleep(300);
    if (fetchedSince() !== primed) throw new Error(`a cached npm document was fetched from the upstream again (${primed} → ${fetchedSince()} GETs)`);

    const measure = async (what: string, path: string, headers: Readonly<Record<string, string>>): Promise<Map<string, WrkResult[]>> =>
      wrkRounds(
        `npm: cached ${what}`,
        workDir,
        systems.map((system) => ({ ...system, headers })),
        (system) => ({ pathPattern: `${prefixOf(system)}${path}`, keyCount: 1 }),
        options,
        cpus,
      );
    const packumentResults = await measure("packument", pkg.path, NPM_PACKUMENT_HEADERS);
    const tarballResults = await measure("tarball", tarball.path, {});
    const after = fetchedSince();

    const bestPair = (results: Map<string, WrkResult[]>): [WrkResult | undefined, WrkResult | undefined] => [bestRound(results, vault.name), bestRound(results, verdaccio.name)];
    const [vp, rp] = bestPair(packumentResults);
    const [vt, rt] = bestPair(tarballResults);
    rows.push(
      ...wrkRows(`npm: cached packument ×${options.connections}`, vp, rp, NPM_REFERENCE, 3),
      ...wrkRows(`npm: cached tarball ×${options.connections}`, vt, rt, NPM_REFERENCE, 3),
    );
    const answer = (name: string): string => {
      const got = answers.get(name);
      return got === undefined ? "?" : `${got.bytes.toLocaleString("en-US")} bytes of ${got.contentType || "no type"}`;
    };
    notes.push(
      `npm: an nginx upstream (on the load core, access log on) serves a static registry: GET /${pkg.name} is its packument ` +
        `(${NPM_VERSIONS} versions with dist.tarball, sha512 integrity and shasum, dist-tags, time, a ${Math.round(pkg.readmeBytes / 1024)} KB readme: ` +
        `${pkg.packumentBytes.toLocaleString("en-US")} bytes, application/json) and /${pkg.name}/-/${pkg.name}-<version>.tgz its tarballs (tar czf). ` +
        `The vault (npm backend, prefix ${NPM_PREFIX}/, default packument TTL) and Verdaccio ${verdaccioVersion()} (one uplink to it, maxage ${NPM_UPLINK_MAX_AGE}, ` +
        `cache: true, web UI off, log level warn, NODE_ENV=production; one Node process on the server core like the vault) each fetched the ` +
        `packument and the ${tarball.version} tarball once (upstream GETs from both together: ${primed}); a second GET through each was checked (packument JSON: ` +
        `all versions with their integrity and tarball URLs rewritten to itself; tarball sha256; vault X-Cache: HIT) with no further upstream GET.`,
      `npm packument: GET ${NPM_PREFIX}/${pkg.name} (vault) and /${pkg.name} (Verdaccio) with Accept: application/json and no Accept-Encoding ` +
        `(both answer identity: vault ${answer(vault.name)}, Verdaccio ${answer(verdaccio.name)}). npm tarball: GET ` +
        `…/${pkg.name}/-/${pkg.name}-${tarball.version}.tgz, ${tarball.size.toLocaleString("en-US")} bytes, no Accept. wrk -t1 -c${options.connections} --latency ` +
        `on the one URL, ${options.warmup} s warm-up + ${options.seconds} s, best of ${options.wrkRounds} round(s) alternating order. ` +
        `Server CPU in the best round: packument vault ${cpuPerRequest(vp)}, Verdaccio ${cpuPerRequest(rp)}; ` +
        `tarball vault ${cpuPerRequest(vt)}, Verdaccio ${cpuPerRequest(rt)}.`,
      ...(after === primed ? [] : [`WARNING: the npm upstream was asked again during the wrk runs (${primed} → ${after} GETs)`]),
      ...wrkErrorNote(packumentResults, "npm packument wrk runs"),
      ...wrkErrorNote(tarballResults, "npm tarball wrk runs"),
    );
  } finally {
    for (const stop of stops.reverse()) await stop();
  }
}

// ------------------------------------------------------------------------------------------------
// huggingface: a large model file through the vault's huggingface backend vs a direct download

const HF_PREFIX = "/hf/";
const HF_DIRECT = "direct (curl -L)";

/** One way of getting a model file's bytes: through the vault, or from the hub following its redirect. */
interface HfWay {
  readonly name: string;
  get(file: PublishedFile): Promise<TimedTransfer>;
}

interface HfRuns {
  readonly firstByteMs: number[];
  readonly totalSeconds: number[];
  readonly rates: number[];
  /** The vault's CPU seconds over the runs, and what the runs moved. */
  cpuSeconds: number;
  bytes: number;
  /** CDN GETs while the runs went on. */
  cdnGets: number;
}

const cdnGets = (stats: FakeHubStats): number => stats.cdn["GET"] ?? 0;
const hubCalls = (stats: FakeHubStats): string =>
  `hub ${Object.entries(stats.hub).map(([method, n]) => `${n} ${method}`).join(", ") || "none"}; CDN ${Object.entries(stats.cdn).map(([method, n]) => `${n} ${method}`).join(", ") || "none"}`;

/**
 * The `huggingface` section: the tests' fake hub with its CDN (a process of its own on the load
 * core, the file in memory) as the upstream; on the server core the vault with a `huggingface`
 * backend. A cold model file through the vault against a direct download (curl -L on the hub's
 * resolve URL: the hub's 302, then the CDN), on a new file each round; then the cached file.
 */
async function huggingFaceModel(options: Options, cpus: CpuLayout, workDir: string, vaultFlags: readonly string[], rows: Row[], notes: string[]): Promise<void> {
  const dir = join(workDir, "huggingface");
  const mib = options.hfBytes / MiB;
  const stops: Array<() => Promise<void>> = [];
  try {
    log(`huggingface: starting the fake hub and its CDN with a ${mib} MiB model file in memory`);
    const hub = await startFakeHub({ dir: join(dir, "hub"), cpu: cpus.load, bytes: options.hfBytes });
    stops.push(() => hub.stop());
    const vaultServer = await startVault({
      dir: join(dir, "vault"),
      cpu: cpus.server,
      nodeFlags: vaultFlags,
      extraConfig: { backends: [{ type: "huggingface", name: "hf", config: { prefix: HF_PREFIX, endpoint: hub.hubUrl } }] },
    });
    stops.push(() => vaultServer.stop());
    // Proxy routes are anonymous, as for huggingface_hub with HF_ENDPOINT pointed at the vault.
    const vault: SystemUnderTest = { ...vaultServer, headers: {} };
    const vaultPath = (file: PublishedFile): string => `${HF_PREFIX.slice(0, -1)}${hub.resolvePath(file)}`;
    const ways: HfWay[] = [
      { name: vault.name, get: (file) => curlTimed(vault.baseUrl, vaultPath(file), cpus.load) },
      { name: HF_DIRECT, get: (file) => curlTimed(hub.hubUrl, hub.resolvePath(file), cpus.load, {}, ["-L"]) },
    ];
    const empty = (): HfRuns => ({ firstByteMs: [], totalSeconds: [], rates: [], cpuSeconds: 0, bytes: 0, cdnGets: 0 });
    const run = async (way: HfWay, file: PublishedFile, runs: HfRuns, label: string): Promise<TimedTransfer> => {
      const before = cdnGets(await hub.stats());
      const { value: got, cpuSeconds: cpu } = await withCpu(vault, () => way.get(file));
      if (got.status !== 200 || got.bytes !== file.size) throw new Error(`${way.name}: GET ${file.file} answered ${got.status} with ${got.bytes} of ${file.size} bytes`);
      runs.firstByteMs.push(got.firstByteSeconds * 1000);
      runs.totalSeconds.push(got.totalSeconds);
      runs.rates.push(file.size / got.totalSeconds);
      runs.cpuSeconds += cpu;
      runs.bytes += file.size;
      runs.cdnGets += cdnGets(await hub.stats()) - before;
      log(
        `huggingface: ${label} ${mib} MiB ${way.name}: first byte ${(got.firstByteSeconds * 1000).toFixed(2)} ms, total ${got.totalSeconds.toFixed(3)} s, ` +
          `${Math.round(file.size / got.totalSeconds / MB)} MB/s` +
          (way.name === vault.name ? `, vault CPU ${cpu.toFixed(2)} s, X-Cache ${got.xCache || "-"}` : ""),
      );
      return got;
    };

    // Before timing: the bytes (sha256) through the vault (cold, then cached: no second CDN GET) and direct.
    const verified = await hub.publish();
    log(`huggingface: checking the bytes (sha256) of ${verified.file} through the vault (twice) and direct`);
    const vaultUrl = `${vault.baseUrl}${vaultPath(verified)}`;
    const first = await expectBytes(vault.name, vaultUrl, verified.sha256, verified.size);
    await expectBytes(HF_DIRECT, `${hub.hubUrl}${hub.resolvePath(verified)}`, verified.sha256, verified.size);
    const cdnBefore = cdnGets(await hub.stats());
    const second = await expectBytes(vault.name, vaultUrl, verified.sha256, verified.size);
    if (cdnGets(await hub.stats()) !== cdnBefore) throw new Error("huggingface: the vault fetched a cached model file from the CDN again");

    // The cached file first: `publish` changes the bytes the CDN has for earlier files.
    const warm = new Map<string, HfRuns>(ways.map((way) => [way.name, empty()]));
    for (let round = 0; round < options.rounds; round++) {
      for (const way of rotate(ways, round)) {
        const runs = warm.get(way.name);
        if (runs !== undefined) await run(way, verified, runs, `cached, round ${round + 1},`);
      }
    }
    if ((warm.get(vault.name)?.cdnGets ?? 0) !== 0) throw new Error("huggingface: a cached model file was fetched from the CDN again during the cached runs");

    const cold = new Map<string, HfRuns>(ways.map((way) => [way.name, empty()]));
    for (let round = 0; round < options.rounds; round++) {
      const file = await hub.publish();
      for (const way of rotate(ways, round)) {
        const runs = cold.get(way.name);
        if (runs !== undefined) await run(way, file, runs, `cold, round ${round + 1} (${file.file}),`);
      }
    }
    const stats = await hub.stats();

    const vc = cold.get(vault.name);
    const dc = cold.get(HF_DIRECT);
    const vw = warm.get(vault.name);
    const dw = warm.get(HF_DIRECT);
    const least = (values: readonly number[] | undefined): number | undefined => (values === undefined || values.length === 0 ? undefined : Math.min(...values));
    const most = (values: readonly number[] | undefined): number | undefined => (values === undefined || values.length === 0 ? undefined : best(values));
    const vFirst = least(vc?.firstByteMs);
    const dFirst = least(dc?.firstByteMs);
    const vTotal = least(vc?.totalSeconds);
    const dTotal = least(dc?.totalSeconds);
    const vWarm = most(vw?.rates);
    const dWarm = most(dw?.rates);
    const msPerMb = (runs: HfRuns | undefined): number | undefined => (runs === undefined || runs.bytes === 0 ? undefined : (runs.cpuSeconds * 1000) / (runs.bytes / MB));
    const label = `hf: ${mib} MiB model file`;
    rows.push(
      {
        measurement: `${label}, cold, first byte`,
        unit: "ms",
        vault: vFirst,
        reference: dFirst,
        against: HF_DIRECT,
        ratioText: vFirst === undefined || dFirst === undefined ? "–" : `${vFirst >= dFirst ? "+" : ""}${fixed(vFirst - dFirst, 2)} ms`,
        target: "≤ direct + 5 ms",
        pass: vFirst !== undefined && dFirst !== undefined && vFirst <= dFirst + 5,
      },
      { measurement: `${label}, cold, total`, unit: "s", vault: vTotal, reference: dTotal, against: HF_DIRECT, target: "–", pass: undefined },
      {
        measurement: `${label}, cached`,
        unit: "MB/s",
        vault: vWarm === undefined ? undefined : vWarm / MB,
        reference: dWarm === undefined ? undefined : dWarm / MB,
        against: HF_DIRECT,
        target: "≥ 1.00× direct",
        pass: vWarm !== undefined && dWarm !== undefined && vWarm >= dWarm,
      },
      { measurement: `${label}, cold, vault CPU`, unit: "ms/MB", vault: msPerMb(vc), reference: undefined, against: "–", target: "–", pass: undefined },
      { measurement: `${label}, cached, vault CPU`, unit: "ms/MB", vault: msPerMb(vw), reference: undefined, against: "–", target: "–", pass: undefined },
    );
    notes.push(
      `huggingface: the tests' fake hub and its CDN (tests/support/huggingface/fake-hub.ts) in a node process of their own on the load core ` +
        `(bench/lib/fake-hub-main.ts); the fake hub serves files from memory only, so that process holds one ${mib} MiB Buffer of random ` +
        `bytes, published as a new LFS file of ${hub.repo} (new first 32 bytes: a new SHA-256) whenever a run needs a cold file. The hub's ` +
        `resolve answers (302 to the CDN with X-Repo-Commit, X-Linked-Etag, X-Linked-Size) for these files come from a front in that process ` +
        `with the hash computed at publish: the fake hub itself hashes the whole file on every resolve request (~0.6 s per GiB), which ` +
        `would swamp the first byte; the bytes come from the fake hub's CDN (Node, one Buffer). ` +
        `The vault: huggingface backend {prefix: ${HF_PREFIX}, endpoint: <the front>}, filesystem store (fsync on), on the server core. ` +
        `Direct: curl -L on the hub's resolve URL (its 302, then the CDN; curl's times add both requests). The vault asks the hub with a HEAD ` +
        `(the pointer: commit, X-Linked-Etag, size), then GETs the resolve URL and follows the 302 to the CDN, verifying the SHA-256 as it streams.`,
      `huggingface bytes checked (sha256) before timing: ${verified.file} through the vault (X-Cache ${first.xCache || "-"}, then ` +
        `${second.xCache || "-"} with no further CDN GET) and direct. Cached rows: that file, curl -o /dev/null on a new connection, best of ` +
        `${options.rounds} rounds alternating vault and direct (CDN GETs during the vault's runs: ${vw?.cdnGets ?? "?"}). Cold rows: ` +
        `a new file each round (published between rounds), the vault and direct in alternating order, best of ${options.rounds}; CDN GETs ` +
        `during the vault's cold runs: ${vc?.cdnGets ?? "?"} (1 per run expected). Per round: cold vault ${list(vc?.firstByteMs ?? [], 2)} ms / ` +
        `${list(vc?.totalSeconds ?? [], 3)} s, direct ${list(dc?.firstByteMs ?? [], 2)} ms / ${list(dc?.totalSeconds ?? [], 3)} s; cached vault ` +
        `${list((vw?.rates ?? []).map((r) => r / MB), 0)} MB/s, direct ${list((dw?.rates ?? []).map((r) => r / MB), 0)} MB/s.`,
      `huggingface vault CPU (its process, /proc): cold ${vc === undefined ? "?" : vc.cpuSeconds.toFixed(2)} s over ${vc === undefined ? "?" : Math.round(vc.bytes / MB)} MB ` +
        `(receive, SHA-256, spool write, fsync, send), cached ${vw === undefined ? "?" : vw.cpuSeconds.toFixed(2)} s over ${vw === undefined ? "?" : Math.round(vw.bytes / MB)} MB. ` +
        `Requests the fake hub answered in the section: ${hubCalls(stats)}. Keep in mind that the CDN here is a Node server sending ` +
        `one Buffer on loopback, not a remote CDN: "direct" is close to the fastest a client can receive.`,
    );
  } finally {
    for (const stop of stops.reverse()) await stop();
  }
}

// ------------------------------------------------------------------------------------------------
// go: a cached module zip from the vault's go backend and from nginx proxy_cache

const GO_MODULE = "example.com/vault/benchmod";
const GO_VERSION = "v1.0.0";
/** The size of the module's one data file; the zip is this plus a few hundred bytes. */
const GO_DATA_KIB = 256;
const GO_PREFIX = "/go/";

/**
 * The `go` section: an nginx upstream (load core, access log on) serving a static GOPROXY tree
 * (tests/support/go/module-proxy.ts) with one module version whose zip is ~256 KiB; in front of it,
 * on the server core, the vault with a `go` backend (no checksum database) and nginx proxy_cache.
 * Both get the zip once, then serve it from their cache to wrk.
 */
async function goModules(options: Options, cpus: CpuLayout, workDir: string, vaultFlags: readonly string[], rows: Row[], notes: string[]): Promise<void> {
  const dir = join(workDir, "go");
  const stops: Array<() => Promise<void>> = [];
  try {
    const upstream = await startNginxUpstream(join(dir, "upstream"), cpus.load, { rateBytesPerSecond: options.rateBytesPerSecond, name: "go upstream" });
    stops.push(() => upstream.stop());
    const module: ModuleVersion = {
      path: GO_MODULE,
      version: GO_VERSION,
      files: {
        "go.mod": `module ${GO_MODULE}\n\ngo 1.21\n`,
        "benchmod.go": "package benchmod\n\n// Data is in data.txt.\n",
        "data.txt": randomBytes((GO_DATA_KIB * 1024) / 2).toString("hex"),
      },
    };
    const zip = storedZip(zipEntries(module));
    const proxy = new StaticModuleProxy();
    proxy.add(module, zip);
    await proxy.writeTo(upstream.root);
    const zipPath = `/${proxy.pathOf(GO_MODULE, GO_VERSION, "zip")}`;
    const zipSha256 = createHash("sha256").update(zip).digest("hex");
    log(`go: a static module proxy with ${GO_MODULE}@${GO_VERSION} (zip ${zip.length.toLocaleString("en-US")} bytes) at the upstream ${upstream.baseUrl}`);
    await expectBytes(upstream.name, `${upstream.baseUrl}${zipPath}`, zipSha256, zip.length);

    const nginx = await startNginxProxyCache(join(dir, "nginx"), cpus.server, upstream.baseUrl);
    stops.push(() => nginx.stop());
    const vaultServer = await startVault({
      dir: join(dir, "vault"),
      cpu: cpus.server,
      nodeFlags: vaultFlags,
      extraConfig: { backends: [{ type: "go", name: "go", config: { prefix: GO_PREFIX, proxy_url: upstream.baseUrl } }] },
    });
    stops.push(() => vaultServer.stop());
    // GOPROXY routes are anonymous, as for the go command.
    const vault: SystemUnderTest = { ...vaultServer, headers: {} };
    const systems: SystemUnderTest[] = [vault, nginx];
    const pathOf = (system: SystemUnderTest): string => `${(system.name === vault.name ? GO_PREFIX : PREFIX).slice(0, -1)}${zipPath}`;
    const upstreamGets = (): number => countRequests(upstream.accessLog, zipPath);

    log("go: fetching the zip through each cache (MISS, then HIT)");
    const before = upstreamGets();
    for (const system of systems) {
      for (const expected of ["MISS", "HIT"]) {
        const got = await expectBytes(system.name, `${system.baseUrl}${pathOf(system)}`, zipSha256, zip.length);
        if (got.xCache !== expected) throw new Error(`${system.name}: GET ${pathOf(system)} was X-Cache "${got.xCache}", expected ${expected}`);
      }
    }
    await sleep(300);
    const primed = upstreamGets() - before;

    const results = await wrkRounds("go: cached module zip", workDir, systems, (system) => ({ pathPattern: pathOf(system), keyCount: 1 }), options, cpus);
    for (const system of systems) await expectBytes(system.name, `${system.baseUrl}${pathOf(system)}`, zipSha256, zip.length);
    await sleep(300);
    const after = upstreamGets() - before;

    const v = bestRound(results, vault.name);
    const n = bestRound(results, nginx.name);
    const measurement = `go: cached module .zip (${Math.round(zip.length / 1024)} KiB) ×${options.connections}`;
    rows.push(
      { measurement, unit: "req/s", vault: v?.opsPerSecond, reference: n?.opsPerSecond, against: "nginx", target: "–", pass: undefined },
      { measurement, unit: "p99 ms", vault: v?.p99Ms, reference: n?.p99Ms, against: "nginx", target: "–", pass: undefined },
    );
    notes.push(
      `go: an nginx upstream (load core, access log on) serves a static GOPROXY tree (tests/support/go/module-proxy.ts: .info, .mod, .zip, ` +
        `list) of ${GO_MODULE}@${GO_VERSION}, whose zip (stored, ${zip.length.toLocaleString("en-US")} bytes) holds a ${GO_DATA_KIB} KiB file. ` +
        `The vault (go backend {prefix: ${GO_PREFIX}, proxy_url: <upstream>}, no checksum database, filesystem store) and nginx proxy_cache ` +
        `(as for the http rows, at ${PREFIX}) on the server core each fetched it once (X-Cache MISS, then HIT; sha256 checked each time, and ` +
        `again after the wrk runs); upstream GETs of the zip: ${primed} after priming, ${after} after the wrk runs (2 expected: one per cache). ` +
        `wrk -t1 -c${options.connections} --latency on GET ${GO_PREFIX.slice(0, -1)}${zipPath} (vault) and ${PREFIX.slice(0, -1)}${zipPath} (nginx), ` +
        `${options.warmup} s warm-up + ${options.seconds} s, best of ${options.wrkRounds} round(s) alternating order. Server CPU in the best round: ` +
        `vault ${cpuPerRequest(v)}, nginx ${cpuPerRequest(n)}. No target: information.`,
      ...(after === primed ? [] : [`WARNING: the go upstream was asked for the zip again during the wrk runs (${primed} → ${after} GETs)`]),
      ...wrkErrorNote(results, "go wrk runs"),
    );
  } finally {
    for (const stop of stops.reverse()) await stop();
  }
}

// ------------------------------------------------------------------------------------------------

function nginxVersion(): string {
  const result = spawnSync("nginx", ["-v"], { encoding: "utf8" });
  return (result.stderr || result.stdout).trim().replace(/^nginx version:\s*/, "");
}

const fixed = (value: number, digits: number): string => value.toFixed(digits);
/** The Node ceiling's process answering a cold miss (`node-ceiling-main.ts`, its `upstream`): plain node:http streams. */
const PLAIN_NODE_PROXY = "plain node proxy";

const cpuShare = (r: { cpuSeconds: number; seconds: number } | undefined): string =>
  r === undefined || r.seconds === 0 ? "?" : `${Math.round((r.cpuSeconds / r.seconds) * 100)}%`;
const list = (values: readonly number[], digits: number): string => values.map((v) => v.toFixed(digits)).join(" / ");

/**
 * A row comparing the vault with the Node ceiling: `target` is e.g. "≥ 0.70×" (the ceiling's
 * name is added), `meets(vault, ceiling)` decides PASS / MISS.
 */
function ceilingRow(
  measurement: string,
  unit: string,
  vault: number | undefined,
  node: number | undefined,
  target: string,
  meets: (vault: number, node: number) => boolean,
): Row {
  return {
    measurement,
    unit,
    vault,
    reference: node,
    against: NODE_CEILING,
    target: `${target} ${NODE_CEILING}`,
    pass: vault !== undefined && node !== undefined && meets(vault, node),
  };
}

/**
 * Before timing: the Node ceiling answers the 2 checked small files and the large one with the
 * right bytes; its ETag for a small file is compared with the vault's (a difference is noted,
 * not fatal). Returns the note.
 */
async function verifyCeiling(files: UpstreamFiles, ceiling: Target, vault: SystemUnderTest, options: Options): Promise<string> {
  const url = (system: SystemUnderTest, name: string): string => `${system.baseUrl}${PREFIX}${name}`;
  for (const [i, sha256] of files.smallSha256) await expectBytes(ceiling.name, url(ceiling.system, smallName(i)), sha256, SMALL_BYTES);
  if (files.largeSha256 !== "") {
    await expectBytes(ceiling.name, url(ceiling.system, "large/hit.bin"), files.largeSha256, options.largeBytes);
    // A cold miss through its upstream path too, as the caches had one in their check.
    await expectBytes(ceiling.name, url(ceiling.system, files.fresh("large", "verify-ceiling")), files.largeSha256, options.largeBytes);
  }
  const headersOf = async (system: SystemUnderTest): Promise<string> => {
    const response = await fetch(url(system, smallName(0)), { signal: AbortSignal.timeout(10_000) });
    await response.arrayBuffer();
    return ["content-length", "content-type", "etag"].map((name) => `${name}: ${response.headers.get(name) ?? "-"}`).join(", ");
  };
  const [fromVault, fromCeiling] = [await headersOf(vault), await headersOf(ceiling.system)];
  return (
    `${NODE_CEILING}: a bare node:http server in a process of its own on the server core (bench/lib/node-ceiling-main.ts), serving the ` +
    `upstream's files at the caches' URLs (${PREFIX}…): files up to 1 MiB from a Map loaded at start (one res.end(buffer)), larger ones ` +
    `from disk (fs.createReadStream, 1 MiB highWaterMark, Content-Length from a stat per request); bytes checked (sha256) for 2 small files` +
    (files.largeSha256 === "" ? "" : ` and the ${options.largeBytes / MiB} MiB file, and one cold ${options.largeBytes / MiB} MiB file`) +
    `; names not there at its start are cold misses: fetched from the upstream (node:http, keep-alive), hashed (sha256), written to a spool ` +
    `file and to the client as they arrive, nothing kept. ${smallName(0)}: vault ${fromVault}; ${NODE_CEILING} ${fromCeiling}` +
    (fromVault === fromCeiling ? " (the same)." : " — WARNING: they differ.")
  );
}

/** The `http` backend against nginx proxy_cache: every section but `oci`. */
async function httpCache(options: Options, cpus: CpuLayout, workDir: string, vaultFlags: readonly string[], rows: Row[], notes: string[]): Promise<void> {
  const has = (section: Section): boolean => options.sections.has(section);
  const needsLarge = has("large") || has("miss") || has("rss");

  const upstream = await startNginxUpstream(join(workDir, "upstream"), cpus.load, { rateBytesPerSecond: options.rateBytesPerSecond });
  const files = new UpstreamFiles(upstream.root, join(workDir, "blobs"));
  log(`writing the upstream's files: ${SMALL_FILES} × 4 KiB` + (needsLarge ? `, ${options.largeBytes / MiB} MiB` : "") + (has("herd") ? `, ${options.herdBytes / MiB} MiB` : ""));
  files.writeSmall();
  if (needsLarge) files.writeLarge(options.largeBytes);
  if (has("herd")) files.writeHerd(options.herdBytes);

  const nginx = await startNginxProxyCache(join(workDir, "nginx"), cpus.server, upstream.baseUrl);
  const vaultServer = await startVault({
    dir: join(workDir, "vault"),
    cpu: cpus.server,
    nodeFlags: vaultFlags,
    extraConfig: { backends: [{ type: "http", name: "files", config: { prefix: PREFIX, base_url: upstream.baseUrl } }] },
  });
  // Proxy routes are anonymous: send what pip or curl would, no token.
  const vault: SystemUnderTest = { ...vaultServer, headers: {} };
  const caches = [cacheTarget(vault), cacheTarget(nginx)];
  const direct = directTarget(upstream);

  const mib = options.largeBytes / MiB;
  let ceiling: Target | undefined;

  try {
    log("checking every system's bytes (sha256) before timing");
    const verified = await verify(files, caches, direct, options);
    notes.push(
      `bytes checked (sha256) before timing, for ${verified}: 2 small files and the ${mib} MiB file (the caches: MISS, then HIT), ` +
        `and one cold ${mib} MiB file.`,
    );

    if (has("small") || has("large") || has("miss")) {
      // The second reference: a bare node:http server with the upstream's files at the caches' URLs
      // (the hit rows), fetching the names that were not there at its start from the upstream (the misses).
      const system = await startNodeCeiling({
        dir: join(workDir, "node-ceiling"),
        cpu: cpus.server,
        mounts: [{ prefix: PREFIX, dir: upstream.root }],
        upstream: { prefix: PREFIX, baseUrl: upstream.baseUrl },
      });
      ceiling = ceilingTarget(system);
      notes.push(await verifyCeiling(files, ceiling, vault, options));
    }
    const ceilings = ceiling === undefined ? [] : [ceiling];

    if (has("small")) {
      const small = await smallHits(workDir, caches, options, cpus, ceilings);
      const v = bestRound(small, "vault");
      const n = bestRound(small, "nginx");
      const c = bestRound(small, NODE_CEILING);
      const measurement = `cache hit 4 KiB ×${options.connections}`;
      rows.push(
        {
          measurement,
          unit: "req/s",
          vault: v?.opsPerSecond,
          reference: n?.opsPerSecond,
          target: "≥ 0.50× nginx",
          pass: (v?.opsPerSecond ?? 0) >= 0.5 * (n?.opsPerSecond ?? Infinity),
        },
        ceilingRow(measurement, "req/s", v?.opsPerSecond, c?.opsPerSecond, "≥ 0.70×", (vault, node) => vault >= 0.7 * node),
        {
          measurement,
          unit: "p99 ms",
          vault: v?.p99Ms,
          reference: n?.p99Ms,
          target: "≤ 2× nginx",
          pass: v !== undefined && n !== undefined && v.p99Ms <= 2 * n.p99Ms,
        },
        ceilingRow(measurement, "p99 ms", v?.p99Ms, c?.p99Ms, "≤ 2×", (vault, node) => vault <= 2 * node),
      );
      notes.push(
        `4 KiB hits: ${SMALL_FILES} files fetched once through each cache, then wrk -t1 -c${options.connections} --latency over them, ` +
          `${options.warmup} s warm-up + ${options.seconds} s, best of ${options.wrkRounds} round(s) rotating the order of vault, nginx and the ${NODE_CEILING}. ` +
          `Server CPU in the best round (CPU per request): vault ${cpuPerRequest(v)}, ${NODE_CEILING} ${cpuPerRequest(c)}, nginx ${cpuPerRequest(n)}; ` +
          `under 100% means the server was not the bottleneck.`,
        ...wrkErrorNote(small, "wrk runs"),
      );
    }

    if (has("large")) {
      const large = await largeHits([...caches, ...ceilings], options, cpus);
      const v = large.get("vault");
      const n = large.get("nginx");
      const c = large.get(NODE_CEILING);
      for (const [clients, pick] of [[1, (r: LargeHits) => r.one], [4, (r: LargeHits) => r.four]] as const) {
        const vb = v === undefined ? undefined : best(pick(v));
        const nb = n === undefined ? undefined : best(pick(n));
        const cb = c === undefined ? undefined : best(pick(c));
        const measurement = `cache hit ${mib} MiB, ${clients} client${clients === 1 ? "" : "s"}`;
        const mbs = (rate: number | undefined): number | undefined => (rate === undefined ? undefined : rate / MB);
        rows.push(
          {
            measurement,
            unit: "MB/s",
            vault: mbs(vb),
            reference: mbs(nb),
            target: "≥ 0.70× nginx",
            pass: (vb ?? 0) >= 0.7 * (nb ?? Infinity),
          },
          ceilingRow(measurement, "MB/s", mbs(vb), mbs(cb), "≥ 0.90×", (vault, node) => vault >= 0.9 * node),
        );
      }
      const vRss = v?.peakRss;
      const cRss = c?.peakRss;
      rows.push({
        measurement: `peak RSS, ${mib} MiB hits (1 and 4 clients)`,
        unit: "MB",
        vault: vRss === undefined ? undefined : vRss.bytes / MB,
        reference: cRss === undefined ? undefined : cRss.bytes / MB,
        against: NODE_CEILING,
        target: "vault < 150 MB",
        pass: vRss !== undefined && vRss.bytes < 150 * MB,
      });
      const rssLine = (rss: LargeHits["peakRss"]): string =>
        rss === undefined ? "?" : `${Math.round(rss.bytes / MB)} MB (${Math.round(rss.startBytes / MB)} MB as they began)`;
      const perRequest = (r: LargeHits | undefined, clients: 1 | 4): string => {
        const cpu = clients === 1 ? r?.oneCpu : r?.fourCpu;
        return cpu === undefined || cpu.requests === 0 ? "?" : `${Math.round((cpu.cpuSeconds / cpu.requests) * 1e6).toLocaleString("en-US")} µs/req`;
      };
      const cpuLine = (clients: 1 | 4): string =>
        `vault ${perRequest(v, clients)}, ${NODE_CEILING} ${perRequest(c, clients)}, nginx ${perRequest(n, clients)}`;
      notes.push(
        `${mib} MiB hits: curl -o /dev/null on a new connection, best of ${options.rounds} rounds rotating the order of vault, nginx and the ` +
          `${NODE_CEILING}; with 4 clients at once the rate is 4 × ${mib} MiB ÷ the slowest client's time. Server CPU over these runs: ` +
          `vault ${cpuShare(v)}, ${NODE_CEILING} ${cpuShare(c)}, nginx ${cpuShare(n)} of its core; CPU per request (all rounds), ` +
          `1 client: ${cpuLine(1)}; 4 clients: ${cpuLine(4)}. Peak RSS over these runs (VmHWM reset as they began): vault ${rssLine(vRss)}, ` +
          `${NODE_CEILING} ${rssLine(cRss)}; what the hits add is the peak less the size the process had reached before them (its earlier misses and hits).`,
      );
    }

    if (has("miss")) {
      const misses = await coldMisses(files, [caches[0], direct, caches[1], ...ceilings] as Target[], options, cpus);
      const v = misses.get("vault");
      const d = misses.get(direct.name);
      const n = misses.get("nginx");
      const c = misses.get(NODE_CEILING);
      const cFirst = c === undefined ? undefined : Math.min(...c.firstByteMs);
      const cTotal = c === undefined ? undefined : Math.min(...c.totalSeconds);
      const vFirst = v === undefined ? undefined : Math.min(...v.firstByteMs);
      const dFirst = d === undefined ? undefined : Math.min(...d.firstByteMs);
      const vTotal = v === undefined ? undefined : Math.min(...v.totalSeconds);
      const dTotal = d === undefined ? undefined : Math.min(...d.totalSeconds);
      const nTotal = n === undefined ? undefined : Math.min(...n.totalSeconds);
      rows.push(
        {
          measurement: `cold miss ${mib} MiB, first byte`,
          unit: "ms",
          vault: vFirst,
          reference: dFirst,
          against: "upstream direct",
          ratioText: vFirst === undefined || dFirst === undefined ? "–" : `+${fixed(vFirst - dFirst, 2)} ms`,
          target: "≤ direct + 2 ms",
          pass: vFirst !== undefined && dFirst !== undefined && vFirst <= dFirst + 2,
        },
        {
          measurement: `cold miss ${mib} MiB, total`,
          unit: "s",
          vault: vTotal,
          reference: dTotal,
          against: "upstream direct",
          target: "≤ 1.10× direct",
          pass: vTotal !== undefined && dTotal !== undefined && vTotal <= 1.1 * dTotal,
        },
        {
          measurement: `cold miss ${mib} MiB, total`,
          unit: "s",
          vault: vTotal,
          reference: nTotal,
          against: "nginx",
          target: "≤ 1.00× nginx",
          pass: vTotal !== undefined && nTotal !== undefined && vTotal <= nTotal,
        },
        // A miss through plain Node streams (the ceiling's process, its upstream path): no
        // verification, nothing kept. Not a floor, but it separates what the vault's own code adds
        // before the first byte from what a Node pull-through pays anyway: information, no target.
        {
          measurement: `cold miss ${mib} MiB, first byte`,
          unit: "ms",
          vault: vFirst,
          reference: cFirst,
          against: PLAIN_NODE_PROXY,
          ratioText: vFirst === undefined || cFirst === undefined ? "–" : `${vFirst >= cFirst ? "+" : "−"}${fixed(Math.abs(vFirst - cFirst), 2)} ms`,
          target: "information",
          pass: undefined,
        },
        {
          measurement: `cold miss ${mib} MiB, total`,
          unit: "s",
          vault: vTotal,
          reference: cTotal,
          against: PLAIN_NODE_PROXY,
          target: "information",
          pass: undefined,
        },
      );
      const cpuPerMb = (miss: ColdMiss | undefined): string =>
        miss === undefined ? "?" : `${Math.round((miss.cpuSeconds * 1e6) / ((options.rounds * options.largeBytes) / MB)).toLocaleString("en-US")} µs/MB`;
      notes.push(
        `cold miss: curl of a fresh name per round (cold for every system), ${options.rounds} round(s) rotating the order, best counts; ` +
          `first byte = curl's time_starttransfer (status line), on a new connection. Rounds, first byte ms / total s: ` +
          `vault ${list(v?.firstByteMs ?? [], 2)} / ${list(v?.totalSeconds ?? [], 3)}; ` +
          `direct ${list(d?.firstByteMs ?? [], 2)} / ${list(d?.totalSeconds ?? [], 3)}; ` +
          `nginx proxy_cache (for comparison) ${list(n?.firstByteMs ?? [], 2)} / ${list(n?.totalSeconds ?? [], 3)}; ` +
          `${PLAIN_NODE_PROXY} (the ${NODE_CEILING}'s process fetching a name it did not have) ${list(c?.firstByteMs ?? [], 2)} / ${list(c?.totalSeconds ?? [], 3)}. ` +
          `Server CPU during the misses: vault ${cpuShare(v)}, nginx ${cpuShare(n)}, ${PLAIN_NODE_PROXY} ${cpuShare(c)} of its core (well under 100%: it waited, on I/O or the upstream); ` +
          `per MB received, sent and stored: vault ${cpuPerMb(v)}, nginx ${cpuPerMb(n)}, ${PLAIN_NODE_PROXY} ${cpuPerMb(c)}. ` +
          `The vault hashes every byte and releases a fill's last byte only once the download is verified, then makes it durable (fsync) while it serves; ` +
          `nginx neither hashes nor fsyncs; the ${PLAIN_NODE_PROXY} hashes and spools but verifies, keeps and fsyncs nothing (it is a ` +
          `straightforward Node pull-through, not a floor: compare its first byte with the vault's for what the vault's own code adds before the first byte).`,
      );
    }

    if (has("herd")) {
      const { single, herds: byCache } = await herds(files, upstream, caches, direct, options, cpus);
      const one = Math.min(...single.map((h) => h.seconds));
      const fastest = (name: string): Herd | undefined => byCache.get(name)?.reduce((a, b) => (b.seconds < a.seconds ? b : a));
      const worstCount = (name: string): number | undefined => {
        const all = byCache.get(name);
        return all === undefined || all.length === 0 ? undefined : Math.max(...all.map((h) => h.upstreamRequests));
      };
      const v = fastest("vault");
      const n = fastest("nginx");
      const label = `${options.herdClients} cold GETs of ${options.herdBytes / MiB} MiB`;
      rows.push(
        {
          measurement: `${label}, upstream requests`,
          unit: "count",
          vault: worstCount("vault"),
          reference: worstCount("nginx"),
          target: "exactly 1",
          pass: worstCount("vault") === 1,
        },
        {
          measurement: `${label}, all done`,
          unit: "s",
          vault: v?.seconds,
          reference: n?.seconds,
          target: `≤ 1.2× one (${fixed(1.2 * one, 2)} s)`,
          pass: v !== undefined && v.seconds <= 1.2 * one,
        },
      );
      const tally = (h: Herd | undefined): string =>
        h === undefined ? "?" : Object.entries(h.xCache).map(([k, c]) => `${c} ${k}`).join(", ");
      notes.push(
        `herd: the upstream sends /slow/ at ${options.rateBytesPerSecond / MB} MB/s per connection (limit_rate); one cold download ` +
          `direct took ${list(single.map((h) => h.seconds), 3)} s (best ${fixed(one, 3)} s, the "one" of the target). ` +
          `${options.herdClients} curls started together on a fresh name per round, best of ${options.wrkRounds}; time = start to the last exit ` +
          `(slowest client's own time: vault ${fixed(v?.slowestClientSeconds ?? NaN, 3)} s, nginx ${fixed(n?.slowestClientSeconds ?? NaN, 3)} s). ` +
          `Server CPU in the best round: vault ${Math.round((v?.cpu ?? NaN) * 100)}%, nginx ${Math.round((n?.cpu ?? NaN) * 100)}% of its core. ` +
          `Upstream requests counted in its access log (worst round). X-Cache: vault ${tally(v)}; nginx ${tally(n)} ` +
          `(proxy_cache_lock makes the others wait for the whole file, then serves them from the cache).`,
      );
    }

    if (has("rss")) {
      const v = await peakRss(files, caches[0] as Target, options, cpus);
      const n = await peakRss(files, caches[1] as Target, options, cpus);
      const half = options.rssClients / 2;
      rows.push({
        measurement: `peak RSS, ${options.rssClients} × ${mib} MiB (${half} hits, ${half} misses)`,
        unit: "MB",
        vault: v.bytes / MB,
        reference: n.bytes / MB,
        target: "vault < 200 MB",
        pass: v.bytes < 200 * MB,
      });
      notes.push(
        `peak RSS: ${half} curls of the cached ${mib} MiB file and ${half} of different cold ${mib} MiB files at once ` +
          `(vault ${fixed(v.seconds, 1)} s, nginx ${fixed(n.seconds, 1)} s); ${v.method}; for nginx, its worker process.`,
      );
    }
  } finally {
    await ceiling?.system.stop();
    await vault.stop();
    await nginx.stop();
    await upstream.stop();
  }
}

// ------------------------------------------------------------------------------------------------
// s3: cache hits from a vault on the S3 driver against a vault on the filesystem driver

const S3_AGAINST = "vault on fs";

/** The `backends` config of a vault caching the upstream's files at `PREFIX`. */
const filesBackend = (upstream: SystemUnderTest): Record<string, unknown> => ({
  backends: [{ type: "http", name: "files", config: { prefix: PREFIX, base_url: upstream.baseUrl } }],
});

/** s3rver's share, in %, of the CPU a vault on S3 and s3rver used together. */
const s3Share = (vaultCpu: number, s3Cpu: number): number => (vaultCpu + s3Cpu > 0 ? (100 * s3Cpu) / (vaultCpu + s3Cpu) : Number.NaN);

function s3ShareRow(label: string, value: number | undefined): Row {
  return { measurement: `S3: ${label}, S3 server's share of CPU`, unit: "%", vault: value, reference: undefined, against: "–", ratioText: "–", target: "–", pass: undefined };
}

/**
 * The `s3` section: its own upstream (nginx, on the load core) with the same files as the hit
 * rows; two vaults with the same `http` backend, one on the filesystem driver and one on the S3
 * driver against the tests' s3rver (a process of its own on the server core, so its CPU is read
 * apart: the S3 server's share). Both are checked like the proxy_cache comparison, then serve the
 * same 4 KiB and large hits.
 */
async function s3Hits(options: Options, cpus: CpuLayout, workDir: string, vaultFlags: readonly string[], rows: Row[], notes: string[]): Promise<void> {
  const dir = join(workDir, "s3-hits");
  const tmp = join(dir, "tmp");
  mkdirSync(tmp, { recursive: true });
  const mib = options.largeBytes / MiB;
  const stops: Array<() => Promise<void>> = [];
  try {
    const upstream = await startNginxUpstream(join(dir, "upstream"), cpus.load, { rateBytesPerSecond: options.rateBytesPerSecond, name: "s3 upstream" });
    stops.push(() => upstream.stop());
    const files = new UpstreamFiles(upstream.root, join(dir, "blobs"));
    log(`s3: writing the upstream's files: ${SMALL_FILES} × 4 KiB, ${mib} MiB`);
    files.writeSmall();
    files.writeLarge(options.largeBytes);

    const s3 = await startS3Server({ dir: join(dir, "s3rver"), cpu: cpus.server });
    stops.push(() => s3.stop());
    const vaults = await startVaultsOnFsAndS3({ dir, cpu: cpus.server, nodeFlags: vaultFlags, tmp, s3, prefixName: "bench-cache", extraConfig: filesBackend(upstream), stops });
    const { prefix } = vaults;
    // Proxy routes are anonymous: no token.
    const onFs: SystemUnderTest = { ...vaults.onFs, headers: {} };
    const onS3: SystemUnderTest = { ...vaults.onS3, headers: {} };
    const caches = [cacheTarget(onFs), cacheTarget(onS3)];
    log(`s3: s3rver at ${s3.endpoint} (pid ${s3.pid}), prefix ${prefix}; checking both vaults' bytes (sha256)`);
    const s3Before = await s3.stats();
    const verified = await verify(files, caches, directTarget(upstream), options);

    const small = await smallHits(workDir, caches, options, cpus);
    const v = bestRound(small, onS3.name);
    const f = bestRound(small, onFs.name);
    rows.push(
      ...wrkRows(`S3: cache hit 4 KiB ×${options.connections}`, v, f, S3_AGAINST, 0).map((row) => ({ ...row, target: "–", pass: undefined })),
      s3ShareRow("cache hit 4 KiB", v === undefined ? undefined : s3Share(v.serverCpu, v.backingCpu)),
    );

    const large = await largeHits(caches, options, cpus);
    const vl = large.get(onS3.name);
    const fl = large.get(onFs.name);
    for (const [clients, pick] of [[1, (r: LargeHits) => r.one], [4, (r: LargeHits) => r.four]] as const) {
      const vb = vl === undefined ? undefined : best(pick(vl));
      const fb = fl === undefined ? undefined : best(pick(fl));
      rows.push({
        measurement: `S3: cache hit ${mib} MiB, ${clients} client${clients === 1 ? "" : "s"}`,
        unit: "MB/s",
        vault: vb === undefined ? undefined : vb / MB,
        reference: fb === undefined ? undefined : fb / MB,
        against: S3_AGAINST,
        target: "–",
        pass: undefined,
      });
    }
    rows.push(s3ShareRow(`cache hit ${mib} MiB`, vl === undefined ? undefined : s3Share(vl.cpuSeconds, vl.backingCpuSeconds)));

    const perRequest = (r: WrkResult | undefined, cpu: number | undefined): string =>
      r === undefined || cpu === undefined ? "?" : `${Math.round((cpu / r.opsPerSecond) * 1e6)}`;
    const share = (r: { cpuSeconds: number; seconds: number } | undefined, cpu: number | undefined): string =>
      r === undefined || cpu === undefined || r.seconds === 0 ? "?" : `${Math.round((cpu / r.seconds) * 100)}%`;
    notes.push(
      `S3 section: its own nginx upstream (load core) with the same files; two vaults with the same http backend, one on the filesystem ` +
        `driver (fsync on) and one on the S3 driver (force_path_style, conditional_writes: native, prefix ${prefix}) against the tests' s3rver ` +
        `(tests/support/s3-server.ts) in a node process of its own on the server core with the vaults, so the S3 rows pay for the S3 server ` +
        `too; "S3 server's share" = s3rver CPU ÷ (vault + s3rver CPU) over the measured runs (/proc/<pid>/stat of each). ` +
        `Bytes checked (sha256) before timing for ${verified} (MISS, then HIT; and a cold ${mib} MiB file). ` +
        `s3rver keeps objects in files on the same disk; a real S3 is remote, so the vault's own µs/req is the figure that carries over.`,
      `S3 4 KiB hits: as the 4 KiB hit rows (${SMALL_FILES} files primed, wrk -t1 -c${options.connections}, ${options.warmup} s warm-up + ${options.seconds} s, ` +
        `best of ${options.wrkRounds} alternating). Best round: vault on S3 ${Math.round((v?.serverCpu ?? NaN) * 100)}% + s3rver ` +
        `${Math.round((v?.backingCpu ?? NaN) * 100)}% of the core (${perRequest(v, v?.serverCpu)} + ${perRequest(v, v?.backingCpu)} µs/req), ` +
        `vault on fs ${cpuPerRequest(f)}.`,
      `S3 ${mib} MiB hits: as the large hit rows (curl, new connection, best of ${options.rounds}; 4 clients: 4 × ${mib} MiB ÷ the slowest). ` +
        `Share of the core over these runs: vault on S3 ${cpuShare(vl)} + s3rver ${share(vl, vl?.backingCpuSeconds)}, vault on fs ${cpuShare(fl)}. ` +
        `S3 requests for the whole section (fills, checks and hits): ${s3RequestsBetween(s3Before, await s3.stats()).text}.`,
      ...wrkErrorNote(small, "S3 section's wrk runs"),
    );
  } finally {
    for (const stop of stops.reverse()) await stop();
  }
}

// ------------------------------------------------------------------------------------------------
// replicas: one herd of cold GETs over several vault processes on one bucket and one Redis

interface ReplicaHerd {
  readonly seconds: number;
  readonly upstreamRequests: number;
  readonly xCache: Readonly<Record<string, number>>;
  readonly slowestClientSeconds: number;
  /** Share of one core: all the replicas together, s3rver, and Redis. */
  readonly vaultCpu: number;
  readonly s3Cpu: number;
  readonly redisCpu: number;
}

/**
 * The `replicas` section: an nginx upstream (load core) sending the herd's file at `--rate`;
 * one s3rver, one redis-server and `--replicas` vault processes on one bucket and prefix with
 * `coordination` on that Redis, all on the server core. Each round sends `--replica-clients`
 * concurrent cold GETs of a fresh name to the first replica alone, and of another fresh name
 * spread round-robin over all replicas; the upstream's access log counts what reached it.
 */
async function replicaHerd(options: Options, cpus: CpuLayout, workDir: string, vaultFlags: readonly string[], rows: Row[], notes: string[]): Promise<void> {
  const dir = join(workDir, "replicas");
  const tmp = join(dir, "tmp");
  mkdirSync(tmp, { recursive: true });
  const herdMib = options.herdBytes / MiB;
  const stops: Array<() => Promise<void>> = [];
  try {
    const upstream = await startNginxUpstream(join(dir, "upstream"), cpus.load, { rateBytesPerSecond: options.rateBytesPerSecond, name: "replicas upstream" });
    stops.push(() => upstream.stop());
    const files = new UpstreamFiles(upstream.root, join(dir, "blobs"));
    log(`replicas: writing the upstream's ${herdMib} MiB file`);
    files.writeHerd(options.herdBytes);
    const s3 = await startS3Server({ dir: join(dir, "s3rver"), cpu: cpus.server });
    stops.push(() => s3.stop());
    const redis = await startRedis({ dir: join(dir, "redis"), cpu: cpus.server });
    stops.push(() => redis.stop());
    const run = randomBytes(4).toString("hex");
    const prefix = `bench-replicas-${run}/`;
    const coordination = { redis_url: redis.url, key_prefix: `bench-${run}:`, lease_ttl: "5s" };
    log(`replicas: starting ${options.replicas} vaults on s3rver ${s3.endpoint} (prefix ${prefix}) and ${redis.url}`);
    const replicas: SystemUnderTest[] = [];
    // One after the other: each start is a `tokens add` and a vault, and they all share the server core.
    for (let i = 1; i <= options.replicas; i++) {
      const server = await startVault({
        dir: join(dir, `replica-${i}`),
        cpu: cpus.server,
        nodeFlags: vaultFlags,
        name: `replica-${i}`,
        env: { TMPDIR: tmp },
        extraConfig: { storage: s3.storage(prefix), coordination, ...filesBackend(upstream) },
      });
      stops.push(() => server.stop());
      replicas.push({ ...server, headers: {} });
    }
    const targets = replicas.map(cacheTarget);
    const vaultPids = replicas.flatMap((replica) => replica.pids);

    // Before timing: the bytes through the first replica (a miss), then through every other one
    // (the artifact is in the shared bucket: a hit if a replica looks there).
    const checkName = files.fresh("herd", "check");
    const seen: string[] = [];
    for (const target of targets) {
      const got = await expectBytes(target.name, `${target.system.baseUrl}${target.path(checkName)}`, files.herdSha256, options.herdBytes);
      seen.push(`${target.name} ${got.xCache || "-"}`);
    }
    await sleep(300);
    const checkRequests = countRequests(upstream.accessLog, `/${checkName}`);
    log(`replicas: bytes checked through every replica (X-Cache ${seen.join(", ")}; ${checkRequests} upstream request(s))`);

    const herdOf = async (spread: readonly Target[]): Promise<ReplicaHerd> => {
      const name = files.fresh("herd", `replicas${spread.length}`);
      const cpuOf = (pids: readonly number[]): number => pids.reduce((sum, pid) => sum + cpuSeconds(pid), 0);
      const vaultBefore = cpuOf(vaultPids);
      const s3Before = cpuSeconds(s3.pid);
      const redisBefore = cpuSeconds(redis.pid);
      const started = performance.now();
      const results = await Promise.all(
        Array.from({ length: options.replicaClients }, (_, i) => {
          const target = spread[i % spread.length] as Target;
          return curlTimed(target.system.baseUrl, target.path(name), cpus.load).then((got) => {
            checkTransfer(target, name, got, options.herdBytes, ["MISS", "HIT"]);
            return got;
          });
        }),
      );
      const seconds = (performance.now() - started) / 1000;
      const vaultCpu = (cpuOf(vaultPids) - vaultBefore) / seconds;
      const s3Cpu = (cpuSeconds(s3.pid) - s3Before) / seconds;
      const redisCpu = (cpuSeconds(redis.pid) - redisBefore) / seconds;
      await sleep(300); // nginx writes a request's log line when it has sent it
      const xCache: Record<string, number> = {};
      for (const got of results) xCache[got.xCache || "-"] = (xCache[got.xCache || "-"] ?? 0) + 1;
      return {
        seconds,
        upstreamRequests: countRequests(upstream.accessLog, `/${name}`),
        xCache,
        slowestClientSeconds: Math.max(...results.map((got) => got.totalSeconds)),
        vaultCpu,
        s3Cpu,
        redisCpu,
      };
    };

    const scenarios = [
      { label: "1 replica", spread: targets.slice(0, 1), results: [] as ReplicaHerd[] },
      { label: `${options.replicas} replicas`, spread: targets, results: [] as ReplicaHerd[] },
    ];
    const direct: number[] = [];
    for (let round = 0; round < options.wrkRounds; round++) {
      const name = files.fresh("herd", "direct");
      const one = await curlTimed(upstream.baseUrl, `/${name}`, cpus.load);
      checkTransfer(directTarget(upstream), name, one, options.herdBytes);
      direct.push(one.totalSeconds);
      for (const scenario of rotate(scenarios, round)) {
        const result = await herdOf(scenario.spread);
        scenario.results.push(result);
        log(
          `replicas: ${options.replicaClients} cold GETs of ${herdMib} MiB over ${scenario.label}, round ${round + 1}: ${result.seconds.toFixed(3)} s, ` +
            `${result.upstreamRequests} upstream request(s), X-Cache ${JSON.stringify(result.xCache)}`,
        );
      }
    }

    const [one, many] = scenarios as [(typeof scenarios)[number], (typeof scenarios)[number]];
    const worst = (all: readonly ReplicaHerd[]): number => Math.max(...all.map((h) => h.upstreamRequests));
    const fastest = (all: readonly ReplicaHerd[]): ReplicaHerd | undefined => all.reduce<ReplicaHerd | undefined>((a, b) => (a === undefined || b.seconds < a.seconds ? b : a), undefined);
    const label = `${options.replicaClients} cold GETs of ${herdMib} MiB`;
    const fm = fastest(many.results);
    const fo = fastest(one.results);
    rows.push(
      {
        measurement: `${many.label}: ${label}, upstream requests`,
        unit: "count",
        vault: worst(many.results),
        reference: worst(one.results),
        against: one.label,
        target: "exactly 1",
        pass: worst(many.results) === 1,
      },
      {
        measurement: `${many.label}: ${label}, all done`,
        unit: "s",
        vault: fm?.seconds,
        reference: fo?.seconds,
        against: one.label,
        target: "–",
        pass: undefined,
      },
    );
    const rounds = (all: readonly ReplicaHerd[]): string =>
      all.map((h) => `${fixed(h.seconds, 2)} s / ${h.upstreamRequests} req / ${Object.entries(h.xCache).map(([k, c]) => `${c} ${k}`).join(" + ")}`).join("; ");
    const cpu = (h: ReplicaHerd | undefined): string =>
      h === undefined ? "?" : `vaults ${Math.round(h.vaultCpu * 100)}% + s3rver ${Math.round(h.s3Cpu * 100)}% + Redis ${Math.round(h.redisCpu * 100)}%`;
    const redisKeys = await redis.keyCount();
    notes.push(
      `replicas: ${options.replicas} vault processes (node ${VAULT_CLI} serve --config, each its own) on one ` +
        `s3rver bucket and prefix (${prefix}) with coordination {redis_url: ${redis.url}, key_prefix: bench-${run}:, lease_ttl: 5s} on one ` +
        `redis-server (--save "" --appendonly no); vaults, s3rver and Redis on the server core, the upstream (nginx, /slow/ at ` +
        `${options.rateBytesPerSecond / MB} MB/s per connection) and the curls on the load core. Each round: ${options.replicaClients} curls started ` +
        `together on a fresh name, all to replica-1 ("1 replica", the other replicas idle) or round-robin over all ${options.replicas}; ` +
        `time = start to the last exit; upstream requests = the upstream access log's lines for that name (worst round); best time counts. ` +
        `Before timing, one file through each replica in turn: X-Cache ${seen.join(", ")}, ${checkRequests} upstream request(s).`,
      `replicas rounds (time / upstream requests / X-Cache): 1 replica ${rounds(one.results)}; ${many.label} ${rounds(many.results)}. ` +
        `One download direct from the upstream: ${list(direct, 2)} s. Server core in the fastest round: 1 replica ${cpu(fo)}; ${many.label} ${cpu(fm)}. ` +
        `Keys in Redis after the rounds: ${redisKeys ?? "?"}${redisKeys === 0 ? " (the replicas kept nothing there)" : ""}.`,
    );
  } finally {
    for (const stop of stops.reverse()) await stop();
  }
}

// ------------------------------------------------------------------------------------------------
// workers: the vault with `workers: 2` against nginx with 2 worker processes, on every core

/** Worker processes in the `workers` section: the issue's 2-core machine, one per core. */
const WORKERS = 2;
const vaultWithWorkers = (workers: number): string => `vault workers:${workers}`;
const nginxWithWorkers = (workers: number): string => `nginx ${workers} worker${workers === 1 ? "" : "s"}`;

/**
 * The `workers` section: its own nginx upstream (load core, as elsewhere; idle during hits) with
 * the hit rows' files; in front of it the vault with `workers: 2` and nginx proxy_cache with
 * `worker_processes 2`, and for scale the vault with `workers: 1` and nginx with one worker — all
 * four, and wrk and curl, on every core. Children inherit the harness's CPU affinity, so it leaves
 * its load-core pin (`onAllCores`) while it starts them and runs the load: nothing here is pinned.
 * Checked like the other hit rows, then the same 4 KiB hits (wrk) and large hits (4 curls at once).
 */
async function workersScaling(options: Options, cpus: CpuLayout, workDir: string, vaultFlags: readonly string[], rows: Row[], notes: string[]): Promise<void> {
  if (!(await vaultHasWorkers())) throw new UsageError(`--only workers: ${VAULT_CLI} has no workers setting (a build from before it)`);
  const dir = join(workDir, "workers");
  const mib = options.largeBytes / MiB;
  const stops: Array<() => Promise<void>> = [];
  try {
    const upstream = await startNginxUpstream(join(dir, "upstream"), cpus.load, { rateBytesPerSecond: options.rateBytesPerSecond, name: "workers upstream" });
    stops.push(() => upstream.stop());
    const files = new UpstreamFiles(upstream.root, join(dir, "blobs"));
    log(`workers: writing the upstream's files: ${SMALL_FILES} × 4 KiB, ${mib} MiB`);
    files.writeSmall();
    files.writeLarge(options.largeBytes);
    // No pin for the systems nor for wrk and curl (`cpu: undefined`, and the harness unpinned meanwhile).
    const everyCore: CpuLayout = { ...cpus, server: undefined, load: undefined };

    await onAllCores(cpus, async () => {
      const startVaultWith = async (workers: number): Promise<SystemUnderTest> => {
        const server = await startVault({
          dir: join(dir, `vault-${workers}`),
          cpu: everyCore.server,
          nodeFlags: vaultFlags,
          name: `vault-${workers}`,
          extraConfig: { workers, ...filesBackend(upstream) },
        });
        stops.push(() => server.stop());
        if (server.workers !== workers) throw new Error(`${server.name}: asked for workers: ${workers}, runs ${server.workers}`);
        // Proxy routes are anonymous: no token.
        return { ...server, name: vaultWithWorkers(workers), headers: {} };
      };
      const startNginxWith = async (workers: number): Promise<SystemUnderTest> => {
        const server = await startNginxProxyCache(join(dir, `nginx-${workers}`), everyCore.server, upstream.baseUrl, { name: nginxWithWorkers(workers), workers });
        stops.push(() => server.stop());
        return server;
      };
      const systems = [await startVaultWith(WORKERS), await startNginxWith(WORKERS), await startVaultWith(1), await startNginxWith(1)];
      const [v2, n2, v1, n1] = systems.map((system) => system.name) as [string, string, string, string];
      const caches = systems.map(cacheTarget);
      log(`workers: checking the bytes (sha256) of ${systems.map((system) => `${system.name} (${system.pids.length} process${system.pids.length === 1 ? "" : "es"})`).join(", ")}`);
      const verified = await verify(files, caches, directTarget(upstream), options);

      const small = await smallHits(dir, caches, options, everyCore);
      const best4k = (name: string): WrkResult | undefined => bestRound(small, name);
      const usPerRequest = (r: WrkResult | undefined): number | undefined => (r === undefined ? undefined : (r.serverCpu / r.opsPerSecond) * 1e6);
      const label = `workers: cache hit 4 KiB ×${options.connections}`;
      const info = { target: "–", pass: undefined };
      const smallRow = (unit: string, figure: (r: WrkResult | undefined) => number | undefined, vault: string, against: string): Row => ({
        measurement: `${label}, ${vault}`,
        unit,
        vault: figure(best4k(vault)),
        reference: figure(best4k(against)),
        against,
        ...info,
      });
      const reqs = (r: WrkResult | undefined): number | undefined => r?.opsPerSecond;
      const p99 = (r: WrkResult | undefined): number | undefined => r?.p99Ms;
      rows.push(
        smallRow("req/s", reqs, v2, n2),
        smallRow("req/s", reqs, v2, v1),
        smallRow("req/s", reqs, v1, n1),
        smallRow("p99 ms", p99, v2, n2),
        smallRow("p99 ms", p99, v1, n1),
        smallRow("CPU µs/req", usPerRequest, v2, n2),
        smallRow("CPU µs/req", usPerRequest, v1, n1),
      );

      const large = await largeHits(caches, options, everyCore, [4]);
      const mbs = (name: string): number | undefined => {
        const rates = large.get(name)?.four ?? [];
        return rates.length === 0 ? undefined : best(rates) / MB;
      };
      const largeRow = (vault: string, against: string): Row => ({
        measurement: `workers: cache hit ${mib} MiB, 4 clients, ${vault}`,
        unit: "MB/s",
        vault: mbs(vault),
        reference: mbs(against),
        against,
        ...info,
      });
      rows.push(largeRow(v2, n2), largeRow(v2, v1), largeRow(v1, n1));

      const scaling = (more: number | undefined, one: number | undefined): string => (more === undefined || one === undefined || one === 0 ? "?" : `${(more / one).toFixed(2)}×`);
      const largeCpu = (name: string): string => {
        const r = large.get(name);
        const perRequest = r === undefined || r.fourCpu.requests === 0 ? "?" : Math.round((r.fourCpu.cpuSeconds / r.fourCpu.requests) * 1e6).toLocaleString("en-US");
        return `${name} ${cpuShare(r)} (${perRequest} µs/req)`;
      };
      notes.push(
        `workers section: the vault with workers: ${WORKERS} (a primary process and ${WORKERS} node:cluster workers sharing one listening socket, ` +
          `connections handed out round-robin, and one filesystem store) and nginx proxy_cache with worker_processes ${WORKERS} (accept_mutex off, ` +
          `no reuseport: nginx's defaults), and for scale the vault with workers: 1 (one process) and nginx with 1 worker; each with its own cache ` +
          `in front of its own nginx upstream (load core, idle during hits) with the hit rows' files. Layout: the four systems and the load ` +
          `generators (wrk -t1, curl) run WITHOUT taskset, on all ${cpus.cores} cores (the harness, otherwise pinned to the load core, leaves its pin ` +
          `while it starts them and runs the load, since children inherit it): the load generator shares the cores with the server, so these rows ` +
          `measure the whole machine, not one core each. Server CPU is summed over the vault's primary and its workers and over nginx's workers ` +
          `(not the master), in % of one core. Bytes checked (sha256) before timing for ${verified} (MISS, then HIT; and a cold ${mib} MiB file). ` +
          `No targets: the rows are information.`,
        `workers 4 KiB hits: ${SMALL_FILES} files fetched once through each cache, then wrk -t1 -c${options.connections} --latency over them, ` +
          `${options.warmup} s warm-up + ${options.seconds} s, best of ${options.wrkRounds} round(s) rotating the order of the four. Server CPU in the ` +
          `best round: ${systems.map((system) => `${system.name} ${cpuPerRequest(best4k(system.name))}`).join(", ")}. Scaling (${WORKERS} workers ÷ 1): ` +
          `vault ${scaling(reqs(best4k(v2)), reqs(best4k(v1)))}, nginx ${scaling(reqs(best4k(n2)), reqs(best4k(n1)))} in req/s.`,
        `workers ${mib} MiB hits: 4 curls -o /dev/null at once, each on a new connection, best of ${options.rounds} round(s) rotating the order; ` +
          `4 × ${mib} MiB ÷ the slowest client's time. Server CPU over these runs (share of one core, CPU per request): ` +
          `${systems.map((system) => largeCpu(system.name)).join(", ")}. Scaling (${WORKERS} workers ÷ 1): vault ${scaling(mbs(v2), mbs(v1))}, ` +
          `nginx ${scaling(mbs(n2), mbs(n1))} in MB/s.`,
        ...wrkErrorNote(small, "workers section's wrk runs"),
      );
    });
  } finally {
    for (const stop of stops.reverse()) await stop();
  }
}

async function main(): Promise<void> {
  const options = parseOptions();
  const has = (section: Section): boolean => options.sections.has(section);
  const httpSections = HTTP_SECTIONS.some(has);
  requireTools(
    [
      "wrk",
      "taskset",
      "curl",
      ...(httpSections || has("npm") || has("go") || has("s3") || has("replicas") || has("workers") ? ["nginx"] : []),
      ...(has("oci") ? ["docker-registry"] : []),
      ...(has("npm") ? ["tar"] : []),
      ...(has("replicas") ? ["redis-server"] : []),
    ],
    { nginxModules: [] },
  );
  // Verdaccio is a devDependency: this throws, naming `npm install`, when node_modules lacks it.
  const verdaccio = has("npm") ? verdaccioVersion() : undefined;
  if (!vaultIsBuilt()) throw new Error(`${VAULT_CLI} is missing: the vault is not built (npm run build)`);
  const startedAt = Date.now();
  const cpus = pinCpus();
  const workDir = makeWorkDir("bench-cache");
  log(`work dir ${workDir}; ${cpus.note}`);

  let vaultFlags: string[] = [];
  let profileDir: string | undefined;
  if (options.profile) {
    profileDir = mkdtempSync(join(tmpdir(), "artifact-vault-profile-")); // kept: it is the output
    vaultFlags = ["--cpu-prof", `--cpu-prof-dir=${profileDir}`];
  }

  const rows: Row[] = [];
  const notes: string[] = [
    cpus.note +
      (httpSections || has("npm") || has("go") || has("s3") || has("replicas") || has("workers") ? "; the upstream nginx (static files, sendfile) runs on the load core: it stands in for a remote server" : ""),
  ];
  const loadBefore = loadavg()[0] ?? 0;
  if (httpSections) await httpCache(options, cpus, workDir, vaultFlags, rows, notes);
  if (has("oci")) await ociBlobs(options, cpus, workDir, vaultFlags, rows, notes);
  if (has("npm")) await npmPackages(options, cpus, workDir, vaultFlags, rows, notes);
  if (has("huggingface")) await huggingFaceModel(options, cpus, workDir, vaultFlags, rows, notes);
  if (has("go")) await goModules(options, cpus, workDir, vaultFlags, rows, notes);
  if (has("s3")) await s3Hits(options, cpus, workDir, vaultFlags, rows, notes);
  if (has("replicas")) await replicaHerd(options, cpus, workDir, vaultFlags, rows, notes);
  if (has("workers")) await workersScaling(options, cpus, workDir, vaultFlags, rows, notes);

  if (profileDir !== undefined) notes.push(`vault CPU profiles (.cpuprofile, open in Chrome DevTools): ${profileDir}`);
  const loadAfter = loadavg()[0] ?? 0;
  notes.push(
    `total run time ${Math.round((Date.now() - startedAt) / 1000)} s; 1-minute load average ${loadBefore.toFixed(1)} at the start, ` +
      `${loadAfter.toFixed(1)} at the end` +
      (Math.max(loadBefore, loadAfter) > cpus.cores * 0.75
        ? ` — other work was competing for these ${cpus.cores} cores: expect noise, re-run on a quiet machine`
        : ""),
  );

  const references = [
    ...(httpSections ? [`${nginxVersion()} proxy_cache (proxy_cache_lock on)`] : []),
    ...(has("small") || has("large") ? [`a bare node:http server, node ${process.version} (${NODE_CEILING} rows)`] : []),
    ...(has("oci") ? [`docker-registry ${await dockerRegistryVersion()} as a pull-through proxy (oci rows)`] : []),
    ...(verdaccio !== undefined ? [`Verdaccio ${verdaccio} as a caching proxy (npm rows)`] : []),
    ...(has("huggingface") ? ["a direct download from the fake hub's CDN, curl -L (huggingface rows)"] : []),
    ...(has("go") ? [`${nginxVersion()} proxy_cache (go rows)`] : []),
    ...(has("s3") ? ["the vault on the filesystem driver (S3 rows; S3 server: the tests' s3rver)"] : []),
    ...(has("replicas") ? [`1 replica (the ${options.replicas}-replica herd)`] : []),
    ...(has("workers") ? [`${nginxVersion()} proxy_cache with ${WORKERS} workers and with 1, and the vault with workers: 1 (workers rows)`] : []),
  ];
  const title =
    `artifact-vault cache benchmark — ${new Date().toISOString().slice(0, 16)}Z, node ${process.version}, ` +
    `${cpus.cores} cores; reference: ${references.join("; ")}`;
  console.log(`\n${renderTable(title, "nginx", rows, notes)}\n`);
}

runBenchmark(main);
