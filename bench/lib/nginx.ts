/**
 * Debian's nginx as a reference system, run unprivileged-safe from a temp dir: `daemon off`, one
 * worker (so it gets the same single core as the vault), every path (pid, logs, temp dirs) inside
 * the run's directory, listening on a free 127.0.0.1 port.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { userInfo } from "node:os";
import { join } from "node:path";
import { freePort, waitForHttp } from "./environment.js";
import { childPids } from "./proc-stats.js";
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
}

export async function startNginx(options: NginxOptions): Promise<SystemUnderTest> {
  const { dir } = options;
  const port = await freePort();
  for (const sub of ["logs", "tmp/body", "tmp/proxy", "tmp/fastcgi", "tmp/uwsgi", "tmp/scgi"]) {
    mkdirSync(join(dir, sub), { recursive: true });
  }
  // As root, nginx would switch its worker to "nobody", which cannot write into our temp dir;
  // as anyone else the directive is ignored with a warning, so only root gets it.
  const user = process.getuid?.() === 0 ? `user ${userInfo().username};\n` : "";
  const conf = `${user}daemon off;
master_process on;
worker_processes 1;
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
  const workers = childPids(server.pid);
  if (workers.length !== 1) throw new Error(`nginx: expected 1 worker, found ${workers.length}`);
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
