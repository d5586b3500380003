import type { FastifyInstance } from "fastify";
import { VaultError } from "../core/errors.js";
import type { ArtifactSource } from "../core/cache/artifact-source.js";
import type { Backend } from "../upstreams/backend.js";
import { errorRendererOf } from "../upstreams/backend-types.js";
import { REGISTRY_API_VERSION } from "../upstreams/oci/oci-errors.js";
import { proxyRouteConfig, serve, toProxyRequest, type ProxyRouteOptions } from "./proxy-routes.js";

/**
 * The registry API where container clients look for it: `/v2/`, for the backends that mount it.
 * With one, `/v2/<name>/...` is that backend's; with several, `/v2/<backend name>/<name>/...`
 * picks one (e.g. `docker pull vault:8080/hub/library/debian`). Only pulls are served.
 */
export function registerRegistryRoutes(app: FastifyInstance, backends: readonly Backend[], source: ArtifactSource, options: ProxyRouteOptions): void {
  const registries = backends.filter((backend) => backend.mounts?.registryApi === true);
  const first = registries[0];
  if (first === undefined) return;
  const config = proxyRouteConfig(errorRendererOf(first.type), options, registries.length === 1 ? first.name : undefined);
  const only = registries.length === 1 ? first : undefined;
  const byName = new Map(registries.map((backend) => [backend.name, backend]));

  // The API version check every client starts with (and where it learns how to authenticate).
  app.route({
    method: ["GET", "HEAD"],
    url: "/v2/",
    config,
    handler: async (_request, reply) => reply.headers(REGISTRY_API_VERSION).type("application/json").send({}),
  });
  app.route({
    method: ["GET", "HEAD"],
    url: "/v2",
    config,
    handler: async (_request, reply) => reply.code(301).headers(REGISTRY_API_VERSION).header("location", "/v2/").send(),
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
        request.backend = backend.name;
      }
      return serve(request, reply, backend, source, { ...proxyRequest, path }, options.redirectHits);
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
