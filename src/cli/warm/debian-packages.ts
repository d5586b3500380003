/**
 * What `cache warm --apt` reads from an APT mirror: the suite's `Release` (which index files
 * exist, their SHA256, and whether they are served by hash), the `Packages` index (which pool
 * file holds each package's versions), and dpkg's version order to pick the newest. Pure; the
 * index is read line by line as it arrives (Debian's main `Packages` is ~45 MB of text), and
 * only the stanzas of the packages asked for are kept.
 */
import { StringDecoder } from "node:string_decoder";

// ------------------------------------------------------------------------------------------------
// Release

export interface ReleaseIndexes {
  /** `Acquire-By-Hash: yes`: apt fetches indexes as `<dir>/by-hash/SHA256/<hex>`. */
  readonly byHash: boolean;
  /** Index files by their name below `dists/<suite>/` (`main/binary-amd64/Packages.xz`) → SHA256. */
  readonly sha256: ReadonlyMap<string, string>;
}

/** Reads a `Release` or a clearsigned `InRelease`. */
export function parseRelease(text: string): ReleaseIndexes {
  const sha256 = new Map<string, string>();
  let byHash = false;
  let inSha256 = false;
  for (const line of text.split(/\r?\n/)) {
    if (line.startsWith("-----BEGIN PGP SIGNATURE")) break;
    if (/^\S/.test(line)) {
      inSha256 = /^SHA256:\s*$/i.test(line);
      const field = /^Acquire-By-Hash:\s*(\S+)/i.exec(line);
      if (field !== null) byHash = field[1]?.toLowerCase() === "yes";
      continue;
    }
    if (!inSha256) continue;
    const [hex, size, name] = line.trim().split(/\s+/);
    if (hex !== undefined && /^[0-9a-fA-F]{64}$/.test(hex) && size !== undefined && name !== undefined) sha256.set(name, hex.toLowerCase());
  }
  return { byHash, sha256 };
}

/** Compressions of `Packages` the vault's client can read, in the order apt prefers them. */
export const PACKAGES_FILES = ["Packages.xz", "Packages.gz", "Packages"] as const;

// ------------------------------------------------------------------------------------------------
// Packages

export interface PackageStanza {
  readonly name: string;
  readonly version: string;
  readonly architecture: string;
  /** Relative to the mirror's root: `pool/main/h/hello/hello_2.10-3_amd64.deb`. */
  readonly filename: string;
  readonly size: number | undefined;
}

/** Collects the stanzas of the wanted packages from a `Packages` index pushed in chunks. */
export class PackagesScanner {
  readonly #wanted: ReadonlySet<string>;
  readonly #decoder = new StringDecoder("utf8");
  readonly #found = new Map<string, PackageStanza[]>();
  #partial = "";
  #fields = new Map<string, string>();
  #current: string | undefined;

  constructor(wanted: Iterable<string>) {
    this.#wanted = new Set(wanted);
  }

  push(chunk: Buffer): void {
    const text = this.#partial + this.#decoder.write(chunk);
    const lines = text.split("\n");
    this.#partial = lines.pop() ?? "";
    for (const line of lines) this.#line(line);
  }

  end(): void {
    const rest = this.#partial + this.#decoder.end();
    this.#partial = "";
    if (rest !== "") this.#line(rest);
    this.#endStanza();
  }

  /** Every stanza found for each wanted package. */
  get found(): ReadonlyMap<string, readonly PackageStanza[]> {
    return this.#found;
  }

  #line(raw: string): void {
    const line = raw.endsWith("\r") ? raw.slice(0, -1) : raw;
    if (line.trim() === "") {
      this.#endStanza();
      return;
    }
    if (line.startsWith(" ") || line.startsWith("\t") || line.startsWith("#")) return;
    const colon = line.indexOf(":");
    if (colon === -1) return;
    const field = line.slice(0, colon).toLowerCase();
    if (field !== "package" && field !== "version" && field !== "architecture" && field !== "filename" && field !== "size") return;
    const value = line.slice(colon + 1).trim();
    // Only stanzas of wanted packages are kept (`Package:` comes first in every index).
    if (field === "package") this.#current = this.#wanted.has(value) ? value : undefined;
    if (this.#current !== undefined) this.#fields.set(field, value);
  }

  #endStanza(): void {
    const name = this.#current;
    const fields = this.#fields;
    this.#current = undefined;
    this.#fields = new Map();
    if (name === undefined) return;
    const version = fields.get("version");
    const filename = fields.get("filename");
    if (version === undefined || filename === undefined) return;
    const size = fields.get("size");
    const stanza: PackageStanza = { name, version, architecture: fields.get("architecture") ?? "", filename, size: size !== undefined && /^\d+$/.test(size) ? Number(size) : undefined };
    this.#found.set(name, [...(this.#found.get(name) ?? []), stanza]);
  }
}

/** The stanza of the newest version (dpkg's order), or of `version` when given. */
export function pickVersion(stanzas: readonly PackageStanza[], version?: string): PackageStanza | undefined {
  if (version !== undefined) return stanzas.find((stanza) => compareDebianVersions(stanza.version, version) === 0);
  let newest: PackageStanza | undefined;
  for (const stanza of stanzas) if (newest === undefined || compareDebianVersions(stanza.version, newest.version) > 0) newest = stanza;
  return newest;
}

// ------------------------------------------------------------------------------------------------
// Versions

/** dpkg's order of `[epoch:]upstream[-revision]`: negative, zero or positive, as `a` sorts before, with or after `b`. */
export function compareDebianVersions(a: string, b: string): number {
  const left = splitVersion(a);
  const right = splitVersion(b);
  if (left.epoch !== right.epoch) return left.epoch - right.epoch;
  return compareFragments(left.upstream, right.upstream) || compareFragments(left.revision, right.revision);
}

function splitVersion(version: string): { epoch: number; upstream: string; revision: string } {
  let rest = version.trim();
  let epoch = 0;
  const colon = rest.indexOf(":");
  if (colon !== -1 && /^\d+$/.test(rest.slice(0, colon))) {
    epoch = Number(rest.slice(0, colon));
    rest = rest.slice(colon + 1);
  }
  const dash = rest.lastIndexOf("-");
  return dash === -1 ? { epoch, upstream: rest, revision: "" } : { epoch, upstream: rest.slice(0, dash), revision: rest.slice(dash + 1) };
}

const isDigit = (char: string | undefined): boolean => char !== undefined && char >= "0" && char <= "9";

/** A character's weight in the non-digit parts: `~` before the end, the end before letters, letters before the rest. */
function weight(char: string | undefined): number {
  if (char === undefined || isDigit(char)) return 0;
  if (/[A-Za-z]/.test(char)) return char.charCodeAt(0);
  if (char === "~") return -1;
  return char.charCodeAt(0) + 256;
}

/** dpkg's `verrevcmp`: non-digit runs compared by weight, digit runs as numbers, alternately. */
function compareFragments(a: string, b: string): number {
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    while ((i < a.length && !isDigit(a[i])) || (j < b.length && !isDigit(b[j]))) {
      const difference = weight(a[i]) - weight(b[j]);
      if (difference !== 0) return difference;
      i++;
      j++;
    }
    while (a[i] === "0") i++;
    while (b[j] === "0") j++;
    let firstDifference = 0;
    while (isDigit(a[i]) && isDigit(b[j])) {
      if (firstDifference === 0) firstDifference = a.charCodeAt(i) - b.charCodeAt(j);
      i++;
      j++;
    }
    if (isDigit(a[i])) return 1;
    if (isDigit(b[j])) return -1;
    if (firstDifference !== 0) return firstDifference;
  }
  return 0;
}
