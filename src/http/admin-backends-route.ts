import type { FastifyInstance, FastifySchema } from "fastify";
import type { Coordinator } from "../coordination/coordinator.js";
import { upstreamHealth } from "../metrics/upstream-health.js";
import type { Backend } from "../upstreams/backend.js";
import { clientSnippets, type ClientSnippet, type UpstreamUrl } from "./client-snippets.js";
import { clientFacingOrigin } from "./proxy-routes.js";
import { rejectOtherMethods } from "./reject-methods.js";
import { SERVER_ERRORS, TAGS, TOKEN_ERRORS } from "./route-schemas.js";

export interface BackendsRouteOptions {
  readonly backends: readonly Backend[];
  /** Each backend's upstream URLs, credentials removed (`upstreamUrls`), by backend name. */
  readonly upstreams: ReadonlyMap<string, readonly UpstreamUrl[]>;
  /** Where the upstream health is counted (the whole vault's: `metrics/upstream-health.ts`). */
  readonly coordinator: Pick<Coordinator, "tallies">;
  /** `auth.proxy: token`: the snippets show where the token goes. */
  readonly tokenRequired: boolean;
}

/**
 * `GET /admin/backends` (the `read` scope: what a client of the vault needs to use it, and how
 * its upstreams are doing — nothing `/metrics` does not already tell, and no credential): each
 * configured backend with its type, prefix, upstream URLs (without credentials), upstream health,
 * and the settings of each of its clients for the vault as this request reached it (`Host`,
 * `X-Forwarded-Proto`/`-Host`), with `<token>` wherever a token goes (`client-snippets.ts`).
 */
export function registerAdminBackendsRoute(app: FastifyInstance, options: BackendsRouteOptions): void {
  const registryBackends = options.backends.filter((backend) => backend.mounts?.registryApi === true).length;
  app.get("/admin/backends", { config: { scope: "read" }, schema: BACKENDS_SCHEMA }, async (request, reply) => {
    const origin = clientFacingOrigin(request.raw);
    const tallies = await options.coordinator.tallies();
    reply.header("cache-control", "no-store");
    return {
      vault_url: origin,
      token_required: options.tokenRequired,
      backends: options.backends.map((backend) => {
        const health = upstreamHealth(tallies, backend.name);
        return {
          name: backend.name,
          type: backend.type,
          prefix: backend.prefix,
          ...(backend.mounts?.registryApi === true ? { registry_path: registryBackends > 1 ? `/v2/${backend.name}/` : "/v2/" } : {}),
          upstreams: options.upstreams.get(backend.name) ?? [],
          health: {
            state: health.state,
            exchanges: health.exchanges,
            errors: health.errors,
            errors_by_kind: health.errorsByKind,
            last_exchange_at: health.lastExchangeAt?.toISOString() ?? null,
            last_error_at: health.lastErrorAt?.toISOString() ?? null,
          },
          clients: clientSnippets(backend, { origin, tokenRequired: options.tokenRequired, registryBackends }).map(clientJson),
        };
      }),
    };
  });
  rejectOtherMethods(app, "/admin/backends", ["GET"]);
}

function clientJson(client: ClientSnippet): Record<string, unknown> {
  return {
    tool: client.tool,
    files: client.files,
    notes: client.notes,
    command: client.command ?? null,
    ...(client.unavailable === undefined ? {} : { unavailable: client.unavailable }),
  };
}

const nullableString = { type: ["string", "null"] } as const;
const count = { type: "integer", minimum: 0 } as const;

const BACKENDS_SCHEMA = {
  summary: "Configured backends, their upstream health and client settings",
  description:
    "Each configured backend with its type, prefix, upstream URLs (credentials removed), the health of its upstream over the whole vault, " +
    "and each client's settings for the vault's address as this request reached it (`<token>` where a token goes).",
  tags: [TAGS.cacheAdmin],
  response: {
    200: {
      description: "The configured backends, in the config's order.",
      type: "object",
      required: ["vault_url", "token_required", "backends"],
      properties: {
        vault_url: { type: "string", description: "the vault's origin as the client reached it" },
        token_required: { type: "boolean", description: "`auth.proxy: token`: clients send a token" },
        backends: {
          type: "array",
          items: {
            type: "object",
            required: ["name", "type", "prefix", "upstreams", "health", "clients"],
            properties: {
              name: { type: "string" },
              type: { type: "string", description: "the backend type (`pypi`, `npm`, `dockerhub`, `apt`, `http`, `custom`)" },
              prefix: { type: "string", description: "where it is served, e.g. `/pypi/`" },
              registry_path: { type: "string", description: "where container clients reach it (`/v2/`, or `/v2/<name>/` with several)" },
              upstreams: {
                type: "array",
                items: {
                  type: "object",
                  required: ["option", "url"],
                  properties: { option: { type: "string", description: "the option naming it, e.g. `index_url`" }, url: { type: "string", description: "without credentials" } },
                },
              },
              health: {
                type: "object",
                required: ["state", "exchanges", "errors", "errors_by_kind", "last_exchange_at", "last_error_at"],
                properties: {
                  state: { type: "string", enum: ["unknown", "ok", "failing"], description: "`failing`: the latest exchange with the upstream failed" },
                  exchanges: count,
                  errors: count,
                  errors_by_kind: {
                    type: "object",
                    properties: { timeout: count, failed: count, broken_body: count, status_5xx: count, status_4xx: count, other: count },
                  },
                  last_exchange_at: { ...nullableString, format: "date-time" },
                  last_error_at: { ...nullableString, format: "date-time" },
                },
              },
              clients: {
                type: "array",
                items: {
                  type: "object",
                  required: ["tool", "files", "notes", "command"],
                  properties: {
                    tool: { type: "string", description: "the client, e.g. `pip`" },
                    files: {
                      type: "array",
                      items: { type: "object", required: ["path", "text"], properties: { path: { type: "string" }, text: { type: "string" } } },
                    },
                    notes: { type: "array", items: { type: "string" } },
                    command: nullableString,
                    unavailable: { type: "string" },
                  },
                },
              },
            },
          },
        },
      },
    },
    ...TOKEN_ERRORS,
    ...SERVER_ERRORS,
  },
} as const satisfies FastifySchema;
