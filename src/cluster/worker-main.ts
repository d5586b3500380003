/**
 * A worker process of `workers: N` (forked by `primary.ts`): loads the configuration as the
 * primary did, starts a whole vault whose coordination (unless Redis does it) and filesystem
 * store sharing go through the primary, and reports when it listens. It drains and exits when
 * the primary says stop or when it is signalled itself.
 */
import { startVault, createLogger, type RunningVault } from "../app.js";
import { ClusterCoordinator } from "../coordination/cluster-coordinator.js";
import { loadConfig } from "../config/load-config.js";
import { mainStore } from "../config/schema.js";
import { failureReport, STOP_EVENT, WORKER_ENV, type WorkerIdentity, type WorkerReport } from "./primary.js";
import { WorkerFills } from "./fills-link.js";
import { WorkerMetrics } from "./metrics-link.js";
import { SharedStores } from "./store-link.js";
import { WorkerLink } from "./worker-link.js";

const identity = JSON.parse(process.env[WORKER_ENV] ?? "null") as WorkerIdentity | null;
if (identity === null) throw new Error(`${WORKER_ENV} is not set: worker-main runs only as a worker of \`artifact-vault serve\``);
const worker = { id: identity.id, count: identity.count };
const link = new WorkerLink(process);
// Answer the primary's requests for this worker's metrics and downloads in progress from now on
// (empty until it serves).
const metrics = new WorkerMetrics(link);
const fills = new WorkerFills(link);
const report = (message: WorkerReport): Promise<void> => link.sendNow(message);

let vault: RunningVault | undefined;
let stopping = false;
const drain = (running: RunningVault): void => {
  running.close().then(
    () => process.exit(0),
    () => process.exit(1),
  );
};
const stop = (): void => {
  if (stopping) return;
  stopping = true;
  if (vault === undefined) process.exit(0); // still starting: nothing to drain
  else drain(vault);
};
link.onEvent(STOP_EVENT, stop);
// A worker whose primary is gone is ended by node:cluster itself at once (a crash, as far as its
// requests go; its staging files are removed on the way out).
// Signalled on its own (the primary, signalled too, says stop anyway): drain, and be replaced
// unless the whole vault is stopping.
process.on("SIGTERM", stop);
process.on("SIGINT", stop);

try {
  const config = await loadConfig({ ...identity.load, env: process.env });
  const logger = createLogger(config.log_level, { worker: worker.id }, { format: config.log_format });
  vault = await startVault(config, logger, {
    worker,
    // Replicas coordinated through Redis: every worker talks to Redis itself.
    ...(config.coordination.redis_url === undefined ? { coordinator: new ClusterCoordinator(link, worker) } : {}),
    storeSharing: ((stores) => (store: string) => stores.sharing(store))(new SharedStores(link)),
    metrics: (registry) => metrics.exposition(registry),
    fills: (local) => fills.source(local),
  });
  if (stopping) drain(vault);
  else await report({ type: "artifact-vault:listening", url: vault.url, storage: mainStore(config).type, backends: vault.backends, pages: vault.pages });
} catch (error) {
  await report(failureReport(error));
  process.exit(1);
}
