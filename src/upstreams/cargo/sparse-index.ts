import { VaultError } from "../../core/errors.js";

/**
 * Cargo's sparse registry protocol, as far as the vault reads it (pure, on text):
 *
 *     config.json                     {"dl": ..., "api": ...}: where `.crate` files are (the vault answers its own)
 *     1/<n>, 2/<n>, 3/<c>/<n>, <ab>/<cd>/<name>    a crate's index file: one JSON object a line, one a version
 *     crates/<crate>/<version>/download          a `.crate` file (the route the vault's own `dl` names)
 *
 * Names in index paths are lowercase (cargo lowercases them); each line of an index file gives a
 * version (`vers`), its dependencies and the SHA-256 of its `.crate` (`cksum`), which the vault
 * verifies a download against before it is cached.
 *
 * Crate names are ASCII letters, digits, `-` and `_` (at most 64); versions are semver's
 * `[0-9A-Za-z.+-]` beginning with a digit. A path holding anything else is refused (400) before
 * any upstream request.
 */
export type CargoPath =
  | { readonly kind: "config" }
  | { readonly kind: "index"; readonly name: string }
  | { readonly kind: "crate"; readonly name: string; readonly version: string };

const CRATE_NAME = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;
const VERSION = /^[0-9][0-9A-Za-z.+-]{0,127}$/;

/** The index file's path for a crate (`serde` → `se/rd/serde`), lowercase as cargo asks for it. */
export function indexPath(name: string): string {
  return `${namePrefix(name.toLowerCase())}/${name.toLowerCase()}`;
}

/** The directory part of an index path in the crate name's own case (cargo's `{prefix}` marker). */
export function namePrefix(name: string): string {
  if (name.length === 1) return "1";
  if (name.length === 2) return "2";
  if (name.length === 3) return `3/${name.slice(0, 1)}`;
  return `${name.slice(0, 2)}/${name.slice(2, 4)}`;
}

export function parseCargoPath(rawPath: string): CargoPath {
  if (rawPath.length > 512) throw new VaultError("bad_request", "the path is too long");
  if (!/^[A-Za-z0-9._/+-]*$/.test(rawPath)) throw new VaultError("bad_request", "invalid character in a cargo registry path (crate names are [A-Za-z0-9_-], versions [0-9A-Za-z.+-])");
  const segments = rawPath.split("/");
  if (rawPath !== "" && segments.some((segment) => segment === "" || /^\.+$/.test(segment))) throw new VaultError("bad_request", "empty, '.' or '..' segment in a cargo registry path");
  if (rawPath === "config.json") return { kind: "config" };
  if (segments.length === 4 && segments[0] === "crates" && segments[3] === "download") {
    return { kind: "crate", name: crateName(segments[1] ?? ""), version: crateVersion(segments[2] ?? "") };
  }
  const name = segments.at(-1) ?? "";
  if (segments.length >= 2 && segments.length <= 3 && CRATE_NAME.test(name)) {
    if (name !== name.toLowerCase()) throw new VaultError("bad_request", `index paths are lowercase: ${JSON.stringify(rawPath)}`);
    if (indexPath(name) === rawPath) return { kind: "index", name };
  }
  throw new VaultError("not_found", `not a cargo registry path: ${rawPath} (the vault serves config.json, index files such as se/rd/serde, and crates/<crate>/<version>/download)`);
}

function crateName(name: string): string {
  if (!CRATE_NAME.test(name)) throw new VaultError("bad_request", `not a valid crate name: ${JSON.stringify(name)}`);
  return name;
}

function crateVersion(version: string): string {
  if (!VERSION.test(version)) throw new VaultError("bad_request", `not a valid crate version: ${JSON.stringify(version)}`);
  return version;
}

/** A version's line in an index file, as far as a download needs it. */
export interface IndexedVersion {
  /** The crate's name as published (its case). */
  readonly name: string;
  /** The SHA-256 of the `.crate`, lowercase hex. */
  readonly cksum: string;
}

/** The line of `version` of crate `name` (any case) in an index file; undefined when none lists it. */
export function findVersion(indexFile: Buffer | string, name: string, version: string): IndexedVersion | undefined {
  const wanted = name.toLowerCase();
  for (const line of (typeof indexFile === "string" ? indexFile : indexFile.toString("utf8")).split("\n")) {
    if (line.trim() === "") continue;
    let entry: unknown;
    try {
      entry = JSON.parse(line);
    } catch {
      continue;
    }
    if (typeof entry !== "object" || entry === null) continue;
    const { name: listed, vers, cksum } = entry as Record<string, unknown>;
    if (typeof listed !== "string" || listed.toLowerCase() !== wanted || vers !== version) continue;
    if (typeof cksum !== "string" || !/^[0-9a-fA-F]{64}$/.test(cksum) || !CRATE_NAME.test(listed)) continue;
    return { name: listed, cksum: cksum.toLowerCase() };
  }
  return undefined;
}

const MARKERS = ["{crate}", "{version}", "{prefix}", "{lowerprefix}", "{sha256-checksum}"] as const;

/**
 * A `dl` value split into the upstream base URL (up to the last `/` before the first marker) and
 * the path template below it. Without markers, cargo appends `/{crate}/{version}/download`.
 */
export interface DownloadTemplate {
  readonly base: string;
  readonly path: string;
}

export function downloadTemplate(dl: string): DownloadTemplate {
  const template = MARKERS.some((marker) => dl.includes(marker)) ? dl : `${dl.replace(/\/+$/, "")}/{crate}/{version}/download`;
  const cut = template.lastIndexOf("/", template.indexOf("{")) + 1;
  return { base: template.slice(0, cut), path: template.slice(cut) };
}

/** What is wrong with a `dl` value; undefined when it is usable. */
export function checkDownloadTemplate(dl: string): string | undefined {
  const { base, path } = downloadTemplate(dl);
  if (!URL.canParse(base) || !/^https?:$/.test(new URL(base).protocol)) return "must be an http(s) URL, optionally with cargo's markers ({crate}, {version}, {prefix}, {lowerprefix}, {sha256-checksum})";
  if (new URL(base).search !== "" || /[?#]/.test(path)) return "cannot have a query or a fragment";
  const unknown = path.replace(/\{(crate|version|prefix|lowerprefix|sha256-checksum)\}/g, "").match(/[{}]/);
  if (unknown !== null) return "has a marker cargo does not know (it knows {crate}, {version}, {prefix}, {lowerprefix}, {sha256-checksum})";
  return undefined;
}

/** The path of a `.crate` below the template's base. */
export function downloadPath(template: DownloadTemplate, crate: IndexedVersion, version: string): string {
  return template.path
    .replaceAll("{crate}", crate.name)
    .replaceAll("{version}", version)
    .replaceAll("{prefix}", namePrefix(crate.name))
    .replaceAll("{lowerprefix}", namePrefix(crate.name.toLowerCase()))
    .replaceAll("{sha256-checksum}", crate.cksum);
}
