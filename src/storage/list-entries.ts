import type { ListEntry, ListEntryPage, ListOptions, StorageDriver } from "./storage-driver.js";

/**
 * A page of keys with their sizes and modification times: from the driver's own listing when it
 * has them (one request per page on S3), else `list` and a `stat` per key (cheap on local
 * drivers). Keys that vanish between the two are left out.
 */
export async function listEntries(driver: StorageDriver, options: ListOptions): Promise<ListEntryPage> {
  if (driver.listEntries !== undefined) return driver.listEntries(options);
  const page = await driver.list(options);
  const entries: ListEntry[] = [];
  for (const key of page.keys) {
    const info = await driver.stat(key);
    if (info !== undefined) entries.push({ key, size: info.size, modifiedAt: info.modifiedAt });
  }
  return { entries, isTruncated: page.isTruncated, lastKey: page.keys.at(-1) };
}
