import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { isVaultError } from "../../core/errors.js";
import { gemDigest, infoChecksums, md5Etag, reprDigest } from "./compact-index.js";
import { parseRubygemsPath } from "./rubygems-paths.js";

const A = "a".repeat(64);
const B = "B".repeat(64);

test("info files: each version's checksum, with or without dependencies and other requirements", () => {
  const info = [
    "---",
    `1.0.0 |checksum:${A}`,
    `1.1.0 rack:>= 2.0&< 4,json:~> 2.1|checksum:${B},ruby:>= 2.7.0,rubygems:>= 3.0`,
    `1.1.0-java rack:>= 2.0|ruby:>= 2.7.0,checksum:${A}`,
    "0.9.0 |ruby:>= 1.8",
    "",
  ].join("\n");
  const checksums = infoChecksums(info);
  assert.deepEqual([...checksums.keys()], ["1.0.0", "1.1.0", "1.1.0-java", "0.9.0"]);
  assert.equal(checksums.get("1.1.0"), "b".repeat(64));
  assert.deepEqual(gemDigest(info, "1.1.0-java"), { algorithm: "sha256", hex: A });
  assert.equal(gemDigest(info, "0.9.0"), "unchecked");
  assert.equal(gemDigest(info, "2.0.0"), "unlisted");
});

test("Repr-Digest and the MD5 ETag Bundler checks", () => {
  const body = Buffer.from("---\nrack\n");
  const value = reprDigest(body);
  assert.match(value, /^sha-256=:[A-Za-z0-9+/]+=*:, md5=:[A-Za-z0-9+/]+=*:$/);
  assert.equal(md5Etag(value), `"${createHash("md5").update(body).digest("hex")}"`);
  assert.equal(md5Etag(undefined), undefined);
  assert.equal(md5Etag("sha-256=:AAAA:"), undefined);
});

test("paths: what each names, and the ways a gem file name splits", () => {
  assert.deepEqual(parseRubygemsPath("versions"), { kind: "versions" });
  assert.deepEqual(parseRubygemsPath("info/net-http"), { kind: "info", gem: "net-http" });
  assert.deepEqual(parseRubygemsPath("specs.4.8.gz"), { kind: "specs", file: "specs.4.8.gz" });
  assert.deepEqual(parseRubygemsPath("api/v1/dependencies"), { kind: "legacy-api" });
  const gem = parseRubygemsPath("gems/nokogiri-1.15.0-universal-darwin-21.gem");
  assert.equal(gem.kind, "gem");
  assert.deepEqual(gem.kind === "gem" ? gem.file.candidates : [], [
    { gem: "nokogiri", version: "1.15.0-universal-darwin-21" },
    { gem: "nokogiri-1.15.0-universal-darwin", version: "21" },
  ]);
  const quick = parseRubygemsPath("quick/Marshal.4.8/net-http-0.4.1.gemspec.rz");
  assert.deepEqual(quick.kind === "quick" ? quick.file.candidates : [], [{ gem: "net-http", version: "0.4.1" }]);
  for (const path of ["info/..", "info/.x", "gems/../x.gem", "info//x", "info/a%2fb", "gems/x.gem", "gems/-1.0.gem", "info/r\u00e4ck"]) {
    assert.throws(() => parseRubygemsPath(path), (error) => isVaultError(error, "bad_request"), path);
  }
  for (const path of ["", "info", "gems", "api/v1/gems", "quick/Marshal.4.7/x-1.gemspec.rz", "versions/x"]) {
    assert.throws(() => parseRubygemsPath(path), (error) => isVaultError(error, "not_found"), path);
  }
});
