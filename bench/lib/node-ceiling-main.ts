/**
 * The "Node ceiling" of the benchmarks: a bare `node:http` server (no framework, no routing
 * library, no logging) that serves the same bytes at the same URLs as the vault, doing the least
 * a Node server can do for them. It is what the vault would reach if its own code cost nothing:
 * the vault's req/s (and MB/s) ÷ this server's is the share of Node's ceiling the vault keeps.
 * Started by `startNodeCeiling` (`node-ceiling.ts`) in a process of its own, pinned like the
 * other servers:
 *
 *     node node-ceiling-main.js <config.json>
 *
 * The config (`NodeCeilingConfig`) names the port and what to serve: each mount maps a URL
 * prefix to a directory whose files are read at start — files up to `memoryMaxBytes` into a
 * `Map` of URL path → Buffer (answered with one `res.end(buffer)`), larger ones remembered by
 * path and streamed from disk on each request (`fs.createReadStream` with a 1 MiB
 * highWaterMark, Content-Length from a `stat` per request). Every answer carries Content-Length,
 * Content-Type and an ETag (the quoted hex SHA-256 of the bytes, computed at start) as the
 * vault's do. With `tokenSha256` set, every request must carry `Authorization: Bearer <token>`
 * whose SHA-256 equals it (a constant-time comparison), the minimum the vault's object API does.
 * It only answers GET. SIGTERM ends it (the default action).
 *
 * With `upstream` set, a path under its prefix that was not a file at start is a **cold miss**:
 * fetched from the upstream (`node:http`, a keep-alive agent) and, chunk by chunk as it arrives,
 * hashed (SHA-256), written to a spool file (`fs.createWriteStream`, 1 MiB highWaterMark) and
 * written to the client, pausing the upstream while the disk or the client is behind; the status
 * line goes out as soon as the upstream's does. At the end the hash is finished, the spool closed
 * (and removed: nothing is kept), then the response ended. That is the least a pull-through cache
 * written in Node does for a miss; it keeps nothing, checks nothing against a digest and makes
 * nothing durable.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import { closeSync, createReadStream, createWriteStream, mkdirSync, openSync, readdirSync, readFileSync, readSync, statSync, unlink, type Stats } from "node:fs";
import { stat } from "node:fs/promises";
import { Agent, createServer, get as httpGet, type IncomingMessage, type OutgoingHttpHeaders, type ServerResponse } from "node:http";
import { join } from "node:path";

export interface NodeCeilingConfig {
  readonly host: string;
  readonly port: number;
  /** URL prefix (e.g. `/files/`, ending in `/`) → directory; a file `<dir>/a/b` is `<prefix>a/b`. */
  readonly mounts: ReadonlyArray<{ readonly prefix: string; readonly dir: string }>;
  /** Files up to this size are served from memory, larger ones from disk. */
  readonly memoryMaxBytes: number;
  readonly contentType: string;
  /** Hex SHA-256 of the one bearer token accepted; absent: no authentication. */
  readonly tokenSha256?: string;
  /** Paths under `prefix` unknown at start are fetched from `baseUrl` (cold misses), spooled in `spoolDir`. */
  readonly upstream?: { readonly prefix: string; readonly baseUrl: string; readonly spoolDir: string };
}

const LARGE_CHUNK = 1024 * 1024;

interface InMemory {
  readonly body: Buffer;
  readonly headers: OutgoingHttpHeaders;
}

interface OnDisk {
  readonly file: string;
  readonly contentType: string;
  readonly etag: string;
}

function walk(dir: string, relative: string, visit: (file: string, urlPath: string, stats: Stats) => void): void {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const file = join(dir, entry.name);
    const urlPath = `${relative}${encodeURIComponent(entry.name)}`;
    if (entry.isDirectory()) walk(file, `${urlPath}/`, visit);
    else if (entry.isFile()) visit(file, urlPath, statSync(file));
  }
}

/** Hex SHA-256 of a file, read in 1 MiB chunks (at start only: the ETag of a large file). */
function sha256OfFile(file: string): string {
  const hash = createHash("sha256");
  const chunk = Buffer.allocUnsafe(LARGE_CHUNK);
  const fd = openSync(file, "r");
  try {
    for (let n = readSync(fd, chunk); n > 0; n = readSync(fd, chunk)) hash.update(chunk.subarray(0, n));
  } finally {
    closeSync(fd);
  }
  return hash.digest("hex");
}

function main(): void {
  const configFile = process.argv[2];
  if (configFile === undefined) throw new Error("usage: node-ceiling-main.js <config.json>");
  const config = JSON.parse(readFileSync(configFile, "utf8")) as NodeCeilingConfig;

  const memory = new Map<string, InMemory>();
  const disk = new Map<string, OnDisk>();
  let memoryBytes = 0;
  for (const mount of config.mounts) {
    walk(mount.dir, mount.prefix, (file, urlPath, stats) => {
      if (stats.size <= config.memoryMaxBytes) {
        const body = readFileSync(file);
        const etag = `"${createHash("sha256").update(body).digest("hex")}"`;
        memory.set(urlPath, {
          body,
          headers: { "content-length": body.length, "content-type": config.contentType, etag },
        });
        memoryBytes += body.length;
      } else {
        disk.set(urlPath, { file, contentType: config.contentType, etag: `"${sha256OfFile(file)}"` });
      }
    });
  }
  const expected = config.tokenSha256 === undefined ? undefined : Buffer.from(config.tokenSha256, "hex");

  const fail = (res: ServerResponse, status: number): void => {
    res.writeHead(status, { "content-length": 0 });
    res.end();
  };

  /** `Authorization: Bearer <token>` whose SHA-256 is the expected one, compared in constant time. */
  const authorized = (req: IncomingMessage): boolean => {
    if (expected === undefined) return true;
    const header = req.headers.authorization;
    if (header === undefined || !header.startsWith("Bearer ")) return false;
    const digest = createHash("sha256").update(header.slice(7), "utf8").digest();
    return digest.length === expected.length && timingSafeEqual(digest, expected);
  };

  const miss = config.upstream === undefined ? undefined : coldMiss(config.upstream, config.contentType, fail);

  const server = createServer((req, res) => {
    if (req.method !== "GET") return fail(res, 405);
    if (!authorized(req)) return fail(res, 401);
    const url = req.url ?? "/";
    const query = url.indexOf("?");
    const path = query === -1 ? url : url.slice(0, query);

    const small = memory.get(path);
    if (small !== undefined) {
      res.writeHead(200, small.headers);
      res.end(small.body);
      return;
    }
    const large = disk.get(path);
    if (large === undefined) {
      if (miss !== undefined && config.upstream !== undefined && path.startsWith(config.upstream.prefix)) return miss(path.slice(config.upstream.prefix.length), res);
      return fail(res, 404);
    }
    stat(large.file).then(
      (stats) => {
        res.writeHead(200, { "content-length": stats.size, "content-type": large.contentType, etag: large.etag });
        const stream = createReadStream(large.file, { highWaterMark: LARGE_CHUNK });
        stream.on("error", () => res.destroy());
        res.on("close", () => stream.destroy());
        stream.pipe(res);
      },
      () => fail(res, 404),
    );
  });
  server.keepAliveTimeout = 75_000;
  server.listen(config.port, config.host, () => {
    console.log(
      `node ceiling: ${memory.size} files (${memoryBytes} bytes) in memory, ${disk.size} on disk, ` +
        `${expected === undefined ? "no authentication" : "bearer token checked"}; listening on http://${config.host}:${config.port}`,
    );
  });
}

/** The cold-miss handler for `upstream` (see the file's comment): fetch, hash, spool and send. */
function coldMiss(
  upstream: NonNullable<NodeCeilingConfig["upstream"]>,
  contentType: string,
  fail: (res: ServerResponse, status: number) => void,
): (upstreamPath: string, res: ServerResponse) => void {
  mkdirSync(upstream.spoolDir, { recursive: true });
  const base = upstream.baseUrl.endsWith("/") ? upstream.baseUrl : `${upstream.baseUrl}/`;
  const agent = new Agent({ keepAlive: true });
  let spooled = 0;
  return (upstreamPath, res) => {
    const request = httpGet(new URL(upstreamPath, base), { agent }, (answer) => {
      if (answer.statusCode !== 200) {
        answer.resume();
        return fail(res, answer.statusCode === 404 ? 404 : 502);
      }
      res.writeHead(200, { "content-length": answer.headers["content-length"], "content-type": contentType });
      res.flushHeaders();
      const hash = createHash("sha256");
      const spoolPath = join(upstream.spoolDir, `${spooled++}.part`);
      const spool = createWriteStream(spoolPath, { highWaterMark: LARGE_CHUNK });
      const broken = (): void => {
        answer.destroy();
        spool.destroy();
        res.destroy();
        unlink(spoolPath, () => undefined);
      };
      spool.on("error", broken);
      answer.on("error", broken);
      res.on("close", () => {
        if (!res.writableFinished) broken();
      });
      let behind = 0;
      const caughtUp = (): void => {
        if (--behind === 0) answer.resume();
      };
      answer.on("data", (chunk: Buffer) => {
        hash.update(chunk);
        const toDisk = spool.write(chunk);
        const toClient = res.write(chunk);
        if (toDisk && toClient) return;
        answer.pause();
        if (!toDisk) {
          behind++;
          spool.once("drain", caughtUp);
        }
        if (!toClient) {
          behind++;
          res.once("drain", caughtUp);
        }
      });
      answer.on("end", () => {
        hash.digest("hex");
        spool.end(() => {
          unlink(spoolPath, () => undefined);
          res.end();
        });
      });
    });
    request.on("error", () => (res.headersSent ? res.destroy() : fail(res, 502)));
  };
}

main();
