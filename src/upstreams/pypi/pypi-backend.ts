import type { Logger } from "pino";
import type { ArtifactRef, Freshness } from "../../core/cache/artifact-ref.js";
import { VaultError } from "../../core/errors.js";
import type { Backend, BackendContext, ProxyRequest, Resolution } from "../backend.js";
import { createUpstreamClient } from "../http-client.js";
import type { UpstreamResponse } from "../upstream-client.js";
import { normaliseUpstreamPath } from "../upstream-path.js";
import { cacheKeyFor, decodePathSegment, fillRequestHeaders, readUpstreamBody, rewrittenAnswer, withTrailingSlash } from "../upstream-request.js";
import { parseFileLink } from "./file-links.js";
import type { PypiBackendConfig } from "./pypi-config.js";
import { isValidProjectName, normaliseProjectName } from "./project-name.js";
import { negotiateSimpleFormat, upstreamAccept, type SimpleFormat } from "./simple-format.js";
import { rewriteProjectHtml, rewriteProjectJson, rewriteProjectListHtml, type RewriteResult, type SimpleUpstream } from "./simple-page-rewrite.js";

/**
 * The `pypi` backend: a PEP 503/691 simple index in front of PyPI or a private index.
 *
 *     {prefix}simple/                 the project list      (mutable, per format)
 *     {prefix}simple/<project>/       a project's files     (mutable, per format, links rewritten)
 *     {prefix}packages/<file link>    wheels, sdists, .metadata (immutable, verified; see file-links.ts)
 *
 * Pages are fetched in the format the client negotiated, rewritten (simple-page-rewrite.ts) and
 * cached rewritten, with the upstream's validators kept for revalidation after the TTL. A client's
 * own `Cache-Control` (pip sends `max-age=0`) does not bypass the vault's TTL: one upstream
 * request per page per TTL however many clients ask is the point of the cache.
 */

/** Which upstream a ref is fetched from (`ArtifactRef.upstream`). */
type PypiUpstream = "project-list" | "project-page" | "index-file" | "package-file";

/** Index pages are read whole to be rewritten; beyond this the upstream is refused. */
const MAX_PAGE_BYTES = 256 * 1024 * 1024;

export async function createPypiBackend(name: string, config: PypiBackendConfig, context: BackendContext): Promise<Backend> {
  const indexBase = new URL(withTrailingSlash(config.index_url));
  const packagesBase = new URL(withTrailingSlash(config.packages_url));
  const upstream: SimpleUpstream = { indexBase, packagesBase };
  const common = { timeoutSeconds: config.timeout, retries: config.retries };
  // Pages and the index host's own files: one client bound to the index's origin.
  const indexClient = createUpstreamClient({ ...common, baseUrl: indexBase.origin, username: config.username, password: config.password });
  // Credentials go to packages_url only when it is on the index's host: PyPI's own credentials
  // (or a private index's) are not for a CDN.
  const sameHost = packagesBase.origin === indexBase.origin;
  const packagesClient = createUpstreamClient({
    ...common,
    baseUrl: packagesBase.href,
    ...(sameHost ? { username: config.username, password: config.password } : {}),
  });
  const pageFreshness: Freshness = { kind: "mutable", ttlMs: config.ttl ?? context.metadataTtlMs };
  /** The index's path below its origin, e.g. `simple/` or `root/pypi/+simple/`. */
  const indexPath = indexBase.pathname.slice(1);

  const pageRef = (project: string | undefined, format: SimpleFormat): ArtifactRef => ({
    backend: name,
    cacheKey: cacheKeyFor(name, `simple/${project === undefined ? "" : `${project}/`}index.${format}`),
    upstreamPath: normaliseUpstreamPath(`${indexPath}${project === undefined ? "" : `${project}/`}`),
    upstream: (project === undefined ? "project-list" : "project-page") satisfies PypiUpstream,
    freshness: pageFreshness,
    upstreamHeaders: { accept: upstreamAccept(format) },
    responseHeaders: { vary: "Accept" },
    browsable: true,
  });

  const resolvePage = (request: ProxyRequest, rest: string): Resolution => {
    const format = negotiateSimpleFormat(request.headers["accept"]);
    if (format === undefined) {
      throw new VaultError("not_acceptable", "the simple API answers text/html, application/vnd.pypi.simple.v1+html or application/vnd.pypi.simple.v1+json");
    }
    if (rest === "") return pageRef(undefined, format);
    const slash = rest.indexOf("/");
    const raw = slash === -1 ? rest : rest.slice(0, slash);
    const after = slash === -1 ? undefined : rest.slice(slash + 1);
    const project = decodePathSegment(raw);
    if (!isValidProjectName(project)) throw new VaultError("not_found", `not a valid project name: ${project}`);
    const normalised = normaliseProjectName(project);
    // pip normalises names itself; other clients get PyPI's redirect to the canonical URL.
    if (after === undefined) return { redirect: `${encodeURIComponent(normalised)}/`, status: 301 };
    if (after !== "") throw new VaultError("not_found", "nothing is served below a project page; files are under packages/");
    if (normalised !== raw) return { redirect: `../${encodeURIComponent(normalised)}/`, status: 301 };
    return pageRef(normalised, format);
  };

  const resolveFile = (rest: string): ArtifactRef => {
    const link = parseFileLink(rest);
    const upstreamPath = normaliseUpstreamPath(link.path);
    if (upstreamPath === "" || upstreamPath.endsWith("/")) throw new VaultError("not_found", "ask for a file below packages/");
    const isMetadata = upstreamPath.endsWith(".metadata");
    const digest = isMetadata ? link.metadataDigest : link.fileDigest;
    const fileName = upstreamPath.slice(upstreamPath.lastIndexOf("/") + 1);
    return {
      backend: name,
      // Verified files are stored by digest (one copy, whatever URL named it); unverified ones
      // apart, so an unchecked download can never be served where a verified one was asked for.
      cacheKey: cacheKeyFor(name, digest === undefined ? `packages/unverified/${link.source}/${upstreamPath}` : `packages/${digest.algorithm}/${digest.hex}/${fileName}`),
      upstreamPath,
      upstream: (link.source === "index" ? "index-file" : "package-file") satisfies PypiUpstream,
      freshness: { kind: "immutable" },
      digest,
    };
  };

  return {
    type: "pypi",
    name,
    prefix: config.prefix,
    resolve(request: ProxyRequest): Resolution {
      const path = request.path;
      if (path === "simple") return { redirect: "simple/", status: 301 };
      if (path.startsWith("simple/")) return resolvePage(request, path.slice("simple/".length));
      if (path.startsWith("packages/")) return resolveFile(path.slice("packages/".length));
      throw new VaultError("not_found", "the pypi backend serves simple/ (the index) and packages/ (files)");
    },
    fetch: async (ref, validators, signal, resume) => {
      const client = ref.upstream === "package-file" ? packagesClient : indexClient;
      // Pages come back rewritten (never resumed: see rewrittenAnswer); files as the upstream sent them.
      const response = await client.request({ method: "GET", path: ref.upstreamPath, signal, headers: fillRequestHeaders(ref, validators, resume) });
      if ((ref.upstream !== "project-list" && ref.upstream !== "project-page") || response.status !== 200) return response;
      return rewritePage(response, upstream, ref, context.logger);
    },
    // pip, uv and poetry follow a file's redirect to another host; pages are never redirected.
    clientsFollowRedirects: (ref) => ref.upstream === "index-file" || ref.upstream === "package-file",
    close: async () => {
      await Promise.all([indexClient.close(), packagesClient.close()]);
    },
  };
}

/** Reads an index page whole, rewrites its links, and hands the cache the rewritten page. */
async function rewritePage(response: UpstreamResponse, upstream: SimpleUpstream, ref: ArtifactRef, logger: Logger): Promise<UpstreamResponse> {
  // An aborted download errors the body itself (the upstream client ties it to the signal).
  const text = (await readUpstreamBody(response.body, MAX_PAGE_BYTES, "the upstream index page")).toString("utf8");
  const contentType = response.headers["content-type"] ?? "text/html";
  const isJson = /json/i.test(contentType);
  let result: RewriteResult;
  if (ref.upstream === "project-list") {
    // The JSON project list has names, no URLs: nothing to rewrite.
    result = isJson ? { text, dropped: [] } : await rewriteProjectListHtml(text, response.url);
  } else {
    result = isJson ? rewriteProjectJson(upstream, text, response.url) : await rewriteProjectHtml(upstream, text, response.url);
  }
  if (result.dropped.length > 0) {
    logger.warn(
      { key: ref.cacheKey, dropped: result.dropped.length, example: result.dropped[0] },
      "index page links to a host that is neither index_url's nor packages_url's; those files were left out (set packages_url to that host to proxy them)",
    );
  }
  return rewrittenAnswer(response, result.text);
}
