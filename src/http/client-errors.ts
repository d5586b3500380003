import { createServer, STATUS_CODES, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { Socket } from "node:net";
import type { FastifyBaseLogger } from "fastify";
import type { ErrorRenderer } from "../core/error-rendering.js";
import { VaultError } from "../core/errors.js";
import { toErrorResponse } from "./error-response.js";
import { requestIdFrom } from "./request-id.js";

/**
 * The edge below the routes: the HTTP server's timeouts, and the answers Node's parser gives
 * before any route runs (431 for headers too large, 400 for a malformed request, 408 for a
 * request that did not arrive in time) — in the same error format as the route the request was
 * for would use (the object API's envelope, a backend's own), never a framework's default body.
 */
export interface ServerTimeouts {
  /** `request_timeout`: the longest a whole request may take to arrive. */
  readonly requestMs: number;
  /** The longest the request line and headers may take (at most `requestMs`). */
  readonly headersMs: number;
}

/** The headers of a request must arrive within a minute (or `request_timeout` if shorter). */
export const HEADERS_TIMEOUT_MS = 60_000;

/**
 * The HTTP server with the timeouts set (Node checks them every `connectionsCheckingInterval`:
 * a quarter of the shortest, so a timeout of seconds is noticed within a second), for Fastify's
 * `serverFactory`.
 */
export function serverWithTimeouts(timeouts: ServerTimeouts): (handler: (request: IncomingMessage, response: ServerResponse) => void) => Server {
  return (handler) =>
    createServer(
      {
        requestTimeout: timeouts.requestMs,
        headersTimeout: Math.min(timeouts.headersMs, timeouts.requestMs),
        connectionsCheckingInterval: Math.max(100, Math.min(30_000, Math.floor(Math.min(timeouts.headersMs, timeouts.requestMs) / 4))),
        keepAliveTimeout: 72_000,
      },
      handler,
    );
}

interface ParserError extends Error {
  readonly code?: string;
  /** The bytes the parser gave up on (a Buffer from Node). */
  readonly rawPacket?: unknown;
}

/**
 * Fastify's `clientErrorHandler`: answers a request Node could not parse (or that timed out)
 * with the error format of the surface its path belongs to, then closes the connection. A
 * connection that already has a response on the way is just closed.
 */
export function clientErrorResponder(logger: FastifyBaseLogger, rendererFor: (path: string) => ErrorRenderer, responseStarted: (socket: Socket) => boolean) {
  return (error: ParserError, socket: Socket): void => {
    if (error.code === "ECONNRESET" || socket.destroyed) return;
    if (!socket.writable || responseStarted(socket)) {
      socket.destroy(error);
      return;
    }
    const failure = vaultErrorOf(error);
    const response = toErrorResponse(failure);
    const path = requestPathOf(error.rawPacket);
    const requestId = requestIdFrom(undefined);
    logger.debug({ reqId: requestId, code: error.code, status: response.status }, "client error before a route");
    const rendered = rendererFor(path)({ status: response.status, kind: failure.kind, code: failure.code, message: response.message, path });
    const body = typeof rendered.body === "string" ? rendered.body : JSON.stringify(rendered.body);
    const headers = {
      "content-type": rendered.contentType,
      "content-length": String(Buffer.byteLength(body)),
      "x-request-id": requestId,
      connection: "close",
      ...rendered.headers,
      ...response.headers,
    };
    const head = [`HTTP/1.1 ${response.status} ${STATUS_CODES[response.status] ?? ""}`, ...Object.entries(headers).map(([name, value]) => `${name}: ${value}`)];
    socket.end(`${head.join("\r\n")}\r\n\r\n${body}`);
    socket.destroySoon();
  };
}

function vaultErrorOf(error: ParserError): VaultError {
  switch (error.code) {
    case "ERR_HTTP_REQUEST_TIMEOUT":
      return new VaultError("request_timeout", "the request did not arrive in time");
    case "HPE_HEADER_OVERFLOW":
      return new VaultError("headers_too_large", "the request's headers are larger than the server takes");
    default:
      return new VaultError("bad_request", `malformed HTTP request${error.code === undefined ? "" : ` (${error.code})`}`);
  }
}

/** The path of the request line in the bytes the parser gave up on, for choosing the error format ("/" when unreadable). */
function requestPathOf(rawPacket: unknown): string {
  const line = Buffer.isBuffer(rawPacket) ? (rawPacket.subarray(0, 8192).toString("latin1").split("\r\n", 1)[0] ?? "") : "";
  const target = line.split(" ")[1] ?? "/";
  if (target.startsWith("/")) return target.split("?", 1)[0] ?? "/";
  try {
    return new URL(target).pathname;
  } catch {
    return "/";
  }
}
