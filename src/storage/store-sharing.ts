/**
 * How one filesystem store is shared by several processes on one machine (the vault's worker
 * processes): what the filesystem driver would otherwise keep in one process's memory — the
 * per-key commit lock, and the knowledge that a key changed (for the key index that answers
 * `list`, and the small objects held in memory) — goes through this seam instead.
 *
 * The driver knows nothing of how processes talk: the cluster module implements it over the
 * workers' IPC channel to the primary process.
 */

/** A key of this store was stored anew (a new version in place) or removed. */
export interface StoreChange {
  readonly key: string;
  readonly removed: boolean;
}

export interface StoreSharing {
  /**
   * Runs `fn` while this process holds `key`'s lock among every process sharing the store, in
   * arrival order. A process that dies holding it gives it up.
   */
  withKeyLock<T>(key: string, fn: () => Promise<T>): Promise<T>;
  /**
   * Tells every other process that `change` is in place; resolves once each has applied it, so
   * that a write answered to its client is what every process serves next.
   */
  announce(change: StoreChange): Promise<void>;
  /** Where the other processes' announcements arrive (one listener; called synchronously). */
  onChange(listener: (change: StoreChange) => void): void;
}
