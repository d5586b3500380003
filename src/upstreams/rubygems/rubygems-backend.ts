import { PassThrough, pipeline, Readable } from "node:stream";
import { finished } from "node:stream/promises";
import type { ArtifactRef, ExpectedDigest, Freshness } from "../../core/cache/artifact-ref.js";
import type { CachedArtifact, ResumeRequest, UpstreamAnswer, Validators } from "../../core/cache/artifact-source.js";
import { isVaultError, VaultError } from "../../core/errors.js";
import type { Backend, BackendContext, ForwardedRequest, ProxyRequest } from "../backend.js";
import { createUpstreamClient } from "../http-client.js";
import { cacheKeyFor, fillRequestHeaders, readUpstreamBody, withTrailingSlash } from "../upstream-request.js";
import { gemDigest, md5Etag, REPR_DIGEST, reprDigest } from "./compact-index.js";
import type { RubygemsBackendConfig } from "./rubygems-config.js";
import { parseRubygemsPath, type GemFile } from "./rubygems-paths.js";

/**
 * The `rubygems` backend: a gem source (rubygems.org, or a private one serving the compact
 * index) for `gem` and Bundler.
 *
 *     {prefix}versions, {prefix}names, {prefix}info/<gem>     the compact index (mutable, ttl)
 *     {prefix}specs.4.8.gz, latest_..., prerelease_...        the legacy full index (mutable, ttl)
 *     {prefix}gems/<name>-<version>[-<platform>].gem          gems (immutable, verified)
 *     {prefix}quick/Marshal.4.8/<full name>.gemspec.rz        specifications (immutable)
 *     {prefix}api/v1/dependencies                             404: the retired dependency API
 *
 * The rule: a `.gem` is cached only once its bytes hash to the SHA-256 its version's line in
 * `info/<gem>` gives as `checksum` — read from the cached info file (however stale: a
 * version's checksum never changes), else from the info file through the cache, else (a version
 * newer than the cached file) from the upstream's file right now. A version the index does not
 * list is a 404; one whose line gives no checksum is cached unverified, with a warning. The
 * first client of a gem not yet cached gets its first byte once the download is verified
 * (`afterVerification`: `gem` cannot tell a short body from a whole one). Nothing names a URL, so nothing is rewritten; compact index documents get the
 * validators their clients check (compact-index.ts). `Range` requests, with which Bundler
 * fetches what was appended to `versions` and `info/<gem>` since its last run, are answered from
 * the cached copy. The dependency API (`api/v1/dependencies`), which rubygems.org has retired,
 * is answered 404: `gem` and Bundler then use the compact index. The root itself is answered by
 * the vault (`gem` asks for it before it uses the compact index). Paths are checked
 * (rubygems-paths.ts) before any upstream request.
 */

/** What a ref is, for the fetch (`ArtifactRef.upstream`). */
type RubygemsUpstream = "index" | "specs" | "gem" | "quick";

/** The largest compact index document read whole (rubygems.org's `versions` is tens of MB). */
const MAX_INDEX_BYTES = 512 * 1024 * 1024;

export async function createRubygemsBackend(name: string, config: RubygemsBackendConfig, context: BackendContext): Promise<Backend> {
  const source = createUpstreamClient({
    baseUrl: withTrailingSlash(config.source_url),
    timeoutSeconds: config.timeout,
    retries: config.retries,
    username: config.username,
    password: config.password,
  });
  const metadata: Freshness = { kind: "mutable", ttlMs: config.ttl ?? context.metadataTtlMs };
  const logger = context.logger.child({ backend: name });

  const ref = (path: string, kind: RubygemsUpstream, freshness: Freshness): ArtifactRef => ({
    backend: name,
    cacheKey: cacheKeyFor(name, path),
    // Made only of [A-Za-z0-9._-] segments, none a dot segment: already a normalised path.
    upstreamPath: path,
    upstream: kind,
    freshness,
    ...(kind === "index" ? { keepHeaders: [REPR_DIGEST] } : {}),
  });
  const infoRef = (gem: string): ArtifactRef => ref(`info/${gem}`, "index", metadata);

  const resolve = (request: ProxyRequest): ArtifactRef => {
    const target = parseRubygemsPath(request.path);
    switch (target.kind) {
      case "versions":
      case "names":
        return ref(target.kind, "index", metadata);
      case "info":
        return infoRef(target.gem);
      case "specs":
        return ref(target.file, "specs", metadata);
      case "gem":
        return ref(`gems/${target.file.fullName}.gem`, "gem", { kind: "immutable" });
      case "quick":
        return ref(`quick/Marshal.4.8/${target.file.fullName}.gemspec.rz`, "quick", { kind: "immutable" });
      case "legacy-api":
        throw new VaultError("not_found", "the vault does not serve the dependency API (rubygems.org retired it): gem and Bundler use the compact index (versions, info/<gem>)");
    }
  };

  /** A compact index document, read whole to give it the validators its clients check. */
  const fetchIndex = async (target: ArtifactRef, validators: Validators | undefined, signal: AbortSignal): Promise<UpstreamAnswer> => {
    const response = await source.request({ method: "GET", path: target.upstreamPath, headers: fillRequestHeaders(target, validators), signal });
    if (response.status !== 200) return response;
    const body = await readUpstreamBody(response.body, MAX_INDEX_BYTES, target.upstreamPath);
    const headers: Record<string, string> = { ...response.headers, "content-length": String(body.length), [REPR_DIGEST]: reprDigest(body) };
    delete headers["content-encoding"];
    return { status: 200, headers, url: response.url, body: Readable.from([body]), resumable: false };
  };

  const readInfo = async (artifact: CachedArtifact, gem: string): Promise<Buffer> => {
    try {
      return artifact.contents ?? (await readUpstreamBody(artifact.body(), MAX_INDEX_BYTES, `the cached info file of ${gem}`));
    } finally {
      artifact.release();
    }
  };

  /** The digest a gem file must have; `unlisted` when no info file lists it; undefined when its line gives no checksum. */
  const expectedDigest = async (file: GemFile, signal: AbortSignal): Promise<ExpectedDigest | "unlisted" | undefined> => {
    for (const { gem, version } of file.candidates) {
      const found = await digestFromIndex(gem, version, signal);
      if (found !== "unlisted") return found === "unchecked" ? undefined : found;
    }
    return "unlisted";
  };

  const digestFromIndex = async (gem: string, version: string, signal: AbortSignal): Promise<ExpectedDigest | "unlisted" | "unchecked"> => {
    const stored = await context.artifacts.peek(infoRef(gem));
    if (stored !== undefined) {
      const found = gemDigest(await readInfo(stored, gem), version);
      if (found !== "unlisted") return found;
    }
    let current: CachedArtifact;
    try {
      current = await context.artifacts.get(infoRef(gem), fetch);
    } catch (error) {
      if (isVaultError(error, "not_found")) return "unlisted";
      throw error;
    }
    const status = current.status;
    const found = gemDigest(await readInfo(current, gem), version);
    if (found !== "unlisted" || status === "MISS") return found;
    // A version published since the cached info file was fetched (a lockfile names it): the upstream's file now.
    const latest = await fetchIndex(infoRef(gem), undefined, signal);
    if (latest.status !== 200) {
      latest.body.destroy();
      return "unlisted";
    }
    return gemDigest(await readUpstreamBody(latest.body, MAX_INDEX_BYTES, `the info file of ${gem}`), version);
  };

  const fetchGem = async (target: ArtifactRef, signal: AbortSignal, resume: ResumeRequest | undefined): Promise<UpstreamAnswer> => {
    const parsed = parseRubygemsPath(target.upstreamPath);
    if (parsed.kind !== "gem") throw new VaultError("internal", `not a gem ref: ${target.upstreamPath}`);
    const digest = await expectedDigest(parsed.file, signal);
    if (digest === "unlisted") {
      // Not a version the index lists (yanked long ago, or a typo): a 404, remembered briefly.
      return { status: 404, headers: {}, url: target.upstreamPath, body: Readable.from([]) };
    }
    if (digest === undefined) logger.warn({ gem: parsed.file.fullName }, "the compact index gives no checksum for this gem; it is cached unverified");
    const response = await source.request({ method: "GET", path: target.upstreamPath, headers: fillRequestHeaders(target, undefined, resume), signal });
    return { ...response, digest };
  };

  const fetch = async (target: ArtifactRef, validators: Validators | undefined, signal: AbortSignal, resume?: ResumeRequest): Promise<UpstreamAnswer> => {
    switch (target.upstream as RubygemsUpstream) {
      case "index":
        return fetchIndex(target, validators, signal);
      case "gem":
        return fetchGem(target, signal, resume);
      default:
        return source.request({ method: "GET", path: target.upstreamPath, headers: fillRequestHeaders(target, validators, resume), signal });
    }
  };

  return {
    type: "rubygems",
    name,
    prefix: config.prefix,
    resolve,
    fetch,
    present: (artifact, target) => {
      // A gem still arriving: not a byte before it is verified (see `afterVerification`).
      if (target.upstream === "gem") return artifact.arriving === true ? afterVerification(artifact, () => context.artifacts.peek(target)) : artifact;
      if (target.upstream !== "index") return artifact;
      // Compact index documents: the ETag Bundler checks (the MD5 of the whole document).
      const etag = md5Etag(artifact.upstreamHeaders[REPR_DIGEST]);
      return etag === undefined ? artifact : { ...artifact, etag };
    },
    forward: sourceRoot,
    // gem and Bundler follow redirects (rubygems.org serves gems from a CDN).
    clientsFollowRedirects: (target) => target.upstream === "gem",
    close: () => source.close(),
  };
}

const ROOT_TEXT = "A gem source (artifact-vault): the compact index is at versions, names and info/<gem>; gems at gems/<file>.gem.\n";

/**
 * The source's root, answered by the vault itself: `gem` (RubyGems 3.x) sends `HEAD` to it, and
 * uses the compact index only when that answers 200 — else it falls back to the legacy
 * `specs.4.8.gz`. Nothing upstream is asked (rubygems.org's root is its home page).
 */
function sourceRoot(request: ForwardedRequest): ((signal: AbortSignal) => Promise<UpstreamAnswer>) | undefined {
  if (request.path !== "" || (request.method !== "GET" && request.method !== "HEAD")) return undefined;
  const body = Buffer.from(ROOT_TEXT, "utf8");
  const headers = { "content-type": "text/plain; charset=utf-8", "content-length": String(body.length) };
  return () => Promise.resolve({ status: 200, headers, url: "", body: Readable.from(request.method === "HEAD" ? [] : [body]) });
}

/**
 * A download as a client that cannot tell a short body from a whole one gets it: nothing until
 * the download is complete and verified, then the verified copy. The cache holds a fill's last
 * byte back until it is verified, and breaks the connection off if it fails — but Ruby's
 * Net::HTTP (under `gem`) takes a body that ends early for a whole one, and a `.gem` (a tar
 * archive, which ends in zero blocks) short of its last byte still installs. So the first client
 * of a gem waits for the download (the status line goes with the first byte, so a failed
 * verification is an error status, not a short 200), and reads the copy the cache holds then.
 */
function afterVerification(arriving: CachedArtifact, verified: () => Promise<CachedArtifact | undefined>): CachedArtifact {
  return {
    ...arriving,
    arriving: false,
    contents: undefined,
    body: (range) => {
      const download = arriving.body();
      const out = new PassThrough();
      out.on("close", () => download.destroy());
      const serve = async (): Promise<void> => {
        download.resume();
        await finished(download);
        const copy = await verified();
        if (copy === undefined) throw new VaultError("internal", "a verified download is gone from the cache");
        if (out.destroyed) {
          copy.release();
          return;
        }
        pipeline(copy.body(range), out, () => undefined);
      };
      serve().catch((error: unknown) => out.destroy(error as Error));
      return out;
    },
  };
}

/** `type: rubygems`: a gem source for gem and Bundler. */
