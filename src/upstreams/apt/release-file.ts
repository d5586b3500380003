/**
 * Reading a suite's `Release` (or the signed text of its `InRelease`): the index files it
 * lists with their sizes and digests. The vault does not check the OpenPGP signature — apt does,
 * on the bytes the vault passes through untouched; the vault reads the list only to know which
 * cached files are which index, and what they must hash to. Pure.
 */

export interface ReleaseEntry {
  /** Relative to the suite's directory: `main/binary-amd64/Packages.xz`. */
  readonly name: string;
  readonly size: number;
  /** Lowercase hex, when the Release has a `SHA256` section listing it. */
  readonly sha256: string | undefined;
  /** Lowercase hex, when the Release has a `SHA512` section listing it. */
  readonly sha512: string | undefined;
}

export interface ReleaseIndex {
  /** The `Date` field (when the archive was published), in ms since the epoch; undefined when absent or unreadable. */
  readonly date: number | undefined;
  /** `Acquire-By-Hash: yes`: apt fetches the listed indexes as `<dir>/by-hash/<ALGO>/<hex>`. */
  readonly acquireByHash: boolean;
  /** By `name`. */
  readonly entries: ReadonlyMap<string, ReleaseEntry>;
}

const CLEARSIGN_START = "-----BEGIN PGP SIGNED MESSAGE-----";
const SIGNATURE_START = "-----BEGIN PGP SIGNATURE-----";

/**
 * The signed text of an OpenPGP clearsigned message (RFC 4880 §7): after the armor header and
 * its `Hash:` lines, up to the signature, dash-escaping (`- `) undone. Text that is not
 * clearsigned (a plain `Release`) is returned as it is.
 */
export function clearsignedText(text: string): string {
  const lines = text.split(/\r?\n/);
  const start = lines.findIndex((line) => line.trimEnd() === CLEARSIGN_START);
  if (start === -1) return text;
  let index = start + 1;
  // Armor headers (`Hash: SHA256`) end at the first empty line.
  while (index < lines.length && (lines[index] ?? "").trim() !== "") index++;
  const body: string[] = [];
  for (index++; index < lines.length; index++) {
    const line = lines[index] ?? "";
    if (line.trimEnd() === SIGNATURE_START) break;
    body.push(line.startsWith("- ") ? line.slice(2) : line);
  }
  return `${body.join("\n")}\n`;
}

/** Parses a Release file's first paragraph (or an InRelease, signature stripped). Unknown fields are ignored. */
export function parseRelease(text: string): ReleaseIndex {
  const fields = firstParagraphFields(clearsignedText(text));
  const entries = new Map<string, { size: number; sha256?: string; sha512?: string }>();
  for (const [field, algorithm] of [
    ["sha256", "sha256"],
    ["sha512", "sha512"],
  ] as const) {
    for (const line of (fields.get(field) ?? "").split("\n")) {
      const [hex, size, name] = line.trim().split(/\s+/);
      if (hex === undefined || size === undefined || name === undefined || !/^[0-9A-Fa-f]+$/.test(hex) || !/^\d+$/.test(size)) continue;
      const entry = entries.get(name) ?? { size: Number(size) };
      entry[algorithm] = hex.toLowerCase();
      entries.set(name, entry);
    }
  }
  const date = Date.parse(fields.get("date") ?? "");
  return {
    date: Number.isNaN(date) ? undefined : date,
    acquireByHash: (fields.get("acquire-by-hash") ?? "").trim().toLowerCase() === "yes",
    entries: new Map([...entries].map(([name, entry]) => [name, { name, size: entry.size, sha256: entry.sha256, sha512: entry.sha512 }])),
  };
}

/**
 * The fields of a deb822 text's first paragraph, by lowercase name. A value keeps its
 * continuation lines, joined by `\n` (the first line is what follows the colon).
 */
export function firstParagraphFields(text: string): Map<string, string> {
  const fields = new Map<string, string>();
  let current: string | undefined;
  let started = false;
  for (const raw of text.split("\n")) {
    const line = raw.endsWith("\r") ? raw.slice(0, -1) : raw;
    if (line.trim() === "") {
      if (started) break;
      continue;
    }
    if (line.startsWith("#")) continue;
    started = true;
    if (line.startsWith(" ") || line.startsWith("\t")) {
      if (current !== undefined) fields.set(current, `${fields.get(current) ?? ""}\n${line}`);
      continue;
    }
    const colon = line.indexOf(":");
    if (colon <= 0) {
      current = undefined;
      continue;
    }
    current = line.slice(0, colon).trim().toLowerCase();
    fields.set(current, line.slice(colon + 1).trim());
  }
  return fields;
}
