/**
 * `artifact-vault/plugin`: everything a custom backend needs, from one stable module. Plugins
 * import from here (never from `dist/...` paths), so the vault's internals can move without
 * breaking them. The contract is written out in `docs/plugins.md`; the types below are its
 * reference.
 *
 * A plugin is an ES module named by a `custom` backend in the config:
 *
 *     backends:
 *       - type: custom
 *         name: releases
 *         config: {prefix: /releases/, module: ./plugins/github-releases.mjs, base_url: https://github.com}
 *
 * It exports (named `createBackend`, or as its default export) a `PluginFactory`, which the vault
 * calls once at start with the backend's own options and a `PluginContext`. The factory returns
 * either
 * - a `PluginBackend` — the built-in backends' interface: a pure `resolve(request)` naming the
 *   artifact (`PluginArtifactRef`: cache key, upstream path, freshness, digest) and a `fetch` that
 *   asks the upstream for it — or
 * - a `SourceStyleBackend` — the source design's shape, `canHandle(path)` and a `fetch(path)`
 *   generator of chunks — which the vault adapts. A default export that is such an object, or a
 *   class of them, works too (a class is instantiated with `new Class(options, context)`).
 *
 * The vault keeps caching, verification, single-flight and security to itself: whatever a plugin
 * returns is checked, its cache keys live in the backend's own namespace (`<name>/<cacheKey>`),
 * and its errors are mapped to statuses by the same rules as the built-in backends'.
 */
import type { Readable } from "node:stream";
import type { Logger } from "pino";
import type { ArtifactRef, DigestAlgorithm, ExpectedDigest, Freshness } from "../../core/cache/artifact-ref.js";
import type { Validators } from "../../core/cache/artifact-source.js";
import type { ProxyRequest } from "../backend.js";

export { VaultError, isVaultError, type ErrorKind } from "../../core/errors.js";
export { createUpstreamClient } from "../http-client.js";
export { normaliseUpstreamPath } from "../upstream-path.js";
export { digestFromIntegrity } from "../../core/cache/artifact-ref.js";
export type { UpstreamClient, UpstreamClientOptions, UpstreamRequest, UpstreamResponse } from "../upstream-client.js";
export type { ArtifactRef, DigestAlgorithm, ExpectedDigest, Freshness, ProxyRequest, Validators };

/** What the factory gets besides its options. */
export interface PluginContext {
  /** The backend's configured `name`. Its cache keys are stored under `<name>/`. */
  readonly name: string;
  /** The URL prefix the backend owns, e.g. `/releases/`. Requests reach `resolve` without it. */
  readonly prefix: string;
  /** A pino logger bound to the backend (`{backend: name}`). */
  readonly logger: Logger;
  /** The TTL for mutable artifacts: the backend's `ttl` option, else `cache.metadata_ttl`. */
  readonly ttlMs: number;
}

/**
 * The backend's options: its `config` block without the keys the vault reads itself (`prefix`,
 * `module`, `adapter`, `ttl`). Values are as written in the YAML (after `${VAR}` substitution);
 * checking them is the plugin's job — throw from the factory and the vault refuses to start,
 * naming `backends[i].config`.
 */
export type PluginOptions = Readonly<Record<string, unknown>>;

/**
 * What `resolve` returns: an `ArtifactRef` as the built-in backends make it, with two
 * differences. `cacheKey` is relative to the backend's namespace (the vault stores the artifact
 * under `<name>/<cacheKey>`; `backend` is filled in and any value given is ignored), and
 * `upstreamPath` defaults to `cacheKey`. Extra properties are allowed and come back to `fetch`
 * unchanged (a place for what `resolve` worked out, such as a download URL's parts).
 *
 * Checked on every call:
 * - `cacheKey`: a non-empty string without a leading `/`, empty, `.` or `..` segments or control
 *   characters, at most 1024 bytes once prefixed; otherwise the request is refused (400);
 * - `freshness`: `{kind: "immutable"}` or `{kind: "mutable", ttlMs}` (required: nothing is cached
 *   forever by accident);
 * - `digest` (optional): `{algorithm: "sha256" | "sha512" | "sha1", hex}`; the download must match
 *   it or it is not cached;
 * - `size` (optional): the exact length the artifact must have.
 * A ref of the wrong shape is a bug in the plugin: 500, logged.
 */
export interface PluginArtifactRef {
  readonly cacheKey: string;
  readonly upstreamPath?: string | undefined;
  readonly freshness: Freshness;
  readonly digest?: ExpectedDigest | undefined;
  readonly size?: number | undefined;
  readonly upstreamHeaders?: Readonly<Record<string, string>> | undefined;
  readonly backend?: string | undefined;
  readonly [extra: string]: unknown;
}

/**
 * The ref `fetch` gets back: what `resolve` returned (extra properties included, `cacheKey` still
 * relative), with `upstreamPath` and `backend` filled in and the checked `freshness`/`digest`.
 */
export interface ResolvedPluginRef extends PluginArtifactRef {
  readonly upstreamPath: string;
  readonly backend: string;
}

/** A body a plugin may hand back; the vault turns it into a stream. */
export type PluginBody = Readable | ReadableStream<Uint8Array> | AsyncIterable<Uint8Array> | Iterable<Uint8Array> | Uint8Array | string | null | undefined;

/**
 * What `fetch` resolves with: an `UpstreamResponse` (what `createUpstreamClient().request()`
 * gives, so a plugin can return it as it is) or anything of this shape. The cache reads it like
 * the built-in backends' responses: 200 → the artifact (its `content-length`, when present, is
 * the length it must have; `content-type`, `etag` and `last-modified` are kept); 304 → the cached
 * copy is still good (only when `validators` were given); 404 or 410 → not found (remembered for
 * `cache.negative_ttl`); 429 → rate-limited; anything else → upstream failure (502). A body that
 * errors mid-way aborts every client of the download and nothing is cached.
 */
export interface PluginResponse {
  readonly status: number;
  /** Header names in any case; arrays are joined with ", ". A WHATWG `Headers` works too. */
  readonly headers?: Readonly<Record<string, string | number | readonly string[] | undefined>> | Headers | undefined;
  readonly body?: PluginBody;
  /** For logs; defaults to `plugin:<name>`. */
  readonly url?: string | undefined;
}

/**
 * The native plugin shape: the built-in `Backend` interface (a built-in-style object with `type`,
 * `name` and `prefix` works as is; the vault sets those three from the config).
 *
 * - `resolve` must be pure and synchronous: no I/O, it runs before the cache is consulted. Throw
 *   `VaultError("not_found", ...)` for paths the backend does not serve and
 *   `VaultError("bad_request", ...)` for malformed ones (`normaliseUpstreamPath` does the latter
 *   for every path trick); any other exception is a plugin bug (500).
 * - `fetch` is called by the cache on a miss, or with `validators` to revalidate a stale mutable
 *   artifact (send them upstream as `If-None-Match` / `If-Modified-Since` and return the 304, or
 *   ignore them and return a 200). It gets the ref `resolve` returned. A rejection with a
 *   `VaultError` keeps its kind (`upstream_timeout` → 504, ...); any other rejection is an upstream
 *   failure (502). The `signal` aborts when the vault gives up on the download.
 * - `close` (optional) releases connections at shutdown.
 */
export interface PluginBackend {
  resolve(request: ProxyRequest): PluginArtifactRef;
  fetch(ref: ResolvedPluginRef, validators: Validators | undefined, signal: AbortSignal): Promise<PluginResponse>;
  close?(): void | Promise<void>;
}

/** One piece of an artifact from a source-style backend. */
export interface SourceContentChunk {
  readonly content: Uint8Array | ArrayBuffer | string;
  /** Bytes so far, for progress; informational (the vault counts what it receives). */
  readonly bytesDownloaded?: number | undefined;
  /** The artifact's full length: the length it must have. Only the first chunk's reaches the client's headers. */
  readonly totalLength?: number | undefined;
  /** Only the first chunk's counts. */
  readonly contentType?: string | undefined;
}

/**
 * A failure from a source-style backend. Before any content: "not found" (404) when `status` is
 * 404 or 410, or — without a `status` — when the message says so (`not found`, `404`,
 * `no such file`, `does not exist`); any other error is an upstream failure (502). After content
 * has been yielded: the download is aborted and nothing is cached.
 */
export interface SourceErrorChunk {
  readonly error: string;
  readonly status?: number | undefined;
}

export type SourceChunk = SourceContentChunk | SourceErrorChunk;

/**
 * The source design's backend shape, adapted by the vault:
 * - `canHandle(path)`: whether the backend serves `path` (false → 404). Sync or async.
 * - `fetch(path, {signal})`: an async (or sync) generator of `SourceChunk`s; returning a promise
 *   of one works too. Thrown exceptions count as `{error}` chunks.
 * - `isMutable(path)` (optional): true for artifacts that change upstream; they are fetched again
 *   after `ttl` (the adapter cannot revalidate, it downloads). Everything else is immutable.
 * - `close()` (optional).
 * `path` is the request's path below the prefix, percent-decoded and checked (no `..`, no empty
 * segments, no query); encode its segments again to build a URL from it.
 */
export interface SourceStyleBackend {
  canHandle(path: string): boolean | Promise<boolean>;
  fetch(path: string, options: { readonly signal: AbortSignal }): AsyncIterable<SourceChunk> | Iterable<SourceChunk> | Promise<AsyncIterable<SourceChunk> | Iterable<SourceChunk>>;
  isMutable?(path: string): boolean;
  close?(): void | Promise<void>;
}

/** What a plugin module exports as `createBackend` or as its default export. */
export type PluginFactory = (options: PluginOptions, context: PluginContext) => PluginBackend | SourceStyleBackend | Promise<PluginBackend | SourceStyleBackend>;

/** Algorithms a `digest` may name. */
export const DIGEST_ALGORITHMS: readonly DigestAlgorithm[] = ["sha256", "sha512", "sha1"];
