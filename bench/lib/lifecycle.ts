/**
 * Process-wide lifecycle for a benchmark run: every child process and every temp directory is
 * registered here and released on the way out — normal end, thrown error, SIGINT/SIGTERM, or an
 * uncaught exception — so a benchmark never leaves servers listening or gigabytes in /tmp.
 */
import { rmSync } from "node:fs";

type Cleanup = {
  readonly name: string;
  /** Graceful, may be async (stop a server, wait for it). */
  readonly run: () => Promise<void> | void;
  /** Last resort from the `exit` event, where only synchronous work happens (SIGKILL, rmSync). */
  readonly runSync: () => void;
};

const cleanups: Cleanup[] = [];
let cleaningUp: Promise<void> | undefined;

/** Registers a resource; returns a function that releases it early (and unregisters it). */
export function onCleanup(
  name: string,
  run: () => Promise<void> | void,
  runSync: () => void,
): () => Promise<void> {
  const entry: Cleanup = { name, run, runSync };
  cleanups.push(entry);
  return async () => {
    const index = cleanups.indexOf(entry);
    if (index < 0) return;
    cleanups.splice(index, 1);
    await entry.run();
  };
}

/** Removes `dir` (recursively) at the end of the run. */
export function removeOnExit(dir: string): () => Promise<void> {
  const remove = (): void => rmSync(dir, { recursive: true, force: true });
  return onCleanup(`remove ${dir}`, remove, remove);
}

/** Releases everything still registered, newest first (servers before the directories they use). */
export async function cleanupAll(): Promise<void> {
  cleaningUp ??= (async () => {
    while (cleanups.length > 0) {
      const entry = cleanups.pop();
      if (entry === undefined) break;
      try {
        await entry.run();
      } catch (error) {
        console.error(`cleanup "${entry.name}" failed:`, error);
        try {
          entry.runSync();
        } catch {
          // nothing more can be done
        }
      }
    }
  })();
  return cleaningUp;
}

function cleanupAllSync(): void {
  while (cleanups.length > 0) {
    const entry = cleanups.pop();
    try {
      entry?.runSync();
    } catch {
      // best effort on the way out
    }
  }
}

/** Thrown (or exited with) when the environment cannot run the benchmark: exit code 2. */
export class UsageError extends Error {}

/**
 * Runs a benchmark's `main` with cleanup guaranteed. Exit codes: 0 done (whatever the targets
 * say: a benchmark reports, it does not gate), 1 runtime failure, 2 missing tools or bad usage,
 * 130/143 interrupted.
 */
export function runBenchmark(main: () => Promise<void>): void {
  const interrupt = (signal: NodeJS.Signals, code: number): void => {
    console.error(`\n${signal}: stopping servers and removing temp files...`);
    void cleanupAll().finally(() => process.exit(code));
  };
  process.once("SIGINT", () => interrupt("SIGINT", 130));
  process.once("SIGTERM", () => interrupt("SIGTERM", 143));
  process.once("SIGHUP", () => interrupt("SIGHUP", 129));
  process.on("exit", cleanupAllSync);
  process.on("uncaughtException", (error) => {
    console.error("uncaught exception:", error);
    void cleanupAll().finally(() => process.exit(1));
  });
  process.on("unhandledRejection", (error) => {
    console.error("unhandled rejection:", error);
    void cleanupAll().finally(() => process.exit(1));
  });

  main().then(
    async () => {
      await cleanupAll();
      process.exit(0);
    },
    async (error: unknown) => {
      await cleanupAll();
      if (error instanceof UsageError) {
        console.error(error.message);
        process.exit(2);
      }
      console.error("benchmark failed:", error);
      process.exit(1);
    },
  );
}
