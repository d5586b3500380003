import { after, before, describe, test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { writeTokensFile } from "../../src/auth/tokens-file.js";
import { RestStore, type Progress } from "../../src/client/index.js";
import { tokenRecords } from "../support/test-vault.js";
import { spawnVault, type VaultProcess } from "../support/vault-process.js";

const MiB = 1024 * 1024;
const SIZE = 512 * MiB;
const CHUNK = MiB;
/** Growth of RSS or heap above the starting point that would mean the object was buffered. */
const MEMORY_LIMIT = 128 * MiB;

/**
 * 512 MiB generated on the fly, never held: each 1 MiB chunk is a fresh copy of one random block
 * stamped with its index (so no two chunks are alike), hashed as it is produced.
 */
function generate(hash: ReturnType<typeof createHash>): AsyncGenerator<Buffer> {
  const block = randomBytes(CHUNK);
  return (async function* () {
    for (let index = 0; index < SIZE / CHUNK; index++) {
      const chunk = Buffer.from(block);
      chunk.writeUInt32BE(index, 0);
      chunk.writeUInt32BE(index ^ 0x5a5a5a5a, CHUNK - 4);
      hash.update(chunk);
      yield chunk;
    }
  })();
}

/** Samples RSS and heap as a transfer goes, keeping the peaks above the baseline. */
class MemoryWatch {
  private readonly rss0 = process.memoryUsage.rss();
  private readonly heap0 = process.memoryUsage().heapUsed;
  peakRss = 0;
  peakHeap = 0;
  private last = 0;

  sample(bytes: number): void {
    if (bytes - this.last < 16 * MiB && bytes !== SIZE) return;
    this.last = bytes;
    this.peakRss = Math.max(this.peakRss, process.memoryUsage.rss() - this.rss0);
    this.peakHeap = Math.max(this.peakHeap, process.memoryUsage().heapUsed - this.heap0);
  }

  assertFlat(t: TestContext, what: string): void {
    const mib = (n: number) => `${(n / MiB).toFixed(1)} MiB`;
    t.diagnostic(`${what}: client RSS grew by at most ${mib(this.peakRss)}, heap by ${mib(this.peakHeap)}`);
    assert.ok(this.peakRss < MEMORY_LIMIT, `${what}: RSS grew by ${mib(this.peakRss)}`);
    assert.ok(this.peakHeap < MEMORY_LIMIT, `${what}: heap grew by ${mib(this.peakHeap)}`);
  }
}

/** The server's resident memory (Linux), reported alongside — the assertions are about the client. */
function serverRssMiB(vault: VaultProcess): number | undefined {
  try {
    const status = readFileSync(`/proc/${vault.child.pid}/status`, "utf8");
    const kib = /^VmRSS:\s+(\d+) kB/m.exec(status)?.[1];
    return kib === undefined ? undefined : Number(kib) / 1024;
  } catch {
    return undefined;
  }
}

/**
 * The real server runs as its own process (the built CLI, port 0, filesystem storage), so this
 * process's RSS and heap are the client's alone.
 */
describe("streaming a 512 MiB object through RestStore", () => {
  let dir: string;
  let vault: VaultProcess;
  let store: RestStore;
  let expectedSha256 = "";
  const reportServer = (t: TestContext, before: number | undefined) => {
    const now = serverRssMiB(vault);
    if (before !== undefined && now !== undefined) t.diagnostic(`server RSS: ${before.toFixed(0)} MiB before, ${now.toFixed(0)} MiB after`);
  };

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "vault-client-stream-"));
    const { records, tokens } = await tokenRecords([{ name: "all", scopes: ["read", "write", "delete"] }]);
    await writeTokensFile(join(dir, "tokens.json"), records);
    const config = join(dir, "config.yml");
    await writeFile(
      config,
      [
        "http_host: 127.0.0.1",
        "http_port: 0",
        "log_level: info",
        `cache_dir: ${JSON.stringify(join(dir, "data"))}`,
        `auth: {tokens_file: ${JSON.stringify(join(dir, "tokens.json"))}}`,
        "max_object_size: 1GiB",
        "rate_limit: {enabled: false}",
      ].join("\n"),
    );
    vault = await spawnVault(config);
    store = RestStore.create({ baseUrl: vault.url, apiKey: tokens["all"]! });
  });
  after(async () => {
    await store?.close();
    if (vault !== undefined) {
      vault.kill();
      await vault.exited();
    }
    await rm(dir, { recursive: true, force: true });
  });

  test("putStream uploads it with flat memory and progress up to the total", async (t) => {
    const serverBefore = serverRssMiB(vault);
    const hash = createHash("sha256");
    const watch = new MemoryWatch();
    let last: Progress | undefined;
    const result = await store.putStream("big/512mib.bin", generate(hash), {
      size: SIZE,
      onProgress: (progress) => {
        last = progress;
        watch.sample(progress.bytes);
      },
    });
    expectedSha256 = hash.digest("hex");
    assert.equal(result.size, SIZE);
    assert.deepEqual(last, { bytes: SIZE, total: SIZE });
    reportServer(t, serverBefore);
    watch.assertFlat(t, "upload");

    const info = await store.stat("big/512mib.bin");
    assert.equal(info.size, SIZE);
    assert.equal(info.etag, `"${expectedSha256}"`, "the server stored exactly the bytes generated");
  });

  test("getStream downloads it with flat memory; the sha256 matches", async (t) => {
    const serverBefore = serverRssMiB(vault);
    assert.notEqual(expectedSha256, "", "the upload test ran first");
    const watch = new MemoryWatch();
    let last: Progress | undefined;
    const stream = await store.getStream("big/512mib.bin", {
      onProgress: (progress) => {
        last = progress;
        watch.sample(progress.bytes);
      },
    });
    const hash = createHash("sha256");
    let size = 0;
    for await (const chunk of stream) {
      hash.update(chunk as Buffer);
      size += (chunk as Buffer).byteLength;
    }
    assert.equal(size, SIZE);
    assert.equal(hash.digest("hex"), expectedSha256);
    assert.deepEqual(last, { bytes: SIZE, total: SIZE });
    reportServer(t, serverBefore);
    watch.assertFlat(t, "download");
  });

  test("download() into a slow Writable keeps memory flat through backpressure", async (t) => {
    const watch = new MemoryWatch();
    const hash = createHash("sha256");
    let size = 0;
    let writes = 0;
    const slowSink = new Writable({
      highWaterMark: MiB,
      write(chunk: Buffer, _encoding, callback) {
        hash.update(chunk);
        size += chunk.byteLength;
        watch.sample(size);
        // Each write completes a turn later, so the network side outruns the sink.
        writes++;
        setImmediate(callback);
      },
    });
    const stat = await store.download("big/512mib.bin", slowSink);
    assert.equal(stat.size, SIZE);
    assert.equal(size, SIZE);
    assert.equal(hash.digest("hex"), expectedSha256);
    assert.ok(writes > 1);
    watch.assertFlat(t, "download to a Writable");
  });
});
