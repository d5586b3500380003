/**
 * Child processes for benchmarks: servers (started, waited for, always stopped) and one-shot
 * tools (wrk, curl) whose output is collected. Servers log to a file in the run's temp dir; the
 * tail of that log is shown when a server fails to start or dies early.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { closeSync, openSync, readFileSync } from "node:fs";
import { onCleanup } from "./lifecycle.js";

export interface ServerProcess {
  readonly name: string;
  readonly pid: number;
  readonly logFile: string;
  /** True once the process has exited (expectedly or not). */
  exited(): boolean;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves when the process is gone. */
  stop(graceMs?: number): Promise<void>;
}

export interface StartOptions {
  readonly name: string;
  readonly command: string;
  readonly args: readonly string[];
  readonly logFile: string;
  readonly cwd?: string;
  readonly env?: NodeJS.ProcessEnv;
  /** Run under `taskset -c <cpu>` (taskset execs, so the pid is the server's own). */
  readonly cpu?: number | undefined;
}

export function startServer(options: StartOptions): ServerProcess {
  const log = openSync(options.logFile, "a");
  const [command, args] = pinned(options.cpu, options.command, options.args);
  const child = spawn(command, args, {
    cwd: options.cwd,
    env: options.env ?? process.env,
    stdio: ["ignore", log, log],
  });
  closeSync(log);
  if (child.pid === undefined) throw new Error(`${options.name}: could not start ${command}`);
  const pid = child.pid;
  let hasExited = false;
  const exitedPromise = new Promise<void>((resolve) => {
    child.once("exit", () => {
      hasExited = true;
      resolve();
    });
    child.once("error", (error) => {
      console.error(`${options.name}: ${error.message}`);
      hasExited = true;
      resolve();
    });
  });

  const stop = async (graceMs = 5000): Promise<void> => {
    if (hasExited) return;
    child.kill("SIGTERM");
    const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
    await exitedPromise;
    clearTimeout(timer);
  };
  const release = onCleanup(`stop ${options.name}`, () => stop(), () => killSync(child));
  return {
    name: options.name,
    pid,
    logFile: options.logFile,
    exited: () => hasExited,
    stop: release,
  };
}

function killSync(child: ChildProcess): void {
  if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
}

export function pinned(
  cpu: number | undefined,
  command: string,
  args: readonly string[],
): [string, string[]] {
  return cpu === undefined ? [command, [...args]] : ["taskset", ["-c", String(cpu), command, ...args]];
}

/** The last `lines` lines of a log file, for error messages. */
export function tail(file: string, lines = 20): string {
  try {
    return readFileSync(file, "utf8").trimEnd().split("\n").slice(-lines).join("\n");
  } catch {
    return "(no log)";
  }
}

export interface RunResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Runs a one-shot command to completion and collects its output. The child is registered for
 * cleanup, so an interrupt during a long wrk run does not leave wrk hammering a dead port.
 */
export async function run(
  command: string,
  args: readonly string[],
  options: { readonly cpu?: number | undefined; readonly env?: NodeJS.ProcessEnv } = {},
): Promise<RunResult> {
  const [cmd, cmdArgs] = pinned(options.cpu, command, args);
  const child = spawn(cmd, cmdArgs, {
    env: options.env ?? process.env,
    stdio: ["ignore", "pipe", "pipe"],
  });
  const release = onCleanup(`${command}`, () => killSync(child), () => killSync(child));
  let stdout = "";
  let stderr = "";
  child.stdout.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once("error", reject);
    child.once("close", (exitCode) => resolve(exitCode));
  });
  await release();
  return { code, stdout, stderr };
}

/** Like `run`, but throws with the command's stderr unless it exits 0. */
export async function runChecked(
  command: string,
  args: readonly string[],
  options: { readonly cpu?: number | undefined; readonly env?: NodeJS.ProcessEnv } = {},
): Promise<string> {
  const result = await run(command, args, options);
  if (result.code !== 0) {
    throw new Error(
      `${command} ${args.join(" ")} exited ${result.code}:\n${result.stderr.trim() || result.stdout.trim()}`,
    );
  }
  return result.stdout;
}

/** Synchronous `command -v`, also looking in the sbin dirs where Debian puts daemons. */
export function findExecutable(name: string): string | undefined {
  const path = `${process.env["PATH"] ?? ""}:/usr/sbin:/sbin:/usr/bin`;
  const result = spawnSync("sh", ["-c", `command -v ${name}`], {
    env: { ...process.env, PATH: path },
    encoding: "utf8",
  });
  const found = result.stdout?.trim() ?? "";
  return result.status === 0 && found !== "" ? found : undefined;
}
