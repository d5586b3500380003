/**
 * A static PyPI-style simple index on disk, as a real upstream for the PyPI backend's tests:
 * PEP 503 HTML and PEP 691 JSON pages side by side (`simple/<project>/index.html|json`), files
 * under `packages/<project>/`, each wheel's METADATA as `<wheel>.metadata` (PEP 658), sha256
 * hashes, `requires-python` and yanked versions. nginx serves it and picks the page by `Accept`
 * (see `pypiNginxConfig`), as PyPI does.
 */
import { createHash } from "node:crypto";
import { copyFile, mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { basename, join } from "node:path";
import { wheelMetadata } from "./python.js";

export interface IndexFile {
  /** The project's name as published (e.g. `Vault_Probe.Gamma`). */
  readonly project: string;
  readonly filename: string;
  readonly sha256: string;
  readonly size: number;
  readonly requiresPython: string | undefined;
  readonly yanked: string | undefined;
  readonly metadataSha256: string | undefined;
}

export function normalise(name: string): string {
  return name.replace(/[-_.]+/g, "-").toLowerCase();
}

const sha256 = (bytes: Uint8Array): string => createHash("sha256").update(bytes).digest("hex");

export class StaticPypiIndex {
  readonly files: IndexFile[] = [];

  constructor(
    readonly root: string,
    readonly python: string,
  ) {}

  /** Copies a built distribution into `packages/<project>/` (with its `.metadata` for a wheel). */
  async publish(project: string, distPath: string, options: { requiresPython?: string; yanked?: string } = {}): Promise<IndexFile> {
    const filename = basename(distPath);
    const dir = join(this.root, "packages", normalise(project));
    await mkdir(dir, { recursive: true });
    await copyFile(distPath, join(dir, filename));
    const bytes = await readFile(distPath);
    let metadataSha256: string | undefined;
    if (filename.endsWith(".whl")) {
      const metadata = await wheelMetadata(this.python, distPath);
      await writeFile(join(dir, `${filename}.metadata`), metadata);
      metadataSha256 = sha256(metadata);
    }
    const file: IndexFile = { project, filename, sha256: sha256(bytes), size: bytes.length, requiresPython: options.requiresPython, yanked: options.yanked, metadataSha256 };
    this.files.push(file);
    return file;
  }

  /** Where a published file lives below the root. */
  pathOf(file: IndexFile): string {
    return join(this.root, "packages", normalise(file.project), file.filename);
  }

  /**
   * (Re)writes every page. HTML links are relative (`../../packages/...`); JSON URLs are absolute
   * on `absoluteBase` when given, so both link styles reach the vault's rewriter.
   */
  async writePages(absoluteBase?: string): Promise<void> {
    await rm(join(this.root, "simple"), { recursive: true, force: true });
    const projects = new Map<string, IndexFile[]>();
    for (const file of this.files) {
      const key = normalise(file.project);
      projects.set(key, [...(projects.get(key) ?? []), file]);
    }
    await mkdir(join(this.root, "simple"), { recursive: true });
    const names = [...projects.entries()].map(([key, files]) => ({ key, display: files[0]?.project ?? key }));
    await writeFile(
      join(this.root, "simple", "index.html"),
      `<!DOCTYPE html>\n<html>\n  <head>\n    <meta name="pypi:repository-version" content="1.1">\n    <title>Simple index</title>\n  </head>\n  <body>\n${names
        .map(({ key, display }) => `    <a href="/simple/${key}/">${escapeHtml(display)}</a>\n`)
        .join("")}  </body>\n</html>\n`,
    );
    await writeFile(join(this.root, "simple", "index.json"), JSON.stringify({ meta: { "api-version": "1.1" }, projects: names.map(({ display }) => ({ name: display })) }));
    for (const [key, files] of projects) {
      const dir = join(this.root, "simple", key);
      await mkdir(dir, { recursive: true });
      const relative = (file: IndexFile): string => `../../packages/${key}/${file.filename}`;
      const anchors = files.map((file) => {
        const attributes = [`href="${relative(file)}#sha256=${file.sha256}"`];
        if (file.requiresPython !== undefined) attributes.push(`data-requires-python="${escapeHtml(file.requiresPython)}"`);
        if (file.metadataSha256 !== undefined) {
          attributes.push(`data-dist-info-metadata="sha256=${file.metadataSha256}"`, `data-core-metadata="sha256=${file.metadataSha256}"`);
        }
        if (file.yanked !== undefined) attributes.push(`data-yanked="${escapeHtml(file.yanked)}"`);
        return `    <a ${attributes.join(" ")}>${escapeHtml(file.filename)}</a><br />\n`;
      });
      const title = escapeHtml(files[0]?.project ?? key);
      await writeFile(
        join(dir, "index.html"),
        `<!DOCTYPE html>\n<html>\n  <head>\n    <meta name="pypi:repository-version" content="1.1">\n    <title>Links for ${title}</title>\n  </head>\n  <body>\n    <h1>Links for ${title}</h1>\n${anchors.join("")}  </body>\n</html>\n<!--SERIAL 1-->\n`,
      );
      const json = {
        meta: { "api-version": "1.1" },
        name: key,
        versions: [...new Set(files.map((file) => versionOf(file.filename)))],
        files: files.map((file) => ({
          filename: file.filename,
          url: absoluteBase === undefined ? relative(file) : `${absoluteBase}/packages/${key}/${file.filename}`,
          hashes: { sha256: file.sha256 },
          "requires-python": file.requiresPython ?? null,
          // PEP 714's key only: the legacy JSON `dist-info-metadata` makes pip 22.3-23.1 crash
          // ("unhashable type: 'dict'", pypa/pip#12042), which is why PyPI stopped sending it.
          "core-metadata": file.metadataSha256 === undefined ? false : { sha256: file.metadataSha256 },
          yanked: file.yanked ?? false,
          size: file.size,
        })),
      };
      await writeFile(join(dir, "index.json"), JSON.stringify(json, null, 1));
    }
  }
}

/**
 * nginx directives (for `startNginx`'s `httpExtra` and `serverExtra`) that serve the index with
 * `Accept` negotiation: JSON to clients that ask for `application/vnd.pypi.simple.v1+json`, HTML
 * otherwise, with `Vary: Accept`. `/private/` is the same index behind basic auth.
 */
export function pypiNginxConfig(root: string, htpasswdFile: string): { httpExtra: string; serverExtra: string } {
  const simpleTypes = "types { text/html html; application/vnd.pypi.simple.v1+json json; }";
  return {
    httpExtra: `  map $http_accept $simple_index {
    default index.html;
    "~application/vnd\\.pypi\\.simple\\.v1\\+json" index.json;
  }`,
    serverExtra: `    location /simple/ { index $simple_index; ${simpleTypes} add_header Vary Accept; }
    location /private/ {
      auth_basic "private index";
      auth_basic_user_file ${htpasswdFile};
      alias ${root}/;
      index $simple_index;
      ${simpleTypes}
      add_header Vary Accept;
    }`,
  };
}

function versionOf(filename: string): string {
  return filename.replace(/\.(whl|tar\.gz|zip)$/, "").split("-")[1] ?? "";
}

function escapeHtml(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}
