import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { KeyLock } from "./key-lock.js";

function tick(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

void describe("KeyLock", () => {
  void it("runs calls for one key one at a time, in order", async () => {
    const lock = new KeyLock();
    const events: string[] = [];
    let inside = 0;
    await Promise.all(
      [1, 2, 3, 4].map((n) =>
        lock.run("k", async () => {
          inside++;
          assert.equal(inside, 1);
          events.push(`start ${n}`);
          await tick();
          events.push(`end ${n}`);
          inside--;
        }),
      ),
    );
    assert.deepEqual(events, ["start 1", "end 1", "start 2", "end 2", "start 3", "end 3", "start 4", "end 4"]);
    assert.equal(lock.size, 0);
  });

  void it("lets different keys run at the same time", async () => {
    const lock = new KeyLock();
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    const a = lock.run("a", () => held);
    let ranB = false;
    await lock.run("b", async () => {
      ranB = true;
    });
    assert.ok(ranB);
    release();
    await a;
    assert.equal(lock.size, 0);
  });

  void it("releases the key when a call throws", async () => {
    const lock = new KeyLock();
    await assert.rejects(lock.run("k", async () => Promise.reject(new Error("boom"))), /boom/);
    assert.equal(await lock.run("k", async () => "next"), "next");
    assert.equal(lock.size, 0);
  });
});
