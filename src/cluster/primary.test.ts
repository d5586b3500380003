import { test } from "node:test";
import assert from "node:assert/strict";
import { workerExecArgv } from "./primary.js";

test("workers get a 4 MiB semi-space cap after the primary's own node flags", () => {
  assert.deepEqual(workerExecArgv(["--enable-source-maps"], undefined), ["--enable-source-maps", "--max-semi-space-size=4"]);
  assert.deepEqual(workerExecArgv([], ""), ["--max-semi-space-size=4"]);
});

test("a semi-space size the operator gave, on the command line or in NODE_OPTIONS, is kept", () => {
  assert.deepEqual(workerExecArgv(["--max-semi-space-size=32"], undefined), ["--max-semi-space-size=32"]);
  assert.deepEqual(workerExecArgv(["--max_semi_space_size=32"], undefined), ["--max_semi_space_size=32"]);
  assert.deepEqual(workerExecArgv([], "--max-old-space-size=512 --max-semi-space-size=8"), []);
});
