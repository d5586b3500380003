/**
 * Verdaccio (the devDependency) as a real npm registry for end-to-end tests: run with
 * `node …/verdaccio/bin/verdaccio --config FILE --listen 127.0.0.1:PORT` (node itself, so SIGTERM
 * reaches the server), in its own process group, everything (config, storage, htpasswd, logs)
 * inside `dir`. The web UI is off; anyone may read, publish and unpublish every package. No
 * uplink unless `uplinkUrl` is given, so by default it never tries the internet; the audit
 * middleware (verdaccio-audit, which forwards audits to registry.npmjs.org) is not loaded, so an
 * audit request is answered 404 at once.
 *
 * It is stopped with its process group on `stop()`, on this process's exit, and — through a
 * `--require`d watchdog that polls its parent — also when this process is killed outright.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { freePort, readOr, sleep, spawnDaemon, type Daemon } from "../process.js";
import { installedPackageFile } from "./node-modules.js";

/** A request as Verdaccio logged it on arrival (its "requested" line). */
export interface VerdaccioRequest {
  readonly method: string;
  /** Path and query exactly as sent (`/@vault-probe%2flib`, `/-/v1/search?text=…`). */
  readonly url: string;
  /** Lower-case names; Verdaccio logs `authorization` and `cookie` as `<Classified>`. */
  readonly headers: Readonly<Record<string, string>>;
}

export interface Verdaccio {
  /** `http://127.0.0.1:PORT`, no trailing slash. */
  readonly url: string;
  /** `http://127.0.0.1:PORT/`: what `--registry` and `registry_url` take. */
  readonly registry: string;
  readonly port: number;
  readonly dir: string;
  /** Its storage: `<storage>/<name>/package.json` and `<storage>/<name>/<basename>-<version>.tgz`. */
  readonly storage: string;
  readonly configFile: string;
  /** Verdaccio's own log, one JSON object per line (level `http`). */
  readonly logFile: string;
  /** Requests logged so far (all, or those whose path — query ignored — is `path`), in order. */
  requests(path?: string): VerdaccioRequest[];
  /** Waits (up to `timeoutMs`) until at least `count` requests for `path` are logged. */
  logged(path: string, count: number, timeoutMs?: number): Promise<VerdaccioRequest[]>;
  stop(): Promise<void>;
}

export interface VerdaccioOptions {
  /** A directory of its own (created). */
  readonly dir: string;
  /** One uplink that every package is proxied to (Verdaccio as a caching proxy of that registry). */
  readonly uplinkUrl?: string;
  /** How long Verdaccio trusts the uplink's packument (Verdaccio's syntax: `2m`, `30s`; its default 2m). */
  readonly uplinkMaxAge?: string;
  /** Log level of `logFile`: `http` (default) logs every request. */
  readonly logLevel?: "trace" | "debug" | "http" | "info" | "warn";
}

const WATCHDOG = `// Exits Verdaccio when the test process that started it is gone (even after a SIGKILL).
const parent = Number(process.env.VERDACCIO_TEST_PARENT_PID);
const startPpid = process.ppid;
if (parent > 0) {
  setInterval(() => {
    let alive = process.ppid === startPpid;
    try { process.kill(parent, 0); } catch { alive = false; }
    if (!alive) process.exit(0);
  }, 500).unref();
}
`;

const q = (value: string): string => JSON.stringify(value);

/** A Verdaccio's files inside its dir. */
export interface VerdaccioFiles {
  readonly storage: string;
  readonly plugins: string;
  readonly htpasswd: string;
  /** Verdaccio's own log. */
  readonly log: string;
  readonly configFile: string;
}

function config(options: Omit<VerdaccioOptions, "dir">, paths: VerdaccioFiles): string {
  const proxy = options.uplinkUrl === undefined ? "" : ", proxy: upstream";
  const rule = `{access: $all, publish: $all, unpublish: $all${proxy}}`;
  const uplinks =
    options.uplinkUrl === undefined
      ? "uplinks: {}"
      : `uplinks:\n  upstream: {url: ${q(options.uplinkUrl)}, maxage: ${q(options.uplinkMaxAge ?? "2m")}, timeout: 30s, max_fails: 2, fail_timeout: 5m, cache: true}`;
  return `# written by tests/support/npm/verdaccio.ts
storage: ${q(paths.storage)}
plugins: ${q(paths.plugins)}
web: {enable: false}
auth:
  htpasswd: {file: ${q(paths.htpasswd)}, max_users: -1}
${uplinks}
packages:
  "@*/*": ${rule}
  "**": ${rule}
# No "audit" middleware: verdaccio-audit would forward every audit to https://registry.npmjs.org.
middlewares: {}
server: {keepAliveTimeout: 60}
log: {type: file, path: ${q(paths.log)}, format: json, level: ${options.logLevel ?? "http"}}
`;
}

function parseRequests(logFile: string): VerdaccioRequest[] {
  const requests: VerdaccioRequest[] = [];
  for (const line of readOr(logFile).split("\n")) {
    if (!line.includes(" requested '")) continue;
    try {
      const entry = JSON.parse(line) as { msg?: string; req?: { method?: string; url?: string; headers?: Record<string, string> } };
      if (entry.msg?.includes(" requested '") === true && entry.req?.method !== undefined && entry.req.url !== undefined) {
        requests.push({ method: entry.req.method, url: entry.req.url, headers: entry.req.headers ?? {} });
      }
    } catch {
      // a line still being written
    }
  }
  return requests;
}

/**
 * Creates the storage and plugins folders in `dir` and writes its `config.yaml` for `options`
 * (also the cache benchmark's Verdaccio: bench/lib/verdaccio.ts).
 */
export function writeVerdaccioConfig(dir: string, options: Omit<VerdaccioOptions, "dir">): VerdaccioFiles {
  const files: VerdaccioFiles = {
    storage: join(dir, "storage"),
    plugins: join(dir, "plugins"),
    htpasswd: join(dir, "htpasswd"),
    log: join(dir, "verdaccio.log"),
    configFile: join(dir, "config.yaml"),
  };
  for (const folder of [files.storage, files.plugins]) mkdirSync(folder, { recursive: true });
  writeFileSync(files.configFile, config(options, files));
  return files;
}

/** Starts Verdaccio on a free port (another try if the port was taken meanwhile); resolves once `/-/ping` answers. */
export async function startVerdaccio(options: VerdaccioOptions): Promise<Verdaccio> {
  const { dir } = options;
  const { storage, configFile, log: logFile } = writeVerdaccioConfig(dir, options);
  const watchdog = join(dir, "watchdog.cjs");
  writeFileSync(watchdog, WATCHDOG);
  const bin = installedPackageFile("verdaccio", "bin/verdaccio");
  const env: NodeJS.ProcessEnv = {
    PATH: process.env["PATH"] ?? "/usr/bin:/bin",
    HOME: dir,
    NODE_ENV: "production",
    VERDACCIO_TEST_PARENT_PID: String(process.pid),
  };
  let lastError = "";
  for (let attempt = 1; attempt <= 3; attempt++) {
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const stdout = join(dir, "stdout.log");
    const stderr = join(dir, "stderr.log");
    const daemon = spawnDaemon(process.execPath, ["--require", watchdog, bin, "--config", configFile, "--listen", `127.0.0.1:${port}`], { cwd: dir, stdout, stderr, env });
    if (await ready(url, daemon)) {
      const requests = (path?: string): VerdaccioRequest[] => parseRequests(logFile).filter((entry) => path === undefined || entry.url === path || entry.url.split("?")[0] === path);
      return {
        url,
        registry: `${url}/`,
        port,
        dir,
        storage,
        configFile,
        logFile,
        requests,
        logged: async (path, count, timeoutMs = 5000) => {
          const deadline = Date.now() + timeoutMs;
          while (requests(path).length < count && Date.now() < deadline) await sleep(20);
          return requests(path);
        },
        stop: () => daemon.stop(),
      };
    }
    await daemon.stop();
    lastError = `${readOr(stdout)}${readOr(stderr)}${readOr(logFile)}`;
    if (!/EADDRINUSE/.test(lastError)) break;
  }
  throw new Error(`verdaccio did not start:\n${lastError}`);
}

async function ready(url: string, daemon: Daemon): Promise<boolean> {
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    if (daemon.exited()) return false;
    try {
      const response = await fetch(`${url}/-/ping`, { signal: AbortSignal.timeout(1000) });
      await response.arrayBuffer();
      if (response.ok) return true;
    } catch {
      // not listening yet
    }
    await sleep(50);
  }
  return false;
}
