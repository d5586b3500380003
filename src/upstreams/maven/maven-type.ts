import { defineBackendType } from "../backend-type.js";
import { mavenBackendConfigSchema } from "./maven-config.js";

/**
 * The `maven` backend type (Maven repositories): what the config loader needs — its name and the
 * schema of its options. Its implementation (`maven-backend.ts`) loads when a config names one.
 */
export const mavenBackendType = defineBackendType({
  type: "maven",
  options: mavenBackendConfigSchema,
  create: async (name, options, context) => (await import("./maven-backend.js")).createMavenBackend(name, options, context),
});
