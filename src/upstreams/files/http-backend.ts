import picomatch from "picomatch";
import { VaultError } from "../../core/errors.js";
import type { ArtifactRef, Freshness } from "../../core/cache/artifact-ref.js";
import { validateKey } from "../../core/storage-key.js";
import type { Backend, BackendContext, ProxyRequest } from "../backend.js";
import { createUpstreamClient } from "../http-client.js";
import { normaliseUpstreamPath } from "../upstream-path.js";
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
        freshness: isMutable(safeDecode(upstreamPath)) ? mutable : immutable,
      };
    },
    fetch: (ref, validators, signal) =>
      client.request({
        method: "GET",
        path: ref.upstreamPath,
        signal,
        headers: {
          // The bytes as stored upstream: lengths and digests are checked on them.
          "accept-encoding": "identity",
          ...(validators?.etag === undefined ? {} : { "if-none-match": validators.etag }),
          ...(validators?.lastModified === undefined ? {} : { "if-modified-since": validators.lastModified }),
        },
      }),
    close: () => client.close(),
  };
}

/** `<backend>/<path>`: one namespace per backend in the cache store. */
export function cacheKeyFor(backend: string, upstreamPath: string): string {
  try {
    return validateKey(`${backend}/${upstreamPath}`);
  } catch (error) {
    throw new VaultError("bad_request", `path too long or invalid for the cache: ${(error as Error).message}`);
  }
}

function safeDecode(path: string): string {
  try {
    return decodeURIComponent(path);
  } catch {
    return path;
  }
}
