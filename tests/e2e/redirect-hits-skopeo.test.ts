/**
 * End to end with a real container client: skopeo pulls an image through a vault on S3 (s3rver)
 * with `cache.redirect_hits` from Debian's docker-registry. The first pull fills the cache; on the
 * second, the large layer is a `307` to a presigned bucket URL that skopeo follows, and the layer
 * it writes is the upstream's, digest for digest. The manifest and the small config blob are
 * served by the vault.
 */
import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { rawRequest } from "../support/http.js";
import { ImageLayout } from "../support/oci/image-layout.js";
import { startRegistry } from "../support/oci/registry.js";
import { skopeoCopy } from "../support/oci/skopeo.js";
import { startTestVault } from "../support/test-vault.js";
import { requireTool } from "../support/tools.js";

const MiB = 1024 * 1024;

test("redirect_hits end to end: skopeo follows a layer's 307 from the vault to the bucket", async (t: TestContext) => {
  if (requireTool(t, "skopeo") === undefined || requireTool(t, "docker-registry") === undefined) return;
  const dir = await mkdtemp(join(tmpdir(), "vault-e2e-redirect-"));
  const stops: Array<() => Promise<void>> = [];
  try {
    const layout = await ImageLayout.create(join(dir, "layout"));
    const image = await layout.addImage({ seed: "redirect-hits/big", layers: [{}, { randomBytes: 3 * MiB }] });
    layout.tag("big", image);
    await layout.save();
    const big = image.layers[1];
    assert.ok(big !== undefined && big.size >= MiB && image.config.size < MiB);

    const registry = await startRegistry();
    stops.push(() => registry.stop());
    await registry.push(layout.reference("big"), "vault-test/big:v1");
    const vault = await startTestVault({
      storage: "s3",
      logLevel: "info",
      extraYaml: ["cache: {redirect_hits: true}", "backends:", `  - {type: oci, name: hub, config: {prefix: /hub/, registry_url: "${registry.url}"}}`].join("\n"),
    });
    stops.push(() => vault.close());
    const reference = `docker://${vault.url.replace(/^http:\/\//, "")}/vault-test/big:v1`;
    const blobPath = (digest: string): string => `/v2/vault-test/big/blobs/${digest}`;
    const statuses = (digest: string): unknown[] =>
      vault
        .logs()
        .filter((entry) => entry.msg === "request" && entry["method"] === "GET" && entry["url"] === blobPath(digest))
        .map((entry) => entry["status"]);

    // First pull: every blob is a miss, streamed by the vault. Then wait until they are stored.
    await skopeoCopy(reference, `dir:${join(dir, "first")}`);
    for (const deadline = Date.now() + 15_000; ; await sleep(50)) {
      const { fills } = (await rawRequest(vault.url, "/admin/cache/fills", { headers: vault.auth("all") })).json<{ fills: unknown[] }>();
      if (fills.length === 0) break;
      assert.ok(Date.now() < deadline, "the first pull's downloads are still not stored");
    }
    assert.deepEqual(statuses(big.digest), [200]);

    // Second pull: the large layer comes from the bucket.
    const presignedGets = (): number => (vault.s3?.requests ?? []).filter((request) => request.method === "GET" && request.query.includes("X-Amz-Signature")).length;
    const before = presignedGets();
    await skopeoCopy(reference, `dir:${join(dir, "second")}`);
    assert.deepEqual(statuses(big.digest), [200, 307], "the layer was redirected");
    assert.deepEqual(statuses(image.config.digest), [200, 200], "the small config blob was served by the vault");
    if (vault.s3?.requests.length !== 0) assert.equal(presignedGets(), before + 1, "skopeo fetched the layer from the bucket");
    for (const blob of image.blobs) {
      const hex = blob.slice("sha256:".length);
      const written = await readFile(join(dir, "second", hex));
      assert.equal(`sha256:${createHash("sha256").update(written).digest("hex")}`, blob, `blob ${blob} as skopeo wrote it`);
    }
    assert.equal(registry.count({ method: "GET", path: blobPath(big.digest) }), 1, "the upstream was asked once");
  } finally {
    for (const stop of stops.reverse()) await stop();
    await rm(dir, { recursive: true, force: true });
  }
});
