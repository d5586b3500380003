import { test } from "node:test";
import assert from "node:assert/strict";
import { normalisePrefix, parsePathList, pathOnVault, vaultBase } from "./vault-urls.js";

test("a list of vault paths and URLs: the vault's own only", () => {
  const base = vaultBase("https://host.example/vault");
  const entries = parsePathList(
    [
      "# comment",
      "/files/pkg/a-1.0.tgz",
      "files/pkg/b%20c.tgz",
      "https://host.example/vault/files/x.bin#frag",
      "https://host.example/other/files/x.bin",
      "https://evil.example/vault/files/x.bin",
      "http://host.example/vault/files/x.bin",
      "../../etc/passwd",
      "",
    ].join("\n"),
    base,
  );
  assert.deepEqual(
    entries.map((entry) => ("url" in entry ? pathOnVault(base, entry.url) : `refused ${entry.refused}`)),
    [
      "/files/pkg/a-1.0.tgz",
      "/files/pkg/b%20c.tgz",
      "/files/x.bin",
      "refused https://host.example/other/files/x.bin",
      "refused https://evil.example/vault/files/x.bin",
      "refused http://host.example/vault/files/x.bin",
      "refused ../../etc/passwd",
    ],
  );
  const refused = entries.find((entry) => "refused" in entry && entry.refused.includes("evil"));
  assert.ok(refused !== undefined && "reason" in refused && /not on the vault/.test(refused.reason));
});

test("prefixes in one form", () => {
  assert.equal(normalisePrefix("/pypi/"), "pypi/");
  assert.equal(normalisePrefix("pypi"), "pypi/");
  assert.equal(normalisePrefix("/v2/docker"), "v2/docker/");
  assert.equal(normalisePrefix("/"), "");
});
