import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { VaultError } from "../core/errors.js";
import { parseListLimit, type ObjectService } from "../objects/object-service.js";
import { sendRepresentation } from "./representation.js";
import { rejectOtherMethods } from "./reject-methods.js";
import { deleteObjectSchema, getObjectSchema, headObjectSchema, listObjectsSchema, putObjectSchema } from "./route-schemas.js";

export const OBJECTS_PREFIX = "/objects/";
/** The route of one object, as the framework names it (metrics label every answer with it). */
export const OBJECT_ROUTE = "/objects/*";

/** The object store API of SPEC §3. Keys come from the raw URL, decoded exactly once. */
export function registerObjectRoutes(app: FastifyInstance, objects: ObjectService): void {
  app.get("/objects", { config: { scope: "read" }, schema: listObjectsSchema }, async (request) => listObjects(request, objects));
  rejectOtherMethods(app, "/objects", ["GET"]);

  app.put(OBJECT_ROUTE, { config: { scope: "write" }, schema: putObjectSchema }, async (request, reply) => {
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
    // `created_at` is the time of THIS write, as the source design answers (and S3's LastModified
    // is): an overwrite is a new object. `ObjectInfo.createdAt` (the key's first write) stays internal.
    return reply.code(200).send({ key: info.key, size: info.size, created_at: info.modifiedAt.toISOString() });
  });

  // `/objects/` is the empty key, refused (400) by every method like any invalid key; the
  // listing is `/objects` alone.
  app.get(OBJECT_ROUTE, { config: { scope: "read" }, schema: getObjectSchema }, async (request, reply) => {
    return sendObject(request, reply, objects, keyFromUrl(request.url));
  });

  app.head(OBJECT_ROUTE, { config: { scope: "read" }, schema: headObjectSchema }, async (request, reply) => {
    return sendObject(request, reply, objects, keyFromUrl(request.url));
  });

  app.delete(OBJECT_ROUTE, { config: { scope: "delete" }, schema: deleteObjectSchema }, async (request, reply) => {
    await objects.delete(keyFromUrl(request.url));
    return reply.code(204).send();
  });

  rejectOtherMethods(app, OBJECT_ROUTE, ["GET", "HEAD", "PUT", "DELETE"]);
}

async function listObjects(request: FastifyRequest, objects: ObjectService): Promise<unknown> {
  const query = request.query as Record<string, string | string[] | undefined>;
  const prefix = single(query, "prefix") ?? "";
  if (prefix.includes("\0")) throw new VaultError("bad_request", "prefix must not contain NUL");
  return objects.list({ prefix, limit: parseListLimit(single(query, "limit")), cursor: single(query, "cursor") });
}

async function sendObject(request: FastifyRequest, reply: FastifyReply, objects: ObjectService, rawKey: string): Promise<FastifyReply> {
  // One opened version answers the conditionals, the range and the bytes: they always agree.
  const opened = await objects.open(rawKey);
  const { info } = opened;
  return sendRepresentation(request, reply, {
    size: info.size,
    etag: info.etag,
    lastModified: info.modifiedAt,
    contentType: info.contentType,
    contents: opened.contents,
    body: (range) => opened.body(range),
    release: () => opened.close(),
  });
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
