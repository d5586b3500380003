import { VaultError } from "../../core/errors.js";
import { isCanonicalVersion, isVersionQuery, parseEscapedModulePath, unescapeCase, type ModulePath } from "./module-path.js";
import { parseTilePath, type Tile } from "./sumdb-tlog.js";

/**
 * What a path below a `go` backend's prefix names, in the GOPROXY protocol's URL shapes:
 *
 *     <module>/@v/list                    known versions                 (mutable)
 *     <module>/@latest                    the latest version's .info     (mutable)
 *     <module>/@v/<version>.info          a version's time, or a query's resolution
 *     <module>/@v/<version>.mod           its go.mod                     (canonical versions only)
 *     <module>/@v/<version>.zip           its content                    (canonical versions only)
 *     sumdb/<name>/supported              whether the vault proxies that checksum database
 *     sumdb/<name>/latest                 its signed tree head           (mutable)
 *     sumdb/<name>/lookup/<module>@<version>   a record and a tree head  (mutable)
 *     sumdb/<name>/tile/8/<L>/<N>[.p/<W>]      tiles                     (full ones immutable)
 *
 * Module paths and versions are case-escaped (`!` + lower case for upper case); the go command
 * also percent-encodes the `!` (`%21`). Anything else — `..`, empty elements, `%2f`, an
 * unescaped capital, a version that is no valid file name — is refused (400) here, before any
 * upstream is asked.
 */
export type GoPath =
  | { readonly kind: "list" | "latest"; readonly module: ModulePath }
  | { readonly kind: "info" | "mod" | "zip"; readonly module: ModulePath; readonly version: Version }
  | { readonly kind: "sumdb"; readonly name: string; readonly request: SumdbRequest };

export interface Version {
  /** `v1.0.0-RC1` */
  readonly version: string;
  /** `v1.0.0-!r!c1` */
  readonly escaped: string;
  /** Names fixed content (canonical semver), not a query such as `master`. */
  readonly canonical: boolean;
}

export type SumdbRequest =
  | { readonly kind: "supported" }
  | { readonly kind: "latest" }
  | { readonly kind: "lookup"; readonly module: ModulePath; readonly version: Version }
  | { readonly kind: "tile"; readonly tile: Tile; readonly path: string };

/** Characters a GOPROXY or sumdb path may hold once `%XX` is decoded (`+`: `+incompatible`). */
const PATH_CHARACTERS = /^[a-z0-9._~!+@/-]*$/;

/** Parses a raw request path (still percent-encoded, without the query). */
export function parseGoPath(rawPath: string): GoPath {
  const path = decode(rawPath);
  if (path.startsWith("sumdb/")) return parseSumdbPath(path.slice("sumdb/".length));
  const at = path.indexOf("/@");
  if (at < 0) throw new VaultError("not_found", "a GOPROXY path is <module>/@v/list, <module>/@latest or <module>/@v/<version>.info|.mod|.zip");
  const module = modulePath(path.slice(0, at));
  const rest = path.slice(at + 1);
  if (rest === "@v/list") return { kind: "list", module };
  if (rest === "@latest") return { kind: "latest", module };
  const file = /^@v\/([^/]+)\.(info|mod|zip)$/.exec(rest);
  if (file === null) throw new VaultError("not_found", `not a GOPROXY path: ${rest}`);
  const version = parseVersion(file[1] ?? "");
  const kind = file[2] as "info" | "mod" | "zip";
  // The go command asks only for canonical versions' .mod and .zip; a query resolves via .info.
  if (kind !== "info" && !version.canonical) throw new VaultError("not_found", `${version.version} is not a canonical version: ask for its .info to resolve it`);
  return { kind, module, version };
}

function parseSumdbPath(path: string): GoPath {
  // The name is a host, optionally with a path (`sum.golang.org`, `sumdb.example.com/go`): the
  // request's kind is found from the end.
  const patterns: ReadonlyArray<[RegExp, (match: RegExpExecArray) => SumdbRequest]> = [
    [/^(.+)\/supported$/, () => ({ kind: "supported" })],
    [/^(.+)\/latest$/, () => ({ kind: "latest" })],
    [
      /^(.+?)\/lookup\/([^@]+)@([^@/]+)$/,
      (match) => {
        const version = parseVersion(match[3] ?? "");
        if (!version.canonical) throw new VaultError("bad_request", `invalid module@version syntax: ${version.version} is not a canonical version`);
        return { kind: "lookup", module: modulePath(match[2] ?? ""), version };
      },
    ],
    [
      /^(.+?)\/(tile\/.+)$/,
      (match) => {
        const tilePath = match[2] ?? "";
        const tile = parseTilePath(tilePath);
        if (tile === undefined) throw new VaultError("bad_request", `invalid tile path: ${tilePath}`);
        return { kind: "tile", tile, path: tilePath };
      },
    ],
  ];
  for (const [pattern, request] of patterns) {
    const match = pattern.exec(path);
    if (match === null) continue;
    const name = match[1] ?? "";
    if (!isSumdbName(name)) throw new VaultError("bad_request", `not a checksum database name: ${name}`);
    return { kind: "sumdb", name, request: request(match) };
  }
  throw new VaultError("not_found", "a checksum database path is sumdb/<name>/supported, latest, lookup/<module>@<version> or tile/...");
}

/** A checksum database name: a host name, optionally followed by a path (`host[/path]`). */
export function isSumdbName(name: string): boolean {
  return /^[a-z0-9-]+(?:\.[a-z0-9-]+)+(?:\/[a-z0-9._~-]+)*$/.test(name) && !name.split("/").some((element) => /^\.+$/.test(element));
}

function modulePath(escaped: string): ModulePath {
  const module = parseEscapedModulePath(escaped);
  if (module === undefined) throw new VaultError("bad_request", `not a valid escaped module path: ${escaped}`);
  return module;
}

function parseVersion(escaped: string): Version {
  const version = unescapeCase(escaped);
  if (version === undefined || !isVersionQuery(version)) throw new VaultError("bad_request", `not a valid escaped version: ${escaped}`);
  return { version, escaped, canonical: isCanonicalVersion(version) };
}

/**
 * The path with `%XX` decoded, as long as each decodes to a character a GOPROXY path may hold:
 * `%21` (`!`, which the go command encodes) and the like. An encoded `/`, `%`, `.` segment or
 * anything outside `[a-z0-9._~!+@/-]` is refused, raw or encoded.
 */
function decode(rawPath: string): string {
  const decoded = rawPath.replace(/%([0-9A-Fa-f]{2})/g, (_match, hex: string) => {
    const char = String.fromCharCode(Number.parseInt(hex, 16));
    if (char === "/" || char === "%" || !PATH_CHARACTERS.test(char)) throw new VaultError("bad_request", `invalid character in a GOPROXY path: %${hex}`);
    return char;
  });
  if (!PATH_CHARACTERS.test(decoded)) {
    throw new VaultError("bad_request", /[A-Z]/.test(decoded) ? "module paths and versions are case-escaped in URLs: write an upper-case letter X as !x" : "invalid character in a GOPROXY path");
  }
  if (decoded.length > 2048) throw new VaultError("bad_request", "the path is too long");
  return decoded;
}
