/**
 * The OCI backend over real HTTP against scripted registries (node:http), for what is hard to
 * provoke with a real one: the HEAD-then-GET tag revalidation, a 429, Bearer challenges with a
 * token service on another host (and one the config does not name), several upstreams, and the
 * registry API's errors. The end-to-end test with skopeo and docker-registry is
 * tests/e2e/oci-skopeo.test.ts.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { rawRequest } from "../support/http.js";
import { GENERIC_UPSTREAM_FAILURE, loggedUpstreamReason, startTestVault, type TestVault } from "../support/test-vault.js";

const digestOf = (bytes: Buffer): string => `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
const OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";

interface Seen {
  readonly method: string;
  readonly path: string;
  readonly headers: IncomingMessage["headers"];
}

/** A scripted HTTP server: `handler` answers, every request is recorded. */
class Scripted {
  readonly seen: Seen[] = [];
  url = "";
  readonly #server: Server;

  constructor(handler: (request: IncomingMessage, response: ServerResponse) => void) {
    this.#server = createServer((request, response) => {
      this.seen.push({ method: request.method ?? "GET", path: request.url ?? "/", headers: request.headers });
      handler(request, response);
    });
  }

  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.#server.listen(0, "127.0.0.1", resolve));
    this.url = `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
    return this;
  }

  stop(): Promise<void> {
    this.#server.closeAllConnections();
    return new Promise((resolve) => this.#server.close(() => resolve()));
  }

  count(method: string, path: string | RegExp): number {
    return this.seen.filter((entry) => entry.method === method && (typeof path === "string" ? entry.path === path : path.test(entry.path))).length;
  }
}

/** A registry holding `manifests` (by tag and digest) and `blobs`, optionally behind a Bearer challenge. */
function registry(state: { manifests: Map<string, Buffer>; blobs: Map<string, Buffer>; bearer?: { realm: string; token: string }; headStatus?: number }) {
  return (request: IncomingMessage, response: ServerResponse): void => {
    const url = new URL(request.url ?? "/", "http://x");
    if (state.bearer !== undefined && request.headers.authorization !== `Bearer ${state.bearer.token}`) {
      const scope = /^\/v2\/(.+)\/(manifests|blobs|tags)\//.exec(url.pathname)?.[1];
      response
        .writeHead(401, { "www-authenticate": `Bearer realm="${state.bearer.realm}",service="test-registry"${scope === undefined ? "" : `,scope="repository:${scope}:pull"`}`, "content-type": "application/json" })
        .end('{"errors":[{"code":"UNAUTHORIZED"}]}');
      return;
    }
    const manifest = /^\/v2\/(.+)\/manifests\/([^/]+)$/.exec(url.pathname);
    if (manifest !== null) {
      if (request.method === "HEAD" && state.headStatus !== undefined) {
        response.writeHead(state.headStatus, { "retry-after": "7" }).end();
        return;
      }
      const body =
        state.manifests.get(`${manifest[1]}:${manifest[2]}`) ??
        [...state.manifests.entries()].find(([key, bytes]) => key.startsWith(`${manifest[1]}:`) && digestOf(bytes) === manifest[2])?.[1];
      if (body === undefined) {
        response.writeHead(404, { "content-type": "application/json" }).end('{"errors":[{"code":"MANIFEST_UNKNOWN"}]}');
        return;
      }
      response.writeHead(200, { "content-type": OCI_MANIFEST, "docker-content-digest": digestOf(body), "content-length": body.length });
      response.end(request.method === "HEAD" ? undefined : body);
      return;
    }
    const blob = /^\/v2\/(.+)\/blobs\/([^/]+)$/.exec(url.pathname);
    const bytes = blob === null ? undefined : state.blobs.get(blob[2] ?? "");
    if (bytes === undefined) {
      response.writeHead(404, { "content-type": "application/json" }).end('{"errors":[{"code":"BLOB_UNKNOWN"}]}');
      return;
    }
    response.writeHead(200, { "content-type": "application/octet-stream", "content-length": bytes.length }).end(bytes);
  };
}

describe("oci backend", () => {
  const manifestV1 = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, layers: [], v: 1 }));
  const manifestV2 = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, layers: [], v: 2 }));
  const layer = Buffer.from("layer bytes");
  const tokenRequests: Seen[] = [];
  let plain: Scripted;
  let plainState: Parameters<typeof registry>[0];
  let secured: Scripted;
  let tokens: Scripted;
  let mirror: Scripted;
  let vault: TestVault;

  before(async () => {
    plainState = { manifests: new Map([["team/app:latest", manifestV1]]), blobs: new Map([[digestOf(layer), layer]]) };
    plain = await new Scripted(registry(plainState)).start();
    tokens = await new Scripted((request, response) => {
      tokenRequests.push({ method: request.method ?? "GET", path: request.url ?? "/", headers: request.headers });
      const ok = request.headers.authorization === `Basic ${Buffer.from("robot:pw").toString("base64")}`;
      response.writeHead(ok ? 200 : 401, { "content-type": "application/json" }).end(ok ? JSON.stringify({ token: "t0k3n", expires_in: 300 }) : "{}");
    }).start();
    secured = await new Scripted(registry({ manifests: new Map([["private/app:1.0", manifestV1]]), blobs: new Map(), bearer: { realm: `${tokens.url}/token`, token: "t0k3n" } })).start();
    // The second upstream of a pair: has what the first does not.
    mirror = await new Scripted(registry({ manifests: new Map([["only/mirror:1", manifestV2]]), blobs: new Map() })).start();
    vault = await startTestVault({
      extraYaml: [
        "cache: {negative_ttl: 0s}",
        "backends:",
        `  - {type: oci, name: hub, config: {prefix: /hub/, registry_url: "${plain.url}", ttl: 400ms}}`,
        `  - {type: dockerhub, name: private, config: {prefix: /private/, registry_url: "${secured.url}", auth_url: "${tokens.url}", username: robot, password: pw}}`,
        `  - {type: oci, name: pair, config: {prefix: /pair/, repositories: [{registry_url: "${plain.url}"}, {registry_url: "${mirror.url}"}]}}`,
      ].join("\n"),
    });
  });

  after(async () => {
    await vault.close();
    await Promise.all([plain.stop(), secured.stop(), tokens.stop(), mirror.stop()]);
  });

  it("GET /v2/ answers the API version check; several OCI backends are chosen by name under /v2/", async () => {
    const ping = await rawRequest(vault.url, "/v2/");
    assert.equal(ping.status, 200);
    assert.equal(ping.header("docker-distribution-api-version"), "registry/2.0");
    const manifest = await rawRequest(vault.url, "/v2/hub/team/app/manifests/latest", { headers: { accept: OCI_MANIFEST } });
    assert.equal(manifest.status, 200);
    assert.deepEqual(manifest.body, manifestV1);
    assert.equal(manifest.header("docker-content-digest"), digestOf(manifestV1));
    assert.equal(manifest.header("content-type"), OCI_MANIFEST);
    const unknown = await rawRequest(vault.url, "/v2/nope/team/app/manifests/latest");
    assert.equal(unknown.status, 404);
    assert.equal(unknown.json<{ errors: Array<{ code: string }> }>().errors[0]?.code, "NAME_UNKNOWN");
  });

  it("a tag is revalidated after its TTL with a HEAD; it is downloaded again only when the digest moved", async () => {
    const path = "/hub/team/app/manifests/revalidated";
    plainState.manifests.set("team/app:revalidated", manifestV1);
    const accept = `${OCI_MANIFEST}, application/vnd.oci.image.index.v1+json`;
    assert.equal((await rawRequest(vault.url, path, { headers: { accept } })).header("x-cache"), "MISS");
    assert.equal(plain.seen.at(-1)?.headers.accept, accept, "the client's Accept went upstream as sent");
    await sleep(500);
    const same = await rawRequest(vault.url, path, { headers: { accept } });
    assert.equal(same.header("x-cache"), "REVALIDATED");
    assert.equal(plain.count("HEAD", "/v2/team/app/manifests/revalidated"), 1);
    assert.equal(plain.count("GET", "/v2/team/app/manifests/revalidated"), 1, "no second GET for an unchanged tag");

    plainState.manifests.set("team/app:revalidated", manifestV2);
    await sleep(500);
    const moved = await rawRequest(vault.url, path, { headers: { accept } });
    assert.equal(moved.header("x-cache"), "MISS");
    assert.deepEqual(moved.body, manifestV2);
    assert.equal(moved.header("docker-content-digest"), digestOf(manifestV2));
    assert.equal(plain.count("GET", "/v2/team/app/manifests/revalidated"), 2);
  });

  it("a 429 on revalidation serves the cached tag, STALE", async () => {
    plainState.manifests.set("team/app:limited", manifestV1);
    await rawRequest(vault.url, "/hub/team/app/manifests/limited");
    await sleep(500);
    plainState.headStatus = 429;
    try {
      const stale = await rawRequest(vault.url, "/hub/team/app/manifests/limited");
      assert.equal(stale.status, 200);
      assert.equal(stale.header("x-cache"), "STALE");
      assert.deepEqual(stale.body, manifestV1);
    } finally {
      delete plainState.headStatus;
    }
  });

  it("upstream down: a tag cached for another Accept, or the same bytes asked by digest, are served STALE", async () => {
    const lonely = await new Scripted(registry({ manifests: new Map([["team/app:1.0", manifestV1]]), blobs: new Map() })).start();
    const other = await startTestVault({ extraYaml: `backends:\n  - {type: oci, name: hub, config: {prefix: /hub/, registry_url: "${lonely.url}", ttl: 1s, retries: 1}}` });
    try {
      const skopeoAccept = `${OCI_MANIFEST}, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.v2+json`;
      assert.equal((await rawRequest(other.url, "/v2/team/app/manifests/1.0", { headers: { accept: skopeoAccept } })).status, 200);
      // Asked again, the tag waits for its first download to be stored: only then can it stand in.
      assert.equal((await rawRequest(other.url, "/v2/team/app/manifests/1.0", { headers: { accept: skopeoAccept } })).header("x-cache"), "HIT");
      await lonely.stop();
      const dockerAccept = `application/vnd.docker.distribution.manifest.v2+json, ${OCI_MANIFEST}`;
      const standIn = await rawRequest(other.url, "/v2/team/app/manifests/1.0", { headers: { accept: dockerAccept } });
      assert.equal(standIn.status, 200);
      assert.equal(standIn.header("x-cache"), "STALE");
      assert.deepEqual(standIn.body, manifestV1);
      // The same bytes by digest: they are cached under the tag, so no upstream is needed at all.
      const byDigest = await rawRequest(other.url, `/v2/team/app/manifests/${digestOf(manifestV1)}`);
      assert.equal(byDigest.status, 200);
      assert.equal(byDigest.header("x-cache"), "HIT");
      assert.equal(byDigest.header("docker-content-digest"), digestOf(manifestV1));
      // A client that does not accept the cached document's type does not get it.
      const refused = await rawRequest(other.url, "/v2/team/app/manifests/1.0", { headers: { accept: "application/vnd.docker.distribution.manifest.v2+json" } });
      assert.equal(refused.status, 502);
      assert.equal(refused.header("docker-content-digest"), undefined, "no digest header on an error");
    } finally {
      await other.close();
    }
  });

  it("blobs are verified and served with their digest; a wrong digest is refused in OCI JSON", async () => {
    const blob = await rawRequest(vault.url, `/v2/hub/team/app/blobs/${digestOf(layer)}`);
    assert.deepEqual(blob.body, layer);
    assert.equal(blob.header("docker-content-digest"), digestOf(layer));
    plainState.blobs.set(digestOf(Buffer.from("other")), Buffer.from("not the other bytes"));
    await assert.rejects(rawRequest(vault.url, `/v2/hub/team/app/blobs/${digestOf(Buffer.from("other"))}`), "a digest mismatch aborts the response");
    const invalid = await rawRequest(vault.url, "/v2/hub/team/app/blobs/sha256:abc");
    assert.equal(invalid.status, 400);
    assert.equal(invalid.json<{ errors: Array<{ code: string }> }>().errors[0]?.code, "DIGEST_INVALID");
    const badName = await rawRequest(vault.url, "/v2/hub/Team/App/manifests/latest");
    assert.equal(badName.json<{ errors: Array<{ code: string }> }>().errors[0]?.code, "NAME_INVALID");
    const missing = await rawRequest(vault.url, "/v2/hub/team/app/blobs/sha256:" + "0".repeat(64));
    assert.equal(missing.status, 404);
    assert.equal(missing.json<{ errors: Array<{ code: string }> }>().errors[0]?.code, "BLOB_UNKNOWN");
    const push = await rawRequest(vault.url, "/v2/hub/team/app/blobs/uploads/", { method: "POST" });
    assert.equal(push.status, 405);
    assert.equal(push.json<{ errors: Array<{ code: string }> }>().errors[0]?.code, "UNSUPPORTED");
  });

  it("Bearer challenges: one token per repository scope from the configured auth_url, with the credentials, then cached", async () => {
    const results = await Promise.all(Array.from({ length: 5 }, () => rawRequest(vault.url, "/v2/private/private/app/manifests/1.0")));
    for (const result of results) assert.equal(result.status, 200, result.body.toString());
    assert.equal(tokenRequests.length, 1, "concurrent requests share one token fetch");
    const query = new URL(tokenRequests[0]?.path ?? "", "http://x").searchParams;
    assert.equal(query.get("scope"), "repository:private/app:pull");
    assert.equal(query.get("service"), "test-registry");
    assert.ok(secured.seen.some((entry) => entry.headers.authorization === "Bearer t0k3n"));
    const byDigest = await rawRequest(vault.url, `/v2/private/private/app/manifests/${digestOf(manifestV1)}`);
    assert.equal(byDigest.status, 200);
    assert.equal(tokenRequests.length, 1, "the cached token is reused");
  });

  it("a realm on a host the config does not name gets no request and no credentials", async () => {
    const elsewhere = await new Scripted((_request, response) => response.writeHead(200).end('{"token":"x"}')).start();
    const rogue = await new Scripted(registry({ manifests: new Map(), blobs: new Map(), bearer: { realm: `${elsewhere.url}/token`, token: "x" } })).start();
    const other = await startTestVault({ extraYaml: `backends:\n  - {type: oci, name: rogue, config: {prefix: /rogue/, registry_url: "${rogue.url}", username: u, password: p}}` });
    try {
      const response = await rawRequest(other.url, "/v2/team/app/manifests/latest");
      assert.equal(response.status, 502);
      assert.match(response.json<{ errors: Array<{ message: string }> }>().errors[0]?.message ?? "", GENERIC_UPSTREAM_FAILURE);
      assert.match(loggedUpstreamReason(other, response.header("x-request-id")), /neither the registry nor its auth_url/);
      assert.equal(elsewhere.seen.length, 0);
    } finally {
      await other.close();
      await Promise.all([elsewhere.stop(), rogue.stop()]);
    }
  });

  it("several upstreams: a 404 at the first moves on to the next; an outage too", async () => {
    const fromMirror = await rawRequest(vault.url, "/v2/pair/only/mirror/manifests/1");
    assert.equal(fromMirror.status, 200);
    assert.deepEqual(fromMirror.body, manifestV2);
    assert.equal(plain.count("GET", "/v2/only/mirror/manifests/1"), 1, "the first upstream was asked first");
    const bothMissing = await rawRequest(vault.url, "/v2/pair/only/mirror/manifests/2");
    assert.equal(bothMissing.status, 404);
    assert.equal(bothMissing.json<{ errors: Array<{ code: string }> }>().errors[0]?.code, "MANIFEST_UNKNOWN");

    // The first upstream is down (nothing listens on its port): the second serves.
    const gone = await new Scripted(() => undefined).start();
    await gone.stop();
    const other = await startTestVault({
      extraYaml: `backends:
  - {type: oci, name: pair, config: {prefix: /pair/, retries: 1, timeout: 2, repositories: [{registry_url: "${gone.url}"}, {registry_url: "${mirror.url}"}]}}`,
    });
    try {
      const served = await rawRequest(other.url, "/v2/only/mirror/manifests/1");
      assert.equal(served.status, 200);
      assert.deepEqual(served.body, manifestV2);
    } finally {
      await other.close();
    }
  });

  it("auth.proxy: token: /v2/ challenges with Basic; the token as the password opens it", async () => {
    const guarded = await startTestVault({
      proxyAuth: "token",
      tokens: [{ name: "puller", scopes: ["read"] }],
      extraYaml: `backends:\n  - {type: oci, name: hub, config: {prefix: /hub/, registry_url: "${plain.url}"}}`,
    });
    try {
      const anonymous = await rawRequest(guarded.url, "/v2/");
      assert.equal(anonymous.status, 401);
      assert.match(anonymous.header("www-authenticate") ?? "", /^Basic realm="artifact-vault"/);
      assert.equal(anonymous.json<{ errors: Array<{ code: string }> }>().errors[0]?.code, "UNAUTHORIZED");
      const basic = `Basic ${Buffer.from(`anyone:${guarded.tokens["puller"] ?? ""}`).toString("base64")}`;
      assert.equal((await rawRequest(guarded.url, "/v2/", { headers: { authorization: basic } })).status, 200);
      assert.equal((await rawRequest(guarded.url, "/v2/team/app/manifests/latest", { headers: { authorization: basic } })).status, 200);
    } finally {
      await guarded.close();
    }
  });
});
