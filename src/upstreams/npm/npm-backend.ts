import { VaultError } from "../../core/errors.js";
import { defineBackendType } from "../backend-type.js";
import { npmBackendConfigSchema } from "./npm-config.js";

export const npmBackendType = defineBackendType({
  type: "npm",
  options: npmBackendConfigSchema,
  create: async (name) => {
    throw new VaultError("not_supported", `backend "${name}": the npm backend is not available in this version yet`);
  },
});
