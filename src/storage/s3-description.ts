import { VaultError } from "../core/errors.js";

/**
 * What the S3 driver keeps of an object besides its bytes, in the object's user metadata, so one
 * HEAD (or the GET itself) describes it: `x-amz-meta-vault-sha256` (hex, readable with any S3
 * tool) and `x-amz-meta-vault` (base64url of a small JSON document: times, content type, the
 * caller's metadata map, and for a long key the bytes its name could not keep).
 *
 * S3 user metadata is US-ASCII and about 2 KB per object (names and values together), and some
 * servers accept fewer characters in values than HTTP allows: base64url uses letters, digits,
 * `-` and `_` only, and the whole is checked against `MAX_USER_METADATA_BYTES` before a write.
 * The content type is also sent as the object's `Content-Type`, so the bucket serves it right.
 */

export const SHA256_FIELD = "vault-sha256";
export const DESCRIPTION_FIELD = "vault";
/** S3's limit is 2048 bytes of names and values; keep a margin for servers that count more. */
export const MAX_USER_METADATA_BYTES = 2000;

export interface StoredDescription {
  readonly sha256: string;
  readonly createdAt: Date;
  readonly modifiedAt: Date;
  readonly contentType: string | undefined;
  readonly metadata: Readonly<Record<string, string>>;
  /** For a long key: the key's bytes its object name does not keep. */
  readonly keyTail: Buffer | undefined;
}

interface Document {
  v: 1;
  c: string;
  m: string;
  t?: string;
  d?: Record<string, string>;
  k?: string;
}

/** The user metadata (`Metadata` of the SDK) of an object with this description. */
export function encodeDescription(description: StoredDescription): Record<string, string> {
  const document: Document = { v: 1, c: description.createdAt.toISOString(), m: description.modifiedAt.toISOString() };
  if (description.contentType !== undefined) document.t = description.contentType;
  if (Object.keys(description.metadata).length > 0) document.d = { ...description.metadata };
  if (description.keyTail !== undefined && description.keyTail.length > 0) document.k = description.keyTail.toString("base64url");
  const metadata = {
    [SHA256_FIELD]: description.sha256,
    [DESCRIPTION_FIELD]: Buffer.from(JSON.stringify(document), "utf8").toString("base64url"),
  };
  const bytes = Object.entries(metadata).reduce((sum, [name, value]) => sum + name.length + value.length, 0);
  if (bytes > MAX_USER_METADATA_BYTES) {
    throw new VaultError(
      "bad_request",
      `the content type, metadata${description.keyTail === undefined ? "" : " and the long key"} take ${bytes} bytes of S3 user metadata; an s3 store keeps at most ${MAX_USER_METADATA_BYTES}`,
    );
  }
  return metadata;
}

/** The description kept in an object's user metadata; undefined when it has none (a foreign object). */
export function decodeDescription(metadata: Readonly<Record<string, string>> | undefined): StoredDescription | undefined {
  const sha256 = metadata?.[SHA256_FIELD];
  const encoded = metadata?.[DESCRIPTION_FIELD];
  if (sha256 === undefined || encoded === undefined || !/^[0-9a-f]{64}$/.test(sha256)) return undefined;
  let document: Partial<Document>;
  try {
    document = JSON.parse(Buffer.from(encoded, "base64url").toString("utf8")) as Partial<Document>;
  } catch {
    return undefined;
  }
  if (typeof document !== "object" || document === null || document.v !== 1) return undefined;
  const createdAt = new Date(document.c ?? "");
  const modifiedAt = new Date(document.m ?? "");
  if (Number.isNaN(createdAt.getTime()) || Number.isNaN(modifiedAt.getTime())) return undefined;
  if (document.t !== undefined && typeof document.t !== "string") return undefined;
  const map: Record<string, string> = {};
  if (document.d !== undefined) {
    if (typeof document.d !== "object" || document.d === null) return undefined;
    for (const [name, value] of Object.entries(document.d)) {
      if (typeof value !== "string") return undefined;
      map[name] = value;
    }
  }
  if (document.k !== undefined && typeof document.k !== "string") return undefined;
  return {
    sha256,
    createdAt,
    modifiedAt,
    contentType: document.t,
    metadata: Object.freeze(map),
    keyTail: document.k === undefined ? undefined : Buffer.from(document.k, "base64url"),
  };
}
