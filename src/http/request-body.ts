import type { Readable } from "node:stream";
import { VaultError } from "../core/errors.js";

/** Reads a (small) request body whole; more than `limit` bytes is refused (413) without reading on. */
export async function readBody(body: Readable, limit: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    size += (chunk as Buffer).length;
    if (size > limit) throw new VaultError("payload_too_large", `the request body is larger than ${limit} bytes`);
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}
