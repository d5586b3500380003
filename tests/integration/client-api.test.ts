import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { Readable, Writable } from "node:stream";
import {
  AuthError,
  NotFoundError,
  PreconditionFailedError,
  RateLimitedError,
  RestStore,
  RestStoreError,
  VaultHttpError,
  type Progress,
} from "../../src/client/index.js";
import { startTestVault, type TestVault } from "../support/test-vault.js";

/** Keys that break naive clients: every one must round-trip through put, get and keys. */
const HARD_KEYS = [
  "hard/with space",
  "hard/100%",
  "hard/100%25",
  "hard/a#fragment",
  "hard/q?x=1&y=2",
  "hard/a+b",
  "hard/plus+/and space/",
  "hard/ünïcödé/日本語",
  "hard/emoji 😀🎉",
  "hard/../up",
  "hard/./dot",
  "hard/a//double",
  "hard/%2F%252F",
  "hard/!'()*~",
  "hard/quote\"back\\slash",
  "hard/new\nline\ttab",
  "test_special/characters !@#$%^&*()_+",
  "/leading-slash",
  "..",
];

/** UTF-8 byte order, the order the server lists in. */
function utf8Sort(keys: readonly string[]): string[] {
  return [...keys].sort((a, b) => Buffer.compare(Buffer.from(a, "utf8"), Buffer.from(b, "utf8")));
}

async function collect(iterable: AsyncIterable<string>): Promise<string[]> {
  const out: string[] = [];
  for await (const item of iterable) out.push(item);
  return out;
}

describe("RestStore against the real server", () => {
  let vault: TestVault;
  let store: RestStore;
  const client = (token: string, options: { maxRetries?: number } = {}) =>
    RestStore.create({ baseUrl: vault.url, apiKey: token, ...options });

  before(async () => {
    vault = await startTestVault({
      tokens: [
        { name: "all", scopes: ["read", "write", "delete"] },
        { name: "reader", scopes: ["read"] },
        { name: "expired", scopes: ["read", "write", "delete"], expiresInMs: -1000 },
      ],
      extraYaml: "max_object_size: 16MiB\nrate_limit: {enabled: false}",
    });
    store = client(vault.tokens["all"]!);
  });
  after(async () => {
    await store.close();
    await vault.close();
  });

  test("put, get, exists, stat, delete", async () => {
    const created = await store.put("docs/readme.txt", "hello world", { contentType: "text/plain; charset=utf-8" });
    assert.equal(created.key, "docs/readme.txt");
    assert.equal(created.size, 11);
    assert.ok(created.createdAt instanceof Date && !Number.isNaN(created.createdAt.getTime()));

    assert.equal(Buffer.from(await store.get("docs/readme.txt")).toString(), "hello world");
    assert.equal(await store.exists("docs/readme.txt"), true);

    const info = await store.stat("docs/readme.txt");
    assert.equal(info.key, "docs/readme.txt");
    assert.equal(info.size, 11);
    assert.equal(info.contentType, "text/plain; charset=utf-8");
    assert.equal(info.etag, `"${createHash("sha256").update("hello world").digest("hex")}"`);
    assert.ok(Math.abs(info.lastModified.getTime() - created.createdAt.getTime()) < 2000);

    await store.delete("docs/readme.txt");
    assert.equal(await store.exists("docs/readme.txt"), false);
  });

  test("binary bytes, an empty object and an overwrite round-trip", async () => {
    const bytes = randomBytes(256 * 1024);
    await store.put("bin/random", bytes);
    assert.deepEqual(Buffer.from(await store.get("bin/random")), bytes);
    assert.equal((await store.stat("bin/random")).contentType, "application/octet-stream");
    await store.put("bin/random", new Uint8Array([1, 2, 3]));
    assert.deepEqual([...(await store.get("bin/random"))], [1, 2, 3]);
    const empty = await store.put("bin/empty", new Uint8Array(0));
    assert.equal(empty.size, 0);
    assert.equal((await store.get("bin/empty")).byteLength, 0);
  });

  test("ifNoneMatch '*' creates only: PreconditionFailedError when the key exists", async () => {
    await store.put("cond/once", "first", { ifNoneMatch: "*" });
    await assert.rejects(store.put("cond/once", "second", { ifNoneMatch: "*" }), (error) => {
      assert.ok(error instanceof PreconditionFailedError);
      assert.ok(error instanceof VaultHttpError);
      assert.equal(error.status, 412);
      return true;
    });
    const { etag } = await store.stat("cond/once");
    await store.put("cond/once", "third", { ifMatch: etag });
    await assert.rejects(store.put("cond/once", "fourth", { ifMatch: etag }), PreconditionFailedError);
    assert.equal(Buffer.from(await store.get("cond/once")).toString(), "third");
  });

  test("list pages and keys() with a prefix", async () => {
    for (const key of ["ls/b", "ls/a", "ls/c/d", "lsx/other"]) await store.put(key, key);
    const page = await store.list({ prefix: "ls/", limit: 2 });
    assert.deepEqual(page.keys, ["ls/a", "ls/b"]);
    assert.equal(page.hasMore, true);
    assert.equal(typeof page.nextCursor, "string");
    const rest = await store.list({ prefix: "ls/", limit: 2, cursor: page.nextCursor ?? undefined });
    assert.deepEqual(rest, { keys: ["ls/c/d"], nextCursor: null, hasMore: false });
    assert.deepEqual(await collect(store.keys({ prefix: "ls/" })), ["ls/a", "ls/b", "ls/c/d"]);
    assert.deepEqual(await collect(store.keys({ prefix: "no-such-prefix/" })), []);
  });

  test("hard keys round-trip through put, get, exists, stat, keys and delete", async () => {
    await Promise.all(HARD_KEYS.map((key) => store.put(key, `value of ${key}`)));
    for (const key of HARD_KEYS) {
      assert.equal(Buffer.from(await store.get(key)).toString(), `value of ${key}`, JSON.stringify(key));
      assert.equal(await store.exists(key), true, JSON.stringify(key));
      assert.equal((await store.stat(key)).size, Buffer.byteLength(`value of ${key}`));
    }
    const listed = await collect(store.keys());
    const hard = listed.filter((key) => HARD_KEYS.includes(key));
    assert.deepEqual(hard, utf8Sort(HARD_KEYS), "every hard key listed once, in UTF-8 byte order");
    assert.deepEqual(await collect(store.keys({ prefix: "hard/plus+/and space" })), ["hard/plus+/and space/"]);
    assert.deepEqual(await collect(store.keys({ prefix: "hard/emoji 😀" })), ["hard/emoji 😀🎉"]);
    assert.deepEqual(await collect(store.keys({ prefix: "hard/100%" })), ["hard/100%", "hard/100%25"]);
    for (const key of HARD_KEYS) await store.delete(key);
    for (const key of HARD_KEYS) assert.equal(await store.exists(key), false, JSON.stringify(key));
  });

  test("keys() pages through 2,500 keys created by concurrent puts", async () => {
    const keys = Array.from({ length: 2500 }, (_, i) => `page/${String(i).padStart(5, "0")}`);
    await Promise.all(keys.map((key) => store.put(key, key)));
    const listed = await collect(store.keys({ prefix: "page/", pageSize: 100 }));
    assert.equal(listed.length, 2500);
    assert.deepEqual(listed, keys);
    assert.deepEqual(await collect(store.keys({ prefix: "page/" })), keys, "the default page size (1000) too");

    const first = await store.list({ prefix: "page/", limit: 1000 });
    const second = await store.list({ prefix: "page/", limit: 1000, cursor: first.nextCursor ?? undefined });
    const third = await store.list({ prefix: "page/", limit: 1000, cursor: second.nextCursor ?? undefined });
    assert.deepEqual([first.keys.length, second.keys.length, third.keys.length], [1000, 1000, 500]);
    assert.deepEqual([first.hasMore, second.hasMore, third.hasMore], [true, true, false]);
    assert.equal(third.nextCursor, null);
  });

  test("breaking out of keys() early stops fetching pages", async () => {
    const seen: string[] = [];
    for await (const key of store.keys({ prefix: "page/", pageSize: 10 })) {
      seen.push(key);
      if (seen.length === 15) break;
    }
    assert.equal(seen.length, 15);
    assert.equal(seen[14], "page/00014");
  });

  test("NotFoundError from get, stat, delete and getStream; exists answers false", async () => {
    for (const call of [
      () => store.get("missing/key"),
      () => store.stat("missing/key"),
      () => store.delete("missing/key"),
      () => store.getStream("missing/key"),
    ]) {
      await assert.rejects(call(), (error) => {
        assert.ok(error instanceof NotFoundError, String(error));
        assert.ok(error instanceof RestStoreError);
        assert.equal(error.key, "missing/key");
        assert.equal(error.status, 404);
        assert.equal(error.attempts, 1);
        return true;
      });
    }
    assert.equal(await store.exists("missing/key"), false);
  });

  test("AuthError: 401 for an unknown or expired token, 403 for a missing scope, with the server's message", async () => {
    await using unknown = client("not-a-real-token");
    await assert.rejects(unknown.get("anything"), (error) => {
      assert.ok(error instanceof AuthError);
      assert.equal(error.status, 401);
      assert.match(error.message, /invalid or unknown token/);
      return true;
    });
    await assert.rejects(unknown.exists("anything"), (error) => error instanceof AuthError && error.status === 401);

    await using expired = client(vault.tokens["expired"]!);
    await assert.rejects(expired.list(), (error) => {
      assert.ok(error instanceof AuthError);
      assert.match(error.message, /expired/);
      return true;
    });

    await using reader = client(vault.tokens["reader"]!);
    await store.put("auth/readable", "x");
    assert.equal(Buffer.from(await reader.get("auth/readable")).toString(), "x");
    await assert.rejects(reader.put("auth/readable", "y"), (error) => {
      assert.ok(error instanceof AuthError);
      assert.equal(error.status, 403);
      assert.match(error.message, /'write' scope/);
      return true;
    });
    await assert.rejects(reader.delete("auth/readable"), (error) => {
      assert.ok(error instanceof AuthError);
      assert.match(error.message, /'delete' scope/);
      return true;
    });
  });

  test("VaultHttpError for other 4xx: too large, a bad key, a bad page size", async () => {
    await assert.rejects(store.put("big/one", new Uint8Array(17 * 1024 * 1024)), (error) => {
      assert.ok(error instanceof VaultHttpError);
      assert.equal(error.status, 413);
      assert.equal(error.code, "413");
      assert.match(error.message, /maximum object size/);
      return true;
    });
    assert.equal(await store.exists("big/one"), false);
    const unsized = (async function* () {
      for (let i = 0; i < 17; i++) yield Buffer.alloc(1024 * 1024, i);
    })();
    await assert.rejects(store.putStream("big/stream", unsized), (error) => {
      assert.ok(error instanceof VaultHttpError, `the server's 413 arrives, not a broken pipe: ${String(error)}`);
      assert.equal(error.status, 413);
      return true;
    });
    assert.equal(await store.exists("big/stream"), false);
    await assert.rejects(store.put("nul\0key", "x"), (error) => error instanceof VaultHttpError && error.status === 400);
    await assert.rejects(store.put("k".repeat(1025), "x"), (error) => error instanceof VaultHttpError && error.status === 400);
    await assert.rejects(store.list({ limit: 5000 }), (error) => error instanceof VaultHttpError && error.status === 400);
    await assert.rejects(store.list({ cursor: "!!not-a-cursor!!" }), (error) => error instanceof VaultHttpError && error.status === 400);
    await assert.rejects(store.get(""), TypeError, "an empty key would address the listing");
  });

  test("putStream and getStream with progress; download into a Writable", async () => {
    const chunks = Array.from({ length: 5 }, (_, i) => Buffer.alloc(300 * 1024, i + 1));
    const expected = Buffer.concat(chunks);
    const uploadProgress: Progress[] = [];
    const created = await store.putStream("stream/small", Readable.from(chunks), {
      size: expected.length,
      contentType: "application/x-test",
      onProgress: (progress) => uploadProgress.push(progress),
    });
    assert.equal(created.size, expected.length);
    assert.deepEqual(uploadProgress.at(-1), { bytes: expected.length, total: expected.length });

    const unsized = await store.putStream(
      "stream/chunked",
      (async function* () {
        yield* chunks;
      })(),
    );
    assert.equal(unsized.size, expected.length, "no size: sent chunked");

    const downloadProgress: Progress[] = [];
    const stream = await store.getStream("stream/small", { onProgress: (progress) => downloadProgress.push(progress) });
    const received: Buffer[] = [];
    for await (const chunk of stream) received.push(chunk as Buffer);
    assert.deepEqual(Buffer.concat(received), expected);
    assert.deepEqual(downloadProgress.at(-1), { bytes: expected.length, total: expected.length });
    assert.ok(downloadProgress.every((p, i) => i === 0 || p.bytes > downloadProgress[i - 1]!.bytes));

    const sink: Buffer[] = [];
    const stat = await store.download(
      "stream/chunked",
      new Writable({
        write(chunk: Buffer, _encoding, callback) {
          sink.push(chunk);
          callback();
        },
      }),
    );
    assert.deepEqual(Buffer.concat(sink), expected);
    assert.equal(stat.size, expected.length);
    assert.equal(stat.etag, `"${createHash("sha256").update(expected).digest("hex")}"`);

    const fromBytes = await store.putStream("stream/bytes", expected.subarray(0, 1000));
    assert.equal(fromBytes.size, 1000);
  });

  test("a source that fails mid-upload rejects with its own error and stores nothing", async () => {
    const broken = (async function* () {
      yield Buffer.alloc(64 * 1024, 1);
      throw new Error("disk on fire");
    })();
    await assert.rejects(store.putStream("stream/broken", broken), /disk on fire/);
    assert.equal(await store.exists("stream/broken"), false);
  });

  test("AbortSignal: an aborted call rejects with the reason; an aborted download destroys its stream", async () => {
    await assert.rejects(store.get("docs/anything", { signal: AbortSignal.abort() }), { name: "AbortError" });
    await assert.rejects(store.keys({ signal: AbortSignal.abort() }).next(), { name: "AbortError" });
    await assert.rejects(store.put("abort/x", "x", { signal: AbortSignal.abort() }), { name: "AbortError" });
    assert.equal(await store.exists("abort/x"), false);

    await store.put("abort/big", new Uint8Array(8 * 1024 * 1024));
    const controller = new AbortController();
    const stream = await store.getStream("abort/big", { signal: controller.signal });
    let received = 0;
    await assert.rejects(
      (async () => {
        for await (const chunk of stream) {
          received += (chunk as Buffer).byteLength;
          controller.abort();
        }
      })(),
      { name: "AbortError" },
    );
    assert.ok(received < 8 * 1024 * 1024);
    // The client stays usable after an abort.
    assert.equal(await store.exists("abort/big"), true);
  });

  test("await using closes the client; a closed client refuses calls", async () => {
    assert.equal(typeof Symbol.asyncDispose, "symbol", "Node 20 has Symbol.asyncDispose");
    let escaped: RestStore | undefined;
    {
      await using scoped = client(vault.tokens["all"]!);
      await scoped.put("scoped/key", "v");
      escaped = scoped;
    }
    await assert.rejects(escaped.get("scoped/key"), (error) => error instanceof RestStoreError && /closed/.test(error.message));
    await escaped.close(); // idempotent

    const other = client(vault.tokens["all"]!);
    const open = await other.getStream("scoped/key");
    await other.close();
    assert.ok(open.destroyed, "close() destroys streams left open");
  });

  test("a baseUrl with a trailing slash works", async () => {
    await using slashed = RestStore.create({ baseUrl: `${vault.url}/`, apiKey: vault.tokens["all"]! });
    await slashed.put("slash/key", "v");
    assert.equal(await slashed.exists("slash/key"), true);
  });
});

describe("RestStore against a rate-limited server", () => {
  let vault: TestVault;
  before(async () => {
    vault = await startTestVault({ storage: "memory", extraYaml: "rate_limit: {per_token_per_minute: 2}" });
  });
  after(async () => vault.close());

  test("RateLimitedError carries the server's Retry-After once retries are out", async () => {
    await using store = RestStore.create({ baseUrl: vault.url, apiKey: vault.tokens["all"]!, maxRetries: 1 });
    await store.put("rl/a", "a");
    await store.put("rl/b", "b");
    await assert.rejects(store.put("rl/c", "c"), (error) => {
      assert.ok(error instanceof RateLimitedError, String(error));
      assert.equal(error.status, 429);
      assert.ok(error.retryAfter !== undefined && error.retryAfter >= 1 && error.retryAfter <= 60, String(error.retryAfter));
      assert.match(error.message, /rate limit/);
      return true;
    });
  });
});
