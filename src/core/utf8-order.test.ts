import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { compareUtf8 } from "./utf8-order.js";

function byBytes(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, "utf8"), Buffer.from(b, "utf8"));
}

void describe("compareUtf8", () => {
  void it("puts astral characters after the top of the BMP, unlike UTF-16 order", () => {
    assert.ok("😀" < "\uFFFF", "JavaScript's own order is UTF-16 order");
    assert.ok(compareUtf8("\uFFFF", "😀") < 0);
    assert.ok(compareUtf8("😀", "\uFFFF") > 0);
    assert.ok(compareUtf8("\uE000", "😀") < 0);
    assert.ok(compareUtf8("\uD7FF", "😀") < 0);
    assert.ok(compareUtf8("a\uFFFFz", "a😀") < 0);
    assert.ok(compareUtf8("😀", "😁") < 0);
    assert.ok(compareUtf8("𝄞", "😀") < 0);
  });

  void it("orders plain ASCII by bytes and prefixes first", () => {
    assert.equal(compareUtf8("a", "a"), 0);
    assert.equal(compareUtf8("", ""), 0);
    assert.ok(compareUtf8("", "a") < 0);
    assert.ok(compareUtf8("a", "b") < 0);
    assert.ok(compareUtf8("B", "a") < 0);
    assert.ok(compareUtf8("a", "ab") < 0);
    assert.ok(compareUtf8("ab", "a") > 0);
    assert.ok(compareUtf8("a/b", "a0") < 0);
    assert.ok(compareUtf8("a b", "a/b") < 0);
    assert.ok(compareUtf8("z", "é") < 0);
    assert.ok(compareUtf8("😀", "😀/x") < 0);
  });

  void it("agrees with the order of UTF-8 bytes on random strings", () => {
    const alphabet = ["a", "b", "/", "\u007f", "\u0080", "é", "\u07ff", "\u0800", "\uD7FF", "\uE000", "\uFFFD", "\uFFFF",
      "😀", "𝄞", "\u{10FFFF}", "\u{10000}"];
    let state = 12345;
    const random = (): number => {
      state = (state * 1103515245 + 12345) % 2147483648;
      return state / 2147483648;
    };
    const make = (): string => {
      let s = "";
      const length = Math.floor(random() * 5);
      for (let i = 0; i < length; i++) s += alphabet[Math.floor(random() * alphabet.length)];
      return s;
    };
    for (let i = 0; i < 20_000; i++) {
      const a = make();
      const b = make();
      assert.equal(Math.sign(compareUtf8(a, b)), Math.sign(byBytes(a, b)), `${JSON.stringify(a)} vs ${JSON.stringify(b)}`);
    }
    const strings = Array.from({ length: 500 }, make);
    assert.deepEqual([...strings].sort(compareUtf8), [...strings].sort(byBytes));
  });
});
