import { pino, type Logger } from "pino";
import type { AddressInfo } from "node:net";
import { TokenAuthenticator } from "./auth/token-authenticator.js";
import { mainStore, type VaultConfig } from "./config/schema.js";
import { buildServer } from "./http/server.js";
import { ObjectService } from "./objects/object-service.js";
import { createStorageDriver } from "./storage/registry.js";

export interface RunningVault {
  /** Where it listens, e.g. `http://127.0.0.1:8080`. */
  readonly url: string;
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

export function createLogger(level: VaultConfig["log_level"]): Logger {
  return pino({
    level,
    base: { service: "artifact-vault" },
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: { paths: REDACTED_PATHS, censor: "[redacted]" },
  });
}

/** The composition root: config → storage → auth → domain → HTTP server. */
export async function startVault(config: VaultConfig, logger: Logger = createLogger(config.log_level)): Promise<RunningVault> {
  const driver = await createStorageDriver(mainStore(config));
  const authenticator = new TokenAuthenticator(config.auth.tokens_file, logger);
  await authenticator.start();
  const objects = new ObjectService(driver, config.max_object_size);
  const app = await buildServer({
    logger,
    authenticator,
    objects,
    rateLimit: {
      enabled: config.rate_limit.enabled,
      perTokenPerMinute: config.rate_limit.per_token_per_minute,
      perIpPerMinute: config.rate_limit.per_ip_per_minute,
    },
  });
  try {
    await app.listen({ host: config.http_host, port: config.http_port });
  } catch (error) {
    authenticator.close();
    await driver.close();
    throw error;
  }
  const address = app.server.address() as AddressInfo;
  const host = address.family === "IPv6" ? `[${address.address}]` : address.address;
  const url = `http://${host}:${address.port}`;
  logger.info({ url, storage: driver.kind, tokens: authenticator.size }, "artifact-vault listening");
  if (authenticator.size === 0) {
    logger.warn({ file: config.auth.tokens_file }, "no API tokens yet: create one with `artifact-vault tokens add NAME --ttl DAYS --scope read`");
  }

  let closing: Promise<void> | undefined;
  const close = async (): Promise<void> => {
    logger.info("shutting down: draining in-flight requests");
    const deadline = setTimeout(() => {
      logger.warn({ timeoutMs: config.shutdown_timeout_ms }, "shutdown deadline reached; closing remaining connections");
      app.server.closeAllConnections();
    }, config.shutdown_timeout_ms);
    deadline.unref();
    try {
      await app.close();
    } finally {
      clearTimeout(deadline);
      authenticator.close();
      await driver.close();
      logger.info("stopped");
    }
  };
  return {
    url,
    close: () => (closing ??= close()),
  };
}
