import { isVaultError } from "../core/errors.js";
import type { UpstreamAnswer } from "../core/cache/artifact-source.js";
import type { Backend } from "../upstreams/backend.js";

/**
 * Why an exchange with an upstream failed, for `artifact_vault_upstream_errors_total`:
 * - `timeout`: no answer (connecting, or waiting for the headers) or a body that stalled, within
 *   the backend's `timeout`;
 * - `failed`: no answer at all: refused or reset connections, DNS, too many redirects;
 * - `broken_body`: the answer's body broke off before its end;
 * - `status_5xx`: the upstream answered 5xx (after the retries of 502/503/504);
 * - `status_4xx`: it answered 4xx other than 404 and 410 (which say "no such artifact": answers,
 *   not failures): refused access, rate limiting, a bad request;
 * - `other`: anything else (an unfollowed redirect, a plugin's bug).
 */
export type UpstreamErrorKind = "timeout" | "failed" | "broken_body" | "status_5xx" | "status_4xx" | "other";
export const UPSTREAM_ERROR_KINDS: readonly UpstreamErrorKind[] = ["timeout", "failed", "broken_body", "status_5xx", "status_4xx", "other"];

export interface UpstreamObserver {
  /** One exchange of `backend` with its upstream got its answer's headers, or failed, after `seconds`. */
  upstreamRequest(backend: string, seconds: number): void;
  upstreamError(backend: string, kind: UpstreamErrorKind): void;
}

/**
 * A `Backend` whose upstream exchanges — the cache's fills, revalidations and resumed downloads
 * (`fetch`), and the requests it forwards uncached (`forward`) — are timed and classified for
 * `observer`, around the backend it wraps and without it knowing (a decorator, like
 * `confineBackend`). An exchange is one call: the upstream client's retries and redirects are
 * inside it, and so is any artifact the backend reads first through the cache (npm reads a
 * packument before a tarball). An exchange the vault itself gave up (the signal aborted: the
 * client of a forwarded request left, the vault is stopping) is timed but not an error.
 *
 * Every other member is the wrapped backend's, and an optional one the backend lacks stays
 * absent: callers decide things by their absence (`present`, `forward`).
 */
export function meteredBackend(backend: Backend, observer: UpstreamObserver): Backend {
  const name = backend.name;
  const exchanged = async (exchange: () => Promise<UpstreamAnswer>, signal: AbortSignal): Promise<UpstreamAnswer> => {
    const started = performance.now();
    let answer: UpstreamAnswer;
    try {
      answer = await exchange();
    } catch (error) {
      observer.upstreamRequest(name, (performance.now() - started) / 1000);
      const kind = signal.aborted ? undefined : failureKind(error);
      if (kind !== undefined) observer.upstreamError(name, kind);
      throw error;
    }
    observer.upstreamRequest(name, (performance.now() - started) / 1000);
    const kind = statusKind(answer.status);
    if (kind !== undefined) observer.upstreamError(name, kind);
    // Only counts: whoever reads the body still sees (and must handle) its error.
    answer.body.on("error", (error) => {
      const broken = signal.aborted ? undefined : bodyFailureKind(error);
      if (broken !== undefined) observer.upstreamError(name, broken);
    });
    return answer;
  };
  const forward = backend.forward?.bind(backend);
  return {
    type: backend.type,
    name,
    prefix: backend.prefix,
    mounts: backend.mounts,
    resolve: (request) => backend.resolve(request),
    fetch: (ref, validators, signal, resume) => exchanged(() => backend.fetch(ref, validators, signal, resume), signal),
    present: backend.present?.bind(backend),
    forward:
      forward === undefined
        ? undefined
        : (request) => {
            const exchange = forward(request);
            return exchange === undefined ? undefined : (signal) => exchanged(() => exchange(signal), signal);
          },
    clientsFollowRedirects: backend.clientsFollowRedirects?.bind(backend),
    close: () => backend.close(),
  };
}

/** An answer that is a failure, by its status; undefined for answers (200, 206, 304, 404, 410, ...). */
export function statusKind(status: number): UpstreamErrorKind | undefined {
  if (status >= 500) return "status_5xx";
  if (status === 404 || status === 410) return undefined;
  if (status >= 400) return "status_4xx";
  if (status >= 300 && status !== 304) return "other";
  return undefined;
}

/** A fetch that threw: the upstream client's kinds; `not_found` (a backend that found nothing to ask for) is none. */
function failureKind(error: unknown): UpstreamErrorKind | undefined {
  if (!isVaultError(error)) return "other";
  switch (error.kind) {
    case "upstream_timeout":
      return "timeout";
    case "upstream_failed":
      return "failed";
    case "not_found":
      return undefined;
    default:
      return "other";
  }
}

/** A body that failed: only the upstream's failures (a reader that stopped it is not one). */
function bodyFailureKind(error: unknown): UpstreamErrorKind | undefined {
  if (!isVaultError(error)) return undefined;
  if (error.kind === "upstream_timeout") return "timeout";
  if (error.kind === "upstream_failed") return "broken_body";
  return undefined;
}
