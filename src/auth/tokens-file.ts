/**
 * The source design's `tokens.json`: a JSON list of
 * `{"name", "hash", "expires", "created_at", "scopes"}` where `hash` is the hex SHA-256 of the
 * UTF-8 token. A file written here reads in the source design's Python code and the other way
 * round: dates are written as Python's `datetime.isoformat()` writes an aware UTC datetime
 * (`2026-12-21T10:00:00.123456+00:00`) and read in any ISO 8601 spelling.
 *
 * Plaintext tokens never touch the file; `generateToken` is the only place one exists.
 */
import { hash, randomBytes } from "node:crypto";
import { open, readFile, rename, unlink } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { VaultError } from "../core/errors.js";

export const SCOPES = ["read", "write", "delete", "admin"] as const;
export type Scope = (typeof SCOPES)[number];

export interface TokenRecord {
  name: string;
  /** Lower-case hex SHA-256 of the token. */
  hash: string;
  /** null = never expires. */
  expires: Date | null;
  createdAt: Date;
  scopes: Scope[];
}

export const TOKEN_PREFIX = "avt_";

export function isScope(value: unknown): value is Scope {
  return typeof value === "string" && (SCOPES as readonly string[]).includes(value);
}

/** Hex SHA-256 of the UTF-8 bytes of `token`: what the file stores. */
export function hashToken(token: string): string {
  // The one-shot form: a third of the time of a Hash object, and every authenticated request pays it.
  return hash("sha256", token, "hex");
}

/** A new secret: `avt_` + 32 random bytes in base64url (256 bits). */
export function generateToken(): string {
  return TOKEN_PREFIX + randomBytes(32).toString("base64url");
}

/** Whether the record has expired at `now` (a token is valid up to, not including, `expires`). */
export function isExpired(record: Pick<TokenRecord, "expires">, now: Date = new Date()): boolean {
  return record.expires !== null && record.expires.getTime() <= now.getTime();
}

const HASH = /^[0-9a-fA-F]{64}$/;

/**
 * Parses the text of a tokens file. Throws a `VaultError` of kind `bad_request` naming the entry
 * and field on anything malformed. Unknown extra fields are ignored (and not written back).
 */
export function parseTokensFile(text: string, source = "tokens file"): TokenRecord[] {
  const fail = (where: string, why: string): never => {
    throw new VaultError("bad_request", `${source}: ${where === "" ? "" : `${where}: `}${why}`);
  };
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (error) {
    return fail("", `not valid JSON (${error instanceof Error ? error.message : String(error)})`);
  }
  if (!Array.isArray(data)) return fail("", `expected a JSON list of tokens, got ${kindOf(data)}`);

  const seen = new Map<string, number>();
  return data.map((entry: unknown, index): TokenRecord => {
    const at = `[${index}]`;
    if (typeof entry !== "object" || entry === null || Array.isArray(entry)) {
      return fail(at, `expected an object, got ${kindOf(entry)}`);
    }
    const field = (key: string): unknown => {
      if (!Object.hasOwn(entry, key)) fail(at, `missing field "${key}"`);
      return (entry as Record<string, unknown>)[key];
    };

    const name = field("name");
    if (typeof name !== "string" || name === "") return fail(`${at}.name`, `expected a non-empty string, got ${kindOf(name)}`);
    const named = `${at} (${JSON.stringify(name)})`;
    const previous = seen.get(name);
    if (previous !== undefined) return fail(`${named}.name`, `duplicate name (also [${previous}])`);
    seen.set(name, index);

    const hash = field("hash");
    if (typeof hash !== "string" || !HASH.test(hash)) {
      return fail(`${named}.hash`, "expected 64 hex digits (the SHA-256 of the token)");
    }

    const createdAtValue = field("created_at");
    const createdAt = typeof createdAtValue === "string" ? parseIsoDate(createdAtValue) : undefined;
    if (createdAt === undefined) return fail(`${named}.created_at`, `expected an ISO 8601 date, got ${kindOf(createdAtValue)}`);

    const expiresValue = (entry as Record<string, unknown>)["expires"] ?? null;
    let expires: Date | null = null;
    if (expiresValue !== null) {
      const parsed = typeof expiresValue === "string" ? parseIsoDate(expiresValue) : undefined;
      if (parsed === undefined) return fail(`${named}.expires`, `expected an ISO 8601 date or null, got ${kindOf(expiresValue)}`);
      expires = parsed;
    }

    const scopesValue = field("scopes");
    if (!Array.isArray(scopesValue)) return fail(`${named}.scopes`, `expected a list of scopes, got ${kindOf(scopesValue)}`);
    const scopes: Scope[] = [];
    for (const scope of scopesValue as unknown[]) {
      if (!isScope(scope)) return fail(`${named}.scopes`, `unknown scope ${kindOf(scope)} (expected ${SCOPES.join(", ")})`);
      if (!scopes.includes(scope)) scopes.push(scope);
    }

    return { name, hash: hash.toLowerCase(), expires, createdAt, scopes };
  });
}

/** Reads and parses a tokens file; a missing file is an empty list. */
export async function readTokensFile(path: string): Promise<TokenRecord[]> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw error;
  }
  return parseTokensFile(text, path);
}

/** The file's text for `records`, in the source design's shape and date format. */
export function formatTokensFile(records: readonly TokenRecord[]): string {
  const entries = records.map((record) => ({
    name: record.name,
    hash: record.hash.toLowerCase(),
    expires: record.expires === null ? null : formatPythonIsoDate(record.expires),
    created_at: formatPythonIsoDate(record.createdAt),
    scopes: [...record.scopes],
  }));
  return `${JSON.stringify(entries, null, 2)}\n`;
}

/**
 * Replaces the file atomically: a reader (the server watching it) sees the old list or the new
 * one, never a part. Writes a temp file in the same directory with mode 0600, fsyncs it, renames
 * it over the target, then fsyncs the directory so the rename survives a crash.
 */
export async function writeTokensFile(path: string, records: readonly TokenRecord[]): Promise<void> {
  const text = formatTokensFile(records);
  const directory = dirname(path);
  const temp = join(directory, `.${basename(path)}.${process.pid}.${randomBytes(6).toString("hex")}.tmp`);
  const file = await open(temp, "wx", 0o600);
  try {
    try {
      await file.chmod(0o600); // the umask may have taken bits away; make the mode exact
      await file.writeFile(text, "utf8");
      await file.sync();
    } finally {
      await file.close();
    }
    await rename(temp, path);
  } catch (error) {
    await unlink(temp).catch(() => undefined);
    throw error;
  }
  await syncDirectory(directory);
}

async function syncDirectory(directory: string): Promise<void> {
  let handle;
  try {
    handle = await open(directory, "r");
    await handle.sync();
  } catch {
    // Some platforms and file systems cannot fsync a directory; the rename itself already happened.
  } finally {
    await handle?.close();
  }
}

/** `2026-12-21T10:00:00.123000+00:00`: Python's `isoformat()` of an aware UTC datetime, always with microseconds. */
export function formatPythonIsoDate(date: Date): string {
  const iso = date.toISOString(); // 2026-12-21T10:00:00.123Z (years 0..9999)
  return `${iso.slice(0, 23)}000+00:00`;
}

const ISO_DATE =
  /^(\d{4})-(\d{2})-(\d{2})(?:[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?\s*([Zz]|[+-]\d{2}(?::?\d{2})?)?)?$/;

/**
 * Any ISO 8601 date-time as the source design and other tools write it: `Z`, `+00:00`, `+0530`,
 * `+05`, 0–9 fractional digits (truncated to milliseconds), a space instead of `T`, a date alone
 * (midnight). No zone means UTC (Python's naive `utcnow()`). Returns undefined when invalid.
 */
export function parseIsoDate(text: string): Date | undefined {
  const match = ISO_DATE.exec(text.trim());
  if (match === null) return undefined;
  const [, y, mo, d, h = "0", mi = "0", s = "0", fraction = "", zone = "Z"] = match;
  const year = Number(y);
  const month = Number(mo);
  const day = Number(d);
  const hour = Number(h);
  const minute = Number(mi);
  const second = Number(s);
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month)) return undefined;
  if (hour > 24 || minute > 59 || second > 59) return undefined;
  if (hour === 24 && (minute !== 0 || second !== 0 || /[1-9]/.test(fraction))) return undefined;
  const millis = Number(fraction.padEnd(3, "0").slice(0, 3));
  let offsetMinutes = 0;
  if (zone !== "Z" && zone !== "z") {
    const digits = zone.slice(1).replace(":", "");
    const offsetHours = Number(digits.slice(0, 2));
    const offsetMins = digits.length > 2 ? Number(digits.slice(2, 4)) : 0;
    if (offsetHours > 23 || offsetMins > 59) return undefined;
    offsetMinutes = (zone.startsWith("-") ? -1 : 1) * (offsetHours * 60 + offsetMins);
  }
  const date = new Date(0);
  date.setUTCFullYear(year, month - 1, day);
  date.setUTCHours(hour, minute - offsetMinutes, second, millis);
  return Number.isNaN(date.getTime()) ? undefined : date;
}

function daysInMonth(year: number, month: number): number {
  return new Date(Date.UTC(2000, month, 0)).getUTCDate() - (month === 2 && !isLeapYear(year) ? 1 : 0);
}

function isLeapYear(year: number): boolean {
  return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
}

function kindOf(value: unknown): string {
  if (value === undefined) return "nothing";
  if (value === null) return "null";
  if (Array.isArray(value)) return "a list";
  if (typeof value === "string") return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
  if (typeof value === "object") return "an object";
  if (typeof value === "number" || typeof value === "boolean") return String(value);
  return typeof value;
}
