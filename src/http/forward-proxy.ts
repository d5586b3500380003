import type { IncomingMessage } from "node:http";
import type { FastifyInstance } from "fastify";
import { VaultError } from "../core/errors.js";
import type { Backend } from "../upstreams/backend.js";

/** Where a forward-proxy request for a URL the vault does not mirror is routed: a refusal. */
export const REFUSED_PROXY_PATH = "/-/vault/proxy-refused";

/**
 * Maps absolute-form requests (`GET http://deb.debian.org/debian/dists/... HTTP/1.1`, what apt
 * sends to a proxy) onto the backend whose mirror URL they fall under: `{prefix}{rest}`. Any
 * other absolute URL goes to a refusal, without a request to its host: the vault is not an open
 * proxy. Origin-form requests (`GET /path`) pass unchanged.
 */
export function forwardProxyRewriter(backends: readonly Backend[]): (request: IncomingMessage) => string {
  const mirrors = backends.flatMap((backend) =>
    (backend.mounts?.forwardProxy ?? []).map((base) => ({
      origin: base.origin,
      path: base.pathname.endsWith("/") ? base.pathname : `${base.pathname}/`,
      prefix: backend.prefix,
    })),
  );
  return (request) => {
    const url = request.url ?? "/";
    if (url.startsWith("/")) return url;
    let target: URL;
    try {
      target = new URL(url);
    } catch {
      return REFUSED_PROXY_PATH;
    }
    if (target.protocol !== "http:") return REFUSED_PROXY_PATH;
    // The path as sent (still percent-encoded): the proxy routes check it like any other.
    const pathStart = url.indexOf("/", url.indexOf("//") + 2);
    const rawPath = pathStart === -1 ? "/" : url.slice(pathStart);
    for (const mirror of mirrors) {
      if (target.origin === mirror.origin && rawPath.startsWith(mirror.path)) return `${mirror.prefix}${rawPath.slice(mirror.path.length)}`;
    }
    return REFUSED_PROXY_PATH;
  };
}

/** The refusal of a forward-proxy request for a URL that is not under a configured mirror. */
export function registerForwardProxyRefusal(app: FastifyInstance): void {
  app.route({
    method: ["GET", "HEAD", "PUT", "POST", "PATCH", "DELETE", "OPTIONS"],
    url: REFUSED_PROXY_PATH,
    config: { rateLimit: false },
    handler: async (request) => {
      const asked = request.originalUrl === REFUSED_PROXY_PATH ? "this URL" : describe(request.originalUrl);
      throw new VaultError("forbidden", `the vault proxies only the mirrors it is configured for, not ${asked}`);
    },
  });
}

/** Scheme, host and path of an absolute URL, never its query (which may carry a secret). */
function describe(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.origin}${parsed.pathname}`;
  } catch {
    return "this URL";
  }
}
