import { VaultError } from "../../core/errors.js";

/**
 * What a path below a `rubygems` backend's prefix names, in a gem source's own URL shapes:
 *
 *     versions                                  the compact index: every gem's versions (append-only)
 *     names                                     the compact index: every gem's name
 *     info/<gem>                                the compact index: one gem's versions, dependencies, checksums
 *     gems/<gem>-<version>[-<platform>].gem     a gem
 *     quick/Marshal.4.8/<full name>.gemspec.rz  a gem's specification (deflated Marshal)
 *     specs.4.8.gz, latest_specs.4.8.gz, prerelease_specs.4.8.gz   the legacy full index
 *     api/v1/dependencies[.json]                the retired dependency API (`legacy-api`)
 *
 * Gem names, versions and platforms are `[A-Za-z0-9._-]`; a path holding anything else — `%`,
 * `..`, an empty segment, a name made of dots — is refused (400) before any upstream request.
 */
export type RubygemsPath =
  | { readonly kind: "versions" | "names" }
  | { readonly kind: "info"; readonly gem: string }
  | { readonly kind: "gem"; readonly file: GemFile }
  | { readonly kind: "quick"; readonly file: GemFile }
  | { readonly kind: "specs"; readonly file: (typeof SPECS_FILES)[number] }
  | { readonly kind: "legacy-api" };

/** A `.gem` or `.gemspec.rz` file's name: `<name>-<version>[-<platform>]`. */
export interface GemFile {
  /** `nokogiri-1.15.0-x86_64-linux` */
  readonly fullName: string;
  /**
   * The ways `fullName` splits into a gem name and the rest (`1.15.0-x86_64-linux`, the first
   * field of a line of `info/<gem>`), at each `-` before a digit, from the left; at most
   * `MAX_SPLITS`. The compact index tells which one names a published version.
   */
  readonly candidates: ReadonlyArray<{ readonly gem: string; readonly version: string }>;
}

export const SPECS_FILES = ["specs.4.8.gz", "latest_specs.4.8.gz", "prerelease_specs.4.8.gz"] as const;

/** RubyGems' own rule for names (`Gem::Specification::VALID_NAME_PATTERN`), minus a leading dot. */
const GEM_NAME = /^[A-Za-z0-9_-][A-Za-z0-9._-]*$/;
/** What a file name below `gems/` or `quick/` may hold. */
const FILE_CHARACTERS = /^[A-Za-z0-9._-]+$/;
const MAX_NAME_LENGTH = 256;
const MAX_SPLITS = 4;
/** The start of a version, after the gem name's `-`: a digit (`Gem::Version` begins with one). */
const VERSION_START = /-(?=[0-9])/g;

export function parseRubygemsPath(rawPath: string): RubygemsPath {
  if (rawPath.length > 1024) throw new VaultError("bad_request", "the path is too long");
  if (!/^[A-Za-z0-9._/-]*$/.test(rawPath)) throw new VaultError("bad_request", "invalid character in a gem source path (names, versions and platforms are [A-Za-z0-9._-])");
  const segments = rawPath.split("/");
  if (rawPath !== "" && segments.some((segment) => segment === "" || /^\.+$/.test(segment))) {
    throw new VaultError("bad_request", "empty, '.' or '..' segment in a gem source path");
  }
  const [first = "", second, third, ...rest] = segments;
  if (segments.length === 1) {
    if (first === "versions" || first === "names") return { kind: first };
    const specs = SPECS_FILES.find((file) => file === first);
    if (specs !== undefined) return { kind: "specs", file: specs };
  }
  if (segments.length === 2 && first === "info") return { kind: "info", gem: gemName(second ?? "") };
  if (segments.length === 2 && first === "gems") return { kind: "gem", file: gemFile(second ?? "", ".gem") };
  if (segments.length === 3 && first === "quick" && second === "Marshal.4.8") return { kind: "quick", file: gemFile(third ?? "", ".gemspec.rz") };
  if (rest.length === 0 && first === "api" && second === "v1" && (third === "dependencies" || third === "dependencies.json")) return { kind: "legacy-api" };
  throw new VaultError("not_found", `not a gem source path: ${rawPath} (the vault serves versions, names, info/<gem>, gems/<file>.gem, quick/Marshal.4.8/<file>.gemspec.rz and the specs.4.8.gz files)`);
}

function gemName(name: string): string {
  if (!GEM_NAME.test(name) || name.length > MAX_NAME_LENGTH) throw new VaultError("bad_request", `not a valid gem name: ${JSON.stringify(name)}`);
  return name;
}

/** `rack-3.0.8.gem` → its full name and the ways it splits into name and version (see `GemFile`). */
export function gemFile(file: string, extension: string): GemFile {
  const fullName = file.endsWith(extension) ? file.slice(0, -extension.length) : "";
  if (!FILE_CHARACTERS.test(fullName) || fullName.length > MAX_NAME_LENGTH) {
    throw new VaultError("bad_request", `not a valid gem file name: ${JSON.stringify(file)} (expected <name>-<version>[-<platform>]${extension})`);
  }
  const candidates: Array<{ gem: string; version: string }> = [];
  for (const match of fullName.matchAll(VERSION_START)) {
    const gem = fullName.slice(0, match.index);
    if (GEM_NAME.test(gem)) candidates.push({ gem, version: fullName.slice(match.index + 1) });
    if (candidates.length === MAX_SPLITS) break;
  }
  if (candidates.length === 0) throw new VaultError("bad_request", `not a valid gem file name: ${JSON.stringify(file)} (expected <name>-<version>[-<platform>]${extension})`);
  return { fullName, candidates };
}
