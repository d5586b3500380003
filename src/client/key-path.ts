/**
 * Object keys in URLs. The server decodes the path after `/objects/` exactly once, so any key
 * round-trips as long as every character that is not unreserved is percent-encoded.
 */

/**
 * Encodes a key for `/objects/{key}`: each `/`-separated segment with `encodeURIComponent`, plus
 * `!'()*` (which it leaves alone), so spaces, `%`, `#`, `?`, `+`, non-ASCII and emoji all survive.
 * Segments that are exactly `.` or `..` are encoded too (`%2E`), so no proxy or URL library on the
 * way can collapse them as dot-segments.
 */
export function encodeKeyPath(key: string): string {
  checkKey(key);
  return key.split("/").map(encodeSegment).join("/");
}

/** Refuses what cannot name an object before a request is made. Length and NUL are the server's call. */
export function checkKey(key: string): void {
  if (typeof key !== "string" || key.length === 0) throw new TypeError("an object key must be a non-empty string");
  if (!key.isWellFormed()) throw new TypeError("an object key must be valid Unicode (it has a lone surrogate)");
}

function encodeSegment(segment: string): string {
  if (segment === "." || segment === "..") return segment.replaceAll(".", "%2E");
  return encodeURIComponent(segment).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}
