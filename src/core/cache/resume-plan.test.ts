import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { checkResumedAnswer, decideResume, parseContentRange, resumeDelayMs, type FirstAnswer, type ResumePlan } from "./resume-plan.js";

const DATE = "Wed, 02 Oct 2024 10:00:00 GMT";
const LAST_MODIFIED = "Tue, 01 Oct 2024 10:00:00 GMT";

function first(headers: Record<string, string>, extra: Partial<FirstAnswer> = {}): FirstAnswer {
  return { total: 1000, headers: { date: DATE, ...headers }, hasDigest: false, resumable: undefined, ...extra };
}

describe("whether a download may be resumed, from its first answer", () => {
  test("table", () => {
    const cases: Array<[string, FirstAnswer, { ifRange: string | undefined } | string]> = [
      ["a strong ETag goes in If-Range", first({ etag: '"abc"', "last-modified": LAST_MODIFIED }), { ifRange: '"abc"' }],
      ["without any ETag, a strong Last-Modified does", first({ "last-modified": LAST_MODIFIED }), { ifRange: LAST_MODIFIED }],
      ["a Last-Modified within 60 s of Date is weak", first({ "last-modified": "Wed, 02 Oct 2024 09:59:30 GMT" }), "validator"],
      ["a Last-Modified without a Date is weak", { total: 1000, headers: { "last-modified": LAST_MODIFIED }, hasDigest: false, resumable: undefined }, "validator"],
      ["a weak ETag rules out the date (RFC 9110 §13.1.5)", first({ etag: 'W/"abc"', "last-modified": LAST_MODIFIED }), "validator"],
      ["a weak ETag with a known digest: Range alone", first({ etag: 'W/"abc"' }, { hasDigest: true }), { ifRange: undefined }],
      ["no validator with a known digest: Range alone", first({}, { hasDigest: true }), { ifRange: undefined }],
      ["no validator, no digest", first({}), "validator"],
      ["unknown length", first({ etag: '"abc"' }, { total: undefined }), "length"],
      ["Accept-Ranges: none", first({ etag: '"abc"', "accept-ranges": "none" }), "ranges"],
      ["Accept-Ranges: bytes", first({ etag: '"abc"', "accept-ranges": "bytes" }), { ifRange: '"abc"' }],
      ["content-encoded", first({ etag: '"abc"', "content-encoding": "gzip" }), "encoded"],
      ["identity encoding", first({ etag: '"abc"', "content-encoding": "identity" }), { ifRange: '"abc"' }],
      ["the backend says it cannot", first({ etag: '"abc"' }, { resumable: false }), "backend"],
    ];
    for (const [name, answer, expected] of cases) {
      const decision = decideResume(answer);
      if (typeof expected === "string") {
        assert.equal(decision.resumable, false, name);
        assert.match(decision.resumable ? "" : decision.reason, new RegExp(expected), name);
      } else {
        assert.ok(decision.resumable, name);
        assert.equal(decision.plan.ifRange, expected.ifRange, name);
        assert.equal(decision.plan.total, 1000, name);
      }
    }
  });
});

describe("Content-Range", () => {
  test("parses a single satisfied range, refuses anything else", () => {
    assert.deepEqual(parseContentRange("bytes 100-999/1000"), { first: 100, last: 999, complete: 1000 });
    assert.deepEqual(parseContentRange("Bytes  0-0/1"), { first: 0, last: 0, complete: 1 });
    assert.deepEqual(parseContentRange("bytes 5-9/*"), { first: 5, last: 9, complete: undefined });
    for (const bad of [undefined, "", "bytes */1000", "bytes 10-5/1000", "bytes 0-1000/1000", "items 0-1/2", "bytes 0-1/2, bytes 3-4/5", "bytes -1-5/10", "bytes 0-99999999999999999999/1"]) {
      assert.equal(parseContentRange(bad), undefined, String(bad));
    }
  });
});

describe("whether an answer continues the download", () => {
  const plan: ResumePlan = { total: 1000, ifRange: '"abc"', etag: '"abc"', lastModified: LAST_MODIFIED };
  const part = (headers: Record<string, string> = {}): Record<string, string> => ({ "content-range": "bytes 400-999/1000", "content-length": "600", ...headers });

  test("table", () => {
    const cases: Array<[string, number, Record<string, string>, string | undefined]> = [
      ["the rest, same validators", 206, part({ etag: '"abc"', "last-modified": LAST_MODIFIED }), undefined],
      ["the rest, no validators repeated", 206, part(), undefined],
      ["the same date written another way", 206, part({ "last-modified": "Tuesday, 01-Oct-24 10:00:00 GMT" }), undefined],
      ["a 200: range ignored or file changed", 200, {}, "200"],
      ["a 416", 416, {}, "416"],
      ["no Content-Range", 206, { "content-length": "600" }, "Content-Range"],
      ["multipart", 206, { "content-type": "multipart/byteranges; boundary=x" }, "Content-Range"],
      ["starts elsewhere", 206, part({ "content-range": "bytes 300-999/1000", "content-length": "700" }), "starts at byte 300"],
      ["stops short", 206, part({ "content-range": "bytes 400-899/1000", "content-length": "500" }), "ends at byte 899"],
      ["another length", 206, part({ "content-range": "bytes 400-1099/1100", "content-length": "700" }), "1100 bytes"],
      ["a Content-Length that disagrees", 206, part({ "content-length": "10" }), "announces 10"],
      ["another ETag", 206, part({ etag: '"def"' }), "ETag changed"],
      ["another Last-Modified", 206, part({ "last-modified": "Thu, 03 Oct 2024 10:00:00 GMT" }), "Last-Modified changed"],
      ["content-encoded", 206, part({ "content-encoding": "gzip" }), "encoded"],
    ];
    for (const [name, status, headers, problem] of cases) {
      const found = checkResumedAnswer(plan, 400, status, headers);
      if (problem === undefined) assert.equal(found, undefined, name);
      else assert.match(found ?? "", new RegExp(problem), name);
    }
  });

  test("an unknown complete length (*) is accepted when the part ends where the file must", () => {
    assert.equal(checkResumedAnswer(plan, 400, 206, { "content-range": "bytes 400-999/*" }), undefined);
  });
});

test("the waits before resumes double from 200 ms, ±20%", () => {
  assert.deepEqual([1, 2, 3].map((attempt) => resumeDelayMs(attempt, 0.5)), [200, 400, 800]);
  assert.equal(resumeDelayMs(1, 0), 160);
  assert.equal(resumeDelayMs(3, 0.999999), 960);
});
