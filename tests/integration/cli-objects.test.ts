/**
 * `artifact-vault objects ...` end to end: the built CLI in its own process against the real
 * server on port 0, with pipes (not a terminal) for its standard streams.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { once } from "node:events";
import { closeSync, openSync } from "node:fs";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { startTestVault, type TestVault } from "../support/test-vault.js";

const CLI = fileURLToPath(new URL("../../src/cli/main.js", import.meta.url));

interface Run {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: Buffer;
  readonly stderr: string;
  /** stdout as text. */
  readonly out: string;
}

interface CliOptions {
  readonly env?: NodeJS.ProcessEnv;
  /** Bytes piped to stdin, or a file opened as stdin (`< file`). */
  readonly stdin?: Buffer | { file: string };
  /** Called once the process is running (e.g. to signal it). */
  readonly started?: (child: ChildProcess) => void;
}

/** Runs the built CLI without the caller's VAULT_* variables; stdout is kept as bytes. */
async function cli(args: readonly string[], options: CliOptions = {}): Promise<Run> {
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env["VAULT_URL"];
  delete env["VAULT_API_KEY"];
  const input = options.stdin;
  const stdinFd = input !== undefined && !Buffer.isBuffer(input) ? openSync(input.file, "r") : undefined;
  try {
    const child = spawn(process.execPath, [CLI, ...args], {
      env: { ...env, ...options.env },
      cwd: dir,
      stdio: [stdinFd ?? "pipe", "pipe", "pipe"],
    });
    const stdout: Buffer[] = [];
    let stderr = "";
    child.stdout?.on("data", (chunk: Buffer) => stdout.push(chunk));
    child.stderr?.on("data", (chunk: Buffer) => (stderr += chunk.toString("utf8")));
    if (Buffer.isBuffer(input)) child.stdin?.end(input);
    else child.stdin?.end();
    options.started?.(child);
    const [code, signal] = (await once(child, "close")) as [number | null, NodeJS.Signals | null];
    const bytes = Buffer.concat(stdout);
    return { code, signal, stdout: bytes, stderr, out: bytes.toString("utf8") };
  } finally {
    if (stdinFd !== undefined) closeSync(stdinFd);
  }
}

let vault: TestVault;
let dir: string;
/** The env that points the CLI at the vault with a read/write/delete token. */
let auth: NodeJS.ProcessEnv;
/** Random bytes over the 4 MiB progress threshold, and not valid UTF-8. */
const big = Buffer.concat([randomBytes(6 * 1024 * 1024 + 7), Buffer.from([0xff, 0xfe, 0x00, 0x0a, 0x0d])]);

before(async () => {
  vault = await startTestVault({
    tokens: [
      { name: "rwd", scopes: ["read", "write", "delete"] },
      { name: "ro", scopes: ["read"] },
    ],
  });
  dir = await mkdtemp(join(tmpdir(), "cli-objects-"));
  auth = { VAULT_URL: vault.url, VAULT_API_KEY: vault.tokens["rwd"] ?? "" };
  await writeFile(join(dir, "big.tar.gz"), big);
});

after(async () => {
  await vault?.close();
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

/** Files in the work dir whose name says they are a download's temporary file. */
async function leftovers(): Promise<string[]> {
  return (await readdir(dir)).filter((name) => name.endsWith(".part"));
}

void describe("artifact-vault objects", () => {
  void it("put uploads a file (content type from its extension) and is quiet on a non-terminal stderr", async () => {
    const run = await cli(["objects", "put", "builds/big.tar.gz", "big.tar.gz"], { env: auth });
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.out, `Stored "builds/big.tar.gz" (${big.length} bytes)\n`);
    assert.equal(run.stderr, "", "no progress bar (or anything else) on a piped stderr");
    const stat = await cli(["objects", "stat", "builds/big.tar.gz", "--json"], { env: auth });
    assert.equal(stat.code, 0, stat.stderr);
    const info = JSON.parse(stat.out) as Record<string, unknown>;
    assert.equal(info["size"], big.length);
    assert.equal(info["content_type"], "application/gzip");
  });

  void it("get writes to stdout, with - or no FILE, byte for byte", async () => {
    for (const args of [["builds/big.tar.gz"], ["builds/big.tar.gz", "-"]]) {
      const run = await cli(["objects", "get", ...args], { env: auth });
      assert.equal(run.code, 0, run.stderr);
      assert.equal(run.stderr, "");
      assert.ok(run.stdout.equals(big), `get ${args.join(" ")}: ${run.stdout.length} bytes, expected ${big.length}`);
    }
  });

  void it("get writes a file byte for byte, replacing an older one, and leaves no temporary file", async () => {
    await writeFile(join(dir, "copy.bin"), "older content");
    const run = await cli(["objects", "get", "builds/big.tar.gz", "copy.bin"], { env: auth });
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stderr, "");
    assert.equal(run.out, "");
    assert.ok((await readFile(join(dir, "copy.bin"))).equals(big));
    assert.deepEqual(await leftovers(), []);
  });

  void it("put - reads stdin, from a pipe and from a redirected file", async () => {
    const piped = await cli(["objects", "put", "stdin/piped", "-"], { env: auth, stdin: big });
    assert.equal(piped.code, 0, piped.stderr);
    assert.equal(piped.stderr, "");
    const redirected = await cli(["objects", "put", "stdin/redirected", "-", "--content-type", "application/x-test"], {
      env: auth,
      stdin: { file: join(dir, "big.tar.gz") },
    });
    assert.equal(redirected.code, 0, redirected.stderr);
    for (const key of ["stdin/piped", "stdin/redirected"]) {
      const run = await cli(["objects", "get", key, "-"], { env: auth });
      assert.ok(run.stdout.equals(big), `${key} round-trips`);
    }
    const stat = await cli(["objects", "stat", "stdin/redirected"], { env: auth });
    assert.match(stat.out, /^content type: {2}application\/x-test$/m);
    const piped2 = await cli(["objects", "stat", "stdin/piped", "--json"], { env: auth });
    assert.equal((JSON.parse(piped2.out) as { content_type: string }).content_type, "application/octet-stream");
  });

  void it("ls lists keys one per line under a prefix, in order; --long adds size, time and ETag", async () => {
    for (const key of ["ls/b", "ls/a", "ls/sub/c", "lsx", "ls/ünï code"]) {
      const run = await cli(["objects", "put", key, "-"], { env: auth, stdin: Buffer.from(key) });
      assert.equal(run.code, 0, run.stderr);
    }
    const run = await cli(["objects", "ls", "ls/"], { env: auth });
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.out, "ls/a\nls/b\nls/sub/c\nls/ünï code\n");
    const all = await cli(["objects", "ls"], { env: auth });
    assert.deepEqual(
      all.out.trimEnd().split("\n").filter((key) => key.startsWith("ls")),
      ["ls/a", "ls/b", "ls/sub/c", "ls/ünï code", "lsx"],
    );
    const long = await cli(["objects", "ls", "ls/s", "--long"], { env: auth });
    assert.equal(long.code, 0, long.stderr);
    assert.match(long.out, /^ {11}8 {2}\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ {2}"[^"]+" {2}ls\/sub\/c\n$/);
    const none = await cli(["objects", "ls", "no-such-prefix/"], { env: auth });
    assert.equal(none.code, 0);
    assert.equal(none.out, "");
  });

  void it("stat shows size, ETag, content type and last-modified time", async () => {
    const run = await cli(["objects", "stat", "ls/a"], { env: auth });
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.out, /^key: {11}ls\/a\nsize: {10}4\netag: {10}"[^"]+"\ncontent type: {2}application\/octet-stream\nlast modified: \d{4}-.+Z\n$/);
    const json = await cli(["objects", "stat", "ls/a", "--json"], { env: auth });
    const info = JSON.parse(json.out) as Record<string, unknown>;
    assert.deepEqual(Object.keys(info), ["key", "size", "etag", "content_type", "last_modified"]);
    assert.equal(info["key"], "ls/a");
    assert.ok(!Number.isNaN(Date.parse(String(info["last_modified"]))));
  });

  void it("rm deletes; a missing key is exit 1 unless --force", async () => {
    const run = await cli(["objects", "rm", "ls/b"], { env: auth });
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.out, 'Deleted "ls/b"\n');
    const again = await cli(["objects", "rm", "ls/b"], { env: auth });
    assert.equal(again.code, 1);
    assert.equal(again.stderr, "error: not found: ls/b\n");
    const forced = await cli(["objects", "rm", "--force", "ls/b"], { env: auth });
    assert.equal(forced.code, 0, forced.stderr);
  });

  void it("a missing key: exit 1 with a clear message, and get leaves no file behind", async () => {
    for (const command of [["get", "no/such/key"], ["stat", "no/such/key"], ["get", "no/such/key", "out.bin"]]) {
      const run = await cli(["objects", ...command], { env: auth });
      assert.equal(run.code, 1, command.join(" "));
      assert.equal(run.stderr, "error: not found: no/such/key\n");
      assert.equal(run.out, "");
    }
    assert.ok(!(await readdir(dir)).includes("out.bin"));
    assert.deepEqual(await leftovers(), []);
  });

  void it("no API key is bad usage (exit 2) naming --api-key and VAULT_API_KEY", async () => {
    for (const env of [{ VAULT_URL: vault.url }, { VAULT_URL: vault.url, VAULT_API_KEY: " " }]) {
      const run = await cli(["objects", "ls"], { env });
      assert.equal(run.code, 2);
      assert.match(run.stderr, /^error: .*--api-key.*VAULT_API_KEY/);
    }
  });

  void it("--url and --api-key flags work without the environment", async () => {
    const run = await cli(["objects", "stat", "ls/a", "--url", vault.url, "--api-key", vault.tokens["rwd"] ?? ""]);
    assert.equal(run.code, 0, run.stderr);
  });

  void it("a wrong token is exit 1 with the server's message; a missing scope names it", async () => {
    const wrong = await cli(["objects", "ls"], { env: { ...auth, VAULT_API_KEY: "avt_wrong" } });
    assert.equal(wrong.code, 1);
    assert.match(wrong.stderr, /^error: authentication failed: .+ \(check --api-key or VAULT_API_KEY\)\n$/);
    const readOnly = await cli(["objects", "put", "x", "-"], { env: { ...auth, VAULT_API_KEY: vault.tokens["ro"] ?? "" }, stdin: Buffer.from("x") });
    assert.equal(readOnly.code, 1);
    assert.match(readOnly.stderr, /^error: permission denied: .*write/);
  });

  void it("bad usage is exit 2: an unknown flag, a missing argument, an empty key, a bad --url", async () => {
    const cases: Array<[string[], RegExp]> = [
      [["objects", "ls", "--bogus"], /unknown option '--bogus'/],
      [["objects", "get"], /missing required argument 'key'/],
      [["objects", "put", "k"], /missing required argument 'file'/],
      [["objects", "stat", ""], /a key must not be empty/],
      [["objects", "ls", "--url", "ftp://host"], /--url: expected an http/],
      [["objects", "frobnicate"], /unknown command 'frobnicate'/],
    ];
    for (const [args, message] of cases) {
      const run = await cli(args, { env: auth });
      assert.equal(run.code, 2, `${args.join(" ")}: ${run.stderr}`);
      assert.match(run.stderr, message);
    }
  });

  void it("a file that cannot be read is exit 1 naming it", async () => {
    const run = await cli(["objects", "put", "k", "does-not-exist.bin"], { env: auth });
    assert.equal(run.code, 1);
    assert.equal(run.stderr, "error: cannot read does-not-exist.bin: no such file or directory\n");
  });

  void it("an unreachable server is exit 1 naming its URL", async () => {
    const closed = createServer();
    closed.listen(0, "127.0.0.1");
    await once(closed, "listening");
    const url = `http://127.0.0.1:${(closed.address() as AddressInfo).port}`;
    closed.close();
    await once(closed, "close");
    const run = await cli(["objects", "ls"], { env: { ...auth, VAULT_URL: url } });
    assert.equal(run.code, 1);
    assert.match(run.stderr, new RegExp(`^error: the connection to the vault at ${url.replaceAll(".", "\\.")} failed: .*ECONNREFUSED`));
  });

  void describe("a download that breaks off", () => {
    let server: Server;
    let url: string;
    /** Sends headers for 1 MiB and 64 KiB of it, then either cuts the connection or stalls. */
    let mode: "cut" | "stall" = "cut";
    before(async () => {
      server = createServer((request, response) => {
        response.writeHead(200, { "content-length": String(1024 * 1024), "content-type": "application/octet-stream", etag: '"x"' });
        response.write(Buffer.alloc(64 * 1024, 1), () => {
          if (mode === "cut") response.socket?.destroy();
        });
        request.on("close", () => response.destroy());
      });
      server.listen(0, "127.0.0.1");
      await once(server, "listening");
      url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    });
    after(async () => {
      server.closeAllConnections();
      server.close();
      await once(server, "close");
    });

    void it("fails with exit 1, leaves the existing file as it was and no temporary file", async () => {
      mode = "cut";
      await writeFile(join(dir, "keep.bin"), "the old version");
      const run = await cli(["objects", "get", "k", "keep.bin"], { env: { VAULT_URL: url, VAULT_API_KEY: "t" } });
      assert.equal(run.code, 1);
      assert.match(run.stderr, /^error: the connection to the vault at .* failed: /);
      assert.equal(await readFile(join(dir, "keep.bin"), "utf8"), "the old version");
      assert.deepEqual(await leftovers(), []);
    });

    void it("SIGINT mid-download removes the temporary file and exits 1", async () => {
      mode = "stall";
      const run = await cli(["objects", "get", "k", "interrupted.bin"], {
        env: { VAULT_URL: url, VAULT_API_KEY: "t" },
        started: (child) => {
          // Signal once the temporary file exists, i.e. the download is under way.
          const poll = setInterval(() => {
            void leftovers().then((found) => {
              if (found.length > 0) {
                clearInterval(poll);
                child.kill("SIGINT");
              }
            });
          }, 20);
          child.once("close", () => clearInterval(poll));
        },
      });
      assert.equal(run.signal, null, "the CLI handled the signal itself");
      assert.equal(run.code, 1);
      assert.equal(run.stderr, "error: interrupted\n");
      assert.deepEqual(await leftovers(), []);
      assert.ok(!(await readdir(dir)).includes("interrupted.bin"));
    });
  });
});
