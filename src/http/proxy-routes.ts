import type { IncomingMessage } from "node:http";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { VaultError } from "../core/errors.js";
import type { ArtifactSource } from "../core/cache/artifact-source.js";
import type { ArtifactRef } from "../core/cache/artifact-ref.js";
import type { ErrorRenderer } from "../core/error-rendering.js";
import { isRedirect, type Backend, type ProxyRequest } from "../upstreams/backend.js";
import { errorRendererOf } from "../upstreams/backend-types.js";
import { redirectLocation, type RedirectHits } from "./redirect-hits.js";
import { readBody } from "./request-body.js";
import { sendRepresentation } from "./representation.js";

export interface ProxyRouteOptions {
  /** `auth.proxy: token`: proxy routes need a read-scoped token (bearer or basic password). */
  readonly requireToken: boolean;
  /** `cache.redirect_hits` (see `redirectHitsSettings`); undefined: every hit is served by the vault. */
  readonly redirectHits?: RedirectHits | undefined;
}

/** A forwarded request's body (npm's audit reports) is read whole, up to this size. */
const MAX_FORWARDED_BODY = 16 * 1024 * 1024;

/** Headers of a forwarded answer passed on to the client; the rest are the upstream's business. */
const FORWARDED_ANSWER_HEADERS = ["content-type", "content-encoding", "content-length", "cache-control", "etag", "last-modified", "vary", "npm-notice"];

/**
 * Every method on `{prefix}*` for each backend: requests the backend forwards (npm's audit and
 * search) go straight upstream; other GETs and HEADs are resolved → cached → served; other
 * methods are refused (405). Errors render as the backend's clients expect.
 * Proxy routes are not rate-limited: the cache already protects the upstream (one fetch per
 * artifact), and throttling a build's hundreds of package downloads would defeat the cache.
 */
export function registerProxyRoutes(app: FastifyInstance, backends: readonly Backend[], source: ArtifactSource, options: ProxyRouteOptions): void {
  for (const backend of backends) {
    app.route({
      method: ["GET", "HEAD", "PUT", "POST", "PATCH", "DELETE", "OPTIONS"],
      url: `${backend.prefix}*`,
      config: proxyRouteConfig(errorRendererOf(backend.type), options, backend.name),
      handler: async (request, reply) => {
        const proxyRequest = toProxyRequest(request, backend.prefix);
        // (A reply is thenable: `forward` answers whether it sent one, not the reply itself.)
        if (await forward(request, reply, backend, proxyRequest)) return reply;
        if (request.method !== "GET" && request.method !== "HEAD") {
          throw new VaultError("method_not_allowed", `${request.method} is not allowed: ${backend.prefix} is a read-only cache`, { allow: ["GET", "HEAD"] });
        }
        return serve(request, reply, backend, source, proxyRequest, options.redirectHits);
      },
    });
  }
}

/** The route config of a proxy surface: anonymous or read-scoped, errors in its clients' format, its backend for the access log. */
export function proxyRouteConfig(errors: ErrorRenderer, options: ProxyRouteOptions, backend?: string) {
  return {
    rateLimit: false,
    errors,
    ...(backend === undefined ? {} : { backend }),
    // pip, npm, apt and container clients answer a Basic challenge with their configured login.
    challenge: 'Basic realm="artifact-vault"',
    ...(options.requireToken ? { scope: "read" as const } : {}),
  } as const;
}

/**
 * Resolve → cache → present → serve, for a request already mapped to a path below the backend.
 * With `redirectHits`, a large stored hit may instead be a `307` to the store (`redirectLocation`).
 */
export async function serve(
  request: FastifyRequest,
  reply: FastifyReply,
  backend: Backend,
  source: ArtifactSource,
  proxyRequest: ProxyRequest,
  redirectHits?: RedirectHits,
): Promise<FastifyReply> {
  const resolution = backend.resolve(proxyRequest);
  if (isRedirect(resolution)) return reply.code(resolution.status).header("location", resolution.redirect).send();
  // The cache's log lines about this request (a stale copy, the download it starts) carry its id.
  const ref: ArtifactRef = { ...resolution, requestId: request.id };
  const cached = await source.get(ref, backend.fetch);
  let artifact = cached;
  try {
    if (backend.present !== undefined) artifact = backend.present(cached, ref, proxyRequest);
  } catch (error) {
    cached.release();
    throw error;
  }
  if (ref.responseHeaders !== undefined) reply.headers(ref.responseHeaders);
  reply.headers(artifact.upstreamHeaders);
  reply.header("x-cache", artifact.status);
  const location = await redirectLocation(request, backend, ref, artifact, redirectHits);
  if (location !== undefined) {
    artifact.release();
    // The URL expires: neither the client nor a cache in between may keep the redirect.
    return reply.code(307).header("location", location).header("cache-control", "no-store").send();
  }
  return sendRepresentation(request, reply, { ...artifact, browsable: ref.browsable });
}

/** Sends the upstream's answer to a request the backend forwards; false when it does not forward it. */
async function forward(request: FastifyRequest, reply: FastifyReply, backend: Backend, proxyRequest: ProxyRequest): Promise<boolean> {
  if (backend.forward === undefined) return false;
  const hasBody = request.method !== "GET" && request.method !== "HEAD";
  const body = hasBody ? await readBody(request.raw, MAX_FORWARDED_BODY) : undefined;
  const exchange = backend.forward({ ...proxyRequest, body });
  if (exchange === undefined) return false;
  // The upstream exchange is this client's alone: it ends when the client goes.
  const controller = new AbortController();
  reply.raw.once("close", () => controller.abort(new VaultError("unavailable", "the client went away")));
  const answer = await exchange(controller.signal);
  reply.code(answer.status);
  for (const name of FORWARDED_ANSWER_HEADERS) {
    const value = answer.headers[name];
    if (value !== undefined) reply.header(name, value);
  }
  reply.header("x-cache", "BYPASS");
  if (request.method === "HEAD") {
    answer.body.destroy();
    await reply.send();
  } else {
    await reply.send(answer.body);
  }
  return true;
}

export function toProxyRequest(request: FastifyRequest, prefix: string): ProxyRequest {
  return proxyRequestOf(request.raw, prefix);
}

/** The request as a backend sees it, from Node's own (`url` as routed: after apt's proxy-mode rewrite). */
export function proxyRequestOf(raw: IncomingMessage, prefix: string): ProxyRequest {
  const url = raw.url ?? "/";
  const queryStart = url.indexOf("?");
  const path = queryStart === -1 ? url : url.slice(0, queryStart);
  const headers: Record<string, string | undefined> = {};
  for (const [name, value] of Object.entries(raw.headers)) headers[name] = Array.isArray(value) ? value.join(", ") : value;
  return {
    method: raw.method ?? "GET",
    path: path.startsWith(prefix) ? path.slice(prefix.length) : "",
    query: queryStart === -1 ? "" : url.slice(queryStart + 1),
    headers,
    baseUrl: `${clientFacingOrigin(raw)}${prefix.slice(0, -1)}`,
  };
}

const HOST = /^(?:[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$/;

/**
 * The vault's origin as this client reached it: `X-Forwarded-Proto`/`X-Forwarded-Host` (set by a
 * TLS-terminating proxy in front), else the connection's scheme and `Host`. A value that is not a
 * plain host name falls back to the address the client connected to. A client can only ever
 * steer the links in its own answer this way: nothing built from it is cached.
 */
export function clientFacingOrigin(request: IncomingMessage): string {
  const forwardedProto = firstValue(request.headers["x-forwarded-proto"])?.toLowerCase();
  const scheme = forwardedProto === "https" || forwardedProto === "http" ? forwardedProto : "encrypted" in request.socket ? "https" : "http";
  const candidates = [firstValue(request.headers["x-forwarded-host"]), firstValue(request.headers.host)];
  const host = candidates.find((candidate) => candidate !== undefined && HOST.test(candidate));
  if (host !== undefined) return `${scheme}://${host}`;
  const local = request.socket.localAddress ?? "127.0.0.1";
  return `${scheme}://${local.includes(":") ? `[${local}]` : local}:${request.socket.localPort ?? 80}`;
}

function firstValue(value: string | string[] | undefined): string | undefined {
  const text = Array.isArray(value) ? value[0] : value;
  const first = text?.split(",")[0]?.trim();
  return first === undefined || first === "" ? undefined : first;
}
