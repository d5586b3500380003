/**
 * Debian's `docker-registry` (CNCF distribution 2.8) started from a temp dir on a free
 * 127.0.0.1 port: filesystem storage in the temp dir, deletes enabled, the access log (stdout,
 * Apache combined format) and the registry's own JSON log (stderr) in files there.
 *
 * Modes: anonymous; `htpasswd` (Basic, bcrypt hashes made with bcryptjs); `token` (Bearer, with
 * the token server of token-server.ts as realm and its certificate as `rootcertbundle`); and
 * `proxy` (distribution's pull-through cache of `remoteurl`, read-only for clients).
 *
 * The access log is written when a request is done, a moment after the client saw the answer:
 * count requests after `settle()` (or use `settledRequests`), not right after a client returns.
 */
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import bcrypt from "bcryptjs";
import { stringify } from "yaml";
import { freePort, readOr, sleep, spawnDaemon, waitFor, type Daemon } from "../process.js";
import { skopeoCopy, type SkopeoResult } from "./skopeo.js";
import type { Credentials, TokenServer } from "./token-server.js";

export type RegistryAuth =
  | { readonly type: "none" }
  /** Basic auth against these users (name → password). */
  | { readonly type: "htpasswd"; readonly users: Readonly<Record<string, string>>; readonly realm?: string }
  /** Bearer tokens from this token server. */
  | { readonly type: "token"; readonly server: TokenServer };

export interface ProxyOptions {
  /** The upstream registry, e.g. `http://127.0.0.1:PORT`. */
  readonly remoteUrl: string;
  /** Credentials for the upstream (Basic, or for its token server). */
  readonly username?: string;
  readonly password?: string;
}

export interface RegistryOptions {
  /** Default anonymous. */
  readonly auth?: RegistryAuth;
  /** Run as distribution's pull-through cache of another registry. */
  readonly proxy?: ProxyOptions;
  /** The registry's own log level. Default `info`. */
  readonly logLevel?: "error" | "warn" | "info" | "debug";
  /**
   * Top-level config sections added as they are, e.g. a storage middleware that redirects blob
   * GETs elsewhere: `{ middleware: { storage: [{ name: "redirect", options: { baseurl } }] } }`.
   */
  readonly extraConfig?: Readonly<Record<string, unknown>>;
}

export interface AccessLogEntry {
  readonly method: string;
  /** The request target as sent: path and query. */
  readonly uri: string;
  /** `uri` without its query. */
  readonly path: string;
  readonly status: number;
  /** Response bytes (0 for `-`). */
  readonly bytes: number;
  readonly userAgent: string;
}

export interface RequestFilter {
  readonly method?: string;
  /** Exact path (no query), or a pattern tested against the path. */
  readonly path?: string | RegExp;
  readonly status?: number;
}

export interface Registry {
  /** `http://127.0.0.1:PORT` */
  readonly url: string;
  /** `127.0.0.1:PORT`, for `docker://HOST/REPO:TAG` references. */
  readonly host: string;
  /** The temp dir with config.yml, data/, access.log and registry.log. */
  readonly dir: string;
  readonly configFile: string;
  /** Credentials a client needs (htpasswd: the first user; token: the token server's), if any. */
  readonly credentials: Credentials | undefined;
  /** `docker://HOST/REPO[:TAG|@DIGEST]` */
  reference(repositoryAndTag: string): string;
  /** Access log entries so far (maybe missing the last moment's; see `settle`). */
  requests(filter?: RequestFilter): AccessLogEntry[];
  count(filter: RequestFilter): number;
  /** Waits until every request answered before this call is in the access log. */
  settle(): Promise<void>;
  settledRequests(filter?: RequestFilter): Promise<AccessLogEntry[]>;
  /** Waits (up to `timeoutMs`, default 5 s) until at least `count` entries match; returns them, fewer on a timeout. */
  waitForRequests(filter: RequestFilter, count: number, timeoutMs?: number): Promise<AccessLogEntry[]>;
  /** The registry's own log (JSON lines). */
  log(): string;
  /** Whether the registry has the blob in its storage (a proxy stores what it fetched in the background). */
  hasBlob(digest: string): boolean;
  /**
   * `skopeo copy --all --preserve-digests SOURCE docker://HOST/REPO:TAG`, with this registry's
   * credentials unless `credentials` is given (`null`: anonymous).
   */
  push(source: string, repositoryAndTag: string, options?: { readonly credentials?: Credentials | null }): Promise<SkopeoResult>;
  /** Stops the registry and removes its temp dir. */
  stop(): Promise<void>;
}

/** `127.0.0.1 - - [21/Nov/2026:08:35:45 +0000] "GET /v2/ HTTP/1.1" 200 2 "" "curl/7.88.1"` */
const ACCESS_LINE = /^\S+ \S+ \S+ \[[^\]]*\] "(\S+) (\S+) [^"]*" (\d{3}) (\d+|-) "[^"]*" "([^"]*)"/;

/** `settle()` marks the log with requests for this path; `requests()` leaves them out. */
const SETTLE_PATH = "/v2/";
const SETTLE_QUERY = "artifact-vault-settle=";

export function parseAccessLog(text: string): AccessLogEntry[] {
  const entries: AccessLogEntry[] = [];
  for (const line of text.split("\n")) {
    const match = ACCESS_LINE.exec(line);
    if (match === null) continue;
    const [, method = "", uri = "", status = "0", bytes = "-", userAgent = ""] = match;
    const query = uri.indexOf("?");
    entries.push({ method, uri, path: query < 0 ? uri : uri.slice(0, query), status: Number(status), bytes: bytes === "-" ? 0 : Number(bytes), userAgent });
  }
  return entries;
}

function matches(entry: AccessLogEntry, filter: RequestFilter | undefined): boolean {
  if (filter === undefined) return true;
  if (filter.method !== undefined && entry.method !== filter.method) return false;
  if (filter.status !== undefined && entry.status !== filter.status) return false;
  if (typeof filter.path === "string" && entry.path !== filter.path) return false;
  if (filter.path instanceof RegExp && !filter.path.test(entry.path)) return false;
  return true;
}

function registryConfig(dir: string, port: number, options: RegistryOptions): Record<string, unknown> {
  const config: Record<string, unknown> = {
    version: "0.1",
    log: { level: options.logLevel ?? "info", formatter: "json", accesslog: { disabled: false } },
    storage: {
      filesystem: { rootdirectory: join(dir, "data") },
      delete: { enabled: true },
      maintenance: { uploadpurging: { enabled: false } },
    },
    http: { addr: `127.0.0.1:${port}`, secret: randomBytes(16).toString("hex"), headers: { "X-Content-Type-Options": ["nosniff"] } },
    health: { storagedriver: { enabled: false } },
  };
  const auth = options.auth ?? { type: "none" };
  if (auth.type === "htpasswd") {
    const file = join(dir, "htpasswd");
    // bcrypt is the only hash distribution's htpasswd accepts; cost 4 keeps every request cheap.
    writeFileSync(file, Object.entries(auth.users).map(([user, password]) => `${user}:${bcrypt.hashSync(password, 4)}\n`).join(""), { mode: 0o600 });
    config["auth"] = { htpasswd: { realm: auth.realm ?? "artifact-vault-test-registry", path: file } };
  } else if (auth.type === "token") {
    config["auth"] = { token: { realm: auth.server.realm, service: auth.server.service, issuer: auth.server.issuer, rootcertbundle: auth.server.certificateFile } };
  }
  if (options.proxy !== undefined) {
    config["proxy"] = {
      remoteurl: options.proxy.remoteUrl,
      ...(options.proxy.username !== undefined ? { username: options.proxy.username } : {}),
      ...(options.proxy.password !== undefined ? { password: options.proxy.password } : {}),
    };
  }
  return { ...config, ...options.extraConfig };
}

function defaultCredentials(auth: RegistryAuth | undefined): Credentials | undefined {
  if (auth?.type === "htpasswd") {
    const [first] = Object.entries(auth.users);
    return first === undefined ? undefined : { username: first[0], password: first[1] };
  }
  if (auth?.type === "token") return auth.server.credentials;
  return undefined;
}

/** Starts `docker-registry serve` and waits until `GET /v2/` answers (200, or 401 with auth). */
export async function startRegistry(options: RegistryOptions = {}): Promise<Registry> {
  const dir = await mkdtemp(join(tmpdir(), "vault-oci-registry-"));
  mkdirSync(join(dir, "data"));
  const configFile = join(dir, "config.yml");
  const accessLog = join(dir, "access.log");
  const registryLog = join(dir, "registry.log");
  let lastLog = "";
  try {
    for (let attempt = 1; attempt <= 3; attempt++) {
      const port = await freePort();
      writeFileSync(configFile, stringify(registryConfig(dir, port, options)));
      const daemon = spawnDaemon("docker-registry", ["serve", configFile], { cwd: dir, stdout: accessLog, stderr: registryLog });
      const url = `http://127.0.0.1:${port}`;
      if (await answers(url, daemon)) return handle(dir, configFile, url, port, daemon, options);
      await daemon.stop();
      lastLog = readOr(registryLog);
      if (!/address already in use/.test(lastLog)) break;
    }
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
  await rm(dir, { recursive: true, force: true });
  throw new Error(`docker-registry did not start:\n${lastLog}`);
}

async function answers(url: string, daemon: Daemon): Promise<boolean> {
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    if (daemon.exited()) return false;
    try {
      const response = await fetch(`${url}/v2/`, { signal: AbortSignal.timeout(1000) });
      await response.arrayBuffer();
      if (response.status === 200 || response.status === 401) return true;
    } catch {
      // not listening yet
    }
    await sleep(50);
  }
  return false;
}

function handle(dir: string, configFile: string, url: string, port: number, daemon: Daemon, options: RegistryOptions): Registry {
  const accessLog = join(dir, "access.log");
  const host = `127.0.0.1:${port}`;
  const credentials = defaultCredentials(options.auth);
  let settles = 0;
  const all = (): AccessLogEntry[] => parseAccessLog(readOr(accessLog));
  const requests = (filter?: RequestFilter): AccessLogEntry[] => all().filter((entry) => !entry.uri.includes(SETTLE_QUERY) && matches(entry, filter));
  const settle = async (): Promise<void> => {
    const marker = `${SETTLE_PATH}?${SETTLE_QUERY}${++settles}`;
    const response = await fetch(`${url}${marker}`, { signal: AbortSignal.timeout(5000) });
    await response.arrayBuffer();
    await waitFor(`${marker} in the access log`, () => (all().some((entry) => entry.uri === marker) ? true : undefined), 5000);
  };
  let stopped = false;
  return {
    url,
    host,
    dir,
    configFile,
    credentials,
    reference: (repositoryAndTag) => `docker://${host}/${repositoryAndTag}`,
    requests,
    count: (filter) => requests(filter).length,
    settle,
    settledRequests: async (filter) => {
      await settle();
      return requests(filter);
    },
    waitForRequests: async (filter, count, timeoutMs = 5000) => {
      try {
        return await waitFor(`${count} × ${JSON.stringify({ ...filter, path: String(filter.path) })}`, () => {
          const found = requests(filter);
          return found.length >= count ? found : undefined;
        }, timeoutMs);
      } catch {
        return requests(filter);
      }
    },
    log: () => readOr(join(dir, "registry.log")),
    hasBlob: (digest) => {
      const hex = digest.replace(/^sha256:/, "");
      return existsSync(join(dir, "data", "docker", "registry", "v2", "blobs", "sha256", hex.slice(0, 2), hex, "data"));
    },
    push: async (source, repositoryAndTag, pushOptions = {}) => {
      const destinationCredentials = pushOptions.credentials === null ? undefined : (pushOptions.credentials ?? credentials);
      return skopeoCopy(source, `docker://${host}/${repositoryAndTag}`, destinationCredentials === undefined ? {} : { destinationCredentials });
    },
    stop: async () => {
      if (stopped) return;
      stopped = true;
      await daemon.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
