import { defineBackendType } from "../backend-type.js";
import { goBackendConfigSchema } from "./go-config.js";

/**
 * `type: go`: a Go module proxy (GOPROXY protocol) and, optionally, a checksum database.
 *
 * The `go` backend type (Go module proxies): what the config loader needs — its name and the
 * schema of its options. Its implementation (`go-backend.ts`) loads when a config names one.
 */
export const goBackendType = defineBackendType({
  type: "go",
  options: goBackendConfigSchema,
  create: async (name, options, context, where) => (await import("./go-backend.js")).createGoBackend(name, options, context, where),
});
