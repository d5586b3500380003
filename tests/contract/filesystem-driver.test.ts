import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { lstat, mkdir, mkdtemp, readFile, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, describe, it } from "node:test";
import { FilesystemDriver, STAGING_PREFIX, type FilesystemDriverOptions } from "../../src/storage/filesystem-driver.js";
import { keyToRelativePath, relativePathToKey } from "../../src/storage/object-path.js";
import {
  NASTY_KEYS,
  assertRejectsWith,
  assertSameInfo,
  byUtf8Bytes,
  chunked,
  contentFor,
  readAll,
  runStorageDriverContract,
  tick,
} from "./storage-driver.contract.js";

const temporary: string[] = [];

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), "av-fs-driver-"));
  temporary.push(dir);
  return dir;
}

after(async () => {
  await Promise.all(temporary.map((dir) => rm(dir, { recursive: true, force: true })));
});

runStorageDriverContract("filesystem", async (options) =>
  FilesystemDriver.open({ root_path: path.join(await tempDir(), "store"), ...options }),
);

/** Every path below `dir` (lstat, never following links), relative to it. */
async function walk(dir: string, base = dir): Promise<{ files: string[]; dirs: string[] }> {
  const files: string[] = [];
  const dirs: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const abs = path.join(dir, entry.name);
    const rel = path.relative(base, abs);
    if (entry.isDirectory()) {
      dirs.push(rel);
      const below = await walk(abs, base);
      files.push(...below.files);
      dirs.push(...below.dirs);
    } else {
      files.push(rel);
    }
  }
  return { files, dirs };
}

async function stagingFiles(root: string): Promise<string[]> {
  return (await walk(root)).files.filter((file) => path.basename(file).startsWith(".tmp-"));
}

void describe("filesystem driver", () => {
  const opened: FilesystemDriver[] = [];
  const open = async (options: FilesystemDriverOptions): Promise<FilesystemDriver> => {
    const driver = await FilesystemDriver.open(options);
    opened.push(driver);
    return driver;
  };
  after(async () => {
    for (const driver of opened) await driver.close();
  });

  void it("finds the same keys, infos and bytes after a reopen", async () => {
    const root = path.join(await tempDir(), "store");
    const first = await open({ root_path: root });
    const infos = new Map<string, Awaited<ReturnType<FilesystemDriver["write"]>>>();
    for (const key of NASTY_KEYS) {
      infos.set(key, await first.write(key, chunked(contentFor(key)), { contentType: "text/plain", metadata: { k: key } }));
    }
    await first.close();
    const second = await open({ root_path: root });
    assert.equal((await second.indexed).objects, NASTY_KEYS.length);
    assert.equal((await second.indexed).ignoredEntries, 0);
    assert.deepEqual((await second.list({ limit: 1000 })).keys, [...NASTY_KEYS].sort(byUtf8Bytes));
    for (const key of NASTY_KEYS) {
      assertSameInfo(await second.stat(key), infos.get(key)!);
      assert.ok((await readAll(second, key)).equals(contentFor(key)));
    }
  });

  void it("removes staging files of interrupted writes at open; they never show up as objects", async () => {
    const root = path.join(await tempDir(), "store");
    const first = await open({ root_path: root });
    await first.write("a/b", chunked(Buffer.from("kept")));
    await first.close();
    const objects = path.join(root, "objects");
    // A crash before the rename: a complete object file, still under its staging name.
    await writeFile(path.join(objects, "a", ".tmp-0011223344556677"), await readFile(path.join(objects, "a", "b~")));
    await writeFile(path.join(objects, ".tmp-deadbeef"), "half written");
    await mkdir(path.join(objects, "x", "y"), { recursive: true });
    await writeFile(path.join(objects, "x", "y", ".tmp-cafe"), "");

    const second = await open({ root_path: root });
    assert.equal((await second.indexed).removedStagingFiles, 3);
    assert.deepEqual(await stagingFiles(root), []);
    assert.deepEqual((await second.list({ limit: 10 })).keys, ["a/b"]);
    assert.equal((await readAll(second, "a/b")).toString(), "kept");
  });

  void it("ignores and reports foreign files; never serves a corrupt object", async () => {
    const root = path.join(await tempDir(), "store");
    const objects = path.join(root, "objects");
    await mkdir(path.join(objects, ".git"), { recursive: true });
    await writeFile(path.join(objects, "README"), "not an object");
    await writeFile(path.join(objects, "%41~"), "not canonical: the key A lives in A~");
    await writeFile(path.join(objects, "torn~"), "no footer here");
    const warnings: string[] = [];
    const driver = await open({ root_path: root, onWarning: (message) => warnings.push(message) });
    assert.equal((await driver.indexed).ignoredEntries, 3);
    assert.equal(warnings.length, 3);
    // The walk opens no files, so a torn file is listed, but it is never served.
    assert.deepEqual((await driver.list({ limit: 10 })).keys, ["torn"]);
    assert.equal(await driver.stat("torn"), undefined);
    assert.equal(await driver.read("torn"), undefined);
    assert.equal(await driver.stat("A"), undefined);
    assert.ok(warnings.some((warning) => warning.includes("corrupt")));
    // A write replaces it.
    await driver.write("torn", chunked(Buffer.from("whole")));
    assert.equal((await readAll(driver, "torn")).toString(), "whole");
  });

  void it("writes nothing outside its root, whatever the key", async () => {
    const parent = await tempDir();
    const root = path.join(parent, "store");
    const driver = await open({ root_path: root });
    for (const key of NASTY_KEYS) await driver.write(key, chunked(contentFor(key)));
    const { files, dirs } = await walk(parent);
    for (const entry of [...files, ...dirs]) {
      assert.ok(
        entry === "store" || entry === path.join("store", "objects") || entry.startsWith(path.join("store", "objects") + path.sep),
        `${entry} is outside the store's objects directory`,
      );
      for (const name of entry.split(path.sep)) {
        assert.ok(Buffer.byteLength(name) <= 255, `${name.length}-char name`);
        assert.ok(name !== "." && name !== "..");
      }
    }
    const objectFiles = files.map((file) => path.relative(path.join("store", "objects"), file).split(path.sep).join("/"));
    assert.equal(objectFiles.length, NASTY_KEYS.length);
    assert.deepEqual(objectFiles.map((file) => relativePathToKey(file) ?? `undecodable: ${file}`).sort(byUtf8Bytes), [...NASTY_KEYS].sort(byUtf8Bytes));
    for (const key of NASTY_KEYS) {
      assert.ok(existsSync(path.join(root, "objects", keyToRelativePath(key))));
    }
    assert.equal(existsSync("/abs"), false);
    assert.equal(existsSync(path.join(parent, "x")), false);
    for (const key of NASTY_KEYS) await driver.delete(key);
    assert.deepEqual((await walk(path.join(root, "objects"))).files, []);
    assert.deepEqual((await walk(path.join(root, "objects"))).dirs, [], "empty directories are pruned");
  });

  void it("leaves the previous object and no staging file when the source fails half-way or the write is aborted", async () => {
    const root = path.join(await tempDir(), "store");
    const driver = await open({ root_path: root });
    const previous = await driver.write("dir/object", chunked(Buffer.from("previous version")));
    async function* failing(): AsyncGenerator<Uint8Array> {
      yield randomBytes(1024 * 1024);
      yield randomBytes(1024 * 1024);
      throw new Error("upstream connection reset");
    }
    await assertRejectsWith(driver.write("dir/object", failing()), "bad_request");
    await assertRejectsWith(driver.write("dir/new", failing()), "bad_request");
    const controller = new AbortController();
    async function* aborting(): AsyncGenerator<Uint8Array> {
      yield randomBytes(1024 * 1024);
      controller.abort();
      yield randomBytes(1024 * 1024);
    }
    await assert.rejects(driver.write("dir/object", aborting(), { signal: controller.signal }));
    await assertRejectsWith(
      driver.write("dir/object", chunked(Buffer.alloc(10_000)), { maxSize: 100 }),
      "payload_too_large",
    );
    assertSameInfo(await driver.stat("dir/object"), previous);
    assert.equal((await readAll(driver, "dir/object")).toString(), "previous version");
    assert.equal(await driver.stat("dir/new"), undefined);
    assert.deepEqual(await stagingFiles(root), []);
    assert.deepEqual((await walk(path.join(root, "objects"))).files, [path.join("dir", "object~")]);
  });

  void it("survives deletes pruning the directory a write is creating its file in", async () => {
    const root = path.join(await tempDir(), "store");
    const driver = await open({ root_path: root, fsync: false });
    for (let i = 0; i < 200; i++) {
      await driver.write(`d/e/old${i}`, chunked(Buffer.from("old")));
      const [deleted, written] = await Promise.all([
        driver.delete(`d/e/old${i}`),
        driver.write(`d/e/new${i}`, chunked(Buffer.from(`new${i}`))),
      ]);
      assert.equal(deleted, true);
      assert.equal(written.size, `new${i}`.length);
      assert.equal((await readAll(driver, `d/e/new${i}`)).toString(), `new${i}`);
      await driver.delete(`d/e/new${i}`);
    }
    assert.deepEqual((await driver.list({ limit: 10 })).keys, []);
  });

  void it("refuses a root path too long for the longest key", async () => {
    const root = path.join(await tempDir(), "r".repeat(200), "s".repeat(200), "t".repeat(200), "u".repeat(200), "v".repeat(200));
    await assertRejectsWith(FilesystemDriver.open({ root_path: root }), "bad_request");
  });

  void it("writes and reads a 256 MiB object with memory independent of its size", async () => {
    const root = path.join(await tempDir(), "store");
    const driver = await open({ root_path: root });
    const chunkSize = 1024 * 1024;
    const chunks = 256;
    const block = randomBytes(chunkSize);
    const written = createHash("sha256");
    const baseline = process.memoryUsage().rss;
    let peak = baseline;
    const sample = (): void => {
      peak = Math.max(peak, process.memoryUsage().rss);
    };
    async function* generated(): AsyncGenerator<Uint8Array> {
      for (let i = 0; i < chunks; i++) {
        block.writeUInt32BE(i, 0); // every chunk differs
        written.update(block);
        sample();
        yield block;
      }
    }
    const info = await driver.write("huge", generated());
    assert.equal(info.size, chunkSize * chunks);
    assert.equal(info.sha256, written.digest("hex"));

    const result = await driver.read("huge");
    assert.ok(result);
    const read = createHash("sha256");
    let size = 0;
    let n = 0;
    for await (const chunk of result.body as AsyncIterable<Buffer>) {
      read.update(chunk);
      size += chunk.length;
      if (++n % 16 === 0) sample();
    }
    sample();
    assert.equal(size, info.size);
    assert.equal(read.digest("hex"), info.sha256);
    const growth = peak - baseline;
    assert.ok(growth < 64 * 1024 * 1024, `RSS grew by ${(growth / 1024 / 1024).toFixed(1)} MiB for a 256 MiB object`);
    await driver.delete("huge");
    await tick();
  });

  void it("stats without reading the body: the file is body + trailer + footer", async () => {
    const root = path.join(await tempDir(), "store");
    const driver = await open({ root_path: root, fsync: false });
    const info = await driver.write("k", chunked(Buffer.alloc(5_000, 1)), { metadata: { m: "v" } });
    const file = path.join(root, "objects", "k~");
    const { size } = await lstat(file);
    assert.ok(size > 5_000 + 16);
    const bytes = await readFile(file);
    assert.ok(bytes.subarray(0, 5_000).equals(Buffer.alloc(5_000, 1)));
    assert.equal(bytes.subarray(bytes.length - 8).toString("latin1"), "AVLTOBJ1");
    assert.deepEqual((await driver.stat("k"))?.metadata, info.metadata);
  });
});

void describe("filesystem driver: opening a large store", () => {
  const bytesOf = (text: string): AsyncIterable<Uint8Array> =>
    (async function* () {
      yield Buffer.from(text);
    })();

  void it("serves reads and writes while the key index is still being built; list waits for it", async () => {
    const root = await mkdtemp(path.join(tmpdir(), "fs-bg-index-"));
    try {
      const first = await FilesystemDriver.open({ root_path: root, fsync: false });
      const keys = Array.from({ length: 3000 }, (_, i) => `d${i % 50}/k${String(i).padStart(5, "0")}`);
      for (let i = 0; i < keys.length; i += 100) await Promise.all(keys.slice(i, i + 100).map((key) => first.write(key, bytesOf(key))));
      await first.close();

      // The walk waits for the gate: everything below runs before the index is built, on any machine.
      let startWalk = (): void => undefined;
      const scanGate = new Promise<void>((resolve) => (startWalk = resolve));
      const second = await FilesystemDriver.open({ root_path: root, fsync: false, scanSliceMs: 0, scanGate });
      let indexedYet = false;
      void second.indexed.then(() => (indexedYet = true));
      // Right after open, before the walk is done: reads, writes and deletes work.
      const late = keys[keys.length - 1] ?? "";
      assert.equal((await second.stat(late))?.size, Buffer.byteLength(late));
      await second.write("written/during-indexing", bytesOf("new"));
      assert.equal(await second.delete(keys[0] ?? ""), true);
      assert.equal(indexedYet, false);
      // A write whose staging file exists while the walk runs: the walk must not remove it.
      let finishBody = (): void => undefined;
      const bodyDone = new Promise<void>((resolve) => (finishBody = resolve));
      const slow = second.write(
        "written/while-walking",
        (async function* () {
          yield Buffer.from("part ");
          await bodyDone;
          yield Buffer.from("rest");
        })(),
      );
      const stagingDir = path.join(root, "objects", "written");
      while (!(await readdir(stagingDir)).some((name) => name.startsWith(STAGING_PREFIX))) await new Promise((resolve) => setTimeout(resolve, 5));
      // A list asked for now waits for the walk.
      const early = second.list({ limit: 1 });
      startWalk();
      assert.equal((await early).keys.length, 1);
      const report = await second.indexed;
      finishBody();
      await slow;
      assert.equal(report.removedStagingFiles, 0, "a live write's staging file was taken for a leftover");
      const listed: string[] = [];
      let startAfter: string | undefined;
      for (;;) {
        const page = await second.list({ limit: 1000, ...(startAfter === undefined ? {} : { startAfter }) });
        listed.push(...page.keys);
        startAfter = page.keys.at(-1);
        if (!page.isTruncated) break;
      }
      assert.equal(listed.length, keys.length + 1, "3000 - 1 deleted + 2 written");
      assert.ok(!listed.includes(keys[0] ?? ""), "a key deleted during indexing is listed");
      assert.ok(listed.includes("written/during-indexing"));
      assert.ok(listed.includes("written/while-walking"));
      assert.equal((await second.stat("written/while-walking"))?.size, "part rest".length);
      await second.close();
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});
