/**
 * Process helpers for the test servers (nginx, docker-registry): a free loopback port, a daemon in its own
 * process group that is stopped (and killed if this process dies first), polling helpers.
 */
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { closeSync, openSync, readFileSync } from "node:fs";
import { createServer } from "node:net";
import { promisify } from "node:util";

const execFileAsync = promisify(execFile);

/** A port that was free on 127.0.0.1 a moment ago (the caller retries if it is taken since). */
export async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const address = server.address();
  const port = typeof address === "object" && address !== null ? address.port : 0;
  server.close();
  await once(server, "close");
  return port;
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `check` until it returns something other than undefined, or throws after `timeoutMs`. */
export async function waitFor<T>(what: string, check: () => T | undefined | Promise<T | undefined>, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(20);
  }
}

export function readOr(file: string, fallback = ""): string {
  try {
    return readFileSync(file, "utf8");
  } catch {
    return fallback;
  }
}

export interface Daemon {
  readonly child: ChildProcess;
  /** True once the process has exited. */
  exited(): boolean;
  /** SIGTERM to the process group, SIGKILL after 5 s; resolves once it is gone. */
  stop(): Promise<void>;
}

/**
 * Starts `command args` in its own process group with stdout and stderr appended to files, so
 * its logs survive it and can be read while it runs. If this process exits first, the group is
 * killed.
 */
export function spawnDaemon(command: string, args: readonly string[], options: { cwd: string; stdout: string; stderr: string; env?: NodeJS.ProcessEnv }): Daemon {
  const out = openSync(options.stdout, "a");
  const err = openSync(options.stderr, "a");
  let child: ChildProcess;
  try {
    child = spawn(command, args, { cwd: options.cwd, env: options.env ?? process.env, detached: true, stdio: ["ignore", out, err] });
  } finally {
    closeSync(out);
    closeSync(err);
  }
  const exit = once(child, "exit").catch(() => undefined);
  // A failed spawn (ENOENT) emits "error"; without a listener it would crash the test runner.
  child.on("error", () => undefined);
  const gone = (): boolean => child.exitCode !== null || child.signalCode !== null || child.pid === undefined;
  const killGroup = (signal: NodeJS.Signals): void => {
    try {
      if (child.pid !== undefined) process.kill(-child.pid, signal);
    } catch {
      // already gone
    }
  };
  const onExit = (): void => killGroup("SIGKILL");
  process.once("exit", onExit);
  return {
    child,
    exited: gone,
    stop: async () => {
      process.removeListener("exit", onExit);
      if (gone()) return;
      killGroup("SIGTERM");
      const timer = setTimeout(() => killGroup("SIGKILL"), 5000);
      await exit;
      clearTimeout(timer);
    },
  };
}

/** What a command-line tool said, and its exit code (1 when it could not run or was killed). */
export interface ToolResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs a tool to its end (killed after `timeoutMs`, default 5 minutes); never throws for a failing tool. */
export async function runTool(command: string, args: readonly string[], options: { cwd: string; env: Record<string, string>; timeoutMs?: number }): Promise<ToolResult> {
  try {
    const { stdout, stderr } = await execFileAsync(command, args, { cwd: options.cwd, env: options.env, maxBuffer: 16 * 1024 * 1024, timeout: options.timeoutMs ?? 300_000 });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failure = error as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof failure.code === "number" ? failure.code : 1, stdout: failure.stdout ?? "", stderr: failure.stderr ?? "" };
  }
}
