import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { request as httpRequest } from "node:http";
import { rawRequest } from "../support/http.js";
import { OriginServer, sha256 } from "../support/origin-server.js";
import { startTestVault, type TestVault } from "../support/test-vault.js";

interface StreamedResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  sha256: string;
  bytes: number;
  /** When the first body byte arrived (performance.now()). */
  firstByteAt: number | undefined;
  /** Origin bytes sent for the file when this client got its first byte. */
  originBytesAtFirstByte: number | undefined;
  error: Error | undefined;
}

/** GETs a URL, hashing the body as it streams (50 × 64 MiB must not be held in memory). */
function streamGet(base: string, path: string, onFirstByte?: () => number, headers: Record<string, string> = {}): Promise<StreamedResponse> {
  const { hostname, port } = new URL(base);
  return new Promise((resolve) => {
    const result: StreamedResponse = { status: 0, headers: {}, sha256: "", bytes: 0, firstByteAt: undefined, originBytesAtFirstByte: undefined, error: undefined };
    const hash = createHash("sha256");
    const req = httpRequest({ host: hostname, port, path, headers, agent: false }, (res) => {
      result.status = res.statusCode ?? 0;
      result.headers = res.headers;
      res.on("data", (chunk: Buffer) => {
        if (result.firstByteAt === undefined) {
          result.firstByteAt = performance.now();
          result.originBytesAtFirstByte = onFirstByte?.();
        }
        result.bytes += chunk.length;
        hash.update(chunk);
      });
      res.on("error", (error) => (result.error = error));
      res.on("aborted", () => (result.error ??= new Error("aborted")));
      res.on("close", () => {
        result.sha256 = hash.digest("hex");
        if (!res.complete) result.error ??= new Error("incomplete response");
        resolve(result);
      });
    });
    req.on("error", (error) => {
      result.error = error;
      resolve(result);
    });
    req.end();
  });
}

function backendYaml(origin: OriginServer, extra = "", cache = ""): string {
  return [
    `cache: {negative_ttl: 1h${cache}}`,
    "backends:",
    `  - {type: http, name: files, config: {prefix: /files/, base_url: "${origin.url}/dist", timeout: 5, retries: 1${extra}}}`,
  ].join("\n");
}

// The cache on a local store (spooled downloads renamed into place) and on S3 (uploaded once verified).
for (const storage of ["filesystem", "s3"] as const) {
  describe(`pull-through cache over the http backend (${storage} storage)`, () => {
  let origin: OriginServer;
  let vault: TestVault;

  before(async () => {
    origin = await new OriginServer().start();
    vault = await startTestVault({ storage, extraYaml: backendYaml(origin, ', mutable: ["**/latest/**"], ttl: 0') });
  });
  after(async () => {
    await vault.close();
    await origin.stop();
  });

  test("a miss fetches once and streams; the next request is a hit from the cache", async () => {
    const body = randomBytes(300 * 1024);
    origin.files.set("/dist/pkg/a-1.0.tar.gz", { body, contentType: "application/gzip" });
    const first = await rawRequest(vault.url, "/files/pkg/a-1.0.tar.gz");
    assert.equal(first.status, 200);
    assert.equal(first.header("x-cache"), "MISS");
    assert.equal(first.header("content-type"), "application/gzip");
    assert.equal(sha256(first.body), sha256(body));
    const second = await rawRequest(vault.url, "/files/pkg/a-1.0.tar.gz");
    assert.equal(second.header("x-cache"), "HIT");
    assert.equal(sha256(second.body), sha256(body));
    assert.equal(second.header("content-length"), String(body.length));
    assert.equal(second.header("etag"), `"${sha256(body)}"`);
    assert.ok(second.header("last-modified"));
    assert.equal(origin.count("/dist/pkg/a-1.0.tar.gz"), 1);

    const head = await rawRequest(vault.url, "/files/pkg/a-1.0.tar.gz", { method: "HEAD" });
    assert.equal(head.status, 200);
    assert.equal(head.header("content-length"), String(body.length));
    assert.equal(head.body.length, 0);
    const notModified = await rawRequest(vault.url, "/files/pkg/a-1.0.tar.gz", { headers: { "if-none-match": second.header("etag") ?? "" } });
    assert.equal(notModified.status, 304);
    assert.equal(origin.count("/dist/pkg/a-1.0.tar.gz"), 1);
  });

  test("50 concurrent cold GETs of 64 MiB: one upstream request, identical bodies, first bytes before the upstream finished", async () => {
    const body = randomBytes(64 * 1024 * 1024);
    const path = "/dist/big/blob-64m.bin";
    origin.files.set(path, { body, chunkSize: 1024 * 1024, delayMs: 15 });
    const results = await Promise.all(
      Array.from({ length: 50 }, () => streamGet(vault.url, "/files/big/blob-64m.bin", () => origin.bytesSent.get(path) ?? 0)),
    );
    assert.equal(origin.count(path), 1, "upstream requests");
    const expected = sha256(body);
    for (const result of results) {
      assert.equal(result.error, undefined);
      assert.equal(result.status, 200);
      assert.equal(result.bytes, body.length);
      assert.equal(result.sha256, expected);
      assert.ok(result.originBytesAtFirstByte !== undefined && result.originBytesAtFirstByte < body.length, "first byte arrived only after the upstream finished");
    }
    const hit = await streamGet(vault.url, "/files/big/blob-64m.bin");
    assert.equal(hit.headers["x-cache"], "HIT");
    assert.equal(hit.sha256, expected);
  });

  test("an upstream that breaks mid-stream: every client sees an error, nothing is cached, the next request fetches again", async () => {
    const body = randomBytes(4 * 1024 * 1024);
    const path = "/dist/broken/half.bin";
    origin.files.set(path, { body, truncateAt: 2 * 1024 * 1024, chunkSize: 256 * 1024, delayMs: 5 });
    const results = await Promise.all(Array.from({ length: 5 }, () => streamGet(vault.url, "/files/broken/half.bin")));
    for (const result of results) {
      assert.ok(result.error !== undefined || result.status >= 500, "a client got a clean response from a broken download");
      assert.ok(result.bytes < body.length);
    }
    origin.files.set(path, { body });
    const retry = await streamGet(vault.url, "/files/broken/half.bin");
    assert.equal(retry.headers["x-cache"], "MISS");
    assert.equal(retry.sha256, sha256(body));
    assert.equal(origin.count(path), 2);
  });

  test("an announced length the body does not match is never cached", async () => {
    const body = randomBytes(100_000);
    const path = "/dist/short/len.bin";
    origin.files.set(path, { body, announcedLength: body.length + 10, truncateAt: body.length });
    const broken = await streamGet(vault.url, "/files/short/len.bin");
    // Aborted mid-body, or a 502 when the download failed before the response started.
    assert.ok(broken.error !== undefined || broken.status === 502, `status ${broken.status}`);
    origin.files.set(path, { body });
    const ok = await rawRequest(vault.url, "/files/short/len.bin");
    assert.equal(ok.header("x-cache"), "MISS");
    assert.equal(ok.body.length, body.length);
  });

  test("a client that disconnects mid-fill does not stop the fill; the next request is a hit", async () => {
    const body = randomBytes(8 * 1024 * 1024);
    const path = "/dist/abandon/file.bin";
    origin.files.set(path, { body, chunkSize: 256 * 1024, delayMs: 10 });
    await new Promise<void>((resolve) => {
      const { hostname, port } = new URL(vault.url);
      const req = httpRequest({ host: hostname, port, path: "/files/abandon/file.bin", agent: false }, (res) => {
        res.once("data", () => {
          req.destroy();
          resolve();
        });
      });
      req.on("error", () => resolve());
      req.end();
    });
    const deadline = Date.now() + 10_000;
    let last;
    do {
      await new Promise((resolve) => setTimeout(resolve, 100));
      last = await rawRequest(vault.url, "/files/abandon/file.bin", { method: "HEAD" });
    } while (last.header("x-cache") !== "HIT" && Date.now() < deadline);
    assert.equal(last.header("x-cache"), "HIT");
    const hit = await rawRequest(vault.url, "/files/abandon/file.bin");
    assert.equal(sha256(hit.body), sha256(body));
    assert.equal(origin.count(path), 1);
  });

  test("mutable files are revalidated with If-None-Match; 304 renews, a new version replaces", async () => {
    const path = "/dist/latest/index.json";
    origin.files.set(path, { body: Buffer.from('{"v":1}'), etag: '"v1"', contentType: "application/json" });
    const first = await rawRequest(vault.url, "/files/latest/index.json");
    assert.equal(first.header("x-cache"), "MISS");
    // ttl 0: every later request revalidates.
    const second = await rawRequest(vault.url, "/files/latest/index.json");
    assert.equal(second.header("x-cache"), "REVALIDATED");
    assert.equal(second.body.toString(), '{"v":1}');
    const conditional = origin.requests.filter((request) => request.url === path).at(-1);
    assert.equal(conditional?.headers["if-none-match"], '"v1"');
    origin.files.set(path, { body: Buffer.from('{"v":2}'), etag: '"v2"', contentType: "application/json" });
    const third = await rawRequest(vault.url, "/files/latest/index.json");
    assert.equal(third.header("x-cache"), "MISS");
    assert.equal(third.body.toString(), '{"v":2}');
    const fourth = await rawRequest(vault.url, "/files/latest/index.json");
    assert.equal(fourth.body.toString(), '{"v":2}');
  });

  test("a stale copy is served when the upstream fails (X-Cache: STALE)", async () => {
    const path = "/dist/latest/flaky.txt";
    origin.files.set(path, { body: Buffer.from("cached copy"), etag: '"f1"' });
    assert.equal((await rawRequest(vault.url, "/files/latest/flaky.txt")).header("x-cache"), "MISS");
    origin.files.set(path, { body: Buffer.alloc(0), status: 503 });
    const stale = await rawRequest(vault.url, "/files/latest/flaky.txt");
    assert.equal(stale.status, 200);
    assert.equal(stale.header("x-cache"), "STALE");
    assert.equal(stale.body.toString(), "cached copy");
  });

  test("404 upstream is 404 here (plain text), and is remembered", async () => {
    const missing = await rawRequest(vault.url, "/files/nope/missing.tgz");
    assert.equal(missing.status, 404);
    assert.match(missing.header("content-type") ?? "", /^text\/plain/);
    assert.equal((await rawRequest(vault.url, "/files/nope/missing.tgz")).status, 404);
    assert.equal(origin.count("/dist/nope/missing.tgz"), 1);
  });

  test("upstream 5xx without a cached copy is 502", async () => {
    origin.files.set("/dist/err/500.bin", { body: Buffer.alloc(0), status: 500 });
    const response = await rawRequest(vault.url, "/files/err/500.bin");
    assert.equal(response.status, 502);
    assert.match(response.body.toString(), /upstream/);
  });

  test("Range works on a hit and on a miss", async () => {
    const body = randomBytes(2 * 1024 * 1024);
    origin.files.set("/dist/range/r.bin", { body, chunkSize: 128 * 1024, delayMs: 5 });
    const onMiss = await rawRequest(vault.url, "/files/range/r.bin", { headers: { range: "bytes=1000-1999" } });
    assert.equal(onMiss.status, 206);
    assert.equal(onMiss.header("x-cache"), "MISS");
    assert.equal(onMiss.header("content-range"), `bytes 1000-1999/${body.length}`);
    assert.ok(onMiss.body.equals(body.subarray(1000, 2000)));
    let hit;
    do hit = await rawRequest(vault.url, "/files/range/r.bin", { headers: { range: "bytes=-10" } });
    while (hit.header("x-cache") !== "HIT");
    assert.equal(hit.status, 206);
    assert.ok(hit.body.equals(body.subarray(body.length - 10)));
    const unsatisfiable = await rawRequest(vault.url, "/files/range/r.bin", { headers: { range: `bytes=${body.length}-` } });
    assert.equal(unsatisfiable.status, 416);
  });

  test("paths that could steer the vault to another host or outside the base are refused with 400", async () => {
    const attempts = [
      "/files/../etc/passwd",
      "/files/a/../../secret",
      "/files/%2e%2e/secret",
      "/files/a/%2E%2E/%2e%2e/secret",
      "/files/a%2fb",
      "/files/a%2F..%2Fb",
      "/files//evil.example/x",
      "/files/a\\b",
      "/files/%5c..%5cx",
      "/files/user@evil.example/x",
      "/files/http://evil.example/x",
      "/files/a/%00",
    ];
    const before = origin.requests.length;
    for (const path of attempts) {
      const response = await rawRequest(vault.url, path);
      assert.equal(response.status, 400, `${path} answered ${response.status}`);
    }
    assert.equal(origin.requests.length, before, "a refused path reached the upstream");
  });

  test("write methods are 405 on proxy routes", async () => {
    const response = await rawRequest(vault.url, "/files/pkg/a-1.0.tar.gz", { method: "PUT", body: "x" });
    assert.equal(response.status, 405);
    assert.match(response.header("allow") ?? "", /GET/);
  });
});

}

describe("upstream credentials", () => {
  test("basic auth reaches the configured host but not a redirect target on another host", async () => {
    const origin = await new OriginServer().start();
    const cdn = await new OriginServer().start();
    const vault = await startTestVault({
      extraYaml: [
        "backends:",
        `  - {type: http, name: private, config: {prefix: /private/, base_url: "${origin.url}/repo", username: deploy, password: s3cret}}`,
      ].join("\n"),
    });
    try {
      cdn.files.set("/blobs/x.bin", { body: Buffer.from("from the cdn") });
      origin.files.set("/repo/x.bin", { body: Buffer.alloc(0), redirectTo: `${cdn.url}/blobs/x.bin` });
      const response = await rawRequest(vault.url, "/private/x.bin", { headers: { authorization: "Bearer client-token", cookie: "session=client" } });
      assert.equal(response.status, 200);
      assert.equal(response.body.toString(), "from the cdn");
      const toOrigin = origin.requests.at(-1);
      assert.equal(toOrigin?.headers.authorization, `Basic ${Buffer.from("deploy:s3cret").toString("base64")}`);
      assert.equal(toOrigin?.headers.cookie, undefined, "the client's cookie was forwarded");
      const toCdn = cdn.requests.at(-1);
      assert.equal(toCdn?.headers.authorization, undefined, "credentials followed the redirect to another host");
      assert.equal(toCdn?.headers.cookie, undefined);
    } finally {
      await vault.close();
      await origin.stop();
      await cdn.stop();
    }
  });
});
