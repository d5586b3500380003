import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from "node:http";
import type { FastifyBaseLogger } from "fastify";
import { levels } from "pino";
import { CONTENT_SECURITY_POLICY, isServedAsAttachment } from "./representation.js";

/**
 * What the lanes that answer from memory before the web framework share (`held-hits.ts` for
 * cache hits, `held-object-lane.ts` for the object API): which requests they leave to the
 * framework, and the headers of a body answered whole.
 */

/**
 * Request headers that ask for more than "the whole thing, now": ranges and conditions are
 * answered on the framework's path (`sendRepresentation`), which implements them.
 */
const NEEDS_THE_FULL_PATH = ["range", "if-none-match", "if-modified-since", "if-range", "if-match", "if-unmodified-since"] as const;

export interface LaneGate {
  /** True once the server is closing: the framework then answers 503. */
  readonly closing: () => boolean;
  /**
   * True while the server has not yet warned that requests come with an X-Forwarded-For that
   * `trust_proxy` does not cover: such a request goes to the framework, which says so once.
   */
  readonly forwardWarningDue?: (() => boolean) | undefined;
}

/**
 * The method of a request a lane may answer, as far as the method, the conditions and the
 * server's state go — a GET or HEAD asking for the whole body, while the server is not closing —
 * or undefined: the framework answers it.
 */
export function laneMethod(request: IncomingMessage, gate: LaneGate): "GET" | "HEAD" | undefined {
  const method = request.method;
  if (method !== "GET" && method !== "HEAD") return undefined;
  const headers = request.headers;
  for (const name of NEEDS_THE_FULL_PATH) if (headers[name] !== undefined) return undefined;
  if (headers["x-forwarded-for"] !== undefined && gate.forwardWarningDue?.() === true) return undefined;
  return gate.closing() ? undefined : method;
}

export interface WholeBody {
  readonly contentType: string | undefined;
  /** A document meant for a browser (an index page): inline even when it is HTML. */
  readonly browsable: boolean;
  readonly etag: string;
  readonly lastModified: Date;
  readonly size: number;
}

/**
 * The headers `sendRepresentation` answers a whole body with, in its order: the type and the
 * content safety headers, the validators, ranges accepted, the length.
 */
export function wholeBodyHeaders(body: WholeBody): OutgoingHttpHeaders {
  const contentType = body.contentType ?? "application/octet-stream";
  const headers: OutgoingHttpHeaders = { "content-type": contentType };
  headers["x-content-type-options"] = "nosniff";
  headers["content-security-policy"] = CONTENT_SECURITY_POLICY;
  if (isServedAsAttachment(contentType, body.browsable)) headers["content-disposition"] = "attachment";
  headers["etag"] = body.etag;
  headers["last-modified"] = body.lastModified.toUTCString();
  headers["accept-ranges"] = "bytes";
  headers["content-length"] = body.size;
  return headers;
}

/** Sends a 200 with `headers` and, for a GET, `contents`, in one `writeHead` + `end`. */
export function sendWhole(response: ServerResponse, method: "GET" | "HEAD", headers: OutgoingHttpHeaders, contents: Buffer): void {
  response.writeHead(200, headers);
  if (method === "HEAD") response.end();
  else response.end(contents);
}

const INFO_LEVEL = levels.values["info"] ?? 30;

/** Whether the access log writes info lines: its fields are built only then. */
export function logsRequests(accessLog: FastifyBaseLogger): boolean {
  return (levels.values[accessLog.level] ?? INFO_LEVEL) <= INFO_LEVEL;
}

/** Whole milliseconds since `started` (`process.hrtime.bigint()`), as the access log's `ms`. */
export function millisecondsSince(started: bigint): number {
  return Math.round(Number(process.hrtime.bigint() - started) / 1e6);
}
