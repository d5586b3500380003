/**
 * Pool path → SHA256 and size, as the `Packages` and `Sources` indexes a backend has cached list
 * them, held in memory in a compact form and bounded. Pure data structures: no I/O.
 *
 * Memory: a path string (~70 bytes for Debian's names), its slot in a Map, and 40 bytes of
 * digest and size in flat arrays — about 170 bytes per pool file. Debian bookworm's
 * main/binary-amd64 lists ~63,000 .deb files (~11 MB here); its main/source ~35,000 source
 * packages of ~3 files each (~18 MB).
 */

export interface PoolDigest {
  /** Lowercase hex. */
  readonly sha256: string;
  readonly size: number;
}

const SHA256_BYTES = 32;

/** The pool files of one index: a Map from path to a slot in flat digest and size arrays. */
export class PoolDigestTable {
  readonly #slots = new Map<string, number>();
  #digests = Buffer.alloc(0);
  #sizes = new Float64Array(0);

  get size(): number {
    return this.#slots.size;
  }

  /** Adds a file (the first listing of a path wins: a later duplicate is ignored). */
  add(path: string, sha256: string, size: number): void {
    if (this.#slots.has(path)) return;
    const slot = this.#slots.size;
    if (slot === this.#sizes.length) this.#grow();
    this.#digests.write(sha256, slot * SHA256_BYTES, SHA256_BYTES, "hex");
    this.#sizes[slot] = size;
    this.#slots.set(path, slot);
  }

  get(path: string): PoolDigest | undefined {
    const slot = this.#slots.get(path);
    if (slot === undefined) return undefined;
    return { sha256: this.#digests.toString("hex", slot * SHA256_BYTES, (slot + 1) * SHA256_BYTES), size: this.#sizes[slot] ?? 0 };
  }

  /** Gives back the unused part of the arrays, once the table is complete. */
  trim(): void {
    const used = this.#slots.size;
    if (used === this.#sizes.length) return;
    this.#digests = Buffer.from(this.#digests.subarray(0, used * SHA256_BYTES));
    this.#sizes = this.#sizes.slice(0, used);
  }

  #grow(): void {
    const capacity = Math.max(1024, this.#sizes.length * 2);
    const digests = Buffer.alloc(capacity * SHA256_BYTES);
    this.#digests.copy(digests);
    const sizes = new Float64Array(capacity);
    sizes.set(this.#sizes);
    this.#digests = digests;
    this.#sizes = sizes;
  }
}

interface Layer {
  readonly id: string;
  /** The SHA256 of the index file the table was read from. */
  readonly source: string;
  readonly table: PoolDigestTable;
  lastUsed: number;
}

/**
 * The tables of every index read, one layer per index (`dists/bookworm/main/binary-amd64/Packages`,
 * whatever its compression): reading a newer version of an index replaces its layer. A lookup
 * asks the most recently read layers first. Past `maxEntries` in all, the least recently useful
 * layers (last looked up, or read, longest ago) are dropped; their files are then unverified
 * until their index is read again.
 */
export class PoolDigestIndex {
  readonly maxEntries: number;
  /** Most recently read last. */
  #layers: Layer[] = [];
  #entries = 0;
  #tick = 0;

  constructor(maxEntries: number) {
    this.maxEntries = maxEntries;
  }

  /** Pool files known, in all layers. */
  get entryCount(): number {
    return this.#entries;
  }

  get layerCount(): number {
    return this.#layers.length;
  }

  lookup(path: string): PoolDigest | undefined {
    for (let index = this.#layers.length - 1; index >= 0; index--) {
      const layer = this.#layers[index];
      const found = layer?.table.get(path);
      if (layer !== undefined && found !== undefined) {
        layer.lastUsed = ++this.#tick;
        return found;
      }
    }
    return undefined;
  }

  /** The SHA256 of the index file layer `id` was read from, if it is loaded. */
  sourceOf(id: string): string | undefined {
    return this.#layers.find((layer) => layer.id === id)?.source;
  }

  /** Sets layer `id` to `table` (read from the index file whose SHA256 is `source`), dropping older layers past the bound. */
  replace(id: string, source: string, table: PoolDigestTable): void {
    table.trim();
    this.#remove(id);
    this.#layers.push({ id, source, table, lastUsed: ++this.#tick });
    this.#entries += table.size;
    while (this.#entries > this.maxEntries && this.#layers.length > 1) {
      const others = this.#layers.slice(0, -1);
      const coldest = others.reduce((cold, layer) => (layer.lastUsed < cold.lastUsed ? layer : cold));
      this.#remove(coldest.id);
    }
  }

  clear(): void {
    this.#layers = [];
    this.#entries = 0;
  }

  #remove(id: string): void {
    const index = this.#layers.findIndex((layer) => layer.id === id);
    if (index === -1) return;
    this.#entries -= this.#layers[index]?.table.size ?? 0;
    this.#layers.splice(index, 1);
  }
}
