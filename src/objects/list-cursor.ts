import { VaultError } from "../core/errors.js";

/**
 * The list cursor is opaque to clients; as in the source design it is base64 of
 * `{"last_key": ...}`. Listing resumes strictly after `last_key`, so a cursor stays valid even
 * if that key has been deleted since. We emit URL-safe base64 (no `+` or `/` that a careless
 * client might leave unescaped in a query string) and accept both alphabets, with or without
 * padding; a space is read as `+`, since form decoding turns an unescaped `+` into one.
 */
export function encodeCursor(lastKey: string): string {
  return Buffer.from(JSON.stringify({ last_key: lastKey }), "utf8").toString("base64url");
}

export function decodeCursor(cursor: string): string {
  const normalised = cursor.trim().replaceAll(" ", "+");
  if (!/^[A-Za-z0-9+/_-]+={0,2}$/.test(normalised)) throw malformed();
  let parsed: unknown;
  try {
    const json = Buffer.from(normalised.replaceAll("-", "+").replaceAll("_", "/"), "base64").toString("utf8");
    parsed = JSON.parse(json);
  } catch {
    throw malformed();
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) throw malformed();
  const lastKey = (parsed as Record<string, unknown>)["last_key"];
  if (typeof lastKey !== "string") throw malformed();
  return lastKey;
}

function malformed(): VaultError {
  return new VaultError("bad_request", "malformed cursor: pass back the next_cursor of a previous page");
}
