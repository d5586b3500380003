import { VaultError } from "../../core/errors.js";

/**
 * The hub's URL space as the vault serves it (below the backend's prefix), read from a raw,
 * still percent-encoded path. Everything is checked here, before any upstream request: repo ids
 * are `name` or `org/name`, revisions are branch, tag or commit names (a `/` in one, as in
 * `refs/pr/1` or `refs/convert/parquet`, comes encoded as `%2F` in its one segment, as the hub's
 * clients send it), file paths have no empty, `.` or `..` segments, no NUL, no backslash, and no
 * slash hidden as `%2f`.
 *
 *     {repo}/resolve/{rev}/{path}                 a model's file
 *     datasets/{repo}/resolve/{rev}/{path}        a dataset's file
 *     api/models/{repo}                           model info (JSON)
 *     api/models/{repo}/revision/{rev}            model info at a revision
 *     api/models/{repo}/tree/{rev}[/{path}]       file listing
 *     api/datasets/...                            the same for datasets
 */

export type RepoKind = "model" | "dataset";

export interface RepoId {
  readonly kind: RepoKind;
  /** `name` or `org/name`. */
  readonly name: string;
}

export type HubPath =
  | { readonly kind: "file"; readonly repo: RepoId; readonly revision: string; readonly file: string }
  | { readonly kind: "api"; readonly repo: RepoId; readonly view: "info" | "revision" | "tree"; readonly revision?: string | undefined; readonly file?: string | undefined };

const REPO_PART = /^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,95})$/;
/** Parts of letters, digits, `.`, `_` and `-`, joined by `/` (`main`, `v1.0`, `refs/pr/1`). */
const REVISION = /^[A-Za-z0-9][A-Za-z0-9._-]*(?:\/[A-Za-z0-9][A-Za-z0-9._-]*)*$/;
const MAX_REVISION = 255;
const COMMIT = /^[0-9a-f]{40}$/;
const MAX_FILE_PATH = 1000;
const MAX_QUERY = 2000;
const QUERY_NAME = /^[A-Za-z0-9_[\]]{1,64}$/;

/** A revision that names a commit (and so never changes). */
export function isCommit(revision: string): boolean {
  return COMMIT.test(revision);
}

export function parseHubPath(rawPath: string): HubPath {
  const segments = rawPath.split("/").map(decodeSegment);
  if (segments[0] === "api") return parseApiPath(segments.slice(1));
  const dataset = segments[0] === "datasets";
  const rest = dataset ? segments.slice(1) : segments;
  const at = rest[1] === "resolve" ? 1 : rest[2] === "resolve" ? 2 : -1;
  if (at === -1) throw new VaultError("not_found", "not a hub path: expected {repo}/resolve/{revision}/{file}, datasets/{repo}/resolve/... or api/...");
  const repo = repoId(dataset ? "dataset" : "model", rest.slice(0, at));
  const revision = checkRevision(rest[at + 1]);
  const file = checkFilePath(rest.slice(at + 2));
  return { kind: "file", repo, revision, file };
}

function parseApiPath(segments: string[]): HubPath {
  const kind = segments[0] === "models" ? "model" : segments[0] === "datasets" ? "dataset" : undefined;
  if (kind === undefined) throw new VaultError("not_found", "the vault answers api/models/... and api/datasets/... only");
  const rest = segments.slice(1);
  // `org/name/...` unless the second segment is a view followed by a revision (`gpt2/revision/main`).
  const single = rest.length === 1 || ((rest[1] === "revision" || rest[1] === "tree") && rest.length >= 3);
  const repo = repoId(kind, rest.slice(0, single ? 1 : 2));
  const view = rest.slice(single ? 1 : 2);
  if (view.length === 0) return { kind: "api", repo, view: "info" };
  if (view[0] === "revision" && view.length === 2) return { kind: "api", repo, view: "revision", revision: checkRevision(view[1]) };
  if (view[0] === "tree" && view.length >= 2) {
    const file = view.length > 2 && !(view.length === 3 && view[2] === "") ? checkFilePath(view.slice(2)) : undefined;
    return { kind: "api", repo, view: "tree", revision: checkRevision(view[1]), file };
  }
  throw new VaultError("not_found", "the vault answers a repository's info, its info at a revision, and its tree");
}

/**
 * The query of an API request as name/value pairs (repeated names kept: `expand=a&expand=b`),
 * checked; and its canonical text, for the cache key.
 */
export function parseApiQuery(query: string): { pairs: [string, string][]; canonical: string } {
  if (query.length > MAX_QUERY) throw new VaultError("bad_request", `query longer than ${MAX_QUERY} characters`);
  const pairs: [string, string][] = [];
  for (const [name, value] of new URLSearchParams(query)) {
    if (!QUERY_NAME.test(name) || value.includes("\0")) throw new VaultError("bad_request", "invalid query parameter");
    pairs.push([name, value]);
  }
  const canonical = new URLSearchParams([...pairs].sort(([a, x], [b, y]) => (a === b ? (x < y ? -1 : x > y ? 1 : 0) : a < b ? -1 : 1))).toString();
  return { pairs, canonical };
}

/** `datasets/org/name` or `org/name`: the repo's path on the hub. */
export function repoPath(repo: RepoId): string {
  return `${repo.kind === "dataset" ? "datasets/" : ""}${repo.name}`;
}

/** A checked file path, percent-encoded per segment for an upstream URL. */
export function encodeFilePath(file: string): string {
  return file.split("/").map(encodeURIComponent).join("/");
}

/** The hub's `resolve` URL path of a file at a revision (relative to the endpoint). */
export function resolvePath(repo: RepoId, revision: string, file: string): string {
  return `${repoPath(repo)}/resolve/${encodeURIComponent(revision)}/${encodeFilePath(file)}`;
}

function repoId(kind: RepoKind, parts: readonly string[]): RepoId {
  if (parts.length === 0 || parts.some((part) => !REPO_PART.test(part) || part.includes(".."))) {
    throw new VaultError("bad_request", "invalid repository id: give name or org/name (letters, digits, '.', '_', '-')");
  }
  return { kind, name: parts.join("/") };
}

function checkRevision(revision: string | undefined): string {
  if (revision === undefined || revision.length > MAX_REVISION || !REVISION.test(revision) || revision.includes("..")) {
    throw new VaultError("bad_request", "invalid revision: a branch, tag or commit name (letters, digits, '.', '_', '-'; a '/' encoded as %2F)");
  }
  return revision;
}

function checkFilePath(segments: readonly string[]): string {
  if (segments.length === 0) throw new VaultError("bad_request", "missing file path");
  for (const segment of segments) {
    if (segment === "" || segment === "." || segment === "..") throw new VaultError("bad_request", "invalid file path: empty, '.' or '..' segment");
    // A decoded segment holding `/` was a `%2f`; control characters and `\` are no file's name.
    if (hasForbiddenCharacter(segment)) throw new VaultError("bad_request", "invalid file path: control character, backslash or encoded slash");
  }
  const file = segments.join("/");
  if (file.length > MAX_FILE_PATH) throw new VaultError("bad_request", `file path longer than ${MAX_FILE_PATH} characters`);
  return file;
}

/** A control character, a backslash, or a slash. */
function hasForbiddenCharacter(segment: string): boolean {
  for (let index = 0; index < segment.length; index++) {
    const code = segment.charCodeAt(index);
    if (code < 0x20 || code === 0x7f || code === 0x5c || code === 0x2f) return true;
  }
  return false;
}

function decodeSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw new VaultError("bad_request", "invalid percent-encoding in the path");
  }
}
