/**
 * `artifact-vault objects put|get|ls|rm|stat`: the object store from the command line, through
 * the client library (`RestStore`), streaming — no file is ever held in memory.
 *
 * - `put KEY FILE|-` uploads a file or standard input; `get KEY [FILE|-]` downloads to standard
 *   output or to a file, written to a temporary file beside it and renamed into place only when
 *   complete, so a failed or interrupted download never leaves a partial file.
 * - A progress bar (bytes, rate, ETA) on standard error for transfers of 4 MiB or more, only when
 *   standard error is a terminal.
 * - Exit codes: 1 for a runtime failure (a missing key, a refused token, an unreachable
 *   server), 2 for bad usage (a missing argument, an unknown flag, no API key).
 */
import { InvalidArgumentError, type Command } from "commander";
import type { CliIo } from "./cli-io.js";
import { DEFAULT_CONTENT_TYPE } from "./content-types.js";
import type { ObjectsActions, ObjectsDeps } from "./objects-actions.js";

import { DEFAULT_VAULT_URL, type ConnectionOptions } from "./vault-connection.js";

export function registerObjectsCommand(program: Command, io: CliIo, deps: ObjectsDeps = {}): void {
  // The client and the progress bar load only when an objects command runs.
  const actions = async (): Promise<ObjectsActions> => new (await import("./objects-actions.js")).ObjectsActions(io, deps);

  const objects = program
    .command("objects")
    .description("put, get, list, delete and inspect objects in the object store")
    .addHelpText(
      "after",
      `
Every subcommand takes --url (default: $VAULT_URL, else ${DEFAULT_VAULT_URL}) and --api-key
(default: $VAULT_API_KEY). Transfers of 4 MiB or more show a progress bar when standard error
is a terminal.
Exit codes: 0 ok, 1 runtime failure (missing key, refused token, unreachable server), 2 bad usage.`,
    );

  const connection = (command: Command) =>
    command
      .option("--url <url>", `the vault's base URL (default: $VAULT_URL, else ${DEFAULT_VAULT_URL})`)
      .option("--api-key <token>", "an API token (default: $VAULT_API_KEY)");

  connection(
    objects
      .command("put")
      .description("upload a file (or standard input) as an object, replacing any object with that key")
      .argument("<key>", "the object's key", parseKey)
      .argument("<file>", "the file to upload, or - for standard input")
      .option("--content-type <type>", `the object's content type (default: guessed from the file's extension, else ${DEFAULT_CONTENT_TYPE})`),
  ).action(async (key: string, file: string, options: ConnectionOptions & { contentType?: string }) => {
    await (await actions()).put(key, file, options);
  });

  connection(
    objects
      .command("get")
      .description("download an object to standard output or to a file")
      .argument("<key>", "the object's key", parseKey)
      .argument("[file]", "where to write it (written completely, then renamed into place); - or none for standard output"),
  ).action(async (key: string, file: string | undefined, options: ConnectionOptions) => {
    await (await actions()).get(key, file, options);
  });

  connection(
    objects
      .command("ls")
      .description("list keys (one per line, in UTF-8 byte order), optionally only those under a prefix")
      .argument("[prefix]", "only keys that start with this")
      .option("-l, --long", "also show each object's size, last-modified time and ETag"),
  ).action(async (prefix: string | undefined, options: ConnectionOptions & { long?: boolean }) => {
    await (await actions()).ls(prefix, options);
  });

  connection(
    objects
      .command("rm")
      .description("delete an object")
      .argument("<key>", "the object's key", parseKey)
      .option("-f, --force", "succeed even if there is no such object"),
  ).action(async (key: string, options: ConnectionOptions & { force?: boolean }) => {
    await (await actions()).rm(key, options);
  });

  connection(
    objects
      .command("stat")
      .description("show an object's size, ETag, content type and last-modified time")
      .argument("<key>", "the object's key", parseKey)
      .option("--json", "print a JSON object instead"),
  ).action(async (key: string, options: ConnectionOptions & { json?: boolean }) => {
    await (await actions()).stat(key, options);
  });
}

/** A key the server could accept: 1..1024 UTF-8 bytes, no NUL, valid Unicode. */
function parseKey(value: string): string {
  if (value === "") throw new InvalidArgumentError("a key must not be empty");
  if (value.includes("\0")) throw new InvalidArgumentError("a key must not contain NUL");
  if (!value.isWellFormed()) throw new InvalidArgumentError("a key must be valid Unicode");
  if (Buffer.byteLength(value, "utf8") > 1024) throw new InvalidArgumentError("a key must be at most 1024 bytes in UTF-8");
  return value;
}
