import { test } from "node:test";
import assert from "node:assert/strict";
import { IndexStanzaReader, MAX_INDEX_LINE_BYTES, type ListedPoolFile } from "./index-stanzas.js";

const A = "a".repeat(64);
const B = "b".repeat(64);
const C = "c".repeat(64);
const D = "d".repeat(64);

const PACKAGES = `Package: hello
Version: 2.10-3
Installed-Size: 280
Maintainer: Santiago Vila <sanvila@debian.org>
Architecture: amd64
Depends: libc6 (>= 2.34)
Description: example package based on GNU hello
 The GNU hello program produces a familiar, friendly greeting.
 .
 Filename: this continuation line is not a field
Homepage: https://www.gnu.org/software/hello/
Description-md5: 6d7e2bd2aa4ea2bb2cb5ba5e0b2d3c8f
Section: devel
Priority: optional
Filename: pool/main/h/hello/hello_2.10-3_amd64.deb
Size: 53532
MD5sum: 0d3ab8f9a1d1d3d1f6d0c7b1c8b3ab12
SHA256: ${A.toUpperCase()}

Package: libstdc++6
Version: 12.2.0-14
filename: pool/main/g/gcc-12/libstdc++6_12.2.0-14_amd64.deb
sha256: ${B}
size: 613000

Package: no-digest
Filename: pool/main/n/no-digest/no-digest_1_all.deb
Size: 10

Package: bad-size
Filename: pool/main/b/bad-size/bad-size_1_all.deb
SHA256: ${B}
Size: ten
`;

const SOURCES = `Package: hello
Binary: hello
Version: 2.10-3
Maintainer: Santiago Vila <sanvila@debian.org>
Build-Depends: debhelper-compat (= 13)
Architecture: any
Format: 3.0 (quilt)
Files:
 ${"e".repeat(32)} 1847 hello_2.10-3.dsc
Checksums-Sha256:
 ${C} 1847 hello_2.10-3.dsc
 ${D} 725946 hello_2.10.orig.tar.gz
Package-List:
 hello deb devel optional arch=any
Directory: pool/main/h/hello
Priority: source
Section: devel
`;

function read(text: string, chunkSize = Number.MAX_SAFE_INTEGER): ListedPoolFile[] {
  const files: ListedPoolFile[] = [];
  const reader = new IndexStanzaReader((file) => files.push(file));
  const bytes = Buffer.from(text, "utf8");
  for (let start = 0; start < bytes.length; start += chunkSize) reader.push(bytes.subarray(start, start + chunkSize));
  reader.end();
  return files;
}

test("Packages: Filename, SHA256 and Size of each paragraph; field names in any case; continuation lines are not fields", () => {
  assert.deepEqual(read(PACKAGES), [
    { path: "pool/main/h/hello/hello_2.10-3_amd64.deb", sha256: A, size: 53532 },
    { path: "pool/main/g/gcc-12/libstdc++6_12.2.0-14_amd64.deb", sha256: B, size: 613000 },
  ]);
});

test("Sources: each Checksums-Sha256 line, below the paragraph's Directory (which may come after it)", () => {
  assert.deepEqual(read(SOURCES), [
    { path: "pool/main/h/hello/hello_2.10-3.dsc", sha256: C, size: 1847 },
    { path: "pool/main/h/hello/hello_2.10.orig.tar.gz", sha256: D, size: 725946 },
  ]);
});

test("the same files whatever the chunking, with CRLF line ends, blank lines of spaces, and no final newline", () => {
  const expected = read(PACKAGES + "\n" + SOURCES);
  assert.equal(expected.length, 4);
  for (const size of [1, 2, 3, 7, 64, 1000]) assert.deepEqual(read(PACKAGES + "\n" + SOURCES, size), expected, `chunks of ${size}`);
  const crlf = (PACKAGES + " \t \n" + SOURCES).replace(/\n/g, "\r\n").replace(/\r\n$/, "");
  for (const size of [1, 5, 4096]) assert.deepEqual(read(crlf, size), expected, `CRLF in chunks of ${size}`);
});

test("a line without end is refused rather than buffered without bound", () => {
  const reader = new IndexStanzaReader(() => undefined);
  reader.push(Buffer.from("Description: "));
  assert.throws(() => reader.push(Buffer.alloc(MAX_INDEX_LINE_BYTES + 1, 0x61)), /longer than/);
});
