import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { pino } from "pino";
import { startVault, type RunningVault } from "../../src/app.js";
import { loadConfig } from "../../src/config/load-config.js";
import { generateToken, hashToken, writeTokensFile, type Scope, type TokenRecord } from "../../src/auth/tokens-file.js";
import { startTestS3, type TestS3 } from "./s3-server.js";

export interface TestTokenSpec {
  readonly name: string;
  readonly scopes: readonly Scope[];
  /** Milliseconds from now; negative = already expired; undefined = never. */
  readonly expiresInMs?: number;
}

export interface TestVault {
  readonly url: string;
  readonly dir: string;
  readonly tokensFile: string;
  /** Plaintext token by name. */
  readonly tokens: Readonly<Record<string, string>>;
  auth(name: string): { authorization: string };
  /** What the vault logged at warn and above (or at `TEST_LOG_LEVEL`), one parsed JSON line each. */
  logs(): LogLine[];
  /** With `storage: "s3"`: the S3 endpoint the vault stores in (stopped by `close`). */
  readonly s3: TestS3 | undefined;
  close(): Promise<void>;
}

export interface LogLine {
  readonly level: number;
  readonly msg: string;
  readonly reqId?: string;
  readonly [field: string]: unknown;
}

export const ALL_SCOPES: readonly Scope[] = ["read", "write", "delete", "admin"];

export async function tokenRecords(specs: readonly TestTokenSpec[]): Promise<{ records: TokenRecord[]; tokens: Record<string, string> }> {
  const tokens: Record<string, string> = {};
  const records = specs.map((spec) => {
    const token = generateToken();
    tokens[spec.name] = token;
    return {
      name: spec.name,
      hash: hashToken(token),
      scopes: [...spec.scopes],
      createdAt: new Date(),
      expires: spec.expiresInMs === undefined ? null : new Date(Date.now() + spec.expiresInMs),
    };
  });
  return { records, tokens };
}

/**
 * Starts the real service in this process on 127.0.0.1:0 with a config file written to a temp
 * dir (so the config loader is exercised too). `extraYaml` is appended to the config.
 */
export async function startTestVault(
  options: {
    /** `s3`: a bucket of an S3 server started for this vault (see `s3-server.ts`), stopped by `close()`. */
    storage?: "memory" | "filesystem" | "s3";
    tokens?: readonly TestTokenSpec[];
    extraYaml?: string;
    proxyAuth?: "anonymous" | "token";
    /** The filesystem store's root, kept after `close()`: a second vault on it is the first one restarted. */
    dataDir?: string;
    /** What `logs()` captures (default warn). */
    logLevel?: "debug" | "info" | "warn";
  } = {},
): Promise<TestVault> {
  const dir = await mkdtemp(join(tmpdir(), "vault-test-"));
  const tokensFile = join(dir, "tokens.json");
  const { records, tokens } = await tokenRecords(options.tokens ?? [{ name: "all", scopes: ALL_SCOPES }]);
  await writeTokensFile(tokensFile, records);
  let s3: TestS3 | undefined;
  let storage: string;
  switch (options.storage ?? "filesystem") {
    case "memory":
      storage = "storage: {stores: {mem: {type: memory, config: {}}}, main: mem}";
      break;
    case "s3": {
      s3 = await startTestS3({ conditionalWrites: true });
      storage = `storage: {stores: {s3: {type: s3, config: ${JSON.stringify(s3.storeConfig())}}}, main: s3}`;
      break;
    }
    default:
      storage = `storage: {stores: {local: {type: filesystem, config: {root_path: ${JSON.stringify(options.dataDir ?? join(dir, "data"))}}}}, main: local}`;
  }
  const configFile = join(dir, "config.yml");
  await writeFile(
    configFile,
    [
      "http_host: 127.0.0.1",
      "http_port: 0",
      "log_level: silent",
      storage,
      `auth: {tokens_file: ${JSON.stringify(tokensFile)}, proxy: ${options.proxyAuth ?? "anonymous"}}`,
      options.extraYaml ?? "",
    ].join("\n"),
  );
  const config = await loadConfig({ file: configFile, env: {} });
  const lines: LogLine[] = [];
  const echo = process.env["TEST_LOG_LEVEL"] !== undefined;
  const capture = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString("utf8").split("\n")) {
        if (line.trim() === "") continue;
        lines.push(JSON.parse(line) as LogLine);
        if (echo) process.stderr.write(`${line}\n`);
      }
      done();
    },
  });
  let vault: RunningVault;
  try {
    vault = await startVault(config, pino({ level: process.env["TEST_LOG_LEVEL"] ?? options.logLevel ?? "warn" }, capture));
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    await s3?.close();
    throw error;
  }
  return {
    url: vault.url,
    dir,
    tokensFile,
    tokens,
    auth: (name: string) => ({ authorization: `Bearer ${tokens[name] ?? "missing-token"}` }),
    logs: () => [...lines],
    s3,
    close: async () => {
      try {
        await vault.close();
      } finally {
        await rm(dir, { recursive: true, force: true });
        await s3?.close();
      }
    },
  };
}

/**
 * What the vault logged (at warn) as the reason an upstream failed for request `requestId`: the
 * client got only a generic message quoting that id.
 */
export function loggedUpstreamReason(vault: TestVault, requestId: string | undefined): string {
  const line = vault.logs().find((entry) => entry.reqId === requestId && entry.msg === "upstream failed");
  if (line === undefined || typeof line["reason"] !== "string") throw new Error(`no "upstream failed" log line for request ${requestId ?? "(none)"}`);
  return line["reason"];
}

/** The message every client gets for an upstream failure: no URL, no socket error, the request id to quote. */
export const GENERIC_UPSTREAM_FAILURE = /the upstream failed \(request [0-9a-f-]{36}; the vault's log has the details\)/;

/**
 * Starts a test vault in front of an upstream the test already started, or stops that upstream
 * if the vault cannot start (a `before` that throws runs no `after`, and a running server would
 * hang the test run).
 */
export async function startTestVaultInFront(upstream: { stop(): Promise<void> }, options: Parameters<typeof startTestVault>[0]): Promise<TestVault> {
  try {
    return await startTestVault(options);
  } catch (error) {
    await upstream.stop();
    throw error;
  }
}
