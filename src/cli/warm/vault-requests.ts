/**
 * The HTTP side of `cache warm`: every request goes to the vault (never to an upstream), at most
 * `concurrency` at a time, with the vault token when one is given, and with retries.
 *
 * - `warm` makes sure one artifact is cached: a `HEAD` first — `X-Cache: HIT` (or `STALE`,
 *   `REVALIDATED`) means it is there, and nothing more is asked; a `MISS` started the download
 *   (the vault fills on a HEAD too), so a `GET` joins it and reads it to the end: the download is
 *   cached only once whole and verified, and a failed one breaks the GET's body off.
 * - `document` reads an index document whole (a simple page, a manifest, a Packages index),
 *   which the vault caches as it passes.
 *
 * Retried (with exponential backoff, `Retry-After` honoured): connection failures, a body that
 * broke off, 429, 502, 503, 504. A 401 or 403 ends the whole run (`CliError`): every other item
 * would be refused the same way. Anything else is one item's failure (`ItemFailure`).
 */
import { Agent, request } from "undici";
import type { Dispatcher } from "undici";
import { errorCode } from "../../core/error-code.js";
import { isRetryableNetworkError, isRetryableStatus, parseRetryAfter, retrying, systemClock, type AttemptResult, type RetryClock } from "../../client/retry.js";
import { CliError } from "../cli-errors.js";

/** How an item was answered: downloaded through the vault now, or already in its cache. */
export type Served = "fetched" | "cached";

export interface VaultDocument {
  readonly url: URL;
  readonly body: Buffer;
  /** Lower-case, without parameters ("" when none). */
  readonly contentType: string;
  readonly served: Served;
}

/** One item could not be warmed; the run goes on. */
export class ItemFailure extends Error {
  /** The vault answered 404: the upstream does not have it. */
  readonly notFound: boolean;

  constructor(message: string, options: { notFound?: boolean; cause?: unknown } = {}) {
    super(message, { cause: options.cause });
    this.name = "ItemFailure";
    this.notFound = options.notFound === true;
  }
}

export interface VaultRequestsOptions {
  /** The vault's base URL (for messages). */
  readonly base: URL;
  readonly apiKey: string | undefined;
  readonly concurrency: number;
  /** Requests per item step in total, the first included. */
  readonly attempts: number;
  readonly retryDelayMs?: number;
  readonly signal: AbortSignal;
  readonly clock?: RetryClock;
}

/** Statuses that say the artifact is in the vault's cache (`X-Cache`). */
const CACHED = new Set(["HIT", "STALE", "REVALIDATED"]);
/** Error bodies are read up to this size for their message. */
const MAX_ERROR_BODY = 16 * 1024;
/** No retry starts later than this after an item step began. */
const MAX_RETRY_MS = 5 * 60_000;

export class VaultRequests {
  readonly #options: VaultRequestsOptions;
  readonly #dispatcher: Agent;
  readonly #slots: Slots;
  readonly #clock: RetryClock;

  constructor(options: VaultRequestsOptions) {
    this.#options = options;
    this.#clock = options.clock ?? systemClock;
    this.#slots = new Slots(options.concurrency, options.signal);
    // A MISS answers at once (the vault streams as the upstream sends); a document the vault
    // reads whole from upstream before answering (a large index page) may take a while.
    this.#dispatcher = new Agent({ connections: options.concurrency, connectTimeout: 10_000, headersTimeout: 300_000, bodyTimeout: 120_000 });
  }

  /**
   * Makes sure the artifact at `url` is cached: `cached` with its size when the vault had it,
   * else `fetched` with the bytes read. `onBytes` is told of each chunk as it arrives.
   */
  async warm(url: URL, headers: Readonly<Record<string, string>>, onBytes: (bytes: number) => void): Promise<{ served: Served; bytes: number }> {
    const head = await this.#step<{ cached: boolean; size: number }>(async () => {
      const response = await this.#send(url, "HEAD", headers);
      await response.body.dump();
      const status = headerValue(response.headers, "x-cache")?.toUpperCase();
      const size = Number(headerValue(response.headers, "content-length") ?? Number.NaN);
      if (response.statusCode < 400 && status !== undefined && CACHED.has(status)) return { ok: true, value: { cached: true, size: Number.isFinite(size) ? size : 0 } };
      if (response.statusCode >= 200 && response.statusCode < 300) return { ok: true, value: { cached: false, size: 0 } };
      return this.#refusal(url, response.statusCode, response.headers, "");
    });
    if (head.cached) return { served: "cached", bytes: head.size };
    return this.#step<{ served: Served; bytes: number }>(async (attempt) => {
      const response = await this.#send(url, "GET", headers);
      const status = headerValue(response.headers, "x-cache")?.toUpperCase();
      if (response.statusCode >= 300 && response.statusCode < 400 && status !== undefined && CACHED.has(status)) {
        // `cache.redirect_hits`: a stored hit is a redirect to the store; the download is done.
        await response.body.dump();
        return { ok: true, value: { served: "fetched", bytes: 0 } };
      }
      if (response.statusCode !== 200) return this.#refusal(url, response.statusCode, response.headers, await errorText(response.body));
      let bytes = 0;
      try {
        for await (const chunk of response.body as AsyncIterable<Buffer>) {
          bytes += chunk.length;
          onBytes(chunk.length);
        }
      } catch (error) {
        this.#options.signal.throwIfAborted();
        onBytes(-bytes);
        return brokeOff(error, attempt);
      }
      return { ok: true, value: { served: "fetched", bytes } };
    });
  }

  /** Reads the document at `url` whole (at most `maxBytes`). */
  async document(url: URL, headers: Readonly<Record<string, string>>, maxBytes: number): Promise<VaultDocument> {
    return this.#step<VaultDocument>(async (attempt) => {
      const response = await this.#send(url, "GET", headers);
      if (response.statusCode !== 200) return this.#refusal(url, response.statusCode, response.headers, await errorText(response.body));
      const announced = Number(headerValue(response.headers, "content-length") ?? 0);
      if (announced > maxBytes) {
        response.body.destroy();
        throw new ItemFailure(`larger than ${maxBytes} bytes`);
      }
      const chunks: Buffer[] = [];
      let length = 0;
      try {
        for await (const chunk of response.body as AsyncIterable<Buffer>) {
          length += chunk.length;
          if (length > maxBytes) {
            response.body.destroy();
            throw new ItemFailure(`larger than ${maxBytes} bytes`);
          }
          chunks.push(chunk);
        }
      } catch (error) {
        if (error instanceof ItemFailure) throw error;
        this.#options.signal.throwIfAborted();
        return brokeOff(error, attempt);
      }
      const status = headerValue(response.headers, "x-cache")?.toUpperCase();
      return {
        ok: true,
        value: {
          url,
          body: Buffer.concat(chunks, length),
          contentType: (headerValue(response.headers, "content-type") ?? "").split(";")[0]?.trim().toLowerCase() ?? "",
          served: status !== undefined && CACHED.has(status) ? "cached" : "fetched",
        },
      };
    });
  }

  async close(): Promise<void> {
    await this.#dispatcher.close();
  }

  /** Runs one request-and-read with retries; each attempt holds one of the concurrency slots. */
  async #step<T>(attempt: (n: number) => Promise<AttemptResult<T>>): Promise<T> {
    const policy = { maxAttempts: this.#options.attempts, baseDelayMs: this.#options.retryDelayMs ?? 500, maxElapsedMs: MAX_RETRY_MS, clock: this.#clock };
    try {
      return await retrying(policy, this.#options.signal, async (n) => {
        const release = await this.#slots.acquire(this.#options.signal);
        try {
          return await attempt(n);
        } catch (error) {
          if (this.#options.signal.aborted || error instanceof ItemFailure || error instanceof CliError) throw error;
          if (!isRetryableNetworkError(error)) throw error;
          return { ok: false, error: this.#connectionFailure(error), reason: error as Error };
        } finally {
          release();
        }
      });
    } catch (error) {
      if (this.#options.signal.aborted || error instanceof ItemFailure || error instanceof CliError) throw error;
      throw new ItemFailure(`the request to the vault failed: ${reason(error)}`, { cause: error });
    }
  }

  #send(url: URL, method: "GET" | "HEAD", headers: Readonly<Record<string, string>>): Promise<Dispatcher.ResponseData> {
    const apiKey = this.#options.apiKey;
    return request(url, {
      method,
      dispatcher: this.#dispatcher,
      signal: this.#options.signal,
      headers: { ...headers, ...(apiKey === undefined ? {} : { authorization: `Bearer ${apiKey}` }), "user-agent": "artifact-vault-cache-warm" },
    });
  }

  /** An answer that is not the artifact: a retry, an item's failure, or the end of the run. */
  #refusal<T>(url: URL, status: number, headers: Dispatcher.ResponseData["headers"], text: string): AttemptResult<T> {
    const message = serverMessage(text);
    if (status === 401 || status === 403) {
      throw new CliError(
        `the vault refused the request (${status}${message === "" ? "" : `: ${message}`}) for ${url.pathname}: ` +
          "pass --api-key TOKEN or set VAULT_API_KEY (a token with the read scope, when the vault's proxy routes need one)",
      );
    }
    const detail = message === "" ? "" : `: ${message}`;
    if (isRetryableStatus(status)) {
      return { ok: false, error: new ItemFailure(`the vault answered ${status}${detail}`), reason: status, retryAfterMs: retryAfter(headers, this.#clock.now()) };
    }
    if (status === 404 || status === 410) throw new ItemFailure(`not found upstream (${status}${detail})`, { notFound: true });
    if (status >= 300 && status < 400) throw new ItemFailure(`the vault answered a redirect (${status}) to ${headerValue(headers, "location") ?? "nowhere"}`);
    throw new ItemFailure(`the vault answered ${status}${detail}`);
  }

  #connectionFailure(error: unknown): Error {
    const code = errorCode(error);
    // The vault is not there at all: nothing else would get through either.
    if (code === "ECONNREFUSED" || code === "ENOTFOUND" || code === "EAI_AGAIN") {
      return new CliError(`the connection to the vault at ${this.#options.base.href} failed: ${reason(error)}`, undefined, { cause: error });
    }
    return new ItemFailure(`the connection to the vault failed: ${reason(error)}`, { cause: error });
  }
}

/** A body that broke off mid-way: the vault aborts a download whose upstream failed or whose digest did not match. */
function brokeOff<T>(error: unknown, attempt: number): AttemptResult<T> {
  return {
    ok: false,
    error: new ItemFailure(
      `the download broke off after ${attempt} ${attempt === 1 ? "try" : "tries"} (${reason(error)}); the vault aborts a download whose upstream failed or whose digest did not match — see its log`,
      { cause: error },
    ),
    reason: error instanceof Error ? error : new Error(String(error)),
  };
}

function retryAfter(headers: Dispatcher.ResponseData["headers"], now: number): number | undefined {
  const ms = parseRetryAfter(headerValue(headers, "retry-after"), now);
  // A long Retry-After is not worth holding the run for: the backoff takes over.
  return ms === undefined || ms > 60_000 ? undefined : ms;
}

function headerValue(headers: Dispatcher.ResponseData["headers"], name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}

async function errorText(body: Dispatcher.ResponseData["body"]): Promise<string> {
  const chunks: Buffer[] = [];
  let length = 0;
  try {
    for await (const chunk of body as AsyncIterable<Buffer>) {
      if (length < MAX_ERROR_BODY) chunks.push(chunk);
      length += chunk.length;
    }
  } catch {
    // The message is a courtesy; the status says enough.
  }
  return Buffer.concat(chunks).subarray(0, MAX_ERROR_BODY).toString("utf8");
}

/**
 * The message of an error answer in whichever format the route speaks: the object API's
 * `{"error": {"message"}}`, npm's `{"error": "..."}`, the registry API's `{"errors": [{"message"}]}`,
 * or plain text.
 */
export function serverMessage(text: string): string {
  const trimmed = text.trim();
  if (trimmed === "") return "";
  try {
    const parsed = JSON.parse(trimmed) as { error?: unknown; errors?: Array<{ code?: unknown; message?: unknown }> };
    if (typeof parsed.error === "string") return parsed.error;
    if (typeof parsed.error === "object" && parsed.error !== null && typeof (parsed.error as { message?: unknown }).message === "string") {
      return (parsed.error as { message: string }).message;
    }
    const first = parsed.errors?.[0];
    if (first !== undefined) return [first.code, first.message].filter((part) => typeof part === "string" && part !== "").join(": ");
  } catch {
    // plain text
  }
  return (trimmed.split("\n")[0] ?? "").slice(0, 300);
}

function reason(error: unknown): string {
  const code = errorCode(error);
  const message = error instanceof Error ? error.message : String(error);
  return code !== undefined && !message.includes(code) ? `${message} (${code})` : message;
}

/** A counting semaphore: at most `size` holders at a time, served in order; all waiters fail when `signal` aborts. */
class Slots {
  #free: number;
  readonly #waiting: Array<{ readonly grant: () => void; readonly fail: (reason: unknown) => void }> = [];

  constructor(size: number, signal: AbortSignal) {
    this.#free = size;
    // One listener for every waiter (there may be thousands).
    signal.addEventListener(
      "abort",
      () => {
        for (const waiter of this.#waiting.splice(0)) waiter.fail(signal.reason);
      },
      { once: true },
    );
  }

  async acquire(signal: AbortSignal): Promise<() => void> {
    signal.throwIfAborted();
    if (this.#free > 0) this.#free--;
    else await new Promise<void>((resolve, reject) => this.#waiting.push({ grant: resolve, fail: reject }));
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.#waiting.shift();
      if (next === undefined) this.#free++;
      else next.grant();
    };
  }
}
