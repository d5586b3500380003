/**
 * The one error type domain code raises. It carries a kind, never an HTTP status: each surface
 * (object API, proxy routes, registry routes) turns kinds into responses in one place
 * (`src/http/error-response.ts`).
 */
export type ErrorKind =
  | "bad_request"
  | "unauthenticated"
  | "forbidden"
  | "not_found"
  | "method_not_allowed"
  | "not_acceptable"
  | "conflict"
  | "precondition_failed"
  | "payload_too_large"
  /** The client took too long to send its request (`request_timeout`, `body_timeout`, the headers' 60 s). */
  | "request_timeout"
  /** The request's headers are larger than the server takes. */
  | "headers_too_large"
  /** The store is out of space (a full disk): not the client's fault, and not worth a retry soon. */
  | "insufficient_storage"
  | "checksum_mismatch"
  | "range_not_satisfiable"
  | "rate_limited"
  | "not_supported"
  | "upstream_failed"
  | "upstream_timeout"
  | "unavailable"
  | "internal";

export interface VaultErrorOptions {
  readonly cause?: unknown;
  /** Seconds a client should wait before retrying (rate_limited, unavailable). */
  readonly retryAfterSeconds?: number;
  /** For method_not_allowed: the methods the resource does support. */
  readonly allow?: readonly string[];
  /** For unauthenticated: the auth scheme to challenge with. */
  readonly challenge?: string;
  /** A protocol's own error code where it has finer ones than the kind (OCI's `NAME_INVALID`). */
  readonly code?: string;
}

export class VaultError extends Error {
  readonly kind: ErrorKind;
  readonly retryAfterSeconds: number | undefined;
  readonly allow: readonly string[] | undefined;
  readonly challenge: string | undefined;
  readonly code: string | undefined;

  constructor(kind: ErrorKind, message: string, options: VaultErrorOptions = {}) {
    // Every kind but `internal` is an answer (a 404, a 429, an upstream's failure), said by its
    // message and cause: no stack trace, whose capture cost more than the rest of a refused
    // request (a tenth of a 429's time under a flood). A bug keeps its stack.
    const stackTraceLimit = Error.stackTraceLimit;
    if (kind !== "internal") Error.stackTraceLimit = 0;
    try {
      super(message, options.cause === undefined ? undefined : { cause: options.cause });
    } finally {
      Error.stackTraceLimit = stackTraceLimit;
    }
    this.name = "VaultError";
    this.kind = kind;
    this.retryAfterSeconds = options.retryAfterSeconds;
    this.allow = options.allow;
    this.challenge = options.challenge;
    this.code = options.code;
  }
}

export function isVaultError(error: unknown, kind?: ErrorKind): error is VaultError {
  return error instanceof VaultError && (kind === undefined || error.kind === kind);
}
