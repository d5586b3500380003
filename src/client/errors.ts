/**
 * The errors `RestStore` throws. Every failure the server or the network causes is a
 * `RestStoreError`; `errorForStatus` is the one place an HTTP status becomes an error class.
 *
 * Not wrapped: an aborted call rejects with its `AbortSignal`'s reason (as `fetch` does), an error
 * raised by the caller's own upload source is rethrown as it is, and a malformed key is a
 * `TypeError` thrown before any request is made.
 */

export interface RestStoreErrorOptions {
  readonly cause?: unknown;
  /** The HTTP status the server answered with, if it answered. */
  readonly status?: number | undefined;
  /** How many requests were made before giving up (1 when the failure was not retried). */
  readonly attempts?: number | undefined;
}

/** The base of every error the client throws for a failed request. */
export class RestStoreError extends Error {
  readonly status: number | undefined;
  readonly attempts: number;

  constructor(message: string, options: RestStoreErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.status = options.status;
    this.attempts = options.attempts ?? 1;
  }
}

/** `get`, `stat`, `delete` or `getStream` of a key that does not exist (the source design's `KeyError`). */
export class NotFoundError extends RestStoreError {
  readonly key: string;

  constructor(key: string, message: string, options: RestStoreErrorOptions = {}) {
    super(message, { status: 404, ...options });
    this.key = key;
  }
}

/** The server cannot do this, e.g. its store cannot list (501; the source design's `NotImplementedError`). */
export class NotSupportedError extends RestStoreError {}

/** 401 (missing, unknown or expired token) or 403 (the token lacks a scope), with the server's message. */
export class AuthError extends RestStoreError {}

/** Still rate-limited (429) when the retries ran out; `retryAfter` is the server's last hint in seconds. */
export class RateLimitedError extends RestStoreError {
  readonly retryAfter: number | undefined;

  constructor(message: string, retryAfter: number | undefined, options: RestStoreErrorOptions = {}) {
    super(message, { status: 429, ...options });
    this.retryAfter = retryAfter;
  }
}

/** Any other HTTP error status (400, 413, 416, 5xx, ...), with the server's message and error code. */
export class VaultHttpError extends RestStoreError {
  declare readonly status: number;
  /** The envelope's `code` (the status as a string on this server), if the body had one. */
  readonly code: string | undefined;

  constructor(status: number, message: string, code: string | undefined, options: RestStoreErrorOptions = {}) {
    super(message, { ...options, status });
    this.code = code;
  }
}

/** A conditional write (`ifNoneMatch: "*"`, create-only) found the object already there (412). */
export class PreconditionFailedError extends VaultHttpError {}

/**
 * The server could not be reached or the connection failed (refused, reset, timed out) and the
 * retries, if the request could be retried, ran out. `cause` is the network error.
 */
export class VaultConnectionError extends RestStoreError {
  /** Whether the failure was a timeout (connecting, waiting for headers, or between body chunks). */
  readonly timedOut: boolean;

  constructor(message: string, timedOut: boolean, options: RestStoreErrorOptions = {}) {
    super(message, options);
    this.timedOut = timedOut;
  }
}

/** What the server said in its error body: the object API's envelope `{"error": {"code", "message"}}`. */
export interface ServerMessage {
  readonly message: string | undefined;
  readonly code: string | undefined;
}

export interface ErrorContext {
  readonly method: string;
  /** The key the call was about, for key operations; undefined for listing. */
  readonly key?: string | undefined;
  readonly attempts: number;
  /** The `Retry-After` of the response, in seconds. */
  readonly retryAfter?: number | undefined;
}

/** The one status → error class table. */
export function errorForStatus(status: number, server: ServerMessage, context: ErrorContext): RestStoreError {
  const what = context.key === undefined ? context.method : `${context.method} ${JSON.stringify(context.key)}`;
  const detail = server.message ?? `HTTP ${status}`;
  const tried = context.attempts > 1 ? ` (after ${context.attempts} attempts)` : "";
  const options = { status, attempts: context.attempts };
  if (status === 404 && context.key !== undefined) {
    return new NotFoundError(context.key, `${what}: not found: ${detail}`, options);
  }
  if (status === 401 || status === 403) return new AuthError(`${what}: ${detail}`, options);
  if (status === 429) return new RateLimitedError(`${what}: rate limited: ${detail}${tried}`, context.retryAfter, options);
  if (status === 501) return new NotSupportedError(`${what}: not supported by the server: ${detail}`, options);
  if (status === 412) return new PreconditionFailedError(status, `${what}: precondition failed: ${detail}`, server.code, options);
  return new VaultHttpError(status, `${what}: HTTP ${status}: ${detail}${tried}`, server.code, options);
}

/**
 * Reads the server's message from an error body: the envelope, or FastAPI's `{"detail": ...}`,
 * or short plain text. Anything else (HTML pages, empty bodies) gives no message.
 */
export function parseServerMessage(body: string): ServerMessage {
  const text = body.trim();
  if (text === "") return { message: undefined, code: undefined };
  try {
    const parsed = JSON.parse(text) as unknown;
    if (typeof parsed === "object" && parsed !== null) {
      const record = parsed as Record<string, unknown>;
      const error = record["error"];
      if (typeof error === "object" && error !== null) {
        const { code, message } = error as Record<string, unknown>;
        return {
          message: typeof message === "string" ? message : undefined,
          code: typeof code === "string" || typeof code === "number" ? String(code) : undefined,
        };
      }
      if (typeof error === "string") return { message: error, code: undefined };
      if (typeof record["detail"] === "string") return { message: record["detail"], code: undefined };
    }
  } catch {
    // not JSON: fall through to plain text
  }
  if (text.startsWith("<")) return { message: undefined, code: undefined };
  return { message: text.length > 300 ? `${text.slice(0, 300)}…` : text, code: undefined };
}
