/**
 * End to end with real parts: Debian's nginx (started here, from a temp dir) serves files as the
 * upstream, the built CLI (`artifact-vault serve`) caches them through the `http` backend, and
 * curl is the client. What nginx logged is what reached the upstream.
 */
import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync, utimesSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { writeTokensFile } from "../../src/auth/tokens-file.js";
import { startNginx, type LoggedRequest, type Nginx } from "../support/nginx.js";
import { requireTool } from "../support/tools.js";
import { spawnVault, type VaultProcess } from "../support/vault-process.js";

const execFileAsync = promisify(execFile);

const sha256 = (bytes: Uint8Array): string => createHash("sha256").update(bytes).digest("hex");

/** The slow location sends this many bytes per second, so the big file takes about a second. */
const SLOW_RATE = 24 * 1024 * 1024;
const BIG_SIZE = 24 * 1024 * 1024;

// ------------------------------------------------------------------------------------------------
// nginx as the upstream: a slow location sends the big file at SLOW_RATE.

function startUpstream(dir: string, root: string): Promise<Nginx> {
  return startNginx({ dir, root, serverExtra: `    location /slow/ { limit_rate ${SLOW_RATE / 1024}k; }` });
}

// ------------------------------------------------------------------------------------------------
// curl as the client

interface CurlResult {
  readonly status: number;
  /** Lowercase names, of the last response (curl prints every one it got). */
  readonly headers: ReadonlyMap<string, string>;
  /** The body as written with `-o` (empty for HEAD). */
  readonly body: Buffer;
}

function parseHeaders(text: string): { status: number; headers: Map<string, string> } {
  const blocks = text.split(/\r?\n\r?\n/).filter((block) => block.startsWith("HTTP/"));
  const last = blocks.at(-1) ?? "";
  const [statusLine = "", ...lines] = last.split(/\r?\n/);
  const headers = new Map<string, string>();
  for (const line of lines) {
    const colon = line.indexOf(":");
    if (colon > 0) headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
  }
  return { status: Number(statusLine.split(" ")[1]), headers };
}

class Curl {
  #n = 0;
  constructor(
    private readonly dir: string,
    private readonly baseUrl: string,
  ) {}

  /** `curl -sS -D - -o FILE [args] URL`: headers from stdout, the body from the file. */
  async get(path: string, args: readonly string[] = []): Promise<CurlResult> {
    const out = join(this.dir, `body-${++this.#n}`);
    const { stdout } = await execFileAsync("curl", ["-sS", "-D", "-", "-o", out, ...args, `${this.baseUrl}${path}`], { timeout: 60_000 });
    const { status, headers } = parseHeaders(stdout);
    return { status, headers, body: readFileSync(out) };
  }

  /** `curl -sS -I URL`: a HEAD request, headers only. */
  async head(path: string): Promise<CurlResult> {
    const { stdout } = await execFileAsync("curl", ["-sS", "-I", `${this.baseUrl}${path}`], { timeout: 60_000 });
    const { status, headers } = parseHeaders(stdout);
    return { status, headers, body: Buffer.alloc(0) };
  }
}

// ------------------------------------------------------------------------------------------------

test("http backend end to end: curl → artifact-vault (built CLI) → Debian's nginx", async (t: TestContext) => {
  if (requireTool(t, "nginx") === undefined || requireTool(t, "curl") === undefined) return;

  const dir = await mkdtemp(join(tmpdir(), "vault-e2e-nginx-"));
  let nginx: Nginx | undefined;
  let vault: VaultProcess | undefined;
  try {
    const root = join(dir, "upstream");
    for (const sub of ["pkg", "slow", "latest"]) mkdirSync(join(root, sub), { recursive: true });
    const tool = randomBytes(300 * 1024);
    const big = randomBytes(BIG_SIZE);
    const ranged = randomBytes(1024 * 1024);
    writeFileSync(join(root, "pkg/tool-1.0.tar.gz"), tool);
    writeFileSync(join(root, "slow/big-1.0.bin"), big);
    writeFileSync(join(root, "pkg/ranged-1.0.bin"), ranged);
    writeFileSync(join(root, "latest/channel.txt"), "channel v1\n");

    nginx = await startUpstream(join(dir, "nginx"), root);
    const upstream = nginx;

    const tokensFile = join(dir, "tokens.json");
    await writeTokensFile(tokensFile, []);
    const config = join(dir, "config.yml");
    writeFileSync(
      config,
      [
        "http_host: 127.0.0.1",
        "http_port: 0",
        "log_level: info",
        `cache_dir: ${JSON.stringify(join(dir, "vault-data"))}`,
        `auth: {tokens_file: ${JSON.stringify(tokensFile)}}`,
        "rate_limit: {enabled: false}",
        "backends:",
        `  - {type: http, name: files, config: {prefix: /files/, base_url: "${upstream.url}", timeout: 10, mutable: ["**/latest/**"], ttl: 0}}`,
      ].join("\n"),
    );
    vault = await spawnVault(config);
    const curlDir = join(dir, "curl");
    mkdirSync(curlDir);
    const curl = new Curl(curlDir, vault.url);

    await t.test("a download is a MISS, then a HIT, byte-identical, with one upstream request", async () => {
      const first = await curl.get("/files/pkg/tool-1.0.tar.gz");
      assert.equal(first.status, 200);
      assert.equal(first.headers.get("x-cache"), "MISS");
      assert.equal(first.headers.get("content-length"), String(tool.length));
      assert.equal(sha256(first.body), sha256(tool));

      const second = await curl.get("/files/pkg/tool-1.0.tar.gz");
      assert.equal(second.status, 200);
      assert.equal(second.headers.get("x-cache"), "HIT");
      assert.equal(sha256(second.body), sha256(tool));
      assert.equal(second.headers.get("etag"), `"${sha256(tool)}"`);
      assert.equal((await upstream.logged("/pkg/tool-1.0.tar.gz", 1)).length, 1);
    });

    await t.test("concurrent cold downloads of a large, slow file share one upstream request", async (st) => {
      const started = performance.now();
      const results = await Promise.all(Array.from({ length: 4 }, () => curl.get("/files/slow/big-1.0.bin")));
      const seconds = (performance.now() - started) / 1000;
      st.diagnostic(`4 concurrent cold downloads of ${BIG_SIZE / 1024 / 1024} MiB at ${SLOW_RATE / 1024 / 1024} MiB/s: ${seconds.toFixed(2)} s`);
      for (const result of results) {
        assert.equal(result.status, 200);
        assert.equal(result.headers.get("x-cache"), "MISS");
        assert.equal(result.body.length, big.length);
        assert.equal(sha256(result.body), sha256(big));
      }
      const hit = await curl.get("/files/slow/big-1.0.bin");
      assert.equal(hit.headers.get("x-cache"), "HIT");
      assert.equal(sha256(hit.body), sha256(big));
      assert.equal((await upstream.logged("/slow/big-1.0.bin", 1)).length, 1, "upstream requests for the big file");
    });

    await t.test("curl -r ranges, on a hit and on a miss", async () => {
      const head = await curl.get("/files/slow/big-1.0.bin", ["-r", "0-99"]);
      assert.equal(head.status, 206);
      assert.equal(head.headers.get("content-range"), `bytes 0-99/${big.length}`);
      assert.deepEqual(head.body, big.subarray(0, 100));

      const from = await curl.get("/files/slow/big-1.0.bin", ["-r", `${big.length - 1000}-`]);
      assert.equal(from.status, 206);
      assert.equal(from.headers.get("content-range"), `bytes ${big.length - 1000}-${big.length - 1}/${big.length}`);
      assert.deepEqual(from.body, big.subarray(big.length - 1000));

      const suffix = await curl.get("/files/slow/big-1.0.bin", ["-r", "-500"]);
      assert.equal(suffix.status, 206);
      assert.deepEqual(suffix.body, big.subarray(big.length - 500));

      const cold = await curl.get("/files/pkg/ranged-1.0.bin", ["-r", "100-199"]);
      assert.equal(cold.status, 206);
      assert.equal(cold.headers.get("x-cache"), "MISS");
      assert.equal(cold.headers.get("content-range"), `bytes 100-199/${ranged.length}`);
      assert.deepEqual(cold.body, ranged.subarray(100, 200));
      const whole = await curl.get("/files/pkg/ranged-1.0.bin");
      assert.equal(sha256(whole.body), sha256(ranged));
      assert.equal((await upstream.logged("/pkg/ranged-1.0.bin", 1)).length, 1, "the range on a miss filled the cache once");
    });

    await t.test("curl -I: HEAD answers the headers of the cached file", async () => {
      const head = await curl.head("/files/pkg/tool-1.0.tar.gz");
      assert.equal(head.status, 200);
      assert.equal(head.headers.get("x-cache"), "HIT");
      assert.equal(head.headers.get("content-length"), String(tool.length));
      assert.equal(head.headers.get("accept-ranges"), "bytes");
      assert.equal(head.headers.get("etag"), `"${sha256(tool)}"`);
      assert.equal(upstream.requests("/pkg/tool-1.0.tar.gz").length, 1);
    });

    await t.test("a file missing upstream is a plain-text 404, remembered for a while", async () => {
      const missing = await curl.get("/files/pkg/missing-9.9.tar.gz");
      assert.equal(missing.status, 404);
      assert.match(missing.headers.get("content-type") ?? "", /^text\/plain/);
      assert.ok(missing.body.length > 0);
      const again = await curl.get("/files/pkg/missing-9.9.tar.gz");
      assert.equal(again.status, 404);
      const logged = await upstream.logged("/pkg/missing-9.9.tar.gz", 1);
      assert.deepEqual(
        logged.map((request) => request.status),
        [404],
      );
    });

    await t.test("a mutable file is revalidated with nginx's ETag (304), and replaced once it changes", async () => {
      const uri = "/latest/channel.txt";
      const first = await curl.get(`/files${uri}`);
      assert.equal(first.headers.get("x-cache"), "MISS");
      assert.equal(first.body.toString(), "channel v1\n");
      const etagV1 = (await execFileAsync("curl", ["-sS", "-I", `${upstream.url}${uri}`])).stdout;
      const nginxEtag = parseHeaders(etagV1).headers.get("etag");
      assert.ok(nginxEtag !== undefined, "nginx sends an ETag");

      // ttl 0: every later request asks the upstream again, with If-None-Match.
      const second = await curl.get(`/files${uri}`);
      assert.equal(second.status, 200);
      assert.equal(second.headers.get("x-cache"), "REVALIDATED");
      assert.equal(second.body.toString(), "channel v1\n");
      const afterSecond = await upstream.logged(uri, 3); // MISS, our own HEAD, the revalidation
      assert.deepEqual(pick(afterSecond.at(-1)), { status: 304, ifNoneMatch: nginxEtag });

      // nginx's ETag is mtime and size: a new size and a later mtime make a new one.
      writeFileSync(join(root, "latest/channel.txt"), "channel v2, a little longer\n");
      const later = new Date(Date.now() + 10_000);
      utimesSync(join(root, "latest/channel.txt"), later, later);
      const third = await curl.get(`/files${uri}`);
      assert.equal(third.status, 200);
      assert.equal(third.headers.get("x-cache"), "MISS");
      assert.equal(third.body.toString(), "channel v2, a little longer\n");
      const afterThird = await upstream.logged(uri, 4);
      assert.deepEqual(pick(afterThird.at(-1)), { status: 200, ifNoneMatch: nginxEtag });

      const fourth = await curl.get(`/files${uri}`);
      assert.equal(fourth.headers.get("x-cache"), "REVALIDATED");
      assert.equal(fourth.body.toString(), "channel v2, a little longer\n");
    });
  } finally {
    if (vault !== undefined) {
      vault.kill();
      await vault.exited();
    }
    await nginx?.stop();
    await rm(dir, { recursive: true, force: true });
  }
});

function pick(entry: LoggedRequest | undefined): { status: number; ifNoneMatch: string } | undefined {
  return entry === undefined ? undefined : { status: entry.status, ifNoneMatch: entry.ifNoneMatch };
}
