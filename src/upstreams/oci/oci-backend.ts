import { createHash } from "node:crypto";
import { Readable } from "node:stream";
import type { Logger } from "pino";
import type { ArtifactRef, Freshness } from "../../core/cache/artifact-ref.js";
import { VaultError, isVaultError } from "../../core/errors.js";
import type { ResumeRequest, Validators } from "../../core/cache/artifact-source.js";
import type { Backend, BackendContext, ProxyRequest, Resolution } from "../backend.js";
import type { UpstreamResponse } from "../upstream-client.js";
import { cacheKeyFor, fillRequestHeaders } from "../upstream-request.js";
import type { OciBackendConfig } from "./oci-config.js";
import { REGISTRY_API_VERSION } from "./oci-errors.js";
import { formatDigest, parseRegistryPath } from "./oci-request.js";
import { RegistryUpstream } from "./registry-upstream.js";

/**
 * The `dockerhub` / `oci` backend: the pull side of the OCI distribution API in front of one or
 * more registries (`repositories`, tried in order).
 *
 * - Blobs and manifests by digest are immutable, stored once per digest (whatever repository
 *   named them) and verified against it while they stream.
 * - Manifests by tag are mutable: after the TTL they are revalidated with a HEAD upstream (Docker
 *   Hub does not count HEADs against its pull limit) and downloaded again only when the
 *   `Docker-Content-Digest` changed; a 429 or an outage serves the cached tag (`STALE`). The
 *   client's `Accept` is forwarded as sent (a partial one makes registries answer another
 *   document), and each distinct set of accepted types is cached on its own.
 * - Tag lists are mutable too.
 *
 * `ref.upstreamPath` is the spec's path below `/v2/` (`<name>/manifests/<tag>`); each upstream
 * maps the name (Docker Hub's `library/`) and authenticates on its own.
 */

/** What clients accept when they do not say: every manifest type a registry may hold. */
export const ALL_MANIFEST_TYPES = [
  "application/vnd.oci.image.index.v1+json",
  "application/vnd.oci.image.manifest.v1+json",
  "application/vnd.docker.distribution.manifest.list.v2+json",
  "application/vnd.docker.distribution.manifest.v2+json",
  "application/vnd.docker.distribution.manifest.v1+prettyjws",
  "application/json",
].join(", ");

const DIGEST_HEADER = "docker-content-digest";

export async function createOciBackend(name: string, config: OciBackendConfig, context: BackendContext): Promise<Backend> {
  const options = { timeoutSeconds: config.timeout, retries: config.retries };
  const upstreams = config.upstreams.map((upstream) => new RegistryUpstream(upstream, options, context.logger));
  const tagFreshness: Freshness = { kind: "mutable", ttlMs: config.ttl ?? context.metadataTtlMs };
  const immutable: Freshness = { kind: "immutable" };
  /** Where blobs' cache keys start (see `resolve`). */
  const blobKeys = `${name}/blobs/`;

  return {
    type: "dockerhub",
    name,
    prefix: config.prefix,
    mounts: { registryApi: true },
    resolve(request: ProxyRequest): Resolution {
      const parsed = parseRegistryPath(request.path);
      const upstreamPath = request.path;
      if (parsed.kind === "blob") {
        const { digest } = parsed;
        return {
          backend: name,
          cacheKey: cacheKeyFor(name, `blobs/${digest.algorithm}/${digest.hex}`),
          upstreamPath,
          freshness: immutable,
          digest,
          upstreamHeaders: { accept: "*/*" },
          responseHeaders: { [DIGEST_HEADER]: formatDigest(digest) },
        };
      }
      if (parsed.kind === "tags") {
        return { backend: name, cacheKey: cacheKeyFor(name, `tags/${parsed.name}/_list`), upstreamPath, freshness: tagFreshness, upstreamHeaders: { accept: "application/json" } };
      }
      const accept = request.headers["accept"]?.trim() || ALL_MANIFEST_TYPES;
      const tagsOfRepository = `${name}/tags/${parsed.name}/_manifests/`;
      if (parsed.digest !== undefined) {
        const { digest } = parsed;
        return {
          backend: name,
          cacheKey: cacheKeyFor(name, `manifests/${digest.algorithm}/${digest.hex}`),
          upstreamPath,
          freshness: immutable,
          digest,
          upstreamHeaders: { accept },
          responseHeaders: { [DIGEST_HEADER]: formatDigest(digest) },
          // The same bytes may be cached under one of the repository's tags (docker and containerd
          // resolve a tag, then pull its digest): served from there, without a second upstream pull.
          staleFallback: { prefix: tagsOfRepository, exact: true, accepts: (entry) => digest.algorithm === "sha256" && entry.sha256 === digest.hex },
        };
      }
      const acceptable = acceptedTypes(accept);
      return {
        backend: name,
        cacheKey: cacheKeyFor(name, `tags/${parsed.name}/_manifests/${parsed.reference}/${acceptVariant(accept)}`),
        upstreamPath,
        freshness: tagFreshness,
        upstreamHeaders: { accept },
        keepHeaders: [DIGEST_HEADER],
        // Upstream down: the tag as cached for another client's Accept, if this client accepts its type.
        staleFallback: {
          prefix: `${tagsOfRepository}${parsed.reference}/`,
          accepts: (entry) => acceptable.has("*/*") || acceptable.has((entry.contentType ?? "").split(";")[0]?.trim().toLowerCase() ?? ""),
        },
      };
    },
    fetch: (ref, validators, signal, resume) => fetchFromUpstreams(upstreams, ref, validators, signal, context.logger, resume),
    // Registry clients need the digest of what they got, also for a tag whose registry did not say.
    present: (artifact) => {
      const digest = artifact.upstreamHeaders[DIGEST_HEADER] ?? (artifact.etag === undefined ? undefined : `sha256:${artifact.etag.replaceAll('"', "")}`);
      return { ...artifact, upstreamHeaders: { ...artifact.upstreamHeaders, ...REGISTRY_API_VERSION, ...(digest === undefined ? {} : { [DIGEST_HEADER]: digest }) } };
    },
    // Container clients follow blob redirects (registries send them to a CDN or a bucket, as
    // Docker Hub does); manifests are answered by the vault, with their Docker-Content-Digest.
    clientsFollowRedirects: (ref) => ref.cacheKey.startsWith(blobKeys),
    close: async () => {
      await Promise.all(upstreams.map((upstream) => upstream.close()));
    },
  };
}

/**
 * Tries each upstream in order. The first that has the artifact (200, 304 to a revalidation,
 * or 206 to a resumed download) answers; a 404 moves on; so do an outage, a refusal or a 429,
 * which win over a 404 at the end (the artifact may be on the upstream that failed, so a stale
 * copy may be served). A resumed blob may come from another registry than its first bytes: the
 * digest checks the whole.
 */
async function fetchFromUpstreams(
  upstreams: readonly RegistryUpstream[],
  ref: ArtifactRef,
  validators: Validators | undefined,
  signal: AbortSignal,
  logger: Logger,
  resume: ResumeRequest | undefined,
): Promise<UpstreamResponse> {
  let notFound: UpstreamResponse | undefined;
  let refused: UpstreamResponse | undefined;
  let failure: VaultError | undefined;
  for (const upstream of upstreams) {
    let response: UpstreamResponse;
    try {
      response = await fetchFrom(upstream, ref, validators, signal, resume);
    } catch (error) {
      if (signal.aborted || !isVaultError(error) || !["upstream_failed", "upstream_timeout", "rate_limited"].includes(error.kind)) throw error;
      if (upstreams.length > 1) logger.warn({ registry: upstream.url, path: ref.upstreamPath, reason: error.message }, "registry failed; trying the next one");
      failure = error;
      continue;
    }
    if (response.status === 200 || response.status === 304 || (resume !== undefined && response.status === 206)) {
      notFound?.body.destroy();
      refused?.body.destroy();
      return response;
    }
    if (response.status === 404 || response.status === 410) {
      notFound?.body.destroy();
      notFound = response;
    } else {
      if (upstreams.length > 1) logger.warn({ registry: upstream.url, path: ref.upstreamPath, status: response.status }, "registry refused; trying the next one");
      refused?.body.destroy();
      refused = response;
    }
  }
  if (refused !== undefined) {
    notFound?.body.destroy();
    return refused;
  }
  if (failure !== undefined) {
    notFound?.body.destroy();
    throw failure;
  }
  if (notFound === undefined) throw new VaultError("internal", "no upstream registry configured");
  return notFound;
}

async function fetchFrom(upstream: RegistryUpstream, ref: ArtifactRef, validators: Validators | undefined, signal: AbortSignal, resume: ResumeRequest | undefined): Promise<UpstreamResponse> {
  const parsed = parseRegistryPath(ref.upstreamPath);
  const rest = ref.upstreamPath.slice(parsed.name.length + 1);
  const headers = fillRequestHeaders(ref);
  const isTag = parsed.kind === "manifest" && parsed.digest === undefined;
  if (isTag && validators?.etag !== undefined) {
    // A HEAD first: Docker Hub does not count it as a pull; download only if the tag moved.
    const head = await upstream.request({ method: "HEAD", name: parsed.name, rest, headers, signal });
    head.body.destroy();
    const digest = head.headers[DIGEST_HEADER];
    if (head.status !== 200) return head;
    if (digest !== undefined && `"${digest}"` === validators.etag) return { status: 304, headers: head.headers, url: head.url, body: Readable.from([]) };
    if (digest !== undefined) return withDigestEtag(await upstream.request({ method: "GET", name: parsed.name, rest, headers, signal }));
  }
  const response = await upstream.request({ method: "GET", name: parsed.name, rest, headers: fillRequestHeaders(ref, validators, resume), signal });
  return isTag ? withDigestEtag(response) : response;
}

/** A tag's validator is its digest, whatever ETag the registry sends (some send none). */
function withDigestEtag(response: UpstreamResponse): UpstreamResponse {
  const digest = response.headers[DIGEST_HEADER];
  if (response.status !== 200 || digest === undefined) return response;
  return { ...response, headers: { ...response.headers, etag: `"${digest}"` } };
}

/** The media types an `Accept` names, lowercase, without parameters. */
function acceptedTypes(accept: string): Set<string> {
  return new Set(accept.split(",").map((part) => (part.split(";")[0] ?? "").trim().toLowerCase()).filter((type) => type !== ""));
}

/** A short name for a set of accepted media types (order and parameters do not matter). */
function acceptVariant(accept: string): string {
  return createHash("sha256").update([...acceptedTypes(accept)].sort().join(",")).digest("hex").slice(0, 16);
}
