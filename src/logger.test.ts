import { test } from "node:test";
import assert from "node:assert/strict";
import { loadConfig } from "./config/load-config.js";
import { resolveLogFormat } from "./logger.js";

test("log_format: auto is human-readable on a terminal only; json and pretty are what they say", () => {
  const table: Array<[Parameters<typeof resolveLogFormat>[0], boolean, string]> = [
    ["auto", true, "pretty"],
    ["auto", false, "json"],
    ["json", true, "json"],
    ["pretty", false, "pretty"],
  ];
  for (const [format, terminal, expected] of table) assert.equal(resolveLogFormat(format, terminal), expected, `${format} ${terminal}`);
});

test("log_format defaults to auto, and LOG_FORMAT overrides the file", async () => {
  assert.equal((await loadConfig({ env: {} })).log_format, "auto");
  assert.equal((await loadConfig({ env: { LOG_FORMAT: "JSON" } })).log_format, "json");
  await assert.rejects(loadConfig({ env: { LOG_FORMAT: "xml" } }), /environment variable LOG_FORMAT: log_format: expected one of "auto", "json", "pretty", got "xml"/);
});
