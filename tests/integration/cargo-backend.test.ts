/**
 * The cargo backend over real HTTP, against a scripted registry (a static file map: a sparse
 * index and a download host with cargo's `dl` markers). The end-to-end test with cargo and nginx
 * is tests/e2e/cargo.test.ts; this one covers what cargo never does on its own: concurrent cold
 * requests, hostile paths, `config.json` behind proxies, versions the index does not list.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { OriginServer, sha256 } from "../support/origin-server.js";
import { rawRequest } from "../support/http.js";
import { startTestVaultInFront, type TestVault } from "../support/test-vault.js";

/** A .crate's stand-in: the backend checks bytes against the index, not what they hold. */
const crateBytes = (name: string): Buffer => Buffer.from(`${name} `.repeat(5000));

const GREETING = crateBytes("vault-greeting-1.0.0");
const GREETING_NEW = crateBytes("vault-greeting-1.1.0");
const line = (name: string, vers: string, bytes: Buffer): string =>
  `${JSON.stringify({ name, vers, deps: [], cksum: sha256(bytes), features: {}, yanked: false })}\n`;

describe("cargo backend", () => {
  let origin: OriginServer;
  let vault: TestVault;

  before(async () => {
    origin = await new OriginServer().start();
    const files: Record<string, Buffer> = {
      "/index/va/ul/vault-greeting": Buffer.from(line("vault-greeting", "1.0.0", GREETING)),
      // The download host's layout, as a `dl` with markers names it.
      "/files/va/ul/vault-greeting/vault-greeting-1.0.0.crate": GREETING,
    };
    for (const [path, body] of Object.entries(files)) origin.files.set(path, { body, etag: `"${sha256(body).slice(0, 16)}"`, delayMs: 5, chunkSize: 4096 });
    vault = await startTestVaultInFront(origin, {
      extraYaml: [
        "backends:",
        `  - {type: cargo, name: crates, config: {prefix: /cargo/, index_url: "${origin.url}/index/", dl_url: "${origin.url}/files/{lowerprefix}/{crate}/{crate}-{version}.crate", ttl: 1h}}`,
        `  - {type: cargo, name: private, config: {prefix: /private/, index_url: "${origin.url}/index/", dl_url: "${origin.url}/files/{lowerprefix}/{crate}/{crate}-{version}.crate", token: "cargo-token-1"}}`,
      ].join("\n"),
    });
  });

  after(async () => {
    await vault.close();
    await origin.stop();
  });

  it("20 concurrent cold requests for a .crate: one request for it upstream, one for its index file; then a HIT", async () => {
    const answers = await Promise.all(Array.from({ length: 20 }, () => rawRequest(vault.url, "/cargo/crates/vault-greeting/1.0.0/download")));
    for (const answer of answers) {
      assert.equal(answer.status, 200, answer.body.toString());
      assert.deepEqual(answer.body, GREETING);
    }
    assert.equal(origin.count("/files/va/ul/vault-greeting/vault-greeting-1.0.0.crate"), 1);
    assert.equal(origin.count("/index/va/ul/vault-greeting"), 1);
    assert.equal((await rawRequest(vault.url, "/cargo/crates/vault-greeting/1.0.0/download")).header("x-cache"), "HIT");
    // The name in another case is the same crate, the same cached copy.
    const upper = await rawRequest(vault.url, "/cargo/crates/Vault-Greeting/1.0.0/download");
    assert.equal(upper.header("x-cache"), "HIT");
    // The index file the vault read is the one clients get.
    const indexFile = await rawRequest(vault.url, "/cargo/va/ul/vault-greeting");
    assert.equal(indexFile.header("x-cache"), "HIT");
    assert.equal(indexFile.body.toString(), line("vault-greeting", "1.0.0", GREETING));
  });

  it("a version the index does not list is a 404, and its .crate is not asked for upstream", async () => {
    const answer = await rawRequest(vault.url, "/cargo/crates/vault-greeting/9.9.9/download");
    assert.equal(answer.status, 404);
    assert.equal(origin.count("/files/va/ul/vault-greeting/vault-greeting-9.9.9.crate"), 0);
    assert.equal((await rawRequest(vault.url, "/cargo/no/su/no-such-crate")).status, 404, "a missing index file is a 404");
  });

  it("a version published since the index file was cached: its cksum from the upstream's file now; a tampered .crate is refused and not cached", async () => {
    const indexFile = Buffer.from(line("vault-greeting", "1.0.0", GREETING) + line("vault-greeting", "1.1.0", GREETING_NEW));
    origin.files.set("/index/va/ul/vault-greeting", { body: indexFile, etag: '"grown"' });
    const file = "/files/va/ul/vault-greeting/vault-greeting-1.1.0.crate";
    origin.files.set(file, { body: crateBytes("tampered") });
    for (let attempt = 1; attempt <= 2; attempt++) {
      // Its first client gets the bytes as they come, but never the last one: the answer breaks off (or is a 502 once the status line waits).
      const outcome = await rawRequest(vault.url, "/cargo/crates/vault-greeting/1.1.0/download").then(
        (answer) => (answer.status === 200 ? `a whole 200 of ${answer.body.length} bytes` : answer.status),
        () => "broken off",
      );
      assert.ok(outcome === "broken off" || outcome === 502, `a tampered .crate is refused: ${String(outcome)}`);
      assert.equal(origin.count(file), attempt, "nothing was cached");
    }
    origin.files.set(file, { body: GREETING_NEW });
    const answer = await rawRequest(vault.url, "/cargo/crates/vault-greeting/1.1.0/download");
    assert.equal(answer.status, 200);
    assert.deepEqual(answer.body, GREETING_NEW);
    // The cached index file is still the old one (fresh for an hour).
    assert.doesNotMatch((await rawRequest(vault.url, "/cargo/va/ul/vault-greeting")).body.toString(), /1\.1\.0/);
  });

  it("a private registry's token goes to the index and the download host as cargo sends it: the whole Authorization value", async () => {
    const answer = await rawRequest(vault.url, "/private/crates/vault-greeting/1.0.0/download");
    assert.equal(answer.status, 200, answer.body.toString());
    const sent = origin.requests.filter((request) => request.headers["authorization"] !== undefined).map((request) => [request.url, request.headers["authorization"]]);
    assert.deepEqual(sent, [
      ["/index/va/ul/vault-greeting", "cargo-token-1"],
      ["/files/va/ul/vault-greeting/vault-greeting-1.0.0.crate", "cargo-token-1"],
    ]);
  });

  it("config.json is the vault's own: dl names the vault as the client reached it", async () => {
    const before = origin.requests.length;
    const direct = await rawRequest(vault.url, "/cargo/config.json");
    assert.equal(direct.status, 200);
    assert.deepEqual(direct.json(), { dl: `${vault.url}/cargo/crates/{crate}/{version}/download` });
    const named = await rawRequest(vault.url, "/cargo/config.json", { headers: { host: "vault.internal:8080" } });
    assert.deepEqual(named.json(), { dl: "http://vault.internal:8080/cargo/crates/{crate}/{version}/download" });
    const proxied = await rawRequest(vault.url, "/cargo/config.json", { headers: { "x-forwarded-proto": "https", "x-forwarded-host": "crates.example.com" } });
    assert.deepEqual(proxied.json(), { dl: "https://crates.example.com/cargo/crates/{crate}/{version}/download" });
    assert.equal(origin.requests.length, before, "config.json asks nothing upstream");
  });

  it("bad paths are refused before any upstream request", async () => {
    const before = origin.requests.length;
    for (const [path, status] of [
      ["/cargo/va/ul/../ul/vault-greeting", 400],
      ["/cargo/va/ul/%2e%2e", 400],
      ["/cargo/va/ul/vault%2fgreeting", 400],
      ["/cargo/va/ul/Vault-Greeting", 400],
      ["/cargo/va//vault-greeting", 400],
      ["/cargo/va/ul/vault-gr%00eting", 400],
      ["/cargo/3/l/l%C3%B6g", 400],
      ["/cargo/crates/../../etc/passwd/download", 400],
      ["/cargo/crates/vault-greeting/..%2f..%2fx/download", 400],
      ["/cargo/crates/vault-greeting/not-a-version/download", 400],
      ["/cargo/crates/-x/1.0.0/download", 400],
      ["/cargo/crates/vault.greeting/1.0.0/download", 400],
      ["/cargo/http:%2f%2fevil.example/x", 400],
      ["/cargo/@evil.example/x", 400],
      ["/cargo/xx/yy/vault-greeting", 404],
      ["/cargo/1/ab", 404],
      ["/cargo/api/v1/crates", 404],
      ["/cargo/crates/vault-greeting/1.0.0", 404],
      ["/cargo/crates/vault-greeting/1.0.0/download/x", 404],
    ] as const) {
      const answer = await rawRequest(vault.url, path);
      assert.equal(answer.status, status, `${path}: ${answer.body.toString()}`);
    }
    assert.equal(origin.requests.length, before, "no upstream request for a refused path");
  });
});
