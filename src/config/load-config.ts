/**
 * Loads the configuration: YAML file → `${VAR}` substitution → environment overrides → command
 * line overrides → the schema (defaults, parsing, validation) → absolute paths. Precedence:
 * flags beat environment beat file beat defaults. Every failure is a `ConfigError` naming the
 * source (file, variable or flag), the key path and the reason.
 */
import { readFile } from "node:fs/promises";
import { dirname, isAbsolute, resolve } from "node:path";
import { randomBytes } from "node:crypto";
import { parseDocument } from "yaml";
import { ConfigError, type ConfigProblem } from "./config-error.js";
import { formatPath, parseConfig, parseStorage, type ConfigIssue, type StorageSettings, type VaultConfig } from "./schema.js";

export { ConfigError, type ConfigProblem } from "./config-error.js";

export interface LoadConfigOptions {
  /** A YAML config file; relative paths inside it resolve against its directory. */
  readonly file?: string;
  /** Defaults to `process.env`. */
  readonly env?: NodeJS.ProcessEnv;
  /** From the command line (`--host`, `--port`); they beat everything else. */
  readonly overrides?: { readonly host?: string; readonly port?: number; readonly workers?: number };
  /** What relative paths outside any file resolve against; defaults to `process.cwd()`. */
  readonly cwd?: string;
}

type Raw = Record<string, unknown>;

/** Where a value that overrode the file came from, by the config path it landed on. */
type Origins = Map<string, string>;

export async function loadConfig(options: LoadConfigOptions = {}): Promise<VaultConfig> {
  const env = options.env ?? process.env;
  const cwd = options.cwd ?? process.cwd();
  const origins: Origins = new Map();
  const source = options.file ?? "configuration";

  let raw: Raw = {};
  if (options.file !== undefined) {
    const path = resolve(cwd, options.file);
    const document = substituteEnv(await readYaml(path, options.file), env, options.file);
    if (document !== undefined && document !== null) {
      if (!isPlainObject(document)) {
        throw ConfigError.single(options.file, "", `expected a mapping of settings, got ${kindOf(document)}`);
      }
      raw = document;
    }
    resolveFilePaths(raw, dirname(path));
  }

  applyEnvironment(raw, await storageFromEnvironment(env, cwd, raw, origins), env, cwd, origins);

  if (options.overrides?.host !== undefined) setOverride(raw, ["http_host"], options.overrides.host, "--host", origins);
  if (options.overrides?.port !== undefined) setOverride(raw, ["http_port"], options.overrides.port, "--port", origins);
  if (options.overrides?.workers !== undefined) setOverride(raw, ["workers"], options.overrides.workers, "--workers", origins);

  const result = parseConfig(raw);
  if (!result.ok) throw new ConfigError(result.issues.map((issue) => attribute(issue, source, origins)));
  const config = result.value;

  const storageName = nonEmpty(env["STORAGE_NAME"]);
  if (storageName !== undefined && !Object.hasOwn(config.storage.stores, storageName)) {
    // Only reachable with `cache_dir` or the default store: a `storage:` section got the name before validation.
    throw ConfigError.single(
      "environment variable STORAGE_NAME",
      "storage.main",
      `no store named ${JSON.stringify(storageName)} (stores: ${Object.keys(config.storage.stores).map((name) => JSON.stringify(name)).join(", ")})`,
    );
  }
  return absolutePaths(config, cwd);
}

// ------------------------------------------------------------------------------------------------
// Reading YAML.

async function readYaml(path: string, label: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const why = code === "ENOENT" ? "no such file" : code === "EACCES" ? "permission denied" : code === "EISDIR" ? "is a directory" : String(error);
    throw ConfigError.single(label, "", `cannot read: ${why}`, { cause: error });
  }
  return parseYaml(text, label);
}

const REFERENCE = /\$\$?\{[^}\n]*\}/g;

/**
 * Parses YAML text. A `${VAR}` inside a flow mapping (`{bucket_name: ${S3_BUCKET}}`, as the spec
 * writes it) is not valid YAML, since `{` and `}` are flow indicators there: when the text does not
 * parse as is, every reference is swapped for an inert placeholder, parsed, and swapped back.
 */
export function parseYaml(text: string, label: string): unknown {
  const document = parseDocument(text, { prettyErrors: true });
  if (document.errors.length === 0) return document.toJS({ maxAliasCount: 1000 }) as unknown;

  const nonce = randomBytes(6).toString("hex");
  const originals: string[] = [];
  const protectedText = text.replace(REFERENCE, (reference) => `avref${nonce}x${originals.push(reference) - 1}x`);
  if (originals.length > 0) {
    const retry = parseDocument(protectedText, { prettyErrors: true });
    if (retry.errors.length === 0) {
      const placeholder = new RegExp(`avref${nonce}x(\\d+)x`, "g");
      const restore = (value: string) => value.replace(placeholder, (_, index: string) => originals[Number(index)] ?? "");
      return mapStrings(retry.toJS({ maxAliasCount: 1000 }) as unknown, restore, true);
    }
  }
  const first = document.errors[0];
  const where = first?.linePos?.[0] === undefined ? "" : `line ${first.linePos[0].line}, column ${first.linePos[0].col}: `;
  const message = (first?.message ?? "invalid YAML").split("\n")[0]?.replace(/ at line \d+, column \d+:?$/, "") ?? "";
  throw ConfigError.single(label, "", `invalid YAML at ${where}${message}`);
}

function mapStrings(value: unknown, map: (text: string) => string, keysToo: boolean): unknown {
  if (typeof value === "string") return map(value);
  if (Array.isArray(value)) return value.map((item) => mapStrings(item, map, keysToo));
  if (isPlainObject(value)) {
    return Object.fromEntries(
      Object.entries(value).map(([key, child]) => [keysToo ? map(key) : key, mapStrings(child, map, keysToo)]),
    );
  }
  return value;
}

// ------------------------------------------------------------------------------------------------
// ${VAR} substitution.

const VARIABLE = /^([A-Za-z_][A-Za-z0-9_]*)(?:(:?-)(.*))?$/s;

/**
 * Replaces `${VAR}`, `${VAR:-default}` (default when unset or empty) and `${VAR-default}` (when
 * unset) in every string value; `$${` is a literal `${`. An unset variable without a default is an
 * error naming the key path and the variable.
 */
export function substituteEnv(value: unknown, env: NodeJS.ProcessEnv, source: string, path: PropertyKey[] = []): unknown {
  if (typeof value === "string") return substituteString(value, env, source, path);
  if (Array.isArray(value)) return value.map((item, index) => substituteEnv(item, env, source, [...path, index]));
  if (isPlainObject(value)) {
    return Object.fromEntries(Object.entries(value).map(([key, child]) => [key, substituteEnv(child, env, source, [...path, key])]));
  }
  return value;
}

function substituteString(text: string, env: NodeJS.ProcessEnv, source: string, path: PropertyKey[]): string {
  return text.replace(REFERENCE, (reference) => {
    if (reference.startsWith("$$")) return reference.slice(1);
    const match = VARIABLE.exec(reference.slice(2, -1));
    if (match === null) {
      throw ConfigError.single(source, formatPath(path), `bad variable reference ${reference} (expected \${NAME} or \${NAME:-default})`);
    }
    const [, name = "", operator, fallback = ""] = match;
    const current = env[name];
    if (operator === ":-") return current === undefined || current === "" ? fallback : current;
    if (operator === "-") return current ?? fallback;
    if (current === undefined) {
      throw ConfigError.single(source, formatPath(path), `environment variable ${name} is not set (write \${${name}:-default} for a default)`);
    }
    return current;
  });
}

// ------------------------------------------------------------------------------------------------
// Environment and flag overrides.

async function storageFromEnvironment(env: NodeJS.ProcessEnv, cwd: string, raw: Raw, origins: Origins): Promise<StorageSettings | undefined> {
  const file = nonEmpty(env["STORAGE_CONFIG"]);
  if (file === undefined) return undefined;
  const label = `STORAGE_CONFIG ${file}`;
  const path = resolve(cwd, file);
  const document = substituteEnv(await readYaml(path, label), env, label);
  if (!isPlainObject(document)) throw ConfigError.single(label, "", `expected a mapping with "stores", got ${kindOf(document)}`);
  for (const store of Object.values(isPlainObject(document["stores"]) ? document["stores"] : {})) {
    resolveRootPath(store, dirname(path));
  }
  const name = nonEmpty(env["STORAGE_NAME"]);
  const storageOrigins: Origins = new Map();
  if (name !== undefined) {
    document["main"] = name;
    storageOrigins.set("main", "environment variable STORAGE_NAME");
  }
  const result = parseStorage(document);
  if (!result.ok) throw new ConfigError(result.issues.map((issue) => attribute(issue, label, storageOrigins)));
  delete raw["cache_dir"];
  origins.set("storage", label);
  return result.value;
}

function applyEnvironment(raw: Raw, storage: StorageSettings | undefined, env: NodeJS.ProcessEnv, cwd: string, origins: Origins): void {
  const host = nonEmpty(env["HOST"]);
  if (host !== undefined) setOverride(raw, ["http_host"], host, "environment variable HOST", origins);
  const port = nonEmpty(env["PORT"]);
  if (port !== undefined) setOverride(raw, ["http_port"], port, "environment variable PORT", origins);
  const logLevel = nonEmpty(env["LOG_LEVEL"]);
  if (logLevel !== undefined) setOverride(raw, ["log_level"], logLevel, "environment variable LOG_LEVEL", origins);
  const logFormat = nonEmpty(env["LOG_FORMAT"]);
  if (logFormat !== undefined) setOverride(raw, ["log_format"], logFormat, "environment variable LOG_FORMAT", origins);
  if (storage !== undefined) raw["storage"] = storage;
  const storageName = nonEmpty(env["STORAGE_NAME"]);
  if (storageName !== undefined && storage === undefined && isPlainObject(raw["storage"])) {
    setOverride(raw, ["storage", "main"], storageName, "environment variable STORAGE_NAME", origins);
  }
  const tokensFile = nonEmpty(env["AUTH_TOKENS_FILE"]);
  if (tokensFile !== undefined) {
    setOverride(raw, ["auth", "tokens_file"], resolve(cwd, tokensFile), "environment variable AUTH_TOKENS_FILE", origins);
  }
}

/** Sets `raw[path]`, creating sections on the way, unless a section is not a mapping (the schema will say so). */
function setOverride(raw: Raw, path: readonly string[], value: unknown, origin: string, origins: Origins): void {
  let section: Raw = raw;
  for (const key of path.slice(0, -1)) {
    const child = section[key];
    if (child === undefined || child === null) section[key] = {};
    else if (!isPlainObject(child)) return;
    section = section[key] as Raw;
  }
  section[path[path.length - 1] ?? ""] = value;
  origins.set(formatPath(path), origin);
}

function attribute(issue: ConfigIssue, source: string, origins: Origins): ConfigProblem {
  for (const [path, origin] of origins) {
    if (issue.path === path || issue.path.startsWith(`${path}.`) || issue.path.startsWith(`${path}[`)) {
      return { source: origin, path: issue.path, message: issue.message };
    }
  }
  return { source, path: issue.path, message: issue.message };
}

// ------------------------------------------------------------------------------------------------
// Paths.

/** Relative paths written in a file mean "next to this file". */
function resolveFilePaths(raw: Raw, base: string): void {
  if (typeof raw["cache_dir"] === "string" && raw["cache_dir"] !== "") raw["cache_dir"] = resolve(base, raw["cache_dir"]);
  const storage = raw["storage"];
  if (isPlainObject(storage) && isPlainObject(storage["stores"])) {
    for (const store of Object.values(storage["stores"])) resolveRootPath(store, base);
  }
  const auth = raw["auth"];
  if (isPlainObject(auth) && typeof auth["tokens_file"] === "string" && auth["tokens_file"] !== "") {
    auth["tokens_file"] = resolve(base, auth["tokens_file"]);
  }
  if (Array.isArray(raw["backends"])) for (const backend of raw["backends"]) resolvePluginModule(backend, base);
}

/** A `custom` backend's `module` written `./x.mjs` or `../x.mjs` is a file next to the config; other forms (absolute, `file:`, a package name) stay. */
function resolvePluginModule(backend: unknown, base: string): void {
  if (!isPlainObject(backend) || backend["type"] !== "custom" || !isPlainObject(backend["config"])) return;
  const config = backend["config"];
  const module = config["module"];
  if (typeof module === "string" && /^\.\.?[\\/]/.test(module)) config["module"] = resolve(base, module);
}

function resolveRootPath(store: unknown, base: string): void {
  if (!isPlainObject(store) || !isPlainObject(store["config"])) return;
  const config = store["config"];
  if (typeof config["root_path"] === "string" && config["root_path"] !== "") config["root_path"] = resolve(base, config["root_path"]);
}

/** Whatever is still relative (defaults, values from no file) resolves against the working directory. */
function absolutePaths(config: VaultConfig, cwd: string): VaultConfig {
  const stores = Object.fromEntries(
    Object.entries(config.storage.stores).map(([name, store]) => [
      name,
      store.type === "filesystem" && !isAbsolute(store.config.root_path)
        ? { ...store, config: { ...store.config, root_path: resolve(cwd, store.config.root_path) } }
        : store,
    ]),
  );
  return {
    ...config,
    storage: { ...config.storage, stores },
    auth: { ...config.auth, tokens_file: resolve(cwd, config.auth.tokens_file) },
  };
}

// ------------------------------------------------------------------------------------------------

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value.trim() === "" ? undefined : value;
}

function isPlainObject(value: unknown): value is Raw {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function kindOf(value: unknown): string {
  if (value === null || value === undefined) return "nothing (an empty file)";
  if (Array.isArray(value)) return "a list";
  if (typeof value === "string") return "a string";
  return typeof value;
}
