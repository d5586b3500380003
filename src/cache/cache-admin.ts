import { VaultError } from "../core/errors.js";
import type { Freshness } from "../core/cache/artifact-ref.js";
import { decideFreshness } from "../core/cache/freshness.js";
import { validateKey } from "../core/storage-key.js";
import type { ObjectInfo } from "../storage/storage-driver.js";
import { isRedirect, type Backend } from "../upstreams/backend.js";
import { META, type ArtifactCache, type FillProgress } from "./artifact-cache.js";

/** How many entries are stat'ed (listing) or deleted (purging) at once. */
const CONCURRENCY = 16;
/** Keys asked of the store per page while purging a prefix. */
const PURGE_PAGE = 1000;

/**
 * How fresh a cached entry is, as the backend that owns it would decide on the next request:
 * `immutable` (always fresh), `mutable` (fresh until `validatedAt + ttlMs`), or `unknown` when
 * the entry's backend is no longer configured or no longer maps the key to itself.
 */
export type EntryFreshness = { readonly kind: "immutable" } | { readonly kind: "mutable"; readonly ttlMs: number } | { readonly kind: "unknown" };

/** One cached artifact as administration sees it. */
export interface CacheEntry {
  readonly key: string;
  readonly backend: string;
  readonly size: number;
  readonly contentType: string | undefined;
  readonly sha256: string;
  /** When it was downloaded from upstream. */
  readonly cachedAt: Date;
  /** When upstream last confirmed it: the download or a later 304 (this process only). */
  readonly validatedAt: Date;
  readonly freshness: EntryFreshness;
  /** Whether the next request would be served without asking upstream; undefined when unknown. */
  readonly fresh: boolean | undefined;
  /** Mutable entries: when they go stale. */
  readonly staleAt: Date | undefined;
  readonly upstreamEtag: string | undefined;
  readonly upstreamLastModified: string | undefined;
  /**
   * When it was last served (or stored), as the access index (LRU) knows it: of every worker and
   * replica when they share one. Entries found by the start-up scan count from their store
   * modification time; undefined while the index does not know the entry.
   */
  readonly lastAccess: Date | undefined;
}

export interface EntryListRequest {
  /** A key prefix (keys are `<backend>/<path>`); "" for all. */
  readonly prefix: string;
  /** Only this backend's entries (the key prefix `<backend>/`), intersected with `prefix`. */
  readonly backend?: string | undefined;
  readonly limit: number;
  /** Only keys strictly after this one (a cursor's position). */
  readonly startAfter?: string | undefined;
}

export interface EntryPage {
  readonly entries: readonly CacheEntry[];
  /** The last key listed: where the next page starts (set when `hasMore`). */
  readonly lastKey: string | undefined;
  readonly hasMore: boolean;
}

/** What to purge: one key, every key under a non-empty prefix, or (explicitly) everything. */
export type PurgeTarget = { readonly key: string } | { readonly prefix: string } | { readonly all: true };

export interface CacheStats {
  readonly hits: number;
  readonly misses: number;
  readonly stale: number;
  readonly revalidated: number;
  /** Requests answered from the cache (hit, stale, revalidated) ÷ all; undefined before any. */
  readonly hitRatio: number | undefined;
  readonly bytesFromCache: number;
  readonly bytesFromUpstream: number;
  readonly totalBytes: number;
  readonly entryCount: number;
  readonly maxSize: number | undefined;
  readonly evictions: number;
  /** False while the start-up scan runs: sizes and counts cover only what was used since. */
  readonly indexReady: boolean;
  /** Downloads in progress: `CacheAdmin.fills()`, counted. */
  readonly fillsInProgress: number;
  /** Every configured backend (with zeros when empty) and any other found in the cache. */
  readonly backends: ReadonlyMap<string, { readonly entries: number; readonly bytes: number }>;
}

/**
 * Where the downloads in progress come from: with `workers: N`, every worker's of the vault
 * (`cluster/fills-link.ts`), one entry per download; without, this process's own.
 */
export type FillsSource = () => Promise<readonly FillProgress[]>;

export interface CacheAdminOptions {
  readonly clock?: () => number;
  /** The whole vault's downloads in progress; by default the cache's own (`fillsInProgress()`). */
  readonly fills?: FillsSource | undefined;
}

/**
 * Cache administration over an `ArtifactCache`: entries listed from its store with their
 * metadata and freshness, purges that go through `ArtifactCache.purge` (so revalidation and
 * negative-cache state are forgotten too), statistics and in-flight fills. No HTTP in here.
 */
export class CacheAdmin {
  readonly #cache: ArtifactCache;
  readonly #backends: ReadonlyMap<string, Backend>;
  readonly #clock: () => number;
  readonly #fills: FillsSource | undefined;

  constructor(cache: ArtifactCache, backends: readonly Backend[], options: CacheAdminOptions = {}) {
    this.#cache = cache;
    this.#backends = new Map(backends.map((backend) => [backend.name, backend]));
    this.#clock = options.clock ?? Date.now;
    this.#fills = options.fills;
  }

  /** One page of entries in key order (UTF-8 bytes); entries deleted meanwhile are skipped. */
  async listEntries(request: EntryListRequest): Promise<EntryPage> {
    checkPrefix(request.prefix);
    const prefix = request.backend === undefined ? request.prefix : intersect(request.prefix, backendPrefix(request.backend));
    if (prefix === undefined) return { entries: [], lastKey: undefined, hasMore: false };
    const store = this.#cache.storage;
    const page = await store.list({
      limit: request.limit,
      ...(prefix === "" ? {} : { prefix }),
      ...(request.startAfter === undefined ? {} : { startAfter: request.startAfter }),
    });
    const [infos, lastUsed] = await Promise.all([mapBounded(page.keys, CONCURRENCY, (key) => store.stat(key)), this.#cache.index.lastUsed(page.keys)]);
    const now = this.#clock();
    const entries = infos.flatMap((info, i) => (info === undefined ? [] : [this.#describe(info, now, lastUsed[i])]));
    return { entries, lastKey: page.isTruncated ? page.keys.at(-1) : undefined, hasMore: page.isTruncated };
  }

  /**
   * Forgets cached entries (stored copy, freshness, negative entry) and answers how many stored
   * copies were removed. A download in progress is not cancelled: it is cached when it ends.
   */
  async purge(target: PurgeTarget): Promise<number> {
    if ("key" in target) {
      validateKey(target.key);
      return (await this.#cache.purge(target.key)) ? 1 : 0;
    }
    const prefix = "prefix" in target ? target.prefix : "";
    if ("prefix" in target) {
      checkPrefix(prefix);
      if (prefix === "") throw new VaultError("bad_request", "an empty prefix would purge the whole cache: ask for all=true explicitly");
    }
    const store = this.#cache.storage;
    let purged = 0;
    let startAfter: string | undefined;
    for (;;) {
      const page = await store.list({
        limit: PURGE_PAGE,
        ...(prefix === "" ? {} : { prefix }),
        ...(startAfter === undefined ? {} : { startAfter }),
      });
      const removed = await mapBounded(page.keys, CONCURRENCY, (key) => this.#cache.purge(key));
      purged += removed.filter(Boolean).length;
      startAfter = page.keys.at(-1);
      if (!page.isTruncated || startAfter === undefined) return purged;
    }
  }

  /**
   * Counters and sizes: of every replica when they are coordinated, else of this process. The
   * downloads in progress are those `fills()` lists.
   */
  async stats(): Promise<CacheStats> {
    const cache = this.#cache;
    const [{ hits, misses, stale, revalidated, bytesFromCache, bytesFromUpstream, evictions }, usage, fills] = await Promise.all([
      cache.counters(),
      cache.index.usage(),
      this.#fills?.(),
    ]);
    const answered = hits + stale + revalidated;
    const backends = new Map<string, { entries: number; bytes: number }>();
    for (const name of this.#backends.keys()) backends.set(name, { entries: 0, bytes: 0 });
    for (const [name, used] of usage.byBackend) backends.set(name, { entries: used.entries, bytes: used.bytes });
    return {
      hits,
      misses,
      stale,
      revalidated,
      hitRatio: answered + misses === 0 ? undefined : answered / (answered + misses),
      bytesFromCache,
      bytesFromUpstream,
      totalBytes: usage.bytes,
      entryCount: usage.entries,
      maxSize: cache.maxSize,
      evictions,
      indexReady: cache.index.ready,
      fillsInProgress: (fills ?? cache.fillsInProgress()).length,
      backends,
    };
  }

  /**
   * The downloads in progress, oldest first: this process's, or with `workers: N` the whole
   * vault's (`FillsSource`), the same list whichever worker answers.
   */
  async fills(): Promise<FillProgress[]> {
    const fills = this.#fills === undefined ? this.#cache.fillsInProgress() : [...(await this.#fills())];
    return fills.sort(oldestFirst);
  }

  #describe(info: ObjectInfo, now: number, lastUsed: number | undefined): CacheEntry {
    const metadata = info.metadata;
    const slash = info.key.indexOf("/");
    const backend = metadata[META.backend] ?? (slash === -1 ? "" : info.key.slice(0, slash));
    const fetchedAt = Number(metadata[META.fetchedAt]);
    const cachedAt = Number.isFinite(fetchedAt) && fetchedAt > 0 ? fetchedAt : info.modifiedAt.getTime();
    const validatedAt = Math.max(cachedAt, this.#cache.revalidatedAt(info.key) ?? 0);
    const freshness = storedFreshness(metadata[META.freshness]) ?? this.#freshnessOf(info.key, backend);
    return {
      key: info.key,
      backend,
      size: info.size,
      contentType: info.contentType,
      sha256: info.sha256,
      cachedAt: new Date(cachedAt),
      validatedAt: new Date(validatedAt),
      freshness,
      fresh: freshness.kind === "unknown" ? undefined : decideFreshness(freshness, validatedAt, now) === "fresh",
      staleAt: freshness.kind === "mutable" ? new Date(validatedAt + freshness.ttlMs) : undefined,
      upstreamEtag: metadata[META.upstreamEtag],
      upstreamLastModified: metadata[META.upstreamLastModified],
      lastAccess: lastUsed === undefined ? undefined : new Date(lastUsed),
    };
  }

  /**
   * Asks the owning backend, whose `resolve` is pure, how it would treat a request for the
   * entry's path. That holds for backends whose cache key is `<name>/<upstream path>`; for any
   * other mapping (or a backend no longer configured) the answer is `unknown`, never a guess.
   */
  #freshnessOf(key: string, backendName: string): EntryFreshness {
    const backend = this.#backends.get(backendName);
    const prefix = backendPrefix(backendName);
    if (backend === undefined || !key.startsWith(prefix)) return { kind: "unknown" };
    try {
      const ref = backend.resolve({ method: "GET", path: key.slice(prefix.length), query: "", headers: {}, baseUrl: "" });
      if (isRedirect(ref)) return { kind: "unknown" };
      return ref.cacheKey === key ? toEntryFreshness(ref.freshness) : { kind: "unknown" };
    } catch {
      return { kind: "unknown" };
    }
  }
}

/** By start, then by key: the same order whichever worker sorts. */
function oldestFirst(a: FillProgress, b: FillProgress): number {
  return a.startedAt.getTime() - b.startedAt.getTime() || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0);
}

/** What the cache recorded at fill time (`immutable` or `mutable;ttl=<ms>`); entries from older versions have none. */
function storedFreshness(value: string | undefined): EntryFreshness | undefined {
  if (value === "immutable") return { kind: "immutable" };
  const ttl = /^mutable;ttl=(\d+)$/.exec(value ?? "")?.[1];
  return ttl === undefined ? undefined : { kind: "mutable", ttlMs: Number(ttl) };
}

function toEntryFreshness(freshness: Freshness): EntryFreshness {
  return freshness.kind === "immutable" ? { kind: "immutable" } : { kind: "mutable", ttlMs: freshness.ttlMs };
}

function backendPrefix(backend: string): string {
  if (backend === "" || backend.includes("/") || backend.includes("\0")) {
    throw new VaultError("bad_request", `not a backend name: ${JSON.stringify(backend)}`);
  }
  return `${backend}/`;
}

function checkPrefix(prefix: string): void {
  if (prefix.includes("\0")) throw new VaultError("bad_request", "prefix must not contain NUL");
  if (!prefix.isWellFormed()) throw new VaultError("bad_request", "prefix must be valid UTF-8");
}

/** The longer of two prefixes when one extends the other; undefined when no key has both. */
function intersect(a: string, b: string): string | undefined {
  if (a.startsWith(b)) return a;
  if (b.startsWith(a)) return b;
  return undefined;
}

/** `map` with at most `limit` calls running at once; results keep the input order. */
async function mapBounded<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const index = next++;
      results[index] = await fn(items[index] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}
