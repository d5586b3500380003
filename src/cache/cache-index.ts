import type { Logger } from "pino";
import { listEntries } from "../storage/list-entries.js";
import type { StorageDriver } from "../storage/storage-driver.js";

const SCAN_PAGE = 1000;

/**
 * Keeps the cache within `max_size` by evicting least-recently-used artifacts.
 *
 * It tracks every cached artifact's size in a Map whose insertion order is the recency order
 * (a touch re-inserts at the end), so finding the oldest is O(1) and a touch is O(1). At start
 * the store is listed in the background; artifacts found then rank as older than anything used
 * since, ordered by their modification time. Eviction waits for that scan, and never removes an
 * artifact that a response is still reading (a lease) — nor, since it only knows committed
 * entries, one being downloaded.
 *
 * The store is listed once, at start, and never for an eviction decision; sizes and times come
 * with the listing where the driver has them (`listEntries`: on S3, one request per thousand
 * entries and no HEAD per entry).
 */
export class CacheIndex {
  #entries = new Map<string, number>();
  #totalBytes = 0;
  readonly #leases = new Map<string, number>();
  #scanned = false;
  #scan: Promise<void> | undefined;
  #stopped = false;
  #evicting: Promise<void> | undefined;
  #evictions = 0;

  constructor(
    private readonly driver: StorageDriver,
    private readonly logger: Logger,
    private readonly maxSize: number | undefined,
  ) {}

  get totalBytes(): number {
    return this.#totalBytes;
  }

  get entryCount(): number {
    return this.#entries.size;
  }

  get evictions(): number {
    return this.#evictions;
  }

  get ready(): boolean {
    return this.#scanned;
  }

  /** Waits for the start-up scan (tests and admin tools). */
  async scanned(): Promise<void> {
    await this.#scan;
  }

  startScan(): void {
    this.#scan ??= this.#runScan().catch((error: unknown) => {
      this.logger.error({ err: error }, "indexing the cache failed; eviction is off until restart");
    });
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    await this.#scan;
    await this.#evicting;
  }

  /** Bytes per key prefix up to the first `/` (the backend), for statistics. */
  bytesByBackend(): Map<string, { entries: number; bytes: number }> {
    const result = new Map<string, { entries: number; bytes: number }>();
    for (const [key, size] of this.#entries) {
      const backend = key.slice(0, Math.max(0, key.indexOf("/")));
      const current = result.get(backend) ?? { entries: 0, bytes: 0 };
      current.entries++;
      current.bytes += size;
      result.set(backend, current);
    }
    return result;
  }

  /** A newly committed artifact (or a new version of one). */
  added(key: string, size: number): void {
    this.#set(key, size);
    this.#maybeEvict();
  }

  /** An artifact was served: it becomes the most recently used. */
  touched(key: string, size: number): void {
    this.#set(key, size);
  }

  /** Marks an artifact as being read; eviction skips it until released. */
  lease(key: string): { release(): void } {
    this.#leases.set(key, (this.#leases.get(key) ?? 0) + 1);
    let released = false;
    return {
      release: () => {
        if (released) return;
        released = true;
        const left = (this.#leases.get(key) ?? 1) - 1;
        if (left <= 0) this.#leases.delete(key);
        else this.#leases.set(key, left);
      },
    };
  }

  /** Removes an artifact from the store and the index. */
  async remove(key: string): Promise<boolean> {
    const size = this.#entries.get(key);
    if (size !== undefined) {
      this.#entries.delete(key);
      this.#totalBytes -= size;
    }
    return this.driver.delete(key);
  }

  #set(key: string, size: number): void {
    const previous = this.#entries.get(key);
    if (previous !== undefined) {
      this.#entries.delete(key);
      this.#totalBytes -= previous;
    }
    this.#entries.set(key, size);
    this.#totalBytes += size;
  }

  #maybeEvict(): void {
    if (this.maxSize === undefined || !this.#scanned || this.#evicting !== undefined) return;
    if (this.#totalBytes <= this.maxSize) return;
    this.#evicting = this.#evict().finally(() => {
      this.#evicting = undefined;
    });
  }

  async #evict(): Promise<void> {
    const maxSize = this.maxSize ?? Number.POSITIVE_INFINITY;
    while (this.#totalBytes > maxSize && !this.#stopped) {
      const victim = this.#oldestUnleased();
      if (victim === undefined) {
        this.logger.warn({ totalBytes: this.#totalBytes, maxSize }, "cache over max_size but every artifact is in use");
        return;
      }
      try {
        await this.remove(victim);
        this.#evictions++;
        this.logger.debug({ key: victim }, "evicted");
      } catch (error) {
        this.logger.error({ err: error, key: victim }, "eviction failed");
        return;
      }
    }
  }

  #oldestUnleased(): string | undefined {
    for (const key of this.#entries.keys()) {
      if (!this.#leases.has(key)) return key;
    }
    return undefined;
  }

  async #runScan(): Promise<void> {
    const started = Date.now();
    const found: Array<{ key: string; size: number; modified: number }> = [];
    let startAfter: string | undefined;
    for (;;) {
      if (this.#stopped) return;
      const page = await listEntries(this.driver, { limit: SCAN_PAGE, ...(startAfter === undefined ? {} : { startAfter }) });
      for (const { key, size, modifiedAt } of page.entries) {
        if (this.#entries.has(key)) continue; // used since start: already newer
        found.push({ key, size, modified: modifiedAt.getTime() });
      }
      startAfter = page.lastKey;
      if (!page.isTruncated || startAfter === undefined) break;
    }
    found.sort((a, b) => a.modified - b.modified);
    const merged = new Map<string, number>();
    let total = 0;
    for (const { key, size } of found) {
      if (this.#entries.has(key)) continue;
      merged.set(key, size);
      total += size;
    }
    for (const [key, size] of this.#entries) {
      merged.set(key, size);
      total += size;
    }
    this.#entries = merged;
    this.#totalBytes = total;
    this.#scanned = true;
    this.logger.info({ entries: merged.size, bytes: total, ms: Date.now() - started }, "cache indexed");
    this.#maybeEvict();
  }
}
