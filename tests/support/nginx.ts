/**
 * Debian's nginx as a real upstream for end-to-end tests, run from a temp dir: `daemon off`,
 * one worker, every path (pid, logs, temp dirs) inside `dir`, a free 127.0.0.1 port, and stopped
 * with its whole process group (also if the test process dies first). Its access log (one JSON
 * object per request) is what reached the upstream.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { userInfo } from "node:os";
import { join } from "node:path";
import { freePort, readOr, spawnDaemon, type Daemon } from "./process.js";

export interface LoggedRequest {
  readonly method: string;
  readonly uri: string;
  readonly status: number;
  readonly ifNoneMatch: string;
  readonly userAgent: string;
  readonly accept: string;
}

export interface Nginx {
  readonly url: string;
  readonly root: string;
  /** Requests logged so far (all of them, or those for `uri`), in order. */
  requests(uri?: string): LoggedRequest[];
  /** Waits until at least `count` requests for `uri` are logged (nginx logs when it is done). */
  logged(uri: string, count: number): Promise<LoggedRequest[]>;
  stop(): Promise<void>;
}

export interface NginxOptions {
  /** A directory of its own (created), for config, logs and temp dirs. */
  readonly dir: string;
  /** Document root. */
  readonly root: string;
  /** Directives inside `server { }` after `listen` and `root` (locations, ...). */
  readonly serverExtra?: string;
  /** Directives inside `http { }` (maps, types, ...). */
  readonly httpExtra?: string;
}

function config(options: NginxOptions, port: number): string {
  const { dir, root } = options;
  // As root, nginx would hand its worker to "nobody", who cannot read our temp dir.
  const user = process.getuid?.() === 0 ? `user ${userInfo().username};\n` : "";
  const temp = (name: string): string => join(dir, "tmp", name);
  return `${user}daemon off;
master_process on;
worker_processes 1;
pid ${join(dir, "nginx.pid")};
error_log ${join(dir, "error.log")} warn;
events { worker_connections 256; }
http {
  client_body_temp_path ${temp("body")};
  proxy_temp_path ${temp("proxy")};
  fastcgi_temp_path ${temp("fastcgi")};
  uwsgi_temp_path ${temp("uwsgi")};
  scgi_temp_path ${temp("scgi")};
  default_type application/octet-stream;
  sendfile on;
  etag on;
  log_format requests escape=json '{"method":"$request_method","uri":"$uri","status":$status,"ifNoneMatch":"$http_if_none_match","userAgent":"$http_user_agent","accept":"$http_accept"}';
  access_log ${join(dir, "access.log")} requests;
${options.httpExtra ?? ""}
  server {
    listen 127.0.0.1:${port};
    root ${root};
${options.serverExtra ?? ""}
  }
}
`;
}

/** Starts nginx in the foreground on a free port (another try if the port was taken meanwhile). */
export async function startNginx(options: NginxOptions): Promise<Nginx> {
  const { dir } = options;
  for (const name of ["body", "proxy", "fastcgi", "uwsgi", "scgi"]) mkdirSync(join(dir, "tmp", name), { recursive: true });
  const accessLog = join(dir, "access.log");
  const errorLog = join(dir, "error.log");
  let lastError = "";
  for (let attempt = 1; attempt <= 3; attempt++) {
    const port = await freePort();
    const conf = join(dir, "nginx.conf");
    writeFileSync(conf, config(options, port));
    const daemon = spawnDaemon("nginx", ["-p", dir, "-c", conf, "-e", errorLog], { cwd: dir, stdout: join(dir, "stdout.log"), stderr: join(dir, "stderr.log") });
    const url = `http://127.0.0.1:${port}`;
    if (await ready(url, daemon)) {
      const requests = (uri?: string): LoggedRequest[] =>
        readOr(accessLog)
          .split("\n")
          .filter((line) => line.trim() !== "")
          .map((line) => JSON.parse(line) as LoggedRequest)
          .filter((entry) => uri === undefined || entry.uri === uri);
      return {
        url,
        root: options.root,
        requests,
        logged: async (uri, count) => {
          const deadline = Date.now() + 5000;
          while (requests(uri).length < count && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
          return requests(uri);
        },
        stop: () => daemon.stop(),
      };
    }
    await daemon.stop();
    lastError = `${readOr(join(dir, "stderr.log"))}${readOr(errorLog)}`;
    if (!/Address already in use/.test(lastError)) break;
  }
  throw new Error(`nginx did not start:\n${lastError}`);
}

async function ready(url: string, daemon: Daemon): Promise<boolean> {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    if (daemon.exited()) return false;
    try {
      const response = await fetch(`${url}/`, { signal: AbortSignal.timeout(1000) });
      await response.arrayBuffer();
      return true;
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
  return false;
}
