/**
 * The filesystem driver creates its files 0600 and its directories 0700 whatever the umask, or
 * `file_mode` (e.g. 0640) with the execute bit of each class that can read on directories
 * (0640 → 0750). Staging files and imported files get the same mode as object files.
 */
import assert from "node:assert/strict";
import { mkdir, mkdtemp, readdir, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, describe, it } from "node:test";
import { FilesystemDriver } from "../../src/storage/filesystem-driver.js";
import { importFile } from "../../src/storage/import-file.js";
import { createStorageDriver } from "../../src/storage/registry.js";
import type { StorageDriver } from "../../src/storage/storage-driver.js";
import { chunked, sha256Hex, tick } from "./storage-driver.contract.js";

const temporary: string[] = [];
const opened: StorageDriver[] = [];
// `process.umask()` without an argument is deprecated: read the mask by setting one.
const originalUmask = process.umask(0o022);
process.umask(originalUmask);

after(async () => {
  process.umask(originalUmask);
  for (const driver of opened) await driver.close();
  await Promise.all(temporary.map((dir) => rm(dir, { recursive: true, force: true })));
});

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), "av-fs-modes-"));
  temporary.push(dir);
  return dir;
}

async function modeOf(file: string): Promise<string> {
  return ((await stat(file)).mode & 0o777).toString(8).padStart(4, "0");
}

/** The mode of every file and directory below `dir` (recursively), by path relative to it. */
async function modesBelow(dir: string): Promise<Record<string, string>> {
  const modes: Record<string, string> = {};
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    const abs = path.join(entry.parentPath, entry.name);
    modes[path.relative(dir, abs)] = await modeOf(abs);
  }
  return modes;
}

const CASES = [
  { umask: 0o022, fileMode: undefined, file: "0600", dir: "0700" },
  { umask: 0o077, fileMode: undefined, file: "0600", dir: "0700" },
  { umask: 0o000, fileMode: undefined, file: "0600", dir: "0700" },
  { umask: 0o022, fileMode: 0o640, file: "0640", dir: "0750" },
  { umask: 0o077, fileMode: 0o640, file: "0640", dir: "0750" },
  { umask: 0o077, fileMode: 0o644, file: "0644", dir: "0755" },
  { umask: 0o022, fileMode: 0o604, file: "0604", dir: "0705" },
] as const;

void describe("filesystem driver: file and directory modes", () => {
  for (const { umask, fileMode, file, dir } of CASES) {
    const label = `umask ${umask.toString(8).padStart(3, "0")}, file_mode ${fileMode === undefined ? "default" : fileMode.toString(8)}`;

    void it(`${label}: objects ${file}, directories ${dir}, the root and objects/ included`, async () => {
      process.umask(umask);
      try {
        const parent = await tempDir();
        const parentMode = await modeOf(parent);
        const root = path.join(parent, "data", "store");
        const driver = await FilesystemDriver.open({ root_path: root, fsync: false, ...(fileMode === undefined ? {} : { file_mode: fileMode }) });
        opened.push(driver);
        await driver.write("top", chunked(Buffer.from("1")));
        await driver.write("a/b/c", chunked(Buffer.from("2")));
        await driver.write("a/b/c", chunked(Buffer.from("overwritten")));
        await driver.write("a/x", chunked(Buffer.from("3")), { ifNoneMatch: "*" });
        await driver.write("l".repeat(600), chunked(Buffer.from("chunked name"))); // long segment: chunk directories
        const modes = await modesBelow(path.join(parent, "data"));
        const expected: Record<string, string> = {};
        for (const rel of Object.keys(modes)) {
          expected[rel] = rel.endsWith("~") ? file : dir;
          assert.ok(!path.basename(rel).startsWith(".tmp-"), `staging file left: ${rel}`);
        }
        assert.deepEqual(modes, expected);
        assert.equal(modes[path.join("store", "objects", "a", "b", "c~")], file);
        assert.equal(modes["store"], dir);
        assert.equal(modes[path.join("store", "objects")], dir);
        assert.equal(await modeOf(parent), parentMode, "a directory the store did not create keeps its mode");
      } finally {
        process.umask(originalUmask);
      }
    });
  }

  void it("staging files have the object mode while the body streams in", async () => {
    process.umask(0o022);
    try {
      const root = path.join(await tempDir(), "store");
      const driver = await FilesystemDriver.open({ root_path: root, fsync: false });
      opened.push(driver);
      let seen: string | undefined;
      async function* body(): AsyncGenerator<Uint8Array> {
        yield Buffer.from("first half, ");
        await tick();
        const dir = path.join(root, "objects", "staged");
        const staging = (await readdir(dir)).filter((name) => name.startsWith(".tmp-"));
        assert.equal(staging.length, 1);
        seen = await modeOf(path.join(dir, staging[0]!));
        yield Buffer.from("second half");
      }
      await driver.write("staged/object", body());
      assert.equal(seen, "0600");
    } finally {
      process.umask(originalUmask);
    }
  });

  void it("an imported file takes the object mode, whatever mode it was spooled with", async () => {
    process.umask(0o022);
    try {
      const root = path.join(await tempDir(), "data");
      const cache = await createStorageDriver(
        { type: "filesystem", config: { root_path: root, fsync: false, file_mode: 0o640 } },
        { namespace: "cache" },
      );
      opened.push(cache);
      const spool = cache.localStagingDirectory!;
      await mkdir(spool, { recursive: true });
      const spooled = path.join(spool, "download.part");
      await writeFile(spooled, "artifact", { mode: 0o644 });
      await importFile(cache, "files/artifact", spooled, { size: 8, sha256: sha256Hex(Buffer.from("artifact")) });
      assert.equal(await modeOf(path.join(root, "cache", "objects", "files", "artifact~")), "0640");
      assert.equal(await modeOf(path.join(root, "cache", "objects", "files")), "0750");
      assert.equal(await modeOf(path.join(root, "cache")), "0750");
      assert.equal(await modeOf(root), "0750");
    } finally {
      process.umask(originalUmask);
    }
  });
});
