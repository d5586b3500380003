import { fstatSync, readSync } from "node:fs";
import type { FileHandle } from "node:fs/promises";
import { crc32 } from "node:zlib";
import type { ObjectInfo } from "./storage-driver.js";
import { etagOf } from "./write-checks.js";

/**
 * The filesystem driver's object file:
 *
 *     [body: size bytes][trailer: JSON, UTF-8][footer: 16 bytes]
 *
 * footer = trailer length (uint32 BE) + CRC-32 of the trailer (uint32 BE) + magic "AVLTOBJ1"
 * (the "1" is the format version). The body sits at offset 0, so a read streams a byte range of
 * the file as it is; `stat` reads only the tail. A file whose footer, trailer or sizes do not
 * agree is corrupt and never served.
 */

export const FOOTER_BYTES = 16;
const MAGIC = Buffer.from("AVLTOBJ1", "latin1");
/** How much of the tail `readObjectTail` reads in its first go (trailers are usually smaller). */
const FIRST_TAIL_READ = 4096;
/** A trailer can never be larger (content type + metadata are capped well below). */
const MAX_TRAILER_BYTES = 1024 * 1024;

interface Trailer {
  readonly v: 1;
  readonly key: string;
  readonly size: number;
  readonly contentType?: string;
  readonly sha256: string;
  readonly createdAt: string;
  readonly modifiedAt: string;
  readonly metadata: Record<string, string>;
}

/** Trailer + footer for `info`, appended after the body. */
export function encodeObjectTail(info: ObjectInfo): Buffer {
  const trailer: Trailer = {
    v: 1,
    key: info.key,
    size: info.size,
    ...(info.contentType === undefined ? {} : { contentType: info.contentType }),
    sha256: info.sha256,
    createdAt: info.createdAt.toISOString(),
    modifiedAt: info.modifiedAt.toISOString(),
    metadata: { ...info.metadata },
  };
  const json = Buffer.from(JSON.stringify(trailer), "utf8");
  const footer = Buffer.alloc(FOOTER_BYTES);
  footer.writeUInt32BE(json.length, 0);
  footer.writeUInt32BE(crc32(json), 4);
  MAGIC.copy(footer, 8);
  return Buffer.concat([json, footer]);
}

export class CorruptObjectError extends Error {
  constructor(reason: string) {
    super(reason);
    this.name = "CorruptObjectError";
  }
}

/**
 * Reads and checks the description at the end of an open object file.
 * Throws `CorruptObjectError` if the file is not a complete object.
 */
export async function readObjectTail(handle: FileHandle): Promise<ObjectInfo> {
  const { size: fileSize } = await handle.stat();
  let length = firstTailLength(fileSize);
  for (;;) {
    const parsed = parseTail(await readAt(handle, fileSize - length, length), fileSize);
    if (typeof parsed !== "number") return parsed;
    length = parsed;
  }
}

/** `readObjectTail` on a raw fd with blocking reads (the driver's read path; see its `open`). */
export function readObjectTailSync(fd: number): ObjectInfo {
  const { size: fileSize } = fstatSync(fd);
  let length = firstTailLength(fileSize);
  for (;;) {
    const parsed = parseTail(readAtSync(fd, fileSize - length, length), fileSize);
    if (typeof parsed !== "number") return parsed;
    length = parsed;
  }
}

function firstTailLength(fileSize: number): number {
  if (fileSize < FOOTER_BYTES) throw new CorruptObjectError(`only ${fileSize} bytes long`);
  return Math.min(fileSize, FIRST_TAIL_READ);
}

/**
 * Parses the last `tail.length` bytes of a file of `fileSize` bytes: the object's info, or the
 * number of tail bytes to read instead when the trailer is longer than what was read.
 */
function parseTail(tail: Buffer, fileSize: number): ObjectInfo | number {
  const footer = tail.subarray(tail.length - FOOTER_BYTES);
  if (!footer.subarray(8).equals(MAGIC)) throw new CorruptObjectError("no object footer");
  const trailerLength = footer.readUInt32BE(0);
  if (trailerLength > MAX_TRAILER_BYTES || trailerLength + FOOTER_BYTES > fileSize) {
    throw new CorruptObjectError(`impossible trailer length ${trailerLength}`);
  }
  if (trailerLength + FOOTER_BYTES > tail.length) return trailerLength + FOOTER_BYTES;
  const json = tail.subarray(tail.length - FOOTER_BYTES - trailerLength, tail.length - FOOTER_BYTES);
  if (crc32(json) !== footer.readUInt32BE(4)) throw new CorruptObjectError("trailer checksum mismatch");
  return parseTrailer(json, fileSize - FOOTER_BYTES - trailerLength);
}

function parseTrailer(json: Buffer, bodySize: number): ObjectInfo {
  let trailer: Partial<Trailer>;
  try {
    trailer = JSON.parse(json.toString("utf8")) as Partial<Trailer>;
  } catch {
    throw new CorruptObjectError("trailer is not JSON");
  }
  const { key, size, contentType, sha256, metadata } = trailer;
  const createdAt = new Date(trailer.createdAt ?? Number.NaN);
  const modifiedAt = new Date(trailer.modifiedAt ?? Number.NaN);
  if (
    trailer.v !== 1 ||
    typeof key !== "string" ||
    size !== bodySize ||
    (contentType !== undefined && typeof contentType !== "string") ||
    typeof sha256 !== "string" ||
    !/^[0-9a-f]{64}$/.test(sha256) ||
    Number.isNaN(createdAt.getTime()) ||
    Number.isNaN(modifiedAt.getTime()) ||
    typeof metadata !== "object" ||
    metadata === null ||
    !Object.values(metadata).every((value) => typeof value === "string")
  ) {
    throw new CorruptObjectError("trailer does not describe this file");
  }
  return Object.freeze({
    key,
    size,
    contentType,
    sha256,
    etag: etagOf(sha256),
    createdAt,
    modifiedAt,
    metadata: Object.freeze({ ...metadata }),
  });
}

function readAtSync(fd: number, position: number, length: number): Buffer {
  const buffer = Buffer.allocUnsafe(length);
  let filled = 0;
  while (filled < length) {
    const bytesRead = readSync(fd, buffer, filled, length - filled, position + filled);
    if (bytesRead === 0) throw new CorruptObjectError("file shrank while being read");
    filled += bytesRead;
  }
  return buffer;
}

async function readAt(handle: FileHandle, position: number, length: number): Promise<Buffer> {
  const buffer = Buffer.allocUnsafe(length);
  let filled = 0;
  while (filled < length) {
    const { bytesRead } = await handle.read(buffer, filled, length - filled, position + filled);
    if (bytesRead === 0) throw new CorruptObjectError("file shrank while being read");
    filled += bytesRead;
  }
  return buffer;
}

/**
 * Parses a whole object file already in memory (small objects are read in one go).
 * Throws `CorruptObjectError` if it is not a complete object.
 */
export function parseWholeObject(file: Buffer): { info: ObjectInfo; body: Buffer } {
  if (file.length < FOOTER_BYTES) throw new CorruptObjectError(`only ${file.length} bytes long`);
  const parsed = parseTail(file, file.length);
  if (typeof parsed === "number") throw new CorruptObjectError("trailer longer than the file");
  return { info: parsed, body: file.subarray(0, parsed.size) };
}
