import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { MAX_RELATIVE_PATH_BYTES, STAGING_PREFIX } from "./filesystem-driver.js";
import { MAX_NAME_CHUNK, decodeSegment, encodeSegment, keyToNames, keyToRelativePath, relativePathToKey } from "./object-path.js";

/** A staging file's name: the prefix and 24 hex digits. */
const STAGING_NAME = STAGING_PREFIX + "0".repeat(24);

function assertWellFormedPath(key: string): void {
  const names = keyToNames(key);
  const label = JSON.stringify(key.length > 40 ? key.slice(0, 40) + "…" : key);
  names.forEach((name, i) => {
    const isFile = i === names.length - 1;
    assert.ok(name.length > 0, `${label}: empty name`);
    assert.ok(Buffer.byteLength(name) <= MAX_NAME_CHUNK + 1, `${label}: ${name.length}-byte name`);
    assert.ok(!name.startsWith("."), `${label}: name ${name} starts with a dot`);
    assert.match(name, /^[A-Za-z0-9_.%~+-]+$/, `${label}: name ${name} has raw characters`);
    assert.equal(name.endsWith("~"), isFile, `${label}: only the file name ends with ~`);
  });
  const relative = keyToRelativePath(key);
  const staging = [...names.slice(0, -1), STAGING_NAME].join("/");
  assert.ok(Buffer.byteLength(relative) <= MAX_RELATIVE_PATH_BYTES, `${label}: ${relative.length}-byte path`);
  assert.ok(Buffer.byteLength(staging) <= MAX_RELATIVE_PATH_BYTES, `${label}: ${staging.length}-byte staging path`);
  assert.equal(relativePathToKey(relative), key, `${label} round trip`);
}

function seededRandom(seed: number): () => number {
  let state = seed >>> 0 || 1;
  return () => {
    state ^= state << 13;
    state >>>= 0;
    state ^= state >>> 17;
    state ^= state << 5;
    state >>>= 0;
    return state / 0x1_0000_0000;
  };
}

/** Random well-formed keys of up to `maxBytes` UTF-8 bytes, built from a skewed alphabet. */
function randomKey(random: () => number, maxBytes: number): string {
  const pieces = ["a", "Z", "0", "_", "-", ".", "..", "/", "//", "%", "%2e", "~", "+", "\\", " ", "é", "€",
    "\uFFFF", "\uE000", "😀", "𝄞", "\uD83D\uDC4D\uD83C\uDFFD", "\u0800", "\u007f", "\u0001", ":", "*", "?"];
  let key = "";
  const target = 1 + Math.floor(random() * maxBytes);
  for (;;) {
    let piece = pieces[Math.floor(random() * pieces.length)]!;
    if (random() < 0.01) piece = "x".repeat(1 + Math.floor(random() * 400));
    if (Buffer.byteLength(key + piece) > target) break;
    key += piece;
  }
  return key === "" ? "k" : key;
}

void describe("key ⇄ path encoding", () => {
  void it("encodes segments as documented", () => {
    const cases: [string, string][] = [
      ["a", "a~"],
      ["a/b", "a/b~"],
      ["a/b/c.txt", "a/b/c.txt~"],
      ["..", "%2E.~"],
      [".", "%2E~"],
      ["../x", "%2E./x~"],
      ["a/../../x", "a/%2E./%2E./x~"],
      ["%2e%2e", "%252e%252e~"],
      ["\\", "%5C~"],
      ["/abs", "%/abs~"],
      ["//", "%/%/%~"],
      ["a/", "a/%~"],
      ["a~", "a%7E~"],
      ["a+/b", "a%2B/b~"],
      ["é", "%C3%A9~"],
      ["😀", "%F0%9F%98%80~"],
      [".tmp-1", "%2Etmp-1~"],
      ["a.b-c_D", "a.b-c_D~"],
    ];
    for (const [key, relative] of cases) {
      assert.equal(keyToRelativePath(key), relative, JSON.stringify(key));
      assert.equal(relativePathToKey(relative), key, JSON.stringify(relative));
    }
  });

  void it("cuts long segments into chunk directories, never inside %XX, never starting with a dot", () => {
    const long = "a".repeat(450);
    assert.deepEqual(keyToNames(long), ["a".repeat(200) + "+", "a".repeat(200) + "+", "a".repeat(50) + "~"]);
    const dots = "x" + ".".repeat(400);
    const names = keyToNames(dots);
    assert.equal(names[1], "%2E" + ".".repeat(197) + "+");
    const escaped = keyToNames("é".repeat(200)); // 1200 encoded bytes in 3-byte tokens
    for (const name of escaped) assert.match(name.replace(/[+~]$/, ""), /^(%[0-9A-F]{2})+$/);
    for (const key of [long, dots, "é".repeat(200), "a/" + "b".repeat(1000) + "/c"]) assertWellFormedPath(key);
  });

  void it("round-trips random keys, surrogate pairs included, into well-formed paths", () => {
    const random = seededRandom(7);
    for (let i = 0; i < 3_000; i++) assertWellFormedPath(randomKey(random, i % 10 === 0 ? 1024 : 64));
  });

  void it("keeps the longest keys under the path budget", () => {
    const worst = [
      "é".repeat(512),
      "\u0800".repeat(341) + "a",
      "😀".repeat(256),
      "\u0001".repeat(1024),
      "%".repeat(1024),
      ".".repeat(1024),
      "/".repeat(1024),
      "a/".repeat(512),
      "./".repeat(512),
      "é".repeat(511) + "/a",
      "%".repeat(1022) + "/a",
      ("%".repeat(66) + "..").repeat(15) + "%".repeat(4),
    ];
    for (const key of worst) {
      assert.ok(Buffer.byteLength(key) <= 1024);
      assertWellFormedPath(key);
    }
  });

  void it("refuses paths that no key produces", () => {
    for (const relative of [
      "a",
      "a~/b~",
      ".tmp-123",
      ".hidden~",
      "%41~",
      "%2e.~",
      "%zz~",
      "a%7e~",
      "%C3~",
      "+/a~",
      "a+/b",
      "a+~",
      "~",
      "..~",
      "../x~",
      "a//b~",
      "a/./b~",
      "a".repeat(100) + "+/" + "a".repeat(100) + "~",
    ]) {
      assert.equal(relativePathToKey(relative), undefined, relative);
    }
  });

  void it("decodes segments strictly", () => {
    assert.equal(decodeSegment("%"), "");
    assert.equal(decodeSegment(""), undefined);
    assert.equal(decodeSegment("%F0%9F%98%80"), "😀");
    assert.equal(decodeSegment("%ED%A0%80"), undefined, "a lone surrogate is not UTF-8");
    assert.equal(decodeSegment("%FF"), undefined);
    assert.equal(decodeSegment("a b"), undefined);
    assert.equal(encodeSegment(""), "%");
    assert.equal(encodeSegment("a.b"), "a.b");
    assert.equal(encodeSegment(".a"), "%2Ea");
  });
});
