import { createHash } from "node:crypto";
import { Readable } from "node:stream";
import { setImmediate as yieldToEventLoop } from "node:timers/promises";
import type { Logger } from "pino";
import type { ArtifactRef, ExpectedDigest } from "../../core/cache/artifact-ref.js";
import type { ArtifactSource, CachedArtifact } from "../../core/cache/artifact-source.js";
import { VaultError, isVaultError } from "../../core/errors.js";
import { readUpstreamBody } from "../upstream-request.js";
import type { PoolIndexKind } from "./apt-paths.js";
import { decompressIndex } from "./index-decompress.js";
import { IndexStanzaReader } from "./index-stanzas.js";
import { PoolDigestIndex, PoolDigestTable, type PoolDigest } from "./pool-digests.js";
import { parseRelease, type ReleaseEntry, type ReleaseIndex } from "./release-file.js";

/**
 * What one apt backend knows of the digests its mirror publishes, read back from the files the
 * vault has CACHED for it (or from the cache's own download of one still arriving, whose last
 * bytes come only once it is verified) — never from an upstream answer directly, so an index
 * whose download fails verification is never trusted:
 *
 * - a suite's `InRelease` (else `Release`) lists its index files with their SHA256s: a plain
 *   `dists/` index being downloaded must match it (`indexDigest`);
 * - the `Packages` and `Sources` indexes it lists, as cached (by hash or by name), list the pool
 *   files with their SHA256s: a pool file being downloaded must match (`poolDigest`).
 *
 * When the indexes are read: lazily, by the first pool download after something under `dists/`
 * came from upstream (or the first since the start), which waits for it — side by side with
 * its own upstream request. Only indexes whose version was not read yet are read; `Sources`
 * only when a source package file is asked for. The suites looked at are those whose Release
 * file a client asked for since the start (`noteSuite`; every `apt-get update` starts there),
 * most recent first, at most `MAX_SUITES`. Reading an index runs on the event loop in slices of
 * about `SLICE_MS` with the loop free between them, one read at a time per kind of index,
 * shared by every download waiting for it. Memory is bounded by `PoolDigestIndex`
 * (pool-digests.ts); after a restart it is rebuilt the same way, from the store.
 *
 * When no digest can be known (no suite asked for since the start, the index not cached, only
 * bzip2 or zstd indexes, a file no index lists), callers get `undefined` and store the file
 * unverified.
 */

export interface CachedIndexesOptions {
  readonly artifacts: ArtifactSource;
  /** The ref a decoded path below the mirror is cached under (only its cache key is used, to peek); undefined if it cannot be one. */
  readonly refFor: (path: string) => ArtifactRef | undefined;
  readonly logger: Logger;
  /** Bound on pool files known in memory (default `DEFAULT_MAX_POOL_DIGESTS`). */
  readonly maxPoolDigests?: number | undefined;
  readonly clock?: (() => number) | undefined;
}

/** About 170 MB at most (pool-digests.ts); Debian's main for one architecture, binary and source, is ~170,000. */
export const DEFAULT_MAX_POOL_DIGESTS = 1_000_000;
/** Suites remembered; past this the one asked for longest ago is forgotten. */
export const MAX_SUITES = 256;
/** Ubuntu's largest InRelease files are ~250 KB. */
const MAX_RELEASE_BYTES = 32 * 1024 * 1024;
/** Decompressed bytes read of one index at most (Debian's largest Packages is ~50 MB). */
const MAX_INDEX_TEXT_BYTES = 1024 * 1024 * 1024;
/** Work between two turns of the event loop while reading an index. */
export const SLICE_MS = 10;
/**
 * A `dists/` file fetched from upstream is "landing" until it is seen stored; a look at the
 * suite that misses one keeps the suite due for another look. A download that failed is
 * forgotten after this long.
 */
const LANDING_MS = 10 * 60_000;
const MAX_LANDING = 4096;
/** Compression suffixes read, best first (apt's own order; `.bz2`, `.lzma`, `.zst` are not read). */
const READABLE_SUFFIXES = [".xz", ".gz", ""] as const;

interface Suite {
  /** The `generation` the last complete look for each kind of index saw. */
  readonly looked: Map<PoolIndexKind, number>;
}

interface FoundIndex {
  readonly artifact: CachedArtifact;
  readonly key: string;
  /** The SHA256 of the cached file when known before reading it (a stored copy's ETag); undefined for one still arriving. */
  readonly sha256: string | undefined;
  /** The SHA256 the Release lists for it: a copy that turns out to be another version is not used. */
  readonly listed: string | undefined;
}

export class CachedIndexes {
  readonly #artifacts: ArtifactSource;
  readonly #refFor: (path: string) => ArtifactRef | undefined;
  readonly #logger: Logger;
  readonly #clock: () => number;
  readonly #digests: PoolDigestIndex;
  /** Bumped by every `dists/` file that comes from upstream: something may have changed. */
  #generation = 1;
  /** By directory (`dists/bookworm`), least recently noted first. */
  readonly #suites = new Map<string, Suite>();
  /** The last Release read per suite, by the cached file's ETag. */
  readonly #releases = new Map<string, { readonly etag: string; readonly release: ReleaseIndex }>();
  /** Cache keys of `dists/` files fetched but not yet seen stored, with when to stop waiting. */
  readonly #landing = new Map<string, number>();
  readonly #looking = new Map<PoolIndexKind, Promise<void>>();
  readonly #closing = new AbortController();

  constructor(options: CachedIndexesOptions) {
    this.#artifacts = options.artifacts;
    this.#refFor = options.refFor;
    this.#logger = options.logger;
    this.#clock = options.clock ?? Date.now;
    this.#digests = new PoolDigestIndex(options.maxPoolDigests ?? DEFAULT_MAX_POOL_DIGESTS);
  }

  /** Pool files known in memory now (for tests and logs). */
  get poolDigestCount(): number {
    return this.#digests.entryCount;
  }

  /** A client asked for a suite's Release file (`dists/bookworm/InRelease` → `dists/bookworm`). */
  noteSuite(directory: string): void {
    const known = this.#suites.get(directory);
    this.#suites.delete(directory);
    this.#suites.set(directory, known ?? { looked: new Map() });
    if (this.#suites.size > MAX_SUITES) {
      const oldest = this.#suites.keys().next().value;
      if (oldest !== undefined) {
        this.#suites.delete(oldest);
        this.#releases.delete(oldest);
      }
    }
  }

  /** A `dists/` file came from upstream (a 200) and is being stored under `cacheKey`. */
  noteFetched(cacheKey: string): void {
    this.#generation++;
    this.#landing.delete(cacheKey);
    this.#landing.set(cacheKey, this.#clock() + LANDING_MS);
    if (this.#landing.size > MAX_LANDING) {
      const oldest = this.#landing.keys().next().value;
      if (oldest !== undefined) this.#landing.delete(oldest);
    }
  }

  /**
   * The digest a `dists/` index file (`dists/bookworm/main/binary-amd64/Packages.xz`) must have
   * per its suite's cached Release; undefined when no Release is cached, it does not list the
   * file, or the file is newer than it (`lastModified`, the upstream's, after the Release's
   * `Date`: the mirror published again since the vault fetched its Release, and the new index
   * cannot be checked against the old list).
   */
  async indexDigest(path: string, lastModified?: string): Promise<ExpectedDigest | undefined> {
    for (const suite of this.#suitesHolding(path)) {
      const release = await this.#release(suite);
      const entry = release?.entries.get(path.slice(suite.length + 1));
      if (release === undefined || entry === undefined) continue;
      const modified = lastModified === undefined ? Number.NaN : Date.parse(lastModified);
      if (release.date !== undefined && modified > release.date) {
        this.#logger.debug({ path, lastModified }, "index newer than its suite's cached Release: stored unchecked");
        return undefined;
      }
      if (entry.sha256 !== undefined) return { algorithm: "sha256", hex: entry.sha256 };
      if (entry.sha512 !== undefined) return { algorithm: "sha512", hex: entry.sha512 };
      return undefined;
    }
    return undefined;
  }

  /**
   * The SHA256 and size a pool file must have per the cached `Packages` or `Sources` indexes;
   * undefined when none of them lists it. When something under `dists/` came from upstream
   * since the last look (or there was none yet), looks at the cached indexes first, so a
   * re-published index wins over the one read before. Rejects only when `signal` aborts.
   */
  async poolDigest(path: string, kind: PoolIndexKind, signal?: AbortSignal): Promise<PoolDigest | undefined> {
    if (this.#due(kind)) await untilAborted(this.#look(kind), signal);
    return this.#digests.lookup(path);
  }

  /** Stops a read in progress; forgets every digest. */
  close(): void {
    this.#closing.abort();
    this.#digests.clear();
  }

  /** Whether some suite may have an index of `kind` cached that was not read. */
  #due(kind: PoolIndexKind): boolean {
    for (const suite of this.#suites.values()) if ((suite.looked.get(kind) ?? 0) < this.#generation) return true;
    return false;
  }

  /** One look at a time per kind; whoever asks meanwhile waits for the same one. */
  #look(kind: PoolIndexKind): Promise<void> {
    const running = this.#looking.get(kind);
    if (running !== undefined) return running;
    const look = this.#lookAtSuites(kind)
      .catch((error: unknown) => {
        if (!this.#closing.signal.aborted) this.#logger.warn({ err: error, kind }, "could not read the cached APT indexes; pool files are stored unverified meanwhile");
      })
      .finally(() => this.#looking.delete(kind));
    this.#looking.set(kind, look);
    return look;
  }

  async #lookAtSuites(kind: PoolIndexKind): Promise<void> {
    const generation = this.#generation;
    const now = this.#clock();
    for (const [key, until] of this.#landing) if (until <= now) this.#landing.delete(key);
    for (const [directory, suite] of [...this.#suites].reverse()) {
      if ((suite.looked.get(kind) ?? 0) >= generation) continue;
      const complete = await this.#lookAtSuite(directory, kind);
      if (complete) suite.looked.set(kind, generation);
    }
  }

  /** Reads the suite's cached indexes of `kind` that are not read yet. False when one may still be landing. */
  async #lookAtSuite(directory: string, kind: PoolIndexKind): Promise<boolean> {
    const release = await this.#release(directory);
    if (release === undefined) return !this.#isLanding(`${directory}/InRelease`) && !this.#isLanding(`${directory}/Release`);
    let complete = true;
    for (const [group, entries] of indexGroups(release, kind)) {
      this.#closing.signal.throwIfAborted();
      const layer = `${directory}/${group}`;
      const loaded = this.#digests.sourceOf(layer);
      if (loaded !== undefined && entries.some((entry) => entry.sha256 === loaded)) continue;
      const found = await this.#findCached(directory, entries);
      if (found === "landing") {
        complete = false;
        continue;
      }
      if (found === undefined) continue;
      if (found.sha256 !== undefined && found.sha256 === loaded) {
        found.artifact.release();
        continue;
      }
      await this.#read(layer, found);
    }
    return complete;
  }

  /**
   * The cached copy of one of `entries` (the same index in several compressions, best first):
   * by hash, or by name when its SHA256 is the one listed. "landing" when none is cached but
   * one was fetched a moment ago and is neither stored nor being downloaded any more.
   */
  async #findCached(directory: string, entries: readonly ReleaseEntry[]): Promise<FoundIndex | "landing" | undefined> {
    let landing = false;
    for (const entry of entries) {
      const byName = `${directory}/${entry.name}`;
      const candidates = entry.sha256 === undefined ? [byName] : [`${directory}/${parentOf(entry.name)}by-hash/SHA256/${entry.sha256}`, byName];
      for (const path of candidates) {
        const ref = this.#refFor(path);
        if (ref === undefined) continue;
        const artifact = await this.#cachedOrArriving(ref);
        if (artifact === undefined) {
          landing ||= this.#landing.has(ref.cacheKey);
          continue;
        }
        const sha256 = unquote(artifact.etag);
        if (sha256 !== undefined && entry.sha256 !== undefined && sha256 !== entry.sha256) {
          // Another version of the index (cached under its name before the Release changed).
          artifact.release();
          continue;
        }
        this.#landing.delete(ref.cacheKey);
        return { artifact, key: ref.cacheKey, sha256, listed: entry.sha256 };
      }
    }
    return landing ? "landing" : undefined;
  }

  /**
   * The cache's download of `ref` in progress — its last bytes come only once it is verified, and
   * a download that fails errors its body, so nothing unverified is ever read to the end — else
   * its stored copy. Never a request of its own upstream.
   */
  #cachedOrArriving(ref: ArtifactRef): Promise<CachedArtifact | undefined> {
    return this.#artifacts.peek(ref);
  }

  /** Reads the pool files a cached index lists into layer `layer` (replacing an older version's). */
  async #read(layer: string, found: FoundIndex): Promise<void> {
    const started = performance.now();
    const table = new PoolDigestTable();
    const limit = this.#digests.maxEntries;
    let truncated = false;
    const reader = new IndexStanzaReader((file) => {
      if (table.size < limit) table.add(file.path, file.sha256, file.size);
      else truncated = true;
    });
    const signal = this.#closing.signal;
    const hash = createHash("sha256");
    try {
      const body = found.artifact.contents === undefined ? found.artifact.body() : Readable.from([found.artifact.contents]);
      const compressed = (async function* (): AsyncGenerator<Buffer> {
        for await (const chunk of body) {
          hash.update(chunk as Buffer);
          yield chunk as Buffer;
        }
      })();
      let text = 0;
      let sliceStart = performance.now();
      for await (const chunk of decompressIndex(compressed)) {
        signal.throwIfAborted();
        text += chunk.length;
        if (text > MAX_INDEX_TEXT_BYTES) throw new VaultError("payload_too_large", `more than ${MAX_INDEX_TEXT_BYTES} bytes decompressed`);
        reader.push(chunk);
        if (performance.now() - sliceStart >= SLICE_MS) {
          await yieldToEventLoop();
          sliceStart = performance.now();
        }
      }
      reader.end();
    } catch (error) {
      if (signal.aborted) throw error;
      if (isVaultError(error, "not_supported")) this.#logger.debug({ index: found.key, reason: error.message }, "cannot read this cached index; its pool files are stored unverified");
      else this.#logger.warn({ index: found.key, err: error }, "cannot read this cached index; its pool files are stored unverified");
      return;
    } finally {
      found.artifact.release();
    }
    const sha256 = hash.digest("hex");
    if (found.listed !== undefined && sha256 !== found.listed) {
      this.#logger.debug({ index: found.key }, "the cached index is another version than its Release lists; not used");
      return;
    }
    this.#digests.replace(layer, sha256, table);
    if (truncated) this.#logger.warn({ index: found.key, limit }, "an index lists more pool files than the vault keeps digests of; the rest are stored unverified");
    this.#logger.info({ index: found.key, files: table.size, known: this.#digests.entryCount, ms: Math.round(performance.now() - started) }, "read pool file digests from a cached index");
  }

  /** The suite's cached Release (InRelease first), read once per version; undefined when neither is cached. */
  async #release(directory: string): Promise<ReleaseIndex | undefined> {
    for (const file of ["InRelease", "Release"]) {
      const ref = this.#refFor(`${directory}/${file}`);
      if (ref === undefined) continue;
      const artifact = await this.#cachedOrArriving(ref);
      if (artifact === undefined) continue;
      const etag = artifact.etag;
      const memo = this.#releases.get(directory);
      if (etag !== undefined && memo !== undefined && memo.etag === etag) {
        artifact.release();
        return memo.release;
      }
      let bytes: Buffer;
      try {
        bytes = artifact.contents ?? (await readUpstreamBody(artifact.body(), MAX_RELEASE_BYTES, `the cached ${ref.cacheKey}`));
      } finally {
        artifact.release();
      }
      const release = parseRelease(bytes.toString("utf8"));
      // One still arriving has no ETag yet: read again next time, from the store.
      if (etag === undefined) return release;
      this.#releases.delete(directory);
      this.#releases.set(directory, { etag, release });
      if (this.#releases.size > MAX_SUITES) {
        const oldest = this.#releases.keys().next().value;
        if (oldest !== undefined) this.#releases.delete(oldest);
      }
      return release;
    }
    return undefined;
  }

  /** The suites a `dists/` path may belong to: those noted that hold it, longest first, and `dists/<first segment>`. */
  #suitesHolding(path: string): string[] {
    const noted = [...this.#suites.keys()].filter((directory) => path.startsWith(`${directory}/`));
    const first = path.split("/").slice(0, 2).join("/");
    return [...new Set([...noted.sort((a, b) => b.length - a.length), first])];
  }

  #isLanding(path: string): boolean {
    const ref = this.#refFor(path);
    return ref !== undefined && this.#landing.has(ref.cacheKey);
  }
}

/**
 * The indexes of `kind` a Release lists, grouped by index (`main/binary-amd64/Packages`), each
 * with its readable compressions best first; an index listed only in compressions the vault
 * cannot read is left out.
 */
export function indexGroups(release: ReleaseIndex, kind: PoolIndexKind): Map<string, ReleaseEntry[]> {
  const ranked = new Map<string, Array<{ entry: ReleaseEntry; rank: number }>>();
  for (const entry of release.entries.values()) {
    const base = entry.name.slice(entry.name.lastIndexOf("/") + 1);
    const rank = READABLE_SUFFIXES.findIndex((suffix) => base === `${kind}${suffix}`);
    if (rank === -1) continue;
    const group = entry.name.slice(0, entry.name.length - (READABLE_SUFFIXES[rank] ?? "").length);
    ranked.set(group, [...(ranked.get(group) ?? []), { entry, rank }]);
  }
  return new Map([...ranked].map(([group, entries]) => [group, entries.sort((a, b) => a.rank - b.rank).map(({ entry }) => entry)]));
}

/** `main/binary-amd64/Packages.xz` → `main/binary-amd64/`; a name without a directory → "". */
function parentOf(name: string): string {
  return name.slice(0, name.lastIndexOf("/") + 1);
}

/** `"<hex>"` → `<hex>`. */
function unquote(etag: string | undefined): string | undefined {
  const match = /^"([0-9a-f]{64})"$/.exec(etag ?? "");
  return match?.[1];
}

/** `promise`, or the signal's reason as soon as it aborts (the promise itself goes on). */
async function untilAborted<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (signal === undefined) return promise;
  signal.throwIfAborted();
  let onAbort = (): void => undefined;
  const aborted = new Promise<never>((_resolve, reject) => {
    onAbort = () => reject(signal.reason as Error);
    signal.addEventListener("abort", onAbort, { once: true });
  });
  try {
    return await Promise.race([promise, aborted]);
  } finally {
    signal.removeEventListener("abort", onAbort);
  }
}
