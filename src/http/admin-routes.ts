import type { FastifyInstance, FastifyRequest } from "fastify";
import { VaultError } from "../core/errors.js";
import type { CacheAdmin, CacheEntry, PurgeTarget } from "../cache/cache-admin.js";
import type { FillProgress } from "../cache/artifact-cache.js";
import { decodeCursor, encodeCursor } from "../objects/list-cursor.js";
import { parseListLimit } from "../objects/object-service.js";
import { rejectOtherMethods } from "./reject-methods.js";
import { cacheFillsSchema, cacheStatsSchema, listCacheEntriesSchema, purgeCacheEntriesSchema } from "./route-schemas.js";

type Query = Record<string, string | string[] | undefined>;

/**
 * Cache administration (SPEC §5 "Observable", issue 4 item 6), for tokens with the `admin`
 * scope; JSON answers and the object API's error envelope; rate-limited like the object API.
 *
 * - `GET /admin/cache/entries?backend=&prefix=&limit=&cursor=` — `{entries, next_cursor, has_more}`
 * - `DELETE /admin/cache/entries?key=K | ?prefix=P | ?all=true` — `{purged: n}`
 * - `GET /admin/cache/stats` — counters, sizes, per-backend usage
 * - `GET /admin/cache/fills` — `{fills: [...]}` downloads in progress with bytes and percent
 *
 * With `workers: N` the downloads in progress (the list, and `fills_in_progress` of the stats) are
 * every worker's, asked of them through the primary: 503 if one does not answer in time.
 */
export function registerAdminRoutes(app: FastifyInstance, admin: CacheAdmin): void {
  const config = { scope: "admin" } as const;

  app.get("/admin/cache/entries", { config, schema: listCacheEntriesSchema }, async (request) => {
    const query = request.query as Query;
    const limit = parseListLimit(single(query, "limit"));
    const cursor = single(query, "cursor");
    const page = await admin.listEntries({
      prefix: single(query, "prefix") ?? "",
      backend: nonEmpty(single(query, "backend")),
      limit,
      startAfter: cursor === undefined || cursor === "" ? undefined : decodeCursor(cursor),
    });
    return {
      entries: page.entries.map(entryJson),
      next_cursor: page.hasMore && page.lastKey !== undefined ? encodeCursor(page.lastKey) : null,
      has_more: page.hasMore,
    };
  });

  app.delete("/admin/cache/entries", { config, schema: purgeCacheEntriesSchema }, async (request) => ({ purged: await admin.purge(purgeTarget(request)) }));
  rejectOtherMethods(app, "/admin/cache/entries", ["GET", "DELETE"]);

  app.get("/admin/cache/stats", { config, schema: cacheStatsSchema }, async () => {
    const stats = await admin.stats();
    return {
      hits: stats.hits,
      misses: stats.misses,
      stale: stats.stale,
      revalidated: stats.revalidated,
      hit_ratio: stats.hitRatio ?? null,
      bytes_from_cache: stats.bytesFromCache,
      bytes_from_upstream: stats.bytesFromUpstream,
      total_bytes: stats.totalBytes,
      entry_count: stats.entryCount,
      max_size: stats.maxSize ?? null,
      evictions: stats.evictions,
      index_ready: stats.indexReady,
      fills_in_progress: stats.fillsInProgress,
      backends: Object.fromEntries(stats.backends),
    };
  });
  rejectOtherMethods(app, "/admin/cache/stats", ["GET"]);

  app.get("/admin/cache/fills", { config, schema: cacheFillsSchema }, async () => ({ fills: (await admin.fills()).map(fillJson) }));
  rejectOtherMethods(app, "/admin/cache/fills", ["GET"]);
}

function purgeTarget(request: FastifyRequest): PurgeTarget {
  const query = request.query as Query;
  const key = single(query, "key");
  const prefix = single(query, "prefix");
  const all = single(query, "all");
  if (all !== undefined && all !== "true" && all !== "false") throw new VaultError("bad_request", "all must be true or false");
  const wanted = [key !== undefined, prefix !== undefined && prefix !== "", all === "true"].filter(Boolean).length;
  if (wanted > 1) throw new VaultError("bad_request", "give one of key, prefix or all=true");
  if (key !== undefined) return { key };
  if (all === "true") return { all: true };
  if (prefix === undefined) throw new VaultError("bad_request", "say what to purge: key=KEY, prefix=PREFIX or all=true");
  return { prefix };
}

function entryJson(entry: CacheEntry): Record<string, unknown> {
  return {
    key: entry.key,
    backend: entry.backend,
    size: entry.size,
    content_type: entry.contentType ?? null,
    sha256: entry.sha256,
    cached_at: entry.cachedAt.toISOString(),
    validated_at: entry.validatedAt.toISOString(),
    freshness: entry.freshness.kind,
    ...(entry.freshness.kind === "mutable" ? { ttl_seconds: entry.freshness.ttlMs / 1000 } : {}),
    fresh: entry.fresh ?? null,
    ...(entry.staleAt === undefined ? {} : { stale_at: entry.staleAt.toISOString() }),
    ...(entry.upstreamEtag === undefined ? {} : { upstream_etag: entry.upstreamEtag }),
    ...(entry.upstreamLastModified === undefined ? {} : { upstream_last_modified: entry.upstreamLastModified }),
    last_access: entry.lastAccess?.toISOString() ?? null,
  };
}

function fillJson(fill: FillProgress): Record<string, unknown> {
  return {
    key: fill.key,
    backend: fill.backend,
    bytes: fill.bytes,
    total: fill.total ?? null,
    percent: fill.percent ?? null,
    started_at: fill.startedAt.toISOString(),
    waiters: fill.waiters,
  };
}

function single(query: Query, name: string): string | undefined {
  const value = query[name];
  if (Array.isArray(value)) throw new VaultError("bad_request", `query parameter '${name}' given more than once`);
  return value;
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === "" ? undefined : value;
}
