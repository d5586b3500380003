/**
 * The filesystem storage driver: the embedded default.
 *
 * Layout under `root_path`:
 *
 *     <root_path>/objects/<encoded key path>~
 *
 * - Each key is split on `/`; every segment is percent-encoded reversibly and long segments are
 *   cut into chunk directories (`object-path.ts` has the exact rules). Directory names are encoded
 *   segments; the object's FILE is its encoded last segment + `~`. `~` and `+` are always escaped
 *   inside segments and a leading `.` is too, so keys `a` and `a/b` coexist (`a~` and `a/b~`), no
 *   name is `.`, `..` or a staging name, no name exceeds NAME_MAX, and no key — whatever it holds
 *   (`..`, `%2e%2e`, `\`, `/abs`, `//`) — names a path outside `objects/`.
 * - An object file is `[body][JSON trailer][16-byte footer]` (`object-file.ts`): reads stream a byte
 *   range of the body straight from the file; `stat` reads only the tail.
 * - A write streams the body into a staging file in the SAME directory as the final file
 *   (`.tmp-<pid><random>`: the writing process's pid in 8 hex digits, then 16 random ones; a name no
 *   key produces) while hashing it, appends trailer and footer, fsyncs the file, then renames it
 *   over the final name — or, for create-only writes, link()s it to the final name (which fails
 *   atomically with EEXIST if the key exists) and unlinks the staging name — and fsyncs the
 *   directory (and any directories it created). Readers see the old object or the
 *   whole new one; a reader that already opened the old file keeps reading the old bytes.
 * - Overwrites and compare-and-swap hold a per-key lock for the commit step (check the
 *   precondition, read the previous createdAt, append the trailer, fsync, rename); bodies stream
 *   without it. The lock is in-process, or held among the processes sharing the store
 *   (`StoreSharing`, below).
 * - Open walks `objects/` with readdir only (no file opens) to rebuild the in-memory sorted key
 *   index that answers `list`, and removes staging files left by interrupted writes: a crashed write
 *   never shows up as an object. When processes share the store, a staging file named with the
 *   pid of another live process is that process's write in progress, and is kept. Files whose
 *   footer is invalid are found when they are opened (stat/read): they are reported through
 *   `onWarning` and treated as missing, never served. Entries that are not the canonical path of a
 *   key are reported and ignored.
 * - Delete unlinks the file, then removes empty parent directories best-effort; writes retry
 *   mkdir+create when such an rmdir races them.
 * - Permissions: files (staging, imported and object files) are `file_mode` (default 0600) and the
 *   directories the store creates (the root and `objects/` included) the same plus the execute bit
 *   of each class that can read (0600 → 0700, 0640 → 0750), set with fchmod whatever the umask.
 *   Directories that already exist keep their modes.
 * - Full disk: ENOSPC / EDQUOT fail the operation with `insufficient_storage` (HTTP 507; clients
 *   do not retry it); like any failed write, it leaves the previous version whole.
 *
 * Symbolic links: nothing below the root is followed. `root_path` itself may be a link (the
 * operator's choice), but below it — the namespace directory (`<root_path>/cache`), `objects/`
 * and every directory of a key's path — each directory is lstat()ed on the way down just before
 * the store opens, creates, renames or unlinks anything in it, and object files are opened with
 * O_NOFOLLOW. A key whose path crosses a link (or a non-directory) reads as missing (reported
 * through `onWarning`); a write to it fails with `internal` (not the client's doing: someone
 * with local access planted it), and a delete answers missing: nothing outside the root is read,
 * written or removed. A link in place of an object's file reads as missing too; a write replaces
 * the link itself (rename never follows it). The start-up walk never descends into links.
 *
 * What this does NOT guarantee (TOCTOU): Node has no openat()/renameat() relative to a directory
 * fd (nor O_BENEATH / RESOLVE_NO_SYMLINKS), so a path is resolved again by the kernel after it was
 * checked. A local user who can write below the root and swaps a checked directory for a link in
 * the microseconds between the lstat and the open/rename/unlink (racing the server on purpose)
 * can still redirect that one operation; so can a directory swapped while a write's body streams,
 * except that the commit re-checks the path right before its rename. Links planted beforehand —
 * the case that matters in practice — are always refused. The 0700 default is what keeps other
 * users from planting anything at all; anyone running as the service's user (or root) is trusted.
 *
 * Assumptions: a case-sensitive filesystem (keys `a` and `A` are distinct files), POSIX rename and
 * link semantics, and ONE server process per root — or the worker processes of one vault sharing
 * it through `StoreSharing` (`sharing`): the key lock is then taken through the primary process,
 * and every change is announced to the other workers (their key index and held small objects)
 * before the operation resolves. Other setups — two separate vaults on one root — are still not
 * supported: each would keep its own lock and index.
 * The root path must leave room for the longest encoded key under PATH_MAX: at most about 940 bytes.
 */
import { randomBytes } from "node:crypto";
import { close, closeSync, constants, createReadStream, fchmodSync, lstatSync, openSync, readSync, readdirSync, unlinkSync, type Dirent } from "node:fs";
import { link, lstat, mkdir, open, rename, rmdir, unlink, type FileHandle } from "node:fs/promises";
import path from "node:path";
import { Readable, addAbortSignal } from "node:stream";
import { errorCode } from "../core/error-code.js";
import { VaultError, isVaultError } from "../core/errors.js";
import { validateKey } from "../core/storage-key.js";
import { resolveRange } from "./byte-range.js";
import { HeldObjects } from "./held-objects.js";
import { KeyLock } from "./key-lock.js";
import { FileBodyStream } from "./file-body-stream.js";
import { CorruptObjectError, encodeObjectTail, parseWholeObject, readObjectTail, readObjectTailSync } from "./object-file.js";
import { PathDecoder, keyToNames, keyToRelativePath } from "./object-path.js";
import { SortedKeyIndex } from "./sorted-key-index.js";
import type { StoreChange, StoreSharing } from "./store-sharing.js";
import type {
  HeldObject,
  ListOptions,
  ListPage,
  ImportOptions,
  ObjectInfo,
  OpenedObject,
  ReadOptions,
  ReadResult,
  StorageDriver,
  WriteOptions,
} from "./storage-driver.js";
import type { FilesystemStoreOptions } from "./store-config.js";
import {
  checkPreconditions,
  checkWriteOptions,
  consumeBody,
  newVersionInfo,
  throwIfAborted,
  type CheckedWriteOptions,
} from "./write-checks.js";

/** Staging files start with this; encoded names never start with `.`. */
export const STAGING_PREFIX = ".tmp-";
/** After the prefix: the writer's pid (8 hex digits), then 16 random ones. */
const STAGING_NAME = /^\.tmp-([0-9a-f]{8})[0-9a-f]{16}$/;
/** The largest pid kill(2) takes as one process (pid_t is 32-bit; above is a process group). */
const MAX_PID = 0x7fffffff;
/**
 * Staging files of writes in progress in THIS process, whatever driver instance owns them: the
 * walk must not take them for crash leftovers. Process-wide because a file named with this
 * process's pid is a leftover exactly when no write of this process owns it (the pid of a
 * previous process reused, as in containers that restart with the same pids).
 */
const liveStaging = new Set<string>();
// A process that exits mid-write (a worker whose primary died is ended by node:cluster at once)
// takes its staging files with it, rather than leave them for the next walk — which keeps a file
// whose writer's pid is still alive, and might run while this process is still exiting.
process.on("exit", () => {
  for (const file of liveStaging) {
    try {
      unlinkSync(file);
    } catch {
      // already gone
    }
  }
});
/**
 * The longest path below `objects/` a key or its staging file can take: about 3 bytes per key byte
 * plus chunk suffixes, plus a staging name in place of a short file name (checked by the unit tests).
 */
export const MAX_RELATIVE_PATH_BYTES = 3140;
const PATH_MAX = 4096;
const READ_CHUNK = 1024 * 1024;
/** Objects up to this size (body + trailer) are read whole in one read. */
const SMALL_OBJECT_BYTES = 32 * 1024;
/** Memory for small objects held after a read, per store. */
const SMALL_OBJECT_CACHE_BYTES = 32 * 1024 * 1024;
const WRITE_BUFFER = 256 * 1024;
const MKDIR_ATTEMPTS = 10;
/** The open-time walk yields to the event loop after this long. */
const SCAN_SLICE_MS = 10;
const O_NOFOLLOW = constants.O_NOFOLLOW ?? 0;
/** How long a directory a read found safe (a directory, not a link) is taken as such. */
const DIRECTORY_RECHECK_MS = 1000;
/** Directories remembered as safe at most (the set is emptied past it). */
const MAX_SAFE_DIRECTORIES = 10_000;
const O_DIRECTORY = constants.O_DIRECTORY ?? 0;
/** Files: the service's user only, unless `file_mode` says otherwise. */
export const DEFAULT_FILE_MODE = 0o600;

export interface FilesystemDriverOptions extends FilesystemStoreOptions {
  /**
   * A directory below `root_path` that holds this driver's store instead (the cache's `cache`):
   * part of the store, so links there are refused like any other below the root.
   */
  readonly namespace?: string;
  /** The time stamps objects get (tests inject one). */
  readonly clock?: () => Date;
  /** Where corrupt or foreign files are reported (default: `process.emitWarning`). */
  readonly onWarning?: (message: string) => void;
  /** How long the start-up walk runs before it lets other work in (default 10 ms; 0 = every directory). */
  readonly scanSliceMs?: number;
  /** The start-up walk begins once this resolves (tests hold it to work while the index is not built). */
  readonly scanGate?: Promise<void>;
  /**
   * Set when other processes (the vault's workers) serve this same store: the commit lock and the
   * news of every change go through it. One per driver instance (per namespace).
   */
  readonly sharing?: StoreSharing;
}

/** What `open` found. */
export interface FilesystemOpenReport {
  readonly objects: number;
  readonly removedStagingFiles: number;
  readonly ignoredEntries: number;
}

export class FilesystemDriver implements StorageDriver {
  readonly kind = "filesystem";
  readonly root: string;
  readonly objectsDir: string;
  /**
   * Resolves when the start-up walk has indexed every key (and removed crash leftovers). Until
   * then the driver works (stat, read, write and delete go to the disk) and `list` waits.
   */
  readonly indexed: Promise<FilesystemOpenReport>;
  readonly #index = new SortedKeyIndex<true>();
  #indexReady = false;
  /**
   * Keys another process removed while the start-up walk runs: the walk does not index them
   * unless stored again since. Defensive: a directory's readdir and its keys are one synchronous
   * step and an announcement arrives after its unlink, so the walk should never see such a key.
   */
  readonly #removedWhileWalking = new Set<string>();
  readonly #locks = new KeyLock();
  readonly #sharing: StoreSharing | undefined;
  /**
   * Small objects (one read of at most `SMALL_OBJECT_BYTES` holds them whole) as last read: a hot
   * object is answered with no open, read, close, path check or trailer parse — nginx's
   * `open_file_cache`, for the bytes as well. Sound because every writer of the store drops the
   * key once its change is in place, before the operation resolves: this process in `#stored` /
   * `#removed`, and every other process sharing the store by announcing the change, which drops
   * the key here before its write or delete is answered. A read is synchronous, so no read of the
   * old file lands after that.
   */
  readonly #small = new HeldObjects(SMALL_OBJECT_CACHE_BYTES);
  /** Directory → when a read last found it a directory (`#checkPath`). */
  readonly #safeDirectories = new Map<string, number>();
  readonly #fsync: boolean;
  readonly #fileMode: number;
  readonly #dirMode: number;
  /** The directories from below `root_path` down to `objects/`: checked before each key's own. */
  readonly #storeDirs: readonly string[];
  readonly #clock: () => Date;
  readonly #warn: (message: string) => void;
  #closed = false;

  private constructor(root: string, storeDirs: readonly string[], options: FilesystemDriverOptions, warn: (message: string) => void) {
    this.root = root;
    this.objectsDir = path.join(root, "objects");
    this.#storeDirs = storeDirs;
    this.#fsync = options.fsync ?? true;
    this.#fileMode = options.file_mode ?? DEFAULT_FILE_MODE;
    this.#dirMode = directoryMode(this.#fileMode);
    this.#clock = options.clock ?? (() => new Date());
    this.#warn = warn;
    this.#sharing = options.sharing;
    this.#sharing?.onChange((change) => this.#changedElsewhere(change));
    const shared = this.#sharing !== undefined;
    const gate = options.scanGate ?? Promise.resolve();
    this.indexed = gate.then(() => scanObjects(
      this.objectsDir,
      (key) => {
        if (!this.#removedWhileWalking.has(key)) this.#index.set(key, true);
      },
      warn,
      (file, name) => liveStaging.has(file) || (shared && writtenByOtherLiveProcess(name)),
      options.scanSliceMs ?? SCAN_SLICE_MS,
    )).then(
      (report) => {
        this.#indexReady = true;
        this.#removedWhileWalking.clear();
        return report;
      },
    );
    // `list` reports a failed walk; nothing else depends on it.
    this.indexed.catch((error: unknown) => warn(`indexing the store at ${root} failed: ${String(error)}`));
  }

  /** A new version of `key` is in place (renamed): the key is listed, a held copy dropped. */
  #stored(key: string): void {
    this.#index.set(key, true);
    this.#small.delete(key);
    this.#removedWhileWalking.delete(key);
  }

  #removed(key: string): void {
    this.#index.delete(key);
    this.#small.delete(key);
  }

  /**
   * Runs `fn` holding `key`'s commit lock: among all processes sharing the store, or in this one.
   * Each change is applied here and announced inside `fn` (`#announce`), so processes apply the
   * changes of one key in the order they were made. Announcing after the lock is released would
   * let a write's "stored" and a following delete's "removed" arrive in the other order, leaving
   * another process's index without a key that exists (read as missing) or listing a removed one.
   */
  #withKeyLock<T>(key: string, fn: () => Promise<T>): Promise<T> {
    return this.#sharing === undefined ? this.#locks.run(key, fn) : this.#sharing.withKeyLock(key, fn);
  }

  /** Tells the other processes sharing the store that `key`'s change is in place (after `#stored` / `#removed`). */
  async #announce(key: string, removed: boolean): Promise<void> {
    await this.#sharing?.announce({ key, removed });
  }

  /** Another process changed `key`: this process's index and held copy follow. */
  #changedElsewhere({ key, removed }: StoreChange): void {
    if (removed) {
      this.#removed(key);
      if (!this.#indexReady) this.#removedWhileWalking.add(key);
    } else {
      this.#stored(key);
    }
  }

  /** Whether the key may exist: the index knows once it is built; until then, ask the disk. */
  #mayExist(key: string): boolean {
    return !this.#indexReady || this.#index.has(key);
  }

  /** Opens (creating if needed) the store at `root_path`, cleans leftovers and indexes its keys. */
  static async open(options: FilesystemDriverOptions): Promise<FilesystemDriver> {
    if (typeof options.root_path !== "string" || options.root_path === "") {
      throw new VaultError("bad_request", "root_path must be a directory path");
    }
    const { namespace, file_mode: fileMode = DEFAULT_FILE_MODE } = options;
    if (namespace !== undefined && !/^[A-Za-z0-9_-]+$/.test(namespace)) {
      throw new VaultError("bad_request", `the store namespace must be a plain directory name, got ${JSON.stringify(namespace)}`);
    }
    if (!Number.isInteger(fileMode) || (fileMode & ~0o666) !== 0 || (fileMode & 0o600) !== 0o600) {
      throw new VaultError("bad_request", "file_mode must give the owner read and write, and no execute bits (e.g. 0o600, 0o640)");
    }
    const base = path.resolve(options.root_path);
    const root = namespace === undefined ? base : path.join(base, namespace);
    const objectsDir = path.join(root, "objects");
    const storeDirs = namespace === undefined ? [objectsDir] : [root, objectsDir];
    const longest = Buffer.byteLength(objectsDir, "utf8") + 1 + MAX_RELATIVE_PATH_BYTES;
    if (longest >= PATH_MAX) {
      throw new VaultError(
        "bad_request",
        `root_path is too long: the longest key would need a ${longest}-byte path (PATH_MAX is ${PATH_MAX})`,
      );
    }
    const warn = options.onWarning ?? ((message: string) => process.emitWarning(message, "StorageWarning"));
    try {
      const dirMode = directoryMode(fileMode);
      const created = await mkdir(objectsDir, { recursive: true, mode: dirMode });
      // `mode` went through the umask: set it exactly on every directory made here (and only those).
      for (let dir = objectsDir; created !== undefined && (dir === created || dir.startsWith(created + path.sep)); dir = path.dirname(dir)) {
        setDirectoryMode(dir, dirMode);
      }
      const unsafe = findUnsafeDirectory(storeDirs);
      if (unsafe !== undefined) throw refusal(`cannot open the store at ${root}`, unsafe);
      // The key index is built in the background: a store of 100,000+ objects opens at once.
      return new FilesystemDriver(root, storeDirs, options, warn);
    } catch (error) {
      throw toStorageError(error, `cannot open the store at ${root}`);
    }
  }

  async stat(key: string): Promise<ObjectInfo | undefined> {
    this.#checkUsable(key);
    if (!this.#mayExist(key)) return undefined;
    try {
      return await this.#statFile(key, this.#locate(key));
    } catch (error) {
      throw toStorageError(error, `cannot stat "${key}"`);
    }
  }

  async read(key: string, options: ReadOptions = {}): Promise<ReadResult | undefined> {
    const opened = await this.open(key);
    if (opened === undefined) return undefined;
    let range;
    try {
      range = resolveRange(options, opened.info.size);
    } catch (error) {
      await opened.close();
      throw error;
    }
    const body = opened.body(range.end < range.start ? undefined : range);
    if (options.signal !== undefined) addAbortSignal(options.signal, body);
    return { info: opened.info, body };
  }

  /**
   * Small objects (the common case for metadata and API objects) are read whole with one read
   * from offset 0: a short read means end of file, so there is no fstat, no second read and no
   * stream to set up. That probe uses blocking calls on purpose, as nginx does for its file
   * reads: on the page cache open + read + close take microseconds, far less than three trips
   * through libuv's thread pool and the promise machinery around them (measured: ~3× the
   * throughput for 4 KiB GETs). Larger objects are streamed asynchronously from the same fd.
   */
  readHeld(key: string): HeldObject | undefined {
    return this.#closed ? undefined : this.#small.get(key);
  }

  async open(key: string): Promise<OpenedObject | undefined> {
    this.#checkUsable(key);
    if (!this.#mayExist(key)) return undefined;
    const held = this.#small.get(key);
    if (held !== undefined) return bufferedObject(held.info, held.contents);
    const location = this.#locate(key);
    const { file } = location;
    let fd: number | undefined;
    try {
      fd = this.#openForReadSync(key, location);
      if (fd === undefined) return undefined;
      const head = Buffer.allocUnsafe(SMALL_OBJECT_BYTES);
      const bytesRead = readSync(fd, head, 0, SMALL_OBJECT_BYTES, 0);
      if (bytesRead < SMALL_OBJECT_BYTES) {
        const whole = this.#parseWhole(key, head.subarray(0, bytesRead));
        if (whole !== undefined) {
          closeSync(fd);
          fd = undefined;
          this.#small.set(key, { info: whole.info, contents: whole.body });
          return bufferedObject(whole.info, whole.body);
        }
      }
      const info = this.#describeSync(key, file, fd);
      if (info === undefined) return undefined;
      const opened = streamingObject(info, fd);
      fd = undefined; // owned by `opened` now
      return opened;
    } catch (error) {
      throw toStorageError(error, `cannot read "${key}"`);
    } finally {
      if (fd !== undefined) closeSync(fd);
    }
  }

  #parseWhole(key: string, bytes: Buffer): { info: ObjectInfo; body: Buffer } | undefined {
    let parsed: { info: ObjectInfo; body: Buffer };
    try {
      parsed = parseWholeObject(bytes);
    } catch (error) {
      if (error instanceof CorruptObjectError) return undefined; // let #describe report it
      throw error;
    }
    if (parsed.info.key !== key) return undefined;
    return parsed;
  }

  async write(key: string, body: AsyncIterable<Uint8Array>, options?: WriteOptions): Promise<ObjectInfo> {
    this.#checkUsable(key);
    const checked = checkWriteOptions(options);
    throwIfAborted(checked.signal);
    const location = this.#locate(key);
    const { dir } = location;
    let staging: Staging | undefined;
    let livePath: string | undefined;
    let handleOpen = false;
    try {
      if (checked.ifNoneMatch !== undefined || checked.ifMatch !== undefined) {
        // Fail fast, before reading a body that could not be stored anyway.
        const current = this.#mayExist(key) ? await this.#statFile(key, location) : undefined;
        checkPreconditions(key, current, checked);
      }
      staging = await this.#createStaging(key, location);
      livePath = staging.path;
      handleOpen = true;
      const writer = new StagingWriter(staging.handle);
      // The last bytes may stay in the writer's buffer: the commit flushes them with the trailer.
      const summary = await consumeBody(body, checked, (chunk) => writer.write(chunk));
      const committed = await this.#withKeyLock(key, () => this.#commit(key, location, staging!, writer, summary, checked));
      handleOpen = false;
      staging = undefined;
      if (this.#fsync) await this.#syncDirectories(dir, committed.createdDir);
      return committed.info;
    } catch (error) {
      throw toStorageError(error, `cannot write "${key}"`);
    } finally {
      if (staging !== undefined) {
        if (handleOpen) await staging.handle.close().catch(() => undefined);
        await unlink(staging.path).catch(() => undefined);
      }
      if (livePath !== undefined) liveStaging.delete(livePath);
    }
  }

  /** Runs under the key's lock. On success the staging file is gone (renamed or unlinked). */
  async #commit(
    key: string,
    location: Location,
    staging: Staging,
    writer: StagingWriter,
    summary: { size: number; sha256: string },
    checked: CheckedWriteOptions,
  ): Promise<{ info: ObjectInfo; createdDir: string | undefined }> {
    throwIfAborted(checked.signal);
    this.#checkOpen();
    const { file } = location;
    const current = this.#mayExist(key) ? await this.#statFile(key, location) : undefined;
    checkPreconditions(key, current, checked);
    const info = newVersionInfo(key, summary, checked, current, this.#clock());
    await writer.write(encodeObjectTail(info));
    await writer.flush();
    if (this.#fsync) await staging.handle.sync();
    await staging.handle.close();
    // The body may have streamed for minutes: look at the path again right before it is used.
    const unsafe = findUnsafeDirectory(location.dirs);
    if (unsafe !== undefined) throw refusal(`cannot write "${key}"`, unsafe); // the caller removes the staging file
    if (checked.ifNoneMatch === "*") {
      try {
        await link(staging.path, file);
      } catch (error) {
        await unlink(staging.path).catch(() => undefined);
        if (errorCode(error) === "EEXIST") throw new VaultError("precondition_failed", `"${key}" already exists`);
        throw error;
      }
      // Committed. A staging name left behind by a failed unlink is removed at the next open.
      await unlink(staging.path).catch(() => undefined);
    } else {
      try {
        await rename(staging.path, file);
      } catch (error) {
        await unlink(staging.path).catch(() => undefined);
        throw error;
      }
    }
    this.#stored(key);
    await this.#announce(key, false);
    return { info, createdDir: staging.createdDir };
  }

  get localStagingDirectory(): string {
    return path.join(this.root, "spool");
  }

  /**
   * Appends the trailer to the verified file and renames it into place (one copy of the bytes on
   * disk, never two). A file on another filesystem (EXDEV) is streamed through `write` instead.
   */
  async importFile(key: string, file: string, options: ImportOptions): Promise<ObjectInfo> {
    this.#checkUsable(key);
    const location = this.#locate(key);
    const { dir, file: target } = location;
    try {
      const committed = await this.#withKeyLock(key, async () => {
        this.#checkOpen();
        const current = this.#mayExist(key) ? await this.#statFile(key, location) : undefined;
        checkPreconditions(key, current, checkWriteOptions({ ifNoneMatch: options.ifNoneMatch, ifMatch: options.ifMatch }));
        const info = newVersionInfo(key, options, options, current, this.#clock());
        const handle = await open(file, constants.O_WRONLY | constants.O_APPEND | O_NOFOLLOW);
        try {
          const { size } = await handle.stat();
          if (size !== options.size) throw new VaultError("internal", `import of "${key}": file has ${size} bytes, not ${options.size}`);
          await handle.chmod(this.#fileMode);
          await handle.write(encodeObjectTail(info));
          if (this.#fsync) await handle.sync();
        } finally {
          await handle.close();
        }
        let createdDir: string | undefined;
        for (let attempt = 1; ; attempt++) {
          try {
            // Checked (and made) right before the rename, which resolves the path again.
            createdDir = higher(createdDir, await this.#prepareDirectories(key, location));
            await rename(file, target);
            break;
          } catch (error) {
            if (errorCode(error) === "EXDEV") return undefined;
            // ENOENT: a delete pruned a directory meanwhile.
            if (errorCode(error) !== "ENOENT" || attempt >= MKDIR_ATTEMPTS) throw error;
          }
        }
        this.#stored(key);
        await this.#announce(key, false);
        return { info, createdDir };
      });
      if (committed === undefined) return await this.#importByCopy(key, file, options);
      if (this.#fsync) await this.#syncDirectories(dir, committed.createdDir);
      return committed.info;
    } catch (error) {
      await unlink(file).catch(() => undefined);
      throw toStorageError(error, `cannot import "${key}"`);
    }
  }

  async #importByCopy(key: string, file: string, options: ImportOptions): Promise<ObjectInfo> {
    try {
      // The trailer appended above is past `size`: copy the body only.
      const body: AsyncIterable<Uint8Array> =
        options.size === 0
          ? (async function* () {})()
          : createReadStream("", { fd: openSync(file, constants.O_RDONLY), start: 0, end: options.size - 1, highWaterMark: READ_CHUNK });
      return await this.write(key, body, {
        expectedSize: options.size,
        expectedSha256: options.sha256,
        contentType: options.contentType,
        metadata: options.metadata,
      });
    } finally {
      await unlink(file).catch(() => undefined);
    }
  }

  async delete(key: string): Promise<boolean> {
    this.#checkUsable(key);
    if (!this.#mayExist(key)) return false;
    const location = this.#locate(key);
    const { dir, file } = location;
    try {
      const removed = await this.#withKeyLock(key, async () => {
        const unsafe = this.#checkPath(key, location);
        if (unsafe !== undefined) {
          // Behind a link (reported, never followed), or its directory is gone. (A link in place
          // of the FILE is removed below: unlink never follows it.)
          if (unsafe.problem === "missing") this.#removed(key);
          return false;
        }
        try {
          await unlink(file);
        } catch (error) {
          if (errorCode(error) !== "ENOENT") throw error;
          this.#removed(key);
          return false;
        }
        this.#removed(key);
        await this.#announce(key, true);
        return true;
      });
      if (removed) {
        const remaining = await this.#pruneEmptyDirectories(dir);
        if (this.#fsync) await syncDirectory(remaining).catch((error: unknown) => this.#warnSync(remaining, error));
      }
      return removed;
    } catch (error) {
      throw toStorageError(error, `cannot delete "${key}"`);
    }
  }

  async list(options: ListOptions): Promise<ListPage> {
    this.#checkOpen();
    if (!this.#indexReady) {
      try {
        await this.indexed;
      } catch (error) {
        throw toStorageError(error, "cannot list: indexing the store failed");
      }
    }
    return this.#index.page(options);
  }

  /** Later calls fail with `unavailable`; streams already handed out keep working. */
  async close(): Promise<void> {
    this.#closed = true;
  }

  #locate(key: string): Location {
    const names = keyToNames(key);
    const dirs = [...this.#storeDirs];
    let dir = this.objectsDir;
    for (const [i, name] of names.entries()) {
      // Defence in depth: the encoding never produces `.`, `..`, empty names or separators.
      if (name === "" || name === "." || name === ".." || name.includes("/") || name.includes(path.sep)) {
        throw new VaultError("internal", `key "${key}" maps outside the store`);
      }
      if (i === names.length - 1) return { dir, file: dir + path.sep + name, dirs };
      dir = dir + path.sep + name;
      dirs.push(dir);
    }
    throw new VaultError("internal", `key "${key}" maps to no file`);
  }

  /**
   * `undefined` when every directory on the key's path is a real directory; else the first that
   * is not. A missing one means "no such object"; a link or a foreign file is reported (the key
   * then reads as missing). Blocking lstat()s on purpose, like the read path's open: a few
   * microseconds each on cached directory entries, far less than as many thread-pool trips.
   */
  /**
   * Before a read: every directory on the key's path is one (no link, nothing missing). A
   * directory found so is not looked at again for `DIRECTORY_RECHECK_MS`: a read looked up five
   * or six of them, which was a tenth of a 256 KiB hit's time. The check is a guard against a
   * store someone else changed, not a lock (a link could appear just after it either way);
   * writes keep checking every time, right before they use the path.
   */
  #checkPath(key: string, location: Location): UnsafeDirectory | undefined {
    const now = this.#clock().getTime();
    const unchecked = location.dirs.filter((dir) => !((this.#safeDirectories.get(dir) ?? -Infinity) > now - DIRECTORY_RECHECK_MS));
    const unsafe = findUnsafeDirectory(unchecked);
    if (unsafe !== undefined && unsafe.problem !== "missing") {
      this.#warn(`ignoring "${key}": ${describeUnsafe(unsafe)}`);
    }
    if (unsafe === undefined && unchecked.length > 0) {
      if (this.#safeDirectories.size >= MAX_SAFE_DIRECTORIES) this.#safeDirectories.clear();
      for (const dir of unchecked) this.#safeDirectories.set(dir, now);
    }
    return unsafe;
  }

  /** The key's object file opened for reading (blocking), or `undefined` if missing or unsafe. */
  #openForReadSync(key: string, location: Location): number | undefined {
    if (this.#checkPath(key, location) !== undefined) return undefined;
    try {
      return openSync(location.file, constants.O_RDONLY | O_NOFOLLOW);
    } catch (error) {
      return this.#missingOnOpen(key, location.file, error);
    }
  }

  /** The key's object file opened for reading, or `undefined` if missing or unsafe. */
  async #openForRead(key: string, location: Location): Promise<FileHandle | undefined> {
    if (this.#checkPath(key, location) !== undefined) return undefined;
    try {
      return await open(location.file, constants.O_RDONLY | O_NOFOLLOW);
    } catch (error) {
      return this.#missingOnOpen(key, location.file, error);
    }
  }

  /** A failed open of an object file: gone (or a link there: reported) is `undefined`; else rethrown. */
  #missingOnOpen(key: string, file: string, error: unknown): undefined {
    const code = errorCode(error);
    if (code === "ENOENT" || code === "ENOTDIR") return undefined; // ENOTDIR: a directory swapped since the check
    if (code === "ELOOP") {
      this.#warn(`ignoring "${key}": ${file} is a symbolic link, and the store never follows links below its root`);
      return undefined;
    }
    throw error;
  }

  /**
   * Checks every directory on the key's path and makes the missing ones (with the store's mode),
   * refusing a link or a non-directory anywhere. Returns the first directory it created, if any.
   */
  async #prepareDirectories(key: string, location: Location): Promise<string | undefined> {
    const unsafe = findUnsafeDirectory(location.dirs);
    if (unsafe === undefined) return undefined;
    if (unsafe.problem !== "missing") throw refusal(`cannot write "${key}"`, unsafe);
    let created: string | undefined;
    for (const dir of location.dirs.slice(location.dirs.indexOf(unsafe.dir))) {
      try {
        await mkdir(dir, this.#dirMode);
        setDirectoryMode(dir, this.#dirMode);
        created ??= dir;
        continue;
      } catch (error) {
        // ENOENT (a delete pruned a parent meanwhile) goes to the caller, which starts again.
        if (errorCode(error) !== "EEXIST") throw error;
      }
      const stats = await lstat(dir); // made by a concurrent write, or planted
      if (!stats.isDirectory()) throw refusal(`cannot write "${key}"`, { dir, problem: stats.isSymbolicLink() ? "a symbolic link" : "not a directory" });
    }
    return created;
  }

  /** Creates a staging file in the key's directory (making it if needed), registered as live. */
  async #createStaging(key: string, location: Location): Promise<Staging> {
    let createdDir: string | undefined;
    const flags = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | O_NOFOLLOW;
    for (let attempt = 1; ; attempt++) {
      const stagingPath = path.join(location.dir, stagingName());
      liveStaging.add(stagingPath);
      let handle: FileHandle | undefined;
      try {
        createdDir = higher(createdDir, await this.#prepareDirectories(key, location));
        handle = await open(stagingPath, flags, this.#fileMode);
        // Exactly the mode, whatever the umask. A blocking fchmod: a metadata change of a file
        // just created, cheaper than one more trip through the thread pool on every write.
        fchmodSync(handle.fd, this.#fileMode);
        return { path: stagingPath, handle, createdDir };
      } catch (error) {
        liveStaging.delete(stagingPath);
        if (handle !== undefined) {
          await handle.close().catch(() => undefined);
          await unlink(stagingPath).catch(() => undefined);
        }
        // ENOENT: a delete's rmdir of the (then empty) directory raced us; make it again.
        if (errorCode(error) !== "ENOENT" || attempt >= MKDIR_ATTEMPTS) throw error;
      }
    }
  }

  async #statFile(key: string, location: Location): Promise<ObjectInfo | undefined> {
    const { file } = location;
    const handle = await this.#openForRead(key, location);
    if (handle === undefined) return undefined;
    try {
      return await this.#describe(key, file, handle);
    } finally {
      await handle.close();
    }
  }

  #describeSync(key: string, file: string, fd: number): ObjectInfo | undefined {
    return this.#vet(key, file, () => readObjectTailSync(fd));
  }

  async #describe(key: string, file: string, handle: FileHandle): Promise<ObjectInfo | undefined> {
    let info: ObjectInfo;
    try {
      info = await readObjectTail(handle);
    } catch (error) {
      return this.#vet(key, file, () => {
        throw error;
      });
    }
    return this.#vet(key, file, () => info);
  }

  /** The info `read` gives if the file is a sound object of `key`; else reported and treated as missing. */
  #vet(key: string, file: string, read: () => ObjectInfo): ObjectInfo | undefined {
    let info: ObjectInfo;
    try {
      info = read();
    } catch (error) {
      if (!(error instanceof CorruptObjectError)) throw error;
      this.#warn(`ignoring corrupt object file ${file}: ${error.message}`);
      return undefined;
    }
    if (info.key !== key) {
      this.#warn(`ignoring object file ${file}: it holds key ${JSON.stringify(info.key)}`);
      return undefined;
    }
    return info;
  }

  /** Removes `dir` and its parents while they are empty; returns the deepest one left. */
  async #pruneEmptyDirectories(dir: string): Promise<string> {
    let current = dir;
    while (current !== this.objectsDir && current.startsWith(this.objectsDir + path.sep)) {
      try {
        await rmdir(current);
      } catch {
        return current; // not empty (or already gone, or in use): stop here
      }
      current = path.dirname(current);
    }
    return current;
  }

  /** fsyncs the file's directory and every directory the write created (their parents' entries). */
  async #syncDirectories(dir: string, createdDir: string | undefined): Promise<void> {
    const dirs = [dir];
    if (createdDir !== undefined) {
      const stop = path.dirname(createdDir);
      for (let current = dir; current !== stop && current.length > this.root.length; ) {
        current = path.dirname(current);
        dirs.push(current);
      }
    }
    await Promise.all(
      dirs.map((directory) => syncDirectory(directory).catch((error: unknown) => this.#warnSync(directory, error))),
    );
  }

  /** The object is already visible; a failed directory fsync only weakens its durability. */
  #warnSync(directory: string, error: unknown): void {
    if (errorCode(error) === "ENOENT") return; // removed since: nothing left to make durable
    this.#warn(`fsync of directory ${directory} failed: ${error instanceof Error ? error.message : String(error)}`);
  }

  #checkOpen(): void {
    if (this.#closed) throw new VaultError("unavailable", "the filesystem store is closed");
  }

  #checkUsable(key: string): void {
    this.#checkOpen();
    validateKey(key);
  }
}

interface Staging {
  readonly path: string;
  readonly handle: FileHandle;
  /** The highest directory made for it, if any (its parents need an fsync too). */
  readonly createdDir: string | undefined;
}

/** Where a key lives on disk. */
interface Location {
  /** The directory of the object's file. */
  readonly dir: string;
  readonly file: string;
  /** Every directory from below the configured root down to `dir`, top-down: none may be a link. */
  readonly dirs: readonly string[];
}

interface UnsafeDirectory {
  readonly dir: string;
  readonly problem: "missing" | "a symbolic link" | "not a directory";
}

/** The first of `dirs` (top-down) that is not a real directory, or `undefined` if all are (lstat: links are not followed). */
function findUnsafeDirectory(dirs: readonly string[]): UnsafeDirectory | undefined {
  for (const dir of dirs) {
    const stats = lstatSync(dir, { throwIfNoEntry: false });
    if (stats === undefined) return { dir, problem: "missing" };
    if (!stats.isDirectory()) return { dir, problem: stats.isSymbolicLink() ? "a symbolic link" : "not a directory" };
  }
  return undefined;
}

function describeUnsafe({ dir, problem }: UnsafeDirectory): string {
  if (problem === "missing") return `${dir} disappeared`;
  return problem === "a symbolic link" ? `${dir} is a symbolic link, and the store never follows links below its root` : `${dir} is not a directory`;
}

/** A path the store will not write through: not the client's doing, so `internal`. */
function refusal(context: string, unsafe: UnsafeDirectory): VaultError {
  return new VaultError("internal", `${context}: ${describeUnsafe(unsafe)}`);
}

/** Of two directories on one key's path (either may be absent), the one nearer the root. */
function higher(a: string | undefined, b: string | undefined): string | undefined {
  if (a === undefined || b === undefined) return a ?? b;
  return a.length <= b.length ? a : b;
}

/** Directories get the execute (search) bit of each class that may read files: 0600 → 0700, 0640 → 0750. */
function directoryMode(fileMode: number): number {
  return fileMode | ((fileMode & 0o444) >> 2);
}

/**
 * Sets a directory's exact mode through a descriptor opened without following a link (chmod by
 * path would follow one). Blocking on purpose: three metadata calls on a directory just made,
 * cheaper than three thread-pool trips, and only when a write creates a directory.
 */
function setDirectoryMode(dir: string, mode: number): void {
  const fd = openSync(dir, constants.O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
  try {
    fchmodSync(fd, mode);
  } finally {
    closeSync(fd);
  }
}

/** Writes at increasing offsets, gathering small chunks into one buffer of `WRITE_BUFFER` bytes. */
class StagingWriter {
  readonly #handle: FileHandle;
  readonly #buffer = Buffer.allocUnsafe(WRITE_BUFFER);
  #used = 0;
  #position = 0;

  constructor(handle: FileHandle) {
    this.#handle = handle;
  }

  async write(chunk: Uint8Array): Promise<void> {
    if (this.#used + chunk.byteLength <= this.#buffer.length) {
      this.#buffer.set(chunk, this.#used);
      this.#used += chunk.byteLength;
      if (this.#used === this.#buffer.length) await this.flush();
      return;
    }
    await this.flush();
    if (chunk.byteLength >= this.#buffer.length) {
      await this.#writeAll(chunk);
    } else {
      this.#buffer.set(chunk, 0);
      this.#used = chunk.byteLength;
    }
  }

  async flush(): Promise<void> {
    if (this.#used === 0) return;
    await this.#writeAll(this.#buffer.subarray(0, this.#used));
    this.#used = 0;
  }

  async #writeAll(bytes: Uint8Array): Promise<void> {
    let offset = 0;
    while (offset < bytes.byteLength) {
      const { bytesWritten } = await this.#handle.write(bytes, offset, bytes.byteLength - offset, this.#position);
      offset += bytesWritten;
      this.#position += bytesWritten;
    }
  }
}

/** Opens an object file for reading, or `undefined` if it is gone. */
/** An object whose bytes are already in memory. */
function bufferedObject(info: ObjectInfo, contents: Buffer): OpenedObject {
  return {
    info,
    contents,
    body: (range) => Readable.from(range === undefined ? [contents] : [contents.subarray(range.start, range.end + 1)], { objectMode: false }),
    close: async () => undefined,
  };
}

/** An object read from an open fd, which the body stream closes when done. */
function streamingObject(info: ObjectInfo, fd: number): OpenedObject {
  let owned: number | undefined = fd;
  const take = (): number => {
    const taken = owned;
    owned = undefined;
    if (taken === undefined) throw new VaultError("internal", "an opened object's body can be read only once");
    return taken;
  };
  return {
    info,
    contents: undefined,
    body: (range) => {
      const taken = take();
      const { start, end } = range ?? { start: 0, end: info.size - 1 };
      if (end < start) {
        closeQuietly(taken);
        return Readable.from([], { objectMode: false });
      }
      return new FileBodyStream(taken, start, end, READ_CHUNK);
    },
    close: async () => {
      if (owned !== undefined) closeQuietly(take());
    },
  };
}

function closeQuietly(fd: number): void {
  close(fd, () => undefined);
}

async function syncDirectory(directory: string): Promise<void> {
  const handle = await open(directory, constants.O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** A fresh staging name: the prefix, this process's pid, 16 random hex digits (24 in all). */
function stagingName(): string {
  return STAGING_PREFIX + (process.pid >>> 0).toString(16).padStart(8, "0") + randomBytes(8).toString("hex");
}

/**
 * Whether a staging file's name says another process that is still alive writes it (its write
 * in progress, in a store shared by several processes). A name whose pid does not parse, or this
 * process's own pid (a write of this process is in `liveStaging`), is a leftover.
 */
function writtenByOtherLiveProcess(name: string): boolean {
  const match = STAGING_NAME.exec(name);
  if (match === null) return false;
  const pid = Number.parseInt(match[1] ?? "", 16);
  if (!(pid > 0 && pid <= MAX_PID) || pid === process.pid) return false;
  try {
    process.kill(pid, 0); // signal 0: only checks that the process exists
    return true;
  } catch (error) {
    return errorCode(error) === "EPERM"; // exists, run by another user; ESRCH: gone
  }
}

interface ScanDirectory {
  readonly abs: string;
  /** Relative to the objects directory, `/`-separated. */
  readonly rel: string;
  readonly decoder: PathDecoder;
}

/**
 * Walks the objects directory with readdir only: reports every key whose file sits at its
 * canonical path, removes staging files, and reports (and skips) anything else.
 *
 * It uses readdirSync on purpose: for a tree of many small directories it measured 2-3 times faster
 * than `fs.promises.readdir` at any concurrency (100,000 directories: 1.7 s against 3.2 s), and
 * start-up time is what this walk is about. It yields to the event loop every few milliseconds so
 * the process stays responsive while a large store opens.
 */
/**
 * Walks `objects/` and reports every key. Each directory is read and its keys reported in one
 * synchronous step (no await in between), so a delete or write running meanwhile can never leave
 * a key indexed that is gone, or miss one; the walk yields between directories. Staging files are
 * crash leftovers unless `isLive` (given the path and the name) says a write in progress owns them.
 */
async function scanObjects(
  objectsDir: string,
  onKey: (key: string) => void,
  warn: (message: string) => void,
  isLive: (file: string, name: string) => boolean,
  sliceMs: number,
): Promise<FilesystemOpenReport> {
  let objects = 0;
  let removedStagingFiles = 0;
  let ignoredEntries = 0;
  const ignore = (rel: string, why: string): void => {
    ignoredEntries++;
    warn(`ignoring ${path.join(objectsDir, rel)} in the store: ${why}`);
  };
  const stack: ScanDirectory[] = [{ abs: objectsDir, rel: "", decoder: new PathDecoder() }];
  let sliceStart = performance.now();
  for (let directory = stack.pop(); directory !== undefined; directory = stack.pop()) {
    if (performance.now() - sliceStart >= sliceMs) {
      await new Promise((resolve) => setImmediate(resolve));
      sliceStart = performance.now();
    }
    let entries: Dirent[];
    try {
      entries = readdirSync(directory.abs, { withFileTypes: true });
    } catch (error) {
      if (errorCode(error) === "ENOENT") continue;
      throw error;
    }
    for (const entry of entries) {
      const name = entry.name;
      const abs = `${directory.abs}${path.sep}${name}`;
      const rel = directory.rel === "" ? name : `${directory.rel}/${name}`;
      if (name.startsWith(STAGING_PREFIX) && entry.isFile()) {
        if (isLive(abs, name)) continue;
        try {
          unlinkSync(abs);
          removedStagingFiles++;
        } catch (error) {
          if (errorCode(error) !== "ENOENT") ignore(rel, `cannot remove this staging file: ${String(error)}`);
        }
      } else if (entry.isDirectory()) {
        const decoder = directory.decoder.child(name);
        if (decoder === undefined) ignore(rel, "not a directory this store makes");
        else stack.push({ abs, rel, decoder });
      } else if (entry.isFile()) {
        const key = directory.decoder.keyOfFile(name);
        if (key === undefined || keyToRelativePath(key) !== rel) {
          ignore(rel, "not the file of a key");
        } else {
          onKey(key);
          objects++;
        }
      } else if (entry.isSymbolicLink()) {
        ignore(rel, "a symbolic link (never followed)");
      } else {
        ignore(rel, "neither a regular file nor a directory");
      }
    }
  }
  return { objects, removedStagingFiles, ignoredEntries };
}

/**
 * VaultErrors pass; a full disk or quota is `insufficient_storage` (507: a retry soon would fail
 * the same way, so clients must not retry it as they do `unavailable`); any other I/O failure is
 * `internal`.
 */
function toStorageError(error: unknown, context: string): VaultError {
  if (isVaultError(error)) return error;
  const code = errorCode(error);
  const detail = error instanceof Error ? error.message : String(error);
  if (code === "ENOSPC" || code === "EDQUOT") {
    return new VaultError("insufficient_storage", `${context}: the store is out of space`, { cause: error });
  }
  return new VaultError("internal", `${context}: ${detail}`, { cause: error });
}

