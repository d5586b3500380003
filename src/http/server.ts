import type { TrustFunction } from "../core/config/trust-proxy.js";
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyReply, type FastifyRequest } from "fastify";
import rateLimit from "@fastify/rate-limit";
import type { Coordinator } from "../coordination/coordinator.js";
import { coordinatedRateLimitStore } from "./rate-limit-store.js";
import { levels } from "pino";
import { VaultError } from "../core/errors.js";
import type { Principal } from "../auth/principal.js";
import { requireScope } from "../auth/principal.js";
import type { TokenAuthenticator } from "../auth/token-authenticator.js";
import type { Scope } from "../auth/tokens-file.js";
import type { ObjectService } from "../objects/object-service.js";
import { renderObjectApiError, toErrorResponse } from "./error-response.js";
import type { ErrorRenderer } from "../core/error-rendering.js";
import { forwardProxyRewriter, registerForwardProxyRefusal } from "./forward-proxy.js";
import { registerObjectRoutes } from "./objects-routes.js";
import { heldHitLane } from "./held-hits.js";
import { heldObjectLane } from "./held-object-lane.js";
import { registerProxyRoutes } from "./proxy-routes.js";
import type { RedirectHits } from "./redirect-hits.js";
import { registerRegistryRoutes } from "./registry-routes.js";
import { registerAdminRoutes } from "./admin-routes.js";
import { registerAdminBackendsRoute } from "./admin-backends-route.js";
import type { UpstreamUrl } from "./client-snippets.js";
import { registerUiRoutes } from "./ui-routes.js";
import { rejectOtherMethods } from "./reject-methods.js";
import { requestIdFrom } from "./request-id.js";
import { LazyRequestLogger } from "./lazy-request-logger.js";
import { redactUrl } from "./url-redaction.js";
import { clientErrorResponder, HEADERS_TIMEOUT_MS, serverWithTimeouts } from "./client-errors.js";
import { errorRendererOf } from "../upstreams/backend-types.js";
import type { ServerResponse } from "node:http";
import type { Socket } from "node:net";
import { CacheAdmin, type FillsSource } from "../cache/cache-admin.js";
import type { ArtifactCache } from "../cache/artifact-cache.js";
import type { Backend } from "../upstreams/backend.js";
import { VERSION } from "../version.js";
import { registerMetricsRoute, type MetricsRouteOptions } from "./metrics-route.js";
import { registerApiDocs } from "./api-docs.js";
import { addSharedSchemas, healthSchema, readySchema, validationError } from "./route-schemas.js";
import type { Readiness } from "../core/readiness.js";

declare module "fastify" {
  interface FastifyRequest {
    principal?: Principal;
    /** The backend answering it, when a route learns it only from the path (several registries under `/v2/`). */
    backend?: string;
    /** `socket.bytesWritten` when it arrived: what the access log measures a cut-short body from. */
    sentBefore?: number;
  }
  interface FastifyContextConfig {
    /** The backend whose prefix the route serves (the access log's `backend`). */
    backend?: string;
    /** The scope a route needs; routes without one are public. */
    scope?: Scope;
    /** How errors are rendered: the object API's JSON envelope unless a surface says otherwise (its backend type's renderer). */
    errors?: ErrorRenderer;
    /** The `WWW-Authenticate` challenge of a 401 (default: Bearer). */
    challenge?: string;
  }
}

const BEARER_CHALLENGE = 'Bearer realm="artifact-vault"';
const FAILED_AUTH_WINDOW_MS = 60_000;

export interface RateLimitSettings {
  readonly enabled: boolean;
  readonly perTokenPerMinute: number;
  readonly perIpPerMinute: number;
}

export interface ServerDependencies {
  readonly logger: FastifyBaseLogger;
  /** What `GET /ready` reports (`readinessOf` in app.ts); absent: ready once listening. */
  readonly readiness?: Readiness | undefined;
  /** `request_timeout` and `body_timeout`: how long a request, and a pause in its body, may take. */
  readonly timeouts: { readonly requestMs: number; readonly bodyMs: number };
  readonly authenticator: TokenAuthenticator;
  readonly objects: ObjectService;
  readonly rateLimit: RateLimitSettings;
  /** Rate-limit windows (and `/health`'s account of coordination) come from here. */
  readonly coordinator: Coordinator;
  /** Which worker process this is, when the vault runs several (`/health` says). */
  readonly worker?: { readonly id: number; readonly count: number };
  /** `/metrics`, and what the edge counts for it; absent with `metrics.enabled: false`. */
  readonly metrics?: MetricsRouteOptions | undefined;
  /** `/docs` and the OpenAPI description (`docs.enabled`); on unless false. */
  readonly docs?: boolean | undefined;
  /** `trust_proxy`: whose `X-Forwarded-For` names the client (`request.ip`); undefined: nobody's. */
  readonly trustProxy?: TrustFunction | undefined;
  /** The vault's face: proxy routes per backend over the artifact cache. */
  readonly vault?: {
    readonly backends: readonly Backend[];
    readonly cache: ArtifactCache;
    readonly requireToken: boolean;
    /** `cache.redirect_hits` (`redirectHitsSettings`); undefined: every hit is served by the vault. */
    readonly redirectHits?: RedirectHits | undefined;
    /** Each backend's upstream URLs without credentials (`upstreamUrls`), for `/admin/backends`. */
    readonly upstreams?: ReadonlyMap<string, readonly UpstreamUrl[]> | undefined;
    /** The downloads in progress the admin routes list, when not the cache's own (`workers: N`: every worker's). */
    readonly fills?: FillsSource | undefined;
  };
}

/** Builds the HTTP edge. Routes are thin adapters; errors become responses in one handler. */
export async function buildServer(deps: ServerDependencies): Promise<FastifyInstance> {
  const rendererFor = errorRendererByPath(deps.vault?.backends ?? []);
  /** The response of the request each connection is answering, while it does. */
  const responses = new WeakMap<Socket, ServerResponse>();
  // The access log's fields are known to be clean (the URL goes through `redactUrl`): it skips
  // the logger's redaction, which costs more than the rest of the line (~4 µs per request).
  const accessLog = deps.logger.child({}, { redact: [] });
  let closing = false;
  // Behind a proxy without `trust_proxy`, every client has the proxy's address: said once (below).
  let untrustedForwardSeen = deps.trustProxy !== undefined;
  const laneGate = { closing: () => closing, forwardWarningDue: () => !untrustedForwardSeen };
  const heldHits =
    deps.vault === undefined
      ? undefined
      : heldHitLane({
          ...laneGate,
          backends: deps.vault.backends,
          cache: deps.vault.cache,
          accessLog,
          requireToken: deps.vault.requireToken,
          redirectHits: deps.vault.redirectHits,
          requests: deps.metrics?.observer,
          trustProxy: deps.trustProxy,
        });
  // Per-token limits are counted on the framework's path: with them on, every object request goes there.
  const heldObjects = deps.rateLimit.enabled
    ? undefined
    : heldObjectLane({ ...laneGate, objects: deps.objects, authenticator: deps.authenticator, accessLog, requests: deps.metrics?.observer, trustProxy: deps.trustProxy });
  const serverFactory = serverWithTimeouts({ requestMs: deps.timeouts.requestMs, headersMs: HEADERS_TIMEOUT_MS });
  const app = Fastify({
    // Hits and objects held in memory are answered before the framework (`held-hits.ts`,
    // `held-object-lane.ts`); the rest go on to it.
    serverFactory: (handler) =>
      serverFactory((request, response) => heldHits?.(request, response) === true || heldObjects?.(request, response) === true || handler(request, response)),
    clientErrorHandler: clientErrorResponder(deps.logger, rendererFor, (socket) => responses.get(socket)?.headersSent === true),
    loggerInstance: deps.logger,
    // `request.log` becomes a real child logger only when a request logs through it.
    childLoggerFactory: (logger, bindings, options) => new LazyRequestLogger(logger, bindings, options),
    // One compact line per request comes from our onResponse hook instead.
    logController: new LogController({ disableRequestLogging: true }),
    requestIdHeader: false,
    genReqId: (request) => requestIdFrom(request.headers["x-request-id"]),
    exposeHeadRoutes: false,
    // Object keys are long, percent-encoded paths.
    routerOptions: { maxParamLength: 16 * 1024 },
    return503OnClosing: true,
    // apt's proxy mode sends absolute-form requests (`GET http://mirror/debian/...`): those for a
    // configured mirror are mapped onto its backend's prefix, every other one refused.
    rewriteUrl: forwardProxyRewriter(deps.vault?.backends ?? []),
    // Per-address rate limits and the access log use `request.ip`: behind a proxy, the client's.
    ...(deps.trustProxy === undefined ? {} : { trustProxy: deps.trustProxy }),
    // Routes parse their parameters themselves; what Fastify's validation refuses is said like they say it.
    schemaErrorFormatter: validationError,
    frameworkErrors: (error, request, reply) => {
      void sendError(reply, new VaultError("bad_request", `bad request: ${error.message}`), rendererFor(pathOf(request)));
    },
  });

  app.addHook("preClose", async () => {
    closing = true;
  });

  // Bodies are streamed by the routes that take them; nothing is parsed or buffered here.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser("*", (_request, _payload, done) => done(null));

  // Failed authentication is throttled per address on every route that authenticates: past
  // `per_ip_per_minute` failures in a minute the address gets 429 instead of 401 until the minute
  // is over, so token guessing costs a minute per that many tries. Counted in the coordinator's
  // windows, so the limit holds across the workers (and the replicas) of the vault. Requests
  // with a valid token are never counted here.
  const failedAuthLimit = deps.rateLimit.enabled && deps.rateLimit.perIpPerMinute > 0 ? deps.rateLimit.perIpPerMinute : undefined;
  const refuse = async (request: FastifyRequest, message: string): Promise<VaultError> => {
    if (failedAuthLimit !== undefined) {
      const window = await deps.coordinator.rateHit(`failed-auth:${request.ip}`, FAILED_AUTH_WINDOW_MS);
      if (window.count > failedAuthLimit) {
        deps.metrics?.observer.rateLimited("failed_logins");
        const wait = Math.max(1, Math.ceil(window.resetInMs / 1000));
        return new VaultError("rate_limited", `too many failed authentications from this address: try again in ${wait} s`, { retryAfterSeconds: wait });
      }
    }
    return new VaultError("unauthenticated", message, { challenge: request.routeOptions.config.challenge ?? BEARER_CHALLENGE });
  };

  app.addHook("onRequest", async (request, reply) => {
    reply.header("x-request-id", request.id);
    if (!untrustedForwardSeen && request.headers["x-forwarded-for"] !== undefined) {
      untrustedForwardSeen = true;
      request.log.warn(
        { ip: request.ip },
        "requests come with X-Forwarded-For, which is ignored: per-address rate limits and the access log see the proxy's address for every client behind it; set trust_proxy to the proxy's address if it is yours",
      );
    }
    responses.set(request.raw.socket, reply.raw);
    request.sentBefore = request.raw.socket.bytesWritten;
    watchBody(request, deps.timeouts.bodyMs);
    const scope = request.routeOptions.config.scope;
    if (scope === undefined) return;
    let principal: Principal | undefined;
    try {
      // In apt's proxy mode the credentials come as the proxy's (`http://user:token@vault:8080/`).
      const proxied = request.originalUrl !== request.url && request.headers.authorization === undefined;
      principal = deps.authenticator.authenticate(proxied ? header(request, "proxy-authorization") : request.headers.authorization);
    } catch (error) {
      if (error instanceof VaultError && error.kind === "unauthenticated") throw await refuse(request, error.message);
      throw error;
    }
    if (principal === undefined) throw await refuse(request, "missing credentials: send a token");
    requireScope(principal, scope);
    request.principal = principal;
  });

  app.addHook("onResponse", async (request, reply) => {
    responses.delete(request.raw.socket);
    // Built only when it is logged: this runs for every request.
    if ((levels.values[accessLog.level] ?? 0) > INFO_LEVEL) return;
    const principal = request.principal;
    accessLog.info(
      {
        reqId: request.id,
        method: request.method,
        url: redactUrl(request.originalUrl),
        status: reply.statusCode,
        // The X-Cache of proxy answers (a 307 of redirect_hits is a HIT); absent elsewhere.
        cache: reply.getHeader("x-cache"),
        bytes: bodyBytesSent(request, reply),
        backend: request.backend ?? request.routeOptions.config.backend,
        ip: request.ip,
        // The token's name, never the token.
        token: principal === undefined || principal.anonymous ? undefined : principal.name,
        ms: Math.round(reply.elapsedTime),
      },
      "request",
    );
  });

  app.setErrorHandler(async (error, request, reply) => {
    const failure = asVaultError(error);
    const response = toErrorResponse(failure);
    if (response.internal) request.log.error({ err: error }, "internal error");
    else if (response.detailsLogged) request.log.warn({ kind: failure.kind, reason: failure.message, url: redactUrl(request.originalUrl) }, "upstream failed");
    // The store down (503) or full (507): the operator's business, so at the default level too.
    else if (response.status >= 500) request.log.warn({ kind: failure.kind, reason: failure.message, url: redactUrl(request.originalUrl) }, "request failed");
    else request.log.debug({ kind: failure.kind, message: failure.message }, "request failed");
    if (reply.sent || reply.raw.headersSent) {
      // Too late for a status: abort so the client sees a broken response, never a short one.
      reply.raw.destroy(error instanceof Error ? error : undefined);
      return;
    }
    return sendError(reply, failure, request.routeOptions.config.errors);
  });

  app.setNotFoundHandler(async (request, reply) => {
    return sendError(reply, new VaultError("not_found", `no route for ${request.method} ${pathOf(request)}`));
  });

  // The schemas routes reference (route-schemas.ts). Then `/docs`, before every route it describes
  // (it collects them as they are added) and before the rate limiter (its pages are not limited).
  addSharedSchemas(app);
  if (deps.docs !== false) await registerApiDocs(app);

  if (deps.rateLimit.enabled) {
    await app.register(rateLimit, {
      hook: "preHandler",
      timeWindow: 60_000,
      max: async (request: FastifyRequest) =>
        request.principal === undefined || request.principal.anonymous ? deps.rateLimit.perIpPerMinute : deps.rateLimit.perTokenPerMinute,
      store: coordinatedRateLimitStore(deps.coordinator),
      keyGenerator: (request: FastifyRequest) =>
        request.principal === undefined || request.principal.anonymous ? `ip:${request.ip}` : `token:${request.principal.name}`,
      errorResponseBuilder: (request, context) => {
        deps.metrics?.observer.rateLimited(request.principal === undefined || request.principal.anonymous ? "address" : "token");
        return new VaultError("rate_limited", `rate limit exceeded: ${context.max} requests per minute`, {
          retryAfterSeconds: Math.max(1, Math.ceil(context.ttl / 1000)),
        });
      },
    });
  }

  // Before every route: its hook counts each answer.
  if (deps.metrics !== undefined) registerMetricsRoute(app, deps.metrics);

  app.route({
    method: ["GET", "HEAD"],
    url: "/health",
    config: { rateLimit: false },
    schema: healthSchema,
    // A replica that lost its Redis still serves (alone): degraded, not down, so still 200.
    handler: async () => {
      const coordination = deps.coordinator.health();
      const degraded = coordination.mode === "redis" && coordination.redis === "down";
      return { status: degraded ? "degraded" : "healthy", service: "artifact-vault", version: VERSION, coordination, ...(deps.worker === undefined ? {} : { worker: { ...deps.worker, pid: process.pid } }) };
    },
  });
  rejectOtherMethods(app, "/health", ["GET", "HEAD"]);

  // 503 until the start-up work done in the background is over (see core/readiness.ts), then 200.
  app.route({
    method: ["GET", "HEAD"],
    url: "/ready",
    config: { rateLimit: false },
    schema: readySchema,
    handler: async (_request, reply) => {
      const report = deps.readiness?.report() ?? { ready: true, parts: {}, notReady: [] };
      reply.code(report.ready ? 200 : 503).header("cache-control", "no-store");
      return { status: report.ready ? "ready" : "not ready", service: "artifact-vault", not_ready: report.notReady, parts: report.parts };
    },
  });
  rejectOtherMethods(app, "/ready", ["GET", "HEAD"]);

  registerObjectRoutes(app, deps.objects);
  registerUiRoutes(app);
  registerForwardProxyRefusal(app);
  if (deps.vault !== undefined) {
    const routeOptions = { requireToken: deps.vault.requireToken, redirectHits: deps.vault.redirectHits };
    registerProxyRoutes(app, deps.vault.backends, deps.vault.cache, routeOptions);
    registerRegistryRoutes(app, deps.vault.backends, deps.vault.cache, routeOptions);
    registerAdminRoutes(app, new CacheAdmin(deps.vault.cache, deps.vault.backends, { fills: deps.vault.fills }));
    registerAdminBackendsRoute(app, { backends: deps.vault.backends, upstreams: deps.vault.upstreams ?? new Map(), coordinator: deps.coordinator, tokenRequired: deps.vault.requireToken });
  }
  return app;
}

const INFO_LEVEL = levels.values["info"] ?? 30;

/**
 * The body bytes a response sent, for the access log: none for a HEAD, a 204 or a 304; its
 * `Content-Length` when it went out whole; else (chunked, or cut short) what left the socket
 * since the request arrived, less the head — framing included, so close rather than exact.
 */
function bodyBytesSent(request: FastifyRequest, reply: FastifyReply): number {
  const status = reply.statusCode;
  if (request.method === "HEAD" || status === 204 || status === 304 || status < 200) return 0;
  const raw = reply.raw;
  // Fastify hands its headers to writeHead: they are the reply's, not the raw response's.
  const length = reply.getHeader("content-length");
  if (raw.writableFinished && length !== undefined) return Number(length);
  const head = (raw as unknown as { _header?: string | null })._header?.length ?? 0;
  // The request's socket: the response lets go of it once finished.
  return Math.max(0, request.raw.socket.bytesWritten - (request.sentBefore ?? 0) - head);
}

function asVaultError(error: unknown): VaultError {
  if (error instanceof VaultError) return error;
  // Errors fastify raises itself (malformed requests, closing server) carry a 4xx/503 status.
  const status = (error as { statusCode?: unknown } | null)?.statusCode;
  const message = error instanceof Error ? error.message : "request failed";
  if (status === 503) return new VaultError("unavailable", "the server is shutting down", { cause: error });
  if (typeof status === "number" && status >= 400 && status < 500) {
    const kind = status === 413 ? "payload_too_large" : status === 404 ? "not_found" : "bad_request";
    return new VaultError(kind, message, { cause: error });
  }
  return new VaultError("internal", "internal server error", { cause: error });
}

async function sendError(reply: FastifyReply, error: VaultError, render: ErrorRenderer = renderObjectApiError): Promise<FastifyReply> {
  const response = toErrorResponse(error);
  // A request body we refused is left unread; closing the connection spares draining it all.
  if (!reply.request.raw.complete) reply.header("connection", "close");
  const message = response.detailsLogged ? `${response.message} (request ${reply.request.id}; the vault's log has the details)` : response.message;
  const rendered = render({ status: response.status, kind: error.kind, code: error.code, message, path: pathOf(reply.request) });
  if (rendered.headers !== undefined) reply.headers(rendered.headers);
  return reply.code(response.status).headers(response.headers).type(rendered.contentType).send(rendered.body);
}

/**
 * A request body that sends nothing for `bodyMs` fails with `request_timeout`: the route reading
 * it stops as for any broken body, and the error handler answers 408 (in the route's format) and
 * closes the connection. Only while a body is arriving: a client waiting for an answer is never
 * timed out here.
 */
function watchBody(request: FastifyRequest, bodyMs: number): void {
  const raw = request.raw;
  const hasBody = raw.headers["transfer-encoding"] !== undefined || Number(raw.headers["content-length"] ?? 0) > 0;
  if (!hasBody || raw.complete) return;
  const onIdle = (): void => {
    stop();
    // An error event, not destroy(): destroying the request would close the socket before the 408.
    raw.emit("error", new VaultError("request_timeout", `the request body sent nothing for ${Math.round(bodyMs / 1000)} s`));
  };
  const socket = raw.socket;
  const stop = (): void => {
    if (!socket.destroyed) socket.setTimeout(0);
    raw.removeListener("timeout", onIdle);
  };
  // Set on the request, not the socket: Node then leaves the socket open for the 408 (a socket
  // timeout nobody answers for is destroyed at once).
  raw.setTimeout(bodyMs, onIdle);
  raw.once("end", stop);
  raw.once("close", stop);
}

function header(request: FastifyRequest, name: string): string | undefined {
  const value = request.headers[name];
  return Array.isArray(value) ? value.join(", ") : value;
}

function pathOf(request: FastifyRequest): string {
  const query = request.url.indexOf("?");
  return query === -1 ? request.url : request.url.slice(0, query);
}

/** Which error format a path's surface uses: its backend's (the registry API's under /v2/), else the object API's envelope. */
function errorRendererByPath(backends: readonly Backend[]): (path: string) => ErrorRenderer {
  const registry = backends.find((backend) => backend.mounts?.registryApi === true);
  const surfaces: Array<readonly [string, ErrorRenderer]> = backends.map((backend) => [backend.prefix, errorRendererOf(backend.type)]);
  if (registry !== undefined) surfaces.push(["/v2/", errorRendererOf(registry.type)]);
  return (path) => surfaces.find(([prefix]) => path.startsWith(prefix) || `${path}/` === prefix)?.[1] ?? renderObjectApiError;
}
