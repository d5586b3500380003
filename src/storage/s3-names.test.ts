import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { compareUtf8 } from "../core/utf8-order.js";
import { ObjectNames, decodeKeyBytes, encodeKeyBytes } from "./s3-names.js";

function seeded(seed: number): () => number {
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

const ALPHABET = ["a", "z", "A", "0", "-", ".", "/", "_", "~", "!", " ", "%", "\t", "é", "€", "\uE000", "\uFFFF", "😀", "𝄞", ":", "@", "[", "`", "{", "\u007f"];

function randomKeys(count: number, maxLength: number, seed: number): string[] {
  const random = seeded(seed);
  const keys = new Set<string>();
  while (keys.size < count) {
    let key = "";
    const length = 1 + Math.floor(random() * maxLength);
    for (let i = 0; i < length; i++) key += ALPHABET[Math.floor(random() * ALPHABET.length)];
    keys.add(key);
  }
  return [...keys];
}

const byBytes = (a: string, b: string): number => Buffer.compare(Buffer.from(a), Buffer.from(b));

void describe("S3 object names", () => {
  void it("encodes every byte, keeping byte order, prefixes and decodability", () => {
    const bytes = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
    const codes = [...bytes].map((byte) => encodeKeyBytes(Buffer.from([byte])));
    for (let i = 1; i < codes.length; i++) assert.ok(byBytes(codes[i - 1] ?? "", codes[i] ?? "") < 0, `code of ${i - 1} < code of ${i}`);
    for (const code of codes) assert.match(code, /^(?:[0-9A-Za-z-]|[!.=_~][0-9a-f]{2})$/);
    assert.deepEqual(decodeKeyBytes(encodeKeyBytes(bytes)), bytes);
    assert.equal(encodeKeyBytes(Buffer.from("pypi/requests-2.32.3.tar.gz")), "pypi.2frequests-2.2e32.2e3.2etar.2egz");
    assert.equal(decodeKeyBytes("a.2"), undefined, "an incomplete code");
    assert.deepEqual(decodeKeyBytes("a.2", true), Buffer.from("a"));
    assert.equal(decodeKeyBytes("!2f"), undefined, "an escape outside its run");
    assert.equal(decodeKeyBytes("a?b"), undefined);
  });

  void it("S3's order of the names is the keys' UTF-8 order, long keys apart", () => {
    const names = new ObjectNames("run/1/objects/");
    const keys = randomKeys(2000, 40, 7);
    const sortedByName = [...keys].sort((a, b) => byBytes(names.nameOf(a), names.nameOf(b)));
    assert.deepEqual(sortedByName, [...keys].sort(byBytes));
    assert.deepEqual([...keys].sort(compareUtf8), [...keys].sort(byBytes));
    for (const key of keys) {
      const parsed = names.parse(names.nameOf(key));
      assert.deepEqual(parsed, { kind: "short", key });
    }
  });

  void it("a prefix of a key names a prefix of its name, and only then", () => {
    const names = new ObjectNames("");
    const keys = randomKeys(300, 12, 11);
    for (const prefix of randomKeys(60, 4, 13)) {
      const { s3Prefix } = names.planList(prefix, undefined);
      for (const key of keys) assert.equal(names.nameOf(key).startsWith(s3Prefix), key.startsWith(prefix), `${JSON.stringify(prefix)} / ${JSON.stringify(key)}`);
    }
  });

  void it("breaks names into segments of 200 characters: never empty, `.` or `..`", () => {
    const names = new ObjectNames("p/objects/");
    for (const key of ["/".repeat(1024), ".".repeat(1024), "a/".repeat(300), "l".repeat(1000), "x".repeat(200), "./..//"]) {
      const name = names.nameOf(key);
      assert.ok(Buffer.byteLength(name) <= 1024, `${key.slice(0, 10)}: ${Buffer.byteLength(name)} bytes`);
      for (const segment of name.split("/").slice(2)) {
        assert.ok(segment.length > 0 && segment.length <= 234, `segment of ${segment.length}`);
        assert.ok(segment !== "." && segment !== "..");
      }
    }
    assert.equal(names.nameOf("x".repeat(200)), `p/objects/${"x".repeat(200)}`);
    assert.equal(names.nameOf("x".repeat(201)), `p/objects/${"x".repeat(200)}/x`);
  });

  void it("names keys too long to encode whole by their head and hash; the tail is kept apart", () => {
    const names = new ObjectNames("vault/cache/objects/");
    const key = "é".repeat(512);
    const name = names.nameOf(key);
    assert.equal(Buffer.byteLength(name), 1024);
    const parsed = names.parse(name);
    assert.ok(parsed?.kind === "long");
    const tail = names.tailOf(key);
    assert.ok(tail !== undefined && tail.length > 0);
    assert.equal(names.longKey(parsed, tail), key);
    assert.equal(names.longKey(parsed, Buffer.from("x")), undefined, "a tail that does not hash to the name");
    assert.equal(names.tailOf("short"), undefined);
  });

  void it("long keys sharing a head form one group that starts after the shorter keys it extends", () => {
    const names = new ObjectNames("r/objects/", 200);
    const head = "k".repeat(160);
    const longs = ["b", "a", "c/x", "😀", "a0"].map((suffix) => head + suffix);
    const groups = new Set(longs.map((key) => (names.parse(names.nameOf(key)) as { group: string }).group));
    assert.equal(groups.size, 1);
    const [group] = groups;
    const short = "k".repeat(10);
    assert.ok(byBytes(names.nameOf(short), group ?? "") < 0);
    assert.ok(byBytes(names.nameOf("l"), group ?? "") > 0);
    // A listing bound inside the group starts at the group; a prefix that long lists only it.
    assert.equal(names.planList(head + "zz", undefined).s3Prefix, group);
    assert.equal(names.planList("", head + "a").s3StartAfter, group?.slice(0, -2));
  });

  void it("ignores names it never makes", () => {
    const names = new ObjectNames("p/objects/");
    for (const name of ["p/objects/a?b", "p/objects/a.2", "p/objects/.2Z", "other/a", "p/objects/", "p/objects/a/b", `p/objects/${"a".repeat(300)}`]) {
      assert.equal(names.parse(name), undefined, name);
    }
  });

  void it("refuses a prefix that leaves keys no room", () => {
    assert.throws(() => new ObjectNames(`${"p".repeat(900)}/objects/`), /prefix is too long/);
  });
});
