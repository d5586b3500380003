/**
 * What `serve` says at start about what it was given: a tokens file it cannot use stops it (the
 * file and the reason, exit 2), a missing one is no tokens yet; a config whose `backends` list
 * leaves out default backends says which are not served.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CLI_PATH, startServe } from "../support/vault-process.js";

function cleanEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const name of ["HOST", "PORT", "LOG_LEVEL", "LOG_FORMAT", "STORAGE_CONFIG", "STORAGE_NAME", "AUTH_TOKENS_FILE"]) delete env[name];
  return env;
}

/** `serve` that is expected to refuse to start: its exit code and output. */
function serveRefused(dir: string, args: readonly string[] = []): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile(process.execPath, [CLI_PATH, "serve", "--config", "vault.yml", "--port", "0", ...args], { cwd: dir, env: cleanEnv(), timeout: 30_000 }, (error, stdout, stderr) => {
      resolve({ code: error === null ? 0 : typeof error.code === "number" ? error.code : null, stdout, stderr });
    });
    child.stdin?.end();
  });
}

/** `serve` that starts: the JSON lines it logged up to and including "artifact-vault listening"; then stopped. */
async function startupLines(dir: string): Promise<Array<Record<string, unknown>>> {
  const vault = await startServe(["--config", "vault.yml", "--port", "0"], { cwd: dir });
  await vault.stop();
  return vault.logLines();
}

describe("a tokens file serve cannot use", () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "serve-tokens-"));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const cases: Array<[string, (file: string) => Promise<void>, RegExp]> = [
    ["not JSON", (file) => writeFile(file, '[{"name": "ci", "hash": '), /not valid JSON/],
    ["an entry without a valid hash", (file) => writeFile(file, JSON.stringify([{ name: "ci", hash: "nothex", expires: null, created_at: "2026-01-01T00:00:00+00:00", scopes: ["read"] }])), /\[0\] \("ci"\)\.hash: expected 64 hex digits/],
    ["a directory", (file) => mkdir(file), /it is a directory/],
  ];
  for (const [what, make, reason] of cases) {
    for (const workers of [1, 2]) {
      test(`${what}, workers: ${workers}: refused with the file and the reason, exit 2`, async () => {
        const case_ = join(dir, `${what.replace(/\W+/g, "-")}-${workers}`);
        await mkdir(case_);
        const file = join(case_, "tokens.json");
        await make(file);
        await writeFile(join(case_, "vault.yml"), `cache_dir: ./data\nworkers: ${workers}\nauth: {tokens_file: ./tokens.json}\nbackends: []\n`);
        const run = await serveRefused(case_);
        assert.equal(run.code, 2, run.stdout + run.stderr);
        const message = run.stderr.split("\n").find((line) => line.startsWith("error: ")) ?? "";
        assert.ok(message.startsWith(`error: cannot use the tokens file ${file}: `), run.stderr);
        assert.match(message, reason);
        assert.ok(!run.stdout.includes('"artifact-vault listening"'));
      });
    }
  }

  test("a missing file is no tokens yet: it starts, and says how to make one", async () => {
    const case_ = join(dir, "missing");
    await mkdir(case_);
    await writeFile(join(case_, "vault.yml"), "cache_dir: ./data\nworkers: 1\nbackends: []\n");
    const lines = await startupLines(case_);
    const warning = lines.find((line) => String(line["msg"]).startsWith("no API tokens yet"));
    assert.equal(warning?.["file"], join(case_, "tokens.json"));
  });
});

describe("backends from the config replace the defaults", () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "serve-backends-"));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const note = "backends from the config replace the defaults (pypi, npm, docker, debian)";

  test("a backends list without some defaults says, at info, which default prefixes are not served", async () => {
    await writeFile(
      join(dir, "vault.yml"),
      "cache_dir: ./data\nworkers: 1\nbackends:\n  - {type: pypi, name: pypi, config: {prefix: /pypi/, index_url: \"https://pypi.example.org/simple\"}}\n  - {type: http, name: files, config: {prefix: /files/, base_url: \"https://files.example.org\"}}\n",
    );
    const lines = await startupLines(dir);
    const line = lines.find((entry) => entry["msg"] === note);
    assert.equal(line?.["level"], 30, JSON.stringify(lines));
    assert.deepEqual(line?.["notServed"], ["npm /npm/", "docker /dockerhub/", "debian /debian/"]);
  });

  test("without a backends key (the defaults), nothing is said", async () => {
    await writeFile(join(dir, "vault.yml"), "cache_dir: ./data\nworkers: 1\n");
    const lines = await startupLines(dir);
    assert.ok(lines.some((entry) => entry["msg"] === "artifact-vault listening"));
    assert.ok(!lines.some((entry) => entry["msg"] === note));
  });
});
