/**
 * The artifact-vault under test: the built CLI (`dist/src/cli/main.js`), started with a config in
 * the run's temp dir on a free 127.0.0.1 port, with a fresh read/write/delete token, and
 * `workers: 1` (one process, as the one-core comparisons assume) unless the caller asks for more.
 */
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { freePort, waitForHttp } from "./environment.js";
import { withSemiSpaceCap } from "../../src/core/young-generation.js";
import { descendantPids } from "./proc-stats.js";
import { runChecked, startServer, tail } from "./processes.js";
import type { SystemUnderTest } from "./system-under-test.js";

/**
 * dist/src/cli/main.js, seen from dist/bench/lib/vault.js; `ARTIFACT_VAULT_CLI` points the
 * benchmarks at another build (e.g. a checkout of the previous release, to compare).
 */
export const VAULT_CLI =
  process.env["ARTIFACT_VAULT_CLI"] ?? fileURLToPath(new URL("../../src/cli/main.js", import.meta.url));

export function vaultIsBuilt(): boolean {
  return existsSync(VAULT_CLI);
}

let workersSupport: Promise<boolean> | undefined;

/**
 * Whether this build knows `workers` (its `serve --help` names `--workers`). A build from before
 * it rejects the key, and always runs one process anyway.
 */
export function vaultHasWorkers(): Promise<boolean> {
  return (workersSupport ??= runChecked(process.execPath, [VAULT_CLI, "serve", "--help"]).then((help) => help.includes("--workers")));
}

/** Creates a token with the given scopes in `tokensFile`; the plaintext is the CLI's last line. */
export async function createToken(
  tokensFile: string,
  scopes: readonly string[] = ["read", "write", "delete"],
): Promise<string> {
  const args = [VAULT_CLI, "tokens", "add", "bench", "--ttl", "1", "--file", tokensFile];
  for (const scope of scopes) args.push("--scope", scope);
  const stdout = await runChecked(process.execPath, args);
  const token = stdout.trimEnd().split("\n").at(-1)?.trim() ?? "";
  if (token === "") throw new Error(`tokens add printed no token:\n${stdout}`);
  return token;
}

export interface VaultOptions {
  /** A directory of its own, inside the run's temp dir (config, tokens, logs). */
  readonly dir: string;
  readonly cpu: number | undefined;
  /** Filesystem store root; default `<dir>/data`. Reusing one lets a store outlive a restart. */
  readonly dataDir?: string;
  /** Reuse a token already in `<dir>/tokens.json` instead of creating one. */
  readonly token?: string;
  /**
   * Extra top-level config keys (e.g. `backends`, `cache` for the cache benchmark). Without a
   * `workers` key the vault gets `workers: 1`.
   */
  readonly extraConfig?: Readonly<Record<string, unknown>>;
  /** Node flags, e.g. `["--cpu-prof", "--cpu-prof-dir=..."]` to profile a run. */
  readonly nodeFlags?: readonly string[];
  /** Start-up can include scanning a large store. */
  readonly readyTimeoutMs?: number;
  readonly name?: string;
  /** Extra environment variables (e.g. `TMPDIR`, so a spool lands in the run's temp dir). */
  readonly env?: Readonly<Record<string, string>>;
}

export interface VaultServer extends SystemUnderTest {
  readonly token: string;
  readonly dataDir: string;
  /** Its worker processes (`workers: N`); 1: the vault serves in its own process. */
  readonly workers: number;
}

export async function startVault(options: VaultOptions): Promise<VaultServer> {
  if (!vaultIsBuilt()) {
    throw new Error(`${VAULT_CLI} does not exist: build the project first (npm run build)`);
  }
  const { dir } = options;
  mkdirSync(dir, { recursive: true });
  const dataDir = options.dataDir ?? join(dir, "data");
  mkdirSync(dataDir, { recursive: true });
  const tokensFile = join(dir, "tokens.json");
  const token = options.token ?? (await createToken(tokensFile));
  const port = await freePort();
  // JSON is YAML: no YAML writer needed.
  const config = {
    http_host: "127.0.0.1",
    http_port: port,
    log_level: "warn",
    storage: { stores: { local: { type: "filesystem", config: { root_path: dataDir } } }, main: "local" },
    auth: { tokens_file: tokensFile },
    rate_limit: { enabled: false },
    ...((await vaultHasWorkers()) ? { workers: 1 } : {}),
    ...options.extraConfig,
  };
  const configFile = join(dir, "config.yml");
  writeFileSync(configFile, JSON.stringify(config, null, 2));
  const name = options.name ?? "vault";
  const logFile = join(dir, `${name}.log`);
  const server = startServer({
    name,
    command: process.execPath,
    // As its launchers start it (the bin's first line, npm start, the unit, the image): with the
    // young-generation cap, unless the caller's flags give a size.
    args: [...withSemiSpaceCap(options.nodeFlags ?? [], process.env["NODE_OPTIONS"]), VAULT_CLI, "serve", "--config", configFile],
    logFile,
    cpu: options.cpu,
    cwd: dir,
    ...(options.env === undefined ? {} : { env: { ...process.env, ...options.env } }),
  });
  const baseUrl = `http://127.0.0.1:${port}`;
  await waitForHttp(`${baseUrl}/health`, {
    ready: (status) => status === 200,
    timeoutMs: options.readyTimeoutMs ?? 60_000,
    gaveUp: () => (server.exited() ? `the vault exited at start:\n${tail(logFile)}` : undefined),
  });
  // With `workers: N` the vault is a primary and N worker processes (node:cluster): its CPU and
  // memory are theirs together. The primary forks them all before any listens, so they are there
  // once /health answers. (A worker replaced later is not followed: a run where one dies is void.)
  const asked = typeof config.workers === "number" ? config.workers : undefined;
  const workerPids = descendantPids(server.pid);
  if (asked !== undefined && asked > 1 && workerPids.length !== asked) {
    await server.stop();
    throw new Error(`${name}: workers: ${asked}, but ${workerPids.length} worker process(es) under pid ${server.pid}`);
  }
  return {
    name,
    baseUrl,
    headers: { authorization: `Bearer ${token}` },
    pids: [server.pid, ...workerPids],
    logFile,
    token,
    dataDir,
    workers: Math.max(1, workerPids.length),
    stop: () => server.stop(),
  };
}
