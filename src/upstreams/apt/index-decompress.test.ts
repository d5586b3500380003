import { test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { Readable } from "node:stream";
import { gzipSync } from "node:zlib";
import { isVaultError } from "../../core/errors.js";
import { decompressIndex, detectCompression } from "./index-decompress.js";

/** `xz -c` of TINY (made once with xz 5.4; the vault itself never runs xz). */
const TINY = `Package: tiny\nFilename: pool/main/t/tiny/tiny_1_all.deb\nSize: 3\nSHA256: ${"a".repeat(64)}\n\n`;
const TINY_XZ = Buffer.from(
  "/Td6WFoAAATm1rRGAgAhARYAAAB0L+Wj4ACJAEpdACgYSGbb2jCF/hbwfWJ+IBbbzq5BrPeOL7f6Ac6Z94NGy8zyUF/6ToXeS5sNT8N0amsOEdZffQFKw6LtBA5Kb2hyIy0GVJUEw7cAAAAA1fg+hvC0NVoAAWaKAQAAAMz3El6xxGf7AgAAAAAEWVo=",
  "base64",
);

/** Bytes delivered in chunks of `size`, as a stream from the store would. */
function chunked(bytes: Buffer, size: number): Readable {
  const chunks: Buffer[] = [];
  for (let start = 0; start < bytes.length; start += size) chunks.push(bytes.subarray(start, start + size));
  return Readable.from(chunks);
}

async function text(source: AsyncIterable<Uint8Array>): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of decompressIndex(source)) chunks.push(chunk);
  return Buffer.concat(chunks).toString("utf8");
}

test("the compression is told by the first bytes, not by a name", () => {
  const cases: Array<[number[], string]> = [
    [[0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00, 0x00], "xz"],
    [[0x1f, 0x8b, 0x08], "gzip"],
    [[0x42, 0x5a, 0x68, 0x39, 0x31], "bzip2"],
    [[0x28, 0xb5, 0x2f, 0xfd, 0x24], "zstd"],
    [[0x5d, 0x00, 0x00, 0x80, 0x00], "lzma"],
    [[...Buffer.from("Package: x\n")], "none"],
    [[...Buffer.from("BZh, not bzip2")], "none"],
    [[0xfd, 0x37], "none"],
    [[], "none"],
  ];
  for (const [head, expected] of cases) assert.equal(detectCompression(Uint8Array.from(head)), expected, JSON.stringify(head));
});

test("xz, gzip and plain text come out as the same text, whatever the chunking", async () => {
  assert.equal(await text(chunked(TINY_XZ, 1)), TINY);
  assert.equal(await text(chunked(TINY_XZ, 4096)), TINY);
  const gzip = gzipSync(TINY);
  assert.equal(await text(chunked(gzip, 1)), TINY);
  assert.equal(await text(chunked(gzip, 4096)), TINY);
  assert.equal(await text(chunked(Buffer.from(TINY), 3)), TINY);
  assert.equal(await text(chunked(Buffer.alloc(0), 1)), "");
});

test("a large gzip index streams in many chunks", async () => {
  const big = Buffer.from(randomBytes(1024 * 1024).toString("hex"));
  const chunks: Buffer[] = [];
  for await (const chunk of decompressIndex(chunked(gzipSync(big), 65536))) chunks.push(chunk);
  assert.ok(chunks.length > 1);
  assert.deepEqual(Buffer.concat(chunks), big);
});

test("bzip2, zstd and lzma are refused as not supported; a truncated or corrupt xz fails", async () => {
  for (const head of [[0x42, 0x5a, 0x68, 0x39, 0x31, 0x41, 0x59], [0x28, 0xb5, 0x2f, 0xfd, 0x24, 0x8a], [0x5d, 0x00, 0x00, 0x80, 0x00, 0xff]]) {
    await assert.rejects(text(chunked(Buffer.from(head), 2)), (error) => isVaultError(error, "not_supported"));
  }
  await assert.rejects(text(chunked(TINY_XZ.subarray(0, TINY_XZ.length - 10), 16)));
  const corrupt = Buffer.from(TINY_XZ);
  corrupt[40] = (corrupt[40] ?? 0) ^ 0xff;
  await assert.rejects(text(chunked(corrupt, 16)));
});

test("leaving an xz index early lets the next one be read (the decoder's one turn is given back)", async () => {
  const source = chunked(TINY_XZ, 8);
  for await (const chunk of decompressIndex(source)) {
    assert.ok(chunk.length > 0);
    break;
  }
  assert.equal(source.destroyed, true);
  assert.equal(await text(chunked(TINY_XZ, 8)), TINY);
  // After a failure too.
  await assert.rejects(text(chunked(TINY_XZ.subarray(0, 30), 8)));
  assert.equal(await text(chunked(TINY_XZ, 8)), TINY);
});
