import type { ErrorKind } from "./errors.js";

/**
 * How an error reaches a client of one surface. The status comes from the one kind → status
 * table (`src/http/error-response.ts`); each ecosystem says how its clients expect the body:
 * plain text for curl, pip and apt; the OCI distribution spec's JSON for container clients;
 * npm's `{"error": "..."}` for npm, pnpm and yarn.
 */
export interface ErrorReport {
  readonly status: number;
  readonly kind: ErrorKind;
  /** A protocol's own error code, when the raiser named one (OCI's `NAME_UNKNOWN`). */
  readonly code: string | undefined;
  /** Safe to show the client. */
  readonly message: string;
  /** The request's path, without the query. */
  readonly path: string;
}

export interface RenderedError {
  readonly contentType: string;
  /** A string is sent as is; anything else as JSON. */
  readonly body: unknown;
  /** Headers the surface sends with every error (OCI's `Docker-Distribution-API-Version`). */
  readonly headers?: Readonly<Record<string, string>> | undefined;
}

export type ErrorRenderer = (report: ErrorReport) => RenderedError;

/** `404 not found: <message>` as text: what curl, wget, pip and apt users read. */
export const renderPlainError: ErrorRenderer = (report) => ({
  contentType: "text/plain; charset=utf-8",
  body: `${report.status} ${report.kind.replaceAll("_", " ")}: ${report.message}\n`,
});
