import { describe, test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { createServer, request as httpRequest, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { Readable } from "node:stream";
import { isVaultError, type ErrorKind } from "../../src/core/errors.js";
import { createUpstreamClient, type UpstreamClientRuntime } from "../../src/upstreams/http-client.js";
import type { UpstreamClient, UpstreamClientOptions } from "../../src/upstreams/upstream-client.js";

interface SeenRequest {
  readonly method: string;
  readonly url: string;
  readonly headers: IncomingHttpHeaders;
}

type Handler = (request: IncomingMessage, response: ServerResponse, index: number) => void;

/** A real HTTP server on 127.0.0.1, port 0, that records requests and counts connections. */
class Origin {
  readonly requests: SeenRequest[] = [];
  connections = 0;
  url = "";
  readonly #server: Server;

  private constructor(handler: Handler) {
    this.#server = createServer((request, response) => {
      const index = this.requests.length;
      this.requests.push({ method: request.method ?? "", url: request.url ?? "", headers: request.headers });
      handler(request, response, index);
    });
    this.#server.on("connection", () => {
      this.connections++;
    });
  }

  static async start(t: TestContext, handler: Handler): Promise<Origin> {
    const origin = new Origin(handler);
    await new Promise<void>((resolve) => origin.#server.listen(0, "127.0.0.1", resolve));
    origin.url = `http://127.0.0.1:${(origin.#server.address() as AddressInfo).port}`;
    t.after(() => origin.close());
    return origin;
  }

  async close(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}

interface TestClient {
  readonly client: UpstreamClient;
  /** The backoff delays the client asked for (the test's sleep returns at once). */
  readonly sleeps: number[];
}

function makeClient(t: TestContext, options: Partial<UpstreamClientOptions> & { baseUrl: string }, runtime: UpstreamClientRuntime = {}): TestClient {
  const sleeps: number[] = [];
  const client = createUpstreamClient(
    { timeoutSeconds: 5, ...options },
    {
      env: {},
      random: () => 0.5,
      sleep: async (ms) => {
        sleeps.push(ms);
      },
      ...runtime,
    },
  );
  t.after(() => client.close());
  return { client, sleeps };
}

async function text(body: Readable): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of body) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

function isKind(kind: ErrorKind): (error: unknown) => boolean {
  return (error: unknown) => {
    assert.ok(isVaultError(error, kind), `expected VaultError ${kind}, got ${String(error)}`);
    return true;
  };
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString("base64")}`;

describe("upstream client: responses", () => {
  test("a GET streams the body as the upstream sends it", async (t) => {
    let releaseRest!: () => void;
    const restReleased = new Promise<void>((resolve) => (releaseRest = resolve));
    const origin = await Origin.start(t, (_request, response) => {
      response.writeHead(200, { "content-type": "application/octet-stream", "x-multi": ["a", "b"] });
      response.write("first-");
      // The rest only after the client has read the first chunk: proves nothing waits for the end.
      void restReleased.then(() => response.end("rest"));
    });
    const { client } = makeClient(t, { baseUrl: `${origin.url}/dist` });

    const response = await client.request({ method: "GET", path: "pkg/a%20b.tgz" });
    assert.equal(response.status, 200);
    assert.equal(response.url, `${origin.url}/dist/pkg/a%20b.tgz`);
    assert.equal(response.headers["content-type"], "application/octet-stream");
    assert.equal(response.headers["x-multi"], "a, b");
    const iterator = response.body[Symbol.asyncIterator]() as AsyncIterator<Buffer, undefined>;
    const first = await iterator.next();
    assert.equal(first.value?.toString(), "first-");
    releaseRest();
    let rest = "";
    for (let next = await iterator.next(); next.done !== true; next = await iterator.next()) rest += next.value.toString();
    assert.equal(rest, "rest");
    assert.equal(origin.requests[0]?.url, "/dist/pkg/a%20b.tgz");
  });

  test("keeps connections alive and reuses them", async (t) => {
    const origin = await Origin.start(t, (_request, response) => response.end("x".repeat(1000)));
    const { client } = makeClient(t, { baseUrl: origin.url });
    for (let i = 0; i < 10; i++) {
      const response = await client.request({ method: "GET", path: `f${i}` });
      assert.equal((await text(response.body)).length, 1000);
    }
    assert.equal(origin.requests.length, 10);
    // undici's pool marks a connection free a microtask after its response ended, so a request
    // sent in the same turn as the previous body's end may open a second one; never more.
    assert.ok(origin.connections <= 2, `${origin.connections} connections for 10 requests`);
  });

  test("HEAD answers headers and an empty body", async (t) => {
    const origin = await Origin.start(t, (_request, response) => {
      response.writeHead(200, { "content-length": "1234", etag: '"v1"' });
      response.end();
    });
    const { client } = makeClient(t, { baseUrl: origin.url });
    const response = await client.request({ method: "HEAD", path: "file.bin" });
    assert.equal(response.status, 200);
    assert.equal(response.headers["content-length"], "1234");
    assert.equal(response.headers.etag, '"v1"');
    assert.equal(await text(response.body), "");
    assert.equal(origin.requests[0]?.method, "HEAD");
  });

  test("a 404 is returned as it is, without a retry", async (t) => {
    const origin = await Origin.start(t, (_request, response) => {
      response.writeHead(404, { "content-type": "text/plain" });
      response.end("nope");
    });
    const { client, sleeps } = makeClient(t, { baseUrl: origin.url });
    const response = await client.request({ method: "GET", path: "missing" });
    assert.equal(response.status, 404);
    assert.equal(await text(response.body), "nope");
    assert.equal(origin.requests.length, 1);
    assert.deepEqual(sleeps, []);
  });

  test("a 429 is returned to the caller, not retried", async (t) => {
    const origin = await Origin.start(t, (_request, response) => {
      response.writeHead(429, { "retry-after": "7" });
      response.end();
    });
    const { client } = makeClient(t, { baseUrl: origin.url });
    const response = await client.request({ method: "GET", path: "x" });
    assert.equal(response.status, 429);
    assert.equal(response.headers["retry-after"], "7");
    response.body.resume();
    assert.equal(origin.requests.length, 1);
  });

  test("sends only the caller's headers, a user-agent, and never hop-by-hop ones", async (t) => {
    const origin = await Origin.start(t, (_request, response) => response.end());
    const { client } = makeClient(t, { baseUrl: origin.url });
    const response = await client.request({
      method: "GET",
      path: "x",
      headers: { Accept: "application/json", host: "evil.example", connection: "upgrade", "proxy-authorization": "Basic eA==" },
    });
    response.body.resume();
    const seen = origin.requests[0]?.headers ?? {};
    assert.equal(seen.accept, "application/json");
    assert.equal(seen.host, new URL(origin.url).host);
    assert.equal(seen["proxy-authorization"], undefined);
    assert.notEqual(seen.connection, "upgrade");
    assert.match(seen["user-agent"] ?? "", /^artifact-vault\//);
    assert.equal(seen.authorization, undefined);
    assert.equal(seen.cookie, undefined);
  });

  test("a caller that destroys the body early gets no error and the client keeps working", async (t) => {
    const origin = await Origin.start(t, (request, response) => {
      if (request.url === "/big") {
        response.writeHead(200, { "content-length": String(10 * 1024 * 1024) });
        response.write(Buffer.alloc(64 * 1024));
        return; // never finishes; the client hangs up
      }
      response.end("small");
    });
    const { client } = makeClient(t, { baseUrl: origin.url });
    const big = await client.request({ method: "GET", path: "big" });
    let errored = false;
    big.body.on("error", () => (errored = true));
    await new Promise<void>((resolve) => big.body.once("data", () => resolve()));
    big.body.destroy();
    await new Promise<void>((resolve) => big.body.once("close", () => resolve()));
    assert.equal(errored, false);
    const small = await client.request({ method: "GET", path: "small" });
    assert.equal(await text(small.body), "small");
  });
});

describe("upstream client: retries before the first byte", () => {
  test("503, 503, 200 gives the 200 after three attempts with 200 ms and 400 ms backoff", async (t) => {
    const origin = await Origin.start(t, (_request, response, index) => {
      response.statusCode = index < 2 ? 503 : 200;
      response.end(index < 2 ? "busy" : "ok");
    });
    const { client, sleeps } = makeClient(t, { baseUrl: origin.url });
    const response = await client.request({ method: "GET", path: "x" });
    assert.equal(response.status, 200);
    assert.equal(await text(response.body), "ok");
    assert.equal(origin.requests.length, 3);
    assert.deepEqual(sleeps, [200, 400]);
    assert.ok(origin.connections <= 2, "the 503 bodies were drained, a connection reused");
  });

  test("after the last attempt, the 5xx is returned as a response", async (t) => {
    const origin = await Origin.start(t, (_request, response) => {
      response.statusCode = 502;
      response.end("bad gateway");
    });
    const { client } = makeClient(t, { baseUrl: origin.url, retries: 2 });
    const response = await client.request({ method: "GET", path: "x" });
    assert.equal(response.status, 502);
    assert.equal(await text(response.body), "bad gateway");
    assert.equal(origin.requests.length, 2);
  });

  test("a 500 is not retried", async (t) => {
    const origin = await Origin.start(t, (_request, response) => {
      response.statusCode = 500;
      response.end();
    });
    const { client } = makeClient(t, { baseUrl: origin.url });
    const response = await client.request({ method: "GET", path: "x" });
    response.body.resume();
    assert.equal(response.status, 500);
    assert.equal(origin.requests.length, 1);
  });

  test("connection refused: retried, then upstream_failed", async (t) => {
    const port = await freePort();
    const { client, sleeps } = makeClient(t, { baseUrl: `http://127.0.0.1:${port}/` });
    await assert.rejects(client.request({ method: "GET", path: "x" }), isKind("upstream_failed"));
    assert.deepEqual(sleeps, [200, 400]);
  });

  test("a connection closed before the headers is retried", async (t) => {
    const origin = await Origin.start(t, (request, response, index) => {
      if (index === 0) {
        request.socket.destroy();
        return;
      }
      response.end("second time lucky");
    });
    const { client, sleeps } = makeClient(t, { baseUrl: origin.url });
    const response = await client.request({ method: "GET", path: "x" });
    assert.equal(await text(response.body), "second time lucky");
    assert.equal(origin.requests.length, 2);
    assert.equal(sleeps.length, 1);
  });

  test("an upstream that breaks off mid-body is not retried: the body stream errors (upstream_failed)", async (t) => {
    const origin = await Origin.start(t, (request, response) => {
      response.writeHead(200, { "content-length": "100000" });
      response.write(Buffer.alloc(1000), () => request.socket.destroy());
    });
    const { client } = makeClient(t, { baseUrl: origin.url });
    const response = await client.request({ method: "GET", path: "x" });
    assert.equal(response.status, 200);
    await assert.rejects(text(response.body), isKind("upstream_failed"));
    assert.equal(origin.requests.length, 1);
  });

  test("the caller's abort signal stops a request and its retries", async (t) => {
    const origin = await Origin.start(t, () => {
      // never answers
    });
    const { client } = makeClient(t, { baseUrl: origin.url });
    const controller = new AbortController();
    const pending = client.request({ method: "GET", path: "x", signal: controller.signal });
    await waitFor(() => origin.requests.length === 1);
    controller.abort();
    await assert.rejects(pending, { name: "AbortError" });
  });

  test("the caller's abort signal also ends a body in progress, with the signal's reason", async (t) => {
    const origin = await Origin.start(t, (_request, response) => {
      response.writeHead(200, { "content-length": "100000" });
      response.write(Buffer.alloc(1000)); // and then nothing
    });
    const { client } = makeClient(t, { baseUrl: origin.url });
    const controller = new AbortController();
    const response = await client.request({ method: "GET", path: "x", signal: controller.signal });
    const reading = text(response.body);
    controller.abort(new Error("shutting down"));
    await assert.rejects(reading, { message: "shutting down" });
  });
});

describe("upstream client: timeouts", () => {
  test("an upstream that sends no headers in time: upstream_timeout, not retried", async (t) => {
    const origin = await Origin.start(t, () => {
      // never answers
    });
    const { client } = makeClient(t, { baseUrl: origin.url, timeoutSeconds: 1 });
    await assert.rejects(client.request({ method: "GET", path: "x" }), isKind("upstream_timeout"));
    assert.equal(origin.requests.length, 1);
  });

  test("an upstream that stalls mid-body: the body stream errors with upstream_timeout", async (t) => {
    const origin = await Origin.start(t, (_request, response) => {
      response.writeHead(200, { "content-length": "100000" });
      response.write(Buffer.alloc(1000)); // and then nothing
    });
    const { client } = makeClient(t, { baseUrl: origin.url, timeoutSeconds: 1 });
    const response = await client.request({ method: "GET", path: "x" });
    assert.equal(response.status, 200);
    await assert.rejects(text(response.body), isKind("upstream_timeout"));
  });
});

describe("upstream client: redirects", () => {
  test("a same-origin redirect keeps the basic auth and the caller's headers", async (t) => {
    const origin = await Origin.start(t, (request, response) => {
      if (request.url === "/repo/a") {
        response.writeHead(302, { location: "/repo/b" });
        response.end("moved");
        return;
      }
      response.end("here");
    });
    const { client } = makeClient(t, { baseUrl: `${origin.url}/repo`, username: "alice", password: "s3cret" });
    const response = await client.request({ method: "GET", path: "a", headers: { cookie: "c=1", accept: "x/y" } });
    assert.equal(await text(response.body), "here");
    assert.equal(response.url, `${origin.url}/repo/b`);
    assert.deepEqual(
      origin.requests.map((r) => [r.url, r.headers.authorization, r.headers.cookie, r.headers.accept]),
      [
        ["/repo/a", basic("alice", "s3cret"), "c=1", "x/y"],
        ["/repo/b", basic("alice", "s3cret"), "c=1", "x/y"],
      ],
    );
  });

  test("a redirect to another origin drops Authorization and Cookie, keeps the rest", async (t) => {
    const cdn = await Origin.start(t, (_request, response) => response.end("blob"));
    const registry = await Origin.start(t, (_request, response) => {
      response.writeHead(307, { location: `${cdn.url}/signed/blob?sig=abc` });
      response.end();
    });
    const cases: ReadonlyArray<{ options: Partial<UpstreamClientOptions>; headers: Record<string, string> }> = [
      { options: { username: "alice", password: "s3cret" }, headers: { cookie: "session=1" } },
      { options: {}, headers: { authorization: "Bearer registry-token", cookie: "session=1" } },
    ];
    for (const credentials of cases) {
      const { client } = makeClient(t, { baseUrl: registry.url, ...credentials.options });
      const response = await client.request({
        method: "GET",
        path: "v2/x/blobs/sha256:1",
        headers: { ...credentials.headers, accept: "*/*", range: "bytes=0-3" },
      });
      assert.equal(await text(response.body), "blob");
      assert.equal(response.url, `${cdn.url}/signed/blob?sig=abc`);
    }
    assert.equal(registry.requests.length, 2);
    for (const seen of registry.requests) assert.ok(seen.headers.authorization !== undefined && seen.headers.cookie === "session=1");
    assert.equal(cdn.requests.length, 2);
    for (const seen of cdn.requests) {
      assert.equal(seen.url, "/signed/blob?sig=abc");
      assert.equal(seen.headers.authorization, undefined);
      assert.equal(seen.headers.cookie, undefined);
      assert.equal(seen.headers.accept, "*/*");
      assert.equal(seen.headers.range, "bytes=0-3");
    }
  });

  test("credentials go to the base origin only: back from another origin they are sent again", async (t) => {
    let registryUrl = "";
    const other = await Origin.start(t, (_request, response) => {
      response.writeHead(302, { location: `${registryUrl}/final` });
      response.end();
    });
    const registry = await Origin.start(t, (request, response) => {
      if (request.url === "/start") {
        response.writeHead(302, { location: `${other.url}/hop` });
        response.end();
        return;
      }
      response.end("done");
    });
    registryUrl = registry.url;
    const { client } = makeClient(t, { baseUrl: registry.url, username: "u", password: "p" });
    const response = await client.request({ method: "GET", path: "start" });
    assert.equal(await text(response.body), "done");
    assert.equal(other.requests[0]?.headers.authorization, undefined);
    assert.deepEqual(
      registry.requests.map((r) => r.headers.authorization),
      [basic("u", "p"), basic("u", "p")],
    );
  });

  test("a relative Location is resolved against the current URL", async (t) => {
    const origin = await Origin.start(t, (request, response) => {
      if (request.url === "/dist/a/b.tgz") {
        response.writeHead(301, { location: "../c/d.tgz" });
        response.end();
        return;
      }
      response.end(request.url);
    });
    const { client } = makeClient(t, { baseUrl: `${origin.url}/dist` });
    const response = await client.request({ method: "GET", path: "a/b.tgz" });
    assert.equal(await text(response.body), "/dist/c/d.tgz");
    assert.equal(response.url, `${origin.url}/dist/c/d.tgz`);
  });

  test("HEAD follows redirects as HEAD", async (t) => {
    const origin = await Origin.start(t, (request, response) => {
      if (request.url === "/a") {
        response.writeHead(308, { location: "/b" });
        response.end();
        return;
      }
      response.writeHead(200, { "content-length": "42" });
      response.end();
    });
    const { client } = makeClient(t, { baseUrl: origin.url });
    const response = await client.request({ method: "HEAD", path: "a" });
    assert.equal(response.status, 200);
    assert.equal(response.headers["content-length"], "42");
    assert.deepEqual(
      origin.requests.map((r) => `${r.method} ${r.url}`),
      ["HEAD /a", "HEAD /b"],
    );
  });

  test("a redirect loop ends in upstream_failed after maxRedirects", async (t) => {
    const origin = await Origin.start(t, (_request, response) => {
      response.writeHead(302, { location: "/loop" });
      response.end();
    });
    const { client } = makeClient(t, { baseUrl: origin.url });
    await assert.rejects(client.request({ method: "GET", path: "loop" }), isKind("upstream_failed"));
    assert.equal(origin.requests.length, 6, "the first request and 5 redirects");
    assert.ok(origin.connections <= 2, "redirect bodies were drained, connections reused");
  });

  test("maxRedirects 0 returns the redirect itself", async (t) => {
    const origin = await Origin.start(t, (_request, response) => {
      response.writeHead(302, { location: "/elsewhere" });
      response.end();
    });
    const { client } = makeClient(t, { baseUrl: origin.url, maxRedirects: 0 });
    const response = await client.request({ method: "GET", path: "x" });
    response.body.resume();
    assert.equal(response.status, 302);
    assert.equal(response.headers.location, "/elsewhere");
  });

  test("a redirect to a scheme other than http or https is refused", async (t) => {
    const origin = await Origin.start(t, (_request, response) => {
      response.writeHead(302, { location: "file:///etc/passwd" });
      response.end();
    });
    const { client } = makeClient(t, { baseUrl: origin.url });
    await assert.rejects(client.request({ method: "GET", path: "x" }), isKind("upstream_failed"));
  });
});

describe("upstream client: no path reaches another host", () => {
  for (const path of ["../x", "a/../../x", "%2e%2e/x", "a/%2E%2E/b", "a%2fb", "//evil.example/x", "a\\b", "@evil.example/x", "http://evil.example/", "a/b%00"]) {
    test(`refuses ${JSON.stringify(path)} with bad_request before any request`, async (t) => {
      const origin = await Origin.start(t, (_request, response) => response.end());
      const { client } = makeClient(t, { baseUrl: `${origin.url}/dist` });
      await assert.rejects(client.request({ method: "GET", path }), isKind("bad_request"));
      assert.equal(origin.requests.length, 0);
    });
  }
});

/** A forward proxy for plain http: records the absolute-form request target and relays. */
async function startForwardProxy(t: TestContext): Promise<{ url: string; targets: string[] }> {
  const targets: string[] = [];
  const proxy = await Origin.start(t, (request, response) => {
    targets.push(request.url ?? "");
    const upstream = httpRequest(request.url ?? "", { method: request.method, headers: request.headers }, (answer) => {
      response.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(response);
    });
    upstream.on("error", () => response.destroy());
    request.pipe(upstream);
  });
  return { url: proxy.url, targets };
}

describe("upstream client: proxies from the environment", () => {
  test("HTTP_PROXY is honoured", async (t) => {
    const origin = await Origin.start(t, (_request, response) => response.end("via proxy"));
    const proxy = await startForwardProxy(t);
    const { client } = makeClient(t, { baseUrl: `${origin.url}/dist` }, { env: { HTTP_PROXY: proxy.url } });
    const response = await client.request({ method: "GET", path: "a/b.tgz" });
    assert.equal(await text(response.body), "via proxy");
    assert.deepEqual(proxy.targets, [`${origin.url}/dist/a/b.tgz`]);
    assert.equal(origin.requests.length, 1);
  });

  test("NO_PROXY bypasses it", async (t) => {
    const origin = await Origin.start(t, (_request, response) => response.end("direct"));
    const proxy = await startForwardProxy(t);
    const { client } = makeClient(t, { baseUrl: origin.url }, { env: { HTTP_PROXY: proxy.url, NO_PROXY: "localhost,127.0.0.1" } });
    const response = await client.request({ method: "GET", path: "x" });
    assert.equal(await text(response.body), "direct");
    assert.deepEqual(proxy.targets, []);
    assert.equal(origin.requests.length, 1);
  });

  test("the real environment is read at construction", async (t) => {
    const origin = await Origin.start(t, (_request, response) => response.end("ok"));
    const proxy = await startForwardProxy(t);
    const saved = { http_proxy: process.env.http_proxy, HTTP_PROXY: process.env.HTTP_PROXY, no_proxy: process.env.no_proxy, NO_PROXY: process.env.NO_PROXY };
    let client: UpstreamClient;
    try {
      delete process.env.http_proxy;
      delete process.env.no_proxy;
      delete process.env.NO_PROXY;
      process.env.HTTP_PROXY = proxy.url;
      client = makeClient(t, { baseUrl: origin.url }, { env: undefined }).client;
    } finally {
      for (const [name, value] of Object.entries(saved)) {
        if (value === undefined) delete process.env[name];
        else process.env[name] = value;
      }
    }
    const response = await client.request({ method: "GET", path: "x" });
    assert.equal(await text(response.body), "ok");
    assert.deepEqual(proxy.targets, [`${origin.url}/x`]);
  });
});

/** Polls a condition on the event loop (no fixed sleeps). */
async function waitFor(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((resolve) => setImmediate(resolve));
}
