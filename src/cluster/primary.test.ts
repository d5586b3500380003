import { test } from "node:test";
import assert from "node:assert/strict";
import type { Worker } from "node:cluster";
import { sendToWorker } from "./primary.js";

/** A worker whose `send` behaves as a real one's does when its channel is closing. */
function workerThat(send: (message: unknown, handle: unknown, callback: (error: Error | null) => void) => boolean): Worker {
  return { send } as unknown as Worker;
}

test("a send to a worker that is exiting, failing after it was handed over (EPIPE), is undelivered, not thrown", async () => {
  let undelivered = 0;
  const epipe = Object.assign(new Error("write EPIPE"), { code: "EPIPE" });
  sendToWorker(workerThat((_message, _handle, callback) => (process.nextTick(callback, epipe), false)), { av: 1 }, () => undelivered++);
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(undelivered, 1);
});

test("a send to a worker whose channel is closed already is undelivered, not thrown; a delivered one is not", async () => {
  let undelivered = 0;
  sendToWorker(
    workerThat(() => {
      throw Object.assign(new Error("Channel closed"), { code: "ERR_IPC_CHANNEL_CLOSED" });
    }),
    { av: 1 },
    () => undelivered++,
  );
  assert.equal(undelivered, 1);
  sendToWorker(workerThat((_message, _handle, callback) => (process.nextTick(callback, null), true)), { av: 1 }, () => undelivered++);
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(undelivered, 1);
});
