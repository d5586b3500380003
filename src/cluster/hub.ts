/**
 * The primary process's side of the workers' IPC link: it keeps, in one place, what the workers
 * of one vault must agree on — fill leases, counters, rate-limit windows and the access index (a
 * `LocalCoordinator`), the filesystem store's per-key commit locks, the fan-out of "this key
 * changed" announcements and of questions to every worker (`ask`, `gather.ts`: their metrics,
 * their downloads in progress) — and lets go of whatever a worker held, or was asked, the moment
 * it exits.
 */
import { COORDINATION_OPS, usageToWire } from "../coordination/cluster-coordinator.js";
import type { AccessRecord, CounterName, Lease } from "../coordination/coordinator.js";
import { LocalCoordinator } from "../coordination/local-coordinator.js";
import { VaultError } from "../core/errors.js";
import { KeyLock } from "../storage/key-lock.js";
import { STORE_OPS, STORE_CHANGE_EVENT, type WireStoreChange } from "./store-link.js";

/** What the hub needs from the process that runs it: a way to reach each live worker. */
export interface HubPorts {
  /** Sends an event to one worker (dropped if it is gone). */
  emit(worker: number, name: string, data: unknown): void;
  /** The workers alive now. */
  workers(): Iterable<number>;
}

type Handler = (worker: number, args: unknown[]) => unknown;

/** How a worker answers what the primary asked every worker (`ClusterHub.ask`): `(ask id, value)`. */
export const ANSWER_OP = "cluster.answer";

/** Shared facts kept at most (the oldest are forgotten first: each worker then asks upstream itself). */
const MAX_FACTS = 100_000;

export class ClusterHub {
  readonly coordinator = new LocalCoordinator();
  readonly #leases = new Map<string, { worker: number; lease: Lease; note?: string }>();
  /** Those waiting for a lease holder's note, by resource. */
  readonly #noteWaiters = new Map<string, Array<(note: string | null) => void>>();
  readonly #locks = new KeyLock();
  /** Lock name → how its holder's hold ends. */
  readonly #lockHolders = new Map<string, { worker: number; unlock: () => void }>();
  readonly #announcements = new Map<number, { waiting: Set<number>; done: () => void }>();
  /** Questions to every worker (`ask`) still waiting for some. */
  readonly #questions = new Map<number, { waiting: Set<number>; answers: Map<number, unknown>; done: () => void }>();
  readonly #goneListeners: Array<(worker: number) => void> = [];
  #nextQuestion = 1;
  readonly #gone = new Set<number>();
  /** Facts the workers share (`Coordinator.remember`), oldest first. */
  readonly #facts = new Map<string, number>();
  #nextAnnouncement = 1;
  readonly #handlers: Map<string, Handler>;

  constructor(private readonly ports: HubPorts) {
    const c = this.coordinator;
    this.#handlers = new Map<string, Handler>([
      [COORDINATION_OPS.claim, (worker, [resource]) => this.#claim(worker, String(resource))],
      [COORDINATION_OPS.release, (worker, [resource]) => this.#release(worker, String(resource))],
      [COORDINATION_OPS.released, (_worker, [resource]) => c.released(String(resource))],
      [COORDINATION_OPS.publish, (worker, [resource, note]) => this.#publish(worker, String(resource), String(note))],
      [COORDINATION_OPS.noteOf, (_worker, [resource]) => this.#noteOf(String(resource))],
      [COORDINATION_OPS.remember, (_worker, [name, value]) => this.#remember(String(name), Number(value))],
      [COORDINATION_OPS.recall, (_worker, [name]) => this.#facts.get(String(name)) ?? null],
      [COORDINATION_OPS.count, (_worker, [name, delta]) => c.count(name as CounterName, Number(delta))],
      [COORDINATION_OPS.counters, () => c.countersNow()],
      [COORDINATION_OPS.rateHit, (_worker, [bucket, windowMs]) => c.rateHitNow(String(bucket), Number(windowMs))],
      [COORDINATION_OPS.tally, (_worker, [backend, name, value, how]) => c.tally(String(backend), String(name), Number(value), how === "latest" ? "latest" : "add")],
      [COORDINATION_OPS.tallies, () => [...c.talliesNow()]],
      [COORDINATION_OPS.record, (_worker, [key, size, at]) => c.access.record(String(key), Number(size), Number(at))],
      [COORDINATION_OPS.forget, (_worker, [key]) => c.access.forget(String(key))],
      [COORDINATION_OPS.usage, () => usageToWire(c.access.usageNow())],
      [COORDINATION_OPS.oldest, (_worker, [limit]) => c.access.oldest(Number(limit))],
      // undefined does not survive JSON inside an array: unknown keys cross as null.
      [COORDINATION_OPS.lastUsed, (_worker, [keys]) => c.access.lastUsedNow((keys as unknown[]).map(String)).map((time) => time ?? null)],
      [COORDINATION_OPS.isSeeded, () => c.access.isSeeded()],
      [COORDINATION_OPS.seed, (_worker, [records, done]) => c.access.seed(records as AccessRecord[], done === true)],
      [STORE_OPS.lock, (worker, [store, key]) => this.#lock(worker, lockName(store, key))],
      [STORE_OPS.unlock, (worker, [store, key]) => this.#unlock(worker, lockName(store, key))],
      [STORE_OPS.announce, (worker, [change]) => this.#announce(worker, change as WireStoreChange)],
      [STORE_OPS.ack, (worker, [id]) => this.#acked(worker, Number(id))],
      [ANSWER_OP, (worker, [id, value]) => this.#answered(worker, Number(id), { value })],
    ]);
  }

  /** Adds an operation the workers may send, for a part of the vault the hub does not know. */
  on(op: string, handler: Handler): void {
    if (this.#handlers.has(op)) throw new Error(`operation ${JSON.stringify(op)} is handled already`);
    this.#handlers.set(op, handler);
  }

  /** Calls `listener` with each worker that exits, after the hub has let go of what it held. */
  onGone(listener: (worker: number) => void): void {
    this.#goneListeners.push(listener);
  }

  /**
   * Sends event `name` to every live worker, with `{ask: id}` added to `data`, and resolves with
   * their answers (`ANSWER_OP`) by worker once each has answered or exited (an exited worker
   * gives none). Fails if some have not after `timeoutMs`.
   */
  ask(name: string, data: Readonly<Record<string, unknown>>, timeoutMs: number): Promise<Map<number, unknown>> {
    const asked = new Set([...this.ports.workers()].filter((worker) => !this.#gone.has(worker)));
    if (asked.size === 0) return Promise.resolve(new Map<number, unknown>());
    const id = this.#nextQuestion++;
    return new Promise<Map<number, unknown>>((resolve, reject) => {
      const answers = new Map<number, unknown>();
      const timer = setTimeout(() => {
        this.#questions.delete(id);
        reject(new VaultError("unavailable", `worker ${[...asked].join(", ")} did not answer within ${timeoutMs} ms`));
      }, timeoutMs);
      this.#questions.set(id, {
        waiting: asked,
        answers,
        done: () => {
          clearTimeout(timer);
          resolve(answers);
        },
      });
      for (const worker of asked) this.ports.emit(worker, name, { ...data, ask: id });
    });
  }

  /** Runs one operation a worker sent; its value (or promise) is the answer, if one is wanted. */
  handle(worker: number, op: string, args: unknown[]): unknown {
    const handler = this.#handlers.get(op);
    if (handler === undefined) throw new Error(`unknown operation ${JSON.stringify(op)}`);
    return handler(worker, args);
  }

  /** A worker has exited: its leases and locks end, and nobody waits for its acknowledgements. */
  workerGone(worker: number): void {
    this.#gone.add(worker);
    for (const [resource, held] of [...this.#leases]) if (held.worker === worker) this.#release(worker, resource);
    for (const [name, holder] of [...this.#lockHolders]) if (holder.worker === worker) this.#unlock(worker, name);
    for (const id of [...this.#announcements.keys()]) this.#acked(worker, id);
    for (const id of [...this.#questions.keys()]) this.#answered(worker, id, undefined);
    for (const listener of this.#goneListeners) listener(worker);
  }

  /** A worker id in use again (a replacement): it is alive. */
  workerStarted(worker: number): void {
    this.#gone.delete(worker);
  }

  #remember(name: string, value: number): void {
    this.#facts.delete(name);
    if (value === 0) return;
    if (this.#facts.size >= MAX_FACTS) {
      const oldest = this.#facts.keys().next().value;
      if (oldest !== undefined) this.#facts.delete(oldest);
    }
    this.#facts.set(name, value);
  }

  #claim(worker: number, resource: string): number | null {
    const lease = this.coordinator.claimNow(resource);
    if (lease === undefined) return null;
    this.#leases.set(resource, { worker, lease });
    return lease.fence;
  }

  #release(worker: number, resource: string): void {
    const held = this.#leases.get(resource);
    if (held === undefined || held.worker !== worker) return;
    this.#leases.delete(resource);
    void held.lease.release();
    this.#answerNote(resource, null);
  }

  #publish(worker: number, resource: string, note: string): void {
    const held = this.#leases.get(resource);
    if (held === undefined || held.worker !== worker) return;
    held.note = note;
    this.#answerNote(resource, note);
  }

  #noteOf(resource: string): Promise<string | null> | string | null {
    const held = this.#leases.get(resource);
    if (held === undefined) return null;
    if (held.note !== undefined) return held.note;
    return new Promise((resolve) => {
      const waiters = this.#noteWaiters.get(resource);
      if (waiters === undefined) this.#noteWaiters.set(resource, [resolve]);
      else waiters.push(resolve);
    });
  }

  #answerNote(resource: string, note: string | null): void {
    const waiters = this.#noteWaiters.get(resource);
    if (waiters === undefined) return;
    this.#noteWaiters.delete(resource);
    for (const answer of waiters) answer(note);
  }

  /** Resolves once `worker` holds the lock; it holds it until it unlocks or exits. */
  #lock(worker: number, name: string): Promise<void> {
    return new Promise<void>((granted) => {
      void this.#locks.run(name, () => new Promise<void>((unlock) => {
        if (this.#gone.has(worker)) {
          unlock(); // asked, then died while waiting its turn
          return;
        }
        this.#lockHolders.set(name, { worker, unlock });
        granted();
      }));
    });
  }

  #unlock(worker: number, name: string): void {
    const holder = this.#lockHolders.get(name);
    if (holder === undefined || holder.worker !== worker) return;
    this.#lockHolders.delete(name);
    holder.unlock();
  }

  /** Tells every other worker; resolves once each has applied the change (or exited). */
  #announce(worker: number, change: WireStoreChange): Promise<void> {
    const others = new Set([...this.ports.workers()].filter((other) => other !== worker && !this.#gone.has(other)));
    if (others.size === 0) return Promise.resolve();
    const id = this.#nextAnnouncement++;
    return new Promise<void>((done) => {
      this.#announcements.set(id, { waiting: others, done });
      for (const other of others) this.ports.emit(other, STORE_CHANGE_EVENT, { ...change, ack: id });
    });
  }

  #acked(worker: number, id: number): void {
    const announcement = this.#announcements.get(id);
    if (announcement === undefined) return;
    announcement.waiting.delete(worker);
    if (announcement.waiting.size > 0) return;
    this.#announcements.delete(id);
    announcement.done();
  }

  #answered(worker: number, id: number, answer: { readonly value: unknown } | undefined): void {
    const question = this.#questions.get(id);
    if (question === undefined || !question.waiting.delete(worker)) return;
    if (answer !== undefined) question.answers.set(worker, answer.value);
    if (question.waiting.size > 0) return;
    this.#questions.delete(id);
    question.done();
  }
}

function lockName(store: unknown, key: unknown): string {
  return `${String(store)}\0${String(key)}`;
}
