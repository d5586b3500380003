/**
 * The held-hit lane (`src/http/held-hits.ts`) answers hot small hits before the web framework: it
 * must answer exactly as the framework's path would (headers, body, log line), and step aside for
 * everything it does not implement.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { pino } from "pino";
import type { ArtifactCache } from "../../src/cache/artifact-cache.js";
import { heldHitLane } from "../../src/http/held-hits.js";
import { trustFunction } from "../../src/core/config/trust-proxy.js";
import type { Backend } from "../../src/upstreams/backend.js";
import { HELD_CONTENTS, HELD_HIT, HELD_REF } from "../support/held-hit.js";
import { rawRequest } from "../support/http.js";
import { OriginServer } from "../support/origin-server.js";
import { startTestVault, type TestVault } from "../support/test-vault.js";

/** Headers that differ between any two answers (time, connection, the request's own id). */
const PER_ANSWER = new Set(["date", "x-request-id", "connection", "keep-alive"]);

function comparable(headers: Record<string, string | string[] | undefined>): Record<string, string | string[] | undefined> {
  return Object.fromEntries(Object.entries(headers).filter(([name]) => !PER_ANSWER.has(name)));
}

describe("held hits, through the vault", () => {
  let origin: OriginServer;
  let vault: TestVault;
  const small = randomBytes(4096);
  const page = Buffer.from("<html><body>an index page</body></html>");

  before(async () => {
    origin = await new OriginServer().start();
    origin.files.set("/dist/small.bin", { body: small, contentType: "application/octet-stream", lastModified: "Tue, 01 Dec 2026 10:00:00 GMT" });
    origin.files.set("/dist/page.html", { body: page, contentType: "text/html" });
    vault = await startTestVault({
      logLevel: "info",
      extraYaml: `backends:\n  - {type: http, name: files, config: {prefix: /files/, base_url: "${origin.url}/dist", timeout: 5, retries: 1}}`,
    });
  });
  after(async () => {
    await vault.close();
    await origin.stop();
  });

  for (const [path, bytes] of [["/files/small.bin", small], ["/files/page.html", page]] as const) {
    test(`a hot hit (${path}) is answered as the framework answers it: same headers, same body, same log line`, async () => {
      const miss = await rawRequest(vault.url, path);
      assert.equal(miss.headers["x-cache"], "MISS");
      // The next read of the store takes the object into memory; the one after is a held hit.
      await rawRequest(vault.url, path);
      const held = await rawRequest(vault.url, path, { headers: { "x-request-id": "held-1" } });
      // A condition that does not match takes the framework's path and gets the whole body too.
      const framework = await rawRequest(vault.url, path, { headers: { "if-none-match": '"another"', "x-request-id": "framework-1" } });
      for (const answer of [held, framework]) {
        assert.equal(answer.status, 200);
        assert.equal(answer.headers["x-cache"], "HIT");
        assert.ok(answer.body.equals(bytes));
      }
      assert.deepEqual(comparable(held.headers), comparable(framework.headers));
      assert.equal(held.headers["x-request-id"], "held-1");
      const heldHead = await rawRequest(vault.url, path, { method: "HEAD" });
      assert.equal(heldHead.body.length, 0);
      assert.deepEqual(comparable(heldHead.headers), comparable(held.headers));
      const lineOf = (id: string) => vault.logs().find((line) => line["reqId"] === id && line["msg"] === "request");
      const heldLine = lineOf("held-1");
      const frameworkLine = lineOf("framework-1");
      assert.ok(heldLine !== undefined && frameworkLine !== undefined);
      const shape = (line: Record<string, unknown>) => ({ ...line, reqId: undefined, time: undefined, ms: undefined });
      assert.deepEqual(shape(heldLine), shape(frameworkLine));
      assert.equal(origin.count(`/dist${path.slice("/files".length)}`), 1);
    });
  }

  test("ranges and conditions are still answered (by the framework's path)", async () => {
    await rawRequest(vault.url, "/files/small.bin");
    const range = await rawRequest(vault.url, "/files/small.bin", { headers: { range: "bytes=0-9" } });
    assert.equal(range.status, 206);
    assert.ok(range.body.equals(small.subarray(0, 10)));
    const etag = String(range.headers["etag"]);
    const notModified = await rawRequest(vault.url, "/files/small.bin", { headers: { "if-none-match": etag } });
    assert.equal(notModified.status, 304);
  });
});

const contents = HELD_CONTENTS;
const ref = HELD_REF;
const hit = HELD_HIT;

describe("held hits, the lane alone", () => {
  let held = 0;
  let resolved = 0;
  const cache = { heldHit: () => (held++, hit) } as unknown as ArtifactCache;
  const backend = { type: "http", name: "files", prefix: "/files/", resolve: () => (resolved++, ref) } as unknown as Backend;
  let server: Server;
  let url = "";
  let closing = false;
  let passedOn = 0;

  before(async () => {
    const lane = heldHitLane({ backends: [backend], cache, accessLog: pino({ level: "silent" }), requireToken: false, redirectHits: undefined, closing: () => closing });
    server = createServer((request, response) => {
      if (lane(request, response)) return;
      passedOn++;
      response.writeHead(418).end();
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  test("answers a plain GET of a held artifact, and resolves each URL once", async () => {
    const first = await rawRequest(url, "/files/a");
    const second = await rawRequest(url, "/files/a");
    for (const answer of [first, second]) {
      assert.equal(answer.status, 200);
      assert.ok(answer.body.equals(contents));
      assert.equal(answer.headers["content-length"], String(contents.length));
      assert.equal(answer.headers["etag"], hit.info.etag);
    }
    assert.equal(held, 2);
    assert.equal(resolved, 1);
  });

  test("steps aside for other methods, other routes, ranges, conditions, and while the server closes", async () => {
    const before = passedOn;
    assert.equal((await rawRequest(url, "/files/a", { method: "POST" })).status, 418);
    assert.equal((await rawRequest(url, "/objects/a")).status, 418);
    assert.equal((await rawRequest(url, "/files/a", { headers: { range: "bytes=0-1" } })).status, 418);
    assert.equal((await rawRequest(url, "/files/a", { headers: { "if-modified-since": new Date().toUTCString() } })).status, 418);
    closing = true;
    assert.equal((await rawRequest(url, "/files/a")).status, 418);
    closing = false;
    assert.equal(passedOn - before, 5);
  });
});

describe("held hits, the lane alone, behind a trusted proxy", () => {
  test("the access log names the client X-Forwarded-For gives (trust_proxy), as the framework's request.ip does", async () => {
    const cache = { heldHit: () => hit } as unknown as ArtifactCache;
    const backend = { type: "http", name: "files", prefix: "/files/", resolve: () => ref } as unknown as Backend;
    const lines: Array<{ ip?: string }> = [];
    const accessLog = pino({ level: "info" }, { write: (line: string) => void lines.push(JSON.parse(line) as { ip?: string }) });
    for (const [trust, expected] of [[trustFunction(["127.0.0.1"]), "203.0.113.5"], [undefined, "127.0.0.1"]] as const) {
      const lane = heldHitLane({ backends: [backend], cache, accessLog, requireToken: false, redirectHits: undefined, closing: () => false, trustProxy: trust });
      const server = createServer((request, response) => {
        if (!lane(request, response)) response.writeHead(418).end();
      });
      await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
      try {
        const answer = await rawRequest(`http://127.0.0.1:${(server.address() as AddressInfo).port}`, "/files/a", { headers: { "x-forwarded-for": "6.6.6.6, 203.0.113.5" } });
        assert.equal(answer.status, 200, "answered by the lane");
        assert.equal(lines.at(-1)?.ip, expected);
      } finally {
        await new Promise<void>((resolve) => server.close(() => resolve()));
      }
    }
  });
});
