/**
 * Whether the vault has finished its start-up work, part by part, for `GET /ready`: the vault
 * listens (and serves) before the work done in the background is over — the filesystem store's
 * walk of its keys, the cache's index — so a load balancer or an orchestrator asks here before
 * sending traffic. A part is `ready`, or says what it is still doing or why it failed; the vault
 * is ready when every part is. Pure: each part's state is read when asked.
 */

/** What a part says: exactly `ready`, or what it waits for (`indexing the store`), or `failed: reason`. */
export type PartState = string;

export const READY: PartState = "ready";

export interface ReadinessReport {
  readonly ready: boolean;
  /** Each part's state, in the order the parts were added. */
  readonly parts: Readonly<Record<string, PartState>>;
  /** The parts that are not ready. */
  readonly notReady: readonly string[];
}

export class Readiness {
  readonly #parts: Array<{ readonly name: string; readonly state: () => PartState }> = [];

  /** A part whose state is asked of `state` each time. */
  add(name: string, state: () => PartState): this {
    this.#parts.push({ name, state });
    return this;
  }

  /** A part that is `waiting` until `work` settles: then ready, or `failed: <reason>`. */
  track(name: string, work: Promise<unknown> | undefined, waiting: string): this {
    if (work === undefined) return this.add(name, () => READY);
    let state = waiting;
    work.then(
      () => (state = READY),
      (error: unknown) => (state = `failed: ${error instanceof Error ? error.message : String(error)}`),
    );
    return this.add(name, () => state);
  }

  report(): ReadinessReport {
    const parts: Record<string, PartState> = {};
    const notReady: string[] = [];
    for (const part of this.#parts) {
      const state = part.state();
      parts[part.name] = state;
      if (state !== READY) notReady.push(part.name);
    }
    return { ready: notReady.length === 0, parts, notReady };
  }
}
