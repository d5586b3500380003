import type { FastifyRateLimitOptions, FastifyRateLimitStoreCtor } from "@fastify/rate-limit";
import type { Coordinator } from "../coordination/coordinator.js";

/**
 * `@fastify/rate-limit`'s store over the coordinator's fixed windows: the windows of one process
 * (`LocalCoordinator`) or of every replica (Redis), so a limit holds however requests are
 * spread over replicas. A window that cannot be counted (Redis failing mid-call) is counted by
 * the coordinator's local fallback, never skipped.
 */
export function coordinatedRateLimitStore(coordinator: Coordinator): FastifyRateLimitStoreCtor {
  // Not `implements FastifyRateLimitStore`: the plugin's typings leave out the window and the
  // route details it passes at run time (store/LocalStore.js takes the same arguments).
  class CoordinatedRateLimitStore {
    readonly #namespace: string;

    constructor(_options: FastifyRateLimitOptions | undefined, namespace = "") {
      this.#namespace = namespace;
    }

    incr(key: string, callback: (error: Error | null, result?: { current: number; ttl: number }) => void, timeWindow: number): void {
      coordinator.rateHit(`${this.#namespace}${key}`, timeWindow).then(
        ({ count, resetInMs }) => callback(null, { current: count, ttl: resetInMs }),
        (error: unknown) => callback(error instanceof Error ? error : new Error(String(error))),
      );
    }

    child(routeOptions: { routeInfo: { method: string | string[]; url: string } }): CoordinatedRateLimitStore {
      const { method, url } = routeOptions.routeInfo;
      return new CoordinatedRateLimitStore(undefined, `${this.#namespace}${String(method)}${url}-`);
    }
  }
  return CoordinatedRateLimitStore as unknown as FastifyRateLimitStoreCtor;
}
