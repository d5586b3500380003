import { defineBackendType } from "../backend-type.js";
import { aptBackendConfigSchema } from "./apt-config.js";

/**
 * The `apt` backend type (Debian and Ubuntu mirrors): what the config loader needs — its name and
 * the schema of its options. Its implementation (`apt-backend.ts`) loads when a config names one.
 */
export const aptBackendType = defineBackendType({
  type: "apt",
  options: aptBackendConfigSchema,
  create: async (name, options, context) => (await import("./apt-backend.js")).createAptBackend(name, options, context),
});
