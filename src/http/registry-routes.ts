import type { FastifyInstance } from "fastify";
import { VaultError } from "../core/errors.js";
import type { ArtifactCache } from "../cache/artifact-cache.js";
import type { Backend } from "../upstreams/backend.js";
import { serve, toProxyRequest } from "./proxy-routes.js";

export interface RegistryRouteOptions {
  /** `auth.proxy: token`: `/v2/` answers 401 with a Basic challenge; the token is the password. */
  readonly requireToken: boolean;
}

const API_VERSION = { "docker-distribution-api-version": "registry/2.0" };

/**
 * The registry API where container clients look for it: `/v2/`. With one OCI backend,
 * `/v2/<name>/...` is that backend's; with several, `/v2/<backend name>/<name>/...` picks one
 * (e.g. `docker pull vault:8080/hub/library/debian`). Errors are OCI JSON; only pulls are served.
 */
export function registerRegistryRoutes(app: FastifyInstance, backends: readonly Backend[], cache: ArtifactCache, options: RegistryRouteOptions): void {
  const registries = backends.filter((backend) => backend.errorFormat === "oci");
  if (registries.length === 0) return;
  const config = {
    rateLimit: false,
    errorFormat: "oci",
    // Docker, podman, skopeo and containerd answer a Basic challenge with the configured login.
    challenge: 'Basic realm="artifact-vault"',
    ...(options.requireToken ? { scope: "read" as const } : {}),
  } as const;
  const only = registries.length === 1 ? registries[0] : undefined;
  const byName = new Map(registries.map((backend) => [backend.name, backend]));

  // The API version check every client starts with (and where it learns how to authenticate).
  app.route({
    method: ["GET", "HEAD"],
    url: "/v2/",
    config,
    handler: async (_request, reply) => reply.headers(API_VERSION).type("application/json").send({}),
  });
  app.route({
    method: ["GET", "HEAD"],
    url: "/v2",
    config,
    handler: async (_request, reply) => reply.code(301).headers(API_VERSION).header("location", "/v2/").send(),
  });
  app.route({
    method: ["GET", "HEAD"],
    url: "/v2/*",
    config,
    handler: async (request, reply) => {
      const proxyRequest = toProxyRequest(request, "/v2/");
      let backend = only;
      let path = proxyRequest.path;
      if (backend === undefined) {
        const slash = path.indexOf("/");
        backend = byName.get(slash === -1 ? path : path.slice(0, slash));
        if (backend === undefined) {
          throw new VaultError("not_found", `no registry named ${JSON.stringify(path.split("/")[0])}; with several, pull <vault>/<registry>/<name> (${[...byName.keys()].join(", ")})`, {
            code: "NAME_UNKNOWN",
          });
        }
        path = path.slice(slash + 1);
      }
      return serve(request, reply, backend, cache, { ...proxyRequest, path });
    },
  });
  for (const url of ["/v2/", "/v2/*"]) {
    app.route({
      method: ["PUT", "POST", "PATCH", "DELETE", "OPTIONS"],
      url,
      config,
      handler: async (request) => {
        throw new VaultError("method_not_allowed", `${request.method} is not supported: the vault is a pull-through cache`, { allow: ["GET", "HEAD"] });
      },
    });
  }
}
