import { VaultError } from "../core/errors.js";
import { validateKey } from "../core/storage-key.js";
import type { HeldObject, ObjectInfo, OpenedObject, StorageDriver } from "../storage/storage-driver.js";
import { decodeCursor, encodeCursor } from "./list-cursor.js";

export const DEFAULT_LIST_LIMIT = 100;
export const MAX_LIST_LIMIT = 1000;

export interface PutRequest {
  readonly key: string;
  readonly body: AsyncIterable<Uint8Array>;
  readonly contentType?: string | undefined;
  readonly declaredLength?: number | undefined;
  /** `*` = create-only; anything else = an ETag list that must not match the current one. */
  readonly ifNoneMatch?: string | undefined;
  /** `*` = must exist; anything else = the ETag the current object must have. */
  readonly ifMatch?: string | undefined;
  readonly expectedSha256?: string | undefined;
  readonly expectedMd5Base64?: string | undefined;
  readonly signal?: AbortSignal | undefined;
}

export interface ListRequest {
  readonly prefix: string;
  readonly limit: number;
  readonly cursor?: string | undefined;
}

export interface ListResponse {
  readonly keys: readonly string[];
  readonly next_cursor: string | null;
  readonly has_more: boolean;
}

/**
 * The object store's domain: the rules of SPEC §3 over any StorageDriver, with no HTTP in it.
 */
export class ObjectService {
  constructor(
    private readonly driver: StorageDriver,
    private readonly maxObjectSize: number,
  ) {}

  async put(request: PutRequest): Promise<ObjectInfo> {
    const key = validateKey(request.key);
    if (request.declaredLength !== undefined && request.declaredLength > this.maxObjectSize) {
      throw tooLarge(this.maxObjectSize);
    }
    let ifMatch: string | undefined;
    let ifNoneMatch: "*" | undefined;
    if (request.ifNoneMatch !== undefined) {
      if (request.ifNoneMatch.trim() === "*") {
        ifNoneMatch = "*";
      } else {
        const current = await this.driver.stat(key);
        if (current !== undefined && etagListIncludes(request.ifNoneMatch, current.etag)) {
          throw new VaultError("precondition_failed", "If-None-Match: the object's ETag matches");
        }
      }
    }
    if (request.ifMatch !== undefined) {
      const current = await this.driver.stat(key);
      if (current === undefined) throw new VaultError("precondition_failed", "If-Match: the object does not exist");
      if (request.ifMatch.trim() !== "*" && !etagListIncludes(request.ifMatch, current.etag)) {
        throw new VaultError("precondition_failed", "If-Match: the object's ETag does not match");
      }
      // Compare-and-swap against the version we just checked, so a concurrent writer loses.
      ifMatch = current.etag;
    }
    try {
      return await this.driver.write(key, request.body, {
        ifNoneMatch,
        ifMatch,
        contentType: request.contentType,
        expectedSize: request.declaredLength,
        expectedSha256: request.expectedSha256,
        expectedMd5Base64: request.expectedMd5Base64,
        maxSize: this.maxObjectSize,
        signal: request.signal,
      });
    } catch (error) {
      if (error instanceof VaultError && error.kind === "payload_too_large") throw tooLarge(this.maxObjectSize);
      throw error;
    }
  }

  /** Opens the current version for reading (see `OpenedObject`); not_found if absent. */
  async open(rawKey: string): Promise<OpenedObject> {
    const opened = await this.driver.open(validateKey(rawKey));
    if (opened === undefined) throw notFound(rawKey);
    return opened;
  }

  /**
   * The current version, synchronously, when the store holds it whole in memory
   * (`StorageDriver.readHeld`); undefined when it does not or the key is not valid — `open`
   * then answers, with the error if there is one.
   */
  readHeld(rawKey: string): HeldObject | undefined {
    if (this.driver.readHeld === undefined) return undefined;
    let key: string;
    try {
      key = validateKey(rawKey);
    } catch {
      return undefined;
    }
    return this.driver.readHeld(key);
  }

  async delete(rawKey: string): Promise<void> {
    const deleted = await this.driver.delete(validateKey(rawKey));
    if (!deleted) throw notFound(rawKey);
  }

  async list(request: ListRequest): Promise<ListResponse> {
    const startAfter = request.cursor === undefined ? undefined : decodeCursor(request.cursor);
    const page = await this.driver.list({
      prefix: request.prefix,
      limit: request.limit,
      ...(startAfter === undefined ? {} : { startAfter }),
    });
    const last = page.keys.at(-1);
    const hasMore = page.isTruncated && last !== undefined;
    return { keys: page.keys, next_cursor: hasMore ? encodeCursor(last) : null, has_more: hasMore };
  }
}

/** Parses the `limit` query parameter: an integer 1..1000, default 100. */
export function parseListLimit(raw: string | undefined): number {
  if (raw === undefined || raw === "") return DEFAULT_LIST_LIMIT;
  if (!/^\d+$/.test(raw)) throw new VaultError("bad_request", `limit must be an integer from 1 to ${MAX_LIST_LIMIT}`);
  const limit = Number(raw);
  if (limit < 1 || limit > MAX_LIST_LIMIT) {
    throw new VaultError("bad_request", `limit must be an integer from 1 to ${MAX_LIST_LIMIT}, got ${raw}`);
  }
  return limit;
}

function etagListIncludes(header: string, etag: string): boolean {
  return header.split(",").some((candidate) => candidate.trim().replace(/^W\//, "") === etag);
}

function notFound(key: string): VaultError {
  return new VaultError("not_found", `object not found: ${key}`);
}

function tooLarge(max: number): VaultError {
  return new VaultError("payload_too_large", `object exceeds the maximum object size of ${max} bytes`);
}
