/**
 * The vault's HTTP API as the page uses it. The token lives in this module's memory only — never
 * in a cookie (which other sites could make the browser send) nor in storage (which outlives the
 * tab): reloading the page signs the user out. Every request carries it as a Bearer header.
 *
 * URLs are relative to the page (`/ui/` → the vault's root), so the UI keeps working behind a
 * proxy that serves the vault under a path.
 */

let token: string | undefined;
/** Called when the vault stops accepting the token (expired, removed): the app signs out. */
let onRejected: (message: string) => void = () => undefined;

export function setToken(value: string | undefined): void {
  token = value;
}

export function onTokenRejected(listener: (message: string) => void): void {
  onRejected = listener;
}

/** The vault's root, from the page's address (`http://vault:8080/ui/` → `http://vault:8080/`). */
export function vaultUrl(path: string): string {
  return new URL(`../${path.replace(/^\//, "")}`, document.baseURI).href;
}

export function authHeaders(): Record<string, string> {
  return token === undefined ? {} : { authorization: `Bearer ${token}` };
}

/** A refused request: its status and the vault's message, phrased for people. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = "ApiError";
  }

  /** The token lacks a scope the action needs. */
  get forbidden(): boolean {
    return this.status === 403;
  }
}

/** The error envelope's message (`{"error": {"message"}}`), else the status line. */
async function messageOf(response: Response): Promise<string> {
  try {
    const body = (await response.json()) as { error?: { message?: unknown } };
    if (typeof body.error?.message === "string") return body.error.message;
  } catch {
    // not JSON
  }
  return `${response.status} ${response.statusText}`.trim();
}

/** Turns a refused answer into an `ApiError` with a message a person can act on. */
export async function failure(response: Response, action: string): Promise<ApiError> {
  const message = await messageOf(response);
  if (response.status === 401) return new ApiError(401, "The vault no longer accepts this token (unknown or expired): sign in again.");
  if (response.status === 403) return new ApiError(403, `Not allowed to ${action}: ${message.replace(/^this token/, "your token")}.`);
  if (response.status === 429) {
    const wait = response.headers.get("retry-after");
    return new ApiError(429, `Too many requests: try again${wait === null ? " later" : ` in ${wait} s`}.`);
  }
  return new ApiError(response.status, `Could not ${action}: ${message}`);
}

/** A request with the token; a 401 signs the user out. `action` says what it was for ("list objects"). */
export async function request(path: string, action: string, init: RequestInit = {}): Promise<Response> {
  let response: Response;
  try {
    response = await fetch(vaultUrl(path), { ...init, cache: "no-store", headers: { ...authHeaders(), ...(init.headers as Record<string, string> | undefined) } });
  } catch {
    throw new ApiError(0, `Could not ${action}: the vault did not answer.`);
  }
  if (response.ok) return response;
  const error = await failure(response, action);
  if (response.status === 401 && token !== undefined) onRejected(error.message);
  throw error;
}

export async function getJson<T>(path: string, action: string): Promise<T> {
  return (await (await request(path, action)).json()) as T;
}

/** Checks a token without keeping it: what it may do, or why it was refused. */
export async function probeToken(candidate: string): Promise<{ admin: boolean; read: boolean }> {
  const headers = { authorization: `Bearer ${candidate}` };
  const ask = async (path: string): Promise<Response> => {
    try {
      return await fetch(vaultUrl(path), { headers, cache: "no-store" });
    } catch {
      throw new ApiError(0, "The vault did not answer: is it running?");
    }
  };
  const [stats, objects] = await Promise.all([ask("admin/cache/stats"), ask("objects?limit=1")]);
  for (const response of [stats, objects]) {
    if (response.status === 401) throw new ApiError(401, "That token was not accepted: it is unknown or has expired.");
    if (response.status === 429) throw await failure(response, "sign in");
  }
  return { admin: stats.ok, read: objects.ok };
}

/** `team/a b.txt` → `team/a%20b.txt`: each segment encoded, the slashes kept. */
export function objectPath(key: string): string {
  return `objects/${key.split("/").map(encodeURIComponent).join("/")}`;
}

// The admin API's shapes -------------------------------------------------------------------------

export interface CacheStats {
  hits: number;
  misses: number;
  stale: number;
  revalidated: number;
  hit_ratio: number | null;
  bytes_from_cache: number;
  bytes_from_upstream: number;
  total_bytes: number;
  entry_count: number;
  max_size: number | null;
  evictions: number;
  index_ready: boolean;
  fills_in_progress: number;
  backends: Record<string, { entries: number; bytes: number }>;
}

export interface Fill {
  key: string;
  backend: string;
  bytes: number;
  total: number | null;
  percent: number | null;
  started_at: string;
  waiters?: number;
}

export interface CacheEntry {
  key: string;
  backend: string;
  size: number;
  content_type: string | null;
  cached_at: string;
  validated_at: string;
  freshness: "immutable" | "mutable" | "unknown";
  fresh: boolean | null;
  stale_at?: string;
  last_access?: string | null;
}

export interface Page<T> {
  next_cursor: string | null;
  has_more: boolean;
  items: T[];
}

export interface UpstreamHealth {
  state: "unknown" | "ok" | "failing";
  exchanges: number;
  errors: number;
  errors_by_kind: Record<string, number>;
  last_exchange_at: string | null;
  last_error_at: string | null;
}

export interface ClientSnippet {
  tool: string;
  files: Array<{ path: string; text: string }>;
  notes: string[];
  command: string | null;
  unavailable?: string;
}

export interface BackendInfo {
  name: string;
  type: string;
  prefix: string;
  registry_path?: string;
  upstreams: Array<{ option: string; url: string }>;
  health: UpstreamHealth;
  clients: ClientSnippet[];
}

export interface Backends {
  vault_url: string;
  token_required: boolean;
  backends: BackendInfo[];
}
