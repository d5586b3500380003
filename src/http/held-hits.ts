import { clientAddress } from "./client-address.js";
import type { TrustFunction } from "../core/config/trust-proxy.js";
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from "node:http";
import type { FastifyBaseLogger } from "fastify";
import { META, type ArtifactCache, type HeldHit } from "../cache/artifact-cache.js";
import type { ArtifactRef } from "../core/cache/artifact-ref.js";
import type { HttpObserver } from "../metrics/vault-metrics.js";
import { isRedirect, type Backend } from "../upstreams/backend.js";
import { proxyRequestOf } from "./proxy-routes.js";
import type { RedirectHits } from "./redirect-hits.js";
import { laneMethod, logsRequests, millisecondsSince, sendWhole, wholeBodyHeaders, type LaneGate } from "./memory-lanes.js";
import { requestIdFrom } from "./request-id.js";
import { redactUrl } from "./url-redaction.js";

/** Resolutions kept by the lane. */
const RESOLVED_LIMIT = 10_000;

export interface HeldHitLaneOptions extends LaneGate {
  readonly backends: readonly Backend[];
  readonly cache: ArtifactCache;
  /** Where each answer's access-log line goes (the server's, so both paths log alike). */
  readonly accessLog: FastifyBaseLogger;
  /** `auth.proxy: token`: every proxy request authenticates, on the framework's path. */
  readonly requireToken: boolean;
  readonly redirectHits: RedirectHits | undefined;
  /** Told of each answer, as the framework's answers are (`metrics-route.ts`). */
  readonly requests?: HttpObserver | undefined;
  /** `trust_proxy`: the access log names the client as the framework's `request.ip` does. */
  readonly trustProxy?: TrustFunction | undefined;
}

/**
 * The vault's hottest answer without the web framework: a GET or HEAD of a proxy route whose
 * artifact is fresh, small and held in memory by the store (`ArtifactCache.heldHit`). It sends
 * exactly the headers and access-log line the framework's path would (`serve` →
 * `sendRepresentation`; tests compare them) in one `writeHead` + `end`, with no promise, hook,
 * router or stream on the way. Anything else — another route, a range or condition, a token to
 * check, a backend that rewrites its answers (`present`) or forwards requests, an artifact not
 * held — returns false and goes to the framework as before.
 *
 * Why: a 4 KiB hit through Fastify and the cache's async path cost about 5× what Node itself
 * needs to answer the same bytes (bench/README.md, "The Node ceiling").
 */
export function heldHitLane(options: HeldHitLaneOptions): (request: IncomingMessage, response: ServerResponse) => boolean {
  const { cache, accessLog } = options;
  const eligible = options.backends.filter((backend) => backend.present === undefined && backend.forward === undefined);
  /** The route each backend's requests count under: the framework's for its prefix. */
  const routes = new Map(eligible.map((backend) => [backend, `${backend.prefix}*`]));
  /**
   * Refs by method, URL and Accept: the built-in backends' `resolve` is a pure function of those
   * (a plugin's may read more, so its refs are not kept). Bounded; cleared when full.
   */
  const resolved = new Map<string, ArtifactRef>();
  /** A held entry's answer headers (all but the request id), for the ref they were built for. */
  const preparedHeaders = new WeakMap<HeldHit["info"], { readonly ref: ArtifactRef; readonly headers: OutgoingHttpHeaders }>();
  const remember = (key: string, ref: ArtifactRef): void => {
    if (resolved.size >= RESOLVED_LIMIT) resolved.clear();
    resolved.set(key, ref);
  };
  return (request, response) => {
    if (options.requireToken || eligible.length === 0) return false;
    const url = request.url;
    if (url === undefined || url.charCodeAt(0) !== 47 /* "/" */) return false;
    const backend = eligible.find((candidate) => url.startsWith(candidate.prefix));
    if (backend === undefined) return false;
    const method = laneMethod(request, options);
    if (method === undefined) return false;
    const headers = request.headers;
    const accept = headers["accept"];
    const memoKey = `${method}\0${url}\0${accept ?? ""}`;
    let ref = resolved.get(memoKey);
    if (ref === undefined) {
      let resolution;
      try {
        resolution = backend.resolve(proxyRequestOf(request, backend.prefix));
      } catch {
        return false; // the framework's path reports it
      }
      if (isRedirect(resolution)) return false;
      ref = resolution;
      if (backend.type !== "custom") remember(memoKey, ref);
    }
    const started = process.hrtime.bigint();
    const hit = cache.heldHit(ref, method !== "HEAD");
    if (hit === undefined) return false;
    const { info, contents } = hit;
    if (options.redirectHits !== undefined && info.size >= options.redirectHits.minSize && info.metadata[META.freshness] === "immutable") {
      // A redirect may be due: decided on the framework's path (no store that signs URLs holds
      // objects in memory today, so this is for one that might).
      return false;
    }
    const requestId = requestIdFrom(headers["x-request-id"]);
    // The same entry answered for the same ref has the same headers but its request id: built
    // once, then copied (a copy of a fast object is cheap; building it with spreads is not).
    let prepared = preparedHeaders.get(info);
    if (prepared?.ref !== ref) {
      prepared = { ref, headers: heldHitHeaders(ref, hit) };
      preparedHeaders.set(info, prepared);
    }
    const answer: OutgoingHttpHeaders = { "x-request-id": requestId, ...prepared.headers };
    options.requests?.request(method, routes.get(backend) ?? "", backend.name, 200);
    sendWhole(response, method, answer, contents);
    if (logsRequests(accessLog)) {
      const ms = millisecondsSince(started);
      // As the framework's hook logs it; no token: the lane answers only where none is asked for.
      const bytes = method === "HEAD" ? 0 : info.size;
      accessLog.info({ reqId: requestId, method, url: redactUrl(url), status: 200, cache: "HIT", bytes, backend: backend.name, ip: clientAddress(request, options.trustProxy), ms }, "request");
    }
    return true;
  };
}

/**
 * A held hit's answer headers after `x-request-id`, in the order the framework's path sets them
 * (`serve` → `sendRepresentation`).
 */
function heldHitHeaders(ref: ArtifactRef, hit: HeldHit): OutgoingHttpHeaders {
  const { info } = hit;
  return {
    ...ref.responseHeaders,
    ...hit.upstreamHeaders,
    "x-cache": "HIT",
    ...wholeBodyHeaders({ contentType: info.contentType, browsable: ref.browsable === true, etag: info.etag, lastModified: hit.lastModified, size: info.size }),
  };
}
