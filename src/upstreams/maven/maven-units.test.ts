import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { VaultError } from "../../core/errors.js";
import { parseChecksumFile, parseMavenPath } from "./maven-paths.js";

describe("parseMavenPath", () => {
  const kindOf = (path: string): string => {
    const file = parseMavenPath(path);
    return file.kind === "checksum" ? `checksum(${file.algorithm}) of ${file.of.kind} ${file.of.path}` : `${file.kind} ${file.path}`;
  };

  for (const [path, expected] of [
    ["org/example/lib/1.0/lib-1.0.jar", "release org/example/lib/1.0/lib-1.0.jar"],
    ["org/example/lib/1.0/lib-1.0.pom", "release org/example/lib/1.0/lib-1.0.pom"],
    ["org/example/lib/1.0/lib-1.0-sources.jar", "release org/example/lib/1.0/lib-1.0-sources.jar"],
    ["org/example/lib/1.0/lib-1.0.module", "release org/example/lib/1.0/lib-1.0.module"],
    ["org/example/lib/1.0/lib-1.0.jar.asc", "release org/example/lib/1.0/lib-1.0.jar.asc"],
    ["org/example/lib/1.0/lib-1.0.jar.sha1", "checksum(sha1) of release org/example/lib/1.0/lib-1.0.jar"],
    ["org/example/lib/1.0/lib-1.0.jar.sha512", "checksum(sha512) of release org/example/lib/1.0/lib-1.0.jar"],
    ["org/example/lib/1.0/lib-1.0.pom.md5", "checksum(md5) of release org/example/lib/1.0/lib-1.0.pom"],
    ["org/example/lib/1.0/lib-1.0.jar.asc.sha1", "checksum(sha1) of release org/example/lib/1.0/lib-1.0.jar.asc"],
    ["org/example/lib/1.0/lib-1.0.jar.sha1.md5", "mutable org/example/lib/1.0/lib-1.0.jar.sha1.md5"],
    ["org/example/lib/maven-metadata.xml", "mutable org/example/lib/maven-metadata.xml"],
    ["org/example/lib/maven-metadata.xml.sha1", "checksum(sha1) of mutable org/example/lib/maven-metadata.xml"],
    ["org/example/lib/1.0-SNAPSHOT/maven-metadata.xml", "mutable org/example/lib/1.0-SNAPSHOT/maven-metadata.xml"],
    ["org/example/lib/1.0-SNAPSHOT/lib-1.0-20260101.000000-1.jar", "mutable org/example/lib/1.0-SNAPSHOT/lib-1.0-20260101.000000-1.jar"],
    ["org/example/lib/1.0-SNAPSHOT/lib-1.0-SNAPSHOT.jar", "mutable org/example/lib/1.0-SNAPSHOT/lib-1.0-SNAPSHOT.jar"],
    ["org/example/lib/1.0/other-1.0.jar", "mutable org/example/lib/1.0/other-1.0.jar"],
    ["org/example/lib/1.0/lib-1.0", "mutable org/example/lib/1.0/lib-1.0"],
    ["org/example/lib/1.0/lib-1.01.jar", "mutable org/example/lib/1.0/lib-1.01.jar"],
    ["archetype-catalog.xml", "mutable archetype-catalog.xml"],
    [".meta/prefixes.txt", "mutable .meta/prefixes.txt"],
    ["org/example/lib/1.0%2B1/lib-1.0%2b1.jar", "release org/example/lib/1.0+1/lib-1.0+1.jar"],
  ] as const) {
    it(`${path}: ${expected}`, () => assert.equal(kindOf(path), expected));
  }

  for (const [path, kind] of [
    ["org/../etc/passwd", "bad_request"],
    ["org/%2e%2e/x", "bad_request"],
    ["org/a%2fb/x", "bad_request"],
    ["org//x", "bad_request"],
    ["/org/x", "bad_request"],
    ["org/.git/config", "bad_request"],
    [".meta", "bad_request"],
    ["org/x/1.0/x-1.0.jar%00", "bad_request"],
    ["org/x/1.0/x 1.0.jar", "bad_request"],
    ["org/x/1.0/x-1.0.jar;a", "bad_request"],
    ["org/x/1.0/x-%zz.jar", "bad_request"],
    ["org/x/1.0/", "not_found"],
    ["", "not_found"],
  ] as const) {
    it(`refuses ${JSON.stringify(path)} (${kind})`, () => {
      assert.throws(
        () => parseMavenPath(path),
        (error) => error instanceof VaultError && error.kind === kind,
      );
    });
  }
});

describe("parseChecksumFile", () => {
  const sha1 = "a9993e364706816aba3e25717850c26c9cd0d89d";
  for (const [text, expected] of [
    [sha1, sha1],
    [`${sha1}\n`, sha1],
    [sha1.toUpperCase(), sha1],
    [`${sha1}  lib-1.0.jar\n`, sha1],
    [`SHA1(lib-1.0.jar)= ${sha1}\n`, sha1],
    [`SHA1 (lib-1.0.jar) = ${sha1}`, sha1],
    ["", undefined],
    ["not a checksum", undefined],
    [sha1.slice(1), undefined],
    [`${sha1}0`, undefined],
  ] as const) {
    it(`${JSON.stringify(text)} → ${String(expected)}`, () => assert.equal(parseChecksumFile(text, "sha1"), expected));
  }
  it("checks the length per algorithm", () => {
    assert.equal(parseChecksumFile("0".repeat(128), "sha512"), "0".repeat(128));
    assert.equal(parseChecksumFile("0".repeat(64), "sha512"), undefined);
    assert.equal(parseChecksumFile("0".repeat(32), "md5"), "0".repeat(32));
  });
});
