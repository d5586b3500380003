/**
 * End to end with real parts: the real apt-get (isolated from the machine's apt, see
 * tests/support/apt/apt-get.ts) updates and downloads through the vault's `apt` backends from
 * two signed, by-hash archives built here (dpkg-deb, apt-ftparchive, gpg) and served by Debian's
 * nginx — a "debian" and a "debian-security"-like one, side by side in one sources.list. What
 * nginx logged is what reached the upstream; apt's own requests never do.
 */
import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { aptDownload, aptProblems, aptUpdate, aptVersions, clearAptLists, createAptEnv, type AptEnv, type AptResult, type AptSource } from "../support/apt/apt-get.js";
import { TestAptRepository, type PoolFile } from "../support/apt/apt-repository.js";
import { rawRequest } from "../support/http.js";
import { startNginx, type Nginx } from "../support/nginx.js";
import { waitFor } from "../support/process.js";
import { startTestVault, type TestVault } from "../support/test-vault.js";
import { requireTool } from "../support/tools.js";

const sha256 = (bytes: Uint8Array): string => createHash("sha256").update(bytes).digest("hex");
/** `dists/` freshness in the vault: long enough for a step, short enough to wait out. */
const TTL_MS = 4000;

function assertAptOk(result: AptResult, what: string): void {
  assert.equal(result.code, 0, `${what} failed:\n${result.output}`);
  assert.deepEqual(aptProblems(result), [], `${what} warned:\n${result.output}`);
}

interface CacheEntry {
  readonly key: string;
  readonly sha256: string;
}

test("apt backend end to end: apt-get → artifact-vault → nginx-served signed archives", async (t: TestContext) => {
  for (const tool of ["nginx", "apt-get", "apt-ftparchive", "dpkg-deb", "gpg"]) if (requireTool(t, tool) === undefined) return;

  const dir = await mkdtemp(join(tmpdir(), "vault-e2e-apt-"));
  let nginx: Nginx | undefined;
  let vault: TestVault | undefined;
  const repositories: TestAptRepository[] = [];
  try {
    const www = join(dir, "www");
    const debian = await TestAptRepository.create({ root: join(www, "debian"), work: join(dir, "debian-work") });
    repositories.push(debian);
    const security = await TestAptRepository.create({
      root: join(www, "debian-security"),
      work: join(dir, "security-work"),
      codename: "bookworm-security",
      suite: "stable-security",
      packages: [{ name: "vault-probe-fix", version: "1.0+deb12u1" }],
    });
    repositories.push(security);
    nginx = await startNginx({ dir: join(dir, "nginx"), root: www });
    const upstream = nginx;

    vault = await startTestVault({
      extraYaml: [
        "backends:",
        `  - {type: apt, name: debian, config: {prefix: /debian/, mirror_url: "${upstream.url}/debian", ttl: ${TTL_MS}ms, retries: 1, timeout: 10}}`,
        `  - {type: apt, name: debian-security, config: {prefix: /debian-security/, mirror_url: "${upstream.url}/debian-security", ttl: ${TTL_MS}ms, retries: 1, timeout: 10}}`,
      ].join("\n"),
    });
    const running = vault;
    const admin = running.auth("all");
    const entries = async (prefix: string): Promise<CacheEntry[]> => {
      const response = await rawRequest(running.url, `/admin/cache/entries?prefix=${encodeURIComponent(prefix)}&limit=1000`, { headers: admin });
      assert.equal(response.status, 200, response.body.toString());
      return response.json<{ entries: CacheEntry[] }>().entries;
    };
    /** The entry once it is stored with these bytes (a client has the last byte a moment before it is durable). */
    const stored = (key: string, expected: string): Promise<CacheEntry> =>
      waitFor(`${key} stored`, async () => (await entries(key)).find((entry) => entry.key === key && entry.sha256 === expected));
    const purge = async (key: string): Promise<void> => {
      const response = await rawRequest(running.url, `/admin/cache/entries?key=${encodeURIComponent(key)}`, { method: "DELETE", headers: admin });
      assert.equal(response.status, 200, response.body.toString());
    };

    const sources: AptSource[] = [
      { url: `${running.url}/debian`, suite: debian.codename, keyring: debian.keyring },
      { url: `${running.url}/debian-security`, suite: security.codename, keyring: security.keyring },
    ];
    const env: AptEnv = await createAptEnv({ dir: join(dir, "apt"), sources });
    const downloads = join(dir, "downloads");
    await mkdir(downloads);
    const assertDownloaded = async (files: readonly PoolFile[], where: string): Promise<void> => {
      for (const file of files) {
        const name = file.path.split("/").at(-1) ?? "";
        assert.equal(sha256(await readFile(join(where, name))), file.sha256, name);
      }
    };
    /** Every request that reached nginx came from the vault, never from apt itself. */
    const assertOnlyTheVaultAsked = (): void => {
      const agents = new Set(upstream.requests().slice(1).map((request) => request.userAgent));
      assert.deepEqual([...agents].filter((agent) => !agent.startsWith("artifact-vault/")), []);
    };

    await t.test("apt-get update and download through the vault, two mirrors in one sources.list; the files are the pool's", async () => {
      assertAptOk(await aptUpdate(env), "apt-get update");
      assert.deepEqual(await aptVersions(env, "vault-probe-app"), ["1.0"]);
      assert.deepEqual(await aptVersions(env, "vault-probe-fix"), ["1.0+deb12u1"]);
      const result = await aptDownload(env, ["vault-probe-app", "vault-probe-lib", "vault-probe-fix"], downloads);
      assertAptOk(result, "apt-get download");
      const files = [debian.deb("vault-probe-app", "1.0"), debian.deb("vault-probe-lib", "1.0"), security.deb("vault-probe-fix")];
      await assertDownloaded(files, downloads);
      // Each mirror's files in its own backend's namespace, stored with the pool's sha256.
      await stored(`debian/${debian.deb("vault-probe-app", "1.0").path}`, debian.deb("vault-probe-app", "1.0").sha256);
      await stored(`debian-security/${security.deb("vault-probe-fix").path}`, security.deb("vault-probe-fix").sha256);
      // apt fetched the indexes by hash, and the vault passed InRelease through byte for byte.
      const packagesXz = await debian.indexFile(`main/binary-${debian.architecture}/Packages.xz`);
      await stored(`debian/${packagesXz.byHashPath}`, packagesXz.sha256);
      await stored(`debian/${debian.dist}/InRelease`, sha256(await readFile(debian.pathOf(`${debian.dist}/InRelease`))));
      assertOnlyTheVaultAsked();
    });

    await t.test("a republished index is not seen before the TTL, and is after it; a corrupted new .deb upstream is never cached", async () => {
      // The vault fetches InRelease now: its TTL starts here.
      await purge(`debian/${debian.dist}/InRelease`);
      const fetchedAt = Date.now();
      assertAptOk(await aptUpdate(env), "apt-get update");
      const [added] = await debian.republish([{ name: "vault-probe-lib", version: "1.1" }]);
      assert.ok(added !== undefined);
      await debian.corruptPoolFile(added.path);
      assert.ok(Date.now() - fetchedAt < TTL_MS - 1000, "republishing took too long for the TTL to still run");
      assertAptOk(await aptUpdate(env), "apt-get update right after the republish");
      assert.deepEqual(await aptVersions(env, "vault-probe-lib"), ["1.0"], "the vault's InRelease is fresh: no new version yet");

      await sleep(fetchedAt + TTL_MS + 200 - Date.now());
      assertAptOk(await aptUpdate(env), "apt-get update after the TTL");
      assert.deepEqual(await aptVersions(env, "vault-probe-lib"), ["1.1", "1.0"]);

      const corrupt = join(dir, "corrupt");
      await mkdir(corrupt);
      const failed = await aptDownload(env, ["vault-probe-lib=1.1"], corrupt);
      assert.equal(failed.code, 100, failed.output);
      assert.deepEqual(await entries(`debian/${added.path}`), [], "the corrupted .deb is not cached");
      assert.equal(upstream.requests(`/debian/${added.path}`).length, 1);

      await debian.restorePoolFile(added.path);
      const result = await aptDownload(env, ["vault-probe-lib=1.1"], downloads);
      assertAptOk(result, "apt-get download vault-probe-lib=1.1");
      await assertDownloaded([added], downloads);
      await stored(`debian/${added.path}`, added.sha256);
      assert.equal(upstream.requests(`/debian/${added.path}`).length, 2);
    });

    await t.test("proxy mode: sources keep the mirrors' own URLs, Acquire::http::Proxy names the vault", async () => {
      const proxied = await createAptEnv({
        dir: join(dir, "apt-proxy"),
        proxy: `${running.url}/`,
        sources: [
          { url: `${upstream.url}/debian`, suite: debian.codename, keyring: debian.keyring },
          { url: `${upstream.url}/debian-security`, suite: security.codename, keyring: security.keyring },
        ],
      });
      const before = upstream.requests().length;
      assertAptOk(await aptUpdate(proxied), "apt-get update through the vault as a proxy");
      assert.deepEqual(await aptVersions(proxied, "vault-probe-lib"), ["1.1", "1.0"]);
      const target = join(dir, "proxy-downloads");
      await mkdir(target);
      assertAptOk(await aptDownload(proxied, ["vault-probe-app", "vault-probe-lib", "vault-probe-fix"], target), "apt-get download through the vault as a proxy");
      await assertDownloaded([debian.deb("vault-probe-app", "1.0"), debian.deb("vault-probe-lib", "1.1"), security.deb("vault-probe-fix")], target);
      // Everything was cached already under the same backends: the mirrors saw at most revalidations.
      assert.ok(upstream.requests().slice(before).every((request) => request.uri.includes("/dists/")));
      assertOnlyTheVaultAsked();
    });

    await t.test("with auth.proxy: token, apt logs in with the token from auth.conf, or as the proxy's user in proxy mode", async () => {
      const guarded = await startTestVault({
        proxyAuth: "token",
        tokens: [{ name: "apt", scopes: ["read"] }],
        extraYaml: `backends: [{type: apt, name: debian, config: {prefix: /debian/, mirror_url: "${upstream.url}/debian"}}]`,
      });
      try {
        const token = guarded.tokens["apt"] ?? "";
        const host = new URL(guarded.url).host;
        const mirrored: AptSource = { url: `${guarded.url}/debian`, suite: debian.codename, keyring: debian.keyring };
        const refused = await createAptEnv({ dir: join(dir, "apt-tokenless"), sources: [mirrored] });
        const denied = await aptUpdate(refused);
        assert.notEqual(denied.code, 0, denied.output);
        assert.match(denied.output, /401/);

        const withToken = await createAptEnv({ dir: join(dir, "apt-token"), sources: [mirrored] });
        // /etc/apt/auth.conf.d/vault.conf on a real machine.
        await writeFile(join(withToken.dir, "etc", "auth.conf"), `machine http://${host}\nlogin x\npassword ${token}\n`, { mode: 0o600 });
        assertAptOk(await aptUpdate(withToken), "apt-get update with the token in auth.conf");
        const target = join(dir, "token-downloads");
        await mkdir(target);
        assertAptOk(await aptDownload(withToken, ["vault-probe-app"], target), "apt-get download with the token");
        await assertDownloaded([debian.deb("vault-probe-app", "1.0")], target);

        const proxied = await createAptEnv({
          dir: join(dir, "apt-token-proxy"),
          proxy: `http://x:${token}@${host}/`,
          sources: [{ url: `${upstream.url}/debian`, suite: debian.codename, keyring: debian.keyring }],
        });
        assertAptOk(await aptUpdate(proxied), "apt-get update through the vault as a proxy with credentials");
        assert.deepEqual(await aptVersions(proxied, "vault-probe-lib"), ["1.1", "1.0"]);
      } finally {
        await guarded.close();
      }
    });

    await t.test("with the upstream stopped, a fresh apt-get update and download still work from the vault (STALE)", async () => {
      await upstream.stop();
      await sleep(TTL_MS + 200);
      await clearAptLists(env);
      const offline = join(dir, "offline");
      await mkdir(offline);
      assertAptOk(await aptUpdate(env), "apt-get update with the upstream stopped");
      assert.deepEqual(await aptVersions(env, "vault-probe-lib"), ["1.1", "1.0"]);
      assertAptOk(await aptDownload(env, ["vault-probe-app", "vault-probe-fix"], offline), "apt-get download with the upstream stopped");
      await assertDownloaded([debian.deb("vault-probe-app", "1.0"), security.deb("vault-probe-fix")], offline);
      const inRelease = await rawRequest(running.url, `/debian/${debian.dist}/InRelease`);
      assert.equal(inRelease.status, 200);
      assert.equal(inRelease.header("x-cache"), "STALE");
    });
  } finally {
    await vault?.close();
    await nginx?.stop();
    for (const repository of repositories) await repository.close();
    await rm(dir, { recursive: true, force: true });
  }
});
