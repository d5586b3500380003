/**
 * Smoke tests of the OCI test support (tests/support/oci/): generated image layouts, Debian's
 * docker-registry in each mode (anonymous, htpasswd, token, proxy), the token server, and
 * skopeo pushing and pulling through them. What a later OCI backend test will build on, and what
 * surprised us about the real tools, pinned down as assertions.
 */
import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import { MediaType, manifestDigests, sha256Digest, topDigest, writeSampleImages, type LayoutEntry, type SampleImages } from "../support/oci/image-layout.js";
import { waitFor } from "../support/process.js";
import { startRegistry, type Registry, type RegistryOptions } from "../support/oci/registry.js";
import { skopeoCopy, skopeoInspect, skopeoInspectRaw } from "../support/oci/skopeo.js";
import { startTokenServer, type Credentials, type TokenServer } from "../support/oci/token-server.js";
import { requireTool } from "../support/tools.js";

const BIG_LAYER = 4 * 1024 * 1024;
const TAGS = ["oci-image", "docker-image", "oci-index", "docker-list"] as const;

const repoOf = (tag: string): string => `vault-test/${tag}`;

/** Where a pulled copy goes: an OCI layout for OCI entries, skopeo's `dir:` for Docker ones. */
function pullTarget(dir: string, tag: string, entry: LayoutEntry): { reference: string; topManifest: () => Buffer } {
  if (entry.format === "oci") {
    const layout = join(dir, `pulled-oci-${tag}`);
    return {
      reference: `oci:${layout}:${tag}`,
      topManifest: () => {
        const index = JSON.parse(readFileSync(join(layout, "index.json"), "utf8")) as { manifests: Array<{ digest: string }> };
        assert.equal(index.manifests.length, 1);
        const digest = index.manifests[0]?.digest ?? "";
        return readFileSync(join(layout, "blobs", "sha256", digest.slice("sha256:".length)));
      },
    };
  }
  const target = join(dir, `pulled-dir-${tag}`);
  return { reference: `dir:${target}`, topManifest: () => readFileSync(join(target, "manifest.json")) };
}

/** Pushes every sample, then checks inspect, inspect --raw and a copy back against the generator's digests. */
async function pushAndPullBack(t: TestContext, registry: Registry, samples: SampleImages, scratch: string, credentials: Credentials | undefined): Promise<void> {
  for (const tag of TAGS) {
    const entry = samples.tags.get(tag);
    assert.ok(entry !== undefined);
    await registry.push(samples.layout.reference(tag), `${repoOf(tag)}:v1`);
    const reference = registry.reference(`${repoOf(tag)}:v1`);

    const inspected = await skopeoInspect(reference, { credentials });
    assert.equal(inspected.Digest, topDigest(entry), `${tag}: skopeo inspect names the top-level digest`);
    // For an index, inspect describes the image for this machine's platform.
    const image = entry.kind === "image" ? entry : entry.images.find((child) => child.platform.architecture === inspected.Architecture);
    assert.ok(image !== undefined, `${tag}: inspect picked one of the index's platforms (${inspected.Architecture})`);
    assert.deepEqual(inspected.Layers, image.layers.map((layer) => layer.digest));

    const raw = await skopeoInspectRaw(reference, { credentials });
    assert.equal(sha256Digest(raw), topDigest(entry), `${tag}: the registry serves the manifest byte for byte`);
    assert.deepEqual(raw, entry.kind === "image" ? entry.manifestBytes : entry.indexBytes);

    const target = pullTarget(scratch, `${registry.host.replace(/\W/g, "-")}-${tag}`, entry);
    await skopeoCopy(reference, target.reference, credentials === undefined ? {} : { sourceCredentials: credentials });
    assert.equal(sha256Digest(target.topManifest()), topDigest(entry), `${tag}: the pulled copy keeps the top-level digest`);
  }
  // Every manifest went in by tag (the top) or by digest (an index's children), each once.
  const puts = await registry.settledRequests({ method: "PUT", path: /\/manifests\// });
  for (const tag of TAGS) {
    const entry = samples.tags.get(tag);
    assert.ok(entry !== undefined);
    const paths = puts.filter((request) => request.path.startsWith(`/v2/${repoOf(tag)}/manifests/`)).map((request) => request.path);
    const children = manifestDigests(entry).slice(1);
    assert.deepEqual(paths.sort(), [...children.map((digest) => `/v2/${repoOf(tag)}/manifests/${digest}`), `/v2/${repoOf(tag)}/manifests/v1`].sort());
  }
  t.diagnostic(`${registry.requests().length} requests logged by ${registry.url}`);
}

async function challenge(registry: Registry): Promise<{ status: number; header: string }> {
  const response = await fetch(`${registry.url}/v2/`);
  await response.arrayBuffer();
  return { status: response.status, header: response.headers.get("www-authenticate") ?? "" };
}

async function rejects(promise: Promise<unknown>, pattern: RegExp): Promise<void> {
  await assert.rejects(promise, (error: Error) => {
    assert.match(error.message, pattern);
    return true;
  });
}

test("OCI test support: layouts, docker-registry (anonymous, htpasswd, token, proxy), token server, skopeo", async (t) => {
  if (requireTool(t, "skopeo") === undefined || requireTool(t, "docker-registry") === undefined || requireTool(t, "openssl") === undefined) return;
  const started = performance.now();
  const dir = await mkdtemp(join(tmpdir(), "vault-e2e-oci-"));
  const stops: Array<() => Promise<void>> = [];
  const start = async (options: RegistryOptions): Promise<Registry> => {
    const registry = await startRegistry(options);
    stops.push(() => registry.stop());
    return registry;
  };
  try {
    const samples = await writeSampleImages(join(dir, "layout"), { bigLayerBytes: BIG_LAYER });
    let basicRegistry: Registry | undefined;
    let tokenRegistry: Registry | undefined;
    let tokenServer: TokenServer | undefined;

    await t.test("the generated layouts are deterministic, valid, and readable by skopeo", async () => {
      const again = await writeSampleImages(join(dir, "layout-again"), { bigLayerBytes: BIG_LAYER });
      for (const [tag, entry] of samples.tags) {
        const other = again.tags.get(tag);
        assert.ok(other !== undefined);
        assert.equal(topDigest(other), topDigest(entry), `${tag} is reproducible`);
      }
      const layerFiles = new Set<string>();
      for (const tag of [...TAGS, "big-image"]) {
        const entry = samples.tags.get(tag);
        assert.ok(entry !== undefined);
        const inspected = await skopeoInspect(samples.layout.reference(tag));
        assert.equal(inspected.Digest, topDigest(entry), `skopeo inspect ${samples.layout.reference(tag)}`);
        for (const image of entry.kind === "image" ? [entry] : entry.images) {
          const config = JSON.parse(image.configBytes.toString("utf8")) as { architecture: string; os: string; rootfs: { type: string; diff_ids: string[] } };
          assert.equal(config.architecture, image.platform.architecture);
          assert.equal(config.os, "linux");
          assert.equal(config.rootfs.type, "layers");
          // diff_ids are the digests of the uncompressed tars.
          const layers = image.layers.map((layer) => gunzipSync(readFileSync(samples.layout.blobPath(layer.digest))));
          assert.deepEqual(config.rootfs.diff_ids, layers.map((tar) => sha256Digest(tar)));
          for (const layer of image.layers) layerFiles.add(layer.digest);
        }
      }
      assert.equal(layerFiles.size, 2 + 2 + 2 + 2 + 2, "no two images share a layer");
      const big = samples.bigImage?.layers[1];
      assert.ok(big !== undefined && big.size > BIG_LAYER && big.tarSize === 512 + BIG_LAYER + 1024, `big layer: ${big?.size} bytes gzipped, ${big?.tarSize} as tar`);
      const indexPlatforms = samples.ociIndex.images.map((image) => image.platform);
      assert.deepEqual(indexPlatforms, [{ architecture: "amd64", os: "linux" }, { architecture: "arm64", os: "linux", variant: "v8" }]);

      // Surprise: skopeo 1.9 does not resolve oci:DIR:TAG to an index.json entry with a Docker
      // media type, hence the dir: copies that reference() names for Docker entries.
      assert.match(samples.layout.reference("docker-list"), /^dir:/);
      await rejects(skopeoInspect(`oci:${samples.layout.dir}:docker-list`), /no descriptor found for reference \\?"docker-list\\?"/);
      // Surprise: a Docker list cannot be copied into an OCI layout without converting it.
      await rejects(
        skopeoCopy(samples.layout.reference("docker-list"), `oci:${join(dir, "converted")}:docker-list`),
        /must be converted to type \\?"application\/vnd\.oci\.image\.index\.v1\+json\\?".*Instructed to preserve digests/,
      );
    });

    await t.test("anonymous registry: push, inspect and pull back every kind of manifest", async (st) => {
      const registry = await start({});
      assert.deepEqual(await challenge(registry), { status: 200, header: "" });
      await pushAndPullBack(st, registry, samples, dir, undefined);

      // The big image, and its big blob fetched straight from the registry.
      await registry.push(samples.layout.reference("big-image"), "vault-test/big:v1");
      const bigLayer = samples.bigImage?.layers[1]?.digest ?? "";
      const blobPath = `/v2/vault-test/big/blobs/${bigLayer}`;
      const response = await fetch(`${registry.url}${blobPath}`);
      const body = Buffer.from(await response.arrayBuffer());
      assert.equal(response.status, 200);
      assert.equal(sha256Digest(body), bigLayer);
      assert.equal(response.headers.get("docker-content-digest"), bigLayer);
      // The access log shows skopeo's checks before the upload (two HEADs in 1.9; the upload itself
      // goes to /blobs/uploads/) and our one GET.
      const logged = await registry.settledRequests({ path: blobPath });
      assert.deepEqual(
        logged.filter((request) => request.method === "GET").map((request) => [request.status, request.bytes]),
        [[200, samples.bigImage?.layers[1]?.size]],
      );
      const heads = logged.filter((request) => request.method === "HEAD");
      assert.ok(heads.length >= 1 && heads.every((request) => request.status === 404), `skopeo's existence checks: ${JSON.stringify(heads)}`);
    });

    await t.test("htpasswd registry: Basic challenge, pushes and pulls with the password, refuses without", async (st) => {
      const registry = await start({ auth: { type: "htpasswd", users: { pusher: "h7passw0rd" }, realm: "vault-test-basic" } });
      basicRegistry = registry;
      assert.deepEqual(await challenge(registry), { status: 401, header: 'Basic realm="vault-test-basic"' });
      assert.deepEqual(registry.credentials, { username: "pusher", password: "h7passw0rd" });
      await pushAndPullBack(st, registry, samples, dir, registry.credentials);
      await rejects(skopeoInspect(registry.reference(`${repoOf("oci-image")}:v1`)), /unauthorized: authentication required/);
      await rejects(skopeoInspect(registry.reference(`${repoOf("oci-image")}:v1`), { credentials: { username: "pusher", password: "wrong" } }), /unauthorized: authentication required/);
      const refused = await registry.settledRequests({ status: 401 });
      assert.ok(refused.length >= 3, "every refusal is in the access log");
    });

    await t.test("token registry: Bearer challenge, a token per scope, pulls and pushes by grant", async (st) => {
      tokenServer = await startTokenServer({ users: { tester: "t0ken-pass" } });
      const server = tokenServer;
      stops.push(() => server.stop());
      const registry = await start({ auth: { type: "token", server } });
      tokenRegistry = registry;
      assert.deepEqual(await challenge(registry), {
        status: 401,
        header: `Bearer realm="${server.realm}",service="${server.service}"`,
      });
      const tags = await fetch(`${registry.url}/v2/${repoOf("oci-image")}/tags/list`);
      await tags.arrayBuffer();
      assert.equal(tags.headers.get("www-authenticate"), `Bearer realm="${server.realm}",service="${server.service}",scope="repository:${repoOf("oci-image")}:pull"`);

      await pushAndPullBack(st, registry, samples, dir, server.credentials);
      for (const tag of TAGS) {
        const push = server.requestsFor(`repository:${repoOf(tag)}:pull,push`);
        assert.equal(push.length, 1, `${tag}: one push token`);
        assert.deepEqual(push[0]?.granted, [{ type: "repository", name: repoOf(tag), actions: ["pull", "push"] }]);
        // skopeo asks per process: inspect (image, then tags list), inspect --raw, copy.
        assert.equal(server.requestsFor(`repository:${repoOf(tag)}:pull`).length, 4, `${tag}: pull tokens`);
      }
      assert.ok(server.requests().every((request) => request.method === "GET" && request.service === server.service && request.account === "tester" && request.credentials === "valid"));

      // Anonymous clients get a token without access, so the registry still says no.
      await rejects(skopeoInspect(registry.reference(`${repoOf("oci-image")}:v1`)), /denied: requested access to the resource is denied/);
      assert.deepEqual(server.requests().at(-1)?.granted, []);
      assert.equal(server.requests().at(-1)?.credentials, "none");
      // A wrong password is refused by the token server itself.
      await rejects(skopeoInspect(registry.reference(`${repoOf("oci-image")}:v1`), { credentials: { username: "tester", password: "nope" } }), /invalid username\/password: unauthorized: incorrect username or password/);
      assert.deepEqual({ credentials: server.requests().at(-1)?.credentials, status: server.requests().at(-1)?.status }, { credentials: "invalid", status: 401 });

      // Tokens minted directly: kid and x5c headers both verify; expiry and audience are checked.
      const path = `/v2/${repoOf("oci-image")}/manifests/v1`;
      const access = [{ type: "repository", name: repoOf("oci-image"), actions: ["pull"] }];
      const statusWith = async (token: string, accept: string = MediaType.ociManifest): Promise<number> => {
        const response = await fetch(`${registry.url}${path}`, { method: "HEAD", headers: { authorization: `Bearer ${token}`, accept } });
        return response.status;
      };
      assert.equal(await statusWith(server.mint({ access })), 200, "kid");
      assert.equal(await statusWith(server.mint({ access, headerStyle: "x5c" })), 200, "x5c");
      // Surprise: distribution 2.8 answers 404 MANIFEST_UNKNOWN for an OCI manifest the client's
      // Accept header does not list (here: none), not 406 and not the manifest.
      assert.equal(await statusWith(server.mint({ access }), "*/*"), 404, "OCI manifest without an OCI Accept");
      assert.equal(await statusWith(server.mint({ access: [{ ...access[0]!, name: "other/repo" }] })), 401, "another repository");
      // distribution allows 60 s of clock skew on exp and nbf.
      assert.equal(await statusWith(server.mint({ access, issuedOffset: -600, expiresIn: 300 })), 401, "expired");
      assert.equal(await statusWith(server.mint({ access, audience: "another-service" })), 401, "audience");
      assert.equal(await statusWith(server.mint({ access, issuer: "someone-else" })), 401, "issuer");

      // The OAuth2 form (POST) that containerd tries first.
      const form = new URLSearchParams({ grant_type: "password", username: "tester", password: "t0ken-pass", service: server.service, scope: `repository:${repoOf("oci-image")}:pull`, client_id: "vault-test" });
      const posted = await fetch(server.realm, { method: "POST", body: form });
      const json = (await posted.json()) as { access_token: string; token: string; expires_in: number; issued_at: string };
      assert.equal(posted.status, 200);
      assert.equal(json.expires_in, 300);
      assert.equal(await statusWith(json.access_token), 200);
    });

    await t.test("proxy registry (pull-through) in front of the token registry: the second pull is served locally", async () => {
      assert.ok(tokenRegistry !== undefined && tokenServer !== undefined, "the token registry subtest ran");
      const upstream = tokenRegistry;
      const server = tokenServer;
      const proxy = await start({ proxy: { remoteUrl: upstream.url, ...server.credentials } });
      assert.deepEqual(await challenge(proxy), { status: 200, header: "" });
      const entry = samples.ociIndex;
      const reference = proxy.reference(`${repoOf("oci-index")}:v1`);
      const tokensBefore = server.requests().length;
      let mark = (await upstream.settledRequests()).length;
      /** Upstream requests since the last call, as `METHOD PATH STATUS`. */
      const upstreamSince = async (): Promise<string[]> => {
        const all = await upstream.settledRequests();
        const fresh = all.slice(mark).map((request) => `${request.method} ${request.path} ${request.status}`);
        mark = all.length;
        return fresh;
      };
      const blobRequests = (requests: readonly string[], digest: string): string[] => requests.filter((line) => line.includes(`/blobs/${digest} `)).sort();

      await skopeoCopy(reference, `oci:${join(dir, "via-proxy-1")}:v1`);
      const index = JSON.parse(readFileSync(join(dir, "via-proxy-1", "index.json"), "utf8")) as { manifests: Array<{ digest: string }> };
      assert.equal(index.manifests[0]?.digest, entry.index.digest, "the pull through the proxy keeps the index digest");
      // The background copy can finish after the client's: wait for it before reading the upstream's
      // log (its GET is only logged once answered), and so that the next pull does not miss.
      await waitFor("the proxy to store every blob", () => (entry.blobs.every((digest) => proxy.hasBlob(digest)) ? true : undefined));
      const first = await upstreamSince();
      for (const digest of entry.blobs) {
        // Surprise: on a miss distribution 2.8's proxy GETs a blob twice from upstream (one
        // copy streams to the client, one is stored in the background), after a HEAD.
        assert.deepEqual(blobRequests(first, digest), [`GET /v2/${repoOf("oci-index")}/blobs/${digest} 200`, `GET /v2/${repoOf("oci-index")}/blobs/${digest} 200`, `HEAD /v2/${repoOf("oci-index")}/blobs/${digest} 200`]);
      }
      const proxyTokens = server.requests().slice(tokensBefore);
      assert.ok(proxyTokens.length > 0 && proxyTokens.every((request) => request.credentials === "valid" && request.username === server.credentials.username), "the proxy logs in upstream with its credentials");

      await skopeoCopy(reference, `oci:${join(dir, "via-proxy-2")}:v1`);
      const second = await upstreamSince();
      for (const digest of entry.blobs) assert.deepEqual(blobRequests(second, digest), [], "no upstream blob request on the second pull");
      // Surprise: the proxy still asks upstream about the tag on every pull (a HEAD by tag).
      assert.deepEqual(second.filter((line) => !line.startsWith("GET /v2/ ")), [`HEAD /v2/${repoOf("oci-index")}/manifests/v1 200`]);
      // A proxy is read-only for its clients: an upload is 405 UNSUPPORTED.
      const upload = await fetch(`${proxy.url}/v2/vault-test/pushed/blobs/uploads/`, { method: "POST" });
      assert.equal(upload.status, 405);
      assert.match(await upload.text(), /UNSUPPORTED/);
      await rejects(proxy.push(samples.layout.reference("oci-image"), "vault-test/pushed:v1"), /initiating layer upload to \/v2\/vault-test\/pushed\/blobs\/uploads\/ .*: unsupported/);
    });

    await t.test("surprise: distribution 2.8's proxy cannot log in to a Basic-auth upstream", async () => {
      assert.ok(basicRegistry !== undefined, "the htpasswd subtest ran");
      const upstream = basicRegistry;
      const credentials = upstream.credentials;
      assert.ok(credentials !== undefined);
      // It keys the credentials by the challenge's realm, which only a Bearer challenge makes a
      // URL; with `Basic realm="…"` it never sends them, and the manifest is "unknown".
      const proxy = await start({ proxy: { remoteUrl: upstream.url, ...credentials } });
      await rejects(skopeoInspect(proxy.reference(`${repoOf("oci-image")}:v1`)), /manifest unknown/);
      const refused = await upstream.settledRequests({ path: `/v2/${repoOf("oci-image")}/manifests/v1`, status: 401 });
      assert.ok(refused.length >= 1, "the upstream saw the proxy's unauthenticated requests");
    });
  } finally {
    for (const stop of stops.reverse()) await stop();
    await rm(dir, { recursive: true, force: true });
    t.diagnostic(`OCI support smoke test: ${((performance.now() - started) / 1000).toFixed(1)} s`);
  }
});
