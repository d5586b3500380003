import { createReadStream, type ReadStream } from "node:fs";
import { unlink } from "node:fs/promises";
import type { ImportOptions, ObjectInfo, StorageDriver } from "./storage-driver.js";

/**
 * Stores a complete local file as `key`: moved into place by drivers that can (the filesystem
 * driver, when the file is on its filesystem), streamed with `write` (and checked against the
 * given size and SHA-256) by the others. The file is removed either way.
 */
export async function importFile(driver: StorageDriver, key: string, file: string, options: ImportOptions): Promise<ObjectInfo> {
  if (driver.importFile !== undefined) return driver.importFile(key, file, options);
  return importByWrite(driver, key, file, options);
}

/** `importFile` through the driver's `write` (for drivers without one, or cases theirs leaves to `write`). */
export async function importByWrite(driver: Pick<StorageDriver, "write">, key: string, file: string, options: ImportOptions): Promise<ObjectInfo> {
  const body = createReadStream(file, { highWaterMark: 1024 * 1024 });
  try {
    return await driver.write(key, body, {
      expectedSize: options.size,
      expectedSha256: options.sha256,
      contentType: options.contentType,
      metadata: options.metadata,
      ...(options.ifNoneMatch === undefined ? {} : { ifNoneMatch: options.ifNoneMatch }),
      ...(options.ifMatch === undefined ? {} : { ifMatch: options.ifMatch }),
    });
  } finally {
    // A write refused before it read the body (a failed condition) leaves the stream unread.
    closeQuietly(body);
    await unlink(file).catch(() => undefined);
  }
}

/** Lets go of a file stream that may not have been read, opened, or even found. */
function closeQuietly(stream: ReadStream): void {
  stream.on("error", () => undefined);
  stream.destroy();
}
