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
  /**
   * Close the connection mid-body on the first answers: the first one when the body reaches
   * byte `cutAt[0]`, the next (a resumed range, say) at the absolute offset `cutAt[1]`, and so
   * on; later answers are whole. `onCut` runs as each connection is cut.
   */
  cutAt?: readonly number[];
  onCut?: () => void;
  /**
   * Honour `Range: bytes=<first>-[<last>]` with a 206 (`If-Range` too: a strong ETag or the exact
   * Last-Modified must match, else the whole file with a 200). Off by default: Range is ignored.
   */
  ranges?: boolean;
  /** With `ranges`: apply Range whatever `If-Range` says (an upstream that does not check it). */
  ignoreIfRange?: boolean;
  /** With `ranges`: 206 parts are cut from these bytes instead of `body` (a corrupt part). */
  rangeBody?: Buffer;
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
  /** Bytes written per path, updated as the body goes out (the absolute offset, for a range). */
  readonly bytesSent = new Map<string, number>();
  /** Answers with a body per path, for `cutAt`. */
  readonly #answered = new Map<string, number>();

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
    const range = file.ranges === true && request.method === "GET" ? requestedRange(request.headers, file) : undefined;
    const source = range === undefined ? file.body : (file.rangeBody ?? file.body);
    const start = range?.start ?? 0;
    const stop = range === undefined ? file.body.length : range.end + 1;
    if (range !== undefined) {
      headers["content-range"] = `bytes ${range.start}-${range.end}/${file.body.length}`;
      headers["content-length"] = stop - start;
    } else if (!file.chunked) {
      headers["content-length"] = file.announcedLength ?? file.body.length;
    }
    response.writeHead(range === undefined ? 200 : 206, headers);
    if (request.method === "HEAD") {
      response.end();
      return;
    }
    const answer = this.#answered.get(path) ?? 0;
    this.#answered.set(path, answer + 1);
    const cut = file.cutAt?.[answer];
    const isCut = cut !== undefined && cut < stop;
    const breaksOff = isCut || file.truncateAt !== undefined;
    const end = Math.min(stop, file.truncateAt ?? stop, cut ?? stop);
    const chunkSize = file.chunkSize ?? 64 * 1024;
    let sent = start;
    while (sent < end) {
      const chunk = source.subarray(sent, Math.min(end, sent + chunkSize));
      if (breaksOff && sent + chunk.length >= end) {
        // The last bytes before breaking off reach the socket, so the client gets exactly `end` of them.
        await new Promise<void>((resolve) => response.write(chunk, () => resolve()));
      } else if (!response.write(chunk)) {
        await new Promise((resolve) => response.once("drain", resolve));
      }
      sent += chunk.length;
      this.bytesSent.set(path, sent);
      if (file.pauseAfter !== undefined && sent >= file.pauseAfter.bytes && sent - chunk.length < file.pauseAfter.bytes) await file.pauseAfter.until;
      if (file.delayMs !== undefined && sent < end) await new Promise((resolve) => setTimeout(resolve, file.delayMs));
      if (response.destroyed) return;
    }
    if (breaksOff) {
      response.socket?.destroy();
      if (isCut) file.onCut?.();
      return;
    }
    response.end();
  }
}

/** The range a GET asks for, if it applies (`If-Range` matches) and is satisfiable (else the whole file); one range only. */
function requestedRange(headers: IncomingMessage["headers"], file: OriginFile): { start: number; end: number } | undefined {
  const match = /^bytes=(\d+)-(\d*)$/.exec(headers["range"] ?? "");
  if (match === null) return undefined;
  const ifRange = headers["if-range"] as string | undefined;
  if (ifRange !== undefined && file.ignoreIfRange !== true) {
    const matches = ifRange.startsWith('"') ? file.etag === ifRange : file.lastModified === ifRange;
    if (!matches) return undefined;
  }
  const start = Number(match[1]);
  const end = match[2] === "" ? file.body.length - 1 : Math.min(Number(match[2]), file.body.length - 1);
  return start <= end ? { start, end } : undefined;
}

export function sha256(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}
