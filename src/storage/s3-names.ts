import { createHash } from "node:crypto";
import { VaultError } from "../core/errors.js";

/**
 * How the S3 driver names a key's object in the bucket: `<root><encoded key>`.
 *
 * The rule: the encoding keeps UTF-8 byte order and prefixes, so S3's own listing (UTF-8 binary
 * order, `Prefix`, `StartAfter`) lists our keys in our order, a page at a time, with no sorting
 * or filtering of our own — except for the few keys too long to name in full (below).
 *
 * - Each UTF-8 byte of the key becomes one code: `0-9 A-Z a-z -` stand for themselves; every other
 *   byte is an escape character and two lowercase hex digits. There is one escape character per
 *   run of non-plain bytes between two plain ones, and it lies inside that run (`!` for bytes
 *   below `-`, `.` for `.` and `/`, `=` for `:`..`@`, `_` for `[`..`` ` ``, `~` for `{`..0xff), so
 *   comparing two codes gives the order of their bytes, and no code is a prefix of another: the
 *   encoding of `a` sorts before that of `b` exactly when `a` sorts before `b`, and `p` is a
 *   prefix of `k` exactly when `enc(p)` is a prefix of `enc(k)`.
 * - A `/` is inserted after every 200 characters (never anywhere else: a key's own `/` is `.2f`),
 *   so no path segment is longer than 200 bytes, empty, `.` or `..`. Filesystem-backed servers
 *   (MinIO, s3rver) can store every key; AWS, Ceph, R2 and Garage do not care. The insertion
 *   depends only on what precedes it, so order and prefixes survive it.
 * - S3 names are at most 1024 bytes. A key whose encoding does not fit (`C` characters, after
 *   the root and room for the suffix) is *long*: its name is the first `C` characters, `~~` and 32
 *   hex digits of the key's SHA-256; the object's description keeps the bytes the name lost. Long
 *   keys that share their first `C` encoded characters form a *group*: contiguous in S3's order,
 *   but ordered by hash inside it, so a listing reads a group whole and sorts it by key (one HEAD
 *   per member). Only keys of hundreds of bytes that agree on hundreds of bytes share a group.
 */

/** Bytes that stand for themselves. */
const PLAIN = /^[0-9A-Za-z-]$/;
/** The escape character of each run of non-plain bytes, by its inclusive byte range. */
const ESCAPES: ReadonlyArray<readonly [number, number, string]> = [
  [0x00, 0x2c, "!"],
  [0x2e, 0x2f, "."],
  [0x3a, 0x40, "="],
  [0x5b, 0x60, "_"],
  [0x7b, 0xff, "~"],
];
const SEGMENT = 200;
const LONG_MARK = "~~";
const HASH_CHARS = 32;
const LONG_SUFFIX = LONG_MARK.length + HASH_CHARS;
/** S3's limit on object names, in UTF-8 bytes. */
export const MAX_NAME_BYTES = 1024;
/** Room left for encoded keys below which a root (bucket prefix + namespace) is refused. */
const MIN_ENCODED = 256;

const CODES: readonly string[] = Array.from({ length: 256 }, (_, byte) => {
  const char = String.fromCharCode(byte);
  if (PLAIN.test(char)) return char;
  const escape = ESCAPES.find(([low, high]) => byte >= low && byte <= high);
  if (escape === undefined) throw new Error(`no escape for byte ${byte}`);
  return `${escape[2]}${byte.toString(16).padStart(2, "0")}`;
});
const ESCAPE_RANGES = new Map(ESCAPES.map(([low, high, char]) => [char, [low, high] as const]));

/** The encoding of a key (before segment breaks). */
export function encodeKeyBytes(bytes: Uint8Array): string {
  let out = "";
  for (const byte of bytes) out += CODES[byte];
  return out;
}

/**
 * Decodes complete codes; stops at the first incomplete one when `partial`, else answers
 * undefined for anything that is not exactly some key's encoding.
 */
export function decodeKeyBytes(encoded: string, partial = false): Buffer | undefined {
  const bytes: number[] = [];
  for (let i = 0; i < encoded.length; ) {
    const char = encoded[i] ?? "";
    if (PLAIN.test(char)) {
      bytes.push(char.charCodeAt(0));
      i++;
      continue;
    }
    const range = ESCAPE_RANGES.get(char);
    if (range === undefined) return undefined;
    const hex = encoded.slice(i + 1, i + 3);
    if (hex.length < 2) return partial ? Buffer.from(bytes) : undefined;
    if (!/^[0-9a-f]{2}$/.test(hex)) return undefined;
    const byte = Number.parseInt(hex, 16);
    if (byte < range[0] || byte > range[1]) return undefined;
    bytes.push(byte);
    i += 3;
  }
  return Buffer.from(bytes);
}

/** Inserts a `/` after every SEGMENT characters. */
function withBreaks(encoded: string): string {
  if (encoded.length <= SEGMENT) return encoded;
  const parts: string[] = [];
  for (let i = 0; i < encoded.length; i += SEGMENT) parts.push(encoded.slice(i, i + SEGMENT));
  return parts.join("/");
}

function withoutBreaks(named: string): string {
  return named.replaceAll("/", "");
}

export type ParsedName =
  | { readonly kind: "short"; readonly key: string }
  /** `group` is the S3 prefix its group shares; `head` the key's bytes the name keeps. */
  | { readonly kind: "long"; readonly group: string; readonly head: Buffer; readonly hash: string };

/** Where a listing starts in S3 and what it must still check itself. */
export interface ListPlan {
  readonly s3Prefix: string;
  readonly s3StartAfter: string | undefined;
}

export class ObjectNames {
  /** Characters of a name after the root, for short keys; long ones keep this many. */
  readonly #capacity: number;

  /** `root` ends with `/` (or is empty); names are `<root><encoded key>`. */
  constructor(
    readonly root: string,
    maxNameBytes = MAX_NAME_BYTES,
  ) {
    this.#capacity = maxNameBytes - Buffer.byteLength(root, "utf8") - LONG_SUFFIX;
    if (this.#capacity < Math.min(MIN_ENCODED, maxNameBytes / 4)) {
      throw new VaultError("bad_request", `the s3 store's prefix is too long (${Buffer.byteLength(root, "utf8")} bytes): keys would not fit in S3's ${maxNameBytes}-byte names`);
    }
  }

  /** The object name of `key` (valid per `validateKey`). */
  nameOf(key: string): string {
    const named = withBreaks(encodeKeyBytes(Buffer.from(key, "utf8")));
    if (named.length <= this.#capacity) return this.root + named;
    return this.root + named.slice(0, this.#capacity) + LONG_MARK + hashOf(key);
  }

  /** For a long key: the bytes of it that its name does not keep (kept in its description). */
  tailOf(key: string): Buffer | undefined {
    const name = this.nameOf(key);
    const parsed = this.parse(name);
    if (parsed?.kind !== "long") return undefined;
    return Buffer.from(key, "utf8").subarray(parsed.head.length);
  }

  /** What a listed name stands for; undefined for a name this encoding never makes. */
  parse(name: string): ParsedName | undefined {
    if (!name.startsWith(this.root)) return undefined;
    const named = name.slice(this.root.length);
    if (named.length <= this.#capacity) {
      if (withBreaks(withoutBreaks(named)) !== named) return undefined;
      const bytes = decodeKeyBytes(withoutBreaks(named));
      if (bytes === undefined || bytes.length === 0) return undefined;
      const key = bytes.toString("utf8");
      return Buffer.from(key, "utf8").equals(bytes) ? { kind: "short", key } : undefined;
    }
    if (named.length !== this.#capacity + LONG_SUFFIX) return undefined;
    const kept = named.slice(0, this.#capacity);
    const hash = named.slice(this.#capacity + LONG_MARK.length);
    if (named.slice(this.#capacity, this.#capacity + LONG_MARK.length) !== LONG_MARK || !/^[0-9a-f]+$/.test(hash)) return undefined;
    const head = decodeKeyBytes(withoutBreaks(kept), true);
    if (head === undefined) return undefined;
    return { kind: "long", group: this.root + kept + LONG_MARK, head, hash };
  }

  /** The key of a long name, given the tail its description kept; undefined if they disagree. */
  longKey(parsed: Extract<ParsedName, { kind: "long" }>, tail: Buffer): string | undefined {
    const bytes = Buffer.concat([parsed.head, tail]);
    const key = bytes.toString("utf8");
    if (!Buffer.from(key, "utf8").equals(bytes) || hashOf(key) !== parsed.hash) return undefined;
    return key;
  }

  /**
   * The S3 `Prefix` and `StartAfter` of a listing of keys under `prefix` after `startAfter`.
   * Every short key S3 then lists matches both; long keys (read by group) must still be checked.
   */
  planList(prefix: string, startAfter: string | undefined): ListPlan {
    return { s3Prefix: this.#boundary(prefix, LONG_MARK), s3StartAfter: startAfter === undefined ? undefined : this.#boundary(startAfter, "") };
  }

  /**
   * The encoded form of a listing bound: whole when it fits, else its group's prefix (a prefix
   * that long only matches long keys of that group; a start inside a group starts at the group).
   */
  #boundary(key: string, groupMark: string): string {
    const named = withBreaks(encodeKeyBytes(Buffer.from(key, "utf8")));
    return this.root + (named.length <= this.#capacity ? named : named.slice(0, this.#capacity) + groupMark);
  }
}

function hashOf(key: string): string {
  return createHash("sha256").update(key, "utf8").digest("hex").slice(0, HASH_CHARS);
}
