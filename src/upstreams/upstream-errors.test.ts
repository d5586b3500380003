import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { VaultError } from "../core/errors.js";
import { retryDelayMs } from "./http-client.js";
import { isRetryableConnectionError, isRetryableStatus, toUpstreamError } from "./upstream-errors.js";

const withCode = (code: string, message = "boom") => Object.assign(new Error(message), { code });
const url = new URL("https://cdn.example/blob/sha256:1?X-Amz-Signature=secret");

describe("upstream error classification", () => {
  test("retries connection failures, never a headers timeout or an unknown error", () => {
    for (const code of ["ECONNREFUSED", "ECONNRESET", "ENOTFOUND", "EAI_AGAIN", "UND_ERR_SOCKET", "UND_ERR_CONNECT_TIMEOUT"]) {
      assert.equal(isRetryableConnectionError(withCode(code)), true, code);
    }
    for (const error of [withCode("UND_ERR_HEADERS_TIMEOUT"), withCode("UND_ERR_BODY_TIMEOUT"), withCode("CERT_HAS_EXPIRED"), new Error("x"), "x"]) {
      assert.equal(isRetryableConnectionError(error), false, String(error));
    }
    // Wrapped causes and the AggregateError of a host with several addresses count too.
    assert.equal(isRetryableConnectionError(new Error("fetch failed", { cause: withCode("ECONNRESET") })), true);
    assert.equal(isRetryableConnectionError(new AggregateError([withCode("ECONNREFUSED")])), true);
  });

  test("retries 502, 503 and 504 only", () => {
    assert.deepEqual(
      [200, 404, 429, 500, 501, 502, 503, 504, 505].filter(isRetryableStatus),
      [502, 503, 504],
    );
  });

  test("timeouts become upstream_timeout, other failures upstream_failed", () => {
    for (const code of ["UND_ERR_CONNECT_TIMEOUT", "UND_ERR_HEADERS_TIMEOUT", "UND_ERR_BODY_TIMEOUT", "ETIMEDOUT"]) {
      assert.equal(toUpstreamError(withCode(code), url, "request").kind, "upstream_timeout", code);
    }
    for (const code of ["ECONNREFUSED", "UND_ERR_SOCKET", "UND_ERR_RES_CONTENT_LENGTH_MISMATCH", "ENOTFOUND"]) {
      assert.equal(toUpstreamError(withCode(code), url, "body").kind, "upstream_failed", code);
    }
    assert.equal(toUpstreamError(withCode("UND_ERR_INVALID_ARG"), url, "request").kind, "internal");
    assert.equal(toUpstreamError(withCode("UND_ERR_CLOSED"), url, "request").kind, "unavailable");
    const existing = new VaultError("bad_request", "x");
    assert.equal(toUpstreamError(existing, url, "request"), existing);
  });

  test("messages name the origin and path, never a signed query", () => {
    const error = toUpstreamError(withCode("ECONNRESET", "socket hang up"), url, "body");
    assert.match(error.message, /https:\/\/cdn\.example\/blob\/sha256:1/);
    assert.doesNotMatch(error.message, /secret/);
    assert.ok(error.cause instanceof Error);
  });

  test("backoff doubles from 200 ms with ±20% jitter", () => {
    assert.deepEqual([1, 2, 3].map((n) => retryDelayMs(n, 0.5)), [200, 400, 800]);
    assert.equal(retryDelayMs(1, 0), 160);
    assert.equal(retryDelayMs(1, 0.999999), 240);
  });
});
