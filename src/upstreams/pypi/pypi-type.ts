import { defineBackendType } from "../backend-type.js";
import { pypiBackendConfigSchema } from "./pypi-config.js";

/**
 * `type: pypi`: a PEP 503/691 simple index and its files.
 *
 * The `pypi` backend type (Python package indexes): what the config loader needs — its name and
 * the schema of its options. Its implementation (`pypi-backend.ts`) loads when a config names one.
 */
export const pypiBackendType = defineBackendType({
  type: "pypi",
  options: pypiBackendConfigSchema,
  create: async (name, options, context) => (await import("./pypi-backend.js")).createPypiBackend(name, options, context),
});
