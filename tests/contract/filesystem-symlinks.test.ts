/**
 * The filesystem driver never follows a symbolic link below its root: not a directory link
 * planted anywhere on a key's path (`objects/evil -> /elsewhere`), not a link in place of an
 * object's file, not `objects/` or the cache's namespace directory themselves. Such a key reads
 * as missing (reported through `onWarning`), a write to it is refused, and nothing outside the
 * root is read, written or removed. (Links in `root_path` itself are the operator's choice.)
 * Reads take a directory they found sound within the last second as still sound; writes check
 * every time.
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, describe, it } from "node:test";
import { FilesystemDriver, type FilesystemDriverOptions } from "../../src/storage/filesystem-driver.js";
import { importFile } from "../../src/storage/import-file.js";
import { createStorageDriver } from "../../src/storage/registry.js";
import type { StorageDriver } from "../../src/storage/storage-driver.js";
import { assertRejectsWith, chunked, readAll, sha256Hex } from "./storage-driver.contract.js";

const temporary: string[] = [];
const opened: StorageDriver[] = [];

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), "av-fs-symlinks-"));
  temporary.push(dir);
  return dir;
}

after(async () => {
  for (const driver of opened) await driver.close();
  await Promise.all(temporary.map((dir) => rm(dir, { recursive: true, force: true })));
});

async function openDriver(options: FilesystemDriverOptions): Promise<FilesystemDriver> {
  const driver = await FilesystemDriver.open(options);
  opened.push(driver);
  return driver;
}

const bytes = (text: string): AsyncIterable<Uint8Array> => chunked(Buffer.from(text));

/** Every file below `dir`, relative to it (never following links). */
async function filesBelow(dir: string): Promise<string[]> {
  const files: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (!entry.isDirectory()) files.push(path.relative(dir, path.join(entry.parentPath, entry.name)));
  }
  return files.sort();
}

/**
 * A store with the keys `<dir>/secret` and `<dir>/deeper/secret`, whose directory `<dir>` was
 * then swapped for a link to a directory outside the root holding sound object files of those
 * same keys (so the store would serve them, overwrite them or delete them if it followed the
 * link; the keys stay in its index).
 */
async function plantedStore(
  dir = "evil",
): Promise<{ driver: FilesystemDriver; root: string; outside: string; warnings: string[] }> {
  const base = await tempDir();
  const outsideRoot = path.join(base, "outside");
  const outsideStore = await openDriver({ root_path: outsideRoot, fsync: false });
  await outsideStore.write(`${dir}/secret`, bytes("outside the root"));
  await outsideStore.write(`${dir}/deeper/secret`, bytes("outside the root, deeper"));
  await outsideStore.close();
  const outside = path.join(outsideRoot, "objects", ...dir.split("/"));
  const root = path.join(base, "store");
  const warnings: string[] = [];
  const driver = await openDriver({ root_path: root, fsync: false, onWarning: (message) => warnings.push(message) });
  await driver.write(`${dir}/secret`, bytes("inside"));
  await driver.write(`${dir}/deeper/secret`, bytes("inside, deeper"));
  await driver.indexed;
  const link = path.join(root, "objects", ...dir.split("/"));
  await rm(link, { recursive: true });
  await symlink(outside, link, "dir");
  return { driver, root, outside, warnings };
}

void describe("filesystem driver: symbolic links below the root are never followed", () => {
  void it("a key below a planted directory link reads as missing, and nothing outside is read", async () => {
    const { driver, warnings } = await plantedStore();
    assert.equal(await driver.stat("evil/secret"), undefined);
    assert.equal(await driver.read("evil/secret"), undefined);
    assert.equal(await driver.open("evil/secret"), undefined);
    assert.equal(await driver.stat("evil/deeper/secret"), undefined);
    assert.ok(warnings.some((warning) => /symbolic link/.test(warning)), warnings.join("\n"));
  });

  void it("a write below a planted directory link is refused, and nothing is written outside", async () => {
    const { driver, outside } = await plantedStore();
    const before = await filesBelow(outside);
    await assertRejectsWith(driver.write("evil/planted", bytes("must not land outside")), "internal");
    await assertRejectsWith(driver.write("evil/secret", bytes("must not replace")), "internal");
    await assertRejectsWith(driver.write("evil/new/dir/x", bytes("must not create dirs outside")), "internal");
    await assertRejectsWith(driver.write("evil/y", bytes("create-only"), { ifNoneMatch: "*" }), "internal");
    assert.deepEqual(await filesBelow(outside), before);
    assert.equal((await readFile(path.join(outside, "secret~"))).subarray(0, 16).toString(), "outside the root");
  });

  void it("importFile below a planted directory link is refused and leaves nothing outside", async () => {
    const { driver, outside } = await plantedStore();
    const before = await filesBelow(outside);
    const spooled = path.join(driver.localStagingDirectory, "spooled");
    await mkdir(path.dirname(spooled), { recursive: true });
    await writeFile(spooled, "imported");
    await assertRejectsWith(importFile(driver, "evil/imported", spooled, { size: 8, sha256: sha256Hex(Buffer.from("imported")) }), "internal");
    assert.deepEqual(await filesBelow(outside), before);
  });

  void it("a delete below a planted directory link answers missing and removes nothing outside", async () => {
    const { driver, outside } = await plantedStore();
    assert.equal(await driver.delete("evil/secret"), false);
    assert.equal(await driver.delete("evil/deeper/secret"), false);
    assert.ok(existsSync(path.join(outside, "secret~")));
    assert.ok(existsSync(path.join(outside, "deeper", "secret~")));
  });

  void it("a directory a read found sound is looked at again after a second: a link planted after that read is caught then", async () => {
    const base = await tempDir();
    const outsideRoot = path.join(base, "outside");
    const outsideStore = await openDriver({ root_path: outsideRoot, fsync: false });
    await outsideStore.write("evil/secret", bytes("outside the root"));
    await outsideStore.close();
    let now = Date.parse("2026-12-03T12:00:00Z");
    const warnings: string[] = [];
    const driver = await openDriver({ root_path: path.join(base, "store"), fsync: false, clock: () => new Date(now), onWarning: (message) => warnings.push(message) });
    // Larger than what the store keeps in memory once read: every read goes to the file.
    const inside = "inside ".repeat(8 * 1024);
    await driver.write("evil/secret", bytes(inside));
    await driver.indexed;
    assert.equal((await readAll(driver, "evil/secret")).toString(), inside, "read once: its directories are known sound");
    const link = path.join(driver.objectsDir, "evil");
    await rm(link, { recursive: true });
    await symlink(path.join(outsideRoot, "objects", "evil"), link, "dir");
    now += 1001;
    assert.equal(await driver.open("evil/secret"), undefined);
    assert.equal(await driver.read("evil/secret"), undefined);
    assert.ok(warnings.some((warning) => /symbolic link/.test(warning)), warnings.join("\n"));
  });

  void it("a link deeper in the tree is caught the same way", async () => {
    const { driver, root, outside } = await plantedStore("a/b/evil");
    // A sound object beside the link stays readable.
    await driver.write("a/b/fine", bytes("inside"));
    assert.equal((await readAll(driver, "a/b/fine")).toString(), "inside");
    assert.equal(await driver.stat("a/b/evil/secret"), undefined);
    await assertRejectsWith(driver.write("a/b/evil/x", bytes("no")), "internal");
    assert.equal(existsSync(path.join(outside, "x~")), false);
    assert.ok(existsSync(path.join(root, "objects", "a", "b", "fine~")));
  });

  void it("a link in place of an object's file reads as missing (not a 500), and a write replaces the link itself", async () => {
    const base = await tempDir();
    const target = path.join(base, "target-file");
    await writeFile(target, "outside");
    const warnings: string[] = [];
    const driver = await openDriver({ root_path: path.join(base, "store"), fsync: false, onWarning: (message) => warnings.push(message) });
    await driver.write("k", bytes("indexed"));
    await driver.indexed;
    await rm(path.join(driver.objectsDir, "k~"));
    await symlink(target, path.join(driver.objectsDir, "k~"));
    assert.equal(await driver.stat("k"), undefined);
    assert.equal(await driver.read("k"), undefined);
    assert.ok(warnings.some((warning) => /symbolic link/.test(warning)), warnings.join("\n"));
    await driver.write("k", bytes("inside"));
    assert.equal((await readAll(driver, "k")).toString(), "inside");
    assert.equal(await readFile(target, "utf8"), "outside");
  });

  void it("the listing does not walk into a planted link", async () => {
    const { root } = await plantedStore();
    const warnings: string[] = [];
    const reopened = await openDriver({ root_path: root, fsync: false, onWarning: (message) => warnings.push(message) });
    assert.equal((await reopened.indexed).ignoredEntries, 1);
    assert.deepEqual((await reopened.list({ limit: 10 })).keys, []);
    assert.equal(warnings.length, 1);
  });

  void it("refuses to open a store whose objects directory is a link", async () => {
    const base = await tempDir();
    const elsewhere = path.join(base, "elsewhere");
    await mkdir(elsewhere);
    const root = path.join(base, "store");
    await mkdir(root);
    await symlink(elsewhere, path.join(root, "objects"), "dir");
    await assertRejectsWith(FilesystemDriver.open({ root_path: root }), "internal");
  });

  void it("keeps the cache namespace to the same rule: no link below the configured root is followed", async () => {
    const base = await tempDir();
    const outsideRoot = path.join(base, "outside");
    const outsideStore = await openDriver({ root_path: outsideRoot, fsync: false });
    await outsideStore.write("evil/secret", bytes("outside the root"));
    await outsideStore.close();
    const root = path.join(base, "data");
    const store = { type: "filesystem" as const, config: { root_path: root, fsync: false } };
    const cache = await createStorageDriver(store, { namespace: "cache", onWarning: () => undefined });
    opened.push(cache);
    await symlink(path.join(outsideRoot, "objects", "evil"), path.join(root, "cache", "objects", "evil"), "dir");
    assert.equal(await cache.stat("evil/secret"), undefined);
    await assertRejectsWith(cache.write("evil/x", bytes("no")), "internal");
    assert.equal(existsSync(path.join(outsideRoot, "objects", "evil", "x~")), false);

    // The namespace directory itself, planted as a link: the cache's store does not open.
    const other = path.join(base, "data2");
    await mkdir(other);
    await symlink(path.join(outsideRoot), path.join(other, "cache"), "dir");
    await assertRejectsWith(
      createStorageDriver({ type: "filesystem", config: { root_path: other, fsync: false } }, { namespace: "cache" }),
      "internal",
    );
    // A link in root_path itself is the operator's choice and is followed.
    const linkedRoot = path.join(base, "linked-root");
    await symlink(root, linkedRoot, "dir");
    const viaLink = await createStorageDriver({ type: "filesystem", config: { root_path: linkedRoot, fsync: false } }, { namespace: "cache" });
    opened.push(viaLink);
    await viaLink.write("fine", bytes("ok"));
    assert.equal((await readAll(viaLink, "fine")).toString(), "ok");
  });
});
