import { z } from "zod";
import { duration, text } from "../../core/config/scalars.js";

/**
 * Options of the `custom` backend. The vault reads `prefix`, `module`, `adapter` and `ttl`;
 * every other key belongs to the plugin and reaches its factory as `options` (the plugin checks
 * them), which is why the object is loose.
 */
export const customBackendConfigSchema = z.looseObject({
  prefix: text,
  /**
   * The plugin: a path starting with `./` or `../` (relative to the config file; the loader makes
   * it absolute), an absolute path, a `file:` URL, or a package name resolved from the vault's
   * own installation.
   */
  module: text,
  /**
   * `auto` (default) recognises the module's shape; `native` requires `resolve`/`fetch`, `source`
   * the source design's `canHandle`/`fetch` generator.
   */
  adapter: z.enum(["auto", "native", "source"]).default("auto"),
  /** Freshness of mutable artifacts (default: `cache.metadata_ttl`); plugins read it as `context.ttlMs`. */
  ttl: duration().optional(),
});

export type CustomBackendConfig = z.output<typeof customBackendConfigSchema>;

/** The keys the vault reads itself; the rest are the plugin's options. */
export const VAULT_KEYS: ReadonlySet<string> = new Set(["prefix", "module", "adapter", "ttl"]);
