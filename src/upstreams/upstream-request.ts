import { Readable } from "node:stream";
import type { ResumeRequest, UpstreamAnswer, Validators } from "../core/cache/artifact-source.js";
import type { ArtifactRef } from "../core/cache/artifact-ref.js";
import { VaultError } from "../core/errors.js";
import { validateKey } from "../core/storage-key.js";

/**
 * What every backend's upstream side shares: the cache key namespace, the request headers of a
 * fill, and reading a small upstream body (an index page, a token) whole.
 */

/** `<backend>/<path>`: one namespace per backend in the cache store. */
export function cacheKeyFor(backend: string, path: string): string {
  try {
    return validateKey(`${backend}/${path}`);
  } catch (error) {
    throw new VaultError("bad_request", `path too long or invalid for the cache: ${(error as Error).message}`);
  }
}

/**
 * The headers of an upstream GET for `ref`: its own (`accept`, ...), the bytes as stored upstream
 * (lengths and digests are checked on them), the validators of a revalidation, and the range of
 * a resumed download (`If-Range`: the rest, or else the whole file with a 200, which the cache
 * refuses).
 */
export function fillRequestHeaders(ref: ArtifactRef, validators?: Validators, resume?: ResumeRequest): Record<string, string> {
  return {
    ...ref.upstreamHeaders,
    "accept-encoding": "identity",
    ...(validators?.etag === undefined ? {} : { "if-none-match": validators.etag }),
    ...(validators?.lastModified === undefined ? {} : { "if-modified-since": validators.lastModified }),
    ...(resume === undefined ? {} : { range: `bytes=${resume.offset}-` }),
    ...(resume?.ifRange === undefined ? {} : { "if-range": resume.ifRange }),
  };
}

/** Reads an upstream body whole; more than `limit` bytes is the upstream's fault (`upstream_failed`). */
export async function readUpstreamBody(body: Readable, limit: number, what: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of body) {
      size += (chunk as Buffer).length;
      if (size > limit) throw new VaultError("upstream_failed", `${what} is larger than ${limit} bytes`);
      chunks.push(chunk as Buffer);
    }
  } finally {
    body.destroy();
  }
  return Buffer.concat(chunks);
}

/**
 * The answer a fill stores for a document the backend rewrote (an index page, a packument): the
 * upstream's status line and headers (its validators, for revalidation) with the new body, which
 * no range of the upstream's can continue (`resumable: false`).
 */
export function rewrittenAnswer(response: UpstreamAnswer, text: string): UpstreamAnswer {
  const body = Buffer.from(text, "utf8");
  const headers: Record<string, string> = { ...response.headers, "content-length": String(body.length) };
  delete headers["content-encoding"];
  return { status: 200, headers, url: response.url, body: Readable.from([body]), resumable: false };
}

/** A base URL without query or fragment, ending in `/`, so relative paths join below it. */
export function withTrailingSlash(url: string): string {
  const parsed = new URL(url);
  parsed.search = "";
  parsed.hash = "";
  if (!parsed.pathname.endsWith("/")) parsed.pathname += "/";
  return parsed.href;
}

/** A path segment percent-decoded; malformed encoding is the client's fault (400). */
export function decodePathSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw new VaultError("bad_request", "invalid percent-encoding in the path");
  }
}

/** `decodeURIComponent`, or the text as it is when it is not valid percent-encoding. */
export function decodeOrKeep(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}
