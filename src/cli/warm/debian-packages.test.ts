import { test } from "node:test";
import assert from "node:assert/strict";
import { compareDebianVersions, PackagesScanner, parseRelease, pickVersion } from "./debian-packages.js";

test("dpkg's version order", () => {
  const ascending = ["0.9", "1.0~rc1", "1.0", "1.0-1", "1.0-1+b1", "1.0a", "1.0.1", "1.2", "1.10", "1:0.1", "2:0~beta"];
  for (let i = 0; i < ascending.length; i++) {
    for (let j = 0; j < ascending.length; j++) {
      const a = ascending[i] ?? "";
      const b = ascending[j] ?? "";
      assert.equal(Math.sign(compareDebianVersions(a, b)), Math.sign(i - j), `${a} vs ${b}`);
    }
  }
  assert.equal(compareDebianVersions("1.0", "1.00"), 0);
  assert.equal(compareDebianVersions("0:1.0", "1.0"), 0);
  assert.ok(compareDebianVersions("1.0~~", "1.0~") < 0);
  assert.ok(compareDebianVersions("2.36-9+deb12u4", "2.36-9+deb12u10") < 0);
});

test("Release: by-hash and the SHA256 list, also clearsigned", () => {
  const hex = "c".repeat(64);
  const release = parseRelease(
    [
      "-----BEGIN PGP SIGNED MESSAGE-----",
      "Hash: SHA256",
      "",
      "Suite: stable",
      "Acquire-By-Hash: yes",
      "MD5Sum:",
      ` ${"d".repeat(32)} 10 main/binary-amd64/Packages`,
      "SHA256:",
      ` ${hex.toUpperCase()} 120 main/binary-amd64/Packages.xz`,
      ` ${"e".repeat(64)} 300 main/binary-amd64/Packages`,
      "-----BEGIN PGP SIGNATURE-----",
      ` ${"f".repeat(64)} 1 main/binary-amd64/Packages.gz`,
    ].join("\n"),
  );
  assert.equal(release.byHash, true);
  assert.deepEqual([...release.sha256], [
    ["main/binary-amd64/Packages.xz", hex],
    ["main/binary-amd64/Packages", "e".repeat(64)],
  ]);
  assert.equal(parseRelease("Suite: x\nSHA256:\n").byHash, false);
});

test("Packages: the wanted packages' stanzas, whatever the chunking; the newest or a pinned version", () => {
  const index = Buffer.from(
    [
      "Package: hello",
      "Version: 2.10-2",
      "Architecture: amd64",
      "Description: says hello",
      " Filename: not-a-field",
      "Filename: pool/main/h/hello/hello_2.10-2_amd64.deb",
      "Size: 100",
      "",
      "Package: other",
      "Version: 1.0",
      "Filename: pool/main/o/other/other_1.0_all.deb",
      "",
      "Package: hello",
      "Version: 2.10-10",
      "Architecture: amd64",
      "Filename: pool/main/h/hello/hello_2.10-10_amd64.deb",
      "",
      "Package: hello",
      "Version: 2.9",
      "Filename: pool/main/h/hello/hello_2.9_amd64.deb",
    ].join("\r\n"),
  );
  for (const size of [1, 7, index.length]) {
    const scanner = new PackagesScanner(["hello", "missing"]);
    for (let at = 0; at < index.length; at += size) scanner.push(index.subarray(at, at + size));
    scanner.end();
    const hello = scanner.found.get("hello") ?? [];
    assert.deepEqual(
      hello.map((stanza) => stanza.filename),
      ["pool/main/h/hello/hello_2.10-2_amd64.deb", "pool/main/h/hello/hello_2.10-10_amd64.deb", "pool/main/h/hello/hello_2.9_amd64.deb"],
      `chunks of ${size}`,
    );
    assert.equal(scanner.found.has("other"), false);
    assert.equal(scanner.found.has("missing"), false);
    assert.equal(pickVersion(hello)?.version, "2.10-10");
    assert.equal(pickVersion(hello, "2.9")?.filename, "pool/main/h/hello/hello_2.9_amd64.deb");
    assert.equal(pickVersion(hello, "3.0"), undefined);
    assert.equal(hello[0]?.size, 100);
  }
});
