import { Readable } from "node:stream";
import type { Logger } from "pino";
import type { ArtifactRef, ExpectedDigest, Freshness } from "../../core/cache/artifact-ref.js";
import { VaultError, isVaultError, type ErrorKind } from "../../core/errors.js";
import { validateKey } from "../../core/storage-key.js";
import type { UpstreamResponse } from "../upstream-client.js";
import type { Backend, ProxyRequest } from "../backend.js";
import { DIGEST_ALGORITHMS, type PluginBackend, type PluginBody, type PluginResponse, type ResolvedPluginRef } from "./plugin-api.js";

/**
 * Wraps a plugin's `resolve`/`fetch` into a `Backend` the cache can trust, like a decorator
 * around a store: the plugin never sees or picks a storage key outside its namespace, and
 * nothing it returns or throws reaches the cache unchecked.
 *
 * - Every ref is validated and its `cacheKey` becomes `<name>/<cacheKey>` (see `confineRef`); a
 *   plugin cannot read or overwrite another backend's entries, whatever key it returns.
 * - `fetch` gets the ref as the plugin returned it (relative key, extra properties), and its
 *   answer is normalised into an `UpstreamResponse` (`toUpstreamResponse`).
 * - Errors: a `VaultError` (also one from another copy of the package) keeps its kind. Anything
 *   else thrown by `resolve` is a plugin bug (`internal`, 500); by `fetch`, an upstream failure
 *   (`upstream_failed`, 502), logged with the cause.
 */
export function confineBackend(plugin: PluginBackend, options: { name: string; prefix: string; logger: Logger }): Backend {
  const { name, prefix, logger } = options;
  const namespace = `${name}/`;
  return {
    type: "custom",
    name,
    prefix,
    resolve(request: ProxyRequest): ArtifactRef {
      let raw: unknown;
      try {
        raw = plugin.resolve(request);
      } catch (error) {
        throw asVaultError(error, "internal", `backend "${name}" failed to resolve the request`);
      }
      return confineRef(name, raw);
    },
    async fetch(ref, validators, signal): Promise<UpstreamResponse> {
      const own: ResolvedPluginRef = { ...ref, cacheKey: ref.cacheKey.startsWith(namespace) ? ref.cacheKey.slice(namespace.length) : ref.cacheKey };
      let raw: unknown;
      try {
        raw = await plugin.fetch(own, validators, signal);
      } catch (error) {
        const mapped = asVaultError(error, "upstream_failed", `backend "${name}" failed`);
        if (!isVaultError(error)) logger.warn({ err: error, key: ref.cacheKey }, "plugin fetch failed");
        throw mapped;
      }
      // A plugin's fetch takes no resume request: a download of its that breaks off is not resumed.
      return { ...toUpstreamResponse(raw, name), resumable: false };
    },
    async close(): Promise<void> {
      try {
        await plugin.close?.();
      } catch (error) {
        logger.warn({ err: error }, "plugin close failed");
      }
    },
  };
}

/**
 * Checks what a plugin's `resolve` returned and confines it to the backend's namespace: the
 * stored key is always `<name>/<cacheKey>`. Shape errors are plugin bugs (`internal`); a key
 * that cannot be a key in a namespace (`..`, a leading `/`, too long) is refused (`bad_request`),
 * since it usually comes from the client's path.
 */
export function confineRef(name: string, raw: unknown): ArtifactRef {
  if (typeof raw !== "object" || raw === null) throw invalidRef(name, `expected an object, got ${describe(raw)}`);
  const ref = raw as Record<string, unknown>;
  if (typeof ref["then"] === "function") throw invalidRef(name, "resolve must return the ref synchronously (do I/O in fetch), got a promise");
  const relativeKey = ref["cacheKey"];
  if (typeof relativeKey !== "string") throw invalidRef(name, `cacheKey must be a string, got ${describe(relativeKey)}`);
  checkRelativeKey(name, relativeKey);
  let cacheKey: string;
  try {
    cacheKey = validateKey(`${name}/${relativeKey}`);
  } catch (error) {
    throw new VaultError("bad_request", `backend "${name}" cannot cache this path: ${(error as Error).message}`, { cause: error });
  }
  const upstreamPath = ref["upstreamPath"] ?? relativeKey;
  if (typeof upstreamPath !== "string") throw invalidRef(name, `upstreamPath must be a string, got ${describe(upstreamPath)}`);
  const size = ref["size"];
  if (size !== undefined && !(typeof size === "number" && Number.isSafeInteger(size) && size >= 0)) {
    throw invalidRef(name, `size must be a whole number of bytes, got ${describe(size)}`);
  }
  const upstreamHeaders = ref["upstreamHeaders"];
  if (upstreamHeaders !== undefined && !isStringRecord(upstreamHeaders)) throw invalidRef(name, "upstreamHeaders must map names to strings");
  return {
    ...ref,
    backend: name,
    cacheKey,
    upstreamPath,
    freshness: checkFreshness(name, ref["freshness"]),
    digest: checkDigest(name, ref["digest"]),
    size,
    upstreamHeaders,
  };
}

function checkRelativeKey(name: string, key: string): void {
  const refuse = (why: string): never => {
    throw new VaultError("bad_request", `backend "${name}" returned an invalid cache key: ${why}`);
  };
  if (key === "") refuse("it is empty");
  if (key.startsWith("/")) refuse("it must be relative to the backend's namespace (no leading '/')");
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(key)) refuse("control character");
  const segments = key.split("/");
  segments.forEach((segment, index) => {
    if (segment === "" && index < segments.length - 1) refuse("empty segment ('//')");
    if (segment === "." || segment === "..") refuse("'.' or '..' segment");
  });
}

function checkFreshness(name: string, value: unknown): Freshness {
  if (typeof value === "object" && value !== null) {
    const freshness = value as { kind?: unknown; ttlMs?: unknown };
    if (freshness.kind === "immutable") return { kind: "immutable" };
    if (freshness.kind === "mutable" && typeof freshness.ttlMs === "number" && Number.isFinite(freshness.ttlMs) && freshness.ttlMs >= 0) {
      return { kind: "mutable", ttlMs: freshness.ttlMs };
    }
  }
  throw invalidRef(name, `freshness must be {kind: "immutable"} or {kind: "mutable", ttlMs: <number ≥ 0>}, got ${describe(value)}`);
}

const HEX_LENGTH: Readonly<Record<string, number>> = { sha256: 64, sha512: 128, sha1: 40 };

function checkDigest(name: string, value: unknown): ExpectedDigest | undefined {
  if (value === undefined) return undefined;
  const digest: { algorithm?: unknown; hex?: unknown } = typeof value === "object" && value !== null ? value : {};
  const algorithm = digest.algorithm;
  const hex = typeof digest.hex === "string" ? digest.hex.toLowerCase() : undefined;
  if (typeof algorithm !== "string" || !(DIGEST_ALGORITHMS as readonly string[]).includes(algorithm)) {
    throw invalidRef(name, `digest.algorithm must be one of ${DIGEST_ALGORITHMS.join(", ")}, got ${describe(algorithm)}`);
  }
  if (hex === undefined || !/^[0-9a-f]+$/.test(hex) || hex.length !== HEX_LENGTH[algorithm]) {
    throw invalidRef(name, `digest.hex must be ${HEX_LENGTH[algorithm]} hex digits for ${algorithm}`);
  }
  return { algorithm: algorithm as ExpectedDigest["algorithm"], hex };
}

/**
 * Turns what a plugin's `fetch` resolved with into an `UpstreamResponse`: lowercase string
 * headers, and a Node `Readable` of bytes whatever body it gave (stream, web stream, iterable,
 * bytes, string, nothing). A value of the wrong shape is a plugin bug (`internal`).
 */
export function toUpstreamResponse(raw: unknown, name: string): UpstreamResponse {
  if (typeof raw !== "object" || raw === null) throw invalidResponse(name, `expected {status, headers, body}, got ${describe(raw)}`);
  const response = raw as PluginResponse;
  const { status } = response;
  if (typeof status !== "number" || !Number.isInteger(status) || status < 100 || status > 599) {
    throw invalidResponse(name, `status must be an HTTP status code, got ${describe(status)}`);
  }
  return {
    status,
    headers: normaliseHeaders(response.headers, name),
    url: typeof response.url === "string" ? response.url : `plugin:${name}`,
    body: toReadable(response.body, name),
  };
}

function normaliseHeaders(headers: PluginResponse["headers"], name: string): Record<string, string> {
  const out: Record<string, string> = {};
  if (headers === undefined || headers === null) return out;
  if (typeof headers !== "object") throw invalidResponse(name, `headers must be an object, got ${describe(headers)}`);
  const entries: Iterable<[string, unknown]> = headers instanceof Headers ? headers.entries() : Object.entries(headers);
  for (const [key, value] of entries) {
    if (value === undefined || value === null) continue;
    const text = Array.isArray(value) ? value.map(String).join(", ") : typeof value === "string" || typeof value === "number" ? String(value) : undefined;
    if (text === undefined) throw invalidResponse(name, `header ${key} must be a string, got ${describe(value)}`);
    const lower = key.toLowerCase();
    out[lower] = out[lower] === undefined ? text : `${out[lower]}, ${text}`;
  }
  return out;
}

function toReadable(body: PluginBody, name: string): Readable {
  if (body === undefined || body === null) return Readable.from([], { objectMode: false });
  if (body instanceof Readable) return body;
  if (typeof body === "string" || body instanceof Uint8Array) return Readable.from([Buffer.from(body)], { objectMode: false });
  if (typeof (body as ReadableStream<Uint8Array>).getReader === "function") {
    return Readable.fromWeb(body as import("node:stream/web").ReadableStream<Uint8Array>, { objectMode: false });
  }
  if (typeof body === "object" && (Symbol.asyncIterator in body || Symbol.iterator in body)) {
    return Readable.from(bytesOf(body as AsyncIterable<unknown>, name), { objectMode: false });
  }
  throw invalidResponse(name, `body must be a stream, bytes, a string or an iterable of bytes, got ${describe(body)}`);
}

async function* bytesOf(chunks: AsyncIterable<unknown> | Iterable<unknown>, name: string): AsyncGenerator<Uint8Array> {
  for await (const chunk of chunks) {
    if (chunk instanceof Uint8Array) yield chunk;
    else if (typeof chunk === "string") yield Buffer.from(chunk);
    else throw new VaultError("upstream_failed", `backend "${name}" sent a body chunk that is not bytes (${describe(chunk)})`);
  }
}

const ERROR_KINDS: ReadonlySet<string> = new Set<ErrorKind>([
  "bad_request",
  "unauthenticated",
  "forbidden",
  "not_found",
  "method_not_allowed",
  "conflict",
  "precondition_failed",
  "payload_too_large",
  "checksum_mismatch",
  "range_not_satisfiable",
  "rate_limited",
  "not_supported",
  "upstream_failed",
  "upstream_timeout",
  "unavailable",
  "internal",
]);

/**
 * A plugin's exception as a VaultError: ours as it is; one from another copy of the package
 * (same name and a known kind) with its kind and message; anything else as `fallback`.
 */
export function asVaultError(error: unknown, fallback: ErrorKind, context: string): VaultError {
  if (isVaultError(error)) return error;
  const foreign = error as { name?: unknown; kind?: unknown; message?: unknown; retryAfterSeconds?: unknown } | null;
  if (foreign !== null && typeof foreign === "object" && foreign.name === "VaultError" && typeof foreign.kind === "string" && ERROR_KINDS.has(foreign.kind)) {
    return new VaultError(foreign.kind as ErrorKind, String(foreign.message), {
      cause: error,
      ...(typeof foreign.retryAfterSeconds === "number" ? { retryAfterSeconds: foreign.retryAfterSeconds } : {}),
    });
  }
  return new VaultError(fallback, `${context}: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
}

function invalidRef(name: string, why: string): VaultError {
  return new VaultError("internal", `backend "${name}" returned an invalid artifact ref: ${why}`);
}

function invalidResponse(name: string, why: string): VaultError {
  return new VaultError("internal", `backend "${name}" returned an invalid response: ${why}`);
}

function isStringRecord(value: unknown): value is Record<string, string> {
  return typeof value === "object" && value !== null && !Array.isArray(value) && Object.values(value).every((item) => typeof item === "string");
}

function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  if (typeof value === "string") return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
  if (typeof value === "object") return "an object";
  if (typeof value === "number" || typeof value === "boolean") return String(value);
  return typeof value === "undefined" ? "undefined" : `a ${typeof value}`;
}
