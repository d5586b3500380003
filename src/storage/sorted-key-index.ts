import BTreeModule from "sorted-btree";
import { VaultError } from "../core/errors.js";
import { compareUtf8 } from "../core/utf8-order.js";
import type { ListOptions, ListPage } from "./storage-driver.js";

// sorted-btree is CommonJS with `exports.default`; from ESM its default import is `module.exports`.
const BTree = BTreeModule.default;

/** The largest page `list` hands out, as in the object API. */
export const MAX_LIST_LIMIT = 1000;

/**
 * Keys in UTF-8 byte order (a B+ tree ordered by `compareUtf8`), with the values a driver keeps
 * per key. A page is a seek plus a walk over the page: its cost grows with the page, not with the
 * number of keys.
 */
export class SortedKeyIndex<V> {
  readonly #tree = new BTree<string, V>(undefined, compareUtf8);

  get size(): number {
    return this.#tree.size;
  }

  get(key: string): V | undefined {
    return this.#tree.get(key);
  }

  has(key: string): boolean {
    return this.#tree.has(key);
  }

  set(key: string, value: V): void {
    this.#tree.set(key, value, true);
  }

  delete(key: string): boolean {
    return this.#tree.delete(key);
  }

  clear(): void {
    this.#tree.clear();
  }

  /** One page of keys with `prefix`, strictly after `startAfter` (which need not exist). */
  page(options: ListOptions): ListPage {
    const { prefix = "", startAfter, limit } = options;
    if (!Number.isSafeInteger(limit) || limit < 1 || limit > MAX_LIST_LIMIT) {
      throw new VaultError("bad_request", `limit must be an integer from 1 to ${MAX_LIST_LIMIT}`);
    }
    // Keys with a prefix are contiguous in this order, and the first of them is >= the prefix.
    let from = prefix;
    let skip: string | undefined;
    if (startAfter !== undefined && compareUtf8(startAfter, prefix) >= 0) {
      from = startAfter;
      skip = startAfter;
    }
    const keys: string[] = [];
    let isTruncated = false;
    for (const key of this.#tree.keys(from)) {
      if (key === skip) continue;
      if (!key.startsWith(prefix)) break;
      if (keys.length === limit) {
        isTruncated = true;
        break;
      }
      keys.push(key);
    }
    return { keys, isTruncated };
  }
}
