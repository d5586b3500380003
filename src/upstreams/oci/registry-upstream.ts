import type { Logger } from "pino";
import { VaultError, isVaultError } from "../../core/errors.js";
import { createUpstreamClient } from "../http-client.js";
import type { UpstreamClient, UpstreamResponse } from "../upstream-client.js";
import { readUpstreamBody } from "../upstream-request.js";
import { parseChallenge, type Challenge } from "./bearer-challenge.js";
import type { RegistryConfig } from "./oci-config.js";

/** Hosts that are Docker Hub, where one-component names live under `library/`. */
const DOCKER_HUB_HOSTS = new Set(["registry-1.docker.io", "index.docker.io", "docker.io", "registry.hub.docker.com"]);
/** A token is renewed this long before it expires. */
const TOKEN_MARGIN_MS = 10_000;
/** What the Docker token spec says to assume when a token service gives no lifetime. */
const DEFAULT_TOKEN_SECONDS = 60;
const MAX_TOKEN_RESPONSE_BYTES = 1024 * 1024;
/** Tokens kept (one per repository scope); past this, expired ones and then the oldest go. */
const MAX_CACHED_TOKENS = 10_000;

export interface RegistryRequestOptions {
  readonly method: "GET" | "HEAD";
  /** The repository as the vault names it (before Docker Hub's `library/`). */
  readonly name: string;
  /** Below `/v2/<name>/`: `manifests/latest`, `blobs/sha256:...`, `tags/list`. */
  readonly rest: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly signal: AbortSignal;
}

interface CachedToken {
  readonly token: string;
  readonly expiresAt: number;
}

/**
 * One upstream registry, with Docker Hub's token flow: a request goes out with the token cached
 * for its repository (if any); a 401 with a `Bearer` challenge fetches a token for the
 * challenge's scope from its realm — with the configured credentials, if any — and the request
 * is retried once. Tokens are cached per scope until shortly before they expire, and concurrent
 * requests share one token fetch. Realms must be on the registry's host or on `auth_url`'s.
 */
export class RegistryUpstream {
  readonly url: string;
  readonly #client: UpstreamClient;
  readonly #tokenClients = new Map<string, UpstreamClient>();
  readonly #allowedRealmOrigins: ReadonlySet<string>;
  readonly #dockerHub: boolean;
  readonly #tokens = new Map<string, CachedToken>();
  readonly #tokenFetches = new Map<string, Promise<string>>();
  readonly #config: RegistryConfig;
  readonly #options: { timeoutSeconds: number; retries: number };
  readonly #logger: Logger;
  readonly #clock: () => number;

  constructor(config: RegistryConfig, options: { timeoutSeconds: number; retries: number }, logger: Logger, clock: () => number = Date.now) {
    const registry = new URL(config.registry_url);
    this.url = registry.origin;
    this.#config = config;
    this.#options = options;
    this.#logger = logger;
    this.#clock = clock;
    this.#dockerHub = DOCKER_HUB_HOSTS.has(registry.hostname);
    this.#client = createUpstreamClient({ ...options, baseUrl: registry.href, username: config.username, password: config.password });
    this.#allowedRealmOrigins = new Set([registry.origin, ...(config.auth_url === undefined ? [] : [new URL(config.auth_url).origin])]);
  }

  /** The repository's name upstream: Docker Hub's official images live under `library/`. */
  upstreamName(name: string): string {
    return this.#dockerHub && !name.includes("/") ? `library/${name}` : name;
  }

  async request(options: RegistryRequestOptions): Promise<UpstreamResponse> {
    const name = this.upstreamName(options.name);
    const scope = `repository:${name}:pull`;
    const send = (token: string | undefined): Promise<UpstreamResponse> =>
      this.#client.request({
        method: options.method,
        path: `v2/${name}/${options.rest}`,
        signal: options.signal,
        headers: { ...options.headers, ...(token === undefined ? {} : { authorization: `Bearer ${token}` }) },
      });
    const cached = this.#tokens.get(scope);
    const response = await send(cached !== undefined && cached.expiresAt > this.#clock() ? cached.token : undefined);
    if (response.status !== 401) return response;
    const challenge = parseChallenge(response.headers["www-authenticate"]);
    if (challenge?.scheme !== "bearer") return response;
    response.body.destroy();
    this.#tokens.delete(scope);
    const token = await this.#token(challenge, scope, options.signal);
    return send(token);
  }

  async close(): Promise<void> {
    await Promise.all([this.#client.close(), ...[...this.#tokenClients.values()].map((client) => client.close())]);
  }

  /** One token fetch per scope at a time; the result is cached until shortly before it expires. */
  #token(challenge: Challenge, scope: string, signal: AbortSignal): Promise<string> {
    // The registry may word the scope its own way; the token is kept under ours too, so the next
    // request for this repository sends it straight away.
    const key = challenge.params["scope"] ?? scope;
    const running = this.#tokenFetches.get(key);
    if (running !== undefined) return running;
    const fetching = this.#fetchToken(challenge, key, signal)
      .then((cached) => {
        this.#tokens.set(scope, cached);
        return cached.token;
      })
      .finally(() => this.#tokenFetches.delete(key));
    this.#tokenFetches.set(key, fetching);
    return fetching;
  }

  async #fetchToken(challenge: Challenge, scope: string, signal: AbortSignal): Promise<CachedToken> {
    const realm = challenge.params["realm"];
    let realmUrl: URL;
    try {
      realmUrl = new URL(realm ?? "");
    } catch {
      throw new VaultError("upstream_failed", `${this.url} asked for a token without a valid realm`);
    }
    if (!this.#allowedRealmOrigins.has(realmUrl.origin)) {
      throw new VaultError("upstream_failed", `${this.url} sends clients for tokens to ${realmUrl.origin}, which is neither the registry nor its auth_url; set auth_url to use it`);
    }
    const query: Record<string, string> = Object.fromEntries(realmUrl.searchParams);
    if (challenge.params["service"] !== undefined) query["service"] = challenge.params["service"];
    query["scope"] = scope;
    const started = this.#clock();
    let response: UpstreamResponse;
    try {
      response = await this.#tokenClient(realmUrl.origin).request({ method: "GET", path: realmUrl.pathname.slice(1), query, signal, headers: { accept: "application/json" } });
    } catch (error) {
      if (isVaultError(error)) throw new VaultError(error.kind, `token service ${realmUrl.origin}: ${error.message}`, { cause: error });
      throw error;
    }
    const body = await readUpstreamBody(response.body, MAX_TOKEN_RESPONSE_BYTES, `the token response of ${realmUrl.origin}`);
    if (response.status !== 200) {
      throw new VaultError(response.status === 429 ? "rate_limited" : "upstream_failed", `token service ${realmUrl.origin} answered ${response.status} for ${scope}${this.#config.username === undefined ? " (no credentials configured)" : ""}`);
    }
    let parsed: { token?: unknown; access_token?: unknown; expires_in?: unknown };
    try {
      parsed = JSON.parse(body.toString("utf8")) as typeof parsed;
    } catch {
      throw new VaultError("upstream_failed", `token service ${realmUrl.origin} sent invalid JSON`);
    }
    const token = typeof parsed.token === "string" ? parsed.token : typeof parsed.access_token === "string" ? parsed.access_token : undefined;
    if (token === undefined || token === "") throw new VaultError("upstream_failed", `token service ${realmUrl.origin} sent no token`);
    const seconds = typeof parsed.expires_in === "number" && parsed.expires_in > 0 ? parsed.expires_in : DEFAULT_TOKEN_SECONDS;
    const cached = { token, expiresAt: started + seconds * 1000 - TOKEN_MARGIN_MS };
    if (this.#tokens.size >= MAX_CACHED_TOKENS) this.#forgetExpiredTokens();
    this.#tokens.set(scope, cached);
    this.#logger.debug({ registry: this.url, scope, seconds }, "registry token fetched");
    return cached;
  }

  #forgetExpiredTokens(): void {
    const now = this.#clock();
    for (const [scope, cached] of this.#tokens) if (cached.expiresAt <= now) this.#tokens.delete(scope);
    // Still full of live tokens: drop the oldest (Map order is insertion order); they are refetched on demand.
    for (const scope of this.#tokens.keys()) {
      if (this.#tokens.size < MAX_CACHED_TOKENS) break;
      this.#tokens.delete(scope);
    }
  }

  /** Token requests carry the configured credentials as basic auth (never the registry's bearer token). */
  #tokenClient(origin: string): UpstreamClient {
    let client = this.#tokenClients.get(origin);
    if (client === undefined) {
      client = createUpstreamClient({ ...this.#options, baseUrl: origin, username: this.#config.username, password: this.#config.password });
      this.#tokenClients.set(origin, client);
    }
    return client;
  }
}
