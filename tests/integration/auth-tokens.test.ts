import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { writeFile } from "node:fs/promises";
import { rawRequest } from "../support/http.js";
import { startTestVault, tokenRecords, type TestVault } from "../support/test-vault.js";
import { writeTokensFile } from "../../src/auth/tokens-file.js";

/** Polls until `check` holds: the server notices file changes asynchronously (watch or recheck). */
async function eventually(check: () => Promise<boolean>, timeoutMs = 8000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  assert.fail("condition not reached in time");
}

describe("tokens file", () => {
  let vault: TestVault;
  before(async () => {
    vault = await startTestVault({ storage: "memory", tokens: [{ name: "first", scopes: ["read"] }] });
  });
  after(async () => vault.close());

  const status = async (authorization: string) => (await rawRequest(vault.url, "/objects", { headers: { authorization } })).status;

  test("a token added to the file works without a restart, and a removed one stops working", async () => {
    const { records, tokens } = await tokenRecords([{ name: "second", scopes: ["read"] }]);
    assert.equal(await status(`Bearer ${tokens["second"]}`), 401);
    await writeTokensFile(vault.tokensFile, records);
    await eventually(async () => (await status(`Bearer ${tokens["second"]}`)) === 200);
    await eventually(async () => (await status(vault.auth("first").authorization)) === 401);
  });

  test("a malformed file keeps the last good tokens in force and lets nobody new in", async () => {
    const { records, tokens } = await tokenRecords([{ name: "good", scopes: ["read"] }]);
    await writeTokensFile(vault.tokensFile, records);
    await eventually(async () => (await status(`Bearer ${tokens["good"]}`)) === 200);
    await writeFile(vault.tokensFile, '[{"name": "broken", "hash": "zz"');
    // Give the server time to see the broken file, then check the old token still works.
    await new Promise((resolve) => setTimeout(resolve, 2500));
    assert.equal(await status(`Bearer ${tokens["good"]}`), 200);
    assert.equal(await status("Bearer zz"), 401);
    const health = await rawRequest(vault.url, "/health");
    assert.equal(health.status, 200);
  });

  test("HTTP basic auth with the token as the password is accepted", async () => {
    const { records, tokens } = await tokenRecords([{ name: "basic", scopes: ["read"] }]);
    await writeTokensFile(vault.tokensFile, records);
    const basic = `Basic ${Buffer.from(`__token__:${tokens["basic"]}`).toString("base64")}`;
    await eventually(async () => (await status(basic)) === 200);
    assert.equal(await status(`Basic ${Buffer.from("__token__:wrong").toString("base64")}`), 401);
  });
});

describe("rate limiting", () => {
  test("past the per-token limit the API answers 429 with an integer Retry-After", async () => {
    const vault = await startTestVault({ storage: "memory", extraYaml: "rate_limit: {per_token_per_minute: 5}" });
    try {
      const statuses: number[] = [];
      let limited;
      for (let i = 0; i < 7; i++) {
        const response = await rawRequest(vault.url, "/objects", { headers: vault.auth("all") });
        statuses.push(response.status);
        if (response.status === 429) limited = response;
      }
      assert.deepEqual(statuses, [200, 200, 200, 200, 200, 429, 429]);
      assert.ok(limited);
      assert.match(limited.header("retry-after") ?? "", /^\d+$/);
      assert.ok(Number(limited.header("retry-after")) >= 1 && Number(limited.header("retry-after")) <= 60);
      assert.equal(limited.json<{ error: { code: string } }>().error.code, "429");
      // Health is never limited.
      assert.equal((await rawRequest(vault.url, "/health")).status, 200);
    } finally {
      await vault.close();
    }
  });

  test("limits are per token", async () => {
    const vault = await startTestVault({
      storage: "memory",
      tokens: [
        { name: "a", scopes: ["read"] },
        { name: "b", scopes: ["read"] },
      ],
      extraYaml: "rate_limit: {per_token_per_minute: 2}",
    });
    try {
      for (let i = 0; i < 3; i++) await rawRequest(vault.url, "/objects", { headers: vault.auth("a") });
      assert.equal((await rawRequest(vault.url, "/objects", { headers: vault.auth("a") })).status, 429);
      assert.equal((await rawRequest(vault.url, "/objects", { headers: vault.auth("b") })).status, 200);
    } finally {
      await vault.close();
    }
  });

  test("switched off, it never answers 429", async () => {
    const vault = await startTestVault({ storage: "memory", extraYaml: "rate_limit: {enabled: false, per_token_per_minute: 1}" });
    try {
      for (let i = 0; i < 10; i++) {
        assert.equal((await rawRequest(vault.url, "/objects", { headers: vault.auth("all") })).status, 200);
      }
    } finally {
      await vault.close();
    }
  });
});
