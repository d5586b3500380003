/**
 * `/metrics` of a vault with `workers: 2` (the built CLI: a primary and two worker processes on one
 * socket): after hits spread over both workers — each request on a fresh connection, which the
 * primary hands to the workers in turn — a scrape answered by either worker shows the whole
 * vault: every worker's counts summed, the cache's shared size once. Every process started here
 * is stopped, workers included, even when the test fails.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { rawRequest } from "../support/http.js";
import { OriginServer } from "../support/origin-server.js";
import { waitFor } from "../support/process.js";
import { scrape, type Scrape } from "../support/prometheus.js";
import { spawnVault, type VaultProcess } from "../support/vault-process.js";

const WORKERS = 2;
const SIZE = 4096;
const HITS = 10;

interface LogLine {
  readonly msg?: unknown;
  readonly worker?: unknown;
  readonly reqId?: unknown;
  readonly url?: unknown;
  readonly [field: string]: unknown;
}

/** The vault's JSON log lines, every process's. */
function logLines(vault: VaultProcess): LogLine[] {
  return vault
    .output()
    .split("\n")
    .filter((line) => line.startsWith("{"))
    .flatMap((line) => {
      try {
        return [JSON.parse(line) as LogLine];
      } catch {
        return []; // a line cut by a kill
      }
    });
}

/** The worker whose access log has the request `reqId`, once it is written (workers write every 200 ms). */
async function workerThatAnswered(vault: VaultProcess, reqId: string): Promise<number> {
  const line = await waitFor(`the access-log line of ${reqId}`, () => logLines(vault).find((entry) => entry.msg === "request" && entry.reqId === reqId));
  return Number(line.worker);
}

describe(`/metrics of a vault of workers: ${WORKERS}`, { timeout: 120_000 }, () => {
  let dir: string;
  let origin: OriginServer;
  let vault: VaultProcess | undefined;
  const workerPids: number[] = [];

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "vault-metrics-workers-"));
    origin = await new OriginServer().start();
    await mkdir(join(dir, "tmp"));
    const config = join(dir, "config.yml");
    await writeFile(
      config,
      [
        "http_host: 127.0.0.1",
        "http_port: 0",
        "log_level: info",
        `workers: ${WORKERS}`,
        "shutdown_timeout: 10s",
        `cache_dir: ${JSON.stringify(join(dir, "data"))}`,
        `auth: {tokens_file: ${JSON.stringify(join(dir, "tokens.json"))}}`,
        "backends:",
        `  - {type: http, name: files, config: {prefix: /files/, base_url: ${JSON.stringify(`${origin.url}/dist`)}, timeout: 30, retries: 1}}`,
        "",
      ].join("\n"),
    );
    await writeFile(join(dir, "tokens.json"), "[]");
    // TMPDIR: the workers' download spools land in the test's dir, removed with it.
    vault = await spawnVault(config, { TMPDIR: join(dir, "tmp") });
    const listening = await waitFor("the primary's line that all workers listen", () =>
      logLines(vault as VaultProcess).find((line) => line.worker === undefined && line.msg === "artifact-vault listening"),
    );
    const pids = listening["pids"];
    assert.ok(Array.isArray(pids) && pids.length === WORKERS, `the primary's listening line: ${JSON.stringify(listening)}`);
    workerPids.push(...pids.map(Number));
  });

  after(async () => {
    if (vault !== undefined) {
      const stopping = vault;
      const killer = setTimeout(() => stopping.kill("SIGKILL"), 20_000);
      stopping.kill("SIGTERM");
      await stopping.exited();
      clearTimeout(killer);
    }
    // A worker outliving its primary (it should not) is killed by its pid, if it is still one.
    for (const pid of workerPids) {
      try {
        if (readFileSync(`/proc/${pid}/cmdline`, "utf8").includes("worker-main")) process.kill(pid, "SIGKILL");
      } catch {
        // gone, as it should be
      }
    }
    await origin.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it("a scrape answered by either worker shows the hits of both, summed, and the cache's size once", async () => {
    const url = (vault as VaultProcess).url;
    origin.files.set("/dist/one.bin", { body: randomBytes(SIZE) });
    const miss = await rawRequest(url, "/files/one.bin");
    assert.equal(miss.header("x-cache"), "MISS");
    await waitFor("the download to be stored", async () => ((await scrape(url)).value("artifact_vault_cache_fills_total", { backend: "files", outcome: "cached" }) === 1 ? true : undefined));
    for (let i = 0; i < HITS; i++) {
      const hit = await rawRequest(url, "/files/one.bin", { headers: { "x-request-id": `hit-${i}` } });
      assert.equal(hit.header("x-cache"), "HIT", `hit ${i}`);
    }
    const hitWorkers = new Set(await Promise.all(Array.from({ length: HITS }, (_, i) => workerThatAnswered(vault as VaultProcess, `hit-${i}`))));
    assert.deepEqual([...hitWorkers].sort(), [1, 2], "the hits were answered by both workers");

    // Scrapes on fresh connections until each worker has answered one; every one shows the same.
    const answeredBy = new Map<number, Scrape>();
    for (let i = 0; answeredBy.size < WORKERS; i++) {
      assert.ok(i < 10, `10 scrapes, all answered by worker ${[...answeredBy.keys()].join(", ")}`);
      const reqId = `scrape-${i}`;
      const metrics = await scrape(url, { "x-request-id": reqId });
      answeredBy.set(await workerThatAnswered(vault as VaultProcess, reqId), metrics);
    }
    const files = { backend: "files" };
    for (const [worker, metrics] of answeredBy) {
      const seen = {
        hits: metrics.value("artifact_vault_cache_requests_total", { ...files, result: "hit" }),
        misses: metrics.value("artifact_vault_cache_requests_total", { ...files, result: "miss" }),
        answers: metrics.value("artifact_vault_http_requests_total", { method: "GET", route: "/files/*", ...files, status: "200" }),
        bytesFromCache: metrics.value("artifact_vault_cache_bytes_from_cache_total", files),
        bytesFromUpstream: metrics.value("artifact_vault_cache_bytes_from_upstream_total", files),
        upstreamRequests: metrics.count("artifact_vault_upstream_request_duration_seconds", files),
        fillsRunning: metrics.value("artifact_vault_cache_fills_in_progress", files),
        entries: metrics.value("artifact_vault_cache_entries", files),
        cachedBytes: metrics.value("artifact_vault_cache_size_bytes", files),
      };
      assert.deepEqual(
        seen,
        { hits: HITS, misses: 1, answers: HITS + 1, bytesFromCache: HITS * SIZE, bytesFromUpstream: SIZE, upstreamRequests: 1, fillsRunning: 0, entries: 1, cachedBytes: SIZE },
        `the scrape answered by worker ${worker}`,
      );
      assert.ok((metrics.value("process_resident_memory_bytes") ?? 0) > 0, "the processes' memory");
      assert.equal(metrics.samples("artifact_vault_build_info").length, 1);
    }
    assert.equal(origin.count("/dist/one.bin"), 1);
  });
});
