import { randomUUID } from "node:crypto";
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyReply, type FastifyRequest } from "fastify";
import rateLimit from "@fastify/rate-limit";
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
import { registerProxyRoutes } from "./proxy-routes.js";
import { registerRegistryRoutes } from "./registry-routes.js";
import { registerAdminRoutes } from "./admin-routes.js";
import { rejectOtherMethods } from "./reject-methods.js";
import { CacheAdmin } from "../cache/cache-admin.js";
import type { ArtifactCache } from "../cache/artifact-cache.js";
import type { Backend } from "../upstreams/backend.js";
import { VERSION } from "../version.js";

declare module "fastify" {
  interface FastifyRequest {
    principal?: Principal;
  }
  interface FastifyContextConfig {
    /** The scope a route needs; routes without one are public. */
    scope?: Scope;
    /** How errors are rendered: the object API's JSON envelope unless a surface says otherwise (its backend type's renderer). */
    errors?: ErrorRenderer;
    /** The `WWW-Authenticate` challenge of a 401 (default: Bearer). */
    challenge?: string;
  }
}

const BEARER_CHALLENGE = 'Bearer realm="artifact-vault"';

export interface RateLimitSettings {
  readonly enabled: boolean;
  readonly perTokenPerMinute: number;
  readonly perIpPerMinute: number;
}

export interface ServerDependencies {
  readonly logger: FastifyBaseLogger;
  readonly authenticator: TokenAuthenticator;
  readonly objects: ObjectService;
  readonly rateLimit: RateLimitSettings;
  /** The vault's face: proxy routes per backend over the artifact cache. */
  readonly vault?: { readonly backends: readonly Backend[]; readonly cache: ArtifactCache; readonly requireToken: boolean };
}

/** Builds the HTTP edge. Routes are thin adapters; errors become responses in one handler. */
export async function buildServer(deps: ServerDependencies): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: deps.logger,
    // One compact line per request comes from our onResponse hook instead.
    logController: new LogController({ disableRequestLogging: true }),
    requestIdHeader: "x-request-id",
    genReqId: () => randomUUID(),
    exposeHeadRoutes: false,
    // Object keys are long, percent-encoded paths.
    routerOptions: { maxParamLength: 16 * 1024 },
    return503OnClosing: true,
    // apt's proxy mode sends absolute-form requests (`GET http://mirror/debian/...`): those for a
    // configured mirror are mapped onto its backend's prefix, every other one refused.
    rewriteUrl: forwardProxyRewriter(deps.vault?.backends ?? []),
    frameworkErrors: (error, _request, reply) => {
      void sendError(reply, new VaultError("bad_request", `bad request: ${error.message}`));
    },
  });

  // Bodies are streamed by the routes that take them; nothing is parsed or buffered here.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser("*", (_request, _payload, done) => done(null));

  app.addHook("onRequest", async (request, reply) => {
    reply.header("x-request-id", request.id);
    const scope = request.routeOptions.config.scope;
    if (scope === undefined) return;
    const challenge = request.routeOptions.config.challenge ?? BEARER_CHALLENGE;
    let principal: Principal | undefined;
    try {
      // In apt's proxy mode the credentials come as the proxy's (`http://user:token@vault:8080/`).
      const proxied = request.originalUrl !== request.url && request.headers.authorization === undefined;
      principal = deps.authenticator.authenticate(proxied ? header(request, "proxy-authorization") : request.headers.authorization);
    } catch (error) {
      if (error instanceof VaultError && error.kind === "unauthenticated") throw new VaultError("unauthenticated", error.message, { challenge });
      throw error;
    }
    if (principal === undefined) throw new VaultError("unauthenticated", "missing credentials: send a token", { challenge });
    requireScope(principal, scope);
    request.principal = principal;
  });

  app.addHook("onResponse", async (request, reply) => {
    request.log.info(
      { method: request.method, url: request.url, status: reply.statusCode, ms: Math.round(reply.elapsedTime) },
      "request",
    );
  });

  app.setErrorHandler(async (error, request, reply) => {
    const failure = asVaultError(error);
    const response = toErrorResponse(failure);
    if (response.internal) request.log.error({ err: error }, "internal error");
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

  if (deps.rateLimit.enabled) {
    await app.register(rateLimit, {
      hook: "preHandler",
      timeWindow: 60_000,
      max: async (request: FastifyRequest) =>
        request.principal === undefined || request.principal.anonymous ? deps.rateLimit.perIpPerMinute : deps.rateLimit.perTokenPerMinute,
      keyGenerator: (request: FastifyRequest) =>
        request.principal === undefined || request.principal.anonymous ? `ip:${request.ip}` : `token:${request.principal.name}`,
      errorResponseBuilder: (_request, context) =>
        new VaultError("rate_limited", `rate limit exceeded: ${context.max} requests per minute`, {
          retryAfterSeconds: Math.max(1, Math.ceil(context.ttl / 1000)),
        }),
    });
  }

  app.route({
    method: ["GET", "HEAD"],
    url: "/health",
    config: { rateLimit: false },
    handler: async () => ({ status: "healthy", service: "artifact-vault", version: VERSION }),
  });
  rejectOtherMethods(app, "/health", ["GET", "HEAD"]);

  registerObjectRoutes(app, deps.objects);
  registerForwardProxyRefusal(app);
  if (deps.vault !== undefined) {
    registerProxyRoutes(app, deps.vault.backends, deps.vault.cache, { requireToken: deps.vault.requireToken });
    registerRegistryRoutes(app, deps.vault.backends, deps.vault.cache, { requireToken: deps.vault.requireToken });
    registerAdminRoutes(app, new CacheAdmin(deps.vault.cache, deps.vault.backends));
  }
  return app;
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
  const rendered = render({ status: response.status, kind: error.kind, code: error.code, message: response.message, path: pathOf(reply.request) });
  if (rendered.headers !== undefined) reply.headers(rendered.headers);
  return reply.code(response.status).headers(response.headers).type(rendered.contentType).send(rendered.body);
}

function header(request: FastifyRequest, name: string): string | undefined {
  const value = request.headers[name];
  return Array.isArray(value) ? value.join(", ") : value;
}

function pathOf(request: FastifyRequest): string {
  const query = request.url.indexOf("?");
  return query === -1 ? request.url : request.url.slice(0, query);
}
