/**
 * A module resolve hook (registered with `module.register` by `load-plugin.ts`) that makes
 * `import ... from "artifact-vault/plugin"` in a plugin resolve to THIS vault's plugin API,
 * wherever the plugin file lives (next to the config, in /etc, in a container volume) and even
 * when another copy of the package is installed beside it: one `VaultError` class, one set of
 * helpers. Every other specifier resolves as usual.
 */
import type { InitializeHook, ResolveHook } from "node:module";

export interface PluginApiHookData {
  /** The specifier to redirect (`artifact-vault/plugin`). */
  readonly specifier: string;
  /** The file URL of the running vault's `plugin-api.js`. */
  readonly url: string;
}

let redirect: PluginApiHookData | undefined;

export const initialize: InitializeHook<PluginApiHookData> = (data) => {
  redirect = data;
};

export const resolve: ResolveHook = (specifier, context, nextResolve) => {
  if (redirect !== undefined && specifier === redirect.specifier) return { url: redirect.url, format: "module", shortCircuit: true };
  return nextResolve(specifier, context);
};
