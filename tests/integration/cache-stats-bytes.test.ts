/**
 * `bytes_from_cache` counts the body bytes of every hit, however it was answered: streamed from
 * the store, sent from memory by the framework's path (small objects the store holds; every
 * small hit under `auth.proxy: token`), by the held-hit lane before the framework, or from a
 * download already verified and being stored. A HEAD or a 304 sends no body and counts none; a
 * range counts its bytes.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { rawRequest } from "../support/http.js";
import { OriginServer } from "../support/origin-server.js";
import { waitFor } from "../support/process.js";
import { startTestVault, type TestVault } from "../support/test-vault.js";

interface Stats {
  readonly hits: number;
  readonly misses: number;
  readonly bytes_from_cache: number;
  readonly bytes_from_upstream: number;
  readonly fills_in_progress: number;
}

for (const proxy of ["anonymous", "token"] as const) {
  describe(`bytes from the cache, auth.proxy: ${proxy}`, () => {
    let origin: OriginServer;
    let vault: TestVault;
    const small = randomBytes(2000);
    const large = randomBytes(200_000);

    before(async () => {
      origin = await new OriginServer().start();
      origin.files.set("/dist/small.bin", { body: small });
      origin.files.set("/dist/large.bin", { body: large });
      vault = await startTestVault({
        proxyAuth: proxy,
        extraYaml: `backends:\n  - {type: http, name: files, config: {prefix: /files/, base_url: "${origin.url}/dist", timeout: 5}}`,
      });
    });
    after(async () => {
      await vault.close();
      await origin.stop();
    });

    const get = (path: string, headers: Record<string, string> = {}, method = "GET") =>
      rawRequest(vault.url, path, { method, headers: { ...(proxy === "token" ? vault.auth("all") : {}), ...headers } });
    const stats = async (): Promise<Stats> => (await rawRequest(vault.url, "/admin/cache/stats", { headers: vault.auth("all") })).json<Stats>();

    /** The stats once no download is in progress: what came from upstream is counted when a download settles. */
    const settled = () =>
      waitFor("the downloads to settle", async () => {
        const current = await stats();
        return current.fills_in_progress === 0 ? current : undefined;
      });

    test("every hit's body counts, small ones from memory included; HEADs and 304s count none", async () => {
      const before = await stats();
      assert.equal((await get("/files/small.bin")).header("x-cache"), "MISS");
      await settled();
      // Small objects come whole from the store's memory: sent by the framework's path from
      // `contents` (under auth.proxy: token, every time), or by the held-hit lane.
      for (let i = 0; i < 4; i++) {
        const hit = await get("/files/small.bin");
        assert.equal(hit.header("x-cache"), "HIT");
        assert.ok(hit.body.equals(small));
      }
      const head = await get("/files/small.bin", {}, "HEAD");
      assert.equal(head.body.length, 0);
      const notModified = await get("/files/small.bin", { "if-none-match": String(head.header("etag")) });
      assert.equal(notModified.status, 304);
      const range = await get("/files/small.bin", { range: "bytes=0-99" });
      assert.equal(range.status, 206);
      assert.equal((await get("/files/large.bin")).header("x-cache"), "MISS");
      assert.equal((await get("/files/large.bin")).header("x-cache"), "HIT");

      const after = await settled();
      assert.equal(after.bytes_from_cache - before.bytes_from_cache, 4 * small.length + 100 + large.length);
      assert.equal(after.bytes_from_upstream - before.bytes_from_upstream, small.length + large.length);
      assert.equal(after.misses - before.misses, 2);
    });
  });
}
