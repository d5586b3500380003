/**
 * The held-object lane (`src/http/held-object-lane.ts`) answers GETs of objects the store holds in
 * memory before the web framework: it must answer exactly as the framework's path would (headers,
 * body, log line, metrics), never let a request in that the framework would refuse, and step aside
 * for everything it does not implement.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { pino } from "pino";
import { TokenAuthenticator } from "../../src/auth/token-authenticator.js";
import { writeTokensFile } from "../../src/auth/tokens-file.js";
import { heldObjectLane } from "../../src/http/held-object-lane.js";
import { VaultMetrics } from "../../src/metrics/vault-metrics.js";
import { ObjectService } from "../../src/objects/object-service.js";
import { MemoryDriver } from "../../src/storage/memory-driver.js";
import { rawRequest } from "../support/http.js";
import { parseMetrics } from "../support/prometheus.js";
import { startTestVault, tokenRecords, type TestVault } from "../support/test-vault.js";

/** Headers that differ between any two answers (time, connection, the request's own id). */
const PER_ANSWER = new Set(["date", "x-request-id", "connection", "keep-alive"]);

function comparable(headers: Record<string, string | string[] | undefined>): Record<string, string | string[] | undefined> {
  return Object.fromEntries(Object.entries(headers).filter(([name]) => !PER_ANSWER.has(name)));
}

describe("held objects, through the vault", () => {
  let vault: TestVault;
  const small = randomBytes(4096);

  before(async () => {
    vault = await startTestVault({
      logLevel: "info",
      extraYaml: "rate_limit: {enabled: false}",
      tokens: [
        { name: "rw", scopes: ["read", "write", "delete"] },
        { name: "writer", scopes: ["write"] },
        { name: "expired", scopes: ["read"], expiresInMs: -1000 },
      ],
    });
  });
  after(async () => {
    await vault.close();
  });

  const put = async (key: string, body: Buffer | string, contentType = "application/octet-stream") =>
    rawRequest(vault.url, `/objects/${key}`, { method: "PUT", body, headers: { ...vault.auth("rw"), "content-type": contentType } });

  for (const [key, contentType] of [["lane/small.bin", "application/octet-stream"], ["lane/page.html", "text/html"]] as const) {
    test(`a held object (${contentType}) is answered as the framework answers it: same headers, same body, same log line`, async () => {
      const id = key.replace("/", "-");
      assert.equal((await put(key, small, contentType)).status, 200);
      // The first read takes the object into memory; the next ones are answered from there.
      await rawRequest(vault.url, `/objects/${key}`, { headers: vault.auth("rw") });
      const held = await rawRequest(vault.url, `/objects/${key}`, { headers: { ...vault.auth("rw"), "x-request-id": `held-${id}` } });
      // A condition that does not match takes the framework's path and gets the whole body too.
      const framework = await rawRequest(vault.url, `/objects/${key}`, {
        headers: { ...vault.auth("rw"), "if-none-match": '"another"', "x-request-id": `framework-${id}` },
      });
      for (const answer of [held, framework]) {
        assert.equal(answer.status, 200);
        assert.ok(answer.body.equals(small));
      }
      assert.deepEqual(comparable(held.headers), comparable(framework.headers));
      assert.equal(held.headers["x-request-id"], `held-${id}`);
      if (contentType === "text/html") assert.equal(held.headers["content-disposition"], "attachment");
      const heldHead = await rawRequest(vault.url, `/objects/${key}`, { method: "HEAD", headers: vault.auth("rw") });
      assert.equal(heldHead.status, 200);
      assert.equal(heldHead.body.length, 0);
      assert.deepEqual(comparable(heldHead.headers), comparable(held.headers));
      const lineOf = (id: string) => vault.logs().find((line) => line["reqId"] === id && line["msg"] === "request");
      const heldLine = lineOf(`held-${id}`);
      const frameworkLine = lineOf(`framework-${id}`);
      assert.ok(heldLine !== undefined && frameworkLine !== undefined);
      assert.equal(heldLine["token"], "rw");
      const shape = (line: Record<string, unknown>) => ({ ...line, reqId: undefined, time: undefined, ms: undefined });
      assert.deepEqual(shape(heldLine), shape(frameworkLine));
    });
  }

  test("an overwrite is answered at once, a delete is a 404", async () => {
    const key = "lane/changing";
    await put(key, "first");
    for (let i = 0; i < 3; i++) assert.equal((await rawRequest(vault.url, `/objects/${key}`, { headers: vault.auth("rw") })).body.toString(), "first");
    await put(key, "second");
    assert.equal((await rawRequest(vault.url, `/objects/${key}`, { headers: vault.auth("rw") })).body.toString(), "second");
    assert.equal((await rawRequest(vault.url, `/objects/${key}`, { method: "DELETE", headers: vault.auth("rw") })).status, 204);
    assert.equal((await rawRequest(vault.url, `/objects/${key}`, { headers: vault.auth("rw") })).status, 404);
  });

  test("a held object is refused as before without a token, with an unknown or expired one, or without the read scope", async () => {
    const key = "lane/guarded";
    await put(key, "guarded bytes");
    for (let i = 0; i < 2; i++) assert.equal((await rawRequest(vault.url, `/objects/${key}`, { headers: vault.auth("rw") })).status, 200);
    const statusWith = async (headers: Record<string, string>) => (await rawRequest(vault.url, `/objects/${key}`, { headers })).status;
    assert.equal(await statusWith({}), 401);
    assert.equal(await statusWith({ authorization: "Bearer avt_not-a-token" }), 401);
    assert.equal(await statusWith(vault.auth("expired")), 401);
    assert.equal(await statusWith(vault.auth("writer")), 403);
    // Ranges and conditions are still answered, on the framework's path.
    const range = await rawRequest(vault.url, `/objects/${key}`, { headers: { ...vault.auth("rw"), range: "bytes=0-6" } });
    assert.equal(range.status, 206);
    assert.equal(range.body.toString(), "guarded");
    const notModified = await rawRequest(vault.url, `/objects/${key}`, { headers: { ...vault.auth("rw"), "if-none-match": String(range.headers["etag"]) } });
    assert.equal(notModified.status, 304);
  });
});

describe("held objects, with rate limits on", () => {
  test("every object GET is counted by the limiter (the lane is not used)", async () => {
    const vault = await startTestVault({ extraYaml: "rate_limit: {enabled: true, per_token_per_minute: 3}" });
    try {
      await rawRequest(vault.url, "/objects/limited", { method: "PUT", body: "bytes", headers: vault.auth("all") });
      const statuses = [];
      for (let i = 0; i < 4; i++) statuses.push((await rawRequest(vault.url, "/objects/limited", { headers: vault.auth("all") })).status);
      // The PUT took one of the three.
      assert.deepEqual(statuses, [200, 200, 429, 429]);
    } finally {
      await vault.close();
    }
  });
});

describe("held objects, the lane alone", () => {
  let dir: string;
  let server: Server;
  let url = "";
  let closing = false;
  let forwardWarningDue = false;
  let passedOn = 0;
  let authenticator: TokenAuthenticator;
  const objects = new ObjectService(new MemoryDriver(), 1024 * 1024);
  const metrics = new VaultMetrics({ processMetrics: false });
  let auth: (name: string) => Record<string, string>;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "held-object-lane-"));
    const { records, tokens } = await tokenRecords([
      { name: "reader", scopes: ["read"] },
      { name: "writer", scopes: ["write"] },
    ]);
    auth = (name) => ({ authorization: `Bearer ${tokens[name] ?? ""}` });
    await writeTokensFile(join(dir, "tokens.json"), records);
    authenticator = new TokenAuthenticator(join(dir, "tokens.json"), pino({ level: "silent" }));
    await authenticator.start();
    await objects.put({ key: "a/b", body: Readable.from([Buffer.from("held bytes")]), contentType: "text/plain" });
    const lane = heldObjectLane({ objects, authenticator, accessLog: pino({ level: "silent" }), closing: () => closing, forwardWarningDue: () => forwardWarningDue, requests: metrics });
    server = createServer((request, response) => {
      if (lane(request, response)) return;
      passedOn++;
      response.writeHead(418).end();
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    authenticator.close();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await rm(dir, { recursive: true, force: true });
  });

  test("answers a GET or HEAD of a held object with a reading token, and counts it under the object route", async () => {
    const answer = await rawRequest(url, "/objects/a%2Fb", { headers: auth("reader") });
    assert.equal(answer.status, 200);
    assert.equal(answer.body.toString(), "held bytes");
    assert.equal(answer.headers["content-type"], "text/plain");
    assert.equal(answer.headers["content-length"], "10");
    const head = await rawRequest(url, "/objects/a/b?ignored=1", { method: "HEAD", headers: auth("reader") });
    assert.equal(head.status, 200);
    assert.equal(head.headers["etag"], answer.headers["etag"]);
    const counted = parseMetrics(await metrics.registry.metrics());
    assert.equal(counted.value("artifact_vault_http_requests_total", { method: "GET", route: "/objects/*", backend: "", status: "200" }), 1);
    assert.equal(counted.value("artifact_vault_http_requests_total", { method: "HEAD", route: "/objects/*", backend: "", status: "200" }), 1);
  });

  test("steps aside for what the framework must refuse or answer", async () => {
    const before = passedOn;
    const refusedOrOther: Array<[string, { method?: string; headers?: Record<string, string> }]> = [
      ["/objects/a/b", {}],
      ["/objects/a/b", { headers: { authorization: "Bearer avt_unknown" } }],
      ["/objects/a/b", { headers: { authorization: "Basic !!!" } }],
      ["/objects/a/b", { headers: auth("writer") }],
      ["/objects/a/b", { method: "DELETE", headers: auth("reader") }],
      ["/objects/a/b", { headers: { ...auth("reader"), range: "bytes=0-1" } }],
      ["/objects/a/b", { headers: { ...auth("reader"), "if-none-match": "*" } }],
      ["/objects/missing", { headers: auth("reader") }],
      ["/objects/", { headers: auth("reader") }],
      ["/objects/%ZZ", { headers: auth("reader") }],
      ["/objects", { headers: auth("reader") }],
      ["/files/a/b", { headers: auth("reader") }],
    ];
    for (const [path, options] of refusedOrOther) assert.equal((await rawRequest(url, path, options)).status, 418, `${options.method ?? "GET"} ${path}`);
    closing = true;
    assert.equal((await rawRequest(url, "/objects/a/b", { headers: auth("reader") })).status, 418, "while the server closes");
    closing = false;
    // Until the server has said that X-Forwarded-For is ignored, such requests go to it.
    forwardWarningDue = true;
    assert.equal((await rawRequest(url, "/objects/a/b", { headers: { ...auth("reader"), "x-forwarded-for": "203.0.113.5" } })).status, 418);
    assert.equal((await rawRequest(url, "/objects/a/b", { headers: auth("reader") })).status, 200);
    forwardWarningDue = false;
    assert.equal((await rawRequest(url, "/objects/a/b", { headers: { ...auth("reader"), "x-forwarded-for": "203.0.113.5" } })).status, 200);
    assert.equal(passedOn - before, refusedOrOther.length + 2);
  });
});
