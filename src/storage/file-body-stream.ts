import { closeSync, read } from "node:fs";
import { Readable } from "node:stream";
import { CorruptObjectError } from "./object-file.js";

/** How far a response has got: bytes it accepted that have not yet left for the kernel. */
export interface DrainingSink {
  readonly writableLength: number;
}

/** A buffer handed to the consumer, and where its bytes end in the stream. */
interface Lent {
  readonly buffer: Buffer;
  readonly end: number;
}

/**
 * A byte range of an open file as a stream, read in big slices into a few buffers that it reuses.
 *
 * `fs.createReadStream` allocates a new buffer for every read. At a gigabyte a second that is a
 * thousand 1 MiB buffers a second left to the garbage collector, which frees memory outside the
 * JavaScript heap only every few tens of megabytes: a large hit's resident memory grew by ~50 MB
 * and the collector's work was on the hot path. Here a buffer is read into again once the
 * response it went to has written it out — once the bytes still queued there
 * (`sink.writableLength`, counting until the kernel has taken a write) no longer reach back to
 * it. So a download holds two or three buffers however long it is, as nginx's `output_buffers`.
 *
 * Without a sink (`bindSink` not called) nothing tells when a chunk is gone, and every read gets
 * a new buffer, as `createReadStream` does.
 */
export class FileBodyStream extends Readable {
  readonly #chunkBytes: number;
  #fd: number | undefined;
  #position: number;
  /** Exclusive. */
  readonly #end: number;
  #pushed = 0;
  #sink: DrainingSink | undefined;
  readonly #lent: Lent[] = [];
  readonly #free: Buffer[] = [];

  /** Reads `[start, endInclusive]` of `fd`, which it owns and closes. */
  constructor(fd: number, start: number, endInclusive: number, chunkBytes: number) {
    // A body smaller than a chunk gets buffers of its own size, not a chunk's (a 200 KiB file
    // would otherwise take three 1 MiB buffers).
    const bytes = Math.max(1, Math.min(chunkBytes, endInclusive + 1 - start));
    super({ highWaterMark: bytes });
    this.#fd = fd;
    this.#position = start;
    this.#end = endInclusive + 1;
    this.#chunkBytes = bytes;
  }

  /** The response these bytes are written to (call before it starts flowing). */
  bindSink(sink: DrainingSink): void {
    this.#sink = sink;
  }

  override _read(): void {
    const fd = this.#fd;
    if (fd === undefined) return;
    const length = Math.min(this.#chunkBytes, this.#end - this.#position);
    if (length <= 0) {
      this.push(null);
      return;
    }
    const buffer = this.#buffer();
    read(fd, buffer, 0, length, this.#position, (error, bytesRead) => {
      if (this.destroyed) return;
      if (error !== null) {
        this.destroy(error);
        return;
      }
      if (bytesRead === 0) {
        // Stored files never shrink (a write replaces the file): a short one is damage, and a
        // client must see an aborted download, not a short one that looks whole.
        this.destroy(new CorruptObjectError(`the stored file ended ${this.#end - this.#position} bytes early`));
        return;
      }
      this.#position += bytesRead;
      this.#pushed += bytesRead;
      this.#lent.push({ buffer, end: this.#pushed });
      this.push(bytesRead === buffer.length ? buffer : buffer.subarray(0, bytesRead));
      if (this.#position >= this.#end) this.push(null);
    });
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    const fd = this.#fd;
    this.#fd = undefined;
    this.#lent.length = 0;
    this.#free.length = 0;
    if (fd === undefined) {
      callback(error);
      return;
    }
    // Closing a file opened for reading is quick, and blocking beats a trip through the thread
    // pool here: under load that trip cost about a tenth of a 256 KiB hit's time.
    try {
      closeSync(fd);
    } catch {
      // Already gone: nothing to release.
    }
    callback(error);
  }

  /** A buffer whose bytes the sink has written out, or a new one. */
  #buffer(): Buffer {
    const sink = this.#sink;
    if (sink !== undefined) {
      // Everything pushed, less what waits in this stream and in the sink, has been written.
      const written = this.#pushed - this.readableLength - sink.writableLength;
      for (let lent = this.#lent[0]; lent !== undefined && lent.end <= written; lent = this.#lent[0]) {
        this.#lent.shift();
        this.#free.push(lent.buffer);
      }
    } else {
      this.#lent.length = 0;
    }
    return this.#free.pop() ?? Buffer.allocUnsafeSlow(this.#chunkBytes);
  }
}
