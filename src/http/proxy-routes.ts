import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { VaultError } from "../core/errors.js";
import type { ArtifactCache, CachedArtifact } from "../cache/artifact-cache.js";
import { isRedirect, type Backend, type ProxyRequest } from "../upstreams/backend.js";
import { decideRange, etagMatches } from "./http-range.js";

export interface ProxyRouteOptions {
  /** `auth.proxy: token`: proxy routes need a read-scoped token (bearer or basic password). */
  readonly requireToken: boolean;
}

/**
 * `GET`/`HEAD {prefix}*` for each backend: resolve → cache → serve, with plain-text errors.
 * Proxy routes are not rate-limited: the cache already protects the upstream (one fetch per
 * artifact), and throttling a build's hundreds of package downloads would defeat the cache.
 */
export function registerProxyRoutes(app: FastifyInstance, backends: readonly Backend[], cache: ArtifactCache, options: ProxyRouteOptions): void {
  for (const backend of backends) {
    const config = {
      rateLimit: false,
      errorFormat: backend.errorFormat ?? "plain",
      challenge: 'Basic realm="artifact-vault"',
      ...(options.requireToken ? { scope: "read" as const } : {}),
    } as const;
    app.route({
      method: ["GET", "HEAD"],
      url: `${backend.prefix}*`,
      config,
      handler: async (request, reply) => serve(request, reply, backend, cache, toProxyRequest(request, backend.prefix)),
    });
    app.route({
      method: ["PUT", "POST", "PATCH", "DELETE", "OPTIONS"],
      url: `${backend.prefix}*`,
      config,
      handler: async (request) => {
        throw new VaultError("method_not_allowed", `${request.method} is not allowed: ${backend.prefix} is a read-only cache`, { allow: ["GET", "HEAD"] });
      },
    });
  }
}

/** Resolve → cache → serve, for a request already mapped to a path below the backend. */
export async function serve(request: FastifyRequest, reply: FastifyReply, backend: Backend, cache: ArtifactCache, proxyRequest: ProxyRequest): Promise<FastifyReply> {
  if (backend.errorFormat === "oci") reply.header("docker-distribution-api-version", "registry/2.0");
  const resolution = backend.resolve(proxyRequest);
  if (isRedirect(resolution)) return reply.code(resolution.status).header("location", resolution.redirect).send();
  const ref = resolution;
  const artifact = await cache.get(ref, backend.fetch);
  if (ref.responseHeaders !== undefined) reply.headers(ref.responseHeaders);
  let handedOver = false;
  try {
    reply.headers(artifact.upstreamHeaders);
    // Registry clients need the digest of what they got, also for a tag whose registry did not say.
    if (backend.errorFormat === "oci" && !reply.hasHeader("docker-content-digest") && artifact.etag !== undefined) {
      reply.header("docker-content-digest", `sha256:${artifact.etag.replaceAll('"', "")}`);
    }
    reply.header("x-cache", artifact.status);
    reply.header("content-type", artifact.contentType ?? "application/octet-stream");
    if (artifact.etag !== undefined) reply.header("etag", artifact.etag);
    if (artifact.lastModified !== undefined) reply.header("last-modified", artifact.lastModified.toUTCString());
    if (artifact.size !== undefined) reply.header("accept-ranges", "bytes");
    if (artifact.etag !== undefined && etagMatches(header(request, "if-none-match"), artifact.etag)) {
      return await reply.code(304).send();
    }
    const range = chooseRange(request, reply, artifact);
    if (request.method === "HEAD") return await reply.send();
    handedOver = true;
    if (artifact.contents !== undefined) {
      return await reply.send(range === undefined ? artifact.contents : artifact.contents.subarray(range.start, range.end + 1));
    }
    return await reply.send(artifact.body(range));
  } finally {
    if (!handedOver) artifact.release();
  }
}

/** Sets status and length headers; returns the range to send (undefined = everything). */
function chooseRange(request: FastifyRequest, reply: FastifyReply, artifact: CachedArtifact): { start: number; end: number } | undefined {
  const size = artifact.size;
  if (size === undefined) {
    reply.code(200);
    return undefined;
  }
  const ifRange = header(request, "if-range");
  const applies = ifRange === undefined || (artifact.etag !== undefined && ifRange === artifact.etag);
  const decision = request.method === "GET" && applies ? decideRange(header(request, "range"), size) : ({ kind: "full" } as const);
  if (decision.kind === "unsatisfiable") {
    reply.header("content-range", `bytes */${size}`);
    throw new VaultError("range_not_satisfiable", `range not satisfiable for ${size} bytes`);
  }
  if (decision.kind === "partial") {
    const { start, end } = decision.range;
    reply.code(206).header("content-range", `bytes ${start}-${end}/${size}`).header("content-length", end - start + 1);
    return decision.range;
  }
  reply.code(200).header("content-length", size);
  return undefined;
}

export function toProxyRequest(request: FastifyRequest, prefix: string): ProxyRequest {
  const url = request.url;
  const queryStart = url.indexOf("?");
  const path = queryStart === -1 ? url : url.slice(0, queryStart);
  const headers: Record<string, string | undefined> = {};
  for (const [name, value] of Object.entries(request.headers)) headers[name] = Array.isArray(value) ? value.join(", ") : value;
  return {
    method: request.method === "HEAD" ? "HEAD" : "GET",
    path: path.startsWith(prefix) ? path.slice(prefix.length) : "",
    query: queryStart === -1 ? "" : url.slice(queryStart + 1),
    headers,
  };
}

function header(request: FastifyRequest, name: string): string | undefined {
  const value = request.headers[name];
  return Array.isArray(value) ? value.join(", ") : value;
}
