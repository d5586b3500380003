/**
 * The huggingface backend over real HTTP against a fake hub and its CDN (tests/support/huggingface/):
 * what no client does on its own — twenty concurrent cold downloads of one large LFS file,
 * hostile paths, and the same content named by two repos. The real client's view is
 * tests/e2e/huggingface.test.ts.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { rawRequest } from "../support/http.js";
import { startTestVault, type TestVault } from "../support/test-vault.js";
import { FakeHub, gitBlobId, HUB_TOKEN, sha256Hex } from "../support/huggingface/fake-hub.js";

describe("huggingface backend", () => {
  let hub: FakeHub;
  let vault: TestVault;
  const large = randomBytes(6 * 1024 * 1024 + 123);
  const config = Buffer.from('{"model_type": "bert"}\n');
  let commit: string;

  before(async () => {
    hub = await new FakeHub().start();
    hub.addRepo("model", "org/big");
    hub.addRepo("model", "other/copy");
    commit = hub.commit("model", "org/big", { "model.safetensors": { content: large, lfs: true }, "config.json": { content: config, lfs: false } });
    hub.commit("model", "other/copy", { "weights/model.safetensors": { content: large, lfs: true } });
    try {
      vault = await startTestVault({
        extraYaml: ["backends:", `  - {type: huggingface, name: hf, config: {prefix: /hf/, endpoint: "${hub.url}", token: ${HUB_TOKEN}, ttl: 1m, retries: 1}}`].join("\n"),
      });
    } catch (error) {
      await hub.stop();
      throw error;
    }
  });

  after(async () => {
    await vault.close();
    await hub.stop();
  });

  it("20 concurrent cold requests for a large LFS file: one HEAD at the hub, one CDN download; then a HIT", async () => {
    const path = "/hf/org/big/resolve/main/model.safetensors";
    const answers = await Promise.all(Array.from({ length: 20 }, () => rawRequest(vault.url, path)));
    for (const answer of answers) {
      assert.equal(answer.status, 200);
      assert.ok(answer.body.equals(large));
      assert.equal(answer.header("x-repo-commit"), commit);
      assert.equal(answer.header("x-linked-etag"), `"${sha256Hex(large)}"`);
      assert.equal(answer.header("x-linked-size"), String(large.length));
      assert.equal(answer.header("etag"), `"${sha256Hex(large)}"`);
      assert.equal(answer.header("location"), undefined);
    }
    assert.equal(hub.count((request) => request.method === "HEAD"), 1);
    assert.equal(hub.count((request) => request.method === "GET"), 1, "one GET at the hub (its 302 to the CDN)");
    assert.equal(hub.cdnRequests.length, 1);
    assert.equal(hub.cdnRequests[0]?.authorization, undefined, "the token never reaches the CDN");
    const before = hub.requests.length + hub.cdnRequests.length;
    const again = await rawRequest(vault.url, path);
    assert.ok(again.body.equals(large));
    assert.equal(hub.requests.length + hub.cdnRequests.length, before);
  });

  it("the same content under another repo and path: one HEAD, no second download", async () => {
    const cdn = hub.cdnRequests.length;
    const answer = await rawRequest(vault.url, "/hf/other/copy/resolve/main/weights/model.safetensors");
    assert.equal(answer.status, 200);
    assert.ok(answer.body.equals(large));
    assert.equal(hub.cdnRequests.length, cdn);
  });

  it("a small file at a commit: served with its git ETag, verified, immutable", async () => {
    const answer = await rawRequest(vault.url, `/hf/org/big/resolve/${commit}/config.json`);
    assert.equal(answer.status, 200);
    assert.ok(answer.body.equals(config));
    assert.equal(answer.header("etag"), `"${gitBlobId(config)}"`);
    assert.equal(answer.header("x-linked-etag"), undefined);
    const head = await rawRequest(vault.url, `/hf/org/big/resolve/${commit}/config.json`, { method: "HEAD" });
    assert.equal(head.header("content-length"), String(config.length));
    assert.equal(head.header("x-repo-commit"), commit);
  });

  it("a revision with a slash (a pull request's refs/pr/1), as the hub's clients send it (%2F): its own commit's file, cached apart from main's", async () => {
    const proposed = Buffer.from('{"model_type": "bert", "hidden_size": 1024}\n');
    const pr = hub.commit("model", "org/big", { "config.json": { content: proposed, lfs: false } }, "refs/pr/1");
    const answer = await rawRequest(vault.url, "/hf/org/big/resolve/refs%2Fpr%2F1/config.json");
    assert.equal(answer.status, 200, answer.body.toString());
    assert.ok(answer.body.equals(proposed));
    assert.equal(answer.header("x-repo-commit"), pr);
    const main = await rawRequest(vault.url, "/hf/org/big/resolve/main/config.json");
    assert.ok(main.body.equals(config), "main's file is still main's");
    const again = await rawRequest(vault.url, "/hf/org/big/resolve/refs%2Fpr%2F1/config.json");
    assert.equal(again.header("x-cache"), "HIT");
    assert.ok(again.body.equals(proposed));
    const info = await rawRequest(vault.url, "/hf/api/models/org/big/revision/refs%2Fpr%2F1");
    assert.equal(info.status, 200, info.body.toString());
    assert.equal((JSON.parse(info.body.toString()) as { sha?: string }).sha, pr);
  });

  it("a renamed repo: the hub's relative redirect is followed, the content is the one already cached", async () => {
    hub.renamed.set("old/big", "org/big");
    const cdn = hub.cdnRequests.length;
    const answer = await rawRequest(vault.url, "/hf/old/big/resolve/main/model.safetensors");
    assert.equal(answer.status, 200);
    assert.ok(answer.body.equals(large));
    assert.equal(answer.header("x-repo-commit"), commit);
    assert.equal(hub.cdnRequests.length, cdn);
    const small = await rawRequest(vault.url, "/hf/old/big/resolve/main/config.json");
    assert.ok(small.body.equals(config));
  });

  it("refuses odd paths with 400 before asking the hub", async () => {
    const seen = hub.requests.length;
    const paths = [
      "/hf/org/big/resolve/main/../../../etc/passwd",
      "/hf/org/big/resolve/main/%2e%2e/secret",
      "/hf/org/big/resolve/main/a%2fb",
      "/hf/org/big/resolve/main/a%00b",
      "/hf/org/big/resolve/main/a%5cb",
      "/hf/org/big/resolve/main//x",
      "/hf/org/big/resolve/ma..in/x",
      "/hf/org/big/resolve/refs%2f..%2f..%2fx/y",
      "/hf/org/big/resolve/refs%2f%2fpr/x",
      "/hf/org/big/resolve/%2frefs/x",
      "/hf/o..rg/big/resolve/main/x",
      "/hf/org/big/resolve/main/%zz",
      "/hf/api/models/org/big/revision/..",
    ];
    for (const path of paths) {
      const answer = await rawRequest(vault.url, path);
      assert.equal(answer.status, 400, path);
    }
    assert.equal(hub.requests.length, seen, "the hub was not asked");
  });

  it("an unknown file is a 404, and the API passes its query through", async () => {
    const missing = await rawRequest(vault.url, "/hf/org/big/resolve/main/missing.bin");
    assert.equal(missing.status, 404);
    assert.equal(missing.header("x-error-code"), "EntryNotFound");
    const info = await rawRequest(vault.url, "/hf/api/models/org/big/revision/main?expand=sha&expand=siblings");
    assert.equal(info.status, 200);
    assert.equal(info.json<{ sha: string }>().sha, commit);
    assert.ok(hub.requests.some((request) => request.url === "/api/models/org/big/revision/main?expand=sha&expand=siblings"));
  });
});
