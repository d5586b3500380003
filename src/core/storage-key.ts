import { VaultError } from "./errors.js";

/** Longest key, in UTF-8 bytes, as S3 allows. */
export const MAX_KEY_BYTES = 1024;

/**
 * Checks an object key: any UTF-8 string of 1..1024 bytes without NUL. Keys are opaque names,
 * not paths: storage drivers must map them so that no key (`..`, `/abs`, `\`) can reach outside
 * their root. Lone surrogates cannot be encoded as UTF-8 and are refused.
 */
export function validateKey(key: string): string {
  if (key.length === 0) throw new VaultError("bad_request", "key must not be empty");
  if (key.includes("\0")) throw new VaultError("bad_request", "key must not contain NUL");
  if (!key.isWellFormed()) throw new VaultError("bad_request", "key must be valid UTF-8");
  const bytes = Buffer.byteLength(key, "utf8");
  if (bytes > MAX_KEY_BYTES) {
    throw new VaultError("bad_request", `key is ${bytes} bytes long; the limit is ${MAX_KEY_BYTES}`);
  }
  return key;
}
