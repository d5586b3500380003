import type { Logger } from "pino";
import { backendOfKey, type AccessIndex, type AccessRecord, type AccessUsage, type Coordinator } from "../coordination/coordinator.js";
import { listEntries } from "../storage/list-entries.js";
import type { StorageDriver } from "../storage/storage-driver.js";
import { CoordinatorCounts, type CacheObserver } from "./cache-events.js";

const SCAN_PAGE = 1000;
/** Least-recently-used entries read from the access index per eviction round. */
const EVICTION_CANDIDATES = 64;

/**
 * Keeps the cache within `max_size` by evicting least-recently-used artifacts.
 *
 * Which entries exist, their sizes and when each was last used live in the coordinator's access
 * index (`coordination/`): a map in recency order in one process, a sorted set in Redis shared by
 * replicas. At start the store is listed in the background — unless the shared index says a
 * replica has already done so — and the artifacts found rank as older than anything used since,
 * ordered by their modification time. Eviction waits for that, runs on one replica at a time
 * (the `eviction` lease), and never removes an artifact that a response of this process is still
 * reading (a lease) — nor, since the index only knows committed entries, one being downloaded.
 *
 * The store is listed at most once per start, and never for an eviction decision; sizes and
 * times come with the listing where the driver has them (`listEntries`: on S3, one request per
 * thousand entries and no HEAD per entry).
 */
export class CacheIndex {
  readonly #access: AccessIndex;
  readonly #leases = new Map<string, number>();
  readonly #removeListeners: Array<(key: string) => void> = [];
  #scanned = false;
  #scanFailure: string | undefined;
  #scan: Promise<void> | undefined;
  #stopped = false;
  #evicting: Promise<void> | undefined;
  /** An eviction was asked for while one ran: run again when it ends. */
  #evictAgain = false;

  constructor(
    private readonly driver: StorageDriver,
    private readonly logger: Logger,
    private readonly maxSize: number | undefined,
    private readonly coordinator: Coordinator,
    private readonly clock: () => number = Date.now,
    /** Told of each eviction (default: the coordinator's `evictions` counter). */
    private readonly observer: CacheObserver = new CoordinatorCounts(coordinator),
  ) {
    this.#access = coordinator.access;
  }

  get ready(): boolean {
    return this.#scanned;
  }

  /** Why the start-up scan failed (eviction is then off until restart); undefined while it has not. */
  get scanFailure(): string | undefined {
    return this.#scanFailure;
  }

  /** Waits for the start-up scan (tests and admin tools). */
  async scanned(): Promise<void> {
    await this.#scan;
  }

  /** Waits for a running eviction (tests). */
  async evicted(): Promise<void> {
    while (this.#evicting !== undefined) await this.#evicting;
  }

  startScan(): void {
    this.#scan ??= this.#runScan().catch((error: unknown) => {
      this.#scanFailure = error instanceof Error ? error.message : String(error);
      this.logger.error({ err: error }, "indexing the cache failed; eviction is off until restart");
    });
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    await this.#scan;
    await this.#evicting;
  }

  /** Entries and bytes, overall and per backend (of the whole cache, when replicas share it). */
  usage(): Promise<AccessUsage> {
    return this.#access.usage();
  }

  /** When each of `keys` was last used (or arrived), in their order; undefined for one the index does not know. */
  lastUsed(keys: readonly string[]): Promise<Array<number | undefined>> {
    return this.#access.lastUsed(keys);
  }

  /** A newly committed artifact (or a new version of one). */
  added(key: string, size: number): void {
    this.#access.record(key, size, this.clock());
    this.#maybeEvict();
  }

  /** An artifact was served: it becomes the most recently used. */
  touched(key: string, size: number): void {
    this.#access.record(key, size, this.clock());
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
    await this.#access.forget(key);
    const removed = await this.driver.delete(key);
    for (const listener of this.#removeListeners) listener(key);
    return removed;
  }

  /** Calls `listener` with each key removed (evicted or purged), once it is gone from the store. */
  onRemove(listener: (key: string) => void): void {
    this.#removeListeners.push(listener);
  }

  #maybeEvict(): void {
    if (this.maxSize === undefined || !this.#scanned) return;
    if (this.#evicting !== undefined) {
      this.#evictAgain = true;
      return;
    }
    this.#evicting = this.#evict()
      .catch((error: unknown) => this.logger.error({ err: error }, "eviction failed"))
      .finally(() => {
        this.#evicting = undefined;
        if (this.#evictAgain && !this.#stopped) {
          this.#evictAgain = false;
          this.#maybeEvict();
        }
      });
  }

  async #evict(): Promise<void> {
    const maxSize = this.maxSize ?? Number.POSITIVE_INFINITY;
    let { bytes } = await this.#access.usage();
    if (bytes <= maxSize) return;
    const lease = await this.coordinator.claim("eviction");
    if (lease === undefined) return; // another replica is evicting
    try {
      while (bytes > maxSize && !this.#stopped) {
        const victim = (await this.#access.oldest(EVICTION_CANDIDATES + this.#leases.size)).find((record) => !this.#leases.has(record.key));
        if (victim === undefined) {
          this.logger.warn({ totalBytes: bytes, maxSize }, "cache over max_size but every artifact is in use");
          return;
        }
        try {
          await this.remove(victim.key);
          this.observer.evicted(backendOfKey(victim.key), victim.size);
          this.logger.debug({ key: victim.key }, "evicted");
        } catch (error) {
          this.logger.error({ err: error, key: victim.key }, "eviction failed");
          return;
        }
        bytes -= victim.size;
      }
    } finally {
      await lease.release();
    }
  }

  async #runScan(): Promise<void> {
    const started = this.clock();
    if (await this.#access.isSeeded()) {
      this.#scanned = true;
      this.logger.info("cache index shared by the replicas is already loaded: the store is not listed");
      this.#maybeEvict();
      return;
    }
    let startAfter: string | undefined;
    let entries = 0;
    let bytes = 0;
    for (;;) {
      if (this.#stopped) return;
      const page = await listEntries(this.driver, { limit: SCAN_PAGE, ...(startAfter === undefined ? {} : { startAfter }) });
      const records: AccessRecord[] = page.entries.map(({ key, size, modifiedAt }) => ({ key, size, at: modifiedAt.getTime() }));
      entries += records.length;
      for (const record of records) bytes += record.size;
      startAfter = page.lastKey;
      const done = !page.isTruncated || startAfter === undefined;
      await this.#access.seed(records, done);
      if (done) break;
    }
    this.#scanned = true;
    this.logger.info({ entries, bytes, ms: this.clock() - started }, "cache indexed");
    this.#maybeEvict();
  }
}
