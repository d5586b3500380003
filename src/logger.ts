/**
 * The service's logger, the one every process of a vault writes with (the `serve` process and its
 * workers alike): one line per event, the time as ISO 8601 in UTC with milliseconds in both
 * formats —
 * - `json`: JSON lines (pino), for log collectors;
 * - `pretty`: one human-readable line per event (pino-pretty), for a person at a terminal;
 * - `auto` (the default): `pretty` when standard output is a terminal, else `json`.
 */
import { createRequire } from "node:module";
import { pino, type DestinationStream, type Logger } from "pino";
import type PinoPretty from "pino-pretty";
import type { LogFormat, LogLevel } from "./config/schema.js";

/** Secrets that must never reach a log line, wherever they appear in a logged object. */
const REDACTED_PATHS = [
  "req.headers.authorization",
  "headers.authorization",
  "authorization",
  "*.authorization",
  "password",
  "*.password",
  "token",
  "*.token",
  "s3_secret_key",
  "*.s3_secret_key",
];

/** Log lines wait at most this long in memory before they are written (or until 4 KiB gather). */
const LOG_FLUSH_MS = 200;

export interface LoggerOptions {
  /** Default `auto`. */
  readonly format?: LogFormat | undefined;
  /** Whether standard output is a terminal (what `auto` asks); default `process.stdout.isTTY`. */
  readonly terminal?: boolean | undefined;
}

/** What `auto` means here: `pretty` on a terminal, else `json`. */
export function resolveLogFormat(format: LogFormat = "auto", terminal: boolean = process.stdout.isTTY === true): "json" | "pretty" {
  return format === "auto" ? (terminal ? "pretty" : "json") : format;
}

/**
 * The service's logger on stdout. JSON lines are written in batches (every 200 ms or 4 KiB, and
 * at exit) rather than one write per line — under load the access log alone would otherwise cost
 * a system call per request, as nginx's `access_log ... buffer= flush=` avoids too. A process
 * killed with SIGKILL loses at most the last 200 ms of lines.
 */
export function createLogger(level: LogLevel, fields: Record<string, unknown> = {}, options: LoggerOptions = {}): Logger {
  const format = resolveLogFormat(options.format, options.terminal);
  return pino(
    {
      level,
      base: { service: "artifact-vault", ...fields },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: { paths: REDACTED_PATHS, censor: "[redacted]" },
    },
    format === "pretty" ? prettyDestination() : batchedStdout(),
  );
}

function batchedStdout(): DestinationStream {
  // Each write is whole lines of at most 4 KiB (PIPE_BUF): the workers of one vault share stdout,
  // and writes that size are never interleaved with another process's on a pipe.
  const destination = pino.destination({ dest: 1, sync: false, minLength: 3072, maxWrite: 4096 });
  // flush() does nothing while a write is in flight (that write takes what is buffered next).
  const flusher = setInterval(() => {
    try {
      destination.flush();
    } catch {
      clearInterval(flusher); // destroyed: nothing more will be written
    }
  }, LOG_FLUSH_MS);
  flusher.unref();
  return destination;
}

/**
 * `[2026-12-03T09:12:00.000Z] WARN: upstream failed {"reqId":"…","reason":"…"}`: the same time
 * as the JSON lines' `time` (not translated), one line per event (an error's stack below it),
 * colours when the terminal has them. Formatted as each line is logged and written like the JSON
 * lines (so nothing is lost at exit). Loaded only when asked for: JSON needs none of it.
 */
function prettyDestination(): DestinationStream {
  const { prettyFactory } = createRequire(import.meta.url)("pino-pretty") as typeof PinoPretty;
  const prettify = prettyFactory({ translateTime: false, singleLine: true, ignore: "service" });
  const out = pino.destination({ dest: 1, sync: false });
  return { write: (line: string) => void out.write(prettify(line)) };
}
