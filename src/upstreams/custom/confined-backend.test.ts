import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { Readable } from "node:stream";
import { text } from "node:stream/consumers";
import { pino } from "pino";
import type { ArtifactRef } from "../../core/cache/artifact-ref.js";
import { VaultError, isVaultError } from "../../core/errors.js";
import type { ProxyRequest } from "../backend.js";
import { confineBackend, confineRef, toUpstreamResponse } from "./confined-backend.js";
import type { PluginArtifactRef, PluginBackend } from "./plugin-api.js";

const request: ProxyRequest = { method: "GET", path: "a/b.tgz", query: "", headers: {}, baseUrl: "http://vault.test/files" };
const immutable = { kind: "immutable" } as const;

describe("confineRef", () => {
  test("the key is stored under the backend's name, whatever the plugin says its backend is", () => {
    const ref = confineRef("mine", { cacheKey: "other/file.txt", backend: "other", freshness: immutable, note: 42 });
    assert.equal(ref.cacheKey, "mine/other/file.txt");
    assert.equal(ref.backend, "mine");
    assert.equal(ref.upstreamPath, "other/file.txt", "upstreamPath defaults to the key");
    assert.equal((ref as unknown as { note: number }).note, 42, "extra properties are kept for fetch");
  });

  test("digests are checked and lowercased; sizes must be whole bytes", () => {
    const hex = "AB".repeat(32);
    assert.deepEqual(confineRef("m", { cacheKey: "k", freshness: immutable, digest: { algorithm: "sha256", hex } }).digest, { algorithm: "sha256", hex: hex.toLowerCase() });
    for (const digest of [{ algorithm: "md5", hex: "ab".repeat(16) }, { algorithm: "sha256", hex: "ab" }, { algorithm: "sha1", hex: "zz".repeat(20) }]) {
      assert.throws(() => confineRef("m", { cacheKey: "k", freshness: immutable, digest }), (error) => isVaultError(error, "internal"));
    }
    assert.throws(() => confineRef("m", { cacheKey: "k", freshness: immutable, size: -1 }), (error) => isVaultError(error, "internal"));
  });

  const badKeys: ReadonlyArray<readonly [key: string, why: RegExp]> = [
    ["", /empty/],
    ["/abs/key", /leading '\/'/],
    ["../other/x", /'\.' or '\.\.'/],
    ["a/../../other/x", /'\.' or '\.\.'/],
    ["a/./b", /'\.' or '\.\.'/],
    ["a//b", /empty segment/],
    ["a\u0000b", /control/],
    ["x".repeat(1100), /1024/],
  ];
  for (const [key, why] of badKeys) {
    test(`cache key ${JSON.stringify(key.slice(0, 20))} is refused (400)`, () => {
      assert.throws(() => confineRef("mine", { cacheKey: key, freshness: immutable }), (error) => isVaultError(error, "bad_request") && why.test(error.message));
    });
  }

  const badShapes: readonly unknown[] = [
    undefined,
    "a/b",
    { freshness: immutable },
    { cacheKey: 7, freshness: immutable },
    { cacheKey: "k" },
    { cacheKey: "k", freshness: { kind: "mutable" } },
    { cacheKey: "k", freshness: { kind: "forever" } },
    { cacheKey: "k", freshness: immutable, upstreamPath: 3 },
    { cacheKey: "k", freshness: immutable, upstreamHeaders: { accept: 1 } },
    Promise.resolve({ cacheKey: "k", freshness: immutable }),
  ];
  for (const shape of badShapes) {
    test(`a ref like ${JSON.stringify(shape) ?? "undefined"} is a plugin bug (500)`, () => {
      assert.throws(() => confineRef("mine", shape), (error) => isVaultError(error, "internal"));
    });
  }
});

describe("toUpstreamResponse", () => {
  test("bodies of every accepted kind become byte streams; header names are lowercased", async () => {
    const bodies: ReadonlyArray<readonly [name: string, body: unknown]> = [
      ["string", "payload"],
      ["Uint8Array", new TextEncoder().encode("payload")],
      ["Readable", Readable.from([Buffer.from("pay"), Buffer.from("load")])],
      ["web stream", new Blob(["payload"]).stream()],
      ["async iterable", (async function* () {
        yield Buffer.from("pay");
        yield "load";
      })()],
      ["array", [Buffer.from("pay"), Buffer.from("load")]],
    ];
    for (const [name, body] of bodies) {
      const response = toUpstreamResponse({ status: 200, headers: { "Content-Type": "text/plain", "X-Multi": ["a", "b"], "Content-Length": 7 }, body }, "p");
      assert.deepEqual(response.headers, { "content-type": "text/plain", "x-multi": "a, b", "content-length": "7" }, name);
      assert.equal(await text(response.body), "payload", name);
    }
    const empty = toUpstreamResponse({ status: 404, headers: new Headers({ ETag: '"x"' }) }, "p");
    assert.deepEqual(empty.headers, { etag: '"x"' });
    assert.equal(await text(empty.body), "");
  });

  test("a response of the wrong shape is a plugin bug (500)", () => {
    for (const raw of [undefined, { status: "200" }, { status: 42 }, { status: 200, headers: { a: {} } }, { status: 200, body: 12 }]) {
      assert.throws(() => toUpstreamResponse(raw, "p"), (error) => isVaultError(error, "internal"), JSON.stringify(raw));
    }
  });
});

describe("confineBackend", () => {
  const logger = pino({ level: "silent" });

  function plugin(overrides: Partial<PluginBackend>): PluginBackend {
    return {
      resolve: () => ({ cacheKey: "k", freshness: immutable, secret: "kept" }),
      fetch: async () => ({ status: 200, body: "x" }),
      ...overrides,
    };
  }

  test("fetch sees the ref the plugin returned: its own key and extra properties", async () => {
    let seen: PluginArtifactRef | undefined;
    const backend = confineBackend(plugin({ fetch: async (ref) => ((seen = ref), { status: 200, body: "x" }) }), { name: "mine", prefix: "/mine/", logger });
    const ref = backend.resolve(request) as ArtifactRef;
    assert.equal(ref.cacheKey, "mine/k");
    await backend.fetch(ref, undefined, new AbortController().signal);
    assert.equal(seen?.cacheKey, "k");
    assert.equal(seen?.["secret"], "kept");
    assert.equal(backend.type, "custom");
  });

  test("errors: VaultErrors keep their kind (also a foreign copy's); others are 500 in resolve, 502 in fetch", async () => {
    const foreign = Object.assign(new Error("no such release"), { name: "VaultError", kind: "not_found" });
    const cases: ReadonlyArray<readonly [thrown: unknown, resolveKind: string, fetchKind: string]> = [
      [new VaultError("not_found", "nope"), "not_found", "not_found"],
      [foreign, "not_found", "not_found"],
      [new VaultError("upstream_timeout", "slow"), "upstream_timeout", "upstream_timeout"],
      [new TypeError("undefined is not a function"), "internal", "upstream_failed"],
      ["a string", "internal", "upstream_failed"],
    ];
    for (const [thrown, resolveKind, fetchKind] of cases) {
      const backend = confineBackend(
        plugin({
          resolve: () => {
            throw thrown;
          },
          fetch: async () => {
            throw thrown;
          },
        }),
        { name: "mine", prefix: "/mine/", logger },
      );
      assert.throws(() => backend.resolve(request), (error) => isVaultError(error) && error.kind === resolveKind);
      const ref = confineRef("mine", { cacheKey: "k", freshness: immutable });
      await assert.rejects(backend.fetch(ref, undefined, new AbortController().signal), (error) => isVaultError(error) && error.kind === fetchKind);
    }
  });

  test("close is optional, and a failing close does not break shutdown", async () => {
    await confineBackend(plugin({}), { name: "mine", prefix: "/mine/", logger }).close();
    const failing = plugin({
      close: () => {
        throw new Error("already closed");
      },
    });
    await confineBackend(failing, { name: "mine", prefix: "/mine/", logger }).close();
  });
});
