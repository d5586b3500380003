import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const CLI = fileURLToPath(new URL("../../src/cli/main.js", import.meta.url));

interface Run {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** `artifact-vault serve ...` with a clean environment plus `env`; every case here exits before listening. */
function serve(args: readonly string[], env: NodeJS.ProcessEnv = {}): Promise<Run> {
  const base: NodeJS.ProcessEnv = { ...process.env };
  for (const name of ["HOST", "PORT", "LOG_LEVEL", "STORAGE_CONFIG", "STORAGE_NAME", "AUTH_TOKENS_FILE"]) delete base[name];
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, "serve", ...args], { env: { ...base, ...env }, cwd: dir, timeout: 20_000 }, (error, stdout, stderr) => {
      resolve({ code: error === null ? 0 : typeof error.code === "number" ? error.code : -1, stdout, stderr });
    });
  });
}

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), "cli-config-"));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function config(name: string, yaml: string): Promise<string> {
  await writeFile(join(dir, name), yaml);
  return name;
}

void describe("artifact-vault serve refuses a bad configuration with exit 2, naming the field", () => {
  const cases: Array<[string, string, RegExp]> = [
    ["an unknown top-level key", "http_prot: 8080\n", /^error: bad\.yml: unknown key "http_prot"/m],
    ["a bad value", "rate_limit:\n  per_token_per_minute: lots\n", /^error: bad\.yml: rate_limit\.per_token_per_minute: expected a number ≥ 0, got "lots"$/m],
    ["a bad nested value", "cache: {metadata_ttl: forever}\n", /^error: bad\.yml: cache\.metadata_ttl: expected a duration/m],
    ["a bad backend prefix", "backends: [{type: http, name: a, config: {prefix: apache}}]\n", /^error: bad\.yml: backends\[0\]\.config\.prefix: must start and end with "\/"/m],
    ["an unknown storage type", "storage: {stores: {x: {type: ftp}}}\n", /^error: bad\.yml: storage\.stores\.x\.type: unknown storage type "ftp"/m],
    ["an unset variable", "http_host: ${NO_SUCH_VARIABLE_HERE}\n", /^error: bad\.yml: http_host: environment variable NO_SUCH_VARIABLE_HERE is not set/m],
    ["invalid YAML", "http_port: [8080\n", /^error: bad\.yml: invalid YAML at line/m],
  ];
  for (const [what, yaml, pattern] of cases) {
    void it(what, async () => {
      const run = await serve(["--config", await config("bad.yml", yaml)]);
      assert.equal(run.code, 2, `${run.stdout}${run.stderr}`);
      assert.match(run.stderr, pattern);
      assert.equal(run.stdout, "");
    });
  }

  void it("a missing config file", async () => {
    const run = await serve(["--config", "absent.yml"]);
    assert.equal(run.code, 2);
    assert.match(run.stderr, /^error: absent\.yml: cannot read: no such file$/m);
  });

  void it("a bad environment override names the variable", async () => {
    const run = await serve(["--config", await config("ok.yml", "http_port: 0\n")], { PORT: "eighty" });
    assert.equal(run.code, 2);
    assert.match(run.stderr, /^error: environment variable PORT: http_port: expected a number from 0 to 65535, got "eighty"$/m);
  });

  void it("a bad --port names the flag", async () => {
    const run = await serve(["--port", "99999"]);
    assert.equal(run.code, 2);
    assert.match(run.stderr, /option '--port <port>' argument '99999' is invalid/);
  });

  void it("an unknown flag", async () => {
    const run = await serve(["--prot", "1"]);
    assert.equal(run.code, 2);
    assert.match(run.stderr, /unknown option '--prot'/);
  });

  void it("never prints a secret from the config", async () => {
    const yaml = "storage: {stores: {s: {type: s3, config: {bucket_name: b, s3_secret_key: {nested: hunter2-secret}}}}}\n";
    const run = await serve(["--config", await config("secret.yml", yaml)]);
    assert.equal(run.code, 2);
    assert.match(run.stderr, /storage\.stores\.s\.config\.s3_secret_key/);
    assert.ok(!run.stderr.includes("hunter2"));
  });
});
