/**
 * An S3 server for benchmarks: the tests' patched s3rver (`tests/support/s3-server.ts`, with
 * native conditional writes) in a child process of its own (`s3rver-main.ts`), pinned like the
 * other servers, so its CPU time can be read from `/proc/<pid>/stat` apart from the vault's, and
 * always stopped. Its data lives in the run's temp dir.
 */
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { startServer, tail } from "./processes.js";
import type { S3ServerReady, S3ServerStats } from "./s3rver-main.js";
import { startVault, type VaultServer } from "./vault.js";

const MAIN = fileURLToPath(new URL("s3rver-main.js", import.meta.url));

export interface S3Server extends S3ServerReady {
  readonly name: string;
  readonly pid: number;
  readonly logFile: string;
  /** The vault's `storage` config section: one `s3` store on this server under `prefix`, the main one. */
  storage(prefix: string): Record<string, unknown>;
  /** What the server has answered so far (cumulative). */
  stats(): Promise<S3ServerStats>;
  stop(): Promise<void>;
}

export async function startS3Server(options: { readonly dir: string; readonly cpu: number | undefined; readonly name?: string }): Promise<S3Server> {
  const { dir } = options;
  const tmp = join(dir, "tmp");
  mkdirSync(tmp, { recursive: true });
  const readyFile = join(dir, "ready.json");
  const logFile = join(dir, "s3rver.log");
  const name = options.name ?? "s3rver";
  const server = startServer({
    name,
    command: process.execPath,
    args: [MAIN, readyFile],
    logFile,
    cpu: options.cpu,
    cwd: dir,
    env: { ...process.env, TMPDIR: tmp },
  });
  const deadline = Date.now() + 30_000;
  while (!existsSync(readyFile)) {
    if (server.exited()) throw new Error(`${name} exited at start:\n${tail(logFile)}`);
    if (Date.now() > deadline) {
      await server.stop();
      throw new Error(`${name} not ready after 30 s:\n${tail(logFile)}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  const ready = JSON.parse(readFileSync(readyFile, "utf8")) as S3ServerReady;
  return {
    ...ready,
    name,
    pid: server.pid,
    logFile,
    storage: (prefix) => ({
      stores: {
        s3: {
          type: "s3",
          config: {
            bucket_name: ready.bucket,
            endpoint_url: ready.endpoint,
            s3_access_key: ready.accessKeyId,
            s3_secret_key: ready.secretAccessKey,
            region: ready.region,
            force_path_style: true,
            prefix,
            conditional_writes: "native",
          },
        },
      },
      main: "s3",
    }),
    stats: async () => {
      const response = await fetch(ready.statsUrl, { signal: AbortSignal.timeout(5000) });
      return (await response.json()) as S3ServerStats;
    },
    stop: () => server.stop(),
  };
}

/** S3 requests answered between two `stats()` readings, e.g. "2,000 (1,000 PUT, 1,000 HEAD)". */
export function s3RequestsBetween(before: S3ServerStats, after: S3ServerStats): { readonly total: number; readonly text: string } {
  const total = after.requests - before.requests;
  const parts = Object.entries(after.byMethod)
    .map(([method, count]) => [method, count - (before.byMethod[method] ?? 0)] as const)
    .filter(([, count]) => count > 0)
    .sort((a, b) => b[1] - a[1])
    .map(([method, count]) => `${count.toLocaleString("en-US")} ${method}`);
  return { total, text: `${total.toLocaleString("en-US")}${parts.length > 0 ? ` (${parts.join(", ")})` : ""}` };
}

/**
 * The two vaults an `s3` section compares: one on the filesystem driver, one on `s3` under a fresh
 * prefix of this server, both pinned to `cpu` with their downloads spooled in `tmp`. The S3 one
 * carries the server as its `backing`, so its CPU is reported apart. Each is added to `stops` as
 * soon as it runs.
 */
export async function startVaultsOnFsAndS3(options: {
  readonly dir: string;
  readonly cpu: number | undefined;
  readonly nodeFlags: readonly string[];
  readonly tmp: string;
  readonly s3: S3Server;
  /** Names the prefix (`<prefixName>-<random>/`). */
  readonly prefixName: string;
  /** Config keys both vaults get (backends). */
  readonly extraConfig?: Readonly<Record<string, unknown>>;
  readonly stops: Array<() => Promise<void>>;
}): Promise<{ readonly onFs: VaultServer; readonly onS3: VaultServer; readonly prefix: string }> {
  const { dir, cpu, nodeFlags, tmp, s3, stops } = options;
  const extraConfig = options.extraConfig ?? {};
  const onFs = await startVault({ dir: join(dir, "vault-fs"), cpu, nodeFlags, name: "vault-fs", env: { TMPDIR: tmp }, extraConfig });
  stops.push(() => onFs.stop());
  const prefix = `${options.prefixName}-${randomBytes(4).toString("hex")}/`;
  const s3Vault = await startVault({
    dir: join(dir, "vault-s3"),
    cpu,
    nodeFlags,
    name: "vault-s3",
    env: { TMPDIR: tmp },
    extraConfig: { storage: s3.storage(prefix), ...extraConfig },
  });
  stops.push(() => s3Vault.stop());
  return { onFs, onS3: { ...s3Vault, backing: { name: "s3rver", pids: [s3.pid] } }, prefix };
}
