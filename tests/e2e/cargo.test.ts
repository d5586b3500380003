/**
 * End to end with real parts: the real `cargo` (isolated CARGO_HOME, HOME and target directory;
 * crates.io replaced by the vault) builds a binary through the vault's `cargo` backend from a
 * sparse registry that nginx serves as static files. The registry is built here, offline
 * (tests/support/cargo/): .crate files packed as cargo packs them, the index written by the
 * test. What nginx logged is what reached the upstream.
 */
import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { startNginx, type Nginx } from "../support/nginx.js";
import { cargo, cargoSandbox, CrateRegistry, downloadedCrate, findCargo, packCrate, type CargoSandbox, type CrateVersion, type ToolResult } from "../support/cargo/crate-registry.js";
import { rawRequest } from "../support/http.js";
import { startTestVault, type TestVault } from "../support/test-vault.js";
import { requireTool } from "../support/tools.js";

/** Index files stay fresh this long in the second vault: long enough for a step, short enough to wait out. */
const SHORT_TTL_MS = 4000;

const greeting = (version: string): CrateVersion => ({ name: "vault-greeting", version });
const shout: CrateVersion = {
  name: "vault-shout",
  version: "1.0.0",
  dependencies: { "vault-greeting": "^1.0" },
  body: 'pub fn greeting() -> String {\n    vault_greeting::greeting().to_uppercase()\n}\n',
};
const brittle = (word: string): CrateVersion => ({ name: "vault-brittle", version: "1.0.0", body: `pub fn greeting() -> &'static str {\n    "${word}"\n}\n` });

function assertOk(result: ToolResult, what: string): void {
  assert.equal(result.code, 0, `${what} failed:\n${result.stdout}${result.stderr}`);
}

test("cargo backend end to end: cargo build → artifact-vault → nginx-served sparse registry", async (t: TestContext) => {
  if (requireTool(t, "nginx") === undefined) return;
  // No skip for cargo: without it this test fails, naming what is missing.
  assert.ok(findCargo() !== undefined, "cargo is not installed (rustup: https://rustup.rs, or Debian: apt-get install cargo); set CARGO to its path");
  const dir = await mkdtemp(join(tmpdir(), "vault-e2e-cargo-"));
  let nginx: Nginx | undefined;
  const vaults: TestVault[] = [];
  try {
    const work = join(dir, "work");
    await mkdir(work, { recursive: true });
    const registry = new CrateRegistry(join(dir, "upstream"));
    for (const crate of [greeting("1.0.0"), greeting("1.1.0"), shout, brittle("stable")]) registry.add(crate, await packCrate(work, crate));
    // Published later, packed now.
    const later = greeting("1.2.0");
    const laterBytes = await packCrate(work, later);

    nginx = await startNginx({ dir: join(dir, "nginx"), root: registry.root });
    const upstream = nginx;
    await registry.writeTo(upstream.url);
    const crateRequests = (): string[] => upstream.requests().filter((entry) => entry.uri.startsWith("/dl/")).map((entry) => entry.uri);

    const startVault = async (ttl: string): Promise<TestVault> => {
      const vault = await startTestVault({
        extraYaml: ["backends:", `  - {type: cargo, name: crates, config: {prefix: /cargo/, index_url: "${upstream.url}/index/", dl_url: "${upstream.url}/dl", ttl: ${ttl}, timeout: 10}}`].join("\n"),
      });
      vaults.push(vault);
      return vault;
    };
    const vault = await startVault("1h");
    const registryUrl = (through: TestVault): string => `${through.url}/cargo/`;

    let runs = 0;
    const fresh = async (through: TestVault, dependencies: Readonly<Record<string, string>> = { "vault-shout": "1" }, token?: string): Promise<CargoSandbox> => {
      const sandboxDir = join(dir, `run-${++runs}`);
      await mkdir(sandboxDir);
      return cargoSandbox(sandboxDir, registryUrl(through), dependencies, token);
    };
    const buildAndRun = async (sandbox: CargoSandbox): Promise<string> => {
      const result = await cargo(sandbox, ["run", "--quiet"]);
      assertOk(result, "cargo run");
      return result.stdout.trim();
    };
    const lockedVersion = async (sandbox: CargoSandbox, name: string): Promise<string | undefined> => {
      const lock = await readFile(join(sandbox.project, "Cargo.lock"), "utf8");
      return new RegExp(`name = "${name}"\\nversion = "([^"]+)"`).exec(lock)?.[1];
    };

    await t.test("cargo build through the vault builds a binary with a crate and its dependency, byte for byte the upstream's", async () => {
      const sandbox = await fresh(vault);
      assert.equal(await buildAndRun(sandbox), "VAULT-GREETING 1.1.0");
      assert.equal(await lockedVersion(sandbox, "vault-greeting"), "1.1.0");
      assert.deepEqual(await downloadedCrate(sandbox, "vault-shout", "1.0.0"), registry.bytesOf("vault-shout", "1.0.0"));
      assert.deepEqual(await downloadedCrate(sandbox, "vault-greeting", "1.1.0"), registry.bytesOf("vault-greeting", "1.1.0"));
      const requests = upstream.requests();
      assert.ok(requests.some((entry) => entry.uri === "/index/va/ul/vault-shout"), "the sparse index was read");
      assert.ok(!requests.some((entry) => entry.uri === "/index/config.json"), "config.json is the vault's own");
      assert.deepEqual(
        // (nginx.ts asks for "/" itself, to know it is up)
        requests.filter((entry) => entry.uri !== "/" && !entry.userAgent.startsWith("artifact-vault/")),
        [],
        "only the vault talks to the upstream",
      );
    });

    await t.test("a second build with an empty CARGO_HOME makes no upstream request for a .crate", async () => {
      const before = crateRequests().length;
      const sandbox = await fresh(vault);
      assert.equal(await buildAndRun(sandbox), "VAULT-GREETING 1.1.0");
      assert.deepEqual(crateRequests().slice(before), []);
    });

    await t.test("a .crate that does not match the index's cksum is refused by the vault and never cached", async () => {
      const file = join(registry.root, CrateRegistry.cratePath("vault-brittle", "1.0.0"));
      const good = await readFile(file);
      // Another valid crate of the same name and version, which a build would use if nothing checked it.
      await writeFile(file, await packCrate(work, brittle("tampered")));
      const uri = `/${CrateRegistry.cratePath("vault-brittle", "1.0.0")}`;
      for (let attempt = 1; attempt <= 2; attempt++) {
        const sandbox = await fresh(vault, { "vault-brittle": "1" });
        const result = await cargo(sandbox, ["build"]);
        assert.notEqual(result.code, 0, `attempt ${attempt}: cargo build must fail:\n${result.stdout}`);
        // cargo never saw the tampered bytes whole (it would say it failed to verify the checksum).
        assert.doesNotMatch(result.stderr, /failed to verify the checksum/, "the vault refused it, not cargo");
        assert.equal((await upstream.logged(uri, attempt)).length, attempt, `attempt ${attempt} went upstream again: nothing was cached`);
      }
      assert.ok(vault.logs().some((line) => typeof line["reason"] === "string" && line["reason"].includes("failed verification")), "the vault logged why");
      await writeFile(file, good);
      const sandbox = await fresh(vault, { "vault-brittle": "1" });
      assert.equal(await buildAndRun(sandbox), "stable");
      assert.deepEqual(await downloadedCrate(sandbox, "vault-brittle", "1.0.0"), good);
      const cached = await rawRequest(vault.url, "/cargo/crates/vault-brittle/1.0.0/download", { method: "HEAD" });
      assert.equal(cached.header("x-cache"), "HIT");
    });

    await t.test("auth.proxy: token: cargo sends the registry's token (\"Bearer <token>\") once config.json asked for it", async () => {
      const secured = await startTestVault({
        proxyAuth: "token",
        tokens: [{ name: "ci", scopes: ["read"] }],
        extraYaml: ["backends:", `  - {type: cargo, name: crates, config: {prefix: /cargo/, index_url: "${upstream.url}/index/", dl_url: "${upstream.url}/dl"}}`].join("\n"),
      });
      vaults.push(secured);
      const token = secured.tokens["ci"] ?? "";
      const sandbox = await fresh(secured, { "vault-shout": "1" }, `Bearer ${token}`);
      assert.equal(await buildAndRun(sandbox), "VAULT-GREETING 1.1.0");
      const config = await rawRequest(secured.url, "/cargo/config.json", { headers: { authorization: `Bearer ${token}` } });
      assert.equal(config.json<Record<string, unknown>>()["auth-required"], true);
      const anonymous = await cargo(await fresh(secured), ["build"]);
      assert.notEqual(anonymous.code, 0, "without the token nothing is served");
    });

    // A second vault with a short ttl, for freshness and outages.
    const shortVault = await startVault(`${SHORT_TTL_MS}ms`);

    await t.test("a version published upstream is invisible within the ttl and visible after it (cargo update)", async () => {
      const sandbox = await fresh(shortVault);
      assert.equal(await buildAndRun(sandbox), "VAULT-GREETING 1.1.0");
      const indexRequests = upstream.requests("/index/va/ul/vault-greeting").length;

      registry.add(later, laterBytes);
      await registry.writeTo(upstream.url);

      assertOk(await cargo(sandbox, ["update"]), "cargo update within the ttl");
      assert.equal(await lockedVersion(sandbox, "vault-greeting"), "1.1.0");
      assert.equal(upstream.requests("/index/va/ul/vault-greeting").length, indexRequests, "no upstream request while fresh");

      await sleep(SHORT_TTL_MS + 300);
      assertOk(await cargo(sandbox, ["update"]), "cargo update after the ttl");
      assert.equal(await lockedVersion(sandbox, "vault-greeting"), "1.2.0");
      assert.equal(await buildAndRun(sandbox), "VAULT-GREETING 1.2.0");
      assert.deepEqual(await downloadedCrate(sandbox, "vault-greeting", "1.2.0"), laterBytes);
    });

    await t.test("with the upstream stopped, a build from a fresh CARGO_HOME still works (STALE index)", async () => {
      await upstream.stop();
      await sleep(SHORT_TTL_MS + 300); // the index is stale now: served STALE, not refetched
      const sandbox = await fresh(shortVault);
      assert.equal(await buildAndRun(sandbox), "VAULT-GREETING 1.2.0");
      const indexFile = await rawRequest(shortVault.url, "/cargo/va/ul/vault-greeting");
      assert.equal(indexFile.header("x-cache"), "STALE");
      assert.match(indexFile.body.toString(), /"vers":"1\.2\.0"/);
    });
  } finally {
    await Promise.all(vaults.map((vault) => vault.close()));
    await nginx?.stop();
    await rm(dir, { recursive: true, force: true });
  }
});
