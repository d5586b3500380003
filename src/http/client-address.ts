import type { IncomingMessage } from "node:http";
import proxyAddr from "proxy-addr";
import type { TrustFunction } from "../core/config/trust-proxy.js";

/**
 * The client's address: the connection's, or with `trust_proxy` the first `X-Forwarded-For`
 * entry (from the right) that is not a trusted proxy. The framework's `request.ip` is given the
 * same trust function, so the answers made before the framework (held hits) log the same address.
 */
export function clientAddress(request: IncomingMessage, trust: TrustFunction | undefined): string {
  if (trust === undefined) return request.socket.remoteAddress ?? "";
  return proxyAddr(request, trust);
}
