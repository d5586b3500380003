import { Readable } from "node:stream";
import { Agent, EnvHttpProxyAgent, type Dispatcher } from "undici";
import { VaultError } from "../core/errors.js";
import { VERSION } from "../version.js";
import { encodeUpstreamQuery, type UpstreamClient, type UpstreamClientOptions, type UpstreamRequest, type UpstreamResponse } from "./upstream-client.js";
import { abortableSleep as sleep } from "../core/abortable-sleep.js";
import { isRetryableConnectionError, isRetryableStatus, toUpstreamError } from "./upstream-errors.js";
import { joinUpstreamUrl, normaliseUpstreamPath, parseBaseUrl, type UpstreamPathRules } from "./upstream-path.js";

/**
 * The single outbound HTTP edge: `UpstreamClient` over undici.
 *
 * - One dispatcher per client, i.e. per configured upstream: keep-alive pools of at most
 *   `CONNECTIONS_PER_ORIGIN` connections for the upstream and for each origin it redirects to.
 * - `HTTP_PROXY`/`HTTPS_PROXY`/`NO_PROXY` (lower-case forms first, as curl and undici read them)
 *   are read once, at construction. Plain-http targets go through the proxy in absolute form
 *   (`GET http://host/path`), https targets through a CONNECT tunnel. As in undici, an
 *   `HTTP_PROXY` without an `HTTPS_PROXY` is used for https too.
 * - `timeoutSeconds` bounds connecting, waiting for the response headers, and each wait between
 *   two body chunks (an idle timeout: a long download that keeps moving never times out; a
 *   download paused because our reader is slow does not time out either). 0 disables them.
 * - Retries happen only before a response starts: for connection failures (refused, reset,
 *   closed before the headers, DNS, connect timeout) and for 502/503/504 answers, `retries`
 *   attempts in all, with exponential backoff from 200 ms and ±20% jitter. The last 5xx is
 *   returned as a response; the last connection failure rejects with `upstream_failed` (or
 *   `upstream_timeout`). A headers timeout is not retried. Nothing is retried once a body began.
 * - Redirects (301/302/303/307/308 with a `Location`) are followed here, not by an undici
 *   interceptor, up to `maxRedirects` (0: not followed, the 3xx is returned; a POST's redirects
 *   are never followed, and returned as they came); one more is
 *   `upstream_failed`. Targets must be http or https. Credentials — the configured basic auth
 *   and the caller's `Authorization` and `Cookie` — are sent to a hop only if its origin is the
 *   base URL's origin (scheme, host and port), so a CDN or object store behind a redirect never
 *   sees them. Other caller headers (`Accept`, `Range`, `If-None-Match`, ...) follow redirects.
 * - Only the caller's `request.headers` are sent, plus `user-agent: artifact-vault/VERSION` if the
 *   caller sets none and the basic auth. Hop-by-hop and framing headers (`host`, `connection`,
 *   `content-length`, `transfer-encoding`, `proxy-authorization`, ...) are dropped: they are not
 *   the caller's to set. A caller's `Authorization` wins over the configured basic auth (an OCI
 *   backend sends its bearer token that way).
 * - The response body is a Readable that ends only when the upstream finished it. If the upstream
 *   stalls or breaks off, it errors with a VaultError (`upstream_timeout` / `upstream_failed`);
 *   if the caller's signal aborts, with the signal's reason. Destroying it without an error just
 *   closes it (and the connection). Attach an `error` listener (pipeline does) as soon as the
 *   response resolves.
 * - An aborted `request.signal` rejects with the signal's reason, not with a VaultError.
 */

export const DEFAULT_RETRIES = 3;
export const DEFAULT_MAX_REDIRECTS = 5;
export const CONNECTIONS_PER_ORIGIN = 32;
export const RETRY_BASE_DELAY_MS = 200;
/** A redirect's or retried 5xx's body is read and dropped up to this size (keeping the connection); beyond, the connection is closed. */
const DISCARD_LIMIT_BYTES = 64 * 1024;
const BODY_HIGH_WATER_MARK = 64 * 1024;

/** What the client takes from its surroundings; tests replace it. */
export interface UpstreamClientRuntime {
  /** Where the proxy variables are read, once, at construction; default `process.env`. */
  readonly env?: Readonly<Record<string, string | undefined>> | undefined;
  /** Waits between attempts; default a timer that the signal cancels. */
  readonly sleep?: ((ms: number, signal?: AbortSignal) => Promise<void>) | undefined;
  /** In [0, 1), for jitter; default `Math.random`. */
  readonly random?: (() => number) | undefined;
}

export function createUpstreamClient(options: UpstreamClientOptions, runtime: UpstreamClientRuntime = {}): UpstreamClient {
  return new HttpUpstreamClient(options, runtime);
}

/** The wait after the `failedAttempts`-th attempt: 200 ms, 400 ms, 800 ms, ... each ±20% (`random` 0.5 gives the nominal). */
export function retryDelayMs(failedAttempts: number, random: number): number {
  return Math.round(RETRY_BASE_DELAY_MS * 2 ** (failedAttempts - 1) * (0.8 + 0.4 * random));
}

const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);

/** Never taken from the caller: hop-by-hop, framing, and the proxy's own credentials. */
const DROPPED_HEADERS = new Set([
  "host",
  "connection",
  "keep-alive",
  "proxy-connection",
  "proxy-authorization",
  "transfer-encoding",
  "te",
  "trailer",
  "upgrade",
  "expect",
  "content-length",
]);

/** Sent only to the base URL's origin. */
const CREDENTIAL_HEADERS = ["authorization", "cookie"] as const;

type Method = UpstreamRequest["method"];

class HttpUpstreamClient implements UpstreamClient {
  readonly #base: URL;
  readonly #basicAuth: string | undefined;
  readonly #dispatcher: Dispatcher;
  readonly #timeoutMs: number;
  readonly #attempts: number;
  readonly #maxRedirects: number;
  readonly #pathRules: UpstreamPathRules;
  readonly #sleep: (ms: number, signal?: AbortSignal) => Promise<void>;
  readonly #random: () => number;

  constructor(options: UpstreamClientOptions, runtime: UpstreamClientRuntime) {
    const base = parseBaseUrl(options.baseUrl);
    if (base.search !== "" || base.hash !== "") {
      throw new VaultError("internal", `upstream base URL must not have a query or fragment: ${base.origin}${base.pathname}`);
    }
    // Credentials in the URL are a default for username/password, never part of a request URL.
    const username = options.username ?? (base.username === "" ? undefined : decodeURIComponent(base.username));
    const password = options.password ?? (base.password === "" ? undefined : decodeURIComponent(base.password));
    base.username = "";
    base.password = "";
    this.#base = base;
    this.#basicAuth =
      (username ?? "") === "" && (password ?? "") === ""
        ? undefined
        : `Basic ${Buffer.from(`${username ?? ""}:${password ?? ""}`, "utf8").toString("base64")}`;

    if (!Number.isFinite(options.timeoutSeconds) || options.timeoutSeconds < 0) {
      throw new VaultError("internal", `upstream timeout must be a number of seconds ≥ 0: ${options.timeoutSeconds}`);
    }
    this.#timeoutMs = Math.round(options.timeoutSeconds * 1000);
    this.#attempts = Math.max(1, Math.floor(options.retries ?? DEFAULT_RETRIES));
    this.#maxRedirects = Math.max(0, Math.floor(options.maxRedirects ?? DEFAULT_MAX_REDIRECTS));
    this.#pathRules = options.pathRules ?? {};
    this.#sleep = runtime.sleep ?? sleep;
    this.#random = runtime.random ?? Math.random;
    this.#dispatcher = createDispatcher(this.#timeoutMs, runtime.env ?? process.env);
  }

  async request(request: UpstreamRequest): Promise<UpstreamResponse> {
    request.signal?.throwIfAborted();
    // Re-checked here even though callers normalise: a caller's bug must not open a way out.
    let url = joinUpstreamUrl(this.#base.href, normaliseUpstreamPath(request.path, this.#pathRules));
    if (request.query !== undefined) url.search = encodeUpstreamQuery(request.query);
    const callerHeaders = sanitiseHeaders(request.headers);
    for (let redirects = 0; ; redirects++) {
      const response = await this.#sendWithRetries(request.method, url, this.#headersFor(url, callerHeaders), request.body, request.signal);
      const follows = this.#maxRedirects > 0 && request.method !== "POST";
      const location = REDIRECT_STATUSES.has(response.status) && follows ? response.headers.location : undefined;
      if (location === undefined) return response;
      discard(response.body);
      if (redirects >= this.#maxRedirects) {
        throw new VaultError("upstream_failed", `upstream ${describeUrl(url)}: more than ${this.#maxRedirects} redirects`);
      }
      url = redirectTarget(location, url);
    }
  }

  async close(): Promise<void> {
    await this.#dispatcher.close();
  }

  #headersFor(url: URL, callerHeaders: Record<string, string>): Record<string, string> {
    const headers: Record<string, string> = { "user-agent": `artifact-vault/${VERSION}` };
    const sameOrigin = url.origin === this.#base.origin;
    if (sameOrigin && this.#basicAuth !== undefined) headers.authorization = this.#basicAuth;
    Object.assign(headers, callerHeaders);
    if (!sameOrigin) for (const name of CREDENTIAL_HEADERS) delete headers[name];
    return headers;
  }

  async #sendWithRetries(method: Method, url: URL, headers: Record<string, string>, body: Buffer | undefined, signal: AbortSignal | undefined): Promise<UpstreamResponse> {
    for (let attempt = 1; ; attempt++) {
      let response: UpstreamResponse;
      try {
        response = await dispatchOnce(this.#dispatcher, { method, url, headers, body, timeoutMs: this.#timeoutMs, signal });
      } catch (error) {
        signal?.throwIfAborted();
        if (attempt >= this.#attempts || !isRetryableConnectionError(error)) throw toUpstreamError(error, url, "request");
        await this.#sleep(retryDelayMs(attempt, this.#random()), signal);
        continue;
      }
      if (attempt >= this.#attempts || !isRetryableStatus(response.status)) return response;
      discard(response.body);
      await this.#sleep(retryDelayMs(attempt, this.#random()), signal);
    }
  }
}

function createDispatcher(timeoutMs: number, env: Readonly<Record<string, string | undefined>>): Dispatcher {
  const agentOptions = {
    connections: CONNECTIONS_PER_ORIGIN,
    connect: { timeout: timeoutMs },
    headersTimeout: timeoutMs,
    bodyTimeout: timeoutMs,
  };
  const httpProxy = nonEmpty(env.http_proxy) ?? nonEmpty(env.HTTP_PROXY);
  const httpsProxy = nonEmpty(env.https_proxy) ?? nonEmpty(env.HTTPS_PROXY);
  if (httpProxy === undefined && httpsProxy === undefined) return new Agent(agentOptions);
  return new EnvHttpProxyAgent({
    ...agentOptions,
    // Passed explicitly ("" = none) so undici never falls back to reading process.env later.
    httpProxy: httpProxy ?? "",
    httpsProxy: httpsProxy ?? "",
    noProxy: nonEmpty(env.no_proxy) ?? nonEmpty(env.NO_PROXY) ?? "",
    // Plain http goes to the proxy in absolute form, as curl does; many proxies refuse CONNECT to port 80.
    proxyTunnel: false,
    // The connect timeout for the connection to the proxy and for TLS inside a tunnel.
    proxyTls: { timeout: timeoutMs },
    requestTls: { timeout: timeoutMs },
  });
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value.trim() === "" ? undefined : value.trim();
}

function sanitiseHeaders(headers: Readonly<Record<string, string>> | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers ?? {})) {
    const lower = name.toLowerCase();
    if (DROPPED_HEADERS.has(lower) || lower === "__proto__") continue;
    out[lower] = value;
  }
  return out;
}

function redirectTarget(location: string, current: URL): URL {
  let next: URL;
  try {
    next = new URL(location, current);
  } catch (error) {
    throw new VaultError("upstream_failed", `upstream ${describeUrl(current)} redirected to an invalid URL`, { cause: error });
  }
  if (next.protocol !== "http:" && next.protocol !== "https:") {
    throw new VaultError("upstream_failed", `upstream ${describeUrl(current)} redirected to a ${next.protocol} URL`);
  }
  next.username = "";
  next.password = "";
  next.hash = "";
  return next;
}

/** For messages: never the query, which may be a signed URL's secret. */
function describeUrl(url: URL): string {
  return `${url.origin}${url.pathname}`;
}

/** Drops an unused body; a small one is read so its connection goes back to the pool. */
function discard(body: Readable): void {
  let seen = 0;
  body.on("error", () => undefined);
  body.on("data", (chunk: Buffer) => {
    seen += chunk.length;
    if (seen > DISCARD_LIMIT_BYTES) body.destroy();
  });
}


interface Attempt {
  readonly method: Method;
  readonly url: URL;
  readonly headers: Record<string, string>;
  readonly body: Buffer | undefined;
  readonly timeoutMs: number;
  readonly signal: AbortSignal | undefined;
}

/** One request, no retries, no redirects: resolves when the response headers arrive. */
function dispatchOnce(dispatcher: Dispatcher, attempt: Attempt): Promise<UpstreamResponse> {
  return new Promise((resolve, reject) => {
    const handler = new ResponseHandler(attempt, resolve, reject);
    dispatcher.dispatch(
      {
        origin: attempt.url.origin,
        path: `${attempt.url.pathname}${attempt.url.search}`,
        method: attempt.method,
        headers: attempt.headers,
        ...(attempt.body === undefined ? {} : { body: attempt.body }),
        headersTimeout: attempt.timeoutMs,
        bodyTimeout: attempt.timeoutMs,
      },
      handler,
    );
  });
}

/**
 * undici's handler for one request: settles the promise at the response headers, then feeds the
 * body with backpressure (pausing the connection while the reader is full).
 */
class ResponseHandler implements Dispatcher.DispatchHandler {
  readonly #attempt: Attempt;
  readonly #resolve: (response: UpstreamResponse) => void;
  readonly #reject: (error: unknown) => void;
  #controller: Dispatcher.DispatchController | undefined;
  #body: UpstreamBody | undefined;
  #settled = false;
  #removeAbortListener: (() => void) | undefined;

  constructor(attempt: Attempt, resolve: (response: UpstreamResponse) => void, reject: (error: unknown) => void) {
    this.#attempt = attempt;
    this.#resolve = resolve;
    this.#reject = reject;
    const signal = attempt.signal;
    if (signal !== undefined) {
      const onAbort = (): void => this.#abort(signal.reason);
      signal.addEventListener("abort", onAbort, { once: true });
      this.#removeAbortListener = () => signal.removeEventListener("abort", onAbort);
    }
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.#controller = controller;
    // Aborted while queued for a connection: the promise already rejected; stop the request too.
    if (this.#settled) controller.abort(abortReason(this.#attempt.signal));
  }

  onResponseStart(controller: Dispatcher.DispatchController, statusCode: number, headers: Record<string, string | string[] | undefined>): void {
    if (statusCode < 200) return; // 1xx informational
    if (this.#settled) {
      controller.abort(abortReason(this.#attempt.signal));
      return;
    }
    this.#settled = true;
    const body = new UpstreamBody(controller, this.#attempt.url);
    this.#body = body;
    body.once("close", () => this.#cleanUp());
    this.#resolve({ status: statusCode, headers: flattenHeaders(headers), url: this.#attempt.url.href, body });
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    const body = this.#body;
    if (body === undefined || body.destroyed) return;
    if (!body.push(chunk)) controller.pause();
  }

  onResponseEnd(): void {
    this.#body?.finish();
  }

  onResponseError(_controller: Dispatcher.DispatchController | undefined, error: Error): void {
    if (this.#body !== undefined) {
      this.#body.fail(error);
      return;
    }
    this.#fail(error);
  }

  #abort(reason: unknown): void {
    if (this.#body !== undefined) {
      // The body's _destroy aborts the request.
      if (!this.#body.destroyed) this.#body.destroy(reason as Error);
      return;
    }
    this.#controller?.abort(reason as Error);
    this.#fail(reason);
  }

  #fail(error: unknown): void {
    this.#cleanUp();
    if (this.#settled) return;
    this.#settled = true;
    this.#reject(error);
  }

  #cleanUp(): void {
    this.#removeAbortListener?.();
    this.#removeAbortListener = undefined;
  }
}

function abortReason(signal: AbortSignal | undefined): Error {
  return signal?.reason instanceof Error ? signal.reason : new Error("upstream request aborted");
}

/**
 * A response body fed by `ResponseHandler`. Reading resumes the paused connection; destroying
 * it before the end aborts the request (its connection is closed, not reused).
 */
class UpstreamBody extends Readable {
  readonly #controller: Dispatcher.DispatchController;
  readonly #url: URL;
  /** The upstream is done with this body: it ended, failed, or was aborted by us. */
  #finished = false;

  constructor(controller: Dispatcher.DispatchController, url: URL) {
    super({ highWaterMark: BODY_HIGH_WATER_MARK });
    this.#controller = controller;
    this.#url = url;
  }

  override _read(): void {
    this.#controller.resume();
  }

  finish(): void {
    this.#finished = true;
    if (!this.destroyed) this.push(null);
  }

  fail(error: Error): void {
    this.#finished = true;
    const failure = toUpstreamError(error, this.#url, "body");
    // Deferred a turn so that a caller who attaches its error listener right after the response
    // resolves (same tick as a failure that came with the headers) still gets to do so.
    setImmediate(() => {
      if (!this.destroyed) this.destroy(failure);
    });
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    if (!this.#finished) {
      this.#finished = true;
      this.#controller.abort(error ?? new Error("upstream response body closed before its end"));
    }
    callback(error);
  }
}

function flattenHeaders(headers: Record<string, string | string[] | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || name === "__proto__") continue;
    out[name.toLowerCase()] = Array.isArray(value) ? value.join(", ") : value;
  }
  return out;
}
