/**
 * One filesystem store served by several processes (the vault's workers): the driver takes its
 * commit lock and announces its changes through `StoreSharing`. Here two (or three) drivers in one
 * process stand for the workers, joined by an in-process hub standing for the primary.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, describe, it } from "node:test";
import { FilesystemDriver, STAGING_PREFIX, type FilesystemDriverOptions } from "../../src/storage/filesystem-driver.js";
import { KeyLock } from "../../src/storage/key-lock.js";
import type { StoreChange, StoreSharing } from "../../src/storage/store-sharing.js";
import { assertVaultError, chunked, readAll, sha256Hex } from "./storage-driver.contract.js";

const temporary: string[] = [];

async function tempRoot(): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), "av-fs-shared-"));
  temporary.push(dir);
  return path.join(dir, "store");
}

after(async () => {
  await Promise.all(temporary.map((dir) => rm(dir, { recursive: true, force: true })));
});

/** The primary's part, in process: one lock for all members; a change reaches every other member before `announce` resolves. */
class FakeHub {
  readonly #lock = new KeyLock();
  readonly #listeners = new Map<Member, (change: StoreChange) => void>();
  lockedRuns = 0;
  readonly announced: StoreChange[] = [];

  member(): StoreSharing {
    return new Member(this);
  }

  run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    this.lockedRuns++;
    return this.#lock.run(key, fn);
  }

  listen(member: Member, listener: (change: StoreChange) => void): void {
    this.#listeners.set(member, listener);
  }

  deliver(from: Member | undefined, change: StoreChange): void {
    this.announced.push(change);
    for (const [member, listener] of this.#listeners) if (member !== from) listener(change);
  }
}

class Member implements StoreSharing {
  readonly #hub: FakeHub;

  constructor(hub: FakeHub) {
    this.#hub = hub;
  }

  withKeyLock<T>(key: string, fn: () => Promise<T>): Promise<T> {
    return this.#hub.run(key, fn);
  }

  async announce(change: StoreChange): Promise<void> {
    this.#hub.deliver(this, change);
  }

  onChange(listener: (change: StoreChange) => void): void {
    this.#hub.listen(this, listener);
  }
}

const text = (value: string): AsyncIterable<Uint8Array> => chunked(Buffer.from(value));

/** A body that sends `first`, then waits for `release()` before sending `rest`. */
function heldBody(first: string, rest: string): { body: AsyncIterable<Uint8Array>; release: () => void } {
  let release = (): void => undefined;
  const released = new Promise<void>((resolve) => (release = resolve));
  const body = (async function* () {
    yield Buffer.from(first);
    await released;
    yield Buffer.from(rest);
  })();
  return { body, release };
}

async function stagingNames(dir: string): Promise<string[]> {
  return (await readdir(dir)).filter((name) => name.startsWith(STAGING_PREFIX));
}

async function waitForStaging(dir: string, count = 1): Promise<string[]> {
  for (;;) {
    const names = existsSync(dir) ? await stagingNames(dir) : [];
    if (names.length >= count) return names;
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** Of two settled writes, exactly one stored and the other was refused with precondition_failed. */
function assertOneWon(results: readonly PromiseSettledResult<unknown>[], message: string): void {
  const refused = results.filter((result): result is PromiseRejectedResult => result.status === "rejected");
  assert.equal(results.length - refused.length, 1, message);
  assert.equal(refused.length, 1, message);
  assertVaultError(refused[0]?.reason, "precondition_failed", message);
}

/** A staging file's name for `pid`, as a writer with that pid names it. */
function stagingFor(pid: number, random = "0123456789abcdef"): string {
  return STAGING_PREFIX + pid.toString(16).padStart(8, "0") + random;
}

/** The pid of a process that has exited. */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ["-e", ""], { stdio: "ignore" });
  const pid = child.pid;
  assert.ok(pid !== undefined);
  if (child.exitCode === null) await once(child, "exit");
  return pid;
}

void describe("filesystem driver shared by several processes", () => {
  const opened: FilesystemDriver[] = [];
  const open = async (options: FilesystemDriverOptions): Promise<FilesystemDriver> => {
    const driver = await FilesystemDriver.open(options);
    opened.push(driver);
    return driver;
  };
  after(async () => {
    for (const driver of opened) await driver.close();
  });

  /** Two drivers on one new root, joined by a hub, their walks done. */
  const pair = async (): Promise<{ root: string; hub: FakeHub; a: FilesystemDriver; b: FilesystemDriver }> => {
    const root = await tempRoot();
    const hub = new FakeHub();
    const a = await open({ root_path: root, fsync: false, sharing: hub.member() });
    const b = await open({ root_path: root, fsync: false, sharing: hub.member() });
    await Promise.all([a.indexed, b.indexed]);
    return { root, hub, a, b };
  };

  void it("a write through one is read and listed by the other as soon as it resolves, a held old version included", async () => {
    const { root, hub, a, b } = await pair();
    await a.write("k", text("old"));
    assert.equal((await readAll(b, "k")).toString(), "old");
    assert.equal(b.readHeld("k")?.contents.toString(), "old", "B holds the small object in memory");

    await a.write("k", text("new"));
    assert.equal(b.readHeld("k"), undefined, "the announcement dropped B's held copy");
    assert.equal((await readAll(b, "k")).toString(), "new");
    assert.equal((await b.stat("k"))?.size, 3);

    // A key B's built index has never seen.
    await a.write("dir/fresh", text("fresh"));
    assert.equal((await b.stat("dir/fresh"))?.size, 5);
    assert.equal((await readAll(b, "dir/fresh")).toString(), "fresh");
    assert.deepEqual((await b.list({ limit: 10 })).keys, ["dir/fresh", "k"]);

    // An import is announced too.
    const spool = path.join(root, "spool");
    await mkdir(spool, { recursive: true });
    const file = path.join(spool, "upload");
    await writeFile(file, "imported");
    await a.importFile("dir/imported", file, { size: 8, sha256: sha256Hex(Buffer.from("imported")) });
    assert.equal((await readAll(b, "dir/imported")).toString(), "imported");
    assert.deepEqual((await b.list({ limit: 10, prefix: "dir/" })).keys, ["dir/fresh", "dir/imported"]);

    assert.deepEqual(hub.announced, [
      { key: "k", removed: false },
      { key: "k", removed: false },
      { key: "dir/fresh", removed: false },
      { key: "dir/imported", removed: false },
    ]);
    assert.equal(hub.lockedRuns, 4, "every commit took the shared lock");
  });

  void it("a delete through one is missing for the other at once", async () => {
    const { hub, a, b } = await pair();
    await a.write("gone", text("soon gone"));
    await a.write("kept", text("kept"));
    assert.equal((await readAll(b, "gone")).toString(), "soon gone"); // held by B now
    assert.equal(await a.delete("gone"), true);
    assert.equal(await b.stat("gone"), undefined);
    assert.equal(await b.read("gone"), undefined);
    assert.equal(b.readHeld("gone"), undefined);
    assert.deepEqual((await b.list({ limit: 10 })).keys, ["kept"]);
    assert.equal(await b.delete("gone"), false);
    assert.deepEqual(hub.announced.at(-1), { key: "gone", removed: true });
  });

  void it("conditional writes through both are decided by the shared lock: exactly one wins", async () => {
    const { a, b } = await pair();
    for (let round = 0; round < 10; round++) {
      // Create-only: both pass the early check (nothing there yet), then commit together.
      const key = `race/${round}`;
      const first = heldBody("from ", "A");
      const second = heldBody("from ", "B");
      const writes = [a.write(key, first.body, { ifNoneMatch: "*" }), b.write(key, second.body, { ifNoneMatch: "*" })];
      await waitForStaging(path.join(a.objectsDir, "race"), 2);
      first.release();
      second.release();
      assertOneWon(await Promise.allSettled(writes), `round ${round}: create-only`);
      const stored = (await readAll(a, key)).toString();
      assert.ok(stored === "from A" || stored === "from B");
      assert.equal((await readAll(b, key)).toString(), stored);

      // Compare-and-swap on the version both saw: the second commit sees the first's version.
      const seen = await a.stat(key);
      assert.ok(seen !== undefined);
      const third = heldBody("swap ", "A");
      const fourth = heldBody("swap ", "B");
      const swaps = [a.write(key, third.body, { ifMatch: seen.etag }), b.write(key, fourth.body, { ifMatch: seen.etag })];
      await waitForStaging(path.join(a.objectsDir, "race"), 2);
      third.release();
      fourth.release();
      assertOneWon(await Promise.allSettled(swaps), `round ${round}: compare-and-swap`);
      const now = (await readAll(b, key)).toString();
      assert.ok(now === "swap A" || now === "swap B");
      assert.equal((await readAll(a, key)).toString(), now);
    }
    assert.deepEqual(await stagingNames(path.join(a.objectsDir, "race")), []);
  });

  void it("a driver opening on the root keeps the staging files of other live writers, and removes the dead ones", async () => {
    const { root, hub, a } = await pair();
    const objects = path.join(root, "objects");
    const dir = path.join(objects, "slow");
    const { body, release } = heldBody("half ", "and the rest");
    const write = a.write("slow/object", body);
    const [live] = await waitForStaging(dir);
    assert.ok(live !== undefined);
    assert.match(live, /^\.tmp-[0-9a-f]{24}$/);
    assert.equal(live.slice(STAGING_PREFIX.length, STAGING_PREFIX.length + 8), process.pid.toString(16).padStart(8, "0"));

    // Another process's write in progress (alive), crash leftovers (dead pid, unparsable pid).
    const other = spawn(process.execPath, ["-e", "setInterval(() => {}, 1000)"], { stdio: "ignore" });
    try {
      const otherPid = other.pid;
      assert.ok(otherPid !== undefined);
      const dead = await deadPid();
      await writeFile(path.join(objects, stagingFor(otherPid)), "another worker's write");
      await writeFile(path.join(objects, stagingFor(dead)), "crashed");
      await writeFile(path.join(objects, STAGING_PREFIX + "zz".repeat(12)), "not a pid");
      await writeFile(path.join(objects, stagingFor(0)), "pid 0 is no process");
      await writeFile(path.join(objects, STAGING_PREFIX + "0011223344556677"), "the old, shorter name");

      const third = await open({ root_path: root, fsync: false, sharing: hub.member() });
      const report = await third.indexed;
      assert.equal(report.removedStagingFiles, 4);
      assert.deepEqual(await stagingNames(dir), [live], "A's staging file is still there");
      assert.deepEqual(await stagingNames(objects), [stagingFor(otherPid)]);

      release();
      assert.equal((await write).size, "half and the rest".length);
      assert.deepEqual(await stagingNames(dir), []);
      assert.equal((await readAll(third, "slow/object")).toString(), "half and the rest");
      assert.deepEqual((await third.list({ limit: 10 })).keys, ["slow/object"]);

      // Without sharing, as before: every staging file no write of this process owns is a leftover.
      await writeFile(path.join(objects, stagingFor(dead)), "crashed");
      const alone = await open({ root_path: root, fsync: false });
      assert.equal((await alone.indexed).removedStagingFiles, 2);
      assert.deepEqual(await stagingNames(objects), []);
    } finally {
      other.kill();
    }
  });

  void it("a key another process removes while the walk runs is not indexed from the walk, unless stored again", async () => {
    const root = await tempRoot();
    const hub = new FakeHub();
    const a = await open({ root_path: root, fsync: false, sharing: hub.member() });
    await a.write("removed", text("x"));
    await a.write("restored", text("y"));
    let startWalk = (): void => undefined;
    const scanGate = new Promise<void>((resolve) => (startWalk = resolve));
    const b = await open({ root_path: root, fsync: false, sharing: hub.member(), scanGate });
    // As if the walk's readdir lagged the unlinks: the announcements arrive, the files are still there.
    hub.deliver(undefined, { key: "removed", removed: true });
    hub.deliver(undefined, { key: "restored", removed: true });
    hub.deliver(undefined, { key: "restored", removed: false });
    startWalk();
    assert.equal((await b.indexed).objects, 2);
    assert.deepEqual((await b.list({ limit: 10 })).keys, ["restored"]);
  });
});
