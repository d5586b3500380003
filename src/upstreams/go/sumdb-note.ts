import { createHash, createPublicKey, verify, type KeyObject } from "node:crypto";

/**
 * The Go checksum database's signed notes (golang.org/x/mod/sumdb/note), pure:
 *
 * - A verifier key, as GOSUMDB gives it: `<name>+<hash>+<key>`, where `<key>` is base64 of the
 *   algorithm byte (1: Ed25519) and the 32-byte public key, and `<hash>` the first 4 bytes of
 *   SHA-256(`<name>\n` + those bytes), in hex.
 * - A signed note: text ending in a newline, a blank line, then signature lines
 *   `— <name> <base64(4-byte key hash + 64-byte signature of the text)>`.
 * - The tree head a note carries: `go.sum database tree\n<size>\n<base64 root hash>\n`.
 */

export interface VerifierKey {
  readonly name: string;
  /** The key hash, as a signature line names it. */
  readonly hash: number;
  readonly publicKey: KeyObject;
  /** The key as given (`<name>+<hash>+<key>`). */
  readonly text: string;
}

/** The verifier keys the go command knows by name alone (cmd/go/internal/modfetch/key.go). */
export const KNOWN_SUMDB_KEYS: Readonly<Record<string, string>> = {
  "sum.golang.org": "sum.golang.org+033de0ae+Ac4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8OuAn8",
};

const ED25519 = 1;

/** Parses a verifier key; a string saying what is wrong with it otherwise. */
export function parseVerifierKey(text: string): VerifierKey | string {
  // As the go command reads it: the name up to the first `+`, the hash up to the next; the key's
  // base64 may hold `+` itself.
  const match = /^([^+]*)\+([^+]*)\+(.*)$/s.exec(text);
  const [, name = "", hashHex = "", keyBase64 = ""] = match ?? [];
  if (match === null || !isValidName(name)) return "a verifier key is <name>+<hash>+<key>";
  if (!/^[0-9a-f]{8}$/.test(hashHex)) return "the key hash must be 8 lower-case hex digits";
  const key = Buffer.from(keyBase64, "base64");
  if (key.toString("base64") !== keyBase64 || key.length !== 33 || key[0] !== ED25519) return "the key must be base64 of an Ed25519 public key";
  const hash = Number.parseInt(hashHex, 16);
  if (keyHash(name, key) !== hash) return "the key hash does not match the name and key";
  const publicKey = createPublicKey({ key: { kty: "OKP", crv: "Ed25519", x: key.subarray(1).toString("base64url") }, format: "jwk" });
  return { name, hash, publicKey, text };
}

/** First 4 bytes (big-endian) of SHA-256(name + "\n" + algorithm byte + public key). */
export function keyHash(name: string, key: Uint8Array): number {
  return createHash("sha256").update(`${name}\n`).update(key).digest().readUInt32BE(0);
}

/** Note and key names: non-empty, no whitespace, no `+`. */
function isValidName(name: string): boolean {
  return name.length > 0 && !/[\s+]/.test(name) && /^[\x21-\x7e]+$/.test(name);
}

/**
 * The text of a signed note when `key` signed it; undefined when the note is malformed or carries
 * no valid signature of that key (other signatures are ignored, as the go command does).
 */
export function openSignedNote(note: Buffer, key: VerifierKey): Buffer | undefined {
  const split = note.lastIndexOf("\n\n");
  if (split < 0) return undefined;
  const text = note.subarray(0, split + 1);
  const signatures = note.subarray(split + 2).toString("utf8");
  if (!signatures.endsWith("\n")) return undefined;
  for (const line of signatures.slice(0, -1).split("\n")) {
    const match = /^— (\S+) ([A-Za-z0-9+/]+={0,2})$/.exec(line);
    if (match === null) return undefined;
    if (match[1] !== key.name) continue;
    const signature = Buffer.from(match[2] ?? "", "base64");
    if (signature.length !== 68 || signature.readUInt32BE(0) !== key.hash) continue;
    if (verify(null, text, key.publicKey, signature.subarray(4))) return text;
  }
  return undefined;
}

export interface TreeHead {
  readonly size: number;
  /** The root hash, 32 bytes. */
  readonly hash: Buffer;
}

/** Parses a tree head note's text; undefined when it is not one. Lines after the third are ignored. */
export function parseTreeHead(text: Buffer): TreeHead | undefined {
  const lines = text.toString("utf8").split("\n");
  if (lines.length < 4 || lines[0] !== "go.sum database tree") return undefined;
  const sizeText = lines[1] ?? "";
  if (!/^(?:0|[1-9][0-9]{0,15})$/.test(sizeText)) return undefined;
  const size = Number(sizeText);
  const hash = Buffer.from(lines[2] ?? "", "base64");
  if (!Number.isSafeInteger(size) || hash.length !== 32 || hash.toString("base64") !== lines[2]) return undefined;
  return { size, hash };
}

/** A lookup answer: `<id>\n<record text>\n<signed tree note>`, where the record text ends in a newline. */
export interface LookupAnswer {
  readonly id: number;
  readonly record: Buffer;
  readonly signedTree: Buffer;
}

export function parseLookupAnswer(body: Buffer): LookupAnswer | undefined {
  const newline = body.indexOf("\n");
  if (newline < 0) return undefined;
  const idText = body.subarray(0, newline).toString("latin1");
  if (!/^(?:0|[1-9][0-9]{0,15})$/.test(idText)) return undefined;
  const rest = body.subarray(newline + 1);
  const end = rest.indexOf("\n\n");
  if (end < 0) return undefined;
  return { id: Number(idText), record: rest.subarray(0, end + 1), signedTree: rest.subarray(end + 2) };
}

/**
 * The `h1:` hashes a record lists for `path@version`: `<path> <version> h1:...` (the zip) and
 * `<path> <version>/go.mod h1:...`; undefined when the record is about something else.
 */
export function recordHashes(record: Buffer, path: string, version: string): { zip: string | undefined; mod: string | undefined } | undefined {
  let zip: string | undefined;
  let mod: string | undefined;
  for (const line of record.toString("utf8").split("\n")) {
    if (line === "") continue;
    const [linePath, lineVersion, hash, ...rest] = line.split(" ");
    if (rest.length > 0 || linePath !== path || hash === undefined) return undefined;
    if (!hash.startsWith("h1:")) continue;
    if (lineVersion === version) zip = hash;
    else if (lineVersion === `${version}/go.mod`) mod = hash;
    else return undefined;
  }
  return { zip, mod };
}
