import { describe, it } from "node:test";
import assert from "node:assert/strict";
import type { FillProgress } from "../cache/artifact-cache.js";
import { isVaultError } from "../core/errors.js";
import { FakeCluster } from "../../tests/support/fake-cluster.js";
import { FILLS_REQUEST_EVENT, fillsFromWire, mergeFills, serveClusterFills, WorkerFills } from "./fills-link.js";

/**
 * The downloads in progress with workers: `mergeFills` (one entry per download), and both sides
 * of the question — `WorkerFills` in each worker, `serveClusterFills` in the primary — over an
 * in-process link (`FakeCluster`). A real vault of two worker processes is in
 * `tests/integration/workers.test.ts`.
 */

const T0 = Date.parse("2025-01-02T03:04:05.000Z");

/** A download of `key`; `total` null: of an unknown size. */
function fill(key: string, bytes: number, startedAfterMs: number, waiters: number, total: number | null = 1000): FillProgress {
  return {
    key,
    backend: key.slice(0, key.indexOf("/")),
    bytes,
    total: total ?? undefined,
    percent: total === null ? undefined : Math.round((bytes / total) * 1000) / 10,
    startedAt: new Date(T0 + startedAfterMs),
    waiters,
  };
}

/** The question's timeout here: a worker that does not answer fails it at once. */
const TIMEOUT_MS = 50;

function cluster(): FakeCluster {
  return new FakeCluster((hub) => serveClusterFills(hub, TIMEOUT_MS));
}

describe("mergeFills", () => {
  const cases: ReadonlyArray<{ name: string; lists: FillProgress[][]; merged: FillProgress[] }> = [
    { name: "no worker has any", lists: [[], []], merged: [] },
    {
      name: "downloads of different keys are each kept, in the lists' order",
      lists: [[fill("files/a", 10, 0, 1)], [fill("files/b", 20, 5, 2), fill("pypi/c", 0, 7, 1, null)]],
      merged: [fill("files/a", 10, 0, 1), fill("files/b", 20, 5, 2), fill("pypi/c", 0, 7, 1, null)],
    },
    {
      // The follower tails the download: it started later and is behind.
      name: "a download and a worker following it: the download's entry, the waiters of both",
      lists: [[fill("files/big", 300, 40, 3)], [fill("files/big", 500, 0, 2)]],
      merged: [{ ...fill("files/big", 500, 0, 5) }],
    },
    {
      name: "three workers, the downloader's last",
      lists: [[fill("files/big", 100, 30, 1)], [fill("files/big", 120, 20, 4)], [fill("files/big", 800, 0, 1)]],
      merged: [fill("files/big", 800, 0, 6)],
    },
    {
      // Relays of a copy just stored, or a follower that has caught up: the first started.
      name: "equally far along: the earliest entry",
      lists: [[fill("files/x", 1000, 9, 1)], [fill("files/x", 1000, 3, 1)]],
      merged: [fill("files/x", 1000, 3, 2)],
    },
    {
      name: "started earliest counts even when that one is behind",
      lists: [[fill("files/y", 10, 0, 1)], [fill("files/y", 50, 8, 1)]],
      merged: [{ ...fill("files/y", 50, 8, 2), startedAt: new Date(T0) }],
    },
  ];
  for (const { name, lists, merged } of cases) {
    it(name, () => assert.deepEqual(mergeFills(lists), merged));
  }

  it("leaves the lists it merges as they were", () => {
    const lists = [[fill("files/big", 300, 40, 3)], [fill("files/big", 500, 0, 2)]];
    const before = structuredClone(lists);
    mergeFills(lists);
    assert.deepEqual(lists, before);
  });
});

describe("fillsFromWire", () => {
  it("gives back what crossed the link as JSON: dates as dates, an unknown size as undefined", () => {
    const fills = [fill("files/a", 10, 0, 1), fill("files/b", 5, 1, 2, null)];
    const wire = JSON.parse(JSON.stringify(fills)) as unknown;
    assert.deepEqual(fillsFromWire(wire), fills);
    assert.deepEqual(fillsFromWire([{ ...fill("files/b", 5, 1, 2, null), total: null, percent: null, startedAt: new Date(T0 + 1).toISOString() }]), [fills[1]]);
  });
});

describe("the downloads in progress over the workers' link", () => {
  it("either worker lists every worker's downloads, one entry per download", async () => {
    const vault = cluster();
    const one = new WorkerFills(vault.worker(1)).source(() => [fill("files/a", 10, 0, 1), fill("files/big", 900, 5, 2)]);
    const two = new WorkerFills(vault.worker(2)).source(() => [fill("files/big", 600, 9, 3), fill("files/b", 20, 7, 1)]);
    const expected = [fill("files/a", 10, 0, 1), fill("files/big", 900, 5, 5), fill("files/b", 20, 7, 1)];
    const [fromOne, fromTwo] = await Promise.all([one(), two()]);
    assert.deepEqual(sortByKey(fromOne), sortByKey(expected));
    assert.deepEqual(sortByKey(fromTwo), sortByKey(expected));
    assert.ok(fromOne.every((entry) => entry.startedAt instanceof Date));
  });

  it("a worker still starting has none", async () => {
    const vault = cluster();
    const one = new WorkerFills(vault.worker(1)).source(() => [fill("files/a", 10, 0, 1)]);
    new WorkerFills(vault.worker(2)); // no cache yet
    assert.deepEqual(await one(), [fill("files/a", 10, 0, 1)]);
  });

  it("a worker that exits while asked counts as answered", async () => {
    const vault = cluster();
    const one = new WorkerFills(vault.worker(1)).source(() => [fill("files/a", 10, 0, 1)]);
    const leaving = vault.worker(2);
    new WorkerFills(leaving).source(() => [fill("files/gone", 10, 0, 1)]);
    leaving.intercept = (name) => {
      assert.equal(name, FILLS_REQUEST_EVENT);
      vault.kill(2);
    };
    assert.deepEqual(await one(), [fill("files/a", 10, 0, 1)]);
  });

  it("a worker that does not answer in time, or fails to, makes the list unavailable (503)", async () => {
    const vault = cluster();
    const one = new WorkerFills(vault.worker(1)).source(() => [fill("files/a", 10, 0, 1)]);
    const slow = vault.worker(2);
    new WorkerFills(slow).source(() => []);
    slow.intercept = () => undefined;
    await assert.rejects(one(), (error: unknown) => isVaultError(error) && error.kind === "unavailable" && /worker 2 did not answer/.test(error.message));
    slow.intercept = undefined;
    new WorkerFills(slow).source(() => {
      throw new Error("the cache is closed");
    });
    await assert.rejects(one(), (error: unknown) => isVaultError(error) && error.kind === "unavailable" && /the cache is closed/.test(error.message));
  });
});

function sortByKey(fills: readonly FillProgress[]): FillProgress[] {
  return [...fills].sort((a, b) => (a.key < b.key ? -1 : 1));
}
