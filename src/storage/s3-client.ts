import { randomBytes } from "node:crypto";
import { CopyObjectCommand, DeleteObjectCommand, PutObjectCommand, S3Client, type S3ClientConfig } from "@aws-sdk/client-s3";
import { VaultError } from "../core/errors.js";
import { isConditionalConflict, isMissingObject, isPreconditionFailed, s3Status } from "./s3-errors.js";
import type { S3StoreOptions } from "./store-config.js";

/** Sockets to the S3 endpoint: every hit holds one while it streams. */
const MAX_SOCKETS = 512;
/**
 * A connection idle this long is given up: a hung endpoint fails the request rather than holding
 * it forever. Generous, since a hit's GET also idles while its client is slow to read.
 */
const SOCKET_IDLE_MS = 5 * 60_000;

/**
 * The SDK client for an `s3` store: the configured endpoint (path-style addressing by default
 * when one is given, as MinIO, Ceph and most S3-compatible servers want), static keys when both
 * are configured, else the standard AWS chain (environment, shared config and credentials files,
 * SSO, container and instance roles). Checksums only where S3 requires them: the SDK's default
 * CRC headers and aws-chunked bodies are not understood by every S3-compatible server.
 */
export async function createS3Client(options: S3StoreOptions): Promise<S3Client> {
  const { s3_access_key: accessKeyId, s3_secret_key: secretAccessKey } = options;
  if ((accessKeyId === undefined) !== (secretAccessKey === undefined)) {
    throw new VaultError("bad_request", "the s3 store needs both s3_access_key and s3_secret_key, or neither (then the AWS credential chain is used)");
  }
  const config: S3ClientConfig = {
    forcePathStyle: options.force_path_style ?? options.endpoint_url !== undefined,
    requestChecksumCalculation: "WHEN_REQUIRED",
    responseChecksumValidation: "WHEN_REQUIRED",
    requestHandler: {
      connectionTimeout: 10_000,
      socketTimeout: SOCKET_IDLE_MS,
      httpAgent: { keepAlive: true, maxSockets: MAX_SOCKETS },
      httpsAgent: { keepAlive: true, maxSockets: MAX_SOCKETS },
    },
    ...(options.endpoint_url === undefined ? {} : { endpoint: options.endpoint_url }),
    ...(accessKeyId === undefined || secretAccessKey === undefined ? {} : { credentials: { accessKeyId, secretAccessKey } }),
  };
  return new S3Client({ ...config, region: options.region ?? (await defaultRegion(config)) });
}

/** The region of the AWS chain (`AWS_REGION`, the profile's), else us-east-1 (custom endpoints ignore it). */
async function defaultRegion(config: S3ClientConfig): Promise<string> {
  const probe = new S3Client(config);
  try {
    return await probe.config.region();
  } catch {
    return "us-east-1";
  } finally {
    probe.destroy();
  }
}

export type ConditionalWrites = "native" | "emulated";

/**
 * Whether the server honours `If-None-Match: *` and `If-Match` on PutObject and CopyObject
 * (AWS S3 since 2024/2025, MinIO, Ceph, R2 ...; not s3rver): writes a probe object, asks for
 * writes that must fail with 412, and removes it. A server that ignores the headers (the write
 * succeeds) or refuses them (400/501) gets `emulated`. Other failures (access, network) throw.
 */
export async function detectConditionalWrites(client: S3Client, bucket: string, probeKey: string): Promise<ConditionalWrites> {
  const key = `${probeKey}${randomBytes(8).toString("hex")}`;
  await client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: "probe" }));
  try {
    const refusals = [
      () => client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: "probe", IfNoneMatch: "*" })),
      () => client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: "probe", IfMatch: `"${"0".repeat(32)}"` })),
      () =>
        client.send(
          new CopyObjectCommand({ Bucket: bucket, Key: key, CopySource: `${encodeURIComponent(bucket)}/${key.split("/").map(encodeURIComponent).join("/")}`, MetadataDirective: "REPLACE", IfNoneMatch: "*" }),
        ),
    ];
    for (const attempt of refusals) {
      try {
        await attempt();
        return "emulated"; // the condition was ignored
      } catch (error) {
        if (isPreconditionFailed(error) || isConditionalConflict(error) || isMissingObject(error)) continue;
        const status = s3Status(error);
        if (status === 400 || status === 501 || status === 405) return "emulated";
        throw error;
      }
    }
    return "native";
  } finally {
    await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: key })).catch(() => undefined);
  }
}
