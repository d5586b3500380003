/**
 * How a client's settings can fail to be made: bad options (exit code 2 on the command line) or
 * a file that cannot be merged (1). The `setup` command reports these with their message alone;
 * the web UI's snippets show the message in place of the settings.
 */
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

/** A failure reported with its message alone (no stack) and a chosen exit code. */
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
