import { once } from "node:events";
import { PassThrough, type Readable } from "node:stream";
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  UploadPartCopyCommand,
  type CompletedPart,
  type S3Client,
} from "@aws-sdk/client-s3";
import { Upload } from "@aws-sdk/lib-storage";
import { isMissingUpload } from "./s3-errors.js";

/**
 * Multipart transfers of the S3 driver, each with one rule: a multipart upload that does not
 * complete is aborted before the call settles — whatever failed (the source, a part, the
 * completion, a precondition) — so no parts are left behind in the bucket. (A crash of the
 * process is the exception; the driver's start-up sweep and a bucket lifecycle rule clean those.)
 *
 * lib-storage's `Upload` does the streaming (parts of `partSize`, two in flight). Its own abort
 * runs only once all its part uploaders have stopped, and `Upload.abort()` settles before that;
 * so it is never called here: a failed write fails `Upload`'s source instead, waits for `done()`
 * to settle (after its abort), and then aborts the upload id once more in case that failed.
 */

/** The object written, with its S3 ETag (for conditions on it). */
export interface UploadedObject {
  readonly s3Etag: string | undefined;
}

export interface UploadTarget {
  readonly client: S3Client;
  readonly bucket: string;
  readonly key: string;
  readonly partSize: number;
  readonly onWarning: (message: string) => void;
}

/** Abort a multipart upload; a missing one (already aborted) is fine. */
export async function abortUpload(target: Pick<UploadTarget, "client" | "bucket" | "key" | "onWarning">, uploadId: string): Promise<void> {
  try {
    await target.client.send(new AbortMultipartUploadCommand({ Bucket: target.bucket, Key: target.key, UploadId: uploadId }));
  } catch (error) {
    if (isMissingUpload(error)) return;
    target.onWarning(`could not abort the multipart upload ${uploadId} of ${target.key}: ${(error as Error).message}; a lifecycle rule (AbortIncompleteMultipartUpload) or the next start's sweep removes it`);
  }
}

/**
 * Streams chunks pushed with `write` into `target.key`, multipart from the first full part on.
 * `finish` completes it; `fail` abandons it (aborting the upload) and never rejects.
 */
export class StreamingUpload {
  readonly #source = new PassThrough({ highWaterMark: 1024 * 1024 });
  readonly #upload: Upload;
  readonly #done: Promise<UploadedObject>;
  /** Rejects when the upload fails, so a writer waiting for `drain` is not left waiting. */
  readonly #failed: Promise<never>;

  constructor(
    private readonly target: UploadTarget,
    params: { readonly ContentType?: string; readonly Metadata?: Record<string, string> } = {},
  ) {
    this.#upload = new Upload({
      client: target.client,
      params: { Bucket: target.bucket, Key: target.key, Body: this.#source, ...params },
      partSize: target.partSize,
      queueSize: 2,
      leavePartsOnError: false,
    });
    this.#done = this.#upload.done().then((result) => ({ s3Etag: result.ETag }));
    this.#failed = this.#done.then(() => new Promise<never>(() => undefined));
    // Observed here; callers see the failure through write/finish.
    this.#done.catch(() => undefined);
    this.#failed.catch(() => undefined);
  }

  async write(chunk: Buffer): Promise<void> {
    if (this.#source.write(chunk)) return;
    await Promise.race([once(this.#source, "drain"), this.#failed]);
  }

  async finish(): Promise<UploadedObject> {
    this.#source.end();
    try {
      return await this.#done;
    } catch (error) {
      await this.#abortLeftover();
      throw error;
    }
  }

  async fail(reason: unknown): Promise<void> {
    this.#source.destroy(reason instanceof Error ? reason : new Error(String(reason)));
    await this.#done.catch(() => undefined);
    await this.#abortLeftover();
  }

  async #abortLeftover(): Promise<void> {
    const uploadId = this.#upload.uploadId;
    if (uploadId !== undefined) await abortUpload(this.target, uploadId);
  }
}

/** Uploads a readable of known length (a local file) to `target.key`, multipart when large. */
export async function uploadStream(
  target: UploadTarget,
  body: Readable,
  params: { readonly ContentType: string; readonly Metadata: Record<string, string>; readonly ContentLength: number },
): Promise<UploadedObject> {
  const upload = new Upload({
    client: target.client,
    params: { Bucket: target.bucket, Key: target.key, Body: body, ...params },
    partSize: target.partSize,
    queueSize: 4,
    leavePartsOnError: false,
  });
  try {
    const result = await upload.done();
    return { s3Etag: result.ETag };
  } catch (error) {
    body.destroy();
    if (upload.uploadId !== undefined) await abortUpload(target, upload.uploadId);
    throw error;
  }
}

export interface CopyRequest {
  readonly client: S3Client;
  readonly bucket: string;
  readonly source: string;
  readonly target: string;
  readonly size: number;
  readonly contentType: string;
  readonly metadata: Record<string, string>;
  /** `IfNoneMatch` / `IfMatch` on the target. */
  readonly conditions: { readonly IfNoneMatch?: string; readonly IfMatch?: string };
  /** CopyObject's limit (5 GiB on S3); larger objects are copied part by part. */
  readonly maxCopyObjectSize: number;
  /** Size of a copied part for larger ones. */
  readonly copyPartSize: number;
  readonly onWarning: (message: string) => void;
}

/**
 * Server-side copy of `source` to `target` with a new description (metadata replaced), under the
 * target's conditions: one CopyObject, or for objects over `maxCopyObjectSize` a multipart
 * upload of UploadPartCopy parts whose completion carries the conditions.
 */
export async function copyObject(request: CopyRequest): Promise<UploadedObject> {
  const { client, bucket } = request;
  const copySource = `${encodeURIComponent(bucket)}/${request.source.split("/").map(encodeURIComponent).join("/")}`;
  if (request.size <= request.maxCopyObjectSize) {
    const result = await client.send(
      new CopyObjectCommand({
        Bucket: bucket,
        Key: request.target,
        CopySource: copySource,
        MetadataDirective: "REPLACE",
        ContentType: request.contentType,
        Metadata: request.metadata,
        ...request.conditions,
      }),
    );
    return { s3Etag: result.CopyObjectResult?.ETag };
  }
  const created = await client.send(
    new CreateMultipartUploadCommand({ Bucket: bucket, Key: request.target, ContentType: request.contentType, Metadata: request.metadata }),
  );
  const uploadId = created.UploadId;
  if (uploadId === undefined) throw new Error("CreateMultipartUpload answered no UploadId");
  try {
    const partSize = Math.max(request.copyPartSize, Math.ceil(request.size / 10_000));
    const parts: CompletedPart[] = [];
    for (let start = 0, number = 1; start < request.size; start += partSize, number++) {
      const end = Math.min(start + partSize, request.size) - 1;
      const part = await client.send(
        new UploadPartCopyCommand({ Bucket: bucket, Key: request.target, UploadId: uploadId, PartNumber: number, CopySource: copySource, CopySourceRange: `bytes=${start}-${end}` }),
      );
      parts.push({ PartNumber: number, ETag: part.CopyPartResult?.ETag });
    }
    const result = await client.send(
      new CompleteMultipartUploadCommand({ Bucket: bucket, Key: request.target, UploadId: uploadId, MultipartUpload: { Parts: parts }, ...request.conditions }),
    );
    return { s3Etag: result.ETag };
  } catch (error) {
    await abortUpload({ client, bucket, key: request.target, onWarning: request.onWarning }, uploadId);
    throw error;
  }
}
