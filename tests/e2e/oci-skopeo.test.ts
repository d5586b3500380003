/**
 * End to end with real parts: skopeo 1.9 pulls through the vault's `oci` backend from Debian's
 * docker-registry 2.8 — anonymous, behind htpasswd, behind token auth (the Docker token server of
 * tests/support/oci), and with blob GETs redirected to another host — one upstream or several in
 * order. The images come from the deterministic generator and are pushed with
 * `--preserve-digests`, so every digest the vault serves is compared with the generator's. What
 * reached an upstream is read from its access log after `settle()`.
 */
import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { once } from "node:events";
import { createReadStream, readdirSync, readFileSync, statSync } from "node:fs";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { createServer, type IncomingHttpHeaders } from "node:http";
import { tmpdir } from "node:os";
import { join, normalize } from "node:path";
import {
  ImageLayout,
  MediaType,
  manifestDigests,
  sha256Digest,
  topDigest,
  writeSampleImages,
  type ImageFormat,
  type ImageResult,
  type LayoutEntry,
} from "../support/oci/image-layout.js";
import { sleep } from "../support/process.js";
import { startRegistry, type AccessLogEntry, type Registry, type RegistryOptions } from "../support/oci/registry.js";
import { skopeo, skopeoCopy, skopeoInspect, skopeoInspectRaw, type CopyOptions } from "../support/oci/skopeo.js";
import { startTokenServer, type Credentials } from "../support/oci/token-server.js";
import { startTestVault, type TestVault } from "../support/test-vault.js";
import { requireTool } from "../support/tools.js";

/** Tags stay fresh this long in the main vault: long enough for a step, short enough to wait out. */
const TTL_MS = 2000;
const HERD_CLIENTS = 20;
const HERD_LAYER_BYTES = 8 * 1024 * 1024;
/**
 * skopeo 1.9's Accept for manifests (six header lines, joined here). The vault caches each set of
 * accepted types on its own, so the test's own fetches send this one to see what skopeo's pulls
 * cached.
 */
const MANIFEST_ACCEPT = [
  MediaType.ociManifest,
  MediaType.dockerManifest,
  "application/vnd.docker.distribution.manifest.v1+prettyjws",
  "application/vnd.docker.distribution.manifest.v1+json",
  MediaType.dockerManifestList,
  MediaType.ociIndex,
].join(", ");
const SAMPLE_TAGS = ["oci-image", "docker-image", "oci-index", "docker-list"] as const;

const repoOf = (tag: string): string => `vault-test/${tag}`;
const hexOf = (digest: string): string => digest.slice("sha256:".length);

/** What a pulled copy must hold: its top manifest, every manifest, every config and layer. */
interface Expected {
  readonly top: string;
  readonly manifests: readonly string[];
  readonly blobs: readonly string[];
}

const expectEntry = (entry: LayoutEntry): Expected => ({ top: topDigest(entry), manifests: manifestDigests(entry), blobs: entry.blobs });
const expectImage = (image: ImageResult): Expected => ({ top: image.manifest.digest, manifests: [image.manifest.digest], blobs: image.blobs });

/**
 * Where skopeo copies to: an OCI layout for OCI content, skopeo's `dir:` for Docker content
 * (skopeo 1.9 will not write a Docker manifest list into an OCI layout without converting it).
 * `check` compares every file it wrote with the expected digests, and that nothing else is there.
 */
interface PullTarget {
  readonly reference: string;
  check(expected: Expected, what: string): void;
}

function pullTarget(dir: string, label: string, format: ImageFormat): PullTarget {
  const root = join(dir, "pulls", label);
  const fileDigest = (file: string): string => sha256Digest(readFileSync(file));
  if (format === "oci") {
    return {
      reference: `oci:${root}:pulled`,
      check: (expected, what) => {
        const index = JSON.parse(readFileSync(join(root, "index.json"), "utf8")) as { manifests: Array<{ digest: string }> };
        assert.deepEqual(index.manifests.map((m) => m.digest), [expected.top], `${what}: the copy's top digest`);
        const blobDir = join(root, "blobs", "sha256");
        const files = readdirSync(blobDir).sort();
        assert.deepEqual(files, [...new Set([...expected.manifests, ...expected.blobs])].map(hexOf).sort(), `${what}: the copy holds exactly the expected manifests and blobs`);
        for (const hex of files) assert.equal(fileDigest(join(blobDir, hex)), `sha256:${hex}`, `${what}: blob ${hex} has the bytes of its digest`);
      },
    };
  }
  return {
    reference: `dir:${root}`,
    check: (expected, what) => {
      assert.equal(fileDigest(join(root, "manifest.json")), expected.top, `${what}: the copy's top digest`);
      const children = expected.manifests.filter((digest) => digest !== expected.top);
      const want = ["manifest.json", "version", ...children.map((digest) => `${hexOf(digest)}.manifest.json`), ...expected.blobs.map(hexOf)].sort();
      assert.deepEqual(readdirSync(root).sort(), want, `${what}: the copy holds exactly the expected manifests and blobs`);
      for (const digest of children) assert.equal(fileDigest(join(root, `${hexOf(digest)}.manifest.json`)), digest, `${what}: child manifest ${digest}`);
      for (const digest of expected.blobs) assert.equal(fileDigest(join(root, hexOf(digest))), digest, `${what}: blob ${digest}`);
    },
  };
}

/** Access-log entries of a registry since the last call (or since creation). */
class LogCursor {
  #seen = 0;
  private constructor(private readonly registry: Registry) {}

  static async at(registry: Registry): Promise<LogCursor> {
    const cursor = new LogCursor(registry);
    cursor.#seen = (await registry.settledRequests()).length;
    return cursor;
  }

  async fresh(): Promise<AccessLogEntry[]> {
    const all = await this.registry.settledRequests();
    const fresh = all.slice(this.#seen);
    this.#seen = all.length;
    return fresh;
  }
}

const describe = (entries: readonly AccessLogEntry[]): string[] => entries.map((entry) => `${entry.method} ${entry.path} ${entry.status}`);
const blobRequests = (entries: readonly AccessLogEntry[]): AccessLogEntry[] => entries.filter((entry) => /\/blobs\/sha256:/.test(entry.path));

/**
 * A plain HTTP server standing in for the storage host docker-registry redirects blob GETs to
 * (its `redirect` storage middleware: `Location: BASEURL/docker/registry/v2/blobs/…/data`). It
 * serves those files from the registry's storage directory and records every request's headers.
 */
interface BlobHost {
  readonly url: string;
  /** The registry's `rootdirectory`, set once the registry exists. */
  root: string | undefined;
  readonly requests: Array<{ readonly method: string; readonly path: string; readonly headers: IncomingHttpHeaders }>;
  stop(): Promise<void>;
}

const STORAGE_PATH = /^\/docker\/registry\/v2\/blobs\/sha256\/[0-9a-f]{2}\/[0-9a-f]{64}\/data$/;

async function startBlobHost(address: string): Promise<BlobHost> {
  const host: BlobHost = { url: "", root: undefined, requests: [], stop: async () => undefined };
  const server = createServer((request, response) => {
    const path = new URL(request.url ?? "/", "http://blob-host.invalid").pathname;
    host.requests.push({ method: request.method ?? "", path, headers: request.headers });
    const file = host.root === undefined || !STORAGE_PATH.test(path) ? undefined : join(host.root, normalize(path));
    let size: number | undefined;
    try {
      size = file === undefined ? undefined : statSync(file).size;
    } catch {
      size = undefined;
    }
    if (file === undefined || size === undefined || (request.method !== "GET" && request.method !== "HEAD")) {
      response.writeHead(404, { "content-type": "text/plain" }).end("not found\n");
      return;
    }
    response.writeHead(200, { "content-type": "application/octet-stream", "content-length": String(size) });
    if (request.method === "HEAD") response.end();
    else createReadStream(file).pipe(response);
  });
  let listening = address;
  try {
    server.listen(0, listening);
    await once(server, "listening");
  } catch {
    // Not every system routes all of 127/8 to loopback (macOS has only 127.0.0.1): another port is another origin too.
    listening = "127.0.0.1";
    server.listen(0, listening);
    await once(server, "listening");
  }
  const bound = server.address();
  const port = typeof bound === "object" && bound !== null ? bound.port : 0;
  return Object.assign(host, {
    url: `http://${listening}:${port}`,
    stop: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  });
}

const redirectBlobsTo = (baseurl: string): Record<string, unknown> => ({ middleware: { storage: [{ name: "redirect", options: { baseurl } }] } });

async function rejects(promise: Promise<unknown>, pattern: RegExp, what: string): Promise<void> {
  await assert.rejects(promise, (error: Error) => {
    assert.match(error.message, pattern, what);
    return true;
  });
}

test("oci backend end to end: skopeo → artifact-vault → docker-registry", async (t: TestContext) => {
  if (requireTool(t, "skopeo") === undefined || requireTool(t, "docker-registry") === undefined || requireTool(t, "openssl") === undefined) return;
  const started = performance.now();
  const dir = await mkdtemp(join(tmpdir(), "vault-e2e-oci-"));
  const stops: Array<() => Promise<void>> = [];
  const startUpstream = async (options: RegistryOptions = {}): Promise<Registry> => {
    const registry = await startRegistry(options);
    stops.push(() => registry.stop());
    return registry;
  };
  const startVault = async (options: Parameters<typeof startTestVault>[0]): Promise<TestVault> => {
    const vault = await startTestVault(options);
    stops.push(() => vault.close());
    return vault;
  };
  try {
    // --- images: the four samples, and more for the re-push, the herd and the fail-over
    const samples = await writeSampleImages(join(dir, "layout"));
    const extra = await ImageLayout.create(join(dir, "extra"));
    const repushed = await extra.addImage({ seed: "repush/second" });
    const herdImage = await extra.addImage({ seed: "herd", layers: [{}, { randomBytes: HERD_LAYER_BYTES }] });
    const coldImage = await extra.addImage({ seed: "fail-over/cold" });
    extra.tag("repushed", repushed);
    extra.tag("herd", herdImage);
    extra.tag("cold", coldImage);
    await extra.save();
    const sample = (tag: string): LayoutEntry => {
      const entry = samples.tags.get(tag);
      assert.ok(entry !== undefined, tag);
      return entry;
    };

    // --- upstreams: anonymous (the main one), an empty one, htpasswd and token auth with blob
    // redirects to hosts of their own (127.0.0.2: another host by any definition; 127.0.0.1
    // on another port: another origin)
    const tokenServer = await startTokenServer({ users: { puller: "t0ken-pass-9" } });
    stops.push(() => tokenServer.stop());
    const tokenBlobHost = await startBlobHost("127.0.0.2");
    stops.push(() => tokenBlobHost.stop());
    const basicBlobHost = await startBlobHost("127.0.0.1");
    stops.push(() => basicBlobHost.stop());
    const [plain, empty, basicRegistry, tokenRegistry] = await Promise.all([
      startUpstream(),
      startUpstream(),
      startUpstream({ auth: { type: "htpasswd", users: { puller: "b4sic-pass-7" } }, extraConfig: redirectBlobsTo(basicBlobHost.url) }),
      startUpstream({ auth: { type: "token", server: tokenServer }, extraConfig: redirectBlobsTo(tokenBlobHost.url) }),
    ]);
    basicBlobHost.root = join(basicRegistry.dir, "data");
    tokenBlobHost.root = join(tokenRegistry.dir, "data");

    await Promise.all([
      ...SAMPLE_TAGS.map((tag) => plain.push(samples.layout.reference(tag), `${repoOf(tag)}:v1`)),
      plain.push(extra.reference("herd"), `${repoOf("herd")}:v1`),
      plain.push(extra.reference("cold"), `${repoOf("cold")}:v1`),
      ...[basicRegistry, tokenRegistry].flatMap((registry) =>
        (["oci-image", "docker-list"] as const).map((tag) => registry.push(samples.layout.reference(tag), `${repoOf(tag)}:v1`)),
      ),
    ]);
    await plain.push(samples.layout.reference("oci-image"), `${repoOf("repush")}:v1`);
    t.diagnostic(`upstreams ready after ${((performance.now() - started) / 1000).toFixed(1)} s`);

    const vault = await startVault({
      extraYaml: ["backends:", `  - {type: oci, name: hub, config: {prefix: /hub/, registry_url: "${plain.url}", ttl: ${TTL_MS}ms, timeout: 10}}`].join("\n"),
    });
    const vaultHost = vault.url.replace(/^http:\/\//, "");
    await mkdir(join(dir, "pulls"));
    const viaVault = (path: string): string => `docker://${vaultHost}/${path}`;
    let pulls = 0;
    const target = (format: ImageFormat): PullTarget => pullTarget(dir, `pull-${++pulls}`, format);
    const copy = async (reference: string, into: PullTarget, options: CopyOptions = {}): Promise<void> => {
      await skopeoCopy(reference, into.reference, options);
    };
    const getManifest = async (base: string, path: string, init: RequestInit = {}): Promise<{ response: Response; body: Buffer }> => {
      const response = await fetch(`${base}${path}`, { ...init, headers: { accept: MANIFEST_ACCEPT, ...(init.headers as Record<string, string> | undefined) } });
      return { response, body: Buffer.from(await response.arrayBuffer()) };
    };

    await t.test("single-platform OCI and Docker schema 2 images: inspect and copy keep every digest", async () => {
      const root = await fetch(`${vault.url}/v2/`);
      await root.arrayBuffer();
      assert.equal(root.status, 200);
      assert.equal(root.headers.get("docker-distribution-api-version"), "registry/2.0");

      for (const tag of ["oci-image", "docker-image"] as const) {
        const entry = sample(tag);
        assert.ok(entry.kind === "image");
        const reference = viaVault(`${repoOf(tag)}:v1`);
        const inspected = await skopeoInspect(reference);
        assert.equal(inspected.Digest, entry.manifest.digest, `${tag}: skopeo inspect names the upstream's digest`);
        assert.deepEqual(inspected.Layers, entry.layers.map((layer) => layer.digest), `${tag}: layers`);
        assert.equal(inspected.Architecture, "amd64");
        assert.equal(inspected.Labels?.["org.artifact-vault.test.seed"], `sample/${tag}`);
        assert.deepEqual(await skopeoInspectRaw(reference), entry.manifestBytes, `${tag}: the manifest byte for byte`);
        const config = await skopeo(["inspect", "--config", "--raw", "--retry-times=0", "--tls-verify=false", "--no-creds", reference]);
        assert.equal(sha256Digest(Buffer.from(config.stdout, "utf8")), entry.config.digest, `${tag}: the config blob`);

        const into = target(entry.format);
        await copy(reference, into);
        into.check(expectEntry(entry), `${tag} copied through the vault`);

        // What skopeo read, straight from the vault's API: headers and cache state.
        const byTag = await getManifest(vault.url, `/v2/${repoOf(tag)}/manifests/v1`);
        assert.equal(byTag.response.status, 200);
        assert.equal(byTag.response.headers.get("docker-content-digest"), entry.manifest.digest);
        assert.equal(byTag.response.headers.get("content-type"), entry.manifest.mediaType);
        assert.ok(["HIT", "REVALIDATED"].includes(byTag.response.headers.get("x-cache") ?? ""), `${tag} by tag: X-Cache ${byTag.response.headers.get("x-cache")}`);
        assert.equal(sha256Digest(byTag.body), entry.manifest.digest);
        // skopeo read this manifest by tag only; by digest the vault finds the same bytes under the
        // tag and serves them from there, without asking the registry.
        for (const expected of [["HIT"], ["HIT"]]) {
          const byDigest = await getManifest(vault.url, `/v2/${repoOf(tag)}/manifests/${entry.manifest.digest}`);
          assert.equal(byDigest.response.status, 200);
          assert.ok(expected.includes(byDigest.response.headers.get("x-cache") ?? ""), `${tag} by digest: X-Cache ${byDigest.response.headers.get("x-cache")}`);
          assert.equal(byDigest.response.headers.get("docker-content-digest"), entry.manifest.digest);
          assert.deepEqual(byDigest.body, entry.manifestBytes);
        }
        for (const digest of entry.blobs) {
          const blob = await fetch(`${vault.url}/v2/${repoOf(tag)}/blobs/${digest}`);
          const body = Buffer.from(await blob.arrayBuffer());
          assert.equal(blob.status, 200);
          assert.equal(blob.headers.get("x-cache"), "HIT", `${tag} blob ${digest}`);
          assert.equal(blob.headers.get("docker-content-digest"), digest);
          assert.equal(sha256Digest(body), digest);
        }
        // Another client's Accept is another cache entry, but the same manifest.
        const narrow = await getManifest(vault.url, `/v2/${repoOf(tag)}/manifests/v1`, { headers: { accept: entry.manifest.mediaType } });
        assert.equal(narrow.response.status, 200);
        assert.equal(narrow.response.headers.get("docker-content-digest"), entry.manifest.digest, `${tag} by tag, Accept: ${entry.manifest.mediaType}`);
        // The backend's own prefix serves the same manifest.
        const prefixed = await getManifest(vault.url, `/hub/${repoOf(tag)}/manifests/v1`);
        assert.equal(prefixed.response.status, 200, `/hub/${repoOf(tag)}/manifests/v1`);
        assert.equal(sha256Digest(prefixed.body), entry.manifest.digest);
      }

      const tags = await fetch(`${vault.url}/v2/${repoOf("oci-image")}/tags/list`);
      assert.equal(tags.status, 200);
      assert.deepEqual(await tags.json(), { name: repoOf("oci-image"), tags: ["v1"] });
      const unknown = await getManifest(vault.url, `/v2/${repoOf("oci-image")}/manifests/no-such-tag`);
      assert.equal(unknown.response.status, 404);
      const errors = JSON.parse(unknown.body.toString("utf8")) as { errors?: Array<{ code?: string }> };
      assert.equal(errors.errors?.[0]?.code, "MANIFEST_UNKNOWN", unknown.body.toString("utf8"));
      await rejects(skopeoInspect(viaVault(`${repoOf("oci-image")}:no-such-tag`)), /manifest unknown/i, "skopeo on an unknown tag");
    });

    await t.test("OCI index and Docker manifest list: copy --all keeps the index digest, --override-arch arm64 picks arm64", async () => {
      for (const tag of ["oci-index", "docker-list"] as const) {
        const entry = sample(tag);
        assert.ok(entry.kind === "index");
        const reference = viaVault(`${repoOf(tag)}:v1`);
        const inspected = await skopeoInspect(reference);
        assert.equal(inspected.Digest, entry.index.digest, `${tag}: skopeo inspect names the index digest`);
        assert.deepEqual(await skopeoInspectRaw(reference), entry.indexBytes, `${tag}: the index byte for byte`);

        const all = target(entry.format);
        await copy(reference, all, { all: true });
        all.check(expectEntry(entry), `${tag} copied with --all`);

        const arm64 = entry.images.find((image) => image.platform.architecture === "arm64");
        assert.ok(arm64 !== undefined);
        const one = target(entry.format);
        await copy(reference, one, { all: false, extraArgs: ["--override-arch", "arm64"] });
        one.check(expectImage(arm64), `${tag} copied with --override-arch arm64`);
        const inspectedArm = await skopeo(["--override-arch", "arm64", "inspect", "--retry-times=0", "--tls-verify=false", "--no-creds", reference]);
        const arm = JSON.parse(inspectedArm.stdout) as { Architecture: string; Layers: string[] };
        assert.equal(arm.Architecture, "arm64");
        assert.deepEqual(arm.Layers, arm64.layers.map((layer) => layer.digest));
      }
    });

    await t.test("a second pull is served by the vault: no upstream blob request; after the TTL a HEAD revalidates the tag", async (st) => {
      const cursor = await LogCursor.at(plain);
      for (const tag of SAMPLE_TAGS) {
        const entry = sample(tag);
        const into = target(entry.format);
        await copy(viaVault(`${repoOf(tag)}:v1`), into, { all: true });
        into.check(expectEntry(entry), `${tag}, second pull`);
      }
      const second = await cursor.fresh();
      assert.deepEqual(describe(blobRequests(second)), [], "no blob request reached the upstream on the second pull");
      st.diagnostic(`upstream requests during the second pull: ${JSON.stringify(describe(second))}`);

      await sleep(TTL_MS + 300);
      await cursor.fresh();
      const path = `/v2/${repoOf("oci-image")}/manifests/v1`;
      const stale = await getManifest(vault.url, path);
      assert.equal(stale.response.status, 200);
      assert.equal(stale.response.headers.get("x-cache"), "REVALIDATED", "an unchanged tag after the TTL");
      assert.equal(stale.response.headers.get("docker-content-digest"), topDigest(sample("oci-image")));
      const revalidation = (await cursor.fresh()).filter((entry) => entry.path === path);
      assert.deepEqual(describe(revalidation), [`HEAD ${path} 200`], "revalidated with one HEAD, no GET (the digest did not change)");
      const again = await getManifest(vault.url, path);
      assert.equal(again.response.headers.get("x-cache"), "HIT", "fresh again after the revalidation");
    });

    await t.test("a re-pushed tag: the old digest while fresh, the new one after the TTL", async (st) => {
      const reference = viaVault(`${repoOf("repush")}:v1`);
      const path = `/v2/${repoOf("repush")}/manifests/v1`;
      const before = performance.now();
      assert.equal((await skopeoInspect(reference)).Digest, topDigest(sample("oci-image")), "the first image");
      const cached = performance.now();
      await plain.push(extra.reference("repushed"), `${repoOf("repush")}:v1`);
      const direct = await getManifest(plain.url, path);
      assert.equal(direct.response.headers.get("docker-content-digest"), repushed.manifest.digest, "the upstream has the new image");

      // The vault stored the tag after `before`, so it is fresh until at least before + TTL.
      const check = await getManifest(vault.url, path);
      if (performance.now() < before + TTL_MS - 100) {
        assert.equal(check.response.headers.get("x-cache"), "HIT");
        assert.equal(check.response.headers.get("docker-content-digest"), topDigest(sample("oci-image")), "within the TTL: the cached digest");
      } else {
        st.diagnostic(`the re-push took too long (${Math.round(performance.now() - before)} ms) to check the cached digest within the ${TTL_MS} ms TTL`);
      }

      const cursor = await LogCursor.at(plain);
      await sleep(Math.max(0, cached + TTL_MS + 300 - performance.now()));
      const inspected = await skopeoInspect(reference);
      assert.equal(inspected.Digest, repushed.manifest.digest, "after the TTL: the new digest");
      const into = target("oci");
      await copy(reference, into);
      into.check(expectImage(repushed), "the re-pushed image copied through the vault");
      const upstream = (await cursor.fresh()).filter((entry) => entry.path.startsWith(`/v2/${repoOf("repush")}/manifests/`));
      assert.ok(upstream.some((entry) => entry.method === "HEAD" && entry.path === path), `revalidated with a HEAD: ${JSON.stringify(describe(upstream))}`);
      assert.ok(
        upstream.some((entry) => entry.method === "GET" && (entry.path === path || entry.path.endsWith(repushed.manifest.digest))),
        `the changed manifest was fetched: ${JSON.stringify(describe(upstream))}`,
      );
    });

    await t.test(`${HERD_CLIENTS} concurrent skopeo copies of a cold image: each blob fetched upstream exactly once`, async (st) => {
      const reference = viaVault(`${repoOf("herd")}:v1`);
      const cursor = await LogCursor.at(plain);
      const targets = Array.from({ length: HERD_CLIENTS }, () => target("oci"));
      const herdStarted = performance.now();
      await Promise.all(targets.map((into) => copy(reference, into)));
      st.diagnostic(`${HERD_CLIENTS} copies in ${Math.round(performance.now() - herdStarted)} ms`);
      for (const [i, into] of targets.entries()) into.check(expectImage(herdImage), `herd copy ${i + 1}`);
      const upstream = await cursor.fresh();
      for (const digest of herdImage.blobs) {
        const gets = upstream.filter((entry) => entry.method === "GET" && entry.path === `/v2/${repoOf("herd")}/blobs/${digest}`);
        assert.equal(gets.length, 1, `GETs of ${digest} upstream: ${JSON.stringify(describe(gets))}`);
      }
      const manifests = upstream.filter((entry) => entry.path.includes("/manifests/"));
      st.diagnostic(`upstream manifest requests for the herd: ${JSON.stringify(describe(manifests))}`);
    });

    await t.test("htpasswd and token-auth upstreams with blob redirects: configured credentials work, none reach the redirect host", async () => {
      const basicCredentials = basicRegistry.credentials;
      assert.ok(basicCredentials !== undefined);
      const pushed = (["oci-image", "docker-list"] as const).map((tag) => [tag, sample(tag)] as const);
      const allBlobs = [...new Set(pushed.flatMap(([, entry]) => entry.blobs))];

      // The set-up does what it should: blob GETs are redirected to the blob hosts.
      const someBlob = allBlobs[0] ?? "";
      const basicHeader = `Basic ${Buffer.from(`${basicCredentials.username}:${basicCredentials.password}`).toString("base64")}`;
      const access = [{ type: "repository", name: repoOf("oci-image"), actions: ["pull"] }];
      for (const [registry, authorization, host] of [
        [basicRegistry, basicHeader, basicBlobHost],
        [tokenRegistry, `Bearer ${tokenServer.mint({ access })}`, tokenBlobHost],
      ] as const) {
        const layer = sample("oci-image").blobs[1] ?? someBlob;
        const response = await fetch(`${registry.url}/v2/${repoOf("oci-image")}/blobs/${layer}`, { headers: { authorization }, redirect: "manual" });
        await response.arrayBuffer();
        assert.equal(response.status, 307, `${registry.url} redirects blob GETs`);
        assert.ok(response.headers.get("location")?.startsWith(`${host.url}/docker/registry/v2/blobs/`), response.headers.get("location") ?? "");
      }
      basicBlobHost.requests.length = 0;
      tokenBlobHost.requests.length = 0;
      const tokensBefore = tokenServer.requests().length;

      const secured = await startVault({
        extraYaml: [
          "backends:",
          `  - {type: oci, name: basic, config: {prefix: /basic/, registry_url: "${basicRegistry.url}", username: ${basicCredentials.username}, password: "${basicCredentials.password}", timeout: 10}}`,
          `  - {type: oci, name: token, config: {prefix: /token/, registry_url: "${tokenRegistry.url}", auth_url: "${tokenServer.url}", username: ${tokenServer.credentials.username}, password: "${tokenServer.credentials.password}", timeout: 10}}`,
        ].join("\n"),
      });
      const securedHost = secured.url.replace(/^http:\/\//, "");
      for (const backend of ["basic", "token"] as const) {
        for (const [tag, entry] of pushed) {
          // With two OCI backends, the first path segment names the backend.
          const reference = `docker://${securedHost}/${backend}/${repoOf(tag)}:v1`;
          assert.equal((await skopeoInspect(reference)).Digest, topDigest(entry), `${backend}: ${tag} inspect`);
          const into = target(entry.format);
          await copy(reference, into, { all: true });
          into.check(expectEntry(entry), `${backend}: ${tag} copied through the vault`);
        }
      }

      for (const [name, host, registry, secret] of [
        ["basic", basicBlobHost, basicRegistry, basicCredentials.password],
        ["token", tokenBlobHost, tokenRegistry, tokenServer.credentials.password],
      ] as const) {
        // Every blob went through the redirect: 307 from the registry, the bytes from the host.
        const gets = blobRequests(await registry.settledRequests({ method: "GET" }));
        for (const digest of allBlobs) {
          assert.ok(gets.some((entry) => entry.path.endsWith(`/blobs/${digest}`) && entry.status === 307), `${name}: the registry redirected the GET of ${digest}`);
          assert.ok(host.requests.some((request) => request.method === "GET" && request.path.endsWith(`/${hexOf(digest)}/data`)), `${name}: the blob host served ${digest}`);
        }
        const leaked = host.requests.filter((request) => request.headers.authorization !== undefined || JSON.stringify(request.headers).includes(secret));
        assert.deepEqual(leaked, [], `${name}: no credential or token reached the redirect host`);
        // The vault followed the redirects itself (skopeo never saw one) and cached what it got.
        const agents = [...new Set(host.requests.map((request) => request.headers["user-agent"] ?? ""))];
        assert.ok(agents.length > 0 && agents.every((agent) => agent.startsWith("artifact-vault/")), `${name}: the blob host's clients: ${JSON.stringify(agents)}`);
        for (const [tag, entry] of pushed) {
          for (const digest of entry.blobs) {
            const blob = await fetch(`${secured.url}/v2/${name}/${repoOf(tag)}/blobs/${digest}`);
            await blob.arrayBuffer();
            assert.equal(blob.headers.get("x-cache"), "HIT", `${name}: blob ${digest} of ${tag} is cached`);
          }
        }
      }

      // The vault logged in to the token service as the configured user, per repository.
      const tokenRequests = tokenServer.requests().slice(tokensBefore);
      assert.ok(tokenRequests.length > 0, "the vault asked the token server");
      assert.deepEqual(tokenRequests.filter((request) => request.credentials === "invalid"), [], "no wrong credentials");
      for (const tag of ["oci-image", "docker-list"]) {
        assert.ok(
          tokenRequests.some((request) => request.credentials === "valid" && request.username === "puller" && request.granted.some((grant) => grant.name === repoOf(tag) && grant.actions.includes("pull"))),
          `a pull token for ${repoOf(tag)}: ${JSON.stringify(tokenRequests)}`,
        );
      }
    });

    let mirror: TestVault | undefined;
    const mirrorCredentials = (): Credentials => ({ username: "anything", password: mirror?.tokens["ci"] ?? "" });
    await t.test("auth.proxy: token — skopeo without credentials is refused, with the token as password it pulls", async () => {
      mirror = await startVault({
        proxyAuth: "token",
        tokens: [{ name: "ci", scopes: ["read"] }],
        extraYaml: [
          "backends:",
          `  - {type: oci, name: mirror, config: {prefix: /mirror/, repositories: [{registry_url: "${empty.url}"}, {registry_url: "${plain.url}"}], timeout: 10}}`,
        ].join("\n"),
      });
      const challenge = await fetch(`${mirror.url}/v2/`);
      await challenge.arrayBuffer();
      assert.equal(challenge.status, 401);
      assert.equal(challenge.headers.get("www-authenticate"), 'Basic realm="artifact-vault"');
      const host = mirror.url.replace(/^http:\/\//, "");
      const reference = `docker://${host}/${repoOf("oci-image")}:v1`;
      await rejects(skopeoInspect(reference), /unauthorized|authentication required/i, "skopeo without credentials");
      await rejects(skopeoInspect(reference, { credentials: { username: "anything", password: "not-a-token" } }), /unauthorized|authentication required/i, "skopeo with a wrong token");
      assert.equal((await skopeoInspect(reference, { credentials: mirrorCredentials() })).Digest, topDigest(sample("oci-image")));
    });

    await t.test("several upstreams in order: the first lacks the image, the second serves it; the first stopped, still served", async () => {
      assert.ok(mirror !== undefined, "the auth.proxy subtest started the mirror vault");
      const host = mirror.url.replace(/^http:\/\//, "");
      const credentials = mirrorCredentials();
      const emptyCursor = await LogCursor.at(empty);
      for (const tag of ["oci-image", "docker-list"] as const) {
        const entry = sample(tag);
        const into = target(entry.format);
        await copy(`docker://${host}/${repoOf(tag)}:v1`, into, { sourceCredentials: credentials });
        into.check(expectEntry(entry), `${tag} through the mirror`);
      }
      const asked = await emptyCursor.fresh();
      assert.ok(
        asked.some((entry) => entry.path === `/v2/${repoOf("docker-list")}/manifests/v1` && entry.status === 404),
        `the first upstream was asked first and said 404: ${JSON.stringify(describe(asked))}`,
      );

      await empty.stop();
      // A cached image, and one no vault has seen: the outage of the first moves on to the second.
      const cached = target("oci");
      await copy(`docker://${host}/${repoOf("oci-image")}:v1`, cached, { sourceCredentials: credentials });
      cached.check(expectEntry(sample("oci-image")), "a cached image with the first upstream down");
      const cold = target("oci");
      await copy(`docker://${host}/${repoOf("cold")}:v1`, cold, { sourceCredentials: credentials });
      cold.check(expectImage(coldImage), "a cold image with the first upstream down");
    });

    await t.test("the upstream stopped: cached images still pull (the tag served STALE)", async () => {
      await plain.stop();
      await sleep(TTL_MS + 300);
      for (const tag of ["oci-image", "docker-list"] as const) {
        const entry = sample(tag);
        const into = target(entry.format);
        await copy(viaVault(`${repoOf(tag)}:v1`), into, { all: true });
        into.check(expectEntry(entry), `${tag} with the upstream down`);
      }
      const byTag = await getManifest(vault.url, `/v2/${repoOf("oci-index")}/manifests/v1`);
      assert.equal(byTag.response.status, 200);
      assert.equal(byTag.response.headers.get("x-cache"), "STALE");
      assert.equal(byTag.response.headers.get("docker-content-digest"), topDigest(sample("oci-index")));
      const layer = sample("oci-image").blobs[1] ?? "";
      const blob = await fetch(`${vault.url}/v2/${repoOf("oci-image")}/blobs/${layer}`);
      assert.equal(sha256Digest(Buffer.from(await blob.arrayBuffer())), layer);
      assert.equal(blob.headers.get("x-cache"), "HIT");
    });
  } finally {
    for (const stop of stops.reverse()) {
      try {
        await stop();
      } catch (error) {
        t.diagnostic(`cleanup: ${String(error)}`);
      }
    }
    await rm(dir, { recursive: true, force: true });
    t.diagnostic(`oci-skopeo end to end: ${((performance.now() - started) / 1000).toFixed(1)} s`);
  }
});
