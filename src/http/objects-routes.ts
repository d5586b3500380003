import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { VaultError } from "../core/errors.js";
import type { ObjectInfo } from "../storage/storage-driver.js";
import { parseListLimit, type ObjectService } from "../objects/object-service.js";
import { decideRange, etagMatches } from "./http-range.js";
import { rejectOtherMethods } from "./server.js";

const OBJECTS_PREFIX = "/objects/";

/** The object store API of SPEC §3. Keys come from the raw URL, decoded exactly once. */
export function registerObjectRoutes(app: FastifyInstance, objects: ObjectService): void {
  app.get("/objects", { config: { scope: "read" } }, async (request) => listObjects(request, objects));
  rejectOtherMethods(app, "/objects", ["GET"]);

  app.put("/objects/*", { config: { scope: "write" } }, async (request, reply) => {
    const key = keyFromUrl(request.url);
    const controller = new AbortController();
    // A client that goes away mid-upload cancels the staged write.
    request.raw.once("close", () => {
      if (!request.raw.complete) controller.abort();
    });
    const info = await objects.put({
      key,
      body: request.raw,
      contentType: request.headers["content-type"],
      declaredLength: contentLength(request),
      ifNoneMatch: header(request, "if-none-match"),
      ifMatch: header(request, "if-match"),
      expectedSha256: sha256Header(request),
      expectedMd5Base64: header(request, "content-md5"),
      signal: controller.signal,
    });
    return reply.code(200).send({ key: info.key, size: info.size, created_at: info.createdAt.toISOString() });
  });

  app.get("/objects/*", { config: { scope: "read" } }, async (request, reply) => {
    const rawKey = keyFromUrl(request.url);
    if (rawKey === "") return listObjects(request, objects);
    return sendObject(request, reply, objects, rawKey, true);
  });

  app.head("/objects/*", { config: { scope: "read" } }, async (request, reply) => {
    return sendObject(request, reply, objects, keyFromUrl(request.url), false);
  });

  app.delete("/objects/*", { config: { scope: "delete" } }, async (request, reply) => {
    await objects.delete(keyFromUrl(request.url));
    return reply.code(204).send();
  });

  rejectOtherMethods(app, "/objects/*", ["GET", "HEAD", "PUT", "DELETE"]);
}

async function listObjects(request: FastifyRequest, objects: ObjectService): Promise<unknown> {
  const query = request.query as Record<string, string | string[] | undefined>;
  const prefix = single(query, "prefix") ?? "";
  if (prefix.includes("\0")) throw new VaultError("bad_request", "prefix must not contain NUL");
  return objects.list({ prefix, limit: parseListLimit(single(query, "limit")), cursor: single(query, "cursor") });
}

async function sendObject(
  request: FastifyRequest,
  reply: FastifyReply,
  objects: ObjectService,
  rawKey: string,
  withBody: boolean,
): Promise<FastifyReply> {
  // One opened version answers the conditionals, the range and the bytes: they always agree.
  const opened = await objects.open(rawKey);
  let handedOver = false;
  try {
    const { info } = opened;
    setObjectHeaders(reply, info);
    if (notModified(request, info)) return await reply.code(304).send();
    const decision = withBody && rangeApplies(request, info) ? decideRange(header(request, "range"), info.size) : { kind: "full" as const };
    if (decision.kind === "unsatisfiable") {
      reply.header("content-range", `bytes */${info.size}`);
      throw new VaultError("range_not_satisfiable", `range not satisfiable for an object of ${info.size} bytes`);
    }
    const range = decision.kind === "partial" ? decision.range : undefined;
    if (range === undefined) reply.code(200).header("content-length", info.size);
    else reply.code(206).header("content-range", `bytes ${range.start}-${range.end}/${info.size}`).header("content-length", range.end - range.start + 1);
    if (!withBody) return await reply.send();
    handedOver = true;
    if (opened.contents !== undefined) {
      return await reply.send(range === undefined ? opened.contents : opened.contents.subarray(range.start, range.end + 1));
    }
    return await reply.send(opened.body(range));
  } finally {
    if (!handedOver) await opened.close();
  }
}

function setObjectHeaders(reply: FastifyReply, info: ObjectInfo): void {
  reply
    .header("etag", info.etag)
    .header("last-modified", info.modifiedAt.toUTCString())
    .header("accept-ranges", "bytes")
    .header("content-type", info.contentType ?? "application/octet-stream");
}

function notModified(request: FastifyRequest, info: ObjectInfo): boolean {
  const ifNoneMatch = header(request, "if-none-match");
  if (ifNoneMatch !== undefined) return etagMatches(ifNoneMatch, info.etag);
  const ifModifiedSince = header(request, "if-modified-since");
  if (ifModifiedSince === undefined) return false;
  const since = Date.parse(ifModifiedSince);
  return !Number.isNaN(since) && Math.floor(info.modifiedAt.getTime() / 1000) * 1000 <= since;
}

/** `If-Range` (RFC 9110 §13.1.5): the range applies only while the representation is unchanged. */
function rangeApplies(request: FastifyRequest, info: ObjectInfo): boolean {
  const ifRange = header(request, "if-range");
  if (ifRange === undefined) return true;
  if (ifRange.startsWith('"')) return ifRange === info.etag;
  const date = Date.parse(ifRange);
  return !Number.isNaN(date) && Math.floor(info.modifiedAt.getTime() / 1000) * 1000 <= date;
}

/** The key is everything after `/objects/` up to the query, percent-decoded exactly once. */
export function keyFromUrl(url: string): string {
  const queryStart = url.indexOf("?");
  const path = queryStart === -1 ? url : url.slice(0, queryStart);
  const encoded = path.startsWith(OBJECTS_PREFIX) ? path.slice(OBJECTS_PREFIX.length) : "";
  try {
    return decodeURIComponent(encoded);
  } catch {
    throw new VaultError("bad_request", "the key is not valid percent-encoded UTF-8");
  }
}

function header(request: FastifyRequest, name: string): string | undefined {
  const value = request.headers[name];
  return Array.isArray(value) ? value.join(", ") : value;
}

function single(query: Record<string, string | string[] | undefined>, name: string): string | undefined {
  const value = query[name];
  if (Array.isArray(value)) throw new VaultError("bad_request", `query parameter '${name}' given more than once`);
  return value;
}

function contentLength(request: FastifyRequest): number | undefined {
  const raw = request.headers["content-length"];
  if (raw === undefined) return undefined;
  return Number(raw);
}

/** `x-checksum-sha256` as hex (64 digits) or base64 (as S3's x-amz-checksum-sha256). */
function sha256Header(request: FastifyRequest): string | undefined {
  const raw = header(request, "x-checksum-sha256")?.trim();
  if (raw === undefined) return undefined;
  if (/^[0-9a-fA-F]{64}$/.test(raw)) return raw.toLowerCase();
  const bytes = Buffer.from(raw, "base64");
  if (bytes.length === 32 && /^[A-Za-z0-9+/]{43}=$/.test(raw)) return bytes.toString("hex");
  throw new VaultError("bad_request", "x-checksum-sha256 must be 64 hex digits or base64 of 32 bytes");
}
