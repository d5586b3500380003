// A native artifact-vault plugin: GitHub release assets through the cache.
//
//   GET {prefix}{owner}/{repo}/{tag}/{asset}     → {base_url}/{owner}/{repo}/releases/download/{tag}/{asset}
//   GET {prefix}{owner}/{repo}/latest/{asset}    → {base_url}/{owner}/{repo}/releases/latest/download/{asset}
//
// A tagged asset never changes (immutable: downloaded once). "latest" moves, so it is mutable:
// fetched again after the backend's `ttl` (default `cache.metadata_ttl`), with If-None-Match.
//
//   backends:
//     - type: custom
//       name: releases
//       config:
//         prefix: /releases/
//         module: ./plugins/github-releases.mjs   # relative to this config file
//         base_url: https://github.com            # optional (GitHub Enterprise: https://ghe.example.com)
//         token: ${GITHUB_TOKEN:-}                # optional, for private repositories
//         timeout: 30                             # optional, seconds
//
// See docs/plugins.md for the interface.
import { VaultError, createUpstreamClient, normaliseUpstreamPath } from "artifact-vault/plugin";

/**
 * @param {import("artifact-vault/plugin").PluginOptions} options
 * @param {import("artifact-vault/plugin").PluginContext} context
 * @returns {import("artifact-vault/plugin").PluginBackend}
 */
export default function createBackend(options, context) {
  const baseUrl = options.base_url ?? "https://github.com";
  if (typeof baseUrl !== "string" || !/^https?:\/\//.test(baseUrl) || !URL.canParse(baseUrl)) {
    throw new Error(`base_url must be an http(s) URL, got ${JSON.stringify(baseUrl)}`);
  }
  const timeout = Number(options.timeout ?? 30);
  if (!Number.isInteger(timeout) || timeout < 1) throw new Error(`timeout must be a whole number of seconds, got ${JSON.stringify(options.timeout)}`);
  const token = typeof options.token === "string" && options.token !== "" ? options.token : undefined;

  // The vault's HTTP client: pooled, retried before the first byte, redirects followed (GitHub
  // sends assets from another host), and the token never sent to a host other than base_url's.
  const client = createUpstreamClient({ baseUrl, timeoutSeconds: timeout });

  return {
    resolve(request) {
      // Refuses `..`, encoded slashes, absolute URLs and every other path trick (400).
      const path = normaliseUpstreamPath(request.path);
      const parts = path.split("/");
      if (parts.length !== 4 || parts.some((part) => part === "")) {
        throw new VaultError("not_found", "expected {owner}/{repo}/{tag}/{asset}");
      }
      const [owner, repo, tag, asset] = parts;
      const latest = tag === "latest";
      return {
        // Relative to this backend's namespace: the vault stores it under "<name>/<cacheKey>".
        cacheKey: path,
        upstreamPath: latest ? `${owner}/${repo}/releases/latest/download/${asset}` : `${owner}/${repo}/releases/download/${tag}/${asset}`,
        freshness: latest ? { kind: "mutable", ttlMs: context.ttlMs } : { kind: "immutable" },
      };
    },

    fetch(ref, validators, signal) {
      // An UpstreamResponse is already what the vault expects: status, headers, streaming body.
      return client.request({
        method: "GET",
        path: ref.upstreamPath,
        signal,
        headers: {
          accept: "application/octet-stream",
          // The bytes as stored: the vault checks lengths and digests on them.
          "accept-encoding": "identity",
          ...(token === undefined ? {} : { authorization: `Bearer ${token}` }),
          ...(validators?.etag === undefined ? {} : { "if-none-match": validators.etag }),
          ...(validators?.lastModified === undefined ? {} : { "if-modified-since": validators.lastModified }),
        },
      });
    },

    close: () => client.close(),
  };
}
