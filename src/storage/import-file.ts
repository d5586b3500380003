import { createReadStream } from "node:fs";
import { unlink } from "node:fs/promises";
import type { ImportOptions, ObjectInfo, StorageDriver } from "./storage-driver.js";

/**
 * Stores a complete local file as `key`: moved into place by drivers that can (the filesystem
 * driver, when the file is on its filesystem), streamed with `write` (and checked against the
 * given size and SHA-256) by the others. The file is removed either way.
 */
export async function importFile(driver: StorageDriver, key: string, file: string, options: ImportOptions): Promise<ObjectInfo> {
  if (driver.importFile !== undefined) return driver.importFile(key, file, options);
  try {
    return await driver.write(key, createReadStream(file, { highWaterMark: 1024 * 1024 }), {
      expectedSize: options.size,
      expectedSha256: options.sha256,
      contentType: options.contentType,
      metadata: options.metadata,
    });
  } finally {
    await unlink(file).catch(() => undefined);
  }
}
