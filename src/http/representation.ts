import type { Readable } from "node:stream";
import type { FastifyReply, FastifyRequest } from "fastify";
import type { ByteRange } from "../core/byte-range.js";
import { VaultError } from "../core/errors.js";
import { decideRange, etagMatches } from "./http-range.js";
import { FileBodyStream } from "../storage/file-body-stream.js";

/**
 * What a GET or HEAD is answered from: a stored object, or a cached artifact (a hit, a download
 * in progress, a presented document). Object routes and proxy routes both answer through
 * `sendRepresentation`, so conditional requests and ranges behave the same on both faces.
 */
export interface Representation {
  /** Unknown while a download without a Content-Length is arriving: then no ranges, and chunked. */
  readonly size: number | undefined;
  /** Strong, quoted; unknown while a download is arriving. */
  readonly etag: string | undefined;
  readonly lastModified: Date | undefined;
  readonly contentType: string | undefined;
  /** The whole body when it is already in memory. */
  readonly contents: Buffer | undefined;
  /** Told how many bytes of `contents` were sent (the cache counts them). */
  readonly sent?: ((bytes: number) => void) | undefined;
  /** Streams it, or an inclusive range of it (only asked for when `size` is known). Call once. */
  body(range?: ByteRange): Readable;
  /** Lets go without reading. */
  release(): void | Promise<void>;
  /**
   * A document meant to be read in a browser (an index page): served inline even when it is
   * HTML. Everything else of an active type is served as an attachment.
   */
  readonly browsable?: boolean | undefined;
  /**
   * A download still arriving: the status and headers go out at once, not with the first body
   * bytes (which come only once they are on the spool's disk), so the client's first byte is not
   * held up by the cache's own write.
   */
  readonly arriving?: boolean | undefined;
}

/**
 * Types a browser would run or render with scripts: served as attachments, never inline from
 * the vault's origin (where the web UI and its token live).
 */
const ACTIVE_TYPE = /^(?:text\/html|application\/xhtml\+xml|image\/svg\+xml|text\/xml|application\/xml|[a-z]+\/[a-z0-9.+-]+\+xml|(?:text|application)\/(?:x-)?(?:java|ecma)script|text\/xsl|application\/pdf|multipart\/x-mixed-replace)$/;

/**
 * Headers that keep stored bytes from running in the vault's origin whatever they hold: no
 * sniffing a type the bytes were not stored with; a sandbox CSP (scripts, forms and plugins off,
 * an opaque origin, nothing loaded); and active types as downloads.
 */
function setContentSafety(reply: FastifyReply, contentType: string, browsable: boolean): void {
  reply.header("x-content-type-options", "nosniff");
  reply.header("content-security-policy", CONTENT_SECURITY_POLICY);
  if (isServedAsAttachment(contentType, browsable)) reply.header("content-disposition", "attachment");
}

export const CONTENT_SECURITY_POLICY = "sandbox; default-src 'none'";

/** Whether a body of this type goes out as a download (`Content-Disposition: attachment`). */
export function isServedAsAttachment(contentType: string, browsable: boolean): boolean {
  if (browsable) return false;
  const type = (contentType.split(";")[0] ?? "").trim().toLowerCase();
  return ACTIVE_TYPE.test(type);
}

/**
 * Answers GET/HEAD from a representation (RFC 9110):
 * - `ETag`, `Last-Modified`, `Content-Type`, `Accept-Ranges` and `Content-Length` when known;
 * - `If-None-Match` (weak comparison), else `If-Modified-Since` (second precision): 304;
 * - `Range` on a GET, one range: 206 with `Content-Range`; several or unparseable: ignored (200);
 *   wholly past the end: 416 with `Content-Range: bytes *\/size`;
 * - `If-Range` with an ETag (strong comparison) or a date (exactly the `Last-Modified`): the
 *   range applies only if the representation is still that one, else the whole body is sent.
 * Headers the caller set on `reply` before (X-Cache, the backend's) are kept.
 */
export async function sendRepresentation(request: FastifyRequest, reply: FastifyReply, representation: Representation): Promise<FastifyReply> {
  let handedOver = false;
  try {
    const { size, etag, lastModified } = representation;
    const contentType = representation.contentType ?? "application/octet-stream";
    reply.header("content-type", contentType);
    setContentSafety(reply, contentType, representation.browsable === true);
    if (etag !== undefined) reply.header("etag", etag);
    if (lastModified !== undefined) reply.header("last-modified", lastModified.toUTCString());
    if (size !== undefined) reply.header("accept-ranges", "bytes");
    if (notModified(request, etag, lastModified)) return await reply.code(304).send();

    const ifRange = header(request, "if-range");
    const rangeApplies = ifRange === undefined || representationIs(ifRange, etag, lastModified);
    const decision =
      size !== undefined && request.method === "GET" && rangeApplies ? decideRange(header(request, "range"), size) : ({ kind: "full" } as const);
    if (decision.kind === "unsatisfiable") {
      reply.header("content-range", `bytes */${size ?? 0}`);
      throw new VaultError("range_not_satisfiable", `range not satisfiable for ${size ?? 0} bytes`);
    }
    const range = decision.kind === "partial" ? decision.range : undefined;
    if (range !== undefined) {
      reply.code(206).header("content-range", `bytes ${range.start}-${range.end}/${size ?? 0}`).header("content-length", range.end - range.start + 1);
    } else {
      reply.code(200);
      if (size !== undefined) reply.header("content-length", size);
    }
    if (request.method === "HEAD") return await reply.send();
    handedOver = true;
    const { contents } = representation;
    if (contents !== undefined) {
      const sent = range === undefined ? contents : contents.subarray(range.start, range.end + 1);
      representation.sent?.(sent.length);
      return await reply.send(sent);
    }
    const body = representation.body(range);
    // A stored file's stream reuses its buffers once this response has written them out.
    if (body instanceof FileBodyStream) body.bindSink(reply.raw);
    // The framework starts piping (resume) right after it wrote the head: flush it then.
    if (representation.arriving === true) {
      body.once("resume", () => {
        if (!reply.raw.destroyed && !reply.raw.writableEnded) reply.raw.flushHeaders();
      });
    }
    return await reply.send(body);
  } finally {
    if (!handedOver) await representation.release();
  }
}

function notModified(request: FastifyRequest, etag: string | undefined, lastModified: Date | undefined): boolean {
  const ifNoneMatch = header(request, "if-none-match");
  if (ifNoneMatch !== undefined) return etag !== undefined && etagMatches(ifNoneMatch, etag);
  const ifModifiedSince = header(request, "if-modified-since");
  if (ifModifiedSince === undefined || lastModified === undefined) return false;
  const since = Date.parse(ifModifiedSince);
  return !Number.isNaN(since) && seconds(lastModified) <= since;
}

/** `If-Range`'s validator names this representation: its strong ETag, or exactly its date. */
function representationIs(ifRange: string, etag: string | undefined, lastModified: Date | undefined): boolean {
  const value = ifRange.trim();
  if (value.startsWith('"') || value.startsWith("W/")) return etag !== undefined && value === etag;
  const date = Date.parse(value);
  return lastModified !== undefined && !Number.isNaN(date) && seconds(lastModified) === date;
}

/** HTTP dates have whole seconds. */
function seconds(date: Date): number {
  return Math.floor(date.getTime() / 1000) * 1000;
}

function header(request: FastifyRequest, name: string): string | undefined {
  const value = request.headers[name];
  return Array.isArray(value) ? value.join(", ") : value;
}
