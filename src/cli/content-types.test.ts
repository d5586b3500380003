import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { guessContentType } from "./content-types.js";

void describe("guessContentType", () => {
  const cases: Array<[string, string]> = [
    ["notes.txt", "text/plain"],
    ["dir/data.JSON", "application/json"],
    ["release-1.0.tar.gz", "application/gzip"],
    ["pkg-1.0-py3-none-any.whl", "application/zip"],
    ["photo.jpeg", "image/jpeg"],
    ["model.safetensors", "application/octet-stream"],
    ["Makefile", "application/octet-stream"],
    [".bashrc", "application/octet-stream"],
  ];
  for (const [name, type] of cases) {
    void it(`${name} → ${type}`, () => assert.equal(guessContentType(name), type));
  }
});
