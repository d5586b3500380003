/**
 * The npm backend over real HTTP against a scripted registry that counts what reaches it. The
 * end-to-end test with npm, pnpm and yarn is tests/e2e/npm-clients.test.ts; this one covers what
 * those clients never do on their own: a herd on one tarball, a tarball asked for after a restart
 * with no packument in memory, tarballs on another host, the vault's URL behind a proxy, bad
 * names, credentials only for the registry's host.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { OriginServer } from "../support/origin-server.js";
import { rawRequest } from "../support/http.js";
import { GENERIC_UPSTREAM_FAILURE, loggedUpstreamReason, startTestVault, type TestVault } from "../support/test-vault.js";

const sri = (bytes: Uint8Array): string => `sha512-${createHash("sha512").update(bytes).digest("base64")}`;
const CORGI = "application/vnd.npm.install-v1+json; q=1.0, application/json; q=0.8, */*";

const libTarball = Buffer.from("lib 1.0.0's tarball bytes");
const cdnTarball = Buffer.from("a tarball on a CDN");
const TOKEN = "upstream-registry-token";

function packument(registry: string, cdn: string): string {
  return JSON.stringify({
    name: "@acme/lib",
    "dist-tags": { latest: "1.1.0" },
    versions: {
      "1.0.0": { name: "@acme/lib", version: "1.0.0", dist: { tarball: `${registry}/@acme/lib/-/lib-1.0.0.tgz`, integrity: sri(libTarball) } },
      "1.1.0": { name: "@acme/lib", version: "1.1.0", dist: { tarball: `${cdn}/acme/lib-1.1.0.tgz`, integrity: sri(cdnTarball) } },
    },
  });
}

describe("npm backend", () => {
  let registry: OriginServer;
  let cdn: OriginServer;
  let vault: TestVault;
  const backends = (url: string): string =>
    `backends: [{type: npm, name: npm, config: {prefix: /npm/, registry_url: "${url}", token: ${TOKEN}, ttl: 1m}}]`;

  before(async () => {
    registry = await new OriginServer().start();
    cdn = await new OriginServer().start();
    registry.files.set("/@acme%2flib", { body: Buffer.from(packument(registry.url, cdn.url)), contentType: "application/json", etag: '"p1"' });
    registry.files.set("/@acme/lib/-/lib-1.0.0.tgz", { body: libTarball, chunkSize: 4, delayMs: 5 });
    registry.files.set("/-/v1/search", { body: Buffer.from('{"objects":[]}'), contentType: "application/json" });
    cdn.files.set("/acme/lib-1.1.0.tgz", { body: cdnTarball });
    vault = await startTestVault({ extraYaml: backends(registry.url) });
  });

  after(async () => {
    await vault.close();
    await registry.stop();
    await cdn.stop();
  });

  it("answers each packument form with its own cached copy, links built from the client's Host and X-Forwarded-*", async () => {
    const viaProxy = await rawRequest(vault.url, "/npm/@acme%2flib", { headers: { host: "vault.example", "x-forwarded-proto": "https", accept: "application/json" } });
    assert.equal(viaProxy.status, 200);
    assert.equal(viaProxy.header("vary"), "Accept");
    const full = viaProxy.json<{ versions: Record<string, { dist: { tarball: string } }> }>();
    assert.equal(full.versions["1.0.0"]?.dist.tarball, "https://vault.example/npm/@acme/lib/-/lib-1.0.0.tgz");
    // The CDN's tarball is served by the vault at the registry's usual path, like every other.
    assert.equal(full.versions["1.1.0"]?.dist.tarball, "https://vault.example/npm/@acme/lib/-/lib-1.1.0.tgz");
    const direct = await rawRequest(vault.url, "/npm/@acme%2Flib", { headers: { accept: "application/json" } });
    assert.equal(direct.header("x-cache"), "HIT");
    const host = new URL(vault.url).host;
    assert.equal(direct.json<typeof full>().versions["1.0.0"]?.dist.tarball, `http://${host}/npm/@acme/lib/-/lib-1.0.0.tgz`);
    assert.notEqual(direct.header("etag"), viaProxy.header("etag"), "each base URL has its own ETag");
    const again = await rawRequest(vault.url, "/npm/@acme/lib", { headers: { accept: "application/json", "if-none-match": direct.header("etag") ?? "" } });
    assert.equal(again.status, 304);
    const corgi = await rawRequest(vault.url, "/npm/@acme%2flib", { headers: { accept: CORGI } });
    assert.equal(corgi.status, 200);
    const asked = registry.requests.filter((request) => request.url === "/@acme%2flib").map((request) => request.headers.accept);
    assert.deepEqual(asked, ["application/json", "application/vnd.npm.install-v1+json; q=1.0, application/json; q=0.8"]);
    const forwarded = await rawRequest(vault.url, "/npm/@acme%2flib", { headers: { "x-forwarded-host": "npm.example.com:8443", "x-forwarded-proto": "https", accept: "application/json" } });
    assert.equal(forwarded.json<typeof full>().versions["1.0.0"]?.dist.tarball, "https://npm.example.com:8443/npm/@acme/lib/-/lib-1.0.0.tgz");
    // A Host header that is not a host name does not end up in the links.
    const odd = await rawRequest(vault.url, "/npm/@acme%2flib", { headers: { host: 'evil"><script>', accept: "application/json" } });
    assert.equal(odd.json<typeof full>().versions["1.0.0"]?.dist.tarball, `http://${host}/npm/@acme/lib/-/lib-1.0.0.tgz`);
  });

  it("sends the registry token to the registry only", () => {
    for (const request of registry.requests) assert.equal(request.headers.authorization, `Bearer ${TOKEN}`);
  });

  it("twenty clients asking for one tarball at once cause one upstream download, verified", async () => {
    const bodies = await Promise.all(Array.from({ length: 20 }, () => rawRequest(vault.url, "/npm/@acme/lib/-/lib-1.0.0.tgz")));
    for (const body of bodies) {
      assert.equal(body.status, 200);
      assert.deepEqual(body.body, libTarball);
    }
    assert.equal(registry.count("/@acme/lib/-/lib-1.0.0.tgz"), 1);
  });

  it("a tarball on another host than the registry's is not fetched from there", async () => {
    const response = await rawRequest(vault.url, "/npm/@acme/lib/-/lib-1.1.0.tgz");
    assert.equal(response.status, 502);
    assert.match(response.json<{ error: string }>().error, GENERIC_UPSTREAM_FAILURE);
    assert.match(loggedUpstreamReason(vault, response.header("x-request-id")), /the tarball of @acme\/lib is on another host than the registry's/);
    assert.equal(cdn.requests.length, 0);
  });

  it("a tarball asked for before its packument was seen is verified all the same: the vault reads the packument first", async () => {
    const fresh = await startTestVault({ extraYaml: backends(registry.url) });
    const packumentRequests = (): number => registry.count("/@acme%2flib");
    try {
      const before = packumentRequests();
      registry.files.set("/@acme/lib/-/lib-1.0.0.tgz", { body: Buffer.from("tampered bytes, same length"), chunkSize: 4 });
      const tampered = await rawRequest(fresh.url, "/npm/@acme/lib/-/lib-1.0.0.tgz").catch(() => undefined);
      assert.ok(tampered === undefined || tampered.status !== 200, "a tarball that fails its integrity is an aborted response");
      assert.equal(packumentRequests(), before + 1);
      registry.files.set("/@acme/lib/-/lib-1.0.0.tgz", { body: libTarball });
      const good = await rawRequest(fresh.url, "/npm/@acme/lib/-/lib-1.0.0.tgz");
      assert.deepEqual(good.body, libTarball);
    } finally {
      await fresh.close();
    }
  });

  it("after a restart, the cached packument verifies a tarball without asking the registry for it again", async () => {
    const dataDir = await mkdtemp(join(tmpdir(), "vault-npm-restart-"));
    try {
      const first = await startTestVault({ extraYaml: backends(registry.url), dataDir });
      assert.equal((await rawRequest(first.url, "/npm/@acme%2flib", { headers: { accept: CORGI } })).status, 200);
      await first.close();
      const packumentRequests = registry.count("/@acme%2flib");
      const restarted = await startTestVault({ extraYaml: backends(registry.url), dataDir });
      try {
        registry.files.set("/@acme/lib/-/lib-1.0.0.tgz", { body: Buffer.from("tampered bytes, same length"), chunkSize: 4 });
        const tampered = await rawRequest(restarted.url, "/npm/@acme/lib/-/lib-1.0.0.tgz").catch(() => undefined);
        assert.ok(tampered === undefined || tampered.status !== 200);
        assert.equal(registry.count("/@acme%2flib"), packumentRequests, "the integrity came from the cached packument");
      } finally {
        await restarted.close();
        registry.files.set("/@acme/lib/-/lib-1.0.0.tgz", { body: libTarball });
      }
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  });

  it("refuses names that are not npm names, and never asks upstream for them", async () => {
    const before = registry.requests.length;
    for (const path of ["/npm/%2e%2e", "/npm/@acme%2f..", "/npm/@acme%2f..%2f..%2fetc", "/npm/..%2f..%2fetc%2fpasswd", "/npm/@acme/lib/-/..%2f..%2fx.tgz", "/npm/lodash/-/underscore-1.0.0.tgz"]) {
      const response = await rawRequest(vault.url, path);
      assert.ok([400, 404].includes(response.status), `${path}: ${response.status}`);
      assert.match(response.header("content-type") ?? "", /^application\/json/);
    }
    assert.equal(registry.requests.length, before);
  });

  it("forwards search with only npm's own query parameters", async () => {
    const response = await rawRequest(vault.url, "/npm/-/v1/search?text=lib&size=20&evil=1&from=0");
    assert.equal(response.status, 200);
    assert.equal(response.header("x-cache"), "BYPASS");
    const forwarded = registry.requests.filter((request) => request.url.startsWith("/-/v1/search")).at(-1);
    assert.equal(forwarded?.url, "/-/v1/search?text=lib&size=20&from=0");
  });

  it("token_env: the token comes from the environment at start; an unset variable is refused naming the key", async () => {
    const variable = "VAULT_TEST_NPM_TOKEN";
    process.env[variable] = "token-from-the-environment";
    try {
      const fromEnv = await startTestVault({
        extraYaml: `backends: [{type: npm, name: npm, config: {prefix: /npm/, registry_url: "${registry.url}", token_env: ${variable}}}]`,
      });
      try {
        const before = registry.requests.length;
        assert.equal((await rawRequest(fromEnv.url, "/npm/@acme%2flib")).status, 200);
        assert.deepEqual(
          registry.requests.slice(before).map((request) => request.headers.authorization),
          ["Bearer token-from-the-environment"],
        );
      } finally {
        await fromEnv.close();
      }
      delete process.env[variable];
      await assert.rejects(
        startTestVault({ extraYaml: `backends: [{type: npm, name: npm, config: {prefix: /npm/, registry_url: "${registry.url}", token_env: ${variable}}}]` }),
        (error: unknown) => error instanceof Error && /backends\[0\]\.config\.token_env: environment variable VAULT_TEST_NPM_TOKEN is not set/.test(error.message),
      );
    } finally {
      delete process.env[variable];
    }
  });

  it("answers other registry API paths 404 and writes 405, as JSON", async () => {
    const whoami = await rawRequest(vault.url, "/npm/-/whoami");
    assert.equal(whoami.status, 404);
    assert.ok(typeof whoami.json<{ error?: string }>().error === "string");
    const unpublish = await rawRequest(vault.url, "/npm/@acme%2flib/-rev/1", { method: "DELETE" });
    assert.equal(unpublish.status, 405);
    assert.equal(unpublish.header("allow"), "GET, HEAD");
  });
});
