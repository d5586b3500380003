/**
 * `cache.redirect_hits` over real HTTP: a vault on S3 (s3rver) in front of one scripted origin
 * that is a PyPI index and file host, a generic `http` origin, an APT mirror and an OCI registry
 * at once. A second GET of a large immutable artifact is a `307` to a presigned URL of its S3
 * object, which anyone can fetch (no credentials) for the same bytes; curl -L and pip follow it.
 * What is never redirected: misses, HEADs, small hits, conditional requests, the `http` backend,
 * OCI manifests, apt's proxy mode, a vault with the option off, and a store that cannot sign.
 */
import { after, before, describe, it, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { devNull, tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { promisify } from "node:util";
import { OriginServer } from "../support/origin-server.js";
import { rawRequest, type RawResponse } from "../support/http.js";
import { makeVenv, requirePythons } from "../support/python.js";
import { startTestVault, type TestVault } from "../support/test-vault.js";
import { requireTool } from "../support/tools.js";

const execFileAsync = promisify(execFile);
const sha256 = (bytes: Uint8Array): string => createHash("sha256").update(bytes).digest("hex");
const MiB = 1024 * 1024;
const PYPI_JSON = "application/vnd.pypi.simple.v1+json";
const OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";

/** Above the default `redirect_min_size` (1 MiB), and below it. */
const large = randomBytes(MiB + MiB / 2);
const small = randomBytes(10 * 1024);
const blob = randomBytes(2 * MiB);
const bigManifest = randomBytes(MiB + 123);

const wheelPath = (bytes: Buffer, name: string): string => `/pypi/packages/sha256/${sha256(bytes)}/ab/${name}`;
const LARGE_WHEEL = wheelPath(large, "demo-1.0-py3-none-any.whl");
const SMALL_WHEEL = wheelPath(small, "tiny-1.0-py3-none-any.whl");
const POOL_FILE = "/debian/pool/main/d/demo/demo_1.0_all.deb";
const BLOB = `/v2/team/demo/blobs/sha256:${sha256(blob)}`;
const MANIFEST = `/v2/team/demo/manifests/sha256:${sha256(bigManifest)}`;

/** One origin for every backend: PyPI files under /packages/, plain files, an APT pool and a registry. */
async function startOrigin(): Promise<OriginServer> {
  const origin = await new OriginServer().start();
  origin.files.set("/packages/ab/demo-1.0-py3-none-any.whl", { body: large, contentType: "application/octet-stream" });
  origin.files.set("/packages/ab/tiny-1.0-py3-none-any.whl", { body: small });
  origin.files.set("/files/big.tar.gz", { body: large, contentType: "application/gzip" });
  origin.files.set("/debian/pool/main/d/demo/demo_1.0_all.deb", { body: large, contentType: "application/vnd.debian.binary-package" });
  origin.files.set(`/v2/team/demo/blobs/sha256:${sha256(blob)}`, { body: blob });
  origin.files.set(`/v2/team/demo/manifests/sha256:${sha256(bigManifest)}`, { body: bigManifest, contentType: OCI_MANIFEST });
  return origin;
}

function backendsYaml(origin: OriginServer): string {
  return [
    "backends:",
    `  - {type: pypi, name: pypi, config: {prefix: /pypi/, index_url: "${origin.url}/simple", packages_url: "${origin.url}/packages"}}`,
    `  - {type: http, name: files, config: {prefix: /files/, base_url: "${origin.url}/files"}}`,
    `  - {type: apt, name: debian, config: {prefix: /debian/, mirror_url: "${origin.url}/debian"}}`,
    `  - {type: oci, name: registry, config: {prefix: /registry/, registry_url: "${origin.url}"}}`,
  ].join("\n");
}

/**
 * The first GET of `path`: a miss, streamed by the vault. Returns once the download is stored:
 * until then (while it is written to the bucket) a hit is served from the download itself.
 */
async function fill(vault: TestVault, path: string, expected: Buffer): Promise<void> {
  const miss = await rawRequest(vault.url, path);
  assert.equal(miss.status, 200, path);
  assert.equal(miss.header("x-cache"), "MISS", path);
  assert.equal(sha256(miss.body), sha256(expected), path);
  await stored(vault);
}

/** Waits until no download is in progress (each `fill` does; a test run alone asks for its artifact first). */
async function stored(vault: TestVault, path?: string): Promise<void> {
  if (path !== undefined) await rawRequest(vault.url, path);
  for (const deadline = Date.now() + 10_000; ; await sleep(20)) {
    const fills = (await rawRequest(vault.url, "/admin/cache/fills", { headers: vault.auth("all") })).json<{ fills: unknown[] }>().fills;
    if (fills.length === 0) return;
    assert.ok(Date.now() < deadline, `the download of ${path ?? "an artifact"} is still not stored`);
  }
}

function assertRedirect(response: RawResponse, vault: TestVault): URL {
  assert.equal(response.status, 307);
  assert.equal(response.header("x-cache"), "HIT");
  assert.equal(response.header("cache-control"), "no-store");
  assert.equal(response.body.length, 0);
  const location = new URL(response.header("location") ?? "");
  // The presigned URL points at the store's endpoint_url, signed for a short while.
  assert.equal(location.origin, new URL(vault.s3?.endpoint ?? "").origin);
  assert.equal(location.searchParams.get("X-Amz-Expires"), "300");
  assert.ok(location.searchParams.get("X-Amz-Signature"));
  return location;
}

function assertServed(response: RawResponse, expected: Buffer, status = 200): void {
  assert.equal(response.status, status);
  assert.equal(response.header("location"), undefined);
  assert.equal(response.header("x-cache"), "HIT");
  assert.equal(sha256(response.body), sha256(expected));
}

describe("redirect_hits on an S3 store", () => {
  let origin: OriginServer;
  let vault: TestVault;

  before(async () => {
    origin = await startOrigin();
    // Logged at info: the access log lines are asserted below.
    vault = await startTestVault({ storage: "s3", logLevel: "info", extraYaml: ["cache: {redirect_hits: true}", backendsYaml(origin)].join("\n") });
  });

  after(async () => {
    await vault.close();
    await origin.stop();
  });

  it("a miss is streamed by the vault; the next GET is a 307 to a presigned URL that anyone can fetch the same bytes from", async () => {
    await fill(vault, LARGE_WHEEL, large);
    const hit = await rawRequest(vault.url, LARGE_WHEEL);
    const location = assertRedirect(hit, vault);
    const fromS3 = await fetch(location); // no credentials, no vault
    assert.equal(fromS3.status, 200);
    assert.equal(sha256(Buffer.from(await fromS3.arrayBuffer())), sha256(large));
    assert.equal(origin.count("/packages/ab/demo-1.0-py3-none-any.whl"), 1, "one upstream fetch");
    // The access log shows the 307 and the cache status.
    const line = vault.logs().find((entry) => entry.msg === "request" && entry["url"] === LARGE_WHEEL && entry["status"] === 307);
    assert.ok(line, "an access log line for the redirect");
    assert.equal(line["cache"], "HIT");
  });

  it("a Range request is redirected too, and the presigned URL honours the range", async () => {
    await stored(vault, LARGE_WHEEL);
    const hit = await rawRequest(vault.url, LARGE_WHEEL, { headers: { range: "bytes=1000-1999" } });
    const location = assertRedirect(hit, vault);
    const part = await fetch(location, { headers: { range: "bytes=1000-1999" } });
    assert.equal(part.status, 206);
    assert.equal(part.headers.get("content-range"), `bytes 1000-1999/${large.length}`);
    assert.ok(Buffer.from(await part.arrayBuffer()).equals(large.subarray(1000, 2000)));
  });

  it("HEAD and conditional requests are answered by the vault as without the option", async () => {
    await stored(vault, LARGE_WHEEL);
    const head = await rawRequest(vault.url, LARGE_WHEEL, { method: "HEAD" });
    assert.equal(head.status, 200);
    assert.equal(head.header("location"), undefined);
    assert.equal(head.header("x-cache"), "HIT");
    assert.equal(head.header("content-length"), String(large.length));
    const etag = head.header("etag") ?? "";
    assert.equal((await rawRequest(vault.url, LARGE_WHEEL, { headers: { "if-none-match": etag } })).status, 304);
    assert.equal((await rawRequest(vault.url, LARGE_WHEEL, { headers: { "if-modified-since": new Date(Date.now() + 60_000).toUTCString() } })).status, 304);
    // S3 would judge If-Range by its own ETag and send the whole object: the vault answers the range.
    const resumed = await rawRequest(vault.url, LARGE_WHEEL, { headers: { range: "bytes=10-19", "if-range": etag } });
    assertServed(resumed, large.subarray(10, 20), 206);
    // A stale validator is still the vault's to judge: the whole body, from the vault.
    assertServed(await rawRequest(vault.url, LARGE_WHEEL, { headers: { "if-none-match": '"other"' } }), large);
  });

  it("a hit smaller than redirect_min_size is served by the vault", async () => {
    await fill(vault, SMALL_WHEEL, small);
    assertServed(await rawRequest(vault.url, SMALL_WHEEL), small);
  });

  it("the generic http backend never redirects (its clients may not follow)", async () => {
    await fill(vault, "/files/big.tar.gz", large);
    assertServed(await rawRequest(vault.url, "/files/big.tar.gz"), large);
  });

  it("APT pool files: redirected for a mirror URL, never in apt's proxy mode", async () => {
    await fill(vault, POOL_FILE, large);
    const location = assertRedirect(await rawRequest(vault.url, POOL_FILE), vault);
    assert.equal(sha256(Buffer.from(await (await fetch(location)).arrayBuffer())), sha256(large));
    // apt would send the bucket's URL to its proxy, the vault, which refuses other hosts.
    const proxied = await rawRequest(vault.url, `${origin.url}${POOL_FILE}`);
    assertServed(proxied, large);
  });

  it("OCI blobs are redirected (at /v2/ and under the prefix); manifests are served by the vault", async () => {
    await fill(vault, BLOB, blob);
    for (const path of [BLOB, `/registry${BLOB.slice("/v2".length)}`]) {
      const location = assertRedirect(await rawRequest(vault.url, path), vault);
      assert.equal(sha256(Buffer.from(await (await fetch(location)).arrayBuffer())), sha256(blob));
    }
    await fill(vault, MANIFEST, bigManifest);
    const manifest = await rawRequest(vault.url, MANIFEST, { headers: { accept: OCI_MANIFEST } });
    assertServed(manifest, bigManifest);
    assert.equal(manifest.header("docker-content-digest"), `sha256:${sha256(bigManifest)}`);
  });

  it("curl -L follows the redirect to the bucket and gets the identical file", async (t: TestContext) => {
    const curl = requireTool(t, "curl");
    if (curl === undefined) return;
    await stored(vault, LARGE_WHEEL);
    const dir = await mkdtemp(join(tmpdir(), "redirect-curl-"));
    try {
      const out = join(dir, "demo.whl");
      const { stdout } = await execFileAsync(curl, ["-sS", "--fail", "-L", "--noproxy", "*", "-o", out, "-w", "%{http_code} %{num_redirects} %{url_effective}", `${vault.url}${LARGE_WHEEL}`]);
      const [code, redirects, effective] = stdout.split(" ");
      assert.equal(code, "200");
      assert.equal(redirects, "1");
      assert.ok(effective?.startsWith(vault.s3?.endpoint ?? "-"), effective);
      assert.equal(sha256(await readFile(out)), sha256(large));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("pip download follows it and checks the file's hash from the index", async (t: TestContext) => {
    const pythons = requirePythons(t);
    if (pythons === undefined) return;
    const dir = await mkdtemp(join(tmpdir(), "redirect-pip-"));
    try {
      // A real wheel of more than 1 MiB (a stored, incompressible data file in it).
      const wheelFile = join(dir, "demo_big-1.0-py3-none-any.whl");
      const script = `import os, sys, zipfile
with zipfile.ZipFile(sys.argv[1], "w") as z:
    z.writestr("demo_big/__init__.py", "")
    z.writestr("demo_big/data.bin", os.urandom(1536 * 1024), compress_type=zipfile.ZIP_STORED)
    z.writestr("demo_big-1.0.dist-info/METADATA", "Metadata-Version: 2.1\\nName: demo-big\\nVersion: 1.0\\n")
    z.writestr("demo_big-1.0.dist-info/WHEEL", "Wheel-Version: 1.0\\nGenerator: test\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n")
    z.writestr("demo_big-1.0.dist-info/RECORD", "")`;
      await execFileAsync(pythons.venv, ["-c", script, wheelFile]);
      const wheel = await readFile(wheelFile);
      origin.files.set("/packages/cd/demo_big-1.0-py3-none-any.whl", { body: wheel });
      origin.files.set("/simple/demo-big/", {
        contentType: PYPI_JSON,
        body: Buffer.from(
          JSON.stringify({
            meta: { "api-version": "1.1" },
            name: "demo-big",
            files: [{ filename: "demo_big-1.0-py3-none-any.whl", url: `${origin.url}/packages/cd/demo_big-1.0-py3-none-any.whl`, hashes: { sha256: sha256(wheel) } }],
          }),
        ),
      });
      const path = wheelPath(wheel, "demo_big-1.0-py3-none-any.whl").replace("/ab/", "/cd/");
      await fill(vault, path, wheel);
      const pip = await makeVenv(pythons.venv, join(dir, "venv"));
      const into = join(dir, "downloads");
      const s3Gets = (): number => (vault.s3?.requests ?? []).filter((request) => request.method === "GET" && request.query.includes("X-Amz-Signature")).length;
      const before = s3Gets();
      await execFileAsync(
        pip,
        ["--isolated", "--no-cache-dir", "--disable-pip-version-check", "--no-input", "download", "--no-deps", "--only-binary", ":all:", "-d", into, "--index-url", `${vault.url}/pypi/simple/`, "demo-big==1.0"],
        { env: { PATH: process.env["PATH"] ?? "", HOME: dir, PIP_CONFIG_FILE: devNull, PYTHONDONTWRITEBYTECODE: "1" } },
      );
      assert.equal(sha256(await readFile(join(into, "demo_big-1.0-py3-none-any.whl"))), sha256(wheel));
      assert.ok(vault.logs().some((entry) => entry.msg === "request" && entry["url"] === path && entry["status"] === 307), "pip was redirected");
      if (vault.s3?.requests.length !== 0) assert.equal(s3Gets(), before + 1, "pip fetched the wheel from the bucket");
      assert.equal(origin.count("/packages/cd/demo_big-1.0-py3-none-any.whl"), 1);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe("redirect_hits off, or on a store that cannot sign URLs", () => {
  let origin: OriginServer;

  before(async () => {
    origin = await startOrigin();
  });

  after(async () => {
    await origin.stop();
  });

  it("off by default: an S3 store's hits are served by the vault", async () => {
    const vault = await startTestVault({ storage: "s3", extraYaml: backendsYaml(origin) });
    try {
      await fill(vault, LARGE_WHEEL, large);
      assertServed(await rawRequest(vault.url, LARGE_WHEEL), large);
    } finally {
      await vault.close();
    }
  });

  it("on a filesystem store it has no effect but a warning at start", async () => {
    const vault = await startTestVault({ storage: "filesystem", extraYaml: ["cache: {redirect_hits: true, redirect_min_size: 0}", backendsYaml(origin)].join("\n") });
    try {
      await fill(vault, LARGE_WHEEL, large);
      assertServed(await rawRequest(vault.url, LARGE_WHEEL), large);
      assert.ok(
        vault.logs().some((entry) => entry.level === 40 && /redirect_hits has no effect: the filesystem store cannot sign URLs/.test(entry.msg)),
        "warned at start",
      );
    } finally {
      await vault.close();
    }
  });
});
