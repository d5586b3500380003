/**
 * `startNodeCeiling`: the "Node ceiling" reference (`node-ceiling-main.ts`, a bare `node:http`
 * server serving the same bytes at the same URLs as the vault) as a pinned child process of its
 * own, started like the vault (`node <script> …`, a free 127.0.0.1 port, ready when it answers),
 * and always stopped. Its CPU time is its own (`/proc/<pid>/stat`).
 */
import { createHash } from "node:crypto";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { freePort, waitForHttp } from "./environment.js";
import type { NodeCeilingConfig } from "./node-ceiling-main.js";
import { startServer, tail } from "./processes.js";
import type { SystemUnderTest } from "./system-under-test.js";

const MAIN = fileURLToPath(new URL("node-ceiling-main.js", import.meta.url));

/** The name of the ceiling in tables and logs. */
export const NODE_CEILING = "node ceiling";

export interface NodeCeilingOptions {
  /** A directory of its own, inside the run's temp dir (config, log). */
  readonly dir: string;
  readonly cpu: number | undefined;
  /** URL prefix → directory, read at start (see `node-ceiling-main.ts`). */
  readonly mounts: NodeCeilingConfig["mounts"];
  /** Files up to this size are served from memory (default 1 MiB), larger ones from disk. */
  readonly memoryMaxBytes?: number;
  /** Default `application/octet-stream`, what the vault answers for the benchmarks' files. */
  readonly contentType?: string;
  /**
   * The bearer token every request must carry (only its SHA-256 reaches the server, as only the
   * hash is in the vault's tokens file); the returned system sends it, like the vault's.
   */
  readonly token?: string;
  readonly name?: string;
  /** Paths under `prefix` that were not files at start are cold misses fetched from `baseUrl`. */
  readonly upstream?: { readonly prefix: string; readonly baseUrl: string };
}

export async function startNodeCeiling(options: NodeCeilingOptions): Promise<SystemUnderTest> {
  const { dir } = options;
  mkdirSync(dir, { recursive: true });
  const port = await freePort();
  const config: NodeCeilingConfig = {
    host: "127.0.0.1",
    port,
    mounts: options.mounts,
    memoryMaxBytes: options.memoryMaxBytes ?? 1024 * 1024,
    contentType: options.contentType ?? "application/octet-stream",
    ...(options.upstream === undefined ? {} : { upstream: { ...options.upstream, spoolDir: join(dir, "spool") } }),
    ...(options.token === undefined ? {} : { tokenSha256: createHash("sha256").update(options.token, "utf8").digest("hex") }),
  };
  const configFile = join(dir, "node-ceiling.json");
  writeFileSync(configFile, JSON.stringify(config, null, 2));
  const name = options.name ?? NODE_CEILING;
  const logFile = join(dir, "node-ceiling.log");
  const server = startServer({ name, command: process.execPath, args: [MAIN, configFile], logFile, cpu: options.cpu, cwd: dir });
  const baseUrl = `http://127.0.0.1:${port}`;
  // Any answer will do (401 or 404 for `/`); start-up reads every file and hashes the large ones.
  await waitForHttp(`${baseUrl}/`, {
    ready: () => true,
    timeoutMs: 120_000,
    gaveUp: () => (server.exited() ? `${name} exited at start:\n${tail(logFile)}` : undefined),
  });
  return {
    name,
    baseUrl,
    headers: options.token === undefined ? {} : { authorization: `Bearer ${options.token}` },
    pids: [server.pid],
    logFile,
    stop: () => server.stop(),
  };
}
