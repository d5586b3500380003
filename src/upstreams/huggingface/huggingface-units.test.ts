import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { isVaultError } from "../../core/errors.js";
import { fileInfoFromHead, gitBlobCheck, pointerHeaders, readPointer } from "./hub-file.js";
import { renderHubError } from "./hub-errors.js";
import { linksToVault } from "./huggingface-backend.js";
import { isCommit, parseApiQuery, parseHubPath, resolvePath } from "./hub-paths.js";

const COMMIT = "0123456789abcdef0123456789abcdef01234567";
const SHA256 = "a".repeat(64);

function kindOf(run: () => unknown): string | undefined {
  try {
    run();
  } catch (error) {
    return isVaultError(error) ? error.kind : "other";
  }
  return undefined;
}

describe("parseHubPath", () => {
  it("reads model and dataset files, with one- and two-part repo ids", () => {
    assert.deepEqual(parseHubPath("org/name/resolve/main/model.safetensors"), { kind: "file", repo: { kind: "model", name: "org/name" }, revision: "main", file: "model.safetensors" });
    assert.deepEqual(parseHubPath("gpt2/resolve/v1.0/onnx/decoder%20model.onnx"), { kind: "file", repo: { kind: "model", name: "gpt2" }, revision: "v1.0", file: "onnx/decoder model.onnx" });
    assert.deepEqual(parseHubPath("datasets/org/data/resolve/main/data/train.parquet"), { kind: "file", repo: { kind: "dataset", name: "org/data" }, revision: "main", file: "data/train.parquet" });
  });

  it("reads the API paths", () => {
    assert.deepEqual(parseHubPath("api/models/org/name"), { kind: "api", repo: { kind: "model", name: "org/name" }, view: "info" });
    // A revision with `/` (a pull request's ref, a dataset's parquet conversion) is one %2F-encoded segment.
    assert.deepEqual(parseHubPath("org/name/resolve/refs%2Fpr%2F1/config.json"), { kind: "file", repo: { kind: "model", name: "org/name" }, revision: "refs/pr/1", file: "config.json" });
    assert.deepEqual(parseHubPath("api/datasets/org/data/tree/refs%2Fconvert%2Fparquet/default"), { kind: "api", repo: { kind: "dataset", name: "org/data" }, view: "tree", revision: "refs/convert/parquet", file: "default" });
    assert.equal(resolvePath({ kind: "model", name: "org/name" }, "refs/pr/1", "config.json"), "org/name/resolve/refs%2Fpr%2F1/config.json");
    assert.deepEqual(parseHubPath("api/models/gpt2/revision/main"), { kind: "api", repo: { kind: "model", name: "gpt2" }, view: "revision", revision: "main" });
    assert.deepEqual(parseHubPath(`api/datasets/org/data/revision/${COMMIT}`), { kind: "api", repo: { kind: "dataset", name: "org/data" }, view: "revision", revision: COMMIT });
    assert.deepEqual(parseHubPath("api/models/org/name/tree/main/sub/dir"), { kind: "api", repo: { kind: "model", name: "org/name" }, view: "tree", revision: "main", file: "sub/dir" });
  });

  it("refuses hostile paths as bad requests", () => {
    for (const path of [
      "org/name/resolve/main/../x",
      "org/name/resolve/main/%2E%2E/x",
      "org/name/resolve/main/a%2Fb",
      "org/name/resolve/main/a%00",
      "org/name/resolve/main/a%5Cb",
      "org/name/resolve/main/a//b",
      "org/name/resolve/main/",
      "org/name/resolve/..%2f..%2fx/y",
      "org/name/resolve/refs%2F..%2Fx/y",
      "org/name/resolve/%2Frefs/y",
      "org/name/resolve/refs%2F%2Fpr/y",
      "org/name/resolve/refs%2F/y",
      "org/name/resolve/refs%5Cpr/y",
      `org/name/resolve/${"r".repeat(256)}/y`,
      "o..rg/name/resolve/main/x",
      "-org/name/resolve/main/x",
      "org/name/resolve/main/%E0%A4%A",
    ]) {
      assert.equal(kindOf(() => parseHubPath(path)), "bad_request", path);
    }
    assert.equal(kindOf(() => parseHubPath("org/name/blob/main/x")), "not_found");
    assert.equal(kindOf(() => parseHubPath("api/spaces/org/name")), "not_found");
  });

  it("builds the hub's resolve path, encoded per segment", () => {
    assert.equal(resolvePath({ kind: "dataset", name: "org/data" }, COMMIT, "a b/c#d.txt"), `datasets/org/data/resolve/${COMMIT}/a%20b/c%23d.txt`);
    assert.equal(isCommit(COMMIT), true);
    assert.equal(isCommit("main"), false);
  });
});

describe("parseApiQuery", () => {
  it("keeps repeated names in order, and a canonical form for the key", () => {
    const { pairs, canonical } = parseApiQuery("expand=siblings&expand=sha&limit=5");
    assert.deepEqual(pairs, [["expand", "siblings"], ["expand", "sha"], ["limit", "5"]]);
    assert.equal(canonical, parseApiQuery("limit=5&expand=sha&expand=siblings").canonical);
  });
  it("refuses odd names", () => {
    assert.equal(kindOf(() => parseApiQuery("a%00=1")), "bad_request");
  });
});

describe("fileInfoFromHead", () => {
  const options = { commit: undefined, redirected: false, what: "x" };
  it("reads an LFS file's redirect", () => {
    const info = fileInfoFromHead({ "x-repo-commit": COMMIT, "x-linked-etag": `"${SHA256}"`, "x-linked-size": "12345", etag: '"abc"', "content-length": "0" }, { ...options, redirected: true });
    assert.deepEqual(info, { commit: COMMIT, etag: SHA256, sha256: SHA256, size: 12345 });
  });
  it("reads a small file's answer, with a weak ETag", () => {
    const info = fileInfoFromHead({ "x-repo-commit": COMMIT, etag: 'W/"0123456789012345678901234567890123456789"', "content-length": "7" }, options);
    assert.deepEqual(info, { commit: COMMIT, etag: "0123456789012345678901234567890123456789", sha256: undefined, size: 7 });
  });
  it("takes the commit asked for when the hub names none; refuses what cannot be used", () => {
    assert.equal(fileInfoFromHead({ etag: '"e"', "content-length": "1" }, { ...options, commit: COMMIT }).commit, COMMIT);
    assert.equal(kindOf(() => fileInfoFromHead({ etag: '"e"', "content-length": "1" }, options)), "upstream_failed");
    assert.equal(kindOf(() => fileInfoFromHead({ "x-repo-commit": COMMIT, etag: '"e"' }, { ...options, redirected: true })), "upstream_failed");
    assert.equal(kindOf(() => fileInfoFromHead({ "x-repo-commit": COMMIT, etag: '"e/../x"', "content-length": "1" }, options)), "upstream_failed");
    assert.equal(kindOf(() => fileInfoFromHead({ "x-repo-commit": COMMIT, etag: '"e"' }, options)), "upstream_failed");
  });
  it("round-trips through a pointer's kept headers", () => {
    const info = { commit: COMMIT, etag: SHA256, sha256: SHA256, size: 3 };
    assert.deepEqual(readPointer(pointerHeaders(info)), info);
    assert.equal(kindOf(() => readPointer({})), "internal");
  });
});

describe("gitBlobCheck", () => {
  const content = Buffer.from("hello\n");
  const id = createHash("sha1").update(`blob ${content.length}\0`).update(content).digest("hex");
  it("passes the blob its id names", async () => {
    const check = gitBlobCheck(id, content.length, "f");
    await check.update(content);
    await check.finish();
  });
  it("fails other bytes and longer bodies", async () => {
    const check = gitBlobCheck(id, content.length, "f");
    await check.update(Buffer.from("hellO\n"));
    await assert.rejects(check.finish(), (error) => isVaultError(error) && error.kind === "upstream_failed");
    assert.throws(() => gitBlobCheck(id, 2, "f").update(content));
  });
});

describe("renderHubError", () => {
  it("names EntryNotFound for files, RepoNotFound for the API", () => {
    const report = { status: 404, kind: "not_found" as const, code: undefined, message: "gone" };
    assert.deepEqual(renderHubError({ ...report, path: "/hf/org/m/resolve/main/x" }).headers, { "x-error-code": "EntryNotFound" });
    assert.deepEqual(renderHubError({ ...report, path: "/hf/api/models/org/m" }).headers, { "x-error-code": "RepoNotFound" });
    assert.deepEqual(renderHubError({ ...report, status: 400, kind: "bad_request", path: "/hf/x" }), { contentType: "application/json; charset=utf-8", body: { error: "gone" } });
  });
});

describe("linksToVault", () => {
  it("points the hub's links at the vault and drops others", () => {
    const link = '<https://huggingface.co/api/models/o/m/tree/main?cursor=abc>; rel="next", <https://elsewhere.test/x>; rel="other"';
    assert.equal(linksToVault(link, "https://huggingface.co/", "http://vault:8080/hf/"), '<http://vault:8080/hf/api/models/o/m/tree/main?cursor=abc>; rel="next"');
    assert.equal(linksToVault('<https://elsewhere.test/x>; rel="next"', "https://huggingface.co/", "http://vault/hf/"), "");
  });
});
