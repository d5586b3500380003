import { createHash, randomBytes } from "node:crypto";
import { createReadStream } from "node:fs";
import { readFile, unlink } from "node:fs/promises";
import { Readable, Transform, addAbortSignal, pipeline } from "node:stream";
import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  type GetObjectCommandOutput,
  type S3Client,
} from "@aws-sdk/client-s3";
import { getSignedUrl } from "@aws-sdk/s3-request-presigner";
import { VaultError, isVaultError } from "../core/errors.js";
import { validateKey } from "../core/storage-key.js";
import { compareUtf8 } from "../core/utf8-order.js";
import type { ByteRange } from "../core/byte-range.js";
import { importByWrite } from "./import-file.js";
import { KeyLock } from "./key-lock.js";
import type { StoreSharing } from "./store-sharing.js";
import { createS3Client, detectConditionalWrites, type ConditionalWrites } from "./s3-client.js";
import { decodeDescription, encodeDescription } from "./s3-description.js";
import { isConditionalConflict, isMissingObject, isNotImplemented, isPreconditionFailed, s3Error, s3Status } from "./s3-errors.js";
import { ObjectNames } from "./s3-names.js";
import { StreamingUpload, abortUpload, copyObject, uploadStream } from "./s3-uploads.js";
import type {
  ImportOptions,
  ListEntry,
  ListEntryPage,
  ListOptions,
  ListPage,
  ObjectInfo,
  OpenedObject,
  ReadOptions,
  ReadResult,
  StorageDriver,
  WriteOptions,
} from "./storage-driver.js";
import type { S3StoreOptions } from "./store-config.js";
import { checkPreconditions, checkWriteOptions, consumeBody, newVersionInfo, throwIfAborted, type BodySummary, type CheckedWriteOptions } from "./write-checks.js";

/**
 * The `s3` driver: objects in one bucket (AWS S3 or any S3-compatible server), below an optional
 * key prefix. The rules it keeps, and how:
 *
 * - **Layout.** `<prefix>[<namespace>/]objects/<name>` holds the objects, `staging/` uploads in
 *   progress, `probe/` the start-up probe. Names encode keys so that S3's own listing order,
 *   `Prefix` and `StartAfter` are the object API's (UTF-8 byte order) — see `s3-names.ts`.
 * - **Description.** The SHA-256 (the ETag is `"<sha256>"`, not S3's MD5-based one), content
 *   type, creation and modification times and the metadata map live in the object's own user
 *   metadata (`s3-description.ts`), so one HEAD or the GET itself describes it; at most ~2 KB.
 * - **Atomic writes, and the SHA-256 known only at the end.** S3 fixes an object's metadata when
 *   the upload starts, and a body's digest is known when it ends. A body of up to `partSize`
 *   (8 MiB) is held in memory and written with one PutObject carrying its description. A larger
 *   one streams (multipart, lib-storage) to a staging key while it arrives, and is then copied
 *   server-side to its name with the final description (CopyObject; UploadPartCopy parts past
 *   5 GiB). The cost of the larger case is the copy (S3 copies at hundreds of MB/s inside the
 *   bucket; the staging object exists until the copy is done) — against the alternatives of
 *   spooling every large upload to local disk first (no streaming to S3, a disk as large as the
 *   largest object) or keeping the digest in a second object (two objects that can disagree).
 *   Files the cache has already verified (`importFile`) know their digest and go straight to
 *   their name, multipart when large: no staging, no copy. Either way the object appears whole
 *   or not at all, and no multipart upload outlives a failed write (`s3-uploads.ts`).
 * - **Conditions.** With `conditional_writes: native` (probed at start by `auto`), create-only
 *   and compare-and-swap ride on the final PutObject / CopyObject / CompleteMultipartUpload as
 *   `If-None-Match: *` / `If-Match: <the S3 ETag of the version checked>`: exact across every
 *   process and replica. With `emulated` (servers without conditional writes, e.g. s3rver), the
 *   current version is read with a HEAD and the write is unconditional, under a per-key lock
 *   that makes it exact within this process. What is lost: between processes, two create-only
 *   writes of one key can both succeed (the later replaces the earlier) and a compare-and-swap
 *   can overwrite a version another process wrote, when they race in the window between the
 *   HEAD and the PUT/copy (milliseconds; longer for a large copy).
 * - **createdAt** of an overwrite comes from the HEAD before it: exact for conditional writes,
 *   best effort for unconditional ones racing another writer of the same key.
 * - **Reads.** `read` is one GET (with `Range`); `open` starts the GET at once so `info` and the
 *   bytes are one version even if the key is overwritten meanwhile (S3 keeps serving a started
 *   GET); a range asked of an open object is a second GET pinned with `If-Match` to that
 *   version, else read from the first. Objects of up to 64 KiB are read whole at `open`.
 * - **Presigned URLs** (`presign`, for the cache's `redirect_hits`): a GetObject of the key's
 *   object name, signed locally (no request to S3) with the client's credentials, at the
 *   configured endpoint: whoever holds the URL fetches the bytes from S3 until it expires.
 * - **Missing** keys are `undefined` / `false` on every route (a 404 from S3), never an error.
 * - **Errors** become VaultErrors (`s3-errors.ts`): a missing bucket, refused credentials or an
 *   unreachable endpoint are `unavailable` with a message saying so; never a raw SDK error.
 */

const DEFAULT_PART_SIZE = 8 * 1024 * 1024;
const MIN_PART_SIZE = 5 * 1024 * 1024;
const MAX_COPY_OBJECT_SIZE = 5 * 1024 * 1024 * 1024;
const COPY_PART_SIZE = 512 * 1024 * 1024;
/** Objects up to this size are read whole by `open` (no stream kept open). */
const INLINE_BYTES = 64 * 1024;
/** Staging objects and multipart uploads older than this are a crashed process's, removed at start. */
const STALE_UPLOAD_MS = 24 * 60 * 60 * 1000;
/** HEADs in flight while a listing reads a group of long keys. */
const GROUP_CONCURRENCY = 8;
/** Conditional writes retried on S3's 409 (two conditional writes of a key at once). */
const CONFLICT_RETRIES = 3;
/** SigV4 presigned URLs last at most 7 days. */
const MAX_PRESIGN_SECONDS = 7 * 24 * 60 * 60;
const NAMESPACE = /^[a-z0-9][a-z0-9-]*$/;
const RESERVED_NAMESPACES = new Set(["objects", "staging", "probe"]);

export interface S3DriverOptions extends S3StoreOptions {
  /** Keeps one face's keys apart from another's in the same bucket and prefix (`cache`). */
  readonly namespace?: string;
  readonly onWarning?: (message: string) => void;
  /** The time stamps objects get (tests inject one). */
  readonly clock?: () => Date;
  /** Bodies larger than this stream multipart (≥ 5 MiB, S3's minimum part). */
  readonly partSize?: number;
  /** Larger objects are copied part by part (UploadPartCopy); S3's CopyObject limit is 5 GiB. */
  readonly maxCopyObjectSize?: number;
  readonly copyPartSize?: number;
  /** S3's limit on names (tests shrink it to exercise long keys). */
  readonly maxNameBytes?: number;
  /** Staging objects and multipart uploads older than this are swept at open (default 24 h). */
  readonly staleUploadMs?: number;
  /** The workers of one vault: the emulated conditional writes' per-key lock is then theirs in common. */
  readonly sharing?: StoreSharing;
}

interface Current {
  readonly info: ObjectInfo;
  readonly s3Etag: string | undefined;
}

/** The received body: in memory, or uploaded to a staging object. */
type Received = { readonly summary: BodySummary } & ({ readonly bytes: Buffer } | { readonly staged: string });

type Conditions = { readonly IfNoneMatch?: string; readonly IfMatch?: string };

export class S3Driver implements StorageDriver {
  readonly kind = "s3";
  readonly localStagingDirectory = undefined;
  /** How create-only and compare-and-swap are done (see the file's comment). */
  readonly conditionalWrites: ConditionalWrites;

  readonly #client: S3Client;
  readonly #bucket: string;
  readonly #where: string;
  readonly #names: ObjectNames;
  readonly #stagingRoot: string;
  readonly #probeRoot: string;
  readonly #clock: () => Date;
  readonly #onWarning: (message: string) => void;
  readonly #partSize: number;
  readonly #maxCopyObjectSize: number;
  readonly #copyPartSize: number;
  readonly #lock = new KeyLock();
  readonly #sharing: StoreSharing | undefined;
  #closed = false;
  #warnedForeign = false;
  /** The start-up sweep (tests wait for it). */
  readonly swept: Promise<number>;

  private constructor(options: S3DriverOptions, client: S3Client, root: string, conditionalWrites: ConditionalWrites) {
    this.#client = client;
    this.#sharing = options.sharing;
    this.#bucket = options.bucket_name;
    this.#where = `"${options.bucket_name}"${options.endpoint_url === undefined ? "" : ` at ${options.endpoint_url}`}`;
    this.#names = new ObjectNames(`${root}objects/`, options.maxNameBytes);
    this.#stagingRoot = `${root}staging/`;
    this.#probeRoot = `${root}probe/`;
    this.#clock = options.clock ?? (() => new Date());
    this.#onWarning = options.onWarning ?? (() => undefined);
    this.#partSize = Math.max(options.partSize ?? DEFAULT_PART_SIZE, MIN_PART_SIZE);
    this.#maxCopyObjectSize = options.maxCopyObjectSize ?? MAX_COPY_OBJECT_SIZE;
    this.#copyPartSize = Math.max(options.copyPartSize ?? COPY_PART_SIZE, MIN_PART_SIZE);
    this.conditionalWrites = conditionalWrites;
    this.swept = this.#sweep(options.staleUploadMs ?? STALE_UPLOAD_MS).catch((error: unknown) => {
      this.#onWarning(`sweeping stale uploads in the s3 store ${this.#where} failed: ${(error as Error).message}`);
      return 0;
    });
  }

  /**
   * Opens the store: checks that the bucket answers (a missing bucket or refused credentials
   * fail here, with a message saying which), decides how conditional writes are done, and
   * sweeps, in the background, what crashed writes left behind.
   */
  static async open(options: S3DriverOptions): Promise<S3Driver> {
    const { namespace } = options;
    if (namespace !== undefined && (!NAMESPACE.test(namespace) || RESERVED_NAMESPACES.has(namespace))) {
      throw new VaultError("bad_request", `the s3 store namespace must be a plain lowercase name, got ${JSON.stringify(namespace)}`);
    }
    if (typeof options.bucket_name !== "string" || options.bucket_name === "") throw new VaultError("bad_request", "the s3 store needs a bucket_name");
    const prefix = options.prefix ?? "";
    const root = `${prefix === "" || prefix.endsWith("/") ? prefix : `${prefix}/`}${namespace === undefined ? "" : `${namespace}/`}`;
    new ObjectNames(`${root}objects/`, options.maxNameBytes); // refuses a prefix that leaves keys no room
    const client = await createS3Client(options);
    const where = `"${options.bucket_name}"${options.endpoint_url === undefined ? "" : ` at ${options.endpoint_url}`}`;
    try {
      try {
        await client.send(new HeadBucketCommand({ Bucket: options.bucket_name }));
      } catch (error) {
        // HEAD has no body: a 404 is the bucket's.
        if (s3Status(error) === 404) throw new VaultError("unavailable", `the s3 bucket ${where} does not exist`, { cause: error });
        throw s3Error(error, "checking the bucket", where);
      }
      let mode: ConditionalWrites;
      const configured = options.conditional_writes ?? "auto";
      if (configured === "auto") {
        try {
          mode = await detectConditionalWrites(client, options.bucket_name, `${root}probe/`);
        } catch (error) {
          throw s3Error(error, "probing for conditional writes", where);
        }
      } else {
        mode = configured;
      }
      return new S3Driver(options, client, root, mode);
    } catch (error) {
      client.destroy();
      throw error;
    }
  }

  async stat(key: string): Promise<ObjectInfo | undefined> {
    this.#checkUsable(key);
    return (await this.#head(key))?.info;
  }

  async read(key: string, options: ReadOptions = {}): Promise<ReadResult | undefined> {
    this.#checkUsable(key);
    const { range } = options;
    if (range !== undefined) checkRangeShape(range);
    const got = await this.#get(key, range, options.signal);
    if (got === undefined) return undefined;
    if (options.signal !== undefined) addAbortSignal(options.signal, got.body);
    return { info: got.info, body: got.body };
  }

  async open(key: string): Promise<OpenedObject | undefined> {
    this.#checkUsable(key);
    const got = await this.#get(key, undefined, undefined);
    if (got === undefined) return undefined;
    const { info, s3Etag } = got;
    if (info.size <= INLINE_BYTES) {
      const contents = await readWhole(got.body, info.size).catch((error: unknown) => {
        throw s3Error(error, `reading "${key}"`, this.#where);
      });
      return {
        info,
        contents,
        body: (range) => Readable.from(range === undefined ? [contents] : [contents.subarray(range.start, range.end + 1)], { objectMode: false }),
        close: async () => undefined,
      };
    }
    const held = got.body;
    let taken = false;
    return {
      info,
      contents: undefined,
      body: (range) => {
        if (taken) throw new VaultError("internal", "an opened object's body was asked for twice");
        taken = true;
        if (range === undefined || (range.start === 0 && range.end === info.size - 1)) return held;
        return Readable.from(this.#rangeOfOpened(key, s3Etag, held, range), { objectMode: false });
      },
      close: async () => {
        if (!taken) held.destroy(); // once the body is taken, it is its reader's
      },
    };
  }

  async write(key: string, body: AsyncIterable<Uint8Array>, options?: WriteOptions): Promise<ObjectInfo> {
    this.#checkUsable(key);
    const checked = checkWriteOptions(options);
    throwIfAborted(checked.signal);
    // Fail fast, before reading a body that could not be stored anyway; the commit checks again.
    const current = await this.#head(key);
    checkPreconditions(key, current?.info, checked);
    // The description must fit S3's user metadata: refused before the body is read, not after.
    this.#describe(key, newVersionInfo(key, { size: 0, sha256: "0".repeat(64) }, checked, current?.info, this.#clock()));
    const received = await this.#receive(key, body, checked);
    try {
      throwIfAborted(checked.signal);
      this.#checkUsable(key);
      const name = this.#names.nameOf(key);
      return await this.#commit(key, checked, received.summary, current, async (conditions, info) => {
        const { ContentType, Metadata } = this.#describe(key, info);
        if ("bytes" in received) {
          await this.#client.send(
            new PutObjectCommand({ Bucket: this.#bucket, Key: name, Body: received.bytes, ContentLength: received.bytes.length, ContentType, Metadata, ...conditions }),
          );
          return;
        }
        await copyObject({
          client: this.#client,
          bucket: this.#bucket,
          source: received.staged,
          target: name,
          size: received.summary.size,
          contentType: ContentType,
          metadata: Metadata,
          conditions,
          maxCopyObjectSize: this.#maxCopyObjectSize,
          copyPartSize: this.#copyPartSize,
          onWarning: this.#onWarning,
        });
      });
    } finally {
      if ("staged" in received) await this.#deleteQuietly(received.staged);
    }
  }

  async importFile(key: string, file: string, options: ImportOptions): Promise<ObjectInfo> {
    // Conditions ride on `write`'s commit (native or emulated, as configured).
    if (options.ifNoneMatch !== undefined || options.ifMatch !== undefined) return importByWrite(this, key, file, options);
    try {
      this.#checkUsable(key);
      const checked = checkWriteOptions({ contentType: options.contentType, metadata: options.metadata });
      const current = await this.#head(key);
      const info = newVersionInfo(key, options, checked, current?.info, this.#clock());
      const { ContentType, Metadata } = this.#describe(key, info);
      const name = this.#names.nameOf(key);
      try {
        // Checked on the way (cheap next to the upload): a file that is not what the caller
        // verified fails the upload instead of being stored under a wrong description.
        if (options.size <= this.#partSize) {
          const bytes = await readFile(file);
          checkImported(bytes.length, createHash("sha256").update(bytes).digest("hex"), options);
          await this.#client.send(new PutObjectCommand({ Bucket: this.#bucket, Key: name, Body: bytes, ContentLength: bytes.length, ContentType, Metadata }));
        } else {
          const body = pipeline(createReadStream(file, { highWaterMark: 1024 * 1024 }), verifying(options), () => undefined);
          await uploadStream(this.#uploadTarget(name), body, { ContentType, Metadata, ContentLength: options.size });
        }
      } catch (error) {
        throw s3Error(error, `storing "${key}"`, this.#where);
      }
      return info;
    } finally {
      await unlink(file).catch(() => undefined);
    }
  }

  /**
   * A URL that GETs the key's object straight from S3 for `expiresInSeconds` (1 s .. 7 days), to
   * anyone holding it (`Range` and conditional headers are S3's to answer). Signed locally: it
   * does not check that the key exists (a URL for a missing key answers S3's 404). With
   * temporary credentials (a role, SSO) it stops working when they expire, whichever is first.
   */
  async presign(key: string, expiresInSeconds: number): Promise<string> {
    this.#checkUsable(key);
    if (!Number.isSafeInteger(expiresInSeconds) || expiresInSeconds < 1 || expiresInSeconds > MAX_PRESIGN_SECONDS) {
      throw new VaultError("bad_request", `a presigned URL lasts 1 to ${MAX_PRESIGN_SECONDS} seconds, not ${expiresInSeconds}`);
    }
    // The object's S3 name, with the driver's namespace and prefix (long keys: the hashed name).
    const command = new GetObjectCommand({ Bucket: this.#bucket, Key: this.#names.nameOf(key) });
    try {
      return await getSignedUrl(this.#client, command, { expiresIn: expiresInSeconds });
    } catch (error) {
      throw s3Error(error, `signing a URL for "${key}"`, this.#where);
    }
  }

  async delete(key: string): Promise<boolean> {
    this.#checkUsable(key);
    if ((await this.#head(key)) === undefined) return false;
    await this.#call(`deleting "${key}"`, () => this.#client.send(new DeleteObjectCommand({ Bucket: this.#bucket, Key: this.#names.nameOf(key) })));
    return true;
  }

  async list(options: ListOptions): Promise<ListPage> {
    const page = await this.listEntries(options);
    return { keys: page.entries.map((entry) => entry.key), isTruncated: page.isTruncated };
  }

  /**
   * Keys with their sizes and S3's modification times, from ListObjectsV2 pages alone — except
   * long keys, which need a HEAD each (their names do not hold them whole).
   */
  async listEntries(options: ListOptions): Promise<ListEntryPage> {
    this.#checkOpen();
    const { limit } = options;
    if (!Number.isSafeInteger(limit) || limit < 1 || limit > 1000) throw new VaultError("bad_request", "limit must be an integer in 1..1000");
    const prefix = options.prefix ?? "";
    const after = options.startAfter;
    const accepts = (key: string): boolean => key.startsWith(prefix) && (after === undefined || compareUtf8(key, after) > 0);
    const plan = this.#names.planList(prefix, after);
    const found: ListEntry[] = [];
    let s3StartAfter = plan.s3StartAfter;
    for (;;) {
      const page = await this.#call("listing", () =>
        this.#client.send(
          new ListObjectsV2Command({
            Bucket: this.#bucket,
            Prefix: plan.s3Prefix,
            MaxKeys: Math.min(1000, limit + 1 - found.length),
            ...(s3StartAfter === undefined ? {} : { StartAfter: s3StartAfter }),
          }),
        ),
      );
      const objects = page.Contents ?? [];
      if (objects.length === 0) break;
      let relist = false;
      for (const object of objects) {
        const name = object.Key ?? "";
        s3StartAfter = name;
        const parsed = this.#names.parse(name);
        if (parsed === undefined) {
          this.#warnForeign(name);
        } else if (parsed.kind === "short") {
          if (accepts(parsed.key)) found.push({ key: parsed.key, size: object.Size ?? 0, modifiedAt: object.LastModified ?? new Date(0) });
        } else {
          // A group of long keys: read it whole, in key order, and go on after it.
          const group = await this.#readGroup(parsed.group);
          found.push(...group.entries.filter((entry) => accepts(entry.key)));
          s3StartAfter = group.lastName ?? name;
          relist = true;
        }
        if (found.length > limit || relist) break;
      }
      if (found.length > limit || (!relist && page.IsTruncated !== true)) break;
    }
    const entries = found.slice(0, limit);
    return { entries, isTruncated: found.length > limit, lastKey: entries.at(-1)?.key };
  }

  /** Releases the client's connections; later calls fail with `unavailable`. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.swept;
    this.#client.destroy();
  }

  // ---- reading ----

  /** The current version's info and S3 ETag (HEAD); undefined when missing. */
  async #head(key: string): Promise<Current | undefined> {
    const name = this.#names.nameOf(key);
    let response;
    try {
      response = await this.#client.send(new HeadObjectCommand({ Bucket: this.#bucket, Key: name }));
    } catch (error) {
      if (isMissingObject(error)) return undefined;
      throw s3Error(error, `reading "${key}"`, this.#where);
    }
    const info = this.#infoOf(key, response.Metadata, response.ContentLength ?? 0);
    return info === undefined ? undefined : { info, s3Etag: response.ETag };
  }

  /** A GET of the whole object or a range; undefined when missing. */
  async #get(key: string, range: ByteRange | undefined, signal: AbortSignal | undefined): Promise<(Current & { body: Readable }) | undefined> {
    let response: GetObjectCommandOutput;
    try {
      response = await this.#client.send(
        new GetObjectCommand({ Bucket: this.#bucket, Key: this.#names.nameOf(key), ...(range === undefined ? {} : { Range: `bytes=${range.start}-${range.end}` }) }),
        signal === undefined ? {} : { abortSignal: signal },
      );
    } catch (error) {
      if (isMissingObject(error)) return undefined;
      throw s3Error(error, `reading "${key}"`, this.#where);
    }
    const body = response.Body as Readable;
    const size = totalSize(response);
    const info = this.#infoOf(key, response.Metadata, size);
    if (info === undefined) {
      body.destroy();
      return undefined;
    }
    if (range !== undefined) {
      if (range.end >= size) {
        body.destroy();
        throw new VaultError("range_not_satisfiable", `bytes ${range.start}-${range.end} are not within the object's ${size} bytes`);
      }
      // A server that ignored the range sent the whole object: keep only the range.
      if (response.ContentRange === undefined && size > range.end - range.start + 1) {
        return { info, s3Etag: response.ETag, body: Readable.from(sliceOf(body, range), { objectMode: false }) };
      }
    }
    return { info, s3Etag: response.ETag, body };
  }

  /** A range of an opened object: a second GET pinned to its version, else read from the first. */
  async *#rangeOfOpened(key: string, s3Etag: string | undefined, held: Readable, range: ByteRange): AsyncGenerator<Buffer> {
    let ranged: Readable | undefined;
    try {
      if (s3Etag !== undefined) {
        try {
          const response = await this.#client.send(
            new GetObjectCommand({ Bucket: this.#bucket, Key: this.#names.nameOf(key), Range: `bytes=${range.start}-${range.end}`, IfMatch: s3Etag }),
          );
          ranged = response.Body as Readable;
          // Servers that ignore If-Match on GET: the ETag says whether it is the same version.
          if (response.ETag !== s3Etag || response.ContentRange === undefined) ranged.destroy();
          else held.destroy();
        } catch (error) {
          if (!isPreconditionFailed(error) && !isMissingObject(error)) throw s3Error(error, `reading "${key}"`, this.#where);
        }
      }
      if (ranged !== undefined && !ranged.destroyed) {
        for await (const chunk of ranged) yield chunk as Buffer;
        return;
      }
      // Overwritten or deleted since it was opened: the first GET still has this version.
      yield* sliceOf(held, range);
    } finally {
      ranged?.destroy();
      held.destroy();
    }
  }

  /** The ObjectInfo of `key` from an object's metadata; undefined for a foreign or mismatched object. */
  #infoOf(key: string, metadata: Record<string, string> | undefined, size: number): ObjectInfo | undefined {
    const description = decodeDescription(metadata);
    if (description === undefined) {
      this.#warnForeign(this.#names.nameOf(key));
      return undefined;
    }
    const tail = this.#names.tailOf(key);
    if (!(tail ?? Buffer.alloc(0)).equals(description.keyTail ?? Buffer.alloc(0))) return undefined;
    return Object.freeze({
      key,
      size,
      contentType: description.contentType,
      sha256: description.sha256,
      etag: `"${description.sha256}"`,
      createdAt: description.createdAt,
      modifiedAt: description.modifiedAt,
      metadata: description.metadata,
    });
  }

  /** The members of a group of long keys, in key order, and the group's last name. */
  async #readGroup(group: string): Promise<{ entries: ListEntry[]; lastName: string | undefined }> {
    const names: string[] = [];
    let startAfter: string | undefined;
    for (;;) {
      const page = await this.#call("listing", () =>
        this.#client.send(new ListObjectsV2Command({ Bucket: this.#bucket, Prefix: group, ...(startAfter === undefined ? {} : { StartAfter: startAfter }) })),
      );
      for (const object of page.Contents ?? []) names.push(object.Key ?? "");
      startAfter = names.at(-1);
      if (page.IsTruncated !== true || startAfter === undefined) break;
    }
    const entries: ListEntry[] = [];
    for (let i = 0; i < names.length; i += GROUP_CONCURRENCY) {
      const heads = await Promise.all(names.slice(i, i + GROUP_CONCURRENCY).map((name) => this.#longEntry(name)));
      for (const entry of heads) if (entry !== undefined) entries.push(entry);
    }
    entries.sort((a, b) => compareUtf8(a.key, b.key));
    return { entries, lastName: names.at(-1) };
  }

  async #longEntry(name: string): Promise<ListEntry | undefined> {
    const parsed = this.#names.parse(name);
    if (parsed?.kind !== "long") return undefined;
    let response;
    try {
      response = await this.#client.send(new HeadObjectCommand({ Bucket: this.#bucket, Key: name }));
    } catch (error) {
      if (isMissingObject(error)) return undefined; // deleted since it was listed
      throw s3Error(error, "listing", this.#where);
    }
    const description = decodeDescription(response.Metadata);
    const key = description === undefined ? undefined : this.#names.longKey(parsed, description.keyTail ?? Buffer.alloc(0));
    if (key === undefined || description === undefined) {
      this.#warnForeign(name);
      return undefined;
    }
    return { key, size: response.ContentLength ?? 0, modifiedAt: description.modifiedAt };
  }

  // ---- writing ----

  /** Reads the body once, checking it, into memory or (past `partSize`) a staging object. */
  async #receive(key: string, body: AsyncIterable<Uint8Array>, checked: CheckedWriteOptions): Promise<Received> {
    const chunks: Buffer[] = [];
    let buffered = 0;
    let staging: StreamingUpload | undefined;
    let stagingName: string | undefined;
    try {
      const summary = await consumeBody(body, checked, async (chunk) => {
        const copy = Buffer.from(chunk); // the source may reuse its buffer
        if (staging !== undefined) return staging.write(copy);
        chunks.push(copy);
        buffered += copy.length;
        if (buffered <= this.#partSize) return;
        stagingName = `${this.#stagingRoot}${randomBytes(16).toString("hex")}`;
        staging = new StreamingUpload(this.#uploadTarget(stagingName));
        for (const piece of chunks.splice(0)) await staging.write(piece);
      });
      if (staging === undefined || stagingName === undefined) return { summary, bytes: Buffer.concat(chunks, buffered) };
      await staging.finish();
      return { summary, staged: stagingName };
    } catch (error) {
      await staging?.fail(error);
      if (isVaultError(error)) throw error;
      throw s3Error(error, `storing "${key}"`, this.#where);
    }
  }

  /**
   * Makes the received body the current version of `key`, under the write's conditions (see the
   * file's comment). `store` writes it with the given S3 conditions and description.
   */
  async #commit(
    key: string,
    checked: CheckedWriteOptions,
    summary: BodySummary,
    current: Current | undefined,
    store: (conditions: Conditions, info: ObjectInfo) => Promise<void>,
  ): Promise<ObjectInfo> {
    const conditional = checked.ifNoneMatch !== undefined || checked.ifMatch !== undefined;
    const version = (previous: Current | undefined): ObjectInfo => newVersionInfo(key, summary, checked, previous?.info, this.#clock());
    const run = async (conditions: Conditions, info: ObjectInfo): Promise<ObjectInfo> => {
      await store(conditions, info);
      return info;
    };
    if (this.conditionalWrites === "emulated") {
      // Every commit of the key in this process (in this vault's workers, when shared) takes its
      // turn, so a check and its write are one step here.
      const locked = <T>(fn: () => Promise<T>): Promise<T> => (this.#sharing === undefined ? this.#lock.run(key, fn) : this.#sharing.withKeyLock(key, fn));
      return locked(async () => {
        if (!conditional) return this.#storing(key, () => run({}, version(current)));
        const now = await this.#head(key);
        checkPreconditions(key, now?.info, checked);
        return this.#storing(key, () => run({}, version(now)));
      });
    }
    if (!conditional) return this.#storing(key, () => run({}, version(current)));
    let pinned = current;
    for (let attempt = 0; ; attempt++) {
      const conditions: Conditions = checked.ifNoneMatch === "*" ? { IfNoneMatch: "*" } : { IfMatch: pinned?.s3Etag ?? "*" };
      try {
        return await run(conditions, version(pinned));
      } catch (error) {
        if (isConditionalConflict(error) && attempt < CONFLICT_RETRIES) continue;
        const refused = isPreconditionFailed(error) || (checked.ifMatch !== undefined && isMissingObject(error));
        if (!refused) throw s3Error(error, `storing "${key}"`, this.#where);
        if (checked.ifMatch === "*" && attempt < CONFLICT_RETRIES) {
          // Any version will do: pin the one there now, if any.
          pinned = await this.#head(key);
          if (pinned !== undefined) continue;
        }
        throw new VaultError("precondition_failed", checked.ifNoneMatch === "*" ? `"${key}" already exists` : `"${key}" changed or is gone`, { cause: error });
      }
    }
  }

  async #storing(key: string, fn: () => Promise<ObjectInfo>): Promise<ObjectInfo> {
    try {
      return await fn();
    } catch (error) {
      throw s3Error(error, `storing "${key}"`, this.#where);
    }
  }

  #describe(key: string, info: ObjectInfo): { ContentType: string; Metadata: Record<string, string> } {
    // The description has the exact content type; the header is for S3's own answers (presigned
    // URLs, other tools), and only printable ASCII survives every hop as a header.
    const printable = info.contentType !== undefined && /^[\x20-\x7e]+$/.test(info.contentType);
    return {
      ContentType: printable ? info.contentType : "application/octet-stream",
      Metadata: encodeDescription({ ...info, keyTail: this.#names.tailOf(key) }),
    };
  }

  #uploadTarget(key: string): { client: S3Client; bucket: string; key: string; partSize: number; onWarning: (message: string) => void } {
    return { client: this.#client, bucket: this.#bucket, key, partSize: this.#partSize, onWarning: this.#onWarning };
  }

  async #deleteQuietly(name: string): Promise<void> {
    try {
      await this.#client.send(new DeleteObjectCommand({ Bucket: this.#bucket, Key: name }));
    } catch (error) {
      this.#onWarning(`could not remove the staging object ${name} from ${this.#where}: ${(error as Error).message}; the next start's sweep removes it`);
    }
  }

  /** Removes staging (and probe) objects and multipart uploads that crashed writes left behind. */
  async #sweep(staleMs: number): Promise<number> {
    const cutoff = Date.now() - staleMs;
    let removed = 0;
    for (const prefix of [this.#stagingRoot, this.#probeRoot]) {
      let startAfter: string | undefined;
      for (;;) {
        const page = await this.#client.send(
          new ListObjectsV2Command({ Bucket: this.#bucket, Prefix: prefix, ...(startAfter === undefined ? {} : { StartAfter: startAfter }) }),
        );
        for (const object of page.Contents ?? []) {
          if (this.#closed) return removed;
          if (object.Key !== undefined && (object.LastModified?.getTime() ?? 0) <= cutoff) {
            await this.#deleteQuietly(object.Key);
            removed++;
          }
        }
        startAfter = page.Contents?.at(-1)?.Key;
        if (page.IsTruncated !== true || startAfter === undefined) break;
      }
    }
    for (const prefix of [this.#stagingRoot, this.#names.root]) {
      let uploads;
      try {
        uploads = await this.#client.send(new ListMultipartUploadsCommand({ Bucket: this.#bucket, Prefix: prefix }));
      } catch (error) {
        if (isNotImplemented(error)) return removed; // the server keeps no uploads to list
        throw error;
      }
      for (const upload of uploads.Uploads ?? []) {
        if (this.#closed) return removed;
        if (upload.Key === undefined || upload.UploadId === undefined || (upload.Initiated?.getTime() ?? 0) > cutoff) continue;
        await abortUpload({ client: this.#client, bucket: this.#bucket, key: upload.Key, onWarning: this.#onWarning }, upload.UploadId);
        removed++;
      }
    }
    if (removed > 0) this.#onWarning(`removed ${removed} staging objects and multipart uploads that interrupted writes left in ${this.#where}`);
    return removed;
  }

  // ---- the rest ----

  async #call<T>(what: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (error) {
      throw s3Error(error, what, this.#where);
    }
  }

  #warnForeign(name: string): void {
    if (this.#warnedForeign) return;
    this.#warnedForeign = true;
    this.#onWarning(`the s3 store ${this.#where} holds objects the vault did not write (${JSON.stringify(name)}, maybe more); they are treated as missing`);
  }

  #checkOpen(): void {
    if (this.#closed) throw new VaultError("unavailable", `the s3 store ${this.#where} is closed`);
  }

  #checkUsable(key: string): void {
    this.#checkOpen();
    validateKey(key);
  }
}

function checkImported(size: number, sha256: string, expected: ImportOptions): void {
  if (size !== expected.size || sha256 !== expected.sha256) {
    throw new VaultError("internal", `the file to import is not the one verified: ${size} bytes with SHA-256 ${sha256}, not ${expected.size} bytes with ${expected.sha256}`);
  }
}

/** Passes a file's bytes through, failing at the end unless they are `expected`'s. */
function verifying(expected: ImportOptions): Transform {
  const hash = createHash("sha256");
  let size = 0;
  return new Transform({
    transform(chunk: Buffer, _encoding, done) {
      hash.update(chunk);
      size += chunk.length;
      done(null, chunk);
    },
    flush(done) {
      try {
        checkImported(size, hash.digest("hex"), expected);
        done();
      } catch (error) {
        done(error as Error);
      }
    },
  });
}

function checkRangeShape(range: ByteRange): void {
  const { start, end } = range;
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || start < 0 || end < start) {
    throw new VaultError("range_not_satisfiable", `bytes ${start}-${end} are not a range`);
  }
}

/** The whole object's size: from `Content-Range` for a ranged GET. */
function totalSize(response: GetObjectCommandOutput): number {
  const match = /\/(\d+)$/.exec(response.ContentRange ?? "");
  return match === null ? (response.ContentLength ?? 0) : Number(match[1]);
}

async function readWhole(body: Readable, size: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of body) chunks.push(chunk as Buffer);
  const whole = Buffer.concat(chunks);
  if (whole.length !== size) throw new VaultError("unavailable", `the s3 store sent ${whole.length} bytes of ${size}`);
  return whole;
}

/** The bytes `range.start..range.end` of a stream of the whole object; stops reading after them. */
async function* sliceOf(body: Readable, range: ByteRange): AsyncGenerator<Buffer> {
  let offset = 0;
  try {
    for await (const piece of body) {
      const chunk = piece as Buffer;
      const from = Math.max(range.start - offset, 0);
      const to = Math.min(range.end + 1 - offset, chunk.length);
      if (to > from) yield chunk.subarray(from, to);
      offset += chunk.length;
      if (offset > range.end) return;
    }
  } finally {
    body.destroy();
  }
}
