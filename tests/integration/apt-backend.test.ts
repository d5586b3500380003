/**
 * The apt backend over real HTTP: the vault in front of scripted mirrors that count every
 * request (a small archive built in memory, `fake-archive.ts`), for what apt-get alone cannot
 * show: exact upstream request counts, corrupted and mis-sized files upstream, an upstream that
 * fails, hostile paths, and proxy-mode requests for hosts the vault must never contact. The
 * end-to-end test with the real apt-get, nginx and a signed archive is tests/e2e/apt-get.test.ts.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fakeArchive, serveFakeArchive, type FakeArchive } from "../support/apt/fake-archive.js";
import { rawRequest, type RawResponse } from "../support/http.js";
import { OriginServer } from "../support/origin-server.js";
import { waitFor } from "../support/process.js";
import { GENERIC_UPSTREAM_FAILURE, loggedUpstreamReason, startTestVault, type TestVault } from "../support/test-vault.js";

const sha256 = (bytes: Uint8Array): string => createHash("sha256").update(bytes).digest("hex");

const LIB = "pool/main/v/vault-probe-lib/vault-probe-lib_1.0_all.deb";
const APP = "pool/main/v/vault-probe-app/vault-probe-app_1.0_all.deb";
const BIG = "pool/main/v/vault-probe-big/vault-probe-big_1.0_all.deb";
const PLUS = "pool/main/g/gcc-12/libstdc++6_12.2.0-14_amd64.deb";
const ORPHAN = "pool/main/o/orphan/orphan_1.0_all.deb";
const SECURITY_DEB = "pool/updates/main/o/openssl/libssl3_3.0.15-1~deb12u1_amd64.deb";

interface CacheEntry {
  readonly key: string;
  readonly sha256: string;
  readonly freshness: string;
}

describe("apt backend", () => {
  let mirror: OriginServer;
  let security: OriginServer;
  let foreign: OriginServer;
  let vault: TestVault;
  let archive: FakeArchive;
  let securityArchive: FakeArchive;
  const bytes = new Map<string, Buffer>();

  /** Puts the archive's real bytes for `path` back upstream. */
  const restore = (path: string): void => {
    const body = archive.files.get(path);
    assert.ok(body !== undefined, path);
    mirror.files.set(`/debian/${path}`, { body, etag: `"${sha256(body).slice(0, 16)}"`, lastModified: archive.date });
  };
  const get = (path: string, headers: Record<string, string> = {}): Promise<RawResponse> => rawRequest(vault.url, path, { headers });
  const entries = async (prefix: string): Promise<CacheEntry[]> => {
    const response = await rawRequest(vault.url, `/admin/cache/entries?prefix=${encodeURIComponent(prefix)}&limit=1000`, { headers: vault.auth("all") });
    assert.equal(response.status, 200, response.body.toString());
    return response.json<{ entries: CacheEntry[] }>().entries;
  };
  /**
   * The stored entry for `key` with content `body`. A client has the last byte once the download
   * is verified; the entry is listed once it is durable, a moment later.
   */
  const storedEntry = (key: string, body: Buffer): Promise<CacheEntry> =>
    waitFor(`${key} stored`, async () => (await entries(key)).find((entry) => entry.key === key && entry.sha256 === sha256(body)));

  before(async () => {
    for (const path of [LIB, APP, PLUS, ORPHAN]) bytes.set(path, randomBytes(2048 + bytes.size));
    bytes.set(BIG, randomBytes(256 * 1024));
    archive = fakeArchive({ pool: [...bytes].map(([path, body]) => ({ path, bytes: body, listed: path !== ORPHAN })) });
    securityArchive = fakeArchive({ suite: "bookworm-security", pool: [{ path: SECURITY_DEB, bytes: randomBytes(3000) }] });
    mirror = await new OriginServer().start();
    security = await new OriginServer().start();
    foreign = await new OriginServer().start();
    serveFakeArchive(mirror, "/debian", archive);
    // apt percent-encodes `+` and `~` in what it asks for; the upstream serves both spellings.
    mirror.files.set(`/debian/${PLUS.replaceAll("+", "%2b")}`, { body: bytes.get(PLUS) ?? Buffer.alloc(0) });
    serveFakeArchive(security, "/debian-security", securityArchive);
    serveFakeArchive(foreign, "/debian", archive);
    vault = await startTestVault({
      extraYaml: [
        "cache: {negative_ttl: 1h}",
        "backends:",
        // dists/ always revalidated here (ttl 0), so every request shows what the upstream was asked.
        `  - {type: apt, name: debian, config: {prefix: /debian/, mirror_url: "${mirror.url}/debian", ttl: 0s, retries: 1, timeout: 5}}`,
        `  - {type: apt, name: debian-fresh, config: {prefix: /debian-fresh/, mirror_url: "${mirror.url}/debian", ttl: 1h, proxy_mode: false}}`,
        `  - {type: apt, name: security, config: {prefix: /debian-security/, mirror_url: "${security.url}/debian-security", username: mirror-user, password: s3cret, ttl: 0s, retries: 1, timeout: 5}}`,
      ].join("\n"),
    });
  });

  after(async () => {
    await vault.close();
    await mirror.stop();
    await security.stop();
    await foreign.stop();
  });

  it("dists/ files are mutable: revalidated with the upstream's validators (a 304 is REVALIDATED), passed through byte for byte", async () => {
    for (const name of ["InRelease", "Release", "Release.gpg"]) {
      const path = `/debian/dists/bookworm/${name}`;
      const first = await get(path);
      assert.equal(first.status, 200, name);
      assert.equal(first.header("x-cache"), "MISS", name);
      assert.deepEqual(first.body, archive.files.get(`dists/bookworm/${name}`), name);
      const second = await get(path);
      assert.equal(second.header("x-cache"), "REVALIDATED", name);
      assert.deepEqual(second.body, first.body, name);
      const asked = mirror.requests.filter((request) => request.url === path);
      assert.equal(asked.length, 2, name);
      assert.equal(asked[1]?.headers["if-none-match"], `"${sha256(first.body).slice(0, 16)}"`, name);
    }
    // Within the TTL of a backend that has one, no upstream request at all.
    const fresh = "/debian/dists/bookworm/InRelease";
    const before = mirror.count(fresh);
    assert.equal((await get("/debian-fresh/dists/bookworm/InRelease")).header("x-cache"), "MISS");
    assert.equal((await get("/debian-fresh/dists/bookworm/InRelease")).header("x-cache"), "HIT");
    assert.equal(mirror.count(fresh), before + 1);
    const inRelease = archive.files.get("dists/bookworm/InRelease") ?? Buffer.alloc(0);
    assert.equal((await storedEntry("debian/dists/bookworm/InRelease", inRelease)).freshness, "mutable");
  });

  it("a by-hash file is verified against its name: a corrupted one upstream is aborted, not cached, and asked for again next time", async () => {
    const path = archive.packagesByHash;
    const real = archive.files.get(path) ?? Buffer.alloc(0);
    mirror.files.set(`/debian/${path}`, { body: randomBytes(real.length) });
    for (let attempt = 1; attempt <= 2; attempt++) {
      await assert.rejects(get(`/debian/${path}`), `attempt ${attempt}`);
      assert.equal(mirror.count(`/debian/${path}`), attempt);
    }
    assert.deepEqual(await entries(`debian/${path}`), []);
    restore(path);
    const repaired = await get(`/debian/${path}`);
    assert.equal(repaired.status, 200);
    assert.deepEqual(repaired.body, real);
    assert.equal((await get(`/debian/${path}`)).header("x-cache"), "HIT");
    assert.equal(mirror.count(`/debian/${path}`), 3);
    assert.equal((await storedEntry(`debian/${path}`, real)).freshness, "immutable");
  });

  it("a pool file is verified against the Packages index the vault cached: a corrupted .deb upstream is never cached", async () => {
    // What apt-get update does first: the suite's InRelease, then its Packages by hash.
    assert.equal((await get("/debian/dists/bookworm/InRelease")).status, 200);
    assert.equal((await get(`/debian/${archive.packagesGzByHash}`)).status, 200);
    const real = bytes.get(APP) ?? Buffer.alloc(0);
    mirror.files.set(`/debian/${APP}`, { body: randomBytes(real.length) });
    for (let attempt = 1; attempt <= 2; attempt++) {
      await assert.rejects(get(`/debian/${APP}`), `attempt ${attempt}`);
      assert.equal(mirror.count(`/debian/${APP}`), attempt);
    }
    assert.deepEqual(await entries(`debian/${APP}`), []);
    // Another length than the index lists is refused before any byte is sent.
    mirror.files.set(`/debian/${APP}`, { body: randomBytes(real.length + 1) });
    const missized = await get(`/debian/${APP}`);
    assert.equal(missized.status, 502);
    assert.match(missized.body.toString(), GENERIC_UPSTREAM_FAILURE);
    assert.match(loggedUpstreamReason(vault, missized.header("x-request-id")), /index lists/);
    restore(APP);
    const good = await get(`/debian/${APP}`);
    assert.equal(good.status, 200);
    assert.equal(good.header("x-cache"), "MISS");
    assert.deepEqual(good.body, real);
    assert.equal((await get(`/debian/${APP}`)).header("x-cache"), "HIT");
    assert.equal(mirror.count(`/debian/${APP}`), 4);
    assert.equal((await storedEntry(`debian/${APP}`, real)).freshness, "immutable");
  });

  it("a plain-named index is checked against its suite's cached Release: a stale copy upstream is not cached", async () => {
    const path = "dists/bookworm/main/binary-amd64/Packages.gz";
    assert.equal((await get("/debian/dists/bookworm/InRelease")).status, 200);
    const stale = fakeArchive({ pool: [{ path: LIB, bytes: randomBytes(10) }] }).files.get(path) ?? Buffer.alloc(0);
    mirror.files.set(`/debian/${path}`, { body: stale, lastModified: archive.date });
    await assert.rejects(get(`/debian/${path}`));
    assert.deepEqual(await entries(`debian/${path}`), []);
    // A copy newer than the Release (the mirror published again since) cannot be judged by it: stored as it is.
    mirror.files.set(`/debian/${path}`, { body: stale, lastModified: new Date(Date.parse(archive.date) + 60_000).toUTCString() });
    const newer = await get(`/debian/${path}`);
    assert.equal(newer.status, 200);
    assert.deepEqual(newer.body, stale);
    await storedEntry(`debian/${path}`, stale);
    restore(path);
    const listed = await get(`/debian/${path}`);
    assert.deepEqual(listed.body, archive.files.get(path));
    await storedEntry(`debian/${path}`, archive.files.get(path) ?? Buffer.alloc(0));
  });

  it("a pool file no cached index lists is served and cached unverified, as is one on a backend that has seen no index yet", async () => {
    const orphan = await get(`/debian/${ORPHAN}`);
    assert.equal(orphan.status, 200);
    assert.deepEqual(orphan.body, bytes.get(ORPHAN));
    assert.equal((await get(`/debian/${ORPHAN}`)).header("x-cache"), "HIT");
    // debian-fresh was asked for its InRelease, but never for an index.
    const lib = await get(`/debian-fresh/${LIB}`);
    assert.equal(lib.status, 200);
    assert.deepEqual(lib.body, bytes.get(LIB));
    await storedEntry(`debian-fresh/${LIB}`, bytes.get(LIB) ?? Buffer.alloc(0));
  });

  it("20 concurrent GETs of one .deb reach the upstream once and all get the same bytes", async () => {
    const body = bytes.get(BIG) ?? Buffer.alloc(0);
    mirror.files.set(`/debian/${BIG}`, { body, chunkSize: 16 * 1024, delayMs: 10 });
    const answers = await Promise.all(Array.from({ length: 20 }, () => get(`/debian/${BIG}`)));
    for (const answer of answers) {
      assert.equal(answer.status, 200);
      assert.deepEqual(answer.body, body);
    }
    assert.equal(mirror.count(`/debian/${BIG}`), 1);
    assert.equal((await get(`/debian/${BIG}`)).header("x-cache"), "HIT");
  });

  it("apt's percent-encoded `+` and `~` name the same cached file as the plain spelling", async () => {
    const encoded = await get(`/debian/${PLUS.replaceAll("+", "%2b")}`);
    assert.equal(encoded.status, 200);
    assert.deepEqual(encoded.body, bytes.get(PLUS));
    const plain = await get(`/debian/${PLUS}`);
    assert.equal(plain.header("x-cache"), "HIT");
    await storedEntry(`debian/${PLUS}`, bytes.get(PLUS) ?? Buffer.alloc(0));
    assert.deepEqual((await entries("debian/pool/main/g/")).map((entry) => entry.key), [`debian/${PLUS}`]);
  });

  it("a 404 stays a 404 (remembered), and directory listings are refused without asking upstream", async () => {
    const missing = "/debian/dists/bookworm/main/binary-amd64/Packages.bz2";
    for (let attempt = 1; attempt <= 2; attempt++) {
      const answer = await get(missing);
      assert.equal(answer.status, 404);
      assert.match(answer.header("content-type") ?? "", /^text\/plain/);
    }
    assert.equal(mirror.count(missing), 1);
    const before = mirror.requests.length;
    for (const path of ["/debian/", "/debian/dists/bookworm/", "/debian/pool/main/"]) assert.equal((await get(path)).status, 404, path);
    assert.equal((await get("/debian/dists/bookworm/main/binary-amd64/by-hash/SHA256/not-a-digest")).status, 404);
    assert.equal(mirror.requests.length, before);
  });

  it("paths that could leave the mirror are refused 400 without asking upstream", async () => {
    const before = mirror.requests.length;
    for (const path of ["/debian/dists/../../etc/passwd", "/debian/pool/%2e%2e/%2e%2e/etc/passwd", "/debian/pool/.%2E/x.deb", "/debian/pool/main%2f..%2fx.deb", "/debian//evil.example/x"]) {
      const answer = await get(path);
      assert.equal(answer.status, 400, path);
    }
    assert.equal(mirror.requests.length, before);
  });

  it("proxy mode: an absolute-form request for the mirror's URL is served from the backend; any other host or path is refused 403, never contacted", async () => {
    const mirrorBase = `${mirror.url}/debian`;
    const proxied = await get(`${mirrorBase}/dists/bookworm/InRelease`);
    assert.equal(proxied.status, 200);
    assert.ok(["HIT", "REVALIDATED", "MISS"].includes(proxied.header("x-cache") ?? ""));
    assert.deepEqual(proxied.body, archive.files.get("dists/bookworm/InRelease"));
    assert.deepEqual((await get(`${mirrorBase}/${LIB}`)).body, bytes.get(LIB));
    const foreignAsks = [`${foreign.url}/debian/dists/bookworm/InRelease`, `${foreign.url}/debian/${LIB}`, `${mirror.url}/elsewhere/dists/bookworm/InRelease`, `https://${new URL(mirror.url).host}/debian/dists/bookworm/InRelease`];
    const before = mirror.requests.length;
    for (const url of foreignAsks) {
      const refused = await get(url);
      assert.equal(refused.status, 403, url);
    }
    assert.equal(foreign.requests.length, 0);
    assert.equal(mirror.requests.length, before);
    // Each apt backend answers for its own mirror.
    const other = await get(`${security.url}/debian-security/dists/bookworm-security/InRelease`);
    assert.equal(other.status, 200);
    assert.deepEqual(other.body, securityArchive.files.get("dists/bookworm-security/InRelease"));
  });

  it("two apt backends side by side: each its own prefix, mirror, credentials and cache namespace, each verifying its own pool", async () => {
    assert.equal((await get("/debian-security/dists/bookworm-security/InRelease")).status, 200);
    assert.equal((await get(`/debian-security/${securityArchive.packagesGzByHash}`)).status, 200);
    const deb = securityArchive.files.get(SECURITY_DEB) ?? Buffer.alloc(0);
    const tilde = SECURITY_DEB.replace("~", "%7e");
    security.files.set(`/debian-security/${tilde}`, { body: randomBytes(deb.length) });
    await assert.rejects(get(`/debian-security/${tilde}`));
    security.files.set(`/debian-security/${tilde}`, { body: deb });
    assert.deepEqual((await get(`/debian-security/${tilde}`)).body, deb);
    await storedEntry(`security/${SECURITY_DEB}`, deb);
    assert.equal((await get(`/debian/${SECURITY_DEB}`)).status, 404, "not on the other mirror");
    assert.deepEqual(
      (await entries("security/")).map((entry) => entry.key).sort(),
      [`security/dists/bookworm-security/InRelease`, `security/${securityArchive.packagesGzByHash}`, `security/${SECURITY_DEB}`].sort(),
    );
    // Basic auth goes to its own mirror only.
    const basic = `Basic ${Buffer.from("mirror-user:s3cret").toString("base64")}`;
    assert.ok(security.requests.length > 0 && security.requests.every((request) => request.headers.authorization === basic));
    assert.ok(mirror.requests.every((request) => request.headers.authorization === undefined));
  });

  it("when the upstream fails or is gone, cached dists/ files are served STALE and cached pool files as hits", async () => {
    mirror.files.set("/debian/dists/bookworm/InRelease", { body: Buffer.alloc(0), status: 503 });
    const failing = await get("/debian/dists/bookworm/InRelease");
    assert.equal(failing.status, 200);
    assert.equal(failing.header("x-cache"), "STALE");
    assert.deepEqual(failing.body, archive.files.get("dists/bookworm/InRelease"));
    restore("dists/bookworm/InRelease");

    await security.stop();
    const gone = await get("/debian-security/dists/bookworm-security/InRelease");
    assert.equal(gone.status, 200);
    assert.equal(gone.header("x-cache"), "STALE");
    assert.equal((await get(`/debian-security/${SECURITY_DEB}`)).header("x-cache"), "HIT");
    const never = await get("/debian-security/dists/bookworm-security/Release");
    assert.equal(never.status, 502);
  });
});

describe("apt backend after a restart", () => {
  it("pool files are still verified: the digests are read back from the indexes in the store, without asking upstream for them", async () => {
    const dir = await mkdtemp(join(tmpdir(), "vault-apt-restart-"));
    const mirror = await new OriginServer().start();
    const app = randomBytes(4096);
    const archive = fakeArchive({ pool: [{ path: APP, bytes: app }] });
    serveFakeArchive(mirror, "/debian", archive);
    const yaml = `backends:\n  - {type: apt, name: debian, config: {prefix: /debian/, mirror_url: "${mirror.url}/debian", ttl: 1h}}`;
    let vault: TestVault | undefined;
    try {
      vault = await startTestVault({ extraYaml: yaml, dataDir: dir });
      const first = vault;
      assert.equal((await rawRequest(first.url, "/debian/dists/bookworm/InRelease")).status, 200);
      assert.equal((await rawRequest(first.url, `/debian/${archive.packagesGzByHash}`)).status, 200);
      await vault.close();
      vault = undefined;

      mirror.files.set(`/debian/${APP}`, { body: randomBytes(app.length) });
      const before = mirror.requests.length;
      vault = await startTestVault({ extraYaml: yaml, dataDir: dir });
      const second = vault;
      const inRelease = await rawRequest(second.url, "/debian/dists/bookworm/InRelease");
      assert.equal(inRelease.header("x-cache"), "HIT");
      await assert.rejects(rawRequest(second.url, `/debian/${APP}`));
      assert.deepEqual(
        mirror.requests.slice(before).map((request) => request.url),
        [`/debian/${APP}`],
      );
      mirror.files.set(`/debian/${APP}`, { body: app });
      const good = await rawRequest(second.url, `/debian/${APP}`);
      assert.deepEqual(good.body, app);
    } finally {
      await vault?.close();
      await mirror.stop();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
