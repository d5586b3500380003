import { VaultError } from "../core/errors.js";
import { errorCode } from "../core/error-code.js";

/**
 * How the upstream client classifies what undici and the socket layer throw: which failures are
 * worth another attempt (only before the first byte), and which VaultError kind each becomes.
 */

/**
 * Failures where no response started, so a new attempt cannot repeat a partial answer: refused,
 * reset or closed connections (also "other side closed" before the headers), DNS failures and
 * connect timeouts. A headers timeout is NOT among them: the upstream accepted the request and
 * is slow, and retrying would multiply the wait the client sees (the cache can serve stale).
 */
const RETRYABLE_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ECONNABORTED",
  "EPIPE",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENETDOWN",
  "EHOSTDOWN",
  "ETIMEDOUT",
  "UND_ERR_SOCKET",
  "UND_ERR_CONNECT_TIMEOUT",
]);

const TIMEOUT_CODES = new Set(["ETIMEDOUT", "UND_ERR_CONNECT_TIMEOUT", "UND_ERR_HEADERS_TIMEOUT", "UND_ERR_BODY_TIMEOUT"]);

/** Our own misuse of undici (an invalid header value, say): a bug here, not the upstream's fault. */
const INTERNAL_CODES = new Set(["UND_ERR_INVALID_ARG", "UND_ERR_NOT_SUPPORTED", "ERR_INVALID_ARG_TYPE", "ERR_INVALID_CHAR"]);

const CLOSED_CODES = new Set(["UND_ERR_CLOSED", "UND_ERR_DESTROYED"]);

/** Statuses retried before the first byte; the last one is still returned as a response. */
export function isRetryableStatus(status: number): boolean {
  return status === 502 || status === 503 || status === 504;
}

export function isRetryableConnectionError(error: unknown): boolean {
  const code = errorCode(error);
  return code !== undefined && RETRYABLE_CODES.has(code);
}

/**
 * The VaultError for a failure talking to `url`: `upstream_timeout` for connect, headers and
 * idle-body timeouts, `upstream_failed` for the rest. The message names the origin and path
 * only — a redirect target's query may hold a signed URL's secret.
 */
export function toUpstreamError(error: unknown, url: URL, phase: "request" | "body"): VaultError {
  if (error instanceof VaultError) return error;
  const code = errorCode(error);
  const where = `${url.origin}${url.pathname}`;
  const detail = describe(error, code);
  if (code !== undefined && TIMEOUT_CODES.has(code)) {
    const what = code === "UND_ERR_BODY_TIMEOUT" ? "stalled mid-body" : code === "UND_ERR_HEADERS_TIMEOUT" ? "sent no response headers in time" : "timed out connecting";
    return new VaultError("upstream_timeout", `upstream ${where} ${what} (${detail})`, { cause: error });
  }
  if (code !== undefined && INTERNAL_CODES.has(code)) {
    return new VaultError("internal", `invalid upstream request to ${where} (${detail})`, { cause: error });
  }
  if (code !== undefined && CLOSED_CODES.has(code)) {
    return new VaultError("unavailable", `upstream client is closed (${where})`, { cause: error });
  }
  const what = phase === "body" ? "broke off the response body" : "failed";
  return new VaultError("upstream_failed", `upstream ${where} ${what} (${detail})`, { cause: error });
}

function describe(error: unknown, code: string | undefined): string {
  const message = error instanceof Error ? error.message : String(error);
  return code !== undefined && !message.includes(code) ? `${code}: ${message}` : message;
}

