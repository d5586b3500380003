import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { Readable } from "node:stream";
import { describe, it } from "node:test";
import { isVaultError } from "../core/errors.js";
import { checkPreconditions, checkWriteOptions, consumeBody } from "./write-checks.js";

const sha = (text: string): string => createHash("sha256").update(text).digest("hex");

void describe("write checks", () => {
  void it("hashes a body from an async iterable, a Readable or a plain array", async () => {
    const options = checkWriteOptions({});
    const seen: string[] = [];
    const sink = (chunk: Uint8Array): void => {
      seen.push(Buffer.from(chunk).toString());
    };
    assert.deepEqual(await consumeBody(Readable.from([Buffer.from("ab"), Buffer.from("c")]), options, sink), {
      size: 3,
      sha256: sha("abc"),
    });
    const array = [Buffer.from("de")] as unknown as AsyncIterable<Uint8Array>;
    assert.deepEqual(await consumeBody(array, options, sink), { size: 2, sha256: sha("de") });
    assert.deepEqual(seen, ["ab", "c", "de"]);
    await assert.rejects(
      consumeBody(42 as unknown as AsyncIterable<Uint8Array>, options, sink),
      (error: unknown) => isVaultError(error, "bad_request"),
    );
  });

  void it("destroys a Readable source it stops reading", async () => {
    const source = new Readable({ read() {} });
    source.push(Buffer.alloc(10));
    source.push(Buffer.alloc(10));
    await assert.rejects(consumeBody(source, checkWriteOptions({ maxSize: 15 }), () => undefined), (error: unknown) =>
      isVaultError(error, "payload_too_large"),
    );
    for (let i = 0; i < 10 && !source.destroyed; i++) await new Promise((resolve) => setImmediate(resolve));
    assert.ok(source.destroyed);
  });

  void it("checks preconditions", () => {
    const current = { etag: '"abc"' };
    const check = (options: Parameters<typeof checkWriteOptions>[0], exists: boolean): boolean => {
      try {
        checkPreconditions("k", exists ? current : undefined, checkWriteOptions(options));
        return true;
      } catch (error) {
        assert.ok(isVaultError(error, "precondition_failed"));
        return false;
      }
    };
    assert.equal(check({}, true), true);
    assert.equal(check({ ifNoneMatch: "*" }, false), true);
    assert.equal(check({ ifNoneMatch: "*" }, true), false);
    assert.equal(check({ ifMatch: '"abc"' }, true), true);
    assert.equal(check({ ifMatch: '"abd"' }, true), false);
    assert.equal(check({ ifMatch: '"abc"' }, false), false);
    assert.equal(check({ ifMatch: "*" }, true), true);
    assert.equal(check({ ifMatch: "*" }, false), false);
  });

  void it("refuses oversized descriptions", () => {
    assert.throws(
      () => checkWriteOptions({ metadata: { big: "x".repeat(70_000) } }),
      (error: unknown) => isVaultError(error, "bad_request"),
    );
  });
});

void it("consumeBody with an abort signal keeps memory flat (chunks are not retained)", async () => {
  const controller = new AbortController();
  const chunkSize = 1024 * 1024;
  const total = 512;
  async function* body() {
    for (let i = 0; i < total; i++) yield Buffer.alloc(chunkSize, i % 256);
  }
  const before = process.memoryUsage().arrayBuffers;
  let peak = 0;
  const summary = await consumeBody(body(), checkWriteOptions({ signal: controller.signal }), () => {
    peak = Math.max(peak, process.memoryUsage().arrayBuffers - before);
  });
  assert.equal(summary.size, total * chunkSize);
  assert.ok(peak < 160 * chunkSize, `retained ${Math.round(peak / chunkSize)} MiB of a ${total} MiB body`);
});
