/**
 * Line-level edits of other programs' configuration files (pip's INI, npm's npmrc, uv's and
 * containerd's TOML, JSON), for `setup --write`: replace or add the vault's keys and tables and
 * leave every other line — comments, order, spacing, line endings — exactly as it was. Pure
 * functions over text; no parser that would rewrite the whole file is used on purpose.
 */
import { CliError } from "./failure.js";

export interface Lines {
  readonly lines: string[];
  /** The file's line ending (`\r\n` if its first line ends so). */
  readonly eol: string;
}

export function splitLines(text: string | undefined): Lines {
  if (text === undefined || text === "") return { lines: [], eol: "\n" };
  const eol = /\r\n/.test(text.slice(0, text.indexOf("\n") + 1)) ? "\r\n" : "\n";
  const body = text.endsWith("\n") ? text.slice(0, text.endsWith("\r\n") ? -2 : -1) : text;
  return { lines: body.split(/\r?\n/), eol };
}

/** The lines joined, with one line ending after the last. */
export function joinLines({ lines, eol }: Lines): string {
  return lines.length === 0 ? "" : `${lines.join(eol)}${eol}`;
}

// ------------------------------------------------------------------------------------------------
// INI: pip's configparser files and npm's npmrc.

export interface IniDialect {
  /** Splits a `key = value` line; undefined for anything else. */
  readonly entry: (line: string) => { key: string; value: string } | undefined;
  /** Indented lines after an entry continue its value (configparser), or are lines of their own (npmrc). */
  readonly continuation: boolean;
}

/** pip.conf: Python's configparser (`=` or `:`; indented lines continue a value; `#`/`;` comments). */
export const PIP_INI: IniDialect = {
  entry: (line) => {
    if (/^\s/.test(line) || /^[#;[]/.test(line)) return undefined;
    const match = /^([^=:]+?)\s*[=:]\s*(.*)$/.exec(line);
    return match?.[1] === undefined ? undefined : { key: match[1], value: match[2] ?? "" };
  },
  continuation: true,
};

/** npmrc: npm's `ini` (`=` only, so `//host/path/:_authToken=…` is one key; `#`/`;` comments). */
export const NPMRC: IniDialect = {
  entry: (line) => {
    if (/^\s*[#;[]/.test(line)) return undefined;
    const match = /^\s*([^=]+?)\s*=\s*(.*)$/.exec(line);
    return match?.[1] === undefined ? undefined : { key: match[1], value: match[2] ?? "" };
  },
  continuation: false,
};

export interface IniEntry {
  /** The section it is in (undefined: before any section header). */
  readonly section: string | undefined;
  readonly key: string;
  /** Its value, continuation lines joined with a space. */
  readonly value: string;
  /** Its lines: [start, end). */
  readonly start: number;
  readonly end: number;
}

interface IniSection {
  readonly name: string | undefined;
  /** The header's line (-1 for the part before any header). */
  readonly header: number;
  /** The line after its last line. */
  readonly end: number;
}

const SECTION_HEADER = /^\s*\[([^\]]*)\]\s*(?:[#;].*)?$/;

function scanIni(lines: readonly string[], dialect: IniDialect): { entries: IniEntry[]; sections: IniSection[] } {
  const entries: IniEntry[] = [];
  const sections: Array<{ name: string | undefined; header: number; end: number }> = [{ name: undefined, header: -1, end: lines.length }];
  let section: string | undefined;
  for (let i = 0; i < lines.length; ) {
    const line = lines[i] ?? "";
    const header = SECTION_HEADER.exec(line);
    if (header !== null) {
      section = (header[1] ?? "").trim();
      const previous = sections.at(-1);
      if (previous !== undefined) previous.end = i;
      sections.push({ name: section, header: i, end: lines.length });
      i++;
      continue;
    }
    const entry = dialect.entry(line);
    if (entry === undefined) {
      i++;
      continue;
    }
    let end = i + 1;
    const values = [entry.value];
    if (dialect.continuation) {
      while (end < lines.length && /^\s+\S/.test(lines[end] ?? "") && !/^\s*[#;]/.test(lines[end] ?? "")) {
        values.push((lines[end] ?? "").trim());
        end++;
      }
    }
    entries.push({ section, key: entry.key, value: values.filter((value) => value !== "").join(" "), start: i, end });
    i = end;
  }
  return { entries, sections };
}

/** Every `key = value` of the file, in order. */
export function iniEntries(text: string | undefined, dialect: IniDialect): IniEntry[] {
  return scanIni(splitLines(text).lines, dialect).entries;
}

export interface IniUpdate {
  /** Which existing keys this line replaces (the first one found is replaced, the others removed). */
  readonly matches: (key: string) => boolean;
  /** The whole line, `key = value`. */
  readonly line: string;
}

/**
 * Sets keys in one section (`undefined`: before any section header), replacing the lines of the
 * keys they match in place and adding the others after the section's last entry (a missing
 * section is added at the end). Every other line stays as it was.
 */
export function upsertIni(text: string | undefined, section: string | undefined, updates: readonly IniUpdate[], dialect: IniDialect): string {
  const parsed = splitLines(text);
  let lines = [...parsed.lines];
  for (const update of updates) {
    const { entries, sections } = scanIni(lines, dialect);
    const matching = entries.filter((entry) => entry.section === section && update.matches(entry.key));
    const [first, ...others] = matching;
    if (first !== undefined) {
      // Bottom-up, so earlier line numbers stay valid.
      for (const entry of [...others].reverse()) lines.splice(entry.start, entry.end - entry.start);
      lines.splice(first.start, first.end - first.start, update.line);
      continue;
    }
    const target = sections.find((candidate) => candidate.name === section);
    if (target === undefined) {
      while (lines.length > 0 && (lines.at(-1) ?? "").trim() === "") lines.pop();
      lines = [...lines, ...(lines.length === 0 ? [] : [""]), `[${section ?? ""}]`, update.line];
      continue;
    }
    const inSection = entries.filter((entry) => entry.section === section);
    const last = inSection.at(-1);
    let at: number;
    if (last !== undefined) {
      at = last.end;
    } else if (target.header >= 0) {
      at = target.header + 1;
    } else {
      // No key before the first section yet: after the leading comments, before the first header.
      at = target.end;
      while (at > 0 && (lines[at - 1] ?? "").trim() === "") at--;
    }
    lines.splice(at, 0, update.line);
  }
  return joinLines({ lines, eol: parsed.eol });
}

// ------------------------------------------------------------------------------------------------
// TOML: uv.toml and containerd's hosts.toml, at the level of tables and top-level keys.

const BARE_OR_QUOTED = String.raw`(?:[A-Za-z0-9_-]+|"(?:[^"\\]|\\.)*"|'[^']*')`;
const DOTTED = String.raw`${BARE_OR_QUOTED}(?:\s*\.\s*${BARE_OR_QUOTED})*`;
const TABLE_HEADER = new RegExp(String.raw`^\s*\[(\[)?\s*(${DOTTED})\s*\](\])?\s*(?:#.*)?$`);
const KEY_LINE = new RegExp(String.raw`^\s*(${DOTTED})\s*=`);

/** The parts of a dotted TOML key, unquoted: `host."http://x:80".header` → ["host", "http://x:80", "header"]. */
export function tomlKeyParts(dotted: string): string[] {
  const parts: string[] = [];
  const part = new RegExp(BARE_OR_QUOTED, "g");
  for (const match of dotted.matchAll(part)) {
    const raw = match[0];
    if (raw.startsWith('"')) parts.push(JSON.parse(raw) as string);
    else if (raw.startsWith("'")) parts.push(raw.slice(1, -1));
    else parts.push(raw);
  }
  return parts;
}

export interface TomlItem {
  readonly kind: "table" | "key" | "other";
  /** Tables: the header's key parts; keys: the key's parts. */
  readonly name: readonly string[];
  /** `[[array.of.tables]]`. */
  readonly arrayTable: boolean;
  /** Its lines: [start, end) (a key's multi-line value included). */
  readonly start: number;
  readonly end: number;
}

/** Where a value that starts at `line[from]` ends: the line after it (multi-line strings and arrays span lines). */
function valueEnd(lines: readonly string[], startLine: number, from: number): number {
  let depth = 0;
  let inString: '"' | "'" | '"""' | "'''" | undefined;
  for (let l = startLine; l < lines.length; l++) {
    const line = lines[l] ?? "";
    for (let c = l === startLine ? from : 0; c < line.length; c++) {
      const rest = line.slice(c);
      if (inString !== undefined) {
        if (inString === '"' || inString === '"""') {
          if (line[c] === "\\") {
            c++;
            continue;
          }
        }
        if (rest.startsWith(inString)) {
          c += inString.length - 1;
          inString = undefined;
        }
        continue;
      }
      if (rest.startsWith('"""') || rest.startsWith("'''")) {
        inString = rest.slice(0, 3) as '"""' | "'''";
        c += 2;
      } else if (line[c] === '"' || line[c] === "'") {
        inString = line[c] as '"' | "'";
      } else if (line[c] === "#") {
        break;
      } else if (line[c] === "[" || line[c] === "{") {
        depth++;
      } else if (line[c] === "]" || line[c] === "}") {
        depth--;
      }
    }
    // A single-line string cannot span lines; only the multi-line kinds and open brackets continue.
    if (inString === '"' || inString === "'") inString = undefined;
    if (inString === undefined && depth <= 0) return l + 1;
  }
  return lines.length;
}

/** The file's table headers and keys, in order (lines that are neither: `other`). */
export function scanToml(lines: readonly string[]): TomlItem[] {
  const items: TomlItem[] = [];
  for (let i = 0; i < lines.length; ) {
    const line = lines[i] ?? "";
    const header = TABLE_HEADER.exec(line);
    if (header !== null && (header[1] === undefined) === (header[3] === undefined)) {
      items.push({ kind: "table", name: tomlKeyParts(header[2] ?? ""), arrayTable: header[1] !== undefined, start: i, end: i + 1 });
      i++;
      continue;
    }
    const key = KEY_LINE.exec(line);
    if (key !== null) {
      const end = valueEnd(lines, i, key[0].length);
      items.push({ kind: "key", name: tomlKeyParts(key[1] ?? ""), arrayTable: false, start: i, end });
      i = end;
      continue;
    }
    items.push({ kind: "other", name: [], arrayTable: false, start: i, end: i + 1 });
    i++;
  }
  return items;
}

export interface TomlTable {
  /** Undefined for the top level (before the first header). */
  readonly header: TomlItem | undefined;
  /** The table's key items. */
  readonly keys: readonly TomlItem[];
  readonly start: number;
  readonly end: number;
}

/** The file cut into its top level and its tables (each from its header to the next header). */
export function tomlTables(lines: readonly string[]): TomlTable[] {
  const items = scanToml(lines);
  const tables: Array<{ header: TomlItem | undefined; keys: TomlItem[]; start: number; end: number }> = [{ header: undefined, keys: [], start: 0, end: lines.length }];
  for (const item of items) {
    const current = tables.at(-1);
    if (item.kind === "table") {
      if (current !== undefined) current.end = item.start;
      tables.push({ header: item, keys: [], start: item.start, end: lines.length });
    } else if (item.kind === "key") {
      current?.keys.push(item);
    }
  }
  return tables;
}

/** A key's simple value (a string or a boolean), or undefined for anything else. */
export function tomlSimpleValue(line: string): string | boolean | undefined {
  const match = /=\s*(?:"((?:[^"\\]|\\.)*)"|'([^']*)'|(true|false))\s*(?:#.*)?$/.exec(line);
  if (match === null) return undefined;
  if (match[3] !== undefined) return match[3] === "true";
  if (match[2] !== undefined) return match[2];
  try {
    return JSON.parse(`"${match[1] ?? ""}"`) as string;
  } catch {
    return undefined;
  }
}

/** A TOML basic string. */
export function tomlString(value: string): string {
  return JSON.stringify(value);
}

// ------------------------------------------------------------------------------------------------
// JSON

/** The file's JSON object (an empty one for a missing or blank file); anything else is refused. */
export function jsonObject(text: string | undefined, path: string): Record<string, unknown> {
  if (text === undefined || text.trim() === "") return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new CliError(`cannot merge into ${path}: it is not valid JSON (${(error as Error).message}); fix it or move it away, then run setup again`);
  }
  if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) {
    throw new CliError(`cannot merge into ${path}: it is not a JSON object; fix it or move it away, then run setup again`);
  }
  return parsed as Record<string, unknown>;
}
