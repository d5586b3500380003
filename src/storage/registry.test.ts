import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, it } from "node:test";
import { isVaultError } from "../core/errors.js";
import { createStorageDriver } from "./registry.js";
import type { StoreConfig } from "./store-config.js";

void describe("createStorageDriver", () => {
  void it("opens a memory driver", async () => {
    const driver = await createStorageDriver({ type: "memory", config: {} });
    assert.equal(driver.kind, "memory");
    await driver.close();
  });

  void it("opens a filesystem driver at root_path", async () => {
    const dir = await mkdtemp(path.join(tmpdir(), "av-registry-"));
    try {
      const driver = await createStorageDriver({ type: "filesystem", config: { root_path: dir, fsync: false } });
      assert.equal(driver.kind, "filesystem");
      await driver.write("k", [Buffer.from("v")] as unknown as AsyncIterable<Uint8Array>);
      assert.equal((await driver.stat("k"))?.size, 1);
      await driver.close();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  void it("opens s3 stores (tests/contract/s3-driver.test.ts has the rest): one that cannot be reached is unavailable", async () => {
    await assert.rejects(
      createStorageDriver({ type: "s3", config: { bucket_name: "b", endpoint_url: "http://127.0.0.1:1", s3_access_key: "k", s3_secret_key: "s" } }),
      (error: unknown) => isVaultError(error, "unavailable") && /127\.0\.0\.1:1/.test(error.message),
    );
  });

  void it("refuses unknown types", async () => {
    await assert.rejects(
      createStorageDriver({ type: "tape", config: {} } as unknown as StoreConfig),
      (error: unknown) => isVaultError(error, "bad_request") && error.message.includes("tape"),
    );
    await assert.rejects(
      createStorageDriver({ type: "toString", config: {} } as unknown as StoreConfig),
      (error: unknown) => isVaultError(error, "bad_request"),
    );
  });
});
