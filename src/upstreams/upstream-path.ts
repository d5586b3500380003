import { VaultError } from "../core/errors.js";

/**
 * Turning a client's path into an upstream URL without letting the client steer the vault to
 * another host, or above the base URL's path.
 *
 * Two steps, both always applied by the upstream client:
 * - `normaliseUpstreamPath` refuses (VaultError `bad_request`) every form that could escape the
 *   base URL or be read differently by the upstream than by us, and otherwise returns the path
 *   as the client sent it: percent-encodings of ordinary characters are kept as they are (never
 *   decoded and re-encoded), so the upstream sees what the client asked for.
 * - `joinUpstreamUrl` appends that path to the base URL's path and asserts that the result is
 *   still on the base URL's origin and below its path (VaultError `internal` otherwise: that
 *   can only be a bug, since normalised paths cannot do it).
 */

/** What a backend's upstream paths may hold beyond the common rules. */
export interface UpstreamPathRules {
  /**
   * The first segment may name an npm scope: `@scope` (then `/name/...`) or `@scope%2fname` (the
   * packument, as npm itself asks for it). Scope and name are npm's URL-safe characters and never
   * start with `.`, so the encoded slash joins two plain names and can reach nothing else.
   */
  readonly npmScopes?: boolean;
  /**
   * A segment after the first may join plain names with `%2F`: a Hugging Face revision such as
   * `refs%2Fpr%2F1`, which the hub's clients send as one segment. Each name is letters, digits,
   * `.`, `_` and `-` and never starts with `.`, so the encoded slash joins two plain names and can
   * reach nothing else.
   */
  readonly slashJoinedNames?: boolean;
}

/** `@scope` or `@scope%2fname`, each part npm's URL-safe characters, none starting with a dot. */
const NPM_SCOPE_SEGMENT = /^@[A-Za-z0-9~-][A-Za-z0-9._~-]*(?:%2[fF][A-Za-z0-9~-][A-Za-z0-9._~-]*)?$/;

/** Plain names joined by `%2F` (`refs%2Fpr%2F1`), none starting with a dot. */
const SLASH_JOINED_NAMES = /^[A-Za-z0-9_-][A-Za-z0-9._-]*(?:%2[fF][A-Za-z0-9_-][A-Za-z0-9._-]*)+$/;

/** Longer paths are refused: no artifact needs more, and it bounds the work done here. */
export const MAX_UPSTREAM_PATH_LENGTH = 4096;

/**
 * Checks a path taken from a request below a backend's prefix — still percent-encoded, without
 * the query string — and returns it as a safe relative path for `joinUpstreamUrl`.
 *
 * Refused (VaultError `bad_request`):
 * - a leading `/`, and empty segments (`a//b`): `//host` would be read as an authority;
 * - `.` and `..` segments, also percent-encoded (`%2e%2e`, `.%2E`), with trailing whitespace or
 *   a `;parameter` (`..;`, which Tomcat-like servers treat as `..`), as their full-width forms
 *   (`．．`, NFKC-equivalent to `..`), and any segment made only of dots (`...`);
 * - encoded slashes and backslashes (`%2f`, `%5c`) and raw backslashes: upstreams that decode
 *   them would see other segments than we checked;
 * - `@` and `:` in the first segment, raw or encoded (nothing may parse as userinfo or a scheme,
 *   e.g. `@evil.example/x` or `http:`), and `://` anywhere (absolute URLs);
 * - control characters and NUL, raw or encoded (`%00`, `%0a`), invalid percent-encoding (`%zz`,
 *   a lone `%`), encoded bytes that are not UTF-8 (overlong `%c0%ae` is an old `.` trick);
 * - `?` and `#`: a path cannot contain them raw (the caller passed a query or fragment by mistake);
 * - paths longer than `MAX_UPSTREAM_PATH_LENGTH`.
 *
 * With `rules.npmScopes`, a first segment `@scope` or `@scope%2fname` is accepted too; with
 * `rules.slashJoinedNames`, a later segment of plain names joined by `%2F` (`refs%2Fpr%2F1`).
 *
 * Accepted: an empty path (the base URL itself), a trailing `/` (index pages such as PyPI's
 * `simple/requests/`), `:` and `@` after the first segment (`blobs/sha256:...`), and
 * double-encoded forms such as `%252e%252e` or `%252f`: they decode once to the literal text
 * `%2e%2e` / `%2f`, which is a file name, not a dot segment or a slash — an upstream that
 * decoded twice would be broken in a way no proxy can fix, and it could still only reach paths
 * of its own host. Raw characters that are not allowed in a URL path (space, `"`, `<`, `>`,
 * `^`, `` ` ``, `{`, `|`, `}`, `[`, `]`, non-ASCII) are percent-encoded as UTF-8, so the result is
 * exactly what goes on the wire.
 */
export function normaliseUpstreamPath(rawPath: string, rules: UpstreamPathRules = {}): string {
  if (rawPath.length > MAX_UPSTREAM_PATH_LENGTH) refuse(`longer than ${MAX_UPSTREAM_PATH_LENGTH} characters`);
  if (rawPath.startsWith("/")) refuse("it must be relative (no leading '/')");
  if (rawPath.includes("://")) refuse("an absolute URL is not a path");

  const segments = encodeUnsafeCharacters(rawPath).split("/");
  segments.forEach((segment, index) => {
    const last = index === segments.length - 1;
    if (segment === "") {
      // Only the final segment may be empty: a trailing slash. (`""` alone is the base URL.)
      if (!last) refuse("empty path segment ('//')");
      return;
    }
    if (index === 0 && rules.npmScopes === true && NPM_SCOPE_SEGMENT.test(segment)) return;
    if (index > 0 && rules.slashJoinedNames === true && SLASH_JOINED_NAMES.test(segment)) return;
    checkSegment(segment, index === 0);
  });
  return segments.join("/");
}

/**
 * The upstream URL for a normalised relative path: the base URL's origin, its path with a `/`
 * appended if it has none, then `relativePath`. Base `https://h/dist` + `a/b.tgz` gives
 * `https://h/dist/a/b.tgz`. The base URL's userinfo, query and fragment are not carried over.
 *
 * Asserts (VaultError `internal`) that the result is on the base's origin and below its path —
 * defence in depth: a path that slipped past `normaliseUpstreamPath` cannot leave either.
 */
export function joinUpstreamUrl(baseUrl: string, relativePath: string): URL {
  const base = parseBaseUrl(baseUrl);
  const prefix = base.pathname.endsWith("/") ? base.pathname : `${base.pathname}/`;
  const url = new URL(base.origin);
  url.pathname = prefix + relativePath;
  // The pathname setter cannot change the origin; the check stays so a future refactor can't either.
  if (url.origin !== base.origin) {
    throw new VaultError("internal", `upstream URL ${url.origin} left the base URL's origin ${base.origin}`);
  }
  if (!url.pathname.startsWith(prefix)) {
    throw new VaultError("internal", `upstream path ${url.pathname} left the base URL's path ${prefix}`);
  }
  return url;
}

/** A base URL as the upstream client accepts it: http or https, absolute. */
export function parseBaseUrl(baseUrl: string): URL {
  let base: URL;
  try {
    base = new URL(baseUrl);
  } catch (error) {
    throw new VaultError("internal", `upstream base URL is not a valid URL: ${baseUrl}`, { cause: error });
  }
  if (base.protocol !== "http:" && base.protocol !== "https:") {
    throw new VaultError("internal", `upstream base URL must be http or https: ${base.protocol}`);
  }
  return base;
}

function refuse(why: string): never {
  throw new VaultError("bad_request", `invalid upstream path: ${why}`);
}

/** Characters kept raw: RFC 3986 `pchar` (unreserved, sub-delims, `:`, `@`), `/`, and `%` (checked later). */
const RAW_ALLOWED = /^[A-Za-z0-9\-._~!$&'()*+,;=:@/%]$/;

function encodeUnsafeCharacters(path: string): string {
  let out = "";
  for (const char of path) {
    const code = char.codePointAt(0) ?? 0;
    if (code < 0x20 || code === 0x7f || (code >= 0x80 && code < 0xa0)) refuse("control character");
    if (char === "\\") refuse("backslash");
    if (char === "?" || char === "#") refuse(`'${char}' (a query or fragment is not part of the path)`);
    if (RAW_ALLOWED.test(char)) {
      out += char;
      continue;
    }
    try {
      out += encodeURIComponent(char);
    } catch (error) {
      // A lone surrogate has no UTF-8 encoding.
      throw new VaultError("bad_request", "invalid upstream path: not valid Unicode", { cause: error });
    }
  }
  return out;
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

function checkSegment(segment: string, first: boolean): void {
  const decoded = percentDecode(segment);
  for (const char of decoded) {
    const code = char.codePointAt(0) ?? 0;
    if (code < 0x20 || code === 0x7f || (code >= 0x80 && code < 0xa0)) refuse("encoded control character or NUL");
  }
  // NFKC folds look-alikes some servers fold too: full-width `．` to `.`, `／` to `/`, `＼` to `\`.
  for (const form of [decoded, decoded.normalize("NFKC")]) {
    if (form.includes("/")) refuse("encoded slash ('%2f')");
    if (form.includes("\\")) refuse("encoded backslash ('%5c')");
    const beforeParameters = form.split(";", 1)[0] ?? "";
    if (/^\.+\s*$/.test(beforeParameters)) refuse("'.' or '..' segment");
    if (first && (form.includes("@") || form.includes(":"))) {
      refuse("'@' or ':' in the first segment (it could be read as userinfo or a scheme)");
    }
  }
}

/** Decodes `%XX` escapes as UTF-8; refuses a malformed escape or bytes that are not UTF-8. */
function percentDecode(segment: string): string {
  if (!segment.includes("%")) return segment;
  const bytes: number[] = [];
  for (let i = 0; i < segment.length; i++) {
    const char = segment.charCodeAt(i);
    if (char !== 0x25) {
      // Only ASCII is left raw by encodeUnsafeCharacters.
      bytes.push(char);
      continue;
    }
    const hex = segment.slice(i + 1, i + 3);
    if (!/^[0-9A-Fa-f]{2}$/.test(hex)) refuse("invalid percent-encoding");
    bytes.push(Number.parseInt(hex, 16));
    i += 2;
  }
  try {
    return utf8.decode(Uint8Array.from(bytes));
  } catch (error) {
    throw new VaultError("bad_request", "invalid upstream path: percent-encoded bytes are not UTF-8", { cause: error });
  }
}
