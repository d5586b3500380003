/**
 * A Hugging Face hub for benchmarks: the tests' fake hub and CDN (`tests/support/huggingface/
 * fake-hub.ts`) in a child process of its own (`fake-hub-main.ts`), pinned like the other
 * upstreams, always stopped. It holds the file it serves in memory: one `Buffer` of the size asked.
 */
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { startServer, tail } from "./processes.js";
import type { FakeHubReady, FakeHubStats, PublishedFile } from "./fake-hub-main.js";

export type { FakeHubStats, PublishedFile } from "./fake-hub-main.js";

const MAIN = fileURLToPath(new URL("fake-hub-main.js", import.meta.url));

export interface FakeHubServer extends FakeHubReady {
  readonly name: string;
  readonly pid: number;
  readonly logFile: string;
  /** A new LFS file of `bytes` (new content: a cold miss anywhere); usable until the next `publish`. */
  publish(): Promise<PublishedFile>;
  /** The hub's `resolve` URL path of a published file at `main`. */
  resolvePath(file: PublishedFile): string;
  /** Requests the hub and the CDN answered so far (cumulative), by method. */
  stats(): Promise<FakeHubStats>;
  stop(): Promise<void>;
}

export async function startFakeHub(options: { readonly dir: string; readonly cpu: number | undefined; readonly bytes: number; readonly name?: string }): Promise<FakeHubServer> {
  const { dir } = options;
  mkdirSync(dir, { recursive: true });
  const readyFile = join(dir, "ready.json");
  const logFile = join(dir, "fake-hub.log");
  const name = options.name ?? "fake hub";
  const server = startServer({
    name,
    command: process.execPath,
    // The buffer is one allocation outside the V8 heap; nothing else of size lives in the process.
    args: [MAIN, readyFile, String(options.bytes)],
    logFile,
    cpu: options.cpu,
    cwd: dir,
  });
  const deadline = Date.now() + 120_000;
  while (!existsSync(readyFile)) {
    if (server.exited()) throw new Error(`${name} exited at start:\n${tail(logFile)}`);
    if (Date.now() > deadline) {
      await server.stop();
      throw new Error(`${name} not ready after 120 s:\n${tail(logFile)}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  const ready = JSON.parse(readFileSync(readyFile, "utf8")) as FakeHubReady;
  const call = async <T>(method: string, path: string): Promise<T> => {
    const response = await fetch(`${ready.controlUrl}${path}`, { method, signal: AbortSignal.timeout(120_000) });
    if (!response.ok) throw new Error(`${name}: ${method} ${path} answered ${response.status}: ${await response.text()}`);
    return (await response.json()) as T;
  };
  return {
    ...ready,
    name,
    pid: server.pid,
    logFile,
    publish: () => call<PublishedFile>("POST", "/publish"),
    resolvePath: (file) => `/${ready.repo}/resolve/main/${file.file}`,
    stats: () => call<FakeHubStats>("GET", "/stats"),
    stop: () => server.stop(),
  };
}
