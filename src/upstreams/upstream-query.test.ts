import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { encodeUpstreamQuery } from "./upstream-client.js";

describe("encodeUpstreamQuery", () => {
  it("encodes a record by name", () => {
    assert.equal(encodeUpstreamQuery({ a: "1", "b c": "x&y" }), "a=1&b+c=x%26y");
  });
  it("keeps repeated names and their order when given pairs", () => {
    assert.equal(encodeUpstreamQuery([["expand", "sha"], ["expand", "siblings"], ["x", "/"]]), "expand=sha&expand=siblings&x=%2F");
  });
  it("encodes nothing for no parameters", () => {
    assert.equal(encodeUpstreamQuery([]), "");
    assert.equal(encodeUpstreamQuery({}), "");
  });
});
