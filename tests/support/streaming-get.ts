/**
 * A client for herd and drain tests: each GET on a connection of its own (`agent: false`, so a
 * vault with workers hands each to the next worker), streaming and hashing its body, saying how
 * many bytes arrived so far and whether the response arrived whole. It never rejects.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { request as httpRequest, type IncomingHttpHeaders } from "node:http";
import { sha256 } from "./origin-server.js";
import { waitFor } from "./process.js";


export interface Fetched {
  /** Undefined when no response head arrived (the connection failed first). */
  status: number | undefined;
  headers: IncomingHttpHeaders;
  bytes: number;
  sha256: string;
  /** The response ended normally: the whole body as announced. */
  complete: boolean;
  error: Error | undefined;
}

export interface PendingGet {
  /** Resolves once the request has been written to the server's socket (or failed). */
  readonly sent: Promise<void>;
  /** Body bytes received so far. */
  received(): number;
  /** Never rejects: a broken response is `complete: false` with `error`. */
  readonly done: Promise<Fetched>;
}

export function startGet(base: string, path: string, timeoutMs = 60_000): PendingGet {
  const { hostname, port } = new URL(base);
  const hash = createHash("sha256");
  const result: Fetched = { status: undefined, headers: {}, bytes: 0, sha256: "", complete: false, error: undefined };
  let markSent!: () => void;
  const sent = new Promise<void>((resolve) => (markSent = resolve));
  const done = new Promise<Fetched>((resolve) => {
    let settled = false;
    const finish = (error?: Error): void => {
      if (error !== undefined) result.error ??= error;
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      markSent();
      result.sha256 = hash.digest("hex");
      resolve(result);
    };
    // `agent: false`: a new connection per request, so the primary hands each to the next worker.
    const req = httpRequest({ host: hostname, port, path, agent: false }, (res) => {
      result.status = res.statusCode;
      result.headers = res.headers;
      res.on("data", (chunk: Buffer) => {
        result.bytes += chunk.length;
        hash.update(chunk);
      });
      res.on("error", (error) => (result.error ??= error));
      res.on("close", () => {
        result.complete = res.complete;
        finish(res.complete ? undefined : new Error("the response broke off"));
      });
    });
    req.on("finish", () => markSent());
    req.on("error", (error) => finish(error));
    const timer = setTimeout(() => req.destroy(new Error(`GET ${path} timed out after ${timeoutMs} ms`)), timeoutMs);
    req.end();
  });
  return { sent, received: () => result.bytes, done };
}

export async function get(base: string, path: string, timeoutMs?: number): Promise<Fetched> {
  return startGet(base, path, timeoutMs).done;
}

export function describeFetch(fetched: Fetched): string {
  return `status ${fetched.status ?? "none"}, ${fetched.bytes} bytes, complete ${fetched.complete}, x-cache ${String(fetched.headers["x-cache"])}${fetched.error === undefined ? "" : `, error: ${fetched.error.message}`}`;
}

/** A 200 with exactly `body`. */
export function assertWhole(fetched: Fetched, body: Buffer, who: string): void {
  const said = `${who}: ${describeFetch(fetched)}`;
  assert.equal(fetched.status, 200, said);
  assert.ok(fetched.complete, said);
  assert.equal(fetched.bytes, body.length, said);
  assert.equal(fetched.sha256, sha256(body), `${said}: wrong bytes`);
}

/**
 * Polls `read` until `accept` takes its value, or fails after `timeoutMs` showing the last value
 * read (so a failure says what the server answered instead).
 */
export async function waitForValue<T>(what: string, read: () => Promise<T>, accept: (value: T) => boolean, timeoutMs = 20_000): Promise<T> {
  let last: { value: T } | undefined;
  try {
    return await waitFor(
      what,
      async () => {
        const value = await read();
        last = { value };
        return accept(value) ? value : undefined;
      },
      timeoutMs,
    );
  } catch (error) {
    throw new Error(`${(error as Error).message}; last seen: ${last === undefined ? "nothing" : JSON.stringify(last.value)}`, { cause: error });
  }
}
