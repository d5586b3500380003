import type { Backend, BackendContext } from "../backend.js";
import { confineBackend } from "./confined-backend.js";
import { VAULT_KEYS, type CustomBackendConfig } from "./custom-config.js";
import { loadPlugin } from "./load-plugin.js";
import type { PluginContext } from "./plugin-api.js";
import { adaptSourceBackend } from "./source-adapter.js";

/**
 * The `custom` backend: a plugin module named in the config (see docs/plugins.md). The module is
 * loaded and its backend made at start (`loadPlugin`: every problem is a config error naming
 * `<where>.config.module` or `<where>.config`); a source-style backend is adapted
 * (`adaptSourceBackend`); and either is confined (`confineBackend`) so that the cache, not the
 * plugin, decides what is stored where.
 */
export async function createCustomBackend(name: string, config: CustomBackendConfig, context: BackendContext, where: string): Promise<Backend> {
  const options = Object.fromEntries(Object.entries(config).filter(([key]) => !VAULT_KEYS.has(key)));
  const logger = context.logger.child({ backend: name });
  const pluginContext: PluginContext = { name, prefix: config.prefix, logger, ttlMs: config.ttl ?? context.metadataTtlMs };
  const plugin = await loadPlugin(config.module, config.adapter, options, pluginContext, where);
  const backend = plugin.kind === "native" ? plugin.backend : adaptSourceBackend(plugin.backend, { name, ttlMs: pluginContext.ttlMs });
  logger.info({ module: config.module, shape: plugin.kind }, "custom backend loaded");
  return confineBackend(backend, { name, prefix: config.prefix, logger });
}

/** `type: custom`: a plugin module of the user's (docs/plugins.md). */
