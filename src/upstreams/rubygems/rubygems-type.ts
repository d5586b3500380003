import { defineBackendType } from "../backend-type.js";
import { rubygemsBackendConfigSchema } from "./rubygems-config.js";

/**
 * The `rubygems` backend type (RubyGems sources): what the config loader needs — its name and the
 * schema of its options. Its implementation (`rubygems-backend.ts`) loads when a config names one.
 */
export const rubygemsBackendType = defineBackendType({
  type: "rubygems",
  options: rubygemsBackendConfigSchema,
  create: async (name, options, context) => (await import("./rubygems-backend.js")).createRubygemsBackend(name, options, context),
});
