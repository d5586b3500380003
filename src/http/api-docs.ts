import type { FastifyInstance, FastifySchema } from "fastify";
import swagger, { type SwaggerTransform } from "@fastify/swagger";
import swaggerUi from "@fastify/swagger-ui";
import { VERSION } from "../version.js";
import { TAGS } from "./route-schemas.js";

/**
 * `/docs`: the OpenAPI 3.1 description of the HTTP API (`/docs/json`, `/docs/yaml`) and Swagger
 * UI over it. The description is generated from the schemas the routes are validated and
 * serialized with (`route-schemas.ts`), so it says what the code does. What holds here:
 *
 * - Registered before every route it describes: @fastify/swagger collects routes as they are
 *   added. Before the rate limiter too, so the docs' own routes are not rate-limited; they are
 *   public, and their one hook (the Content-Security-Policy) runs on them alone.
 * - A route is described when its schema has tags; the rest — the proxy and registry routes
 *   (the ecosystems' own protocols), the 405 answers, the docs' own pages — are not.
 * - A route's `security` comes from its `config.scope`, the one the server enforces.
 * - The page loads nothing from elsewhere: Swagger UI's files come from the package, and the CSP
 *   allows this origin only (no validator badge, no remote fonts).
 */
export const DOCS_PREFIX = "/docs";

export const BEARER_SCHEME = "bearerAuth";

const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  // Swagger UI adds inline styles of its own (blocked without this); scripts stay this origin's only.
  "style-src 'self' 'unsafe-inline'",
  // The logo is a data: URL.
  "img-src 'self' data:",
  "font-src 'self'",
  // "Try it out" calls this vault's API.
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join("; ");

/** The page's top bar says whose API it is (Swagger UI's default is the framework's logo). */
const LOGO = `<svg xmlns="http://www.w3.org/2000/svg" width="200" height="40" viewBox="0 0 200 40"><text x="0" y="28" fill="#ffffff" font-family="sans-serif" font-size="24" font-weight="bold">artifact-vault</text></svg>`;

const DESCRIPTION = `The object store's REST API, cache administration, and the vault's operational endpoints.

Send a token as \`Authorization: Bearer <token>\`; its scopes (\`read\`, \`write\`, \`delete\`, \`admin\`) decide what it may do. Every error in this description comes in one envelope: \`{"error": {"code": "404", "message": "..."}}\`, the code being the status as a string; that holds for unknown routes (404), wrong methods (405, with \`Allow\`) and invalid query parameters (400) too.

The pull-through cache's routes (pip, npm, apt, container registries, plain downloads) speak each ecosystem's own protocol and are not described here.`;

export async function registerApiDocs(app: FastifyInstance): Promise<void> {
  await app.register(swagger, {
    openapi: {
      openapi: "3.1.0",
      info: { title: "artifact-vault", version: VERSION, description: DESCRIPTION, license: { name: "MIT", identifier: "MIT" } },
      tags: [
        { name: TAGS.objects, description: "The object store: put, get, list and delete binary objects." },
        { name: TAGS.cacheAdmin, description: "The pull-through cache: entries, purges, statistics, downloads in progress." },
        { name: TAGS.operations, description: "Health, readiness and metrics." },
      ],
      components: {
        securitySchemes: {
          [BEARER_SCHEME]: {
            type: "http",
            scheme: "bearer",
            description: "An API token (`artifact-vault tokens add NAME --ttl DAYS --scope S`); an operation lists the scope it needs.",
          },
        },
      },
    },
    hideUntagged: true,
    // The HEAD routes are the server's own (it makes none from its GETs): each is described.
    exposeHeadRoutes: true,
    // Shared schemas keep their names as components (`#/components/schemas/Error`).
    refResolver: { buildLocalReference: (json, _baseUri, _fragment, i) => (typeof json["$id"] === "string" ? json["$id"] : `def-${i}`) },
    transform: describeRoute,
  });

  await app.register(swaggerUi, {
    routePrefix: DOCS_PREFIX,
    staticCSP: CONTENT_SECURITY_POLICY,
    theme: { title: "artifact-vault API" },
    logo: { type: "image/svg+xml", content: LOGO },
    uiConfig: { deepLinking: true, defaultModelsExpandDepth: 1, displayRequestDuration: true },
  });
}

/**
 * What the description says of a route beyond its schema: the wildcard of `/objects/*` is the
 * `key`; the token it needs (its `config.scope`); the body it streams (`streamedBody`).
 */
const describeRoute: SwaggerTransform = ({ schema, url, route }) => {
  // Routes without a schema (proxy surfaces, 405 answers) have no tags: they are not described.
  if ((schema as FastifySchema | undefined) === undefined) return { schema, url };
  const { streamedBody, ...described } = schema;
  let result: FastifySchema = described;
  const scope = route.config?.scope;
  if (scope !== undefined) {
    result = {
      ...result,
      description: `${result.description ?? ""} Needs a token with the \`${scope}\` scope.`.trim(),
      security: [{ [BEARER_SCHEME]: [scope] }],
    };
  }
  if (streamedBody !== undefined) {
    result = { ...result, body: { type: "string", format: "binary", description: streamedBody.description }, consumes: [streamedBody.mediaType] };
  }
  const params = result.params as { properties?: Record<string, unknown> } | undefined;
  if (url.endsWith("*") && params?.properties?.["*"] !== undefined) {
    const { "*": key, ...others } = params.properties;
    result = { ...result, params: { ...params, properties: { ...others, key } } };
    return { schema: result, url: `${url.slice(0, -1)}{key}` };
  }
  return { schema: result, url };
};
