import type { Token } from "parse5";
import { SAXParser, type EndTag, type StartTag } from "parse5-sax-parser";
import { VaultError } from "../../core/errors.js";
import { normaliseUpstreamPath } from "../upstream-path.js";
import { decodeOrKeep } from "../upstream-request.js";
import { digestFromHashes, formatFileLink, hashesFromFragment, type FileSource } from "./file-links.js";
import { normaliseProjectName } from "./project-name.js";

/**
 * Rewrites simple-API pages so that every link a client follows comes back to the vault, and
 * nothing else changes: HTML is edited in place at the parsed attribute offsets (hash fragments,
 * `data-requires-python`, `data-yanked`, metadata attributes, the `api-version` meta, whitespace
 * and entities all stay byte for byte); JSON keeps every field but `url`.
 *
 * Links are written relative to the page (`../../packages/...` from `{prefix}simple/<project>/`),
 * so a rewritten page is the same whatever host name or path prefix clients reach the vault by,
 * and can be cached as is.
 *
 * A file link to a host that is neither `packages_url`'s nor the index's is dropped (with a
 * warning): the vault never fetches from a host it was not configured for, and a client must
 * never be sent around the vault.
 */
export interface SimpleUpstream {
  /** The index base URL, ending in `/`. */
  readonly indexBase: URL;
  /** `packages_url`, ending in `/`. */
  readonly packagesBase: URL;
}

export interface RewriteResult {
  readonly text: string;
  /** File URLs that were dropped because they point to a host the vault does not proxy. */
  readonly dropped: readonly string[];
}

/** From a project page (`{prefix}simple/<project>/`) to the backend's root (`{prefix}`). */
const PROJECT_PAGE_TO_ROOT = "../../";

/** The vault's path (below `{prefix}packages/`) for a file URL found in a page, or undefined if it is not ours to proxy. */
export function vaultFilePath(upstream: SimpleUpstream, url: URL, hashes: Readonly<Record<string, unknown>>, metadataHashes: Readonly<Record<string, unknown>>): string | undefined {
  let source: FileSource;
  let path: string;
  const { packagesBase, indexBase } = upstream;
  if (url.protocol !== "http:" && url.protocol !== "https:") return undefined;
  if (url.origin === packagesBase.origin && url.pathname.startsWith(packagesBase.pathname)) {
    source = "packages";
    path = url.pathname.slice(packagesBase.pathname.length);
  } else if (url.origin === indexBase.origin) {
    source = "index";
    path = url.pathname.slice(1);
  } else {
    return undefined;
  }
  try {
    path = normaliseUpstreamPath(path);
  } catch {
    return undefined;
  }
  if (path === "" || path.endsWith("/")) return undefined;
  return formatFileLink({ source, path, fileDigest: digestFromHashes(hashes), metadataDigest: digestFromHashes(metadataHashes) });
}

interface Edit {
  readonly start: number;
  readonly end: number;
  readonly text: string;
}

/** A project page in PEP 503 HTML: every anchor is a file. */
export async function rewriteProjectHtml(upstream: SimpleUpstream, html: string, pageUrl: string): Promise<RewriteResult> {
  const dropped: string[] = [];
  return {
    text: await editAnchors(html, pageUrl, (tag, href, base) => {
      const url = safeUrl(href, base);
      const metadataAttribute = attribute(tag, "data-core-metadata") ?? attribute(tag, "data-dist-info-metadata");
      const target = url === undefined ? undefined : vaultFilePath(upstream, url, hashesFromFragment(url.hash.slice(1)), hashesFromFragment(metadataAttribute ?? ""));
      if (url === undefined || target === undefined) {
        dropped.push(href);
        return undefined;
      }
      return `${PROJECT_PAGE_TO_ROOT}packages/${target}${url.hash}`;
    }),
    dropped,
  };
}

/** The project list in PEP 503 HTML: every anchor is a project, linked as `<normalised name>/`. */
export async function rewriteProjectListHtml(html: string, pageUrl: string): Promise<RewriteResult> {
  const dropped: string[] = [];
  return {
    text: await editAnchors(html, pageUrl, (_tag, href, base) => {
      const url = safeUrl(href, base);
      const name = url?.pathname.split("/").filter((segment) => segment !== "").at(-1);
      if (url === undefined || name === undefined) {
        dropped.push(href);
        return undefined;
      }
      return `${encodeURIComponent(normaliseProjectName(decodeOrKeep(name)))}/`;
    }),
    dropped,
  };
}

/** A project page in PEP 691 JSON: each file's `url` is rewritten; files we cannot proxy are left out. */
export function rewriteProjectJson(upstream: SimpleUpstream, json: string, pageUrl: string): RewriteResult {
  let page: unknown;
  try {
    page = JSON.parse(json);
  } catch (error) {
    throw new VaultError("upstream_failed", `the upstream index sent invalid JSON: ${(error as Error).message}`);
  }
  if (!isRecord(page) || !Array.isArray(page["files"])) {
    throw new VaultError("upstream_failed", "the upstream index sent a JSON page without a files list");
  }
  const dropped: string[] = [];
  page["files"] = page["files"].filter((file: unknown) => {
    if (!isRecord(file) || typeof file["url"] !== "string") return false;
    const url = safeUrl(file["url"], pageUrl);
    const metadata = file["core-metadata"] ?? file["dist-info-metadata"];
    const hashes = isRecord(file["hashes"]) ? file["hashes"] : {};
    const target = url === undefined ? undefined : vaultFilePath(upstream, url, hashes, isRecord(metadata) ? metadata : {});
    if (url === undefined || target === undefined) {
      dropped.push(file["url"]);
      return false;
    }
    file["url"] = `${PROJECT_PAGE_TO_ROOT}packages/${target}${url.hash}`;
    return true;
  });
  return { text: JSON.stringify(page), dropped };
}

/**
 * Pages are parsed in slices of this many characters, with the event loop free between them:
 * PyPI's project list is over 30 MB, seconds of parsing that must not stall other requests.
 */
const PARSE_SLICE = 64 * 1024;
const EDITS_PER_YIELD = 20_000;

/**
 * Calls `rewrite` for each `<a href>` and applies its answer: a new href, or undefined to drop
 * the whole anchor. A `<base href>` is honoured for resolving links, then removed: the rewritten
 * links are relative to the vault's page.
 */
async function editAnchors(html: string, pageUrl: string, rewrite: (tag: StartTag, href: string, base: string) => string | undefined): Promise<string> {
  const edits: Edit[] = [];
  let base = pageUrl;
  let dropFrom: number | undefined;
  const parser = new SAXParser({ sourceCodeLocationInfo: true });
  parser.on("startTag", (tag: StartTag) => {
    // With sourceCodeLocationInfo, start tags carry their attributes' offsets too.
    const location: Token.LocationWithAttributes | null | undefined = tag.sourceCodeLocation;
    if (location === undefined || location === null) return;
    if (tag.tagName === "base") {
      const href = attribute(tag, "href");
      if (href !== undefined) base = safeUrl(href, pageUrl)?.href ?? base;
      edits.push({ start: location.startOffset, end: location.endOffset, text: "" });
      return;
    }
    if (tag.tagName !== "a") return;
    const href = attribute(tag, "href");
    const hrefLocation = location.attrs?.["href"];
    if (href === undefined || hrefLocation === undefined) return;
    const replacement = rewrite(tag, href, base);
    if (replacement === undefined) {
      if (tag.selfClosing) edits.push({ start: location.startOffset, end: location.endOffset, text: "" });
      else dropFrom = location.startOffset;
      return;
    }
    edits.push({ start: hrefLocation.startOffset, end: hrefLocation.endOffset, text: `href="${escapeAttribute(replacement)}"` });
  });
  parser.on("endTag", (tag: EndTag) => {
    if (tag.tagName !== "a" || dropFrom === undefined) return;
    const end = tag.sourceCodeLocation?.endOffset;
    if (end !== undefined) edits.push({ start: dropFrom, end, text: "" });
    dropFrom = undefined;
  });
  // The parser is a pass-through stream: let what it passes on flow away.
  parser.resume();
  for (let at = 0; at < html.length; at += PARSE_SLICE) {
    await new Promise<void>((resolve, reject) => parser.write(html.slice(at, at + PARSE_SLICE), (error) => (error ? reject(error) : resolve())));
    await new Promise((resolve) => setImmediate(resolve));
  }
  await new Promise<void>((resolve) => parser.end(resolve));
  // An anchor left open at the end of the document: drop to the end.
  if (dropFrom !== undefined) edits.push({ start: dropFrom, end: html.length, text: "" });

  // Joined in batches, with the event loop free between them: one join of a million parts
  // would hold it for a noticeable time.
  const batches: string[] = [];
  let parts: string[] = [];
  let at = 0;
  for (const edit of edits.sort((a, b) => a.start - b.start)) {
    if (edit.start < at) continue;
    parts.push(html.slice(at, edit.start), edit.text);
    at = edit.end;
    if (parts.length >= 2 * EDITS_PER_YIELD) {
      batches.push(parts.join(""));
      parts = [];
      await new Promise((resolve) => setImmediate(resolve));
    }
  }
  parts.push(html.slice(at));
  batches.push(parts.join(""));
  return batches.join("");
}

function attribute(tag: StartTag, name: string): string | undefined {
  return tag.attrs.find((attr) => attr.name === name)?.value;
}

function safeUrl(href: string, base: string): URL | undefined {
  try {
    return new URL(href.trim(), base);
  } catch {
    return undefined;
  }
}

function escapeAttribute(value: string): string {
  return value.replace(/&/g, "&amp;").replace(/"/g, "&quot;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
