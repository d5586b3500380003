import { randomBytes } from "node:crypto";
import { mkdir, open, readdir, rm, unlink, type FileHandle } from "node:fs/promises";
import path from "node:path";
import type { Logger } from "pino";
import { errorCode } from "../core/error-code.js";
import { VaultError, isVaultError } from "../core/errors.js";
import type { ArtifactRef } from "../core/cache/artifact-ref.js";
import { decideFreshness } from "../core/cache/freshness.js";
import { decideResume } from "../core/cache/resume-plan.js";
import { importFile } from "../storage/import-file.js";
import { MemoryDriver } from "../storage/memory-driver.js";
import type { ArtifactSource, CachedArtifact, CacheStatus, UpstreamFetch, Validators } from "../core/cache/artifact-source.js";
import type { ImportOptions, ObjectInfo, OpenedObject, StorageDriver } from "../storage/storage-driver.js";
import type { Coordinator, Counters, Lease } from "../coordination/coordinator.js";
import { LocalCoordinator } from "../coordination/local-coordinator.js";
import { HeldObjects } from "../storage/held-objects.js";
import { CacheIndex } from "./cache-index.js";
import { CoordinatorCounts, observeBoth, type CacheObserver, type CacheResult } from "./cache-events.js";
import { DigestIndex } from "./digest-index.js";
import { Fill, type FillHeaders } from "./fill.js";
import { resumingBody, type ResumeSettings } from "./resuming-body.js";

export interface ArtifactCacheOptions {
  readonly driver: StorageDriver;
  readonly logger: Logger;
  /** Where downloads are spooled; cleaned at start. Defaults to the driver's staging dir or a temp dir. */
  readonly spoolDirectory: string;
  /** Bytes; least-recently-used artifacts are evicted past it. */
  readonly maxSize?: number | undefined;
  /** How long an upstream 404 is remembered. */
  readonly negativeTtlMs: number;
  readonly clock?: () => number;
  /** Resuming downloads whose upstream broke off (see `resuming-body.ts`); tests shorten the waits. */
  readonly resume?: ResumeSettings | undefined;
  /**
   * Where the cache keeps its digest index (`digest-index.ts`): a store apart from the entries'
   * (the app opens the main store's `cache-digests` namespace). Default: in memory.
   */
  readonly digestIndex?: StorageDriver | undefined;
  /**
   * What this cache agrees on with other replicas (fill leases, counters, the access index).
   * Default: a `LocalCoordinator` (this process alone). Closed by its owner, not by the cache.
   */
  readonly coordinator?: Coordinator | undefined;
  /**
   * Told how each request was answered, what was served, fetched and evicted (`cache-events.ts`),
   * besides the coordinator's counters (`cache stats`), which are always kept.
   */
  readonly observer?: CacheObserver | undefined;
}

/** Metadata keys kept with each cached artifact (cache administration reads them too). */
export const META = {
  fetchedAt: "vault-fetched-at",
  upstreamEtag: "vault-upstream-etag",
  upstreamLastModified: "vault-upstream-last-modified",
  backend: "vault-backend",
  /** How the backend classed it when it was fetched: `immutable` or `mutable;ttl=<ms>` (for cache administration). */
  freshness: "vault-freshness",
  /** Prefix of kept upstream headers (`vault-header-docker-content-digest`). */
  keptHeader: "vault-header-",
} as const;

const NEGATIVE_CACHE_LIMIT = 10_000;
/**
 * Entries looked at for a non-exact stand-in (a tag cached for another Accept: its few variants
 * share one short prefix) before giving up: a stale fallback is a last resort, not a search.
 */
const STAND_IN_SCAN_LIMIT = 100;

/** What a fill lease's holder publishes for worker processes that follow its download. */
interface FollowNote {
  readonly spoolPath: string;
  /** The body's length: the follower reads no further (the holder's commit appends to the file). */
  readonly size: number;
  readonly headers: FillHeaders;
  readonly digest: ArtifactRef["digest"];
  /** The download is whole and verified (being committed). */
  readonly verified?: boolean;
}

/** The names under which the workers share a remembered 404 and a revalidation (`Coordinator.remember`). */
const notFoundFact = (key: string): string => `404:${key}`;
const validatedFact = (key: string): string => `validated:${key}`;

/** How often a follower that caught up with another worker's download looks for more. */
const FOLLOW_POLL_MS = 5;
const FOLLOW_CHUNK = 1024 * 1024;

/**
 * The first `size` bytes of a file another process is writing, as they arrive. Fails if the
 * writer's lease ends (`ended`) before they are all there: its download failed.
 */
async function* tailSpool(spool: FileHandle, size: number, ended: Promise<void>): AsyncGenerator<Buffer> {
  let over = false;
  ended.then(
    () => (over = true),
    () => (over = true), // the coordination link is gone: stop once the file stops growing
  );
  try {
    let position = 0;
    while (position < size) {
      // Looked at before the read: bytes written before the lease ended are all seen by a read
      // that starts after it did.
      const wasOver = over;
      const want = Math.min(FOLLOW_CHUNK, size - position);
      const { bytesRead, buffer } = await spool.read(Buffer.allocUnsafe(want), 0, want, position);
      if (bytesRead > 0) {
        position += bytesRead;
        yield bytesRead === want ? buffer : buffer.subarray(0, bytesRead);
        continue;
      }
      if (wasOver) throw new VaultError("upstream_failed", `the download another worker ran stopped at ${position} of ${size} bytes`);
      await Promise.race([ended, new Promise((resolve) => setTimeout(resolve, FOLLOW_POLL_MS))]);
    }
  } finally {
    await spool.close();
  }
}

/** A download in progress, visible to `cache stats` and the UI. */
export interface FillProgress {
  readonly key: string;
  readonly backend: string;
  readonly bytes: number;
  readonly total: number | undefined;
  readonly percent: number | undefined;
  readonly startedAt: Date;
  /**
   * Requests being answered from the download now (its own starter included): of this process;
   * in a list merged over the workers (`cluster/fills-link.ts`), of every worker.
   */
  readonly waiters: number;
}

/** A hit answered from memory (`ArtifactCache.heldHit`). */
export interface HeldHit {
  readonly info: ObjectInfo;
  readonly contents: Buffer;
  readonly lastModified: Date;
  readonly upstreamHeaders: Readonly<Record<string, string>>;
}

/**
 * The outcome of asking upstream once for a key (shared by every concurrent asker): a fill to
 * tail, a 304, a 404 — or `elsewhere`: another replica held the key's fill lease and has since
 * let it go, so the store has its result (or nothing, if its download failed).
 */
/**
 * `stored`: another process had the artifact whole and verified before this request asked (it
 * only waited for the commit): the request is a hit, as it would be in one process.
 */
type UpstreamOutcome =
  | { readonly kind: "fill"; readonly fill: Fill; readonly stored?: boolean }
  | { readonly kind: "not-modified" }
  | { readonly kind: "not-found" }
  | { readonly kind: "elsewhere"; readonly stored?: boolean };

/** The cache result an `X-Cache` status counts as. */
const RESULT_OF: Readonly<Record<CacheStatus, CacheResult>> = { HIT: "hit", MISS: "miss", STALE: "stale", REVALIDATED: "revalidated" };

/** Memory for small immutable entries served from a store that holds none itself (`#heldImmutable`). */
const HELD_IMMUTABLE_BYTES = 32 * 1024 * 1024;
/** Entries at least this large that another replica stored are read once and shared (`#relay`). */
const RELAY_MIN_BYTES = 1024 * 1024;
/** Times a request waits for other replicas' downloads of a key before it reports a failure. */
const ELSEWHERE_ROUNDS = 3;

/**
 * The one algorithm every proxy route calls: lookup → decide (fresh, revalidate, stale-if-error)
 * → fill with single-flight and tee → serve. It knows nothing about ecosystems: backends resolve
 * requests into `ArtifactRef`s and supply the upstream fetch. A fill whose upstream breaks off
 * mid-body is resumed with a range request through the same fetch when its first answer allows
 * it (`core/cache/resume-plan.ts`), at most `RESUME_LIMIT` times: the clients see one body.
 */
export class ArtifactCache implements ArtifactSource {
  readonly index: CacheIndex;
  /** `cache.max_size` in bytes, if any. */
  readonly maxSize: number | undefined;

  readonly #driver: StorageDriver;
  readonly #logger: Logger;
  readonly #spoolDirectory: string;
  readonly #negativeTtlMs: number;
  readonly #clock: () => number;
  readonly #resume: ResumeSettings | undefined;
  /** Single-flight: one upstream exchange per key at a time, owned by this instance. */
  readonly #inFlight = new Map<string, Promise<UpstreamOutcome>>();
  /** Fills that are downloading, for joiners and for progress reporting. */
  readonly #fills = new Map<string, Fill>();
  /** When a mutable entry was last confirmed by a 304 (the stored copy keeps its fetch time). */
  readonly #revalidatedAt = new Map<string, number>();
  readonly #negative = new Map<string, number>();
  /** Cancels a fill's upstream download (shutdown only: clients leaving never cancel a fill). */
  readonly #downloads = new WeakMap<Fill, AbortController>();
  /** Which mutable entries hold which bytes: exact stand-ins are found here, never by listing. */
  readonly #digests: DigestIndex;
  readonly #ownDigestStore: StorageDriver | undefined;
  readonly #coordinator: Coordinator;
  /** Where every count goes: the coordinator's counters, and the options' observer. */
  readonly #observer: CacheObserver;
  /**
   * Small immutable entries as last served, for stores that hold nothing in memory themselves
   * (S3): sound across replicas, since an immutable entry's bytes never change — only its removal
   * (eviction, purge) must drop it, and that of this process does.
   */
  readonly #heldImmutable = new HeldObjects(HELD_IMMUTABLE_BYTES);
  /** What `heldHit` derives from a held object's description, once per description. */
  readonly #described = new WeakMap<ObjectInfo, { readonly lastModified: Date; readonly upstreamHeaders: Readonly<Record<string, string>> }>();

  constructor(options: ArtifactCacheOptions) {
    this.#driver = options.driver;
    this.#logger = options.logger;
    this.#spoolDirectory = options.spoolDirectory;
    this.#negativeTtlMs = options.negativeTtlMs;
    this.#clock = options.clock ?? Date.now;
    this.#resume = options.resume;
    this.maxSize = options.maxSize;
    this.#coordinator = options.coordinator ?? new LocalCoordinator(this.#clock);
    const counts = new CoordinatorCounts(this.#coordinator);
    this.#observer = options.observer === undefined ? counts : observeBoth(counts, options.observer);
    this.index = new CacheIndex(options.driver, options.logger, options.maxSize, this.#coordinator, this.#clock, this.#observer);
    this.index.onRemove((key) => this.#heldImmutable.delete(key));
    const digestStore = options.digestIndex ?? new MemoryDriver();
    this.#ownDigestStore = options.digestIndex === undefined ? digestStore : undefined;
    this.#digests = new DigestIndex(digestStore, options.logger);
  }

  /** Removes spool leftovers of a crash and starts indexing what is cached (in the background). */
  async start(): Promise<void> {
    // Downloads in progress are the users' artifacts too: the service's user only.
    await mkdir(this.#spoolDirectory, { recursive: true, mode: 0o700 });
    for (const entry of await readdir(this.#spoolDirectory)) {
      await rm(path.join(this.#spoolDirectory, entry), { recursive: true, force: true });
    }
    this.index.startScan();
  }

  /**
   * Called after the server has drained its requests: downloads nobody reads any more are
   * abandoned (nothing partial is ever stored), verified ones are allowed to land.
   */
  async close(): Promise<void> {
    for (const fill of this.#fills.values()) {
      if (fill.state === "running") this.#downloads.get(fill)?.abort(new VaultError("unavailable", "the vault is shutting down"));
    }
    await Promise.allSettled(this.#inFlight.values());
    await Promise.allSettled([...this.#fills.values()].map((fill) => fill.settled));
    await this.index.stop();
    await this.#ownDigestStore?.close();
  }

  /** Hits, misses and bytes: of every replica when they are coordinated, else of this process. */
  counters(): Promise<Counters> {
    return this.#coordinator.counters();
  }

  fillsInProgress(): FillProgress[] {
    return [...this.#fills.values()].map((fill) => {
      const total = fill.totalSize;
      return {
        key: fill.ref.cacheKey,
        backend: fill.ref.backend,
        bytes: fill.bytesWritten,
        total,
        percent: total === undefined || total === 0 ? undefined : Math.min(100, Math.round((fill.bytesWritten / total) * 1000) / 10),
        startedAt: new Date(fill.startedAt),
        waiters: fill.readers,
      };
    });
  }

  /** The store the cache lives in, read-only: cache administration lists entries with their metadata. */
  get storage(): Pick<StorageDriver, "list" | "stat"> {
    return this.#driver;
  }

  /** When a 304 last confirmed the stored copy of `key` (its metadata keeps the fetch time). */
  revalidatedAt(key: string): number | undefined {
    return this.#revalidatedAt.get(key);
  }

  /** Forgets an entry (admin purge): stored copy, freshness and negative entry. */
  async purge(key: string): Promise<boolean> {
    this.#revalidatedAt.delete(key);
    this.#negative.delete(key);
    this.#coordinator.remember?.(notFoundFact(key), 0);
    this.#coordinator.remember?.(validatedFact(key), 0);
    return this.index.remove(key);
  }

  /**
   * Answers a request for `ref`: from the cache when fresh, after revalidation when stale, from
   * a (shared) download when missing; a stale copy when the upstream fails. Throws VaultError
   * `not_found` for an upstream 404, `upstream_failed` / `upstream_timeout` otherwise.
   */
  async get(ref: ArtifactRef, fetchUpstream: UpstreamFetch): Promise<CachedArtifact> {
    try {
      return await this.#get(ref, fetchUpstream);
    } catch (error) {
      // Answers are counted where they are made; a request that got none is counted here.
      this.#observer.result(ref.backend, isVaultError(error) && error.kind === "not_found" ? "not_found" : "error");
      throw error;
    }
  }

  async #get(ref: ArtifactRef, fetchUpstream: UpstreamFetch): Promise<CachedArtifact> {
    const key = ref.cacheKey;
    const now = this.#clock();
    const negativeUntil = this.#negative.get(key);
    if (negativeUntil !== undefined) {
      if (negativeUntil > now) throw notFound(ref);
      this.#negative.delete(key);
    }

    const fill = this.#fills.get(key);
    // A download still arriving is a MISS for everyone who joins it; one already complete and
    // verified (being made durable) is served from our copy: a HIT.
    if (fill?.state === "running") return this.#fromFill(fill, "MISS");
    if (fill?.state === "committing") {
      if (ref.freshness.kind === "immutable") return this.#fromFill(fill, "HIT");
      // Mutable: let it land, then decide freshness as for any stored copy.
      await fill.settled.catch(() => undefined);
    }

    const opened = await this.#driver.open(key);
    if (opened === undefined) {
      const same = ref.staleFallback?.exact === true ? await this.#standIn(ref) : undefined;
      if (same !== undefined) return this.#hit(ref.backend, same.opened, "HIT");
      // Another worker of this vault may have just been told 404 for it.
      const sharedUntil = await this.#coordinator.recall?.(notFoundFact(key));
      if (sharedUntil !== undefined && sharedUntil > now) {
        this.#negative.set(key, sharedUntil);
        throw notFound(ref);
      }
      return this.#miss(ref, fetchUpstream);
    }

    const storedAt = Number(opened.info.metadata[META.fetchedAt] ?? 0);
    let validatedAt = Math.max(storedAt, this.#revalidatedAt.get(key) ?? 0);
    if (decideFreshness(ref.freshness, validatedAt, now) === "fresh") return this.#hit(ref.backend, opened, "HIT");
    // Another worker of this vault may have revalidated it since.
    const shared = await this.#coordinator.recall?.(validatedFact(key));
    if (shared !== undefined && shared > validatedAt) {
      this.#revalidatedAt.set(key, shared);
      validatedAt = shared;
      if (decideFreshness(ref.freshness, validatedAt, now) === "fresh") return this.#hit(ref.backend, opened, "HIT");
    }
    return this.#revalidate(ref, opened, fetchUpstream);
  }

  /**
   * The fast lane of `get`, synchronous: a fresh stored copy that the store holds in memory, with
   * no download, negative entry or revalidation in the way; undefined whenever anything else
   * would have to be decided (then `get` decides it). Counted and touched like any hit; its
   * bytes count as served unless `sendsBody` is false (a HEAD).
   */
  heldHit(ref: ArtifactRef, sendsBody = true): HeldHit | undefined {
    const key = ref.cacheKey;
    if (this.#fills.has(key) || this.#negative.has(key)) return undefined;
    const held = this.#driver.readHeld?.(key) ?? (ref.freshness.kind === "immutable" ? this.#heldImmutable.get(key) : undefined);
    if (held === undefined) return undefined;
    const { info, contents } = held;
    if (ref.freshness.kind !== "immutable") {
      const validatedAt = Math.max(Number(info.metadata[META.fetchedAt] ?? 0), this.#revalidatedAt.get(key) ?? 0);
      if (decideFreshness(ref.freshness, validatedAt, this.#clock()) !== "fresh") return undefined;
    }
    this.#observer.result(ref.backend, "hit");
    if (sendsBody) this.#observer.bytesFromCache(ref.backend, info.size);
    this.index.touched(key, info.size);
    let described = this.#described.get(info);
    if (described === undefined) {
      described = { lastModified: lastModifiedOf(info), upstreamHeaders: keptHeadersOf(info) };
      this.#described.set(info, described);
    }
    return { info, contents, lastModified: described.lastModified, upstreamHeaders: described.upstreamHeaders };
  }

  async peek(ref: ArtifactRef): Promise<CachedArtifact | undefined> {
    const fill = this.#fills.get(ref.cacheKey);
    if (fill?.state === "running" || fill?.state === "committing") return this.#fromFill(fill, "MISS", false);
    const opened = await this.#driver.open(ref.cacheKey);
    return opened === undefined ? undefined : this.#hit(ref.backend, opened, "HIT", false);
  }

  async #miss(ref: ArtifactRef, fetchUpstream: UpstreamFetch): Promise<CachedArtifact> {
    let outcome: UpstreamOutcome;
    try {
      for (let round = 1; ; round++) {
        outcome = await this.#exchange(ref, undefined, fetchUpstream);
        if (outcome.kind !== "elsewhere") break;
        // Another replica fetched it meanwhile: its copy is in the store (unless it failed).
        const opened = await this.#driver.open(ref.cacheKey);
        if (opened !== undefined) {
          return this.#hit(ref.backend, opened, outcome.stored === true ? "HIT" : "MISS");
        }
        if (round >= ELSEWHERE_ROUNDS) throw new VaultError("upstream_failed", `the replicas that fetched ${ref.upstreamPath} stored nothing`);
      }
    } catch (error) {
      const standIn = isUpstreamUnavailable(error) ? await this.#standIn(ref) : undefined;
      if (standIn === undefined) throw error;
      this.#logger.warn({ reqId: ref.requestId, key: ref.cacheKey, standIn: standIn.key, reason: (error as VaultError).message }, "upstream unavailable; serving an equivalent stale copy");
      return this.#hit(ref.backend, standIn.opened, "STALE");
    }
    if (outcome.kind === "fill") return this.#serveFill(outcome.fill, outcome.stored === true ? "HIT" : "MISS");
    if (outcome.kind === "not-found") throw notFound(ref);
    // A 304 to an unconditional request: the upstream is confused; say so.
    throw new VaultError("upstream_failed", "upstream answered 304 to an unconditional request");
  }

  async #revalidate(ref: ArtifactRef, stale: OpenedObject, fetchUpstream: UpstreamFetch): Promise<CachedArtifact> {
    const key = ref.cacheKey;
    const validators: Validators = {
      etag: stale.info.metadata[META.upstreamEtag],
      lastModified: stale.info.metadata[META.upstreamLastModified],
    };
    let outcome: UpstreamOutcome;
    try {
      outcome = await this.#exchange(ref, validators, fetchUpstream, stale.info);
    } catch (error) {
      if (!isUpstreamUnavailable(error)) {
        await stale.close();
        throw error;
      }
      this.#logger.warn({ reqId: ref.requestId, key, reason: error.message }, "upstream unavailable; serving a stale copy");
      return this.#hit(ref.backend, stale, "STALE");
    }
    if (outcome.kind === "not-modified") {
      this.#validated(key);
      return this.#hit(ref.backend, stale, "REVALIDATED");
    }
    await stale.close();
    if (outcome.kind === "elsewhere") {
      // Another replica asked upstream just now: what it left in the store is current.
      const current = await this.#driver.open(key);
      if (current === undefined) return this.#miss(ref, fetchUpstream);
      this.#validated(key);
      return this.#hit(ref.backend, current, "REVALIDATED");
    }
    if (outcome.kind === "not-found") {
      // Gone upstream (a deleted tag or package): stop serving it.
      await this.purge(key);
      throw notFound(ref);
    }
    return this.#serveFill(outcome.fill);
  }

  /** The first stored entry the ref's `staleFallback` takes, opened; undefined when none. */
  async #standIn(ref: ArtifactRef): Promise<{ key: string; opened: OpenedObject } | undefined> {
    const fallback = ref.staleFallback;
    if (fallback === undefined) return undefined;
    if (fallback.exact === true) return this.#sameBytes(ref, fallback);
    let startAfter: string | undefined;
    let scanned = 0;
    for (;;) {
      const page = await this.#driver.list({ prefix: fallback.prefix, limit: 1000, ...(startAfter === undefined ? {} : { startAfter }) });
      for (const key of page.keys) {
        if (++scanned > STAND_IN_SCAN_LIMIT) return undefined;
        const info = await this.#driver.stat(key);
        if (info === undefined || !fallback.accepts(info)) continue;
        const opened = await this.#driver.open(key);
        if (opened !== undefined) return { key, opened };
      }
      startAfter = page.keys.at(-1);
      if (!page.isTruncated || startAfter === undefined) return undefined;
    }
  }

  /**
   * An entry under the fallback's prefix holding exactly the ref's bytes, found through the
   * digest index (one read) rather than by listing the prefix: on S3 a listing is a request per
   * thousand entries and a HEAD per entry, for every miss of a manifest asked for by digest.
   */
  async #sameBytes(ref: ArtifactRef, fallback: NonNullable<ArtifactRef["staleFallback"]>): Promise<{ key: string; opened: OpenedObject } | undefined> {
    if (ref.digest?.algorithm !== "sha256") return undefined;
    for (const key of await this.#digests.lookup(ref.digest.hex)) {
      if (!key.startsWith(fallback.prefix) || key === ref.cacheKey) continue;
      const opened = await this.#driver.open(key);
      if (opened === undefined) continue;
      if (fallback.accepts(opened.info)) return { key, opened };
      await opened.close();
    }
    return undefined;
  }

  /** Serves a fresh download; one that already finished is served from the store. */
  async #serveFill(fill: Fill, status: "MISS" | "HIT" = "MISS"): Promise<CachedArtifact> {
    if (fill.state === "running" || fill.state === "committing") return this.#fromFill(fill, status);
    if (fill.state === "failed") throw fill.error ?? new VaultError("upstream_failed", "download failed");
    const opened = await this.#driver.open(fill.ref.cacheKey);
    if (opened === undefined) throw new VaultError("internal", "a committed artifact is missing from the store");
    return this.#hit(fill.ref.backend, opened, status);
  }

  /**
   * One upstream exchange per key at a time: everyone asking meanwhile shares its outcome (a
   * fill to tail, a 304, a 404 or the error).
   */
  #exchange(ref: ArtifactRef, validators: Validators | undefined, fetchUpstream: UpstreamFetch, current?: ObjectInfo): Promise<UpstreamOutcome> {
    const key = ref.cacheKey;
    const running = this.#inFlight.get(key);
    if (running !== undefined) return running;
    // A download that started while this request looked in the store (a remote store answers
    // in milliseconds, not microseconds): join it rather than fetch a second time.
    const fill = this.#fills.get(key);
    if (fill?.state === "running" || fill?.state === "committing") return Promise.resolve({ kind: "fill", fill });
    const exchange = this.#leasedExchange(ref, validators, fetchUpstream, current).finally(() => {
      if (this.#inFlight.get(key) === exchange) this.#inFlight.delete(key);
    });
    this.#inFlight.set(key, exchange);
    return exchange;
  }

  /**
   * The exchange under the key's fill lease, so that of several replicas one asks upstream and
   * the others wait for its result in the store. A lease granted after another replica stored
   * the key (between our look in the store and the claim) is given back unused.
   */
  async #leasedExchange(ref: ArtifactRef, validators: Validators | undefined, fetchUpstream: UpstreamFetch, current: ObjectInfo | undefined): Promise<UpstreamOutcome> {
    const resource = `fill:${ref.cacheKey}`;
    const lease = await this.#coordinator.claim(resource);
    if (lease === undefined) {
      const followed = await this.#follow(ref, resource);
      if (followed !== undefined) return followed;
      await this.#coordinator.released(resource);
      return this.#relay(ref);
    }
    let handedOver = false;
    try {
      if (this.#coordinator.shared) {
        const now = await this.#driver.stat(ref.cacheKey);
        if (now !== undefined && now.etag !== current?.etag) {
          await lease.release();
          // Stored by another process between our look in the store and the claim: a hit.
          return { ...(await this.#relay(ref)), stored: true };
        }
      }
      const outcome = await this.#startExchange(ref, validators, fetchUpstream, lease, current);
      handedOver = outcome.kind === "fill";
      return outcome;
    } finally {
      if (!handedOver) await lease.release();
    }
  }

  /**
   * After another replica stored `ref`: a large entry is read from the store once and tailed by
   * every request of this replica waiting for it (as a download would be), rather than read once
   * per request — for a herd spread over replicas, one store read per replica. Its digest is
   * checked again on the way. Small entries, or none: `elsewhere` (each asker opens the store).
   */
  async #relay(ref: ArtifactRef): Promise<Extract<UpstreamOutcome, { kind: "fill" | "elsewhere" }>> {
    const key = ref.cacheKey;
    const opened = await this.#driver.open(key);
    if (opened === undefined) return { kind: "elsewhere" };
    const { info } = opened;
    if (opened.contents !== undefined || info.size < RELAY_MIN_BYTES) {
      await opened.close();
      return { kind: "elsewhere" };
    }
    const headers: FillHeaders = {
      contentType: info.contentType,
      contentLength: info.size,
      upstreamEtag: info.metadata[META.upstreamEtag],
      upstreamLastModified: info.metadata[META.upstreamLastModified],
      kept: keptHeadersOf(info),
    };
    let fill: Fill;
    try {
      fill = await Fill.create({ ...ref, digest: { algorithm: "sha256", hex: info.sha256 }, size: info.size }, headers, path.join(this.#spoolDirectory, `${randomBytes(12).toString("hex")}.part`));
    } catch (error) {
      await opened.close();
      throw new VaultError("internal", `cannot spool a copy from the store: ${(error as Error).message}`, { cause: error });
    }
    this.#fills.set(key, fill);
    void fill
      .consume(opened.body(), async (spoolPath) => {
        // Already stored: the spool only served this replica's readers.
        await unlink(spoolPath).catch(() => undefined);
        return info;
      })
      .then(() => {
        if (this.#fills.get(key) === fill) this.#fills.delete(key);
        if (fill.state === "committed") this.index.touched(key, info.size);
        else this.#logger.warn({ key, reason: fill.error?.message }, "reading another replica's copy from the store failed");
      });
    return { kind: "fill", fill };
  }

  /**
   * Another worker process on this machine holds the fill lease and said where its download
   * spools (`FollowNote`): this process tails that file as it grows, into a fill of its own that
   * every request here shares, so its clients stream at the download's pace instead of waiting
   * for the end. The bytes are checked as the holder's are (length and digest) and, once its
   * lease ends, against what it stored. Undefined when there is nothing to follow (no note, an
   * unknown length, the spool already gone): the caller then waits for the lease to end.
   */
  async #follow(ref: ArtifactRef, resource: string): Promise<UpstreamOutcome | undefined> {
    const published = await this.#coordinator.noteOf?.(resource);
    if (published === undefined) return undefined;
    const note = JSON.parse(published) as FollowNote;
    if (note.verified === true) {
      // Whole and verified already, being committed: wait for that, then it is a hit.
      await this.#coordinator.released(resource);
      return { ...(await this.#relay(ref)), stored: true };
    }
    let spool: FileHandle;
    try {
      spool = await open(note.spoolPath, "r");
    } catch {
      return undefined; // already committed (renamed away) or failed: the store has the answer
    }
    const key = ref.cacheKey;
    const followedRef: ArtifactRef = { ...ref, ...(note.digest === undefined ? {} : { digest: note.digest }), size: note.size };
    let fill: Fill;
    try {
      fill = await Fill.create(followedRef, note.headers, path.join(this.#spoolDirectory, `${randomBytes(12).toString("hex")}.part`));
    } catch (error) {
      await spool.close();
      throw new VaultError("internal", `cannot spool a download: ${(error as Error).message}`, { cause: error });
    }
    const ended = this.#coordinator.released(resource);
    ended.catch(() => undefined); // observed by the tail and the commit
    this.#fills.set(key, fill);
    void fill
      .consume(tailSpool(spool, note.size, ended), async (ownSpool, summary) => {
        await ended;
        await unlink(ownSpool).catch(() => undefined);
        const stored = await this.#driver.stat(key);
        if (stored === undefined || stored.sha256 !== summary.sha256) {
          throw new VaultError("upstream_failed", "the download another worker ran was not stored");
        }
        return stored;
      })
      .then(() => {
        if (this.#fills.get(key) === fill) this.#fills.delete(key);
        if (fill.state === "committed") this.index.touched(key, note.size);
        else this.#logger.warn({ key, reason: fill.error?.message }, "following another worker's download failed");
      });
    return { kind: "fill", fill };
  }

  async #startExchange(ref: ArtifactRef, validators: Validators | undefined, fetchUpstream: UpstreamFetch, lease: Lease, current: ObjectInfo | undefined): Promise<UpstreamOutcome> {
    // The download belongs to the cache, not to the client that started it: it goes on when
    // that client disconnects, so the next one gets a hit.
    const download = new AbortController();
    const response = await fetchUpstream(ref, validators, download.signal);
    const { status } = response;
    if (status === 304 && validators !== undefined) {
      response.body.destroy();
      return { kind: "not-modified" };
    }
    if (status === 404 || status === 410) {
      response.body.destroy();
      this.#rememberNotFound(ref.cacheKey);
      return { kind: "not-found" };
    }
    if (status !== 200) {
      response.body.destroy();
      throw upstreamStatusError(status, response.headers);
    }
    const headers = fillHeaders(response.headers, ref.keepHeaders);
    // A digest the backend learnt while fetching (npm's integrity, an APT pool file's SHA256) is
    // verified like one the ref named; the ref's own wins.
    const verifiedRef = ref.digest === undefined && response.digest !== undefined ? { ...ref, digest: response.digest } : ref;
    // Until the fill iterates the body (after creating its spool), a failure of the body must
    // not go unobserved: the iteration still sees it, this only keeps it from crashing us.
    response.body.on("error", () => undefined);
    let fill: Fill;
    try {
      fill = await Fill.create(verifiedRef, headers, path.join(this.#spoolDirectory, `${randomBytes(12).toString("hex")}.part`));
    } catch (error) {
      response.body.destroy();
      const full = ["ENOSPC", "EDQUOT"].includes(errorCode(error) ?? "");
      throw new VaultError(full ? "insufficient_storage" : "internal", `cannot spool a download: ${(error as Error).message}`, { cause: error });
    }
    this.#fills.set(ref.cacheKey, fill);
    this.#downloads.set(fill, download);
    this.#observer.fillStarted(ref.backend);
    const size = verifiedRef.size ?? headers.contentLength;
    // Other worker processes waiting for this lease can tail the spool (`#follow`) when they know
    // where it ends: the store's trailer is appended to this very file at commit.
    if (size !== undefined && lease.publish !== undefined) {
      const note: FollowNote = { spoolPath: fill.spoolPath, size, headers, digest: verifiedRef.digest };
      lease.publish(JSON.stringify(note));
      // From here on, those who ask get a hit once it is committed, as they would in this process.
      fill.onVerified(() => lease.publish?.(JSON.stringify({ ...note, verified: true } satisfies FollowNote)));
    }
    // If the upstream breaks off, the rest is fetched and follows on in the same body.
    const decision = decideResume({
      total: verifiedRef.size ?? headers.contentLength,
      headers: response.headers,
      hasDigest: verifiedRef.digest !== undefined,
      resumable: response.resumable,
    });
    const body = resumingBody(response.body, { ref, fetch: fetchUpstream, signal: download.signal, logger: this.#logger, decision, settings: this.#resume });
    void fill
      .consume(body, async (spoolPath, summary) => {
        const info = await this.#commit(ref, lease, current, spoolPath, {
          size: summary.size,
          sha256: summary.sha256,
          contentType: headers.contentType,
          metadata: {
            [META.fetchedAt]: String(this.#clock()),
            [META.backend]: ref.backend,
            [META.freshness]: ref.freshness.kind === "immutable" ? "immutable" : `mutable;ttl=${ref.freshness.ttlMs}`,
            ...(headers.upstreamEtag === undefined ? {} : { [META.upstreamEtag]: headers.upstreamEtag }),
            ...(headers.upstreamLastModified === undefined ? {} : { [META.upstreamLastModified]: headers.upstreamLastModified }),
            ...Object.fromEntries(Object.entries(headers.kept).map(([name, value]) => [`${META.keptHeader}${name}`, value])),
          },
        });
        // Mutable documents (tags, index pages) may be asked for by their digest under another
        // key: recorded before the fill settles, so the next request finds them.
        if (ref.freshness.kind === "mutable") await this.#digests.record(info.sha256, ref.cacheKey);
        return info;
      })
      .then(() => {
        this.#fillSettled(fill);
        return lease.release();
      });
    return { kind: "fill", fill };
  }

  /**
   * Stores a verified download. A mutable entry is written only over the version this fill
   * started from (`If-Match` its ETag, or create-only when there was none): if another replica
   * stored a newer one meanwhile — a holder whose lease expired while it stalled is the usual
   * way — the newer one stays, and so it does when this replica knows it lost the lease. An
   * immutable entry holds the same verified bytes whoever writes it: no condition needed.
   */
  async #commit(ref: ArtifactRef, lease: Lease, current: ObjectInfo | undefined, spoolPath: string, options: ImportOptions): Promise<ObjectInfo> {
    const key = ref.cacheKey;
    if (ref.freshness.kind === "immutable") return importFile(this.#driver, key, spoolPath, options);
    const kept = async (why: string): Promise<ObjectInfo | undefined> => {
      const newer = await this.#driver.stat(key);
      if (newer !== undefined) this.#logger.info({ key, fence: lease.fence }, `${why}: the copy another replica stored stays`);
      return newer;
    };
    if (!(await lease.stillHeld())) {
      const newer = await kept("lost the fill lease while downloading");
      if (newer !== undefined) {
        await unlink(spoolPath).catch(() => undefined);
        return newer;
      }
    }
    const condition = current === undefined ? { ifNoneMatch: "*" as const } : { ifMatch: current.etag };
    try {
      return await importFile(this.#driver, key, spoolPath, { ...options, ...condition });
    } catch (error) {
      if (!isVaultError(error) || error.kind !== "precondition_failed") throw error;
      const newer = await kept("a newer copy was stored while this one downloaded");
      if (newer !== undefined) return newer;
      throw new VaultError("internal", `the cached copy of ${key} was removed while a new one downloaded; nothing stored`, { cause: error });
    }
  }

  #fillSettled(fill: Fill): void {
    const key = fill.ref.cacheKey;
    if (this.#fills.get(key) === fill) this.#fills.delete(key);
    const info = fill.state === "committed" ? fill.info : undefined;
    this.#observer.fillEnded(fill.ref.backend, fill.bytesWritten, info === undefined ? "failed" : "cached");
    if (info !== undefined) {
      this.#revalidatedAt.delete(key);
      this.index.added(key, info.size);
      this.#logger.info({ reqId: fill.ref.requestId, key, bytes: info.size, ms: Date.now() - fill.startedAt }, "cached");
    } else {
      this.#logger.warn({ reqId: fill.ref.requestId, key, reason: fill.error?.message }, "download failed; nothing cached");
    }
  }

  #fromFill(fill: Fill, status: CacheStatus, count = true): CachedArtifact {
    if (count) this.#observer.result(fill.ref.backend, status === "HIT" ? "hit" : "miss");
    const reader = fill.reserveReader();
    return {
      status,
      size: fill.totalSize,
      contentType: fill.headers.contentType,
      etag: fill.sha256 === undefined ? undefined : `"${fill.sha256}"`,
      // As for stored copies: the upstream's date, else when we fetched it.
      lastModified: parseHttpDate(fill.headers.upstreamLastModified) ?? new Date(fill.startedAt),
      upstreamHeaders: fill.headers.kept,
      contents: undefined,
      arriving: fill.state === "running",
      body: (range) => {
        // A hit on a download already whole and verified (being committed) is the cache's bytes too.
        if (status === "HIT") this.#observer.bytesFromCache(fill.ref.backend, range === undefined ? (fill.totalSize ?? fill.bytesWritten) : range.end - range.start + 1);
        return reader.open(range);
      },
      release: () => reader.cancel(),
    };
  }

  #hit(backend: string, opened: OpenedObject, status: CacheStatus, count = true): CachedArtifact {
    const { info } = opened;
    if (opened.contents !== undefined && this.#driver.readHeld === undefined && info.metadata[META.freshness] === "immutable" && this.#heldImmutable.get(info.key) === undefined) {
      this.#heldImmutable.set(info.key, { info, contents: opened.contents });
    }
    if (count) this.#observer.result(backend, RESULT_OF[status]);
    this.index.touched(info.key, info.size);
    const lease = this.index.lease(info.key);
    let done = false;
    const finish = (): void => {
      if (done) return;
      done = true;
      lease.release();
    };
    return {
      status,
      size: info.size,
      contentType: info.contentType,
      etag: info.etag,
      lastModified: lastModifiedOf(info),
      upstreamHeaders: keptHeadersOf(info),
      contents: opened.contents,
      // What a route sends from `contents` never passes through `body()`: counted here.
      sent: (bytes) => this.#observer.bytesFromCache(backend, bytes),
      body: (range) => {
        const body = opened.body(range);
        this.#observer.bytesFromCache(backend, range === undefined ? info.size : range.end - range.start + 1);
        body.once("close", finish);
        return body;
      },
      release: () => {
        finish();
        void opened.close();
      },
      presign: this.#presignerFor(info),
    };
  }

  /** Immutable entries on a store with signed URLs may be fetched from the store directly. */
  #presignerFor(info: ObjectInfo): ((expiresInSeconds: number) => Promise<string>) | undefined {
    const presign = this.#driver.presign?.bind(this.#driver);
    if (presign === undefined || info.metadata[META.freshness] !== "immutable") return undefined;
    return (expiresInSeconds) => presign(info.key, expiresInSeconds);
  }

  /** The upstream just said the stored copy is current (here, and to the other workers). */
  #validated(key: string): void {
    const now = this.#clock();
    this.#revalidatedAt.set(key, now);
    this.#coordinator.remember?.(validatedFact(key), now);
  }

  #rememberNotFound(key: string): void {
    if (this.#negativeTtlMs <= 0) return;
    this.#coordinator.remember?.(notFoundFact(key), this.#clock() + this.#negativeTtlMs);
    if (this.#negative.size >= NEGATIVE_CACHE_LIMIT) {
      const oldest = this.#negative.keys().next().value;
      if (oldest !== undefined) this.#negative.delete(oldest);
    }
    this.#negative.set(key, this.#clock() + this.#negativeTtlMs);
  }
}

function fillHeaders(headers: Readonly<Record<string, string>>, keep: readonly string[] = []): FillHeaders {
  const kept: Record<string, string> = {};
  for (const name of keep) {
    const value = headers[name];
    if (value !== undefined) kept[name] = value;
  }
  const length = headers["content-length"];
  const contentLength = length !== undefined && /^\d+$/.test(length) && headers["content-encoding"] === undefined ? Number(length) : undefined;
  return {
    contentType: headers["content-type"],
    contentLength,
    upstreamEtag: headers["etag"],
    upstreamLastModified: headers["last-modified"],
    kept,
  };
}

function keptHeadersOf(info: ObjectInfo): Record<string, string> {
  const kept: Record<string, string> = {};
  for (const [name, value] of Object.entries(info.metadata)) {
    if (name.startsWith(META.keptHeader)) kept[name.slice(META.keptHeader.length)] = value;
  }
  return kept;
}

function upstreamStatusError(status: number, headers: Readonly<Record<string, string>>): VaultError {
  if (status === 429) {
    const retryAfter = Number(headers["retry-after"]);
    return new VaultError("rate_limited", "upstream is rate-limiting", Number.isFinite(retryAfter) && retryAfter > 0 ? { retryAfterSeconds: retryAfter } : {});
  }
  if (status === 401 || status === 403) return new VaultError("upstream_failed", `upstream refused access (${status})`);
  return new VaultError("upstream_failed", `upstream answered ${status}`);
}

/** The upstream could not answer (down, timing out, rate-limiting): a stale copy may serve instead. */
function isUpstreamUnavailable(error: unknown): error is VaultError {
  return isVaultError(error) && (error.kind === "upstream_failed" || error.kind === "upstream_timeout" || error.kind === "rate_limited");
}

function notFound(ref: ArtifactRef): VaultError {
  return new VaultError("not_found", `not found upstream: ${ref.upstreamPath}`);
}

function lastModifiedOf(info: ObjectInfo): Date {
  return parseHttpDate(info.metadata[META.upstreamLastModified]) ?? info.modifiedAt;
}

function parseHttpDate(value: string | undefined): Date | undefined {
  if (value === undefined) return undefined;
  const time = Date.parse(value);
  return Number.isNaN(time) ? undefined : new Date(time);
}
