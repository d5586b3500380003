import { createHash } from "node:crypto";

/** Progress of a transfer: bytes so far, and the total when it is known. */
export interface Progress {
  readonly bytes: number;
  readonly total?: number | undefined;
}

export type ProgressListener = (progress: Progress) => void;

/** What `put`/`putStream` accept. A `Readable` is an `AsyncIterable` of `Buffer`s. */
export type UploadSource = Uint8Array | string | AsyncIterable<Uint8Array | string>;

/**
 * A request body that knows whether it can be sent again. Bytes in memory always can; a stream
 * only until its first chunk has been read, since what was read cannot be read again.
 */
export interface UploadBody {
  /** The body to send on the next attempt. */
  open(): Uint8Array | AsyncIterable<Uint8Array>;
  /** Whether another attempt can send the whole body again. */
  readonly replayable: boolean;
  /** The length, when known, sent as `Content-Length`. */
  readonly length: number | undefined;
  /** Hex SHA-256 of the body, when known before sending (bytes in memory). */
  readonly sha256: string | undefined;
  /** The error the caller's source threw, if it did: that is rethrown as it is. */
  readonly sourceError: unknown;
  /** Releases the source after a failed upload (a `Readable` is destroyed). */
  dispose(): Promise<void>;
}

/** Chunk size for reporting the progress of an upload from memory. */
const PROGRESS_CHUNK = 1024 * 1024;

export function uploadBody(source: UploadSource, size: number | undefined, onProgress: ProgressListener | undefined): UploadBody {
  if (typeof source === "string") return new BytesBody(Buffer.from(source, "utf8"), onProgress);
  if (source instanceof Uint8Array) return new BytesBody(source, onProgress);
  if (source !== null && typeof source === "object" && Symbol.asyncIterator in source) {
    return new StreamBody(source, size, onProgress);
  }
  throw new TypeError("an upload source must be a Uint8Array, a string, a Readable or an AsyncIterable of Uint8Array");
}

class BytesBody implements UploadBody {
  readonly replayable = true;
  readonly sourceError = undefined;
  readonly length: number;
  readonly sha256: string;

  constructor(
    private readonly bytes: Uint8Array,
    private readonly onProgress: ProgressListener | undefined,
  ) {
    this.length = bytes.byteLength;
    this.sha256 = createHash("sha256").update(bytes).digest("hex");
  }

  open(): Uint8Array | AsyncIterable<Uint8Array> {
    const onProgress = this.onProgress;
    if (onProgress === undefined) return this.bytes;
    const bytes = this.bytes;
    // A fresh generator per attempt: a retry reports progress from 0 again.
    return (async function* () {
      for (let offset = 0; offset < bytes.byteLength; offset += PROGRESS_CHUNK) {
        const chunk = bytes.subarray(offset, offset + PROGRESS_CHUNK);
        onProgress({ bytes: offset + chunk.byteLength, total: bytes.byteLength });
        yield chunk;
      }
    })();
  }

  async dispose(): Promise<void> {}
}

class StreamBody implements UploadBody {
  readonly sha256 = undefined;
  sourceError: unknown = undefined;
  private iterator: AsyncIterator<Uint8Array | string> | undefined;
  private started = false;
  private finished = false;

  constructor(
    private readonly source: AsyncIterable<Uint8Array | string>,
    readonly length: number | undefined,
    private readonly onProgress: ProgressListener | undefined,
  ) {}

  get replayable(): boolean {
    return !this.started;
  }

  open(): AsyncIterable<Uint8Array> {
    return this.chunks();
  }

  /** Runs only when the HTTP layer asks for the first chunk, i.e. once a connection is up. */
  private async *chunks(): AsyncGenerator<Uint8Array> {
    this.started = true;
    this.iterator ??= this.source[Symbol.asyncIterator]();
    let sent = 0;
    for (;;) {
      let step: IteratorResult<Uint8Array | string>;
      try {
        step = await this.iterator.next();
      } catch (error) {
        this.sourceError = error ?? new Error("the upload source failed");
        throw error;
      }
      if (step.done === true) {
        this.finished = true;
        return;
      }
      const chunk = typeof step.value === "string" ? Buffer.from(step.value, "utf8") : step.value;
      if (!(chunk instanceof Uint8Array)) {
        this.sourceError = new TypeError("an upload source must yield Uint8Array chunks");
        throw this.sourceError;
      }
      sent += chunk.byteLength;
      this.onProgress?.({ bytes: sent, total: this.length });
      yield chunk;
    }
  }

  async dispose(): Promise<void> {
    if (this.finished) return;
    if (this.iterator !== undefined) {
      await this.iterator.return?.().catch(() => undefined);
      return;
    }
    const destroy = (this.source as { destroy?: unknown }).destroy;
    if (typeof destroy === "function") (destroy as () => void).call(this.source);
  }
}
