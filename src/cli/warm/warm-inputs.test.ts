import { test } from "node:test";
import assert from "node:assert/strict";
import { CliError } from "../cli-errors.js";
import { projectFiles } from "./pypi-source.js";
import { listKind } from "./warm-action.js";

test("what a file lists: by its name, else by its content", () => {
  assert.equal(listKind("deps/requirements-dev.txt", "anything"), "requirements");
  assert.equal(listKind("package-lock.json", "{}"), "package-lock");
  assert.equal(listKind("lock.json", '{\n  "name": "x",\n  "lockfileVersion": 3\n}'), "package-lock");
  assert.equal(listKind("list.txt", "# files\n/files/a.tgz\nhttp://vault:8080/files/b.tgz\nfiles/c.tgz\n"), "paths");
  assert.equal(listKind("-", "requests==2.32.3\nflask>=3\n"), "requirements");
  assert.equal(listKind("empty.txt", ""), "paths");
  assert.throws(
    () => listKind("images.txt", "debian:12\nalpine\n"),
    (error: unknown) => error instanceof CliError && error.exitCode === 2 && /--images/.test(error.message),
  );
});

test("a project page's files, in JSON or HTML", async () => {
  const url = new URL("http://vault.test/pypi/simple/demo/");
  const sha = "a".repeat(64);
  const json = await projectFiles({
    url,
    contentType: "application/vnd.pypi.simple.v1+json",
    served: "cached",
    body: Buffer.from(
      JSON.stringify({
        files: [
          { filename: "demo-1.0-py3-none-any.whl", url: `../../packages/sha256/${sha}/demo-1.0-py3-none-any.whl`, hashes: { sha256: sha }, "core-metadata": { sha256: sha } },
          { filename: "demo-1.0.tar.gz", url: "../../packages/demo-1.0.tar.gz", hashes: {}, "core-metadata": false },
        ],
      }),
    ),
  });
  assert.deepEqual(
    json.map((file) => [file.filename, file.url.href, file.hashes["sha256"], file.hasMetadata]),
    [
      ["demo-1.0-py3-none-any.whl", `http://vault.test/pypi/packages/sha256/${sha}/demo-1.0-py3-none-any.whl`, sha, true],
      ["demo-1.0.tar.gz", "http://vault.test/pypi/packages/demo-1.0.tar.gz", undefined, false],
    ],
  );
  const html = await projectFiles({
    url,
    contentType: "text/html",
    served: "fetched",
    body: Buffer.from(
      `<html><body><a href="../../packages/sha256/${sha}/demo-1.0-py3-none-any.whl#sha256=${sha}" data-dist-info-metadata="sha256=${sha}">demo-1.0-py3-none-any.whl</a><br/>` +
        `<a href="../../packages/demo-1.0.tar.gz" data-core-metadata="false">demo-1.0.tar.gz</a></body></html>`,
    ),
  });
  assert.deepEqual(
    html.map((file) => [file.filename, file.url.href, file.hashes["sha256"], file.hasMetadata]),
    [
      ["demo-1.0-py3-none-any.whl", `http://vault.test/pypi/packages/sha256/${sha}/demo-1.0-py3-none-any.whl`, sha, true],
      ["demo-1.0.tar.gz", "http://vault.test/pypi/packages/demo-1.0.tar.gz", undefined, false],
    ],
  );
});
