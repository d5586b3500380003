/**
 * A worker's `StoreSharing` for one filesystem store (one namespace of it), over the link to the
 * primary: the per-key commit lock is the primary's, and a change is announced to every other
 * worker through it, which answers once all of them have applied it.
 */
import type { CoordinationLink } from "../coordination/cluster-coordinator.js";
import type { StoreChange, StoreSharing } from "../storage/store-sharing.js";

export const STORE_OPS = {
  lock: "store.lock",
  unlock: "store.unlock",
  announce: "store.announce",
  ack: "store.ack",
} as const;

/** The event the primary sends each other worker for an announced change. */
export const STORE_CHANGE_EVENT = "store.change";

export interface WireStoreChange {
  /** Which store of the vault (its namespace; "" for the object API's). */
  readonly store: string;
  readonly key: string;
  readonly removed: boolean;
}

/** A link that also receives the primary's events. */
export interface EventLink extends CoordinationLink {
  onEvent(name: string, handler: (data: unknown) => void): void;
}

/** One per worker: hands out each store's sharing and routes announcements to it. */
export class SharedStores {
  readonly #listeners = new Map<string, (change: StoreChange) => void>();

  constructor(private readonly link: EventLink) {
    link.onEvent(STORE_CHANGE_EVENT, (data) => {
      const change = data as WireStoreChange & { readonly ack: number };
      // A store this worker has not opened yet has nothing to forget: its walk will find the key.
      this.#listeners.get(change.store)?.({ key: change.key, removed: change.removed });
      link.post(STORE_OPS.ack, change.ack);
    });
  }

  sharing(store: string): StoreSharing {
    const link = this.link;
    return {
      withKeyLock: async (key, fn) => {
        await link.call(STORE_OPS.lock, store, key);
        try {
          return await fn();
        } finally {
          link.post(STORE_OPS.unlock, store, key);
        }
      },
      announce: async (change) => {
        await link.call(STORE_OPS.announce, { store, key: change.key, removed: change.removed } satisfies WireStoreChange);
      },
      onChange: (listener) => {
        this.#listeners.set(store, listener);
      },
    };
  }
}
