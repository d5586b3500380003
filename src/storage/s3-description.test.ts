import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { isVaultError } from "../core/errors.js";
import { DESCRIPTION_FIELD, MAX_USER_METADATA_BYTES, SHA256_FIELD, decodeDescription, encodeDescription, type StoredDescription } from "./s3-description.js";

const description: StoredDescription = {
  sha256: "a".repeat(64),
  createdAt: new Date("2024-01-02T03:04:05.678Z"),
  modifiedAt: new Date("2024-05-06T07:08:09.012Z"),
  contentType: "text/plain; charset=utf-8",
  metadata: { origin: "https://example.org/ünïcode/😀", etag: '"abc"', "Mixed-Case Name": "tab\tnew\nline\u0000\u007f" },
  keyTail: Buffer.from("the tail of a long key: €"),
};

void describe("S3 object descriptions", () => {
  void it("round-trip through user metadata made of base64url and hex only", () => {
    const metadata = encodeDescription(description);
    assert.deepEqual(Object.keys(metadata).sort(), [DESCRIPTION_FIELD, SHA256_FIELD].sort());
    for (const value of Object.values(metadata)) assert.match(value, /^[A-Za-z0-9_-]*$/);
    assert.deepEqual(decodeDescription(metadata), description);
    const bare = { ...description, contentType: undefined, metadata: {}, keyTail: undefined };
    assert.deepEqual(decodeDescription(encodeDescription(bare)), bare);
  });

  void it("refuses a description over S3's user-metadata limit", () => {
    assert.throws(
      () => encodeDescription({ ...description, metadata: { big: "x".repeat(MAX_USER_METADATA_BYTES) } }),
      (error: unknown) => isVaultError(error, "bad_request") && /user metadata/.test(error.message),
    );
  });

  void it("reads objects without one (or a damaged one) as foreign", () => {
    assert.equal(decodeDescription(undefined), undefined);
    assert.equal(decodeDescription({}), undefined);
    assert.equal(decodeDescription({ [SHA256_FIELD]: "a".repeat(64) }), undefined);
    assert.equal(decodeDescription({ [SHA256_FIELD]: "a".repeat(64), [DESCRIPTION_FIELD]: "not json" }), undefined);
    assert.equal(decodeDescription({ [SHA256_FIELD]: "xyz", [DESCRIPTION_FIELD]: encodeDescription(description)[DESCRIPTION_FIELD] ?? "" }), undefined);
  });
});
