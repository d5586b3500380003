import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { pino } from "pino";
import { MemoryDriver } from "../storage/memory-driver.js";
import { DigestIndex } from "./digest-index.js";

const logger = pino({ level: "silent" });
const SHA = "ab".repeat(32);

void describe("DigestIndex", () => {
  void it("remembers the keys last committed with some bytes, newest first, without duplicates", async () => {
    const store = new MemoryDriver();
    const index = new DigestIndex(store, logger);
    assert.deepEqual(await index.lookup(SHA), []);
    await index.record(SHA, "hub/tags/app/_manifests/1.0/a");
    await index.record(SHA, "hub/tags/app/_manifests/latest/a");
    await index.record(SHA, "hub/tags/app/_manifests/1.0/a");
    assert.deepEqual(await index.lookup(SHA), ["hub/tags/app/_manifests/1.0/a", "hub/tags/app/_manifests/latest/a"]);
    for (let i = 0; i < 40; i++) await index.record(SHA, `k${i}`);
    const keys = await index.lookup(SHA);
    assert.equal(keys.length, 16);
    assert.equal(keys[0], "k39");
    assert.deepEqual((await store.list({ limit: 10 })).keys, [`sha256/${SHA}`]);
  });

  void it("two writers on one store (two replicas) keep each other's keys: updates are compare-and-swap", async () => {
    const store = new MemoryDriver();
    const [one, two] = [new DigestIndex(store, logger), new DigestIndex(store, logger)];
    await Promise.all([one.record(SHA, "from-one"), two.record(SHA, "from-two")]);
    assert.deepEqual([...(await one.lookup(SHA))].sort(), ["from-one", "from-two"]);
  });

  void it("is a hint: an unreadable record reads as empty and is overwritten; a failing store is logged, not thrown", async () => {
    const store = new MemoryDriver();
    await store.write(`sha256/${SHA}`, (async function* () {
      yield Buffer.from("not json");
    })());
    const index = new DigestIndex(store, logger);
    assert.deepEqual(await index.lookup(SHA), []);
    await index.record(SHA, "k");
    assert.deepEqual(await index.lookup(SHA), ["k"]);
    await store.close();
    await index.record(SHA, "k2");
    assert.deepEqual(await index.lookup(SHA), []);
  });
});
