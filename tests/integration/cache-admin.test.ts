/**
 * Cache administration API (`/admin/cache/...`) against the real server on port 0 with an http
 * backend over a real origin that counts requests.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { request as httpRequest } from "node:http";
import { setTimeout as delay } from "node:timers/promises";
import { rawRequest, type RawResponse } from "../support/http.js";
import { OriginServer, sha256 } from "../support/origin-server.js";
import { startTestVault, startTestVaultInFront, type TestVault } from "../support/test-vault.js";

interface EntryJson {
  key: string;
  backend: string;
  size: number;
  content_type: string | null;
  sha256: string;
  cached_at: string;
  validated_at: string;
  freshness: "immutable" | "mutable" | "unknown";
  ttl_seconds?: number;
  fresh: boolean | null;
  stale_at?: string;
  upstream_etag?: string;
  last_access: string | null;
}

interface EntriesJson {
  entries: EntryJson[];
  next_cursor: string | null;
  has_more: boolean;
}

interface FillJson {
  key: string;
  backend: string;
  bytes: number;
  total: number | null;
  percent: number | null;
  started_at: string;
  waiters: number;
}

function backendsYaml(origin: OriginServer, extra = ""): string {
  return [
    "backends:",
    `  - {type: http, name: files, config: {prefix: /files/, base_url: "${origin.url}/dist", timeout: 5, retries: 1, mutable: ["**/index.json"], ttl: 1h}}`,
    `  - {type: http, name: mirror, config: {prefix: /mirror/, base_url: "${origin.url}/mirror", timeout: 5, retries: 1}}`,
    extra,
  ].join("\n");
}

function api(vault: TestVault, path: string, token: string | undefined, method = "GET"): Promise<RawResponse> {
  return rawRequest(vault.url, path, { method, headers: token === undefined ? {} : { authorization: `Bearer ${vault.tokens[token]}` } });
}

/**
 * GETs through the vault and waits until the download has landed: a client gets its last byte
 * once the artifact is verified, and the entry becomes visible a moment later, once durable.
 */
async function fetchThrough(vault: TestVault, path: string): Promise<RawResponse> {
  const response = await rawRequest(vault.url, path);
  assert.equal(response.status, 200, `GET ${path}: ${response.body.toString()}`);
  const deadline = Date.now() + 10_000;
  while ((await api(vault, "/admin/cache/fills", "admin")).json<{ fills: unknown[] }>().fills.length > 0) {
    assert.ok(Date.now() < deadline, "the download never landed");
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  return response;
}

function assertEnvelope(response: RawResponse, status: number, pattern?: RegExp): void {
  assert.equal(response.status, status, response.body.toString());
  assert.match(response.header("content-type") ?? "", /^application\/json/);
  const body = response.json<{ error: { code: string; message: string } }>();
  assert.equal(body.error.code, String(status));
  if (pattern !== undefined) assert.match(body.error.message, pattern);
}

describe("cache administration API", () => {
  let origin: OriginServer;
  let vault: TestVault;

  before(async () => {
    origin = await new OriginServer().start();
    vault = await startTestVaultInFront(origin, {
      tokens: [
        { name: "admin", scopes: ["admin"] },
        { name: "rwd", scopes: ["read", "write", "delete"] },
      ],
      extraYaml: backendsYaml(origin),
    });
  });
  after(async () => {
    await vault.close();
    await origin.stop();
  });

  test("every route needs a token (401 + WWW-Authenticate) with the admin scope (403), in the object API's envelope", async () => {
    for (const [method, path] of [
      ["GET", "/admin/cache/entries"],
      ["DELETE", "/admin/cache/entries?key=files/x"],
      ["GET", "/admin/cache/stats"],
      ["GET", "/admin/cache/fills"],
    ] as const) {
      const anonymous = await api(vault, path, undefined, method);
      assertEnvelope(anonymous, 401);
      assert.match(anonymous.header("www-authenticate") ?? "", /^Bearer/);
      const bogus = await rawRequest(vault.url, path, { method, headers: { authorization: "Bearer not-a-token" } });
      assertEnvelope(bogus, 401);
      assertEnvelope(await api(vault, path, "rwd", method), 403, /'admin' scope/);
    }
  });

  test("wrong methods are 405 with Allow; bad parameters are 400, in the envelope", async () => {
    const put = await api(vault, "/admin/cache/entries", "admin", "PUT");
    assertEnvelope(put, 405);
    assert.equal(put.header("allow"), "GET, DELETE");
    assertEnvelope(await api(vault, "/admin/cache/stats", "admin", "POST"), 405);
    assertEnvelope(await api(vault, "/admin/cache/entries?limit=0", "admin"), 400, /limit/);
    assertEnvelope(await api(vault, "/admin/cache/entries?limit=abc", "admin"), 400, /limit/);
    assertEnvelope(await api(vault, "/admin/cache/entries?cursor=%%%", "admin"), 400);
    assertEnvelope(await api(vault, "/admin/cache/entries?cursor=bm90LWpzb24", "admin"), 400, /cursor/);
    assertEnvelope(await api(vault, "/admin/cache/entries?prefix=a&prefix=b", "admin"), 400, /more than once/);
    assertEnvelope(await api(vault, "/admin/cache/entries?backend=a/b", "admin"), 400, /backend/);
  });

  test("entries are listed after a miss, with size, backend, content type, digest and freshness", async () => {
    const body = randomBytes(12_345);
    origin.files.set("/dist/list/pkg-1.0.tgz", { body, contentType: "application/gzip", etag: '"v1"' });
    origin.files.set("/dist/list/index.json", { body: Buffer.from("{}"), contentType: "application/json" });
    origin.files.set("/mirror/list/other.bin", { body: Buffer.from("other") });
    const before = Date.now();
    await fetchThrough(vault, "/files/list/pkg-1.0.tgz");
    await fetchThrough(vault, "/files/list/index.json");
    await fetchThrough(vault, "/mirror/list/other.bin");

    const listed = await api(vault, "/admin/cache/entries?prefix=files/list/", "admin");
    assert.equal(listed.status, 200);
    const page = listed.json<EntriesJson>();
    assert.deepEqual(
      page.entries.map((entry) => entry.key),
      ["files/list/index.json", "files/list/pkg-1.0.tgz"],
    );
    assert.equal(page.has_more, false);
    assert.equal(page.next_cursor, null);
    const [index, tarball] = page.entries;
    assert.ok(index !== undefined && tarball !== undefined);
    assert.equal(tarball.backend, "files");
    assert.equal(tarball.size, body.length);
    assert.equal(tarball.content_type, "application/gzip");
    assert.equal(tarball.sha256, sha256(body));
    assert.equal(tarball.freshness, "immutable");
    assert.equal(tarball.fresh, true);
    assert.equal(tarball.upstream_etag, '"v1"');
    assert.ok(Date.parse(tarball.cached_at) >= before - 1000 && Date.parse(tarball.cached_at) <= Date.now());
    assert.equal(index.freshness, "mutable");
    assert.equal(index.ttl_seconds, 3600);
    assert.equal(index.fresh, true);
    assert.equal(Date.parse(index.stale_at ?? ""), Date.parse(index.validated_at) + 3_600_000);
    // When each was last used, from the LRU index: a hit makes it later.
    const cachedAccess = Date.parse(tarball.last_access ?? "");
    assert.ok(cachedAccess >= before - 1000 && cachedAccess <= Date.now(), `last_access ${tarball.last_access}`);
    await delay(5);
    assert.equal((await rawRequest(vault.url, "/files/list/pkg-1.0.tgz")).header("x-cache"), "HIT");
    const used = (await api(vault, "/admin/cache/entries?prefix=files/list/pkg", "admin")).json<EntriesJson>().entries[0];
    assert.ok(Date.parse(used?.last_access ?? "") > cachedAccess, "a hit is a later access");

    // By backend, and by backend with a prefix that only narrows it.
    const mirror = (await api(vault, "/admin/cache/entries?backend=mirror", "admin")).json<EntriesJson>();
    assert.deepEqual(
      mirror.entries.map((entry) => [entry.key, entry.backend]),
      [["mirror/list/other.bin", "mirror"]],
    );
    const narrowed = (await api(vault, "/admin/cache/entries?backend=files&prefix=files/list/pkg", "admin")).json<EntriesJson>();
    assert.deepEqual(
      narrowed.entries.map((entry) => entry.key),
      ["files/list/pkg-1.0.tgz"],
    );
    const disjoint = (await api(vault, "/admin/cache/entries?backend=mirror&prefix=files/", "admin")).json<EntriesJson>();
    assert.deepEqual(disjoint, { entries: [], next_cursor: null, has_more: false });

    // Paging with an opaque cursor.
    const first = (await api(vault, "/admin/cache/entries?prefix=files/list/&limit=1", "admin")).json<EntriesJson>();
    assert.deepEqual(
      first.entries.map((entry) => entry.key),
      ["files/list/index.json"],
    );
    assert.equal(first.has_more, true);
    assert.ok(first.next_cursor !== null);
    const second = (await api(vault, `/admin/cache/entries?prefix=files/list/&limit=1&cursor=${first.next_cursor}`, "admin")).json<EntriesJson>();
    assert.deepEqual(
      second.entries.map((entry) => entry.key),
      ["files/list/pkg-1.0.tgz"],
    );
    assert.equal(second.has_more, false);
  });

  test("purging one key forgets it: the next request is a MISS that reaches the upstream again", async () => {
    const body = randomBytes(4096);
    origin.files.set("/dist/purge/one.bin", { body });
    await fetchThrough(vault, "/files/purge/one.bin");
    assert.equal((await rawRequest(vault.url, "/files/purge/one.bin")).header("x-cache"), "HIT");
    assert.equal(origin.count("/dist/purge/one.bin"), 1);

    const purged = await api(vault, "/admin/cache/entries?key=files/purge/one.bin", "admin", "DELETE");
    assert.equal(purged.status, 200);
    assert.deepEqual(purged.json(), { purged: 1 });
    const listed = (await api(vault, "/admin/cache/entries?prefix=files/purge/", "admin")).json<EntriesJson>();
    assert.deepEqual(listed.entries, []);

    const again = await fetchThrough(vault, "/files/purge/one.bin");
    assert.equal(again.header("x-cache"), "MISS");
    assert.equal(sha256(again.body), sha256(body));
    assert.equal(origin.count("/dist/purge/one.bin"), 2);

    // Purging what is not cached is not an error: nothing was purged.
    assert.deepEqual((await api(vault, "/admin/cache/entries?key=files/purge/none.bin", "admin", "DELETE")).json(), { purged: 0 });
  });

  test("purging a key forgets a remembered upstream 404 too", async () => {
    await rawRequest(vault.url, "/files/purge/late.bin"); // 404, remembered for negative_ttl
    origin.files.set("/dist/purge/late.bin", { body: Buffer.from("here now") });
    assert.equal((await rawRequest(vault.url, "/files/purge/late.bin")).status, 404);
    assert.deepEqual((await api(vault, "/admin/cache/entries?key=files/purge/late.bin", "admin", "DELETE")).json(), { purged: 0 });
    assert.equal((await rawRequest(vault.url, "/files/purge/late.bin")).status, 200);
  });

  test("purging by prefix removes everything under it and nothing else; an empty prefix needs all=true", async () => {
    for (const name of ["pkg/a.bin", "pkg/b.bin", "pkg/sub/c.bin", "pkgs/d.bin"]) {
      origin.files.set(`/dist/prefix/${name}`, { body: randomBytes(100) });
      await fetchThrough(vault, `/files/prefix/${name}`);
    }
    const purged = await api(vault, "/admin/cache/entries?prefix=files/prefix/pkg/", "admin", "DELETE");
    assert.deepEqual(purged.json(), { purged: 3 });
    const left = (await api(vault, "/admin/cache/entries?prefix=files/prefix/", "admin")).json<EntriesJson>();
    assert.deepEqual(
      left.entries.map((entry) => entry.key),
      ["files/prefix/pkgs/d.bin"],
    );
    assert.equal((await rawRequest(vault.url, "/files/prefix/pkg/a.bin")).header("x-cache"), "MISS");

    assertEnvelope(await api(vault, "/admin/cache/entries?prefix=", "admin", "DELETE"), 400, /all=true/);
    assertEnvelope(await api(vault, "/admin/cache/entries", "admin", "DELETE"), 400, /key=KEY, prefix=PREFIX or all=true/);
    assertEnvelope(await api(vault, "/admin/cache/entries?key=files/x&prefix=files/", "admin", "DELETE"), 400, /one of/);
    assertEnvelope(await api(vault, "/admin/cache/entries?all=yes", "admin", "DELETE"), 400, /all must be/);
    assert.equal((await api(vault, "/admin/cache/entries?limit=1", "admin")).json<EntriesJson>().entries.length, 1, "nothing was purged by a refused request");
  });

  test("fills show a slow download in progress with bytes below the total, and none once it ends", async () => {
    const body = randomBytes(2 * 1024 * 1024);
    // Held after its first chunk until the in-progress view has been checked.
    let release = (): void => undefined;
    const checked = new Promise<void>((resolve) => (release = resolve));
    origin.files.set("/dist/slow/big.bin", { body, chunkSize: 64 * 1024, pauseAfter: { bytes: 64 * 1024, until: checked } });
    const download = new Promise<number>((resolve, reject) => {
      const { hostname, port } = new URL(vault.url);
      httpRequest({ host: hostname, port, path: "/files/slow/big.bin", agent: false }, (res) => {
        let bytes = 0;
        res.on("data", (chunk: Buffer) => (bytes += chunk.length));
        res.on("end", () => resolve(bytes));
        res.on("error", reject);
      })
        .on("error", reject)
        .end();
    });

    let fill: FillJson | undefined;
    for (let attempt = 0; attempt < 200 && (fill === undefined || fill.bytes === 0); attempt++) {
      const fills = (await api(vault, "/admin/cache/fills", "admin")).json<{ fills: FillJson[] }>().fills;
      fill = fills.find((candidate) => candidate.key === "files/slow/big.bin");
      if (fill === undefined || fill.bytes === 0) await delay(10);
    }
    assert.ok(fill !== undefined, "the download never showed up among the fills");
    assert.equal(fill.backend, "files");
    assert.equal(fill.total, body.length);
    assert.ok(fill.bytes > 0 && fill.bytes < body.length, `bytes ${fill.bytes} of ${body.length}`);
    assert.ok(fill.percent !== null && fill.percent > 0 && fill.percent < 100);
    assert.ok(Date.parse(fill.started_at) <= Date.now());
    assert.equal(fill.waiters, 1, "the one client reading it");
    const stats = (await api(vault, "/admin/cache/stats", "admin")).json<{ fills_in_progress: number }>();
    assert.ok(stats.fills_in_progress >= 1);

    release();
    assert.equal(await download, body.length);
    // The fill is forgotten as it settles, right after the client's last byte.
    let remaining: FillJson[] = [];
    for (let attempt = 0; attempt < 100; attempt++) {
      remaining = (await api(vault, "/admin/cache/fills", "admin")).json<{ fills: FillJson[] }>().fills;
      if (remaining.length === 0) break;
      await delay(10);
    }
    assert.deepEqual(remaining, []);
  });
});

describe("cache administration statistics", () => {
  let origin: OriginServer;
  let vault: TestVault;

  before(async () => {
    origin = await new OriginServer().start();
    vault = await startTestVaultInFront(origin, {
      tokens: [{ name: "admin", scopes: ["admin"] }],
      extraYaml: `${backendsYaml(origin)}\ncache: {max_size: 10MiB}`,
    });
  });
  after(async () => {
    await vault.close();
    await origin.stop();
  });

  test("counters move: a miss then a hit is hits 1, misses 1, ratio 0.5; sizes per backend", async () => {
    interface StatsJson {
      hits: number;
      misses: number;
      stale: number;
      revalidated: number;
      hit_ratio: number | null;
      bytes_from_cache: number;
      bytes_from_upstream: number;
      total_bytes: number;
      entry_count: number;
      max_size: number | null;
      evictions: number;
      index_ready: boolean;
      fills_in_progress: number;
      backends: Record<string, { entries: number; bytes: number }>;
    }
    const stats = async (): Promise<StatsJson> => {
      const response = await api(vault, "/admin/cache/stats", "admin");
      assert.equal(response.status, 200);
      return response.json<StatsJson>();
    };
    const empty = await stats();
    assert.equal(empty.hits, 0);
    assert.equal(empty.misses, 0);
    assert.equal(empty.hit_ratio, null);
    assert.equal(empty.max_size, 10 * 1024 * 1024);
    assert.deepEqual(empty.backends, { files: { entries: 0, bytes: 0 }, mirror: { entries: 0, bytes: 0 } });

    const body = randomBytes(50_000);
    origin.files.set("/dist/stats/a.bin", { body });
    await fetchThrough(vault, "/files/stats/a.bin");
    await fetchThrough(vault, "/files/stats/a.bin");

    const moved = await stats();
    assert.equal(moved.hits, 1);
    assert.equal(moved.misses, 1);
    assert.equal(moved.stale, 0);
    assert.equal(moved.revalidated, 0);
    assert.equal(moved.hit_ratio, 0.5);
    assert.equal(moved.bytes_from_upstream, body.length);
    assert.equal(moved.bytes_from_cache, body.length);
    assert.equal(moved.total_bytes, body.length);
    assert.equal(moved.entry_count, 1);
    assert.equal(moved.evictions, 0);
    assert.equal(moved.index_ready, true);
    assert.equal(moved.fills_in_progress, 0);
    assert.deepEqual(moved.backends, { files: { entries: 1, bytes: body.length }, mirror: { entries: 0, bytes: 0 } });

    await api(vault, "/admin/cache/entries?all=true", "admin", "DELETE");
    const purged = await stats();
    assert.equal(purged.total_bytes, 0);
    assert.equal(purged.entry_count, 0);
  });
});

describe("cache administration rate limiting", () => {
  test("admin routes are rate-limited per token like the object API (429, Retry-After, envelope)", async () => {
    const vault = await startTestVault({ storage: "memory", tokens: [{ name: "admin", scopes: ["admin"] }], extraYaml: "rate_limit: {per_token_per_minute: 2}" });
    try {
      assert.equal((await api(vault, "/admin/cache/stats", "admin")).status, 200);
      assert.equal((await api(vault, "/admin/cache/fills", "admin")).status, 200);
      const limited = await api(vault, "/admin/cache/stats", "admin");
      assertEnvelope(limited, 429);
      assert.match(limited.header("retry-after") ?? "", /^\d+$/);
    } finally {
      await vault.close();
    }
  });
});
