/**
 * Streaming reader of the pool files a `Packages` or `Sources` index lists with their SHA256
 * (deb822 paragraphs, RFC 822-style fields, continuation lines starting with a space or tab):
 *
 *     Packages:  Filename: pool/main/h/hello/hello_2.10-3_amd64.deb
 *                Size: 53532
 *                SHA256: 1b4f...
 *     Sources:   Directory: pool/main/h/hello
 *                Checksums-Sha256:
 *                 0b28... 1847 hello_2.10-3.dsc
 *                 31e0... 725946 hello_2.10.orig.tar.gz
 *
 * It works on bytes, line by line, as they arrive (a decompressed `Packages` of Debian's main
 * is ~50 MB): only the fields it needs become strings, each a fresh one (never a slice that
 * would pin a whole chunk in memory). Paragraphs missing a field it needs are skipped. Pure.
 */
import { VaultError } from "../../core/errors.js";

export interface ListedPoolFile {
  /** Relative to the mirror's root, as the index gives it (`pool/main/h/hello/hello_2.10-3_amd64.deb`). */
  readonly path: string;
  /** Lowercase hex. */
  readonly sha256: string;
  readonly size: number;
}

/** A line longer than this is not an index's: the input is refused rather than buffered without end. */
export const MAX_INDEX_LINE_BYTES = 16 * 1024 * 1024;

const NEWLINE = 0x0a;
const CARRIAGE_RETURN = 0x0d;
const SPACE = 0x20;
const TAB = 0x09;
const HASH = 0x23;
const COLON = 0x3a;
const SHA256_HEX = /^[0-9A-Fa-f]{64}$/;

type Field = "filename" | "sha256" | "size" | "directory" | "checksums-sha256" | "other";

/** The fields it reads, by lowercase name. */
const WANTED = new Map<string, Field>([
  ["filename", "filename"],
  ["sha256", "sha256"],
  ["size", "size"],
  ["directory", "directory"],
  ["checksums-sha256", "checksums-sha256"],
]);

/** First letters of the wanted fields (either case): other lines are not decoded at all. */
const WANTED_INITIALS = new Set([..."fsdcFSDC"].map((letter) => letter.charCodeAt(0)));

export class IndexStanzaReader {
  readonly #onFile: (file: ListedPoolFile) => void;
  #partial: Buffer | undefined;
  #field: Field = "other";
  #filename: string | undefined;
  #sha256: string | undefined;
  #size: number | undefined;
  #directory: string | undefined;
  #checksums: Array<{ name: string; sha256: string; size: number }> = [];

  constructor(onFile: (file: ListedPoolFile) => void) {
    this.#onFile = onFile;
  }

  /** Reads the complete lines of `chunk` (the rest waits for the next chunk or `end`). */
  push(chunk: Buffer): void {
    let bytes = chunk;
    if (this.#partial !== undefined) {
      bytes = Buffer.concat([this.#partial, chunk]);
      this.#partial = undefined;
    }
    let start = 0;
    for (;;) {
      const newline = bytes.indexOf(NEWLINE, start);
      if (newline === -1) break;
      this.#line(bytes, start, newline);
      start = newline + 1;
    }
    if (start < bytes.length) {
      if (bytes.length - start > MAX_INDEX_LINE_BYTES) throw new VaultError("payload_too_large", `an index line longer than ${MAX_INDEX_LINE_BYTES} bytes`);
      // A copy: the rest of the chunk is not kept alive by it.
      this.#partial = Buffer.from(bytes.subarray(start));
    }
  }

  /** The input ended: reads a last line without a newline and the last paragraph. */
  end(): void {
    const rest = this.#partial;
    this.#partial = undefined;
    if (rest !== undefined) this.#line(rest, 0, rest.length);
    this.#endParagraph();
  }

  #line(bytes: Buffer, start: number, end: number): void {
    if (end > start && bytes[end - 1] === CARRIAGE_RETURN) end--;
    const first = bytes[start];
    if (first === undefined || isBlank(bytes, start, end)) {
      this.#endParagraph();
      return;
    }
    if (first === SPACE || first === TAB) {
      if (this.#field === "checksums-sha256") this.#checksumLine(bytes.toString("utf8", start, end));
      return;
    }
    if (first === HASH) return;
    this.#field = "other";
    if (!WANTED_INITIALS.has(first)) return;
    const colon = bytes.indexOf(COLON, start);
    if (colon === -1 || colon >= end) return;
    const field = WANTED.get(bytes.toString("latin1", start, colon).trimEnd().toLowerCase());
    if (field === undefined) return;
    this.#field = field;
    const value = bytes.toString("utf8", colon + 1, end).trim();
    switch (field) {
      case "filename":
        this.#filename = value;
        break;
      case "sha256":
        this.#sha256 = value;
        break;
      case "size":
        this.#size = /^\d+$/.test(value) ? Number(value) : undefined;
        break;
      case "directory":
        this.#directory = value;
        break;
      case "checksums-sha256":
        if (value !== "") this.#checksumLine(value);
        break;
      case "other":
        break;
    }
  }

  #checksumLine(line: string): void {
    const [sha256, size, name] = line.trim().split(/\s+/);
    if (sha256 === undefined || size === undefined || name === undefined || !SHA256_HEX.test(sha256) || !/^\d+$/.test(size)) return;
    this.#checksums.push({ name, sha256: sha256.toLowerCase(), size: Number(size) });
  }

  #endParagraph(): void {
    if (this.#filename !== undefined && this.#filename !== "" && this.#sha256 !== undefined && SHA256_HEX.test(this.#sha256) && this.#size !== undefined) {
      this.#onFile({ path: this.#filename, sha256: this.#sha256.toLowerCase(), size: this.#size });
    }
    if (this.#directory !== undefined && this.#directory !== "") {
      const directory = this.#directory.replace(/\/+$/, "");
      for (const file of this.#checksums) this.#onFile({ path: `${directory}/${file.name}`, sha256: file.sha256, size: file.size });
    }
    this.#field = "other";
    this.#filename = undefined;
    this.#sha256 = undefined;
    this.#size = undefined;
    this.#directory = undefined;
    this.#checksums = [];
  }
}

function isBlank(bytes: Buffer, start: number, end: number): boolean {
  for (let index = start; index < end; index++) {
    const byte = bytes[index];
    if (byte !== SPACE && byte !== TAB) return false;
  }
  return true;
}
