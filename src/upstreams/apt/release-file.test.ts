import { test } from "node:test";
import assert from "node:assert/strict";
import { clearsignedText, firstParagraphFields, parseRelease } from "./release-file.js";

const PACKAGES_XZ = "1".repeat(64);
const PACKAGES = "2".repeat(64);
const SOURCES_GZ = "3".repeat(64);

const RELEASE = `Origin: Debian
Label: Debian
Suite: stable
Codename: bookworm
Date: Sat, 10 Aug 2024 09:05:51 UTC
Acquire-By-Hash: yes
Architectures: all amd64 arm64
Components: main contrib
Description: Debian 12.6 Released 29 June 2024
MD5Sum:
 0ed6d4c8891eb86358b94bb35d9e4da4  1484322 contrib/Contents-all
 ${"9".repeat(32)}  8910 main/binary-amd64/Packages.xz
SHA256:
 ${PACKAGES} 45000 main/binary-amd64/Packages
 ${PACKAGES_XZ}  8910 main/binary-amd64/Packages.xz
 ${SOURCES_GZ} 1234 main/source/Sources.gz
SHA512:
 ${"4".repeat(128)} 1234 main/source/Sources.gz
 ${"5".repeat(128)} 99 main/i18n/Translation-en.bz2
`;

test("a Release lists its index files with sizes and digests; other sections and fields are ignored", () => {
  const release = parseRelease(RELEASE);
  assert.equal(release.acquireByHash, true);
  assert.equal(release.date, Date.UTC(2024, 7, 10, 9, 5, 51));
  assert.deepEqual(release.entries.get("main/binary-amd64/Packages.xz"), { name: "main/binary-amd64/Packages.xz", size: 8910, sha256: PACKAGES_XZ, sha512: undefined });
  assert.deepEqual(release.entries.get("main/source/Sources.gz"), { name: "main/source/Sources.gz", size: 1234, sha256: SOURCES_GZ, sha512: "4".repeat(128) });
  assert.deepEqual(release.entries.get("main/i18n/Translation-en.bz2"), { name: "main/i18n/Translation-en.bz2", size: 99, sha256: undefined, sha512: "5".repeat(128) });
  // MD5-only entries are of no use to the vault.
  assert.equal(release.entries.has("contrib/Contents-all"), false);
  assert.equal(release.entries.size, 4);
});

test("InRelease: the clearsigned text is read, dash-escaping undone, the signature left out", () => {
  const inRelease = [
    "-----BEGIN PGP SIGNED MESSAGE-----",
    "Hash: SHA256",
    "",
    ...RELEASE.trimEnd().split("\n"),
    "- -dash-escaped: yes",
    "-----BEGIN PGP SIGNATURE-----",
    "",
    "iHUEARYIAB0WIQT=",
    "-----END PGP SIGNATURE-----",
    "",
  ].join("\r\n");
  const text = clearsignedText(inRelease);
  assert.equal(text, `${RELEASE}-dash-escaped: yes\n`);
  const release = parseRelease(inRelease);
  assert.equal(release.entries.get("main/binary-amd64/Packages")?.sha256, PACKAGES);
  assert.equal(release.acquireByHash, true);
  // A plain Release is its own text.
  assert.equal(clearsignedText(RELEASE), RELEASE);
});

test("deb822 fields: case-insensitive names, continuation lines, the first paragraph only", () => {
  const fields = firstParagraphFields("\n# a comment\nPackage: a\nDescription: short\n long line\n .\n\tmore\nacquire-BY-hash: no\n\nPackage: b\n");
  assert.equal(fields.get("package"), "a");
  assert.equal(fields.get("description"), "short\n long line\n .\n\tmore");
  assert.equal(fields.get("acquire-by-hash"), "no");
  const release = parseRelease("Suite: x\nAcquire-By-Hash: no\nDate: not a date\n");
  assert.equal(release.acquireByHash, false);
  assert.equal(release.date, undefined);
  assert.equal(release.entries.size, 0);
});
