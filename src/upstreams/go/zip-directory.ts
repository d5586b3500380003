import { createReadStream } from "node:fs";
import type { FileHandle } from "node:fs/promises";
import type { Readable } from "node:stream";
import { crc32, createInflateRaw } from "node:zlib";

/**
 * Reads a zip archive from a file the way Go's archive/zip does for a module zip: the entries of
 * the central directory (zip64 included), each one's uncompressed bytes (stored or deflated),
 * checked against the directory's size and CRC-32. Anything else is a `ZipFormatError`.
 */

export class ZipFormatError extends Error {
  override readonly name = "ZipFormatError";
}

export interface ZipEntry {
  /** The name as stored: raw bytes (Go compares and hashes them as bytes). */
  readonly name: Buffer;
  readonly method: number;
  readonly compressedSize: number;
  readonly size: number;
  readonly crc32: number;
  readonly localHeaderOffset: number;
}

const EOCD = 0x06054b50;
const ZIP64_LOCATOR = 0x07064b50;
const ZIP64_EOCD = 0x06064b50;
const CENTRAL = 0x02014b50;
const LOCAL = 0x04034b50;
const EOCD_SIZE = 22;
/** The end record sits within its size plus the longest comment of the end of the file. */
const TAIL = EOCD_SIZE + 0xffff;
const STORED = 0;
const DEFLATED = 8;

async function readAt(file: FileHandle, position: number, length: number): Promise<Buffer> {
  const buffer = Buffer.alloc(length);
  const { bytesRead } = await file.read(buffer, 0, length, position);
  if (bytesRead !== length) throw new ZipFormatError("unexpected end of the archive");
  return buffer;
}

/** A 64-bit little-endian field that must fit a safe integer. */
function uint64(buffer: Buffer, offset: number): number {
  const value = buffer.readBigUInt64LE(offset);
  if (value > BigInt(Number.MAX_SAFE_INTEGER)) throw new ZipFormatError("a zip64 field is too large");
  return Number(value);
}

/** The entries of the central directory, in its order. */
export async function readZipDirectory(file: FileHandle, fileSize: number): Promise<ZipEntry[]> {
  if (fileSize < EOCD_SIZE) throw new ZipFormatError("too short to be a zip archive");
  const tailStart = Math.max(0, fileSize - TAIL);
  const tail = await readAt(file, tailStart, fileSize - tailStart);
  let end = -1;
  for (let at = tail.length - EOCD_SIZE; at >= 0; at--) {
    if (tail.readUInt32LE(at) === EOCD && at + EOCD_SIZE + tail.readUInt16LE(at + 20) === tail.length) {
      end = at;
      break;
    }
  }
  if (end < 0) throw new ZipFormatError("no end of central directory record");
  let count = tail.readUInt16LE(end + 10);
  let directorySize = tail.readUInt32LE(end + 12);
  let directoryOffset = tail.readUInt32LE(end + 16);
  if (count === 0xffff || directorySize === 0xffffffff || directoryOffset === 0xffffffff) {
    const locatorAt = tailStart + end - 20;
    const locator = locatorAt >= 0 ? await readAt(file, locatorAt, 20) : undefined;
    if (locator === undefined || locator.readUInt32LE(0) !== ZIP64_LOCATOR) throw new ZipFormatError("no zip64 end of central directory locator");
    const record = await readAt(file, uint64(locator, 8), 56);
    if (record.readUInt32LE(0) !== ZIP64_EOCD) throw new ZipFormatError("no zip64 end of central directory record");
    count = uint64(record, 32);
    directorySize = uint64(record, 40);
    directoryOffset = uint64(record, 48);
  }
  if (directoryOffset + directorySize > fileSize) throw new ZipFormatError("the central directory lies outside the archive");
  const directory = await readAt(file, directoryOffset, directorySize);
  const entries: ZipEntry[] = [];
  let at = 0;
  for (let i = 0; i < count; i++) {
    if (at + 46 > directory.length || directory.readUInt32LE(at) !== CENTRAL) throw new ZipFormatError("malformed central directory");
    const method = directory.readUInt16LE(at + 10);
    const crc = directory.readUInt32LE(at + 16);
    let compressedSize = directory.readUInt32LE(at + 20);
    let size = directory.readUInt32LE(at + 24);
    const nameLength = directory.readUInt16LE(at + 28);
    const extraLength = directory.readUInt16LE(at + 30);
    const commentLength = directory.readUInt16LE(at + 32);
    let localHeaderOffset = directory.readUInt32LE(at + 42);
    const next = at + 46 + nameLength + extraLength + commentLength;
    if (next > directory.length) throw new ZipFormatError("malformed central directory");
    const name = Buffer.from(directory.subarray(at + 46, at + 46 + nameLength));
    // Zip64: the fields that overflowed follow in the 0x0001 extra field, in this order.
    if (size === 0xffffffff || compressedSize === 0xffffffff || localHeaderOffset === 0xffffffff) {
      const extra = directory.subarray(at + 46 + nameLength, at + 46 + nameLength + extraLength);
      let found = false;
      for (let e = 0; e + 4 <= extra.length; ) {
        const id = extra.readUInt16LE(e);
        const length = extra.readUInt16LE(e + 2);
        if (id === 0x0001) {
          const field = extra.subarray(e + 4, e + 4 + length);
          let f = 0;
          const take = (): number => {
            if (f + 8 > field.length) throw new ZipFormatError("short zip64 extra field");
            const value = uint64(field, f);
            f += 8;
            return value;
          };
          if (size === 0xffffffff) size = take();
          if (compressedSize === 0xffffffff) compressedSize = take();
          if (localHeaderOffset === 0xffffffff) localHeaderOffset = take();
          found = true;
          break;
        }
        e += 4 + length;
      }
      if (!found) throw new ZipFormatError("no zip64 extra field for a large entry");
    }
    entries.push({ name, method, compressedSize, size, crc32: crc, localHeaderOffset });
    at = next;
  }
  return entries;
}

/**
 * Streams one entry's uncompressed bytes into `sink`; rejects if the entry is not stored or
 * deflated, or its bytes do not have the directory's size and CRC-32.
 */
export async function readZipEntry(file: FileHandle, fileSize: number, entry: ZipEntry, sink: (chunk: Buffer) => void): Promise<void> {
  const local = await readAt(file, entry.localHeaderOffset, 30);
  if (local.readUInt32LE(0) !== LOCAL) throw new ZipFormatError("malformed local file header");
  const start = entry.localHeaderOffset + 30 + local.readUInt16LE(26) + local.readUInt16LE(28);
  if (start + entry.compressedSize > fileSize) throw new ZipFormatError("an entry's data lies outside the archive");
  if (entry.method !== STORED && entry.method !== DEFLATED) throw new ZipFormatError(`unsupported compression method ${entry.method}`);
  if (entry.method === STORED && entry.compressedSize !== entry.size) throw new ZipFormatError("a stored entry's sizes differ");
  let size = 0;
  let crc = 0;
  if (entry.compressedSize > 0) {
    const raw = createReadStream("", { fd: file.fd, autoClose: false, start, end: start + entry.compressedSize - 1 });
    const bytes: Readable = entry.method === STORED ? raw : raw.pipe(createInflateRaw());
    if (bytes !== raw) raw.on("error", (error) => bytes.destroy(error));
    try {
      for await (const chunk of bytes) {
        const data = chunk as Buffer;
        size += data.length;
        if (size > entry.size) throw new ZipFormatError("an entry is larger than the directory says");
        crc = crc32(data, crc);
        sink(data);
      }
    } catch (error) {
      raw.destroy();
      throw error instanceof ZipFormatError ? error : new ZipFormatError(`an entry does not decompress: ${(error as Error).message}`);
    }
  }
  if (size !== entry.size || crc !== entry.crc32) throw new ZipFormatError("an entry does not match its size or CRC-32");
}
