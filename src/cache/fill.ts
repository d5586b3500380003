import { createHash, type Hash } from "node:crypto";
import { EventEmitter } from "node:events";
import { close, createWriteStream, openSync, read } from "node:fs";
import { once } from "node:events";
import { finished } from "node:stream/promises";
import { unlink } from "node:fs/promises";
import { Readable } from "node:stream";
import { promisify } from "node:util";
import { errorCode } from "../core/error-code.js";
import { VaultError, isVaultError } from "../core/errors.js";
import type { ArtifactRef } from "../core/cache/artifact-ref.js";
import type { ByteRange, ObjectInfo } from "../storage/storage-driver.js";

const closeAsync = promisify(close);

/** How much a reader asks the spool for at once. */
const READ_CHUNK = 256 * 1024;
/** Bytes the spool's write stream queues before the download waits for the disk. */
const SPOOL_WRITE_BUFFER = 1024 * 1024;
/** Recent chunks kept in memory for readers that keep up (per download in progress). */
const RECENT_BYTES = 1024 * 1024;

/** What the upstream said about the artifact when its body started. */
export interface FillHeaders {
  readonly contentType: string | undefined;
  /** From Content-Length; undefined for a chunked response. */
  readonly contentLength: number | undefined;
  readonly upstreamEtag: string | undefined;
  readonly upstreamLastModified: string | undefined;
  /** The upstream headers the ref asked to keep (`ArtifactRef.keepHeaders`). */
  readonly kept: Readonly<Record<string, string>>;
}

export interface FillSummary {
  readonly size: number;
  readonly sha256: string;
}

/** Stores the verified spool file as the cache entry (moving it when it can). */
export type FillCommitter = (spoolPath: string, summary: FillSummary) => Promise<ObjectInfo>;

export type FillState = "running" | "committing" | "committed" | "failed";

/**
 * One upstream download, spooled to a local file while it arrives, and shared by every client
 * that asks for the artifact meanwhile. Each client tails the spool from its own position
 * (a slow client never slows the download or the others; memory stays flat). The artifact is
 * committed to the store only when complete with the announced length and the expected digest.
 *
 * Readers hold back the final byte until the fill is committed, so a download that turns out
 * short or corrupt reaches no client as a complete response: their streams are destroyed
 * instead. The spool is read through one fd opened at the start and shared by all readers with
 * positional reads, so renaming or unlinking the file (at commit or failure) never strands one.
 */
export class Fill {
  readonly startedAt = Date.now();
  state: FillState = "running";
  bytesWritten = 0;
  error: VaultError | undefined;
  info: ObjectInfo | undefined;
  /** Hex SHA-256 of the whole artifact, once downloaded and verified. */
  sha256: string | undefined;
  readonly settled: Promise<ObjectInfo>;

  readonly #events = new EventEmitter();
  /** The most recently written chunks, for readers that keep up with the download. */
  readonly #recent: Array<{ readonly offset: number; readonly bytes: Buffer }> = [];
  #recentBytes = 0;
  #readFd: number | undefined;
  #readers = 0;
  #settle!: { resolve: (info: ObjectInfo) => void; reject: (error: VaultError) => void };

  private constructor(
    readonly ref: ArtifactRef,
    readonly headers: FillHeaders,
    readonly spoolPath: string,
    private readonly writeFd: number,
    readFd: number,
  ) {
    this.#readFd = readFd;
    this.#events.setMaxListeners(0);
    this.settled = new Promise<ObjectInfo>((resolve, reject) => (this.#settle = { resolve, reject }));
    // Callers who only read through readers must not see an unhandled rejection.
    this.settled.catch(() => undefined);
  }

  /**
   * Creates the spool file. The caller then runs `consume` (without awaiting it, usually).
   * Opened with blocking calls on purpose: creating a file in a local directory takes
   * microseconds, while two trips through the libuv thread pool put about a millisecond (more
   * under load) between the upstream's answer and the client's first byte.
   */
  static async create(ref: ArtifactRef, headers: FillHeaders, spoolPath: string): Promise<Fill> {
    const writeFd = openSync(spoolPath, "wx", 0o600);
    let readFd: number;
    try {
      readFd = openSync(spoolPath, "r");
    } catch (error) {
      await closeAsync(writeFd);
      await unlink(spoolPath).catch(() => undefined);
      throw error;
    }
    return new Fill(ref, headers, spoolPath, writeFd, readFd);
  }

  /** Readers reserved and not yet done: the requests being answered from this download now. */
  get readers(): number {
    return this.#readers;
  }

  /** The length of the artifact if known: announced by upstream or the backend, or once done. */
  get totalSize(): number | undefined {
    return this.info?.size ?? this.headers.contentLength ?? this.ref.size;
  }

  /**
   * Downloads `body` into the spool, verifies it, and commits it. Never rejects: the outcome is
   * in `settled` and `state`, and readers see it.
   */
  async consume(body: AsyncIterable<Uint8Array>, commit: FillCommitter): Promise<void> {
    const sha256 = createHash("sha256");
    const expected = this.ref.digest;
    const extra: Hash | undefined = expected !== undefined && expected.algorithm !== "sha256" ? createHash(expected.algorithm) : undefined;
    const limit = this.ref.size ?? this.headers.contentLength;
    // Writes queue up in the stream (batched into writev calls) while the next chunks arrive and
    // are hashed; each chunk becomes readable when its write completes, in order.
    const spool = createWriteStream("", { fd: this.writeFd, start: 0, highWaterMark: SPOOL_WRITE_BUFFER, autoClose: true });
    const spoolFailed = new Promise<never>((_resolve, reject) => spool.once("error", reject));
    spoolFailed.catch(() => undefined);
    let received = 0;
    try {
      for await (const chunk of body) {
        const bytes = chunk as Buffer;
        if (limit !== undefined && received + bytes.length > limit) {
          throw new VaultError("upstream_failed", `upstream sent more than the ${limit} bytes announced`);
        }
        const offset = received;
        received += bytes.length;
        sha256.update(bytes);
        extra?.update(bytes);
        const accepted = spool.write(bytes, (error) => {
          if (error === null || error === undefined) this.#written(offset, bytes);
        });
        if (!accepted) await Promise.race([once(spool, "drain"), spoolFailed]);
      }
      spool.end();
      await Promise.race([finished(spool), spoolFailed]);
      if (limit !== undefined && this.bytesWritten !== limit) {
        throw new VaultError("upstream_failed", `upstream sent ${this.bytesWritten} of the ${limit} bytes announced`);
      }
      const sha256Hex = sha256.digest("hex");
      if (expected !== undefined) {
        const actual = extra === undefined ? sha256Hex : extra.digest("hex");
        if (actual !== expected.hex) {
          throw new VaultError("upstream_failed", `upstream content failed verification: ${expected.algorithm} is ${actual}, expected ${expected.hex}`);
        }
      }
      // Verified: readers may have the last byte now; making the entry durable can take a while.
      this.sha256 = sha256Hex;
      this.state = "committing";
      this.#events.emit("progress");
      this.#events.emit("verified");
      this.info = await commit(this.spoolPath, { size: this.bytesWritten, sha256: sha256Hex });
      this.state = "committed";
      this.#settle.resolve(this.info);
    } catch (error) {
      this.state = "failed";
      this.error = isVaultError(error) ? error : spoolOrUpstreamError(error);
      spool.destroy();
      await unlink(this.spoolPath).catch(() => undefined);
      this.#settle.reject(this.error);
    } finally {
      this.#recent.length = 0;
      this.#recentBytes = 0;
      this.#events.emit("progress");
      this.#releaseReadFdIfUnused();
    }
  }

  /** A chunk reached the spool: it becomes readable, and stays in memory while it is recent. */
  #written(offset: number, bytes: Buffer): void {
    this.bytesWritten = offset + bytes.length;
    this.#recent.push({ offset, bytes });
    this.#recentBytes += bytes.length;
    while (this.#recentBytes > RECENT_BYTES && this.#recent.length > 1) {
      this.#recentBytes -= this.#recent.shift()?.bytes.length ?? 0;
    }
    this.#events.emit("progress");
  }

  /**
   * @internal The bytes from `position` up to `until` if they are still in memory (the reader
   * is caught up with the download), so it need not read them back from the spool.
   */
  recentBytes(position: number, until: number): Buffer | undefined {
    for (let i = this.#recent.length - 1; i >= 0; i--) {
      const chunk = this.#recent[i];
      if (chunk === undefined || position < chunk.offset) continue;
      const start = position - chunk.offset;
      if (start >= chunk.bytes.length) return undefined;
      const end = Math.min(chunk.bytes.length, until - chunk.offset);
      return end > start ? chunk.bytes.subarray(start, end) : undefined;
    }
    return undefined;
  }

  /**
   * Reserves a reader synchronously (so the spool stays readable however long the caller takes
   * to start reading). `open` gives a stream of the artifact, or an inclusive range of it, that
   * follows the download as it arrives and errors if the fill fails, even after most bytes were
   * sent; `cancel` gives the reservation back unused.
   */
  reserveReader(): { open(range?: ByteRange): Readable; cancel(): void } {
    if (this.#readFd === undefined) throw new VaultError("internal", "the fill's spool is closed");
    this.#readers++;
    let used = false;
    return {
      open: (range) => {
        if (used) throw new VaultError("internal", "a fill reader reservation is used once");
        used = true;
        return new SpoolReader(this, range?.start ?? 0, range?.end);
      },
      cancel: () => {
        if (used) return;
        used = true;
        this.readerDone();
      },
    };
  }

  /** Calls `listener` once the whole artifact has arrived and passed verification (before it is committed). */
  onVerified(listener: () => void): void {
    this.#events.once("verified", listener);
  }

  /** @internal SpoolReader's view of the spool. */
  readableUpTo(): number {
    if (this.state === "committing" || this.state === "committed") return this.bytesWritten;
    // Hold back the last byte until the whole artifact is verified. While fewer bytes than the
    // known length have arrived, none of them is the last: all go out. (Holding back one byte
    // of each chunk instead split a caught-up reader's writes into 65,535 + 1 bytes.)
    const total = this.ref.size ?? this.headers.contentLength;
    if (total !== undefined && this.bytesWritten < total) return this.bytesWritten;
    return Math.max(0, this.bytesWritten - 1);
  }

  /** @internal */
  readFd(): number {
    if (this.#readFd === undefined) throw new VaultError("internal", "the fill's spool is closed");
    return this.#readFd;
  }

  /** @internal */
  waitForProgress(callback: () => void): void {
    this.#events.once("progress", callback);
  }

  /** @internal */
  readerDone(): void {
    this.#readers--;
    this.#releaseReadFdIfUnused();
  }

  #releaseReadFdIfUnused(): void {
    if (this.#readers > 0 || this.state === "running" || this.state === "committing") return;
    const fd = this.#readFd;
    this.#readFd = undefined;
    if (fd !== undefined) close(fd, () => undefined);
  }
}

class SpoolReader extends Readable {
  #position: number;
  #reading = false;
  #released = false;

  constructor(
    private readonly fill: Fill,
    start: number,
    private readonly end: number | undefined,
  ) {
    super({ highWaterMark: READ_CHUNK });
    this.#position = start;
  }

  override _read(): void {
    if (this.#reading || this.destroyed) return;
    const fill = this.fill;
    if (fill.state === "failed") {
      this.destroy(fill.error);
      return;
    }
    const stopAt = this.end === undefined ? fill.totalSize : this.end + 1;
    const verified = fill.state === "committing" || fill.state === "committed";
    if (verified && this.#position >= Math.min(stopAt ?? fill.bytesWritten, fill.bytesWritten)) {
      this.push(null);
      return;
    }
    const available = Math.min(fill.readableUpTo(), stopAt ?? Number.MAX_SAFE_INTEGER);
    if (this.#position >= available) {
      fill.waitForProgress(() => this._read());
      return;
    }
    const recent = fill.recentBytes(this.#position, available);
    if (recent !== undefined) {
      // Pushed synchronously: the stream machinery calls _read again while it wants more.
      this.#position += recent.length;
      this.push(recent);
      return;
    }
    const length = Math.min(READ_CHUNK, available - this.#position);
    const buffer = Buffer.allocUnsafe(length);
    this.#reading = true;
    read(fill.readFd(), buffer, 0, length, this.#position, (error, bytesRead) => {
      this.#reading = false;
      if (this.destroyed) return;
      if (error !== null) {
        this.destroy(error);
        return;
      }
      this.#position += bytesRead;
      if (this.push(bytesRead === length ? buffer : buffer.subarray(0, bytesRead))) this._read();
    });
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.#release();
    callback(error);
  }

  override push(chunk: unknown): boolean {
    if (chunk === null) this.#release();
    return super.push(chunk);
  }

  #release(): void {
    if (this.#released) return;
    this.#released = true;
    this.fill.readerDone();
  }
}

/** A full disk under the spool is the vault's (507), anything else unexplained the download's (502). */
function spoolOrUpstreamError(error: unknown): VaultError {
  const code = errorCode(error);
  if (code === "ENOSPC" || code === "EDQUOT") return new VaultError("insufficient_storage", "the cache's disk is full: the download cannot be stored", { cause: error });
  return new VaultError("upstream_failed", `download failed: ${describe(error)}`, { cause: error });
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
