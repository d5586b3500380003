import type { ErrorRenderer } from "../core/error-rendering.js";
import { VaultError, type ErrorKind } from "../core/errors.js";

/**
 * The ONLY place where error kinds become HTTP statuses. Each surface renders the body its
 * clients expect (object API envelope, OCI errors, plain text) from the same status.
 */
export const STATUS_BY_KIND: Readonly<Record<ErrorKind, number>> = {
  bad_request: 400,
  unauthenticated: 401,
  forbidden: 403,
  not_found: 404,
  method_not_allowed: 405,
  not_acceptable: 406,
  conflict: 409,
  precondition_failed: 412,
  payload_too_large: 413,
  request_timeout: 408,
  headers_too_large: 431,
  insufficient_storage: 507,
  checksum_mismatch: 400,
  range_not_satisfiable: 416,
  rate_limited: 429,
  not_supported: 501,
  upstream_failed: 502,
  unavailable: 503,
  upstream_timeout: 504,
  internal: 500,
};

/**
 * What clients are told of failures whose details name the upstream (its URL, the socket error)
 * or the vault's insides: a generic reason; the details go to the log with the request id.
 */
const GENERIC_MESSAGES: Partial<Readonly<Record<ErrorKind, string>>> = {
  upstream_failed: "the upstream failed",
  upstream_timeout: "the upstream did not answer in time",
  internal: "internal server error",
};

export interface ErrorResponse {
  readonly status: number;
  /** Safe to show the client. */
  readonly message: string;
  /** Whether `message` stands for details only the log has (the client is given the request id to quote). */
  readonly detailsLogged: boolean;
  readonly headers: Record<string, string>;
  /** Whether the cause is our own fault and deserves an error log with its stack. */
  readonly internal: boolean;
}

/** Turns anything thrown into a status, a client-safe message and the headers that go with it. */
export function toErrorResponse(error: unknown): ErrorResponse {
  if (!(error instanceof VaultError)) {
    return { status: 500, message: "internal server error", detailsLogged: true, headers: {}, internal: true };
  }
  const headers: Record<string, string> = {};
  if (error.kind === "unauthenticated") headers["www-authenticate"] = error.challenge ?? "Bearer";
  if (error.retryAfterSeconds !== undefined) {
    headers["retry-after"] = String(Math.max(1, Math.ceil(error.retryAfterSeconds)));
  }
  if (error.allow !== undefined) headers["allow"] = error.allow.join(", ");
  const generic = GENERIC_MESSAGES[error.kind];
  return {
    status: STATUS_BY_KIND[error.kind],
    message: generic ?? error.message,
    detailsLogged: generic !== undefined,
    headers,
    internal: error.kind === "internal",
  };
}

/** The object API's envelope (the source design's wire format): the code is the status as text. */
export function objectApiErrorBody(status: number, message: string): { error: { code: string; message: string } } {
  return { error: { code: String(status), message } };
}

/** The object API's (and cache administration's) errors: `{"error": {"code": "404", "message": ...}}`. */
export const renderObjectApiError: ErrorRenderer = (report) => ({
  contentType: "application/json; charset=utf-8",
  body: objectApiErrorBody(report.status, report.message),
});
