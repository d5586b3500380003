import { defineBackendType } from "../backend-type.js";
import { customBackendConfigSchema } from "./custom-config.js";

/**
 * The `custom` backend type (plugin modules): what the config loader needs — its name and the
 * schema of its options. Its implementation (`custom-backend.ts`) loads when a config names one.
 */
export const customBackendType = defineBackendType({
  type: "custom",
  options: customBackendConfigSchema,
  create: async (name, options, context, where) => (await import("./custom-backend.js")).createCustomBackend(name, options, context, where),
});
