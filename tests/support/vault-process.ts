import { spawn, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import { once } from "node:events";

/** The built CLI, as users run it. */
export const CLI_PATH = fileURLToPath(new URL("../../src/cli/main.js", import.meta.url));

export interface VaultProcess {
  readonly child: ChildProcess;
  readonly url: string;
  /** Everything the process wrote to stdout and stderr so far. */
  output(): string;
  /** Resolves with the exit code (or signal) once the process is gone. */
  exited(): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  kill(signal?: NodeJS.Signals): void;
}

/** Starts `artifact-vault serve --config FILE` and waits for its "listening" log line. */
export async function spawnVault(configFile: string, env: NodeJS.ProcessEnv = {}): Promise<VaultProcess> {
  const child = spawn(process.execPath, [CLI_PATH, "serve", "--config", configFile], {
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  const exit = once(child, "exit").then(([code, signal]) => ({ code: code as number | null, signal: signal as NodeJS.Signals | null }));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => {
      // A vault that did not start in time must not outlive the test.
      child.kill("SIGKILL");
      reject(new Error(`vault did not start in time:\n${output}`));
    }, 20_000);
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      const match = /"url":"(http:\/\/[^"]+)"/.exec(output);
      if (match?.[1] !== undefined) {
        clearTimeout(timer);
        resolve(match[1]);
      }
    };
    child.stdout.on("data", onData);
    child.stderr.on("data", onData);
    void exit.then(({ code }) => {
      clearTimeout(timer);
      reject(new Error(`vault exited with ${code} before listening:\n${output}`));
    });
  });
  return {
    child,
    url,
    output: () => output,
    exited: () => exit,
    kill: (signal = "SIGTERM") => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    },
  };
}

/** Environment variables that override a config file: left out of the tests' `serve`, unless given. */
const OVERRIDES = ["HOST", "PORT", "LOG_LEVEL", "LOG_FORMAT", "STORAGE_CONFIG", "STORAGE_NAME", "AUTH_TOKENS_FILE"];

export interface ServeProcess {
  readonly url: string;
  /** Everything it wrote to stdout and stderr so far. */
  output(): string;
  /** Its JSON log lines so far. */
  logLines(): Array<Record<string, unknown>>;
  /** SIGTERM (a drain), and resolves with the exit code once it is gone. */
  stop(): Promise<number | null>;
}

/**
 * `artifact-vault serve ARGS` in `cwd`, with stdout a pipe, the caller's environment without the
 * variables that override a config (`env` adds its own); resolves once it says where it
 * listens. A process that does not start in time is killed.
 */
export async function startServe(args: readonly string[], options: { cwd: string; env?: NodeJS.ProcessEnv; timeoutMs?: number }): Promise<ServeProcess> {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const name of OVERRIDES) delete env[name];
  const child = spawn(process.execPath, [CLI_PATH, "serve", ...args], { cwd: options.cwd, env: { ...env, ...options.env }, stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));
  const exited = once(child, "exit").then(([code]) => code as number | null);
  const stop = async (): Promise<number | null> => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
    return exited;
  };
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`serve did not start in time:\n${output}`));
    }, options.timeoutMs ?? 30_000);
    const look = (): void => {
      // JSON lines (`"url":"…"`) or human-readable ones (`artifact-vault listening {"url":"…"`).
      const match = /"msg":"artifact-vault listening"|artifact-vault listening/.test(output) ? /"url":"(http:\/\/[^"]+)"/.exec(output) : null;
      if (match?.[1] !== undefined) {
        clearTimeout(timer);
        resolve(match[1]);
      }
    };
    child.stdout.on("data", look);
    child.stderr.on("data", look);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`serve exited with ${code} before listening:\n${output}`));
    });
  });
  return {
    url,
    output: () => output,
    logLines: () =>
      output
        .split("\n")
        .filter((line) => line.startsWith("{"))
        .map((line) => JSON.parse(line) as Record<string, unknown>),
    stop,
  };
}
