import type { Readable } from "node:stream";
import type { ByteRange } from "../core/byte-range.js";

/**
 * The storage layer both faces (object store and vault) sit on. Drivers: memory, filesystem, s3.
 * One contract suite (`tests/contract/storage-driver.contract.ts`) runs against every driver.
 *
 * Conventions:
 * - keys are validated by the caller with `validateKey` (1..1024 UTF-8 bytes, no NUL); a driver
 *   must still store any valid key losslessly and keep every key inside its own root;
 * - a missing object is a value (`undefined` / `false`), never an exception;
 * - failures are `VaultError`s with a kind (see `src/core/errors.ts`).
 */
export interface ObjectInfo {
  readonly key: string;
  readonly size: number;
  /** The Content-Type given at write time, if any. */
  readonly contentType: string | undefined;
  /** Hex SHA-256 of the content. */
  readonly sha256: string;
  /** Strong ETag, quoted, as sent in HTTP headers: `"<sha256 hex>"`. */
  readonly etag: string;
  /** When the key was first created (kept across overwrites). */
  readonly createdAt: Date;
  /** When the current content was written. */
  readonly modifiedAt: Date;
  /** Small free-form string metadata (the cache stores upstream validators here). */
  readonly metadata: Readonly<Record<string, string>>;
}

export type { ByteRange } from "../core/byte-range.js";

export interface ReadOptions {
  /** Must lie within the object (callers check against `stat` first); inclusive. */
  readonly range?: ByteRange;
  readonly signal?: AbortSignal;
}

export interface ReadResult {
  readonly info: ObjectInfo;
  /** The whole object, or just `range` when one was asked for. Streams; never buffered whole. */
  readonly body: Readable;
}

/**
 * An object opened for reading: its description and its bytes come from the same version, so a
 * caller can decide (conditional request, range) from `info` and then stream exactly that.
 * Either call `body` once, or `close` to let go without reading.
 */
export interface OpenedObject {
  readonly info: ObjectInfo;
  /**
   * The whole body when the driver already holds it in memory (small objects), so a server can
   * send it without setting up a stream. Read-only: it may share the driver's own memory.
   */
  readonly contents: Buffer | undefined;
  /** Streams the whole body or an inclusive range (within the object); takes over the handle. */
  body(range?: ByteRange): Readable;
  close(): Promise<void>;
}

/** An object whole in memory (`StorageDriver.readHeld`). */
export interface HeldObject {
  readonly info: ObjectInfo;
  readonly contents: Buffer;
}

export interface WriteOptions {
  /** Create-only: fail with `precondition_failed` if the key exists (HTTP `If-None-Match: *`). */
  readonly ifNoneMatch?: "*";
  /** Compare-and-swap: fail with `precondition_failed` unless the current ETag equals this. */
  readonly ifMatch?: string;
  readonly contentType?: string;
  /** Fail with `bad_request` (nothing stored) if the body has another length. */
  readonly expectedSize?: number;
  /** Hex SHA-256 the body must have, else `checksum_mismatch` and nothing stored. */
  readonly expectedSha256?: string;
  /** Base64 MD5 (HTTP `Content-MD5`) the body must have, else `checksum_mismatch`. */
  readonly expectedMd5Base64?: string;
  /** Fail with `payload_too_large` (nothing stored) as soon as the body grows past this. */
  readonly maxSize?: number;
  readonly metadata?: Readonly<Record<string, string>>;
  /** Aborting cancels the write; nothing is stored. */
  readonly signal?: AbortSignal;
}

/** For `importFile`: the file's content was already verified by the caller. */
export interface ImportOptions {
  readonly size: number;
  /** Hex SHA-256 of the file's content. */
  readonly sha256: string;
  readonly contentType?: string | undefined;
  readonly metadata?: Readonly<Record<string, string>> | undefined;
  /** As for `write`: create-only. */
  readonly ifNoneMatch?: "*" | undefined;
  /** As for `write`: replace only the version with this ETag. */
  readonly ifMatch?: string | undefined;
}

export interface ListOptions {
  readonly prefix?: string;
  /** Only keys strictly after this one (in UTF-8 byte order); need not exist. */
  readonly startAfter?: string;
  /** 1..1000. */
  readonly limit: number;
}

export interface ListPage {
  /** In UTF-8 byte order (= code point order; not JavaScript's default UTF-16 order). */
  readonly keys: readonly string[];
  /** True when more keys match after the last one returned. */
  readonly isTruncated: boolean;
}

/** A listed key with its size and modification time. */
export interface ListEntry {
  readonly key: string;
  readonly size: number;
  readonly modifiedAt: Date;
}

export interface ListEntryPage {
  /** In UTF-8 byte order, as `ListPage.keys`. */
  readonly entries: readonly ListEntry[];
  readonly isTruncated: boolean;
  /** Where the next page starts (`startAfter`): the last key listed, even if it vanished since. */
  readonly lastKey: string | undefined;
}

export interface StorageDriver {
  /** A short name for logs and metrics: "memory", "filesystem", "s3". */
  readonly kind: string;

  stat(key: string): Promise<ObjectInfo | undefined>;

  read(key: string, options?: ReadOptions): Promise<ReadResult | undefined>;

  /** Opens the current version for reading; see `OpenedObject`. */
  open(key: string): Promise<OpenedObject | undefined>;

  /**
   * Stores `body` under `key`, atomically: until this resolves, readers see the previous object
   * (or none); afterwards, the whole new one; never a part. If the body errors, the signal
   * aborts, or a check fails (size, digest, preconditions), nothing changes and the promise
   * rejects. Memory use does not depend on the body's size.
   */
  write(key: string, body: AsyncIterable<Uint8Array>, options?: WriteOptions): Promise<ObjectInfo>;

  /**
   * Optional: stores a complete local file (a download spooled by the cache) as the object,
   * atomically, moving it into place when it is on the store's filesystem instead of copying.
   * The file is gone afterwards (moved, or removed by the caller's fallback). Use the
   * `importFile` function in `import-file.ts`, which falls back to `write` for other drivers.
   */
  importFile?(key: string, file: string, options: ImportOptions): Promise<ObjectInfo>;

  /**
   * Optional: the object, synchronously, when the driver holds it whole in memory (a hot small
   * object); undefined when it does not — which says nothing about whether the key exists (ask
   * `open`). Lets a server answer its hottest requests without a promise or a file open.
   */
  readHeld?(key: string): HeldObject | undefined;

  /**
   * Optional: a URL that lets anyone holding it GET the key's current object directly from the
   * store for `expiresInSeconds` (S3's presigned URLs), so large bodies need not pass through the
   * vault. Drivers without such URLs leave it out.
   */
  presign?(key: string, expiresInSeconds: number): Promise<string>;

  /** Optional: a local directory on the store's filesystem where files for `importFile` can be made. */
  readonly localStagingDirectory?: string;

  /**
   * Optional: settles when the driver's start-up work is done (the filesystem driver's walk of
   * its keys; it rejects if that failed). Until then the driver works, but `list` waits for it.
   * Absent: there is none (`/ready` counts the store ready at once).
   */
  readonly indexed?: Promise<unknown>;

  /** Removes the key; resolves `false` if it did not exist. */
  delete(key: string): Promise<boolean>;

  /** One page of keys; its cost grows with the page, not with the number of stored keys. */
  list(options: ListOptions): Promise<ListPage>;

  /**
   * Optional: `list` with each key's size and modification time, for drivers whose listing has
   * them (S3's ListObjectsV2 does), so a walk over every object costs a request per page rather
   * than one per key. Use the `listEntries` function in `list-entries.ts`, which falls back to
   * `list` and `stat` for other drivers.
   */
  listEntries?(options: ListOptions): Promise<ListEntryPage>;

  /** Releases resources (file handles, connections). */
  close(): Promise<void>;
}
