import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from "node:http";
import type { FastifyBaseLogger } from "fastify";
import type { TokenAuthenticator } from "../auth/token-authenticator.js";
import type { TrustFunction } from "../core/config/trust-proxy.js";
import type { HttpObserver } from "../metrics/vault-metrics.js";
import type { ObjectService } from "../objects/object-service.js";
import type { ObjectInfo } from "../storage/storage-driver.js";
import { clientAddress } from "./client-address.js";
import { laneMethod, logsRequests, millisecondsSince, sendWhole, wholeBodyHeaders, type LaneGate } from "./memory-lanes.js";
import { keyFromUrl, OBJECTS_PREFIX, OBJECT_ROUTE } from "./objects-routes.js";
import { requestIdFrom } from "./request-id.js";
import { redactUrl } from "./url-redaction.js";

export interface HeldObjectLaneOptions extends LaneGate {
  readonly objects: ObjectService;
  readonly authenticator: TokenAuthenticator;
  /** Where each answer's access-log line goes (the server's, so both paths log alike). */
  readonly accessLog: FastifyBaseLogger;
  /** Told of each answer, as the framework's answers are (`metrics-route.ts`). */
  readonly requests?: HttpObserver | undefined;
  /** `trust_proxy`: the access log names the client as the framework's `request.ip` does. */
  readonly trustProxy?: TrustFunction | undefined;
}

/**
 * The object API's hottest answer without the web framework: a GET or HEAD of an object the
 * store holds in memory (`ObjectService.readHeld`), asked for with a valid token that has the
 * `read` scope. It sends exactly the headers and access-log line the framework's path would
 * (`objects-routes.ts` → `sendRepresentation`; tests compare them) in one `writeHead` + `end`.
 * Everything else goes to the framework as before: another route or method, a range or
 * condition, a missing, unknown, expired or under-scoped token (refused there, and counted by
 * the failed-authentication limit), an object not held. Not used when rate limits are on: they
 * are counted on the framework's path.
 *
 * Why: a 4 KiB object GET through Fastify cost about twice what Node itself needs to answer the
 * same bytes with the same token check (bench/README.md, "The Node ceiling").
 */
export function heldObjectLane(options: HeldObjectLaneOptions): (request: IncomingMessage, response: ServerResponse) => boolean {
  const { objects, authenticator, accessLog } = options;
  /** A held object's answer headers (all but the request id), built once per version. */
  const preparedHeaders = new WeakMap<ObjectInfo, OutgoingHttpHeaders>();
  return (request, response) => {
    const url = request.url;
    if (url === undefined || !url.startsWith(OBJECTS_PREFIX)) return false;
    const method = laneMethod(request, options);
    if (method === undefined) return false;
    const headers = request.headers;
    let principal;
    let held;
    try {
      principal = authenticator.authenticate(headers.authorization);
      if (principal === undefined || !principal.scopes.has("read")) return false;
      held = objects.readHeld(keyFromUrl(url));
    } catch {
      return false; // refused on the framework's path, which counts and reports it
    }
    if (held === undefined) return false;
    const started = process.hrtime.bigint();
    const { info, contents } = held;
    const requestId = requestIdFrom(headers["x-request-id"]);
    let prepared = preparedHeaders.get(info);
    if (prepared === undefined) {
      prepared = wholeBodyHeaders({ contentType: info.contentType, browsable: false, etag: info.etag, lastModified: info.modifiedAt, size: info.size });
      preparedHeaders.set(info, prepared);
    }
    const answer: OutgoingHttpHeaders = { "x-request-id": requestId, ...prepared };
    options.requests?.request(method, OBJECT_ROUTE, "", 200);
    sendWhole(response, method, answer, contents);
    if (logsRequests(accessLog)) {
      const ms = millisecondsSince(started);
      const bytes = method === "HEAD" ? 0 : info.size;
      // As the framework's hook logs it: the token's name, never the token.
      accessLog.info({ reqId: requestId, method, url: redactUrl(url), status: 200, bytes, ip: clientAddress(request, options.trustProxy), token: principal.name, ms }, "request");
    }
    return true;
  };
}
