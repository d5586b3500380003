import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { fstatSync, openSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer, request as httpRequest, type IncomingMessage } from "node:http";
import { once } from "node:events";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { AddressInfo } from "node:net";
import { FileBodyStream } from "./file-body-stream.js";
import { CorruptObjectError } from "./object-file.js";

const CHUNK = 64 * 1024;

async function withFile(bytes: Buffer, run: (path: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), "file-body-"));
  try {
    const path = join(dir, "f");
    await writeFile(path, bytes);
    await run(path);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function collect(stream: FileBodyStream): Promise<Buffer> {
  const parts: Buffer[] = [];
  // Copied: without a sink the stream never reuses a buffer, but the test should not rely on it.
  for await (const part of stream) parts.push(Buffer.from(part as Buffer));
  return Buffer.concat(parts);
}

function fdIsOpen(fd: number): boolean {
  try {
    fstatSync(fd);
    return true;
  } catch {
    return false;
  }
}

test("reads exactly the inclusive range asked for, and closes the file", async () => {
  const bytes = randomBytes(5 * CHUNK + 123);
  await withFile(bytes, async (path) => {
    for (const [start, end] of [
      [0, bytes.length - 1],
      [1, 1],
      [CHUNK - 1, 3 * CHUNK + 7],
      [bytes.length - 10, bytes.length - 1],
    ] as const) {
      const fd = openSync(path, "r");
      const body = await collect(new FileBodyStream(fd, start, end, CHUNK));
      assert.deepEqual(body, bytes.subarray(start, end + 1), `range ${start}-${end}`);
      assert.equal(fdIsOpen(fd), false, "the descriptor is closed at the end");
    }
  });
});

test("a file shorter than the range is an error, never a short body that looks whole", async () => {
  await withFile(randomBytes(1000), async (path) => {
    const stream = new FileBodyStream(openSync(path, "r"), 0, 1999, CHUNK);
    await assert.rejects(collect(stream), CorruptObjectError);
  });
});

test("destroyed before the end, it closes its descriptor", async () => {
  await withFile(randomBytes(4 * CHUNK), async (path) => {
    const fd = openSync(path, "r");
    const stream = new FileBodyStream(fd, 0, 4 * CHUNK - 1, CHUNK);
    stream.destroy();
    await once(stream, "close");
    assert.equal(fdIsOpen(fd), false);
  });
});

test("piped into a slow HTTP response it holds a few buffers, reused once written, and the bytes arrive intact", async () => {
  // Big enough chunks and a client slow enough that the kernel's socket buffers fill and writes
  // wait in the server: a buffer read into again too early would then change bytes still queued.
  const chunk = 1024 * 1024;
  const bytes = randomBytes(24 * chunk + 5);
  await withFile(bytes, async (path) => {
    const seen = new Set<ArrayBuffer>();
    const server = createServer((_request, response) => {
      const stream = new FileBodyStream(openSync(path, "r"), 0, bytes.length - 1, chunk);
      stream.bindSink(response);
      stream.on("data", (chunk: Buffer) => seen.add(chunk.buffer as ArrayBuffer));
      response.setHeader("content-length", bytes.length);
      stream.pipe(response);
    });
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    try {
      const { port } = server.address() as AddressInfo;
      const response = await new Promise<IncomingMessage>((resolve, reject) => {
        httpRequest({ host: "127.0.0.1", port, path: "/" }, resolve).on("error", reject).end();
      });
      const hash = createHash("sha256");
      // A client that reads slowly: the server's writes back up, so its buffers wait for them.
      for await (const part of response) {
        hash.update(part as Buffer);
        await new Promise((resolve) => setTimeout(resolve, 2));
      }
      assert.equal(hash.digest("hex"), createHash("sha256").update(bytes).digest("hex"));
      assert.ok(seen.size <= 4, `25 reads went through ${seen.size} buffers`);
    } finally {
      server.close();
    }
  });
});
