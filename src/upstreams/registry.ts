import { VaultError } from "../core/errors.js";
import type { BackendConfig } from "../config/schema.js";
import type { Backend, BackendContext } from "./backend.js";
import { canonicalBackendType } from "./backend-types.js";
import { createCustomBackend } from "./custom/custom-backend.js";
import type { CustomBackendConfig } from "./custom/custom-config.js";
import { createHttpBackend } from "./files/http-backend.js";
import type { HttpBackendConfig } from "./files/http-config.js";
import { createOciBackend } from "./oci/oci-backend.js";
import type { OciBackendConfig } from "./oci/oci-config.js";
import { createPypiBackend } from "./pypi/pypi-backend.js";
import type { PypiBackendConfig } from "./pypi/pypi-config.js";

/** `where` is the backend's place in the config (`backends[2]`), for error messages. */
type Factory = (name: string, config: Record<string, unknown>, context: BackendContext, where: string) => Promise<Backend>;

/** One line per implemented type: adding an ecosystem is a folder, a line here and its tests. */
const FACTORIES: Readonly<Record<string, Factory>> = {
  http: (name, config, context) => createHttpBackend(name, config as unknown as HttpBackendConfig, context),
  pypi: (name, config, context) => createPypiBackend(name, config as unknown as PypiBackendConfig, context),
  dockerhub: (name, config, context) => createOciBackend("dockerhub", name, config as unknown as OciBackendConfig, context),
  custom: (name, config, context, where) => createCustomBackend(name, config as unknown as CustomBackendConfig, context, where),
};

/** Creates the configured backends (configs already validated by the config schema). */
export async function createBackends(definitions: readonly BackendConfig[], context: BackendContext): Promise<Backend[]> {
  const backends: Backend[] = [];
  try {
    for (const [index, definition] of definitions.entries()) {
      const type = canonicalBackendType(definition.type);
      const factory = FACTORIES[type];
      if (factory === undefined) {
        throw new VaultError("not_supported", `backend "${definition.name}": the ${type} backend is not available in this version yet`);
      }
      backends.push(await factory(definition.name, definition.config, context, `backends[${index}]`));
    }
  } catch (error) {
    await Promise.all(backends.map((backend) => backend.close()));
    throw error;
  }
  return backends;
}
