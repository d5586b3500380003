/**
 * Module paths and versions as the GOPROXY protocol writes them in URLs (pure; the rules of
 * golang.org/x/mod/module, which the go command applies before it asks a proxy):
 *
 * - A module path is slash-separated elements of ASCII letters, digits and `-._~`; no element is
 *   empty, made only of dots, starts with a dot or ends with one; the first element (a domain)
 *   holds only lower-case letters, digits, `-` and `.`, has a dot, and does not start with `-`.
 * - In a URL, each upper-case letter of a path or version is written `!` and the lower-case
 *   letter (`github.com/BurntSushi` → `github.com/!burnt!sushi`), so that case-insensitive file
 *   systems keep them apart. An escaped form holds no upper-case letter, and `!` only before a
 *   lower-case one.
 * - A canonical version is semver with a `v`, no build suffix but `+incompatible`:
 *   `v1.2.3`, `v0.0.0-20191109021931-daa7c04131f5`, `v2.0.0+incompatible`. Only those name
 *   content that never changes; `master` or `v1.2` are queries the proxy resolves (`.info`).
 *
 * Whatever passes these checks is made of `[a-z0-9.~_!+/-]` only: no `%`, no empty or dot
 * segment, nothing an upstream could read as another path.
 */

/** Longest module path the vault accepts (the go command has no limit; real ones are far shorter). */
const MAX_PATH_LENGTH = 512;
const MAX_VERSION_LENGTH = 256;

/** A module path, as written in go.mod and as written in URLs. */
export interface ModulePath {
  /** `example.com/Greeting` */
  readonly path: string;
  /** `example.com/!greeting` */
  readonly escaped: string;
}

/** `X` → `!x`; undefined when `text` has a `!` or a character outside ASCII (never escapable). */
export function escapeCase(text: string): string | undefined {
  if (/[!\u0080-\uffff]/.test(text)) return undefined;
  return text.replace(/[A-Z]/g, (upper) => `!${upper.toLowerCase()}`);
}

/** `!x` → `X`; undefined for an upper-case letter, a `!` not before a lower-case letter, or non-ASCII. */
export function unescapeCase(escaped: string): string | undefined {
  if (/[A-Z\u0080-\uffff]/.test(escaped) || /![^a-z]|!$/.test(escaped)) return undefined;
  return escaped.replace(/!([a-z])/g, (_match, lower: string) => lower.toUpperCase());
}

/** Why `path` is not a valid module path, or undefined when it is one. */
export function modulePathProblem(path: string): string | undefined {
  if (path.length === 0) return "empty module path";
  if (path.length > MAX_PATH_LENGTH) return `longer than ${MAX_PATH_LENGTH} characters`;
  const elements = path.split("/");
  for (const element of elements) {
    if (element === "") return "empty path element";
    if (!/^[A-Za-z0-9._~-]+$/.test(element)) return `invalid character in ${JSON.stringify(element)}`;
    if (/^\.+$/.test(element) || element.startsWith(".") || element.endsWith(".")) return `invalid path element ${JSON.stringify(element)}`;
  }
  const first = elements[0] ?? "";
  if (!/^[a-z0-9.-]+$/.test(first)) return "the first path element must be a lower-case domain name";
  if (!first.includes(".")) return "missing dot in the first path element";
  if (first.startsWith("-")) return "leading dash in the first path element";
  return undefined;
}

/** The module path an escaped URL path names; undefined when it is not a valid, validly escaped one. */
export function parseEscapedModulePath(escaped: string): ModulePath | undefined {
  const path = unescapeCase(escaped);
  if (path === undefined || modulePathProblem(path) !== undefined) return undefined;
  return { path, escaped };
}

/** A numeric semver identifier: no leading zero. */
const NUMBER = "(?:0|[1-9][0-9]*)";
/** A pre-release identifier: numeric without a leading zero, or alphanumeric with a letter or dash. */
const PRERELEASE_ID = `(?:${NUMBER}|[0-9A-Za-z-]*[A-Za-z-][0-9A-Za-z-]*)`;
const CANONICAL = new RegExp(`^v${NUMBER}\\.${NUMBER}\\.${NUMBER}(?:-${PRERELEASE_ID}(?:\\.${PRERELEASE_ID})*)?(?:\\+incompatible)?$`);

/** A version that names fixed content: canonical semver (`module.CanonicalVersion(v) == v`). */
export function isCanonicalVersion(version: string): boolean {
  return version.length <= MAX_VERSION_LENGTH && CANONICAL.test(version);
}

/**
 * A version query the vault passes on (`master`, `v1.2`, a commit hash): a single path element of
 * letters, digits and `-._~+`, not starting with a dot. The go command allows a few more
 * characters in queries; no real branch or tag name a proxy resolves needs them.
 */
export function isVersionQuery(version: string): boolean {
  return version.length > 0 && version.length <= MAX_VERSION_LENGTH && /^[A-Za-z0-9_~+-][A-Za-z0-9._~+-]*$/.test(version) && !version.endsWith(".");
}

/**
 * Whether a prefix of `path` (whole elements) matches one of the glob patterns, as GONOSUMDB and
 * GOPRIVATE match (`module.MatchPrefixPatterns`): `*` is any run of characters but `/`, `?` any
 * one character but `/`; `corp.example.com` covers `corp.example.com/x/y` too.
 */
export function matchesPrefixPattern(patterns: readonly string[], path: string): boolean {
  const elements = path.split("/");
  return patterns.some((pattern) => {
    const trimmed = pattern.replace(/\/+$/, "");
    if (trimmed === "") return false;
    const count = trimmed.split("/").length;
    if (elements.length < count) return false;
    return globRegExp(trimmed).test(elements.slice(0, count).join("/"));
  });
}

function globRegExp(pattern: string): RegExp {
  let source = "";
  for (const char of pattern) {
    if (char === "*") source += "[^/]*";
    else if (char === "?") source += "[^/]";
    else source += char.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  }
  return new RegExp(`^${source}$`);
}
