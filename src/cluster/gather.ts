/**
 * Questions about the whole vault asked of one worker with `workers: N` (a request reaches one
 * worker; `/metrics` and the downloads in progress must show every worker's). The worker asks the
 * primary (`Gather.op`); the primary sends every live worker `Gather.event`, each answers with
 * `ANSWER_OP` (`ClusterHub.ask`), and the primary merges the answers and answers the worker that
 * asked. The rules, the same for every question:
 *
 * - a worker still starting answers with what it has (nothing), so that a question asked while a
 *   worker is replaced does not wait for it;
 * - a worker that exits meanwhile counts as answered (with nothing);
 * - a worker that fails to answer, or does not answer within the timeout (`GATHER_TIMEOUT_MS`),
 *   fails the question: the worker that asked answers 503 (`unavailable`) rather than pass a part
 *   of the vault off as the whole of it.
 */
import { VaultError } from "../core/errors.js";
import { ANSWER_OP, type ClusterHub } from "./hub.js";
import type { EventLink } from "./store-link.js";

/** How long the primary waits for every worker's answer. */
export const GATHER_TIMEOUT_MS = 5_000;

/** One question put to every worker. */
export interface Gather {
  /** The operation a worker sends the primary to ask it. */
  readonly op: string;
  /** The event the primary sends each worker for its answer. */
  readonly event: string;
  /** What is gathered, for the error a failure gives: "the workers' metrics". */
  readonly what: string;
}

/** A worker's answer as it crosses the link: its value, or why it has none. */
type WorkerAnswer = { readonly value?: unknown } | { readonly error: string };

/**
 * The worker's side: answers the primary's `gather.event` with what `answer` gives (awaited),
 * from now on. `answer` gives the worker's empty answer while the worker is still starting.
 */
export function answerGather(link: EventLink, gather: Gather, answer: () => unknown): void {
  link.onEvent(gather.event, (data) => {
    const { ask } = data as { readonly ask: number };
    const reply = (value: WorkerAnswer): void => link.post(ANSWER_OP, ask, value);
    new Promise((resolve) => resolve(answer())).then(
      (value) => reply({ value }),
      (error: unknown) => reply({ error: error instanceof Error ? error.message : String(error) }),
    );
  });
}

/** The worker's side: the whole vault's answer, as the primary merged it; `unavailable` when it cannot be had. */
export async function askGather(link: EventLink, gather: Gather): Promise<unknown> {
  try {
    return await link.call(gather.op);
  } catch (error) {
    throw new VaultError("unavailable", `${gather.what} could not be gathered: ${(error as Error).message}`, { cause: error });
  }
}

/**
 * The primary's side: answers `gather.op` with what `merge` makes of every live worker's answer
 * (by worker id; a worker that exited meanwhile is not in it).
 */
export function serveGather(hub: ClusterHub, gather: Gather, merge: (answers: ReadonlyMap<number, unknown>) => unknown, timeoutMs = GATHER_TIMEOUT_MS): void {
  hub.on(gather.op, async () => {
    const answers = (await hub.ask(gather.event, {}, timeoutMs)) as Map<number, WorkerAnswer>;
    const values = new Map<number, unknown>();
    for (const [worker, answer] of answers) {
      if ("error" in answer) throw new Error(`worker ${worker} failed: ${answer.error}`);
      values.set(worker, answer.value);
    }
    return merge(values);
  });
}
