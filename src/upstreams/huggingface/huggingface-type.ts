import { defineBackendType } from "../backend-type.js";
import { huggingFaceBackendConfigSchema } from "./hf-config.js";
import { renderHubError } from "./hub-errors.js";

/**
 * The `huggingface` backend type (the Hugging Face hub): what the config loader needs — its name,
 * the schema of its options and how its errors render. Its implementation
 * (`huggingface-backend.ts`) loads when a config names one.
 */
export const huggingFaceBackendType = defineBackendType({
  type: "huggingface",
  options: huggingFaceBackendConfigSchema,
  create: async (name, options, context, where) => (await import("./huggingface-backend.js")).createHuggingFaceBackend(name, options, context, where),
  errors: renderHubError,
});
