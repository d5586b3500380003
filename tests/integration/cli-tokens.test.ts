import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { spawnVault } from "../support/vault-process.js";

const CLI = fileURLToPath(new URL("../../src/cli/main.js", import.meta.url));

interface Run {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs the built CLI with a clean environment (no HOST/PORT/AUTH_TOKENS_FILE from the caller). */
function cli(args: readonly string[], options: { env?: NodeJS.ProcessEnv; cwd?: string } = {}): Promise<Run> {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const name of ["HOST", "PORT", "LOG_LEVEL", "STORAGE_CONFIG", "STORAGE_NAME", "AUTH_TOKENS_FILE"]) delete env[name];
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { env: { ...env, ...options.env }, cwd: options.cwd }, (error, stdout, stderr) => {
      const code = error === null ? 0 : typeof error.code === "number" ? error.code : -1;
      resolve({ code, stdout, stderr });
    });
  });
}

interface FileEntry {
  name: string;
  hash: string;
  expires: string | null;
  created_at: string;
  scopes: string[];
}

async function entries(file: string): Promise<FileEntry[]> {
  return JSON.parse(await readFile(file, "utf8")) as FileEntry[];
}

const sha256 = (text: string) => createHash("sha256").update(text, "utf8").digest("hex");
const lastLine = (text: string) => text.trimEnd().split("\n").at(-1) ?? "";

let dir: string;
let file: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), "cli-tokens-"));
  file = join(dir, "tokens.json");
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

void describe("artifact-vault tokens", () => {
  let token = "";

  void it("add prints the token on its last line and stores only its SHA-256", async () => {
    const before = Date.now();
    const run = await cli(["tokens", "add", "ci", "--ttl", "30", "--scope", "read", "--scope", "write", "--file", file]);
    assert.equal(run.code, 0, run.stderr);
    token = lastLine(run.stdout);
    assert.match(token, /^avt_[A-Za-z0-9_-]{43}$/);
    const [entry] = await entries(file);
    assert.equal(entry?.name, "ci");
    assert.equal(entry?.hash, sha256(token));
    assert.deepEqual(entry?.scopes, ["read", "write"]);
    assert.match(entry?.created_at ?? "", /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00$/);
    const expires = Date.parse(entry?.expires ?? "");
    assert.ok(Math.abs(expires - (before + 30 * 86_400_000)) < 60_000, `expires ${entry?.expires}`);
    assert.ok(!(await readFile(file, "utf8")).includes(token), "the plaintext token reached the file");
    assert.equal((await stat(file)).mode & 0o777, 0o600);
  });

  void it("list shows name, scopes and dates but never the token or its hash", async () => {
    const run = await cli(["tokens", "list", "--file", file]);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /^NAME\s+SCOPES\s+CREATED\s+EXPIRES\s+STATUS$/m);
    assert.match(run.stdout, /^ci\s+read,write\s+\S+Z\s+\S+Z\s+active$/m);
    assert.ok(!run.stdout.includes(token));
    assert.ok(!run.stdout.includes(sha256(token)));
    const json = await cli(["tokens", "list", "--json", "--file", file]);
    assert.deepEqual(
      (JSON.parse(json.stdout) as Array<Record<string, unknown>>).map((entry) => Object.keys(entry).sort()),
      [["created_at", "expired", "expires", "name", "scopes"]],
    );
    assert.ok(!json.stdout.includes(sha256(token)));
  });

  void it("adding an existing name fails and leaves the file alone", async () => {
    const original = await readFile(file, "utf8");
    const run = await cli(["tokens", "add", "ci", "--ttl", "1", "--scope", "read", "--file", file]);
    assert.equal(run.code, 1);
    assert.match(run.stderr, /already exists/);
    assert.equal(await readFile(file, "utf8"), original);
  });

  void it("refresh changes the expiry (and scopes with --scope), keeping the token", async () => {
    const [previous] = await entries(file);
    const run = await cli(["tokens", "refresh", "ci", "--ttl", "never", "--scope", "read,delete", "--file", file]);
    assert.equal(run.code, 0, run.stderr);
    const [entry] = await entries(file);
    assert.equal(entry?.expires, null);
    assert.deepEqual(entry?.scopes, ["read", "delete"]);
    assert.equal(entry?.hash, previous?.hash);
    assert.equal(entry?.created_at, previous?.created_at);

    const shorter = await cli(["tokens", "refresh", "ci", "--ttl", "0.5", "--file", file]);
    assert.equal(shorter.code, 0, shorter.stderr);
    const [after] = await entries(file);
    assert.ok(Math.abs(Date.parse(after?.expires ?? "") - (Date.now() + 43_200_000)) < 60_000);
    assert.deepEqual(after?.scopes, ["read", "delete"], "scopes stay without --scope");
  });

  void it("marks expired tokens in the list", async () => {
    const expired = {
      name: "old",
      hash: sha256("old-token"),
      expires: "2020-01-01T00:00:00+00:00",
      created_at: "2019-01-01T00:00:00Z",
      scopes: ["read"],
    };
    await writeFile(file, JSON.stringify([...(await entries(file)), expired]));
    const run = await cli(["tokens", "list", "--file", file]);
    assert.match(run.stdout, /^old\s+read\s+2019-01-01T00:00:00Z\s+2020-01-01T00:00:00Z\s+expired$/m);
  });

  void it("delete removes the token; deleting it again fails", async () => {
    const run = await cli(["tokens", "delete", "ci", "--file", file]);
    assert.equal(run.code, 0, run.stderr);
    assert.deepEqual((await entries(file)).map((entry) => entry.name), ["old"]);
    const again = await cli(["tokens", "delete", "ci", "--file", file]);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /no token named "ci"/);
  });

  void it("uses $AUTH_TOKENS_FILE when there is no --file", async () => {
    const other = join(dir, "from-env.json");
    const run = await cli(["tokens", "add", "env", "--ttl", "1", "--scope", "admin"], { env: { AUTH_TOKENS_FILE: other } });
    assert.equal(run.code, 0, run.stderr);
    assert.deepEqual((await entries(other)).map((entry) => entry.name), ["env"]);
  });

  void it("defaults to ./tokens.json", async () => {
    const cwd = await mkdtemp(join(tmpdir(), "cli-tokens-cwd-"));
    try {
      const run = await cli(["tokens", "add", "here", "--ttl", "1", "--scope", "read"], { cwd });
      assert.equal(run.code, 0, run.stderr);
      assert.equal((await entries(join(cwd, "tokens.json")))[0]?.hash, sha256(lastLine(run.stdout)));
    } finally {
      await rm(cwd, { recursive: true, force: true });
    }
  });
});

void describe("artifact-vault tokens: bad usage exits 2 and names the flag", () => {
  const cases: Array<[string, string[], RegExp]> = [
    ["an unknown scope", ["tokens", "add", "x", "--ttl", "1", "--scope", "root"], /--scope.*unknown scope "root"/],
    ["no scope", ["tokens", "add", "x", "--ttl", "1"], /required option '--scope <scope>' not specified/],
    ["no ttl", ["tokens", "add", "x", "--scope", "read"], /required option '--ttl <days>' not specified/],
    ["a zero ttl", ["tokens", "add", "x", "--ttl", "0", "--scope", "read"], /--ttl.*greater than 0/],
    ["a negative ttl", ["tokens", "add", "x", "--ttl", "-3", "--scope", "read"], /--ttl|unknown option '-3'/],
    ["a word ttl", ["tokens", "refresh", "x", "--ttl", "soon"], /--ttl.*'soon' is invalid/],
    ["an unknown flag", ["tokens", "list", "--verbose"], /unknown option '--verbose'/],
    ["a missing name", ["tokens", "delete"], /missing required argument 'name'/],
    ["an extra argument", ["tokens", "delete", "a", "b"], /too many arguments/],
    ["an unknown subcommand", ["tokens", "rotate", "x"], /unknown command 'rotate'/],
    ["no subcommand", ["tokens"], /Usage: artifact-vault tokens/],
  ];
  for (const [what, args, pattern] of cases) {
    void it(what, async () => {
      const run = await cli(args[0] === "tokens" && args.length > 1 ? [...args, "--file", file] : args);
      assert.equal(run.code, 2, `${run.stdout}${run.stderr}`);
      assert.match(run.stderr, pattern);
    });
  }

  void it("a malformed tokens file is bad configuration (2) and is named", async () => {
    const broken = join(dir, "broken.json");
    await writeFile(broken, JSON.stringify([{ name: "a", hash: "nothex", created_at: "2020-01-01", scopes: [] }]));
    const run = await cli(["tokens", "list", "--file", broken]);
    assert.equal(run.code, 2);
    assert.match(run.stderr, /broken\.json: \[0\] \("a"\)\.hash: expected 64 hex digits/);
  });

  void it("--help on each subcommand exits 0", async () => {
    for (const args of [["--help"], ["tokens", "--help"], ["tokens", "add", "--help"], ["tokens", "list", "--help"], ["serve", "--help"]]) {
      const run = await cli(args);
      assert.equal(run.code, 0, args.join(" "));
      assert.match(run.stdout, /^Usage: artifact-vault/);
    }
  });
});

void describe("artifact-vault tokens --config: the tokens file serve reads", () => {
  let home: string;
  let config: string;
  before(async () => {
    home = await mkdtemp(join(tmpdir(), "cli-tokens-config-"));
    await mkdir(join(home, "conf"));
    config = join(home, "conf", "vault.yml");
    // Relative to the config file, as serve resolves it.
    await writeFile(config, "http_host: 127.0.0.1\nhttp_port: 0\nworkers: 1\nstorage: {stores: {m: {type: memory}}}\nauth: {tokens_file: ../secrets/tokens.json}\nbackends: []\n");
  });
  after(async () => {
    await rm(home, { recursive: true, force: true });
  });

  void it("a token added with --config is accepted by `serve --config` with the same file", async () => {
    const run = await cli(["tokens", "add", "ci", "--ttl", "1", "--scope", "read", "--config", "conf/vault.yml"], { cwd: home });
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, new RegExp(`to ${join(home, "secrets", "tokens.json").replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}`));
    const listed = await cli(["tokens", "list", "--config", config]);
    assert.match(listed.stdout, /^ci\s+read\s/m);
    const vault = await spawnVault(config);
    try {
      const response = await fetch(`${vault.url}/objects`, { headers: { authorization: `Bearer ${lastLine(run.stdout)}` } });
      assert.equal(response.status, 200);
    } finally {
      vault.kill();
      await vault.exited();
    }
  });

  void it("$AUTH_TOKENS_FILE overrides the config's file, as it does for serve", async () => {
    const other = join(home, "from-env.json");
    const run = await cli(["tokens", "add", "env", "--ttl", "1", "--scope", "read", "--config", config], { env: { AUTH_TOKENS_FILE: other } });
    assert.equal(run.code, 0, run.stderr);
    assert.deepEqual((await entries(other)).map((entry) => entry.name), ["env"]);
  });

  void it("--config and --file together, or a config that does not load, are bad usage (2)", async () => {
    const both = await cli(["tokens", "list", "--config", config, "--file", join(home, "x.json")]);
    assert.equal(both.code, 2);
    assert.match(both.stderr, /give --file or --config, not both/);
    await writeFile(join(home, "bad.yml"), "auth: {tokens_fil: ./t.json}\n");
    const bad = await cli(["tokens", "list", "--config", join(home, "bad.yml")]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /bad\.yml: auth: unknown key "tokens_fil"/);
  });
});
