/**
 * `artifact-vault cache fills` on a terminal: live progress bars (cli-progress MultiBar) that
 * follow a slow download on the real server until it ends. Standard error is a stand-in
 * terminal (`isTTY: true`) recording what is drawn.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { EventEmitter } from "node:events";
import { request as httpRequest } from "node:http";
import { Writable } from "node:stream";
import { setTimeout as delay } from "node:timers/promises";
import { Command } from "commander";
import { registerCacheCommand } from "../../src/cli/cache-command.js";
import type { CliIo } from "../../src/cli/cli-io.js";
import type { ProgressOutput } from "../../src/cli/transfer-progress.js";
import { rawRequest } from "../support/http.js";
import { OriginServer } from "../support/origin-server.js";
import { startTestVaultInFront, type TestVault } from "../support/test-vault.js";

function terminal(): { stream: ProgressOutput; text: () => string } {
  let written = "";
  const stream = Object.assign(
    new Writable({
      write(chunk: Buffer | string, _encoding, callback) {
        written += chunk.toString();
        callback();
      },
    }),
    { isTTY: true, columns: 160 },
  );
  return { stream, text: () => written };
}

/** Waits until the server lists the download among its fills. */
async function fillStarted(vault: TestVault, key: string): Promise<void> {
  for (;;) {
    const response = await rawRequest(vault.url, "/admin/cache/fills", { headers: vault.auth("admin") });
    if (response.json<{ fills: Array<{ key: string }> }>().fills.some((fill) => fill.key === key)) return;
    await delay(5);
  }
}

async function runCache(args: readonly string[], stderr: ProgressOutput, signals = new EventEmitter()): Promise<{ out: string[]; err: string[] }> {
  const out: string[] = [];
  const err: string[] = [];
  const io: CliIo = { out: (line) => out.push(line), err: (line) => err.push(line), env: {}, cwd: process.cwd(), now: () => new Date() };
  const program = new Command("artifact-vault").exitOverride();
  registerCacheCommand(program, io, { stderr, signals, pollIntervalMs: 25 });
  await program.parseAsync(["cache", ...args], { from: "user" });
  return { out, err };
}

describe("cache fills on a terminal", () => {
  let origin: OriginServer;
  let vault: TestVault;

  before(async () => {
    origin = await new OriginServer().start();
    vault = await startTestVaultInFront(origin, {
      tokens: [{ name: "admin", scopes: ["admin"] }],
      extraYaml: ["backends:", `  - {type: http, name: files, config: {prefix: /files/, base_url: "${origin.url}/dist", timeout: 5}}`].join("\n"),
    });
  });
  after(async () => {
    await vault.close();
    await origin.stop();
  });

  it("says so at once when nothing is downloading", async () => {
    const tty = terminal();
    const { out } = await runCache(["fills", "--url", vault.url, "--api-key", vault.tokens["admin"] ?? ""], tty.stream);
    assert.deepEqual(out, ["no downloads in progress"]);
    assert.equal(tty.text(), "");
  });

  it("draws a bar per download, refreshes it, and ends when none remain", async () => {
    const body = randomBytes(1024 * 1024);
    // Held after its first chunk until the live view has drawn it.
    let release = (): void => undefined;
    const drawnOnce = new Promise<void>((resolve) => (release = resolve));
    origin.files.set("/dist/live/slow.bin", { body, chunkSize: 32 * 1024, pauseAfter: { bytes: 32 * 1024, until: drawnOnce } });
    const download = new Promise<void>((resolve, reject) => {
      const { hostname, port } = new URL(vault.url);
      httpRequest({ host: hostname, port, path: "/files/live/slow.bin", agent: false }, (res) => {
        res.resume();
        res.on("end", resolve);
        res.on("error", reject);
      })
        .on("error", reject)
        .end();
    });
    await fillStarted(vault, "files/live/slow.bin");

    const tty = terminal();
    const watching = runCache(["fills", "--url", vault.url, "--api-key", vault.tokens["admin"] ?? ""], tty.stream);
    while (!tty.text().includes("slow.bin")) await delay(5);
    release();
    const { out } = await watching;
    await download;
    assert.deepEqual(out, ["no downloads in progress (1 ended while watching)"]);
    const drawn = tty.text();
    assert.match(drawn, /files\/live\/slow\.bin +\[[=-]+\] +\d+% \| [\d.]+ (?:B|KiB)\/1\.00 MiB/);
    assert.match(drawn, /cached files\/live\/slow\.bin \(1\.00 MiB\)/);
  });

  it("a signal ends the live view", async () => {
    const body = randomBytes(512 * 1024);
    let release = (): void => undefined;
    const interrupted = new Promise<void>((resolve) => (release = resolve));
    origin.files.set("/dist/live/stuck.bin", { body, chunkSize: 16 * 1024, pauseAfter: { bytes: 16 * 1024, until: interrupted } });
    const download = new Promise<void>((resolve) => {
      const { hostname, port } = new URL(vault.url);
      httpRequest({ host: hostname, port, path: "/files/live/stuck.bin", agent: false }, (res) => {
        res.resume();
        res.on("close", resolve);
      })
        .on("error", () => resolve())
        .end();
    });
    await fillStarted(vault, "files/live/stuck.bin");
    const signals = new EventEmitter();
    const tty = terminal();
    const watching = runCache(["fills", "--url", vault.url, "--api-key", vault.tokens["admin"] ?? ""], tty.stream, signals);
    while (!tty.text().includes("stuck.bin")) await delay(5);
    signals.emit("SIGINT");
    await assert.rejects(watching, /interrupted/);
    release();
    await download;
  });
});
