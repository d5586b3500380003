import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Writable } from "node:stream";
import type { CliIo } from "../cli-io.js";
import type { ProgressOutput } from "../transfer-progress.js";
import { summaryLines, warmDisplay } from "./warm-progress.js";

const MiB = 1024 * 1024;

function output(isTTY: boolean): { stream: ProgressOutput; text: () => string } {
  let written = "";
  const stream = Object.assign(
    new Writable({
      write(chunk: Buffer | string, _encoding, callback) {
        written += chunk.toString();
        callback();
      },
    }),
    { isTTY, columns: 200 },
  );
  return { stream, text: () => written };
}

function io(): { io: CliIo; lines: string[] } {
  const lines: string[] = [];
  return { io: { out: (line) => lines.push(line), err: (line) => lines.push(`err: ${line}`), env: {}, cwd: "/", now: () => new Date() }, lines };
}

void describe("warmDisplay", () => {
  void it("on a terminal: one bar with items, bytes, rate and ETA; downloads and failures printed above it", () => {
    const out = output(true);
    const { io: cli, lines } = io();
    let at = 1_000_000;
    const display = warmDisplay(cli, out.stream, { quiet: false, now: () => at, fps: 1000 });
    for (let i = 0; i < 4; i++) display.planned();
    for (let step = 0; step < 10; step++) {
      display.bytes(MiB);
      at += 100; // 10 MiB/s
    }
    display.done({ label: "pypi: demo-1.0-py3-none-any.whl", served: "fetched", bytes: 10 * MiB });
    display.done({ label: "cached-one", served: "cached", bytes: 5 });
    display.failed({ label: "pypi: nope==1.0", reason: "the index lists no files of version 1.0" }, false);
    display.failed({ label: "/files/x.bin", reason: "not found upstream (404)" }, true);
    display.stop();
    const text = out.text();
    assert.match(text, /warming \[[=-]+\] 3\/4 items \| 10\.0 MiB \| \d+(\.\d+)? MiB\/s \| ETA 0s/);
    assert.match(text, /fetched +10\.0 MiB +pypi: demo-1\.0-py3-none-any\.whl/);
    assert.match(text, /failed +pypi: nope==1\.0: the index lists no files of version 1\.0/);
    assert.doesNotMatch(text, /cached-one/, "a cached item is counted, not printed");
    assert.deepEqual(lines, [], "nothing on standard output while it runs");
  });

  void it("elsewhere: a plain line per item on standard output, nothing on standard error; none with --quiet", () => {
    const out = output(false);
    const { io: cli, lines } = io();
    const display = warmDisplay(cli, out.stream, { quiet: false });
    display.planned();
    display.done({ label: "/files/a.bin", served: "fetched", bytes: 1536 });
    display.done({ label: "/files/b.bin", served: "cached", bytes: 10 });
    display.failed({ label: "/files/c.bin", reason: "not found upstream (404)" }, true);
    display.stop();
    assert.equal(out.text(), "");
    assert.deepEqual(lines, ["fetched    1.50 KiB  /files/a.bin", "cached         10 B  /files/b.bin", "failed   /files/c.bin: not found upstream (404)"]);

    const quiet = io();
    const silent = warmDisplay(quiet.io, out.stream, { quiet: true });
    silent.done({ label: "/files/a.bin", served: "fetched", bytes: 1 });
    silent.failed({ label: "/files/c.bin", reason: "x" }, true);
    assert.deepEqual(quiet.lines, []);
  });
});

void it("the summary: counts and sizes, skipped inputs and failures with their reasons", () => {
  const lines = summaryLines({
    fetched: [{ label: "a", served: "fetched", bytes: 2 * MiB }],
    cached: [
      { label: "b", served: "cached", bytes: MiB },
      { label: "c", served: "cached", bytes: MiB },
    ],
    failures: [{ label: "npm: x@1.0.0", reason: "not found upstream (404)" }],
    skipped: [{ label: "npm: y@1.0.0", reason: "not from a registry (git+ssh source)" }],
    elapsedMs: 1500,
    interrupted: false,
  });
  assert.deepEqual(lines, [
    "warmed 4 items in 2s: 1 fetched (2.00 MiB), 2 already cached (2.00 MiB), 1 failed",
    "skipped 1 input (not for the vault):",
    "  npm: y@1.0.0: not from a registry (git+ssh source)",
    "failed:",
    "  npm: x@1.0.0: not found upstream (404)",
  ]);
});
