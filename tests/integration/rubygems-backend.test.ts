/**
 * The rubygems backend over real HTTP, against a scripted gem source (a static file map). The
 * end-to-end test with gem, bundler and nginx is tests/e2e/rubygems.test.ts; this one covers
 * what those clients never do on their own: concurrent cold requests, hostile paths, ranges and
 * conditions on the compact index asked for by hand, gem file names that split more than one way.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { OriginServer, sha256 } from "../support/origin-server.js";
import { rawRequest } from "../support/http.js";
import { startTestVaultInFront, type TestVault } from "../support/test-vault.js";

const md5 = (bytes: Uint8Array | string): string => createHash("md5").update(bytes).digest("hex");

/** A gem file's stand-in: the backend checks bytes against the index, not what they hold. */
const gemBytes = (name: string): Buffer => Buffer.from(`${name} `.repeat(5000));

const RACK = gemBytes("rack-3.0.0");
const RACK_NEW = gemBytes("rack-3.1.0");
const TWO = gemBytes("foo-2-1.0.0-x86_64-linux");
const infoOf = (lines: ReadonlyArray<[string, Buffer]>): string => `---\n${lines.map(([version, bytes]) => `${version} |checksum:${sha256(bytes)}\n`).join("")}`;

describe("rubygems backend", () => {
  let origin: OriginServer;
  let vault: TestVault;
  const versions = Buffer.from(`created_at: 2024-01-01T00:00:00Z\n---\n${"gem-with-a-long-name 1.0.0,1.1.0 0123456789abcdef0123456789abcdef\n".repeat(200)}`);

  before(async () => {
    origin = await new OriginServer().start();
    const files: Record<string, Buffer> = {
      "/versions": versions,
      "/names": Buffer.from("---\nfoo-2\nrack\n"),
      "/info/rack": Buffer.from(infoOf([["3.0.0", RACK]])),
      "/gems/rack-3.0.0.gem": RACK,
      "/info/foo-2": Buffer.from(infoOf([["1.0.0-x86_64-linux", TWO]])),
      "/gems/foo-2-1.0.0-x86_64-linux.gem": TWO,
      "/specs.4.8.gz": Buffer.from("a gzipped Marshal dump"),
      "/quick/Marshal.4.8/rack-3.0.0.gemspec.rz": Buffer.from("a deflated Marshal dump"),
    };
    for (const [path, body] of Object.entries(files)) origin.files.set(path, { body, etag: `"${md5(path)}"`, delayMs: 5, chunkSize: 4096 });
    vault = await startTestVaultInFront(origin, { extraYaml: ["backends:", `  - {type: rubygems, name: gems, config: {prefix: /rubygems/, source_url: "${origin.url}", ttl: 1h}}`].join("\n") });
  });

  after(async () => {
    await vault.close();
    await origin.stop();
  });

  it("20 concurrent cold requests for a .gem: one request for it upstream, one for its info file; then a HIT", async () => {
    const answers = await Promise.all(Array.from({ length: 20 }, () => rawRequest(vault.url, "/rubygems/gems/rack-3.0.0.gem")));
    for (const answer of answers) {
      assert.equal(answer.status, 200);
      assert.deepEqual(answer.body, RACK);
    }
    assert.equal(origin.count("/gems/rack-3.0.0.gem"), 1);
    assert.equal(origin.count("/info/rack"), 1);
    assert.equal((await rawRequest(vault.url, "/rubygems/gems/rack-3.0.0.gem")).header("x-cache"), "HIT");
    // The info file the vault read is the one clients get.
    assert.equal((await rawRequest(vault.url, "/rubygems/info/rack")).header("x-cache"), "HIT");
  });

  it("a file name that splits more than one way: the split the compact index lists (foo-2, 1.0.0-x86_64-linux)", async () => {
    const answer = await rawRequest(vault.url, "/rubygems/gems/foo-2-1.0.0-x86_64-linux.gem");
    assert.equal(answer.status, 200, answer.body.toString());
    assert.deepEqual(answer.body, TWO);
    assert.equal(origin.count("/info/foo"), 1, "foo (version 2-1.0.0-x86_64-linux) was asked first");
    assert.equal(origin.count("/info/foo-2"), 1);
  });

  it("a version the index does not list is a 404, and its .gem is not asked for upstream", async () => {
    const answer = await rawRequest(vault.url, "/rubygems/gems/rack-9.9.9.gem");
    assert.equal(answer.status, 404);
    assert.equal(origin.count("/gems/rack-9.9.9.gem"), 0);
  });

  it("a version published since the info file was cached: its checksum read from the upstream's info file now", async () => {
    const info = Buffer.from(infoOf([["3.0.0", RACK], ["3.1.0", RACK_NEW]]));
    origin.files.set("/info/rack", { body: info, etag: `"${md5(info)}"` });
    origin.files.set("/gems/rack-3.1.0.gem", { body: gemBytes("tampered") });
    const before = origin.count("/info/rack");
    assert.equal((await rawRequest(vault.url, "/rubygems/gems/rack-3.1.0.gem")).status, 502, "a tampered .gem is refused");
    assert.equal(origin.count("/info/rack"), before + 1);
    origin.files.set("/gems/rack-3.1.0.gem", { body: RACK_NEW });
    const answer = await rawRequest(vault.url, "/rubygems/gems/rack-3.1.0.gem");
    assert.equal(answer.status, 200);
    assert.deepEqual(answer.body, RACK_NEW);
    assert.equal(origin.count("/gems/rack-3.1.0.gem"), 2, "the tampered copy was not cached");
    // The cached info file is still the old one (fresh for an hour).
    assert.doesNotMatch((await rawRequest(vault.url, "/rubygems/info/rack")).body.toString(), /3\.1\.0/);
  });

  it("a tampered .gem is answered with an error status, never a short 200", async () => {
    const info = Buffer.from(infoOf([["1.0.0", gemBytes("good")]]));
    origin.files.set("/info/brittle", { body: info });
    origin.files.set("/gems/brittle-1.0.0.gem", { body: gemBytes("evil") });
    for (let attempt = 1; attempt <= 2; attempt++) {
      const answer = await rawRequest(vault.url, "/rubygems/gems/brittle-1.0.0.gem");
      assert.equal(answer.status, 502, `attempt ${attempt}`);
      assert.equal(origin.count("/gems/brittle-1.0.0.gem"), attempt, "nothing was cached");
    }
  });

  it("Range on versions: cold and cached, with Bundler's validators (the MD5 ETag, Repr-Digest)", async () => {
    const cold = await rawRequest(vault.url, "/rubygems/versions", { headers: { range: "bytes=100-" } });
    assert.equal(cold.status, 206);
    assert.equal(cold.header("content-range"), `bytes 100-${versions.length - 1}/${versions.length}`);
    assert.deepEqual(cold.body, versions.subarray(100));
    assert.equal(cold.header("etag"), `"${md5(versions)}"`);
    assert.equal(cold.header("repr-digest"), `sha-256=:${createHash("sha256").update(versions).digest("base64")}:, md5=:${createHash("md5").update(versions).digest("base64")}:`);
    // Bundler: If-None-Match with the MD5 of what it holds, and Range from its last byte.
    const same = await rawRequest(vault.url, "/rubygems/versions", { headers: { "if-none-match": `"${md5(versions)}"`, range: `bytes=${versions.length - 1}-` } });
    assert.equal(same.status, 304);
    const grown = await rawRequest(vault.url, "/rubygems/versions", { headers: { "if-none-match": `"${md5(versions.subarray(0, 500))}"`, range: "bytes=499-" } });
    assert.equal(grown.status, 206);
    assert.equal(grown.header("x-cache"), "HIT");
    assert.deepEqual(grown.body, versions.subarray(499));
    const past = await rawRequest(vault.url, "/rubygems/versions", { headers: { range: `bytes=${versions.length + 10}-` } });
    assert.equal(past.status, 416);
    assert.equal(origin.count("/versions"), 1);
  });

  it("the root answers 200 by itself (gem asks for it before it uses the compact index); legacy files pass through", async () => {
    const before = origin.requests.length;
    const root = await rawRequest(vault.url, "/rubygems/", { method: "HEAD" });
    assert.equal(root.status, 200);
    assert.equal(origin.requests.length, before);
    const specs = await rawRequest(vault.url, "/rubygems/specs.4.8.gz");
    assert.deepEqual(specs.body, Buffer.from("a gzipped Marshal dump"));
    const quick = await rawRequest(vault.url, "/rubygems/quick/Marshal.4.8/rack-3.0.0.gemspec.rz");
    assert.deepEqual(quick.body, Buffer.from("a deflated Marshal dump"));
    const names = await rawRequest(vault.url, "/rubygems/names");
    assert.equal(names.body.toString(), "---\nfoo-2\nrack\n");
    assert.equal(names.header("etag"), `"${md5("---\nfoo-2\nrack\n")}"`);
  });

  it("bad paths are refused before any upstream request", async () => {
    const before = origin.requests.length;
    for (const [path, status] of [
      ["/rubygems/info/../versions", 400],
      ["/rubygems/info/%2e%2e", 400],
      ["/rubygems/info/rack%2fx", 400],
      ["/rubygems/info/..", 400],
      ["/rubygems/info/.hidden", 400],
      ["/rubygems/info//rack", 400],
      ["/rubygems/info/ra%00ck", 400],
      ["/rubygems/info/r%C3%A4ck", 400],
      ["/rubygems/gems/../../etc/passwd", 400],
      ["/rubygems/gems/rack.gem", 400],
      ["/rubygems/gems/rack-3.0.0.tar", 400],
      ["/rubygems/gems/-1.0.0.gem", 400],
      ["/rubygems/gems/rack-3.0.0.gem%3f", 400],
      ["/rubygems/quick/Marshal.4.8/..%2f..%2fversions", 400],
      ["/rubygems/quick/Marshal.4.8/rack-3.0.0.gemspec", 400],
      ["/rubygems/http:%2f%2fevil.example/x", 400],
      ["/rubygems/@evil.example/x", 400],
      ["/rubygems/api/v1/dependencies", 404],
      ["/rubygems/api/v1/gems", 404],
      ["/rubygems/quick/Marshal.4.7/rack-3.0.0.gemspec.rz", 404],
      ["/rubygems/info", 404],
      ["/rubygems/versions/x", 404],
      ["/rubygems/gems/rack-3.0.0.gem/x", 404],
    ] as const) {
      const answer = await rawRequest(vault.url, path);
      assert.equal(answer.status, status, `${path}: ${answer.body.toString()}`);
      assert.match(answer.header("content-type") ?? "", /^text\/plain/, path);
    }
    assert.equal(origin.requests.length, before, "no upstream request for a refused path");
  });
});
