/**
 * An S3 endpoint for the tests: the one named by `S3_TEST_ENDPOINT` (with `S3_TEST_BUCKET`,
 * `S3_TEST_ACCESS_KEY`, `S3_TEST_SECRET_KEY`, `S3_TEST_REGION`; AWS, MinIO ...), else s3rver
 * started here on 127.0.0.1:0 in a temp dir. Every store a test asks for gets a prefix of its own,
 * so runs and tests never see each other's objects.
 *
 * s3rver speaks the protocol (routing, SigV4, XML) but its storage is a sketch, so it is mended
 * here to behave like S3 where the driver's contract depends on it:
 * - writes are atomic (a temp file renamed into place; the description travels with the file's
 *   inode, so a reader gets one version's bytes and headers even while it is overwritten);
 * - listings are in UTF-8 byte order with `StartAfter` / `MaxKeys` applied after sorting (s3rver
 *   walks directories in readdir order), and truncated ones work (s3rver's continuation tokens use
 *   DES, which OpenSSL 3 refuses);
 * - AbortMultipartUpload, ListMultipartUploads and UploadPartCopy exist (s3rver has none);
 * - a range on an empty object is 416;
 * - with `conditionalWrites: true`, `If-None-Match: *` and `If-Match` on PutObject, CopyObject and
 *   CompleteMultipartUpload (412 when they fail), and `If-Match` on GET / HEAD, as AWS S3 does.
 *   Without it, they are ignored, as s3rver (and older S3-compatible servers) do.
 */
import { createHash, randomBytes } from "node:crypto";
import { createWriteStream } from "node:fs";
import { mkdir, mkdtemp, open, readdir, readFile, rename, rm, stat, unlink, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import path from "node:path";
import { Readable, Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { Stats } from "node:fs";
import {
  AbortMultipartUploadCommand,
  DeleteObjectsCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  S3Client,
} from "@aws-sdk/client-s3";
import S3rver from "s3rver";
import type { S3StoreOptions } from "../../src/storage/store-config.js";

const require = createRequire(import.meta.url);

// ---- the s3rver internals this file builds on (CommonJS, untyped) ----

interface S3ObjectLike {
  readonly bucket: string;
  readonly key: string;
  readonly content: Buffer | Readable | null;
  readonly metadata: Record<string, string>;
  range?: { start: number; end: number };
}
type S3ObjectClass = new (bucket: string, key: string, content: Buffer | Readable | null, metadata: Record<string, unknown>) => S3ObjectLike;
type S3ErrorClass = new (code: string, message: string, detail?: Record<string, unknown>) => Error;
interface FilesystemStoreLike {
  rootDirectory: string;
  getBucketPath(bucket: string): string;
  getResourcePath(bucket: string, key: string | undefined, resource: string): string;
}
type FilesystemStoreClass = new (directory: string) => FilesystemStoreLike;

const FilesystemStore = require("s3rver/lib/stores/filesystem") as FilesystemStoreClass;
const S3Object = require("s3rver/lib/models/object") as S3ObjectClass & { ALLOWED_METADATA: string[] };
const S3Error = require("s3rver/lib/models/error") as S3ErrorClass;

const OBJECT_SUFFIX = "._S3rver_object";

function isMissing(error: unknown): boolean {
  return (error as NodeJS.ErrnoException).code === "ENOENT";
}

/** What S3 keeps of a write's headers. */
function storedMetadata(headers: Record<string, unknown>): Record<string, string> {
  const kept: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (typeof value !== "string") continue;
    if (S3Object.ALLOWED_METADATA.includes(name) || name.startsWith("x-amz-meta-")) kept[name] = value;
  }
  if (kept["content-type"] === undefined) kept["content-type"] = "binary/octet-stream";
  return kept;
}

interface Version {
  readonly metadata: Record<string, string>;
  readonly md5: string;
}

/** s3rver's filesystem store, with atomic object writes, sorted listings and more multipart. */
class AtomicStore extends FilesystemStore {
  /** Each object file's description, by inode: a reader that opened the file has its version's. */
  readonly versions = new Map<number, Version>();

  #describe(stats: Stats): Record<string, string> {
    const version = this.versions.get(stats.ino);
    if (version === undefined) throw Object.assign(new Error("no such object"), { code: "ENOENT" });
    return { ...version.metadata, etag: JSON.stringify(version.md5), "last-modified": stats.mtime.toUTCString(), "content-length": String(stats.size) };
  }

  async getMetadata(bucket: string, key: string): Promise<Record<string, string>> {
    return this.#describe(await stat(this.getResourcePath(bucket, key, "object")));
  }

  async existsObject(bucket: string, key: string): Promise<boolean> {
    try {
      await this.getMetadata(bucket, key);
      return true;
    } catch (error) {
      if (isMissing(error)) return false;
      throw error;
    }
  }

  async getObject(bucket: string, key: string, options?: { start?: number; end?: number }): Promise<S3ObjectLike | null> {
    let handle;
    try {
      handle = await open(this.getResourcePath(bucket, key, "object"), "r");
    } catch (error) {
      if (isMissing(error)) return null;
      throw error;
    }
    let metadata: Record<string, string>;
    try {
      metadata = this.#describe(await handle.stat());
    } catch (error) {
      await handle.close();
      if (isMissing(error)) return null;
      throw error;
    }
    const size = Number(metadata["content-length"]);
    const ranged = options !== undefined && (options.start !== undefined || options.end !== undefined);
    const start = options?.start ?? 0;
    const end = Math.min(options?.end ?? Number.POSITIVE_INFINITY, size - 1);
    if (ranged && (start < 0 || start > end)) {
      await handle.close();
      const object = new S3Object(bucket, key, null, metadata);
      object.range = { start, end };
      return object;
    }
    const content = size === 0 ? Readable.from([]) : handle.createReadStream({ start, end, autoClose: true });
    if (size === 0) await handle.close();
    const object = new S3Object(bucket, key, content, metadata);
    if (ranged) object.range = { start, end };
    return object;
  }

  /** Writes `content` to a temp file beside `target`, records its description, renames it into place. */
  async #commit(target: string, content: Readable | Buffer, metadata: Record<string, string>): Promise<{ size: number; md5: string }> {
    await mkdir(path.dirname(target), { recursive: true });
    const temporary = path.join(path.dirname(target), `.tmp-${randomBytes(8).toString("hex")}`);
    const md5 = createHash("md5");
    let size = 0;
    try {
      await pipeline(
        Buffer.isBuffer(content) ? Readable.from([content]) : content,
        new Transform({
          transform(chunk: Buffer, _encoding, done) {
            md5.update(chunk);
            size += chunk.length;
            done(null, chunk);
          },
        }),
        createWriteStream(temporary),
      );
      const digest = md5.digest("hex");
      this.versions.set((await stat(temporary)).ino, { metadata, md5: digest });
      await rename(temporary, target);
      return { size, md5: digest };
    } catch (error) {
      await unlink(temporary).catch(() => undefined);
      throw error;
    }
  }

  async putObject(object: S3ObjectLike): Promise<{ size: number; md5: string }> {
    return this.#commit(this.getResourcePath(object.bucket, object.key, "object"), object.content ?? Buffer.alloc(0), storedMetadata(object.metadata));
  }

  async copyObject(srcBucket: string, srcKey: string, destBucket: string, destKey: string, replacement: Record<string, unknown> | null): Promise<Record<string, string>> {
    const handle = await open(this.getResourcePath(srcBucket, srcKey, "object"), "r");
    const source = this.#describe(await handle.stat());
    const metadata = replacement === null ? storedMetadata(source) : storedMetadata(replacement);
    await this.#commit(this.getResourcePath(destBucket, destKey, "object"), handle.createReadStream({ autoClose: true }), metadata);
    return this.getMetadata(destBucket, destKey);
  }

  async deleteObject(bucket: string, key: string): Promise<void> {
    // Empty directories stay: pruning them races writes creating files in them.
    await unlink(this.getResourcePath(bucket, key, "object")).catch((error: unknown) => {
      if (!isMissing(error)) throw error;
    });
  }

  async listObjects(
    bucket: string,
    options: { delimiter?: string; startAfter?: string; prefix?: string; maxKeys?: number },
  ): Promise<{ objects: S3ObjectLike[]; commonPrefixes: string[]; isTruncated: boolean }> {
    const { delimiter = "", startAfter = "", prefix = "", maxKeys = Number.POSITIVE_INFINITY } = options;
    const bucketPath = this.getBucketPath(bucket);
    const keys: string[] = [];
    const walk = async (dir: string): Promise<void> => {
      for (const entry of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
        const full = path.join(dir, entry.name);
        if (entry.isDirectory()) {
          if (entry.name !== "._S3rver_uploads") await walk(full);
        } else if (entry.name.endsWith(OBJECT_SUFFIX)) {
          keys.push(path.relative(bucketPath, full).split(path.sep).join("/").slice(0, -OBJECT_SUFFIX.length));
        }
      }
    };
    await walk(bucketPath);
    const byBytes = (a: string, b: string): number => Buffer.compare(Buffer.from(a), Buffer.from(b));
    const listed = keys.filter((key) => key.startsWith(prefix) && byBytes(key, startAfter) > 0).sort(byBytes);
    const objects: S3ObjectLike[] = [];
    const commonPrefixes = new Set<string>();
    let isTruncated = false;
    for (const key of listed) {
      const at = delimiter === "" ? -1 : key.indexOf(delimiter, prefix.length);
      if (at !== -1) {
        commonPrefixes.add(key.slice(0, at + delimiter.length));
        continue;
      }
      if (objects.length >= maxKeys) {
        isTruncated = true;
        break;
      }
      try {
        objects.push(new S3Object(bucket, key, null, await this.getMetadata(bucket, key)));
      } catch (error) {
        if (!isMissing(error)) throw error;
      }
    }
    return { objects, commonPrefixes: [...commonPrefixes].sort(byBytes), isTruncated };
  }

  #uploadsDir(bucket: string): string {
    return this.getResourcePath(bucket, undefined, "uploads");
  }

  async listUploads(bucket: string, prefix: string): Promise<Array<{ key: string; uploadId: string; initiated: Date }>> {
    const dir = this.#uploadsDir(bucket);
    const uploads = [];
    for (const uploadId of await readdir(dir).catch(() => [])) {
      try {
        const key = await readFile(path.join(dir, uploadId, "key"), "utf8");
        if (key.startsWith(prefix)) uploads.push({ key, uploadId, initiated: (await stat(path.join(dir, uploadId))).birthtime });
      } catch (error) {
        if (!isMissing(error)) throw error;
      }
    }
    return uploads.sort((a, b) => Buffer.compare(Buffer.from(a.key), Buffer.from(b.key)));
  }

  async abortUpload(bucket: string, uploadId: string): Promise<boolean> {
    const dir = path.join(this.#uploadsDir(bucket), uploadId);
    try {
      await stat(dir);
    } catch {
      return false;
    }
    await rm(dir, { recursive: true, force: true });
    return true;
  }

  async putPartCopy(bucket: string, uploadId: string, partNumber: number, source: { bucket: string; key: string }, range: { start: number; end: number } | undefined): Promise<string> {
    const dir = path.join(this.#uploadsDir(bucket), uploadId);
    await stat(dir);
    const handle = await open(this.getResourcePath(source.bucket, source.key, "object"), "r");
    const md5 = createHash("md5");
    const part = path.join(dir, String(partNumber));
    await pipeline(
      handle.createReadStream({ ...(range === undefined ? {} : range), autoClose: true }),
      new Transform({
        transform(chunk: Buffer, _encoding, done) {
          md5.update(chunk);
          done(null, chunk);
        },
      }),
      createWriteStream(part),
    );
    const digest = md5.digest("hex");
    await writeFile(`${part}.md5`, digest);
    return digest;
  }
}

// ---- routes s3rver lacks, and conditional requests ----

interface KoaContext {
  method: string;
  path: string;
  query: Record<string, string | string[] | undefined>;
  headers: Record<string, string | string[] | undefined>;
  status: number;
  body: unknown;
}
type Next = () => Promise<void>;

function header(ctx: KoaContext, name: string): string | undefined {
  const value = ctx.headers[name];
  return Array.isArray(value) ? value.join(",") : value;
}

function etagsMatch(list: string, etag: string): boolean {
  const bare = etag.replaceAll('"', "");
  return list.split(",").some((candidate) => candidate.trim() === "*" || candidate.trim().replaceAll('"', "") === bare);
}

function extraRoutes(store: AtomicStore, conditionalWrites: boolean): (ctx: KoaContext, next: Next) => Promise<void> {
  const tails = new Map<string, Promise<void>>();
  const exclusive = async (key: string, fn: () => Promise<void>): Promise<void> => {
    const previous = tails.get(key) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((resolve) => (release = resolve));
    const tail = previous.then(() => mine);
    tails.set(key, tail);
    await previous;
    try {
      await fn();
    } finally {
      release();
      if (tails.get(key) === tail) tails.delete(key);
    }
  };
  const current = async (bucket: string, key: string): Promise<Record<string, string> | undefined> => {
    try {
      return await store.getMetadata(bucket, key);
    } catch (error) {
      if (isMissing(error)) return undefined;
      throw error;
    }
  };
  const checkWrite = async (ctx: KoaContext, bucket: string, key: string): Promise<void> => {
    const ifNoneMatch = header(ctx, "if-none-match");
    const ifMatch = header(ctx, "if-match");
    if (!conditionalWrites || (ifNoneMatch === undefined && ifMatch === undefined)) return;
    const existing = await current(bucket, key);
    if (ifNoneMatch !== undefined && existing !== undefined) {
      throw new S3Error("PreconditionFailed", "At least one of the pre-conditions you specified did not hold", { Condition: "If-None-Match" });
    }
    if (ifMatch !== undefined) {
      if (existing === undefined) throw new S3Error("NoSuchKey", "The specified key does not exist.", { Key: key });
      if (!etagsMatch(ifMatch, existing["etag"] ?? "")) {
        throw new S3Error("PreconditionFailed", "At least one of the pre-conditions you specified did not hold", { Condition: "If-Match" });
      }
    }
  };

  return async (ctx, next) => {
    const match = /^\/([^/]+)(?:\/(.*))?$/.exec(ctx.path);
    if (match === null) return next();
    const bucket = decodeURIComponent(match[1] ?? "");
    const key = match[2] === undefined || match[2] === "" ? undefined : decodeURIComponent(match[2]);
    const uploadId = typeof ctx.query["uploadId"] === "string" ? ctx.query["uploadId"] : undefined;

    if (key === undefined) {
      if (ctx.method === "GET" && ctx.query["list-type"] === "2") {
        // s3rver's own ListObjectsV2 makes its continuation tokens with DES, which OpenSSL 3 refuses.
        const text = (name: string): string | undefined => (typeof ctx.query[name] === "string" ? ctx.query[name] : undefined);
        const token = text("continuation-token");
        const maxKeys = Math.min(1000, Number(text("max-keys") ?? 1000));
        const prefix = text("prefix") ?? "";
        const delimiter = text("delimiter");
        const result = await store.listObjects(bucket, {
          prefix,
          maxKeys,
          ...(delimiter === undefined ? {} : { delimiter }),
          startAfter: token === undefined ? (text("start-after") ?? "") : Buffer.from(token, "base64url").toString("utf8"),
        });
        const last = result.objects.at(-1)?.key;
        ctx.body = {
          ListBucketResult: {
            "@": { xmlns: "http://s3.amazonaws.com/doc/2006-03-01/" },
            Name: bucket,
            Prefix: prefix,
            StartAfter: text("start-after"),
            ContinuationToken: token,
            NextContinuationToken: result.isTruncated && last !== undefined ? Buffer.from(last, "utf8").toString("base64url") : undefined,
            KeyCount: result.objects.length,
            MaxKeys: maxKeys,
            Delimiter: delimiter,
            IsTruncated: result.isTruncated,
            Contents: result.objects.map((object) => ({
              Key: object.key,
              LastModified: new Date(object.metadata["last-modified"] ?? 0).toISOString(),
              ETag: object.metadata["etag"],
              Size: object.metadata["content-length"],
              StorageClass: "STANDARD",
            })),
            CommonPrefixes: result.commonPrefixes.map((common) => ({ Prefix: common })),
          },
        };
        return;
      }
      if (ctx.method === "GET" && "uploads" in ctx.query) {
        const prefix = typeof ctx.query["prefix"] === "string" ? ctx.query["prefix"] : "";
        const uploads = await store.listUploads(bucket, prefix);
        ctx.body = {
          ListMultipartUploadsResult: {
            "@": { xmlns: "http://s3.amazonaws.com/doc/2006-03-01/" },
            Bucket: bucket,
            Prefix: prefix,
            MaxUploads: 1000,
            IsTruncated: false,
            Upload: uploads.map((upload) => ({ Key: upload.key, UploadId: upload.uploadId, Initiated: upload.initiated.toISOString(), StorageClass: "STANDARD" })),
          },
        };
        return;
      }
      return next();
    }
    if (ctx.method === "DELETE" && uploadId !== undefined) {
      if (!(await store.abortUpload(bucket, uploadId))) throw new S3Error("NoSuchUpload", "The specified upload does not exist.", { UploadId: uploadId });
      ctx.status = 204;
      ctx.body = "";
      return;
    }
    const copySource = header(ctx, "x-amz-copy-source");
    if (ctx.method === "PUT" && uploadId !== undefined && copySource !== undefined) {
      const [sourceBucket = "", ...rest] = decodeURIComponent(copySource.replace(/^\//, "")).split("/");
      const rangeHeader = /^bytes=(\d+)-(\d+)$/.exec(header(ctx, "x-amz-copy-source-range") ?? "");
      const range = rangeHeader === null ? undefined : { start: Number(rangeHeader[1]), end: Number(rangeHeader[2]) };
      const md5 = await store.putPartCopy(bucket, uploadId, Number(ctx.query["partNumber"]), { bucket: sourceBucket, key: rest.join("/") }, range);
      ctx.body = { CopyPartResult: { LastModified: new Date().toISOString(), ETag: JSON.stringify(md5) } };
      return;
    }
    const writes = (ctx.method === "PUT" && uploadId === undefined && !("tagging" in ctx.query)) || (ctx.method === "POST" && uploadId !== undefined);
    if (writes) {
      await exclusive(`${bucket}/${key}`, async () => {
        await checkWrite(ctx, bucket, key);
        await next();
      });
      return;
    }
    const ifMatch = header(ctx, "if-match");
    if (conditionalWrites && (ctx.method === "GET" || ctx.method === "HEAD") && ifMatch !== undefined) {
      const existing = await current(bucket, key);
      if (existing !== undefined && !etagsMatch(ifMatch, existing["etag"] ?? "")) {
        throw new S3Error("PreconditionFailed", "At least one of the pre-conditions you specified did not hold", { Condition: "If-Match" });
      }
    }
    return next();
  };
}

// ---- the endpoint ----

export interface S3Request {
  readonly method: string;
  readonly path: string;
  readonly query: string;
}

export interface TestS3 {
  readonly endpoint: string;
  readonly bucket: string;
  readonly region: string;
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  /** Whether the server does conditional writes: s3rver as asked; an external one: unknown. */
  readonly conditionalWrites: boolean | undefined;
  /** The store config of a fresh prefix of its own (options override). */
  storeConfig(options?: Partial<S3StoreOptions>): S3StoreOptions & { readonly prefix: string };
  /** A client on the endpoint, for looking at the bucket directly. */
  readonly client: S3Client;
  /** Object names under `prefix`, as the bucket lists them. */
  names(prefix: string): Promise<string[]>;
  /** Keys of multipart uploads in progress under `prefix` (ListMultipartUploads). */
  openUploads(prefix: string): Promise<string[]>;
  /** The requests the server answered (s3rver only; empty for an external endpoint). */
  readonly requests: S3Request[];
  close(): Promise<void>;
}

export async function startTestS3(options: { conditionalWrites?: boolean } = {}): Promise<TestS3> {
  const env = process.env;
  const external = env["S3_TEST_ENDPOINT"];
  const run = `vault-test-${Date.now().toString(36)}-${randomBytes(4).toString("hex")}`;
  let server: S3rver | undefined;
  const requests: S3Request[] = [];
  let directory: string | undefined;
  let endpoint: string;
  let bucket: string;
  let accessKeyId: string;
  let secretAccessKey: string;
  const region = env["S3_TEST_REGION"] ?? "us-east-1";
  if (external !== undefined && external !== "") {
    endpoint = external;
    bucket = env["S3_TEST_BUCKET"] ?? "artifact-vault-test";
    accessKeyId = env["S3_TEST_ACCESS_KEY"] ?? "";
    secretAccessKey = env["S3_TEST_SECRET_KEY"] ?? "";
  } else {
    directory = await mkdtemp(path.join(tmpdir(), "s3rver-"));
    bucket = "vault-test";
    accessKeyId = "S3RVER";
    secretAccessKey = "S3RVER";
    server = new S3rver({ port: 0, address: "127.0.0.1", silent: true, directory, configureBuckets: [{ name: bucket }], vhostBuckets: false });
    const store = new AtomicStore(directory);
    server.store = store;
    server.context.store = store;
    server.middleware.splice(server.middleware.length - 1, 0, extraRoutes(store, options.conditionalWrites ?? false));
    server.middleware.unshift(async (ctx: KoaContext & { querystring: string }, next: Next) => {
      requests.push({ method: ctx.method, path: ctx.path, query: ctx.querystring });
      await next();
    });
    if (env["S3_TEST_DEBUG"] !== undefined) {
      (server as unknown as NodeJS.EventEmitter).on("error", (error: Error) => process.stderr.write(`s3rver: ${error.stack ?? error.message}\n`));
    }
    const address = await server.run();
    endpoint = `http://127.0.0.1:${address.port}`;
  }
  const credentials = accessKeyId === "" ? {} : { credentials: { accessKeyId, secretAccessKey } };
  const client = new S3Client({ endpoint, region, forcePathStyle: true, requestChecksumCalculation: "WHEN_REQUIRED", ...credentials });
  let stores = 0;
  const names = async (prefix: string): Promise<string[]> => {
    const found: string[] = [];
    let startAfter: string | undefined;
    for (;;) {
      const page = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ...(startAfter === undefined ? {} : { StartAfter: startAfter }) }));
      found.push(...(page.Contents ?? []).map((object) => object.Key ?? ""));
      startAfter = found.at(-1);
      if (page.IsTruncated !== true || startAfter === undefined) return found;
    }
  };
  const uploads = async (prefix: string): Promise<Array<{ Key?: string; UploadId?: string }>> =>
    (await client.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: prefix }))).Uploads ?? [];
  return {
    endpoint,
    bucket,
    region,
    accessKeyId,
    secretAccessKey,
    conditionalWrites: server === undefined ? undefined : (options.conditionalWrites ?? false),
    client,
    storeConfig: (overrides = {}) => ({
      bucket_name: bucket,
      endpoint_url: endpoint,
      region,
      ...(accessKeyId === "" ? {} : { s3_access_key: accessKeyId, s3_secret_key: secretAccessKey }),
      force_path_style: true,
      prefix: `${run}/${++stores}/`,
      ...overrides,
    }),
    names,
    openUploads: async (prefix) => (await uploads(prefix)).map((upload) => upload.Key ?? ""),
    requests,
    close: async () => {
      try {
        if (server === undefined) {
          // An external endpoint: remove what this run left.
          for (const upload of await uploads(`${run}/`)) {
            await client.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: upload.Key, UploadId: upload.UploadId })).catch(() => undefined);
          }
          const left = await names(`${run}/`);
          for (let i = 0; i < left.length; i += 1000) {
            await client.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: left.slice(i, i + 1000).map((Key) => ({ Key })) } }));
          }
        }
      } finally {
        client.destroy();
        await server?.close();
        if (directory !== undefined) await rm(directory, { recursive: true, force: true });
      }
    },
  };
}
