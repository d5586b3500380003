import { createHash } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

/**
 * A small Hugging Face hub for tests: the endpoints file downloads use, for a few repos, with
 * the hub's own logic where a static tree cannot have it — branches that move to new commits,
 * HEAD answers with `X-Repo-Commit` / `X-Linked-Etag` / `X-Linked-Size`, LFS files answered
 * with a 302 to a separate "CDN" server, and gated repos that need the bearer token.
 *
 * The CDN refuses (403) any request that carries an `Authorization` header: a download through
 * it proves the token was not forwarded there. Both servers listen on 127.0.0.1, ephemeral
 * ports, and record every request (method, URL, authorization) for assertions.
 */

export interface HubFile {
  readonly content: Buffer;
  readonly lfs: boolean;
}

export interface RecordedRequest {
  readonly method: string;
  readonly url: string;
  readonly authorization: string | undefined;
}

interface Repo {
  readonly kind: "model" | "dataset";
  readonly id: string;
  readonly gated: boolean;
  readonly commits: Map<string, Map<string, HubFile>>;
  readonly branches: Map<string, string>;
}

/** A held CDN download: the first `after` bytes go out, the rest when `release` is called. */
export interface HeldDownload {
  /** Resolves once the first bytes were written (a download is in flight). */
  readonly started: Promise<void>;
  release(): void;
}

export const HUB_TOKEN = "hf_vault_test_secret_0123456789";

export function sha256Hex(content: Buffer): string {
  return createHash("sha256").update(content).digest("hex");
}

/** A git blob id: what the hub gives as a small file's ETag. */
export function gitBlobId(content: Buffer): string {
  return createHash("sha1").update(`blob ${content.length}\0`).update(content).digest("hex");
}

export class FakeHub {
  readonly requests: RecordedRequest[] = [];
  readonly cdnRequests: RecordedRequest[] = [];
  /** LFS objects whose CDN answer is corrupted (same length, other bytes). */
  readonly corrupt = new Set<string>();
  /** Old repo ids (org/name) and their new ones: the hub redirects from one to the other. */
  readonly renamed = new Map<string, string>();
  readonly #repos = new Map<string, Repo>();
  readonly #objects = new Map<string, Buffer>();
  readonly #held = new Map<string, { after: number; gate: Promise<void>; started: () => void }>();
  #hub: Server | undefined;
  #cdn: Server | undefined;
  #commits = 0;

  get url(): string {
    return `http://127.0.0.1:${(this.#hub?.address() as AddressInfo).port}`;
  }

  get cdnUrl(): string {
    return `http://127.0.0.1:${(this.#cdn?.address() as AddressInfo).port}`;
  }

  async start(): Promise<this> {
    this.#hub = await listen((request, response) => this.#serveHub(request, response));
    this.#cdn = await listen((request, response) => this.#serveCdn(request, response));
    return this;
  }

  async stop(): Promise<void> {
    for (const server of [this.#hub, this.#cdn]) {
      if (server === undefined) continue;
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
    this.#hub = undefined;
    this.#cdn = undefined;
  }

  /** Stops the hub only (the CDN too, unless asked not to): an outage. */
  async stopHub(): Promise<void> {
    const server = this.#hub;
    if (server === undefined) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  addRepo(kind: "model" | "dataset", id: string, options: { gated?: boolean } = {}): void {
    this.#repos.set(`${kind}:${id}`, { kind, id, gated: options.gated ?? false, commits: new Map(), branches: new Map() });
  }

  /** Makes a new commit of `files` (on top of the branch's) and moves the branch to it; returns its id. */
  commit(kind: "model" | "dataset", id: string, files: Record<string, HubFile>, branch = "main"): string {
    const repo = this.#repo(kind, id);
    const parent = repo.branches.get(branch);
    const tree = new Map(parent === undefined ? [] : repo.commits.get(parent));
    for (const [path, file] of Object.entries(files)) {
      tree.set(path, file);
      if (file.lfs) this.#objects.set(sha256Hex(file.content), file.content);
    }
    const sha = createHash("sha1").update(`${kind}/${id}@${++this.#commits}`).digest("hex");
    repo.commits.set(sha, tree);
    repo.branches.set(branch, sha);
    return sha;
  }

  /** Holds the CDN's answers for the object `sha256` after `after` bytes until `release()`. */
  hold(sha256: string, after: number): HeldDownload {
    let release!: () => void;
    let started!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const startedPromise = new Promise<void>((resolve) => (started = resolve));
    this.#held.set(sha256, { after, gate, started });
    return {
      started: startedPromise,
      release: () => {
        this.#held.delete(sha256);
        release();
      },
    };
  }

  count(predicate: (request: RecordedRequest) => boolean): number {
    return this.requests.filter(predicate).length;
  }

  #repo(kind: "model" | "dataset", id: string): Repo {
    const repo = this.#repos.get(`${kind}:${id}`);
    if (repo === undefined) throw new Error(`no repo ${kind}:${id}`);
    return repo;
  }

  #serveHub(request: IncomingMessage, response: ServerResponse): void {
    const authorization = request.headers.authorization;
    this.requests.push({ method: request.method ?? "GET", url: request.url ?? "/", authorization });
    const url = new URL(request.url ?? "/", "http://hub");
    const path = url.pathname.split("/").slice(1).map((segment) => decodeURIComponent(segment));
    const api = path[0] === "api";
    const kind = (api ? path[1] === "datasets" : path[0] === "datasets") ? "dataset" : "model";
    const rest = api ? path.slice(2) : kind === "dataset" ? path.slice(1) : path;
    // Repo ids here are always org/name.
    const id = `${rest[0] ?? ""}/${rest[1] ?? ""}`;
    const renamed = this.renamed.get(id);
    if (renamed !== undefined) {
      // As the hub answers for a renamed repo: a relative redirect to its new name.
      response.writeHead(307, { location: url.pathname.replace(`/${id}/`, `/${renamed}/`), "content-length": "0" });
      response.end();
      return;
    }
    const repo = this.#repos.get(`${kind}:${id}`);
    if (repo === undefined) return error(response, 404, "RepoNotFound");
    if (repo.gated && authorization !== `Bearer ${HUB_TOKEN}`) return error(response, 401, "GatedRepo");
    const view = rest.slice(2);
    if (api) {
      if (view.length === 0 || (view[0] === "revision" && view.length === 2)) return this.#info(response, repo, view[1] ?? "main");
      if (view[0] === "tree" && view.length === 2) return this.#tree(response, repo, view[1] ?? "", url);
      return error(response, 404, "NotFound");
    }
    if (view[0] !== "resolve" || view.length < 3) return error(response, 404, "NotFound");
    const commit = this.#commitOf(repo, view[1] ?? "");
    if (commit === undefined) return error(response, 404, "RevisionNotFound");
    const file = repo.commits.get(commit)?.get(view.slice(2).join("/"));
    if (file === undefined) return error(response, 404, "EntryNotFound", { "x-repo-commit": commit });
    if (file.lfs) {
      const sha256 = sha256Hex(file.content);
      response.writeHead(302, {
        location: `${this.cdnUrl}/objects/${sha256}?X-Amz-Signature=signed`,
        "x-repo-commit": commit,
        "x-linked-etag": `"${sha256}"`,
        "x-linked-size": String(file.content.length),
        etag: `"${gitBlobId(Buffer.from(`version https://git-lfs.github.com/spec/v1\noid sha256:${sha256}\n`))}"`,
        "content-length": "0",
      });
      response.end();
      return;
    }
    const headers = { "x-repo-commit": commit, etag: `"${gitBlobId(file.content)}"`, "content-type": "text/plain; charset=utf-8", "accept-ranges": "bytes" };
    sendBytes(request, response, file.content, headers);
  }

  #info(response: ServerResponse, repo: Repo, revision: string): void {
    const commit = this.#commitOf(repo, revision === "HEAD" ? "main" : revision);
    if (commit === undefined) return error(response, 404, "RevisionNotFound");
    const files = [...(repo.commits.get(commit)?.keys() ?? [])];
    const body = JSON.stringify({ _id: `id-${repo.id}`, id: repo.id, sha: commit, private: false, gated: repo.gated ? "auto" : false, downloads: 0, likes: 0, tags: [], siblings: files.map((rfilename) => ({ rfilename })) });
    response.writeHead(200, { "content-type": "application/json; charset=utf-8", "content-length": Buffer.byteLength(body) });
    response.end(body);
  }

  /** The listing of a revision's files, one per page: `Link: <absolute hub URL?cursor=N>; rel="next"` as the hub paginates. */
  #tree(response: ServerResponse, repo: Repo, revision: string, url: URL): void {
    const commit = this.#commitOf(repo, revision);
    if (commit === undefined) return error(response, 404, "RevisionNotFound");
    const files = [...(repo.commits.get(commit) ?? new Map<string, HubFile>())];
    const index = Number(url.searchParams.get("cursor") ?? "0");
    const page = files.slice(index, index + 1).map(([path, file]) => ({ type: "file", path, size: file.content.length, oid: gitBlobId(file.content), ...(file.lfs ? { lfs: { oid: sha256Hex(file.content), size: file.content.length } } : {}) }));
    const body = JSON.stringify(page);
    const next = new URL(url.pathname, this.url);
    next.search = url.search;
    next.searchParams.set("cursor", String(index + 1));
    response.writeHead(200, {
      "content-type": "application/json; charset=utf-8",
      "content-length": Buffer.byteLength(body),
      ...(index + 1 < files.length ? { link: `<${next.href}>; rel="next"` } : {}),
    });
    response.end(body);
  }

  #commitOf(repo: Repo, revision: string): string | undefined {
    return repo.branches.get(revision) ?? (repo.commits.has(revision) ? revision : undefined);
  }

  #serveCdn(request: IncomingMessage, response: ServerResponse): void {
    const authorization = request.headers.authorization;
    this.cdnRequests.push({ method: request.method ?? "GET", url: request.url ?? "/", authorization });
    if (authorization !== undefined) return error(response, 403, "AuthorizationNotAllowed");
    const sha256 = /^\/objects\/([0-9a-f]{64})$/.exec(new URL(request.url ?? "/", "http://cdn").pathname)?.[1] ?? "";
    const object = this.#objects.get(sha256);
    if (object === undefined) return error(response, 404, "NoSuchKey");
    const content = this.corrupt.has(sha256) ? Buffer.from(object.map((byte) => byte ^ 0xff)) : object;
    sendBytes(request, response, content, { "content-type": "application/octet-stream", etag: `"${sha256.slice(0, 32)}"`, "accept-ranges": "bytes" }, this.#held.get(sha256));
  }
}

function listen(handler: (request: IncomingMessage, response: ServerResponse) => void): Promise<Server> {
  const server = createServer(handler);
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve(server));
  });
}

function error(response: ServerResponse, status: number, code: string, headers: Record<string, string> = {}): void {
  const body = JSON.stringify({ error: code });
  response.writeHead(status, { "content-type": "application/json", "x-error-code": code, "content-length": Buffer.byteLength(body), ...headers });
  response.end(body);
}

/** 200 or (for `Range: bytes=a-` / `bytes=a-b`) 206; HEAD gets the headers only; `hold` pauses mid-body. */
function sendBytes(
  request: IncomingMessage,
  response: ServerResponse,
  content: Buffer,
  headers: Record<string, string>,
  hold?: { after: number; gate: Promise<void>; started: () => void },
): void {
  const range = /^bytes=(\d+)-(\d*)$/.exec(request.headers.range ?? "");
  let body = content;
  if (range !== null) {
    const start = Number(range[1]);
    const end = range[2] === "" ? content.length - 1 : Math.min(Number(range[2]), content.length - 1);
    body = content.subarray(start, end + 1);
    response.writeHead(206, { ...headers, "content-range": `bytes ${start}-${end}/${content.length}`, "content-length": body.length });
  } else {
    response.writeHead(200, { ...headers, "content-length": body.length });
  }
  if (request.method === "HEAD") {
    response.end();
    return;
  }
  if (hold === undefined || range !== null) {
    response.end(body);
    return;
  }
  response.write(body.subarray(0, hold.after), () => hold.started());
  void hold.gate.then(() => response.end(body.subarray(hold.after)));
}
