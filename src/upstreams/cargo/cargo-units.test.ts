import { test } from "node:test";
import assert from "node:assert/strict";
import { isVaultError } from "../../core/errors.js";
import { cargoBackendConfigSchema } from "./cargo-config.js";
import { checkDownloadTemplate, downloadPath, downloadTemplate, findVersion, indexPath, parseCargoPath } from "./sparse-index.js";

const A = "a".repeat(64);
const B = "B".repeat(64);

test("index paths: cargo's layout, lowercase", () => {
  assert.equal(indexPath("a"), "1/a");
  assert.equal(indexPath("ab"), "2/ab");
  assert.equal(indexPath("abc"), "3/a/abc");
  assert.equal(indexPath("Serde_JSON"), "se/rd/serde_json");
});

test("paths: what each names; hostile or malformed ones are refused", () => {
  assert.deepEqual(parseCargoPath("config.json"), { kind: "config" });
  assert.deepEqual(parseCargoPath("se/rd/serde"), { kind: "index", name: "serde" });
  assert.deepEqual(parseCargoPath("3/l/log"), { kind: "index", name: "log" });
  assert.deepEqual(parseCargoPath("1/a"), { kind: "index", name: "a" });
  assert.deepEqual(parseCargoPath("crates/Serde/1.0.0+build.1/download"), { kind: "crate", name: "Serde", version: "1.0.0+build.1" });
  for (const path of ["se/rd/Serde", "crates/../1.0.0/download", "crates/serde/../download", "se//serde", "se/rd/ser%64e", "crates/serde/x/download", "crates/-x/1.0.0/download", "3/l/l\u00f6g"]) {
    assert.throws(() => parseCargoPath(path), (error) => isVaultError(error, "bad_request"), path);
  }
  for (const path of ["", "config", "crates/serde/1.0.0", "a/b/c/d", "api/v1/crates", "xx/rd/serde", "3/a/log", "1/ab"]) {
    assert.throws(() => parseCargoPath(path), (error) => isVaultError(error, "not_found"), path);
  }
});

test("index files: the cksum of a version's line, by name in any case", () => {
  const file = [
    JSON.stringify({ name: "Vault_Greeting", vers: "1.0.0", deps: [], cksum: A, features: {}, yanked: false }),
    "not json",
    JSON.stringify({ name: "vault_greeting", vers: "1.1.0", deps: [], cksum: B, features: {}, yanked: true }),
    JSON.stringify({ name: "vault_greeting", vers: "1.2.0", deps: [], features: {}, yanked: false }),
    "",
  ].join("\n");
  assert.deepEqual(findVersion(file, "vault_greeting", "1.0.0"), { name: "Vault_Greeting", cksum: A });
  assert.deepEqual(findVersion(file, "VAULT_GREETING", "1.1.0"), { name: "vault_greeting", cksum: "b".repeat(64) });
  assert.equal(findVersion(file, "vault_greeting", "1.2.0"), undefined, "a line without a cksum lists nothing downloadable");
  assert.equal(findVersion(file, "vault_greeting", "9.0.0"), undefined);
  assert.equal(findVersion(file, "other", "1.0.0"), undefined);
});

test("dl templates: cargo's default suffix and its markers", () => {
  const plain = downloadTemplate("https://static.crates.io/crates");
  assert.deepEqual(plain, { base: "https://static.crates.io/crates/", path: "{crate}/{version}/download" });
  const crate = { name: "Serde", cksum: A };
  assert.equal(downloadPath(plain, crate, "1.0.0"), "Serde/1.0.0/download");
  const marked = downloadTemplate("https://dl.example/files/{lowerprefix}/{crate}/{crate}-{version}.crate?sum={sha256-checksum}".replace("?sum=", "/"));
  assert.equal(marked.base, "https://dl.example/files/");
  assert.equal(downloadPath(marked, crate, "1.0.0"), `se/rd/Serde/Serde-1.0.0.crate/${A}`);
  assert.equal(downloadPath(downloadTemplate("https://dl.example/{prefix}/{crate}"), crate, "1.0.0"), "Se/rd/Serde");
  assert.equal(checkDownloadTemplate("https://static.crates.io/crates"), undefined);
  assert.match(checkDownloadTemplate("ftp://x/{crate}") ?? "", /http/);
  assert.match(checkDownloadTemplate("https://x/{crate}?v={version}") ?? "", /query/);
  assert.match(checkDownloadTemplate("https://x/{name}") ?? "", /marker/);
});

test("config: crates.io by default; another index needs its dl_url; dl_url is checked", () => {
  const defaults = cargoBackendConfigSchema.parse({ prefix: "/cargo/" });
  assert.equal(defaults.index_url, "https://index.crates.io/");
  assert.equal(defaults.dl_url, "https://static.crates.io/crates");
  assert.equal(cargoBackendConfigSchema.parse({ prefix: "/cargo/", index_url: "https://index.crates.io" }).dl_url, "https://static.crates.io/crates");
  const other = cargoBackendConfigSchema.safeParse({ prefix: "/cargo/", index_url: "https://crates.example.com/index/" });
  assert.deepEqual(other.error?.issues.map((issue) => issue.path), [["dl_url"]]);
  const given = cargoBackendConfigSchema.parse({ prefix: "/cargo/", index_url: "https://crates.example.com/index/", dl_url: "https://crates.example.com/dl/{crate}-{version}.crate" });
  assert.equal(given.dl_url, "https://crates.example.com/dl/{crate}-{version}.crate");
  assert.equal(cargoBackendConfigSchema.safeParse({ prefix: "/cargo/", dl_url: "https://x/{name}" }).success, false);
  assert.equal(cargoBackendConfigSchema.safeParse({ prefix: "/cargo/", token: "a", username: "b" }).success, false);
});
