import { test } from "node:test";
import assert from "node:assert/strict";
import { z } from "zod";
import { bearerHeaders, checkUpstreamCredentials, upstreamCredentialFields } from "./upstream-credentials.js";

const schema = z.strictObject({ ...upstreamCredentialFields }).superRefine(checkUpstreamCredentials);

test("one way of authenticating at a time, the offending key named", () => {
  assert.equal(schema.safeParse({ token: "t" }).success, true);
  assert.equal(schema.safeParse({ username: "u", password: "p" }).success, true);
  const both = schema.safeParse({ token: "t", token_env: "T" });
  assert.deepEqual(both.error?.issues.map((issue) => issue.path), [["token_env"]]);
  const mixed = schema.safeParse({ token_env: "T", username: "u" });
  assert.deepEqual(mixed.error?.issues.map((issue) => issue.path), [["username"]]);
});

test("the token, or the one token_env names, becomes a Bearer header; an unset variable stops the start", () => {
  assert.deepEqual(bearerHeaders({}, "backends[0]"), {});
  assert.deepEqual(bearerHeaders({ token: "abc" }, "backends[0]"), { authorization: "Bearer abc" });
  assert.deepEqual(bearerHeaders({ token_env: "MY_TOKEN" }, "backends[0]", { MY_TOKEN: "xyz" }), { authorization: "Bearer xyz" });
  assert.throws(() => bearerHeaders({ token_env: "MY_TOKEN" }, "backends[2]", {}), /backends\[2\]\.config\.token_env: environment variable MY_TOKEN is not set/);
});
