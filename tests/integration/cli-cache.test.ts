/**
 * `artifact-vault cache ...` end to end: the built CLI in its own process against the real
 * server on port 0 (with an http backend over a real origin), standard streams on pipes.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { once } from "node:events";
import { request as httpRequest } from "node:http";
import { fileURLToPath } from "node:url";
import { setTimeout as delay } from "node:timers/promises";
import { rawRequest } from "../support/http.js";
import { OriginServer } from "../support/origin-server.js";
import { startTestVaultInFront, type TestVault } from "../support/test-vault.js";

const CLI = fileURLToPath(new URL("../../src/cli/main.js", import.meta.url));

interface Run {
  readonly code: number | null;
  readonly out: string;
  readonly err: string;
}

/** Runs the built CLI without the caller's VAULT_* variables. */
async function cli(args: readonly string[], env: NodeJS.ProcessEnv = {}): Promise<Run> {
  const base: NodeJS.ProcessEnv = { ...process.env };
  delete base["VAULT_URL"];
  delete base["VAULT_API_KEY"];
  const child = spawn(process.execPath, [CLI, ...args], { env: { ...base, ...env }, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  let err = "";
  child.stdout.on("data", (chunk: Buffer) => (out += chunk.toString("utf8")));
  child.stderr.on("data", (chunk: Buffer) => (err += chunk.toString("utf8")));
  const [code] = (await once(child, "close")) as [number | null];
  return { code, out, err };
}

let origin: OriginServer;
let vault: TestVault;
/** Points the CLI at the vault with the admin token. */
let admin: NodeJS.ProcessEnv;

async function cached(path: string, body: Buffer): Promise<void> {
  origin.files.set(`/dist/${path}`, { body, contentType: "application/octet-stream" });
  const response = await rawRequest(vault.url, `/files/${path}`);
  assert.equal(response.status, 200);
}

before(async () => {
  origin = await new OriginServer().start();
  vault = await startTestVaultInFront(origin, {
    tokens: [
      { name: "admin", scopes: ["admin"] },
      { name: "rwd", scopes: ["read", "write", "delete"] },
    ],
    extraYaml: [
      "backends:",
      `  - {type: http, name: files, config: {prefix: /files/, base_url: "${origin.url}/dist", timeout: 5}}`,
      `  - {type: http, name: mirror, config: {prefix: /mirror/, base_url: "${origin.url}/mirror", timeout: 5}}`,
    ].join("\n"),
  });
  admin = { VAULT_URL: vault.url, VAULT_API_KEY: vault.tokens["admin"] ?? "" };
  await cached("pkg/a-1.0.tgz", randomBytes(3000));
  await cached("pkg/b-2.0.tgz", randomBytes(2 * 1024 * 1024));
  await cached("other/c.bin", randomBytes(10));
  origin.files.set("/mirror/m.bin", { body: Buffer.from("mirror") });
  assert.equal((await rawRequest(vault.url, "/mirror/m.bin")).status, 200);
});

after(async () => {
  await vault.close();
  await origin.stop();
});

describe("cache ls", () => {
  it("lists every key, in order, one per line (flags or environment)", async () => {
    const run = await cli(["cache", "ls", "--url", vault.url, "--api-key", vault.tokens["admin"] ?? ""]);
    assert.equal(run.code, 0, run.err);
    assert.deepEqual(run.out.trim().split("\n"), ["files/other/c.bin", "files/pkg/a-1.0.tgz", "files/pkg/b-2.0.tgz", "mirror/m.bin"]);
    const viaEnv = await cli(["cache", "ls"], admin);
    assert.equal(viaEnv.out, run.out);
  });

  it("narrows by prefix and by backend", async () => {
    const prefixed = await cli(["cache", "ls", "files/pkg/"], admin);
    assert.deepEqual(prefixed.out.trim().split("\n"), ["files/pkg/a-1.0.tgz", "files/pkg/b-2.0.tgz"]);
    const backend = await cli(["cache", "ls", "--backend", "mirror"], admin);
    assert.deepEqual(backend.out.trim().split("\n"), ["mirror/m.bin"]);
  });

  it("--long adds size, time cached and freshness; --json gives every field", async () => {
    const long = await cli(["cache", "ls", "files/pkg/", "--long"], admin);
    assert.equal(long.code, 0, long.err);
    const lines = long.out.replace(/\n$/, "").split("\n");
    assert.equal(lines.length, 2);
    assert.match(lines[0] ?? "", /^\s+2\.93 KiB {2}\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ {2}immutable {2}files\/pkg\/a-1\.0\.tgz$/);
    assert.match(lines[1] ?? "", /^\s+2\.00 MiB .* files\/pkg\/b-2\.0\.tgz$/);

    const json = await cli(["cache", "ls", "--json", "--backend", "files"], admin);
    assert.equal(json.code, 0, json.err);
    const entries = JSON.parse(json.out) as Array<{ key: string; backend: string; size: number; freshness: string; fresh: boolean }>;
    assert.deepEqual(
      entries.map((entry) => [entry.key, entry.backend, entry.size, entry.freshness, entry.fresh]),
      [
        ["files/other/c.bin", "files", 10, "immutable", true],
        ["files/pkg/a-1.0.tgz", "files", 3000, "immutable", true],
        ["files/pkg/b-2.0.tgz", "files", 2 * 1024 * 1024, "immutable", true],
      ],
    );
    const none = await cli(["cache", "ls", "nothing/", "--json"], admin);
    assert.deepEqual(JSON.parse(none.out), []);
  });
});

describe("cache stats", () => {
  it("--json prints the counters and sizes per backend", async () => {
    const run = await cli(["cache", "stats", "--json"], admin);
    assert.equal(run.code, 0, run.err);
    const stats = JSON.parse(run.out) as { misses: number; entry_count: number; total_bytes: number; backends: Record<string, { entries: number }> };
    assert.ok(stats.misses >= 4);
    assert.equal(stats.entry_count, 4);
    assert.equal(stats.total_bytes, 3000 + 2 * 1024 * 1024 + 10 + 6);
    assert.equal(stats.backends["files"]?.entries, 3);
    assert.equal(stats.backends["mirror"]?.entries, 1);
  });

  it("prints a readable summary", async () => {
    const run = await cli(["cache", "stats"], admin);
    assert.equal(run.code, 0, run.err);
    assert.match(run.out, /^hit ratio: +\d+\.\d%$/m);
    assert.match(run.out, /^cached: +4 entries, 2\.00 MiB \(no max_size\)$/m);
    assert.match(run.out, /^ {2}files +3 entries +2\.00 MiB$/m);
  });
});

describe("cache purge", () => {
  it("purges one key: the next request is a miss again", async () => {
    origin.files.set("/dist/purge/x.bin", { body: Buffer.from("x") });
    await rawRequest(vault.url, "/files/purge/x.bin");
    const run = await cli(["cache", "purge", "files/purge/x.bin"], admin);
    assert.equal(run.code, 0, run.err);
    assert.equal(run.out.trim(), "Purged 1 entry");
    assert.equal((await rawRequest(vault.url, "/files/purge/x.bin")).header("x-cache"), "MISS");
    assert.equal(origin.count("/dist/purge/x.bin"), 2);
    const again = await cli(["cache", "purge", "files/purge/none.bin"], admin);
    assert.equal(again.code, 0, again.err);
    assert.equal(again.out.trim(), "Purged 0 entries");
  });

  it("purges a prefix and nothing else", async () => {
    for (const name of ["p/1", "p/2", "q/3"]) {
      origin.files.set(`/mirror/${name}`, { body: Buffer.from(name) });
      await rawRequest(vault.url, `/mirror/${name}`);
    }
    const run = await cli(["cache", "purge", "--prefix", "mirror/p/"], admin);
    assert.equal(run.code, 0, run.err);
    assert.equal(run.out.trim(), "Purged 2 entries");
    assert.deepEqual((await cli(["cache", "ls", "mirror/"], admin)).out.trim().split("\n"), ["mirror/m.bin", "mirror/q/3"]);
  });
});

describe("cache fills", () => {
  it("without a terminal, lists the downloads in progress once", async () => {
    const idle = await cli(["cache", "fills"], admin);
    assert.equal(idle.code, 0, idle.err);
    assert.equal(idle.out.trim(), "no downloads in progress");

    const body = randomBytes(1024 * 1024);
    // The download stays in progress, after its first chunk, until both listings are done.
    let finish = (): void => undefined;
    const listed = new Promise<void>((resolve) => (finish = resolve));
    origin.files.set("/dist/slow/fill.bin", { body, chunkSize: 32 * 1024, pauseAfter: { bytes: 32 * 1024, until: listed } });
    const download = new Promise<void>((resolve, reject) => {
      const { hostname, port } = new URL(vault.url);
      httpRequest({ host: hostname, port, path: "/files/slow/fill.bin", agent: false }, (res) => {
        res.resume();
        res.on("end", resolve);
        res.on("error", reject);
      })
        .on("error", reject)
        .end();
    });
    while ((origin.bytesSent.get("/dist/slow/fill.bin") ?? 0) === 0) await delay(10);
    const busy = await cli(["cache", "fills"], admin);
    assert.equal(busy.code, 0, busy.err);
    assert.match(busy.out, /^ *\d+\.\d% {2}[\d.]+ (?:B|KiB)\/1\.00 MiB +\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ {2}files\/slow\/fill\.bin$/m);
    const json = await cli(["cache", "fills", "--json"], admin);
    const fills = (JSON.parse(json.out) as { fills: Array<{ key: string; total: number }> }).fills;
    assert.deepEqual(
      fills.map((fill) => [fill.key, fill.total]),
      [["files/slow/fill.bin", body.length]],
    );
    finish();
    await download;
  });
});

describe("cache: errors and exit codes", () => {
  it("bad usage exits 2 with a message naming the problem", async () => {
    const cases: Array<[string[], RegExp]> = [
      [["cache", "purge"], /say what to purge/],
      [["cache", "purge", "files/x", "--all"], /only one of KEY, --prefix or --all/],
      [["cache", "purge", "--prefix", ""], /use --all/],
      [["cache", "ls", "--bogus"], /unknown option '--bogus'/],
      [["cache", "ls", "--backend", "a/b"], /backend name/],
      [["cache", "ls", "--long", "--json"], /do not go together/],
      [["cache", "stats", "--url", "not a url"], /--url: not a URL/],
      [["cache", "frobnicate"], /unknown command|too many arguments/],
    ];
    for (const [args, message] of cases) {
      const run = await cli(args, admin);
      assert.equal(run.code, 2, `${args.join(" ")}: ${run.err}`);
      assert.match(run.err, message, args.join(" "));
    }
  });

  it("a missing API key exits 2", async () => {
    const run = await cli(["cache", "stats", "--url", vault.url]);
    assert.equal(run.code, 2);
    assert.match(run.err, /^error: no API key: pass --api-key TOKEN or set VAULT_API_KEY$/m);
  });

  it("a token without the admin scope, an unknown token and an unreachable server exit 1", async () => {
    const denied = await cli(["cache", "ls"], { VAULT_URL: vault.url, VAULT_API_KEY: vault.tokens["rwd"] ?? "" });
    assert.equal(denied.code, 1);
    assert.match(denied.err, /^error: permission denied: .*'admin' scope/m);
    const unknown = await cli(["cache", "stats"], { VAULT_URL: vault.url, VAULT_API_KEY: "nope" });
    assert.equal(unknown.code, 1);
    assert.match(unknown.err, /^error: authentication failed: .*check --api-key/m);
    const unreachable = await cli(["cache", "stats", "--url", "http://127.0.0.1:1", "--api-key", "x"]);
    assert.equal(unreachable.code, 1);
    assert.match(unreachable.err, /^error: the connection to the vault at http:\/\/127\.0\.0\.1:1 failed: .*ECONNREFUSED/m);
  });

  it("--help describes the subcommands", async () => {
    const run = await cli(["cache", "--help"]);
    assert.equal(run.code, 0);
    for (const command of ["ls", "stats", "purge", "fills"]) assert.match(run.out, new RegExp(`^ {2}${command}\\b`, "m"));
  });
});

describe("cache purge --all", () => {
  it("empties the cache", async () => {
    const run = await cli(["cache", "purge", "--all"], admin);
    assert.equal(run.code, 0, run.err);
    assert.match(run.out, /^Purged \d+ entries$/m);
    assert.equal((await cli(["cache", "ls"], admin)).out, "");
    const stats = JSON.parse((await cli(["cache", "stats", "--json"], admin)).out) as { entry_count: number; total_bytes: number };
    assert.equal(stats.entry_count, 0);
    assert.equal(stats.total_bytes, 0);
  });
});
