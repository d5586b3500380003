import type { FastifyInstance, FastifySchema } from "fastify";
// The schema keys of the description (`tags`, `summary`, `security`…) are declared by it.
import type {} from "@fastify/swagger";
import type { Scope } from "../auth/tokens-file.js";
import { MAX_KEY_BYTES } from "../core/storage-key.js";
import { DEFAULT_LIST_LIMIT, MAX_LIST_LIMIT } from "../objects/object-service.js";

/**
 * The schemas of the documented HTTP API — the object API, cache administration, `/health`,
 * `/ready`, `/metrics` — given to the routes as their `schema` option. Fastify validates requests
 * and serializes answers with them and `/docs` describes them (`api-docs.ts`): one source, so the
 * description cannot drift from the code. What holds here:
 *
 * - A JSON answer's schema serializes it (fast-json-stringify), and a property missing from the
 *   schema is silently dropped from the answer: every field a handler returns is listed, a field
 *   that may be null is typed so. `tests/integration/api-docs.test.ts` checks real answers, before
 *   serialization, against the description.
 * - Bytes (an object's body, the metrics text) are described by media type, never serialized.
 * - Query parameters are strings the routes parse by hand with precise messages: the schemas
 *   describe them and reject nothing the parsers accept (no patterns, no defaults). The one thing
 *   they do refuse, a parameter given twice, is told as the parsers tell it (`validationError`).
 * - Which token a route needs is its `config.scope`; the description's `security` is derived from
 *   it (`api-docs.ts`), never written twice.
 * - Shared answers (the error envelope, an object's info, a cache entry) are added once with
 *   `addSharedSchemas` and referenced with `ref(...)`; a new route reuses them the same way.
 */

/** The tags of the description: each documented route has one (untagged routes are not described). */
export const TAGS = {
  objects: "objects",
  cacheAdmin: "cache admin",
  operations: "operations",
} as const;

/** The shared schemas' ids: each is a component of the description under that name. */
export type SharedSchemaId = "Error" | "ObjectInfo" | "ObjectList" | "CacheEntry" | "CacheEntryPage" | "CachePurge" | "CacheStats" | "CacheFills" | "Health" | "Readiness";

/** A reference to a shared schema (resolved by Fastify and by `/docs` alike). */
export function ref(id: SharedSchemaId): { $ref: string } {
  return { $ref: `${id}#` };
}

const isoDate = (description: string) => ({ type: "string", format: "date-time", description }) as const;
const nullable = <T extends string>(type: T) => [type, "null"] as const;

const errorBody = {
  $id: "Error",
  type: "object",
  description: "An error, in the object API's envelope: `code` is the HTTP status as a string.",
  properties: {
    error: {
      type: "object",
      properties: {
        code: { type: "string", description: "The HTTP status, e.g. `\"404\"`.", examples: ["404"] },
        message: { type: "string", description: "What went wrong; for a fault of the vault or its upstream, the request id to quote (the log has the details)." },
      },
      required: ["code", "message"],
    },
  },
  required: ["error"],
} as const;

const objectInfoBody = {
  $id: "ObjectInfo",
  type: "object",
  description: "The object just written.",
  properties: {
    key: { type: "string", description: "The key, decoded." },
    size: { type: "integer", minimum: 0, description: "Its size in bytes." },
    created_at: isoDate("When this write happened (an overwrite is a new object)."),
  },
  required: ["key", "size", "created_at"],
} as const;

const objectListBody = {
  $id: "ObjectList",
  type: "object",
  description: "One page of keys, in the lexicographic order of their UTF-8 bytes.",
  properties: {
    keys: { type: "array", items: { type: "string" } },
    next_cursor: { type: nullable("string"), description: "Where the next page starts (give it as `cursor`); null on the last page." },
    has_more: { type: "boolean", description: "Whether a next page exists." },
  },
  required: ["keys", "next_cursor", "has_more"],
} as const;

const cacheEntryBody = {
  $id: "CacheEntry",
  type: "object",
  description: "One cached artifact.",
  properties: {
    key: { type: "string", description: "`<backend>/<path>`." },
    backend: { type: "string", description: "The backend that cached it." },
    size: { type: "integer", minimum: 0 },
    content_type: { type: nullable("string") },
    sha256: { type: "string", description: "Hex SHA-256 of the bytes." },
    cached_at: isoDate("When it was downloaded from upstream."),
    validated_at: isoDate("When upstream last confirmed it (the download or a later 304)."),
    freshness: {
      type: "string",
      enum: ["immutable", "mutable", "unknown"],
      description: "Immutable (always fresh), mutable (revalidated after `ttl_seconds`), or unknown (its backend is no longer configured or no longer maps the key).",
    },
    ttl_seconds: { type: "number", description: "Mutable entries: how long they stay fresh." },
    fresh: { type: nullable("boolean"), description: "Whether the next request would be answered without asking upstream; null when unknown." },
    stale_at: isoDate("Mutable entries: when they go stale."),
    upstream_etag: { type: "string", description: "The upstream's ETag, when it sent one." },
    upstream_last_modified: { type: "string", description: "The upstream's Last-Modified, when it sent one." },
    last_access: {
      type: nullable("string"),
      format: "date-time",
      description: "When it was last served (or stored), as the eviction (LRU) index knows it; null while the index does not know the entry.",
    },
  },
  required: ["key", "backend", "size", "content_type", "sha256", "cached_at", "validated_at", "freshness", "fresh", "last_access"],
} as const;

const cacheEntryPageBody = {
  $id: "CacheEntryPage",
  type: "object",
  description: "One page of cached entries, in key order.",
  properties: {
    entries: { type: "array", items: ref("CacheEntry") },
    next_cursor: { type: nullable("string"), description: "Where the next page starts; null on the last page." },
    has_more: { type: "boolean" },
  },
  required: ["entries", "next_cursor", "has_more"],
} as const;

const cachePurgeBody = {
  $id: "CachePurge",
  type: "object",
  properties: { purged: { type: "integer", minimum: 0, description: "How many stored entries were removed." } },
  required: ["purged"],
} as const;

const cacheStatsBody = {
  $id: "CacheStats",
  type: "object",
  description: "Counters since start (of every replica when they are coordinated), and the cache's size.",
  properties: {
    hits: { type: "integer", minimum: 0 },
    misses: { type: "integer", minimum: 0 },
    stale: { type: "integer", minimum: 0, description: "Stale copies served while the upstream failed." },
    revalidated: { type: "integer", minimum: 0, description: "Answers confirmed by the upstream with a 304." },
    hit_ratio: { type: nullable("number"), minimum: 0, maximum: 1, description: "Answered from the cache (hits, stale, revalidated) ÷ all; null before any request." },
    bytes_from_cache: { type: "integer", minimum: 0 },
    bytes_from_upstream: { type: "integer", minimum: 0 },
    total_bytes: { type: "integer", minimum: 0, description: "What the cache holds." },
    entry_count: { type: "integer", minimum: 0 },
    max_size: { type: nullable("integer"), description: "`cache.max_size` in bytes; null when unbounded." },
    evictions: { type: "integer", minimum: 0 },
    index_ready: { type: "boolean", description: "False while the start-up scan runs: sizes and counts cover only what was used since." },
    fills_in_progress: { type: "integer", minimum: 0, description: "Downloads in progress: as many as `GET /admin/cache/fills` lists." },
    backends: {
      type: "object",
      description: "Per backend: every configured one (zeros when empty) and any other found in the cache.",
      additionalProperties: {
        type: "object",
        properties: { entries: { type: "integer", minimum: 0 }, bytes: { type: "integer", minimum: 0 } },
        required: ["entries", "bytes"],
      },
    },
  },
  required: [
    "hits",
    "misses",
    "stale",
    "revalidated",
    "hit_ratio",
    "bytes_from_cache",
    "bytes_from_upstream",
    "total_bytes",
    "entry_count",
    "max_size",
    "evictions",
    "index_ready",
    "fills_in_progress",
    "backends",
  ],
} as const;

const cacheFillsBody = {
  $id: "CacheFills",
  type: "object",
  properties: {
    fills: {
      type: "array",
      description: "Downloads in progress, oldest first: every worker's with `workers: N`, each once (each replica lists its own).",
      items: {
        type: "object",
        properties: {
          key: { type: "string" },
          backend: { type: "string" },
          bytes: { type: "integer", minimum: 0, description: "Downloaded so far." },
          total: { type: nullable("integer"), description: "The announced size; null when the upstream did not say." },
          percent: { type: nullable("number"), minimum: 0, maximum: 100, description: "null when the size is unknown." },
          started_at: isoDate("When the download started."),
          waiters: { type: "integer", minimum: 0, description: "Requests being answered from the download now (its starter included), on every worker." },
        },
        required: ["key", "backend", "bytes", "total", "percent", "started_at", "waiters"],
      },
    },
  },
  required: ["fills"],
} as const;

const healthBody = {
  $id: "Health",
  type: "object",
  properties: {
    status: { type: "string", enum: ["healthy", "degraded"], description: "`degraded`: a replica that lost its Redis serves alone." },
    service: { type: "string", enum: ["artifact-vault"] },
    version: { type: "string" },
    coordination: {
      type: "object",
      properties: {
        mode: { type: "string", enum: ["alone", "workers", "redis"] },
        redis: { type: "string", enum: ["up", "down"], description: "With `mode: redis`." },
      },
      required: ["mode"],
    },
    worker: {
      type: "object",
      description: "The worker process that answered, when the vault runs several.",
      properties: { id: { type: "integer", minimum: 1 }, count: { type: "integer", minimum: 1 }, pid: { type: "integer" } },
      required: ["id", "count", "pid"],
    },
  },
  required: ["status", "service", "version", "coordination"],
} as const;

const readinessBody = {
  $id: "Readiness",
  type: "object",
  properties: {
    status: { type: "string", enum: ["ready", "not ready"] },
    service: { type: "string", enum: ["artifact-vault"] },
    not_ready: { type: "array", items: { type: "string" }, description: "The parts that are not ready." },
    parts: {
      type: "object",
      description: "Each part's state: `ready`, what it is still doing, or `failed: <reason>`.",
      additionalProperties: { type: "string" },
    },
  },
  required: ["status", "service", "not_ready", "parts"],
} as const;

const SHARED_SCHEMAS: ReadonlyArray<{ readonly $id: SharedSchemaId }> = [
  errorBody,
  objectInfoBody,
  objectListBody,
  cacheEntryBody,
  cacheEntryPageBody,
  cachePurgeBody,
  cacheStatsBody,
  cacheFillsBody,
  healthBody,
  readinessBody,
];

/** Adds the shared schemas; before any route that references them (whether `/docs` is on or not). */
export function addSharedSchemas(app: FastifyInstance): void {
  for (const schema of SHARED_SCHEMAS) app.addSchema(schema);
}

/**
 * Fastify's validation failed (the routes' own parsing reports everything else): a query
 * parameter given twice is an array where a string is described, said as the routes say it.
 */
export function validationError(errors: ReadonlyArray<{ readonly keyword: string; readonly instancePath: string; readonly message?: string | undefined }>, part: string): Error {
  const first = errors[0];
  const name = first?.instancePath.slice(1) ?? "";
  if (part === "querystring" && first?.keyword === "type" && name !== "" && !name.includes("/")) {
    return new Error(`query parameter '${name}' given more than once`);
  }
  return new Error(`${part}${first?.instancePath ?? ""} ${first?.message ?? "is invalid"}`);
}

// ------------------------------------------------------------------------------------------------
// Answers.

/** A response header: its type and what it says. */
export interface HeaderSchema {
  readonly type: "string" | "integer";
  readonly description: string;
}

type Headers = Readonly<Record<string, HeaderSchema>>;

const header = (description: string, type: HeaderSchema["type"] = "string"): HeaderSchema => ({ type, description });

const RETRY_AFTER = { "retry-after": header("Whole seconds to wait.", "integer") };

/** An error answer: what it means, the envelope, and the headers that come with the status. */
export function errorResponse(description: string, headers?: Headers): { readonly description: string; readonly headers?: Headers; readonly $ref: string } {
  return { description, ...(headers === undefined ? {} : { headers }), ...ref("Error") };
}

/** What every route behind a token may answer besides its own: 401, 403, 429. */
export const TOKEN_ERRORS = {
  401: errorResponse("No valid token: missing, unknown or expired.", { "www-authenticate": header('`Bearer realm="artifact-vault"`') }),
  403: errorResponse("The token lacks the scope this operation needs (the message names it)."),
  429: errorResponse("Too many requests: the token's (or the address's) rate limit, or too many failed authentications from this address.", RETRY_AFTER),
} as const;

/** What any route may answer when the vault itself fails. */
export const SERVER_ERRORS = {
  "5xx": errorResponse("A fault of the vault: 500 internal error (the message quotes the request id to look up in the log), 503 store unavailable or shutting down, 507 store full."),
} as const;

/** `SERVER_ERRORS` of a route that asks every worker (the downloads in progress). */
const WORKERS_GATHERED_ERRORS = {
  "5xx": errorResponse(
    "A fault of the vault: 500 internal error (the message quotes the request id to look up in the log), 503 store unavailable, shutting down, or (with `workers: N`) a worker's downloads in progress could not be gathered in time, 507 store full.",
  ),
} as const;

/** No body (a HEAD, a 204, a 304): the headers say it all. */
const noBody = (description: string, headers?: Headers) => ({
  description,
  ...(headers === undefined ? {} : { headers }),
  type: "null",
});

// ------------------------------------------------------------------------------------------------
// The object API.

/** The `*` of `/objects/*`: the key (`/docs` names it `key`). */
const keyParams = {
  type: "object",
  properties: {
    "*": {
      type: "string",
      description: `The key, URL-encoded (\`/\`, spaces and other reserved characters included) and decoded exactly once: any UTF-8 string of 1 to ${MAX_KEY_BYTES} bytes without NUL.`,
    },
  },
} as const;

const representationHeaders = {
  etag: header("Strong ETag of the stored bytes."),
  "last-modified": header("When it was written."),
  "content-type": header("The type it was stored with (`application/octet-stream` when none was given)."),
  "content-length": header("Its size, or the range's.", "integer"),
  "accept-ranges": header("`bytes`."),
} as const;

const KEY_ERROR = `A bad key (empty, with a NUL, over ${MAX_KEY_BYTES} bytes, or not valid UTF-8 once decoded).`;

export const listObjectsSchema = {
  tags: [TAGS.objects],
  summary: "List keys",
  description: `Keys in the lexicographic order of their UTF-8 bytes, a page at a time (as S3 lists). The cursor is opaque and stays valid even if its key was deleted since.`,
  querystring: {
    type: "object",
    properties: {
      prefix: { type: "string", description: "Only keys that start with this (no NUL)." },
      limit: { type: "string", description: `Keys per page: an integer from 1 to ${MAX_LIST_LIMIT}; ${DEFAULT_LIST_LIMIT} when absent or empty.` },
      cursor: { type: "string", description: "The `next_cursor` of the previous page." },
    },
  },
  response: {
    200: { description: "One page of keys.", ...ref("ObjectList") },
    400: errorResponse("A bad `limit`, a malformed `cursor`, a NUL in `prefix`, or a parameter given twice."),
    ...TOKEN_ERRORS,
    ...SERVER_ERRORS,
  },
} as const satisfies FastifySchema;

export const putObjectSchema = {
  tags: [TAGS.objects],
  summary: "Write an object",
  description:
    "The request body is the object, streamed (never buffered whole). The write is atomic: a reader sees the old object or the whole new one, never a part.",
  streamedBody: { description: "The object's bytes, of any type (`Content-Type` says which).", mediaType: "application/octet-stream" },
  params: keyParams,
  headers: {
    type: "object",
    properties: {
      "content-type": { type: "string", description: "Stored, and returned on GET." },
      "if-none-match": { type: "string", description: "`*`: create only (412 if the key exists); else ETags the current object must not have." },
      "if-match": { type: "string", description: "`*`: the key must exist; else the ETag the current object must have (412 otherwise)." },
      "x-checksum-sha256": { type: "string", description: "The body's SHA-256, 64 hex digits or base64 of 32 bytes: 400 on a mismatch, nothing stored." },
      "content-md5": { type: "string", description: "The body's MD5, base64: 400 on a mismatch, nothing stored." },
    },
  },
  response: {
    200: { description: "Written.", ...ref("ObjectInfo") },
    400: errorResponse(`${KEY_ERROR} Or a checksum header that is malformed or does not match the body: nothing is stored.`),
    408: errorResponse("The body stopped arriving (`body_timeout`) or took too long (`request_timeout`): nothing is stored."),
    412: errorResponse("`If-None-Match` or `If-Match` does not hold."),
    413: errorResponse("Larger than `max_object_size`: nothing is stored."),
    ...TOKEN_ERRORS,
    ...SERVER_ERRORS,
  },
} as const satisfies FastifySchema;

export const getObjectSchema = {
  tags: [TAGS.objects],
  summary: "Read an object",
  description: "Streams the object. One range (`Range: bytes=…`) gives a 206; several ranges, or one that cannot be parsed, are ignored (200).",
  params: keyParams,
  headers: {
    type: "object",
    properties: {
      range: { type: "string", description: "`bytes=first-[last]` or `bytes=-suffix`: one range." },
      "if-range": { type: "string", description: "The range applies only if the object still has this strong ETag or exactly this Last-Modified." },
      "if-none-match": { type: "string", description: "ETags the client has: 304 when one matches." },
      "if-modified-since": { type: "string", description: "304 when not modified since (ignored with `If-None-Match`)." },
    },
  },
  response: {
    200: {
      description: "The object's bytes, with the type it was stored with.",
      headers: representationHeaders,
      content: { "*/*": { schema: { type: "string", format: "binary" } } },
    },
    206: {
      description: "The range asked for.",
      headers: { ...representationHeaders, "content-range": header("`bytes first-last/size`.") },
      content: { "*/*": { schema: { type: "string", format: "binary" } } },
    },
    304: noBody("Not modified: the client's copy is current.", { etag: representationHeaders.etag }),
    400: errorResponse(KEY_ERROR),
    404: errorResponse("No object has this key."),
    416: errorResponse("The range starts past the end.", { "content-range": header("`bytes */size`.") }),
    ...TOKEN_ERRORS,
    ...SERVER_ERRORS,
  },
} as const satisfies FastifySchema;

export const headObjectSchema = {
  tags: [TAGS.objects],
  summary: "An object's headers",
  description: "What a GET would answer, without the body.",
  params: keyParams,
  headers: {
    type: "object",
    properties: {
      "if-none-match": getObjectSchema.headers.properties["if-none-match"],
      "if-modified-since": getObjectSchema.headers.properties["if-modified-since"],
    },
  },
  response: {
    200: noBody("It exists.", representationHeaders),
    304: getObjectSchema.response[304],
    400: errorResponse(`${KEY_ERROR} (No body on a HEAD.)`),
    404: errorResponse("No object has this key. (No body on a HEAD.)"),
    ...TOKEN_ERRORS,
    ...SERVER_ERRORS,
  },
} as const satisfies FastifySchema;

export const deleteObjectSchema = {
  tags: [TAGS.objects],
  summary: "Delete an object",
  params: keyParams,
  response: {
    204: noBody("Deleted."),
    400: errorResponse(KEY_ERROR),
    404: errorResponse("No object has this key."),
    ...TOKEN_ERRORS,
    ...SERVER_ERRORS,
  },
} as const satisfies FastifySchema;

// ------------------------------------------------------------------------------------------------
// Cache administration.

export const listCacheEntriesSchema = {
  tags: [TAGS.cacheAdmin],
  summary: "List cached entries",
  description: "Cached artifacts with their metadata and freshness, in key order, a page at a time.",
  querystring: {
    type: "object",
    properties: {
      backend: { type: "string", description: "Only this backend's entries." },
      prefix: { type: "string", description: "Only keys (`<backend>/<path>`) that start with this." },
      limit: listObjectsSchema.querystring.properties.limit,
      cursor: listObjectsSchema.querystring.properties.cursor,
    },
  },
  response: {
    200: { description: "One page of entries.", ...ref("CacheEntryPage") },
    400: errorResponse("A bad `limit`, `cursor`, `prefix` or `backend`, or a parameter given twice."),
    ...TOKEN_ERRORS,
    ...SERVER_ERRORS,
  },
} as const satisfies FastifySchema;

export const purgeCacheEntriesSchema = {
  tags: [TAGS.cacheAdmin],
  summary: "Purge cached entries",
  description:
    "Forgets cached entries (the stored copy, its freshness, a remembered upstream 404): give exactly one of `key`, a non-empty `prefix`, or `all=true`. A download in progress is not cancelled.",
  querystring: {
    type: "object",
    properties: {
      key: { type: "string", description: "One entry's key." },
      prefix: { type: "string", description: "Every entry whose key starts with this (not empty)." },
      all: { type: "string", description: "`true`: the whole cache (`false` is accepted and means nothing)." },
    },
  },
  response: {
    200: { description: "Purged.", ...ref("CachePurge") },
    400: errorResponse("Not exactly one of `key`, `prefix` or `all=true`, a bad key or prefix, or a parameter given twice."),
    ...TOKEN_ERRORS,
    ...SERVER_ERRORS,
  },
} as const satisfies FastifySchema;

export const cacheStatsSchema = {
  tags: [TAGS.cacheAdmin],
  summary: "Cache statistics",
  description: "Hits, misses, bytes served from the cache and from upstream, size per backend, downloads in progress.",
  response: {
    200: { description: "The statistics.", ...ref("CacheStats") },
    ...TOKEN_ERRORS,
    ...WORKERS_GATHERED_ERRORS,
  },
} as const satisfies FastifySchema;

export const cacheFillsSchema = {
  tags: [TAGS.cacheAdmin],
  summary: "Downloads in progress",
  description: "The downloads from upstream in progress, with bytes and percent: with `workers: N`, every worker's (the same list whichever worker answers).",
  response: {
    200: { description: "The downloads.", ...ref("CacheFills") },
    ...TOKEN_ERRORS,
    ...WORKERS_GATHERED_ERRORS,
  },
} as const satisfies FastifySchema;

// ------------------------------------------------------------------------------------------------
// Operations.

export const healthSchema = {
  tags: [TAGS.operations],
  summary: "Liveness",
  description: "200 while the vault serves, `degraded` included.",
  response: { 200: { description: "Serving.", ...ref("Health") } },
} as const satisfies FastifySchema;

export const readySchema = {
  tags: [TAGS.operations],
  summary: "Readiness",
  description: "503 until the start-up work done in the background (the store's and the cache's indexes, the tokens file) is over, then 200: for load balancers and orchestrators.",
  response: {
    200: { description: "Ready.", headers: { "cache-control": header("`no-store`.") }, ...ref("Readiness") },
    503: { description: "Not ready yet: `not_ready` names the parts still working.", headers: { "cache-control": header("`no-store`.") }, ...ref("Readiness") },
  },
} as const satisfies FastifySchema;

/** `/metrics`: behind a token with `metrics.token_required` (its scope), public otherwise. */
export function metricsSchema(scope: Scope | undefined): FastifySchema {
  return {
    tags: [TAGS.operations],
    summary: "Prometheus metrics",
    description: "The vault's metrics in Prometheus' text format (every worker's, summed); never rate-limited. A token is needed with `metrics.token_required: true`.",
    response: {
      200: {
        description: "Prometheus' text exposition format, version 0.0.4.",
        headers: { "cache-control": header("`no-store`.") },
        content: { "text/plain": { schema: { type: "string" } } },
      },
      ...(scope === undefined ? {} : { 401: TOKEN_ERRORS[401], 403: TOKEN_ERRORS[403], 429: errorResponse("Too many failed authentications from this address.", RETRY_AFTER) }),
      "5xx": errorResponse("503: a worker's metrics could not be gathered in time."),
    },
  };
}

declare module "fastify" {
  interface FastifySchema {
    /**
     * A request body the route streams itself (Fastify never parses it): described in `/docs`
     * only, since a `body` schema would be validated against a body that is never parsed.
     */
    streamedBody?: { readonly description: string; readonly mediaType: string };
  }
}
