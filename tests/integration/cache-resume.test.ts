/**
 * Resuming a fill whose upstream broke off mid-body: the vault asks for the rest with `Range`
 * and `If-Range` (or, with a known digest, `Range` alone) and splices it into the same download,
 * so that every client sees one complete, verified body. Whatever does not prove to be the rest
 * of the same file (a 200, changed validators, a corrupt part) fails the download as before.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { readdir } from "node:fs/promises";
import { request as httpRequest, type IncomingHttpHeaders } from "node:http";
import { rawRequest } from "../support/http.js";
import { OriginServer, sha256, type OriginFile } from "../support/origin-server.js";
import { startTestVault, type TestVault } from "../support/test-vault.js";

const KiB = 1024;
const MiB = 1024 * KiB;

interface Download {
  /** Resolves when the response headers arrived (the client has joined the download). */
  readonly started: Promise<IncomingHttpHeaders>;
  readonly done: Promise<{ status: number; headers: IncomingHttpHeaders; bytes: number; sha256: string; error: Error | undefined }>;
}

/** A GET that hashes the body as it streams and reports an aborted or incomplete response as `error`. */
function download(base: string, path: string): Download {
  const { hostname, port } = new URL(base);
  let started!: (headers: IncomingHttpHeaders) => void;
  const headersArrived = new Promise<IncomingHttpHeaders>((resolve) => (started = resolve));
  const done = new Promise<Awaited<Download["done"]>>((resolve) => {
    const hash = createHash("sha256");
    let bytes = 0;
    let error: Error | undefined;
    const req = httpRequest({ host: hostname, port, path, agent: false }, (res) => {
      started(res.headers);
      res.on("data", (chunk: Buffer) => {
        bytes += chunk.length;
        hash.update(chunk);
      });
      res.on("error", (failure) => (error ??= failure));
      res.on("aborted", () => (error ??= new Error("aborted")));
      res.on("close", () => {
        if (!res.complete) error ??= new Error("incomplete response");
        resolve({ status: res.statusCode ?? 0, headers: res.headers, bytes, sha256: hash.digest("hex"), error });
      });
    });
    req.on("error", (failure) => {
      started({});
      resolve({ status: 0, headers: {}, bytes: 0, sha256: "", error: failure });
    });
    req.end();
  });
  return { started: headersArrived, done };
}

/** A file held at the origin after `bytes` until `release()`: clients can join its download before it breaks off. */
function held(bytes: number): { pauseAfter: NonNullable<OriginFile["pauseAfter"]>; release: () => void } {
  let release!: () => void;
  const until = new Promise<void>((resolve) => (release = resolve));
  return { pauseAfter: { bytes, until }, release };
}

/** The GETs the origin saw for `path`, with the headers that matter here. */
function upstreamGets(origin: OriginServer, path: string): Array<{ range: string | undefined; ifRange: string | undefined }> {
  return origin.requests
    .filter((request) => request.method === "GET" && request.url.split("?")[0] === path)
    .map((request) => ({ range: request.headers["range"], ifRange: request.headers["if-range"] as string | undefined }));
}

/** Spool files (`<random>.part`) anywhere below the vault's directory. */
async function spoolFiles(vault: TestVault): Promise<string[]> {
  const entries = await readdir(vault.dir, { recursive: true });
  return entries.filter((entry) => entry.endsWith(".part"));
}

/** Waits (bounded) until no download of the vault is spooling: every fill has committed or failed. */
async function noSpoolFilesLeft(vault: TestVault): Promise<void> {
  const deadline = Date.now() + 10_000;
  let left = await spoolFiles(vault);
  while (left.length > 0 && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 20));
    left = await spoolFiles(vault);
  }
  assert.deepEqual(left, [], "spool files left behind");
}

/** Several clients that all join one download before the origin lets it go on (and break off). */
async function joinedDownloads(vault: TestVault, path: string, release: () => void, clients = 4): Promise<Array<Awaited<Download["done"]>>> {
  const first = download(vault.url, path);
  assert.equal((await first.started)["x-cache"], "MISS");
  const others = Array.from({ length: clients - 1 }, () => download(vault.url, path));
  for (const other of others) assert.equal((await other.started)["x-cache"], "MISS");
  release();
  return Promise.all([first, ...others].map((client) => client.done));
}

function assertAllAborted(results: ReadonlyArray<Awaited<Download["done"]>>, size: number): void {
  for (const result of results) {
    assert.ok(result.error !== undefined || result.status >= 500, `a client got a clean ${result.status} from a broken download`);
    assert.ok(result.bytes < size, "a client got every byte of a download that failed");
  }
}

/** Nothing was cached: with the origin whole again, the next request is a MISS that reaches it. */
async function assertNothingCached(vault: TestVault, origin: OriginServer, vaultPath: string, originPath: string, body: Buffer): Promise<void> {
  await noSpoolFilesLeft(vault);
  const before = origin.count(originPath);
  origin.files.set(originPath, { body });
  const next = await rawRequest(vault.url, vaultPath);
  assert.equal(next.status, 200);
  assert.equal(next.header("x-cache"), "MISS");
  assert.equal(sha256(next.body), sha256(body));
  assert.equal(origin.count(originPath), before + 1);
}

describe("a fill resumes when the upstream breaks off mid-body", () => {
  let origin: OriginServer;
  let vault: TestVault;

  before(async () => {
    origin = await new OriginServer().start();
    vault = await startTestVault({
      extraYaml: [
        "backends:",
        `  - {type: http, name: files, config: {prefix: /files/, base_url: "${origin.url}/dist", timeout: 5, retries: 1}}`,
        `  - {type: pypi, name: pypi, config: {prefix: /pypi/, index_url: "${origin.url}/simple", packages_url: "${origin.url}/wheels", timeout: 5, retries: 1}}`,
      ].join("\n"),
    });
  });
  after(async () => {
    await vault.close();
    await origin.stop();
  });

  test("cut twice, with ranges and an ETag: every client gets the whole verified body from three upstream requests, and it is cached", async () => {
    const body = randomBytes(3 * MiB);
    const path = "/dist/resume/etag.bin";
    const hold = held(512 * KiB);
    origin.files.set(path, { body, etag: '"v1"', ranges: true, cutAt: [1 * MiB, 2 * MiB], pauseAfter: hold.pauseAfter });

    const results = await joinedDownloads(vault, "/files/resume/etag.bin", hold.release);
    for (const result of results) {
      assert.equal(result.error, undefined);
      assert.equal(result.status, 200);
      assert.equal(result.bytes, body.length);
      assert.equal(result.sha256, sha256(body));
    }
    assert.deepEqual(upstreamGets(origin, path), [
      { range: undefined, ifRange: undefined },
      { range: `bytes=${1 * MiB}-`, ifRange: '"v1"' },
      { range: `bytes=${2 * MiB}-`, ifRange: '"v1"' },
    ]);
    const hit = await rawRequest(vault.url, "/files/resume/etag.bin");
    assert.equal(hit.header("x-cache"), "HIT");
    assert.equal(sha256(hit.body), sha256(body));
    assert.equal(upstreamGets(origin, path).length, 3);
    await noSpoolFilesLeft(vault);
  });

  test("with Last-Modified as the only validator, If-Range carries the date", async () => {
    const body = randomBytes(2 * MiB);
    const path = "/dist/resume/dated.bin";
    const lastModified = "Tue, 01 Oct 2024 10:00:00 GMT";
    origin.files.set(path, { body, lastModified, ranges: true, cutAt: [700 * KiB] });
    const result = await download(vault.url, "/files/resume/dated.bin").done;
    assert.equal(result.error, undefined);
    assert.equal(result.sha256, sha256(body));
    assert.deepEqual(upstreamGets(origin, path), [
      { range: undefined, ifRange: undefined },
      { range: `bytes=${700 * KiB}-`, ifRange: lastModified },
    ]);
    await noSpoolFilesLeft(vault);
  });

  test("with a known digest and no validators (a PyPI file), the rest is asked for by Range alone and verified", async () => {
    const body = randomBytes(3 * MiB);
    const path = "/wheels/p/probe-1.0-py3-none-any.whl";
    const hold = held(256 * KiB);
    origin.files.set(path, { body, ranges: true, cutAt: [1 * MiB, 2 * MiB], pauseAfter: hold.pauseAfter });
    const vaultPath = `/pypi/packages/sha256/${sha256(body)}/p/probe-1.0-py3-none-any.whl`;

    const results = await joinedDownloads(vault, vaultPath, hold.release, 3);
    for (const result of results) {
      assert.equal(result.error, undefined);
      assert.equal(result.sha256, sha256(body));
    }
    assert.deepEqual(upstreamGets(origin, path), [
      { range: undefined, ifRange: undefined },
      { range: `bytes=${1 * MiB}-`, ifRange: undefined },
      { range: `bytes=${2 * MiB}-`, ifRange: undefined },
    ]);
    assert.equal((await rawRequest(vault.url, vaultPath)).header("x-cache"), "HIT");
    await noSpoolFilesLeft(vault);
  });

  test("an upstream that ignores Range (answers 200 to the resume): clients see an aborted response, nothing is cached", async () => {
    const body = randomBytes(2 * MiB);
    const path = "/dist/resume/no-ranges.bin";
    const hold = held(256 * KiB);
    origin.files.set(path, { body, etag: '"n1"', cutAt: [1 * MiB], pauseAfter: hold.pauseAfter });
    assertAllAborted(await joinedDownloads(vault, "/files/resume/no-ranges.bin", hold.release, 2), body.length);
    assert.deepEqual(upstreamGets(origin, path), [
      { range: undefined, ifRange: undefined },
      { range: `bytes=${1 * MiB}-`, ifRange: '"n1"' },
    ]);
    await assertNothingCached(vault, origin, "/files/resume/no-ranges.bin", path, body);
  });

  test("a file replaced upstream meanwhile (If-Range no longer matches, a 200 of the new file): nothing is cached", async () => {
    const body = randomBytes(2 * MiB);
    const replacement = randomBytes(2 * MiB);
    const path = "/dist/resume/replaced.bin";
    origin.files.set(path, {
      body,
      etag: '"r1"',
      ranges: true,
      cutAt: [1 * MiB],
      onCut: () => origin.files.set(path, { body: replacement, etag: '"r2"', ranges: true }),
    });
    assertAllAborted([await download(vault.url, "/files/resume/replaced.bin").done], body.length);
    assert.deepEqual(upstreamGets(origin, path), [
      { range: undefined, ifRange: undefined },
      { range: `bytes=${1 * MiB}-`, ifRange: '"r1"' },
    ]);
    await assertNothingCached(vault, origin, "/files/resume/replaced.bin", path, replacement);
  });

  test("a file replaced upstream by one that ignores If-Range (a 206 with another ETag): nothing is cached", async () => {
    const body = randomBytes(2 * MiB);
    const replacement = randomBytes(2 * MiB);
    const path = "/dist/resume/replaced-206.bin";
    origin.files.set(path, {
      body,
      etag: '"s1"',
      ranges: true,
      cutAt: [1 * MiB],
      onCut: () => origin.files.set(path, { body: replacement, etag: '"s2"', ranges: true, ignoreIfRange: true }),
    });
    assertAllAborted([await download(vault.url, "/files/resume/replaced-206.bin").done], body.length);
    assert.deepEqual(upstreamGets(origin, path), [
      { range: undefined, ifRange: undefined },
      { range: `bytes=${1 * MiB}-`, ifRange: '"s1"' },
    ]);
    await assertNothingCached(vault, origin, "/files/resume/replaced-206.bin", path, replacement);
  });

  test("more cuts than the bound (3 resumes): aborted after four upstream requests, nothing cached", async () => {
    const body = randomBytes(2 * MiB);
    const path = "/dist/resume/flaky.bin";
    origin.files.set(path, { body, etag: '"f1"', ranges: true, cutAt: [256 * KiB, 512 * KiB, 768 * KiB, 1 * MiB] });
    assertAllAborted([await download(vault.url, "/files/resume/flaky.bin").done], body.length);
    assert.deepEqual(upstreamGets(origin, path), [
      { range: undefined, ifRange: undefined },
      { range: `bytes=${256 * KiB}-`, ifRange: '"f1"' },
      { range: `bytes=${512 * KiB}-`, ifRange: '"f1"' },
      { range: `bytes=${768 * KiB}-`, ifRange: '"f1"' },
    ]);
    await assertNothingCached(vault, origin, "/files/resume/flaky.bin", path, body);
  });

  test("a corrupt resumed part fails the digest: clients see an aborted response, nothing is cached", async () => {
    const body = randomBytes(2 * MiB);
    const corrupt = Buffer.from(body);
    corrupt[1.5 * MiB] = (corrupt[1.5 * MiB] ?? 0) ^ 0xff;
    const path = "/wheels/c/corrupt-1.0-py3-none-any.whl";
    origin.files.set(path, { body, etag: '"c1"', ranges: true, rangeBody: corrupt, cutAt: [1 * MiB] });
    const vaultPath = `/pypi/packages/sha256/${sha256(body)}/c/corrupt-1.0-py3-none-any.whl`;
    assertAllAborted([await download(vault.url, vaultPath).done], body.length);
    assert.deepEqual(upstreamGets(origin, path), [
      { range: undefined, ifRange: undefined },
      { range: `bytes=${1 * MiB}-`, ifRange: '"c1"' },
    ]);
    await assertNothingCached(vault, origin, vaultPath, path, body);
  });
});
