import { Readable } from "node:stream";
import type { Validators } from "../../core/cache/artifact-source.js";
import type { Freshness } from "../../core/cache/artifact-ref.js";
import { VaultError } from "../../core/errors.js";
import type { UpstreamResponse } from "../upstream-client.js";
import { normaliseUpstreamPath } from "../upstream-path.js";
import { asVaultError } from "./confined-backend.js";
import type { PluginArtifactRef, PluginBackend, ResolvedPluginRef, SourceChunk, SourceStyleBackend } from "./plugin-api.js";

/** A native plugin backend whose responses are already `UpstreamResponse`s. */
export interface AdaptedSourceBackend extends PluginBackend {
  fetch(ref: ResolvedPluginRef, validators: Validators | undefined, signal: AbortSignal): Promise<UpstreamResponse>;
}

/**
 * Adapts a backend written the source design's way — `canHandle(path)` and a `fetch(path)`
 * generator of `{content, bytesDownloaded, totalLength?, contentType?}` or `{error}` chunks — to
 * the native plugin shape (which `confineBackend` then wraps like any other plugin).
 *
 * The rules (also in docs/plugins.md):
 * - `resolve`: the path below the prefix is checked with `normaliseUpstreamPath` (400 for `..`
 *   and the like); an empty path or one ending in `/` is 404; `canHandle(decodedPath)` false is
 *   404 (async `canHandle` is asked in `fetch` instead, and false is a 404 response there). The
 *   cache key is the normalised path. Artifacts are immutable unless `isMutable(decodedPath)`
 *   says otherwise; mutable ones are downloaded again after `ttlMs` (no conditional requests).
 * - `fetch`: the generator runs until its first chunk, which decides the response:
 *   - `{error}` → 404 if it is "not found" (`isNotFoundError`), else an upstream failure (502);
 *     nothing is cached either way (a 404 is remembered for `cache.negative_ttl`, as usual);
 *   - content → 200 with `content-type` = its `contentType` and `content-length` = its
 *     `totalLength` (the expected size), and the generator is streamed on demand as the body;
 *   - no chunk at all → upstream failure (an empty artifact is one chunk with empty content).
 * - After the first chunk, an `{error}`, a chunk that is neither content nor error, a
 *   `totalLength` other than the one announced before, more bytes than announced, or fewer at
 *   the end break the body: the download is aborted and nothing is cached. A thrown exception is
 *   an `{error}` (an upstream failure).
 */
export function adaptSourceBackend(source: SourceStyleBackend, options: { name: string; ttlMs: number }): AdaptedSourceBackend {
  const { name } = options;
  const mutable: Freshness = { kind: "mutable", ttlMs: options.ttlMs };
  const immutable: Freshness = { kind: "immutable" };
  return {
    resolve(request): PluginArtifactRef {
      const upstreamPath = normaliseUpstreamPath(request.path);
      if (upstreamPath === "" || upstreamPath.endsWith("/")) throw new VaultError("not_found", "directory listings are not proxied; ask for a file");
      const path = decodeURIComponent(upstreamPath);
      const handled = source.canHandle(path);
      let deferred = false;
      if (isThenable(handled)) {
        // Asked again in fetch, where waiting is allowed; this answer is dropped.
        void Promise.resolve(handled).catch(() => undefined);
        deferred = true;
      } else if (handled !== true) {
        throw new VaultError("not_found", `backend "${name}" does not handle ${upstreamPath}`);
      }
      return {
        cacheKey: upstreamPath,
        upstreamPath,
        freshness: source.isMutable?.(path) === true ? mutable : immutable,
        ...(deferred ? { deferredCanHandle: true } : {}),
      };
    },
    async fetch(ref, _validators, signal): Promise<UpstreamResponse> {
      const path = decodeURIComponent(ref.upstreamPath);
      if (ref["deferredCanHandle"] === true && (await source.canHandle(path)) !== true) return notFoundResponse(name);
      let iterator: AsyncIterator<SourceChunk> | Iterator<SourceChunk>;
      let first: IteratorResult<SourceChunk>;
      try {
        const chunks = await source.fetch(path, { signal });
        iterator = iteratorOf(chunks, name);
        first = await iterator.next();
      } catch (error) {
        throw asVaultError(error, "upstream_failed", `backend "${name}" failed`);
      }
      if (first.done === true) throw new VaultError("upstream_failed", `backend "${name}" yielded no content and no error for ${ref.upstreamPath}`);
      try {
        return firstResponse(name, first.value, iterator);
      } catch (error) {
        await stop(iterator);
        throw error;
      }
    },
    close: async () => {
      await source.close?.();
    },
  };
}

/** The response the first chunk decides (see `adaptSourceBackend`); the body streams the rest. */
function firstResponse(name: string, chunk: SourceChunk, iterator: AsyncIterator<SourceChunk> | Iterator<SourceChunk>): UpstreamResponse {
  if (isErrorChunk(chunk)) {
    if (!isNotFoundError(chunk)) throw new VaultError("upstream_failed", `backend "${name}": ${String(chunk.error)}`);
    void stop(iterator);
    return notFoundResponse(name);
  }
  const content = contentOf(chunk, name);
  if (content === undefined) throw new VaultError("upstream_failed", `backend "${name}" yielded a chunk with neither content nor error`);
  const announced = totalLengthOf(chunk, name);
  const headers: Record<string, string> = {};
  const contentType = (chunk as { contentType?: unknown }).contentType;
  if (typeof contentType === "string" && contentType !== "") headers["content-type"] = contentType;
  if (announced !== undefined) headers["content-length"] = String(announced);
  return {
    status: 200,
    headers,
    url: `plugin:${name}`,
    body: Readable.from(streamChunks(name, content, announced, iterator), { objectMode: false }),
  };
}

/** Ends the plugin's generator early (its `finally` blocks run); never throws. */
async function stop(iterator: AsyncIterator<SourceChunk> | Iterator<SourceChunk>): Promise<void> {
  try {
    await iterator.return?.();
  } catch {
    // The plugin failed while cleaning up; the download is over either way.
  }
}

/**
 * Whether an `{error}` chunk means "not found": an explicit `status` of 404 or 410, or, without a
 * status, a message saying so. Any other error is an upstream failure.
 */
export function isNotFoundError(chunk: { readonly error: unknown; readonly status?: unknown }): boolean {
  if (chunk.status !== undefined && chunk.status !== null) return chunk.status === 404 || chunk.status === 410;
  return NOT_FOUND_MESSAGE.test(String(chunk.error));
}

const NOT_FOUND_MESSAGE = /\bnot[\s_-]?found\b|\b404\b|\bno such file\b|\bdoes not exist\b/i;

/** The body after the first chunk: bytes as the generator yields them, checked against `totalLength`. */
async function* streamChunks(
  name: string,
  firstContent: Uint8Array,
  announcedAtFirst: number | undefined,
  iterator: AsyncIterator<SourceChunk> | Iterator<SourceChunk>,
): AsyncGenerator<Uint8Array> {
  let expected = announcedAtFirst;
  let received = firstContent.length;
  let finished = false;
  const fail = (why: string): never => {
    throw new VaultError("upstream_failed", `backend "${name}" ${why} after ${received} bytes`);
  };
  try {
    if (expected !== undefined && received > expected) fail(`sent more than the ${expected} bytes announced`);
    if (firstContent.length > 0) yield firstContent;
    for (;;) {
      let next: IteratorResult<SourceChunk>;
      try {
        next = await iterator.next();
      } catch (error) {
        finished = true;
        throw asVaultError(error, "upstream_failed", `backend "${name}" broke off after ${received} bytes`);
      }
      if (next.done === true) {
        finished = true;
        break;
      }
      const chunk = next.value;
      if (isErrorChunk(chunk)) fail(`broke off (${String(chunk.error)})`);
      const content = contentOf(chunk, name);
      if (content === undefined) fail("yielded a chunk with neither content nor error");
      const total = totalLengthOf(chunk, name);
      if (total !== undefined) {
        if (expected !== undefined && total !== expected) fail(`changed totalLength from ${expected} to ${total}`);
        expected = total;
      }
      received += content?.length ?? 0;
      if (expected !== undefined && received > expected) fail(`sent more than the ${expected} bytes announced`);
      if (content !== undefined && content.length > 0) yield content;
    }
    if (expected !== undefined && received !== expected) fail(`ended short of the ${expected} bytes announced`);
  } finally {
    // Stops the plugin's generator when the download is aborted or fails here.
    if (!finished) await stop(iterator);
  }
}

function iteratorOf(chunks: unknown, name: string): AsyncIterator<SourceChunk> | Iterator<SourceChunk> {
  if (typeof chunks === "object" && chunks !== null) {
    if (Symbol.asyncIterator in chunks) return (chunks as AsyncIterable<SourceChunk>)[Symbol.asyncIterator]();
    if (Symbol.iterator in chunks) return (chunks as Iterable<SourceChunk>)[Symbol.iterator]();
  }
  throw new VaultError("internal", `backend "${name}": fetch(path) must return a generator of chunks`);
}

function isErrorChunk(chunk: unknown): chunk is { readonly error: unknown; readonly status?: unknown } {
  return typeof chunk === "object" && chunk !== null && "error" in chunk && (chunk).error !== undefined && (chunk).error !== null;
}

function contentOf(chunk: unknown, name: string): Uint8Array | undefined {
  if (typeof chunk !== "object" || chunk === null || !("content" in chunk)) return undefined;
  const content = (chunk).content;
  if (content instanceof Uint8Array) return content;
  if (content instanceof ArrayBuffer) return new Uint8Array(content);
  if (typeof content === "string") return Buffer.from(content);
  throw new VaultError("upstream_failed", `backend "${name}" yielded content that is not bytes`);
}

function totalLengthOf(chunk: object, name: string): number | undefined {
  const total = (chunk as { totalLength?: unknown }).totalLength;
  if (total === undefined || total === null) return undefined;
  if (typeof total === "number" && Number.isSafeInteger(total) && total >= 0) return total;
  throw new VaultError("upstream_failed", `backend "${name}" announced an invalid totalLength (${JSON.stringify(total) ?? typeof total})`);
}

function notFoundResponse(name: string): UpstreamResponse {
  return { status: 404, headers: {}, url: `plugin:${name}`, body: Readable.from([], { objectMode: false }) };
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return typeof value === "object" && value !== null && typeof (value as { then?: unknown }).then === "function";
}
