/**
 * A throw-away Redis for the tests: Debian's `redis-server` (CI installs it with apt-get) on
 * 127.0.0.1 and a free port, in a temp dir, with persistence off (`--save "" --appendonly no`).
 * It is ready once it answers PING (asked through ioredis). `stop()` and `kill()` take it away
 * mid-test (a replica must notice and carry on); `restart()` brings it back on the same port,
 * empty.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { Redis } from "ioredis";
import { freePort, readOr, spawnDaemon, waitFor, type Daemon } from "./process.js";
import { findTool } from "./tools.js";

export interface RedisServer {
  /** `redis://127.0.0.1:PORT` — the same across `restart()`. */
  readonly url: string;
  readonly port: number;
  /** Whether the server process is running. */
  running(): boolean;
  /** What the server logged since it was (last) started. */
  log(): string;
  /** SIGTERM, and resolves once the process is gone (SIGKILL after 5 s). Idempotent. Removes the temp dir. */
  stop(): Promise<void>;
  /** SIGKILL (a crash, or a machine gone), and resolves once the process is gone. Idempotent. Removes the temp dir. */
  kill(): Promise<void>;
  /** Stops it if it runs, then starts a fresh, empty server on the same port and waits for PING. */
  restart(): Promise<void>;
}

/** Attempts at a port that turns out to be taken (another process got it between `freePort` and the bind). */
const BIND_ATTEMPTS = 5;
const START_TIMEOUT_MS = 15_000;

interface Instance {
  readonly daemon: Daemon;
  readonly dir: string;
  readonly logFile: string;
}

/** Starts redis-server on a free loopback port and waits until it answers PING. */
export async function startRedis(): Promise<RedisServer> {
  const command = findTool("redis-server");
  if (command === undefined) throw new Error("redis-server is not installed (Debian: apt-get install redis-server)");
  let lastError: unknown;
  for (let attempt = 0; attempt < BIND_ATTEMPTS; attempt++) {
    const port = await freePort();
    let instance: Instance;
    try {
      instance = await launch(command, port);
    } catch (error) {
      lastError = error;
      if (error instanceof PortTakenError) continue;
      throw error;
    }
    return handle(command, port, instance);
  }
  throw new Error(`redis-server found no free port in ${BIND_ATTEMPTS} attempts`, { cause: lastError });
}

function handle(command: string, port: number, first: Instance): RedisServer {
  let current: Instance | undefined = first;
  let lastLog = "";
  const finish = async (how: "stop" | "kill"): Promise<void> => {
    const instance = current;
    if (instance === undefined) return;
    current = undefined;
    if (how === "kill") {
      try {
        if (instance.daemon.child.pid !== undefined) process.kill(-instance.daemon.child.pid, "SIGKILL");
      } catch {
        // already gone
      }
    }
    // After a SIGKILL this only waits for the exit (the process is gone already).
    await instance.daemon.stop();
    lastLog = readOr(instance.logFile);
    await rm(instance.dir, { recursive: true, force: true });
  };
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    running: () => current !== undefined && !current.daemon.exited(),
    log: () => (current === undefined ? lastLog : readOr(current.logFile)),
    stop: () => finish("stop"),
    kill: () => finish("kill"),
    restart: async () => {
      await finish("stop");
      // The port was ours a moment ago; a stray process may still grab it: try a few times.
      for (let attempt = 1; ; attempt++) {
        try {
          current = await launch(command, port);
          return;
        } catch (error) {
          if (!(error instanceof PortTakenError) || attempt >= BIND_ATTEMPTS) throw error;
          await new Promise((resolve) => setTimeout(resolve, 200));
        }
      }
    },
  };
}

class PortTakenError extends Error {}

/** One redis-server process on `port`, answering PING; its dir is removed if it fails to start. */
async function launch(command: string, port: number): Promise<Instance> {
  const dir = await mkdtemp(path.join(tmpdir(), "redis-test-"));
  const logFile = path.join(dir, "redis.log");
  const args = [
    "--port", String(port),
    "--bind", "127.0.0.1",
    "--save", "",
    "--appendonly", "no",
    "--dir", dir,
    "--daemonize", "no",
    "--logfile", "",
    "--loglevel", "notice",
  ];
  let daemon: Daemon | undefined;
  try {
    daemon = spawnDaemon(command, args, { cwd: dir, stdout: logFile, stderr: logFile });
    const started = daemon;
    await waitFor(
      `redis-server on port ${port} to answer PING`,
      async () => {
        if (started.exited()) {
          const log = readOr(logFile);
          if (/address already in use/i.test(log)) throw new PortTakenError(`port ${port} is taken`);
          throw new Error(`redis-server exited at start (${started.child.exitCode ?? started.child.signalCode ?? "spawn failed"}):\n${log}`);
        }
        return (await answersPing(port)) ? true : undefined;
      },
      START_TIMEOUT_MS,
    );
    return { daemon, dir, logFile };
  } catch (error) {
    await daemon?.stop();
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
}

/** How long one PING attempt may take, connecting included. */
const PING_TIMEOUT_MS = 1000;

/**
 * One connection attempt with no retries and no offline queue: true when the server answers
 * PONG within `PING_TIMEOUT_MS`. Bounded as a whole: whatever else holds the port (a server that
 * accepts and never answers) cannot stall the caller.
 */
async function answersPing(port: number): Promise<boolean> {
  const client = new Redis({
    host: "127.0.0.1",
    port,
    lazyConnect: true,
    connectTimeout: PING_TIMEOUT_MS,
    commandTimeout: PING_TIMEOUT_MS,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    retryStrategy: () => null,
  });
  // A refused connection also emits "error"; unhandled, ioredis would log it.
  client.on("error", () => undefined);
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), PING_TIMEOUT_MS)));
  const pinged = (async () => {
    await client.connect();
    return (await client.ping()) === "PONG";
  })().catch(() => false);
  try {
    return await Promise.race([pinged, timedOut]);
  } finally {
    clearTimeout(timer);
    client.disconnect();
  }
}
