/**
 * Checking what a server sends before anything is timed: the SHA-256 of a whole response,
 * hashed as it streams (a 256 MiB body is never held in memory).
 */
import { createHash } from "node:crypto";

export interface HashedResponse {
  readonly status: number;
  readonly bytes: number;
  readonly sha256: string;
  /** The `X-Cache` header, "" when absent. */
  readonly xCache: string;
}

export async function fetchSha256(url: string): Promise<HashedResponse> {
  const response = await fetch(url, { signal: AbortSignal.timeout(300_000) });
  const hash = createHash("sha256");
  let bytes = 0;
  if (response.body !== null) {
    for await (const chunk of response.body as AsyncIterable<Uint8Array>) {
      hash.update(chunk);
      bytes += chunk.length;
    }
  }
  return { status: response.status, bytes, sha256: hash.digest("hex"), xCache: response.headers.get("x-cache") ?? "" };
}

/** Throws unless `url` answers 200 with exactly the bytes whose SHA-256 is `sha256`. */
export async function expectBytes(label: string, url: string, sha256: string, size: number): Promise<HashedResponse> {
  const got = await fetchSha256(url);
  if (got.status !== 200 || got.bytes !== size || got.sha256 !== sha256) {
    throw new Error(
      `${label}: ${url} answered ${got.status} with ${got.bytes} bytes (sha256 ${got.sha256.slice(0, 16)}…), ` +
        `expected ${size} bytes with sha256 ${sha256.slice(0, 16)}…`,
    );
  }
  return got;
}
