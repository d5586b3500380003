import { test } from "node:test";
import assert from "node:assert/strict";
import { isVaultError } from "../../core/errors.js";
import { classifyAptPath, isImmutable, poolIndexKind, type AptPath } from "./apt-paths.js";

const SHA256 = "ab".repeat(32);
const SHA512 = "cd".repeat(64);

test("path classification: what each path below a mirror names, and whether it is kept for good", () => {
  const cases: Array<[string, AptPath, boolean]> = [
    ["dists/bookworm/InRelease", { kind: "release", suite: "dists/bookworm", file: "InRelease" }, false],
    ["dists/bookworm/Release", { kind: "release", suite: "dists/bookworm", file: "Release" }, false],
    ["dists/bookworm/Release.gpg", { kind: "release", suite: "dists/bookworm", file: "Release.gpg" }, false],
    // Old-style nested suites (`deb http://security.debian.org stable/updates main`).
    ["dists/stable/updates/InRelease", { kind: "release", suite: "dists/stable/updates", file: "InRelease" }, false],
    ["dists/bookworm/main/binary-amd64/Packages", { kind: "index" }, false],
    ["dists/bookworm/main/binary-amd64/Packages.xz", { kind: "index" }, false],
    ["dists/bookworm/main/binary-amd64/Packages.gz", { kind: "index" }, false],
    ["dists/bookworm/main/binary-amd64/Packages.bz2", { kind: "index" }, false],
    ["dists/bookworm/main/source/Sources.xz", { kind: "index" }, false],
    ["dists/bookworm/main/Contents-amd64.gz", { kind: "index" }, false],
    ["dists/bookworm/main/i18n/Translation-en.bz2", { kind: "index" }, false],
    ["dists/bookworm/main/i18n/Index", { kind: "index" }, false],
    ["dists/bookworm/main/binary-amd64/Packages.diff/Index", { kind: "index" }, false],
    // A component's per-directory Release describes that directory, not a suite.
    ["dists/bookworm/main/binary-amd64/Release", { kind: "index" }, false],
    ["dists/bookworm/main/source/Release", { kind: "index" }, false],
    [`dists/bookworm/main/binary-amd64/by-hash/SHA256/${SHA256}`, { kind: "by-hash", digest: { algorithm: "sha256", hex: SHA256 } }, true],
    [`dists/bookworm/main/binary-amd64/by-hash/SHA256/${SHA256.toUpperCase()}`, { kind: "by-hash", digest: { algorithm: "sha256", hex: SHA256 } }, true],
    [`dists/bookworm/main/i18n/by-hash/SHA512/${SHA512}`, { kind: "by-hash", digest: { algorithm: "sha512", hex: SHA512 } }, true],
    [`dists/bookworm/main/source/by-hash/SHA1/${"e".repeat(40)}`, { kind: "by-hash", digest: { algorithm: "sha1", hex: "e".repeat(40) } }, true],
    // MD5 cannot be checked by the cache: still content-addressed, so kept for good.
    [`dists/bookworm/main/binary-amd64/by-hash/MD5Sum/${"f".repeat(32)}`, { kind: "by-hash", digest: undefined }, true],
    ["pool/main/h/hello/hello_2.10-3_amd64.deb", { kind: "pool", listedIn: "Packages" }, true],
    ["pool/main/g/gcc-12/libstdc++6_12.2.0-14_amd64.deb", { kind: "pool", listedIn: "Packages" }, true],
    ["pool/main/d/debian-installer/anna_1.87_amd64.udeb", { kind: "pool", listedIn: "Packages" }, true],
    ["pool/main/h/hello/hello_2.10-3.dsc", { kind: "pool", listedIn: "Sources" }, true],
    ["pool/main/h/hello/hello_2.10.orig.tar.gz", { kind: "pool", listedIn: "Sources" }, true],
    ["pool/main/h/hello/hello_2.10.orig.tar.gz.asc", { kind: "pool", listedIn: "Sources" }, true],
    ["pool/main/h/hello/hello_2.10-3.debian.tar.xz", { kind: "pool", listedIn: "Sources" }, true],
    ["pool/main/o/old/old_1.0-1.diff.gz", { kind: "pool", listedIn: "Sources" }, true],
    ["pool/main/h/hello/hello_2.10-3_amd64.buildinfo", { kind: "pool", listedIn: undefined }, true],
    ["pool/updates/main/o/openssl/libssl3_3.0.15-1~deb12u1_amd64.deb", { kind: "pool", listedIn: "Packages" }, true],
    ["README", { kind: "other" }, false],
    ["project/trace/master", { kind: "other" }, false],
    ["ls-lR.gz", { kind: "other" }, false],
    ["dists/README", { kind: "other" }, false],
    ["pool", { kind: "other" }, false],
  ];
  for (const [path, expected, immutable] of cases) {
    const classified = classifyAptPath(path);
    assert.deepEqual(classified, expected, path);
    assert.equal(isImmutable(classified), immutable, path);
  }
});

test("a by-hash name that cannot be a digest of its algorithm is not found, without asking upstream", () => {
  for (const path of [
    "dists/bookworm/main/binary-amd64/by-hash/SHA256/abc",
    `dists/bookworm/main/binary-amd64/by-hash/SHA256/${"g".repeat(64)}`,
    `dists/bookworm/main/binary-amd64/by-hash/SHA512/${SHA256}`,
  ]) {
    assert.throws(() => classifyAptPath(path), (error) => isVaultError(error, "not_found"), path);
  }
  // An algorithm apt does not know is still a content-addressed name: kept, unverified.
  assert.deepEqual(classifyAptPath("dists/bookworm/main/by-hash/constructor/x"), { kind: "by-hash", digest: undefined });
});

test("which index lists a pool file, by its name", () => {
  assert.equal(poolIndexKind("x_1_all.deb"), "Packages");
  assert.equal(poolIndexKind("x_1.tar"), "Sources");
  assert.equal(poolIndexKind("x_1.orig-extra.tar.bz2"), "Sources");
  assert.equal(poolIndexKind("x_1_amd64.changes"), undefined);
  assert.equal(poolIndexKind("x.deb.sig"), undefined);
});
