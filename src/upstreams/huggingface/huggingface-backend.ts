import { PassThrough, pipeline, Readable } from "node:stream";
import type { ArtifactRef, Freshness } from "../../core/cache/artifact-ref.js";
import type { CachedArtifact, ResumeRequest, UpstreamAnswer, Validators } from "../../core/cache/artifact-source.js";
import type { ByteRange } from "../../core/byte-range.js";
import { VaultError } from "../../core/errors.js";
import type { Backend, BackendContext, ProxyRequest } from "../backend.js";
import { createUpstreamClient } from "../http-client.js";
import { bearerHeaders } from "../upstream-credentials.js";
import { cacheKeyFor, fillRequestHeaders, withTrailingSlash } from "../upstream-request.js";
import { checkedBody } from "../go/verified-body.js";
import type { HuggingFaceBackendConfig } from "./hf-config.js";
import { fileInfoFromHead, gitBlobCheck, POINTER_HEADERS, pointerHeaders, readPointer, type HubFileInfo } from "./hub-file.js";
import { isCommit, parseApiQuery, parseHubPath, resolvePath, type HubPath } from "./hub-paths.js";

/**
 * The `huggingface` backend: the part of the Hugging Face hub's HTTP API that downloads use
 * (`huggingface_hub` and `huggingface-cli` with `HF_ENDPOINT`, `@huggingface/hub` with `hubUrl`).
 *
 * A file request (`{repo}/resolve/{rev}/{path}`) is served in two steps, both through the cache:
 *
 * 1. Its *pointer*: which commit `rev` names and which content the file has there — learnt from
 *    a HEAD on the hub's `resolve` URL (`X-Repo-Commit`, `X-Linked-Etag`/`ETag`,
 *    `X-Linked-Size`/`Content-Length`; the hub's redirect to its CDN is not followed for it). A
 *    branch or tag is mutable (`ttl`; STALE when the hub is down); a commit never changes. The
 *    pointer is stored as an empty entry whose kept headers hold what the HEAD said.
 * 2. The *content*, stored once per content whatever repo, revision or path names it: an LFS
 *    file under its SHA-256 (verified while it streams; the hub's redirect to its CDN is
 *    followed without the token), a small file under its git blob id (verified too: the id is
 *    the SHA-1 of the git blob). `present` swaps the pointer for the content, fetched when the
 *    body is asked for (a HEAD never downloads), so the cache's single flight, resume and
 *    verification apply to the content itself.
 *
 * The client gets the bytes from the vault with the headers the hub's clients read
 * (`X-Repo-Commit`, `X-Linked-Etag`, `X-Linked-Size`, `ETag`), never a `Location` to the CDN and
 * never the token. API answers (`api/models/...`, `api/datasets/...`) are mutable JSON, cached
 * per query with `ttl`; they name no URL of the hub, so nothing is rewritten.
 */

/** What a ref is, for the fetch (`ArtifactRef.upstream`); an API ref carries its query after `api?`. */
const POINTER = "pointer";
const CONTENT = "content";
const API = "api?";
/** Redirects from one hub path to another followed for a pointer (renamed repos). */
const MAX_HUB_REDIRECTS = 3;

export async function createHuggingFaceBackend(name: string, config: HuggingFaceBackendConfig, context: BackendContext, where: string): Promise<Backend> {
  const credentials = bearerHeaders(config, where);
  const hubBase = withTrailingSlash(config.endpoint);
  /** The endpoint's path (`/`, or `/hub/` for a hub behind a path): what the hub's own redirects start with. */
  const hubPathPrefix = new URL(hubBase).pathname;
  // Revisions with `/` (`refs/pr/1`) go to the hub as one %2F-encoded segment, as its clients send them.
  const common = { baseUrl: hubBase, timeoutSeconds: config.timeout, retries: config.retries, pathRules: { slashJoinedNames: true } };
  // Downloads follow the hub's redirects to its CDN; the client drops the token on the way (other origin).
  const hub = createUpstreamClient(common);
  // A pointer is the hub's own answer to a HEAD: its 302 carries the headers, the CDN is not asked.
  const heads = createUpstreamClient({ ...common, maxRedirects: 0 });
  const metadata: Freshness = { kind: "mutable", ttlMs: config.ttl ?? context.metadataTtlMs };
  const immutable: Freshness = { kind: "immutable" };
  const logger = context.logger.child({ backend: name });

  const resolve = (request: ProxyRequest): ArtifactRef => {
    const target = parseHubPath(request.path);
    if (target.kind === "file") {
      const upstreamPath = resolvePath(target.repo, target.revision, target.file);
      return {
        backend: name,
        cacheKey: cacheKeyFor(name, `pointers/${upstreamPath}`),
        upstreamPath,
        upstream: POINTER,
        freshness: isCommit(target.revision) ? immutable : metadata,
        keepHeaders: POINTER_HEADERS,
      };
    }
    const { pairs, canonical } = parseApiQuery(request.query);
    const upstreamPath = apiPath(target);
    return {
      backend: name,
      cacheKey: cacheKeyFor(name, `${upstreamPath}/@query/${canonical}`),
      upstreamPath,
      upstream: `${API}${new URLSearchParams(pairs).toString()}`,
      freshness: metadata,
      upstreamHeaders: { accept: "application/json" },
      // A listing's next page (`Link: <https://huggingface.co/api/...?cursor=...>; rel="next"`), pointed at the vault by `present`.
      keepHeaders: ["link"],
    };
  };

  /** Where a file's content is cached, and how it is fetched: from the hub, at the pointer's commit. */
  const contentRef = (pointer: ArtifactRef, info: HubFileInfo): ArtifactRef => {
    const target = parseHubPath(pointer.upstreamPath);
    if (target.kind !== "file") throw new VaultError("internal", `not a file ref: ${pointer.upstreamPath}`);
    return {
      backend: name,
      cacheKey: cacheKeyFor(name, info.sha256 !== undefined ? `lfs/sha256/${info.sha256}` : `git/${info.etag}`),
      upstreamPath: resolvePath(target.repo, info.commit, target.file),
      upstream: CONTENT,
      freshness: immutable,
      size: info.size,
      ...(info.sha256 === undefined ? {} : { digest: { algorithm: "sha256", hex: info.sha256 } }),
      ...(pointer.requestId === undefined ? {} : { requestId: pointer.requestId }),
    };
  };

  /**
   * The hub's HEAD answer for a file: a 200 (small file) or a redirect to the CDN (LFS), whose
   * headers are what counts. A redirect to another path of the hub itself (a renamed repo) is
   * followed, as huggingface_hub does, after the same checks as a client's path.
   */
  const headFile = async (path: string, signal: AbortSignal): Promise<UpstreamAnswer> => {
    for (let hops = 0; ; hops++) {
      const head = await heads.request({ method: "HEAD", path, signal, headers: { "accept-encoding": "identity", ...credentials } });
      head.body.destroy();
      const location = head.headers["location"];
      const relative = head.status >= 301 && head.status <= 308 && location !== undefined && location.startsWith("/") && !location.startsWith("//");
      if (!relative || head.headers["x-linked-etag"] !== undefined || hops >= MAX_HUB_REDIRECTS) return head;
      const next = new URL(location, "http://hub.invalid").pathname;
      let target: HubPath | undefined;
      try {
        target = next.startsWith(hubPathPrefix) ? parseHubPath(next.slice(hubPathPrefix.length)) : undefined;
      } catch {
        target = undefined;
      }
      if (target?.kind !== "file") throw new VaultError("upstream_failed", `the hub redirected ${path} to a path that is not one of its files`);
      path = resolvePath(target.repo, target.revision, target.file);
    }
  };

  const fetchPointer = async (ref: ArtifactRef, validators: Validators | undefined, signal: AbortSignal): Promise<UpstreamAnswer> => {
    const head = await headFile(ref.upstreamPath, signal);
    const ok = head.status === 200 || (head.status >= 301 && head.status <= 308 && head.status !== 304);
    if (!ok) return head;
    const target = parseHubPath(ref.upstreamPath);
    const commit = target.kind === "file" && isCommit(target.revision) ? target.revision : undefined;
    const info = fileInfoFromHead(head.headers, { commit, redirected: head.status !== 200, what: ref.upstreamPath });
    const headers = { ...pointerHeaders(info), etag: `"${info.commit}-${info.sha256 ?? info.etag}"`, "content-length": "0" };
    const status = validators?.etag === headers.etag ? 304 : 200;
    return { status, headers, url: head.url, body: Readable.from([]), resumable: false };
  };

  const fetchContent = async (ref: ArtifactRef, signal: AbortSignal, resume: ResumeRequest | undefined): Promise<UpstreamAnswer> => {
    const response = await hub.request({ method: "GET", path: ref.upstreamPath, signal, headers: { ...fillRequestHeaders(ref, undefined, resume), ...credentials } });
    if (ref.digest !== undefined || response.status !== 200 || ref.size === undefined) return response;
    // A small file: its key is its git blob id, the SHA-1 of the blob; checked as a whole at the end.
    const blob = ref.cacheKey.slice(`${name}/git/`.length);
    if (!/^[0-9a-f]{40}$/.test(blob)) return response;
    return { ...response, body: checkedBody(response.body, gitBlobCheck(blob, ref.size, ref.upstreamPath)), resumable: false };
  };

  const fetch = async (ref: ArtifactRef, validators: Validators | undefined, signal: AbortSignal, resume?: ResumeRequest): Promise<UpstreamAnswer> => {
    if (ref.upstream === POINTER) return fetchPointer(ref, validators, signal);
    if (ref.upstream === CONTENT) return fetchContent(ref, signal, resume);
    const query = ref.upstream?.startsWith(API) === true ? [...new URLSearchParams(ref.upstream.slice(API.length))] : [];
    return hub.request({ method: "GET", path: ref.upstreamPath, query, signal, headers: { ...fillRequestHeaders(ref, validators), ...credentials } });
  };

  /** The content's bytes (or a range of them), through the cache: a hit, the running download, or a new one. */
  const streamContent = (ref: ArtifactRef, range: ByteRange | undefined): Readable => {
    const out = new PassThrough();
    context.artifacts.get(ref, fetch).then(
      (artifact) => {
        if (out.destroyed) {
          artifact.release();
          return;
        }
        pipeline(artifact.body(range), out, () => undefined);
      },
      (error: unknown) => {
        logger.warn({ key: ref.cacheKey, reason: (error as Error).message }, "file content could not be fetched");
        out.destroy(error as Error);
      },
    );
    return out;
  };

  const present = (artifact: CachedArtifact, ref: ArtifactRef, request: ProxyRequest): CachedArtifact => {
    if (ref.upstream !== POINTER) {
      const link = artifact.upstreamHeaders["link"];
      if (link === undefined) return artifact;
      const { link: _hubLink, ...others } = artifact.upstreamHeaders;
      const links = linksToVault(link, hubBase, `${request.baseUrl}/`);
      return { ...artifact, upstreamHeaders: links === "" ? others : { ...others, link: links } };
    }
    let info: HubFileInfo;
    try {
      info = readPointer(artifact.upstreamHeaders);
    } finally {
      artifact.release();
    }
    const content = contentRef(ref, info);
    const etag = info.sha256 ?? info.etag;
    return {
      status: artifact.status,
      size: info.size,
      contentType: "application/octet-stream",
      etag: `"${etag}"`,
      lastModified: undefined,
      upstreamHeaders: {
        "x-repo-commit": info.commit,
        ...(info.sha256 === undefined ? {} : { "x-linked-etag": `"${info.sha256}"`, "x-linked-size": String(info.size) }),
      },
      contents: undefined,
      body: (range) => streamContent(content, range),
      release: () => undefined,
    };
  };

  return {
    type: "huggingface",
    name,
    prefix: config.prefix,
    resolve,
    fetch,
    present,
    close: async () => {
      await Promise.all([hub.close(), heads.close()]);
    },
  };
}

/**
 * A `Link` header's URLs below the hub pointed at the vault (the listing's next page); links
 * elsewhere are dropped, so a client never leaves the vault by following one.
 */
export function linksToVault(link: string, hubBase: string, vaultBase: string): string {
  return link
    .split(/,(?=\s*<)/)
    .map((part) => part.trim())
    .filter((part) => part.startsWith(`<${hubBase}`))
    .map((part) => `<${vaultBase}${part.slice(hubBase.length + 1)}`)
    .join(", ");
}

/** The hub API path of an API request (relative to the endpoint). */
function apiPath(target: Extract<HubPath, { kind: "api" }>): string {
  const base = `api/${target.repo.kind}s/${target.repo.name}`;
  const revision = encodeURIComponent(target.revision ?? "");
  switch (target.view) {
    case "info":
      return base;
    case "revision":
      return `${base}/revision/${revision}`;
    case "tree":
      return `${base}/tree/${revision}${target.file === undefined ? "" : `/${target.file.split("/").map(encodeURIComponent).join("/")}`}`;
  }
}

/** `type: huggingface`: models and datasets of a Hugging Face hub. */
