import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { text } from "node:stream/consumers";
import { isVaultError } from "../../core/errors.js";
import type { ProxyRequest } from "../backend.js";
import type { SourceChunk, SourceStyleBackend } from "./plugin-api.js";
import { adaptSourceBackend, isNotFoundError } from "./source-adapter.js";

const TTL = 60_000;

function request(path: string): ProxyRequest {
  return { method: "GET", path, query: "", headers: {}, baseUrl: "http://vault.test/legacy" };
}

/** A source-style backend whose fetch yields `chunks(path)`, recording whether its generator was closed. */
function fake(chunks: (path: string) => SourceChunk[], options: Partial<SourceStyleBackend> = {}) {
  const log = { fetched: [] as string[], closed: 0 };
  const source: SourceStyleBackend = {
    canHandle: (path) => !path.startsWith("private/"),
    async *fetch(path) {
      log.fetched.push(path);
      try {
        for (const chunk of chunks(path)) yield chunk;
      } finally {
        log.closed++;
      }
    },
    ...options,
  };
  return { backend: adaptSourceBackend(source, { name: "legacy", ttlMs: TTL }), log };
}

const bytes = (value: string) => Buffer.from(value);
const signal = new AbortController().signal;

async function fetchPath(backend: ReturnType<typeof fake>["backend"], path: string) {
  const ref = backend.resolve(request(path));
  return backend.fetch({ ...ref, upstreamPath: ref.upstreamPath ?? ref.cacheKey, backend: "legacy" }, undefined, signal);
}

describe("isNotFoundError", () => {
  const cases: ReadonlyArray<readonly [chunk: { error: string; status?: number }, notFound: boolean]> = [
    [{ error: "File not found: a.tgz" }, true],
    [{ error: "Not Found" }, true],
    [{ error: "NotFound" }, true],
    [{ error: "upstream answered 404" }, true],
    [{ error: "no such file or directory" }, true],
    [{ error: "package foo does not exist" }, true],
    [{ error: "connection refused" }, false],
    [{ error: "upstream answered 500" }, false],
    [{ error: "port 4040 unreachable" }, false],
    [{ error: "anything", status: 404 }, true],
    [{ error: "gone", status: 410 }, true],
    // An explicit status wins over the message.
    [{ error: "mirror not found", status: 503 }, false],
  ];
  for (const [chunk, expected] of cases) {
    test(`${JSON.stringify(chunk)} → ${expected ? "404" : "502"}`, () => assert.equal(isNotFoundError(chunk), expected));
  }
});

describe("adaptSourceBackend resolve", () => {
  test("immutable by default, mutable when isMutable says so, decoded path for the plugin", () => {
    const seen: string[] = [];
    const { backend } = fake(() => [], {
      canHandle: (path) => (seen.push(path), true),
      isMutable: (path) => path.endsWith(".json"),
    });
    const archive = backend.resolve(request("dist/my%20file.tar.gz"));
    assert.equal(archive.cacheKey, "dist/my%20file.tar.gz");
    assert.deepEqual(archive.freshness, { kind: "immutable" });
    assert.deepEqual(backend.resolve(request("index.json")).freshness, { kind: "mutable", ttlMs: TTL });
    assert.deepEqual(seen, ["dist/my file.tar.gz", "index.json"]);
  });

  test("canHandle false, an empty path and a directory are 404; path tricks are 400", () => {
    const { backend } = fake(() => []);
    for (const path of ["private/key", "", "dist/"]) {
      assert.throws(() => backend.resolve(request(path)), (error) => isVaultError(error, "not_found"), path);
    }
    for (const path of ["../etc/passwd", "a/%2e%2e/b", "a%2fb", "/abs"]) {
      assert.throws(() => backend.resolve(request(path)), (error) => isVaultError(error, "bad_request"), path);
    }
  });

  test("an async canHandle is asked in fetch: false is a 404 response", async () => {
    const { backend, log } = fake(() => [{ content: bytes("x") }], { canHandle: async (path) => path === "yes.bin" });
    assert.equal((await fetchPath(backend, "no.bin")).status, 404);
    assert.deepEqual(log.fetched, []);
    assert.equal((await fetchPath(backend, "yes.bin")).status, 200);
  });
});

describe("adaptSourceBackend fetch", () => {
  test("the first chunk gives content type and length; the rest streams", async () => {
    const { backend, log } = fake(() => [
      { content: bytes("hello "), bytesDownloaded: 6, totalLength: 11, contentType: "text/x-greeting" },
      { content: bytes("world"), bytesDownloaded: 11, totalLength: 11 },
    ]);
    const response = await fetchPath(backend, "a.txt");
    assert.equal(response.status, 200);
    assert.deepEqual(response.headers, { "content-type": "text/x-greeting", "content-length": "11" });
    assert.equal(await text(response.body), "hello world");
    assert.equal(log.closed, 1);
  });

  test("{error} first: not found → 404 response, anything else → upstream_failed", async () => {
    const { backend } = fake((path) => [{ error: path === "gone.bin" ? "File not found" : "connection reset by peer" }]);
    assert.equal((await fetchPath(backend, "gone.bin")).status, 404);
    await assert.rejects(fetchPath(backend, "flaky.bin"), (error) => isVaultError(error, "upstream_failed") && /connection reset/.test(error.message));
  });

  test("a generator that throws before any content, or yields nothing, is an upstream failure", async () => {
    const throwing: SourceStyleBackend = {
      canHandle: () => true,
      // eslint-disable-next-line require-yield
      async *fetch() {
        throw new Error("boom");
      },
    };
    const backend = adaptSourceBackend(throwing, { name: "legacy", ttlMs: TTL });
    await assert.rejects(fetchPath(backend, "a.bin"), (error) => isVaultError(error, "upstream_failed") && /boom/.test(error.message));
    const { backend: empty } = fake(() => []);
    await assert.rejects(fetchPath(empty, "a.bin"), (error) => isVaultError(error, "upstream_failed") && /no content/.test(error.message));
  });

  test("an empty artifact is one chunk with empty content", async () => {
    const { backend } = fake(() => [{ content: new Uint8Array(0), bytesDownloaded: 0, totalLength: 0 }]);
    const response = await fetchPath(backend, "empty.txt");
    assert.equal(response.headers["content-length"], "0");
    assert.equal(await text(response.body), "");
  });

  const broken: ReadonlyArray<readonly [name: string, chunks: SourceChunk[], message: RegExp]> = [
    ["an {error} after content", [{ content: bytes("abc") }, { error: "socket hang up" }], /broke off \(socket hang up\) after 3 bytes/],
    ["fewer bytes than totalLength", [{ content: bytes("abc"), totalLength: 5 }], /ended short of the 5 bytes/],
    ["more bytes than totalLength", [{ content: bytes("abc"), totalLength: 5 }, { content: bytes("def") }], /more than the 5 bytes/],
    ["a totalLength that changes", [{ content: bytes("abc"), totalLength: 6 }, { content: bytes("def"), totalLength: 7 }], /changed totalLength/],
    ["a chunk without content", [{ content: bytes("abc") }, {} as SourceChunk], /neither content nor error/],
  ];
  for (const [name, chunks, message] of broken) {
    test(`${name} breaks the body and closes the generator`, async () => {
      const { backend, log } = fake(() => chunks);
      const response = await fetchPath(backend, "a.bin");
      assert.equal(response.status, 200);
      await assert.rejects(text(response.body), (error) => isVaultError(error, "upstream_failed") && message.test(error.message));
      assert.equal(log.closed, 1);
    });
  }

  test("a totalLength announced only later is still the expected size", async () => {
    const { backend } = fake(() => [{ content: bytes("abc") }, { content: bytes("de"), totalLength: 6 }]);
    const response = await fetchPath(backend, "a.bin");
    assert.equal(response.headers["content-length"], undefined);
    await assert.rejects(text(response.body), /ended short of the 6 bytes/);
  });

  test("destroying the body stops the plugin's generator", async () => {
    let closed = false;
    const source: SourceStyleBackend = {
      canHandle: () => true,
      async *fetch() {
        try {
          for (;;) yield { content: bytes("x".repeat(1024)) };
        } finally {
          closed = true;
        }
      },
    };
    const backend = adaptSourceBackend(source, { name: "legacy", ttlMs: TTL });
    const response = await fetchPath(backend, "endless.bin");
    for await (const _chunk of response.body) break;
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(closed, true);
  });
});
