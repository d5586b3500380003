/**
 * A tiny recording reverse proxy for tests: every request is forwarded to `target` as it came
 * (path, method, headers — `Host` included, so a registry that builds links from `Host`, as
 * Verdaccio does, links back to the proxy) and recorded with its body and the answer's status and
 * headers. `answer` may answer a request itself instead (an audit endpoint, a failing upstream).
 * It shows exactly what a client sends; it intercepts nothing globally.
 */
import { createServer, request as httpRequest, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from "node:http";
import { once } from "node:events";
import type { AddressInfo, Socket } from "node:net";
import { gunzipSync, inflateSync, brotliDecompressSync } from "node:zlib";

export interface RecordedRequest {
  readonly method: string;
  /** Path and query exactly as sent. */
  readonly url: string;
  readonly headers: IncomingHttpHeaders;
  readonly body: Buffer;
  /** The answer's status and headers (0 and {} if the target could not be reached). */
  status: number;
  responseHeaders: IncomingHttpHeaders;
}

export interface CannedAnswer {
  readonly status: number;
  readonly headers?: Readonly<Record<string, string>>;
  readonly body?: string | Buffer;
}

export interface LoggingProxy {
  /** `http://127.0.0.1:PORT`, no trailing slash. */
  readonly url: string;
  /** Recorded requests so far (all, or those whose path — query ignored — is `path`). */
  requests(path?: string): RecordedRequest[];
  clear(): void;
  close(): Promise<void>;
}

export interface LoggingProxyOptions {
  /** Where requests go: `http://127.0.0.1:PORT` (its path, if any, is not used). */
  readonly target: string;
  /** Answers a request without forwarding it when this returns an answer. */
  readonly answer?: (request: RecordedRequest) => CannedAnswer | undefined;
}

/** The body decoded per its `Content-Encoding` (gzip, deflate, br), as text. */
export function decodedBody(request: Pick<RecordedRequest, "headers" | "body">): string {
  const encoding = String(request.headers["content-encoding"] ?? "").trim().toLowerCase();
  if (encoding === "gzip" || encoding === "x-gzip") return gunzipSync(request.body).toString("utf8");
  if (encoding === "deflate") return inflateSync(request.body).toString("utf8");
  if (encoding === "br") return brotliDecompressSync(request.body).toString("utf8");
  return request.body.toString("utf8");
}

export async function startLoggingProxy(options: LoggingProxyOptions): Promise<LoggingProxy> {
  const target = new URL(options.target);
  const recorded: RecordedRequest[] = [];
  const sockets = new Set<Socket>();
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      const entry: RecordedRequest = { method: req.method ?? "GET", url: req.url ?? "/", headers: req.headers, body: Buffer.concat(chunks), status: 0, responseHeaders: {} };
      recorded.push(entry);
      const canned = options.answer?.(entry);
      if (canned !== undefined) {
        entry.status = canned.status;
        entry.responseHeaders = Object.fromEntries(Object.entries(canned.headers ?? {}).map(([name, value]) => [name.toLowerCase(), value]));
        res.writeHead(canned.status, canned.headers);
        res.end(canned.body ?? "");
        return;
      }
      const upstream = httpRequest(
        { host: target.hostname, port: target.port, method: entry.method, path: entry.url, headers: req.headers, agent: false },
        (answer) => {
          entry.status = answer.statusCode ?? 0;
          entry.responseHeaders = answer.headers;
          res.writeHead(entry.status, answer.headers);
          answer.pipe(res);
        },
      );
      upstream.on("error", (error) => {
        if (!res.headersSent) res.writeHead(502, { "content-type": "text/plain" });
        res.end(`logging proxy: ${error.message}`);
      });
      upstream.end(entry.body);
    });
  });
  server.on("connection", (socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests: (path) => recorded.filter((entry) => path === undefined || entry.url === path || entry.url.split("?")[0] === path),
    clear: () => {
      recorded.length = 0;
    },
    close: async () => {
      const closed = once(server, "close");
      server.close();
      for (const socket of sockets) socket.destroy();
      await closed;
    },
  };
}
