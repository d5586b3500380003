import { test } from "node:test";
import assert from "node:assert/strict";
import {
  AuthError,
  errorForStatus,
  NotFoundError,
  NotSupportedError,
  parseServerMessage,
  PreconditionFailedError,
  RateLimitedError,
  RestStoreError,
  VaultHttpError,
} from "./errors.js";

test("the server's envelope, FastAPI's detail, short text, and nothing from HTML or empty bodies", () => {
  assert.deepEqual(parseServerMessage('{"error":{"code":"403","message":"this token lacks the \'write\' scope"}}'), {
    code: "403",
    message: "this token lacks the 'write' scope",
  });
  assert.deepEqual(parseServerMessage('{"detail":"Object not found"}'), { code: undefined, message: "Object not found" });
  assert.deepEqual(parseServerMessage("Bad Gateway\n"), { code: undefined, message: "Bad Gateway" });
  assert.deepEqual(parseServerMessage("<html><body>502</body></html>"), { code: undefined, message: undefined });
  assert.deepEqual(parseServerMessage(""), { code: undefined, message: undefined });
});

test("one table maps statuses to error classes, all RestStoreErrors", () => {
  const server = { code: "x", message: "why" };
  const context = { method: "GET", key: "k", attempts: 1 };
  const cases: [number, new (...args: never[]) => RestStoreError][] = [
    [404, NotFoundError],
    [401, AuthError],
    [403, AuthError],
    [429, RateLimitedError],
    [501, NotSupportedError],
    [412, PreconditionFailedError],
    [400, VaultHttpError],
    [413, VaultHttpError],
    [500, VaultHttpError],
    [503, VaultHttpError],
  ];
  for (const [status, type] of cases) {
    const error = errorForStatus(status, server, context);
    assert.ok(error instanceof type, `${status} → ${type.name}, got ${error.name}`);
    assert.ok(error instanceof RestStoreError);
    assert.equal(error.status, status);
    assert.equal(error.name, type.name);
    assert.match(error.message, /why/);
  }
  const listing = errorForStatus(404, server, { method: "GET", attempts: 1 });
  assert.ok(listing instanceof VaultHttpError, "a 404 that is not about a key is not a NotFoundError");
  const limited = errorForStatus(429, server, { ...context, attempts: 3, retryAfter: 7 });
  assert.ok(limited instanceof RateLimitedError);
  assert.equal(limited.retryAfter, 7);
  assert.equal(limited.attempts, 3);
});
