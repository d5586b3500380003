import { pino, type Logger } from "pino";
import type { AddressInfo } from "node:net";
import { TokenAuthenticator } from "./auth/token-authenticator.js";
import { mainStore, type VaultConfig } from "./config/schema.js";
import { buildServer } from "./http/server.js";
import { redirectHitsSettings } from "./http/redirect-hits.js";
import { ObjectService } from "./objects/object-service.js";
import { createStorageDriver } from "./storage/registry.js";
import { ArtifactCache } from "./cache/artifact-cache.js";
import type { Coordinator } from "./coordination/coordinator.js";
import { LocalCoordinator } from "./coordination/local-coordinator.js";
import type { StoreSharing } from "./storage/store-sharing.js";
import { createBackends } from "./upstreams/backend-types.js";
import type { Backend } from "./upstreams/backend.js";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";

export interface RunningVault {
  /** Where it listens, e.g. `http://127.0.0.1:8080`. */
  readonly url: string;
  /** What each backend answers, as the start-up log says it (`pypi /pypi/`). */
  readonly backends: readonly string[];
  /** Stops accepting, lets in-flight requests finish (up to `shutdown_timeout`), releases resources. */
  close(): Promise<void>;
}

/** Secrets that must never reach a log line, wherever they appear in a logged object. */
const REDACTED_PATHS = [
  "req.headers.authorization",
  "headers.authorization",
  "authorization",
  "*.authorization",
  "password",
  "*.password",
  "token",
  "*.token",
  "s3_secret_key",
  "*.s3_secret_key",
];

/** Log lines wait at most this long in memory before they are written (or until 4 KiB gather). */
const LOG_FLUSH_MS = 200;

/**
 * The service's logger: JSON lines on stdout, written in batches (every 200 ms or 4 KiB, and at
 * exit) rather than one write per line — under load the access log alone would otherwise cost a
 * system call per request, as nginx's `access_log ... buffer= flush=` avoids too. A process
 * killed with SIGKILL loses at most the last 200 ms of lines.
 */
export function createLogger(level: VaultConfig["log_level"], fields: Record<string, unknown> = {}): Logger {
  // Each write is whole lines of at most 4 KiB (PIPE_BUF): the workers of one vault share stdout,
  // and writes that size are never interleaved with another process's on a pipe.
  const destination = pino.destination({ dest: 1, sync: false, minLength: 3072, maxWrite: 4096 });
  // flush() does nothing while a write is in flight (that write takes what is buffered next).
  const flusher = setInterval(() => {
    try {
      destination.flush();
    } catch {
      clearInterval(flusher); // destroyed: nothing more will be written
    }
  }, LOG_FLUSH_MS);
  flusher.unref();
  return pino(
    {
      level,
      base: { service: "artifact-vault", ...fields },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: { paths: REDACTED_PATHS, censor: "[redacted]" },
    },
    destination,
  );
}

/** What a worker process of `workers: N` puts in place of a lone vault's own parts. */
export interface WorkerSeams {
  /** Who this worker is among its peers: it spools apart, and `/health` says which answered. */
  readonly worker?: { readonly id: number; readonly count: number };
  /** Coordination through the primary process (unless Redis coordinates). */
  readonly coordinator?: Coordinator;
  /** How each filesystem store namespace ("" for the object API's) is shared with the other workers. */
  readonly storeSharing?: (store: string) => StoreSharing;
}

/** The composition root: config → storage → auth → domain → HTTP server. */
export async function startVault(config: VaultConfig, logger: Logger = createLogger(config.log_level), seams: WorkerSeams = {}): Promise<RunningVault> {
  const onWarning = (message: string): void => logger.warn(message);
  const resources: Array<() => Promise<void> | void> = [];
  const releaseAll = async (): Promise<void> => {
    for (const release of resources.splice(0).reverse()) await release();
  };
  let app;
  let served: string[] = [];
  try {
    const sharing = (store: string): { sharing?: StoreSharing } => (seams.storeSharing === undefined ? {} : { sharing: seams.storeSharing(store) });
    const driver = await createStorageDriver(mainStore(config), { onWarning, ...sharing("") });
    resources.push(() => driver.close());
    // The cache lives in its own namespace of the store: object-API keys can never reach it.
    const cacheDriver = await createStorageDriver(mainStore(config), { onWarning, namespace: "cache", ...sharing("cache") });
    resources.push(() => cacheDriver.close());
    // The cache's digest index (which entries hold which bytes) in a namespace of its own.
    const digestDriver = await createStorageDriver(mainStore(config), { onWarning, namespace: "cache-digests", ...sharing("cache-digests") });
    resources.push(() => digestDriver.close());
    const authenticator = new TokenAuthenticator(config.auth.tokens_file, logger);
    await authenticator.start();
    resources.push(() => authenticator.close());
    if (authenticator.size === 0) {
      logger.warn({ file: config.auth.tokens_file }, "no API tokens yet: create one with `artifact-vault tokens add NAME --ttl DAYS --scope read`");
    }
    // Downloads spool next to the store when it is on local disk (a rename commits them); else in
    // a temp dir of this vault's own, removed when it stops.
    let spoolDirectory = cacheDriver.localStagingDirectory;
    if (spoolDirectory === undefined) {
      const temporary = await mkdtemp(path.join(tmpdir(), "artifact-vault-spool-"));
      resources.push(() => rm(temporary, { recursive: true, force: true }));
      spoolDirectory = temporary;
    } else if (seams.worker !== undefined) {
      // The cache empties its spool directory at start: a worker's own, so that a replacement
      // clears what its crashed predecessor left and nothing of the other workers'.
      spoolDirectory = path.join(spoolDirectory, `worker-${seams.worker.id}`);
    }
    const coordinator = seams.coordinator ?? (await startCoordinator(config, logger));
    resources.push(() => coordinator.close());
    const cache = new ArtifactCache({
      coordinator,
      driver: cacheDriver,
      logger,
      spoolDirectory,
      maxSize: config.cache.max_size,
      negativeTtlMs: config.cache.negative_ttl_ms,
      digestIndex: digestDriver,
    });
    await cache.start();
    resources.push(() => cache.close());
    const backends = await createBackends(config.backends, { logger, metadataTtlMs: config.cache.metadata_ttl_ms, artifacts: cache });
    resources.push(() => Promise.all(backends.map((backend) => backend.close())).then(() => undefined));
    served = backends.map(describeBackend);
    app = await buildServer({
      logger,
      ...(seams.worker === undefined ? {} : { worker: seams.worker }),
      timeouts: { requestMs: config.request_timeout_ms, bodyMs: config.body_timeout_ms },
      authenticator,
      objects: new ObjectService(driver, config.max_object_size),
      coordinator,
      rateLimit: {
        enabled: config.rate_limit.enabled,
        perTokenPerMinute: config.rate_limit.per_token_per_minute,
        perIpPerMinute: config.rate_limit.per_ip_per_minute,
      },
      vault: { backends, cache, requireToken: config.auth.proxy === "token", redirectHits: redirectHitsSettings(config.cache, cacheDriver, onWarning) },
    });
    await app.listen({ host: config.http_host, port: config.http_port });
  } catch (error) {
    await releaseAll();
    throw error;
  }
  const server = app;
  const address = server.server.address() as AddressInfo;
  const host = address.family === "IPv6" ? `[${address.address}]` : address.address;
  const url = `http://${host}:${address.port}`;
  // A worker's line is short: the primary says where the vault listens, once all of them do.
  if (seams.worker === undefined) logger.info({ url, storage: mainStore(config).type, backends: served }, "artifact-vault listening");
  else logger.info({ pid: process.pid }, `worker ${seams.worker.id} listening`);

  let closing: Promise<void> | undefined;
  const close = async (): Promise<void> => {
    logger.info("shutting down: draining in-flight requests");
    const deadline = setTimeout(() => {
      logger.warn({ timeoutMs: config.shutdown_timeout_ms }, "shutdown deadline reached; closing remaining connections");
      server.server.closeAllConnections();
    }, config.shutdown_timeout_ms);
    deadline.unref();
    try {
      await server.close();
    } finally {
      clearTimeout(deadline);
      await releaseAll();
      logger.info("stopped");
    }
  };
  return {
    url,
    backends: served,
    close: () => (closing ??= close()),
  };
}

/** Redis when `coordination.redis_url` is set, else this process alone; said in the log either way. */
async function startCoordinator(config: VaultConfig, logger: Logger): Promise<Coordinator> {
  const { redis_url: url, key_prefix: keyPrefix, lease_ttl_ms: leaseTtlMs } = config.coordination;
  // ioredis is loaded only when configured.
  const coordinator =
    url === undefined ? new LocalCoordinator() : await (await import("./coordination/redis-coordinator.js")).RedisCoordinator.connect({ url, keyPrefix, leaseTtlMs, logger });
  logger.info(`coordination: ${coordinator.describe()}`);
  return coordinator;
}

/** What a backend answers, for the start-up log: `docker /dockerhub/ and /v2/`, `debian /debian/ and proxy mode for http://deb.debian.org/debian/`. */
function describeBackend(backend: Backend): string {
  const also: string[] = [];
  if (backend.mounts?.registryApi === true) also.push("/v2/");
  const proxied = backend.mounts?.forwardProxy ?? [];
  if (proxied.length > 0) also.push(`proxy mode for ${proxied.map((base) => base.href).join(", ")}`);
  return [`${backend.name} ${backend.prefix}`, ...also].join(" and ");
}
