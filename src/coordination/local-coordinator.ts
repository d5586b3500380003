import { EventEmitter, once } from "node:events";
import {
  backendOfKey,
  mergeTally,
  zeroCounters,
  type AccessIndex,
  type AccessRecord,
  type AccessUsage,
  type CoordinationHealth,
  type Coordinator,
  type CounterName,
  type Counters,
  type Lease,
  type Tallies,
  type TallyMerge,
} from "./coordinator.js";

/** Rate-limit windows kept at most (the oldest are dropped first; a dropped one starts afresh). */
const MAX_WINDOWS = 100_000;

/**
 * One process coordinating with itself: leases in a map, counters in memory, the access index as
 * a map in recency order. It is the whole story for a single vault, and what a Redis-coordinated
 * replica falls back on while Redis is unreachable.
 */
export class LocalCoordinator implements Coordinator {
  readonly shared = false;
  readonly access = new LocalAccessIndex();
  readonly #totals: Counters = zeroCounters();
  readonly #held = new Set<string>();
  readonly #releases = new EventEmitter();
  readonly #windows = new Map<string, { count: number; resetAt: number }>();
  /** Per-backend figures (`tally`): backend → name → value. */
  readonly #tallies = new Map<string, Record<string, number>>();
  #fence = 0;

  constructor(private readonly clock: () => number = Date.now) {
    this.#releases.setMaxListeners(0);
  }

  health(): CoordinationHealth {
    return { mode: "alone" };
  }

  describe(): string {
    return "alone (no coordination.redis_url): downloads, rate limits and cache statistics are this process's own";
  }

  async claim(resource: string): Promise<Lease | undefined> {
    return this.claimNow(resource);
  }

  /** `claim` without a promise: the lease or undefined, at once. */
  claimNow(resource: string): Lease | undefined {
    if (this.#held.has(resource)) return undefined;
    this.#held.add(resource);
    let held = true;
    return {
      fence: ++this.#fence,
      stillHeld: async () => held,
      release: async () => {
        if (!held) return;
        held = false;
        this.#held.delete(resource);
        this.#releases.emit(resource);
      },
    };
  }

  async released(resource: string, signal?: AbortSignal): Promise<void> {
    if (!this.#held.has(resource)) return;
    await once(this.#releases, resource, signal === undefined ? {} : { signal });
  }

  count(name: CounterName, delta = 1): void {
    this.#totals[name] += delta;
  }

  async counters(): Promise<Counters> {
    return { ...this.#totals };
  }

  /** This process's counters, synchronously. */
  countersNow(): Counters {
    return { ...this.#totals };
  }

  tally(backend: string, name: string, value: number, how: TallyMerge): void {
    let figures = this.#tallies.get(backend);
    if (figures === undefined) this.#tallies.set(backend, (figures = {}));
    figures[name] = mergeTally(figures[name], value, how);
  }

  async tallies(): Promise<Tallies> {
    return this.talliesNow();
  }

  /** This process's per-backend figures, synchronously (copies). */
  talliesNow(): Map<string, Record<string, number>> {
    return new Map([...this.#tallies].map(([backend, figures]) => [backend, { ...figures }]));
  }

  async rateHit(bucket: string, windowMs: number): Promise<{ count: number; resetInMs: number }> {
    return this.rateHitNow(bucket, windowMs);
  }

  rateHitNow(bucket: string, windowMs: number): { count: number; resetInMs: number } {
    const now = this.clock();
    let window = this.#windows.get(bucket);
    if (window === undefined || window.resetAt <= now) {
      this.#windows.delete(bucket);
      if (this.#windows.size >= MAX_WINDOWS) this.#dropExpired(now);
      window = { count: 0, resetAt: now + windowMs };
      this.#windows.set(bucket, window);
    }
    window.count++;
    return { count: window.count, resetInMs: window.resetAt - now };
  }

  async close(): Promise<void> {
    this.#windows.clear();
  }

  #dropExpired(now: number): void {
    for (const [bucket, window] of this.#windows) {
      if (window.resetAt <= now) this.#windows.delete(bucket);
    }
    // Still full of live windows: drop the oldest (Map order is creation order).
    while (this.#windows.size >= MAX_WINDOWS) {
      const oldest = this.#windows.keys().next().value;
      if (oldest === undefined) break;
      this.#windows.delete(oldest);
    }
  }
}

/**
 * The access index in one process: a Map whose insertion order is the recency order (a use
 * re-inserts at the end), so the oldest is found and a use recorded in O(1).
 */
export class LocalAccessIndex implements AccessIndex {
  #entries = new Map<string, { size: number; at: number }>();
  #bytes = 0;
  #seeded = false;
  #listed: AccessRecord[] = [];
  readonly #byBackend = new Map<string, { entries: number; bytes: number }>();

  record(key: string, size: number, at: number): void {
    const known = this.#entries.get(key);
    if (known !== undefined && known.size === size) {
      // A hit on a known entry (the usual case): to the end of the recency order, no accounting.
      this.#entries.delete(key);
      known.at = at;
      this.#entries.set(key, known);
      return;
    }
    this.#remove(key);
    this.#entries.set(key, { size, at });
    this.#account(key, 1, size);
  }

  async forget(key: string): Promise<void> {
    this.#remove(key);
  }

  async usage(): Promise<AccessUsage> {
    return this.usageNow();
  }

  usageNow(): AccessUsage {
    const byBackend = new Map<string, { entries: number; bytes: number }>();
    for (const [backend, usage] of this.#byBackend) if (usage.entries > 0) byBackend.set(backend, { ...usage });
    return { entries: this.#entries.size, bytes: this.#bytes, byBackend };
  }

  #account(key: string, entries: number, bytes: number): void {
    const backend = backendOfKey(key);
    let usage = this.#byBackend.get(backend);
    if (usage === undefined) this.#byBackend.set(backend, (usage = { entries: 0, bytes: 0 }));
    usage.entries += entries;
    usage.bytes += bytes;
    this.#bytes += bytes;
  }

  async oldest(limit: number): Promise<AccessRecord[]> {
    const found: AccessRecord[] = [];
    for (const [key, { size, at }] of this.#entries) {
      if (found.length >= limit) break;
      found.push({ key, size, at });
    }
    return found;
  }

  async lastUsed(keys: readonly string[]): Promise<Array<number | undefined>> {
    return this.lastUsedNow(keys);
  }

  lastUsedNow(keys: readonly string[]): Array<number | undefined> {
    return keys.map((key) => this.#entries.get(key)?.at);
  }

  async isSeeded(): Promise<boolean> {
    return this.#seeded;
  }

  /**
   * Listed entries rank as older than anything used since start, among themselves by time; they
   * are merged in once the listing is done (pages arrive in key order, not time order).
   */
  async seed(records: readonly AccessRecord[], done: boolean): Promise<void> {
    this.#listed.push(...records);
    if (!done) return;
    const listed = this.#listed;
    this.#listed = [];
    const found = listed.filter((record) => !this.#entries.has(record.key)).sort((a, b) => a.at - b.at);
    const merged = new Map<string, { size: number; at: number }>();
    for (const { key, size, at } of found) {
      if (merged.has(key)) continue;
      merged.set(key, { size, at });
      this.#account(key, 1, size);
    }
    for (const [key, entry] of this.#entries) merged.set(key, entry);
    this.#entries = merged;
    this.#seeded = true;
  }

  #remove(key: string): void {
    const previous = this.#entries.get(key);
    if (previous === undefined) return;
    this.#entries.delete(key);
    this.#account(key, -1, -previous.size);
  }
}
