import { existsSync } from "node:fs";
import { register } from "node:module";
import { isAbsolute, resolve as resolvePath } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { VaultError } from "../../core/errors.js";
import type { PluginApiHookData } from "./plugin-api-hook.js";
import type { PluginBackend, PluginContext, PluginOptions, SourceStyleBackend } from "./plugin-api.js";

/** The package export plugins import their helpers from. */
export const PLUGIN_API_SPECIFIER = "artifact-vault/plugin";

export type AdapterChoice = "auto" | "native" | "source";

/** A plugin made ready: which shape it has, and the object itself. */
export type LoadedPlugin = { readonly kind: "native"; readonly backend: PluginBackend } | { readonly kind: "source"; readonly backend: SourceStyleBackend };

/**
 * Loads the module a `custom` backend names and makes the backend it describes. Every failure is
 * a VaultError `bad_request` (a configuration problem: the CLI exits 2) whose message starts with
 * the config path it is about, e.g. `backends[2].config.module: cannot load /etc/vault/x.mjs: no
 * such file`. `where` is the backend's path in the config (`backends[2]`).
 *
 * What the module may export, in the order it is looked for (`adapter: auto`):
 * 1. a named export `createBackend`, else the default export;
 * 2. if that is a class, an instance (`new Class(options, context)`); if another function, a
 *    factory whose (awaited) result is used; if an object, the object itself;
 * 3. the result is a native backend if it has `resolve` and `fetch` methods, a source-style one
 *    if it has `canHandle` and `fetch`. `adapter: native` / `source` insists on one of the two.
 */
export async function loadPlugin(
  moduleSpecifier: string,
  adapter: AdapterChoice,
  options: PluginOptions,
  context: PluginContext,
  where: string,
): Promise<LoadedPlugin> {
  const moduleProblem = (why: string, cause?: unknown): VaultError =>
    new VaultError("bad_request", `${where}.config.module: ${why}`, cause === undefined ? {} : { cause });
  const url = moduleUrl(moduleSpecifier);
  const shown = url.startsWith("file:") ? fileURLToPath(url) : moduleSpecifier;
  if (url.startsWith("file:") && !existsSync(new URL(url))) {
    const hint = isAbsolute(moduleSpecifier) || moduleSpecifier.startsWith("file:") ? "" : " (paths starting with ./ or ../ are relative to the config file)";
    throw moduleProblem(`cannot load ${shown}: no such file${hint}`);
  }

  registerPluginApiHook();
  let exports: Record<string, unknown>;
  try {
    exports = (await import(url)) as Record<string, unknown>;
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    const looksLikeFile = !url.startsWith("file:") && /\.[cm]?js$/.test(moduleSpecifier);
    const hint = looksLikeFile ? ` (write ./${moduleSpecifier} for a file next to the config file)` : "";
    const why = code === "ERR_MODULE_NOT_FOUND" && !url.startsWith("file:") ? `cannot find module ${moduleSpecifier}${hint}` : (error as Error).message;
    throw moduleProblem(`cannot load ${shown}: ${why}`, error);
  }

  const candidate = typeof exports["createBackend"] === "function" ? exports["createBackend"] : exports["default"];
  if (candidate === undefined || candidate === null) {
    throw moduleProblem(`${shown} exports no backend: expected a default export or a named export createBackend (see docs/plugins.md)`);
  }

  let made: unknown;
  try {
    if (isClass(candidate)) made = new candidate(options, context);
    else if (typeof candidate === "function") made = await (candidate as (options: PluginOptions, context: PluginContext) => unknown)(options, context);
    else made = candidate;
  } catch (error) {
    throw new VaultError("bad_request", `${where}.config: the plugin ${shown} refused to start: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  }

  const native = hasMethods(made, "resolve", "fetch");
  const source = hasMethods(made, "canHandle", "fetch");
  if (native && adapter !== "source") return { kind: "native", backend: made as PluginBackend };
  if (source && adapter !== "native") return { kind: "source", backend: made as SourceStyleBackend };
  const wanted =
    adapter === "native"
      ? "a backend with resolve and fetch methods (adapter: native)"
      : adapter === "source"
        ? "a source-style backend with canHandle and fetch methods (adapter: source)"
        : "a backend with resolve and fetch methods, or a source-style one with canHandle and fetch";
  throw moduleProblem(`${shown} does not provide ${wanted}; its export gave ${describeValue(made)}`);
}

/** The URL to import: absolute paths and `file:` URLs as files, anything else as a package name. */
function moduleUrl(specifier: string): string {
  if (specifier.startsWith("file:")) return specifier;
  if (isAbsolute(specifier)) return pathToFileURL(specifier).href;
  // The config loader made config-relative paths absolute; anything relative left is the cwd's.
  if (specifier.startsWith("./") || specifier.startsWith("../")) return pathToFileURL(resolvePath(specifier)).href;
  return specifier;
}

/**
 * Registers the `artifact-vault/plugin` resolve hook, once per process (hooks are process-wide,
 * so this flag is too). Without hooks a plugin inside this package (or with the package in its
 * node_modules) still finds the API through normal resolution.
 */
let hookRegistered = false;
function registerPluginApiHook(): void {
  if (hookRegistered) return;
  hookRegistered = true;
  const data: PluginApiHookData = { specifier: PLUGIN_API_SPECIFIER, url: new URL("./plugin-api.js", import.meta.url).href };
  register(new URL("./plugin-api-hook.js", import.meta.url), { data });
}

function isClass(value: unknown): value is new (options: PluginOptions, context: PluginContext) => unknown {
  return typeof value === "function" && /^class[\s{]/.test(Function.prototype.toString.call(value));
}

function hasMethods(value: unknown, ...names: string[]): boolean {
  return typeof value === "object" && value !== null && names.every((name) => typeof (value as Record<string, unknown>)[name] === "function");
}

function describeValue(value: unknown): string {
  if (value === null || value === undefined) return String(value);
  if (typeof value !== "object") return `a ${typeof value}`;
  const keys = Object.keys(value).slice(0, 8);
  return keys.length === 0 ? "an object without methods" : `an object with ${keys.join(", ")}`;
}
