/**
 * `workers: N`: the primary process forks N workers (node:cluster), each a whole vault on the same
 * listening socket and the same store, and stays out of the request path. It runs the hub the
 * workers coordinate through (`hub.ts`), replaces a worker that dies, and on stop asks every
 * worker to drain and waits for them.
 *
 * Connections are handed to workers in turn (node:cluster's round-robin, its default on Linux):
 * the kernel's own spread piles most connections on one worker when they arrive together.
 */
import cluster, { type Worker } from "node:cluster";
import { fileURLToPath } from "node:url";
import type { Logger } from "pino";
import type { LoadConfigOptions } from "../config/load-config.js";
import { VaultError, isVaultError, type ErrorKind } from "../core/errors.js";
import { withSemiSpaceCap } from "../core/young-generation.js";
import { ClusterHub } from "./hub.js";
import { serveClusterFills } from "./fills-link.js";
import { serveClusterMetrics } from "./metrics-link.js";
import { isLinkMessage, type LinkMessage } from "./worker-link.js";

/** The environment variable that tells a worker who it is and how to load the configuration. */
export const WORKER_ENV = "ARTIFACT_VAULT_WORKER";

/** What a worker is told at fork (its configuration is loaded the way the primary loaded it). */
export interface WorkerIdentity {
  readonly id: number;
  readonly count: number;
  readonly load: Omit<LoadConfigOptions, "env">;
}

/** Start-up reports from a worker (outside the link's batches). */
export type WorkerReport =
  | { readonly type: "artifact-vault:listening"; readonly url: string; readonly storage: string; readonly backends: readonly string[]; readonly pages: Readonly<Record<string, string>> }
  | { readonly type: "artifact-vault:failed"; readonly message: string; readonly code?: string; readonly kind?: ErrorKind };

export const STOP_EVENT = "stop";

/** A worker that dies this soon after it started is restarted after a growing pause. */
const QUICK_DEATH_MS = 5_000;
const RESTART_PAUSE_MS = 1_000;
const MAX_RESTART_PAUSE_MS = 30_000;
/** Past `shutdown_timeout`, a worker still draining is killed. */
const STOP_GRACE_MS = 5_000;

export interface PrimaryOptions {
  readonly count: number;
  readonly load: Omit<LoadConfigOptions, "env">;
  readonly shutdownTimeoutMs: number;
  readonly logger: Logger;
}

export interface RunningWorkers {
  readonly url: string;
  close(): Promise<void>;
}

/**
 * Sends `message` to `worker`; `undelivered` runs if it cannot be (the worker is exiting: its
 * channel is closed now, or fails once the message is handed over). Never throws.
 */
export function sendToWorker(worker: Worker, message: LinkMessage, undelivered: () => void): void {
  try {
    worker.send(message, undefined, (error: Error | null) => {
      if (error !== null) undelivered();
    });
  } catch {
    undelivered();
  }
}

export async function startWorkers(options: PrimaryOptions): Promise<RunningWorkers> {
  const { count, logger } = options;
  cluster.setupPrimary({
    exec: fileURLToPath(new URL("./worker-main.js", import.meta.url)),
    args: [],
    // The vault's young-generation cap, unless node's flags set a size.
    execArgv: withSemiSpaceCap(process.execArgv, process.env["NODE_OPTIONS"]),
    silent: false,
  });
  const workers = new Map<number, Worker>();
  const outgoing = new Map<number, { replies: NonNullable<LinkMessage["replies"]>[number][]; events: NonNullable<LinkMessage["events"]>[number][] }>();
  let flushScheduled = false;
  const flush = (): void => {
    flushScheduled = false;
    for (const [id, batch] of outgoing) {
      const worker = workers.get(id);
      if (worker === undefined || !worker.isConnected()) continue;
      const message: LinkMessage = { av: 1, ...(batch.replies.length > 0 ? { replies: batch.replies } : {}), ...(batch.events.length > 0 ? { events: batch.events } : {}) };
      sendToWorker(worker, message, () => {
        // It is exiting: its exit handler lets go of what it held.
      });
    }
    outgoing.clear();
  };
  const batchFor = (id: number) => {
    let batch = outgoing.get(id);
    if (batch === undefined) outgoing.set(id, (batch = { replies: [], events: [] }));
    if (!flushScheduled) {
      flushScheduled = true;
      setImmediate(flush);
    }
    return batch;
  };
  const hub = new ClusterHub({
    emit: (id, name, data) => batchFor(id).events.push({ name, data }),
    workers: () => workers.keys(),
  });
  serveClusterMetrics(hub);
  serveClusterFills(hub);

  let stopping = false;
  let started = false;
  let url = "";
  let described: { storage: string; backends: readonly string[]; pages: Readonly<Record<string, string>> } = { storage: "", backends: [], pages: {} };
  const listening = new Set<number>();
  let settleStart!: { resolve: () => void; reject: (error: unknown) => void };
  const startup = new Promise<void>((resolve, reject) => {
    settleStart = { resolve, reject };
  });
  const restartPause = new Map<number, number>();

  const fork = (id: number): void => {
    if (stopping) return;
    const identity: WorkerIdentity = { id, count, load: options.load };
    const worker = cluster.fork({ [WORKER_ENV]: JSON.stringify(identity) });
    const bornAt = Date.now();
    workers.set(id, worker);
    hub.workerStarted(id);
    // The IPC channel of a worker that is exiting can fail a send after it was handed over
    // (EPIPE): said here rather than thrown at the primary, which would end every worker.
    worker.on("error", (error: Error) => logger.debug({ worker: id, err: error }, "a message to a worker that is exiting was not delivered"));
    worker.on("message", (message: unknown) => {
      if (isLinkMessage(message)) {
        for (const op of message.ops ?? []) {
          let value: unknown;
          try {
            value = hub.handle(id, op.op, op.args);
          } catch (error) {
            if (op.id !== undefined) batchFor(id).replies.push({ id: op.id, error: String(error) });
            continue;
          }
          const answerId = op.id;
          if (answerId === undefined) continue;
          if (value instanceof Promise) {
            value.then(
              (resolved: unknown) => batchFor(id).replies.push({ id: answerId, value: resolved }),
              (error: unknown) => batchFor(id).replies.push({ id: answerId, error: String(error) }),
            );
          } else batchFor(id).replies.push({ id: answerId, value });
        }
        return;
      }
      const report = message as WorkerReport;
      if (report.type === "artifact-vault:listening") {
        url = report.url;
        described = { storage: report.storage, backends: report.backends, pages: report.pages };
        listening.add(id);
        restartPause.delete(id);
        if (started) logger.info({ worker: id, pid: worker.process.pid }, `worker ${id} is serving again`);
        if (!started && listening.size === count) {
          started = true;
          settleStart.resolve();
        }
      } else if (report.type === "artifact-vault:failed" && !started) {
        settleStart.reject(report.kind === undefined ? Object.assign(new Error(report.message), { code: report.code }) : new VaultError(report.kind, report.message));
      }
    });
    worker.on("exit", (code, signal) => {
      if (workers.get(id) === worker) workers.delete(id);
      listening.delete(id);
      hub.workerGone(id);
      if (stopping) return;
      if (!started) {
        settleStart.reject(new Error(`worker ${id} exited while starting (${signal ?? `code ${code}`})`));
        return;
      }
      const lived = Date.now() - bornAt;
      const pause = lived < QUICK_DEATH_MS ? Math.min(MAX_RESTART_PAUSE_MS, (restartPause.get(id) ?? RESTART_PAUSE_MS / 2) * 2) : 0;
      restartPause.set(id, pause);
      logger.warn({ worker: id, pid: worker.process.pid, code, signal, restartInMs: pause }, `worker ${id} exited (${signal ?? `code ${code}`}): starting a new one`);
      setTimeout(() => fork(id), pause).unref();
    });
  };

  const stopAll = async (): Promise<void> => {
    stopping = true;
    const exits = [...workers.values()].map((worker) => new Promise<void>((resolve) => {
      if (worker.isDead()) {
        resolve();
        return;
      }
      worker.once("exit", () => resolve());
      const killer = setTimeout(() => worker.process.kill("SIGKILL"), options.shutdownTimeoutMs + STOP_GRACE_MS);
      killer.unref();
      worker.once("exit", () => clearTimeout(killer));
      sendToWorker(worker, { av: 1, events: [{ name: STOP_EVENT, data: null }] }, () => worker.process.kill("SIGTERM"));
    }));
    await Promise.all(exits);
    await hub.coordinator.close();
  };

  for (let id = 1; id <= count; id++) fork(id);
  try {
    await startup;
  } catch (error) {
    await stopAll();
    throw error;
  }
  logger.info({ url, ...described, workers: count, pids: [...workers.values()].map((worker) => worker.process.pid) }, "artifact-vault listening");
  let closing: Promise<void> | undefined;
  return { url, close: () => (closing ??= stopAll()) };
}

/** The start-up report of a worker that could not start, from what it threw. */
export function failureReport(error: unknown): WorkerReport {
  const message = error instanceof Error ? error.message : String(error);
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  return {
    type: "artifact-vault:failed",
    message,
    ...(typeof code === "string" ? { code } : {}),
    ...(isVaultError(error) ? { kind: error.kind } : {}),
  };
}
