/**
 * The pypi backend over real HTTP, against two scripted origins: the index, and a separate
 * "CDN" host for `packages_url` (another origin, as files.pythonhosted.org is to pypi.org).
 * The end-to-end test with pip and nginx is tests/e2e/pypi-pip.test.ts; this one covers what
 * pip never does on its own: upstream redirects, credentials per host, bad paths, 406, a
 * corrupted `.metadata` file, links to foreign hosts.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { OriginServer } from "../support/origin-server.js";
import { rawRequest } from "../support/http.js";
import { startTestVault, type TestVault } from "../support/test-vault.js";

const sha256 = (bytes: Uint8Array): string => createHash("sha256").update(bytes).digest("hex");
const JSON_TYPE = "application/vnd.pypi.simple.v1+json";

const wheel = Buffer.from("a wheel's bytes");
const metadata = Buffer.from("Metadata-Version: 2.1\nName: demo\nVersion: 1.0\n");
const sdist = Buffer.from("an sdist's bytes");

function projectJson(cdn: string): string {
  return JSON.stringify({
    meta: { "api-version": "1.1" },
    name: "demo",
    files: [
      { filename: "demo-1.0-py3-none-any.whl", url: `${cdn}/packages/ab/demo-1.0-py3-none-any.whl`, hashes: { sha256: sha256(wheel) }, "core-metadata": { sha256: sha256(metadata) } },
      { filename: "demo-0.9.tar.gz", url: "https://elsewhere.example/demo-0.9.tar.gz", hashes: { sha256: sha256(sdist) } },
    ],
  });
}

function projectHtml(cdn: string): string {
  return `<html><body><a href="${cdn}/packages/ab/demo-1.0-py3-none-any.whl#sha256=${sha256(wheel)}" data-core-metadata="sha256=${sha256(metadata)}">demo-1.0-py3-none-any.whl</a><br/></body></html>`;
}

describe("pypi backend", () => {
  let index: OriginServer;
  let cdn: OriginServer;
  let vault: TestVault;

  before(async () => {
    index = await new OriginServer().start();
    cdn = await new OriginServer().start();
    index.files.set("/simple/demo/", { body: Buffer.from(projectJson(cdn.url)), contentType: JSON_TYPE, etag: '"p1"' });
    // An upstream that moved a project answers with a redirect to an absolute URL on itself.
    index.files.set("/simple/renamed/", { body: Buffer.alloc(0), redirectTo: `${index.url}/simple/demo/` });
    cdn.files.set("/packages/ab/demo-1.0-py3-none-any.whl", { body: wheel });
    cdn.files.set("/packages/ab/demo-1.0-py3-none-any.whl.metadata", { body: Buffer.from("corrupted metadata") });
    cdn.files.set("/packages/legacy/demo-0.1.tar.gz", { body: sdist });
    vault = await startTestVault({
      extraYaml: [
        "backends:",
        `  - {type: pypi, name: pypi, config: {prefix: /pypi/, index_url: "${index.url}/simple", packages_url: "${cdn.url}/packages", username: user, password: secret, ttl: 1m}}`,
      ].join("\n"),
    });
  });

  after(async () => {
    await vault.close();
    await index.stop();
    await cdn.stop();
  });

  it("JSON page: links to the CDN come back to the vault with their digests; a foreign host's file is left out", async () => {
    const response = await rawRequest(vault.url, "/pypi/simple/demo/", { headers: { accept: JSON_TYPE } });
    assert.equal(response.status, 200);
    assert.equal(response.header("vary"), "Accept");
    const page = response.json<{ files: Array<{ filename: string; url: string }> }>();
    assert.deepEqual(page.files.map((file) => file.filename), ["demo-1.0-py3-none-any.whl"]);
    assert.equal(page.files[0]?.url, `../../packages/sha256/${sha256(wheel)}/metadata-sha256/${sha256(metadata)}/ab/demo-1.0-py3-none-any.whl`);
  });

  it("an upstream redirect is followed by the vault, never passed to the client", async () => {
    const response = await rawRequest(vault.url, "/pypi/simple/renamed/", { headers: { accept: JSON_TYPE } });
    assert.equal(response.status, 200);
    assert.equal(response.header("location"), undefined);
    assert.ok(!response.body.toString().includes(index.url.replace("http://", "")));
    assert.match(response.body.toString(), /\.\.\/\.\.\/packages\/sha256\//);
  });

  it("credentials go to the index's host only, never to packages_url on another host", async () => {
    const page = await rawRequest(vault.url, "/pypi/simple/demo/", { headers: { accept: JSON_TYPE } });
    const url = new URL(page.json<{ files: Array<{ url: string }> }>().files[0]?.url ?? "", `${vault.url}/pypi/simple/demo/`);
    const file = await rawRequest(vault.url, url.pathname);
    assert.equal(file.status, 200);
    assert.deepEqual(file.body, wheel);
    assert.ok(index.requests.length > 0 && index.requests.every((request) => request.headers.authorization === `Basic ${Buffer.from("user:secret").toString("base64")}`));
    assert.ok(cdn.requests.length > 0 && cdn.requests.every((request) => request.headers.authorization === undefined));
  });

  it("a .metadata file is verified against the page's core-metadata digest: a mismatch is aborted and not cached", async () => {
    const path = `/pypi/packages/sha256/${sha256(wheel)}/metadata-sha256/${sha256(metadata)}/ab/demo-1.0-py3-none-any.whl.metadata`;
    for (let attempt = 1; attempt <= 2; attempt++) {
      await assert.rejects(rawRequest(vault.url, path), `attempt ${attempt}`);
      assert.equal(cdn.count("/packages/ab/demo-1.0-py3-none-any.whl.metadata"), attempt);
    }
    cdn.files.set("/packages/ab/demo-1.0-py3-none-any.whl.metadata", { body: metadata });
    const repaired = await rawRequest(vault.url, path);
    assert.deepEqual(repaired.body, metadata);
    assert.equal((await rawRequest(vault.url, path)).header("x-cache"), "HIT");
  });

  it("HTML is negotiated separately and rewritten the same way; an unacceptable Accept is 406", async () => {
    index.files.set("/simple/html-only/", { body: Buffer.from(projectHtml(cdn.url)), contentType: "text/html" });
    const html = await rawRequest(vault.url, "/pypi/simple/html-only/", { headers: { accept: "text/html" } });
    assert.equal(html.status, 200);
    assert.equal(
      html.body.toString(),
      `<html><body><a href="../../packages/sha256/${sha256(wheel)}/metadata-sha256/${sha256(metadata)}/ab/demo-1.0-py3-none-any.whl#sha256=${sha256(wheel)}" data-core-metadata="sha256=${sha256(metadata)}">demo-1.0-py3-none-any.whl</a><br/></body></html>`,
    );
    assert.equal(index.requests.filter((request) => request.url === "/simple/html-only/").at(-1)?.headers.accept, "application/vnd.pypi.simple.v1+html, text/html;q=0.9");
    const head = await rawRequest(vault.url, "/pypi/simple/html-only/", { method: "HEAD", headers: { accept: "text/html" } });
    assert.equal(head.status, 200);
    assert.equal(head.header("x-cache"), "HIT");
    const refused = await rawRequest(vault.url, "/pypi/simple/demo/", { headers: { accept: "application/json" } });
    assert.equal(refused.status, 406);
  });

  it("the source design's unverified packages/<path> still works, stored apart from verified copies", async () => {
    const response = await rawRequest(vault.url, "/pypi/packages/legacy/demo-0.1.tar.gz");
    assert.equal(response.status, 200);
    assert.deepEqual(response.body, sdist);
    assert.equal(cdn.count("/packages/legacy/demo-0.1.tar.gz"), 1);
  });

  it("names: redirects to the normalised name; bad paths are refused without an upstream request", async () => {
    const redirect = await rawRequest(vault.url, "/pypi/simple/De_Mo/");
    assert.equal(redirect.status, 301);
    assert.equal(redirect.header("location"), "../de-mo/");
    assert.equal((await rawRequest(vault.url, "/pypi/simple")).header("location"), "simple/");
    const before = index.requests.length + cdn.requests.length;
    for (const [path, status] of [
      ["/pypi/packages/%2e%2e/%2e%2e/etc/passwd", 400],
      ["/pypi/packages/ab/..%2f..%2fx.whl", 400],
      ["/pypi/packages//evil.example/x.whl", 400],
      ["/pypi/simple/not%20a%20name/", 404],
      ["/pypi/simple/demo/extra", 404],
      ["/pypi/elsewhere/", 404],
    ] as const) {
      assert.equal((await rawRequest(vault.url, path)).status, status, path);
    }
    assert.equal(index.requests.length + cdn.requests.length, before, "no upstream request for a refused path");
  });
});
