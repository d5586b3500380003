/**
 * Debian's nginx as a reference system, run unprivileged-safe from a temp dir: `daemon off`, one
 * worker (so it gets the same single core as the vault) unless asked for more, every path (pid,
 * logs, temp dirs) inside the run's directory, listening on a free 127.0.0.1 port.
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { userInfo } from "node:os";
import { join } from "node:path";
import { freePort, waitForHttp } from "./environment.js";
import { childPids, commandLine } from "./proc-stats.js";
import { startServer, tail } from "./processes.js";
import type { SystemUnderTest } from "./system-under-test.js";

export interface NginxOptions {
  /** A directory of its own, inside the run's temp dir. */
  readonly dir: string;
  readonly cpu: number | undefined;
  /** Everything inside `server { }` after `listen` (locations, root, ...). */
  readonly serverBody: string;
  /** Extra directives inside `http { }` (e.g. proxy_cache_path for a cache benchmark). */
  readonly httpExtra?: string;
  readonly name?: string;
  /** `worker_processes` (default 1). */
  readonly workers?: number;
}

export async function startNginx(options: NginxOptions): Promise<SystemUnderTest> {
  const { dir } = options;
  const workerCount = options.workers ?? 1;
  const port = await freePort();
  for (const sub of ["logs", "tmp/body", "tmp/proxy", "tmp/fastcgi", "tmp/uwsgi", "tmp/scgi"]) {
    mkdirSync(join(dir, sub), { recursive: true });
  }
  // As root, nginx would switch its worker to "nobody", which cannot write into our temp dir;
  // as anyone else the directive is ignored with a warning, so only root gets it.
  const user = process.getuid?.() === 0 ? `user ${userInfo().username};\n` : "";
  const conf = `${user}daemon off;
master_process on;
worker_processes ${workerCount};
pid ${join(dir, "nginx.pid")};
error_log ${join(dir, "logs/error.log")} warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${join(dir, "tmp/body")};
  proxy_temp_path ${join(dir, "tmp/proxy")};
  fastcgi_temp_path ${join(dir, "tmp/fastcgi")};
  uwsgi_temp_path ${join(dir, "tmp/uwsgi")};
  scgi_temp_path ${join(dir, "tmp/scgi")};
  default_type application/octet-stream;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 1000000;
  keepalive_timeout 75s;
${options.httpExtra ?? ""}
  server {
    listen 127.0.0.1:${port};
${options.serverBody}
  }
}
`;
  const confFile = join(dir, "nginx.conf");
  writeFileSync(confFile, conf);
  const logFile = join(dir, "logs/stderr.log");
  const server = startServer({
    name: options.name ?? "nginx",
    command: "nginx",
    args: ["-p", dir, "-c", confFile, "-e", join(dir, "logs/error.log")],
    logFile,
    cpu: options.cpu,
  });
  const baseUrl = `http://127.0.0.1:${port}`;
  await waitForHttp(`${baseUrl}/`, {
    ready: () => true,
    gaveUp: () =>
      server.exited()
        ? `nginx exited at start:\n${tail(logFile)}\n${tail(join(dir, "logs/error.log"))}`
        : undefined,
  });
  // With a proxy_cache_path the master also runs a cache manager and a cache loader: not workers.
  const workers = childPids(server.pid).filter((pid) => commandLine(pid).startsWith("nginx: worker process"));
  if (workers.length !== workerCount) throw new Error(`nginx: expected ${workerCount} worker(s), found ${workers.length}`);
  return {
    name: options.name ?? "nginx",
    baseUrl,
    headers: {},
    pids: workers,
    logFile: join(dir, "logs/error.log"),
    stop: () => server.stop(),
  };
}

/**
 * nginx serving `/objects/<key>` from `<dir>/root/objects/` with WebDAV PUT and DELETE
 * (http_dav_module), so the same URLs and bodies work against it and against the vault.
 */
export async function startNginxWebdav(dir: string, cpu: number | undefined): Promise<SystemUnderTest> {
  const root = join(dir, "root");
  mkdirSync(join(root, "objects"), { recursive: true });
  return startNginx({
    dir,
    cpu,
    serverBody: `    root ${root};
    client_max_body_size 0;
    location /objects/ {
      dav_methods PUT DELETE;
      create_full_put_path on;
      dav_access user:rw;
    }`,
  });
}

export interface NginxUpstream extends SystemUnderTest {
  /** Static files are served from here: `GET /a/b` is `<root>/a/b`. */
  readonly root: string;
  /** One line per request: `METHOD URI STATUS BYTES "IF-NONE-MATCH"`. */
  readonly accessLog: string;
}

/**
 * nginx serving static files from `<dir>/root` as the upstream of a cache (sendfile, ETags),
 * logging every request so a benchmark can count what reached it. Paths under `/slow/` are sent
 * at `rateBytesPerSecond` per connection (`limit_rate`), to stand in for a remote upstream.
 */
export async function startNginxUpstream(
  dir: string,
  cpu: number | undefined,
  options: {
    readonly rateBytesPerSecond: number;
    readonly name?: string;
    /** More `location` blocks (e.g. packuments for the npm section: `packumentLocation`). */
    readonly locations?: string;
  },
): Promise<NginxUpstream> {
  const root = join(dir, "root");
  const accessLog = join(dir, "logs/access.log");
  mkdirSync(join(root, "slow"), { recursive: true });
  const system = await startNginx({
    dir,
    cpu,
    name: options.name ?? "upstream",
    httpExtra: `  log_format counted '$request_method $uri $status $body_bytes_sent "$http_if_none_match"';`,
    serverBody: `    root ${root};
    access_log ${accessLog} counted;
    etag on;
    location /slow/ {
      limit_rate ${Math.max(1, Math.round(options.rateBytesPerSecond / 1024))}k;
    }
${options.locations ?? ""}`,
  });
  return { ...system, root, accessLog };
}

/**
 * The reference pull-through cache: nginx `proxy_cache` in front of `upstreamUrl`, with the
 * same URLs as the vault's http backend (`/files/<path>` is `<upstream>/<path>`), one fetch per
 * key (`proxy_cache_lock on`: the others wait for it to be cached), 200s kept for an hour, the
 * cache in the run's dir, keep-alive connections to the upstream, and `X-Cache` set from
 * `$upstream_cache_status` (HIT, MISS, ...) like the vault's header. One worker unless
 * `options.workers` says more (they share the cache's keys zone, as any nginx's workers do).
 */
export async function startNginxProxyCache(
  dir: string,
  cpu: number | undefined,
  upstreamUrl: string,
  options: { readonly name?: string; readonly workers?: number } = {},
): Promise<SystemUnderTest> {
  const upstream = new URL(upstreamUrl);
  mkdirSync(join(dir, "cache"), { recursive: true });
  return startNginx({
    dir,
    cpu,
    name: options.name ?? "nginx",
    workers: options.workers,
    httpExtra: `  proxy_cache_path ${join(dir, "cache")} levels=1:2 keys_zone=artifacts:16m max_size=200g inactive=1d use_temp_path=off;
  upstream origin {
    server ${upstream.host};
    keepalive 32;
  }`,
    serverBody: `    location /files/ {
      proxy_pass http://origin/;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_cache artifacts;
      proxy_cache_lock on;
      proxy_cache_lock_timeout 300s;
      proxy_cache_lock_age 300s;
      proxy_cache_valid 200 1h;
      proxy_read_timeout 300s;
      add_header X-Cache $upstream_cache_status always;
    }`,
  });
}

/** How many requests for `uri` the upstream has logged (nginx writes each line when it is done). */
export function countRequests(accessLog: string, uri: string): number {
  let text: string;
  try {
    text = readFileSync(accessLog, "utf8");
  } catch {
    return 0;
  }
  let count = 0;
  for (const line of text.split("\n")) if (line.split(" ")[1] === uri) count++;
  return count;
}
