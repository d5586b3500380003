import { VaultError } from "../../core/errors.js";
import { defineBackendType } from "../backend-type.js";
import { aptBackendConfigSchema } from "./apt-config.js";

export const aptBackendType = defineBackendType({
  type: "apt",
  options: aptBackendConfigSchema,
  create: async (name) => {
    throw new VaultError("not_supported", `backend "${name}": the apt backend is not available in this version yet`);
  },
});
