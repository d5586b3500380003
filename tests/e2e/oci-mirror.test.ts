/**
 * The README's registries.conf recipe, tried with the real client: skopeo resolves an image of a
 * registry that does not exist (`upstream.invalid`) through the vault configured as its mirror
 * in registries.conf — what podman, buildah and CRI-O read too. The vault pulls from Debian's
 * docker-registry.
 */
import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { writeSampleImages } from "../support/oci/image-layout.js";
import { startRegistry, type Registry } from "../support/oci/registry.js";
import { startTestVault, type TestVault } from "../support/test-vault.js";
import { requireTool } from "../support/tools.js";

const execFileAsync = promisify(execFile);

test("registries.conf mirror: skopeo pulls upstream.invalid/<name> through the vault", async (t: TestContext) => {
  if (requireTool(t, "skopeo") === undefined || requireTool(t, "docker-registry") === undefined) return;
  const dir = await mkdtemp(join(tmpdir(), "vault-e2e-mirror-"));
  let registry: Registry | undefined;
  let vault: TestVault | undefined;
  try {
    const images = await writeSampleImages(join(dir, "layout"));
    registry = await startRegistry();
    await registry.push(images.layout.reference("oci-image"), "team/app:1.0");
    vault = await startTestVault({ extraYaml: `backends:\n  - {type: oci, name: hub, config: {prefix: /hub/, registry_url: "${registry.url}"}}` });
    const mirror = vault.url.replace("http://", "");
    const conf = join(dir, "registries.conf");
    await writeFile(
      conf,
      ['[[registry]]', 'prefix = "upstream.invalid"', 'location = "upstream.invalid"', "[[registry.mirror]]", `location = "${mirror}"`, "insecure = true", ""].join("\n"),
    );
    const out = join(dir, "pulled");
    // skopeo 1.9 ignores CONTAINERS_REGISTRIES_CONF; its (hidden) --registries-conf is the same file.
    await execFileAsync("skopeo", ["--registries-conf", conf, "--insecure-policy", "copy", "--retry-times=0", "docker://upstream.invalid/team/app:1.0", `oci:${out}:1.0`], {
      timeout: 120_000,
    });
    const index = JSON.parse(await readFile(join(out, "index.json"), "utf8")) as { manifests: Array<{ digest: string }> };
    assert.equal(index.manifests[0]?.digest, images.ociImage.manifest.digest);
    // The vault fetched it: every download the registry served went to the vault, none to skopeo.
    const seen = await registry.settledRequests({ method: "GET", path: /^\/v2\/team\/app\// });
    assert.ok(seen.length > 0);
    assert.ok(seen.every((entry) => entry.userAgent.startsWith("artifact-vault/")), JSON.stringify(seen.map((entry) => entry.userAgent)));
    const hit = await fetch(`${vault.url}/v2/team/app/blobs/${images.ociImage.layers[0]?.digest ?? ""}`, { method: "HEAD" });
    assert.equal(hit.headers.get("x-cache"), "HIT");
  } finally {
    await vault?.close();
    await registry?.stop();
    await rm(dir, { recursive: true, force: true });
  }
});
