import type { FastifyInstance } from "fastify";
import type { Scope } from "../auth/tokens-file.js";
import { UNMATCHED_ROUTE, type HttpObserver, type MetricsExposition } from "../metrics/vault-metrics.js";
import { rejectOtherMethods } from "./reject-methods.js";
import { metricsSchema } from "./route-schemas.js";

export interface MetricsRouteOptions {
  readonly exposition: MetricsExposition;
  readonly observer: HttpObserver;
  /** `metrics.token_required`: the scope a scraper's token needs; undefined: no token. */
  readonly scope: Scope | undefined;
}

/**
 * `GET /metrics`: the vault's metrics in Prometheus' text format (every worker's, summed), never
 * rate-limited; and every answer of the framework counted (`artifact_vault_http_requests_total`)
 * as it is sent — before its first byte, so a client that got an answer can already scrape it.
 * Hits answered before the framework count themselves (`held-hits.ts`).
 */
export function registerMetricsRoute(app: FastifyInstance, options: MetricsRouteOptions): void {
  const { observer, exposition } = options;
  app.addHook("onSend", (request, reply, payload, done) => {
    observer.request(request.method, request.routeOptions.url ?? UNMATCHED_ROUTE, request.backend ?? request.routeOptions.config.backend ?? "", reply.statusCode);
    done(null, payload);
  });

  app.get("/metrics", { config: { rateLimit: false, ...(options.scope === undefined ? {} : { scope: options.scope }) }, schema: metricsSchema(options.scope) }, async (_request, reply) => {
    const { contentType, text } = await exposition.render();
    return reply.type(contentType).header("cache-control", "no-store").send(text);
  });
  rejectOtherMethods(app, "/metrics", ["GET"]);
}
