import { watch, type FSWatcher } from "node:fs";
import { stat } from "node:fs/promises";
import { basename, dirname } from "node:path";
import type { Logger } from "pino";
import { VaultError } from "../core/errors.js";
import type { Principal } from "./principal.js";
import { hashToken, readTokensFile, type TokenRecord } from "./tokens-file.js";

/** How often a request may trigger a look at the tokens file when no watch event arrived. */
const RECHECK_INTERVAL_MS = 2000;

const CHALLENGE = 'Bearer realm="artifact-vault"';

/**
 * Authenticates requests against the tokens file (`hash` = hex SHA-256 of the token; the
 * plaintext is never stored or logged). The file is re-read when it changes: a directory watch
 * reacts at once, and a cheap stat check every few seconds covers filesystems where watches do
 * not fire. At start, an unreadable or malformed file stops the start (`start` throws, naming
 * the file and the reason); a missing one is no tokens yet. Later, a malformed file keeps the
 * last good set in force and logs an error; it never lets a request in and never stops the
 * server.
 */
export class TokenAuthenticator {
  private byHash = new Map<string, Entry>();
  private fileSignature = "";
  private lastCheck = 0;
  private reloading: Promise<void> | undefined;
  private watcher: FSWatcher | undefined;
  private loadedOnce = false;

  constructor(
    private readonly tokensFile: string,
    private readonly logger: Logger,
    private readonly now: () => number = Date.now,
  ) {}

  /** Loads the file (throws `bad_request` if it cannot be read or parsed) and starts watching it. */
  async start(): Promise<void> {
    await this.reload(true);
    try {
      const file = basename(this.tokensFile);
      this.watcher = watch(dirname(this.tokensFile), { persistent: false }, (_event, changed) => {
        if (changed === null || changed === file) this.scheduleReload();
      });
      this.watcher.on("error", (error) => {
        this.logger.warn({ err: error }, "tokens file watch failed; falling back to periodic checks");
        this.watcher?.close();
        this.watcher = undefined;
      });
    } catch (error) {
      this.logger.warn({ err: error }, "cannot watch the tokens file; falling back to periodic checks");
    }
  }

  close(): void {
    this.watcher?.close();
    this.watcher = undefined;
  }

  /** Waits for a reload in progress (tests and admin tools use this). */
  async settled(): Promise<void> {
    await this.reloading;
  }

  /** The token count in force, for health and logs. */
  get size(): number {
    return this.byHash.size;
  }

  /** Whether the file has been read (or found missing) once: the tokens are in force. */
  get loaded(): boolean {
    return this.loadedOnce;
  }

  /**
   * Resolves an Authorization header to a principal, `undefined` when there is none, or throws
   * `unauthenticated` for a malformed header or an unknown or expired token. Accepts
   * `Bearer <token>` and HTTP basic auth with the token as the password (pip, npm and
   * container clients send that).
   */
  authenticate(authorization: string | undefined): Principal | undefined {
    this.maybeRecheck();
    if (authorization === undefined || authorization === "") return undefined;
    const token = extractToken(authorization);
    const entry = this.byHash.get(hashToken(token));
    if (entry === undefined) throw unauthenticated("invalid or unknown token");
    if (entry.expiresAt <= this.now()) throw unauthenticated(`token '${entry.principal.name}' has expired`);
    return entry.principal;
  }

  private maybeRecheck(): void {
    const now = this.now();
    if (now - this.lastCheck < RECHECK_INTERVAL_MS) return;
    this.lastCheck = now;
    this.scheduleReload();
  }

  private scheduleReload(): void {
    if (this.reloading !== undefined) return;
    this.reloading = this.reload().finally(() => {
      this.reloading = undefined;
    });
  }

  /** `atStart`: a file that cannot be used throws instead of keeping the (empty) last good set. */
  private async reload(atStart = false): Promise<void> {
    this.lastCheck = this.now();
    let signature: string;
    try {
      const info = await stat(this.tokensFile);
      signature = `${info.ino}:${info.size}:${info.mtimeMs}`;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "ENOENT") {
        if (atStart) throw unusableFile(this.tokensFile, error);
        this.logger.error({ err: error, file: this.tokensFile }, "cannot read the tokens file; keeping the last good tokens");
        return;
      }
      signature = "missing";
    }
    if (signature === this.fileSignature) return;
    try {
      const records = signature === "missing" ? [] : await readTokensFile(this.tokensFile);
      this.byHash = new Map(records.map((record) => [record.hash.toLowerCase(), entryFor(record)]));
      this.fileSignature = signature;
      this.loadedOnce = true;
      this.logger.info({ file: this.tokensFile, tokens: records.length }, "tokens loaded");
    } catch (error) {
      if (atStart) throw unusableFile(this.tokensFile, error);
      // Remember the signature so a broken file is reported once, not on every check.
      this.fileSignature = signature;
      this.logger.error(
        { file: this.tokensFile, reason: error instanceof Error ? error.message : String(error) },
        "tokens file is invalid; keeping the last good tokens",
      );
    }
  }
}

/**
 * A token as the authenticator keeps it: looked up by hash (the secret itself is never compared,
 * so there is no timing side channel), with its principal built once per load, not per request.
 */
interface Entry {
  readonly principal: Principal;
  readonly expiresAt: number;
}

function entryFor(record: TokenRecord): Entry {
  return {
    principal: Object.freeze({ name: record.name, scopes: new Set(record.scopes), anonymous: false }),
    expiresAt: record.expires === null ? Number.POSITIVE_INFINITY : record.expires.getTime(),
  };
}

function extractToken(authorization: string): string {
  const space = authorization.indexOf(" ");
  const scheme = (space === -1 ? authorization : authorization.slice(0, space)).toLowerCase();
  const value = space === -1 ? "" : authorization.slice(space + 1).trim();
  if (value === "") throw unauthenticated("malformed Authorization header");
  if (scheme === "bearer") return value;
  if (scheme === "basic") {
    const decoded = Buffer.from(value, "base64").toString("utf8");
    const colon = decoded.indexOf(":");
    const password = colon === -1 ? "" : decoded.slice(colon + 1);
    if (password === "") throw unauthenticated("basic auth needs the token as the password");
    return password;
  }
  throw unauthenticated(`unsupported Authorization scheme '${scheme}'`);
}

/** Why the vault does not start with this tokens file: `cannot use the tokens file F: reason`. */
function unusableFile(file: string, error: unknown): VaultError {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  const reasons: Record<string, string> = { EACCES: "permission denied", EPERM: "permission denied", EISDIR: "it is a directory", ENOTDIR: "a part of its path is not a directory" };
  let reason = code === undefined ? undefined : reasons[code];
  if (reason === undefined) {
    const message = error instanceof Error ? error.message : String(error);
    // The parser's messages start with the file's path: said once.
    reason = message.startsWith(`${file}: `) ? message.slice(file.length + 2) : message;
  }
  return new VaultError("bad_request", `cannot use the tokens file ${file}: ${reason}; fix it, or move it away to start with no tokens`, { cause: error });
}

function unauthenticated(message: string): VaultError {
  return new VaultError("unauthenticated", message, { challenge: CHALLENGE });
}
