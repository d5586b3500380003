import { after, afterEach, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { Readable } from "node:stream";
import { setImmediate as nextTurn } from "node:timers/promises";
import {
  AuthError,
  NotFoundError,
  NotSupportedError,
  RateLimitedError,
  RestStore,
  RestStoreError,
  VaultConnectionError,
  VaultHttpError,
  type RestStoreOptions,
  type RetryClock,
} from "../../src/client/index.js";

/** What the server does with one request. */
type Behaviour =
  | "drop" // destroy the connection without an answer
  | "hang" // never answer
  | { status: number; headers?: Record<string, string>; body?: string | Buffer; truncateAt?: number };

interface SeenRequest {
  readonly method: string;
  readonly url: string;
  readonly headers: IncomingHttpHeaders;
  readonly body: Buffer;
}

const envelope = (status: number, message: string) => JSON.stringify({ error: { code: String(status), message } });

/**
 * A small HTTP server on port 0 that misbehaves to a script: behaviours are used in order,
 * the last one repeats. It records every request and counts connections.
 */
class MisbehavingServer {
  readonly requests: SeenRequest[] = [];
  connections = 0;
  private script: Behaviour[] = [];
  private readonly sockets = new Set<Socket>();
  private readonly server: Server;
  url = "";

  constructor() {
    this.server = createServer((request, response) => {
      const behaviour = this.script[Math.min(this.requests.length, this.script.length - 1)] ?? { status: 500 };
      const chunks: Buffer[] = [];
      const seen = { method: request.method ?? "", url: request.url ?? "", headers: request.headers };
      if (behaviour === "drop") {
        this.requests.push({ ...seen, body: Buffer.alloc(0) });
        request.socket.destroy();
        return;
      }
      request.on("data", (chunk: Buffer) => chunks.push(chunk));
      request.on("end", () => {
        this.requests.push({ ...seen, body: Buffer.concat(chunks) });
        if (behaviour === "hang") return;
        const body = behaviour.body ?? (behaviour.status >= 400 ? envelope(behaviour.status, `scripted ${behaviour.status}`) : "");
        const bytes = typeof body === "string" ? Buffer.from(body) : body;
        response.writeHead(behaviour.status, {
          "content-type": "application/json",
          "content-length": String(bytes.length),
          ...behaviour.headers,
        });
        if (behaviour.truncateAt !== undefined) {
          response.write(bytes.subarray(0, behaviour.truncateAt), () => response.socket?.destroy());
        } else {
          response.end(request.method === "HEAD" ? undefined : bytes);
        }
      });
    });
    this.server.on("connection", (socket: Socket) => {
      this.connections++;
      this.sockets.add(socket);
      socket.once("close", () => this.sockets.delete(socket));
    });
  }

  async start(port = 0): Promise<this> {
    await new Promise<void>((resolve, reject) => {
      this.server.once("error", reject);
      this.server.listen(port, "127.0.0.1", () => resolve());
    });
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  /** Replaces the script and forgets earlier requests. */
  play(...script: Behaviour[]): this {
    this.script = script;
    this.requests.length = 0;
    this.connections = 0;
    return this;
  }

  async stop(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    if (this.server.listening) await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/** Sleeps return at once and are recorded; the clock moves only by what was slept. */
function recordingClock(random = 0.5): RetryClock & { delays: number[] } {
  let now = Date.UTC(2025, 5, 1, 12, 0, 0);
  const delays: number[] = [];
  return {
    delays,
    now: () => now,
    random: () => random,
    sleep: async (ms, signal) => {
      signal?.throwIfAborted();
      delays.push(ms);
      now += ms;
    },
  };
}

const ok = (body: unknown = {}): Behaviour => ({ status: 200, body: JSON.stringify(body) });
const putOk = (key: string, size: number): Behaviour => ok({ key, size, created_at: "2025-06-01T12:00:00.000Z" });

async function freePort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, "127.0.0.1", () => resolve()));
  const { port } = probe.address() as AddressInfo;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return port;
}

describe("RestStore retries against a misbehaving server", () => {
  const server = new MisbehavingServer();
  let clock: ReturnType<typeof recordingClock>;
  const opened: RestStore[] = [];
  const client = (options: Partial<RestStoreOptions> = {}): RestStore => {
    const store = RestStore.create({ baseUrl: server.url, apiKey: "secret", clock, ...options });
    opened.push(store);
    return store;
  };

  before(async () => {
    await server.start();
  });
  after(async () => server.stop());
  afterEach(async () => {
    await Promise.all(opened.splice(0).map((store) => store.close()));
  });
  const fresh = () => (clock = recordingClock());

  test("503 then 200: one retry after retryDelay", async () => {
    fresh();
    server.play({ status: 503 }, { status: 200, body: "payload" });
    assert.equal(Buffer.from(await client().get("k")).toString(), "payload");
    assert.equal(server.requests.length, 2);
    assert.deepEqual(clock.delays, [1000]);
    assert.equal(server.requests[0]!.headers.authorization, "Bearer secret");
  });

  test("a 503 with Retry-After waits what the server asks", async () => {
    fresh();
    server.play({ status: 503, headers: { "retry-after": "7" } }, { status: 200, body: "back" });
    assert.equal(Buffer.from(await client().get("k")).toString(), "back");
    assert.deepEqual(clock.delays, [7000]);
  });

  test("503 every time: VaultHttpError after maxRetries attempts in total, delays doubling", async () => {
    fresh();
    server.play({ status: 503, body: envelope(503, "the server is shutting down") });
    await assert.rejects(client().get("k"), (error) => {
      assert.ok(error instanceof VaultHttpError);
      assert.equal(error.status, 503);
      assert.equal(error.attempts, 3);
      assert.match(error.message, /the server is shutting down.*after 3 attempts/);
      return true;
    });
    assert.equal(server.requests.length, 3);
    assert.deepEqual(clock.delays, [1000, 2000]);
  });

  test("retryDelay and maxRetries are honoured; jitter stays within ±20%", async () => {
    fresh();
    server.play({ status: 502 });
    await assert.rejects(client({ maxRetries: 5, retryDelay: 0.25 }).get("k"), VaultHttpError);
    assert.equal(server.requests.length, 5);
    assert.deepEqual(clock.delays, [250, 500, 1000, 2000]);

    for (const [random, expected] of [
      [0, [800, 1600]],
      [0.999999, [1200, 2400]],
    ] as const) {
      clock = recordingClock(random);
      server.play({ status: 504 });
      await assert.rejects(client().get("k"), VaultHttpError);
      assert.deepEqual(clock.delays, expected);
    }
  });

  test("429 with Retry-After: 1 waits one second each time, then RateLimitedError with retryAfter", async () => {
    fresh();
    server.play({ status: 429, headers: { "retry-after": "1" }, body: envelope(429, "rate limit exceeded: 2 requests per minute") });
    await assert.rejects(client().put("k", "v"), (error) => {
      assert.ok(error instanceof RateLimitedError);
      assert.equal(error.retryAfter, 1);
      assert.equal(error.attempts, 3);
      assert.match(error.message, /rate limit exceeded/);
      return true;
    });
    assert.equal(server.requests.length, 3);
    assert.deepEqual(clock.delays, [1000, 1000]);
  });

  test("429 with an HTTP-date Retry-After waits until that date; then 200", async () => {
    fresh();
    const at = new Date(clock.now() + 5000).toUTCString();
    server.play({ status: 429, headers: { "retry-after": at } }, putOk("k", 1));
    const result = await client().put("k", "v");
    assert.equal(result.size, 1);
    assert.deepEqual(clock.delays, [5000]);
  });

  test("a Retry-After past maxRetryTime is not waited for", async () => {
    fresh();
    server.play({ status: 429, headers: { "retry-after": "3600" } });
    await assert.rejects(client({ maxRetryTime: 60 }).get("k"), (error) => {
      assert.ok(error instanceof RateLimitedError);
      assert.equal(error.retryAfter, 3600);
      assert.equal(error.attempts, 1);
      return true;
    });
    assert.equal(server.requests.length, 1);
    assert.deepEqual(clock.delays, []);
  });

  test("400, 401, 403, 404, 409, 413 and 500 are never retried", async () => {
    const cases: [number, new (...args: never[]) => Error][] = [
      [400, VaultHttpError],
      [401, AuthError],
      [403, AuthError],
      [404, NotFoundError],
      [409, VaultHttpError],
      [413, VaultHttpError],
      [500, VaultHttpError],
    ];
    for (const [status, type] of cases) {
      fresh();
      server.play({ status, body: envelope(status, `scripted failure ${status}`) });
      await assert.rejects(client().put("k", "v"), (error) => {
        assert.ok(error instanceof type, `${status}: ${String(error)}`);
        assert.equal((error as RestStoreError).status, status);
        assert.match(error.message, new RegExp(`scripted failure ${status}`));
        return true;
      });
      assert.equal(server.requests.length, 1, `${status} is sent once`);
      assert.deepEqual(clock.delays, []);
    }
  });

  test("exists() on 404 makes exactly one request and answers false", async () => {
    fresh();
    server.play({ status: 404 });
    assert.equal(await client().exists("k"), false);
    assert.equal(server.requests.length, 1);
    assert.equal(server.requests[0]!.method, "HEAD");
    server.play({ status: 200 });
    assert.equal(await client().exists("k"), true);
  });

  test("dropped connections are retried: drop, drop, 200", async () => {
    fresh();
    server.play("drop", "drop", { status: 200, body: "third time lucky" });
    assert.equal(Buffer.from(await client().get("k")).toString(), "third time lucky");
    assert.equal(server.requests.length, 3);
    assert.deepEqual(clock.delays, [1000, 2000]);
  });

  test("a connection dropped every time: VaultConnectionError after maxRetries attempts", async () => {
    fresh();
    server.play("drop");
    await assert.rejects(client().stat("k"), (error) => {
      assert.ok(error instanceof VaultConnectionError, String(error));
      assert.equal(error.attempts, 3);
      assert.equal(error.timedOut, false);
      assert.ok(error.cause instanceof Error);
      return true;
    });
    assert.equal(server.requests.length, 3);
  });

  test("connection refused is retried, then VaultConnectionError", async () => {
    fresh();
    const port = await freePort();
    const store = RestStore.create({ baseUrl: `http://127.0.0.1:${port}`, apiKey: "secret", clock });
    opened.push(store);
    await assert.rejects(store.get("k"), (error) => {
      assert.ok(error instanceof VaultConnectionError, String(error));
      assert.equal(error.attempts, 3);
      return true;
    });
    assert.deepEqual(clock.delays, [1000, 2000]);
  });

  test("put replays a body in memory: both attempts carry the whole body and its sha256", async () => {
    fresh();
    const body = Buffer.alloc(3 * 1024 * 1024 + 5, 7);
    server.play({ status: 503 }, putOk("k", body.length));
    const result = await client().put("k", body, { contentType: "application/x-thing" });
    assert.equal(result.size, body.length);
    assert.equal(server.requests.length, 2);
    const digest = createHash("sha256").update(body).digest("hex");
    for (const request of server.requests) {
      assert.equal(request.method, "PUT");
      assert.deepEqual(request.body, body);
      assert.equal(request.headers["x-checksum-sha256"], digest);
      assert.equal(request.headers["content-type"], "application/x-thing");
      assert.equal(request.headers["content-length"], String(body.length));
    }
  });

  test("putStream of bytes is replayed too, progress restarting per attempt", async () => {
    fresh();
    const body = Buffer.alloc(2 * 1024 * 1024, 1);
    server.play("drop", putOk("k", body.length));
    const seen: number[] = [];
    await client().putStream("k", body, { onProgress: ({ bytes }) => seen.push(bytes) });
    assert.equal(server.requests.length, 2);
    assert.deepEqual(server.requests[1]!.body, body);
    assert.equal(seen.at(-1), body.length);
  });

  test("a stream that has been read from is never retried, and is destroyed on failure", async () => {
    for (const behaviour of [{ status: 503 }, "drop"] as const) {
      fresh();
      server.play(behaviour, putOk("k", 1));
      const source = Readable.from([Buffer.alloc(1024, 1), Buffer.alloc(1024, 2)]);
      await assert.rejects(client().putStream("k", source, { size: 2048 }), (error) => {
        assert.ok(behaviour === "drop" ? error instanceof VaultConnectionError : error instanceof VaultHttpError, String(error));
        assert.equal((error as RestStoreError).attempts, 1);
        return true;
      });
      assert.equal(server.requests.length, 1, `${JSON.stringify(behaviour)}: one request`);
      assert.deepEqual(clock.delays, []);
      assert.ok(source.destroyed, "the source is released");
    }
  });

  test("a stream not yet read from is retried: connection refused, then the server comes up", async () => {
    const port = await freePort();
    const late = new MisbehavingServer().play(putOk("k", 2048));
    const delays: number[] = [];
    const store = RestStore.create({
      baseUrl: `http://127.0.0.1:${port}`,
      apiKey: "secret",
      clock: {
        now: () => 0,
        random: () => 0.5,
        sleep: async (ms) => {
          delays.push(ms);
          await late.start(port);
        },
      },
    });
    try {
      const pulled: number[] = [];
      const source = (async function* () {
        for (const fill of [1, 2]) {
          pulled.push(fill);
          yield Buffer.alloc(1024, fill);
        }
      })();
      const result = await store.putStream("k", source, { size: 2048 });
      assert.equal(result.size, 2048);
      assert.deepEqual(delays, [1000]);
      assert.deepEqual(pulled, [1, 2], "the source was read once");
      assert.equal(late.requests.length, 1);
      assert.equal(late.requests[0]!.body.length, 2048);
    } finally {
      await store.close();
      await late.stop();
    }
  });

  test("delete cut off after it may have reached the server: a 404 on the retry counts as deleted", async () => {
    fresh();
    server.play("drop", { status: 404 });
    await client().delete("k");
    assert.equal(server.requests.length, 2);

    fresh();
    server.play({ status: 503 }, { status: 404 });
    await assert.rejects(client().delete("k"), NotFoundError, "a 503 was not acted on: the 404 stands");

    fresh();
    server.play({ status: 404 });
    await assert.rejects(client().delete("k"), NotFoundError);
    server.play({ status: 204 });
    await client().delete("k");
  });

  test("NotSupportedError when the server cannot list (501)", async () => {
    fresh();
    server.play({ status: 501, body: envelope(501, "this store cannot list") });
    await assert.rejects(client().list({ prefix: "x/" }), (error) => {
      assert.ok(error instanceof NotSupportedError);
      assert.equal(error.status, 501);
      assert.match(error.message, /cannot list/);
      return true;
    });
    const iterator = client().keys();
    await assert.rejects(iterator.next(), NotSupportedError);
    assert.equal(server.requests.length, 2, "501 is not retried");
    assert.equal(server.requests[0]!.url, "/objects?prefix=x%2F");
  });

  test("list sends prefix, limit and cursor encoded; keys() follows next_cursor", async () => {
    fresh();
    server.play(
      ok({ keys: ["a b", "a+c"], next_cursor: "c1+/=", has_more: true }),
      ok({ keys: ["a😀"], next_cursor: null, has_more: false }),
    );
    const keys: string[] = [];
    for await (const key of client().keys({ prefix: "a &+", pageSize: 2 })) keys.push(key);
    assert.deepEqual(keys, ["a b", "a+c", "a😀"]);
    assert.deepEqual(
      server.requests.map((r) => r.url),
      ["/objects?prefix=a%20%26%2B&limit=2", "/objects?prefix=a%20%26%2B&limit=2&cursor=c1%2B%2F%3D"],
    );
  });

  test("keys() refuses a server that returns the same cursor forever", async () => {
    fresh();
    server.play(ok({ keys: ["a"], next_cursor: "same", has_more: true }));
    await assert.rejects(
      (async () => {
        for await (const _ of client().keys()) {
          // drain
        }
      })(),
      /same cursor/,
    );
    assert.equal(server.requests.length, 2);
  });

  test("error bodies that are not the envelope still give a useful error", async () => {
    fresh();
    server.play({ status: 400, body: "<html><body>nginx</body></html>", headers: { "content-type": "text/html" } });
    await assert.rejects(client().get("k"), (error) => error instanceof VaultHttpError && /HTTP 400/.test(error.message));
    server.play({ status: 400, body: '{"detail":"Invalid key"}' });
    await assert.rejects(client().get("k"), /Invalid key/);
    server.play({ status: 401, body: "" });
    await assert.rejects(client().stat("k"), (error) => error instanceof AuthError && /unauthenticated/.test(error.message));
  });

  test("a response that breaks off mid-body fails; it never ends short", async () => {
    fresh();
    server.play({ status: 200, body: Buffer.alloc(100_000, 3), truncateAt: 40_000 });
    await assert.rejects(client().get("k"), VaultConnectionError);
    assert.equal(server.requests.length, 1, "a body already under way is not retried");

    const stream = await client().getStream("k");
    let received = 0;
    await assert.rejects(
      (async () => {
        for await (const chunk of stream) received += (chunk as Buffer).byteLength;
      })(),
      VaultConnectionError,
    );
    assert.ok(received < 100_000);
  });

  test("keep-alive: sequential calls reuse pooled connections", async () => {
    fresh();
    server.play({ status: 200, body: "x" });
    const store = client();
    for (let i = 0; i < 40; i++) {
      if (i % 2 === 0) await store.get(`k${i}`);
      else await store.exists(`k${i}`);
    }
    assert.equal(server.requests.length, 40);
    // undici's pool may open a second socket when a call follows the previous one within the
    // same tick, but sockets are kept alive and reused, never one per request.
    assert.ok(server.connections <= 4, `${server.connections} connections for 40 requests`);
  });

  test("keys are sent percent-encoded per segment", async () => {
    fresh();
    server.play({ status: 200, body: "x" });
    await client().get("a b/c%#?+ 😀/../!'()*");
    assert.equal(server.requests[0]!.url, "/objects/a%20b/c%25%23%3F%2B%20%F0%9F%98%80/%2E%2E/%21%27%28%29%2A");
    await client({ baseUrl: `${server.url}/vault/` }).get("k");
    assert.equal(server.requests[1]!.url, "/vault/objects/k", "a base path is kept");
  });

  test("an abort during the backoff wait rejects at once", async () => {
    server.play({ status: 503 });
    const controller = new AbortController();
    const store = client({
      clock: {
        now: () => 0,
        random: () => 0.5,
        sleep: (_ms, signal) =>
          new Promise((_resolve, reject) => {
            signal?.addEventListener("abort", () => reject(signal.reason as Error), { once: true });
            controller.abort();
          }),
      },
    });
    await assert.rejects(store.get("k", { signal: controller.signal }), { name: "AbortError" });
    assert.equal(server.requests.length, 1);
  });

  test("timeout: a server that never answers fails with a timed-out VaultConnectionError", async () => {
    fresh();
    server.play("hang");
    await assert.rejects(client({ timeout: 0.3, maxRetries: 2 }).get("k"), (error) => {
      assert.ok(error instanceof VaultConnectionError, String(error));
      assert.equal(error.timedOut, true);
      assert.equal(error.attempts, 2);
      return true;
    });
    assert.equal(server.requests.length, 2);
    assert.deepEqual(clock.delays, [1000]);
  });
});

describe("RestStore retries with the default clock under mock.timers", () => {
  const server = new MisbehavingServer();
  before(async () => {
    await server.start();
  });
  after(async () => server.stop());

  test("429 Retry-After: 1 — the retry is sent only when one second has passed on setTimeout", async (t) => {
    server.play({ status: 429, headers: { "retry-after": "1" } }, { status: 200, body: "after the wait" });
    t.mock.timers.enable({ apis: ["setTimeout"] });
    const checks: number[] = [];
    const store = RestStore.create({
      baseUrl: server.url,
      apiKey: "secret",
      onRetry: ({ delayMs }) => {
        void (async () => {
          await nextTurn();
          t.mock.timers.tick(delayMs - 1);
          await nextTurn();
          checks.push(server.requests.length);
          t.mock.timers.tick(1);
        })();
      },
    });
    try {
      assert.equal(Buffer.from(await store.get("k")).toString(), "after the wait");
      assert.deepEqual(checks, [1], "no second request before the full second");
      assert.equal(server.requests.length, 2);
    } finally {
      t.mock.timers.reset();
      await store.close();
    }
  });
});
