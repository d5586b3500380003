/**
 * Pinned Python requirements → the vault's PyPI backend: each project's simple page
 * (`{prefix}simple/<normalised name>/`, asked for with pip's own `Accept`, so the page pip reads
 * later is the one cached) → every file of the pinned version on it: all wheels (every Python
 * version and platform) and the sdist, each with its PEP 658 `.metadata` file when the page
 * offers one (pip reads it before the wheel). With `--hash` options on the line, only the files
 * with one of those hashes. The links on a vault page are the vault's own (`../../packages/…`,
 * verified against their digest when fetched); a link elsewhere is refused.
 */
import { SAXParser, type StartTag } from "parse5-sax-parser";
import { isVaultUrl, vaultUrlFor } from "./vault-urls.js";
import { normaliseProjectName } from "../../upstreams/pypi/project-name.js";
import { isDistributionOf } from "./python-versions.js";
import type { PinnedRequirement } from "./requirements-file.js";
import type { VaultDocument } from "./vault-requests.js";
import type { WarmContext, WarmSource } from "./warm-run.js";

/** What pip ≥ 22.2 sends: the vault answers PEP 691 JSON and caches it as pip will ask for it. */
export const PIP_ACCEPT = "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html; q=0.1, text/html; q=0.01";

export interface ProjectFile {
  readonly filename: string;
  /** Absolute, without a fragment. */
  readonly url: URL;
  /** Algorithm → lower-case hex. */
  readonly hashes: Readonly<Record<string, string>>;
  /** The page offers the file's PEP 658 metadata at `<url>.metadata`. */
  readonly hasMetadata: boolean;
}

export function pypiSource(requirements: readonly PinnedRequirement[], prefix: string, base: URL): WarmSource {
  return {
    run: async (context) => {
      const byProject = new Map<string, PinnedRequirement[]>();
      for (const requirement of requirements) {
        const project = normaliseProjectName(requirement.name);
        byProject.set(project, [...(byProject.get(project) ?? []), requirement]);
      }
      await Promise.all([...byProject].map(([project, pinned]) => warmProject(context, base, prefix, project, pinned)));
    },
  };
}

async function warmProject(context: WarmContext, base: URL, prefix: string, project: string, pinned: readonly PinnedRequirement[]): Promise<void> {
  const page = await context.document(vaultUrlFor(base, `${prefix}simple/${encodeURIComponent(project)}/`), `pypi: the index page of ${project}`, {
    headers: { accept: PIP_ACCEPT },
  });
  if (page === undefined) return;
  let files: ProjectFile[];
  try {
    files = await projectFiles(page);
  } catch (error) {
    context.failed(`pypi: the index page of ${project}`, (error as Error).message);
    return;
  }
  for (const requirement of pinned) {
    let matching = files.filter((file) => isDistributionOf(file.filename, project, requirement.version, requirement.exact));
    if (matching.length === 0) {
      context.failed(`pypi: ${requirement.text}`, `the index lists no files of version ${requirement.version}`);
      continue;
    }
    if (requirement.hashes.length > 0) {
      matching = matching.filter((file) => requirement.hashes.some((hash) => Object.entries(file.hashes).some(([algorithm, hex]) => `${algorithm}:${hex}` === hash)));
      if (matching.length === 0) {
        context.failed(`pypi: ${requirement.text}`, "no file of this version has one of the hashes the requirements file lists");
        continue;
      }
    }
    for (const file of matching) {
      if (!isVaultUrl(base, file.url)) {
        context.failed(`pypi: ${file.filename}`, `the index page links outside the vault (${file.url.origin})`);
        continue;
      }
      context.artifact(file.url, `pypi: ${file.filename}`);
      if (file.hasMetadata) {
        const metadata = new URL(file.url);
        metadata.pathname = `${metadata.pathname}.metadata`;
        context.artifact(metadata, `pypi: ${file.filename}.metadata`);
      }
    }
  }
}

/** The files a project page lists, in PEP 691 JSON or PEP 503 HTML (whichever the index sent). */
export async function projectFiles(page: VaultDocument): Promise<ProjectFile[]> {
  const text = page.body.toString("utf8");
  return page.contentType.includes("json") ? jsonFiles(text, page.url) : htmlFiles(text, page.url);
}

function jsonFiles(text: string, pageUrl: URL): ProjectFile[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new Error(`the page is not JSON: ${(error as Error).message}`);
  }
  const list = isRecord(parsed) ? parsed["files"] : undefined;
  if (!Array.isArray(list)) throw new Error("the JSON page has no files list");
  const files: ProjectFile[] = [];
  for (const entry of list) {
    if (!isRecord(entry) || typeof entry["filename"] !== "string" || typeof entry["url"] !== "string") continue;
    const url = linkUrl(entry["url"], pageUrl);
    if (url === undefined) continue;
    const hashes: Record<string, string> = {};
    if (isRecord(entry["hashes"])) for (const [name, value] of Object.entries(entry["hashes"])) if (typeof value === "string") hashes[name.toLowerCase()] = value.toLowerCase();
    const metadata = entry["core-metadata"] ?? entry["dist-info-metadata"];
    files.push({ filename: entry["filename"], url, hashes, hasMetadata: metadata !== undefined && metadata !== false && metadata !== null });
  }
  return files;
}

async function htmlFiles(html: string, pageUrl: URL): Promise<ProjectFile[]> {
  const files: ProjectFile[] = [];
  const parser = new SAXParser();
  parser.on("startTag", (tag: StartTag) => {
    if (tag.tagName !== "a") return;
    const attribute = (name: string): string | undefined => tag.attrs.find((attr) => attr.name === name)?.value;
    const href = attribute("href");
    const url = href === undefined ? undefined : linkUrl(href, pageUrl);
    if (href === undefined || url === undefined) return;
    const fragment = /^#?([A-Za-z0-9_]+)=([0-9A-Fa-f]+)$/.exec(new URL(href, pageUrl).hash);
    const metadata = attribute("data-core-metadata") ?? attribute("data-dist-info-metadata");
    let filename = url.pathname.slice(url.pathname.lastIndexOf("/") + 1);
    try {
      filename = decodeURIComponent(filename);
    } catch {
      // kept as it is
    }
    files.push({
      filename,
      url,
      hashes: fragment === null ? {} : { [(fragment[1] ?? "").toLowerCase()]: (fragment[2] ?? "").toLowerCase() },
      hasMetadata: metadata !== undefined && metadata.toLowerCase() !== "false",
    });
  });
  parser.resume();
  await new Promise<void>((resolve, reject) => {
    parser.once("error", reject);
    parser.end(html, () => resolve());
  });
  return files;
}

function linkUrl(href: string, pageUrl: URL): URL | undefined {
  try {
    const url = new URL(href.trim(), pageUrl);
    url.hash = "";
    return url;
  } catch {
    return undefined;
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
