import { defineBackendType } from "../backend-type.js";
import { cargoBackendConfigSchema } from "./cargo-config.js";

/**
 * The `cargo` backend type (sparse cargo registries): what the config loader needs — its name and
 * the schema of its options. Its implementation (`cargo-backend.ts`) loads when a config names
 * one.
 */
export const cargoBackendType = defineBackendType({
  type: "cargo",
  options: cargoBackendConfigSchema,
  create: async (name, options, context, where) => (await import("./cargo-backend.js")).createCargoBackend(name, options, context, where),
});
