import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { encodeKeyPath, encodeKeyWhole, rawRequest, type RawResponse } from "../support/http.js";
import { startTestVault, type TestVault } from "../support/test-vault.js";

function assertEnvelope(response: RawResponse, status: number): string {
  assert.equal(response.status, status, response.body.toString());
  assert.match(response.header("content-type") ?? "", /^application\/json/);
  const body = response.json<{ error: { code: string; message: string } }>();
  assert.equal(body.error.code, String(status));
  assert.equal(typeof body.error.message, "string");
  assert.ok(body.error.message.length > 0);
  return body.error.message;
}

for (const storage of ["filesystem", "memory", "s3"] as const) {
  describe(`object API over ${storage} storage`, () => {
    let vault: TestVault;
    let all: { authorization: string };
    before(async () => {
      vault = await startTestVault({
        storage,
        tokens: [
          { name: "all", scopes: ["read", "write", "delete"] },
          { name: "reader", scopes: ["read"] },
          { name: "writer", scopes: ["write"] },
          { name: "expired", scopes: ["read", "write", "delete"], expiresInMs: -1000 },
        ],
        extraYaml: "max_object_size: 1MiB\nrate_limit: {enabled: false}",
      });
      all = vault.auth("all");
    });
    after(async () => vault.close());

    const put = (key: string, body: Buffer | string, headers: Record<string, string | number> = {}) =>
      rawRequest(vault.url, `/objects/${encodeKeyPath(key)}`, { method: "PUT", headers: { ...all, ...headers }, body });
    const get = (key: string, headers: Record<string, string> = {}) =>
      rawRequest(vault.url, `/objects/${encodeKeyPath(key)}`, { headers: { ...all, ...headers } });

    test("PUT returns key, size and an ISO 8601 created_at; GET returns the bytes with headers", async () => {
      const created = await put("docs/readme.txt", "hello world", { "content-type": "text/plain; charset=utf-8" });
      assert.equal(created.status, 200);
      const body = created.json<{ key: string; size: number; created_at: string }>();
      assert.equal(body.key, "docs/readme.txt");
      assert.equal(body.size, 11);
      assert.ok(!Number.isNaN(Date.parse(body.created_at)) && /^\d{4}-\d\d-\d\dT/.test(body.created_at));

      const fetched = await get("docs/readme.txt");
      assert.equal(fetched.status, 200);
      assert.equal(fetched.body.toString(), "hello world");
      assert.equal(fetched.header("content-type"), "text/plain; charset=utf-8");
      assert.equal(fetched.header("content-length"), "11");
      assert.equal(fetched.header("etag"), `"${createHash("sha256").update("hello world").digest("hex")}"`);
      assert.ok(!Number.isNaN(Date.parse(fetched.header("last-modified") ?? "")));
      assert.equal(fetched.header("accept-ranges"), "bytes");
    });

    test("an overwrite's PUT answers the time of this write as created_at, as the source design and S3 do", async () => {
      const first = (await put("times/overwritten", "v1")).json<{ created_at: string }>();
      // Let the clock move past the first write (no sleep: wait for the millisecond to change).
      while (Date.now() <= Date.parse(first.created_at)) await new Promise((resolve) => setImmediate(resolve));
      const before = Date.now();
      const second = (await put("times/overwritten", "v2")).json<{ created_at: string }>();
      const after = Date.now();
      const answered = Date.parse(second.created_at);
      assert.ok(answered >= before && answered <= after, `created_at ${second.created_at} is not the time of the second write`);
      const fetched = await get("times/overwritten");
      assert.equal(fetched.header("last-modified"), new Date(answered).toUTCString());
    });

    test("the source design's special-character key round-trips, encoded per segment or whole", async () => {
      const key = "test_special/characters !@#$%^&*()_+";
      assert.equal((await put(key, "special")).status, 200);
      const perSegment = await rawRequest(vault.url, `/objects/${encodeKeyPath(key)}`, { headers: all });
      assert.equal(perSegment.body.toString(), "special");
      const whole = await rawRequest(vault.url, `/objects/${encodeKeyWhole(key)}`, { headers: all });
      assert.equal(whole.body.toString(), "special");
      const listed = await rawRequest(vault.url, `/objects?prefix=${encodeURIComponent("test_special/")}`, { headers: all });
      assert.deepEqual(listed.json<{ keys: string[] }>().keys, [key]);
    });

    test("binary bodies with every byte value and an empty object round-trip", async () => {
      const bytes = Buffer.alloc(256 * 4);
      for (let i = 0; i < bytes.length; i++) bytes[i] = i % 256;
      assert.equal((await put("bin/all-bytes", bytes)).status, 200);
      const fetched = await get("bin/all-bytes");
      assert.deepEqual(fetched.body, bytes);
      assert.equal(fetched.header("content-type"), "application/octet-stream");

      const empty = await put("bin/empty", Buffer.alloc(0));
      assert.equal(empty.json<{ size: number }>().size, 0);
      const fetchedEmpty = await get("bin/empty");
      assert.equal(fetchedEmpty.status, 200);
      assert.equal(fetchedEmpty.header("content-length"), "0");
      assert.equal(fetchedEmpty.body.length, 0);
    });

    test("HEAD answers the GET headers without a body, and 404 for a missing key", async () => {
      await put("head/me", "0123456789");
      const head = await rawRequest(vault.url, "/objects/head/me", { method: "HEAD", headers: all });
      assert.equal(head.status, 200);
      assert.equal(head.header("content-length"), "10");
      assert.ok(head.header("etag"));
      assert.equal(head.body.length, 0);
      const missing = await rawRequest(vault.url, "/objects/head/missing", { method: "HEAD", headers: all });
      assert.equal(missing.status, 404);
    });

    test("Range gives 206 with Content-Range, 416 when unsatisfiable; If-None-Match gives 304", async () => {
      await put("range/digits", "0123456789");
      const partial = await get("range/digits", { range: "bytes=2-5" });
      assert.equal(partial.status, 206);
      assert.equal(partial.body.toString(), "2345");
      assert.equal(partial.header("content-range"), "bytes 2-5/10");
      assert.equal(partial.header("content-length"), "4");
      const suffix = await get("range/digits", { range: "bytes=-3" });
      assert.equal(suffix.body.toString(), "789");
      const open = await get("range/digits", { range: "bytes=7-" });
      assert.equal(open.body.toString(), "789");
      const beyond = await get("range/digits", { range: "bytes=10-20" });
      assertEnvelope(beyond, 416);
      assert.equal(beyond.header("content-range"), "bytes */10");

      const etag = (await get("range/digits")).header("etag") ?? "";
      const notModified = await get("range/digits", { "if-none-match": etag });
      assert.equal(notModified.status, 304);
      assert.equal(notModified.body.length, 0);
      assert.equal(notModified.header("etag"), etag);
      const changedIfRange = await get("range/digits", { range: "bytes=0-0", "if-range": '"stale"' });
      assert.equal(changedIfRange.status, 200);
      assert.equal(changedIfRange.body.toString(), "0123456789");
    });

    test("If-None-Match: * is create-only and If-Match guards overwrites (412 otherwise)", async () => {
      assert.equal((await put("cond/once", "first", { "if-none-match": "*" })).status, 200);
      assertEnvelope(await put("cond/once", "second", { "if-none-match": "*" }), 412);
      assert.equal((await get("cond/once")).body.toString(), "first");

      const etag = (await get("cond/once")).header("etag") ?? "";
      assertEnvelope(await put("cond/once", "third", { "if-match": '"not-the-etag"' }), 412);
      assert.equal((await put("cond/once", "third", { "if-match": etag })).status, 200);
      assert.equal((await get("cond/once")).body.toString(), "third");
      assertEnvelope(await put("cond/absent", "x", { "if-match": "*" }), 412);
      assert.equal((await get("cond/absent")).status, 404);
    });

    test("checksum headers are verified; a mismatch is 400 and stores nothing", async () => {
      const body = "checked body";
      const sha = createHash("sha256").update(body).digest("hex");
      const md5 = createHash("md5").update(body).digest("base64");
      assert.equal((await put("sum/ok", body, { "x-checksum-sha256": sha, "content-md5": md5 })).status, 200);
      assertEnvelope(await put("sum/bad-sha", body, { "x-checksum-sha256": "0".repeat(64) }), 400);
      assertEnvelope(await put("sum/bad-md5", body, { "content-md5": createHash("md5").update("other").digest("base64") }), 400);
      assert.equal((await get("sum/bad-sha")).status, 404);
      assert.equal((await get("sum/bad-md5")).status, 404);
      await put("sum/keep", "original");
      assertEnvelope(await put("sum/keep", body, { "x-checksum-sha256": "1".repeat(64) }), 400);
      assert.equal((await get("sum/keep")).body.toString(), "original");
    });

    test("a body over the max object size is 413 and changes nothing (declared or chunked)", async () => {
      await put("big/keep", "small");
      const declared = await put("big/keep", Buffer.alloc(1024 * 1024 + 1));
      assertEnvelope(declared, 413);
      async function* chunked() {
        for (let i = 0; i < 20; i++) yield Buffer.alloc(128 * 1024, 1);
      }
      const streamed = await rawRequest(vault.url, "/objects/big/keep", { method: "PUT", headers: all, body: chunked() });
      assertEnvelope(streamed, 413);
      assert.equal((await get("big/keep")).body.toString(), "small");
      const exact = await put("big/exact", Buffer.alloc(1024 * 1024, 7));
      assert.equal(exact.status, 200);
    });

    test("DELETE answers 204, then 404", async () => {
      await put("del/me", "x");
      const deleted = await rawRequest(vault.url, "/objects/del/me", { method: "DELETE", headers: all });
      assert.equal(deleted.status, 204);
      assert.equal(deleted.body.length, 0);
      assertEnvelope(await rawRequest(vault.url, "/objects/del/me", { method: "DELETE", headers: all }), 404);
      assertEnvelope(await get("del/me"), 404);
    });

    test("listing pages in UTF-8 byte order with prefix, limit and cursor", async () => {
      // U+FFFF sorts before U+1F600 in UTF-8 (code point) order, after it in UTF-16 order.
      const keys = ["order/a", "order/b", "order/\uFFFF", "order/😀", "order/Z", "order/a/b", "order/a-b"];
      for (const key of keys) await put(key, key);
      const expected = [...keys].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
      const seen: string[] = [];
      let cursor: string | null = null;
      let pages = 0;
      do {
        const query: string = `prefix=order%2F&limit=2${cursor === null ? "" : `&cursor=${encodeURIComponent(cursor)}`}`;
        const page = await rawRequest(vault.url, `/objects?${query}`, { headers: all });
        assert.equal(page.status, 200);
        const body = page.json<{ keys: string[]; next_cursor: string | null; has_more: boolean }>();
        assert.ok(body.keys.length <= 2);
        assert.equal(body.has_more, body.next_cursor !== null);
        seen.push(...body.keys);
        cursor = body.next_cursor;
        pages++;
      } while (cursor !== null);
      assert.deepEqual(seen, expected);
      assert.equal(pages, Math.ceil(keys.length / 2));
      const first = await rawRequest(vault.url, "/objects?prefix=order%2F", { headers: all });
      assert.deepEqual(first.json<{ keys: string[] }>().keys, expected);
    });

    test("pagination stays correct while keys are deleted, and a deleted cursor key still works", async () => {
      const keys = Array.from({ length: 30 }, (_, i) => `pages/${String(i).padStart(3, "0")}`);
      for (const key of keys) await put(key, "v");
      const seen: string[] = [];
      const deleted = new Set<string>();
      let cursor: string | null = null;
      do {
        const suffix: string = cursor === null ? "" : `&cursor=${encodeURIComponent(cursor)}`;
        const page = await rawRequest(vault.url, `/objects?prefix=pages%2F&limit=7${suffix}`, { headers: all });
        const body = page.json<{ keys: string[]; next_cursor: string | null }>();
        seen.push(...body.keys);
        // Delete the cursor's own key and one not yet listed, as a concurrent client might.
        const last = body.keys.at(-1);
        const ahead = keys[keys.indexOf(last ?? "") + 2];
        for (const key of [last, ahead]) {
          if (key !== undefined && !deleted.has(key)) {
            deleted.add(key);
            await rawRequest(vault.url, `/objects/${encodeKeyPath(key)}`, { method: "DELETE", headers: all });
          }
        }
        cursor = body.next_cursor;
      } while (cursor !== null);
      // Every key that existed throughout was listed exactly once, in order, with no repeats.
      assert.deepEqual(seen, [...seen].sort());
      assert.equal(new Set(seen).size, seen.length);
      for (const key of keys) {
        if (!deleted.has(key)) assert.ok(seen.includes(key), `${key} missing from listing`);
      }
    });

    test("bad input gets the right status in the envelope and changes nothing", async () => {
      const longKey = "k".repeat(1025);
      assertEnvelope(await put(longKey, "x"), 400);
      assertEnvelope(await rawRequest(vault.url, "/objects/a%00b", { method: "PUT", headers: all, body: "x" }), 400);
      assertEnvelope(await rawRequest(vault.url, "/objects/bad%ZZ", { method: "PUT", headers: all, body: "x" }), 400);
      assertEnvelope(await rawRequest(vault.url, "/objects/bad%ED%A0%80", { method: "PUT", headers: all, body: "x" }), 400);
      assertEnvelope(await rawRequest(vault.url, "/objects?cursor=!!notbase64", { headers: all }), 400);
      assertEnvelope(await rawRequest(vault.url, `/objects?cursor=${Buffer.from("[]").toString("base64")}`, { headers: all }), 400);
      for (const limit of ["-1", "0", "1001", "99999999999999999999", "ten", "1.5"]) {
        assertEnvelope(await rawRequest(vault.url, `/objects?limit=${limit}`, { headers: all }), 400);
      }
      const wrongMethod = await rawRequest(vault.url, "/objects/some/key", { method: "POST", headers: all, body: "x" });
      assertEnvelope(wrongMethod, 405);
      assert.match(wrongMethod.header("allow") ?? "", /PUT/);
      assertEnvelope(await rawRequest(vault.url, "/objects", { method: "DELETE", headers: all }), 405);
      assertEnvelope(await rawRequest(vault.url, "/no/such/route", { headers: all }), 404);
      const list = await rawRequest(vault.url, "/objects?prefix=", { headers: all });
      for (const key of list.json<{ keys: string[] }>().keys) {
        assert.ok(!key.startsWith("k".repeat(100)) && !key.includes("bad"), `unexpected key stored: ${key}`);
      }
    });

    test("GET /objects/ (an empty key) is 400 like HEAD, PUT and DELETE on it; GET /objects?prefix= lists", async () => {
      await put("empty-key/listed", "x");
      for (const path of ["/objects/", "/objects/?prefix=empty-key%2F", "/objects/?limit=5"]) {
        const response = await rawRequest(vault.url, path, { headers: all });
        assert.match(assertEnvelope(response, 400), /key/, path);
      }
      assert.equal((await rawRequest(vault.url, "/objects/", { method: "HEAD", headers: all })).status, 400);
      assertEnvelope(await rawRequest(vault.url, "/objects/", { method: "PUT", headers: all, body: "x" }), 400);
      assertEnvelope(await rawRequest(vault.url, "/objects/", { method: "DELETE", headers: all }), 400);
      for (const path of ["/objects?prefix=empty-key%2F", "/objects?prefix=empty-key/&limit=5"]) {
        const listed = await rawRequest(vault.url, path, { headers: all });
        assert.equal(listed.status, 200, path);
        assert.deepEqual(listed.json<{ keys: string[] }>().keys, ["empty-key/listed"], path);
      }
    });

    test("keys that look like paths stay inside the store", async () => {
      for (const raw of ["..", "../escape", "a/../../escape", "%2e%2e/escape", "..%5Cescape", "%2Fabs", "\\abs", "./dot"]) {
        const path = `/objects/${raw}`;
        const written = await rawRequest(vault.url, path, { method: "PUT", headers: all, body: `body of ${raw}` });
        assert.equal(written.status, 200, `${raw}: ${written.body.toString()}`);
        const read = await rawRequest(vault.url, path, { headers: all });
        assert.equal(read.body.toString(), `body of ${raw}`);
        assert.equal(written.json<{ key: string }>().key, decodeURIComponent(raw));
      }
    });

    test("missing, malformed, unknown and expired credentials are 401 with WWW-Authenticate", async () => {
      const cases: Array<Record<string, string>> = [
        {},
        { authorization: "Bearer" },
        { authorization: "Bearer not-a-token" },
        { authorization: "Token abc" },
        { authorization: vault.auth("expired").authorization },
      ];
      for (const headers of cases) {
        const response = await rawRequest(vault.url, "/objects/x", { headers });
        assertEnvelope(response, 401);
        assert.match(response.header("www-authenticate") ?? "", /^Bearer/);
      }
      const put401 = await rawRequest(vault.url, "/objects/unauth", { method: "PUT", body: "x" });
      assertEnvelope(put401, 401);
      assertEnvelope(await get("unauth"), 404);
    });

    test("scopes are enforced with 403 naming the scope", async () => {
      await put("scoped/obj", "data");
      const reader = vault.auth("reader");
      const writer = vault.auth("writer");
      assert.equal((await rawRequest(vault.url, "/objects/scoped/obj", { headers: reader })).status, 200);
      assert.match(assertEnvelope(await rawRequest(vault.url, "/objects/scoped/obj", { method: "PUT", headers: reader, body: "x" }), 403), /write/);
      assert.match(assertEnvelope(await rawRequest(vault.url, "/objects/scoped/obj", { method: "DELETE", headers: reader }), 403), /delete/);
      assert.match(assertEnvelope(await rawRequest(vault.url, "/objects/scoped/obj", { headers: writer }), 403), /read/);
      assert.match(assertEnvelope(await rawRequest(vault.url, "/objects", { headers: writer }), 403), /read/);
      assert.equal((await rawRequest(vault.url, "/objects/scoped/obj", { method: "PUT", headers: writer, body: "new" })).status, 200);
      assert.equal((await get("scoped/obj")).body.toString(), "new");
    });

    test("GET /health needs no token", async () => {
      const health = await rawRequest(vault.url, "/health");
      assert.equal(health.status, 200);
      const body = health.json<{ status: string; service: string; version: string }>();
      assert.equal(body.status, "healthy");
      assert.equal(body.service, "artifact-vault");
      assert.match(body.version, /^\d+\.\d+\.\d+/);
      assert.ok(health.header("x-request-id"));
    });
  });
}
