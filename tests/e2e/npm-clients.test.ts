/**
 * End to end with real parts: the real npm, pnpm 10 and yarn 1, each isolated in a sandbox, install
 * through the vault's `npm` backend from Verdaccio (the devDependency) as the upstream registry,
 * with packages published to it by the real `npm publish`. What Verdaccio logged is what reached
 * the upstream.
 */
import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import {
  clientSandbox,
  clientVersions,
  consumerProject,
  describeResult,
  installedVersion,
  npmCli,
  npmLockPackages,
  pnpmCli,
  pnpmLockPackages,
  yarnCli,
  yarnLockPackages,
  type ClientResult,
} from "../support/npm/clients.js";
import { APP, corruptTarball, LIB, publishProbePackages, sha512Integrity } from "../support/npm/packages.js";
import { startVerdaccio, type Verdaccio } from "../support/npm/verdaccio.js";
import { waitFor } from "../support/process.js";
import { startTestVault, type TestVault } from "../support/test-vault.js";
import { requireTool } from "../support/tools.js";

/** Packuments stay fresh this long in the vault: long enough for a few commands, short enough to wait out. */
const PACKUMENT_TTL_MS = 6000;

function assertOk(result: ClientResult, what = result.command): void {
  assert.equal(result.code, 0, `${what}\n${describeResult(result)}`);
}

const sha256 = (bytes: Uint8Array): string => createHash("sha256").update(bytes).digest("hex");

interface CacheEntry {
  readonly key: string;
  readonly sha256: string;
}

test("npm backend end to end: npm, pnpm and yarn → artifact-vault → Verdaccio", async (t: TestContext) => {
  if (requireTool(t, "npm") === undefined) return;
  const dir = await mkdtemp(join(tmpdir(), "vault-e2e-npm-"));
  let verdaccio: Verdaccio | undefined;
  let vault: TestVault | undefined;
  try {
    verdaccio = await startVerdaccio({ dir: join(dir, "verdaccio") });
    const upstream = verdaccio;
    const packages = await publishProbePackages(upstream, join(dir, "packages"));
    const lib11 = packages.lib.get("1.1.0");
    assert.ok(lib11 !== undefined);
    vault = await startTestVault({
      extraYaml: `backends: [{type: npm, name: npm, config: {prefix: /npm/, registry_url: ${JSON.stringify(upstream.registry)}, ttl: ${PACKUMENT_TTL_MS}ms}}]`,
    });
    const { url: vaultUrl } = vault;
    const admin = vault.auth("all");
    const registry = `${vaultUrl}/npm/`;
    const sandbox = clientSandbox(join(dir, "clients"));
    t.diagnostic(`clients: ${JSON.stringify(await clientVersions(sandbox))}`);
    const options = (cwd: string) => ({ cwd, registry, sandbox });
    const tarballGets = (path: string): number => upstream.requests(path).filter((request) => request.method === "GET").length;
    const cacheEntries = async (prefix: string): Promise<CacheEntry[]> => {
      const response = await fetch(`${vaultUrl}/admin/cache/entries?prefix=${encodeURIComponent(prefix)}`, { headers: admin });
      assert.equal(response.status, 200);
      return ((await response.json()) as { entries: CacheEntry[] }).entries;
    };
    let projects = 0;
    const project = async (): Promise<string> => consumerProject(join(dir, `project-${++projects}`)).dir;

    await t.test("npm view reads the packument through the vault; tarball URLs point at the vault", async () => {
      const versions = await npmCli(["view", LIB, "versions", "--json"], options(dir));
      assertOk(versions);
      assert.deepEqual(JSON.parse(versions.stdout), ["1.0.0", "1.1.0"]);
      const tarball = await npmCli(["view", APP, "dist.tarball"], options(dir));
      assertOk(tarball);
      assert.equal(tarball.stdout.trim(), `${registry}${APP}/-/${APP}-1.0.0.tgz`);
      // Each scoped-name spelling npm clients use names the same package.
      for (const spelling of ["@vault-probe%2flib", "@vault-probe%2Flib", "@vault-probe/lib"]) {
        const response = await fetch(`${registry}${spelling}`, { headers: { accept: "application/json" } });
        assert.equal(response.status, 200, spelling);
        const packument = (await response.json()) as { name: string; versions: Record<string, { dist: { tarball: string } }> };
        assert.equal(packument.name, LIB);
        assert.equal(packument.versions["1.1.0"]?.dist.tarball, `${registry}${LIB}/-/lib-1.1.0.tgz`);
      }
    });

    let lockedProject = "";
    await t.test("npm install: the dependency tree lands, the lockfile points at the vault, each tarball is fetched upstream once", async () => {
      lockedProject = await project();
      const result = await npmCli(["install"], options(lockedProject));
      assertOk(result);
      assert.doesNotMatch(result.stderr, /audit/i, "the audit request went upstream quietly");
      assert.equal(installedVersion(lockedProject, APP), "1.0.0");
      assert.equal(installedVersion(lockedProject, LIB), "1.1.0");
      const locked = npmLockPackages(lockedProject);
      assert.deepEqual(
        locked.map((entry) => [entry.id, entry.resolved, entry.integrity]),
        [
          [`${LIB}@1.1.0`, `${registry}${LIB}/-/lib-1.1.0.tgz`, lib11.integrity],
          [`${APP}@1.0.0`, `${registry}${APP}/-/${APP}-1.0.0.tgz`, packages.app.integrity],
        ],
      );
      assert.equal(tarballGets(lib11.tarballPath), 1);
      assert.equal(tarballGets(packages.app.tarballPath), 1);
      // npm's audit went upstream (Verdaccio has no audit service: a quiet 404 for npm).
      assert.ok(upstream.requests("/-/npm/v1/security/advisories/bulk").some((request) => request.method === "POST"));
    });

    await t.test("npm ci with an empty cache installs from the vault alone", async () => {
      sandbox.clearCaches();
      await rm(join(lockedProject, "node_modules"), { recursive: true, force: true });
      assertOk(await npmCli(["ci"], options(lockedProject)));
      assert.equal(installedVersion(lockedProject, LIB), "1.1.0");
      assert.equal(tarballGets(lib11.tarballPath), 1, "the tarballs were served from the vault");
      assert.equal(tarballGets(packages.app.tarballPath), 1);
    });

    await t.test("a lockfile written against the public registry installs through the vault (replace-registry-host)", async () => {
      const cloned = await project();
      const lock = (await readFile(join(lockedProject, "package-lock.json"), "utf8")).replaceAll(registry, "https://registry.npmjs.org/");
      assert.match(lock, /https:\/\/registry\.npmjs\.org\/@vault-probe\/lib\/-\/lib-1\.1\.0\.tgz/);
      await writeFile(join(cloned, "package-lock.json"), lock);
      sandbox.clearCaches();
      // npm's default replace-registry-host ("npmjs") sends registry.npmjs.org's tarball paths to the configured registry.
      assertOk(await npmCli(["ci"], options(cloned)));
      assert.equal(installedVersion(cloned, LIB), "1.1.0");
      assert.equal(tarballGets(lib11.tarballPath), 1);
    });

    await t.test("pnpm install through the vault", async () => {
      const cwd = await project();
      assertOk(await pnpmCli(["install"], options(cwd)));
      // pnpm links only direct dependencies into node_modules; the lockfile says what it resolved.
      assert.equal(installedVersion(cwd, APP), "1.0.0");
      assert.deepEqual(
        pnpmLockPackages(cwd).map((entry) => [entry.id, entry.integrity]),
        [
          [`${LIB}@1.1.0`, lib11.integrity],
          [`${APP}@1.0.0`, packages.app.integrity],
        ],
      );
      assert.equal(tarballGets(lib11.tarballPath), 1);
    });

    await t.test("yarn install through the vault; yarn.lock points at the vault", async () => {
      const cwd = await project();
      assertOk(await yarnCli(["install"], options(cwd)));
      assert.equal(installedVersion(cwd, LIB), "1.1.0");
      const locked = yarnLockPackages(cwd);
      assert.equal(locked.length, 2);
      for (const entry of locked) assert.ok(entry.resolved?.startsWith(registry), `${entry.id} resolved ${entry.resolved ?? "nowhere"}`);
      assert.equal(tarballGets(lib11.tarballPath), 1);
    });

    await t.test("npm pack fetches the very tarball that was published", async () => {
      const cwd = join(dir, "pack");
      await mkdir(cwd, { recursive: true });
      assertOk(await npmCli(["pack", APP], options(cwd)));
      const packed = readFileSync(join(cwd, `${APP}-1.0.0.tgz`));
      assert.equal(sha512Integrity(packed), packages.app.integrity);
    });

    await t.test("npm search and ping are answered by the upstream, not cached", async () => {
      const search = await npmCli(["search", "vault-probe", "--json"], options(dir));
      assertOk(search);
      const found = (JSON.parse(search.stdout) as Array<{ name: string }>).map((entry) => entry.name).sort();
      assert.deepEqual(found, [LIB, APP].sort());
      assert.ok(upstream.requests("/-/v1/search").length >= 1);
      assertOk(await npmCli(["ping"], options(dir)));
    });

    await t.test("npm outdated sees what the vault's packuments say", async () => {
      const cwd = consumerProject(join(dir, "outdated"), { [LIB]: "1.0.0" }).dir;
      assertOk(await npmCli(["install"], options(cwd)));
      const outdated = await npmCli(["outdated", "--json"], options(cwd));
      // npm outdated exits 1 when something is outdated.
      assert.equal(outdated.code, 1, describeResult(outdated));
      const report = JSON.parse(outdated.stdout) as Record<string, { current: string; latest: string }>;
      assert.deepEqual([report[LIB]?.current, report[LIB]?.latest], ["1.0.0", "1.1.0"]);
    });

    await t.test("a new upstream version shows up after the TTL, not before", async () => {
      // A fresh copy of the packument, cached now.
      const purge = await fetch(`${vaultUrl}/admin/cache/entries?prefix=${encodeURIComponent(`npm/packuments/${LIB}/`)}`, { method: "DELETE", headers: admin });
      assert.equal(purge.status, 200);
      const versions = async (): Promise<string[]> => {
        sandbox.clearCaches();
        const result = await npmCli(["view", LIB, "versions", "--json"], options(dir));
        assertOk(result);
        return JSON.parse(result.stdout) as string[];
      };
      assert.deepEqual(await versions(), ["1.0.0", "1.1.0"]);
      const cachedAt = Date.now();
      await packages.publishLib("1.2.0");
      assert.ok(Date.now() - cachedAt < PACKUMENT_TTL_MS - 1000, "publishing took too long to check the TTL");
      assert.deepEqual(await versions(), ["1.0.0", "1.1.0"], "still the cached packument within its TTL");
      await sleep(PACKUMENT_TTL_MS - (Date.now() - cachedAt) + 200);
      assert.deepEqual(await versions(), ["1.0.0", "1.1.0", "1.2.0"]);
    });

    await t.test("a corrupted tarball upstream is never cached; the good one is", async () => {
      const broken = await packages.publishLib("1.3.0");
      const good = await readFile(broken.storagePath);
      await corruptTarball(broken);
      // As a lockfile install asks: the tarball straight away, its version newer than the cached packument.
      const url = `${registry}${LIB}/-/lib-1.3.0.tgz`;
      const failed = await fetch(url).then(
        async (response) => ({ status: response.status, complete: await response.arrayBuffer().then(() => true, () => false) }),
        () => ({ status: 0, complete: false }),
      );
      assert.ok(failed.status !== 200 || !failed.complete, "a corrupted tarball never arrives as a complete 200");
      assert.deepEqual(await cacheEntries(`npm/tarballs/${LIB}/lib-1.3.0.tgz`), []);
      await writeFile(broken.storagePath, good);
      const response = await fetch(url);
      assert.equal(response.status, 200);
      assert.equal(sha512Integrity(Buffer.from(await response.arrayBuffer())), broken.integrity);
      // The entry is committed once the verified download is durable, just after the last byte went out.
      const entry = await waitFor("the verified tarball in the cache", async () => (await cacheEntries(`npm/tarballs/${LIB}/lib-1.3.0.tgz`))[0]);
      assert.equal(entry.sha256, sha256(good));
      assert.equal(tarballGets(broken.tarballPath), 2, "one upstream fetch for the corrupt copy, one for the good one");
    });

    await t.test("publishing and logging in through the vault are refused with a JSON message", async () => {
      const response = await fetch(`${registry}${encodeURIComponent(LIB)}`, { method: "PUT", headers: { "content-type": "application/json" }, body: "{}" });
      assert.equal(response.status, 405);
      assert.match(response.headers.get("content-type") ?? "", /^application\/json/);
      const body = (await response.json()) as { error?: string };
      assert.match(body.error ?? "", /read-only cache/);
      const login = await fetch(`${registry}-/user/org.couchdb.user:someone`, { method: "PUT", body: "{}" });
      assert.equal(login.status, 405);
      assert.match(((await login.json()) as { error?: string }).error ?? "", /npm login is not needed/);
    });

    await t.test("with auth.proxy: token, npm and pnpm install with a vault token in .npmrc, and not without", async () => {
      const guarded = await startTestVault({
        proxyAuth: "token",
        tokens: [{ name: "ci", scopes: ["read"] }],
        extraYaml: `backends: [{type: npm, name: npm, config: {prefix: /npm/, registry_url: ${JSON.stringify(upstream.registry)}}}]`,
      });
      try {
        const guardedRegistry = `${guarded.url}/npm/`;
        const tokenless = clientSandbox(join(dir, "tokenless"));
        const refused = await npmCli(["install", "--no-audit"], { cwd: await project(), registry: guardedRegistry, sandbox: tokenless });
        assert.notEqual(refused.code, 0);
        assert.match(refused.stderr, /401|E401/);
        const withToken = clientSandbox(join(dir, "with-token"));
        withToken.addToken(guardedRegistry, guarded.tokens["ci"] ?? "");
        const npmProject = await project();
        assertOk(await npmCli(["install"], { cwd: npmProject, registry: guardedRegistry, sandbox: withToken }));
        assert.equal(installedVersion(npmProject, APP), "1.0.0");
        const pnpmProject = await project();
        assertOk(await pnpmCli(["install"], { cwd: pnpmProject, registry: guardedRegistry, sandbox: withToken }));
        assert.equal(installedVersion(pnpmProject, APP), "1.0.0");
      } finally {
        await guarded.close();
      }
    });

    await t.test("with the upstream stopped, cached installs still work (STALE packuments)", async () => {
      await upstream.stop();
      await sleep(PACKUMENT_TTL_MS);
      sandbox.clearCaches();
      const fromLock = await project();
      await cp(join(lockedProject, "package-lock.json"), join(fromLock, "package-lock.json"));
      assertOk(await npmCli(["ci"], options(fromLock)));
      assert.equal(installedVersion(fromLock, LIB), "1.1.0");
      // Without a lockfile: resolved from the stale packuments, to versions whose tarballs are cached.
      const fresh = consumerProject(join(dir, "offline"), { [LIB]: "1.1.0" }).dir;
      assertOk(await npmCli(["install", "--no-audit"], options(fresh)));
      assert.equal(installedVersion(fresh, LIB), "1.1.0");
      const packument = await fetch(`${registry}${APP}`, { headers: { accept: "application/json" } });
      assert.equal(packument.status, 200);
      assert.equal(packument.headers.get("x-cache"), "STALE");
    });
  } finally {
    await vault?.close();
    await verdaccio?.stop();
    await rm(dir, { recursive: true, force: true });
  }
});
