import { request as httpRequest, Agent } from "node:http";

export interface RawResponse {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: Buffer;
  /** The body parsed as JSON, for the API's JSON answers. */
  json<T = unknown>(): T;
  header(name: string): string | undefined;
}

export interface RawRequestOptions {
  readonly method?: string;
  readonly headers?: Record<string, string | number>;
  readonly body?: Buffer | string | AsyncIterable<Uint8Array>;
  readonly agent?: Agent;
}

/**
 * An HTTP request whose path is sent exactly as given. `fetch` and WHATWG URLs normalise
 * `..`, `%2e%2e` and backslashes before sending, which would hide what a hostile client can do.
 */
export async function rawRequest(baseUrl: string, path: string, options: RawRequestOptions = {}): Promise<RawResponse> {
  const base = new URL(baseUrl);
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { host: base.hostname, port: base.port, method: options.method ?? "GET", path, headers: options.headers, agent: options.agent ?? false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (chunk: Buffer) => chunks.push(chunk));
        res.on("error", reject);
        res.on("end", () => {
          const body = Buffer.concat(chunks);
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body,
            json: <T>() => JSON.parse(body.toString("utf8")) as T,
            header: (name: string) => {
              const value = res.headers[name.toLowerCase()];
              return Array.isArray(value) ? value.join(", ") : value;
            },
          });
        });
      },
    );
    req.on("error", reject);
    const body = options.body;
    if (body === undefined) {
      req.end();
    } else if (typeof body === "string" || Buffer.isBuffer(body)) {
      req.end(body);
    } else {
      void (async () => {
        try {
          for await (const chunk of body) {
            if (!req.write(chunk)) await new Promise((r) => req.once("drain", r));
          }
          req.end();
        } catch (error) {
          req.destroy(error as Error);
        }
      })();
    }
  });
}

/** Percent-encodes each `/`-separated segment, as the source design's Python client does. */
export function encodeKeyPath(key: string): string {
  return key
    .split("/")
    .map((segment) => encodeURIComponent(segment).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`))
    .join("/");
}

/** Percent-encodes the whole key, `/` included. */
export function encodeKeyWhole(key: string): string {
  return encodeKeyPath(key).replaceAll("/", "%2F");
}
