/**
 * What an operator reads in the log: an upstream failure at the default level with its reason,
 * one access line per request with the cache result, the body bytes, the backend, the client's
 * address and the token's name (never the token), the request id on every line of a request
 * (the cache's lines about it included), and one time format whether the lines are JSON (not a
 * terminal) or human-readable (a terminal, or `log_format: pretty`).
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { stripVTControlCharacters } from "node:util";
import { writeTokensFile } from "../../src/auth/tokens-file.js";
import { rawRequest } from "../support/http.js";
import { OriginServer } from "../support/origin-server.js";
import { freePort, waitFor } from "../support/process.js";
import { startTestVault, tokenRecords, type LogLine, type TestVault } from "../support/test-vault.js";
import { requireTool } from "../support/tools.js";
import { CLI_PATH, startServe, type ServeProcess } from "../support/vault-process.js";

/** `2026-12-03T09:12:00.123Z`: the one time format of both log formats. */
const ISO_TIME = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;
/** `[time] LEVEL: message {fields}`; a line with a `pid` field shows it as `LEVEL (pid):`. */
const PRETTY_LINE = /^\[(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)\] (TRACE|DEBUG|INFO|WARN|ERROR|FATAL)(?: \(\d+\))?: /;

/** `serve --config vault.yml --port 0` in `dir` (stdout a pipe). */
function serve(dir: string, env: NodeJS.ProcessEnv = {}): Promise<ServeProcess> {
  return startServe(["--config", "vault.yml", "--port", "0"], { cwd: dir, env });
}

function jsonLines(output: string): LogLine[] {
  return output
    .split("\n")
    .filter((line) => line.startsWith("{"))
    .map((line) => JSON.parse(line) as LogLine);
}

describe("the log of `serve` at the default level", () => {
  let dir: string;
  let deadPort: number;
  let token = "";
  let vault: ServeProcess;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "logging-"));
    deadPort = await freePort(); // nothing listens there: the upstream refuses
    const { records, tokens } = await tokenRecords([{ name: "ci-builder", scopes: ["read", "write"] }]);
    token = tokens["ci-builder"] ?? "";
    await writeTokensFile(join(dir, "tokens.json"), records);
    await writeFile(
      join(dir, "vault.yml"),
      ["workers: 1", "cache_dir: ./data", "backends:", `  - {type: http, name: files, config: {prefix: /files/, base_url: "http://127.0.0.1:${deadPort}/dist", timeout: 5, retries: 1}}`].join("\n"),
    );
    vault = await serve(dir);
  });
  after(async () => {
    await vault.stop();
    await rm(dir, { recursive: true, force: true });
  });

  test("an upstream failure is a warn line with the reason and the request id; the access line has bytes, backend and address", async () => {
    const failed = await rawRequest(vault.url, "/files/pkg/a.tgz", { headers: { "x-request-id": "first-contact-502" } });
    assert.equal(failed.status, 502);
    const lines = await waitFor("the access line", () => {
      const found = jsonLines(vault.output()).filter((line) => line.reqId === "first-contact-502");
      return found.some((line) => line.msg === "request") ? found : undefined;
    });
    const warning = lines.find((line) => line.msg === "upstream failed");
    assert.ok(warning !== undefined, vault.output());
    assert.equal(warning.level, 40);
    assert.match(String(warning["reason"]), new RegExp(`127\\.0\\.0\\.1:${deadPort}`));
    const access = lines.find((line) => line.msg === "request");
    assert.deepEqual(
      { status: access?.["status"], backend: access?.["backend"], bytes: access?.["bytes"], ip: access?.["ip"], token: access?.["token"] },
      { status: 502, backend: "files", bytes: failed.body.length, ip: "127.0.0.1", token: undefined },
    );
    for (const line of jsonLines(vault.output())) assert.match(String(line["time"]), ISO_TIME, JSON.stringify(line));
  });

  test("the access line names the token, never its secret, and counts the body bytes sent", async () => {
    const authorization = { authorization: `Bearer ${token}` };
    const body = Buffer.alloc(3000, 7);
    assert.equal((await rawRequest(vault.url, "/objects/logs/a.bin", { method: "PUT", body, headers: { ...authorization, "x-request-id": "put-1" } })).status, 200);
    assert.equal((await rawRequest(vault.url, "/objects/logs/a.bin", { headers: { ...authorization, "x-request-id": "get-1" } })).body.length, 3000);
    assert.equal((await rawRequest(vault.url, "/objects/logs/a.bin", { method: "HEAD", headers: { ...authorization, "x-request-id": "head-1" } })).status, 200);
    const range = await rawRequest(vault.url, "/objects/logs/a.bin", { headers: { ...authorization, range: "bytes=0-99", "x-request-id": "range-1" } });
    assert.equal(range.status, 206);
    const access = await waitFor("the access lines", () => {
      const found = new Map(jsonLines(vault.output()).filter((line) => line.msg === "request").map((line) => [line.reqId, line]));
      return ["put-1", "get-1", "head-1", "range-1"].every((id) => found.has(id)) ? found : undefined;
    });
    assert.equal(access.get("get-1")?.["bytes"], 3000);
    assert.equal(access.get("head-1")?.["bytes"], 0);
    assert.equal(access.get("range-1")?.["bytes"], 100);
    for (const id of ["put-1", "get-1", "head-1", "range-1"]) {
      assert.equal(access.get(id)?.["token"], "ci-builder", id);
      assert.equal(access.get(id)?.["backend"], undefined, id);
    }
    assert.ok(!vault.output().includes(token), "the token itself is never logged");
  });
});

describe("the cache's lines about a request carry its id", () => {
  let origin: OriginServer;
  let vault: TestVault;

  before(async () => {
    origin = await new OriginServer().start();
    vault = await startTestVault({
      logLevel: "info",
      extraYaml: `backends:\n  - {type: http, name: files, config: {prefix: /files/, base_url: "${origin.url}/dist", timeout: 5, retries: 1, mutable: ["**/latest/**"], ttl: 0}}`,
    });
  });
  after(async () => {
    await vault.close();
    await origin.stop();
  });

  const linesOf = (id: string): LogLine[] => vault.logs().filter((line) => line.reqId === id);

  test("the download a request started (cached) and the stale copy it was served", async () => {
    origin.files.set("/dist/latest/index.txt", { body: Buffer.from("version 1"), etag: '"v1"' });
    assert.equal((await rawRequest(vault.url, "/files/latest/index.txt", { headers: { "x-request-id": "fills-it" } })).header("x-cache"), "MISS");
    const cached = await waitFor("the fill's line", () => linesOf("fills-it").find((line) => line.msg === "cached"));
    assert.equal(cached["key"], "files/latest/index.txt");

    origin.files.set("/dist/latest/index.txt", { body: Buffer.alloc(0), status: 503 });
    const stale = await rawRequest(vault.url, "/files/latest/index.txt", { headers: { "x-request-id": "gets-stale" } });
    assert.equal(stale.header("x-cache"), "STALE");
    const lines = await waitFor("the stale request's lines", () => {
      const found = linesOf("gets-stale");
      return found.some((line) => line.msg === "request") ? found : undefined;
    });
    const warning = lines.find((line) => line.msg === "upstream unavailable; serving a stale copy");
    assert.ok(warning !== undefined, JSON.stringify(lines));
    assert.equal(warning.level, 40);
    assert.match(String(warning["reason"]), /503/);
    assert.equal(lines.find((line) => line.msg === "request")?.["cache"], "STALE");
  });

  test("a body sent without a length (chunked) is counted from what left the socket", async () => {
    const body = Buffer.alloc(300_000, 1);
    origin.files.set("/dist/chunked.bin", { body, chunked: true, chunkSize: 64 * 1024 });
    const answer = await rawRequest(vault.url, "/files/chunked.bin", { headers: { "x-request-id": "chunked-1" } });
    assert.equal(answer.header("content-length"), undefined);
    assert.equal(answer.body.length, body.length);
    const line = await waitFor("the access line", () => linesOf("chunked-1").find((entry) => entry.msg === "request"));
    // The chunks' framing (a size line per chunk) is counted too: close, not exact.
    const bytes = Number(line["bytes"]);
    assert.ok(bytes >= body.length && bytes < body.length + 4096, `bytes ${bytes}`);
  });
});

describe("human-readable lines", () => {
  let dir: string;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "logging-pretty-"));
    await writeFile(join(dir, "vault.yml"), "workers: 1\ncache_dir: ./data\nbackends: []\n");
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  for (const workers of [1, 2]) {
    test(`log_format: pretty (LOG_FORMAT) prints one line per event, the time as the JSON lines have it; workers: ${workers}`, async () => {
      await writeFile(join(dir, "vault.yml"), `workers: ${workers}\ncache_dir: ./data\nbackends: []\n`);
      const vault = await serve(dir, { LOG_FORMAT: "pretty" });
      try {
        assert.equal((await rawRequest(vault.url, "/health", { headers: { "x-request-id": "pretty-1" } })).status, 200);
        const line = await waitFor("the access line", () => vault.output().split("\n").find((text) => text.includes('"reqId":"pretty-1"')));
        assert.match(line, /^\[[^\]]+\] INFO: request \{.*"status":200.*\}$/);
      } finally {
        assert.equal(await vault.stop(), 0);
      }
      const lines = vault.output().trimEnd().split("\n");
      for (const line of lines) assert.match(line, PRETTY_LINE, line);
      // Every worker's last line is written at exit.
      assert.equal(lines.filter((line) => / INFO: stopped( \{"worker":\d\})?$/.test(line)).length, workers, vault.output());
      // Not a terminal: no colours.
      assert.ok(!vault.output().includes("\u001b["));
    });
  }

  test("on a terminal, the default (auto) is human-readable", async (t) => {
    const script = requireTool(t, "script");
    if (script === undefined) return;
    const clean: NodeJS.ProcessEnv = { ...process.env };
    for (const name of ["LOG_LEVEL", "LOG_FORMAT", "PORT", "HOST", "AUTH_TOKENS_FILE"]) delete clean[name];
    // `script` gives the vault a pseudo-terminal for its stdout.
    const command = `exec ${JSON.stringify(process.execPath)} ${JSON.stringify(CLI_PATH)} serve --config vault.yml --port 0`;
    const child = spawn(script, ["-qfec", command, "/dev/null"], { cwd: dir, env: clean, stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
    const exited = once(child, "exit");
    try {
      await waitFor("the listening line", () => (output.includes("artifact-vault listening") ? true : undefined), 20_000);
    } finally {
      // SIGTERM to `script` ends the session: it signals the vault (its child) and waits for it.
      child.kill("SIGTERM");
      await exited;
    }
    const plain = stripVTControlCharacters(output).replace(/\r/g, "");
    const listening = plain.split("\n").find((line) => line.includes("artifact-vault listening")) ?? "";
    assert.match(listening, PRETTY_LINE, plain);
    assert.ok(output.includes("\u001b["), "coloured on a terminal");
  });
});
