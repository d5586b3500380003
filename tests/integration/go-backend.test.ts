/**
 * The go backend over real HTTP, against two scripted origins: a module proxy and a checksum
 * database (both static file maps built by tests/support/go/). The end-to-end test with the go
 * command and nginx is tests/e2e/go-modules.test.ts; this one covers what the go command never
 * does on its own: concurrent cold requests, hostile paths, percent-encoded escapes, a forged
 * database answer, a tampered .mod.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { generateKeyPairSync } from "node:crypto";
import { OriginServer } from "../support/origin-server.js";
import { rawRequest } from "../support/http.js";
import { startTestVault, type TestVault } from "../support/test-vault.js";
import { ChecksumDatabase } from "../support/go/checksum-database.js";
import { moduleHashes, StaticModuleProxy, storedZip, zipEntries, type ModuleVersion } from "../support/go/module-proxy.js";

const SUMDB = "sum.vault.test";

function module(path: string, version: string, extra: Record<string, string> = {}): ModuleVersion {
  const name = path.split("/").at(-1)?.toLowerCase() ?? "m";
  return { path, version, files: { "go.mod": `module ${path}\n\ngo 1.19\n`, [`${name}.go`]: `package ${name}\n\nconst Version = "${version}"\n`, ...extra } };
}

const greeting = module("example.test/Greeting", "v1.0.0");
const tampered = module("example.test/tampered", "v1.0.0");
const forged = module("example.test/forged", "v1.0.0");
const impostor = module("example.test/impostor", "v1.0.0");
const secret = module("private.test/secret", "v1.0.0");

describe("go backend", () => {
  let proxy: OriginServer;
  let db: OriginServer;
  let sumdb: ChecksumDatabase;
  let modules: StaticModuleProxy;
  let vault: TestVault;

  const upstreamRequests = (): number => proxy.requests.length + db.requests.length;

  before(async () => {
    proxy = await new OriginServer().start();
    db = await new OriginServer().start();
    modules = new StaticModuleProxy();
    sumdb = new ChecksumDatabase(SUMDB);
    for (const version of [greeting, tampered, forged, impostor, secret]) modules.add(version, storedZip(zipEntries(version)));
    sumdb.add(...[greeting, tampered, forged, impostor].map((version) => ({ path: version.path, version: version.version, ...moduleHashes(version) })));
    for (const [path, body] of modules.files) proxy.files.set(`/${path}`, { body, etag: `"${path.length}-${body.length}"` });
    for (const [path, body] of sumdb.files) db.files.set(`/${path}`, { body });
    try {
      vault = await startTestVault({
        extraYaml: [
          "backends:",
          `  - {type: go, name: go, config: {prefix: /go/, proxy_url: "${proxy.url}", sumdb: "${sumdb.verifierKey} ${db.url}", nosumdb: [private.test], ttl: 1m}}`,
        ].join("\n"),
      });
    } catch (error) {
      await proxy.stop();
      await db.stop();
      throw error;
    }
  });

  after(async () => {
    await vault.close();
    await proxy.stop();
    await db.stop();
  });

  it("20 concurrent cold requests for a zip: one request to the proxy, one lookup, each tile once; then a HIT", async () => {
    const path = "/go/example.test/!greeting/@v/v1.0.0.zip";
    const expected = modules.files.get("example.test/!greeting/@v/v1.0.0.zip");
    const answers = await Promise.all(Array.from({ length: 20 }, () => rawRequest(vault.url, path)));
    for (const answer of answers) {
      assert.equal(answer.status, 200);
      assert.deepEqual(answer.body, expected);
    }
    assert.equal(proxy.count("/example.test/!greeting/@v/v1.0.0.zip"), 1);
    assert.equal(db.count("/lookup/example.test/!greeting@v1.0.0"), 1);
    const tiles = db.requests.filter((request) => request.url.startsWith("/tile/"));
    assert.ok(tiles.length > 0, "the record was proven from tiles");
    assert.equal(new Set(tiles.map((request) => request.url)).size, tiles.length, "each tile was fetched once");
    assert.equal((await rawRequest(vault.url, path)).header("x-cache"), "HIT");
    // The go command's own lookup of the same record is the one the vault fetched.
    const lookup = await rawRequest(vault.url, "/go/sumdb/sum.vault.test/lookup/example.test/!greeting@v1.0.0");
    assert.equal(lookup.header("x-cache"), "HIT");
    assert.deepEqual(lookup.body, sumdb.files.get("lookup/example.test/!greeting@v1.0.0"));
  });

  it("module paths are case-escaped: `!x` and the go command's `%21x` are one artifact, asked upstream as `!x`", async () => {
    const escaped = await rawRequest(vault.url, "/go/example.test/!greeting/@v/list");
    const encoded = await rawRequest(vault.url, "/go/example.test/%21greeting/@v/list");
    assert.equal(escaped.status, 200);
    assert.equal(escaped.body.toString(), "v1.0.0\n");
    assert.deepEqual(encoded.body, escaped.body);
    assert.equal(encoded.header("x-cache"), "HIT");
    assert.equal(proxy.count("/example.test/!greeting/@v/list"), 1);
    const mod = await rawRequest(vault.url, "/go/example.test/%21greeting/@v/v1.0.0.mod");
    assert.equal(mod.body.toString(), "module example.test/Greeting\n\ngo 1.19\n");
  });

  it("bad paths are refused before any upstream request", async () => {
    const before = upstreamRequests();
    for (const [path, status] of [
      ["/go/example.test/Greeting/@v/list", 400], // an unescaped capital
      ["/go/example.test/!1x/@v/list", 400],
      ["/go/example.test/x!/@v/list", 400],
      ["/go/example.test/../etc/@v/list", 400],
      ["/go/example.test/%2e%2e/x/@v/list", 400],
      ["/go/example.test%2fx/@v/list", 400],
      ["/go/example.test/x%2F..%2F..%2Fy/@v/list", 400],
      ["/go/example.test//x/@v/list", 400],
      ["/go/example.test/x/@v/%2e%2e.info", 400],
      ["/go/example.test/x/@v/v1.0.0%00.zip", 400],
      ["/go/example.test/.hidden/@v/list", 400],
      ["/go/nodot/@v/list", 400],
      ["/go/http:%2f%2fevil.example/@v/list", 400],
      ["/go/@evil.example/x/@v/list", 400],
      ["/go/example.test/x", 404],
      ["/go/example.test/x/@v/v1.0.0.tar", 404],
      ["/go/example.test/x/@v/master.zip", 404], // only canonical versions have a .zip
      ["/go/sumdb/other.example/supported", 404],
      ["/go/sumdb/sum.vault.test/tile/8/0/1.p/0", 400],
      ["/go/sumdb/sum.vault.test/tile/8/0/000.p/256", 400],
      ["/go/sumdb/sum.vault.test/tile/8/0/../../x", 400],
      ["/go/sumdb/sum.vault.test/lookup/example.test/x@master", 400],
      ["/go/sumdb/sum.vault.test/lookup/nodot@v1.0.0", 400],
    ] as const) {
      const answer = await rawRequest(vault.url, path);
      assert.equal(answer.status, status, `${path}: ${answer.body.toString()}`);
      assert.match(answer.header("content-type") ?? "", /^text\/plain/, path);
    }
    assert.equal(upstreamRequests(), before, "no upstream request for a refused path");
  });

  it("404 and 410 upstream reach the go command as 404, in plain text (it falls back on them)", async () => {
    proxy.files.set("/example.test/gone/@v/list", { body: Buffer.alloc(0), status: 410 });
    for (const path of ["/go/example.test/gone/@v/list", "/go/example.test/missing/@v/v1.0.0.info", "/go/example.test/missing/@latest"]) {
      const answer = await rawRequest(vault.url, path);
      assert.equal(answer.status, 404, path);
      assert.match(answer.header("content-type") ?? "", /^text\/plain/);
      assert.match(answer.body.toString(), /not found/);
    }
  });

  it("a .mod that does not match the checksum database is aborted and never cached", async () => {
    const path = modules.pathOf(tampered.path, tampered.version, "mod");
    proxy.files.set(`/${path}`, { body: Buffer.from("module example.test/tampered\n\ngo 1.19\n\nrequire evil.example/x v1.0.0\n") });
    for (let attempt = 1; attempt <= 2; attempt++) {
      await assert.rejects(rawRequest(vault.url, `/go/${path}`), `attempt ${attempt}`);
      assert.equal(proxy.count(`/${path}`), attempt);
    }
    assert.ok(vault.logs().some((line) => typeof line["reason"] === "string" && line["reason"].includes("failed verification against the checksum database")));
    proxy.files.set(`/${path}`, { body: modules.files.get(path) ?? Buffer.alloc(0) });
    const repaired = await rawRequest(vault.url, `/go/${path}`);
    assert.equal(repaired.status, 200);
    assert.equal(repaired.header("x-cache"), "MISS");
    assert.equal((await rawRequest(vault.url, `/go/${path}`)).header("x-cache"), "HIT");
  });

  it("a database answer that does not prove (a record outside the signed tree, another key's signature) refuses the zip", async () => {
    const zipPath = modules.pathOf(forged.path, forged.version, "zip");
    const lookupPath = "/lookup/example.test/forged@v1.0.0";
    const genuine = db.files.get(lookupPath)?.body ?? Buffer.alloc(0);
    // The proxy serves other content, and the lookup claims its hashes, with the genuine tree head.
    const other = module(forged.path, forged.version, { "backdoor.go": "package forged\n" });
    proxy.files.set(`/${zipPath}`, { body: storedZip(zipEntries(other)) });
    const hashes = moduleHashes(other);
    const id = genuine.toString().split("\n")[0] ?? "";
    const record = `${forged.path} ${forged.version} ${hashes.zipHash}\n${forged.path} ${forged.version}/go.mod ${hashes.modHash}\n`;
    db.files.set(lookupPath, { body: Buffer.concat([Buffer.from(`${id}\n${record}\n`), sumdb.signedTree()]) });
    const outside = await rawRequest(vault.url, `/go/${zipPath}`);
    assert.equal(outside.status, 502, outside.body.toString());
    assert.ok(vault.logs().some((line) => typeof line["reason"] === "string" && line["reason"].includes("is not in its signed tree")));

    // A tree head signed by another key, for a genuine record.
    const impostorPath = "/lookup/example.test/impostor@v1.0.0";
    const record2 = db.files.get(impostorPath)?.body ?? Buffer.alloc(0);
    const otherKey = generateKeyPairSync("ed25519").privateKey;
    const root = Buffer.alloc(32).toString("base64");
    db.files.set(impostorPath, { body: Buffer.concat([record2.subarray(0, record2.indexOf("\n\n") + 2), sumdb.signNote(`go.sum database tree\n${sumdb.size}\n${root}\n`, otherKey)]) });
    const unsigned = await rawRequest(vault.url, `/go/${modules.pathOf(impostor.path, impostor.version, "zip")}`);
    assert.equal(unsigned.status, 502);
    assert.ok(vault.logs().some((line) => typeof line["reason"] === "string" && line["reason"].includes("no tree head signed by")));
  });

  it("modules matching nosumdb are cached unverified, without asking the database", async () => {
    const before = db.requests.length;
    const zip = await rawRequest(vault.url, "/go/private.test/secret/@v/v1.0.0.zip");
    assert.equal(zip.status, 200);
    assert.deepEqual(zip.body, modules.files.get("private.test/secret/@v/v1.0.0.zip"));
    assert.equal(db.requests.length, before);
    assert.equal((await rawRequest(vault.url, "/go/private.test/secret/@v/v1.0.0.zip")).header("x-cache"), "HIT");
  });

  it("the checksum database is proxied: `supported` by the vault itself, lookups and partial tiles revalidated, full tiles kept", async () => {
    const before = db.requests.length;
    const supported = await rawRequest(vault.url, `/go/sumdb/${SUMDB}/supported`);
    assert.equal(supported.status, 200);
    assert.equal(db.requests.length, before, "answered without the database");
    const latest = await rawRequest(vault.url, `/go/sumdb/${SUMDB}/latest`);
    assert.deepEqual(latest.body, sumdb.files.get("latest"));
    const tile = `tile/8/0/000.p/${sumdb.size}`;
    const partial = await rawRequest(vault.url, `/go/sumdb/${SUMDB}/${tile}`);
    assert.equal(partial.status, 200);
    assert.deepEqual(partial.body, sumdb.files.get(tile));
  });

  it("a version query's .info (a branch) is proxied and cached for the ttl; @latest too", async () => {
    proxy.files.set("/example.test/!greeting/@v/master.info", { body: Buffer.from('{"Version":"v1.0.0","Time":"2024-01-01T00:00:00Z"}\n') });
    proxy.files.set("/example.test/!greeting/@latest", { body: Buffer.from('{"Version":"v1.0.0","Time":"2024-01-01T00:00:00Z"}\n') });
    for (const path of ["/go/example.test/!greeting/@v/master.info", "/go/example.test/!greeting/@latest"]) {
      assert.equal((await rawRequest(vault.url, path)).header("x-cache"), "MISS", path);
      assert.equal((await rawRequest(vault.url, path)).header("x-cache"), "HIT", path);
    }
  });
});
