import { test } from "node:test";
import assert from "node:assert/strict";
import { decideRange, etagMatches } from "./http-range.js";

test("decideRange follows RFC 9110 for single byte ranges", () => {
  const cases: Array<[string | undefined, number, unknown]> = [
    [undefined, 10, { kind: "full" }],
    ["bytes=0-4", 10, { kind: "partial", range: { start: 0, end: 4 } }],
    ["bytes=5-", 10, { kind: "partial", range: { start: 5, end: 9 } }],
    ["bytes=-3", 10, { kind: "partial", range: { start: 7, end: 9 } }],
    ["bytes=-30", 10, { kind: "partial", range: { start: 0, end: 9 } }],
    ["bytes=8-100", 10, { kind: "partial", range: { start: 8, end: 9 } }],
    ["bytes=10-", 10, { kind: "unsatisfiable" }],
    ["bytes=-0", 10, { kind: "unsatisfiable" }],
    ["bytes=0-", 0, { kind: "unsatisfiable" }],
    ["bytes=5-2", 10, { kind: "full" }],
    ["bytes=0-1,4-5", 10, { kind: "full" }],
    ["items=0-1", 10, { kind: "full" }],
    ["bytes=-", 10, { kind: "full" }],
  ];
  for (const [header, size, expected] of cases) {
    assert.deepEqual(decideRange(header, size), expected, `${header} of ${size}`);
  }
});

test("etagMatches handles lists, weak tags and *", () => {
  assert.equal(etagMatches('"a"', '"a"'), true);
  assert.equal(etagMatches('"b", W/"a"', '"a"'), true);
  assert.equal(etagMatches("*", '"a"'), true);
  assert.equal(etagMatches('"b"', '"a"'), false);
  assert.equal(etagMatches(undefined, '"a"'), false);
});
