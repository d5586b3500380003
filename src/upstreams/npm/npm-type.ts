import { defineBackendType } from "../backend-type.js";
import { npmBackendConfigSchema } from "./npm-config.js";
import { renderNpmError } from "./npm-errors.js";

/**
 * `type: npm`: an npm registry for npm, pnpm and yarn.
 *
 * The `npm` backend type (npm registries): what the config loader needs — its name, the schema of
 * its options and how its errors render. Its implementation (`npm-backend.ts`) loads when a config
 * names one.
 */
export const npmBackendType = defineBackendType({
  type: "npm",
  options: npmBackendConfigSchema,
  create: async (name, options, context, where) => (await import("./npm-backend.js")).createNpmBackend(name, options, context, where),
  errors: renderNpmError,
});
