import { VaultError, isVaultError } from "../core/errors.js";

/**
 * What an S3 SDK failure means for the driver, in one place. Nothing above the driver ever sees
 * an SDK error: each becomes a `VaultError` whose message names the store's problem (a missing
 * bucket, refused credentials, an unreachable endpoint) with the SDK error as its `cause`.
 */

interface SdkErrorShape {
  readonly name?: unknown;
  readonly code?: unknown;
  readonly message?: unknown;
  readonly $metadata?: { readonly httpStatusCode?: unknown };
  readonly Code?: unknown;
}

function shape(error: unknown): SdkErrorShape {
  return typeof error === "object" && error !== null ? error : {};
}

/** The HTTP status S3 answered, when it answered. */
export function s3Status(error: unknown): number | undefined {
  const status = shape(error).$metadata?.httpStatusCode;
  return typeof status === "number" ? status : undefined;
}

/** S3's error code (`NoSuchKey`, `PreconditionFailed`, ...), or the SDK's name for it. */
export function s3Code(error: unknown): string {
  const { name, Code, code } = shape(error);
  if (typeof Code === "string") return Code;
  if (typeof name === "string" && name !== "Error") return name;
  return typeof code === "string" ? code : "";
}

/** A missing object (GET's `NoSuchKey`, HEAD's bodiless 404) — not a missing bucket. */
export function isMissingObject(error: unknown): boolean {
  return s3Status(error) === 404 && !["NoSuchBucket", "NoSuchUpload"].includes(s3Code(error));
}

export function isMissingUpload(error: unknown): boolean {
  return s3Code(error) === "NoSuchUpload" || (s3Status(error) === 404 && s3Code(error) !== "NoSuchBucket");
}

/** A conditional write (or GET) whose condition did not hold. */
export function isPreconditionFailed(error: unknown): boolean {
  return s3Status(error) === 412 || s3Code(error) === "PreconditionFailed";
}

/** S3's 409 for two conditional writes of one key at the same moment: retry. */
export function isConditionalConflict(error: unknown): boolean {
  return s3Status(error) === 409 && s3Code(error) === "ConditionalRequestConflict";
}

/** A server that does not implement what was asked (a header, a sub-resource). */
export function isNotImplemented(error: unknown): boolean {
  const code = s3Code(error);
  return s3Status(error) === 501 || code === "NotImplemented" || code === "MethodNotAllowed";
}

export function isAbort(error: unknown): boolean {
  return shape(error).name === "AbortError";
}

const REFUSED = new Set(["AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken", "ExpiredToken", "AllAccessDisabled", "AccountProblem"]);
const NETWORK = new Set(["ECONNREFUSED", "ECONNRESET", "ENOTFOUND", "EAI_AGAIN", "ETIMEDOUT", "EPIPE", "EHOSTUNREACH", "ENETUNREACH", "TimeoutError", "RequestTimeout", "ERR_STREAM_PREMATURE_CLOSE"]);

/**
 * The VaultError for a failed S3 call. `what` says what the driver was doing, `where` names the
 * bucket (and endpoint) for the message.
 */
export function s3Error(error: unknown, what: string, where: string): VaultError {
  if (isVaultError(error)) return error;
  const status = s3Status(error);
  const code = s3Code(error);
  const message = typeof shape(error).message === "string" ? String(shape(error).message) : String(error);
  // A bodiless answer (HEAD) has no code of S3's: say its status instead.
  const detail = code === "" || code === "Unknown" ? `${status === undefined ? "" : `HTTP ${status}: `}${message}` : `${code}: ${message}`;
  const options = { cause: error };
  if (code === "NoSuchBucket") return new VaultError("unavailable", `the s3 bucket ${where} does not exist (${what})`, options);
  if (code === "CredentialsProviderError") {
    return new VaultError("unavailable", `no credentials for the s3 store ${where}: set s3_access_key and s3_secret_key, or the AWS environment, profile or role (${message})`, options);
  }
  if (REFUSED.has(code) || status === 403) {
    return new VaultError("unavailable", `the s3 store ${where} refused access (${what}: ${detail}); check the credentials and the bucket's policy`, options);
  }
  if (status === 507 || code === "XMinioStorageFull" || code === "QuotaExceeded") {
    return new VaultError("insufficient_storage", `the s3 store ${where} is full (${what}: ${detail})`, options);
  }
  if (code === "EntityTooLarge") return new VaultError("payload_too_large", `the s3 store ${where} refused the object as too large (${detail})`, options);
  if (code === "MetadataTooLarge") return new VaultError("bad_request", `the s3 store ${where} refused the object's metadata as too large (${detail})`, options);
  if (status === 416 || code === "InvalidRange") return new VaultError("range_not_satisfiable", `the range is not within the object (${detail})`, options);
  const network = status === undefined && (shape(error).$metadata !== undefined || NETWORK.has(code));
  if (network || (status !== undefined && (status >= 500 || status === 429)) || code === "SlowDown" || NETWORK.has(code)) {
    return new VaultError("unavailable", `the s3 store ${where} is unreachable or failing (${what}: ${detail})`, { ...options, retryAfterSeconds: 1 });
  }
  return new VaultError("internal", `the s3 store ${where} answered ${status ?? "nothing"} to ${what} (${detail})`, options);
}
