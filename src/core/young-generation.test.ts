import { test } from "node:test";
import assert from "node:assert/strict";
import { semiSpaceGiven, withSemiSpaceCap } from "./young-generation.js";

test("a process gets a 4 MiB semi-space cap after its own node flags", () => {
  assert.deepEqual(withSemiSpaceCap(["--enable-source-maps"], undefined), ["--enable-source-maps", "--max-semi-space-size=4"]);
  assert.deepEqual(withSemiSpaceCap([], ""), ["--max-semi-space-size=4"]);
  assert.equal(semiSpaceGiven(["--enable-source-maps"], "--max-old-space-size=512"), false);
});

test("a semi-space size the operator gave, on the command line or in NODE_OPTIONS, is kept", () => {
  assert.deepEqual(withSemiSpaceCap(["--max-semi-space-size=32"], undefined), ["--max-semi-space-size=32"]);
  assert.deepEqual(withSemiSpaceCap(["--max_semi_space_size=32"], undefined), ["--max_semi_space_size=32"]);
  assert.deepEqual(withSemiSpaceCap([], "--max-old-space-size=512 --max-semi-space-size=8"), []);
  assert.equal(semiSpaceGiven([], "--max-semi-space-size=8"), true);
});
