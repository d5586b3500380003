import { test } from "node:test";
import assert from "node:assert/strict";
import { parseGoSum } from "./go-sum.js";

const h1 = (letter: string): string => `h1:${letter.repeat(43)}=`;

test("a module's source line is its .info and .zip, a /go.mod line its .mod; paths and versions case-escaped", () => {
  const text = [
    `github.com/Azure/go-autorest v14.2.0+incompatible ${h1("a")}`,
    `github.com/Azure/go-autorest v14.2.0+incompatible/go.mod ${h1("b")}`,
    `golang.org/x/text v0.3.0/go.mod ${h1("c")}`,
    `golang.org/x/text v0.14.0 ${h1("d")}`,
    `golang.org/x/text v0.14.0/go.mod ${h1("e")}`,
    `example.com/Pre v1.0.0-RC.1 ${h1("f")}`,
    "",
    `golang.org/x/text v0.14.0 ${h1("d")}`,
  ].join("\r\n");
  const { files, problems } = parseGoSum(text);
  assert.deepEqual(problems, []);
  assert.deepEqual(
    files.map((file) => [file.kind, file.base]),
    [
      ["source", "github.com/!azure/go-autorest/@v/v14.2.0+incompatible"],
      ["mod", "github.com/!azure/go-autorest/@v/v14.2.0+incompatible"],
      ["mod", "golang.org/x/text/@v/v0.3.0"],
      ["source", "golang.org/x/text/@v/v0.14.0"],
      ["mod", "golang.org/x/text/@v/v0.14.0"],
      ["source", "example.com/!pre/@v/v1.0.0-!r!c.1"],
    ],
    "each file once, in the order the go.sum lists them",
  );
  assert.deepEqual(files[0], { module: "github.com/Azure/go-autorest", version: "v14.2.0+incompatible", kind: "source", base: "github.com/!azure/go-autorest/@v/v14.2.0+incompatible" });
});

test("a line naming no module version the proxy could serve is reported, not warmed; a path out of the prefix is never built", () => {
  const { files, problems } = parseGoSum(
    [
      `example.com/../../admin v1.0.0 ${h1("a")}`,
      `localmodule v1.0.0 ${h1("b")}`,
      `example.com/m master ${h1("c")}`,
      `example.com/ok v1.0.0 ${h1("d")}`,
    ].join("\n"),
  );
  assert.deepEqual(
    files.map((file) => file.base),
    ["example.com/ok/@v/v1.0.0"],
  );
  assert.deepEqual(
    problems.map((problem) => problem.text),
    ["example.com/../../admin@v1.0.0", "localmodule@v1.0.0", "example.com/m@master"],
  );
  assert.match(problems[0]?.reason ?? "", /^not a module path: /);
  assert.equal(problems[2]?.reason, "not a canonical version");
});

test("text that is no go.sum is an error naming the line", () => {
  assert.throws(() => parseGoSum(`golang.org/x/text v0.14.0 ${h1("a")}\nrequests==2.32.3\n`), /^Error: line 2 is no go\.sum line .*"requests==2\.32\.3"/);
  assert.throws(() => parseGoSum("golang.org/x/text v0.14.0 sha256:abc\n"), /line 1 is no go\.sum line/);
});
