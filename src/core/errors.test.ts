import { test } from "node:test";
import assert from "node:assert/strict";
import { VaultError } from "./errors.js";

test("an answer (not_found, rate_limited...) carries no stack frames; an internal error keeps them", () => {
  const limit = Error.stackTraceLimit;
  const answer = new VaultError("rate_limited", "rate limit exceeded", { retryAfterSeconds: 3 });
  assert.equal(answer.stack, "VaultError: rate limit exceeded");
  assert.equal(answer.retryAfterSeconds, 3);
  const bug = new VaultError("internal", "a key maps outside the store");
  assert.match(bug.stack ?? "", /^VaultError: a key maps outside the store\n\s+at /);
  assert.equal(Error.stackTraceLimit, limit, "the limit is put back");
  const cause = new Error("ECONNRESET");
  assert.equal(new VaultError("upstream_failed", "upstream failed", { cause }).cause, cause);
});
