import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash, generateKeyPairSync, sign, type KeyObject } from "node:crypto";
import { mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { crc32 } from "node:zlib";
import { isVaultError } from "../../core/errors.js";
import { GoModHasher, hashModuleZip } from "./dirhash.js";
import { parseSumdbSetting } from "./go-config.js";
import { parseGoPath } from "./goproxy-paths.js";
import { escapeCase, isCanonicalVersion, isVersionQuery, matchesPrefixPattern, modulePathProblem, unescapeCase } from "./module-path.js";
import { openSignedNote, parseLookupAnswer, parseTreeHead, parseVerifierKey, recordHashes, type VerifierKey } from "./sumdb-note.js";
import { nodeHash, parseTilePath, recordHash, recordIncluded, tilePath, type Tile } from "./sumdb-tlog.js";
import { checkedBody, goModCheck, moduleZipCheck } from "./verified-body.js";

test("case escaping: an upper-case letter is `!` and the lower-case one; nothing else is escapable", () => {
  assert.equal(escapeCase("github.com/BurntSushi/toml"), "github.com/!burnt!sushi/toml");
  assert.equal(unescapeCase("github.com/!burnt!sushi/toml"), "github.com/BurntSushi/toml");
  assert.equal(unescapeCase("v1.0.0-!r!c1"), "v1.0.0-RC1");
  for (const bad of ["github.com/Burnt", "x!", "x!1", "x!!a", "x!A", "é"]) assert.equal(unescapeCase(bad), undefined, bad);
  assert.equal(escapeCase("a!b"), undefined);
});

test("module paths: Go's rules for module paths", () => {
  for (const good of ["example.com", "example.com/x", "golang.org/x/text", "gopkg.in/yaml.v3", "example.com/A_b~c-d.e/v2"]) assert.equal(modulePathProblem(good), undefined, good);
  for (const bad of ["", "example", "Example.com/x", "-example.com", "example.com/", "example.com//x", "example.com/../x", "example.com/.x", "example.com/x.", "example.com/a b", "example.com/x@v1", "example.com/%2e"]) {
    assert.notEqual(modulePathProblem(bad), undefined, bad);
  }
});

test("versions: canonical ones name fixed content; queries are single safe elements", () => {
  for (const canonical of ["v0.0.0", "v1.2.3", "v1.2.3-pre.1", "v0.0.0-20191109021931-daa7c04131f5", "v2.0.0+incompatible", "v1.0.0-RC1"]) assert.ok(isCanonicalVersion(canonical), canonical);
  for (const other of ["1.2.3", "v1.2", "v1", "v01.2.3", "v1.2.3-01", "v1.2.3+build", "master", "v1.2.3-"]) assert.ok(!isCanonicalVersion(other), other);
  for (const query of ["master", "v1.2", "daa7c04131f5", "release-branch.go1.19"]) assert.ok(isVersionQuery(query), query);
  for (const bad of ["", ".", "..", ".hidden", "a/b", "a%2f", "x.", "a b"]) assert.ok(!isVersionQuery(bad), bad);
});

test("nosumdb patterns match path prefixes element by element, as GONOSUMDB does", () => {
  assert.ok(matchesPrefixPattern(["corp.example.com"], "corp.example.com/x/y"));
  assert.ok(matchesPrefixPattern(["*.corp.example.com"], "git.corp.example.com/x"));
  assert.ok(matchesPrefixPattern(["github.com/acme/*"], "github.com/acme/tool/v2"));
  assert.ok(!matchesPrefixPattern(["corp.example.com"], "corp.example.community/x"));
  assert.ok(!matchesPrefixPattern(["github.com/acme/*"], "github.com/acme"));
});

test("GOPROXY paths: what each names, and what is refused", () => {
  assert.deepEqual(parseGoPath("example.com/!foo/@v/list"), { kind: "list", module: { path: "example.com/Foo", escaped: "example.com/!foo" } });
  assert.deepEqual(parseGoPath("example.com/%21foo/@latest"), { kind: "latest", module: { path: "example.com/Foo", escaped: "example.com/!foo" } });
  const zip = parseGoPath("example.com/x/@v/v1.0.0-!r!c1.zip");
  assert.deepEqual(zip, { kind: "zip", module: { path: "example.com/x", escaped: "example.com/x" }, version: { version: "v1.0.0-RC1", escaped: "v1.0.0-!r!c1", canonical: true } });
  const info = parseGoPath("example.com/x/@v/master.info");
  assert.ok(info.kind === "info" && !info.version.canonical);
  const lookup = parseGoPath("sumdb/sum.golang.org/lookup/example.com/!foo@v1.2.3");
  assert.ok(lookup.kind === "sumdb" && lookup.name === "sum.golang.org" && lookup.request.kind === "lookup" && lookup.request.module.path === "example.com/Foo");
  const tile = parseGoPath("sumdb/sumdb.example.com/go/tile/8/1/x001/002.p/7");
  assert.ok(tile.kind === "sumdb" && tile.name === "sumdb.example.com/go" && tile.request.kind === "tile");
  assert.deepEqual(tile.request.kind === "tile" ? tile.request.tile : undefined, { level: 1, index: 1002, width: 7 });
  assert.deepEqual(parseGoPath("sumdb/sum.golang.org/supported"), { kind: "sumdb", name: "sum.golang.org", request: { kind: "supported" } });
  const refused = (path: string): string | undefined => {
    try {
      parseGoPath(path);
      return undefined;
    } catch (error) {
      return isVaultError(error) ? error.kind : "other";
    }
  };
  for (const bad of ["example.com/Foo/@v/list", "example.com/%2e%2e/@v/list", "example.com%2fx/@v/list", "example.com//x/@v/list", "example.com/x/@v/..%2f.info", "example.com/x/@v/%00.info", "sumdb/../x/latest", "sumdb/sum.golang.org/tile/8/0/1", "sumdb/sum.golang.org/lookup/x@v1"]) {
    assert.equal(refused(bad), "bad_request", bad);
  }
  for (const missing of ["example.com/x", "example.com/x/@v/v1.0.0.tgz", "example.com/x/@v/master.zip", "sumdb/sum.golang.org/other"]) assert.equal(refused(missing), "not_found", missing);
});

test("tile paths: three-digit groups, x-prefixed but the last, .p/W for partial tiles; no other spelling", () => {
  assert.equal(tilePath({ level: 4, index: 1234067, width: 1 }), "tile/8/4/x001/x234/067.p/1");
  assert.equal(tilePath({ level: -1, index: 5, width: 256 }), "tile/8/data/005");
  assert.deepEqual(parseTilePath("tile/8/4/x001/x234/067.p/1"), { level: 4, index: 1234067, width: 1 });
  for (const bad of ["tile/8/0/1", "tile/8/0/0001", "tile/8/0/x000/001", "tile/8/00/001", "tile/4/0/001", "tile/8/0/001.p/0", "tile/8/0/001.p/256", "tile/8/0/001.p/01", "tile/8/-1/001"]) {
    assert.equal(parseTilePath(bad), undefined, bad);
  }
});

/** A key pair and its verifier key, like the go command's note.GenerateKey. */
function newKey(name: string): { key: VerifierKey; privateKey: KeyObject; text: string } {
  const { publicKey, privateKey } = generateKeyPairSync("ed25519");
  const raw = Buffer.concat([Buffer.from([1]), Buffer.from(publicKey.export({ format: "jwk" }).x ?? "", "base64url")]);
  const hash = createHash("sha256").update(`${name}\n`).update(raw).digest().subarray(0, 4);
  const text = `${name}+${hash.toString("hex")}+${raw.toString("base64")}`;
  const key = parseVerifierKey(text);
  assert.ok(typeof key !== "string", `${text}: ${typeof key === "string" ? key : ""}`);
  return { key, privateKey, text };
}

function signNote(text: string, name: string, key: VerifierKey, privateKey: KeyObject): Buffer {
  const prefix = Buffer.alloc(4);
  prefix.writeUInt32BE(key.hash);
  return Buffer.from(`${text}\n— ${name} ${Buffer.concat([prefix, sign(null, Buffer.from(text), privateKey)]).toString("base64")}\n`);
}

test("verifier keys: sum.golang.org's parses; a base64 key may hold `+`; a wrong hash is refused", () => {
  const golang = parseVerifierKey("sum.golang.org+033de0ae+Ac4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8OuAn8");
  assert.ok(typeof golang !== "string" && golang.name === "sum.golang.org" && golang.hash === 0x033de0ae);
  assert.equal(typeof parseVerifierKey("sum.golang.org+033de0af+Ac4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8OuAn8"), "string");
  assert.equal(typeof parseVerifierKey("sum.golang.org"), "string");
  let withPlus = 0;
  for (let i = 0; i < 40 && withPlus === 0; i++) if (newKey("sum.example.com").text.split("+").length > 3) withPlus++;
  assert.equal(withPlus, 1, "no generated key had a '+' in its base64 (about one in two does)");
});

test("the sumdb setting reads as GOSUMDB does", () => {
  const known = parseSumdbSetting("sum.golang.org");
  assert.ok(typeof known === "object" && known.url === "https://sum.golang.org" && known.name === "sum.golang.org");
  const china = parseSumdbSetting("sum.golang.google.cn");
  assert.ok(typeof china === "object" && china.url === "https://sum.golang.google.cn" && china.name === "sum.golang.org");
  const { text } = newKey("sum.example.com");
  const custom = parseSumdbSetting(`${text} http://127.0.0.1:9/sumdb/`);
  assert.ok(typeof custom === "object" && custom.url === "http://127.0.0.1:9/sumdb" && custom.name === "sum.example.com");
  assert.equal(parseSumdbSetting("off"), undefined);
  const problem = (setting: string): string => {
    const parsed = parseSumdbSetting(setting);
    return typeof parsed === "string" ? parsed : "";
  };
  assert.match(problem("sum.example.com"), /knows no key/);
  assert.match(problem(`${text} ftp://x`), /http/);
});

test("signed notes: the configured key's signature over the text, nothing else", () => {
  const { key, privateKey } = newKey("sum.example.com");
  const other = newKey("sum.example.com");
  const text = "go.sum database tree\n3\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n";
  const note = signNote(text, "sum.example.com", key, privateKey);
  assert.equal(openSignedNote(note, key)?.toString(), text);
  assert.deepEqual(parseTreeHead(Buffer.from(text)), { size: 3, hash: Buffer.alloc(32) });
  assert.equal(openSignedNote(note, other.key), undefined, "another key");
  assert.equal(openSignedNote(Buffer.from(note.toString().replace("\n3\n", "\n4\n")), key), undefined, "tampered text");
  assert.equal(openSignedNote(signNote(text, "sum.example.com", key, other.privateKey), key), undefined, "signed by another private key");
  // Other signers' lines are ignored.
  const cosigned = Buffer.concat([note, signNote(text, "witness.example", other.key, other.privateKey).subarray(text.length + 1)]);
  assert.equal(openSignedNote(cosigned, key)?.toString(), text);
});

test("lookup answers: record lines for the module and version asked for", () => {
  const record = "example.com/Foo v1.0.0 h1:zip=\nexample.com/Foo v1.0.0/go.mod h1:mod=\n";
  const answer = parseLookupAnswer(Buffer.from(`12\n${record}\ngo.sum database tree\n...`));
  assert.ok(answer !== undefined && answer.id === 12 && answer.record.toString() === record);
  assert.deepEqual(recordHashes(answer.record, "example.com/Foo", "v1.0.0"), { zip: "h1:zip=", mod: "h1:mod=" });
  assert.equal(recordHashes(answer.record, "example.com/Foo", "v1.0.1"), undefined);
  assert.equal(recordHashes(answer.record, "example.com/foo", "v1.0.0"), undefined);
  assert.equal(parseLookupAnswer(Buffer.from("x\nrecord\n\n")), undefined);
});

/** Every tile of a log of `leaves`, as a database publishes them for its current size. */
function tilesOf(leaves: readonly Buffer[]): Map<string, Buffer> {
  const tiles = new Map<string, Buffer>();
  const levels: Buffer[][] = [[...leaves]];
  while ((levels.at(-1)?.length ?? 0) >= 2) {
    const below = levels.at(-1) ?? [];
    levels.push(Array.from({ length: Math.floor(below.length / 2) }, (_, i) => nodeHash(below[2 * i] ?? Buffer.alloc(0), below[2 * i + 1] ?? Buffer.alloc(0))));
  }
  for (let tileLevel = 0; tileLevel * 8 < levels.length; tileLevel++) {
    const hashes = levels[tileLevel * 8] ?? [];
    for (let index = 0; index * 256 < hashes.length; index++) {
      const slice = hashes.slice(index * 256, (index + 1) * 256);
      tiles.set(tilePath({ level: tileLevel, index, width: slice.length }), Buffer.concat(slice));
    }
  }
  return tiles;
}

function rootOf(leaves: readonly Buffer[]): Buffer {
  if (leaves.length === 1) return leaves[0] ?? Buffer.alloc(0);
  let k = 1;
  while (k * 2 < leaves.length) k *= 2;
  return nodeHash(rootOf(leaves.slice(0, k)), rootOf(leaves.slice(k)));
}

test("inclusion proofs from tiles: every record of a multi-level log proves; a changed one or a wrong tile does not", async () => {
  for (const size of [1, 2, 7, 256, 257, 70_000]) {
    const records = Array.from({ length: size }, (_, i) => Buffer.from(`example.com/m${i} v1.0.0 h1:x=\n`));
    const leaves = records.map(recordHash);
    const tree = { size, hash: rootOf(leaves) };
    const tiles = tilesOf(leaves);
    const read: string[] = [];
    const readTile = (tile: Tile): Promise<Buffer> => {
      const path = tilePath(tile);
      read.push(path);
      const bytes = tiles.get(path);
      return bytes === undefined ? Promise.reject(new Error(`no tile ${path}`)) : Promise.resolve(bytes);
    };
    for (const id of new Set([0, 1, size >> 1, 255, 256, 65_535, 65_536, size - 1].filter((n) => n < size))) {
      assert.equal(await recordIncluded(id, leaves[id] ?? Buffer.alloc(0), tree, readTile), true, `record ${id} of ${size}`);
      assert.equal(await recordIncluded(id, recordHash(Buffer.from("forged\n")), tree, readTile), false, `forged record ${id} of ${size}`);
    }
    assert.equal(await recordIncluded(size, leaves[0] ?? Buffer.alloc(0), tree, readTile), false, "an id past the tree");
    assert.ok(read.every((path) => tiles.has(path)), "only published tiles are asked for");
  }
  const leaves = [0, 1, 2].map((i) => recordHash(Buffer.from(`r${i}\n`)));
  const tree = { size: 3, hash: rootOf(leaves) };
  const bad = async (): Promise<Buffer> => Buffer.alloc(3 * 32);
  assert.equal(await recordIncluded(0, leaves[0] ?? Buffer.alloc(0), tree, bad), false);
});

test("h1 hashes: a go.mod's as the go command computes it, a zip's over its entries, a damaged zip refused", async () => {
  const goMod = new GoModHasher();
  goMod.update(Buffer.from("module example.test/Greeting\n\ngo 1.19\n"));
  // What `go mod download -json` says (GoModSum) for this go.mod.
  assert.equal(goMod.digest(), "h1:nYZlfPnb+0czMwKX+VJKIlOpAmRCq4PAVHjI9C4ZKu8=");

  const dir = await mkdtemp(join(tmpdir(), "go-units-"));
  try {
    const files = [
      { name: "example.com/m@v1.0.0/b.go", data: Buffer.from("package m\n") },
      { name: "example.com/m@v1.0.0/go.mod", data: Buffer.from("module example.com/m\n") },
    ];
    const zip = join(dir, "m.zip");
    await writeFile(zip, storedZip(files));
    const lines = files
      .map((file) => `${createHash("sha256").update(file.data).digest("hex")}  ${file.name}\n`)
      .sort()
      .join("");
    assert.equal(await hashModuleZip(zip), `h1:${createHash("sha256").update(lines).digest("base64")}`);
    const damaged = storedZip(files);
    const inData = 30 + Buffer.byteLength(files[0]?.name ?? "") + 1; // inside the first entry's data: its CRC no longer matches
    damaged[inData] = (damaged[inData] ?? 0) ^ 0xff;
    await writeFile(zip, damaged);
    await assert.rejects(hashModuleZip(zip), /CRC/);
    await writeFile(zip, Buffer.from("not a zip"));
    await assert.rejects(hashModuleZip(zip), /zip/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

/** A stored (uncompressed) zip of `files`. */
function storedZip(files: ReadonlyArray<{ name: string; data: Buffer }>): Buffer {
  const parts: Buffer[] = [];
  const central: Buffer[] = [];
  let offset = 0;
  for (const { name, data } of files) {
    const nameBytes = Buffer.from(name);
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4);
    local.writeUInt32LE(crc32(data), 14);
    local.writeUInt32LE(data.length, 18);
    local.writeUInt32LE(data.length, 22);
    local.writeUInt16LE(nameBytes.length, 26);
    const entry = Buffer.alloc(46);
    entry.writeUInt32LE(0x02014b50, 0);
    entry.writeUInt32LE(crc32(data), 16);
    entry.writeUInt32LE(data.length, 20);
    entry.writeUInt32LE(data.length, 24);
    entry.writeUInt16LE(nameBytes.length, 28);
    entry.writeUInt32LE(offset, 42);
    parts.push(local, nameBytes, data);
    central.push(entry, nameBytes);
    offset += 30 + nameBytes.length + data.length;
  }
  const directory = Buffer.concat(central);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(files.length, 8);
  end.writeUInt16LE(files.length, 10);
  end.writeUInt32LE(directory.length, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...parts, directory, end]);
}

test("checked bodies: bytes pass through; the end waits for the check, which fails the body on a mismatch; temp files go", async () => {
  const goMod = Buffer.from("module example.test/Greeting\n\ngo 1.19\n");
  const good = "h1:nYZlfPnb+0czMwKX+VJKIlOpAmRCq4PAVHjI9C4ZKu8=";
  const read = async (body: Readable): Promise<Buffer> => {
    const chunks: Buffer[] = [];
    for await (const chunk of body) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks);
  };
  assert.deepEqual(await read(checkedBody(Readable.from([goMod.subarray(0, 5), goMod.subarray(5)]), goModCheck(good, "go.mod"))), goMod);
  await assert.rejects(read(checkedBody(Readable.from([goMod]), goModCheck("h1:other=", "go.mod"))), /failed verification/);

  const dir = await mkdtemp(join(tmpdir(), "go-units-"));
  try {
    const files = [{ name: "example.com/m@v1.0.0/go.mod", data: Buffer.from("module example.com/m\n") }];
    const zip = storedZip(files);
    const lines = `${createHash("sha256").update(files[0]?.data ?? "").digest("hex")}  ${files[0]?.name ?? ""}\n`;
    const expected = `h1:${createHash("sha256").update(lines).digest("base64")}`;
    assert.deepEqual(await read(checkedBody(Readable.from([zip]), moduleZipCheck(expected, "m.zip", dir))), zip);
    await assert.rejects(read(checkedBody(Readable.from([zip]), moduleZipCheck("h1:other=", "m.zip", dir))), /failed verification/);
    await assert.rejects(read(checkedBody(Readable.from([Buffer.from("not a zip")]), moduleZipCheck(expected, "m.zip", dir))), /not a valid module zip/);
    const broken = new Readable({ read() {} });
    const reading = read(checkedBody(broken, moduleZipCheck(expected, "m.zip", dir)));
    broken.push(zip.subarray(0, 10));
    await new Promise((resolve) => setImmediate(resolve));
    broken.destroy(new Error("upstream broke off"));
    await assert.rejects(reading, /broke off/);
    // `abandon` runs as the body is destroyed: closing and removing the file take a moment.
    for (let wait = 0; wait < 100 && (await readdir(dir)).length > 0; wait++) await new Promise((resolve) => setTimeout(resolve, 10));
    assert.deepEqual(await readdir(dir), [], "no temporary file is left behind");
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
