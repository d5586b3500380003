import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { Readable, Writable } from "node:stream";
import { gzipSync } from "node:zlib";
import { pino, type Logger } from "pino";
import type { ArtifactRef } from "../../core/cache/artifact-ref.js";
import type { ArtifactSource, CachedArtifact } from "../../core/cache/artifact-source.js";
import { CachedIndexes, indexGroups } from "./cached-indexes.js";
import { parseRelease } from "./release-file.js";

const sha256 = (bytes: Uint8Array): string => createHash("sha256").update(bytes).digest("hex");
const DEB = "pool/main/v/vault-probe-lib/vault-probe-lib_1.0_all.deb";
const DSC = "pool/main/v/vault-probe-lib/vault-probe-lib_1.0.dsc";

/** A store the way `ArtifactSource.peek` shows it, counting what is opened and not let go. */
class FakeStore implements ArtifactSource {
  readonly files = new Map<string, Buffer>();
  /** Downloads in progress, which `peek` shows first (no ETag until they are verified). */
  readonly arriving = new Map<string, Buffer>();
  readonly peeked: string[] = [];
  /** What was asked of `get`, which could go upstream: the indexes never do. */
  readonly gets: string[] = [];
  open = 0;

  async get(ref: ArtifactRef): Promise<CachedArtifact> {
    this.gets.push(ref.cacheKey);
    throw new Error("the indexes read only what is cached or arriving");
  }

  async peek(ref: ArtifactRef): Promise<CachedArtifact | undefined> {
    this.peeked.push(ref.cacheKey);
    const arriving = this.arriving.get(ref.cacheKey);
    if (arriving !== undefined) return this.#artifact(arriving, undefined);
    const bytes = this.files.get(ref.cacheKey);
    return bytes === undefined ? undefined : this.#artifact(bytes, `"${sha256(bytes)}"`);
  }

  #artifact(bytes: Buffer, etag: string | undefined): CachedArtifact {
    this.open++;
    let open = true;
    const close = (): void => {
      if (open) this.open--;
      open = false;
    };
    return {
      status: "HIT",
      size: bytes.length,
      contentType: undefined,
      etag,
      lastModified: undefined,
      upstreamHeaders: {},
      // Small files come from memory, larger ones as a stream, as the filesystem store does.
      contents: bytes.length < 64 ? bytes : undefined,
      body: () => Readable.from([bytes]).once("close", close),
      release: close,
    };
  }
}

function packages(entries: ReadonlyArray<{ path: string; bytes: Buffer }>): string {
  return entries.map(({ path, bytes }) => `Package: x\nFilename: ${path}\nSize: ${bytes.length}\nSHA256: ${sha256(bytes)}\n`).join("\n");
}

function release(date: string, files: ReadonlyArray<{ name: string; bytes: Buffer }>): Buffer {
  const lines = files.map(({ name, bytes }) => ` ${sha256(bytes)} ${bytes.length} ${name}`);
  return Buffer.from(`Suite: stable\nCodename: bookworm\nDate: ${date}\nAcquire-By-Hash: yes\nSHA256:\n${lines.join("\n")}\n`);
}

function capturingLogger(): { logger: Logger; lines: Array<{ msg: string; level: number }> } {
  const lines: Array<{ msg: string; level: number }> = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(JSON.parse(chunk.toString()) as { msg: string; level: number });
      done();
    },
  });
  return { logger: pino({ level: "debug" }, sink), lines };
}

/** A suite `dists/bookworm` as apt-ftparchive publishes it, stored the way the backend caches it (key `debian/<path>`). */
function publish(store: FakeStore, options: { debBytes: Buffer; date?: string; byHash?: boolean; plain?: boolean; sources?: boolean; store?: boolean }) {
  const packagesText = Buffer.from(packages([{ path: DEB, bytes: options.debBytes }]));
  const packagesGz = gzipSync(packagesText);
  const sourcesText = Buffer.from(`Package: vault-probe-lib\nDirectory: pool/main/v/vault-probe-lib\nChecksums-Sha256:\n ${sha256(Buffer.from("dsc"))} 3 vault-probe-lib_1.0.dsc\n`);
  const listed = [
    { name: "main/binary-amd64/Packages", bytes: packagesText },
    { name: "main/binary-amd64/Packages.gz", bytes: packagesGz },
    // Listed but unreadable: never looked for.
    { name: "main/binary-amd64/Packages.bz2", bytes: Buffer.from("BZh9") },
    ...(options.sources === true ? [{ name: "main/source/Sources", bytes: sourcesText }] : []),
  ];
  const inRelease = release(options.date ?? "Sat, 10 Aug 2024 09:05:51 UTC", listed);
  const keys = {
    inRelease: "debian/dists/bookworm/InRelease",
    packagesGzByHash: `debian/dists/bookworm/main/binary-amd64/by-hash/SHA256/${sha256(packagesGz)}`,
    packagesGz: "debian/dists/bookworm/main/binary-amd64/Packages.gz",
    sources: "debian/dists/bookworm/main/source/Sources",
  };
  if (options.store !== false) {
    store.files.set(keys.inRelease, inRelease);
    if (options.byHash !== false) store.files.set(keys.packagesGzByHash, packagesGz);
    if (options.plain === true) store.files.set(keys.packagesGz, packagesGz);
    if (options.sources === true) store.files.set(keys.sources, sourcesText);
  }
  return { keys, packagesGz, inRelease };
}

function indexesOver(store: FakeStore, logger: Logger = pino({ level: "silent" }), maxPoolDigests?: number): CachedIndexes {
  return new CachedIndexes({
    artifacts: store,
    logger,
    maxPoolDigests,
    refFor: (path) => ({ backend: "debian", cacheKey: `debian/${path}`, upstreamPath: path, freshness: { kind: "immutable" } }),
  });
}

test("nothing is known before a client asked for a suite: no digest, nothing looked at", async () => {
  const store = new FakeStore();
  publish(store, { debBytes: Buffer.from("deb") });
  const indexes = indexesOver(store);
  assert.equal(await indexes.poolDigest(DEB, "Packages"), undefined);
  assert.deepEqual(store.peeked, []);
});

test("a pool file's digest comes from the cached by-hash Packages its suite's cached InRelease names", async () => {
  const store = new FakeStore();
  const deb = Buffer.from("the real deb");
  publish(store, { debBytes: deb, sources: true });
  const indexes = indexesOver(store);
  indexes.noteSuite("dists/bookworm");
  assert.deepEqual(await indexes.poolDigest(DEB, "Packages"), { sha256: sha256(deb), size: deb.length });
  assert.equal(indexes.poolDigestCount, 1);
  // Sources are read only for source package files.
  assert.ok(!store.peeked.some((key) => key.includes("/source/")));
  const looked = store.peeked.length;
  // Nothing changed upstream since: answered from memory.
  assert.deepEqual(await indexes.poolDigest(DEB, "Packages"), { sha256: sha256(deb), size: deb.length });
  assert.equal(await indexes.poolDigest("pool/main/o/other/other_1_all.deb", "Packages"), undefined);
  assert.equal(store.peeked.length, looked);
  assert.deepEqual(await indexes.poolDigest(DSC, "Sources"), { sha256: sha256(Buffer.from("dsc")), size: 3 });
  assert.equal(store.open, 0, "every cached file looked at is let go");
});

test("an index cached by name counts only when it is the version the Release lists", async () => {
  const store = new FakeStore();
  const deb = Buffer.from("deb v1");
  const { keys } = publish(store, { debBytes: deb, byHash: false, plain: true });
  // The plain copy is another version than the one listed.
  store.files.set(keys.packagesGz, gzipSync(packages([{ path: DEB, bytes: Buffer.from("something else") }])));
  const indexes = indexesOver(store);
  indexes.noteSuite("dists/bookworm");
  assert.equal(await indexes.poolDigest(DEB, "Packages"), undefined);
  publish(store, { debBytes: deb, byHash: false, plain: true });
  indexes.noteFetched(keys.packagesGz);
  assert.deepEqual(await indexes.poolDigest(DEB, "Packages"), { sha256: sha256(deb), size: deb.length });
  assert.equal(store.open, 0);
});

test("a re-published index wins over the one read before, once something under dists/ came from upstream", async () => {
  const store = new FakeStore();
  const first = Buffer.from("first build");
  const second = Buffer.from("second build, same name");
  publish(store, { debBytes: first });
  const indexes = indexesOver(store);
  indexes.noteSuite("dists/bookworm");
  assert.equal((await indexes.poolDigest(DEB, "Packages"))?.sha256, sha256(first));
  const { keys } = publish(store, { debBytes: second, date: "Sat, 10 Aug 2024 15:05:51 UTC" });
  assert.equal((await indexes.poolDigest(DEB, "Packages"))?.sha256, sha256(first), "nothing fetched: not looked at again");
  indexes.noteFetched(keys.inRelease);
  indexes.noteFetched(keys.packagesGzByHash);
  assert.equal((await indexes.poolDigest(DEB, "Packages"))?.sha256, sha256(second));
  assert.equal(indexes.poolDigestCount, 1, "the index's layer was replaced, not added to");
});

test("an index fetched a moment ago is read from the download still arriving; one neither stored nor arriving keeps the suite due", async () => {
  const store = new FakeStore();
  const deb = Buffer.from("deb");
  const { keys, packagesGz, inRelease } = publish(store, { debBytes: deb, store: false });
  const indexes = indexesOver(store);
  indexes.noteSuite("dists/bookworm");
  // The InRelease and the Packages are both still being downloaded.
  store.arriving.set(keys.inRelease, inRelease);
  store.arriving.set(keys.packagesGzByHash, packagesGz);
  indexes.noteFetched(keys.inRelease);
  indexes.noteFetched(keys.packagesGzByHash);
  assert.deepEqual(await indexes.poolDigest(DEB, "Packages"), { sha256: sha256(deb), size: deb.length });
  assert.deepEqual(store.gets, []);
  assert.equal(store.open, 0);

  // A download that failed: not stored, not arriving; the upstream is not asked instead.
  const other = new FakeStore();
  const later = indexesOver(other);
  later.noteSuite("dists/bookworm");
  other.files.set(keys.inRelease, inRelease);
  later.noteFetched(keys.packagesGzByHash);
  assert.equal(await later.poolDigest(DEB, "Packages"), undefined);
  assert.deepEqual(other.gets, []);
  // It landed after all: the next download looks again, though nothing else was fetched.
  other.files.set(keys.packagesGzByHash, packagesGz);
  assert.deepEqual(await later.poolDigest(DEB, "Packages"), { sha256: sha256(deb), size: deb.length });
});

test("a download still arriving under an index's name that turns out to be another version is not used", async () => {
  const store = new FakeStore();
  const deb = Buffer.from("deb v2");
  const { keys, inRelease } = publish(store, { debBytes: deb, byHash: false, store: false });
  store.files.set(keys.inRelease, inRelease);
  store.arriving.set(keys.packagesGz, gzipSync(packages([{ path: DEB, bytes: Buffer.from("deb v1") }])));
  const indexes = indexesOver(store);
  indexes.noteSuite("dists/bookworm");
  indexes.noteFetched(keys.packagesGz);
  assert.equal(await indexes.poolDigest(DEB, "Packages"), undefined);
  assert.equal(indexes.poolDigestCount, 0);
});

test("after a restart, digests are read back from the store once a suite is asked for again", async () => {
  const store = new FakeStore();
  const deb = Buffer.from("deb");
  publish(store, { debBytes: deb });
  const before = indexesOver(store);
  before.noteSuite("dists/bookworm");
  assert.ok((await before.poolDigest(DEB, "Packages")) !== undefined);
  before.close();
  const after = indexesOver(store);
  assert.equal(await after.poolDigest(DEB, "Packages"), undefined);
  after.noteSuite("dists/bookworm");
  assert.deepEqual(await after.poolDigest(DEB, "Packages"), { sha256: sha256(deb), size: deb.length });
});

test("a plain dists/ index must match its suite's cached Release, unless it is newer than that Release", async () => {
  const store = new FakeStore();
  const { packagesGz } = publish(store, { debBytes: Buffer.from("deb") });
  const indexes = indexesOver(store);
  indexes.noteSuite("dists/bookworm");
  assert.deepEqual(await indexes.indexDigest("dists/bookworm/main/binary-amd64/Packages.gz"), { algorithm: "sha256", hex: sha256(packagesGz) });
  assert.deepEqual(await indexes.indexDigest("dists/bookworm/main/binary-amd64/Packages.gz", "Sat, 10 Aug 2024 09:05:51 GMT"), { algorithm: "sha256", hex: sha256(packagesGz) });
  assert.equal(await indexes.indexDigest("dists/bookworm/main/binary-amd64/Packages.gz", "Sat, 10 Aug 2024 09:05:52 GMT"), undefined);
  assert.equal(await indexes.indexDigest("dists/bookworm/main/i18n/Translation-en"), undefined);
  assert.equal(await indexes.indexDigest("dists/trixie/main/binary-amd64/Packages.gz"), undefined);
  assert.equal(store.open, 0);
});

test("an index the vault cannot read leaves its files unverified, with a log line and no error", async () => {
  const store = new FakeStore();
  const { keys } = publish(store, { debBytes: Buffer.from("deb") });
  // A Release listing a gzip index that is not one (its by-hash copy matches the listed digest).
  const broken = Buffer.from([0x1f, 0x8b, 0x08, 0x00, 0x01, 0x02, 0x03]);
  const rewritten = release("Sat, 10 Aug 2024 09:05:51 UTC", [{ name: "main/binary-amd64/Packages.gz", bytes: broken }]);
  store.files.set(keys.inRelease, rewritten);
  store.files.set(`debian/dists/bookworm/main/binary-amd64/by-hash/SHA256/${sha256(broken)}`, broken);
  const { logger, lines } = capturingLogger();
  const indexes = indexesOver(store, logger);
  indexes.noteSuite("dists/bookworm");
  assert.equal(await indexes.poolDigest(DEB, "Packages"), undefined);
  assert.ok(lines.some((line) => /cannot read this cached index/.test(line.msg)), JSON.stringify(lines));
  assert.equal(store.open, 0);
});

test("the bound on pool files is kept: the rest of a too long index is unverified", async () => {
  const store = new FakeStore();
  const debs = Array.from({ length: 10 }, (_, index) => ({ path: `pool/main/p/p${index}/p${index}_1_all.deb`, bytes: Buffer.from(`deb ${index}`) }));
  const text = Buffer.from(packages(debs));
  store.files.set("debian/dists/bookworm/InRelease", release("Sat, 10 Aug 2024 09:05:51 UTC", [{ name: "main/binary-amd64/Packages", bytes: text }]));
  store.files.set(`debian/dists/bookworm/main/binary-amd64/by-hash/SHA256/${sha256(text)}`, text);
  const { logger, lines } = capturingLogger();
  const indexes = indexesOver(store, logger, 4);
  indexes.noteSuite("dists/bookworm");
  assert.ok((await indexes.poolDigest(debs[3]?.path ?? "", "Packages")) !== undefined);
  assert.equal(await indexes.poolDigest(debs[4]?.path ?? "", "Packages"), undefined);
  assert.equal(indexes.poolDigestCount, 4);
  assert.ok(lines.some((line) => /more pool files than the vault keeps/.test(line.msg)));
});

test("index groups: each index once, its readable compressions best first", () => {
  const entry = (name: string): string => ` ${"0".repeat(64)} 1 ${name}`;
  const parsed = parseRelease(
    ["SHA256:", ...["main/binary-amd64/Packages", "main/binary-amd64/Packages.gz", "main/binary-amd64/Packages.xz", "main/binary-amd64/Packages.bz2", "contrib/binary-amd64/Packages.bz2", "main/debian-installer/binary-amd64/Packages.xz", "main/source/Sources.xz", "main/binary-amd64/Packages.diff/Index", "main/Contents-amd64.gz"].map(entry)].join("\n"),
  );
  const groups = indexGroups(parsed, "Packages");
  assert.deepEqual(
    [...groups].map(([group, entries]) => [group, entries.map((listed) => listed.name)]),
    [
      ["main/binary-amd64/Packages", ["main/binary-amd64/Packages.xz", "main/binary-amd64/Packages.gz", "main/binary-amd64/Packages"]],
      ["main/debian-installer/binary-amd64/Packages", ["main/debian-installer/binary-amd64/Packages.xz"]],
    ],
  );
  assert.deepEqual([...indexGroups(parsed, "Sources").keys()], ["main/source/Sources"]);
});

test("reading a Debian-sized index leaves the event loop free between slices", async (t) => {
  const store = new FakeStore();
  const description = ` ${"a long description line ".repeat(12)}\n`.repeat(2);
  const stanzas: string[] = [];
  for (let index = 0; index < 60_000; index++) {
    const name = `package-number-${index}`;
    stanzas.push(`Package: ${name}\nVersion: 1.${index}-1\nDescription: number ${index}\n${description}Filename: pool/main/p/${name}/${name}_1.${index}-1_amd64.deb\nSize: ${index}\nSHA256: ${sha256(Buffer.from(name))}\n`);
  }
  const text = Buffer.from(stanzas.join("\n"));
  const gz = gzipSync(text, { level: 1 });
  store.files.set("debian/dists/bookworm/InRelease", release("Sat, 10 Aug 2024 09:05:51 UTC", [{ name: "main/binary-amd64/Packages.gz", bytes: gz }]));
  store.files.set(`debian/dists/bookworm/main/binary-amd64/by-hash/SHA256/${sha256(gz)}`, gz);
  const indexes = indexesOver(store);
  indexes.noteSuite("dists/bookworm");

  let ticks = 0;
  let longest = 0;
  let last = performance.now();
  const ticker = setInterval(() => {
    const now = performance.now();
    longest = Math.max(longest, now - last);
    last = now;
    ticks++;
  }, 1);
  const started = performance.now();
  const found = await indexes.poolDigest("pool/main/p/package-number-59999/package-number-59999_1.59999-1_amd64.deb", "Packages");
  const took = performance.now() - started;
  clearInterval(ticker);
  assert.deepEqual(found, { sha256: sha256(Buffer.from("package-number-59999")), size: 59999 });
  assert.equal(indexes.poolDigestCount, 60_000);
  t.diagnostic(`${(text.length / 1e6).toFixed(0)} MB read in ${Math.round(took)} ms; ${ticks} timer ticks meanwhile, the longest wait ${Math.round(longest)} ms`);
  // Timers ran all along: no pause anywhere near the whole read (slices are ~SLICE_MS; a GC may add some).
  assert.ok(ticks >= 5, `${ticks} timer ticks in ${Math.round(took)} ms`);
  assert.ok(longest < Math.max(250, took / 4), `the event loop was blocked for ${Math.round(longest)} ms of ${Math.round(took)} ms (${(text.length / 1e6).toFixed(0)} MB)`);
});
