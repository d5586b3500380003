/**
 * A per-key async mutex: `run(key, fn)` calls run one at a time per key, in arrival order, and
 * calls for different keys do not wait for each other. In-process only: a driver that relies on it
 * assumes one process per store.
 */
export class KeyLock {
  readonly #tails = new Map<string, Promise<void>>();

  async run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.#tails.get(key);
    let release!: () => void;
    const mine = new Promise<void>((resolve) => {
      release = resolve;
    });
    const tail = previous === undefined ? mine : previous.then(() => mine);
    this.#tails.set(key, tail);
    try {
      if (previous !== undefined) await previous;
      return await fn();
    } finally {
      release();
      if (this.#tails.get(key) === tail) this.#tails.delete(key);
    }
  }

  /** How many keys have a holder or waiters (for tests: it drops back to 0). */
  get size(): number {
    return this.#tails.size;
  }
}
