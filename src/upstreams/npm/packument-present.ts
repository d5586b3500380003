import { createHash } from "node:crypto";
import { Readable, Transform, type TransformCallback } from "node:stream";
import type { CachedArtifact } from "../../core/cache/artifact-source.js";
import { VAULT_BASE_IN_JSON } from "./packument-rewrite.js";

const MARKER = Buffer.from(VAULT_BASE_IN_JSON, "utf8");

/**
 * A cached packument as this client gets it: the marker swapped for `baseUrl` (the backend's
 * prefix as the client reached the vault, e.g. `http://vault:8080/npm`). A document already in
 * memory is rewritten whole (its length is then known, and ranges work); a large one streams
 * through the substitution, chunked. Its ETag is the stored one's, told apart per base URL.
 */
export function presentPackument(artifact: CachedArtifact, baseUrl: string): CachedArtifact {
  const base = Buffer.from(baseUrl, "utf8");
  const etag = artifact.etag === undefined ? undefined : `"${artifact.etag.replaceAll('"', "")}.${createHash("sha256").update(baseUrl).digest("hex").slice(0, 12)}"`;
  if (artifact.contents !== undefined) {
    const contents = substitute(artifact.contents, base);
    return {
      ...artifact,
      etag,
      size: contents.length,
      contents,
      body: (range) => Readable.from([range === undefined ? contents : contents.subarray(range.start, range.end + 1)]),
    };
  }
  return { ...artifact, etag, size: undefined, body: () => artifact.body(undefined).pipe(new MarkerSubstitution(base)) };
}

/** Every marker in `bytes` replaced by `base`. */
export function substitute(bytes: Buffer, base: Buffer): Buffer {
  const { parts, end } = replaceMarkers(bytes, base);
  if (parts.length === 0) return bytes;
  parts.push(bytes.subarray(end));
  return Buffer.concat(parts);
}

/** The pieces of `bytes` up to the end of its last marker, markers replaced by `base`. */
function replaceMarkers(bytes: Buffer, base: Buffer): { parts: Buffer[]; end: number } {
  const parts: Buffer[] = [];
  let end = 0;
  for (let at = bytes.indexOf(MARKER); at !== -1; at = bytes.indexOf(MARKER, end)) {
    parts.push(bytes.subarray(end, at), base);
    end = at + MARKER.length;
  }
  return { parts, end };
}

/** The substitution over a stream: a marker split across chunks is found too. */
export class MarkerSubstitution extends Transform {
  readonly #base: Buffer;
  /** The end of what came so far that may be the start of a marker. */
  #carry: Buffer = Buffer.alloc(0);

  constructor(base: Buffer) {
    super();
    this.#base = base;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    const bytes = this.#carry.length === 0 ? chunk : Buffer.concat([this.#carry, chunk]);
    const { parts, end } = replaceMarkers(bytes, this.#base);
    // No marker starts after `end` and ends in `bytes`; one may start in the last
    // MARKER.length - 1 bytes and end in the next chunk, so those wait for it.
    const cut = Math.max(end, bytes.length - (MARKER.length - 1));
    parts.push(bytes.subarray(end, cut));
    this.#carry = Buffer.from(bytes.subarray(cut));
    callback(null, Buffer.concat(parts));
  }

  override _flush(callback: TransformCallback): void {
    callback(null, substitute(this.#carry, this.#base));
  }
}
