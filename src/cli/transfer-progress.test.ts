import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Writable } from "node:stream";
import { formatBytes, formatDuration, PROGRESS_THRESHOLD, transferProgress, type ProgressOutput } from "./transfer-progress.js";

const MiB = 1024 * 1024;

/** A stand-in for standard error that records what is written. */
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

/** A clock the test moves by hand. */
function clock(): { now: () => number; advance: (ms: number) => void } {
  let at = 1_000_000;
  return { now: () => at, advance: (ms) => (at += ms) };
}

void describe("transferProgress", () => {
  void it("writes nothing when the output is not a terminal, however large the transfer", () => {
    const out = output(false);
    const progress = transferProgress("get big", out.stream);
    for (let bytes = 0; bytes <= 64 * MiB; bytes += MiB) progress.onProgress({ bytes, total: 64 * MiB });
    progress.stop();
    assert.equal(out.text(), "");
  });

  void it("writes nothing on a terminal for a transfer under the threshold", () => {
    const out = output(true);
    const progress = transferProgress("put small", out.stream);
    progress.onProgress({ bytes: PROGRESS_THRESHOLD - 1, total: PROGRESS_THRESHOLD - 1 });
    progress.stop();
    assert.equal(out.text(), "");
  });

  void it("shows bytes, percent, rate and time left on a terminal, and ends its line", () => {
    const out = output(true);
    const time = clock();
    const progress = transferProgress("get big", out.stream, { now: time.now });
    const total = 100 * MiB;
    for (let bytes = MiB; bytes <= 40 * MiB; bytes += MiB) {
      progress.onProgress({ bytes, total });
      time.advance(100); // 10 MiB/s
    }
    progress.stop();
    const text = out.text();
    assert.match(text, /get big \[=+-+\] 40% \| 40\.0 MiB\/100 MiB \| 10\.\d MiB\/s \| ETA \ds/);
    assert.ok(text.endsWith("\n"), "the line is ended");
  });

  void it("with an unknown size, starts once the threshold is passed and shows bytes and rate", () => {
    const out = output(true);
    const time = clock();
    const progress = transferProgress("put -", out.stream, { now: time.now });
    progress.onProgress({ bytes: MiB });
    time.advance(500);
    assert.equal(out.text(), "");
    for (let bytes = 2 * MiB; bytes <= 8 * MiB; bytes += MiB) {
      progress.onProgress({ bytes });
      time.advance(500); // 2 MiB/s
    }
    progress.stop();
    assert.match(out.text(), /put - 8\.00 MiB \| 2\.\d+ MiB\/s/);
    assert.doesNotMatch(out.text(), /ETA|%/);
  });
});

void describe("formatBytes and formatDuration", () => {
  const bytes: Array<[number, string]> = [
    [0, "0 B"],
    [1023, "1023 B"],
    [1536, "1.50 KiB"],
    [10 * MiB + MiB / 2, "10.5 MiB"],
    [512 * MiB, "512 MiB"],
    [3 * 1024 * MiB, "3.00 GiB"],
  ];
  for (const [value, text] of bytes) void it(`${value} bytes → ${text}`, () => assert.equal(formatBytes(value), text));
  const durations: Array<[number, string]> = [
    [0.2, "1s"],
    [59, "59s"],
    [75, "1m15s"],
    [3600 + 120, "1h02m"],
  ];
  for (const [value, text] of durations) void it(`${value} s → ${text}`, () => assert.equal(formatDuration(value), text));
});
