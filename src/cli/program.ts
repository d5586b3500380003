import { readFileSync } from "node:fs";
import { Command, CommanderError } from "commander";
import { describeError, exitCodeFor } from "./cli-errors.js";
import { processIo, type CliIo } from "./cli-io.js";
import { registerObjectsCommand } from "./objects-command.js";
import { registerCacheCommand } from "./cache-command.js";
import { registerServeCommand, type ServeDeps } from "./serve-command.js";
import { registerSetupCommand } from "./setup-command.js";
import { registerTokensCommand } from "./tokens-command.js";

export function packageVersion(): string {
  try {
    const text = readFileSync(new URL("../../../package.json", import.meta.url), "utf8");
    return (JSON.parse(text) as { version?: string }).version ?? "unknown";
  } catch {
    return "unknown";
  }
}

/** The `artifact-vault` command tree. Errors are thrown (exitOverride), never `process.exit`ed here. */
export function buildProgram(io: CliIo, serveDeps: ServeDeps = {}): Command {
  const program = new Command("artifact-vault")
    .description("a pull-through artifact cache and object store")
    .version(packageVersion(), "-V, --version")
    // Set before the subcommands are created: they inherit these settings.
    .exitOverride()
    .showHelpAfterError("(add --help for usage)")
    .configureOutput({
      writeOut: (text) => io.out(text.replace(/\n$/, "")),
      writeErr: (text) => io.err(text.replace(/\n$/, "")),
    });
  registerServeCommand(program, io, serveDeps);
  registerTokensCommand(program, io);
  registerObjectsCommand(program, io);
  registerCacheCommand(program, io);
  registerSetupCommand(program, io);
  return program;
}

/** Runs the CLI and resolves with the exit code (for `serve`: 0 once the vault is up). */
export async function runCli(argv: readonly string[], io: CliIo = processIo(), serveDeps: ServeDeps = {}): Promise<number> {
  try {
    await buildProgram(io, serveDeps).parseAsync([...argv]);
    return 0;
  } catch (error) {
    // Commander has already printed its own usage errors (and help/version output).
    if (!(error instanceof CommanderError)) io.err(describeError(error));
    return exitCodeFor(error);
  }
}
