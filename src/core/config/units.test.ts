import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { parseDuration, parseSize, UnitError } from "./units.js";

void describe("parseSize", () => {
  const cases: Array<[string | number, number]> = [
    [0, 0],
    [1024, 1024],
    ["1024", 1024],
    ["0", 0],
    ["10B", 10],
    ["1KB", 1000],
    ["1KiB", 1024],
    ["1k", 1024],
    ["512MB", 512_000_000],
    ["512MiB", 512 * 1024 ** 2],
    ["100GiB", 100 * 1024 ** 3],
    ["100gib", 100 * 1024 ** 3],
    ["5 GiB", 5 * 1024 ** 3],
    ["1.5G", 1.5 * 1024 ** 3],
    ["2TB", 2_000_000_000_000],
    ["1TiB", 1024 ** 4],
    [" 7 ", 7],
    [10.9, 10],
  ];
  for (const [input, expected] of cases) {
    void it(`${JSON.stringify(input)} → ${expected}`, () => assert.equal(parseSize(input), expected));
  }

  for (const bad of ["", "lots", "-1", "1XB", "GiB", "1 2", "1e3", "1..5GB", "NaN"]) {
    void it(`refuses ${JSON.stringify(bad)}`, () => {
      assert.throws(() => parseSize(bad), (error: unknown) => {
        assert.ok(error instanceof UnitError);
        assert.match(error.message, /expected a size/);
        assert.ok(error.message.includes(JSON.stringify(bad)));
        return true;
      });
    });
  }

  void it("refuses negative and non-finite numbers", () => {
    assert.throws(() => parseSize(-5), /expected a size ≥ 0, got -5/);
    assert.throws(() => parseSize(Number.POSITIVE_INFINITY), UnitError);
    assert.throws(() => parseSize(Number.NaN), UnitError);
  });

  void it("refuses sizes beyond a safe integer", () => {
    assert.throws(() => parseSize("100000PiB"), /too large/);
  });
});

void describe("parseDuration", () => {
  const cases: Array<[string | number, number]> = [
    [0, 0],
    [30, 30_000],
    [0.25, 250],
    ["30", 30_000],
    ["250ms", 250],
    ["30s", 30_000],
    ["10m", 600_000],
    ["1h", 3_600_000],
    ["2d", 172_800_000],
    ["1h30m", 5_400_000],
    ["1m30s500ms", 90_500],
    ["1.5s", 1500],
    [" 5s ", 5000],
  ];
  for (const [input, expected] of cases) {
    void it(`${JSON.stringify(input)} → ${expected} ms`, () => assert.equal(parseDuration(input), expected));
  }

  for (const bad of ["", "soon", "-5s", "5x", "s", "10 m", "5s5", "1h-1m"]) {
    void it(`refuses ${JSON.stringify(bad)}`, () => {
      assert.throws(() => parseDuration(bad), (error: unknown) => {
        assert.ok(error instanceof UnitError);
        assert.match(error.message, /expected a duration/);
        assert.ok(error.message.includes(JSON.stringify(bad)));
        return true;
      });
    });
  }

  void it("refuses negative numbers", () => {
    assert.throws(() => parseDuration(-1), /expected a duration ≥ 0, got -1/);
  });
});
