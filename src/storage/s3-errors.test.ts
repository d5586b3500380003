import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { VaultError } from "../core/errors.js";
import { isConditionalConflict, isMissingObject, isPreconditionFailed, s3Error } from "./s3-errors.js";

/** An error shaped like the SDK's. */
function sdkError(name: string, status: number | undefined): Error {
  return Object.assign(new Error(`${name} happened`), { name, $metadata: status === undefined ? {} : { httpStatusCode: status } });
}

void describe("S3 errors", () => {
  void it("are classified by status and code", () => {
    assert.ok(isMissingObject(sdkError("NoSuchKey", 404)));
    assert.ok(isMissingObject(sdkError("NotFound", 404)));
    assert.ok(!isMissingObject(sdkError("NoSuchBucket", 404)));
    assert.ok(isPreconditionFailed(sdkError("PreconditionFailed", 412)));
    assert.ok(isConditionalConflict(sdkError("ConditionalRequestConflict", 409)));
  });

  void it("become VaultErrors of the right kind, naming the store's problem", () => {
    const table: Array<[Error, VaultError["kind"], RegExp]> = [
      [sdkError("NoSuchBucket", 404), "unavailable", /bucket "b" at http:\/\/s3 does not exist/],
      [sdkError("AccessDenied", 403), "unavailable", /refused access.*credentials/],
      [sdkError("InvalidAccessKeyId", 403), "unavailable", /refused access/],
      [sdkError("SignatureDoesNotMatch", 403), "unavailable", /refused access/],
      [sdkError("InternalError", 500), "unavailable", /unreachable or failing/],
      [sdkError("SlowDown", 503), "unavailable", /unreachable or failing/],
      [Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:1"), { code: "ECONNREFUSED", $metadata: {} }), "unavailable", /unreachable or failing.*ECONNREFUSED/],
      [sdkError("TimeoutError", undefined), "unavailable", /unreachable/],
      [sdkError("XMinioStorageFull", 507), "insufficient_storage", /is full/],
      [sdkError("EntityTooLarge", 400), "payload_too_large", /too large/],
      [sdkError("InvalidRange", 416), "range_not_satisfiable", /range/],
      [sdkError("MalformedXML", 400), "internal", /answered 400/],
      [sdkError("CredentialsProviderError", undefined), "unavailable", /no credentials.*s3_access_key/],
      [new TypeError("a bug of ours"), "internal", /a bug of ours/],
    ];
    for (const [error, kind, message] of table) {
      const mapped = s3Error(error, "reading", '"b" at http://s3');
      assert.equal(mapped.kind, kind, `${error.name}: ${mapped.message}`);
      assert.match(mapped.message, message);
      assert.equal(mapped.cause, error);
    }
    const own = new VaultError("bad_request", "mine");
    assert.equal(s3Error(own, "x", "y"), own);
  });
});
