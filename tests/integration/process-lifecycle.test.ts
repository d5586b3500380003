import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { rawRequest } from "../support/http.js";
import { spawnVault, type VaultProcess } from "../support/vault-process.js";
import { tokenRecords } from "../support/test-vault.js";
import { writeTokensFile } from "../../src/auth/tokens-file.js";

async function setup(logLevel = "info"): Promise<{ dir: string; config: string; token: string }> {
  const dir = await mkdtemp(join(tmpdir(), "vault-proc-"));
  const { records, tokens } = await tokenRecords([{ name: "ops", scopes: ["read", "write", "delete"] }]);
  await writeTokensFile(join(dir, "tokens.json"), records);
  const config = join(dir, "config.yml");
  await writeFile(
    config,
    [
      "http_host: 127.0.0.1",
      "http_port: 0",
      `log_level: ${logLevel}`,
      "cache_dir: ./data",
      "auth: {tokens_file: ./tokens.json}",
      "rate_limit: {enabled: false}",
      "shutdown_timeout: 20s",
    ].join("\n"),
  );
  return { dir, config, token: tokens["ops"] ?? "" };
}

/** Starts a PUT whose body we feed by hand, so a test controls when it ends. */
function startUpload(url: string, path: string, token: string, totalLength: number) {
  const { hostname, port } = new URL(url);
  const req = request({ host: hostname, port, method: "PUT", path, headers: { authorization: `Bearer ${token}`, "content-length": totalLength } });
  const response = new Promise<{ status: number; body: string }>((resolve, reject) => {
    req.on("response", (res) => {
      let body = "";
      res.on("data", (chunk: Buffer) => (body += chunk.toString()));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on("error", reject);
  });
  const write = (chunk: Buffer) => new Promise<void>((resolve) => (req.write(chunk) ? resolve() : req.once("drain", resolve)));
  return { req, response, write };
}

async function findFiles(dir: string, pattern: RegExp): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries.filter((entry) => entry.isFile() && pattern.test(entry.name)).map((entry) => join(entry.parentPath, entry.name));
}

test("SIGKILL in the middle of a large overwrite leaves the old object intact and no staging files", async () => {
  const { dir, config, token } = await setup();
  let vault: VaultProcess | undefined;
  try {
    vault = await spawnVault(config);
    const original = randomBytes(3 * 1024 * 1024);
    const put = await rawRequest(vault.url, "/objects/release/big.bin", { method: "PUT", headers: { authorization: `Bearer ${token}` }, body: original });
    assert.equal(put.status, 200);

    const total = 256 * 1024 * 1024;
    const upload = startUpload(vault.url, "/objects/release/big.bin", token, total);
    upload.response.catch(() => undefined);
    const chunk = randomBytes(1024 * 1024);
    for (let sent = 0; sent < 64 * 1024 * 1024; sent += chunk.length) await upload.write(chunk);
    // Wait until the server is really staging the new version, then kill it without warning.
    const deadline = Date.now() + 10_000;
    while ((await findFiles(join(dir, "data"), /^\.tmp/)).length === 0 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    assert.ok((await findFiles(join(dir, "data"), /^\.tmp/)).length > 0, "expected a staging file during the upload");
    vault.kill("SIGKILL");
    await vault.exited();
    upload.req.destroy();

    vault = await spawnVault(config);
    const fetched = await rawRequest(vault.url, "/objects/release/big.bin", { headers: { authorization: `Bearer ${token}` } });
    assert.equal(fetched.status, 200);
    assert.equal(createHash("sha256").update(fetched.body).digest("hex"), createHash("sha256").update(original).digest("hex"));
    // Leftovers are removed by the start-up walk, which runs in the background after listening.
    const cleanDeadline = Date.now() + 5_000;
    while ((await findFiles(join(dir, "data"), /^\.tmp/)).length > 0 && Date.now() < cleanDeadline) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    assert.deepEqual(await findFiles(join(dir, "data"), /^\.tmp/), [], "staging leftovers were not cleaned at start");
  } finally {
    vault?.kill("SIGKILL");
    await vault?.exited();
    await rm(dir, { recursive: true, force: true });
  }
});

test("SIGTERM lets an in-flight upload finish, refuses new connections, then exits 0", async () => {
  const { dir, config, token } = await setup();
  const vault = await spawnVault(config);
  try {
    const body = randomBytes(8 * 1024 * 1024);
    const upload = startUpload(vault.url, "/objects/drain/in-flight.bin", token, body.length);
    await upload.write(body.subarray(0, 1024 * 1024));
    // Make sure the request reached the handler before the signal.
    await new Promise((resolve) => setTimeout(resolve, 200));
    vault.kill("SIGTERM");
    await new Promise((resolve) => setTimeout(resolve, 200));
    await assert.rejects(rawRequest(vault.url, "/health"), "a new connection after SIGTERM should be refused");
    await upload.write(body.subarray(1024 * 1024));
    upload.req.end();
    const answer = await upload.response;
    assert.equal(answer.status, 200, answer.body);
    const exit = await vault.exited();
    assert.equal(exit.code, 0, vault.output());
  } finally {
    vault.kill("SIGKILL");
    await rm(dir, { recursive: true, force: true });
  }
});

test("logs are JSON with request ids and never contain tokens", async () => {
  const { dir, config, token } = await setup("debug");
  const vault = await spawnVault(config);
  try {
    const wrong = "avt_this-is-a-wrong-but-secret-token";
    await rawRequest(vault.url, "/objects/x", { method: "PUT", headers: { authorization: `Bearer ${token}` }, body: "x" });
    await rawRequest(vault.url, "/objects/x", { headers: { authorization: `Bearer ${wrong}` } });
    await rawRequest(vault.url, "/objects/x", { headers: { authorization: `Basic ${Buffer.from(`u:${token}`).toString("base64")}` } });
    vault.kill("SIGTERM");
    await vault.exited();
    const output = vault.output();
    assert.ok(!output.includes(token), "the token leaked into the logs");
    assert.ok(!output.includes(wrong), "a rejected token leaked into the logs");
    const lines = output.trim().split("\n");
    for (const line of lines) assert.doesNotThrow(() => JSON.parse(line), `not JSON: ${line}`);
    const requests = lines.map((line) => JSON.parse(line) as Record<string, unknown>).filter((entry) => entry["msg"] === "request");
    assert.ok(requests.length >= 3);
    for (const entry of requests) assert.equal(typeof entry["reqId"], "string");
  } finally {
    vault.kill("SIGKILL");
    await rm(dir, { recursive: true, force: true });
  }
});

test("the start-up log says which backends serve where, /v2/ and apt's proxy mode included", async () => {
  const { dir, config } = await setup();
  let vault: VaultProcess | undefined;
  try {
    vault = await spawnVault(config);
    const line = vault
      .output()
      .split("\n")
      .find((entry) => entry.includes('"msg":"artifact-vault listening"'));
    assert.ok(line !== undefined, vault.output());
    // No `backends` in the file: the public upstreams.
    assert.deepEqual((JSON.parse(line) as { backends: string[] }).backends, [
      "pypi /pypi/",
      "npm /npm/",
      "docker /dockerhub/ and /v2/",
      "debian /debian/ and proxy mode for http://deb.debian.org/debian",
    ]);
  } finally {
    vault?.kill();
    await vault?.exited();
    await rm(dir, { recursive: true, force: true });
  }
});
