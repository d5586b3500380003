/**
 * `artifact-vault serve`: load the configuration, start the vault, and on SIGTERM/SIGINT drain it
 * (`close()`, bounded by `shutdown_timeout`) and exit 0. A second signal exits at once with 1.
 *
 * Once the vault runs, everything this command prints is a log line (`src/logger.ts`: JSON lines,
 * or human-readable ones on a terminal), written by the same logger as the vault's own when it
 * runs in this process; before that, problems are plain `error:` lines on stderr with exit code 2
 * for bad configuration (a malformed tokens file included) and 1 for anything else.
 */
import { InvalidArgumentError, type Command } from "commander";
import type { Logger } from "pino";
import type { VaultConfig } from "../config/schema.js";
import { availableParallelism } from "node:os";
import type { LoadConfigOptions } from "../config/load-config.js";
import { isVaultError } from "../core/errors.js";
import { SEMI_SPACE_CAP, semiSpaceGiven } from "../core/young-generation.js";
import { CliError, EXIT_FAILURE, EXIT_OK } from "./cli-errors.js";
import type { CliIo } from "./cli-io.js";

/** The shape `src/app.ts` exports. */
export interface RunningVault {
  readonly url: string;
  close(): Promise<void>;
}
export type StartVault = (config: VaultConfig) => Promise<RunningVault>;

export interface ServeDeps {
  /** Loads the server lazily, so `tokens` and `--help` never pay for it. */
  readonly loadStartVault?: () => Promise<StartVault>;
  /** Ends the process; injectable for tests. */
  readonly exit?: (code: number) => void;
  /** Where SIGTERM/SIGINT arrive; injectable for tests. */
  readonly signals?: Pick<NodeJS.EventEmitter, "on" | "off">;
}

/** Extra time past `shutdown_timeout` before a stuck shutdown gives up and exits 1. */
const SHUTDOWN_GRACE_MS = 10_000;

export function registerServeCommand(program: Command, io: CliIo, deps: ServeDeps = {}): void {
  program
    .command("serve")
    .description("run the vault: the object store API and the pull-through cache")
    .option("-c, --config <file>", "YAML configuration file (default: built-in defaults)")
    .option("--host <host>", "listen address (overrides http_host and $HOST)")
    .option("--port <port>", "listen port, 0 for any free port (overrides http_port and $PORT)", parsePort)
    .option("--workers <n>", "worker processes (overrides workers; default: one per core)", parseWorkers)
    .addHelpText(
      "after",
      `
Environment: HOST, PORT, LOG_LEVEL, LOG_FORMAT (auto, json or pretty), STORAGE_CONFIG (a
storage.yaml), STORAGE_NAME (its store to use) and AUTH_TOKENS_FILE override the file;
--host/--port override both. \${VAR} and \${VAR:-default} in the file are replaced from the
environment.
Exit codes: 0 after a clean shutdown, 1 on a runtime failure, 2 on bad usage or configuration.`,
    )
    .action(async (options: { config?: string; host?: string; port?: number; workers?: number }) => {
      const load = {
        ...(options.config === undefined ? {} : { file: options.config }),
        cwd: io.cwd,
        overrides: {
          ...(options.host === undefined ? {} : { host: options.host }),
          ...(options.port === undefined ? {} : { port: options.port }),
          ...(options.workers === undefined ? {} : { workers: options.workers }),
        },
      };
      // Loaded here, not at the top: the other commands never pay for the config schema.
      const { loadConfig } = await import("../config/load-config.js");
      const config = await loadConfig({ ...load, env: io.env });
      await serve(config, load, deps);
    });
}

function parseWorkers(value: string): number {
  const count = /^\d{1,3}$/.test(value.trim()) ? Number(value) : Number.NaN;
  if (!(count >= 1 && count <= 256)) throw new InvalidArgumentError("expected a number of worker processes from 1 to 256");
  return count;
}

/**
 * How many worker processes serve: `workers`, `auto` being one per core. A memory store lives in
 * one process's memory, so it gets one whatever was asked (said in the log).
 */
export function workerCount(config: VaultConfig, logger: Pick<Logger, "info">, cores: number = availableParallelism()): number {
  const asked = config.workers === "auto" ? cores : config.workers;
  if (asked > 1 && config.storage.stores[config.storage.main]?.type === "memory") {
    logger.info({ workers: 1 }, "workers: 1, since the memory store lives in one process's memory");
    return 1;
  }
  return asked;
}

function parsePort(value: string): number {
  const port = /^\d{1,5}$/.test(value.trim()) ? Number(value) : Number.NaN;
  if (!(port >= 0 && port <= 65535)) throw new InvalidArgumentError("expected a port number from 0 to 65535");
  return port;
}

async function serve(config: VaultConfig, load: Omit<LoadConfigOptions, "env">, deps: ServeDeps): Promise<void> {
  const exit = deps.exit ?? ((code: number) => process.exit(code));
  const signals = deps.signals ?? process;
  const { createLogger } = await import("../logger.js");
  const logger: Logger = createLogger(config.log_level, {}, { format: config.log_format });
  const loadStartVault = deps.loadStartVault ?? (async () => {
    const count = workerCount(config, logger);
    if (count === 1) {
      // V8 sizes its heap as the process starts: only node's command line can cap it. Say so when
      // the vault was started without the cap its own launchers pass.
      if (!semiSpaceGiven(process.execArgv, process.env["NODE_OPTIONS"])) {
        logger.info(
          `node runs with V8's default young generation (up to 3 × 16 MiB once busy); start the vault with node ${SEMI_SPACE_CAP} (as the artifact-vault command does) for some 30 MB less memory`,
        );
      }
      // One process, one logger: its lines keep their order.
      const { startVault } = await import("../app.js");
      return (loaded: VaultConfig) => startVault(loaded, logger);
    }
    const { startWorkers } = await import("../cluster/primary.js");
    logger.info({ workers: count }, `starting ${count} worker processes over one store`);
    return (loaded: VaultConfig) => startWorkers({ count, load, shutdownTimeoutMs: loaded.shutdown_timeout_ms, logger });
  });

  let vault: RunningVault | undefined;
  let signalled: NodeJS.Signals | undefined;
  let stopping = false;

  const stop = (): void => {
    if (vault === undefined || stopping) return;
    stopping = true;
    const running = vault;
    logger.info({ signal: signalled }, "stopping: draining in-flight requests");
    const watchdog = setTimeout(() => {
      logger.error({ timeoutMs: config.shutdown_timeout_ms + SHUTDOWN_GRACE_MS }, "shutdown did not finish in time; exiting");
      exit(EXIT_FAILURE);
    }, config.shutdown_timeout_ms + SHUTDOWN_GRACE_MS);
    watchdog.unref();
    running.close().then(
      () => {
        clearTimeout(watchdog);
        exit(EXIT_OK);
      },
      (error: unknown) => {
        clearTimeout(watchdog);
        logger.error({ err: error }, "shutdown failed");
        exit(EXIT_FAILURE);
      },
    );
  };

  const onSignal = (signal: NodeJS.Signals): void => {
    if (signalled !== undefined) {
      logger.warn({ signal }, "second signal: exiting without waiting for the drain");
      exit(EXIT_FAILURE);
      return;
    }
    signalled = signal;
    stop(); // if still starting, the stop happens as soon as the vault is up
  };
  signals.on("SIGTERM", onSignal);
  signals.on("SIGINT", onSignal);

  try {
    const startVault = await loadStartVault();
    vault = await startVault(config);
  } catch (error) {
    signals.off("SIGTERM", onSignal);
    signals.off("SIGINT", onSignal);
    throw startFailure(error, config);
  }
  if (signalled !== undefined) stop();
}

/** Turns a start failure into what the user should read (and the exit code it deserves). */
function startFailure(error: unknown, config: VaultConfig): unknown {
  if (isVaultError(error)) return error; // not_supported / bad_request → 2, others → 1 (exitCodeFor)
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  const where = `${config.http_host.includes(":") ? `[${config.http_host}]` : config.http_host}:${config.http_port}`;
  const reasons: Record<string, string> = {
    EADDRINUSE: "the address is already in use (another process listens there)",
    EACCES: "permission denied (ports below 1024 need privileges)",
    EADDRNOTAVAIL: "the address is not available on this machine",
    ENOTFOUND: "the host name does not resolve",
  };
  const reason = code === undefined ? undefined : reasons[code];
  if (reason !== undefined) return new CliError(`cannot listen on ${where}: ${reason}`, EXIT_FAILURE, { cause: error });
  const message = error instanceof Error ? error.message : String(error);
  return new CliError(`the vault failed to start: ${message}`, EXIT_FAILURE, { cause: error });
}
