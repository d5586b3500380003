import { test } from "node:test";
import assert from "node:assert/strict";
import { decodeCursor, encodeCursor } from "./list-cursor.js";
import { isVaultError } from "../core/errors.js";

test("cursors round-trip any key", () => {
  for (const key of ["a", "dir/file name+x", "😀/\uFFFF", "a\"b\\c"]) {
    assert.equal(decodeCursor(encodeCursor(key)), key);
  }
});

test("cursors in the source design's standard base64 are accepted, with + turned to space", () => {
  const standard = Buffer.from(JSON.stringify({ last_key: "k>>?" }), "utf8").toString("base64");
  assert.equal(decodeCursor(standard), "k>>?");
  assert.equal(decodeCursor(standard.replaceAll("+", " ")), "k>>?");
});

test("malformed cursors are bad requests", () => {
  for (const bad of ["", "!!!", "bm90IGpzb24", Buffer.from("[1]").toString("base64"), Buffer.from('{"last_key":1}').toString("base64")]) {
    assert.throws(() => decodeCursor(bad), (error) => isVaultError(error, "bad_request"), bad);
  }
});
