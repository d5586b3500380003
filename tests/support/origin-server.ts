import { createHash } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

/** A file the origin serves, and how it misbehaves. */
export interface OriginFile {
  body: Buffer;
  contentType?: string;
  /** Sent as ETag; a conditional request matching it gets 304. */
  etag?: string;
  lastModified?: string;
  /** Bytes per write and the pause between writes, to make a download slow. */
  chunkSize?: number;
  delayMs?: number;
  /** Stop after this many body bytes until `until` resolves: a download held in progress for as long as a test needs. */
  pauseAfter?: { readonly bytes: number; readonly until: Promise<void> };
  /** Close the connection after this many body bytes (with the full Content-Length announced). */
  truncateAt?: number;
  /** Announce this Content-Length instead of the real one. */
  announcedLength?: number;
  /** Omit Content-Length (chunked transfer). */
  chunked?: boolean;
  /** Answer with this status and no file. */
  status?: number;
  /** Redirect here (absolute URL or path). */
  redirectTo?: string;
  /** Extra response headers. */
  headers?: Record<string, string>;
}

export interface OriginRequest {
  readonly method: string;
  readonly url: string;
  readonly headers: IncomingMessage["headers"];
}

/**
 * A real HTTP origin on 127.0.0.1:0 that serves files from a map and records every request,
 * so tests can count what reached the upstream (one fetch per artifact).
 */
export class OriginServer {
  readonly files = new Map<string, OriginFile>();
  readonly requests: OriginRequest[] = [];
  /** Resolves with a request's path when its response body has been fully written. */
  readonly #server: Server;
  #url = "";
  #sockets = new Set<import("node:net").Socket>();
  /** Bytes written per path, updated as the body goes out. */
  readonly bytesSent = new Map<string, number>();

  constructor() {
    this.#server = createServer((request, response) => void this.#handle(request, response));
    this.#server.on("connection", (socket) => {
      this.#sockets.add(socket);
      socket.on("close", () => this.#sockets.delete(socket));
    });
  }

  get url(): string {
    return this.#url;
  }

  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.#server.listen(0, "127.0.0.1", resolve));
    this.#url = `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
    return this;
  }

  async stop(): Promise<void> {
    for (const socket of this.#sockets) socket.destroy();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  /** Requests for `path` (exact path, query excluded). */
  count(path: string, method?: string): number {
    return this.requests.filter((request) => request.url.split("?")[0] === path && (method === undefined || request.method === method)).length;
  }

  async #handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    this.requests.push({ method: request.method ?? "GET", url: request.url ?? "/", headers: request.headers });
    const path = (request.url ?? "/").split("?")[0] ?? "/";
    const file = this.files.get(path);
    if (file === undefined) {
      response.writeHead(404, { "content-type": "text/plain" }).end("not found");
      return;
    }
    if (file.redirectTo !== undefined) {
      response.writeHead(302, { location: file.redirectTo }).end();
      return;
    }
    if (file.status !== undefined) {
      response.writeHead(file.status, { "content-type": "text/plain", ...(file.headers ?? {}) }).end(`status ${file.status}`);
      return;
    }
    const validatorsMatch =
      (file.etag !== undefined && request.headers["if-none-match"] === file.etag) ||
      (file.etag === undefined && file.lastModified !== undefined && request.headers["if-modified-since"] === file.lastModified);
    const headers: Record<string, string | number> = {
      "content-type": file.contentType ?? "application/octet-stream",
      ...(file.etag === undefined ? {} : { etag: file.etag }),
      ...(file.lastModified === undefined ? {} : { "last-modified": file.lastModified }),
      ...(file.headers ?? {}),
    };
    if (validatorsMatch) {
      response.writeHead(304, headers).end();
      return;
    }
    if (!file.chunked) headers["content-length"] = file.announcedLength ?? file.body.length;
    response.writeHead(200, headers);
    if (request.method === "HEAD") {
      response.end();
      return;
    }
    const end = file.truncateAt ?? file.body.length;
    const chunkSize = file.chunkSize ?? 64 * 1024;
    let sent = 0;
    while (sent < end) {
      const chunk = file.body.subarray(sent, Math.min(end, sent + chunkSize));
      if (!response.write(chunk)) await new Promise((resolve) => response.once("drain", resolve));
      sent += chunk.length;
      this.bytesSent.set(path, sent);
      if (file.pauseAfter !== undefined && sent >= file.pauseAfter.bytes && sent - chunk.length < file.pauseAfter.bytes) await file.pauseAfter.until;
      if (file.delayMs !== undefined && sent < end) await new Promise((resolve) => setTimeout(resolve, file.delayMs));
      if (response.destroyed) return;
    }
    if (file.truncateAt !== undefined) {
      response.socket?.destroy();
      return;
    }
    response.end();
  }
}

export function sha256(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}
