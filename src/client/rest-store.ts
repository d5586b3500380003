import { Transform, type Readable, type TransformCallback, type Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { Pool, type Dispatcher } from "undici";
import { VERSION } from "../version.js";
import {
  errorForStatus,
  parseServerMessage,
  RestStoreError,
  VaultConnectionError,
  type ServerMessage,
} from "./errors.js";
import { encodeKeyPath } from "./key-path.js";
import {
  isRetryableNetworkError,
  isRetryableStatus,
  isTimeout,
  mayHaveReachedServer,
  parseRetryAfter,
  retrying,
  systemClock,
  type AttemptResult,
  type RetryClock,
  type RetryEvent,
  type RetryPolicy,
} from "./retry.js";
import { uploadBody, type Progress, type ProgressListener, type UploadBody, type UploadSource } from "./upload-body.js";

export interface RestStoreOptions {
  /** The server, e.g. `http://127.0.0.1:8080` (a path prefix such as `https://host/vault` is kept). */
  readonly baseUrl: string | URL;
  /** A token from the server's tokens file, sent as `Authorization: Bearer ...`. */
  readonly apiKey: string;
  /**
   * Seconds, default 30: for connecting, for the response headers, and between two chunks of a
   * body — an idle timeout, so a long transfer that keeps moving never times out. 0 disables it.
   */
  readonly timeout?: number;
  /** Requests per call in total, the first included; default 3 (the source design's). */
  readonly maxRetries?: number;
  /** Seconds before the first retry, doubling after each; default 1. */
  readonly retryDelay?: number;
  /** Seconds: no retry starts whose wait would end later than this after the call began; default 120. */
  readonly maxRetryTime?: number;
  /** Most connections open to the server at once (one keep-alive pool per client); default 32. */
  readonly connections?: number;
  /** Told before each retry; handy for logging. */
  readonly onRetry?: (event: RetryEvent) => void;
  /** Time and randomness for retries; tests inject one to record delays instead of sleeping. */
  readonly clock?: RetryClock;
}

export interface CallOptions {
  readonly signal?: AbortSignal | undefined;
}

export interface PutOptions extends CallOptions {
  /** Stored and returned on `get`; the server answers `application/octet-stream` when absent. */
  readonly contentType?: string | undefined;
  /** `"*"`: create only — `PreconditionFailedError` if the key exists. Or ETags that must not match. */
  readonly ifNoneMatch?: string | undefined;
  /** Replace only if the current object has this ETag (`"*"`: only if it exists). */
  readonly ifMatch?: string | undefined;
}

export interface PutStreamOptions extends PutOptions {
  /** The exact length of the source in bytes, if known: sent as `Content-Length`, so the server can refuse an oversized object at once. */
  readonly size?: number | undefined;
  /** Called as bytes are handed to the connection. */
  readonly onProgress?: ProgressListener | undefined;
}

export interface GetStreamOptions extends CallOptions {
  /** Called as bytes arrive; `total` is the object's size. */
  readonly onProgress?: ProgressListener | undefined;
}

export interface ListOptions extends CallOptions {
  readonly prefix?: string | undefined;
  /** Keys per page, 1..1000; the server's default is 100. */
  readonly limit?: number | undefined;
  /** `nextCursor` of the previous page. */
  readonly cursor?: string | undefined;
}

export interface KeysOptions extends CallOptions {
  readonly prefix?: string | undefined;
  /** Keys fetched per request, 1..1000; default 1000. */
  readonly pageSize?: number | undefined;
}

export interface PutResult {
  readonly key: string;
  readonly size: number;
  readonly createdAt: Date;
}

export interface ObjectStat {
  readonly key: string;
  readonly size: number;
  readonly etag: string;
  readonly contentType: string;
  readonly lastModified: Date;
}

export interface ListPage {
  /** In the lexicographic order of the keys' UTF-8 bytes. */
  readonly keys: string[];
  readonly nextCursor: string | null;
  readonly hasMore: boolean;
}

export type { Progress, ProgressListener, UploadSource };

type Method = "GET" | "HEAD" | "PUT" | "DELETE";

interface Call {
  readonly method: Method;
  readonly path: string;
  /** The key the call is about, for error messages and `NotFoundError`. */
  readonly key?: string | undefined;
  readonly headers?: Record<string, string> | undefined;
  readonly body?: UploadBody | undefined;
  readonly signal?: AbortSignal | undefined;
}

interface Answer {
  readonly response: Dispatcher.ResponseData;
  readonly attempts: number;
  /** An earlier attempt failed in a way that may have let the server act on it (reset mid-request, 502/504). */
  readonly earlierMayHaveApplied: boolean;
}

const DEFAULTS = { timeout: 30, maxRetries: 3, retryDelay: 1, maxRetryTime: 120, connections: 32 } as const;
/** Error bodies are read up to this size for their message; the rest is discarded. */
const ERROR_BODY_LIMIT = 64 * 1024;

/**
 * A client for artifact-vault's object store API (SPEC §3), wire-compatible with the source
 * design's `RestStore`.
 *
 * - One keep-alive connection pool per client; `close()` (or `await using`) releases it.
 * - Every call takes an `AbortSignal`; an aborted call rejects with the signal's reason.
 * - Retries: connection failures (refused, reset, timed out), 502/503/504 and 429 are retried up to
 *   `maxRetries` requests in total, with exponential backoff from `retryDelay` (±20% jitter) or the
 *   server's `Retry-After` (delta-seconds or an HTTP date) when it sends one, and never past
 *   `maxRetryTime`. Other 4xx are never retried.
 * - Uploads are retried only if the body can be sent again: bytes and strings always; a stream
 *   only if none of it had been read yet (e.g. the connection was refused). Once a stream has been
 *   read from, a failure is final — retry by calling `putStream` with a fresh stream.
 * - Failures are `RestStoreError`s: `NotFoundError`, `AuthError`, `RateLimitedError`,
 *   `NotSupportedError`, `PreconditionFailedError`, `VaultHttpError`, `VaultConnectionError`.
 */
export class RestStore implements AsyncDisposable {
  private readonly pool: Pool;
  private readonly basePath: string;
  private readonly headers: Record<string, string>;
  private readonly timeoutMs: number;
  private readonly retryPolicy: RetryPolicy;
  private readonly openStreams = new Set<Readable>();
  private closing: Promise<void> | undefined;

  static create(options: RestStoreOptions): RestStore {
    return new RestStore(options);
  }

  constructor(options: RestStoreOptions) {
    const url = new URL(options.baseUrl);
    if (url.protocol !== "http:" && url.protocol !== "https:") {
      throw new TypeError(`baseUrl must be an http or https URL, got ${url.protocol}`);
    }
    if (typeof options.apiKey !== "string" || options.apiKey === "") throw new TypeError("apiKey must be a non-empty string");
    const timeout = nonNegative("timeout", options.timeout ?? DEFAULTS.timeout);
    const attempts = Math.max(1, Math.floor(nonNegative("maxRetries", options.maxRetries ?? DEFAULTS.maxRetries)));
    const retryDelay = nonNegative("retryDelay", options.retryDelay ?? DEFAULTS.retryDelay);
    const maxRetryTime = nonNegative("maxRetryTime", options.maxRetryTime ?? DEFAULTS.maxRetryTime);
    const connections = Math.max(1, Math.floor(nonNegative("connections", options.connections ?? DEFAULTS.connections)));

    this.timeoutMs = Math.round(timeout * 1000);
    this.basePath = url.pathname.replace(/\/+$/, "");
    this.headers = { authorization: `Bearer ${options.apiKey}`, "user-agent": `artifact-vault-client/${VERSION}` };
    this.retryPolicy = {
      maxAttempts: attempts,
      baseDelayMs: retryDelay * 1000,
      maxElapsedMs: maxRetryTime * 1000,
      clock: options.clock ?? systemClock,
      onRetry: options.onRetry,
    };
    this.pool = new Pool(url.origin, {
      connections,
      headersTimeout: this.timeoutMs,
      bodyTimeout: this.timeoutMs,
      connect: this.timeoutMs > 0 ? { timeout: this.timeoutMs } : {},
    });
  }

  /**
   * Stores `data` under `key`, replacing any object there (atomically: readers see the old
   * object or the new one, never a part). Sends the body's SHA-256, so the server refuses a
   * corrupted upload. Retried on the failures listed on the class.
   */
  async put(key: string, data: Uint8Array | string, options: PutOptions = {}): Promise<PutResult> {
    return this.upload(key, uploadBody(data, undefined, undefined), options);
  }

  /**
   * Stores an object larger than memory, streaming `source` (a `Readable`, any async iterable
   * of `Uint8Array`, or bytes) without buffering it. A stream cannot be replayed: once any of it
   * has been read, a failed upload is not retried (bytes and strings are). On failure the
   * source is destroyed.
   */
  async putStream(key: string, source: UploadSource, options: PutStreamOptions = {}): Promise<PutResult> {
    if (options.size !== undefined && !(Number.isSafeInteger(options.size) && options.size >= 0)) {
      throw new TypeError("size must be a non-negative integer");
    }
    return this.upload(key, uploadBody(source, options.size, options.onProgress), options);
  }

  /** The object's bytes. `NotFoundError` if there is none. */
  async get(key: string, options: CallOptions = {}): Promise<Uint8Array> {
    const { response } = await this.send({ method: "GET", path: this.objectPath(key), key, signal: options.signal });
    const declared = contentLength(response.headers);
    const chunks: Buffer[] = [];
    let size = 0;
    try {
      for await (const chunk of response.body as AsyncIterable<Buffer>) {
        chunks.push(chunk);
        size += chunk.byteLength;
      }
    } catch (error) {
      throw this.bodyFailure(error, "GET", key, options.signal);
    }
    if (declared !== undefined && size !== declared) {
      throw new VaultConnectionError(`GET ${JSON.stringify(key)}: got ${size} of ${declared} bytes`, false);
    }
    // Always a copy of its own: a chunk may be a view into a larger socket buffer.
    return Buffer.concat(chunks, size);
  }

  /**
   * Streams the object: resolves once the server has answered (so `NotFoundError` and friends
   * reject here), then the `Readable` delivers the bytes with backpressure. A connection that
   * breaks mid-body destroys the stream with an error — it never ends short. Consume or destroy
   * it; `close()` destroys streams still open.
   */
  async getStream(key: string, options: GetStreamOptions = {}): Promise<Readable> {
    return (await this.openStream(key, options)).stream;
  }

  /** Streams the object into `destination` (e.g. a file), ending it; resolves with the object's metadata. */
  async download(key: string, destination: Writable, options: GetStreamOptions = {}): Promise<ObjectStat> {
    const { stream, stat } = await this.openStream(key, options);
    await pipeline(stream, destination, options.signal === undefined ? {} : { signal: options.signal });
    return stat;
  }

  /** Whether the key exists: one `HEAD`; a 404 answers `false` at once, without retries. */
  async exists(key: string, options: CallOptions = {}): Promise<boolean> {
    const { response } = await this.send({ method: "HEAD", path: this.objectPath(key), key, signal: options.signal }, [404]);
    await discard(response);
    return response.statusCode !== 404;
  }

  /** Size, ETag, content type and modification time, from a `HEAD`. `NotFoundError` if absent. */
  async stat(key: string, options: CallOptions = {}): Promise<ObjectStat> {
    const { response } = await this.send({ method: "HEAD", path: this.objectPath(key), key, signal: options.signal });
    await discard(response);
    return statFromHeaders(key, response.headers);
  }

  /**
   * Deletes the object; `NotFoundError` if there is none. If an earlier attempt of this call was
   * cut off after it may have reached the server, a 404 on the retry counts as deleted.
   */
  async delete(key: string, options: CallOptions = {}): Promise<void> {
    const answer = await this.send({ method: "DELETE", path: this.objectPath(key), key, signal: options.signal }, [404]);
    if (answer.response.statusCode === 404 && !answer.earlierMayHaveApplied) {
      throw await this.statusError(answer.response, { method: "DELETE", key }, answer.attempts, undefined);
    }
    await discard(answer.response);
  }

  /** One page of keys. `NotSupportedError` if the server's store cannot list. */
  async list(options: ListOptions = {}): Promise<ListPage> {
    const query = new URLSearchParams();
    if (options.prefix !== undefined && options.prefix !== "") query.set("prefix", options.prefix);
    if (options.limit !== undefined) query.set("limit", String(options.limit));
    if (options.cursor !== undefined) query.set("cursor", options.cursor);
    const search = query.size > 0 ? `?${query.toString().replaceAll("+", "%20")}` : "";
    const { response } = await this.send({ method: "GET", path: `${this.basePath}/objects${search}`, signal: options.signal });
    const body = await readJson(response, "GET /objects", options.signal);
    const { keys, next_cursor: nextCursor, has_more: hasMore } = body as Record<string, unknown>;
    if (!Array.isArray(keys) || !keys.every((key) => typeof key === "string") || (nextCursor !== null && typeof nextCursor !== "string")) {
      throw new RestStoreError("GET /objects: the server's answer is not a key listing");
    }
    return { keys, nextCursor, hasMore: hasMore === true && nextCursor !== null };
  }

  /** Every key under `prefix`, in order, fetching page after page as the loop asks for more. */
  async *keys(options: KeysOptions = {}): AsyncGenerator<string, void, undefined> {
    let cursor: string | undefined;
    for (;;) {
      const page = await this.list({ prefix: options.prefix, limit: options.pageSize ?? 1000, cursor, signal: options.signal });
      yield* page.keys;
      if (!page.hasMore || page.nextCursor === null) return;
      if (page.nextCursor === cursor) throw new RestStoreError("GET /objects: the server returned the same cursor twice");
      cursor = page.nextCursor;
    }
  }

  /**
   * Releases the connection pool after the requests in flight finish. Streams from `getStream`
   * still open are destroyed. Later calls throw. Safe to call more than once.
   */
  async close(): Promise<void> {
    this.closing ??= (async () => {
      for (const stream of this.openStreams) stream.destroy(new RestStoreError("the RestStore was closed"));
      await this.pool.close();
    })();
    return this.closing;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  private objectPath(key: string): string {
    return `${this.basePath}/objects/${encodeKeyPath(key)}`;
  }

  private async upload(key: string, body: UploadBody, options: PutOptions): Promise<PutResult> {
    const headers: Record<string, string> = {};
    if (options.contentType !== undefined) headers["content-type"] = options.contentType;
    if (options.ifNoneMatch !== undefined) headers["if-none-match"] = options.ifNoneMatch;
    if (options.ifMatch !== undefined) headers["if-match"] = options.ifMatch;
    if (body.length !== undefined) headers["content-length"] = String(body.length);
    if (body.sha256 !== undefined) headers["x-checksum-sha256"] = body.sha256;
    let done = false;
    try {
      const { response } = await this.send({ method: "PUT", path: this.objectPath(key), key, headers, body, signal: options.signal });
      const result = (await readJson(response, `PUT ${JSON.stringify(key)}`, options.signal)) as Record<string, unknown>;
      const createdAt = new Date(typeof result["created_at"] === "string" ? result["created_at"] : Number.NaN);
      if (typeof result["size"] !== "number" || Number.isNaN(createdAt.getTime())) {
        throw new RestStoreError(`PUT ${JSON.stringify(key)}: the server's answer has no size and created_at`);
      }
      done = true;
      return { key: typeof result["key"] === "string" ? result["key"] : key, size: result["size"], createdAt };
    } finally {
      if (!done) await body.dispose();
    }
  }

  private async openStream(key: string, options: GetStreamOptions): Promise<{ stream: Readable; stat: ObjectStat }> {
    const { response } = await this.send({ method: "GET", path: this.objectPath(key), key, signal: options.signal });
    const stat = statFromHeaders(key, response.headers);
    const stream = meter(response.body, contentLength(response.headers), options.onProgress, (error) =>
      this.bodyFailure(error, "GET", key, options.signal),
    );
    this.openStreams.add(stream);
    stream.once("close", () => this.openStreams.delete(stream));
    return { stream, stat };
  }

  /**
   * Sends a call with the retry policy. Resolves with a 2xx answer or one whose status is in
   * `accept`; any other status becomes the error `errorForStatus` maps it to.
   */
  private async send(call: Call, accept: readonly number[] = []): Promise<Answer> {
    if (this.closing !== undefined) throw new RestStoreError("the RestStore is closed");
    let earlierMayHaveApplied = false;
    const answer = await retrying<Answer>(this.retryPolicy, call.signal, async (attempt): Promise<AttemptResult<Answer>> => {
      let response: Dispatcher.ResponseData;
      try {
        response = await this.pool.request({
          path: call.path,
          method: call.method,
          headers: { ...this.headers, ...call.headers },
          // undici sends any async iterable as a body; its types only name Readable.
          body: (call.body?.open() ?? null) as Uint8Array | Readable | null,
          signal: call.signal ?? null,
          // undici closes the connection after every HEAD (against servers that wrongly send a
          // body); this server does not, and exists()/stat() are hot paths, so keep it alive.
          // undici still closes it unless the answer says `Connection: keep-alive`.
          ...(call.method === "HEAD" ? { reset: false } : {}),
        });
      } catch (error) {
        const failure = this.networkFailure(error, call, attempt);
        if (call.body !== undefined && !call.body.replayable) throw failure;
        if (mayHaveReachedServer(error)) earlierMayHaveApplied = true;
        return { ok: false, error: failure, reason: error instanceof Error ? error : failure };
      }
      const status = response.statusCode;
      if (isRetryableStatus(status) && !accept.includes(status) && (call.body?.replayable ?? true)) {
        const retryAfterMs = parseRetryAfter(header(response.headers, "retry-after"), this.retryPolicy.clock.now());
        const error = await this.statusError(response, call, attempt, retryAfterMs);
        if (status === 502 || status === 504) earlierMayHaveApplied = true;
        return { ok: false, error, reason: status, retryAfterMs };
      }
      return { ok: true, value: { response, attempts: attempt, earlierMayHaveApplied } };
    });
    const status = answer.response.statusCode;
    if ((status >= 200 && status < 300) || accept.includes(status)) return answer;
    const retryAfterMs = parseRetryAfter(header(answer.response.headers, "retry-after"), this.retryPolicy.clock.now());
    throw await this.statusError(answer.response, call, answer.attempts, retryAfterMs);
  }

  /** Reads the error body (bounded) and maps the status to its error class. */
  private async statusError(
    response: Dispatcher.ResponseData,
    call: Pick<Call, "method" | "key">,
    attempts: number,
    retryAfterMs: number | undefined,
  ): Promise<RestStoreError> {
    const server: ServerMessage = parseServerMessage(await readErrorText(response));
    return errorForStatus(response.statusCode, withChallenge(server, response), {
      method: call.method,
      key: call.key,
      attempts,
      retryAfter: retryAfterMs === undefined ? undefined : retryAfterMs / 1000,
    });
  }

  /** Classifies an error from sending a request; throws at once what must not be retried. */
  private networkFailure(error: unknown, call: Call, attempt: number): RestStoreError {
    if (call.signal?.aborted === true) throw call.signal.reason;
    if (call.body?.sourceError !== undefined) throw call.body.sourceError as Error;
    const what = call.key === undefined ? call.method : `${call.method} ${JSON.stringify(call.key)}`;
    const message = error instanceof Error ? error.message : String(error);
    if (this.closing !== undefined) throw new RestStoreError(`${what}: the RestStore was closed`, { cause: error });
    if (!isRetryableNetworkError(error)) throw new RestStoreError(`${what}: ${message}`, { cause: error });
    const tried = attempt > 1 ? ` (after ${attempt} attempts)` : "";
    return new VaultConnectionError(`${what}: ${message}${tried}`, isTimeout(error), { cause: error, attempts: attempt });
  }

  private bodyFailure(error: unknown, method: Method, key: string, signal: AbortSignal | undefined): unknown {
    if (signal?.aborted === true) return signal.reason;
    if (error instanceof RestStoreError) return error;
    const message = error instanceof Error ? error.message : String(error);
    return new VaultConnectionError(`${method} ${JSON.stringify(key)}: the response broke off: ${message}`, isTimeout(error), { cause: error });
  }
}

/**
 * A pass-through that counts bytes for `onProgress` and fails the stream if it ends short. A body
 * that breaks is reported through `describeFailure` (a `VaultConnectionError`), never as the HTTP
 * library's own error.
 */
function meter(
  body: Readable,
  total: number | undefined,
  onProgress: ProgressListener | undefined,
  describeFailure: (error: unknown) => unknown,
): Readable {
  let bytes = 0;
  const counter = new Transform({
    transform(chunk: Buffer, _encoding, callback: TransformCallback) {
      bytes += chunk.byteLength;
      onProgress?.({ bytes, total });
      callback(null, chunk);
    },
    flush(callback: TransformCallback) {
      if (total !== undefined && bytes !== total) {
        callback(new VaultConnectionError(`the response broke off after ${bytes} of ${total} bytes`, false));
      } else {
        callback();
      }
    },
  });
  // Wired by hand rather than with pipeline(), which would destroy the counter with the raw
  // error first. Destroying the counter destroys the body and frees the connection.
  body.on("error", (error: unknown) => {
    const failure = describeFailure(error);
    if (!counter.destroyed) counter.destroy(failure instanceof Error ? failure : new Error(String(failure)));
  });
  counter.on("close", () => {
    if (!body.destroyed) body.destroy();
  });
  body.pipe(counter);
  // Consumers see errors through iteration or their own pipeline; a stream left unread when the
  // client closes must not crash the process with an unhandled 'error'.
  counter.on("error", () => undefined);
  return counter;
}

function statFromHeaders(key: string, headers: Dispatcher.ResponseData["headers"]): ObjectStat {
  const lastModified = header(headers, "last-modified");
  return {
    key,
    size: contentLength(headers) ?? 0,
    etag: header(headers, "etag") ?? "",
    contentType: header(headers, "content-type") ?? "application/octet-stream",
    lastModified: lastModified === undefined ? new Date(Number.NaN) : new Date(lastModified),
  };
}

/** A 401 without a body (a HEAD) still says why, from `WWW-Authenticate`. */
function withChallenge(server: ServerMessage, response: Dispatcher.ResponseData): ServerMessage {
  if (server.message !== undefined) return server;
  if (response.statusCode === 401) return { ...server, message: "unauthenticated: the token is missing, unknown or expired" };
  if (response.statusCode === 403) return { ...server, message: "forbidden: the token lacks the scope this needs" };
  return server;
}

async function readJson(response: Dispatcher.ResponseData, what: string, signal: AbortSignal | undefined): Promise<unknown> {
  try {
    return await response.body.json();
  } catch (error) {
    if (signal?.aborted === true) throw signal.reason;
    throw new RestStoreError(`${what}: the server's answer is not valid JSON`, { cause: error, status: response.statusCode });
  }
}

/** Up to `ERROR_BODY_LIMIT` bytes of an error body as text; a larger one is cut (and its connection closed). */
async function readErrorText(response: Dispatcher.ResponseData): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of response.body as AsyncIterable<Buffer>) {
      chunks.push(chunk);
      size += chunk.byteLength;
      if (size >= ERROR_BODY_LIMIT) break;
    }
  } catch {
    // a broken error body only costs us its message
  }
  return Buffer.concat(chunks).subarray(0, ERROR_BODY_LIMIT).toString("utf8");
}

/** Reads a (short) body to its end so the connection goes back to the pool. */
async function discard(response: Dispatcher.ResponseData): Promise<void> {
  await response.body.dump().catch(() => undefined);
}

function header(headers: Dispatcher.ResponseData["headers"], name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value.join(", ") : value;
}

function contentLength(headers: Dispatcher.ResponseData["headers"]): number | undefined {
  const raw = header(headers, "content-length");
  if (raw === undefined || !/^\d+$/.test(raw.trim())) return undefined;
  return Number(raw);
}

function nonNegative(name: string, value: number): number {
  if (typeof value !== "number" || !Number.isFinite(value) || value < 0) {
    throw new TypeError(`${name} must be a non-negative number, got ${String(value)}`);
  }
  return value;
}
