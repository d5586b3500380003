/**
 * The StorageDriver contract: one suite, run against every driver (see the `*-driver.test.ts`
 * runners next to this file). A driver passes when it behaves exactly like this, whatever it
 * stores on.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import type { Readable } from "node:stream";
import { afterEach, beforeEach, describe, it } from "node:test";
import { VaultError, isVaultError, type ErrorKind } from "../../src/core/errors.js";
import type { ObjectInfo, StorageDriver, WriteOptions } from "../../src/storage/storage-driver.js";
import { importFile } from "../../src/storage/import-file.js";
import { mkdir, mkdtemp, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface ContractDriverOptions {
  /** Time stamps for new objects; drivers must use it when given. */
  readonly clock?: () => Date;
}

/** Opens a fresh, empty driver. The suite closes every driver it opened after each test. */
export type MakeDriver = (options: ContractDriverOptions) => Promise<StorageDriver>;

/**
 * Keys that must be stored losslessly and kept inside the store's root, side by side: path tricks,
 * percent-encodings, separators, names the filesystem layout uses itself, case variants, length
 * limits in one and many segments, and characters from every UTF-8 length.
 */
export const NASTY_KEYS: readonly string[] = [
  "..",
  "../x",
  "../../../../../../x",
  "a/../../x",
  "%2e%2e",
  "%2e%2e/%2e%2e/x",
  "%2E%2E%2Fx",
  "\\",
  "..\\x",
  "..\\..\\x",
  "a\\b",
  "/abs",
  "/abs/x",
  "//",
  "a//b",
  "a/",
  "trailing/",
  "/",
  ".",
  "./x",
  "x/.",
  "x/./y",
  "x/..",
  "...",
  ".hidden",
  ".tmp-0123456789abcdef",
  "x/.tmp-0123",
  "~",
  "a~",
  "+",
  "a+",
  "a+/b",
  "%",
  "%%",
  "%25",
  "a%2Fb",
  "a",
  "a/b",
  "a/b/c",
  "A",
  "key",
  "Key",
  "KEY",
  "b",
  "\uFFFF",
  "\uE000",
  "😀",
  "emoji/👍🏽/family👨‍👩‍👧",
  "日本語/キー",
  "con",
  "nul.txt",
  " ",
  " spaces around ",
  "tab\tnew\nline\rreturn",
  "\u0001\u001f\u007f",
  "?query=1&x=#frag",
  "!@#$%^&*()_+",
  "l".repeat(1024),
  "é".repeat(512),
  "😀".repeat(256),
  "€".repeat(341) + "a",
  "a".repeat(300) + "/" + "b".repeat(300),
  ".".repeat(1024),
  "/".repeat(1024),
  "a/".repeat(511) + "ab",
  "%".repeat(1024),
];

export function runStorageDriverContract(name: string, makeDriver: MakeDriver): void {
  void describe(`StorageDriver contract: ${name}`, () => {
    const opened: StorageDriver[] = [];
    const open = async (options: ContractDriverOptions = {}): Promise<StorageDriver> => {
      const driver = await makeDriver(options);
      opened.push(driver);
      return driver;
    };
    let driver: StorageDriver;

    beforeEach(async () => {
      driver = await open();
    });

    afterEach(async () => {
      for (const each of opened.splice(0)) await each.close();
    });

    void describe("write, stat, read", () => {
      void it("stores bytes and describes them", async () => {
        const content = patternBytes(100_000, 1);
        const info = await driver.write("dir/file.bin", chunked(content, 7_777), {
          contentType: "application/x-test",
          metadata: { origin: "https://example.org/file.bin", etag: '"abc"' },
        });
        const sha = sha256Hex(content);
        assert.equal(info.key, "dir/file.bin");
        assert.equal(info.size, content.length);
        assert.equal(info.sha256, sha);
        assert.equal(info.etag, `"${sha}"`);
        assert.equal(info.contentType, "application/x-test");
        assert.deepEqual({ ...info.metadata }, { origin: "https://example.org/file.bin", etag: '"abc"' });
        assert.ok(info.createdAt instanceof Date);
        assert.ok(info.modifiedAt instanceof Date);
        assertSameInfo(await driver.stat("dir/file.bin"), info);

        const result = await driver.read("dir/file.bin");
        assert.ok(result);
        assertSameInfo(result.info, info);
        assert.deepEqual(await collect(result.body), content);
      });

      void it("stores an empty object", async () => {
        const info = await driver.write("empty", chunked(Buffer.alloc(0)));
        assert.equal(info.size, 0);
        assert.equal(info.sha256, sha256Hex(Buffer.alloc(0)));
        assert.equal(info.contentType, undefined);
        assert.deepEqual({ ...info.metadata }, {});
        const result = await driver.read("empty");
        assert.ok(result);
        assert.equal((await collect(result.body)).length, 0);
        await assertRejectsWith(driver.read("empty", { range: { start: 0, end: 0 } }), "range_not_satisfiable");
      });

      void it("stores a body of many tiny chunks and one of a single big chunk", async () => {
        const content = patternBytes(70_000, 2);
        await driver.write("tiny", chunked(content, 1));
        assert.deepEqual(await readAll(driver, "tiny"), content);
        const big = patternBytes(3 * 1024 * 1024 + 17, 3);
        await driver.write("big", chunked(big, big.length));
        assert.deepEqual(await readAll(driver, "big"), big);
        assert.equal((await driver.stat("big"))?.sha256, sha256Hex(big));
      });

      void it("accepts any AsyncIterable of bytes, including one that reuses its buffer", async () => {
        const expected: Buffer[] = [];
        async function* reusing(): AsyncGenerator<Uint8Array> {
          const buffer = Buffer.alloc(1000);
          for (let i = 0; i < 50; i++) {
            buffer.fill(i);
            expected.push(Buffer.from(buffer));
            yield buffer;
          }
        }
        await driver.write("reused", reusing());
        assert.deepEqual(await readAll(driver, "reused"), Buffer.concat(expected));
      });

      void it("copies: callers cannot change stored bytes through written or read chunks", async () => {
        const chunk = Buffer.from("original bytes");
        await driver.write("copied", chunked(chunk));
        chunk.fill(0x21);
        const result = await driver.read("copied");
        assert.ok(result);
        for await (const piece of result.body as AsyncIterable<Buffer>) piece.fill(0x3f);
        assert.equal((await readAll(driver, "copied")).toString(), "original bytes");
      });

      void it("reads missing keys as undefined", async () => {
        assert.equal(await driver.stat("missing"), undefined);
        assert.equal(await driver.read("missing"), undefined);
        assert.equal(await driver.read("missing", { range: { start: 0, end: 1 } }), undefined);
        await driver.write("a/b", chunked(Buffer.from("x")));
        assert.equal(await driver.stat("a"), undefined, "a prefix directory is not an object");
        assert.equal(await driver.read("a"), undefined);
      });

      void it("overwrites, keeping createdAt and moving modifiedAt", async () => {
        let now = new Date("2024-01-02T03:04:05.678Z");
        const clocked = await open({ clock: () => now });
        const first = await clocked.write("k", chunked(Buffer.from("one")), {
          contentType: "text/plain",
          metadata: { a: "1" },
        });
        assert.deepEqual(first.createdAt, now);
        assert.deepEqual(first.modifiedAt, now);
        const created = now;
        now = new Date("2024-05-06T07:08:09.012Z");
        const second = await clocked.write("k", chunked(Buffer.from("two!")));
        assert.deepEqual(second.createdAt, created);
        assert.deepEqual(second.modifiedAt, now);
        assert.equal(second.size, 4);
        assert.equal(second.contentType, undefined, "an overwrite replaces the content type");
        assert.deepEqual({ ...second.metadata }, {}, "an overwrite replaces the metadata");
        assertSameInfo(await clocked.stat("k"), second);
        assert.equal((await readAll(clocked, "k")).toString(), "two!");

        await clocked.delete("k");
        now = new Date("2025-01-01T00:00:00.000Z");
        const third = await clocked.write("k", chunked(Buffer.from("3")));
        assert.deepEqual(third.createdAt, now, "a deleted key starts afresh");
      });

      void it("refuses invalid keys with bad_request", async () => {
        const invalid = ["", "a\0b", "\0", "x".repeat(1025), "é".repeat(513), "\uD800", "a\uDC00b"];
        for (const key of invalid) {
          await assertRejectsWith(driver.write(key, chunked(Buffer.from("x"))), "bad_request");
          await assertRejectsWith(driver.stat(key), "bad_request");
          await assertRejectsWith(driver.read(key), "bad_request");
          await assertRejectsWith(driver.delete(key), "bad_request");
        }
        assert.deepEqual((await driver.list({ limit: 10 })).keys, []);
      });

      void it("refuses malformed write options with bad_request, before storing anything", async () => {
        const bad: WriteOptions[] = [
          { expectedSha256: "abc" },
          { expectedMd5Base64: "not base64" },
          { expectedSize: -1 },
          { maxSize: 1.5 },
          { ifNoneMatch: "x" as "*" },
          { metadata: { n: 1 as unknown as string } },
        ];
        for (const options of bad) {
          await assertRejectsWith(driver.write("k", chunked(Buffer.from("x")), options), "bad_request");
        }
        assert.equal(await driver.stat("k"), undefined);
      });
    });

    void describe("ranges", () => {
      const content = patternBytes(300 * 1024 + 3, 4);
      const ranges: [number, number][] = [
        [0, 0],
        [0, content.length - 1],
        [content.length - 1, content.length - 1],
        [1, 1],
        [65_535, 65_536],
        [262_143, 262_144],
        [1_000, 299_999],
        [100, 300_000],
        [content.length - 10, content.length - 1],
      ];

      void it("streams just the inclusive range asked for", async () => {
        await driver.write("ranged", chunked(content, 10_000));
        for (const [start, end] of ranges) {
          const result = await driver.read("ranged", { range: { start, end } });
          assert.ok(result);
          assert.equal(result.info.size, content.length, "info describes the whole object");
          const got = await collect(result.body);
          assert.equal(got.length, end - start + 1, `length of ${start}-${end}`);
          assert.ok(got.equals(content.subarray(start, end + 1)), `bytes ${start}-${end}`);
        }
      });

      void it("refuses ranges outside the object with range_not_satisfiable", async () => {
        await driver.write("ranged", chunked(content));
        for (const [start, end] of [
          [0, content.length],
          [content.length, content.length],
          [5, 4],
          [-1, 3],
        ] as const) {
          await assertRejectsWith(driver.read("ranged", { range: { start, end } }), "range_not_satisfiable");
        }
      });
    });

    void describe("open", () => {
      for (const size of [0, 1, 4096, 32 * 1024 - 200, 32 * 1024, 300 * 1024 + 3]) {
        void it(`gives the info and the bytes of one version (${size} bytes)`, async () => {
          const content = patternBytes(size, 9);
          const written = await driver.write("opened", chunked(content, 10_000), { contentType: "application/x-test" });
          const handle = await driver.open("opened");
          assert.ok(handle);
          assertSameInfo(handle.info, written);
          if (handle.contents !== undefined) assert.ok(handle.contents.equals(content), "contents");
          assert.ok((await collect(handle.body())).equals(content), "whole body");
          if (size > 2) {
            const again = await driver.open("opened");
            assert.ok(again);
            const part = await collect(again.body({ start: 1, end: size - 2 }));
            assert.ok(part.equals(content.subarray(1, size - 1)), "ranged body");
          }
        });
      }

      void it("keeps serving the version it opened while a new one is written", async () => {
        const first = patternBytes(200 * 1024, 1);
        const second = patternBytes(150 * 1024, 2);
        await driver.write("versioned", chunked(first));
        const handle = await driver.open("versioned");
        assert.ok(handle);
        await driver.write("versioned", chunked(second));
        assert.equal(handle.info.sha256, sha256Hex(first));
        assert.ok((await collect(handle.body())).equals(first));
        assert.ok((await readAll(driver, "versioned")).equals(second));
      });

      void it("answers undefined for a missing key, and close releases an unread handle", async () => {
        assert.equal(await driver.open("absent"), undefined);
        await driver.write("closable", chunked(patternBytes(100 * 1024, 3)));
        for (let i = 0; i < 50; i++) {
          const handle = await driver.open("closable");
          assert.ok(handle);
          await handle.close();
        }
        assert.equal((await driver.stat("closable"))?.size, 100 * 1024);
      });
    });

    void describe("importFile", () => {
      const stagedFile = async (content: Buffer): Promise<string> => {
        const dir = driver.localStagingDirectory ?? (await mkdtemp(join(tmpdir(), "import-")));
        await mkdir(dir, { recursive: true });
        const file = join(dir, `import-${Math.random().toString(36).slice(2)}`);
        await writeFile(file, content);
        return file;
      };

      for (const size of [0, 5, 300 * 1024]) {
        void it(`stores a verified local file as the object and removes the file (${size} bytes)`, async () => {
          const content = patternBytes(size, 21);
          const file = await stagedFile(content);
          const info = await importFile(driver, "imported/file", file, {
            size,
            sha256: sha256Hex(content),
            contentType: "application/x-imported",
            metadata: { origin: "test" },
          });
          assert.equal(info.size, size);
          assert.equal(info.sha256, sha256Hex(content));
          assert.equal(info.contentType, "application/x-imported");
          assert.deepEqual({ ...info.metadata }, { origin: "test" });
          assertSameInfo(await driver.stat("imported/file"), info);
          assert.ok((await readAll(driver, "imported/file")).equals(content));
          await assert.rejects(stat(file), "the imported file should be gone");
          const page = await driver.list({ prefix: "imported/", limit: 10 });
          assert.deepEqual(page.keys, ["imported/file"]);
        });
      }

      void it("replaces an existing object and keeps its createdAt", async () => {
        const first = await driver.write("imported/again", chunked(patternBytes(10, 1)));
        const content = patternBytes(20, 2);
        const info = await importFile(driver, "imported/again", await stagedFile(content), { size: 20, sha256: sha256Hex(content) });
        assert.equal(info.createdAt.getTime(), first.createdAt.getTime());
        assert.ok((await readAll(driver, "imported/again")).equals(content));
      });
    });

    void describe("delete", () => {
      void it("removes a key and says whether it existed", async () => {
        assert.equal(await driver.delete("nothing"), false);
        await driver.write("x/y", chunked(Buffer.from("1")));
        assert.equal(await driver.delete("x/y"), true);
        assert.equal(await driver.stat("x/y"), undefined);
        assert.equal(await driver.read("x/y"), undefined);
        assert.equal(await driver.delete("x/y"), false);
        assert.deepEqual((await driver.list({ limit: 10 })).keys, []);
      });

      void it("keeps `a` and `a/b` apart", async () => {
        await driver.write("a", chunked(Buffer.from("A")));
        await driver.write("a/b", chunked(Buffer.from("AB")));
        await driver.write("a/b/c", chunked(Buffer.from("ABC")));
        assert.equal((await readAll(driver, "a")).toString(), "A");
        assert.equal((await readAll(driver, "a/b")).toString(), "AB");
        assert.equal(await driver.delete("a/b"), true);
        assert.equal((await readAll(driver, "a")).toString(), "A");
        assert.equal((await readAll(driver, "a/b/c")).toString(), "ABC");
        assert.equal(await driver.delete("a"), true);
        assert.equal((await readAll(driver, "a/b/c")).toString(), "ABC");
        assert.deepEqual((await driver.list({ limit: 10 })).keys, ["a/b/c"]);
        await driver.write("a/b", chunked(Buffer.from("again")));
        assert.deepEqual((await driver.list({ limit: 10 })).keys, ["a/b", "a/b/c"]);
      });

      void it("lets a read that already started finish with the deleted object's bytes", async () => {
        const content = patternBytes(1024 * 1024, 5);
        await driver.write("going", chunked(content, 64 * 1024));
        const result = await driver.read("going");
        assert.ok(result);
        assert.equal(await driver.delete("going"), true);
        assert.ok((await collect(result.body)).equals(content));
      });
    });

    void describe("preconditions", () => {
      void it("create-only (ifNoneMatch *) fails with precondition_failed when the key exists", async () => {
        const first = await driver.write("once", chunked(Buffer.from("first")), { ifNoneMatch: "*" });
        await assertRejectsWith(
          driver.write("once", chunked(Buffer.from("second")), { ifNoneMatch: "*" }),
          "precondition_failed",
        );
        assertSameInfo(await driver.stat("once"), first);
        assert.equal((await readAll(driver, "once")).toString(), "first");
      });

      void it("20 parallel create-only writes of one key: exactly one wins", async () => {
        const contents = Array.from({ length: 20 }, (_, i) => patternBytes(50_000 + i, 100 + i));
        const results = await Promise.allSettled(
          contents.map((content) => driver.write("race", interleaved(content, 8_192), { ifNoneMatch: "*" })),
        );
        const winners = results.flatMap((result, i) => (result.status === "fulfilled" ? [i] : []));
        assert.equal(winners.length, 1, "exactly one create-only write succeeds");
        for (const result of results) {
          if (result.status === "rejected") assertVaultError(result.reason, "precondition_failed");
        }
        const winner = contents[winners[0]!]!;
        assert.ok((await readAll(driver, "race")).equals(winner));
        assert.equal((await driver.stat("race"))?.sha256, sha256Hex(winner));
        assert.deepEqual((await driver.list({ limit: 10 })).keys, ["race"]);
      });

      void it("compare-and-swap (ifMatch) needs the current ETag", async () => {
        const first = await driver.write("cas", chunked(Buffer.from("v1")));
        await assertRejectsWith(
          driver.write("cas", chunked(Buffer.from("v2")), { ifMatch: '"0000"' }),
          "precondition_failed",
        );
        await assertRejectsWith(
          driver.write("cas", chunked(Buffer.from("v2")), { ifMatch: first.sha256 }),
          "precondition_failed",
          "the ETag is quoted",
        );
        assert.equal((await readAll(driver, "cas")).toString(), "v1");
        const second = await driver.write("cas", chunked(Buffer.from("v2")), { ifMatch: first.etag });
        assert.equal((await readAll(driver, "cas")).toString(), "v2");
        await assertRejectsWith(
          driver.write("cas", chunked(Buffer.from("v3")), { ifMatch: first.etag }),
          "precondition_failed",
        );
        await driver.write("cas", chunked(Buffer.from("v3")), { ifMatch: second.etag });
        assert.equal((await readAll(driver, "cas")).toString(), "v3");
      });

      void it("ifMatch on a missing key fails with precondition_failed; `*` means any current version", async () => {
        await assertRejectsWith(
          driver.write("absent", chunked(Buffer.from("x")), { ifMatch: '"abc"' }),
          "precondition_failed",
        );
        await assertRejectsWith(driver.write("absent", chunked(Buffer.from("x")), { ifMatch: "*" }), "precondition_failed");
        assert.equal(await driver.stat("absent"), undefined);
        await driver.write("absent", chunked(Buffer.from("x")));
        await driver.write("absent", chunked(Buffer.from("y")), { ifMatch: "*" });
        assert.equal((await readAll(driver, "absent")).toString(), "y");
      });

      void it("parallel compare-and-swap writes from one ETag: exactly one wins", async () => {
        const base = await driver.write("cas-race", chunked(Buffer.from("base")));
        const contents = Array.from({ length: 10 }, (_, i) => patternBytes(20_000, 200 + i));
        const results = await Promise.allSettled(
          contents.map((content) => driver.write("cas-race", interleaved(content, 4_096), { ifMatch: base.etag })),
        );
        const winners = results.flatMap((result, i) => (result.status === "fulfilled" ? [i] : []));
        assert.equal(winners.length, 1);
        for (const result of results) {
          if (result.status === "rejected") assertVaultError(result.reason, "precondition_failed");
        }
        assert.ok((await readAll(driver, "cas-race")).equals(contents[winners[0]!]!));
      });
    });

    void describe("atomicity", () => {
      void it("parallel overwrites leave exactly one of the written objects, whole", async () => {
        const contents = Array.from({ length: 20 }, (_, i) => patternBytes(40_000 + 1_000 * i, 300 + i));
        const infos = await Promise.all(contents.map((content) => driver.write("hot", interleaved(content, 7_000))));
        const stored = await readAll(driver, "hot");
        const index = contents.findIndex((content) => content.equals(stored));
        assert.notEqual(index, -1, "the stored bytes are one whole written body");
        const stat = await driver.stat("hot");
        assert.equal(stat?.sha256, sha256Hex(stored));
        assert.equal(stat?.size, stored.length);
        assert.ok(infos.some((info) => info.sha256 === stat?.sha256));
      });

      void it("readers see the old object until the write completes, then the whole new one", async () => {
        const old = patternBytes(10_000, 6);
        const oldInfo = await driver.write("swap", chunked(old));
        const next = patternBytes(500_000, 7);
        const gate = deferred();
        let pulled = 0;
        async function* gated(): AsyncGenerator<Uint8Array> {
          for (let offset = 0; offset < next.length; offset += 50_000) {
            if (offset === 250_000) await gate.promise;
            pulled++;
            yield next.subarray(offset, offset + 50_000);
          }
        }
        const writing = driver.write("swap", gated());
        while (pulled < 5) await tick();
        assertSameInfo(await driver.stat("swap"), oldInfo);
        assert.ok((await readAll(driver, "swap")).equals(old));
        const newKey = driver.write("fresh", gated());
        await tick();
        assert.equal(await driver.stat("fresh"), undefined, "an unfinished write is invisible");
        assert.deepEqual((await driver.list({ limit: 10 })).keys, ["swap"]);
        gate.resolve();
        await Promise.all([writing, newKey]);
        assert.ok((await readAll(driver, "swap")).equals(next));
        assert.equal((await driver.stat("swap"))?.sha256, sha256Hex(next));
      });

      void it("a read that started before an overwrite keeps streaming the old bytes", async () => {
        const old = patternBytes(1024 * 1024 + 5, 8);
        await driver.write("stable", chunked(old, 100_000));
        const result = await driver.read("stable");
        assert.ok(result);
        await driver.write("stable", chunked(patternBytes(2 * 1024 * 1024, 9), 100_000));
        assert.ok((await collect(result.body)).equals(old));
      });
    });

    void describe("checks during write (nothing stored when they fail)", () => {
      void it("maxSize: payload_too_large as soon as it is exceeded, without reading the rest", async () => {
        await driver.write("limited", chunked(Buffer.from("previous")));
        let pulled = 0;
        let closed = false;
        async function* endless(): AsyncGenerator<Uint8Array> {
          try {
            for (;;) {
              pulled++;
              yield Buffer.alloc(1_000, 1);
            }
          } finally {
            closed = true;
          }
        }
        await assertRejectsWith(driver.write("limited", endless(), { maxSize: 2_500 }), "payload_too_large");
        assert.equal(pulled, 3, "the source is not read past the chunk that exceeded maxSize");
        for (let i = 0; i < 100 && !closed; i++) await tick();
        assert.ok(closed, "the source was told to stop (return() called)");
        assert.equal((await readAll(driver, "limited")).toString(), "previous");

        await assertRejectsWith(driver.write("new", endless(), { maxSize: 0 }), "payload_too_large");
        assert.equal(await driver.stat("new"), undefined);
        const exact = await driver.write("exact", chunked(Buffer.alloc(2_500), 1_000), { maxSize: 2_500 });
        assert.equal(exact.size, 2_500);
      });

      void it("expectedSize: bad_request when the body is shorter or longer", async () => {
        await driver.write("sized", chunked(Buffer.from("previous")));
        await assertRejectsWith(driver.write("sized", chunked(Buffer.alloc(10)), { expectedSize: 11 }), "bad_request");
        await assertRejectsWith(
          driver.write("sized", chunked(Buffer.alloc(12), 4), { expectedSize: 11 }),
          "bad_request",
        );
        await assertRejectsWith(driver.write("other", chunked(Buffer.alloc(10)), { expectedSize: 9 }), "bad_request");
        assert.equal((await readAll(driver, "sized")).toString(), "previous");
        assert.equal(await driver.stat("other"), undefined);
        assert.equal((await driver.write("sized", chunked(Buffer.alloc(11)), { expectedSize: 11 })).size, 11);
      });

      void it("expectedSha256 and expectedMd5Base64: checksum_mismatch unless they match", async () => {
        const content = patternBytes(33_333, 10);
        const sha = sha256Hex(content);
        const md5 = createHash("md5").update(content).digest("base64");
        const otherMd5 = createHash("md5").update("other").digest("base64");
        await assertRejectsWith(
          driver.write("summed", chunked(content), { expectedSha256: sha256Hex(Buffer.from("other")) }),
          "checksum_mismatch",
        );
        await assertRejectsWith(driver.write("summed", chunked(content), { expectedMd5Base64: otherMd5 }), "checksum_mismatch");
        await assertRejectsWith(
          driver.write("summed", chunked(content), { expectedSha256: sha, expectedMd5Base64: otherMd5 }),
          "checksum_mismatch",
        );
        assert.equal(await driver.stat("summed"), undefined);
        assert.deepEqual((await driver.list({ limit: 10 })).keys, []);

        const info = await driver.write("summed", chunked(content, 1_000), {
          expectedSha256: sha.toUpperCase(),
          expectedMd5Base64: md5,
          expectedSize: content.length,
        });
        assert.equal(info.sha256, sha);
        await assertRejectsWith(
          driver.write("summed", chunked(Buffer.from("changed")), { expectedSha256: sha }),
          "checksum_mismatch",
        );
        assert.ok((await readAll(driver, "summed")).equals(content));
      });

      void it("a source that fails half-way rejects the write and leaves the previous object", async () => {
        const previous = await driver.write("fragile", chunked(Buffer.from("previous")));
        async function* failing(): AsyncGenerator<Uint8Array> {
          yield Buffer.alloc(100_000, 1);
          yield Buffer.alloc(100_000, 2);
          throw new Error("connection reset");
        }
        await assertRejectsWith(driver.write("fragile", failing()), "bad_request");
        await assertRejectsWith(driver.write("fresh", failing()), "bad_request");
        assertSameInfo(await driver.stat("fragile"), previous);
        assert.equal((await readAll(driver, "fragile")).toString(), "previous");
        assert.equal(await driver.stat("fresh"), undefined);
        assert.deepEqual((await driver.list({ limit: 10 })).keys, ["fragile"]);
      });

      void it("a source that fails with a VaultError rejects with that error", async () => {
        async function* failing(): AsyncGenerator<Uint8Array> {
          yield Buffer.from("part");
          throw new VaultError("upstream_failed", "upstream closed the connection");
        }
        await assertRejectsWith(driver.write("upstream", failing()), "upstream_failed");
        assert.equal(await driver.stat("upstream"), undefined);
      });

      void it("an aborted signal cancels the write, even while the source is stalled", async () => {
        const before = new AbortController();
        before.abort(new Error("client went away"));
        let pulledAfterAbort = 0;
        async function* counting(): AsyncGenerator<Uint8Array> {
          pulledAfterAbort++;
          yield Buffer.from("x");
        }
        await assert.rejects(driver.write("aborted", counting(), { signal: before.signal }));
        assert.equal(pulledAfterAbort, 0, "an aborted write does not read its body");

        await driver.write("kept", chunked(Buffer.from("previous")));
        const controller = new AbortController();
        const stall = deferred();
        let yielded = false;
        async function* stalling(): AsyncGenerator<Uint8Array> {
          yield Buffer.alloc(64 * 1024, 7);
          yielded = true;
          await stall.promise; // a client that stops sending
          yield Buffer.alloc(1, 7);
        }
        // Both rejection handlers are attached right away: the writes reject at the same moment.
        const writes = Promise.all([
          assert.rejects(driver.write("kept", stalling(), { signal: controller.signal })),
          assert.rejects(driver.write("aborted", stalling(), { signal: controller.signal })),
        ]);
        while (!yielded) await tick();
        controller.abort(new Error("client went away"));
        await writes;
        stall.resolve();
        assert.equal((await readAll(driver, "kept")).toString(), "previous");
        assert.equal(await driver.stat("aborted"), undefined);
        assert.deepEqual((await driver.list({ limit: 10 })).keys, ["kept"]);
      });
    });

    void describe("list", () => {
      void it("lists in UTF-8 byte order, not UTF-16 order", async () => {
        const keys = ["b", "a", "\uFFFF", "😀", "\uE000", "ab", "a/b", "a0", "B", "é", "a b", "😀/x", "\uFFFFa"];
        for (const key of keys) await driver.write(key, chunked(Buffer.from(key)));
        const page = await driver.list({ limit: 100 });
        assert.deepEqual(page.keys, ["B", "a", "a b", "a/b", "a0", "ab", "b", "é", "\uE000", "\uFFFF", "\uFFFFa", "😀", "😀/x"]);
        assert.deepEqual(page.keys, [...keys].sort(byUtf8Bytes));
        assert.equal(page.isTruncated, false);
      });

      void it("pages with limit and startAfter, and filters by prefix", async () => {
        const keys = ["p/1", "p/2", "p/3", "p/3/x", "p0", "q", "o", "p", "p/😀", "p/\uFFFF"];
        for (const key of keys) await driver.write(key, chunked(Buffer.from("v")));
        assert.deepEqual(await driver.list({ limit: 2 }), { keys: ["o", "p"], isTruncated: true });
        assert.deepEqual(await driver.list({ prefix: "p/", limit: 3 }), {
          keys: ["p/1", "p/2", "p/3"],
          isTruncated: true,
        });
        assert.deepEqual(await driver.list({ prefix: "p/", startAfter: "p/3", limit: 10 }), {
          keys: ["p/3/x", "p/\uFFFF", "p/😀"],
          isTruncated: false,
        });
        assert.deepEqual(await driver.list({ prefix: "p/", startAfter: "p/3/x", limit: 2 }), {
          keys: ["p/\uFFFF", "p/😀"],
          isTruncated: false,
        });
        assert.deepEqual(
          await driver.list({ prefix: "p/", startAfter: "p/25", limit: 1 }),
          { keys: ["p/3"], isTruncated: true },
          "startAfter need not exist",
        );
        assert.deepEqual(
          await driver.list({ prefix: "p/", startAfter: "a", limit: 1 }),
          { keys: ["p/1"], isTruncated: true },
          "a startAfter before the prefix starts at the prefix",
        );
        assert.deepEqual(await driver.list({ prefix: "p/", startAfter: "z", limit: 5 }), { keys: [], isTruncated: false });
        assert.deepEqual(await driver.list({ prefix: "nothing", limit: 5 }), { keys: [], isTruncated: false });
        assert.deepEqual(await driver.list({ prefix: "q", limit: 1 }), { keys: ["q"], isTruncated: false });
        assert.deepEqual(await driver.list({ startAfter: "q", limit: 5 }), { keys: [], isTruncated: false });
      });

      void it("keeps pagination valid across deletes of the cursor key", async () => {
        for (const key of ["k1", "k2", "k3", "k4"]) await driver.write(key, chunked(Buffer.from(key)));
        const first = await driver.list({ limit: 2 });
        assert.deepEqual(first.keys, ["k1", "k2"]);
        await driver.delete("k2");
        await driver.delete("k3");
        assert.deepEqual(await driver.list({ startAfter: "k2", limit: 2 }), { keys: ["k4"], isTruncated: false });
      });

      void it("walks a bigger store page by page in order, each key once", async () => {
        const random = seededRandom(42);
        const alphabet = ["a", "b", "/", "é", "€", "\uFFFF", "\uE000", "😀", "𝄞", "Z", "0", " "];
        const keys = new Set<string>();
        while (keys.size < 400) {
          let key = "";
          const length = 1 + Math.floor(random() * 6);
          for (let i = 0; i < length; i++) key += alphabet[Math.floor(random() * alphabet.length)];
          keys.add(key);
        }
        await Promise.all([...keys].map((key) => driver.write(key, chunked(Buffer.from("v")))));
        const seen: string[] = [];
        let startAfter: string | undefined;
        for (;;) {
          const page = await driver.list({ limit: 37, ...(startAfter === undefined ? {} : { startAfter }) });
          seen.push(...page.keys);
          if (!page.isTruncated) break;
          assert.equal(page.keys.length, 37);
          startAfter = page.keys.at(-1);
        }
        assert.deepEqual(seen, [...keys].sort(byUtf8Bytes));
        const prefixed = await driver.list({ prefix: "é", limit: 1000 });
        assert.deepEqual(prefixed.keys, [...keys].filter((key) => key.startsWith("é")).sort(byUtf8Bytes));
      });

      void it("refuses a limit outside 1..1000 with bad_request", async () => {
        for (const limit of [0, -1, 1001, 1.5, Number.NaN]) {
          await assertRejectsWith(driver.list({ limit }), "bad_request");
        }
      });
    });

    void describe("keys are opaque names, stored losslessly", () => {
      void it("stores every nasty key side by side and gives each one back", async () => {
        for (const [i, key] of NASTY_KEYS.entries()) {
          await driver.write(key, chunked(contentFor(key)), { metadata: { index: String(i) } });
        }
        for (const [i, key] of NASTY_KEYS.entries()) {
          const info = await driver.stat(key);
          assert.equal(info?.key, key, `stat ${JSON.stringify(key)}`);
          assert.equal(info.metadata["index"], String(i));
          assert.ok((await readAll(driver, key)).equals(contentFor(key)), `content of ${JSON.stringify(key)}`);
        }
        const listed: string[] = [];
        let startAfter: string | undefined;
        for (;;) {
          const page = await driver.list({ limit: 7, ...(startAfter === undefined ? {} : { startAfter }) });
          listed.push(...page.keys);
          if (!page.isTruncated) break;
          startAfter = page.keys.at(-1);
        }
        assert.deepEqual(listed, [...NASTY_KEYS].sort(byUtf8Bytes));
        for (const key of NASTY_KEYS) assert.equal(await driver.delete(key), true, `delete ${JSON.stringify(key)}`);
        assert.deepEqual((await driver.list({ limit: 10 })).keys, []);
      });

      void it("keeps keys that differ only by case apart", async () => {
        for (const key of ["key", "Key", "KEY", "kEy/x", "KEY/x"]) await driver.write(key, chunked(Buffer.from(key)));
        for (const key of ["key", "Key", "KEY", "kEy/x", "KEY/x"]) {
          assert.equal((await readAll(driver, key)).toString(), key);
        }
        await driver.delete("Key");
        assert.deepEqual((await driver.list({ limit: 10 })).keys, ["KEY", "KEY/x", "kEy/x", "key"]);
      });
    });
  });
}

// ---- helpers (shared with the driver-specific tests) ----

/** `content` as an async source of chunks of `size` bytes (one empty source for empty content). */
export async function* chunked(content: Uint8Array, size = 65_536): AsyncGenerator<Uint8Array> {
  for (let offset = 0; offset < content.length; offset += size) {
    yield content.subarray(offset, Math.min(offset + size, content.length));
  }
}

/** Like `chunked`, but gives other writes a turn between chunks so concurrent writes interleave. */
async function* interleaved(content: Uint8Array, size: number): AsyncGenerator<Uint8Array> {
  for await (const chunk of chunked(content, size)) {
    await tick();
    yield chunk;
  }
}

export async function collect(body: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of body as AsyncIterable<Buffer>) chunks.push(Buffer.from(chunk));
  return Buffer.concat(chunks);
}

export async function readAll(driver: StorageDriver, key: string): Promise<Buffer> {
  const result = await driver.read(key);
  assert.ok(result, `expected ${JSON.stringify(key)} to exist`);
  return collect(result.body);
}

/** Deterministic pseudo-random bytes. */
export function patternBytes(size: number, seed: number): Buffer {
  const random = seededRandom(seed);
  const bytes = Buffer.allocUnsafe(size);
  for (let i = 0; i < size; i++) bytes[i] = Math.floor(random() * 256);
  return bytes;
}

export function contentFor(key: string): Buffer {
  return Buffer.from(`content of ${JSON.stringify(key)}`, "utf8");
}

export function sha256Hex(content: Uint8Array): string {
  return createHash("sha256").update(content).digest("hex");
}

export function byUtf8Bytes(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, "utf8"), Buffer.from(b, "utf8"));
}

export async function assertRejectsWith(promise: Promise<unknown>, kind: ErrorKind, message?: string): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assertVaultError(error, kind, message);
    return true;
  });
}

export function assertVaultError(error: unknown, kind: ErrorKind, message?: string): void {
  assert.ok(isVaultError(error), `expected a VaultError (${kind}), got ${String(error)}${message ? `: ${message}` : ""}`);
  assert.equal(error.kind, kind, `${error.message}${message ? ` (${message})` : ""}`);
}

export function assertSameInfo(actual: ObjectInfo | undefined, expected: ObjectInfo): void {
  assert.ok(actual, `expected info for ${expected.key}`);
  assert.deepEqual(
    { ...actual, metadata: { ...actual.metadata } },
    { ...expected, metadata: { ...expected.metadata } },
  );
}

/** Lets pending I/O callbacks and other writes run (not a sleep: no timing involved). */
export function tick(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

function seededRandom(seed: number): () => number {
  let state = seed >>> 0 || 1;
  return () => {
    state ^= state << 13;
    state >>>= 0;
    state ^= state >>> 17;
    state ^= state << 5;
    state >>>= 0;
    return state / 0x1_0000_0000;
  };
}
