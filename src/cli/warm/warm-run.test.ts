import { test } from "node:test";
import assert from "node:assert/strict";
import { CliError } from "../cli-errors.js";
import { ItemFailure, type VaultDocument } from "./vault-requests.js";
import { runWarm, type WarmListener, type WarmRequests, type WarmSource } from "./warm-run.js";

/** Requests answered from a table by URL: a document's text (or `cached` / `fetched` for an artifact), or an error to throw. */
function requests(answers: Record<string, Error | string>): WarmRequests & { asked: string[] } {
  const asked: string[] = [];
  const answer = (url: URL): string => {
    asked.push(url.pathname);
    const value = answers[url.pathname];
    if (value === undefined) throw new ItemFailure("not found upstream (404)", { notFound: true });
    if (value instanceof Error) throw value;
    return value;
  };
  return {
    asked,
    warm: async (url) => {
      const served = answer(url);
      return { served: served === "cached" ? "cached" : "fetched", bytes: 10 };
    },
    document: async (url): Promise<VaultDocument> => ({ url, body: Buffer.from(answer(url)), contentType: "text/plain", served: "fetched" }),
  };
}

function listener(): WarmListener & { planned: () => void; count: () => number } {
  let planned = 0;
  return { planned: () => void planned++, bytes: () => undefined, done: () => undefined, failed: () => undefined, count: () => planned };
}

const at = (path: string): URL => new URL(path, "http://vault.test/");

test("each URL is one item however often it is named; documents name more items; optional 404s are no item", async () => {
  const vault = requests({ "/index": "/a\n/b", "/a": "fetched", "/b": "cached" });
  const source: WarmSource = {
    run: async (context) => {
      assert.equal(await context.document(at("/missing-first"), "first choice", { optional: true }), undefined);
      const [one, two] = await Promise.all([context.document(at("/index"), "index"), context.document(at("/index"), "index again")]);
      assert.equal(one, two);
      for (const path of (one?.body.toString() ?? "").split("\n")) context.artifact(at(path), path);
      context.artifact(at("/a"), "a again");
      context.artifact(at("/gone"), "gone");
      context.skipped("git dependency", "not from a registry");
    },
  };
  const events = listener();
  const summary = await runWarm([source, source], vault, events, new AbortController());
  assert.deepEqual(vault.asked.sort(), ["/a", "/b", "/gone", "/index", "/missing-first"]);
  assert.deepEqual(summary.fetched.map((item) => item.label).sort(), ["/a", "index"]);
  assert.deepEqual(summary.cached.map((item) => item.label), ["/b"]);
  assert.deepEqual(summary.failures, [{ label: "gone", reason: "not found upstream (404)" }]);
  assert.equal(summary.skipped.length, 2, "each source's own skipped inputs");
  assert.equal(events.count(), 4, "index, a, b, gone");
  assert.equal(summary.interrupted, false);
});

test("a refused token ends the run: the error is thrown and nothing more is asked", async () => {
  const refused = new CliError("the vault refused the request (401)");
  const vault = requests({ "/first": refused, "/second": "fetched" });
  const controller = new AbortController();
  const source: WarmSource = {
    run: async (context) => {
      context.artifact(at("/first"), "first");
      await new Promise((resolve) => setImmediate(resolve));
      context.artifact(at("/second"), "second");
    },
  };
  await assert.rejects(runWarm([source], vault, listener(), controller), refused);
  assert.deepEqual(vault.asked, ["/first"]);
  assert.equal(controller.signal.aborted, true);
});
