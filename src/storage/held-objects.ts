import type { HeldObject } from "./storage-driver.js";

/** What an entry costs beyond its bytes (its description, key and map slot), roughly. */
const APPROXIMATE_ENTRY_OVERHEAD = 512;

/**
 * Small objects kept in memory, least recently used out first past `limit` bytes. Whoever holds
 * one decides when that is sound (see the filesystem store and the artifact cache).
 */
export class HeldObjects {
  readonly #entries = new Map<string, HeldObject>();
  #bytes = 0;

  constructor(private readonly limit: number) {}

  get(key: string): HeldObject | undefined {
    const entry = this.#entries.get(key);
    if (entry === undefined) return undefined;
    // Most recently used last.
    this.#entries.delete(key);
    this.#entries.set(key, entry);
    return entry;
  }

  set(key: string, entry: HeldObject): void {
    this.delete(key);
    // Its own copy: the buffer it came from may be larger than the object, or reused.
    const contents = Buffer.from(entry.contents);
    this.#entries.set(key, { info: entry.info, contents });
    this.#bytes += contents.length + APPROXIMATE_ENTRY_OVERHEAD;
    while (this.#bytes > this.limit) {
      const oldest = this.#entries.keys().next().value;
      if (oldest === undefined) break;
      this.delete(oldest);
    }
  }

  delete(key: string): void {
    const entry = this.#entries.get(key);
    if (entry === undefined) return;
    this.#entries.delete(key);
    this.#bytes -= entry.contents.length + APPROXIMATE_ENTRY_OVERHEAD;
  }
}
