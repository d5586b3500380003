/**
 * The object API over a filesystem store that is full or has been tampered with: a full disk
 * answers 507 (which the client does not retry) and keeps the old version; a symbolic link
 * planted in the store is never followed (reads answer 404, writes 500, nothing outside the
 * root is touched).
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { RestStore, VaultHttpError } from "../../src/client/index.js";
import type { RetryEvent } from "../../src/client/retry.js";
import { simulateDiskFull } from "../support/disk-full.js";
import { rawRequest, type RawResponse } from "../support/http.js";
import { startTestVault, type TestVault } from "../support/test-vault.js";

function assertEnvelope(response: RawResponse, status: number): string {
  assert.equal(response.status, status, response.body.toString());
  const body = response.json<{ error: { code: string; message: string } }>();
  assert.equal(body.error.code, String(status));
  return body.error.message;
}

describe("object API over a faulty filesystem store", () => {
  let vault: TestVault;
  let dataDir: string;
  let scratch: string;
  let all: { authorization: string };
  before(async () => {
    scratch = await mkdtemp(path.join(tmpdir(), "av-store-faults-"));
    dataDir = path.join(scratch, "data");
    vault = await startTestVault({
      storage: "filesystem",
      dataDir,
      tokens: [{ name: "all", scopes: ["read", "write", "delete"] }],
      extraYaml: "rate_limit: {enabled: false}",
    });
    all = vault.auth("all");
  });
  after(async () => {
    await vault.close();
    await rm(scratch, { recursive: true, force: true });
  });

  test("a full disk answers 507 in the envelope, keeps the old version, and the client does not retry it", async () => {
    const old = randomBytes(50_000);
    assert.equal((await rawRequest(vault.url, "/objects/full/kept", { method: "PUT", headers: all, body: old })).status, 200);
    const retries: RetryEvent[] = [];
    const client = RestStore.create({
      baseUrl: vault.url,
      apiKey: vault.tokens["all"]!,
      maxRetries: 3,
      onRetry: (event) => retries.push(event),
      clock: { now: () => Date.now(), sleep: async () => undefined, random: () => 0.5 },
    });
    const disk = await simulateDiskFull({ afterBytes: 64 * 1024 });
    try {
      const refused = await rawRequest(vault.url, "/objects/full/kept", { method: "PUT", headers: { ...all, "x-request-id": "disk-full-1" }, body: randomBytes(200_000) });
      assert.match(assertEnvelope(refused, 507), /out of space/);
      // The operator's business: at warn (shown at the default level), with the request id.
      const logged = vault.logs().find((line) => line.reqId === "disk-full-1" && line.msg === "request failed");
      assert.deepEqual([logged?.level, logged?.["kind"]], [40, "insufficient_storage"]);
      assertEnvelope(await rawRequest(vault.url, "/objects/full/new", { method: "PUT", headers: all, body: randomBytes(200_000) }), 507);

      await assert.rejects(client.put("full/kept", randomBytes(200_000)), (error: unknown) => {
        assert.ok(error instanceof VaultHttpError, String(error));
        assert.equal(error.status, 507);
        assert.equal(error.attempts, 1);
        return true;
      });
      assert.deepEqual(retries, [], "507 must not be retried");
    } finally {
      disk.restore();
      await client.close();
    }
    const fetched = await rawRequest(vault.url, "/objects/full/kept", { headers: all });
    assert.equal(fetched.status, 200);
    assert.ok(fetched.body.equals(old));
    assertEnvelope(await rawRequest(vault.url, "/objects/full/new", { headers: all }), 404);
  });

  test("a directory link planted in the store is not followed: GET 404, PUT 500, nothing outside touched", async () => {
    const outside = path.join(scratch, "elsewhere");
    await mkdir(outside);
    await writeFile(path.join(outside, "secret~"), "not an object of this store");
    await mkdir(path.join(dataDir, "objects"), { recursive: true });
    await symlink(outside, path.join(dataDir, "objects", "evil"), "dir");

    const written = await rawRequest(vault.url, "/objects/evil/x", { method: "PUT", headers: all, body: "must not land outside" });
    assertEnvelope(written, 500);
    assert.equal(existsSync(path.join(outside, "x~")), false);
    assertEnvelope(await rawRequest(vault.url, "/objects/evil/secret", { headers: all }), 404);
    assert.equal((await rawRequest(vault.url, "/objects/evil/secret", { method: "HEAD", headers: all })).status, 404);
    assertEnvelope(await rawRequest(vault.url, "/objects/evil/secret", { method: "DELETE", headers: all }), 404);
    assert.ok(existsSync(path.join(outside, "secret~")));
    // The rest of the store works as before.
    assert.equal((await rawRequest(vault.url, "/objects/fine/x", { method: "PUT", headers: all, body: "ok" })).status, 200);
    assert.equal((await rawRequest(vault.url, "/objects/fine/x", { headers: all })).body.toString(), "ok");
  });
});
