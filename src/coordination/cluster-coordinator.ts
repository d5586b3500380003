import {
  COUNTER_NAMES,
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

/**
 * How a worker process reaches the process that coordinates it (the primary): `call` expects an
 * answer, `post` does not. Messages leave in order: a post sent before a call arrives before it.
 */
export interface CoordinationLink {
  call(op: string, ...args: unknown[]): Promise<unknown>;
  post(op: string, ...args: unknown[]): void;
}

/** The coordinating side of the link: what each operation of `ClusterCoordinator` asks for. */
export const COORDINATION_OPS = {
  claim: "coordination.claim",
  release: "coordination.release",
  released: "coordination.released",
  publish: "coordination.publish",
  noteOf: "coordination.noteOf",
  remember: "coordination.remember",
  recall: "coordination.recall",
  count: "coordination.count",
  counters: "coordination.counters",
  rateHit: "coordination.rateHit",
  tally: "coordination.tally",
  tallies: "coordination.tallies",
  record: "access.record",
  forget: "access.forget",
  usage: "access.usage",
  oldest: "access.oldest",
  lastUsed: "access.lastUsed",
  isSeeded: "access.isSeeded",
  seed: "access.seed",
} as const;

/** `AccessUsage` as it crosses the link (a Map does not survive JSON). */
export interface WireUsage {
  readonly entries: number;
  readonly bytes: number;
  readonly byBackend: ReadonlyArray<readonly [string, { readonly entries: number; readonly bytes: number }]>;
}

export function usageToWire(usage: AccessUsage): WireUsage {
  return { entries: usage.entries, bytes: usage.bytes, byBackend: [...usage.byBackend] };
}

/** `Tallies` as they cross the link. */
export type WireTallies = ReadonlyArray<readonly [string, Readonly<Record<string, number>>]>;

/**
 * A worker process of a vault on one machine: leases, counters, rate windows and the access index
 * are the primary process's (a `LocalCoordinator` there), reached over the cluster's IPC link. A
 * worker that dies gives up its leases at once (the primary sees it exit), so unlike Redis leases
 * these need no expiry, and a live holder never loses one.
 *
 * Counts and access records are posted (no answer awaited); the link sends everything queued in
 * one event-loop turn as one message, so under load they cost a fraction of a message each.
 */
export class ClusterCoordinator implements Coordinator {
  readonly shared = true;
  readonly access: AccessIndex;
  /** Counts of this event-loop turn, summed: one post per counter per turn, not one per hit. */
  readonly #pendingCounts = new Map<CounterName, number>();
  /** Per-backend figures of this event-loop turn, merged: backend → name → value and merge. */
  readonly #pendingTallies = new Map<string, Map<string, { value: number; how: TallyMerge }>>();
  #countsScheduled = false;

  constructor(
    private readonly link: CoordinationLink,
    private readonly worker: { readonly id: number; readonly count: number },
  ) {
    this.access = new ClusterAccessIndex(link);
  }

  health(): CoordinationHealth {
    return { mode: "workers" };
  }

  describe(): string {
    return `worker ${this.worker.id} of ${this.worker.count}: downloads, rate limits and cache statistics are shared by the workers of this vault`;
  }

  async claim(resource: string): Promise<Lease | undefined> {
    const fence = (await this.link.call(COORDINATION_OPS.claim, resource)) as number | null;
    if (fence === null) return undefined;
    let held = true;
    return {
      fence,
      stillHeld: async () => held,
      release: async () => {
        if (!held) return;
        held = false;
        this.link.post(COORDINATION_OPS.release, resource);
      },
      publish: (note) => {
        if (held) this.link.post(COORDINATION_OPS.publish, resource, note);
      },
    };
  }

  async noteOf(resource: string): Promise<string | undefined> {
    return ((await this.link.call(COORDINATION_OPS.noteOf, resource)) as string | null) ?? undefined;
  }

  async released(resource: string, signal?: AbortSignal): Promise<void> {
    signal?.throwIfAborted();
    const ended = this.link.call(COORDINATION_OPS.released, resource);
    if (signal === undefined) {
      await ended;
      return;
    }
    // An abort stops this wait only; the primary's answer, when it comes, is dropped.
    let onAbort!: () => void;
    const aborted = new Promise<never>((_resolve, reject) => {
      onAbort = () => reject(signal.reason instanceof Error ? signal.reason : new Error("aborted"));
      signal.addEventListener("abort", onAbort, { once: true });
    });
    try {
      await Promise.race([ended, aborted]);
    } finally {
      signal.removeEventListener("abort", onAbort);
    }
  }

  remember(name: string, value: number): void {
    this.link.post(COORDINATION_OPS.remember, name, value);
  }

  async recall(name: string): Promise<number | undefined> {
    return ((await this.link.call(COORDINATION_OPS.recall, name)) as number | null) ?? undefined;
  }

  count(name: CounterName, delta = 1): void {
    this.#pendingCounts.set(name, (this.#pendingCounts.get(name) ?? 0) + delta);
    if (this.#countsScheduled) return;
    this.#countsScheduled = true;
    // At the end of this event-loop turn: the hits of every request the turn handled, summed.
    setImmediate(() => this.#postCounts());
  }

  #postCounts(): void {
    this.#countsScheduled = false;
    for (const [name, delta] of this.#pendingCounts) this.link.post(COORDINATION_OPS.count, name, delta);
    this.#pendingCounts.clear();
    for (const [backend, figures] of this.#pendingTallies) {
      for (const [name, { value, how }] of figures) this.link.post(COORDINATION_OPS.tally, backend, name, value, how);
    }
    this.#pendingTallies.clear();
  }

  tally(backend: string, name: string, value: number, how: TallyMerge): void {
    let figures = this.#pendingTallies.get(backend);
    if (figures === undefined) this.#pendingTallies.set(backend, (figures = new Map<string, { value: number; how: TallyMerge }>()));
    const pending = figures.get(name);
    figures.set(name, { value: mergeTally(pending?.value, value, how), how });
    if (this.#countsScheduled) return;
    this.#countsScheduled = true;
    setImmediate(() => this.#postCounts());
  }

  async tallies(): Promise<Tallies> {
    this.#postCounts();
    return new Map((await this.link.call(COORDINATION_OPS.tallies)) as WireTallies);
  }

  async counters(): Promise<Counters> {
    this.#postCounts();
    const totals = (await this.link.call(COORDINATION_OPS.counters)) as Partial<Counters>;
    const counters = zeroCounters();
    for (const name of COUNTER_NAMES) counters[name] = totals[name] ?? 0;
    return counters;
  }

  async rateHit(bucket: string, windowMs: number): Promise<{ count: number; resetInMs: number }> {
    return (await this.link.call(COORDINATION_OPS.rateHit, bucket, windowMs)) as { count: number; resetInMs: number };
  }

  async close(): Promise<void> {
    // Nothing of its own: the link belongs to the worker, and leases end with the process.
  }
}

class ClusterAccessIndex implements AccessIndex {
  /** Uses of this event-loop turn, the last per key: a hot key is one record per turn. */
  readonly #pending = new Map<string, { size: number; at: number }>();
  #scheduled = false;

  constructor(private readonly link: CoordinationLink) {}

  record(key: string, size: number, at: number): void {
    this.#pending.delete(key); // re-inserted last: the records leave in the order of last use
    this.#pending.set(key, { size, at });
    if (this.#scheduled) return;
    this.#scheduled = true;
    setImmediate(() => this.#postRecords());
  }

  /** Sends what is pending; every call of this index does so first, so nothing overtakes a record. */
  #postRecords(): void {
    this.#scheduled = false;
    for (const [key, { size, at }] of this.#pending) this.link.post(COORDINATION_OPS.record, key, size, at);
    this.#pending.clear();
  }

  async forget(key: string): Promise<void> {
    this.#postRecords();
    await this.link.call(COORDINATION_OPS.forget, key);
  }

  async usage(): Promise<AccessUsage> {
    this.#postRecords();
    const wire = (await this.link.call(COORDINATION_OPS.usage)) as WireUsage;
    return { entries: wire.entries, bytes: wire.bytes, byBackend: new Map(wire.byBackend) };
  }

  async oldest(limit: number): Promise<AccessRecord[]> {
    this.#postRecords();
    return (await this.link.call(COORDINATION_OPS.oldest, limit)) as AccessRecord[];
  }

  async lastUsed(keys: readonly string[]): Promise<Array<number | undefined>> {
    this.#postRecords();
    const times = (await this.link.call(COORDINATION_OPS.lastUsed, keys)) as Array<number | null>;
    return times.map((time) => time ?? undefined);
  }

  async isSeeded(): Promise<boolean> {
    this.#postRecords();
    return (await this.link.call(COORDINATION_OPS.isSeeded)) as boolean;
  }

  async seed(records: readonly AccessRecord[], done: boolean): Promise<void> {
    this.#postRecords();
    await this.link.call(COORDINATION_OPS.seed, records, done);
  }
}
