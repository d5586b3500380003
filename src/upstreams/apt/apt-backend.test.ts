import { test } from "node:test";
import assert from "node:assert/strict";
import { pino } from "pino";
import type { ArtifactRef } from "../../core/cache/artifact-ref.js";
import type { ArtifactSource } from "../../core/cache/artifact-source.js";
import { isVaultError } from "../../core/errors.js";
import { isRedirect, type Backend, type BackendContext } from "../backend.js";
import { createAptBackend } from "./apt-backend.js";
import { aptBackendType } from "./apt-type.js";
import { aptBackendConfigSchema } from "./apt-config.js";

const NOTHING_CACHED: ArtifactSource = {
  get: () => Promise.reject(new Error("not in these tests")),
  peek: async () => undefined,
};
const CONTEXT: BackendContext = { logger: pino({ level: "silent" }), metadataTtlMs: 600_000, artifacts: NOTHING_CACHED };

async function backend(config: Record<string, unknown>): Promise<Backend> {
  return createAptBackend("debian", aptBackendConfigSchema.parse({ prefix: "/debian/", mirror_url: "http://deb.debian.org/debian", ...config }), CONTEXT);
}

function resolve(made: Backend, path: string): ArtifactRef {
  const resolution = made.resolve({ method: "GET", path, query: "", headers: {}, baseUrl: "http://vault/debian" });
  assert.ok(!isRedirect(resolution));
  return resolution;
}

test("resolve: cache keys are the decoded path below the backend's name; the upstream gets the path as sent", async () => {
  const made = await backend({});
  try {
    const deb = resolve(made, "pool/main/g/gcc-12/libstdc%2b%2b6_12.2.0-14_amd64.deb");
    assert.equal(deb.cacheKey, "debian/pool/main/g/gcc-12/libstdc++6_12.2.0-14_amd64.deb");
    assert.equal(deb.upstreamPath, "pool/main/g/gcc-12/libstdc%2b%2b6_12.2.0-14_amd64.deb");
    assert.deepEqual(deb.freshness, { kind: "immutable" });
    assert.equal(deb.digest, undefined, "learnt while fetching, from the cached indexes");
    assert.equal(resolve(made, "pool/main/g/gcc-12/libstdc++6_12.2.0-14_amd64.deb").cacheKey, deb.cacheKey);

    const hex = "ab".repeat(32);
    const byHash = resolve(made, `dists/bookworm/main/binary-amd64/by-hash/SHA256/${hex}`);
    assert.deepEqual(byHash.freshness, { kind: "immutable" });
    assert.deepEqual(byHash.digest, { algorithm: "sha256", hex });

    for (const path of ["dists/bookworm/InRelease", "dists/bookworm/main/binary-amd64/Packages.xz", "README"]) {
      assert.deepEqual(resolve(made, path).freshness, { kind: "mutable", ttlMs: 600_000 }, path);
    }
  } finally {
    await made.close();
  }
  const shorter = await backend({ ttl: "2s" });
  try {
    assert.deepEqual(resolve(shorter, "dists/bookworm/InRelease").freshness, { kind: "mutable", ttlMs: 2000 });
  } finally {
    await shorter.close();
  }
});

test("resolve refuses directory listings (not found) and paths that could leave the mirror (bad request)", async () => {
  const made = await backend({});
  try {
    for (const path of ["", "dists/bookworm/", "pool/"]) assert.throws(() => resolve(made, path), (error) => isVaultError(error, "not_found"), JSON.stringify(path));
    for (const path of ["dists/../../etc/passwd", "pool/%2e%2e/x.deb", "pool/a%2fb.deb", "/etc/passwd", "http://evil.example/x"]) {
      assert.throws(() => resolve(made, path), (error) => isVaultError(error, "bad_request"), path);
    }
  } finally {
    await made.close();
  }
});

test("proxy mode mounts the mirror's URL (and an https mirror's http twin, which apt sends through a proxy); off, nothing", async () => {
  const cases: Array<[Record<string, unknown>, string[] | undefined]> = [
    [{}, ["http://deb.debian.org/debian"]],
    [{ mirror_url: "https://deb.debian.org/debian/" }, ["https://deb.debian.org/debian/", "http://deb.debian.org/debian/"]],
    [{ mirror_url: "https://mirror.internal:8443/debian" }, ["https://mirror.internal:8443/debian"]],
    [{ proxy_mode: false }, undefined],
  ];
  for (const [config, expected] of cases) {
    const made = await backend(config);
    try {
      assert.deepEqual(made.mounts?.forwardProxy?.map((url) => url.href), expected, JSON.stringify(config));
    } finally {
      await made.close();
    }
  }
});

test("type apt: its options with their defaults", () => {
  assert.equal(aptBackendType.type, "apt");
  const configured = aptBackendType.configure({ prefix: "/debian/", mirror_url: "http://deb.debian.org/debian" }, { reportInput: false });
  assert.ok(configured.success);
  assert.deepEqual(configured.value.options, { prefix: "/debian/", mirror_url: "http://deb.debian.org/debian", timeout: 30, retries: 3, proxy_mode: true });
  assert.equal(aptBackendType.configure({ prefix: "/debian/", mirror_url: "ftp://x" }, { reportInput: false }).success, false);
});
