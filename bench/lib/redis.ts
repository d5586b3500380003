/**
 * Debian's `redis-server` for benchmarks that run vault replicas: a free 127.0.0.1 port, its
 * directory in the run's temp dir, persistence off (`--save "" --appendonly no`), pinned like the
 * other servers, ready once it answers PING, always stopped.
 */
import { mkdirSync } from "node:fs";
import { connect } from "node:net";
import { join } from "node:path";
import { freePort } from "./environment.js";
import { startServer, tail, type ServerProcess } from "./processes.js";

export interface RedisServer {
  /** `redis://127.0.0.1:PORT` */
  readonly url: string;
  readonly pid: number;
  /** How many keys it holds now (DBSIZE); undefined when it does not answer. */
  keyCount(): Promise<number | undefined>;
  stop(): Promise<void>;
}

/** One inline command over a fresh connection; its one-line answer (`+PONG`, `:12`), or undefined. */
function command(port: number, line: string): Promise<string | undefined> {
  return new Promise((resolve) => {
    const socket = connect({ host: "127.0.0.1", port });
    let answer = "";
    const done = (result: string | undefined): void => {
      socket.destroy();
      resolve(result);
    };
    socket.setTimeout(1000, () => done(undefined));
    socket.once("error", () => done(undefined));
    socket.once("connect", () => socket.write(`${line}\r\n`));
    socket.on("data", (chunk: Buffer) => {
      answer += chunk.toString("latin1");
      const end = answer.indexOf("\r\n");
      if (end >= 0) done(answer.slice(0, end));
    });
  });
}

export async function startRedis(options: { readonly dir: string; readonly cpu: number | undefined }): Promise<RedisServer> {
  const { dir } = options;
  mkdirSync(dir, { recursive: true });
  const logFile = join(dir, "redis.log");
  let lastError = "";
  // A port free a moment ago can be taken before redis binds it: try another.
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    const server: ServerProcess = startServer({
      name: "redis",
      command: "redis-server",
      args: ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir, "--daemonize", "no", "--loglevel", "warning"],
      logFile,
      cpu: options.cpu,
      cwd: dir,
    });
    const deadline = Date.now() + 15_000;
    while (Date.now() < deadline && !server.exited()) {
      if ((await command(port, "PING")) === "+PONG") {
        return {
          url: `redis://127.0.0.1:${port}`,
          pid: server.pid,
          keyCount: async () => {
            const answer = await command(port, "DBSIZE");
            return answer?.startsWith(":") === true ? Number(answer.slice(1)) : undefined;
          },
          stop: () => server.stop(),
        };
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    await server.stop();
    lastError = tail(logFile);
  }
  throw new Error(`redis-server did not answer PING:\n${lastError}`);
}
