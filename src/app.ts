import { describeTrustProxy, trustFunction } from "./core/config/trust-proxy.js";
import type { Logger } from "pino";
import type { AddressInfo } from "node:net";
import { TokenAuthenticator } from "./auth/token-authenticator.js";
import { DEFAULT_BACKENDS, mainStore, type VaultConfig } from "./config/schema.js";
import { createLogger } from "./logger.js";
import { Readiness, READY } from "./core/readiness.js";
import { buildServer } from "./http/server.js";
import { redirectHitsSettings } from "./http/redirect-hits.js";
import { upstreamUrls } from "./http/client-snippets.js";
import { ObjectService } from "./objects/object-service.js";
import { createStorageDriver } from "./storage/registry.js";
import { ArtifactCache, type FillProgress } from "./cache/artifact-cache.js";
import type { FillsSource } from "./cache/cache-admin.js";
import type { Coordinator } from "./coordination/coordinator.js";
import { LocalCoordinator } from "./coordination/local-coordinator.js";
import type { StoreSharing } from "./storage/store-sharing.js";
import type { StorageDriver } from "./storage/storage-driver.js";
import { createBackends } from "./upstreams/backend-types.js";
import type { Backend } from "./upstreams/backend.js";
import type { Registry } from "prom-client";
import { meteredBackend } from "./metrics/metered-backend.js";
import { observeUpstreamBoth, UpstreamTallies } from "./metrics/upstream-health.js";
import { localExposition, VaultMetrics, type MetricsExposition } from "./metrics/vault-metrics.js";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { uiIsBuilt } from "./http/ui-routes.js";

export interface RunningVault {
  /** Where it listens, e.g. `http://127.0.0.1:8080`. */
  readonly url: string;
  /** What each backend answers, as the start-up log says it (`pypi /pypi/`). */
  readonly backends: readonly string[];
  /** Where the vault's own pages are (`pagesOf`), as the start-up log says. */
  readonly pages: Readonly<Record<string, string>>;
  /** Stops accepting, lets in-flight requests finish (up to `shutdown_timeout`), releases resources. */
  close(): Promise<void>;
}

export { createLogger } from "./logger.js";

/** What a worker process of `workers: N` puts in place of a lone vault's own parts. */
export interface WorkerSeams {
  /** Who this worker is among its peers: it spools apart, and `/health` says which answered. */
  readonly worker?: { readonly id: number; readonly count: number };
  /** Coordination through the primary process (unless Redis coordinates). */
  readonly coordinator?: Coordinator;
  /** How each filesystem store namespace ("" for the object API's) is shared with the other workers. */
  readonly storeSharing?: (store: string) => StoreSharing;
  /**
   * How `/metrics` shows the whole vault: given this worker's registry, answers the primary's
   * requests for it and returns what asks every worker's (`cluster/metrics-link.ts`).
   */
  readonly metrics?: (registry: Registry) => MetricsExposition;
  /**
   * How the admin routes list the whole vault's downloads in progress: given this worker's own,
   * answers the primary's requests for them and returns what asks every worker's
   * (`cluster/fills-link.ts`).
   */
  readonly fills?: (local: () => readonly FillProgress[]) => FillsSource;
}

/** The composition root: config → storage → auth → domain → HTTP server. */
export async function startVault(config: VaultConfig, logger: Logger = createLogger(config.log_level, {}, { format: config.log_format }), seams: WorkerSeams = {}): Promise<RunningVault> {
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
    const metrics = config.metrics.enabled ? new VaultMetrics() : undefined;
    const cache = new ArtifactCache({
      coordinator,
      observer: metrics,
      driver: cacheDriver,
      logger,
      spoolDirectory,
      maxSize: config.cache.max_size,
      negativeTtlMs: config.cache.negative_ttl_ms,
      digestIndex: digestDriver,
    });
    await cache.start();
    resources.push(() => cache.close());
    const created = await createBackends(config.backends, { logger, metadataTtlMs: config.cache.metadata_ttl_ms, artifacts: cache });
    // Their upstream exchanges counted for the upstream health of `/admin/backends` (the
    // coordinator's tallies: the whole vault's), and timed and classified for the metrics (a
    // decorator: they do not know).
    const tallies = new UpstreamTallies(coordinator);
    const upstreams = metrics === undefined ? tallies : observeUpstreamBoth(tallies, metrics);
    const backends = created.map((backend) => meteredBackend(backend, upstreams));
    metrics?.watch(cache, backends.map((backend) => backend.name));
    resources.push(() => Promise.all(backends.map((backend) => backend.close())).then(() => undefined));
    served = backends.map(describeBackend);
    // Said once per vault (by the first worker when there are several).
    if (seams.worker === undefined || seams.worker.id === 1) {
      noteReplacedDefaults(backends, logger);
      const trusted = describeTrustProxy(config.trust_proxy);
      if (trusted !== undefined) logger.info({ trust_proxy: config.trust_proxy }, `client addresses: ${trusted}`);
    }
    app = await buildServer({
      logger,
      readiness: readinessOf(driver, cache, authenticator),
      ...(seams.worker === undefined ? {} : { worker: seams.worker }),
      timeouts: { requestMs: config.request_timeout_ms, bodyMs: config.body_timeout_ms },
      docs: config.docs.enabled,
      trustProxy: config.trust_proxy === false ? undefined : trustFunction(config.trust_proxy),
      authenticator,
      objects: new ObjectService(driver, config.max_object_size),
      coordinator,
      rateLimit: {
        enabled: config.rate_limit.enabled,
        perTokenPerMinute: config.rate_limit.per_token_per_minute,
        perIpPerMinute: config.rate_limit.per_ip_per_minute,
      },
      vault: {
        backends,
        cache,
        requireToken: config.auth.proxy === "token",
        redirectHits: redirectHitsSettings(config.cache, cacheDriver, onWarning),
        upstreams: new Map(config.backends.map((definition) => [definition.name, upstreamUrls(definition.options)])),
        fills: seams.fills?.(() => cache.fillsInProgress()),
      },
      metrics:
        metrics === undefined
          ? undefined
          : {
              observer: metrics,
              exposition: seams.metrics?.(metrics.registry) ?? localExposition(metrics.registry),
              scope: config.metrics.token_required ? "read" : undefined,
            },
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
  const pages = pagesOf(config, url);
  if (seams.worker === undefined) logger.info({ url, storage: mainStore(config).type, backends: served, pages }, "artifact-vault listening");
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
    pages,
    close: () => (closing ??= close()),
  };
}

/** Where the vault's own pages are, or why one is not there: the first things a newcomer opens. */
export function pagesOf(config: VaultConfig, url: string): Record<string, string> {
  return {
    ui: uiIsBuilt() ? `${url}/ui/` : "not built: run npm run build",
    docs: config.docs.enabled ? `${url}/docs` : "off (docs.enabled: false)",
    metrics: config.metrics.enabled ? `${url}/metrics` : "off (metrics.enabled: false)",
  };
}

/**
 * What `GET /ready` waits for: the store's walk of its keys (filesystem), the cache's index, the
 * tokens file read, the backends made. The tokens and backends are in place before the vault
 * listens (a tokens file that cannot be read stops the start), so they read ready from the first
 * request on; the indexes are built in the background.
 */
export function readinessOf(driver: StorageDriver, cache: ArtifactCache, authenticator: TokenAuthenticator): Readiness {
  return new Readiness()
    .track("store_index", driver.indexed, "indexing the store's keys")
    .add("cache_index", () => {
      if (cache.index.ready) return READY;
      const failure = cache.index.scanFailure;
      return failure === undefined ? "indexing the cache" : `failed: ${failure} (eviction is off until a restart)`;
    })
    .add("tokens", () => (authenticator.loaded ? READY : "reading the tokens file"))
    .add("backends", () => READY);
}

/**
 * A config that lists `backends` gets those and none of the defaults: said at start, with the
 * default prefixes nobody serves now, so that a 404 under `/npm/` is not a surprise.
 */
function noteReplacedDefaults(backends: readonly Backend[], logger: Logger): void {
  const prefixes = new Set(backends.map((backend) => backend.prefix));
  const notServed = DEFAULT_BACKENDS.filter((backend) => !prefixes.has(String(backend.config["prefix"]))).map((backend) => `${backend.name} ${String(backend.config["prefix"])}`);
  if (notServed.length === 0) return;
  logger.info({ notServed }, `backends from the config replace the defaults (${DEFAULT_BACKENDS.map((backend) => backend.name).join(", ")})`);
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
