import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtemp, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, afterEach, describe, it } from "node:test";
import { CreateMultipartUploadCommand, PutObjectCommand } from "@aws-sdk/client-s3";
import { loadConfig } from "../../src/config/load-config.js";
import { mainStore } from "../../src/config/schema.js";
import { VaultError } from "../../src/core/errors.js";
import { createStorageDriver } from "../../src/storage/registry.js";
import { S3Driver, type S3DriverOptions } from "../../src/storage/s3-driver.js";
import { importFile } from "../../src/storage/import-file.js";
import { startTestS3, type TestS3 } from "../support/s3-server.js";
import {
  NASTY_KEYS,
  assertRejectsWith,
  assertSameInfo,
  byUtf8Bytes,
  chunked,
  collect,
  patternBytes,
  readAll,
  runStorageDriverContract,
  sha256Hex,
} from "./storage-driver.contract.js";

// Two endpoints: one with S3's conditional writes, one without (s3rver as it is). With
// S3_TEST_ENDPOINT set, both are that endpoint, and the second run forces the emulated fallback.
const withConditions = await startTestS3({ conditionalWrites: true });
const without = await startTestS3({ conditionalWrites: false });
const external = withConditions.conditionalWrites === undefined;
after(async () => {
  await withConditions.close();
  await without.close();
});

runStorageDriverContract("s3 (conditional writes: auto)", async (options) => S3Driver.open({ ...withConditions.storeConfig(), ...options }));
runStorageDriverContract("s3 (conditional writes: emulated)", async (options) =>
  S3Driver.open({ ...without.storeConfig({ conditional_writes: "emulated" }), ...options }),
);

const MiB = 1024 * 1024;
/** Multipart from 5 MiB on (S3's smallest part), so tests need not send hundreds of MiB. */
const SMALL_PARTS = { partSize: 5 * MiB } as const;

/**
 * A body of twelve 1 MiB chunks of `bytes` that stops after the eighth until `release`: a write
 * in progress (its multipart upload under way) while the test races another writer of the key.
 */
function heldAfterEight(bytes: Buffer): { body: AsyncIterable<Uint8Array>; reached: Promise<void>; release: () => void } {
  let release!: () => void;
  let reachedGate!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  const reached = new Promise<void>((resolve) => (reachedGate = resolve));
  async function* body(): AsyncGenerator<Uint8Array> {
    for (let i = 0; i < 12; i++) {
      if (i === 8) {
        reachedGate();
        await gate;
      }
      yield bytes.subarray(i * MiB, (i + 1) * MiB);
    }
  }
  return { body: body(), reached, release };
}

/** The servers to run a test on, with the conditional-writes mode each gets. */
const SERVERS: ReadonlyArray<readonly [string, TestS3, Partial<S3DriverOptions>]> = [
  ["native", withConditions, {}],
  ["emulated", without, { conditional_writes: "emulated" }],
];

void describe("s3 driver", () => {
  const opened: S3Driver[] = [];
  const open = async (server: TestS3, options: Partial<S3DriverOptions> = {}): Promise<{ driver: S3Driver; prefix: string }> => {
    const config = server.storeConfig(options);
    const driver = await S3Driver.open({ ...config, ...options });
    opened.push(driver);
    return { driver, prefix: config.prefix };
  };
  afterEach(async () => {
    for (const driver of opened.splice(0)) await driver.close();
  });

  /** Asserts the bucket holds just these objects under `prefix` (no staging), and no multipart upload. */
  const assertClean = async (server: TestS3, prefix: string, driver: S3Driver, keys: readonly string[]): Promise<void> => {
    assert.deepEqual(await server.openUploads(prefix), [], "no multipart upload is left");
    const names = await server.names(prefix);
    assert.deepEqual(names.filter((name) => !name.startsWith(`${prefix}objects/`)), [], "no staging object is left");
    assert.equal(names.length, keys.length);
    assert.deepEqual((await driver.list({ limit: 1000 })).keys, [...keys].sort(byUtf8Bytes));
  };

  for (const [mode, server, options] of SERVERS) {
    void it(`streams a body larger than a part multipart through a staging object, then leaves only the object (${mode})`, async () => {
      const { driver, prefix } = await open(server, { ...SMALL_PARTS, ...options });
      const content = patternBytes(12 * MiB + 5, 1);
      const info = await driver.write("big/object", chunked(content, 256 * 1024), {
        contentType: "application/x-big",
        metadata: { origin: "test" },
        expectedSha256: sha256Hex(content),
        ifNoneMatch: "*",
      });
      assert.equal(info.size, content.length);
      assert.equal(info.sha256, sha256Hex(content));
      assertSameInfo(await driver.stat("big/object"), info);
      const across = await driver.read("big/object", { range: { start: 5 * MiB - 10, end: 10 * MiB + 10 } });
      assert.ok(across);
      assert.ok((await collect(across.body)).equals(content.subarray(5 * MiB - 10, 10 * MiB + 11)));
      assert.ok((await readAll(driver, "big/object")).equals(content));
      await assertClean(server, prefix, driver, ["big/object"]);
    });

    void it(`no multipart upload or staging object outlives a failed large write (${mode})`, async () => {
      const { driver, prefix } = await open(server, { ...SMALL_PARTS, ...options });
      const previous = await driver.write("kept", chunked(Buffer.from("previous")));
      async function* failing(error: Error): AsyncGenerator<Uint8Array> {
        for (let i = 0; i < 7; i++) yield Buffer.alloc(MiB, i);
        throw error;
      }
      await assertRejectsWith(driver.write("kept", failing(new Error("connection reset"))), "bad_request");
      await assertRejectsWith(driver.write("fresh", failing(new VaultError("upstream_failed", "upstream went away"))), "upstream_failed");
      const controller = new AbortController();
      async function* aborting(): AsyncGenerator<Uint8Array> {
        for (let i = 0; i < 12; i++) {
          if (i === 7) controller.abort(new Error("client went away"));
          yield Buffer.alloc(MiB, i);
        }
      }
      await assert.rejects(driver.write("kept", aborting(), { signal: controller.signal }));
      const big = patternBytes(12 * MiB, 2);
      await assertRejectsWith(driver.write("kept", chunked(big, MiB), { maxSize: 9 * MiB }), "payload_too_large");
      await assertRejectsWith(driver.write("kept", chunked(big, MiB), { expectedSha256: "0".repeat(64) }), "checksum_mismatch");
      await assertRejectsWith(driver.write("kept", chunked(big, MiB), { expectedSize: 12 * MiB + 1 }), "bad_request");

      // Create-only, refused at the commit: another write creates the key while the body streams.
      const held = heldAfterEight(big);
      const racing = driver.write("raced", held.body, { ifNoneMatch: "*" });
      await held.reached;
      await driver.write("raced", chunked(Buffer.from("first")));
      held.release();
      await assertRejectsWith(racing, "precondition_failed");
      assert.equal((await readAll(driver, "raced")).toString(), "first");

      assertSameInfo(await driver.stat("kept"), previous);
      assert.equal(await driver.stat("fresh"), undefined);
      await assertClean(server, prefix, driver, ["kept", "raced"]);
    });
  }

  void it("imports a verified file straight to its name, multipart when large; a failed import leaves nothing", async () => {
    const { driver, prefix } = await open(withConditions, SMALL_PARTS);
    const dir = await mkdtemp(join(tmpdir(), "s3-import-"));
    try {
      const content = patternBytes(12 * MiB, 3);
      const file = join(dir, "spooled");
      await writeFile(file, content);
      const info = await importFile(driver, "imported/big", file, { size: content.length, sha256: sha256Hex(content), contentType: "application/gzip", metadata: { m: "1" } });
      assert.equal(info.sha256, sha256Hex(content));
      assertSameInfo(await driver.stat("imported/big"), info);
      assert.ok((await readAll(driver, "imported/big")).equals(content));
      await assert.rejects(stat(file), "the imported file is gone");

      const short = join(dir, "short");
      await writeFile(short, content);
      await assert.rejects(importFile(driver, "imported/wrong", short, { size: content.length + MiB, sha256: sha256Hex(content) }));
      assert.equal(await driver.stat("imported/wrong"), undefined);
      await assertClean(withConditions, prefix, driver, ["imported/big"]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  for (const [mode, server, options] of SERVERS) {
    void it(`copies objects past the CopyObject limit part by part, under the write's conditions (${mode})`, async () => {
      const { driver, prefix } = await open(server, { ...SMALL_PARTS, maxCopyObjectSize: 5 * MiB, copyPartSize: 5 * MiB, ...options });
      const first = patternBytes(12 * MiB + 3, 4);
      const v1 = await driver.write("copied", chunked(first, MiB), { ifNoneMatch: "*" });
      assert.ok((await readAll(driver, "copied")).equals(first));
      // A compare-and-swap that loses at the commit: the key moved on while its body streamed.
      const held = heldAfterEight(first);
      const losing = driver.write("copied", held.body, { ifMatch: v1.etag });
      await held.reached;
      const v2 = await driver.write("copied", chunked(Buffer.from("v2")), { ifMatch: v1.etag });
      held.release();
      await assertRejectsWith(losing, "precondition_failed");
      assertSameInfo(await driver.stat("copied"), v2);
      assert.equal(v2.createdAt.getTime(), v1.createdAt.getTime(), "createdAt is kept");
      await assertClean(server, prefix, driver, ["copied"]);
    });

    void it(`an open object keeps its version when overwritten, ranges included (${mode})`, async () => {
      const { driver } = await open(server, options);
      const v1 = patternBytes(300 * 1024, 5);
      await driver.write("versioned", chunked(v1));
      const whole = await driver.open("versioned");
      const ranged = await driver.open("versioned");
      assert.ok(whole && ranged);
      await driver.write("versioned", chunked(patternBytes(200 * 1024, 6)));
      assert.ok((await collect(ranged.body({ start: 1000, end: 250_000 }))).equals(v1.subarray(1000, 250_001)));
      assert.ok((await collect(whole.body())).equals(v1));
      // Not overwritten: the range comes from a second, pinned GET.
      const fresh = await driver.open("versioned");
      assert.ok(fresh);
      const current = await readAll(driver, "versioned");
      assert.ok((await collect(fresh.body({ start: 10, end: 100_000 }))).equals(current.subarray(10, 100_001)));
    });
  }

  void it("probes conditional writes: native where the server has them, emulated where it does not", { skip: external && "an external endpoint" }, async () => {
    assert.equal((await open(withConditions)).driver.conditionalWrites, "native");
    assert.equal((await open(without)).driver.conditionalWrites, "emulated");
    assert.equal((await open(withConditions, { conditional_writes: "emulated" })).driver.conditionalWrites, "emulated");
  });

  void it("native conditional writes are exact across drivers (replicas) on one bucket", async () => {
    const config = withConditions.storeConfig();
    const replicas = await Promise.all([S3Driver.open(config), S3Driver.open(config), S3Driver.open(config)]);
    opened.push(...replicas);
    const replica = (i: number): S3Driver => replicas[i % replicas.length] ?? assert.fail("no replica");
    if (replica(0).conditionalWrites !== "native") return; // an external endpoint without them
    const results = await Promise.allSettled(
      Array.from({ length: 15 }, (_, i) => replica(i).write("lock", chunked(Buffer.from(`owner ${i}`)), { ifNoneMatch: "*" })),
    );
    assert.equal(results.filter((result) => result.status === "fulfilled").length, 1);
    const base = await replica(0).stat("lock");
    assert.ok(base);
    const swaps = await Promise.allSettled(
      Array.from({ length: 9 }, (_, i) => replica(i).write("lock", chunked(Buffer.from(`renewed ${i}`)), { ifMatch: base.etag })),
    );
    assert.equal(swaps.filter((result) => result.status === "fulfilled").length, 1);
  });

  void it("names every key within S3's rules, below its prefix and namespace", async () => {
    const config = withConditions.storeConfig();
    const cache = await S3Driver.open({ ...config, namespace: "cache" });
    const objects = await S3Driver.open(config);
    opened.push(cache, objects);
    for (const key of NASTY_KEYS) await cache.write(key, chunked(Buffer.from(key)));
    const names = await withConditions.names(config.prefix);
    assert.equal(names.length, NASTY_KEYS.length);
    for (const name of names) {
      assert.ok(name.startsWith(`${config.prefix}cache/objects/`), name);
      assert.ok(Buffer.byteLength(name) <= 1024, `${Buffer.byteLength(name)} bytes`);
      assert.match(name.slice(config.prefix.length), /^[0-9A-Za-z!.=_~/-]+$/);
      for (const segment of name.split("/")) assert.ok(segment !== "" && segment !== "." && segment !== ".." && segment.length <= 234, JSON.stringify(segment));
    }
    assert.deepEqual((await objects.list({ limit: 10 })).keys, [], "another namespace sees none of them");
    assert.deepEqual((await cache.listEntries({ limit: 3 })).entries.map((entry) => entry.size), [...NASTY_KEYS].sort(byUtf8Bytes).slice(0, 3).map((key) => Buffer.byteLength(key)));
  });

  void it("lists keys too long to name whole in key order, whatever the page, bound or prefix", async () => {
    // Names of 200 bytes: keys of more than ~130 encoded characters are long, and share groups.
    const { driver } = await open(withConditions, { maxNameBytes: 200 });
    const head = "h".repeat(170);
    const keys = [
      ...["a", "b", "c", "a/x", "😀", "é", "\uFFFF", "0", " ", "zz", "a0", "\uE000"].map((suffix) => head + suffix),
      ...["1", "2", "3"].map((suffix) => "j".repeat(150) + suffix),
      "h",
      "h".repeat(60),
      "h".repeat(129),
      "g",
      "i",
      "😀",
    ];
    for (const key of keys) await driver.write(key, chunked(Buffer.from(key)), { metadata: { k: key.slice(-3) } });
    const sorted = [...keys].sort(byUtf8Bytes);
    for (const limit of [1, 2, 3, 5, 1000]) {
      const seen: string[] = [];
      let startAfter: string | undefined;
      for (;;) {
        const page = await driver.list({ limit, ...(startAfter === undefined ? {} : { startAfter }) });
        seen.push(...page.keys);
        if (!page.isTruncated) break;
        assert.equal(page.keys.length, limit);
        startAfter = page.keys.at(-1);
      }
      assert.deepEqual(seen, sorted, `pages of ${limit}`);
    }
    for (const [prefix, startAfter] of [
      [head, undefined],
      [head + "a", undefined],
      ["h", head + "a"],
      ["", head + "b"],
      [head.slice(0, 100), undefined],
      ["j", "j".repeat(150) + "1"],
    ] as const) {
      const expected = sorted.filter((key) => key.startsWith(prefix) && (startAfter === undefined || byUtf8Bytes(key, startAfter) > 0));
      assert.deepEqual((await driver.list({ prefix, limit: 1000, ...(startAfter === undefined ? {} : { startAfter }) })).keys, expected, `${prefix.length}/${String(startAfter?.length)}`);
      assert.deepEqual((await driver.list({ prefix, limit: 2, ...(startAfter === undefined ? {} : { startAfter }) })).keys, expected.slice(0, 2));
    }
    for (const key of keys) {
      assert.equal((await readAll(driver, key)).toString(), key);
      assert.equal((await driver.stat(key))?.metadata["k"], key.slice(-3));
    }
    for (const key of keys) assert.equal(await driver.delete(key), true);
    assert.deepEqual((await driver.list({ limit: 10 })).keys, []);
  });

  void it("keeps content types and metadata exactly, whatever their characters", async () => {
    const { driver } = await open(withConditions);
    const contentType = 'text/plain; charset=utf-8; name="résumé 😀"';
    const metadata = { "Upper Name": "välue\nwith\u0000controls", empty: "", "vault-header-docker-content-digest": `sha256:${"a".repeat(64)}` };
    const info = await driver.write("typed", chunked(Buffer.from("x")), { contentType, metadata });
    assertSameInfo(await driver.stat("typed"), info);
    assert.equal(info.contentType, contentType);
    assert.deepEqual({ ...(await driver.stat("typed"))?.metadata }, metadata);
  });

  void it("refuses a description that does not fit S3's user metadata before reading the body", async () => {
    const { driver } = await open(withConditions);
    let pulled = 0;
    async function* counting(): AsyncGenerator<Uint8Array> {
      pulled++;
      yield Buffer.from("x");
    }
    await assertRejectsWith(driver.write("k", counting(), { metadata: { big: "x".repeat(3000) } }), "bad_request");
    assert.equal(pulled, 0);
  });

  void it("sweeps the staging objects and multipart uploads that interrupted writes left", async () => {
    const config = withConditions.storeConfig();
    const client = withConditions.client;
    await client.send(new PutObjectCommand({ Bucket: withConditions.bucket, Key: `${config.prefix}staging/0123abcd`, Body: "half of something" }));
    await client.send(new CreateMultipartUploadCommand({ Bucket: withConditions.bucket, Key: `${config.prefix}objects/abandoned` }));
    const warnings: string[] = [];
    const driver = await S3Driver.open({ ...config, staleUploadMs: 0, onWarning: (message) => warnings.push(message) });
    opened.push(driver);
    assert.equal(await driver.swept, 2);
    assert.deepEqual(await withConditions.names(`${config.prefix}staging/`), []);
    assert.deepEqual(await withConditions.openUploads(config.prefix), []);
    assert.ok(warnings.some((warning) => warning.includes("removed 2")));
  });

  void it("errors name the store's problem, never as raw SDK errors; missing keys are not errors", async () => {
    const config = withConditions.storeConfig();
    await assertRejectsWith(S3Driver.open({ ...config, bucket_name: `no-such-bucket-${randomBytes(4).toString("hex")}` }), "unavailable", "a missing bucket");
    await assert.rejects(S3Driver.open({ ...config, bucket_name: "no-such-bucket-4242" }), /does not exist/);
    await assert.rejects(S3Driver.open({ ...config, s3_access_key: "nobody-we-know" }), (error: unknown) => error instanceof VaultError && error.kind === "unavailable" && /refused access/.test(error.message));
    await assert.rejects(S3Driver.open({ ...config, endpoint_url: "http://127.0.0.1:1" }), (error: unknown) => error instanceof VaultError && error.kind === "unavailable" && /unreachable/.test(error.message));
    await assertRejectsWith(S3Driver.open({ ...config, s3_secret_key: undefined }), "bad_request");
    await assertRejectsWith(S3Driver.open({ ...config, namespace: "objects" }), "bad_request");

    const { driver } = await open(withConditions);
    assert.equal(await driver.stat("missing"), undefined);
    assert.equal(await driver.read("missing", { range: { start: 0, end: 3 } }), undefined);
    assert.equal(await driver.open("missing"), undefined);
    assert.equal(await driver.delete("missing"), false);
  });

  void it("without keys in the config, takes credentials from the AWS chain (here: the environment)", async () => {
    const config = withConditions.storeConfig({ s3_access_key: undefined, s3_secret_key: undefined });
    const saved = { id: process.env["AWS_ACCESS_KEY_ID"], secret: process.env["AWS_SECRET_ACCESS_KEY"] };
    process.env["AWS_ACCESS_KEY_ID"] = withConditions.accessKeyId;
    process.env["AWS_SECRET_ACCESS_KEY"] = withConditions.secretAccessKey;
    try {
      const driver = await S3Driver.open(config);
      opened.push(driver);
      await driver.write("from-env", chunked(Buffer.from("v")));
      assert.equal((await driver.stat("from-env"))?.size, 1);
    } finally {
      for (const [name, value] of [["AWS_ACCESS_KEY_ID", saved.id], ["AWS_SECRET_ACCESS_KEY", saved.secret]] as const) {
        if (value === undefined) delete process.env[name];
        else process.env[name] = value;
      }
    }
  });

  void it("an endpoint that goes away mid-run makes calls unavailable", { skip: external && "an external endpoint" }, async () => {
    const lonely = await startTestS3();
    const driver = await S3Driver.open(lonely.storeConfig());
    try {
      await driver.write("k", chunked(Buffer.from("v")));
      await lonely.close();
      for (const call of [() => driver.stat("k"), () => driver.read("k"), () => driver.list({ limit: 1 }), () => driver.write("k", chunked(Buffer.from("w")))]) {
        await assert.rejects(call(), (error: unknown) => error instanceof VaultError && error.kind === "unavailable" && /unreachable or failing/.test(error.message));
      }
    } finally {
      await driver.close();
    }
  });

  void it("is configured with the Python object store's keys and its own; a lone key is refused", async () => {
    const dir = await mkdtemp(join(tmpdir(), "s3-config-"));
    try {
      const file = join(dir, "config.yml");
      const store = (config: string): string => `storage: {stores: {b: {type: AsyncBucketStore, config: {${config}}}}}\n`;
      await writeFile(file, store("bucket_name: art, endpoint_url: 'http://minio:9000', s3_access_key: a, s3_secret_key: s, prefix: v/, force_path_style: false, conditional_writes: emulated"));
      const loaded = await loadConfig({ file, env: {} });
      assert.deepEqual(mainStore(loaded), {
        type: "s3",
        config: { bucket_name: "art", endpoint_url: "http://minio:9000", s3_access_key: "a", s3_secret_key: "s", prefix: "v/", force_path_style: false, conditional_writes: "emulated" },
      });
      await writeFile(file, store("bucket_name: art, s3_access_key: a"));
      await assert.rejects(loadConfig({ file, env: {} }), /storage\.stores\.b\.config\.s3_secret_key: s3_access_key and s3_secret_key go together/);
      await writeFile(file, store("bucket_name: art, conditional_writes: sometimes"));
      await assert.rejects(loadConfig({ file, env: {} }), /storage\.stores\.b\.config\.conditional_writes/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  void it("presigns GETs of the namespaced object name that anyone can fetch, ranges included, until they expire", async () => {
    const config = withConditions.storeConfig();
    const cache = await S3Driver.open({ ...config, namespace: "cache", maxNameBytes: 200 });
    opened.push(cache);
    const content = patternBytes(300 * 1024 + 7, 3);
    // A plain key, and one too long to name whole (its S3 name ends in a hash).
    const keys = ["pypi/packages/sha256/ab/demo-1.0.tar.gz", `long/${"k".repeat(240)}/é😀 file`];
    for (const key of keys) {
      await cache.write(key, chunked(content, 64 * 1024), { contentType: "application/x-demo" });
      const url = await cache.presign(key, 60);
      const signed = new URL(url);
      assert.equal(signed.origin, new URL(withConditions.endpoint).origin);
      assert.ok(signed.pathname.includes(encodeURI(`${config.prefix}cache/objects/`)), signed.pathname);
      assert.equal(signed.searchParams.get("X-Amz-Expires"), "60");
      assert.equal(signed.searchParams.get("X-Amz-Algorithm"), "AWS4-HMAC-SHA256");
      const whole = await fetch(url);
      assert.equal(whole.status, 200);
      assert.equal(whole.headers.get("content-type"), "application/x-demo");
      assert.equal(sha256Hex(Buffer.from(await whole.arrayBuffer())), sha256Hex(content));
      const part = await fetch(url, { headers: { range: "bytes=1000-1999" } });
      assert.equal(part.status, 206);
      assert.ok(Buffer.from(await part.arrayBuffer()).equals(content.subarray(1000, 2000)));
    }
    // Past its expiry (whole seconds: X-Amz-Date has no fraction), S3 refuses it.
    const brief = await cache.presign(keys[0] ?? "", 1);
    await new Promise((resolve) => setTimeout(resolve, 2100));
    const expired = await fetch(brief);
    assert.equal(expired.status, 403);
    assert.match(await expired.text(), /expired/i);
    await assertRejectsWith(cache.presign(keys[0] ?? "", 0), "bad_request");
    await assertRejectsWith(cache.presign(keys[0] ?? "", 8 * 24 * 3600), "bad_request");
    await assertRejectsWith(cache.presign("", 60), "bad_request");
  });

  void it("opens through the registry as the `s3` store type, namespaced", async () => {
    const config = withConditions.storeConfig();
    const cache = await createStorageDriver({ type: "s3", config }, { namespace: "cache" });
    try {
      assert.equal(cache.kind, "s3");
      assert.equal(cache.localStagingDirectory, undefined);
      await cache.write("a/b", chunked(Buffer.from("x")));
      assert.deepEqual(await withConditions.names(config.prefix), [`${config.prefix}cache/objects/a.2fb`]);
    } finally {
      await cache.close();
    }
  });
});
