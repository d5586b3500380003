/**
 * The maven backend over real HTTP, against a scripted origin serving a Maven repository from
 * memory (tests/support/maven/). The end-to-end test with mvn and nginx is tests/e2e/maven.test.ts;
 * this one covers what mvn never does on its own: concurrent cold requests, hostile paths, which
 * published checksum a file is verified against, repositories that publish none.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { OriginServer } from "../support/origin-server.js";
import { rawRequest } from "../support/http.js";
import { startTestVaultInFront, type TestVault } from "../support/test-vault.js";
import { checksumOf, mavenPath, metadataPath, StaticMavenRepository, type Coordinates } from "../support/maven/maven-repository.js";

const coordinates = (artifactId: string, version = "1.0"): Coordinates => ({ groupId: "org.example", artifactId, version });
const jarOf = (text: string): Buffer => Buffer.from(`PK\u0003\u0004 not really a jar: ${text}\n`.repeat(200));

const HERD = coordinates("herd");
const STRONGEST = coordinates("strongest");
const SHA256 = coordinates("sha256-only");
const SHA1 = coordinates("sha1-only");
const UNCHECKED = coordinates("unchecked");
const SNAPSHOT = coordinates("lib", "2.0-SNAPSHOT");

describe("maven backend", () => {
  let origin: OriginServer;
  let vault: TestVault;
  const repository = new StaticMavenRepository();

  /** Sets a file upstream, replacing what the repository built. */
  const serve = (path: string, body: Buffer | string): void => {
    origin.files.set(`/repo/${path}`, { body: Buffer.from(body), etag: `"${path.length}-${Buffer.from(body).length}"` });
  };

  before(async () => {
    origin = await new OriginServer().start();
    repository.publish(HERD, { jar: jarOf("herd"), checksums: ["md5", "sha1", "sha256", "sha512"] });
    repository.publish(STRONGEST, { jar: jarOf("strongest"), checksums: ["md5", "sha1", "sha256", "sha512"] });
    repository.publish(SHA256, { jar: jarOf("sha256"), checksums: ["sha1", "sha256"] });
    repository.publish(SHA1, { jar: jarOf("sha1"), checksums: ["md5", "sha1"] });
    repository.publish(UNCHECKED, { jar: jarOf("unchecked"), checksums: [] });
    repository.put(`${SNAPSHOT.groupId.replaceAll(".", "/")}/lib/2.0-SNAPSHOT/lib-2.0-20260101.000000-1.jar`, jarOf("snapshot"), []);
    for (const [path, body] of repository.files) serve(path, body);
    vault = await startTestVaultInFront(origin, {
      extraYaml: [
        "backends:",
        `  - {type: maven, name: maven, config: {prefix: /maven/, repository_url: "${origin.url}/repo", ttl: 1m}}`,
        `  - {type: maven, name: lenient, config: {prefix: /lenient/, repository_url: "${origin.url}/repo", require_checksums: false}}`,
      ].join("\n"),
    });
  });

  after(async () => {
    await vault.close();
    await origin.stop();
  });

  it("20 concurrent cold requests for a jar: one request upstream for it and each checksum file; then HITs, its .sha1 too", async () => {
    const path = mavenPath(HERD, "jar");
    const answers = await Promise.all(Array.from({ length: 20 }, () => rawRequest(vault.url, `/maven/${path}`)));
    for (const answer of answers) {
      assert.equal(answer.status, 200);
      assert.deepEqual(answer.body, repository.files.get(path));
    }
    assert.equal(origin.count(`/repo/${path}`), 1);
    for (const extension of ["sha512", "sha256", "sha1"]) assert.equal(origin.count(`/repo/${path}.${extension}`), 1, extension);
    assert.equal((await rawRequest(vault.url, `/maven/${path}`)).header("x-cache"), "HIT");
    const sha1 = await rawRequest(vault.url, `/maven/${path}.sha1`);
    assert.equal(sha1.header("x-cache"), "HIT");
    assert.deepEqual(sha1.body, repository.files.get(`${path}.sha1`));
    // .md5 is served as it is (it verifies nothing).
    const md5 = await rawRequest(vault.url, `/maven/${path}.md5`);
    assert.equal(md5.status, 200);
    assert.deepEqual(md5.body, repository.files.get(`${path}.md5`));
  });

  it("bad paths are refused before any upstream request", async () => {
    const before = origin.requests.length;
    for (const [path, status] of [
      ["/maven/org/example/../../etc/passwd", 400],
      ["/maven/org/example/%2e%2e/x/1.0/x-1.0.jar", 400],
      ["/maven/org/example/x%2F..%2F..%2Fy/1.0/y.jar", 400],
      ["/maven/org/example//x/1.0/x-1.0.jar", 400],
      ["/maven/org/example/.hidden/1.0/x-1.0.jar", 400],
      ["/maven/org/example/x/1.0/x-1.0.jar%00.sha1", 400],
      ["/maven/org/example/x/1.0/x%201.0.jar", 400],
      ["/maven/org/example/x/1.0/x-1.0.jar;x=1", 400],
      ["/maven/org/example/x/1.0/x-1.0%5c.jar", 400],
      ["/maven/@evil.example/x/1.0/x-1.0.jar", 400],
      ["/maven/http:%2f%2fevil.example/x", 400],
      ["/maven/org/example/x/1.0/x-1.0.j%C3%A4r", 400],
      ["/maven/org/example/x/1.0/", 404],
      ["/maven/", 404],
    ] as const) {
      const answer = await rawRequest(vault.url, path);
      assert.equal(answer.status, status, `${path}: ${answer.body.toString()}`);
      assert.match(answer.header("content-type") ?? "", /^text\/plain/, path);
    }
    assert.equal(origin.requests.length, before, "no upstream request for a refused path");
  });

  it("percent-encoded coordinate characters name the same file as their plain spelling", async () => {
    const plain = coordinates("plus", "1.0+build");
    repository.publish(plain, { jar: jarOf("plus") });
    for (const [path, body] of repository.files) if (path.includes("/plus/")) serve(path, body);
    const path = mavenPath(plain, "jar");
    const first = await rawRequest(vault.url, `/maven/${path}`);
    assert.equal(first.status, 200);
    const encoded = await rawRequest(vault.url, `/maven/${path.replaceAll("+", "%2B")}`);
    assert.equal(encoded.header("x-cache"), "HIT");
    assert.deepEqual(encoded.body, first.body);
  });

  it("a file is verified against the strongest checksum published: .sha512, else .sha256, else .sha1", async () => {
    // The weaker checksums are wrong: only the strongest counts.
    const strongest = mavenPath(STRONGEST, "jar");
    serve(`${strongest}.sha1`, "0".repeat(40));
    serve(`${strongest}.sha256`, "0".repeat(64));
    const verified = await rawRequest(vault.url, `/maven/${strongest}`);
    assert.equal(verified.status, 200);
    assert.deepEqual(verified.body, repository.files.get(strongest));

    const sha256 = mavenPath(SHA256, "jar");
    serve(`${sha256}.sha1`, "0".repeat(40));
    // As sha256sum writes it: the digest, two spaces, the file name.
    serve(`${sha256}.sha256`, `${checksumOf(repository.files.get(sha256) ?? Buffer.alloc(0), "sha256")}  sha256-only-1.0.jar\n`);
    assert.equal((await rawRequest(vault.url, `/maven/${sha256}`)).status, 200);
    assert.equal(origin.count(`/repo/${sha256}.sha512`), 1, "the missing .sha512 was asked for");

    const sha1 = mavenPath(SHA1, "jar");
    assert.equal((await rawRequest(vault.url, `/maven/${sha1}`)).status, 200);
  });

  it("a file that does not match its checksum is aborted and never cached", async () => {
    const path = mavenPath(SHA1, "pom");
    serve(path, "<project>tampered</project>\n".repeat(100));
    for (let attempt = 1; attempt <= 2; attempt++) {
      await assert.rejects(rawRequest(vault.url, `/maven/${path}`), `attempt ${attempt}`);
      assert.equal(origin.count(`/repo/${path}`), attempt);
    }
    assert.ok(vault.logs().some((line) => typeof line["reason"] === "string" && line["reason"].includes("failed verification")));
    // A checksum file that holds no checksum is no verification either.
    const garbled = mavenPath(STRONGEST, "pom");
    serve(`${garbled}.sha512`, "not a checksum\n");
    assert.equal((await rawRequest(vault.url, `/maven/${garbled}`)).status, 502);
  });

  it("a release file without a published checksum is refused, unless require_checksums is off", async () => {
    const path = mavenPath(UNCHECKED, "jar");
    const refused = await rawRequest(vault.url, `/maven/${path}`);
    assert.equal(refused.status, 502);
    assert.ok(vault.logs().some((line) => typeof line["reason"] === "string" && line["reason"].includes("publishes no .sha512, .sha256 or .sha1 checksum")));
    const lenient = await rawRequest(vault.url, `/lenient/${path}`);
    assert.equal(lenient.status, 200);
    assert.deepEqual(lenient.body, repository.files.get(path));
    // A signature verifies itself: served without a checksum.
    serve(`${path}.asc`, "-----BEGIN PGP SIGNATURE-----\n");
    assert.equal((await rawRequest(vault.url, `/maven/${path}.asc`)).status, 200);
  });

  it("maven-metadata.xml and snapshots are mutable: served without checking a checksum", async () => {
    const snapshot = await rawRequest(vault.url, `/maven/org/example/lib/2.0-SNAPSHOT/lib-2.0-20260101.000000-1.jar`);
    assert.equal(snapshot.status, 200);
    const metadata = metadataPath(HERD.groupId, HERD.artifactId);
    const first = await rawRequest(vault.url, `/maven/${metadata}`);
    assert.equal(first.status, 200);
    assert.deepEqual(first.body, repository.files.get(metadata));
    assert.equal(origin.count(`/repo/${metadata}.sha1`), 0, "metadata is not checked against its checksum");
    assert.equal((await rawRequest(vault.url, `/maven/${metadata}`)).header("x-cache"), "HIT");
  });

  it("404 upstream is a 404 in plain text (Maven tries its next repository)", async () => {
    for (const path of [mavenPath(coordinates("missing"), "jar"), mavenPath(coordinates("missing"), "pom.sha1"), metadataPath("org.example", "missing")]) {
      const answer = await rawRequest(vault.url, `/maven/${path}`);
      assert.equal(answer.status, 404, path);
      assert.match(answer.header("content-type") ?? "", /^text\/plain/);
    }
  });
});
