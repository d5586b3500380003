import { Readable, addAbortSignal } from "node:stream";
import { VaultError } from "../core/errors.js";
import { validateKey } from "../core/storage-key.js";
import { resolveRange } from "./byte-range.js";
import { SortedKeyIndex } from "./sorted-key-index.js";
import type {
  HeldObject,
  ListOptions,
  ListPage,
  ObjectInfo,
  OpenedObject,
  ReadOptions,
  ReadResult,
  StorageDriver,
  WriteOptions,
} from "./storage-driver.js";
import { checkPreconditions, checkWriteOptions, consumeBody, newVersionInfo, throwIfAborted } from "./write-checks.js";

/** Incoming bytes are copied into blocks of this size (big chunks are copied as they are). */
const BLOCK_SIZE = 64 * 1024;

export interface MemoryDriverOptions {
  /** The time stamps objects get (tests inject one). */
  readonly clock?: () => Date;
}

interface StoredObject {
  readonly info: ObjectInfo;
  /** Immutable once stored: an overwrite stores a new object, so running reads keep theirs. */
  readonly blocks: readonly Uint8Array[];
}

/**
 * Keeps objects in process memory: for tests, development and throwaway caches.
 *
 * - Bytes are copied on the way in and on the way out, so no caller can change stored bytes.
 * - An object is a list of blocks, never one buffer concatenated from the whole body.
 * - A write streams into new blocks and publishes them in one synchronous step (precondition
 *   check + index update), so it is atomic and create-only / compare-and-swap hold under
 *   concurrency without a lock: JavaScript runs that step to completion.
 */
export class MemoryDriver implements StorageDriver {
  readonly kind = "memory";
  readonly #objects = new SortedKeyIndex<StoredObject>();
  readonly #clock: () => Date;
  #closed = false;

  constructor(options: MemoryDriverOptions = {}) {
    this.#clock = options.clock ?? (() => new Date());
  }

  async stat(key: string): Promise<ObjectInfo | undefined> {
    this.#checkUsable(key);
    return this.#objects.get(key)?.info;
  }

  async read(key: string, options: ReadOptions = {}): Promise<ReadResult | undefined> {
    this.#checkUsable(key);
    const stored = this.#objects.get(key);
    if (stored === undefined) return undefined;
    const { start, end } = resolveRange(options, stored.info.size);
    const body = Readable.from(copyRange(stored.blocks, start, end), { objectMode: false });
    if (options.signal !== undefined) addAbortSignal(options.signal, body);
    return { info: stored.info, body };
  }

  readHeld(key: string): HeldObject | undefined {
    const stored = this.#closed ? undefined : this.#objects.get(key);
    if (stored === undefined || stored.blocks.length !== 1) return undefined;
    const [block] = stored.blocks;
    return block === undefined ? undefined : { info: stored.info, contents: Buffer.from(block.buffer, block.byteOffset, block.byteLength) };
  }

  async open(key: string): Promise<OpenedObject | undefined> {
    this.#checkUsable(key);
    const stored = this.#objects.get(key);
    if (stored === undefined) return undefined;
    const { info, blocks } = stored;
    const single = blocks.length === 1 ? blocks[0] : blocks.length === 0 ? Buffer.alloc(0) : undefined;
    return {
      info,
      // Stored blocks are never mutated (writes build new ones), so sharing one is safe.
      contents: single === undefined ? undefined : Buffer.from(single.buffer, single.byteOffset, single.byteLength),
      body: (range) => {
        const { start, end } = range ?? { start: 0, end: info.size - 1 };
        return Readable.from(copyRange(blocks, start, end), { objectMode: false });
      },
      close: async () => undefined,
    };
  }

  async write(key: string, body: AsyncIterable<Uint8Array>, options?: WriteOptions): Promise<ObjectInfo> {
    this.#checkUsable(key);
    const checked = checkWriteOptions(options);
    // Fail fast, before reading a body that could not be stored anyway.
    checkPreconditions(key, this.#objects.get(key)?.info, checked);

    const blocks: Uint8Array[] = [];
    let block: Buffer | undefined;
    let used = 0;
    const sealBlock = (): void => {
      if (block !== undefined && used > 0) blocks.push(used === block.length ? block : Buffer.from(block.subarray(0, used)));
      block = undefined;
      used = 0;
    };
    const summary = await consumeBody(body, checked, (chunk) => {
      if (chunk.byteLength >= BLOCK_SIZE) {
        sealBlock();
        blocks.push(Buffer.from(chunk)); // a copy
        return;
      }
      let offset = 0;
      while (offset < chunk.byteLength) {
        block ??= Buffer.allocUnsafe(BLOCK_SIZE);
        const n = Math.min(chunk.byteLength - offset, BLOCK_SIZE - used);
        block.set(chunk.subarray(offset, offset + n), used);
        used += n;
        offset += n;
        if (used === BLOCK_SIZE) sealBlock();
      }
    });
    sealBlock();

    // The commit: synchronous from here on.
    throwIfAborted(checked.signal);
    this.#checkUsable(key);
    const current = this.#objects.get(key)?.info;
    checkPreconditions(key, current, checked);
    const info = newVersionInfo(key, summary, checked, current, this.#clock());
    this.#objects.set(key, { info, blocks: Object.freeze(blocks) });
    return info;
  }

  async delete(key: string): Promise<boolean> {
    this.#checkUsable(key);
    return this.#objects.delete(key);
  }

  async list(options: ListOptions): Promise<ListPage> {
    this.#checkOpen();
    return this.#objects.page(options);
  }

  /** Drops every object; later calls fail with `unavailable`. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#objects.clear();
  }

  #checkOpen(): void {
    if (this.#closed) throw new VaultError("unavailable", "the memory store is closed");
  }

  #checkUsable(key: string): void {
    this.#checkOpen();
    validateKey(key);
  }
}

/** Copies of the bytes `start..end` (inclusive), at most one block at a time. */
function* copyRange(blocks: readonly Uint8Array[], start: number, end: number): Generator<Buffer> {
  let blockStart = 0;
  for (const block of blocks) {
    const blockEnd = blockStart + block.byteLength; // exclusive
    if (blockEnd > start) {
      if (blockStart > end) return;
      const from = Math.max(start - blockStart, 0);
      const to = Math.min(end + 1 - blockStart, block.byteLength);
      yield Buffer.from(block.subarray(from, to));
    }
    blockStart = blockEnd;
  }
}
