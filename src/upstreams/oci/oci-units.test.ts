import { test } from "node:test";
import assert from "node:assert/strict";
import { pino } from "pino";
import { parseChallenge } from "./bearer-challenge.js";
import { ociBackendConfigSchema } from "./oci-config.js";
import { parseRegistryPath } from "./oci-request.js";
import { RegistryUpstream } from "./registry-upstream.js";

const SHA = "a".repeat(64);

test("registry paths: names with several components, tags, digests, tag lists", () => {
  assert.deepEqual(parseRegistryPath("library/debian/manifests/bookworm"), { kind: "manifest", name: "library/debian", reference: "bookworm", digest: undefined });
  assert.deepEqual(parseRegistryPath(`team/app/api/manifests/sha256:${SHA}`), { kind: "manifest", name: "team/app/api", reference: `sha256:${SHA}`, digest: { algorithm: "sha256", hex: SHA } });
  assert.deepEqual(parseRegistryPath(`a/blobs/sha256:${SHA}`), { kind: "blob", name: "a", digest: { algorithm: "sha256", hex: SHA } });
  assert.deepEqual(parseRegistryPath("a/b/tags/list"), { kind: "tags", name: "a/b" });
  for (const [path, code] of [
    ["UPPER/manifests/x", "NAME_INVALID"],
    ["../x/manifests/x", "NAME_INVALID"],
    ["a//b/manifests/x", "NAME_INVALID"],
    ["a/manifests/-bad", "TAG_INVALID"],
    ["a/blobs/sha256:abc", "DIGEST_INVALID"],
    [`a/blobs/md5:${"a".repeat(32)}`, "DIGEST_INVALID"],
  ] as const) {
    assert.throws(() => parseRegistryPath(path), (error: { code?: string }) => error.code === code, path);
  }
  assert.throws(() => parseRegistryPath("a/b"), /serves/);
});

test("WWW-Authenticate: Docker Hub's Bearer challenge and quoted strings", () => {
  assert.deepEqual(parseChallenge('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/debian:pull"'), {
    scheme: "bearer",
    params: { realm: "https://auth.docker.io/token", service: "registry.docker.io", scope: "repository:library/debian:pull" },
  });
  assert.deepEqual(parseChallenge('Basic realm="a \\"quoted\\" realm", charset=UTF-8'), { scheme: "basic", params: { realm: 'a "quoted" realm', charset: "UTF-8" } });
  assert.equal(parseChallenge(undefined), undefined);
});

test("Docker Hub's implicit library/ namespace, only on Docker Hub", () => {
  const logger = pino({ level: "silent" });
  const hub = new RegistryUpstream({ registry_url: "https://registry-1.docker.io", auth_url: "https://auth.docker.io", username: undefined, password: undefined }, { timeoutSeconds: 5, retries: 1 }, logger);
  const other = new RegistryUpstream({ registry_url: "https://ghcr.io", auth_url: undefined, username: undefined, password: undefined }, { timeoutSeconds: 5, retries: 1 }, logger);
  assert.equal(hub.upstreamName("debian"), "library/debian");
  assert.equal(hub.upstreamName("bitnami/redis"), "bitnami/redis");
  assert.equal(other.upstreamName("debian"), "debian");
  void hub.close();
  void other.close();
});

test("config: registry_url or repositories, not both, not neither", () => {
  assert.equal(ociBackendConfigSchema.safeParse({ prefix: "/d/", registry_url: "https://r.example", repositories: [{ registry_url: "https://s.example" }] }).success, false);
  assert.equal(ociBackendConfigSchema.safeParse({ prefix: "/d/" }).success, false);
  const parsed = ociBackendConfigSchema.parse({ prefix: "/d/", repositories: [{ registry_url: "https://a.example" }, { registry_url: "https://b.example", username: "u", password: "p" }] });
  assert.deepEqual(parsed.upstreams.map((upstream) => upstream.registry_url), ["https://a.example", "https://b.example"]);
});
