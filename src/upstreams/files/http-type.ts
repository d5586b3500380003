import { defineBackendType } from "../backend-type.js";
import { httpBackendConfigSchema } from "./http-config.js";

/**
 * The `http` backend type (plain downloads): what the config loader needs — its name and the
 * schema of its options. Its implementation (`http-backend.ts`) loads when a config names one.
 */
export const httpBackendType = defineBackendType({
  type: "http",
  options: httpBackendConfigSchema,
  create: async (name, options, context) => (await import("./http-backend.js")).createHttpBackend(name, options, context),
});
