/**
 * Verdaccio (the devDependency, `node_modules/verdaccio`) as a caching proxy of one npm registry
 * for benchmarks: the config of the tests' harness (tests/support/npm/verdaccio.ts: web UI off,
 * no audit middleware, keep-alive 60 s) with one uplink that every package is proxied to, its
 * storage in the run's temp dir, a free 127.0.0.1 port, pinned with taskset like the other
 * servers (`node …/bin/verdaccio`, so the pid is Verdaccio's own and SIGTERM reaches it), always
 * stopped. It logs warnings only (to a file), so it spends its core on serving.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { installedPackageFile } from "../../tests/support/npm/node-modules.js";
import { tarballLocation } from "../../tests/support/npm/packages.js";
import { writeVerdaccioConfig } from "../../tests/support/npm/verdaccio.js";
import { freePort, waitForHttp } from "./environment.js";
import { startServer, tail } from "./processes.js";
import type { SystemUnderTest } from "./system-under-test.js";

export interface VerdaccioProxyOptions {
  /** A directory of its own, inside the run's temp dir. */
  readonly dir: string;
  readonly cpu: number | undefined;
  readonly name: string;
  /** The registry every package is proxied to (`http://127.0.0.1:PORT/`). */
  readonly uplinkUrl: string;
  /** How long it trusts a packument from the uplink before asking again (Verdaccio's syntax: `30m`). */
  readonly uplinkMaxAge: string;
}

export interface VerdaccioProxy extends SystemUnderTest {
  /** Whether its storage holds the tarball of `name@version` (it stores what it fetched as it streams it). */
  hasTarball(name: string, version: string): boolean;
}

/** The installed Verdaccio's version, e.g. `6.8.0`. */
export function verdaccioVersion(): string {
  const manifest = JSON.parse(readFileSync(installedPackageFile("verdaccio", "package.json"), "utf8")) as { version?: string };
  return manifest.version ?? "?";
}

export async function startVerdaccioProxy(options: VerdaccioProxyOptions): Promise<VerdaccioProxy> {
  const { dir } = options;
  const { storage, configFile, log: verdaccioLog } = writeVerdaccioConfig(dir, { uplinkUrl: options.uplinkUrl, uplinkMaxAge: options.uplinkMaxAge, logLevel: "warn" });
  const port = await freePort();
  const logFile = join(dir, "stdout.log");
  const server = startServer({
    name: options.name,
    command: process.execPath,
    args: [installedPackageFile("verdaccio", "bin/verdaccio"), "--config", configFile, "--listen", `127.0.0.1:${port}`],
    logFile,
    cpu: options.cpu,
    cwd: dir,
    // As its Docker image runs it (Express then skips its development-only work).
    env: { ...process.env, NODE_ENV: "production" },
  });
  const baseUrl = `http://127.0.0.1:${port}`;
  await waitForHttp(`${baseUrl}/-/ping`, {
    ready: (status) => status === 200,
    gaveUp: () => (server.exited() ? `${options.name} exited at start:\n${tail(logFile)}\n${tail(verdaccioLog)}` : undefined),
  });
  return {
    name: options.name,
    baseUrl,
    headers: {},
    pids: [server.pid],
    logFile: verdaccioLog,
    hasTarball: (name, version) => existsSync(tarballLocation(storage, name, version).storagePath),
    stop: () => server.stop(),
  };
}
