/**
 * `GET /admin/backends` against the real server on port 0: each backend with its upstream
 * (credentials removed), the upstream's health as the vault's traffic makes it, and client
 * settings for the vault's address as the request reached it — with `<token>`, never a token.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { rawRequest, type RawResponse } from "../support/http.js";
import { OriginServer } from "../support/origin-server.js";
import { startTestVaultInFront, type TestVault } from "../support/test-vault.js";

interface BackendsJson {
  vault_url: string;
  token_required: boolean;
  backends: Array<{
    name: string;
    type: string;
    prefix: string;
    registry_path?: string;
    upstreams: Array<{ option: string; url: string }>;
    health: { state: string; exchanges: number; errors: number; errors_by_kind: Record<string, number>; last_exchange_at: string | null; last_error_at: string | null };
    clients: Array<{ tool: string; files: Array<{ path: string; text: string }>; notes: string[]; command: string | null }>;
  }>;
}

describe("GET /admin/backends", () => {
  let origin: OriginServer;
  let vault: TestVault;

  before(async () => {
    origin = await new OriginServer().start();
    vault = await startTestVaultInFront(origin, {
      proxyAuth: "token",
      tokens: [
        { name: "reader", scopes: ["read"] },
        { name: "writer", scopes: ["write"] },
      ],
      extraYaml: [
        "backends:",
        `  - {type: http, name: files, config: {prefix: /files/, base_url: "http://bob:hunter2@${new URL(origin.url).host}/dist", timeout: 5, retries: 1}}`,
        `  - {type: npm, name: npm, config: {prefix: /npm/, registry_url: "${origin.url}/npm", token: npm_s3cret}}`,
        `  - {type: dockerhub, name: hub, config: {prefix: /hub/, registry_url: "${origin.url}/registry", username: u, password: regpass}}`,
      ].join("\n"),
    });
  });
  after(async () => {
    await vault.close();
    await origin.stop();
  });

  const get = (headers: Record<string, string> = {}): Promise<RawResponse> => rawRequest(vault.url, "/admin/backends", { headers: { ...vault.auth("reader"), ...headers } });

  test("needs a token with the read scope, in the object API's envelope", async () => {
    const anonymous = await rawRequest(vault.url, "/admin/backends");
    assert.equal(anonymous.status, 401);
    assert.match(anonymous.header("www-authenticate") ?? "", /^Bearer/);
    const writer = await rawRequest(vault.url, "/admin/backends", { headers: vault.auth("writer") });
    assert.equal(writer.status, 403);
    assert.match(writer.json<{ error: { message: string } }>().error.message, /'read' scope/);
    assert.equal((await rawRequest(vault.url, "/admin/backends", { method: "POST", headers: vault.auth("reader") })).status, 405);
  });

  test("lists every backend with its upstream, never a credential, and settings for the address the client used", async () => {
    const response = await get({ host: "vault.example:8080" });
    assert.equal(response.status, 200);
    assert.equal(response.header("cache-control"), "no-store");
    const body = response.json<BackendsJson>();
    assert.equal(body.vault_url, "http://vault.example:8080");
    assert.equal(body.token_required, true);
    assert.deepEqual(
      body.backends.map((backend) => [backend.name, backend.type, backend.prefix, backend.registry_path]),
      [
        ["files", "http", "/files/", undefined],
        ["npm", "npm", "/npm/", undefined],
        ["hub", "dockerhub", "/hub/", "/v2/"],
      ],
    );
    const files = body.backends[0];
    assert.deepEqual(files?.upstreams, [{ option: "base_url", url: `${origin.url}/dist` }]);
    assert.equal(files?.clients[0]?.files[0]?.text, 'curl -fLO -H "Authorization: Bearer <token>" http://vault.example:8080/files/<path>\n');
    const npm = body.backends[1];
    assert.deepEqual(
      npm?.clients.map((client) => client.tool),
      ["npm", "pnpm", "yarn"],
    );
    assert.match(npm?.clients[0]?.files[0]?.text ?? "", /^registry=http:\/\/vault\.example:8080\/npm\/\n\/\/vault\.example:8080\/npm\/:_authToken=<token>\n$/);
    const text = response.body.toString();
    for (const secret of ["hunter2", "bob", "npm_s3cret", "regpass", vault.tokens["reader"] ?? "?"]) assert.ok(!text.includes(secret), `no ${secret} in the answer`);

    // Behind a TLS-terminating proxy.
    const proxied = (await get({ "x-forwarded-proto": "https", "x-forwarded-host": "cache.example.org" })).json<BackendsJson>();
    assert.equal(proxied.vault_url, "https://cache.example.org");
    assert.match(proxied.backends[1]?.clients[0]?.files[0]?.text ?? "", /^registry=https:\/\/cache\.example\.org\/npm\/$/m);
  });

  test("an upstream's health follows the latest exchange: unknown, failing with its kind counted, then ok", async () => {
    const health = async (): Promise<BackendsJson["backends"][number]["health"] | undefined> => (await get()).json<BackendsJson>().backends.find((backend) => backend.name === "files")?.health;
    assert.deepEqual(await health(), {
      state: "unknown",
      exchanges: 0,
      errors: 0,
      errors_by_kind: { timeout: 0, failed: 0, broken_body: 0, status_5xx: 0, status_4xx: 0, other: 0 },
      last_exchange_at: null,
      last_error_at: null,
    });

    origin.files.set("/dist/down.bin", { body: Buffer.alloc(0), status: 503 });
    assert.equal((await rawRequest(vault.url, "/files/down.bin", { headers: vault.auth("reader") })).status, 502);
    const failing = await health();
    assert.equal(failing?.state, "failing");
    assert.equal(failing?.errors_by_kind["status_5xx"], 1);
    assert.equal(failing?.errors, 1);
    assert.ok(failing?.last_error_at !== null);

    origin.files.set("/dist/up.bin", { body: Buffer.from("fine") });
    assert.equal((await rawRequest(vault.url, "/files/up.bin", { headers: vault.auth("reader") })).status, 200);
    const ok = await health();
    assert.equal(ok?.state, "ok");
    assert.equal(ok?.exchanges, 2);
    assert.equal(ok?.errors, 1, "the failure stays counted");
  });
});
