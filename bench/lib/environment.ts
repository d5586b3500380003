/**
 * What a benchmark needs from the machine: the system tools, a CPU layout that gives the server
 * under test and the reference the same budget, a temp dir, and free loopback ports.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { createServer } from "node:net";
import { availableParallelism, tmpdir } from "node:os";
import { join } from "node:path";
import { removeOnExit, UsageError } from "./lifecycle.js";
import { findExecutable } from "./processes.js";

/** Debian package that provides each tool a benchmark may need. */
const DEBIAN_PACKAGES: Readonly<Record<string, string>> = {
  nginx: "nginx",
  wrk: "wrk",
  taskset: "util-linux",
  curl: "curl",
  "redis-server": "redis-server",
};

/**
 * Resolves each tool's path, or throws a `UsageError` (exit 2) naming the exact apt-get line.
 * For nginx, also checks that it was built with `nginxModules` (default: the WebDAV module, the
 * object benchmark's reference; the cache benchmark needs only modules every build has).
 */
export function requireTools(
  names: readonly string[],
  options: { readonly nginxModules?: readonly string[] } = {},
): Record<string, string> {
  const found: Record<string, string> = {};
  const missing: string[] = [];
  for (const name of names) {
    const path = findExecutable(name);
    if (path === undefined) missing.push(name);
    else found[name] = path;
  }
  if (missing.length > 0) {
    const packages = [...new Set(missing.map((name) => DEBIAN_PACKAGES[name] ?? name))];
    throw new UsageError(
      `missing tools: ${missing.join(", ")}\n` +
        `install them with:\n  sudo apt-get install -y ${packages.join(" ")}`,
    );
  }
  const nginx = found["nginx"];
  const modules = options.nginxModules ?? ["http_dav_module"];
  if (nginx !== undefined && modules.length > 0) {
    const version = spawnSync(nginx, ["-V"], { encoding: "utf8" });
    const built = `${version.stderr}${version.stdout}`;
    const without = modules.filter((module) => !built.includes(module));
    if (without.length > 0) {
      throw new UsageError(
        `${nginx} was built without ${without.join(", ")} (the reference needs it)\n` +
          `install Debian's build with:\n  sudo apt-get install -y nginx`,
      );
    }
  }
  return found;
}

export interface CpuLayout {
  /** Cores this process could use before pinning. */
  readonly cores: number;
  /** Core for the systems under test (the vault, and nginx with one worker), or none. */
  readonly server: number | undefined;
  /** Core for the load generators (wrk, curl, this harness's own client code). */
  readonly load: number | undefined;
  readonly note: string;
}

/**
 * Pins this harness (all its threads) to the load core, and says where servers go. With fewer
 * than two cores nothing is pinned and the note says the numbers share one core.
 */
export function pinCpus(): CpuLayout {
  const cores = availableParallelism();
  if (cores < 2) {
    return {
      cores,
      server: undefined,
      load: undefined,
      note: "1 core: servers and load generators share it (ratios still comparable)",
    };
  }
  const result = spawnSync("taskset", ["-a", "-p", "-c", "1", String(process.pid)], {
    encoding: "utf8",
  });
  if (result.status !== 0) {
    return { cores, server: undefined, load: undefined, note: `taskset failed, nothing pinned: ${result.stderr}` };
  }
  return {
    cores,
    server: 0,
    load: 1,
    note: `${cores} cores: servers (vault, nginx with 1 worker) on core 0, load generators on core 1`,
  };
}

/**
 * Runs `fn` with this harness allowed on every core again (for set-up work such as filling a
 * store, when nothing is being measured), then pins it back to the load core.
 */
export async function onAllCores<T>(layout: CpuLayout, fn: () => Promise<T>): Promise<T> {
  if (layout.load === undefined) return fn();
  const setAffinity = (cpus: string): void => {
    spawnSync("taskset", ["-a", "-p", "-c", cpus, String(process.pid)], { encoding: "utf8" });
  };
  setAffinity(`0-${layout.cores - 1}`);
  try {
    return await fn();
  } finally {
    setAffinity(String(layout.load));
  }
}

/** A fresh directory under os.tmpdir(), removed at the end of the run whatever happens. */
export function makeWorkDir(label: string): string {
  const dir = mkdtempSync(join(tmpdir(), `artifact-vault-${label}-`));
  removeOnExit(dir);
  return dir;
}

/** A port that was free on 127.0.0.1 a moment ago. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/**
 * Polls `url` until it answers with a status `ready` accepts, the deadline passes, or
 * `gaveUp()` says the server process is gone.
 */
export async function waitForHttp(
  url: string,
  options: {
    readonly timeoutMs?: number;
    readonly ready?: (status: number) => boolean;
    readonly gaveUp?: () => string | undefined;
  } = {},
): Promise<void> {
  const deadline = Date.now() + (options.timeoutMs ?? 30_000);
  const ready = options.ready ?? ((status: number) => status < 500);
  let last = "no answer";
  while (Date.now() < deadline) {
    const reason = options.gaveUp?.();
    if (reason !== undefined) throw new Error(reason);
    try {
      const response = await fetch(url, { signal: AbortSignal.timeout(2000) });
      await response.arrayBuffer();
      if (ready(response.status)) return;
      last = `HTTP ${response.status}`;
    } catch (error) {
      last = error instanceof Error ? error.message : String(error);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`${url} not ready after ${options.timeoutMs ?? 30_000} ms (${last})`);
}
