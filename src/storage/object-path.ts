/**
 * How the filesystem driver names an object's file (see the layout in `filesystem-driver.ts`).
 *
 * A key is split on `/` into segments; each segment is encoded reversibly:
 * - the UTF-8 bytes outside `[A-Za-z0-9_.-]` become `%XX` (uppercase hex), and so does a leading
 *   `.` — so no encoded segment is `.`, `..` or a hidden staging name (`.tmp-...`);
 * - an empty segment becomes `%` alone (every other `%` is followed by two hex digits);
 * - `~` and `+` are always escaped, which frees them as suffixes: the object's FILE is its last
 *   encoded segment + `~`, so the file of key `a` (`a~`) never collides with the directory of key
 *   `a/b` (`a/`);
 * - an encoded segment longer than 200 bytes is cut into chunks of at most 200 bytes (never inside
 *   a `%XX`); every chunk but the last becomes a directory named chunk + `+`, and a chunk that would
 *   start with `.` starts with `%2E` instead. So no name exceeds NAME_MAX (255).
 *
 * Decoding a path gives the key back, and the driver accepts a path only if encoding its key
 * gives the same path again: there is exactly one path per key.
 */

/** Longest chunk of an encoded segment in one file or directory name (before its suffix). */
export const MAX_NAME_CHUNK = 200;

/** Suffix of the file that holds an object. */
export const FILE_SUFFIX = "~";

/** Suffix of a directory that holds the next chunk of a long segment. */
export const CHUNK_SUFFIX = "+";

/** Encoded form of an empty segment. */
export const EMPTY_SEGMENT = "%";

const HEX = Array.from({ length: 256 }, (_, byte) => "%" + byte.toString(16).toUpperCase().padStart(2, "0"));
const SAFE = Array.from({ length: 256 }, (_, byte) => /^[A-Za-z0-9_.-]$/.test(String.fromCharCode(byte)));
const DOT = 0x2e;

export function encodeSegment(segment: string): string {
  if (segment === "") return EMPTY_SEGMENT;
  const bytes = Buffer.from(segment, "utf8");
  let encoded = "";
  for (let i = 0; i < bytes.length; i++) {
    const byte = bytes[i]!;
    encoded += SAFE[byte] === true && !(i === 0 && byte === DOT) ? String.fromCharCode(byte) : HEX[byte]!;
  }
  return encoded;
}

/** The segment an encoded segment stands for, or `undefined` if it is not one we could produce. */
export function decodeSegment(encoded: string): string | undefined {
  if (encoded === EMPTY_SEGMENT) return "";
  if (encoded === "") return undefined;
  const bytes = Buffer.allocUnsafe(encoded.length);
  let length = 0;
  for (let i = 0; i < encoded.length; i++) {
    const code = encoded.charCodeAt(i);
    if (code === 0x25 /* % */) {
      const hex = encoded.slice(i + 1, i + 3);
      if (!/^[0-9A-F]{2}$/.test(hex)) return undefined;
      bytes[length++] = Number.parseInt(hex, 16);
      i += 2;
    } else if (code < 256 && SAFE[code] === true) {
      bytes[length++] = code;
    } else {
      return undefined;
    }
  }
  try {
    return utf8.decode(bytes.subarray(0, length));
  } catch {
    return undefined;
  }
}

const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** The names (directories, then maybe a file) one encoded segment takes, suffixes included. */
function segmentNames(encoded: string, isLast: boolean, names: string[]): void {
  const lastSuffix = isLast ? FILE_SUFFIX : "";
  if (encoded.length <= MAX_NAME_CHUNK) {
    names.push(encoded + lastSuffix);
    return;
  }
  let chunk = "";
  for (let i = 0; i < encoded.length; ) {
    let token = encoded[i] === "%" ? encoded.slice(i, i + 3) : encoded[i]!;
    i += token.length;
    if (chunk !== "" && chunk.length + token.length > MAX_NAME_CHUNK) {
      names.push(chunk + CHUNK_SUFFIX);
      chunk = "";
    }
    if (chunk === "" && token === ".") token = HEX[DOT]!;
    chunk += token;
  }
  names.push(chunk + lastSuffix);
}

/** The names from the objects directory down to the object's file; the last one is the file. */
export function keyToNames(key: string): string[] {
  const segments = key.split("/");
  const names: string[] = [];
  segments.forEach((segment, i) => segmentNames(encodeSegment(segment), i === segments.length - 1, names));
  return names;
}

/** The object's file, relative to the objects directory, `/`-separated. */
export function keyToRelativePath(key: string): string {
  return keyToNames(key).join("/");
}

/**
 * Decodes a relative path back into its key, or `undefined` if the path is not the canonical path
 * of a key (a foreign file, a renamed file, a staging file).
 */
export function relativePathToKey(relativePath: string): string | undefined {
  const names = relativePath.split("/");
  const fileName = names.pop();
  if (fileName === undefined || !fileName.endsWith(FILE_SUFFIX)) return undefined;
  let decoder: PathDecoder | undefined = new PathDecoder();
  for (const name of names) {
    decoder = decoder.child(name);
    if (decoder === undefined) return undefined;
  }
  const key = decoder.keyOfFile(fileName);
  return key !== undefined && keyToRelativePath(key) === relativePath ? key : undefined;
}

/**
 * Decodes a path name by name, as a directory walk meets them. Immutable: `child` gives the state
 * inside a subdirectory. `keyOfFile` does NOT check that the path is canonical (callers compare
 * `keyToRelativePath(key)` with the path they walked).
 */
export class PathDecoder {
  constructor(
    /** The segments decoded so far. */
    readonly segments: readonly string[] = [],
    /** Chunks of a long segment met so far (without their `+`). */
    readonly pending: string = "",
  ) {}

  /** The state inside directory `name`, or `undefined` if no key produces such a directory. */
  child(name: string): PathDecoder | undefined {
    if (name.endsWith(CHUNK_SUFFIX)) {
      const chunk = name.slice(0, -1);
      if (chunk === "" || chunk.startsWith(".")) return undefined;
      return new PathDecoder(this.segments, this.pending + chunk);
    }
    if (name === "" || name.startsWith(".") || name.endsWith(FILE_SUFFIX)) return undefined;
    const segment = decodeSegment(this.pending + name);
    if (segment === undefined) return undefined;
    return new PathDecoder([...this.segments, segment], "");
  }

  /** The key whose file is `name` in this directory, or `undefined`. */
  keyOfFile(name: string): string | undefined {
    if (!name.endsWith(FILE_SUFFIX) || name.startsWith(".")) return undefined;
    const segment = decodeSegment(this.pending + name.slice(0, -1));
    if (segment === undefined) return undefined;
    return [...this.segments, segment].join("/");
  }
}
