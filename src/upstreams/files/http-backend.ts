import picomatch from "picomatch";
import { VaultError } from "../../core/errors.js";
import type { ArtifactRef, Freshness } from "../../core/cache/artifact-ref.js";
import type { Backend, BackendContext, ProxyRequest } from "../backend.js";
import { createUpstreamClient } from "../http-client.js";
import { normaliseUpstreamPath } from "../upstream-path.js";
import { cacheKeyFor, decodeOrKeep, fillRequestHeaders } from "../upstream-request.js";
import type { HttpBackendConfig } from "./http-config.js";

/**
 * The `http` backend: generic files. `GET {prefix}{path}` is `{base_url}/{path}` upstream.
 * Files are immutable unless their path matches one of the `mutable` patterns; query strings
 * are not part of an artifact's identity and are not forwarded.
 */
export async function createHttpBackend(name: string, config: HttpBackendConfig, context: BackendContext): Promise<Backend> {
  const client = createUpstreamClient({
    baseUrl: config.base_url,
    timeoutSeconds: config.timeout,
    username: config.username,
    password: config.password,
    retries: config.retries,
  });
  const isMutable = config.mutable.length === 0 ? () => false : picomatch(config.mutable, { dot: true });
  const mutable: Freshness = { kind: "mutable", ttlMs: config.ttl ?? context.metadataTtlMs };
  const immutable: Freshness = { kind: "immutable" };

  return {
    type: "http",
    name,
    prefix: config.prefix,
    resolve(request: ProxyRequest): ArtifactRef {
      const upstreamPath = normaliseUpstreamPath(request.path);
      if (upstreamPath === "" || upstreamPath.endsWith("/")) {
        throw new VaultError("not_found", "directory listings are not proxied; ask for a file");
      }
      return {
        backend: name,
        cacheKey: cacheKeyFor(name, upstreamPath),
        upstreamPath,
        freshness: isMutable(decodeOrKeep(upstreamPath)) ? mutable : immutable,
      };
    },
    fetch: (ref, validators, signal, resume) =>
      client.request({ method: "GET", path: ref.upstreamPath, signal, headers: fillRequestHeaders(ref, validators, resume) }),
    close: () => client.close(),
  };
}

/** `type: http`: generic files under a base URL. */
