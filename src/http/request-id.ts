import { randomUUID } from "node:crypto";

/** A client's `X-Request-Id` is kept only if it is short and plain: it is echoed and logged. */
const CLIENT_REQUEST_ID = /^[A-Za-z0-9._-]{1,128}$/;

/**
 * The id of a request: the client's `X-Request-Id` when it is at most 128 characters of
 * `[A-Za-z0-9._-]` (so a proxy's or a client's id ties their logs to ours), otherwise a new UUID —
 * a header of kilobytes, or one carrying control characters or markup, is never echoed back.
 */
export function requestIdFrom(header: string | string[] | undefined): string {
  const value = Array.isArray(header) ? undefined : header;
  return value !== undefined && CLIENT_REQUEST_ID.test(value) ? value : randomUUID();
}
