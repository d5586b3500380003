/**
 * `artifact-vault tokens add|delete|refresh|list`: manages the tokens file (the Python object
 * store's tokens.json format). Plaintext tokens are printed once, by `add`, on its last line; nothing else ever
 * shows a token or its hash.
 */
import { InvalidArgumentError, type Command } from "commander";
import { mkdir, open, rm, stat } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import {
  generateToken,
  hashToken,
  isExpired,
  readTokensFile,
  SCOPES,
  writeTokensFile,
  type Scope,
  type TokenRecord,
} from "../auth/tokens-file.js";
import { CliError, usageError } from "./cli-errors.js";
import type { CliIo } from "./cli-io.js";

const DAY_MS = 86_400_000;
/** A century: far enough to mean "long-lived", near enough that dates stay four-digit years. */
const MAX_TTL_DAYS = 36_500;

interface FileOptions {
  readonly file?: string;
  readonly config?: string;
}

export function registerTokensCommand(program: Command, io: CliIo): void {
  const tokens = program
    .command("tokens")
    .description("manage API tokens in the tokens file (the Python object store's tokens.json format)")
    .addHelpText(
      "after",
      `
The tokens file is --file; else the one \`serve --config FILE\` reads, with --config FILE
(auth.tokens_file, relative to the file; $AUTH_TOKENS_FILE overrides it, as for serve); else
$AUTH_TOKENS_FILE, else ./tokens.json. It holds only SHA-256 hashes; \`tokens add\` prints the
plaintext token once, on its last line.
Scopes: ${SCOPES.join(", ")}. --ttl is a number of days (fractions allowed) or "never".`,
    );

  const fileOption = (command: Command) =>
    command
      .option("-f, --file <path>", "tokens file (default: $AUTH_TOKENS_FILE, else ./tokens.json)")
      .option("-c, --config <file>", "the tokens file that `serve --config FILE` uses (its auth.tokens_file)");

  fileOption(
    tokens
      .command("add")
      .description("create a token and print it (on the last line; it is never shown again)")
      .argument("<name>", "a unique name for the token", parseName)
      .requiredOption("--ttl <days>", 'days until it expires (> 0, fractions allowed), or "never"', parseTtl)
      .requiredOption("--scope <scope>", `a scope to grant (${SCOPES.join(", ")}); repeat for several`, collectScope),
  ).action(async (name: string, options: FileOptions & { ttl: Ttl; scope: Scope[] }) => {
    const path = await tokensFilePath(options, io);
    const now = io.now();
    const token = generateToken();
    const record: TokenRecord = {
      name,
      hash: hashToken(token),
      expires: expiryFrom(now, options.ttl),
      createdAt: now,
      scopes: options.scope,
    };
    await mkdir(dirname(path), { recursive: true });
    await updateTokensFile(path, (records) => {
      if (records.some((existing) => existing.name === name)) {
        throw new CliError(`a token named ${JSON.stringify(name)} already exists in ${path} (refresh or delete it instead)`);
      }
      return [...records, record];
    });
    io.out(`Added token ${JSON.stringify(name)} to ${path}`);
    io.out(`  scopes:  ${record.scopes.join(", ")}`);
    io.out(`  expires: ${describeExpiry(record.expires)}`);
    io.out("The token (shown only now; store it safely):");
    io.out(token);
  });

  fileOption(
    tokens
      .command("delete")
      .description("delete a token (the server stops accepting it once it notices the file changed)")
      .argument("<name>", "the token's name"),
  ).action(async (name: string, options: FileOptions) => {
    const path = await tokensFilePath(options, io);
    await updateTokensFile(path, (records) => {
      if (!records.some((record) => record.name === name)) throw notFound(name, path);
      return records.filter((record) => record.name !== name);
    });
    io.out(`Deleted token ${JSON.stringify(name)} from ${path}`);
  });

  fileOption(
    tokens
      .command("refresh")
      .description("give a token a new expiry (counted from now) and, with --scope, new scopes; the token itself stays the same")
      .argument("<name>", "the token's name")
      .requiredOption("--ttl <days>", 'days from now until it expires (> 0, fractions allowed), or "never"', parseTtl)
      .option("--scope <scope>", `replace the scopes (${SCOPES.join(", ")}); repeat for several`, collectScope),
  ).action(async (name: string, options: FileOptions & { ttl: Ttl; scope?: Scope[] }) => {
    const path = await tokensFilePath(options, io);
    let updated: TokenRecord | undefined;
    await updateTokensFile(path, (records) => {
      const index = records.findIndex((record) => record.name === name);
      const existing = records[index];
      if (existing === undefined) throw notFound(name, path);
      updated = { ...existing, expires: expiryFrom(io.now(), options.ttl), scopes: options.scope ?? existing.scopes };
      return records.map((record, at) => (at === index ? (updated ?? record) : record));
    });
    io.out(`Refreshed token ${JSON.stringify(name)} in ${path}`);
    io.out(`  scopes:  ${updated?.scopes.join(", ") ?? ""}`);
    io.out(`  expires: ${describeExpiry(updated?.expires ?? null)}`);
  });

  fileOption(
    tokens
      .command("list")
      .description("list tokens: name, scopes, created, expires (never the tokens or their hashes)")
      .option("--json", "print a JSON list instead of a table"),
  ).action(async (options: FileOptions & { json?: boolean }) => {
    const path = await tokensFilePath(options, io);
    const records = await readTokensFile(path);
    const now = io.now();
    if (options.json === true) {
      io.out(
        JSON.stringify(
          records.map((record) => ({
            name: record.name,
            scopes: record.scopes,
            created_at: record.createdAt.toISOString(),
            expires: record.expires?.toISOString() ?? null,
            expired: isExpired(record, now),
          })),
          null,
          2,
        ),
      );
      return;
    }
    if (records.length === 0) {
      io.out(`No tokens in ${path}`);
      return;
    }
    const rows = [
      ["NAME", "SCOPES", "CREATED", "EXPIRES", "STATUS"],
      ...records.map((record) => [
        record.name,
        record.scopes.join(",") || "-",
        shortDate(record.createdAt),
        record.expires === null ? "never" : shortDate(record.expires),
        isExpired(record, now) ? "expired" : "active",
      ]),
    ];
    const widths = rows[0]?.map((_, column) => Math.max(...rows.map((row) => (row[column] ?? "").length))) ?? [];
    for (const row of rows) io.out(row.map((cell, column) => cell.padEnd(widths[column] ?? 0)).join("  ").trimEnd());
  });
}

/** The tokens file a command works on: `serve`'s own when given its `--config` (loaded as `serve` loads it). */
async function tokensFilePath(options: FileOptions, io: CliIo): Promise<string> {
  if (options.config !== undefined) {
    if (options.file !== undefined) throw usageError("give --file or --config, not both");
    const { loadConfig } = await import("../config/load-config.js");
    const config = await loadConfig({ file: options.config, env: io.env, cwd: io.cwd });
    return config.auth.tokens_file;
  }
  const fromEnv = io.env["AUTH_TOKENS_FILE"];
  const path = options.file ?? (fromEnv === undefined || fromEnv.trim() === "" ? "./tokens.json" : fromEnv);
  return resolve(io.cwd, path);
}

function notFound(name: string, path: string): CliError {
  return new CliError(`no token named ${JSON.stringify(name)} in ${path}`);
}

/** Days until expiry, or "never". (Not null: commander turns a parser's null into "".) */
export type Ttl = number | "never";

function expiryFrom(now: Date, ttl: Ttl): Date | null {
  return ttl === "never" ? null : new Date(now.getTime() + Math.round(ttl * DAY_MS));
}

function describeExpiry(expires: Date | null): string {
  return expires === null ? "never" : expires.toISOString();
}

function shortDate(date: Date): string {
  return `${date.toISOString().slice(0, 19)}Z`;
}

// ------------------------------------------------------------------------------------------------
// Argument parsers: a bad value is a usage error that names the flag (commander adds the flag).

function parseName(value: string): string {
  if (value.length === 0 || value.length > 128 || value.trim() !== value || /\p{Cc}/u.test(value)) {
    throw new InvalidArgumentError("expected 1 to 128 characters without control characters or surrounding spaces");
  }
  return value;
}

export function parseTtl(value: string): Ttl {
  if (value.trim().toLowerCase() === "never") return "never";
  const days = /^\s*(\d+(\.\d+)?|\.\d+)\s*$/.test(value) ? Number(value) : Number.NaN;
  if (!(days > 0) || days > MAX_TTL_DAYS) {
    throw new InvalidArgumentError(`expected a number of days greater than 0 and at most ${MAX_TTL_DAYS}, or "never"`);
  }
  return days;
}

/** Repeatable `--scope`; each may also be a comma-separated list (`--scope read,write`). */
function collectScope(value: string, previous: Scope[] | undefined): Scope[] {
  const scopes = [...(previous ?? [])];
  for (const part of value.split(",")) {
    const scope = part.trim();
    if (!(SCOPES as readonly string[]).includes(scope)) {
      throw new InvalidArgumentError(`unknown scope ${JSON.stringify(scope)}; expected one of ${SCOPES.join(", ")}`);
    }
    if (!scopes.includes(scope as Scope)) scopes.push(scope as Scope);
  }
  return scopes;
}

// ------------------------------------------------------------------------------------------------
// Read-modify-write under a lock file, so two `tokens` commands at once do not lose an update.

const LOCK_WAIT_MS = 10_000;
const LOCK_STALE_MS = 30_000;

async function updateTokensFile(path: string, change: (records: TokenRecord[]) => TokenRecord[]): Promise<void> {
  await withLock(`${path}.lock`, async () => {
    const records = await readTokensFile(path);
    await writeTokensFile(path, change(records));
  });
}

async function withLock(lockPath: string, body: () => Promise<void>): Promise<void> {
  const deadline = Date.now() + LOCK_WAIT_MS;
  for (;;) {
    try {
      const handle = await open(lockPath, "wx", 0o600);
      await handle.writeFile(String(process.pid));
      await handle.close();
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
      const age = await stat(lockPath).then(
        (info) => Date.now() - info.mtimeMs,
        () => 0,
      );
      if (age > LOCK_STALE_MS) {
        await rm(lockPath, { force: true });
        continue;
      }
      if (Date.now() > deadline) {
        throw new CliError(`the tokens file is locked by another command (${lockPath}); remove the lock file if no command is running`);
      }
      await new Promise((resolveWait) => setTimeout(resolveWait, 50));
    }
  }
  try {
    await body();
  } finally {
    await rm(lockPath, { force: true });
  }
}
