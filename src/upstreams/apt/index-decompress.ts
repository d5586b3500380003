import { Readable, pipeline } from "node:stream";
import { createGunzip } from "node:zlib";
import xzDecompress from "xz-decompress";
import { VaultError } from "../../core/errors.js";

/**
 * The text of an index file whatever its compression, judged by its first bytes (never by its
 * name: a `by-hash/SHA256/<hex>` path does not say). Mirrors publish each index in several
 * compressions; apt asks for the first it can read, usually `.xz`:
 * - xz through `xz-decompress` (WebAssembly, in chunks of 64 KiB), gzip through node:zlib, plain
 *   text as it is;
 * - bzip2, zstd and lzma have no decoder in Node 20: `decompressIndex` throws VaultError
 *   `not_supported`, and the caller carries on without that index.
 */

export type IndexCompression = "xz" | "gzip" | "bzip2" | "zstd" | "lzma" | "none";

/** Bytes `detectCompression` needs to decide (xz's magic is the longest). */
export const COMPRESSION_MAGIC_BYTES = 6;

const XZ_MAGIC = [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00];
const GZIP_MAGIC = [0x1f, 0x8b];
/** `BZh` then the block size digit. */
const BZIP2_MAGIC = [0x42, 0x5a, 0x68];
const ZSTD_MAGIC = [0x28, 0xb5, 0x2f, 0xfd];
/** The legacy `.lzma` header: the usual properties byte (lc=3, lp=0, pb=2), then a little-endian dictionary size. */
const LZMA_MAGIC = [0x5d, 0x00, 0x00];

/** The compression of a file that starts with `head`. */
export function detectCompression(head: Uint8Array): IndexCompression {
  const startsWith = (magic: readonly number[]): boolean => head.length >= magic.length && magic.every((byte, index) => head[index] === byte);
  if (startsWith(XZ_MAGIC)) return "xz";
  if (startsWith(GZIP_MAGIC)) return "gzip";
  if (startsWith(BZIP2_MAGIC) && head.length > 3 && (head[3] ?? 0) >= 0x31 && (head[3] ?? 0) <= 0x39) return "bzip2";
  if (startsWith(ZSTD_MAGIC)) return "zstd";
  if (startsWith(LZMA_MAGIC)) return "lzma";
  return "none";
}

/**
 * The decompressed bytes of `source`. Ending the iteration early (a `break`, a throw) stops the
 * decoder and `source`. Throws VaultError `not_supported` for a compression it cannot read, and
 * whatever the decoder throws for a corrupt or truncated input.
 */
export async function* decompressIndex(source: AsyncIterable<Uint8Array>): AsyncGenerator<Buffer> {
  const iterator = source[Symbol.asyncIterator]();
  try {
    const head: Buffer[] = [];
    let headLength = 0;
    while (headLength < COMPRESSION_MAGIC_BYTES) {
      const next = await iterator.next();
      if (next.done === true) break;
      const chunk = Buffer.from(next.value.buffer, next.value.byteOffset, next.value.byteLength);
      head.push(chunk);
      headLength += chunk.length;
    }
    const compression = detectCompression(Buffer.concat(head));
    const rest = (async function* (): AsyncGenerator<Buffer> {
      yield* head;
      for (;;) {
        const next = await iterator.next();
        if (next.done === true) return;
        yield Buffer.from(next.value.buffer, next.value.byteOffset, next.value.byteLength);
      }
    })();
    switch (compression) {
      case "none":
        yield* rest;
        return;
      case "gzip":
        yield* gunzip(rest);
        return;
      case "xz":
        yield* unxz(rest);
        return;
      default:
        throw new VaultError("not_supported", `cannot read ${compression}-compressed indexes`);
    }
  } finally {
    await iterator.return?.();
  }
}

async function* gunzip(compressed: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  // zlib inflates on the thread pool; the pipeline destroys both ends when one fails or ends early.
  const inflating = pipeline(Readable.from(compressed), createGunzip(), () => undefined);
  for await (const chunk of inflating) yield chunk as Buffer;
}

async function* unxz(compressed: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  // xz-decompress lets one stream decode at a time (process-wide) and holds that turn until the
  // stream ends, fails or is cancelled; a `for await` cancels it when left early.
  const decoded = new xzDecompress.XzReadableStream(Readable.toWeb(Readable.from(compressed)) as ReadableStream<Uint8Array>);
  for await (const chunk of decoded) {
    if (chunk.byteLength > 0) yield Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  }
}
