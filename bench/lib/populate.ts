/**
 * Filling a store with many small objects fast. Preferred: write through the storage driver
 * in-process (`createStorageDriver` from src/storage/registry.ts, fsync off) before the server
 * starts — no HTTP, no fsync per object. Fallback, when the build has no registry: concurrent
 * PUTs over keep-alive against the running server.
 */
import { fileURLToPath, pathToFileURL } from "node:url";
import { existsSync } from "node:fs";
import type { StorageDriver } from "../../src/storage/storage-driver.js";
import type { StoreConfig } from "../../src/storage/store-config.js";

const REGISTRY = fileURLToPath(new URL("../../src/storage/registry.js", import.meta.url));

type CreateDriver = (config: StoreConfig) => StorageDriver | Promise<StorageDriver>;

/** A filesystem driver rooted at `rootPath` (fsync off: a throwaway store), or undefined. */
export async function openFilesystemDriver(rootPath: string): Promise<StorageDriver | undefined> {
  if (!existsSync(REGISTRY)) return undefined;
  const registry = (await import(pathToFileURL(REGISTRY).href)) as { createStorageDriver?: CreateDriver };
  if (typeof registry.createStorageDriver !== "function") return undefined;
  return registry.createStorageDriver({ type: "filesystem", config: { root_path: rootPath, fsync: false } });
}

async function* once(bytes: Uint8Array): AsyncIterable<Uint8Array> {
  yield bytes;
}

/** Writes keys `[from, to)` of `keyOf` through `driver`, `concurrency` at a time. */
export async function writeThroughDriver(
  driver: StorageDriver,
  from: number,
  to: number,
  keyOf: (index: number) => string,
  bodyOf: (index: number) => Uint8Array,
  concurrency = 64,
  onProgress?: (done: number) => void,
): Promise<void> {
  let next = from;
  let done = 0;
  const worker = async (): Promise<void> => {
    while (next < to) {
      const index = next++;
      await driver.write(keyOf(index), once(bodyOf(index)), { contentType: "application/octet-stream" });
      done++;
      if (onProgress !== undefined && done % 10_000 === 0) onProgress(done);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, to - from) }, worker));
}
