import { CommanderError } from "commander";
import { isVaultError } from "../core/errors.js";
import { ConfigError } from "../config/config-error.js";
import { CliError, EXIT_FAILURE, EXIT_USAGE } from "../client-setup/failure.js";

/** Exit codes: 0 ok, 1 runtime failure, 2 bad usage or bad configuration. */
export const EXIT_OK = 0;
// The failure type and its exit codes are shared with the client settings the setup command and the web UI make.
export { CliError, EXIT_FAILURE, EXIT_USAGE, usageError } from "../client-setup/failure.js";

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
