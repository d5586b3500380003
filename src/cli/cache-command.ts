/**
 * `artifact-vault cache ls|stats|purge|fills`: the vault's cache administration API
 * (`/admin/cache/...`, a token with the `admin` scope) from the command line.
 *
 * - `ls [PREFIX] [--backend NAME] [--long] [--json]` lists every cached entry (all pages);
 * - `stats [--json]` shows hit/miss counters, bytes served, sizes per backend;
 * - `purge KEY | --prefix P | --all` forgets entries (stored copy, freshness, remembered 404);
 * - `fills [--json] [--once]` shows downloads in progress: live bars on standard error while it
 *   is a terminal, until none remain; one listing otherwise;
 * - `warm ...` fills the cache ahead of builds, through the vault (`warm/warm-command.ts`; it
 *   needs no admin token: only the proxy routes' read token, if they need one).
 *
 * `--url`/`$VAULT_URL` and `--api-key`/`$VAULT_API_KEY` as for `objects`. Exit codes:
 * 0 ok, 1 runtime failure (refused token, unreachable server), 2 bad usage (no API key, bad flags).
 * undici and cli-progress load only when a cache command runs.
 */
import { InvalidArgumentError, type Command } from "commander";
import { CliError, usageError } from "./cli-errors.js";
import { DEFAULT_VAULT_URL, vaultUrl, type ConnectionOptions } from "./vault-connection.js";
import type { CliIo } from "./cli-io.js";
import type { ProgressOutput } from "./transfer-progress.js";
import { registerWarmCommand } from "./warm/warm-command.js";

/** Entries asked for per page by `ls` (the API's maximum). */
const LS_PAGE = 1000;
/** How often the live `fills` view asks the server. */
const FILLS_POLL_MS = 500;

/** What the commands touch besides the CLI's io; tests hand in their own. */
export interface CacheDeps {
  /** Where the live `fills` view draws (standard error). */
  readonly stderr?: ProgressOutput;
  /** Where SIGINT/SIGTERM arrive: they end a call (and the live view). */
  readonly signals?: Pick<NodeJS.EventEmitter, "once" | "off">;
  readonly pollIntervalMs?: number;
}

/** `GET /admin/cache/entries` item. */
interface EntryJson {
  readonly key: string;
  readonly backend: string;
  readonly size: number;
  readonly content_type: string | null;
  readonly cached_at: string;
  readonly freshness: "immutable" | "mutable" | "unknown";
  readonly fresh: boolean | null;
}

interface StatsJson {
  readonly hits: number;
  readonly misses: number;
  readonly stale: number;
  readonly revalidated: number;
  readonly hit_ratio: number | null;
  readonly bytes_from_cache: number;
  readonly bytes_from_upstream: number;
  readonly total_bytes: number;
  readonly entry_count: number;
  readonly max_size: number | null;
  readonly evictions: number;
  readonly index_ready: boolean;
  readonly fills_in_progress: number;
  readonly backends: Readonly<Record<string, { readonly entries: number; readonly bytes: number }>>;
}

interface FillJson {
  readonly key: string;
  readonly backend: string;
  readonly bytes: number;
  readonly total: number | null;
  readonly percent: number | null;
  readonly started_at: string;
}

export function registerCacheCommand(program: Command, io: CliIo, deps: CacheDeps = {}): void {
  const cache = program
    .command("cache")
    .description("inspect the pull-through cache, purge entries, watch downloads in progress (needs an admin token), and warm it ahead of builds")
    .addHelpText(
      "after",
      `
Every subcommand takes --url (default: $VAULT_URL, else ${DEFAULT_VAULT_URL}) and --api-key
(default: $VAULT_API_KEY), a token with the admin scope (warm: a read token, if the vault's
proxy routes need one). Cache keys are <backend>/<path>.
Exit codes: 0 ok, 1 runtime failure (refused token, unreachable server), 2 bad usage.`,
    );

  const connection = (command: Command) =>
    command
      .option("--url <url>", `the vault's base URL (default: $VAULT_URL, else ${DEFAULT_VAULT_URL})`)
      .option("--api-key <token>", "an admin token (default: $VAULT_API_KEY)");

  connection(
    cache
      .command("ls")
      .description("list cached entries (one key per line, in UTF-8 byte order)")
      .argument("[prefix]", "only keys that start with this, e.g. files/ or files/pkg/")
      .option("--backend <name>", "only this backend's entries", parseBackend)
      .option("-l, --long", "also show size, when it was cached, and freshness")
      .option("--json", "print a JSON array of the entries with all their fields"),
  ).action(async (prefix: string | undefined, options: ConnectionOptions & { backend?: string; long?: boolean; json?: boolean }) => {
    if (options.long === true && options.json === true) throw usageError("--long and --json do not go together");
    await withApi(options, io, deps, (api) => ls(api, io, prefix, options));
  });

  connection(cache.command("stats").description("show hit/miss counters, bytes served and cache size per backend").option("--json", "print the server's JSON")).action(
    async (options: ConnectionOptions & { json?: boolean }) => {
      const stats = await withApi(options, io, deps, (api) => api.call<StatsJson>("GET", "/admin/cache/stats"));
      if (options.json === true) io.out(JSON.stringify(stats, null, 2));
      else for (const line of await statsLines(stats)) io.out(line);
    },
  );

  connection(
    cache
      .command("purge")
      .description("forget cached entries, so the next request fetches them again: one KEY, --prefix P, or --all")
      .argument("[key]", "one entry's key, e.g. files/pkg/a-1.0.tgz")
      .option("--prefix <prefix>", "every entry whose key starts with this, e.g. files/pkg/")
      .option("--all", "every entry of every backend"),
  ).action(async (key: string | undefined, options: ConnectionOptions & { prefix?: string; all?: boolean }) => {
    const query = purgeQuery(key, options);
    const result = await withApi(options, io, deps, (api) => api.call<{ purged: number }>("DELETE", "/admin/cache/entries", query));
    io.out(`Purged ${result.purged} ${result.purged === 1 ? "entry" : "entries"}`);
  });

  connection(
    cache
      .command("fills")
      .description("show downloads in progress; on a terminal, live progress bars until none remain")
      .option("--json", "print the server's JSON once")
      .option("--once", "print the list once, even on a terminal"),
  ).action(async (options: ConnectionOptions & { json?: boolean; once?: boolean }) => {
    await withApi(options, io, deps, async (api) => {
      const stderr = deps.stderr ?? process.stderr;
      if (options.json !== true && options.once !== true && stderr.isTTY === true) {
        await watchFills(api, io, stderr, deps.pollIntervalMs ?? FILLS_POLL_MS);
        return;
      }
      const { fills } = await api.call<{ fills: FillJson[] }>("GET", "/admin/cache/fills");
      if (options.json === true) io.out(JSON.stringify({ fills }, null, 2));
      else for (const line of await fillLines(fills)) io.out(line);
    });
  });

  registerWarmCommand(cache, io, { stderr: deps.stderr, signals: deps.signals });
}

// ------------------------------------------------------------------------------------------------
// The commands.

async function ls(api: AdminApi, io: CliIo, prefix: string | undefined, options: { backend?: string; long?: boolean; json?: boolean }): Promise<void> {
  const { formatBytes } = await import("./transfer-progress.js");
  let cursor: string | undefined;
  let first = true;
  if (options.json === true) io.out("[");
  for (;;) {
    const page = await api.call<{ entries: EntryJson[]; next_cursor: string | null; has_more: boolean }>("GET", "/admin/cache/entries", {
      prefix,
      backend: options.backend,
      limit: String(LS_PAGE),
      cursor,
    });
    for (const entry of page.entries) {
      if (options.json === true) {
        io.out(`${first ? "" : ","}${JSON.stringify(entry)}`);
      } else if (options.long === true) {
        io.out(`${formatBytes(entry.size).padStart(10)}  ${entry.cached_at.slice(0, 19)}Z  ${freshnessLabel(entry).padEnd(9)}  ${entry.key}`);
      } else {
        io.out(entry.key);
      }
      first = false;
    }
    if (!page.has_more || page.next_cursor === null) break;
    cursor = page.next_cursor;
  }
  if (options.json === true) io.out("]");
}

function freshnessLabel(entry: EntryJson): string {
  if (entry.freshness === "immutable") return "immutable";
  if (entry.freshness === "mutable") return entry.fresh === true ? "fresh" : "stale";
  return "-";
}

async function statsLines(stats: StatsJson): Promise<string[]> {
  const { formatBytes } = await import("./transfer-progress.js");
  const requests = stats.hits + stats.misses + stats.stale + stats.revalidated;
  const ratio = stats.hit_ratio === null ? "-" : `${(stats.hit_ratio * 100).toFixed(1)}%`;
  const lines = [
    `requests:     ${requests} (hits ${stats.hits}, misses ${stats.misses}, stale ${stats.stale}, revalidated ${stats.revalidated})`,
    `hit ratio:    ${ratio}`,
    `served:       ${formatBytes(stats.bytes_from_cache)} from the cache, ${formatBytes(stats.bytes_from_upstream)} from upstream`,
    `cached:       ${stats.entry_count} ${stats.entry_count === 1 ? "entry" : "entries"}, ${formatBytes(stats.total_bytes)}` +
      `${stats.max_size === null ? " (no max_size)" : ` of ${formatBytes(stats.max_size)} max`}` +
      `${stats.index_ready ? "" : " (still indexing: counts cover recent use only)"}`,
    `evictions:    ${stats.evictions}`,
    `downloading:  ${stats.fills_in_progress}`,
  ];
  const backends = Object.entries(stats.backends);
  if (backends.length > 0) {
    const width = Math.max(...backends.map(([name]) => name.length));
    lines.push("backends:");
    for (const [name, usage] of backends) {
      lines.push(`  ${name.padEnd(width)}  ${String(usage.entries).padStart(8)} ${usage.entries === 1 ? "entry  " : "entries"}  ${formatBytes(usage.bytes).padStart(10)}`);
    }
  }
  return lines;
}

function purgeQuery(key: string | undefined, options: { prefix?: string; all?: boolean }): Record<string, string> {
  const given = [key !== undefined, options.prefix !== undefined, options.all === true].filter(Boolean).length;
  if (given === 0) throw usageError("say what to purge: a KEY, --prefix PREFIX, or --all");
  if (given > 1) throw usageError("give only one of KEY, --prefix or --all");
  if (key !== undefined) {
    if (key === "") throw usageError("a key must not be empty");
    return { key };
  }
  if (options.prefix !== undefined) {
    if (options.prefix === "") throw usageError("an empty --prefix would purge everything: use --all to mean that");
    return { prefix: options.prefix };
  }
  return { all: "true" };
}

async function fillLines(fills: readonly FillJson[]): Promise<string[]> {
  if (fills.length === 0) return ["no downloads in progress"];
  const { formatBytes } = await import("./transfer-progress.js");
  return fills.map((fill) => {
    const percent = fill.percent === null ? "?" : `${fill.percent.toFixed(1)}%`;
    const size = `${formatBytes(fill.bytes)}/${fill.total === null ? "?" : formatBytes(fill.total)}`;
    return `${percent.padStart(6)}  ${size.padEnd(21)}  ${fill.started_at.slice(0, 19)}Z  ${fill.key}`;
  });
}

/**
 * Live bars (cli-progress MultiBar) on a terminal: one per download, refreshed every poll,
 * removed when the download ends (and a line says so), until none remain or a signal arrives.
 */
async function watchFills(api: AdminApi, io: CliIo, stderr: ProgressOutput, pollMs: number): Promise<void> {
  const [{ MultiBar }, { formatBytes }] = await Promise.all([import("cli-progress"), import("./transfer-progress.js")]);
  let fills = (await api.call<{ fills: FillJson[] }>("GET", "/admin/cache/fills")).fills;
  if (fills.length === 0) {
    io.out("no downloads in progress");
    return;
  }
  const bars = new MultiBar({
    stream: stderr,
    format: "{label} [{bar}] {pct} | {size}",
    barsize: 30,
    hideCursor: false,
    linewrap: false,
    clearOnComplete: false,
    fps: 10,
  });
  const shown = new Map<string, ReturnType<typeof bars.create>>();
  const labelWidth = (stderr.columns ?? 100) > 100 ? 50 : 30;
  const payload = (fill: FillJson) => ({
    label: label(fill.key, labelWidth),
    pct: fill.percent === null ? "   ?" : `${fill.percent.toFixed(0).padStart(3)}%`,
    size: `${formatBytes(fill.bytes)}/${fill.total === null ? "?" : formatBytes(fill.total)}`,
  });
  let finished = 0;
  try {
    for (;;) {
      const current = new Set(fills.map((fill) => fill.key));
      for (const [key, bar] of shown) {
        if (current.has(key)) continue;
        // Logged lines are drawn above the bars on the next redraw, which `remove` does.
        bars.log(`${await fillOutcome(api, key, formatBytes)}\n`);
        bars.remove(bar);
        shown.delete(key);
        finished++;
      }
      for (const fill of fills) {
        const total = Math.max(1, fill.total ?? fill.bytes);
        const bar = shown.get(fill.key);
        if (bar === undefined) {
          shown.set(fill.key, bars.create(total, fill.bytes, payload(fill)));
        } else {
          bar.setTotal(total);
          bar.update(fill.bytes, payload(fill));
        }
      }
      if (shown.size === 0) break;
      await api.sleep(pollMs);
      fills = (await api.call<{ fills: FillJson[] }>("GET", "/admin/cache/fills")).fills;
    }
  } finally {
    bars.stop();
  }
  io.out(`no downloads in progress (${finished} ended while watching)`);
}

/** Whether a download that is no longer in progress was cached (it may also have failed). */
async function fillOutcome(api: AdminApi, key: string, formatBytes: (bytes: number) => string): Promise<string> {
  const { entries } = await api.call<{ entries: EntryJson[] }>("GET", "/admin/cache/entries", { prefix: key, limit: "1" });
  const entry = entries[0];
  return entry?.key === key ? `cached ${key} (${formatBytes(entry.size)})` : `ended ${key} (not cached: the download failed or was purged)`;
}

function label(key: string, width: number): string {
  return key.length <= width ? key.padEnd(width) : `…${key.slice(key.length - width + 1)}`;
}

// ------------------------------------------------------------------------------------------------
// The connection: flags and environment, the admin API's answers as values or CLI errors.

interface AdminApi {
  call<T>(method: "GET" | "DELETE", path: string, query?: Readonly<Record<string, string | undefined>>): Promise<T>;
  /** Waits, or rejects when the command is interrupted. */
  sleep(ms: number): Promise<void>;
}

async function withApi<T>(options: ConnectionOptions, io: CliIo, deps: CacheDeps, body: (api: AdminApi) => Promise<T>): Promise<T> {
  const base = vaultUrl(options, io);
  const apiKey = (options.apiKey ?? io.env["VAULT_API_KEY"])?.trim();
  if (apiKey === undefined || apiKey === "") throw usageError("no API key: pass --api-key TOKEN or set VAULT_API_KEY");
  const { Agent, request } = await import("undici");
  const dispatcher = new Agent({ connectTimeout: 10_000, headersTimeout: 300_000, bodyTimeout: 60_000 });
  const controller = new AbortController();
  const signals = deps.signals ?? process;
  const interrupt = () => controller.abort(new CliError("interrupted"));
  signals.once("SIGINT", interrupt);
  signals.once("SIGTERM", interrupt);
  const api: AdminApi = {
    call: async <R>(method: "GET" | "DELETE", path: string, query: Readonly<Record<string, string | undefined>> = {}): Promise<R> => {
      const url = new URL(base);
      url.pathname = `${url.pathname.replace(/\/+$/, "")}${path}`;
      url.search = "";
      for (const [name, value] of Object.entries(query)) if (value !== undefined) url.searchParams.set(name, value);
      let statusCode: number;
      let text: string;
      try {
        const response = await request(url, {
          method,
          dispatcher,
          signal: controller.signal,
          headers: { authorization: `Bearer ${apiKey}`, accept: "application/json" },
        });
        statusCode = response.statusCode;
        text = await response.body.text();
      } catch (error) {
        if (controller.signal.aborted) throw new CliError("interrupted", undefined, { cause: error });
        throw new CliError(`the connection to the vault at ${base} failed: ${reason(error)}`, undefined, { cause: error });
      }
      if (statusCode >= 200 && statusCode < 300) {
        try {
          return JSON.parse(text) as R;
        } catch (error) {
          throw new CliError(`the vault at ${base} sent an answer that is not JSON (${method} ${path})`, undefined, { cause: error });
        }
      }
      throw failure(statusCode, serverMessage(text), method, path);
    },
    sleep: (ms) =>
      new Promise<void>((resolve, reject) => {
        if (controller.signal.aborted) return reject(new CliError("interrupted"));
        const onAbort = () => {
          clearTimeout(timer);
          reject(new CliError("interrupted"));
        };
        const timer = setTimeout(() => {
          controller.signal.removeEventListener("abort", onAbort);
          resolve();
        }, ms);
        controller.signal.addEventListener("abort", onAbort, { once: true });
      }),
  };
  try {
    return await body(api);
  } finally {
    signals.off("SIGINT", interrupt);
    signals.off("SIGTERM", interrupt);
    await dispatcher.close();
  }
}


/** The message of the object API's envelope `{"error": {"code", "message"}}`, else the text. */
function serverMessage(text: string): string {
  try {
    const parsed = JSON.parse(text) as { error?: { message?: unknown } };
    if (typeof parsed.error?.message === "string") return parsed.error.message;
  } catch {
    // not the envelope
  }
  return text.trim().slice(0, 200) || "no message";
}

function failure(status: number, message: string, method: string, path: string): CliError {
  if (status === 401) return new CliError(`authentication failed: ${message} (check --api-key or VAULT_API_KEY)`);
  if (status === 403) return new CliError(`permission denied: ${message} (cache commands need a token with the admin scope)`);
  if (status === 404 && message.startsWith("no route")) return new CliError(`this server has no cache administration API (${method} ${path}: ${message})`);
  return new CliError(`the vault answered ${status}: ${message}`);
}

function reason(error: unknown): string {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  const message = error instanceof Error ? error.message : String(error);
  return code !== undefined && !message.includes(code) ? `${message} (${code})` : message;
}

function parseBackend(value: string): string {
  if (value === "" || value.includes("/")) throw new InvalidArgumentError("a backend name is not empty and has no '/'");
  return value;
}
