/**
 * The huggingface backend with the real `@huggingface/hub` client (`hubUrl` pointed at the
 * vault) in front of a fake hub and its CDN (tests/support/huggingface/fake-hub.ts): small and
 * LFS files of models and datasets, a branch that moves, a corrupted CDN answer, a gated model,
 * resumed (ranged) downloads of a cached and of an arriving file, and the hub going away.
 * Python's huggingface_hub cannot be installed here; it uses the same endpoints (HEAD on
 * `resolve`, reading X-Repo-Commit / X-Linked-Etag / X-Linked-Size, then GET).
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { setTimeout as delay } from "node:timers/promises";
import { downloadFile, fileDownloadInfo, listFiles, modelInfo } from "@huggingface/hub";
import { rawRequest } from "../support/http.js";
import { startTestVault, type TestVault } from "../support/test-vault.js";
import { FakeHub, HUB_TOKEN, sha256Hex } from "../support/huggingface/fake-hub.js";

const MiB = 1024 * 1024;

async function download(hubUrl: string, repo: string | { type: "dataset"; name: string }, path: string, revision?: string): Promise<Buffer> {
  const blob = await downloadFile({ repo, path, hubUrl, ...(revision === undefined ? {} : { revision }) });
  assert.ok(blob !== null, `${path} exists`);
  return Buffer.from(await blob.arrayBuffer());
}

/** Polls `probe` until it holds, for at most `ms`. */
async function eventually(ms: number, probe: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await probe())) {
    if (Date.now() > deadline) assert.fail(`not so after ${ms} ms`);
    await delay(50);
  }
}

describe("huggingface backend with @huggingface/hub", () => {
  let hub: FakeHub;
  let vault: TestVault;
  /** The backend with a long TTL, and one whose branches are revalidated after a second. */
  let hf: string;
  let hfShort: string;
  const weights = randomBytes(5 * MiB + 17);
  const readme = Buffer.from("# A model\n");
  const gatedWeights = randomBytes(2 * MiB);
  const rows = randomBytes(3 * MiB + 1);

  const upstreamCount = (): number => hub.requests.length + hub.cdnRequests.length;

  before(async () => {
    hub = await new FakeHub().start();
    hub.addRepo("model", "org/public");
    hub.addRepo("model", "org/gated", { gated: true });
    hub.addRepo("dataset", "org/data");
    hub.commit("model", "org/public", { "model.safetensors": { content: weights, lfs: true }, "README.md": { content: readme, lfs: false } });
    hub.commit("model", "org/gated", { "model.bin": { content: gatedWeights, lfs: true }, "config.json": { content: Buffer.from("{}\n"), lfs: false } });
    hub.commit("dataset", "org/data", { "data/train.parquet": { content: rows, lfs: true } });
    process.env["HF_VAULT_TEST_TOKEN"] = HUB_TOKEN;
    try {
      vault = await startTestVault({
        extraYaml: [
          "backends:",
          `  - {type: huggingface, name: hf, config: {prefix: /hf/, endpoint: "${hub.url}", token: ${HUB_TOKEN}, ttl: 1h, retries: 1}}`,
          `  - {type: huggingface, name: hf-short, config: {prefix: /hf-short/, endpoint: "${hub.url}", token_env: HF_VAULT_TEST_TOKEN, ttl: 1s, retries: 1}}`,
        ].join("\n"),
      });
    } catch (error) {
      await hub.stop();
      throw error;
    } finally {
      delete process.env["HF_VAULT_TEST_TOKEN"];
    }
    hf = `${vault.url}/hf`;
    hfShort = `${vault.url}/hf-short`;
  });

  after(async () => {
    await vault?.close();
    await hub.stop();
  });

  it("downloads a small file, a multi-MB LFS file and a dataset file; again without asking the hub", async () => {
    assert.ok((await download(hf, "org/public", "README.md")).equals(readme));
    assert.ok((await download(hf, "org/public", "model.safetensors")).equals(weights));
    assert.ok((await download(hf, { type: "dataset", name: "org/data" }, "data/train.parquet")).equals(rows));
    const info = await fileDownloadInfo({ repo: "org/public", path: "model.safetensors", hubUrl: hf });
    assert.equal(info?.etag, `"${sha256Hex(weights)}"`);
    assert.equal(info?.size, weights.length);
    assert.ok(info?.url.startsWith(hf), "the client is sent to the vault, not to the CDN");
    assert.equal(await fileDownloadInfo({ repo: "org/public", path: "no-such-file.json", hubUrl: hf }), null, "a missing file is the hub's EntryNotFound");
    const seen = upstreamCount();
    assert.ok((await download(hf, "org/public", "README.md")).equals(readme));
    assert.ok((await download(hf, "org/public", "model.safetensors")).equals(weights));
    assert.ok((await download(hf, { type: "dataset", name: "org/data" }, "data/train.parquet")).equals(rows));
    assert.equal(upstreamCount(), seen, "the second downloads made no upstream request");
    assert.ok(hub.cdnRequests.every((request) => request.authorization === undefined));
  });

  it("model info passes through with its query; a paginated listing's next pages come through the vault", async () => {
    const info = await modelInfo({ name: "org/public", hubUrl: hf });
    assert.equal(info.name, "org/public");
    const listed: string[] = [];
    for await (const file of listFiles({ repo: "org/public", hubUrl: hf })) listed.push(file.path);
    assert.deepEqual(listed.sort(), ["README.md", "model.safetensors"]);
    const listings = hub.requests.filter((request) => request.url.includes("/tree/"));
    assert.equal(listings.length, 2, "two pages, each asked once");
    const page = await rawRequest(vault.url, "/hf/api/models/org/public/tree/main?recursive=false&expand=false");
    assert.match(page.header("link") ?? "", new RegExp(`^<${hf}/api/models/org/public/tree/main\\?.*cursor=1.*>; rel="next"$`));
  });

  it("a moved branch is seen only after the TTL", async () => {
    // The pointer's TTL starts when the vault asks the hub, after this.
    const askedAt = Date.now();
    const first = await download(hfShort, "org/public", "README.md");
    assert.ok(first.equals(readme));
    const changed = Buffer.from("# A better model\n");
    hub.commit("model", "org/public", { "README.md": { content: changed, lfs: false } });
    const soon = await download(hfShort, "org/public", "README.md");
    if (Date.now() - askedAt < 900) assert.ok(soon.equals(readme), "still the cached commit within the TTL");
    await eventually(10_000, async () => (await download(hfShort, "org/public", "README.md")).equals(changed));
    assert.ok(Date.now() - askedAt >= 990, "the new commit was seen only once the TTL had passed");
    // A pinned commit's file never changes, whatever the branch does.
    const head = await rawRequest(vault.url, "/hf-short/org/public/resolve/main/README.md", { method: "HEAD" });
    assert.match(head.header("x-repo-commit") ?? "", /^[0-9a-f]{40}$/);
  });

  it("a corrupted LFS download is refused and never cached", async () => {
    const bad = randomBytes(3 * MiB);
    hub.commit("model", "org/public", { "bad.bin": { content: bad, lfs: true } });
    const sha = sha256Hex(bad);
    hub.corrupt.add(sha);
    await assert.rejects(download(hf, "org/public", "bad.bin"));
    const cdnBefore = hub.cdnRequests.length;
    hub.corrupt.delete(sha);
    assert.ok((await download(hf, "org/public", "bad.bin")).equals(bad));
    assert.ok(hub.cdnRequests.length > cdnBefore, "downloaded again: nothing had been cached");
  });

  it("a gated model works with the vault's token while the client sends none; the token reaches neither the client nor the CDN", async () => {
    const direct = await fetch(`${hub.url}/org/gated/resolve/main/model.bin`, { method: "HEAD", redirect: "manual" });
    assert.equal(direct.status, 401, "the hub itself refuses without the token");
    const fromVault = hub.requests.length;
    assert.ok((await download(hf, "org/gated", "model.bin")).equals(gatedWeights));
    assert.ok((await download(hf, "org/gated", "config.json")).equals(Buffer.from("{}\n")));
    const gatedRequests = hub.requests.slice(fromVault).filter((request) => request.url.includes("org/gated"));
    assert.ok(gatedRequests.length > 0 && gatedRequests.every((request) => request.authorization === `Bearer ${HUB_TOKEN}`));
    assert.ok(hub.cdnRequests.every((request) => request.authorization === undefined));
    for (const [path, method] of [
      ["/hf/org/gated/resolve/main/model.bin", "HEAD"],
      ["/hf/org/gated/resolve/main/model.bin", "GET"],
      ["/hf/org/gated/resolve/main/config.json", "GET"],
      ["/hf/api/models/org/gated", "GET"],
      ["/hf/org/gated/resolve/main/missing", "GET"],
    ] as const) {
      const answer = await rawRequest(vault.url, path, { method });
      const seen = JSON.stringify(answer.headers) + answer.body.toString("latin1");
      assert.ok(!seen.includes(HUB_TOKEN), `${method} ${path} shows no token`);
      assert.equal(answer.header("location"), undefined);
    }
  });

  it("with auth.proxy: token, the client's HF token is its vault token, which never reaches the hub", async () => {
    const secured = await startTestVault({
      proxyAuth: "token",
      tokens: [{ name: "reader", scopes: ["read"] }],
      extraYaml: ["backends:", `  - {type: huggingface, name: hf, config: {prefix: /hf/, endpoint: "${hub.url}", token: ${HUB_TOKEN}, retries: 1}}`].join("\n"),
    });
    try {
      const vaultToken = secured.tokens["reader"] ?? "";
      const from = hub.requests.length;
      await assert.rejects(downloadFile({ repo: "org/gated", path: "config.json", hubUrl: `${secured.url}/hf` }), "no token: refused by the vault");
      // @huggingface/hub takes only `hf_...` access tokens: the vault's goes in through `fetch`.
      const withVaultToken: typeof fetch = (input, init) => fetch(input, { ...init, headers: { ...(init?.headers as Record<string, string> | undefined), authorization: `Bearer ${vaultToken}` } });
      const blob = await downloadFile({ repo: "org/gated", path: "model.bin", hubUrl: `${secured.url}/hf`, fetch: withVaultToken });
      assert.ok(blob !== null && Buffer.from(await blob.arrayBuffer()).equals(gatedWeights));
      const sent = hub.requests.slice(from);
      assert.ok(sent.every((request) => request.authorization === `Bearer ${HUB_TOKEN}`), "the hub sees the vault's hub token only");
      assert.ok(hub.cdnRequests.every((request) => request.authorization === undefined));
    } finally {
      await secured.close();
    }
  });

  it("ranges (resumed downloads) of a cached file and of a file still arriving", async () => {
    const blob = await downloadFile({ repo: "org/public", path: "model.safetensors", hubUrl: hf });
    assert.ok(blob !== null);
    assert.ok(Buffer.from(await blob.slice(1000, 5000).arrayBuffer()).equals(weights.subarray(1000, 5000)));
    const ranged = await rawRequest(vault.url, "/hf/org/public/resolve/main/model.safetensors", { headers: { range: `bytes=${weights.length - 10}-` } });
    assert.equal(ranged.status, 206);
    assert.equal(ranged.header("content-range"), `bytes ${weights.length - 10}-${weights.length - 1}/${weights.length}`);

    const big = randomBytes(4 * MiB);
    const sha = sha256Hex(big);
    hub.commit("model", "org/public", { "arriving.bin": { content: big, lfs: true } });
    const held = hub.hold(sha, MiB);
    const whole = rawRequest(vault.url, "/hf/org/public/resolve/main/arriving.bin");
    await held.started;
    const arriving = await downloadFile({ repo: "org/public", path: "arriving.bin", hubUrl: hf });
    assert.ok(arriving !== null);
    // Bytes already there come while the rest is held at the CDN.
    assert.ok(Buffer.from(await arriving.slice(100, 200).arrayBuffer()).equals(big.subarray(100, 200)));
    const later = arriving.slice(3 * MiB, 3 * MiB + 100).arrayBuffer();
    held.release();
    assert.ok(Buffer.from(await later).equals(big.subarray(3 * MiB, 3 * MiB + 100)));
    assert.ok((await whole).body.equals(big));
    assert.equal(hub.cdnRequests.filter((request) => request.url.includes(sha)).length, 1, "one download from the CDN");
  });

  it("with the hub stopped, cached files still download (the revision served STALE)", async () => {
    assert.ok((await download(hfShort, "org/public", "model.safetensors")).equals(weights));
    await hub.stopHub();
    await eventually(10_000, async () => {
      const head = await rawRequest(vault.url, "/hf-short/org/public/resolve/main/model.safetensors", { method: "HEAD" });
      return head.header("x-cache") === "STALE";
    });
    assert.ok((await download(hfShort, "org/public", "model.safetensors")).equals(weights));
    assert.ok((await download(hf, "org/public", "README.md")).length > 0);
  });
});
