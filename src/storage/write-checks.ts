import { createHash, type Hash } from "node:crypto";
import { VaultError, isVaultError } from "../core/errors.js";
import type { ObjectInfo, WriteOptions } from "./storage-driver.js";

/**
 * What every driver does with a write's options and body, in one place: option checks before any
 * byte is read, preconditions, and a single pass over the body that hashes it and enforces the
 * size and digest checks while it streams. Drivers only decide where the bytes go.
 *
 * Error kinds: bad options → `bad_request`; `maxSize` exceeded → `payload_too_large` (the source is
 * not read further); `expectedSize` differs → `bad_request`; a digest differs →
 * `checksum_mismatch`; the body stream fails → its own `VaultError` if it throws one, else
 * `bad_request` with the failure as `cause`; the signal aborts → `bad_request` ("aborted") with the
 * signal's reason as `cause`.
 */

/** Content-Type, metadata and the rest of the stored description must stay small. */
export const MAX_DESCRIPTION_BYTES = 64 * 1024;

export interface CheckedWriteOptions {
  readonly ifNoneMatch: "*" | undefined;
  readonly ifMatch: string | undefined;
  readonly contentType: string | undefined;
  readonly expectedSize: number | undefined;
  readonly expectedSha256: string | undefined;
  readonly expectedMd5: Buffer | undefined;
  readonly maxSize: number | undefined;
  readonly metadata: Readonly<Record<string, string>>;
  readonly signal: AbortSignal | undefined;
}

export interface BodySummary {
  readonly size: number;
  /** Lowercase hex. */
  readonly sha256: string;
}

/** Validates the options (all of them, before the body is touched) and normalises digests. */
export function checkWriteOptions(options: WriteOptions = {}): CheckedWriteOptions {
  const { ifNoneMatch, ifMatch, contentType, expectedSize, expectedSha256, expectedMd5Base64, maxSize } =
    options;
  if (ifNoneMatch !== undefined && ifNoneMatch !== "*") {
    throw new VaultError("bad_request", 'ifNoneMatch only supports "*"');
  }
  if (ifMatch !== undefined && typeof ifMatch !== "string") {
    throw new VaultError("bad_request", "ifMatch must be an ETag");
  }
  if (contentType !== undefined && typeof contentType !== "string") {
    throw new VaultError("bad_request", "contentType must be a string");
  }
  checkCount("expectedSize", expectedSize);
  checkCount("maxSize", maxSize);
  if (expectedSha256 !== undefined && !/^[0-9a-fA-F]{64}$/.test(expectedSha256)) {
    throw new VaultError("bad_request", "the expected SHA-256 must be 64 hex digits");
  }
  let expectedMd5: Buffer | undefined;
  if (expectedMd5Base64 !== undefined) {
    if (!/^[A-Za-z0-9+/]{22}==$/.test(expectedMd5Base64)) {
      throw new VaultError("bad_request", "the expected MD5 must be 16 bytes in base64");
    }
    expectedMd5 = Buffer.from(expectedMd5Base64, "base64");
  }
  const metadata: Record<string, string> = {};
  if (options.metadata !== undefined) {
    if (typeof options.metadata !== "object" || options.metadata === null) {
      throw new VaultError("bad_request", "metadata must be an object of strings");
    }
    for (const [name, value] of Object.entries(options.metadata)) {
      if (typeof value !== "string") {
        throw new VaultError("bad_request", `metadata "${name}" must be a string`);
      }
      metadata[name] = value;
    }
  }
  const descriptionBytes = Buffer.byteLength(JSON.stringify([contentType ?? "", metadata]), "utf8");
  if (descriptionBytes > MAX_DESCRIPTION_BYTES) {
    throw new VaultError(
      "bad_request",
      `content type and metadata take ${descriptionBytes} bytes; the limit is ${MAX_DESCRIPTION_BYTES}`,
    );
  }
  return {
    ifNoneMatch,
    ifMatch,
    contentType,
    expectedSize,
    expectedSha256: expectedSha256?.toLowerCase(),
    expectedMd5,
    maxSize,
    metadata: Object.freeze(metadata),
    signal: options.signal,
  };
}

function checkCount(name: string, value: number | undefined): void {
  if (value !== undefined && (!Number.isSafeInteger(value) || value < 0)) {
    throw new VaultError("bad_request", `${name} must be a non-negative integer`);
  }
}

/** `ifNoneMatch` / `ifMatch` against the current object (`undefined` when the key is free). */
export function checkPreconditions(
  key: string,
  current: Pick<ObjectInfo, "etag"> | undefined,
  options: CheckedWriteOptions,
): void {
  if (options.ifNoneMatch === "*" && current !== undefined) {
    throw new VaultError("precondition_failed", `"${key}" already exists`);
  }
  if (options.ifMatch !== undefined) {
    if (current === undefined) {
      throw new VaultError("precondition_failed", `"${key}" does not exist`);
    }
    if (options.ifMatch !== "*" && options.ifMatch !== current.etag) {
      throw new VaultError("precondition_failed", `the ETag of "${key}" is ${current.etag}, not ${options.ifMatch}`);
    }
  }
}

/** Whether the write needs the current object's ETag (not just whether it exists). */
export function needsCurrentEtag(options: CheckedWriteOptions): boolean {
  return options.ifMatch !== undefined && options.ifMatch !== "*";
}

/**
 * The description of a new version of `key`: `createdAt` carries over from the version it
 * replaces (if any), `modifiedAt` is now.
 */
export function newVersionInfo(
  key: string,
  content: { readonly size: number; readonly sha256: string },
  options: { readonly contentType?: string | undefined; readonly metadata?: Readonly<Record<string, string>> | undefined },
  current: ObjectInfo | undefined,
  now: Date,
): ObjectInfo {
  return Object.freeze({
    key,
    size: content.size,
    contentType: options.contentType,
    sha256: content.sha256,
    etag: etagOf(content.sha256),
    createdAt: current?.createdAt ?? now,
    modifiedAt: now,
    metadata: Object.freeze({ ...(options.metadata ?? {}) }),
  });
}

export function etagOf(sha256: string): string {
  return `"${sha256}"`;
}

/** Throws the error a write reports when its signal aborted. */
export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted === true) throw abortedError(signal);
}

function abortedError(signal: AbortSignal): VaultError {
  return new VaultError("bad_request", "the write was aborted", { cause: signal.reason });
}

/**
 * Reads `body` once, handing each chunk to `sink` (awaited before the next chunk is pulled, so
 * memory stays at one chunk), and returns its size and SHA-256 after every check passed.
 * `sink` errors propagate unchanged (they are the driver's own I/O errors).
 */
export async function consumeBody(
  body: AsyncIterable<Uint8Array>,
  options: CheckedWriteOptions,
  sink: (chunk: Uint8Array) => Promise<void> | void,
): Promise<BodySummary> {
  const { signal, maxSize, expectedSize } = options;
  throwIfAborted(signal);
  const sha256 = createHash("sha256");
  const md5: Hash | undefined = options.expectedMd5 === undefined ? undefined : createHash("md5");
  let size = 0;

  const iterator = iteratorOf(body);
  let finished = false;
  try {
    for (;;) {
      throwIfAborted(signal); // before pulling another chunk from the source
      let step: IteratorResult<Uint8Array>;
      try {
        step = await nextOrAbort(iterator, signal);
      } catch (error) {
        if (isVaultError(error)) throw error;
        finished = true; // the source threw: it is done
        throw new VaultError("bad_request", `the body stream failed: ${describe(error)}`, { cause: error });
      }
      if (step.done === true) {
        finished = true;
        break;
      }
      const chunk = asBytes(step.value);
      size += chunk.byteLength;
      if (maxSize !== undefined && size > maxSize) {
        throw new VaultError("payload_too_large", `the body is larger than ${maxSize} bytes`);
      }
      if (expectedSize !== undefined && size > expectedSize) {
        throw new VaultError("bad_request", `the body is longer than the expected ${expectedSize} bytes`);
      }
      sha256.update(chunk);
      md5?.update(chunk);
      await sink(chunk);
    }
  } catch (error) {
    if (!finished) stopSource(iterator);
    throw error;
  }

  throwIfAborted(signal);
  if (expectedSize !== undefined && size !== expectedSize) {
    throw new VaultError("bad_request", `the body is ${size} bytes long, not the expected ${expectedSize}`);
  }
  const sha256Hex = sha256.digest("hex");
  if (options.expectedSha256 !== undefined && options.expectedSha256 !== sha256Hex) {
    throw new VaultError("checksum_mismatch", `the body's SHA-256 is ${sha256Hex}, not ${options.expectedSha256}`);
  }
  if (md5 !== undefined && options.expectedMd5 !== undefined) {
    const actual = md5.digest();
    if (!actual.equals(options.expectedMd5)) {
      throw new VaultError(
        "checksum_mismatch",
        `the body's MD5 is ${actual.toString("base64")}, not ${options.expectedMd5.toString("base64")}`,
      );
    }
  }
  return { size, sha256: sha256Hex };
}

/**
 * The next chunk, or a rejection as soon as the signal aborts. Each wait gets its own listener,
 * removed when the step settles: racing every step against one long-lived abort promise would
 * chain a reaction per chunk onto it and keep every chunk of the body alive until the end.
 */
function nextOrAbort(iterator: AsyncIterator<Uint8Array>, signal: AbortSignal | undefined): Promise<IteratorResult<Uint8Array>> {
  if (signal === undefined) return iterator.next();
  return new Promise((resolve, reject) => {
    const onAbort = (): void => reject(abortedError(signal));
    signal.addEventListener("abort", onAbort, { once: true });
    iterator.next().then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}

/** The body's async iterator; plain iterables (an array of chunks) are accepted too. */
function iteratorOf(body: AsyncIterable<Uint8Array>): AsyncIterator<Uint8Array> {
  const source = body as Partial<AsyncIterable<Uint8Array> & Iterable<Uint8Array>> | null | undefined;
  const asyncIterator = source?.[Symbol.asyncIterator];
  if (typeof asyncIterator === "function") return asyncIterator.call(source);
  if (typeof source?.[Symbol.iterator] === "function") {
    const iterable = source as Iterable<Uint8Array>;
    return (async function* () {
      yield* iterable;
    })();
  }
  throw new VaultError("bad_request", "the body must be an iterable of byte chunks");
}

/** Tells the source we will not read on (a generator runs its `finally`, a stream is destroyed). */
function stopSource(iterator: AsyncIterator<Uint8Array>): void {
  try {
    // Not awaited: a source stuck in a pending read would hold the write's rejection hostage.
    void Promise.resolve(iterator.return?.()).catch(() => undefined);
  } catch {
    // A throwing return() changes nothing for us.
  }
}

function asBytes(value: unknown): Uint8Array {
  if (value instanceof Uint8Array) return value;
  if (typeof value === "string") return Buffer.from(value, "utf8");
  throw new VaultError("bad_request", "the body stream must yield bytes");
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
