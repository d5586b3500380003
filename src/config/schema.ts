/**
 * The configuration schema: the one check of a config file and, through `z.output`, the type the
 * rest of the service receives. Defaults live here and nowhere else; sizes and durations are parsed
 * here once. The schema is pure: `${VAR}` substitution, env overrides and relative paths are
 * `load-config.ts`'s business.
 *
 * Validate with `parseConfig` / `parseStorage` (or pass `{ error: configErrorMap }` yourself) so
 * that every issue reads like `rate_limit.per_token_per_minute: expected a number ≥ 0, got "lots"`.
 */
import { z } from "zod";
import type { StoreConfig } from "../storage/store-config.js";

const MiB = 1024 ** 2;
const GiB = 1024 ** 3;
/** S3's presigned URLs last at most 7 days. */
const MAX_PRESIGN_MS = 7 * 24 * 60 * 60_000;

export const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** `auto`: human-readable lines on a terminal, JSON lines otherwise (`src/logger.ts`). */
export const LOG_FORMATS = ["auto", "json", "pretty"] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

/** The storage type names the source design used, accepted unchanged in storage.yaml files. */
export const STORE_TYPE_ALIASES: Readonly<Record<string, StoreConfig["type"]>> = {
  AsyncDictStore: "memory",
  AsyncFilesystemStore: "filesystem",
  AsyncSafeFilesystemStore: "filesystem",
  AsyncBucketStore: "s3",
};

/** A backend as written in a config file, before its type's schema has checked it. */
export interface BackendInput {
  type: string;
  name: string;
  config: Record<string, unknown>;
}

/** The backends a config file without a `backends` key gets: the public upstreams. */
export const DEFAULT_BACKENDS: readonly Readonly<BackendInput>[] = [
  {
    type: "pypi",
    name: "pypi",
    config: {
      prefix: "/pypi/",
      index_url: "https://pypi.org/simple",
      packages_url: "https://files.pythonhosted.org/packages",
    },
  },
  { type: "npm", name: "npm", config: { prefix: "/npm/", registry_url: "https://registry.npmjs.org" } },
  {
    type: "dockerhub",
    name: "docker",
    config: { prefix: "/dockerhub/", registry_url: "https://registry-1.docker.io", auth_url: "https://auth.docker.io" },
  },
  { type: "apt", name: "debian", config: { prefix: "/debian/", mirror_url: "http://deb.debian.org/debian" } },
];

/**
 * Prefixes a backend may not take because the service's own routes live there. Kept here (not in
 * the HTTP layer) so a config that would shadow them is refused at start.
 */
export const RESERVED_PREFIXES: readonly string[] = ["/objects/", "/health/", "/ready/", "/metrics/", "/docs/", "/ui/", "/v2/", "/admin/", "/-/"];

import type { BackendDefinition } from "../upstreams/backend-type.js";
import { backendTypeNames, findBackendType } from "../upstreams/backend-types.js";
import { boolean, duration, fileMode, httpUrl, integer, optionalText, size, text, type ExpectedParams } from "../core/config/scalars.js";
import { trustFunction, type TrustProxy } from "../core/config/trust-proxy.js";

const TRUST_PROXY_EXPECTED = "expected false, true, a number of proxy hops from 1 to 64, or a list of proxy addresses and CIDR ranges";

/** `trust_proxy`: each list entry is checked by the function that will use it, and named when it is wrong. */
const trustProxySchema = z.unknown().transform((value, ctx): TrustProxy => {
  if (Array.isArray(value)) {
    const entries: string[] = [];
    for (const [index, entry] of value.entries()) {
      try {
        if (typeof entry !== "string") throw new TypeError("not a string");
        trustFunction([entry]);
        entries.push(entry);
      } catch {
        ctx.addIssue({ code: "custom", path: [index], message: `expected a proxy's IP address, a CIDR range (10.0.0.0/8) or loopback, linklocal or uniquelocal, got ${JSON.stringify(entry)}` });
      }
    }
    // An empty list trusts nobody, as false does.
    return entries.length === 0 ? false : entries;
  }
  const flag = boolean.safeParse(value);
  if (flag.success) return flag.data;
  const hops = integer(1, 64).safeParse(value);
  if (hops.success) return hops.data;
  ctx.addIssue({ code: "custom", message: `${TRUST_PROXY_EXPECTED}, got ${JSON.stringify(value)}` });
  return z.NEVER;
});

const redisUrl = text.superRefine((value, ctx) => {
  let url: URL | undefined;
  try {
    url = new URL(value);
  } catch {
    url = undefined;
  }
  if (url === undefined || (url.protocol !== "redis:" && url.protocol !== "rediss:") || url.hostname === "") {
    // The URL may hold a password: never echo it back.
    ctx.addIssue({ code: "custom", message: "expected a URL like redis://host:6379 or rediss://user:password@host:6380/0" });
  }
});

/** How long a presigned URL lasts: whole seconds from 1 s to S3's limit of 7 days. */
const presignExpiry = duration().superRefine((ms, ctx) => {
  if (ms < 1000 || ms > MAX_PRESIGN_MS || ms % 1000 !== 0) {
    ctx.addIssue({ code: "custom", params: { reason: `must be whole seconds from 1s to 7d (S3's limits for a presigned URL), got ${ms} ms` } satisfies ExpectedParams });
  }
});

const logLevel = z.preprocess((value) => (typeof value === "string" ? value.trim().toLowerCase() : value), z.enum(LOG_LEVELS));
const logFormat = z.preprocess((value) => (typeof value === "string" ? value.trim().toLowerCase() : value), z.enum(LOG_FORMATS));

// ------------------------------------------------------------------------------------------------
// Storage (the source design's storage.yaml shape).

const memoryStore = z.strictObject({
  type: z.literal("memory"),
  config: z.strictObject({}).nullish(),
});

const filesystemStore = z.strictObject({
  type: z.literal("filesystem"),
  config: z.strictObject({ root_path: text, fsync: boolean.optional(), file_mode: fileMode.optional() }),
});

const s3Store = z.strictObject({
  type: z.literal("s3"),
  config: z.strictObject({
    bucket_name: text,
    endpoint_url: z
      .preprocess((value) => (value === "" ? undefined : value), httpUrl.optional())
      .optional(),
    region: optionalText,
    s3_access_key: optionalText,
    s3_secret_key: optionalText,
    prefix: optionalText,
    force_path_style: boolean.optional(),
    conditional_writes: z.enum(["auto", "native", "emulated"]).optional(),
  }).refine((config) => (config.s3_access_key === undefined) === (config.s3_secret_key === undefined), {
    message: "s3_access_key and s3_secret_key go together (or leave both out for the AWS credential chain)",
    path: ["s3_secret_key"],
  }),
});

const STORE_TYPES = ["memory", "filesystem", "s3"] as const;

const storeSchema = z
  .preprocess(
    (value) => {
      if (typeof value !== "object" || value === null || !("type" in value) || typeof value.type !== "string") return value;
      const canonical = STORE_TYPE_ALIASES[value.type];
      return canonical === undefined ? value : { ...value, type: canonical };
    },
    z.discriminatedUnion("type", [memoryStore, filesystemStore, s3Store], {
      error: (issue) =>
        issue.code === "invalid_union"
          ? {
              message: `unknown storage type ${describeInput(storeType(issue.input))} (expected ${[...STORE_TYPES, ...Object.keys(STORE_TYPE_ALIASES)].join(", ")})`,
            }
          : undefined,
    }),
  )
  .transform((store): StoreConfig => {
    switch (store.type) {
      case "memory":
        return { type: "memory", config: {} };
      case "filesystem":
        return { type: "filesystem", config: withoutUndefined(store.config) };
      case "s3":
        return { type: "s3", config: withoutUndefined(store.config) };
    }
  });

/** `{stores: {name: {type, config}}, main?: name}`; `main` defaults to the only store. */
export const storageSchema = z
  .strictObject({
    stores: z.record(text, storeSchema),
    main: text.optional(),
  })
  .transform((storage, ctx): { stores: Record<string, StoreConfig>; main: string } => {
    const names = Object.keys(storage.stores);
    if (names.length === 0) {
      ctx.addIssue({ code: "custom", path: ["stores"], message: "must name at least one store" });
      return z.NEVER;
    }
    const main = storage.main ?? (names.length === 1 ? names[0] : undefined);
    if (main === undefined) {
      ctx.addIssue({
        code: "custom",
        path: ["main"],
        message: `required when there are several stores: name one of ${names.map(quote).join(", ")}`,
      });
      return z.NEVER;
    }
    if (!Object.hasOwn(storage.stores, main)) {
      ctx.addIssue({
        code: "custom",
        path: ["main"],
        message: `no store named ${quote(main)} (stores: ${names.map(quote).join(", ")})`,
      });
      return z.NEVER;
    }
    return { stores: storage.stores, main };
  });

// ------------------------------------------------------------------------------------------------
// Backends: each type's options are checked by that type's schema (src/upstreams/backend-types.ts).

const BACKEND_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
const PREFIX_SEGMENTS = /^\/(?:[A-Za-z0-9._~-]+\/)+$/;

const backendSchema = z
  .strictObject({
    type: text,
    name: z.string().regex(BACKEND_NAME),
    config: z.record(z.string(), z.unknown()).nullish(),
  })
  .transform((backend, ctx): BackendDefinition => {
    const config = backend.config ?? {};
    const prefix = config["prefix"];
    const problem = prefixProblem(prefix);
    if (problem !== undefined) {
      ctx.addIssue({ code: "custom", path: ["config", "prefix"], input: prefix, ...problem });
      return z.NEVER;
    }
    const type = findBackendType(backend.type);
    if (type === undefined) {
      ctx.addIssue({ code: "custom", path: ["type"], message: `unknown backend type ${quote(backend.type)} (known: ${backendTypeNames().join(", ")})` });
      return z.NEVER;
    }
    // The type's own options, checked here so every mistake is reported at start with its path.
    const parsed = type.configure(config, { error: configErrorMap });
    if (!parsed.success) {
      for (const issue of parsed.issues) ctx.addIssue({ code: "custom", path: ["config", ...issue.path], message: issue.message });
      return z.NEVER;
    }
    const configured = parsed.value;
    const name = backend.name;
    return { type: type.type, name, options: configured.options, create: (context, where) => configured.create(name, context, where) };
  });

/** What is wrong with a backend's prefix, as issue fields, or undefined when it is fine. */
function prefixProblem(prefix: unknown): { message: string } | { params: ExpectedParams } | undefined {
  if (typeof prefix !== "string") return { params: { expected: 'a URL prefix like "/pypi/"' } };
  if (!prefix.startsWith("/") || !prefix.endsWith("/") || prefix === "/") return { message: `must start and end with "/", got ${JSON.stringify(prefix)}` };
  if (!PREFIX_SEGMENTS.test(prefix) || prefix.split("/").some((part) => part === "." || part === "..")) {
    return { message: `must be path segments of letters, digits and ". _ ~ -", got ${JSON.stringify(prefix)}` };
  }
  if (RESERVED_PREFIXES.some((reserved) => prefix.startsWith(reserved))) return { message: `${JSON.stringify(prefix)} is reserved for the service's own routes` };
  return undefined;
}

const backendsSchema = z.array(backendSchema).superRefine((backends, ctx) => {
  const names = new Map<string, number>();
  const prefixes = new Map<string, number>();
  backends.forEach((backend, index) => {
    const sameName = names.get(backend.name);
    if (sameName !== undefined) {
      ctx.addIssue({
        code: "custom",
        path: [index, "name"],
        message: `duplicate backend name ${quote(backend.name)} (also backends[${sameName}])`,
      });
    } else names.set(backend.name, index);
    // zod runs this check even when an element failed its own: that one is still raw input then.
    const options: unknown = backend.options;
    const prefix = isPlainObject(options) ? options["prefix"] : undefined;
    if (typeof prefix !== "string") return;
    const samePrefix = prefixes.get(prefix);
    if (samePrefix !== undefined) {
      ctx.addIssue({
        code: "custom",
        path: [index, "config", "prefix"],
        message: `duplicate prefix ${quote(prefix)} (also backends[${samePrefix}])`,
      });
    } else prefixes.set(prefix, index);
  });
});

// ------------------------------------------------------------------------------------------------
// The whole file.

const sections = z.strictObject({
  http_host: text.default("127.0.0.1"),
  /** 0 = an ephemeral port (tests). */
  http_port: integer(0, 65535).default(8080),
  log_level: logLevel.default("info"),
  log_format: logFormat.default("auto"),
  /** Shorthand for `storage: {stores: {local: {type: filesystem, config: {root_path: X}}}, main: local}`. */
  cache_dir: text.optional(),
  storage: storageSchema.optional(),
  auth: z
    .strictObject({
      tokens_file: text.default("./tokens.json"),
      /** "token": proxy routes need a read-scoped token too. */
      proxy: z.enum(["anonymous", "token"]).default("anonymous"),
    })
    .prefault({}),
  rate_limit: z
    .strictObject({
      enabled: boolean.default(true),
      /** 0 disables rate limiting altogether (as in the source design); `enabled` then reads false. */
      per_token_per_minute: integer(0).default(1200),
      /** Requests without a token, per client address. 0 = no per-address limit. */
      per_ip_per_minute: integer(0).default(1200),
    })
    .prefault({})
    .transform((limits) => ({ ...limits, enabled: limits.enabled && limits.per_token_per_minute > 0 })),
  /**
   * Whose `X-Forwarded-For` names the client (for per-address rate limits and the access log):
   * false (nobody), true (every peer), a hop count, or proxy addresses / CIDR ranges.
   */
  trust_proxy: trustProxySchema.default(false),
  max_object_size: size(1).default(5 * GiB),
  /**
   * Worker processes serving over one store: `auto` is one per core. A memory store lives in one
   * process's memory, so it is always served by one.
   */
  workers: z.union([z.literal("auto"), integer(1, 256)]).default("auto"),
  shutdown_timeout: duration().default(30_000),
  /** The longest a request (an upload, mostly) may take to arrive whole: 408 past it. */
  request_timeout: duration(1).default(15 * 60_000),
  /** The longest a request body may send nothing: 408 past it. */
  body_timeout: duration(1).default(60_000),
  cache: z
    .strictObject({
      /** Omit (or null) for no bound. */
      max_size: size(1).nullish(),
      metadata_ttl: duration().default(600_000),
      negative_ttl: duration().default(60_000),
      /**
       * A GET hit on a stored immutable artifact is answered `307` to a presigned URL of its S3
       * object, for clients that follow it (see `src/http/redirect-hits.ts`). No effect but a
       * warning at start on a store that cannot sign URLs (memory, filesystem).
       */
      redirect_hits: boolean.default(false),
      /** Smaller hits are served by the vault: a redirect costs the client a round trip. */
      redirect_min_size: size().default(MiB),
      /** How long a presigned URL lasts. */
      redirect_expiry: presignExpiry.default(5 * 60_000),
    })
    .prefault({})
    .transform((cache) => ({
      max_size: cache.max_size ?? undefined,
      metadata_ttl_ms: cache.metadata_ttl,
      negative_ttl_ms: cache.negative_ttl,
      redirect_hits: cache.redirect_hits,
      redirect_min_size: cache.redirect_min_size,
      redirect_expiry_ms: cache.redirect_expiry,
    })),
  /**
   * What several replicas on one bucket agree on (fill leases, rate limits, cache statistics and
   * the LRU access index), through Redis. Without it a vault coordinates only with itself.
   */
  coordination: z
    .strictObject({
      /** `redis://[user:password@]host:port[/db]` or `rediss://`; omit to run alone. */
      redis_url: redisUrl.optional(),
      /** Keys in Redis start with this, so several vault deployments can share one Redis. */
      key_prefix: text.default("artifact-vault:"),
      /**
       * How long a fill lease lasts without renewal: the replica downloading an artifact renews it
       * while it runs; if that replica dies, another takes over after at most this long.
       */
      lease_ttl: duration(1000).default(15_000),
    })
    .prefault({})
    .transform((coordination) => ({
      redis_url: coordination.redis_url,
      key_prefix: coordination.key_prefix,
      lease_ttl_ms: coordination.lease_ttl,
    })),
  /** `GET /metrics` in Prometheus' text format. */
  metrics: z
    .strictObject({
      enabled: boolean.default(true),
      /** A token with the `read` scope is needed to scrape. */
      token_required: boolean.default(false),
    })
    .prefault({}),
  /** `/docs`: the OpenAPI description of the HTTP API (`/docs/json`, `/docs/yaml`) and its interactive page. */
  docs: z.strictObject({ enabled: boolean.default(true) }).prefault({}),
  // Without a `backends` key: the public upstreams, parsed like a written config (prefault, not
  // default) so each gets its type's defaults.
  backends: backendsSchema.prefault(() => DEFAULT_BACKENDS.map((backend) => ({ ...backend, config: { ...backend.config } }))),
});

export const configSchema = z
  .preprocess(
    // `cache:` with every child commented out is YAML null: treat a null section as absent.
    (value) =>
      isPlainObject(value) ? Object.fromEntries(Object.entries(value).filter(([, child]) => child !== null)) : value,
    sections,
  )
  .transform((config, ctx) => {
    if (config.cache_dir !== undefined && config.storage !== undefined) {
      ctx.addIssue({
        code: "custom",
        path: ["cache_dir"],
        message: "give either cache_dir (shorthand for one filesystem store) or storage, not both",
      });
      return z.NEVER;
    }
    const storage = config.storage ?? {
      stores: { local: { type: "filesystem", config: { root_path: config.cache_dir ?? "./data" } } satisfies StoreConfig },
      main: "local",
    };
    return {
      http_host: config.http_host,
      http_port: config.http_port,
      log_level: config.log_level,
      log_format: config.log_format,
      storage,
      auth: config.auth,
      rate_limit: config.rate_limit,
      trust_proxy: config.trust_proxy,
      max_object_size: config.max_object_size,
      workers: config.workers,
      shutdown_timeout_ms: config.shutdown_timeout,
      request_timeout_ms: config.request_timeout,
      body_timeout_ms: config.body_timeout,
      cache: config.cache,
      coordination: config.coordination,
      metrics: config.metrics,
      docs: config.docs,
      backends: config.backends,
    };
  });

export type VaultConfig = z.output<typeof configSchema>;
export type StorageSettings = z.output<typeof storageSchema>;

/** The store the service serves from. */
export function mainStore(config: Pick<VaultConfig, "storage">): StoreConfig {
  const store = config.storage.stores[config.storage.main];
  if (store === undefined) throw new Error(`storage.main names no store: ${config.storage.main}`);
  return store;
}

// ------------------------------------------------------------------------------------------------
// Messages.

export interface ConfigIssue {
  /** `rate_limit.per_token_per_minute`, `backends[2].config.prefix`; "" for the whole document. */
  readonly path: string;
  readonly message: string;
}

export type ParseResult<T> = { ok: true; value: T } | { ok: false; issues: ConfigIssue[] };

export function parseConfig(input: unknown): ParseResult<VaultConfig> {
  return toResult(configSchema.safeParse(input, { error: configErrorMap }));
}

export function parseStorage(input: unknown): ParseResult<StorageSettings> {
  return toResult(storageSchema.safeParse(input, { error: configErrorMap }));
}

/** The full configuration with every default, as if from an empty file. */
export function defaultConfig(): VaultConfig {
  const result = parseConfig({});
  if (!result.ok) throw new Error("the default configuration does not validate");
  return result.value;
}

function toResult<T>(result: z.ZodSafeParseResult<T>): ParseResult<T> {
  if (result.success) return { ok: true, value: result.data };
  return { ok: false, issues: result.error.issues.map((issue) => ({ path: formatPath(issue.path), message: issue.message })) };
}

/** `["backends", 2, "config", "prefix"]` → `backends[2].config.prefix`. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = "";
  for (const key of path) {
    if (typeof key === "number") out += `[${key}]`;
    else {
      const name = String(key);
      out += /^[A-Za-z_][A-Za-z0-9_-]*$/.test(name) ? (out === "" ? name : `.${name}`) : `[${JSON.stringify(name)}]`;
    }
  }
  return out;
}

/** Keys whose values never appear in a message (`per_token_per_minute` and `tokens_file` do). */
const SECRET_KEY = /secret|password|passwd|credential|(?:^|_)(?:token|api_key|access_key)$/i;

const EXPECTED_NAMES: Readonly<Record<string, string>> = {
  string: "a string",
  number: "a number",
  int: "a whole number",
  boolean: "true or false",
  object: "a mapping",
  record: "a mapping",
  array: "a list",
  null: "null",
};

/**
 * Renders zod issues as this project's config messages. Sees the issue's full path, so a value
 * under a secret-looking key (`s3_secret_key`, `password`) is never echoed back.
 */
export const configErrorMap: z.core.$ZodErrorMap = (issue) => {
  const lastKey = issue.path?.at(-1);
  const secret = typeof lastKey === "string" && SECRET_KEY.test(lastKey);
  const got = (input: unknown) => (secret ? "a value of the wrong kind" : describeInput(input));
  const expecting = (expected: string) =>
    issue.input === undefined ? `missing: expected ${expected}` : `expected ${expected}, got ${got(issue.input)}`;
  switch (issue.code) {
    case "custom": {
      const params = (issue.params ?? {}) as ExpectedParams;
      if (params.reason !== undefined) return secret ? "invalid value" : params.reason;
      if (params.expected !== undefined) return expecting(params.expected);
      return undefined;
    }
    case "invalid_type":
      return expecting(EXPECTED_NAMES[issue.expected] ?? issue.expected);
    case "unrecognized_keys":
      return `unknown key${issue.keys.length === 1 ? "" : "s"} ${issue.keys.map(quote).join(", ")}${suggestion(issue)}`;
    case "invalid_value":
      return expecting(issue.values.length === 1 ? describeInput(issue.values[0]) : `one of ${issue.values.map(describeInput).join(", ")}`);
    case "too_small":
      if (issue.origin === "string" && Number(issue.minimum) === 1) return issue.input === undefined ? "missing" : "must not be empty";
      return undefined;
    case "invalid_format":
      if (issue.format === "regex" && lastKey === "name") {
        return `expected a name of letters, digits and ". _ -", got ${got(issue.input)}`;
      }
      return undefined;
    default:
      return undefined;
  }
};

function suggestion(issue: { keys: string[]; inst?: unknown }): string {
  if (issue.keys.length !== 1) return "";
  const shape = (issue.inst as { shape?: Record<string, unknown> } | undefined)?.shape;
  if (shape === undefined) return "";
  const key = issue.keys[0] ?? "";
  let best: string | undefined;
  let bestDistance = Math.max(2, Math.floor(key.length / 3)) + 1;
  for (const candidate of Object.keys(shape)) {
    const distance = editDistance(key, candidate);
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return best === undefined ? "" : ` (did you mean ${quote(best)}?)`;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, index) => index);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      current[j] = Math.min((previous[j] ?? 0) + 1, (current[j - 1] ?? 0) + 1, (previous[j - 1] ?? 0) + cost);
    }
    previous = current;
  }
  return previous[b.length] ?? 0;
}

/** How a value reads in a message: strings quoted, containers by kind. */
export function describeInput(value: unknown): string {
  if (value === undefined) return "nothing";
  if (value === null) return "null";
  if (typeof value === "string") return JSON.stringify(value);
  if (typeof value === "number" || typeof value === "boolean" || typeof value === "bigint") return String(value);
  if (Array.isArray(value)) return "a list";
  if (value instanceof Date) return JSON.stringify(value.toISOString());
  if (typeof value === "object") return "a mapping";
  return typeof value;
}

function storeType(store: unknown): unknown {
  return isPlainObject(store) ? store["type"] : store;
}

function quote(value: string): string {
  return JSON.stringify(value);
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function withoutUndefined<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, child]) => child !== undefined)) as T;
}
