/**
 * End to end with real parts: the real `gem` and `bundle` (Debian's, each run isolated in a
 * sandbox of its own, no network) install through the vault's `rubygems` backend from a gem
 * source that nginx serves as static files. The source is built here, offline
 * (tests/support/rubygems/): gems made by `gem build`, the legacy index by `gem generate_index`,
 * the compact index written by the test. What nginx logged is what reached the upstream.
 */
import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { startNginx, type Nginx } from "../support/nginx.js";
import { buildGem, bundleInstall, gemInstall, GemSource, run, rubySandbox, type GemVersion, type RubySandbox, type ToolResult } from "../support/rubygems/gem-source.js";
import { startTestVault, type TestVault } from "../support/test-vault.js";
import { requireTool } from "../support/tools.js";

/** Compact index documents stay fresh this long in the second vault: long enough for a step, short enough to wait out. */
const SHORT_TTL_MS = 4000;

const greeting = (version: string): GemVersion => ({ name: "vault-greeting", version });
const shout: GemVersion = { name: "vault-shout", version: "1.0.0", dependencies: { "vault-greeting": ">= 1.0" } };
const brittle = (body: string): GemVersion => ({ name: "vault-brittle", version: "1.0.0", body });

function assertOk(result: ToolResult, what: string): void {
  assert.equal(result.code, 0, `${what} failed:\n${result.stdout}${result.stderr}`);
}

test("rubygems backend end to end: gem and bundle → artifact-vault → nginx-served gem source", async (t: TestContext) => {
  for (const tool of ["nginx", "gem", "bundle"]) if (requireTool(t, tool) === undefined) return;
  const dir = await mkdtemp(join(tmpdir(), "vault-e2e-rubygems-"));
  let nginx: Nginx | undefined;
  const vaults: TestVault[] = [];
  try {
    const work = join(dir, "work");
    await mkdir(work, { recursive: true });
    const source = new GemSource(join(dir, "upstream"));
    for (const gem of [greeting("1.0.0"), greeting("1.1.0"), shout, brittle("module VaultBrittle\n  STABLE = true\nend\n")]) source.add(gem, await buildGem(work, gem));
    await source.writeTo();
    // Published later, built now.
    const later = greeting("1.2.0");
    const laterBytes = await buildGem(work, later);

    nginx = await startNginx({ dir: join(dir, "nginx"), root: source.root });
    const upstream = nginx;
    const gemRequests = (): string[] => upstream.requests().filter((entry) => entry.uri.startsWith("/gems/")).map((entry) => entry.uri);

    const startVault = async (ttl: string): Promise<TestVault> => {
      const vault = await startTestVault({
        // The access log at info: what each client request was answered (a 206, a 304).
        logLevel: "info",
        extraYaml: ["backends:", `  - {type: rubygems, name: gems, config: {prefix: /rubygems/, source_url: "${upstream.url}", ttl: ${ttl}, timeout: 10}}`].join("\n"),
      });
      vaults.push(vault);
      return vault;
    };
    const vault = await startVault("1h");
    const sourceUrl = (through: TestVault): string => `${through.url}/rubygems/`;
    /** The statuses the vault answered for `url` so far. */
    const answered = (through: TestVault, url: string): number[] =>
      through
        .logs()
        .filter((line) => line.msg === "request" && line["url"] === url)
        .map((line) => line["status"] as number);

    let runs = 0;
    const fresh = (): Promise<RubySandbox> => rubySandbox(join(dir, `run-${++runs}`));
    const installedGem = (sandbox: RubySandbox, name: string, version: string): Promise<Buffer> => readFile(join(sandbox.installDir, "cache", `${name}-${version}.gem`));
    const installed = async (sandbox: RubySandbox, name: string): Promise<string> => {
      const listed = await run("gem", ["list", "--local", "--exact", name], { cwd: sandbox.dir, env: sandbox.env });
      assertOk(listed, "gem list");
      return listed.stdout.trim();
    };

    await t.test("gem install through the vault installs a gem with its dependency, byte for byte the upstream's", async () => {
      const sandbox = await fresh();
      assertOk(await gemInstall(sandbox, sourceUrl(vault), ["vault-shout"]), "gem install vault-shout");
      assert.equal(await installed(sandbox, "vault-shout"), "vault-shout (1.0.0)");
      assert.equal(await installed(sandbox, "vault-greeting"), "vault-greeting (1.1.0)");
      assert.deepEqual(await installedGem(sandbox, "vault-shout", "1.0.0"), source.bytesOf("vault-shout", "1.0.0"));
      assert.deepEqual(await installedGem(sandbox, "vault-greeting", "1.1.0"), source.bytesOf("vault-greeting", "1.1.0"));
      const requests = upstream.requests();
      assert.ok(requests.some((entry) => entry.uri === "/info/vault-shout"), "the compact index was read");
      assert.deepEqual(
        requests.filter((entry) => entry.uri !== "/" && !entry.userAgent.startsWith("artifact-vault/")),
        [],
        "only the vault talks to the upstream",
      );
    });

    await t.test("a second gem install into an empty directory makes no upstream request for a .gem", async () => {
      const before = gemRequests().length;
      const sandbox = await fresh();
      assertOk(await gemInstall(sandbox, sourceUrl(vault), ["vault-shout"]), "gem install vault-shout");
      assert.equal(await installed(sandbox, "vault-greeting"), "vault-greeting (1.1.0)");
      assert.deepEqual(gemRequests().slice(before), []);
    });

    const gemfile = (sourceLine: string, extra = ""): string => `${sourceLine}\n\ngem "vault-shout"\n${extra}`;

    await t.test("bundle install with the vault as the Gemfile's source; again with bundler's compact index cache (conditional, ranged)", async () => {
      const before = gemRequests().length;
      const sandbox = await fresh();
      assertOk(await bundleInstall(sandbox, gemfile(`source "${sourceUrl(vault)}"`)), "bundle install");
      const lock = await readFile(join(sandbox.project, "Gemfile.lock"), "utf8");
      assert.match(lock, /vault-shout \(1\.0\.0\)\n\s+vault-greeting \(>= 1\.0\)/);
      assert.match(lock, /vault-greeting \(1\.1\.0\)/);
      const shoutGem = await readFile(join(sandbox.bundlePath, "ruby", "3.1.0", "cache", "vault-shout-1.0.0.gem")).catch(async () => {
        const found = await run("sh", ["-c", `find ${JSON.stringify(sandbox.bundlePath)} -name vault-shout-1.0.0.gem`], { cwd: sandbox.dir, env: sandbox.env });
        return readFile(found.stdout.trim().split("\n")[0] ?? "");
      });
      assert.deepEqual(shoutGem, source.bytesOf("vault-shout", "1.0.0"));
      assert.deepEqual(gemRequests().slice(before), [], "the gems came from the vault's cache");
      // Bundler keeps the compact index; this time it asks with If-None-Match and Range, and checks the ETag (the MD5).
      await rm(sandbox.bundlePath, { recursive: true, force: true });
      await rm(join(sandbox.project, "Gemfile.lock"));
      const statuses = answered(vault, "/rubygems/versions").length;
      assertOk(await bundleInstall(sandbox, gemfile(`source "${sourceUrl(vault)}"`)), "bundle install with a compact index cache");
      assert.deepEqual(answered(vault, "/rubygems/versions").slice(statuses), [304], "bundler's conditional request matched the ETag");
    });

    await t.test("bundler with the vault as a mirror of rubygems.org (no request leaves for rubygems.org)", async () => {
      const sandbox = await fresh();
      const configured = await run("bundle", ["config", "set", "--global", "mirror.https://rubygems.org", sourceUrl(vault)], { cwd: sandbox.project, env: sandbox.env });
      assertOk(configured, "bundle config set mirror");
      assertOk(await bundleInstall(sandbox, gemfile('source "https://rubygems.org"')), "bundle install through the mirror");
      assert.match(await readFile(join(sandbox.project, "Gemfile.lock"), "utf8"), /vault-shout \(1\.0\.0\)/);
    });

    await t.test("a .gem that does not match the compact index's checksum is refused and never cached", async () => {
      const file = join(source.root, GemSource.gemPath("vault-brittle", "1.0.0"));
      const good = await readFile(file);
      // Another valid gem of the same name and version, which gem would install if nothing checked it.
      await writeFile(file, await buildGem(work, brittle("module VaultBrittle\n  STABLE = false\nend\n")));
      const uri = "/gems/vault-brittle-1.0.0.gem";
      for (let attempt = 1; attempt <= 2; attempt++) {
        const sandbox = await fresh();
        const result = await gemInstall(sandbox, sourceUrl(vault), ["vault-brittle"]);
        assert.notEqual(result.code, 0, `attempt ${attempt}: gem install must fail:\n${result.stdout}`);
        assert.equal((await upstream.logged(uri, attempt)).length, attempt, `attempt ${attempt} went upstream again: nothing was cached`);
      }
      assert.ok(vault.logs().some((line) => typeof line["reason"] === "string" && line["reason"].includes("failed verification")));
      await writeFile(file, good);
      const sandbox = await fresh();
      assertOk(await gemInstall(sandbox, sourceUrl(vault), ["vault-brittle"]), "gem install of the repaired gem");
      assert.deepEqual(await installedGem(sandbox, "vault-brittle", "1.0.0"), good);
      const cached = await fetch(`${vault.url}/rubygems${uri}`, { method: "HEAD" });
      assert.equal(cached.headers.get("x-cache"), "HIT");
    });

    await t.test("auth.proxy: token: the token as the password, in gem's --source and in bundler's credentials for the source", async () => {
      const secured = await startTestVault({
        proxyAuth: "token",
        tokens: [{ name: "ci", scopes: ["read"] }],
        extraYaml: ["backends:", `  - {type: rubygems, name: gems, config: {prefix: /rubygems/, source_url: "${upstream.url}"}}`].join("\n"),
      });
      vaults.push(secured);
      const token = secured.tokens["ci"] ?? "";
      const withToken = sourceUrl(secured).replace("http://", `http://x:${token}@`);
      const sandbox = await fresh();
      assertOk(await gemInstall(sandbox, withToken, ["vault-shout"]), "gem install with the token");
      assert.equal(await installed(sandbox, "vault-greeting"), "vault-greeting (1.1.0)");
      const anonymous = await gemInstall(await fresh(), sourceUrl(secured), ["vault-shout"]);
      assert.notEqual(anonymous.code, 0, "without the token nothing is served");
      const bundled = await fresh();
      assertOk(await run("bundle", ["config", "set", "--global", sourceUrl(secured), `x:${token}`], { cwd: bundled.project, env: bundled.env }), "bundle config set credentials");
      assertOk(await bundleInstall(bundled, gemfile(`source "${sourceUrl(secured)}"`)), "bundle install with the token");
    });

    // A second vault with a short ttl, for freshness and outages.
    const shortVault = await startVault(`${SHORT_TTL_MS}ms`);

    await t.test("a version published upstream is invisible within the ttl and visible after it (gem, and bundler's ranged update)", async () => {
      const sandbox = await fresh();
      assertOk(await gemInstall(sandbox, sourceUrl(shortVault), ["vault-shout"]), "gem install vault-shout");
      assert.equal(await installed(sandbox, "vault-greeting"), "vault-greeting (1.1.0)");
      const bundled = await fresh();
      assertOk(await bundleInstall(bundled, gemfile(`source "${sourceUrl(shortVault)}"`)), "bundle install");
      const infoRequests = upstream.requests("/info/vault-greeting").length;

      source.add(later, laterBytes);
      await source.writeTo();

      const within = await fresh();
      assertOk(await gemInstall(within, sourceUrl(shortVault), ["vault-greeting"]), "gem install within the ttl");
      assert.equal(await installed(within, "vault-greeting"), "vault-greeting (1.1.0)");
      assert.equal(upstream.requests("/info/vault-greeting").length, infoRequests, "no upstream request while fresh");

      await sleep(SHORT_TTL_MS + 300);
      const after = await fresh();
      assertOk(await gemInstall(after, sourceUrl(shortVault), ["vault-greeting"]), "gem install after the ttl");
      assert.equal(await installed(after, "vault-greeting"), "vault-greeting (1.2.0)");
      assert.deepEqual(await installedGem(after, "vault-greeting", "1.2.0"), laterBytes);
      // Bundler, holding the old compact index, fetches what was appended (Range) and checks the whole file's MD5.
      assertOk(await bundleInstall(bundled, gemfile(`source "${sourceUrl(shortVault)}"`, 'gem "vault-greeting", "1.2.0"\n')), "bundle install of the new version");
      assert.match(await readFile(join(bundled.project, "Gemfile.lock"), "utf8"), /vault-greeting \(1\.2\.0\)/);
      assert.ok(answered(shortVault, "/rubygems/versions").includes(206), "bundler fetched what was appended to versions with a Range");
      const legacy = upstream.requests().filter((entry) => /specs\.4\.8|^\/api\//.test(entry.uri));
      assert.deepEqual(legacy, [], "gem and bundler used the compact index only");
    });

    await t.test("with the upstream stopped, gem and bundle still install from the vault (STALE index)", async () => {
      await upstream.stop();
      await sleep(SHORT_TTL_MS + 300); // the index is stale now: served STALE, not refetched
      const sandbox = await fresh();
      assertOk(await gemInstall(sandbox, sourceUrl(shortVault), ["vault-shout"]), "gem install with the upstream stopped");
      assert.equal(await installed(sandbox, "vault-greeting"), "vault-greeting (1.2.0)");
      const bundled = await fresh();
      assertOk(await bundleInstall(bundled, gemfile(`source "${sourceUrl(shortVault)}"`)), "bundle install with the upstream stopped");
      const versions = await fetch(`${shortVault.url}/rubygems/versions`);
      assert.equal(versions.headers.get("x-cache"), "STALE");
      assert.match(await versions.text(), /^vault-greeting 1\.2\.0 [0-9a-f]{32}$/m);
    });
  } finally {
    await Promise.all(vaults.map((vault) => vault.close()));
    await nginx?.stop();
    await rm(dir, { recursive: true, force: true });
  }
});
