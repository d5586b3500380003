/**
 * A second nginx access log with what apt's requests look like on the wire: the request line as
 * sent (absolute-form through a proxy), Host, and the conditional, range and cache headers.
 * Pass `headerLogging(dir)`'s `httpExtra` and `serverExtra` to `startNginx` (with the same
 * `dir`); the standard log (`nginx.requests()`) keeps working.
 */
import { join } from "node:path";
import { readOr } from "../process.js";

export interface HeaderLoggedRequest {
  /** The request line as received (`GET /debian/dists/bookworm/InRelease HTTP/1.1`). */
  readonly request: string;
  readonly method: string;
  /** Decoded, without the query (nginx's `$uri`). */
  readonly uri: string;
  /** As sent, with the query (nginx's `$request_uri`). */
  readonly requestUri: string;
  readonly status: number;
  readonly bytesSent: number;
  /** The following are "" when the header was absent. */
  readonly host: string;
  readonly ifModifiedSince: string;
  readonly ifNoneMatch: string;
  readonly ifRange: string;
  readonly range: string;
  readonly cacheControl: string;
  readonly pragma: string;
  readonly userAgent: string;
  readonly accept: string;
  readonly connection: string;
  /** nginx's connection serial number and the request's number on it (keep-alive reuse). */
  readonly connectionId: number;
  readonly connectionRequests: number;
}

export interface HeaderLogging {
  readonly httpExtra: string;
  readonly serverExtra: string;
  /** The log file. */
  readonly file: string;
}

/** nginx config for the header log, for an nginx started with `startNginx({ dir, ... })`. */
export function headerLogging(dir: string, extra: { httpExtra?: string; serverExtra?: string } = {}): HeaderLogging {
  const file = join(dir, "headers.log");
  const fields: Array<[keyof HeaderLoggedRequest, string, boolean]> = [
    ["request", "$request", false],
    ["method", "$request_method", false],
    ["uri", "$uri", false],
    ["requestUri", "$request_uri", false],
    ["status", "$status", true],
    ["bytesSent", "$body_bytes_sent", true],
    ["host", "$http_host", false],
    ["ifModifiedSince", "$http_if_modified_since", false],
    ["ifNoneMatch", "$http_if_none_match", false],
    ["ifRange", "$http_if_range", false],
    ["range", "$http_range", false],
    ["cacheControl", "$http_cache_control", false],
    ["pragma", "$http_pragma", false],
    ["userAgent", "$http_user_agent", false],
    ["accept", "$http_accept", false],
    ["connection", "$http_connection", false],
    ["connectionId", "$connection", true],
    ["connectionRequests", "$connection_requests", true],
  ];
  const json = fields.map(([name, variable, numeric]) => (numeric ? `"${name}":${variable}` : `"${name}":"${variable}"`)).join(",");
  return {
    file,
    httpExtra: `  log_format apt_headers escape=json '{${json}}';\n${extra.httpExtra ?? ""}`,
    // A server-level access_log replaces the inherited one, so the standard log is declared again.
    serverExtra: `    access_log ${join(dir, "access.log")} requests;\n    access_log ${file} apt_headers;\n${extra.serverExtra ?? ""}`,
  };
}

/** Everything logged so far, in order. */
export function readHeaderLog(file: string): HeaderLoggedRequest[] {
  return readOr(file)
    .split("\n")
    .filter((line) => line.trim() !== "")
    .map((line) => JSON.parse(line) as HeaderLoggedRequest);
}
