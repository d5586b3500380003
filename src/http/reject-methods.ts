import type { FastifyInstance } from "fastify";
import { VaultError } from "../core/errors.js";

/** Registers a 405 (with `Allow`) for every method a path does not support. */
export function rejectOtherMethods(app: FastifyInstance, url: string, allowed: readonly string[]): void {
  const others = ["GET", "HEAD", "PUT", "POST", "PATCH", "DELETE", "OPTIONS"].filter((method) => !allowed.includes(method));
  app.route({
    method: others,
    url,
    config: { rateLimit: false },
    handler: async (request) => {
      const path = request.url.split("?", 1)[0] ?? request.url;
      throw new VaultError("method_not_allowed", `method ${request.method} not allowed on ${path}`, { allow: allowed });
    },
  });
}
