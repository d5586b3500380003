/**
 * What `artifact-vault objects ...` does, loaded only when such a command runs (the client and
 * the progress bar cost ~150 ms to load, which `serve`, `tokens` and `--help` should not pay).
 * See objects-command.ts for the commands and their contract.
 */
import { randomBytes } from "node:crypto";
import { once } from "node:events";
import { fstatSync } from "node:fs";
import { open, rename, rm, stat } from "node:fs/promises";
import { basename, dirname, join, resolve } from "node:path";
import type { Readable, Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import {
  AuthError,
  NotFoundError,
  RestStore,
  RestStoreError,
  VaultConnectionError,
  type ObjectStat,
} from "../client/index.js";
import { CliError, usageError } from "./cli-errors.js";
import type { CliIo } from "./cli-io.js";
import { DEFAULT_CONTENT_TYPE, guessContentType } from "./content-types.js";
import { vaultUrl, type ConnectionOptions } from "./vault-connection.js";
import { formatBytes, transferProgress, type ProgressOutput } from "./transfer-progress.js";

/** `ls --long` asks for this many objects' metadata at once (the listing order is kept). */
const STAT_CONCURRENCY = 8;

/** The raw streams the commands move bytes through; tests can hand in their own. */
export interface ObjectsDeps {
  readonly stdin?: Readable & { readonly isTTY?: boolean };
  readonly stdout?: Writable;
  readonly stderr?: ProgressOutput;
  /** Where SIGINT/SIGTERM arrive: the first one aborts the transfer (and its cleanup runs). */
  readonly signals?: Pick<NodeJS.EventEmitter, "once" | "off">;
}


interface Context {
  readonly store: RestStore;
  readonly signal: AbortSignal;
}

/** The `objects` subcommands, given the CLI's io and (in tests) their own streams. */
export class ObjectsActions {
  constructor(
    private readonly io: CliIo,
    private readonly deps: ObjectsDeps = {},
  ) {}

  private get stdin(): Readable & { readonly isTTY?: boolean } {
    return this.deps.stdin ?? process.stdin;
  }

  private get stdout(): Writable {
    return this.deps.stdout ?? process.stdout;
  }

  private get stderr(): ProgressOutput {
    return this.deps.stderr ?? process.stderr;
  }

  private run<T>(options: ConnectionOptions, body: (context: Context) => Promise<T>): Promise<T> {
    return withStore(options, this.io, this.deps, body);
  }

  async put(key: string, file: string, options: ConnectionOptions & { contentType?: string }): Promise<void> {
    const result = await this.run(options, async ({ store, signal }) => {
      const source = file === "-" ? openStdin(this.stdin, this.io) : await openInputFile(file, this.io.cwd);
      const progress = transferProgress(`put ${key}`, this.stderr);
      try {
        return await store.putStream(key, source.stream, {
          size: source.size,
          contentType: options.contentType ?? (file === "-" ? DEFAULT_CONTENT_TYPE : guessContentType(file)),
          onProgress: progress.onProgress,
          signal,
        });
      } finally {
        progress.stop();
        // putStream destroys the source when it fails; a file is closed in any case.
        if (source.stream !== this.stdin) source.stream.destroy();
      }
    });
    this.io.out(`Stored ${JSON.stringify(result.key)} (${result.size} bytes)`);
  }

  async get(key: string, file: string | undefined, options: ConnectionOptions): Promise<void> {
    await this.run(options, async ({ store, signal }) => {
      const toStdout = file === undefined || file === "-";
      const target = toStdout ? undefined : await outputPath(file, this.io.cwd);
      const progress = transferProgress(`get ${key}`, this.stderr);
      try {
        const body = await store.getStream(key, { onProgress: progress.onProgress, signal });
        if (target === undefined) await copyToStdout(body, this.stdout, signal);
        else await writeFileAtomically(body, target, file ?? target, signal);
      } finally {
        progress.stop();
      }
    });
  }

  async ls(prefix: string | undefined, options: ConnectionOptions & { long?: boolean }): Promise<void> {
    await this.run(options, async ({ store, signal }) => {
      const out = lineWriter(this.stdout);
      const keys = store.keys({ prefix, signal });
      if (options.long !== true) {
        for await (const key of keys) if (!(await out.write(key))) return;
        return;
      }
      // Stats run a few at a time ahead of the output; each settles into a value, so none can
      // reject unobserved while an earlier one is awaited.
      const pending: Array<Promise<{ line?: string; error?: Error }>> = [];
      const flush = async (): Promise<boolean> => {
        const next = await pending.shift();
        if (next?.error !== undefined) throw next.error;
        return next?.line === undefined || out.write(next.line);
      };
      for await (const key of keys) {
        pending.push(
          store.stat(key, { signal }).then(
            (info) => ({ line: longLine(info) }),
            // Deleted between the listing and the stat: it is simply gone.
            (error: unknown) => (error instanceof NotFoundError ? {} : { error: error instanceof Error ? error : new Error(String(error)) }),
          ),
        );
        if (pending.length >= STAT_CONCURRENCY && !(await flush())) return;
      }
      while (pending.length > 0) if (!(await flush())) return;
    });
  }

  async rm(key: string, options: ConnectionOptions & { force?: boolean }): Promise<void> {
    const deleted = await this.run(options, async ({ store, signal }) => {
      try {
        await store.delete(key, { signal });
        return true;
      } catch (error) {
        if (options.force === true && error instanceof NotFoundError) return false;
        throw error;
      }
    });
    if (deleted) this.io.out(`Deleted ${JSON.stringify(key)}`);
  }

  async stat(key: string, options: ConnectionOptions & { json?: boolean }): Promise<void> {
    const info = await this.run(options, ({ store, signal }) => store.stat(key, { signal }));
    const modified = Number.isNaN(info.lastModified.getTime()) ? null : info.lastModified.toISOString();
    if (options.json === true) {
      this.io.out(JSON.stringify({ key: info.key, size: info.size, etag: info.etag, content_type: info.contentType, last_modified: modified }, null, 2));
      return;
    }
    this.io.out(`key:           ${info.key}`);
    this.io.out(`size:          ${info.size}${info.size >= 1024 ? ` (${formatBytes(info.size)})` : ""}`);
    this.io.out(`etag:          ${info.etag}`);
    this.io.out(`content type:  ${info.contentType}`);
    this.io.out(`last modified: ${modified ?? "-"}`);
  }
}

// ------------------------------------------------------------------------------------------------
// The connection: flags and environment, the client's lifetime, and its errors as CLI errors.

async function withStore<T>(options: ConnectionOptions, io: CliIo, deps: ObjectsDeps, body: (context: Context) => Promise<T>): Promise<T> {
  const url = vaultUrl(options, io);
  const apiKey = options.apiKey ?? io.env["VAULT_API_KEY"];
  if (apiKey === undefined || apiKey.trim() === "") {
    throw usageError("no API key: pass --api-key TOKEN or set VAULT_API_KEY");
  }
  const store = RestStore.create({ baseUrl: url, apiKey: apiKey.trim() });
  const controller = new AbortController();
  const signals = deps.signals ?? process;
  // `once`: a second Ctrl-C finds no handler and ends the process the usual way.
  const interrupt = () => controller.abort(new CliError("interrupted"));
  signals.once("SIGINT", interrupt);
  signals.once("SIGTERM", interrupt);
  try {
    return await body({ store, signal: controller.signal });
  } catch (error) {
    if (controller.signal.aborted) throw new CliError("interrupted", undefined, { cause: error });
    throw describeFailure(error, url);
  } finally {
    signals.off("SIGINT", interrupt);
    signals.off("SIGTERM", interrupt);
    await store.close();
  }
}


/** What the user reads for a failed call (all exit 1). */
function describeFailure(error: unknown, url: string): unknown {
  if (error instanceof NotFoundError) return new CliError(`not found: ${error.key}`, undefined, { cause: error });
  if (error instanceof AuthError) {
    const message =
      error.status === 403
        ? `permission denied: ${detail(error)}`
        : `authentication failed: ${detail(error)} (check --api-key or VAULT_API_KEY)`;
    return new CliError(message, undefined, { cause: error });
  }
  if (error instanceof VaultConnectionError) {
    return new CliError(`the connection to the vault at ${url} failed: ${detail(error)}`, undefined, { cause: error });
  }
  if (error instanceof RestStoreError) return new CliError(error.message, undefined, { cause: error });
  return error;
}

/** The client's message without its `METHOD "key": ` prefix (the command line already says that). */
function detail(error: RestStoreError): string {
  return error.message.replace(/^(?:GET|HEAD|PUT|DELETE)(?: "(?:[^"\\]|\\.)*")?: /, "");
}

// ------------------------------------------------------------------------------------------------
// Files and standard streams.

interface InputSource {
  readonly stream: Readable;
  /** Known for regular files (then sent as Content-Length and shown as the bar's total). */
  readonly size: number | undefined;
}

async function openInputFile(file: string, cwd: string): Promise<InputSource> {
  const path = resolve(cwd, file);
  const handle = await open(path, "r").catch((error: unknown) => {
    throw new CliError(`cannot read ${file}: ${fsReason(error)}`, undefined, { cause: error });
  });
  try {
    const info = await handle.stat();
    if (info.isDirectory()) throw new CliError(`cannot read ${file}: it is a directory`);
    return { stream: handle.createReadStream(), size: info.isFile() ? info.size : undefined };
  } catch (error) {
    await handle.close();
    throw error;
  }
}

function openStdin(stream: Readable & { readonly isTTY?: boolean }, io: CliIo): InputSource {
  if (stream.isTTY === true) io.err("reading the object from the terminal; end it with Ctrl-D");
  let size: number | undefined;
  if (stream === process.stdin) {
    try {
      const info = fstatSync(0);
      if (info.isFile()) size = info.size; // `put KEY - < file`
    } catch {
      // no size, then
    }
  }
  return { stream, size };
}

/** The absolute path to write to, refusing a directory before anything is downloaded. */
async function outputPath(file: string, cwd: string): Promise<string> {
  const path = resolve(cwd, file);
  const existing = await stat(path).catch(() => undefined);
  if (existing?.isDirectory() === true) throw new CliError(`cannot write ${file}: it is a directory`);
  return path;
}

/** Writes to a temporary file beside `path` and renames it into place once complete. */
async function writeFileAtomically(body: Readable, path: string, shown: string, signal: AbortSignal): Promise<void> {
  const temp = join(dirname(path), `.${basename(path)}.${randomBytes(6).toString("hex")}.part`);
  const handle = await open(temp, "wx").catch((error: unknown) => {
    body.destroy();
    throw new CliError(`cannot write ${shown}: ${fsReason(error)}`, undefined, { cause: error });
  });
  try {
    await pump(body, handle.createWriteStream(), signal, true);
    await rename(temp, path);
  } catch (error) {
    await handle.close().catch(() => undefined);
    await rm(temp, { force: true });
    if (error instanceof WriteFailure) throw new CliError(`cannot write ${shown}: ${fsReason(error.cause)}`, undefined, { cause: error.cause });
    throw error;
  }
}

/** Copies to standard output without ending it; a reader that went away (`| head`) ends the copy quietly. */
async function copyToStdout(body: Readable, stdout: Writable, signal: AbortSignal): Promise<void> {
  try {
    await pump(body, stdout, signal, false);
  } catch (error) {
    if (error instanceof WriteFailure) {
      if ((error.cause as NodeJS.ErrnoException | undefined)?.code === "EPIPE") return;
      throw new CliError(`cannot write to standard output: ${fsReason(error.cause)}`, undefined, { cause: error.cause });
    }
    throw error;
  }
}

/** The destination failed (a full disk, a closed pipe), not the download. */
class WriteFailure extends Error {}

/**
 * Pipes a download into `out`. Whichever side fails first is the failure: the destination's as a
 * `WriteFailure`, the download's as a `RestStoreError` (a connection that broke off mid-body
 * becomes a `VaultConnectionError`).
 */
async function pump(body: Readable, out: Writable, signal: AbortSignal, end: boolean): Promise<void> {
  // The download may have failed already, e.g. while the temporary file was being opened.
  const failed: { first?: "read" | "write" } = body.errored !== null ? { first: "read" } : {};
  const onReadError = () => (failed.first ??= "read");
  const onWriteError = () => (failed.first ??= "write");
  body.once("error", onReadError);
  out.once("error", onWriteError);
  try {
    await pipeline(body, out, { signal, end });
  } catch (error) {
    if (signal.aborted) throw error;
    if (failed.first === "write") throw new WriteFailure("write failed", { cause: error });
    if (error instanceof RestStoreError) throw error;
    const message = error instanceof Error ? error.message : String(error);
    const code = (error as NodeJS.ErrnoException | undefined)?.code;
    throw new VaultConnectionError(`the download broke off: ${message}`, code === "UND_ERR_BODY_TIMEOUT", { cause: error });
  } finally {
    body.off("error", onReadError);
    out.off("error", onWriteError);
  }
}

/** Writes lines with backpressure; `write` answers false once the reader has gone (EPIPE). */
function lineWriter(stream: Writable): { write(line: string): Promise<boolean> } {
  let gone = false;
  const onError = () => {
    gone = true;
  };
  stream.on("error", onError);
  return {
    async write(line) {
      if (gone) return false;
      if (!stream.write(`${line}\n`)) {
        try {
          await once(stream, "drain");
        } catch {
          gone = true;
        }
      }
      return !gone;
    },
  };
}

function longLine(info: ObjectStat): string {
  const modified = Number.isNaN(info.lastModified.getTime()) ? "-".padEnd(20) : `${info.lastModified.toISOString().slice(0, 19)}Z`;
  return `${String(info.size).padStart(12)}  ${modified}  ${info.etag}  ${info.key}`;
}

function isErrno(error: unknown): error is NodeJS.ErrnoException {
  return error instanceof Error && typeof (error as NodeJS.ErrnoException).code === "string";
}

function fsReason(error: unknown): string {
  const reasons: Record<string, string> = {
    ENOENT: "no such file or directory",
    EACCES: "permission denied",
    EPERM: "permission denied",
    EISDIR: "it is a directory",
    ENOTDIR: "a part of the path is not a directory",
    ENOSPC: "no space left on the device",
    EROFS: "read-only file system",
  };
  if (isErrno(error)) return reasons[error.code ?? ""] ?? error.message;
  return error instanceof Error ? error.message : String(error);
}
