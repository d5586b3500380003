/**
 * What replicas of the vault agree on, behind one interface: fill leases (one replica downloads
 * an artifact while the others wait for it), shared counters (cache statistics), rate-limit
 * windows, and the least-recently-used access index that eviction and `cache stats` read.
 *
 * Three implementations: `LocalCoordinator` (one process, and the fallback of the Redis one),
 * `ClusterCoordinator` (the worker processes of one vault, through their primary process, which
 * runs a `LocalCoordinator` for them) and `RedisCoordinator` (replicas on one bucket and one
 * Redis; each worker of a replica talks to Redis itself).
 */

/** What `/health` says about coordination. */
export type CoordinationHealth = { readonly mode: "alone" } | { readonly mode: "workers" } | { readonly mode: "redis"; readonly redis: "up" | "down" };

/** The right to do one piece of work (download one artifact, run eviction) among the replicas. */
export interface Lease {
  /** Grows with every lease granted: a later holder always has a larger one. */
  readonly fence: number;
  /**
   * Whether this holder still has the lease (it is renewed in the background while held; a
   * holder stalled past its expiry may have lost it to another replica). Asked before a commit
   * that must not overwrite a newer holder's work.
   */
  stillHeld(): Promise<boolean>;
  /** Gives the lease up (idempotent) and wakes those waiting for it. */
  release(): Promise<void>;
  /**
   * Tells those waiting for this lease how to follow the work while it runs (the download's spool
   * file, for workers on one machine: `noteOf`). Absent where waiters cannot use it (replicas on
   * other machines).
   */
  publish?(note: string): void;
}

/** The cache statistics every replica adds to and any replica reads. */
export const COUNTER_NAMES = ["hits", "misses", "stale", "revalidated", "bytesFromCache", "bytesFromUpstream", "evictions"] as const;
export type CounterName = (typeof COUNTER_NAMES)[number];
export type Counters = Record<CounterName, number>;

export function zeroCounters(): Counters {
  return { hits: 0, misses: 0, stale: 0, revalidated: 0, bytesFromCache: 0, bytesFromUpstream: 0, evictions: 0 };
}

/**
 * How a per-backend figure (`Coordinator.tally`) combines what the replicas report: `add` sums
 * (exchanges, failures), `latest` keeps the largest value reported (the time of the last one).
 */
export type TallyMerge = "add" | "latest";

/** Every backend's figures by name (`exchanges`, `last_error_at`, ...), over every replica. */
export type Tallies = ReadonlyMap<string, Readonly<Record<string, number>>>;

/** `value` merged into `current` the way `how` says. */
export function mergeTally(current: number | undefined, value: number, how: TallyMerge): number {
  if (current === undefined) return value;
  return how === "add" ? current + value : Math.max(current, value);
}

/** One cached entry as the access index knows it. */
export interface AccessRecord {
  readonly key: string;
  readonly size: number;
  /** Last use (or arrival), ms since the epoch. */
  readonly at: number;
}

export interface AccessUsage {
  readonly entries: number;
  readonly bytes: number;
  /** By backend: the key's first segment (keys are `<backend>/<path>`). */
  readonly byBackend: ReadonlyMap<string, { readonly entries: number; readonly bytes: number }>;
}

/**
 * Which cached entries exist, how large they are and when each was last used: eviction picks the
 * least recently used from it, and `cache stats` sums it. Shared by the replicas when coordinated.
 */
export interface AccessIndex {
  /** An entry was stored or served (fire and forget: implementations may batch). */
  record(key: string, size: number, at: number): void;
  /** The entry is gone (evicted, purged). */
  forget(key: string): Promise<void>;
  usage(): Promise<AccessUsage>;
  /** Least recently used first, at most `limit`. */
  oldest(limit: number): Promise<AccessRecord[]>;
  /**
   * When each of `keys` was last used (or arrived), ms since the epoch, in their order; undefined
   * for a key the index does not know. One lookup per key, in one round trip: no scan.
   */
  lastUsed(keys: readonly string[]): Promise<Array<number | undefined>>;
  /** Whether a listing of the store has already been loaded (by this or another replica). */
  isSeeded(): Promise<boolean>;
  /** Loads entries found by listing the store; entries the index already has keep their times. */
  seed(records: readonly AccessRecord[], done: boolean): Promise<void>;
}

export interface Coordinator {
  /** True when other processes take part (a lease may be held elsewhere, the store may change under us). */
  readonly shared: boolean;
  health(): CoordinationHealth;
  /** A one-line account for the start-up log: what is shared and with whom. */
  describe(): string;
  /**
   * Claims `resource` (`fill:<cache key>`, `eviction`) for this replica; undefined when another
   * replica holds it. When the coordination service is unreachable the claim is granted: a
   * replica alone still serves (and may then duplicate another's download).
   */
  claim(resource: string): Promise<Lease | undefined>;
  /** Resolves once another replica's lease on `resource` has ended (released or expired). */
  released(resource: string, signal?: AbortSignal): Promise<void>;
  /**
   * What the holder of `resource` published about its work (`Lease.publish`), as soon as it does;
   * undefined if its lease ends first or nobody holds it. Only where leases can publish.
   */
  noteOf?(resource: string): Promise<string | undefined>;
  /**
   * Shares a small fact with the other processes of this vault — an upstream 404 remembered until
   * a time, when an entry was last revalidated — so that none of them asks upstream again for what
   * another just learnt. 0 forgets it. Only where processes share a machine's memory (workers);
   * elsewhere each process keeps its own.
   */
  remember?(name: string, value: number): void;
  recall?(name: string): Promise<number | undefined>;
  /** Adds to a shared counter (batched; never fails the request that counts). */
  count(name: CounterName, delta?: number): void;
  /** Totals over every replica (or this one's alone, when the shared ones cannot be read). */
  counters(): Promise<Counters>;
  /**
   * Adds to a figure of one backend (`exchanges` of `pypi`), merged over the replicas as `how`
   * says: the upstream health `/admin/backends` reports (`metrics/upstream-health.ts`). Batched
   * like `count`; never fails the caller.
   */
  tally(backend: string, name: string, value: number, how: TallyMerge): void;
  /** Every backend's figures over every replica (or this one's alone, when the shared ones cannot be read). */
  tallies(): Promise<Tallies>;
  /**
   * Counts one more request in a fixed window named `bucket` of `windowMs`: how many it holds now
   * and when it resets. Rate limits use it so that they hold across replicas.
   */
  rateHit(bucket: string, windowMs: number): Promise<{ readonly count: number; readonly resetInMs: number }>;
  readonly access: AccessIndex;
  close(): Promise<void>;
}

/** The backend part of a cache key (`pypi/packages/...` → `pypi`). */
export function backendOfKey(key: string): string {
  const slash = key.indexOf("/");
  return slash === -1 ? "" : key.slice(0, slash);
}
