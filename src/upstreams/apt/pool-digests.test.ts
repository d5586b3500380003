import { test } from "node:test";
import assert from "node:assert/strict";
import { PoolDigestIndex, PoolDigestTable } from "./pool-digests.js";

const hex = (n: number): string => n.toString(16).padStart(64, "0");

function table(paths: readonly string[], seed = 0): PoolDigestTable {
  const made = new PoolDigestTable();
  paths.forEach((path, index) => made.add(path, hex(seed + index), 100 + index));
  return made;
}

test("a table keeps SHA256 and size per path, through growth and trimming; the first listing wins", () => {
  const made = new PoolDigestTable();
  for (let index = 0; index < 5000; index++) made.add(`pool/main/p/p${index}/p${index}_1_all.deb`, hex(index), index * 3);
  made.add("pool/main/p/p7/p7_1_all.deb", hex(999_999), 1);
  made.trim();
  assert.equal(made.size, 5000);
  assert.deepEqual(made.get("pool/main/p/p0/p0_1_all.deb"), { sha256: hex(0), size: 0 });
  assert.deepEqual(made.get("pool/main/p/p7/p7_1_all.deb"), { sha256: hex(7), size: 21 });
  assert.deepEqual(made.get("pool/main/p/p4999/p4999_1_all.deb"), { sha256: hex(4999), size: 14997 });
  assert.equal(made.get("pool/main/p/p5000/p5000_1_all.deb"), undefined);
});

test("layers: a newer version of an index replaces its layer; the most recently read layer answers first", () => {
  const index = new PoolDigestIndex(100);
  index.replace("dists/bookworm/main/binary-amd64/Packages", "v1", table(["a.deb", "b.deb"]));
  index.replace("dists/bookworm/main/binary-arm64/Packages", "w1", table(["a.deb", "c.deb"], 50));
  assert.equal(index.lookup("a.deb")?.sha256, hex(50));
  assert.equal(index.lookup("b.deb")?.sha256, hex(1));
  assert.equal(index.sourceOf("dists/bookworm/main/binary-amd64/Packages"), "v1");
  index.replace("dists/bookworm/main/binary-amd64/Packages", "v2", table(["a.deb", "d.deb"], 20));
  assert.equal(index.sourceOf("dists/bookworm/main/binary-amd64/Packages"), "v2");
  assert.equal(index.lookup("a.deb")?.sha256, hex(20));
  assert.equal(index.lookup("b.deb"), undefined);
  assert.equal(index.entryCount, 4);
  assert.equal(index.layerCount, 2);
});

test("past the bound, the least recently useful layers go; a layer just read stays", () => {
  const index = new PoolDigestIndex(5);
  index.replace("one", "1", table(["1a", "1b"]));
  index.replace("two", "2", table(["2a", "2b"]));
  assert.ok(index.lookup("1a") !== undefined); // "one" is now more useful than "two"
  index.replace("three", "3", table(["3a", "3b"]));
  assert.equal(index.entryCount, 4);
  assert.equal(index.sourceOf("two"), undefined);
  assert.equal(index.sourceOf("one"), "1");
  assert.equal(index.sourceOf("three"), "3");
  index.replace("huge", "h", table(["h1", "h2", "h3", "h4", "h5", "h6"]));
  assert.equal(index.layerCount, 1);
  assert.ok(index.lookup("h6") !== undefined);
  index.clear();
  assert.equal(index.entryCount, 0);
  assert.equal(index.lookup("h6"), undefined);
});
