import { CommanderError } from "commander";
import { isVaultError } from "../core/errors.js";
import { ConfigError } from "../config/config-error.js";

/** Exit codes: 0 ok, 1 runtime failure, 2 bad usage or bad configuration. */
export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

/** A failure the CLI reports with its message alone (no stack) and a chosen exit code. */
export class CliError extends Error {
  readonly exitCode: number;

  constructor(message: string, exitCode: number = EXIT_FAILURE, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "CliError";
    this.exitCode = exitCode;
  }
}

/** Bad usage the parser cannot see (a flag value that is wrong only in context): exit 2. */
export function usageError(message: string): CliError {
  return new CliError(message, EXIT_USAGE);
}

/** The one place errors become exit codes. */
export function exitCodeFor(error: unknown): number {
  if (error instanceof CommanderError) return error.exitCode === 0 ? EXIT_OK : EXIT_USAGE;
  if (error instanceof CliError) return error.exitCode;
  if (error instanceof ConfigError) return EXIT_USAGE;
  // A malformed tokens file, an unavailable storage type: bad configuration, not a crash.
  if (isVaultError(error, "bad_request") || isVaultError(error, "not_supported")) return EXIT_USAGE;
  return EXIT_FAILURE;
}

/** What the user sees for an error: its message, one `error:` line per line of it. */
export function describeError(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return message
    .split("\n")
    .map((line) => `error: ${line}`)
    .join("\n");
}
