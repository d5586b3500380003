import { defineBackendType } from "../backend-type.js";
import { ociBackendConfigSchema } from "./oci-config.js";
import { renderOciError } from "./oci-errors.js";

/**
 * `type: dockerhub` (or `oci`): the pull side of the OCI distribution API.
 *
 * The `dockerhub` backend type (container registries): what the config loader needs — its name,
 * the schema of its options and how its errors render. Its implementation (`oci-backend.ts`) loads
 * when a config names one.
 */
export const ociBackendType = defineBackendType({
  type: "dockerhub",
  aliases: ["oci"],
  options: ociBackendConfigSchema,
  create: async (name, options, context) => (await import("./oci-backend.js")).createOciBackend(name, options, context),
  errors: renderOciError,
});
