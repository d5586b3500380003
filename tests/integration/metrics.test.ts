/**
 * `/metrics`: Prometheus' text format (read with a parser), and counters that move by exactly
 * what known traffic did — misses, hits (held in memory too), a 404, an upstream 500, an
 * eviction, object writes and reads, rate-limited requests — against a real vault and a real
 * origin on port 0. The vault of `workers: 2` is `metrics-workers.test.ts`.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { pino } from "pino";
import type { ArtifactCache } from "../../src/cache/artifact-cache.js";
import type { ArtifactRef } from "../../src/core/cache/artifact-ref.js";
import { heldHitLane } from "../../src/http/held-hits.js";
import { VaultMetrics } from "../../src/metrics/vault-metrics.js";
import type { Backend } from "../../src/upstreams/backend.js";
import { HELD_HIT, HELD_REF } from "../support/held-hit.js";
import { rawRequest } from "../support/http.js";
import { OriginServer } from "../support/origin-server.js";
import { waitFor } from "../support/process.js";
import { parseMetrics, scrape, type Scrape } from "../support/prometheus.js";
import { startTestVault, type TestVault } from "../support/test-vault.js";

const SIZE = 4096;
/** Room for one artifact of SIZE, not two: the second fill evicts the first. */
const MAX_SIZE = 6000;

describe("/metrics of a vault in one process", () => {
  let origin: OriginServer;
  let vault: TestVault;
  /** Scrapes of /metrics made since the baseline (each is counted itself, by the next one). */
  let scrapes = 0;
  const scrapeVault = async (): Promise<Scrape> => {
    scrapes++;
    return scrape(vault.url);
  };
  /** Scrapes until `accept` takes one (counts that reach the vault after the answer that caused them). */
  const scrapeUntil = (what: string, accept: (metrics: Scrape) => boolean): Promise<Scrape> =>
    waitFor(what, async () => {
      const metrics = await scrapeVault();
      return accept(metrics) ? metrics : undefined;
    });

  before(async () => {
    origin = await new OriginServer().start();
    origin.files.set("/dist/a.bin", { body: randomBytes(SIZE) });
    origin.files.set("/dist/b.bin", { body: randomBytes(SIZE) });
    origin.files.set("/dist/broken.bin", { body: Buffer.alloc(0), status: 500 });
    vault = await startTestVault({
      tokens: [
        { name: "rw", scopes: ["read", "write"] },
        { name: "limited", scopes: ["read"] },
      ],
      extraYaml: [
        // Three requests a minute per token; two failed logins a minute per address.
        "rate_limit: {per_token_per_minute: 3, per_ip_per_minute: 2}",
        `cache: {max_size: ${MAX_SIZE}}`,
        `backends:\n  - {type: http, name: files, config: {prefix: /files/, base_url: "${origin.url}/dist", timeout: 5, retries: 1}}`,
      ].join("\n"),
    });
  });
  after(async () => {
    await vault.close();
    await origin.stop();
  });

  test("is Prometheus text with the process defaults, every series of a backend at 0 before any traffic", async () => {
    const metrics = await scrapeUntil("the cache to be indexed", (scraped) => scraped.value("artifact_vault_cache_index_ready") === 1);
    for (const name of ["process_cpu_user_seconds_total", "process_resident_memory_bytes", "nodejs_heap_size_used_bytes", "process_start_time_seconds"]) {
      assert.ok(metrics.families.has(name), `${name} is exported`);
    }
    assert.equal(metrics.typeOf("artifact_vault_cache_requests_total"), "counter");
    assert.equal(metrics.typeOf("artifact_vault_cache_fills_in_progress"), "gauge");
    assert.equal(metrics.typeOf("artifact_vault_upstream_request_duration_seconds"), "histogram");
    for (const result of ["hit", "miss", "stale", "revalidated", "not_found", "error"]) {
      assert.equal(metrics.value("artifact_vault_cache_requests_total", { backend: "files", result }), 0, result);
    }
    assert.equal(metrics.value("artifact_vault_cache_entries", { backend: "files" }), 0);
    assert.equal(metrics.value("artifact_vault_cache_max_size_bytes"), MAX_SIZE);
    assert.equal(metrics.value("artifact_vault_upstream_errors_total", { backend: "files", kind: "status_5xx" }), 0);
    assert.equal(metrics.count("artifact_vault_upstream_request_duration_seconds", { backend: "files" }), 0);
    assert.equal(metrics.value("artifact_vault_rate_limited_total", { limit: "failed_logins" }), 0);
    assert.equal(metrics.samples("artifact_vault_build_info").length, 1);
  });

  test("each counter moves by exactly what known traffic did", async () => {
    const before = await scrapeVault();
    scrapes = 1;
    const files = { backend: "files" };
    const get = async (path: string, method = "GET", headers: Record<string, string> = {}): Promise<number> => (await rawRequest(vault.url, path, { method, headers })).status;

    // A miss, then (once it is stored) hits: the first read from the store, the next ones held in memory.
    const miss = await rawRequest(vault.url, "/files/a.bin");
    assert.equal(miss.header("x-cache"), "MISS");
    await scrapeUntil("the first download to be stored", (metrics) => metrics.delta(before, "artifact_vault_cache_fills_total", { ...files, outcome: "cached" }) === 1);
    for (let i = 0; i < 4; i++) {
      const hit = await rawRequest(vault.url, "/files/a.bin");
      assert.equal(hit.status, 200);
      assert.equal(hit.header("x-cache"), "HIT", `hit ${i}`);
      assert.equal(hit.body.length, SIZE);
    }
    const head = await rawRequest(vault.url, "/files/a.bin", { method: "HEAD" });
    assert.equal(head.header("x-cache"), "HIT");
    // Nothing there; an upstream that fails.
    assert.equal(await get("/files/missing.bin"), 404);
    assert.equal(await get("/files/broken.bin"), 502);
    // A second artifact: the cache holds one of SIZE, so a.bin (least recently used) is evicted.
    assert.equal(await get("/files/b.bin"), 200);
    await scrapeUntil("the eviction of a.bin", (metrics) => metrics.delta(before, "artifact_vault_cache_evictions_total", files) === 1);
    // The object API.
    const rw = vault.auth("rw");
    assert.equal(await get("/objects/metrics/one", "PUT", rw), 200);
    assert.equal(await get("/objects/metrics/one", "GET", rw), 200);
    // A token past its budget (3 a minute); an address past its failed logins (2 a minute).
    const limited = vault.auth("limited");
    const limitedStatuses = [];
    for (let i = 0; i < 4; i++) limitedStatuses.push(await get("/objects/metrics/absent", "GET", limited));
    assert.deepEqual(limitedStatuses, [404, 404, 404, 429]);
    const badLogins = [];
    for (let i = 0; i < 3; i++) badLogins.push(await get("/admin/cache/stats", "GET", { authorization: "Bearer not-a-token" }));
    assert.deepEqual(badLogins, [401, 401, 429]);

    const counted = scrapes;
    const now = await scrapeVault();
    const requests = (method: string, route: string, backend: string, status: string): number =>
      now.delta(before, "artifact_vault_http_requests_total", { method, route, backend, status });
    assert.deepEqual(
      {
        getHits: requests("GET", "/files/*", "files", "200"),
        headHits: requests("HEAD", "/files/*", "files", "200"),
        notFound: requests("GET", "/files/*", "files", "404"),
        upstreamFailed: requests("GET", "/files/*", "files", "502"),
        put: requests("PUT", "/objects/*", "", "200"),
        getObject: requests("GET", "/objects/*", "", "200"),
        absentObject: requests("GET", "/objects/*", "", "404"),
        overBudget: requests("GET", "/objects/*", "", "429"),
        badLogins: requests("GET", "/admin/cache/stats", "", "401"),
        throttledLogins: requests("GET", "/admin/cache/stats", "", "429"),
        scrapes: requests("GET", "/metrics", "", "200"),
      },
      { getHits: 6, headHits: 1, notFound: 1, upstreamFailed: 1, put: 1, getObject: 1, absentObject: 3, overBudget: 1, badLogins: 2, throttledLogins: 1, scrapes: counted },
    );
    // Nothing else was counted.
    const total = (metrics: Scrape): number => metrics.samples("artifact_vault_http_requests_total").reduce((sum, sample) => sum + sample.value, 0);
    assert.equal(total(now) - total(before), 6 + 1 + 1 + 1 + 1 + 1 + 3 + 1 + 2 + 1 + counted);

    const result = (name: string): number => now.delta(before, "artifact_vault_cache_requests_total", { ...files, result: name });
    assert.deepEqual(
      { hit: result("hit"), miss: result("miss"), stale: result("stale"), revalidated: result("revalidated"), not_found: result("not_found"), error: result("error") },
      { hit: 5, miss: 2, stale: 0, revalidated: 0, not_found: 1, error: 1 },
    );
    // Four GETs of a.bin from the cache (the HEAD sent no body); both misses from upstream.
    assert.equal(now.delta(before, "artifact_vault_cache_bytes_from_cache_total", files), 4 * SIZE);
    assert.equal(now.delta(before, "artifact_vault_cache_bytes_from_upstream_total", files), 2 * SIZE);
    assert.equal(now.delta(before, "artifact_vault_cache_fills_total", { ...files, outcome: "cached" }), 2);
    assert.equal(now.delta(before, "artifact_vault_cache_fills_total", { ...files, outcome: "failed" }), 0);
    assert.equal(now.value("artifact_vault_cache_fills_in_progress", files), 0);
    assert.equal(now.delta(before, "artifact_vault_cache_evictions_total", files), 1);
    assert.equal(now.delta(before, "artifact_vault_cache_evicted_bytes_total", files), SIZE);
    assert.equal(now.value("artifact_vault_cache_entries", files), 1);
    assert.equal(now.value("artifact_vault_cache_size_bytes", files), SIZE);
    // a.bin, missing.bin, broken.bin, b.bin: four exchanges, one of them a 5xx.
    assert.equal(now.countDelta(before, "artifact_vault_upstream_request_duration_seconds", files), 4);
    assert.equal(origin.requests.length, 4);
    for (const kind of ["timeout", "failed", "broken_body", "status_5xx", "status_4xx", "other"]) {
      assert.equal(now.delta(before, "artifact_vault_upstream_errors_total", { ...files, kind }), kind === "status_5xx" ? 1 : 0, kind);
    }
    assert.deepEqual(
      { token: now.delta(before, "artifact_vault_rate_limited_total", { limit: "token" }), address: now.delta(before, "artifact_vault_rate_limited_total", { limit: "address" }), failed_logins: now.delta(before, "artifact_vault_rate_limited_total", { limit: "failed_logins" }) },
      { token: 1, address: 0, failed_logins: 1 },
    );
  });

  test("other methods are refused; /metrics is never rate-limited", async () => {
    assert.equal((await rawRequest(vault.url, "/metrics", { method: "POST" })).status, 405);
    // Far more scrapes than any budget of the config allows.
    for (let i = 0; i < 10; i++) await scrapeVault();
  });
});

describe("/metrics, configured", () => {
  test("token_required: a read-scoped token is needed", async () => {
    const vault = await startTestVault({ tokens: [{ name: "scraper", scopes: ["read"] }], extraYaml: "metrics: {token_required: true}" });
    try {
      assert.equal((await rawRequest(vault.url, "/metrics")).status, 401);
      assert.equal((await rawRequest(vault.url, "/metrics", { headers: { authorization: "Bearer wrong" } })).status, 401);
      const metrics = await scrape(vault.url, vault.auth("scraper"));
      assert.ok(metrics.families.has("artifact_vault_http_requests_total"));
    } finally {
      await vault.close();
    }
  });

  test("enabled: false: no /metrics", async () => {
    const vault = await startTestVault({ extraYaml: "metrics: {enabled: false}" });
    try {
      assert.equal((await rawRequest(vault.url, "/metrics")).status, 404);
    } finally {
      await vault.close();
    }
  });
});

describe("hits answered before the framework are counted", () => {
  const ref = HELD_REF;
  const hit = HELD_HIT;
  /** Whether each heldHit call was told a body is sent. */
  const bodies: boolean[] = [];
  const cache = { heldHit: (_ref: ArtifactRef, sendsBody = true) => (bodies.push(sendsBody), hit) } as unknown as ArtifactCache;
  const backend = { type: "http", name: "files", prefix: "/files/", resolve: () => ref } as unknown as Backend;
  const metrics = new VaultMetrics({ processMetrics: false });
  let server: Server;
  let url = "";

  before(async () => {
    const lane = heldHitLane({ backends: [backend], cache, accessLog: pino({ level: "silent" }), requireToken: false, redirectHits: undefined, closing: () => false, requests: metrics });
    server = createServer((request, response) => {
      if (!lane(request, response)) response.writeHead(418).end();
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  test("under the backend's route, GET and HEAD apart; a HEAD sends no bytes", async () => {
    for (let i = 0; i < 3; i++) assert.equal((await rawRequest(url, "/files/a")).status, 200);
    assert.equal((await rawRequest(url, "/files/a", { method: "HEAD" })).status, 200);
    assert.equal((await rawRequest(url, "/elsewhere")).status, 418);
    const counted = parseMetrics(await metrics.registry.metrics());
    assert.equal(counted.value("artifact_vault_http_requests_total", { method: "GET", route: "/files/*", backend: "files", status: "200" }), 3);
    assert.equal(counted.value("artifact_vault_http_requests_total", { method: "HEAD", route: "/files/*", backend: "files", status: "200" }), 1);
    assert.equal(counted.samples("artifact_vault_http_requests_total").length, 2, "the request the lane passed on is the framework's to count");
    assert.deepEqual(bodies, [true, true, true, false]);
  });
});
