import assert from "node:assert/strict";
import { mkdtemp, open, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, describe, it } from "node:test";
import { CorruptObjectError, FOOTER_BYTES, encodeObjectTail, readObjectTail } from "./object-file.js";
import type { ObjectInfo } from "./storage-driver.js";

const dir = await mkdtemp(path.join(tmpdir(), "av-object-file-"));
after(() => rm(dir, { recursive: true, force: true }));

const info: ObjectInfo = {
  key: "dir/😀 file",
  size: 5,
  contentType: "text/plain",
  sha256: "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824",
  etag: '"2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"',
  createdAt: new Date("2024-01-01T00:00:00.000Z"),
  modifiedAt: new Date("2024-02-02T00:00:00.123Z"),
  metadata: { etag: '"upstream"', "last-modified": "Mon, 01 Jan 2024 00:00:00 GMT" },
};

async function tailOf(bytes: Buffer): Promise<ObjectInfo> {
  const file = path.join(dir, `f${Math.random().toString(36).slice(2)}`);
  await writeFile(file, bytes);
  const handle = await open(file, "r");
  try {
    return await readObjectTail(handle);
  } finally {
    await handle.close();
  }
}

void describe("object file format", () => {
  void it("reads back what it wrote, with the body in front", async () => {
    const read = await tailOf(Buffer.concat([Buffer.from("hello"), encodeObjectTail(info)]));
    assert.deepEqual({ ...read, metadata: { ...read.metadata } }, { ...info, metadata: { ...info.metadata } });
  });

  void it("reads trailers longer than its first tail read", async () => {
    const big = { ...info, size: 0, metadata: { blob: "x".repeat(10_000) } };
    const read = await tailOf(encodeObjectTail(big));
    assert.equal(read.metadata["blob"]?.length, 10_000);
    assert.equal(read.size, 0);
  });

  void it("refuses torn, truncated and tampered files", async () => {
    const whole = Buffer.concat([Buffer.from("hello"), encodeObjectTail(info)]);
    const flipped = Buffer.from(whole);
    flipped[whole.length - FOOTER_BYTES - 5]! ^= 1; // a trailer byte: the CRC catches it
    const cases = [
      Buffer.alloc(0),
      Buffer.from("hello"),
      whole.subarray(0, whole.length - 1),
      whole.subarray(1), // the body is one byte shorter than the trailer says
      Buffer.concat([Buffer.from("x"), whole]),
      flipped,
    ];
    for (const bytes of cases) await assert.rejects(tailOf(bytes), CorruptObjectError);
  });
});
