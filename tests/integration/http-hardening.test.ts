/**
 * The HTTP edge tried as an attacker and as a faulty client would (issue #11): failed
 * authentication throttled per address, upstream details kept out of error bodies, credentials
 * kept out of logs, stored HTML kept from running in the vault's origin, request ids kept plain,
 * errors Node raises before any route in each surface's own format, and requests that do not
 * arrive in time answered 408.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { connect } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { OriginServer } from "../support/origin-server.js";
import { rawRequest } from "../support/http.js";
import { freePort } from "../support/process.js";
import { GENERIC_UPSTREAM_FAILURE, loggedUpstreamReason, startTestVault, type TestVault } from "../support/test-vault.js";

/** Sends `head` (and `body` chunks with pauses) over a plain socket; resolves with everything the server answered. */
async function rawExchange(url: string, head: string, body: ReadonlyArray<{ bytes: string; pauseMs?: number }> = []): Promise<{ text: string; ms: number }> {
  const { hostname, port } = new URL(url);
  const socket = connect(Number(port), hostname);
  const started = Date.now();
  const received: Buffer[] = [];
  socket.on("data", (chunk: Buffer) => received.push(chunk));
  const closed = new Promise<void>((resolve) => socket.on("close", () => resolve()));
  socket.on("error", () => undefined);
  socket.write(head);
  for (const part of body) {
    if (part.pauseMs !== undefined) await sleep(part.pauseMs);
    if (socket.destroyed) break;
    socket.write(part.bytes);
  }
  await closed;
  return { text: Buffer.concat(received).toString("latin1"), ms: Date.now() - started };
}

function statusOf(text: string): number {
  return Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0);
}

function bodyOf(text: string): string {
  return text.slice(text.indexOf("\r\n\r\n") + 4);
}

describe("failed authentication is throttled per address", () => {
  let vault: TestVault;
  let origin: OriginServer;

  before(async () => {
    origin = await new OriginServer().start();
    origin.files.set("/dist/a.txt", { body: Buffer.from("a") });
    vault = await startTestVault({
      proxyAuth: "token",
      tokens: [
        { name: "good", scopes: ["read", "write", "delete"] },
        { name: "reader", scopes: ["read"] },
      ],
      extraYaml: [
        "rate_limit: {per_token_per_minute: 1000, per_ip_per_minute: 6}",
        `backends: [{type: http, name: files, config: {prefix: /files/, base_url: "${origin.url}/dist"}}]`,
      ].join("\n"),
    });
  });

  after(async () => {
    await vault.close();
    await origin.stop();
  });

  it("wrong tokens and missing tokens count together; past the limit 429 with Retry-After; a good token still passes", async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) statuses.push((await rawRequest(vault.url, "/objects/x", { headers: { authorization: "Bearer wrong-token" } })).status);
    for (let i = 0; i < 2; i++) statuses.push((await rawRequest(vault.url, "/objects/x")).status);
    assert.deepEqual(statuses, [401, 401, 401, 401, 401, 401]);
    // Proxy routes that need a token count too: the seventh failure from this address is refused.
    const throttled = await rawRequest(vault.url, "/files/a.txt", { headers: { authorization: "Basic eDp3cm9uZw==" } });
    assert.equal(throttled.status, 429);
    assert.match(throttled.header("retry-after") ?? "", /^\d+$/);
    assert.ok(Number(throttled.header("retry-after")) >= 1 && Number(throttled.header("retry-after")) <= 60);
    const onObjects = await rawRequest(vault.url, "/objects/x", { headers: { authorization: "Bearer wrong-token" } });
    assert.equal(onObjects.status, 429);
    assert.deepEqual(onObjects.json<{ error: { code: string } }>().error.code, "429");
    // A valid token from the same address is limited only by its own budget.
    assert.equal((await rawRequest(vault.url, "/objects/x", { headers: vault.auth("good") })).status, 404);
    assert.equal((await rawRequest(vault.url, "/files/a.txt", { headers: vault.auth("reader") })).status, 200);
  });
});

describe("upstream failures, logs, content safety and request ids", () => {
  let vault: TestVault;
  let origin: OriginServer;
  let deadPort: number;

  before(async () => {
    origin = await new OriginServer().start();
    origin.files.set("/dist/page.html", { body: Buffer.from("<script>alert(document.cookie)</script>"), contentType: "text/html" });
    origin.files.set("/dist/data.json", { body: Buffer.from("{}"), contentType: "application/json" });
    deadPort = await freePort();
    vault = await startTestVault({
      logLevel: "info",
      extraYaml: [
        "backends:",
        `  - {type: http, name: files, config: {prefix: /files/, base_url: "${origin.url}/dist"}}`,
        `  - {type: http, name: down, config: {prefix: /down/, base_url: "http://127.0.0.1:${deadPort}/base", retries: 1}}`,
      ].join("\n"),
    });
  });

  after(async () => {
    await vault.close();
    await origin.stop();
  });

  it("an upstream failure tells the client a generic reason and its request id; the log has the upstream and the error", async () => {
    const response = await rawRequest(vault.url, "/down/never-cached.txt");
    assert.equal(response.status, 502);
    const body = response.body.toString();
    assert.match(body, GENERIC_UPSTREAM_FAILURE);
    assert.ok(body.includes(response.header("x-request-id") ?? "?"));
    assert.doesNotMatch(body, new RegExp(`127\\.0\\.0\\.1|${deadPort}|ECONNREFUSED|/base/`));
    const reason = loggedUpstreamReason(vault, response.header("x-request-id"));
    assert.match(reason, new RegExp(`127\\.0\\.0\\.1:${deadPort}/base/never-cached\\.txt`));
    assert.match(reason, /ECONNREFUSED/);
  });

  it("a token in a query string never reaches the log", async () => {
    const token = vault.tokens["all"] ?? "";
    const response = await rawRequest(vault.url, `/objects/a?api_key=${token}&access_token=${token}&prefix=p`, { headers: vault.auth("all") });
    assert.equal(response.status, 404);
    const line = vault.logs().find((entry) => entry.msg === "request" && entry.reqId === response.header("x-request-id"));
    assert.equal(line?.["url"], "/objects/a?api_key=[redacted]&access_token=[redacted]&prefix=p");
    assert.ok(!JSON.stringify(vault.logs()).includes(token), "the token appears in no log line");
  });

  it("stored HTML and proxied HTML cannot run in the vault's origin", async () => {
    const put = await rawRequest(vault.url, "/objects/site/index.html", {
      method: "PUT",
      headers: { ...vault.auth("all"), "content-type": "text/html" },
      body: "<script>fetch('/objects?prefix=').then((r) => r.text()).then(alert)</script>",
    });
    assert.equal(put.status, 200);
    for (const [path, headers] of [
      ["/objects/site/index.html", vault.auth("all")],
      ["/files/page.html", {}],
    ] as const) {
      const response = await rawRequest(vault.url, path, { headers });
      assert.equal(response.status, 200, path);
      assert.equal(response.header("content-type"), "text/html", path);
      assert.equal(response.header("x-content-type-options"), "nosniff", path);
      assert.equal(response.header("content-security-policy"), "sandbox; default-src 'none'", path);
      assert.equal(response.header("content-disposition"), "attachment", path);
    }
    // Passive types are served inline, still without sniffing and sandboxed.
    const json = await rawRequest(vault.url, "/files/data.json");
    assert.equal(json.header("content-disposition"), undefined);
    assert.equal(json.header("x-content-type-options"), "nosniff");
  });

  it("a client's X-Request-Id is echoed only when short and plain", async () => {
    const plain = await rawRequest(vault.url, "/health", { headers: { "x-request-id": "ci-job-42.step_3" } });
    assert.equal(plain.header("x-request-id"), "ci-job-42.step_3");
    for (const bad of ["x".repeat(10_000), "<script>alert(1)</script>", "a b"]) {
      const response = await rawRequest(vault.url, "/health", { headers: { "x-request-id": bad } });
      assert.match(response.header("x-request-id") ?? "", /^[0-9a-f-]{36}$/);
    }
  });
});

describe("errors before any route, and requests that do not arrive in time", () => {
  let vault: TestVault;

  before(async () => {
    vault = await startTestVault({
      extraYaml: [
        "request_timeout: 3s",
        "body_timeout: 1s",
        "backends:",
        "  - {type: http, name: files, config: {prefix: /files/, base_url: http://127.0.0.1:9/}}",
        "  - {type: npm, name: npm, config: {prefix: /npm/, registry_url: http://127.0.0.1:9/}}",
      ].join("\n"),
    });
  });

  after(async () => {
    await vault.close();
  });

  it("431 for huge headers, in the format of the surface the path belongs to", async () => {
    const huge = `x-filler: ${"a".repeat(20_000)}\r\n`;
    const objects = await rawExchange(vault.url, `GET /objects/x HTTP/1.1\r\nHost: v\r\n${huge}\r\n`);
    assert.equal(statusOf(objects.text), 431);
    assert.deepEqual(JSON.parse(bodyOf(objects.text)), { error: { code: "431", message: "the request's headers are larger than the server takes" } });
    const files = await rawExchange(vault.url, `GET /files/x HTTP/1.1\r\nHost: v\r\n${huge}\r\n`);
    assert.equal(statusOf(files.text), 431);
    assert.match(bodyOf(files.text), /^431 headers too large: /);
    const npm = await rawExchange(vault.url, `GET /npm/lodash HTTP/1.1\r\nHost: v\r\n${huge}\r\n`);
    assert.deepEqual(JSON.parse(bodyOf(npm.text)), { error: "the request's headers are larger than the server takes" });
  });

  it("400 for Content-Length with Transfer-Encoding and for raw non-ASCII in the path, as the envelope", async () => {
    const smuggled = await rawExchange(vault.url, "PUT /objects/x HTTP/1.1\r\nHost: v\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n");
    assert.equal(statusOf(smuggled.text), 400);
    assert.equal((JSON.parse(bodyOf(smuggled.text)) as { error: { code: string } }).error.code, "400");
    const nonAscii = await rawExchange(vault.url, "GET /objects/caf\u00e9 HTTP/1.1\r\nHost: v\r\n\r\n");
    assert.equal(statusOf(nonAscii.text), 400);
    assert.equal((JSON.parse(bodyOf(nonAscii.text)) as { error: { code: string } }).error.code, "400");
  });

  it("a body that sends nothing for body_timeout is answered 408 and nothing is stored", async () => {
    const token = vault.tokens["all"] ?? "";
    const stalled = await rawExchange(vault.url, `PUT /objects/stalled HTTP/1.1\r\nHost: v\r\nAuthorization: Bearer ${token}\r\nContent-Length: 100\r\n\r\n`, [{ bytes: "0123456789" }]);
    assert.equal(statusOf(stalled.text), 408);
    assert.equal((JSON.parse(bodyOf(stalled.text)) as { error: { code: string } }).error.code, "408");
    assert.ok(stalled.ms < 10_000, `answered after ${stalled.ms} ms`);
    assert.equal((await rawRequest(vault.url, "/objects/stalled", { headers: vault.auth("all") })).status, 404);
  });

  it("a request that keeps trickling past request_timeout is answered 408", async () => {
    const token = vault.tokens["all"] ?? "";
    const drip = Array.from({ length: 40 }, () => ({ bytes: "x", pauseMs: 250 }));
    const slow = await rawExchange(vault.url, `PUT /objects/slow HTTP/1.1\r\nHost: v\r\nAuthorization: Bearer ${token}\r\nContent-Length: 40\r\n\r\n`, drip);
    assert.equal(statusOf(slow.text), 408, slow.text);
    assert.ok(slow.ms >= 2500 && slow.ms < 9000, `answered after ${slow.ms} ms`);
    assert.equal((await rawRequest(vault.url, "/objects/slow", { headers: vault.auth("all") })).status, 404);
  });
});

describe("behind a reverse proxy: trust_proxy decides whose address X-Forwarded-For is", () => {
  let origin: OriginServer;
  let trusting: TestVault;
  let untrusting: TestVault;
  const backend = (url: string): string => `backends: [{type: http, name: files, config: {prefix: /files/, base_url: "${url}/dist"}}]`;

  before(async () => {
    origin = await new OriginServer().start();
    origin.files.set("/dist/a.txt", { body: Buffer.from("a") });
    // This test's client stands in for a proxy on 127.0.0.1 that adds X-Forwarded-For. Failed
    // logins are what the per-address limit counts: 3 a minute here.
    trusting = await startTestVault({
      logLevel: "info",
      extraYaml: ["trust_proxy: [127.0.0.1]", "rate_limit: {per_ip_per_minute: 3}", backend(origin.url)].join("\n"),
    });
    untrusting = await startTestVault({ extraYaml: ["rate_limit: {per_ip_per_minute: 3}", backend(origin.url)].join("\n") });
  });

  after(async () => {
    await trusting.close();
    await untrusting.close();
    await origin.stop();
  });

  const wrongToken = (vault: TestVault, client: string) =>
    rawRequest(vault.url, "/objects/x", { headers: { authorization: "Bearer wrong-token", "x-forwarded-for": client } });

  it("trusted: each client behind the proxy has its own per-address limit, and the access log names it", async () => {
    const first: number[] = [];
    for (let i = 0; i < 4; i++) first.push((await wrongToken(trusting, "203.0.113.1")).status);
    assert.deepEqual(first, [401, 401, 401, 429]);
    const other = await wrongToken(trusting, "203.0.113.2");
    assert.equal(other.status, 401, "another client behind the same proxy is not limited by the first one's failures");
    // An entry the client wrote itself, before the one the proxy added, is not its address.
    assert.equal((await wrongToken(trusting, "203.0.113.2, 203.0.113.1")).status, 429);
    const logged = trusting.logs().find((line) => line.msg === "request" && line.reqId === other.header("x-request-id"));
    assert.equal(logged?.["ip"], "203.0.113.2");
  });

  it("trusted: a cached answer made before the framework logs the same client address", async () => {
    for (const client of ["198.51.100.7", "198.51.100.8"]) {
      const response = await rawRequest(trusting.url, "/files/a.txt", { headers: { "x-forwarded-for": client } });
      assert.equal(response.status, 200);
      const logged = trusting.logs().find((line) => line.msg === "request" && line.reqId === response.header("x-request-id"));
      assert.equal(logged?.["ip"], client, `${response.header("x-cache") ?? "?"} answer`);
    }
  });

  it("not trusted (the default): the header is ignored, every client shares the proxy's limit, and the vault says so once", async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) statuses.push((await wrongToken(untrusting, `203.0.113.${10 + i}`)).status);
    assert.deepEqual(statuses, [401, 401, 401, 429]);
    const warnings = untrusting.logs().filter((line) => /X-Forwarded-For, which is ignored/.test(line.msg));
    assert.equal(warnings.length, 1);
    assert.match(warnings[0]?.msg ?? "", /set trust_proxy/);
  });
});
