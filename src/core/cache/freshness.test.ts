import { test } from "node:test";
import assert from "node:assert/strict";
import { decideFreshness } from "./freshness.js";
import { digestFromIntegrity } from "./artifact-ref.js";

test("freshness decisions", () => {
  const cases: Array<[Parameters<typeof decideFreshness>, string]> = [
    [[{ kind: "immutable" }, 0, 10 ** 12], "fresh"],
    [[{ kind: "mutable", ttlMs: 1000 }, 5000, 5000], "fresh"],
    [[{ kind: "mutable", ttlMs: 1000 }, 5000, 5999], "fresh"],
    [[{ kind: "mutable", ttlMs: 1000 }, 5000, 6000], "stale"],
    [[{ kind: "mutable", ttlMs: 0 }, 5000, 5000], "stale"],
    [[{ kind: "mutable", ttlMs: 1000 }, 9000, 5000], "fresh"],
  ];
  for (const [args, expected] of cases) assert.equal(decideFreshness(...args), expected, JSON.stringify(args));
});

test("SRI integrity strings become hex digests", () => {
  const hex = "a".repeat(128);
  const b64 = Buffer.from(hex, "hex").toString("base64");
  assert.deepEqual(digestFromIntegrity(`sha512-${b64}`), { algorithm: "sha512", hex });
  assert.deepEqual(digestFromIntegrity(`sha512-${b64} sha1-abc=`), { algorithm: "sha512", hex });
  assert.equal(digestFromIntegrity("md5-xyz"), undefined);
  assert.equal(digestFromIntegrity("garbage"), undefined);
});
