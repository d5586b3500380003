import { test } from "node:test";
import assert from "node:assert/strict";
import { encodeKeyPath } from "./key-path.js";

test("each segment is percent-encoded, `/` kept, so the server's single decode gives the key back", () => {
  const keys = [
    "plain/key.txt",
    "with space/and+plus",
    "100%/a#b?c=d&e",
    "test_special/characters !@#$%^&*()_+",
    "ünïcödé/日本語/😀🎉",
    "quote\"back\\slash'tick`",
    "a//b/",
    "/leading",
    "%2F%252F",
    "new\nline\ttab",
  ];
  for (const key of keys) {
    const encoded = encodeKeyPath(key);
    assert.match(encoded, /^[A-Za-z0-9\-._~%/]*$/, `only unreserved characters, % and / in ${encoded}`);
    assert.equal(decodeURIComponent(encoded), key);
  }
  assert.equal(encodeKeyPath("a b/c!'()*"), "a%20b/c%21%27%28%29%2A");
});

test("dot segments are encoded so nothing on the way collapses them", () => {
  assert.equal(encodeKeyPath("a/../b/./c"), "a/%2E%2E/b/%2E/c");
  assert.equal(encodeKeyPath(".."), "%2E%2E");
  assert.equal(encodeKeyPath("...hidden/.x"), "...hidden/.x");
  assert.equal(decodeURIComponent(encodeKeyPath("a/../b")), "a/../b");
});

test("keys that cannot name an object are refused before any request", () => {
  assert.throws(() => encodeKeyPath(""), TypeError);
  assert.throws(() => encodeKeyPath("lone \ud800 surrogate"), TypeError);
});
