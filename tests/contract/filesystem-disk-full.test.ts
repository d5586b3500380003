/**
 * A full disk (ENOSPC) or quota (EDQUOT) fails a write with `insufficient_storage` — not
 * `unavailable`, which clients retry — and changes nothing: the previous version stays whole and
 * no staging file is left behind.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, describe, it } from "node:test";
import { FilesystemDriver } from "../../src/storage/filesystem-driver.js";
import { importFile } from "../../src/storage/import-file.js";
import { simulateDiskFull } from "../support/disk-full.js";
import { assertRejectsWith, assertSameInfo, chunked, readAll, sha256Hex } from "./storage-driver.contract.js";

const temporary: string[] = [];
const opened: FilesystemDriver[] = [];

after(async () => {
  for (const driver of opened) await driver.close();
  await Promise.all(temporary.map((dir) => rm(dir, { recursive: true, force: true })));
});

async function openStore(): Promise<FilesystemDriver> {
  const dir = await mkdtemp(path.join(tmpdir(), "av-fs-full-"));
  temporary.push(dir);
  const driver = await FilesystemDriver.open({ root_path: path.join(dir, "store") });
  opened.push(driver);
  return driver;
}

async function stagingFiles(driver: FilesystemDriver): Promise<string[]> {
  const entries = await readdir(driver.objectsDir, { withFileTypes: true, recursive: true });
  return entries.filter((entry) => entry.name.startsWith(".tmp-")).map((entry) => path.join(entry.parentPath, entry.name));
}

void describe("filesystem driver: a full disk", () => {
  for (const code of ["ENOSPC", "EDQUOT"] as const) {
    void it(`${code} fails writes with insufficient_storage and keeps every old version`, async () => {
      const driver = await openStore();
      const old = randomBytes(100_000);
      const kept = await driver.write("dir/kept", chunked(old));
      const keptToo = await driver.write("top", chunked(Buffer.from("top v1")));
      const disk = await simulateDiskFull({ afterBytes: 64 * 1024, code });
      try {
        await assertRejectsWith(driver.write("dir/kept", chunked(randomBytes(1024 * 1024))), "insufficient_storage");
        await assertRejectsWith(driver.write("top", chunked(randomBytes(300 * 1024))), "insufficient_storage");
        await assertRejectsWith(driver.write("dir/new", chunked(randomBytes(300 * 1024)), { ifNoneMatch: "*" }), "insufficient_storage");
        await assertRejectsWith(driver.write("other/new", chunked(randomBytes(300 * 1024))), "insufficient_storage");
        assert.ok(disk.failures >= 4);
      } finally {
        disk.restore();
      }
      assertSameInfo(await driver.stat("dir/kept"), kept);
      assert.ok((await readAll(driver, "dir/kept")).equals(old));
      assertSameInfo(await driver.stat("top"), keptToo);
      assert.equal(await driver.stat("dir/new"), undefined);
      assert.equal(await driver.stat("other/new"), undefined);
      assert.deepEqual(await stagingFiles(driver), []);
      assert.deepEqual((await driver.list({ limit: 10 })).keys, ["dir/kept", "top"]);
      // With its space back, the store takes writes again.
      await driver.write("dir/kept", chunked(Buffer.from("v2")));
      assert.equal((await readAll(driver, "dir/kept")).toString(), "v2");
    });
  }

  void it("a full disk while an import appends its trailer: insufficient_storage, the old version kept", async () => {
    const driver = await openStore();
    const kept = await driver.write("cached/artifact", chunked(Buffer.from("old artifact")));
    await mkdir(driver.localStagingDirectory, { recursive: true });
    const spooled = path.join(driver.localStagingDirectory, "download.part");
    const content = randomBytes(10_000);
    await writeFile(spooled, content);
    const disk = await simulateDiskFull();
    try {
      await assertRejectsWith(importFile(driver, "cached/artifact", spooled, { size: content.length, sha256: sha256Hex(content) }), "insufficient_storage");
    } finally {
      disk.restore();
    }
    assertSameInfo(await driver.stat("cached/artifact"), kept);
    assert.equal((await readAll(driver, "cached/artifact")).toString(), "old artifact");
    assert.equal(existsSync(spooled), false, "the spooled file is removed");
  });
});
