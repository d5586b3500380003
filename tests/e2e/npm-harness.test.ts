/**
 * The npm end-to-end harness checked on its own, with no vault in between: Verdaccio (the
 * devDependency) as the registry, packages published to it with the real `npm publish`, and the
 * real npm, pnpm 10 and yarn 1 installing from it, each isolated in a sandbox (own HOME, npmrc,
 * caches; https to a dead proxy). It also pins down what those clients send — the requests the
 * vault's npm backend must understand — through a recording proxy in front of Verdaccio.
 */
import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
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
import { decodedBody, startLoggingProxy, type LoggingProxy, type RecordedRequest } from "../support/npm/logging-proxy.js";
import { APP, corruptTarball, LIB, publishProbePackages, sha512Integrity } from "../support/npm/packages.js";
import { startVerdaccio, type Verdaccio } from "../support/npm/verdaccio.js";
import { requireTool } from "../support/tools.js";

const CORGI = "application/vnd.npm.install-v1+json; q=1.0, application/json; q=0.8, */*";

function assertOk(result: ClientResult): void {
  assert.equal(result.code, 0, describeResult(result));
}

const packumentRequests = (requests: readonly RecordedRequest[]): RecordedRequest[] => requests.filter((request) => request.method === "GET" && !request.url.includes("/-/"));

test("npm harness: Verdaccio, real packages and npm, pnpm and yarn, with no vault in between", async (t: TestContext) => {
  if (requireTool(t, "npm") === undefined) return;
  const dir = await mkdtemp(join(tmpdir(), "vault-e2e-npm-harness-"));
  let verdaccio: Verdaccio | undefined;
  let proxy: LoggingProxy | undefined;
  try {
    verdaccio = await startVerdaccio({ dir: join(dir, "verdaccio") });
    const registry = verdaccio.registry;
    const packages = await publishProbePackages(verdaccio, join(dir, "packages"));
    const lib10 = packages.lib.get("1.0.0");
    const lib11 = packages.lib.get("1.1.0");
    assert.ok(lib10 !== undefined && lib11 !== undefined);
    const sandbox = clientSandbox(join(dir, "clients"));
    t.diagnostic(`clients: ${JSON.stringify(await clientVersions(sandbox))}`);
    const upstream = verdaccio;
    let projects = 0;
    const project = (): string => consumerProject(join(dir, `project-${++projects}`)).dir;

    await t.test("published tarballs are in Verdaccio's storage with the integrity its packuments carry", async () => {
      for (const tarball of packages.all) {
        assert.equal(sha512Integrity(readFileSync(tarball.storagePath)), tarball.integrity);
        const response = await fetch(`${upstream.url}/${tarball.name.replace("/", "%2f")}`, { headers: { accept: "application/vnd.npm.install-v1+json" } });
        const packument = (await response.json()) as { versions: Record<string, { dist: { integrity: string; tarball: string } }> };
        const dist = packument.versions[tarball.version]?.dist;
        assert.equal(dist?.integrity, tarball.integrity);
        assert.equal(dist?.tarball, `${upstream.url}${tarball.tarballPath}`);
      }
    });

    const npmProject = project();
    await t.test("npm install resolves the app and its scoped dependency; the lockfile points at the registry", async () => {
      assertOk(await npmCli(["install"], { cwd: npmProject, registry, sandbox }));
      assert.equal(installedVersion(npmProject, APP), "1.0.0");
      assert.equal(installedVersion(npmProject, LIB), "1.1.0");
      assert.deepEqual(npmLockPackages(npmProject), [
        { id: `${LIB}@1.1.0`, resolved: `${upstream.url}${lib11.tarballPath}`, integrity: lib11.integrity },
        { id: `${APP}@1.0.0`, resolved: `${upstream.url}${packages.app.tarballPath}`, integrity: packages.app.integrity },
      ]);
    });

    await t.test("npm ci with an empty cache downloads both tarballs again", async () => {
      sandbox.clearCaches();
      await rm(join(npmProject, "node_modules"), { recursive: true, force: true });
      const before = upstream.requests(lib11.tarballPath).length;
      assertOk(await npmCli(["ci"], { cwd: npmProject, registry, sandbox }));
      assert.equal(installedVersion(npmProject, APP), "1.0.0");
      assert.equal(installedVersion(npmProject, LIB), "1.1.0");
      assert.equal((await upstream.logged(lib11.tarballPath, before + 1)).length, before + 1);
    });

    await t.test("npm view lists the versions", async () => {
      const result = await npmCli(["view", LIB, "versions", "--json"], { cwd: npmProject, registry, sandbox });
      assertOk(result);
      assert.deepEqual(JSON.parse(result.stdout), ["1.0.0", "1.1.0"]);
    });

    await t.test("npm pack fetches the published tarball, byte for byte", async () => {
      const into = project();
      const result = await npmCli(["pack", APP], { cwd: into, registry, sandbox });
      assertOk(result);
      assert.equal(result.stdout.trim(), packages.app.filename);
      assert.equal(sha512Integrity(readFileSync(join(into, packages.app.filename))), packages.app.integrity);
    });

    await t.test("pnpm install resolves both; its lockfile records integrities (and no URL)", async () => {
      const into = project();
      const before = upstream.requests(packages.app.tarballPath).length;
      assertOk(await pnpmCli(["install"], { cwd: into, registry, sandbox }));
      assert.equal(installedVersion(into, APP), "1.0.0");
      assert.equal(installedVersion(join(into, "node_modules", ".pnpm", `${APP}@1.0.0`), LIB), "1.1.0", "pnpm links the dependency beside the app");
      assert.deepEqual(pnpmLockPackages(into), [
        { id: `${LIB}@1.1.0`, resolved: undefined, integrity: lib11.integrity },
        { id: `${APP}@1.0.0`, resolved: undefined, integrity: packages.app.integrity },
      ]);
      assert.equal((await upstream.logged(packages.app.tarballPath, before + 1)).length, before + 1, "pnpm fetched the tarball from the registry");
    });

    await t.test("yarn install resolves both; yarn.lock points at the registry", async () => {
      const into = project();
      assertOk(await yarnCli(["install"], { cwd: into, registry, sandbox }));
      assert.equal(installedVersion(into, APP), "1.0.0");
      assert.equal(installedVersion(into, LIB), "1.1.0");
      assert.deepEqual(yarnLockPackages(into), [
        { id: `${LIB}@1.1.0`, resolved: `${upstream.url}${lib11.tarballPath}#${lib11.shasum}`, integrity: lib11.integrity },
        { id: `${APP}@1.0.0`, resolved: `${upstream.url}${packages.app.tarballPath}#${packages.app.shasum}`, integrity: packages.app.integrity },
      ]);
    });

    proxy = await startLoggingProxy({ target: upstream.url });
    const recorder = proxy;
    const viaProxy = `${recorder.url}/`;

    await t.test("what npm sends: full packuments for install, %2f-encoded scopes, a gzipped bulk audit", async () => {
      const fresh = clientSandbox(join(dir, "clients-npm-probe"));
      recorder.clear();
      assertOk(await npmCli(["install"], { cwd: project(), registry: viaProxy, sandbox: fresh }));
      const packuments = packumentRequests(recorder.requests());
      assert.deepEqual(packuments.map((request) => request.url).sort(), ["/@vault-probe%2flib", `/${APP}`]);
      for (const request of packuments) {
        // npm 11 builds its ideal tree from full packuments (arborist's fullMetadata: true).
        assert.equal(request.headers["accept"], "application/json");
        assert.equal(request.headers["npm-command"], "install");
        assert.equal(request.headers["pacote-req-type"], "packument");
      }
      const tarballs = recorder.requests().filter((request) => request.url.endsWith(".tgz"));
      assert.deepEqual(tarballs.map((request) => request.url).sort(), [lib11.tarballPath, packages.app.tarballPath].sort());
      for (const request of tarballs) assert.equal(request.headers["pacote-req-type"], "tarball");
      const [audit, ...moreAudits] = recorder.requests("/-/npm/v1/security/advisories/bulk");
      assert.equal(moreAudits.length, 0);
      assert.equal(audit?.method, "POST");
      assert.equal(audit.headers["content-encoding"], "gzip");
      assert.deepEqual(JSON.parse(decodedBody(audit)), { [APP]: ["1.0.0"], [LIB]: ["1.1.0"] });
      assert.equal(audit.status, 404, "Verdaccio without its audit middleware answers 404 at once");

      recorder.clear();
      assertOk(await npmCli(["outdated"], { cwd: npmProject, registry: viaProxy, sandbox: fresh }));
      assert.deepEqual(
        recorder.requests().map((request) => [request.url, request.headers["accept"]]),
        [[`/${APP}`, CORGI]],
      );
    });

    await t.test("what pnpm and yarn send: abbreviated packuments; pnpm encodes the scope's slash as %2F, yarn as %2f", async () => {
      const fresh = clientSandbox(join(dir, "clients-pnpm-yarn-probe"));
      recorder.clear();
      assertOk(await pnpmCli(["install"], { cwd: project(), registry: viaProxy, sandbox: fresh }));
      const pnpmPackuments = packumentRequests(recorder.requests());
      assert.deepEqual(pnpmPackuments.map((request) => request.url).sort(), ["/@vault-probe%2Flib", `/${APP}`]);
      for (const request of pnpmPackuments) assert.equal(request.headers["accept"], CORGI);

      recorder.clear();
      assertOk(await yarnCli(["install"], { cwd: project(), registry: viaProxy, sandbox: fresh }));
      const yarnPackuments = packumentRequests(recorder.requests());
      assert.deepEqual(yarnPackuments.map((request) => request.url).sort(), ["/@vault-probe%2flib", `/${APP}`]);
      for (const request of yarnPackuments) assert.equal(request.headers["accept"], CORGI);
    });

    await t.test("no client reaches the internet: yarn audit (hard-wired to registry.yarnpkg.com) hits the dead proxy", async () => {
      const yarnProject = project();
      assertOk(await yarnCli(["install"], { cwd: yarnProject, registry, sandbox }));
      const result = await yarnCli(["audit"], { cwd: yarnProject, registry, sandbox });
      assert.notEqual(result.code, 0);
      assert.match(`${result.stdout}${result.stderr}`, /registry\.yarnpkg\.com.*ECONNREFUSED 127\.0\.0\.1:9/s, describeResult(result));
    });

    await t.test("a version published later is listed", async () => {
      const lib12 = await packages.publishLib("1.2.0");
      const result = await npmCli(["view", LIB, "versions", "--json"], { cwd: npmProject, registry, sandbox });
      assertOk(result);
      assert.deepEqual(JSON.parse(result.stdout), ["1.0.0", "1.1.0", "1.2.0"]);
      assert.ok(existsSync(lib12.storagePath));
    });

    await t.test("Verdaccio serves a corrupted tarball as it is; npm refuses it (EINTEGRITY)", async () => {
      const lib12 = packages.lib.get("1.2.0");
      assert.ok(lib12 !== undefined);
      const garbage = await corruptTarball(lib12);
      const response = await fetch(`${upstream.url}${lib12.tarballPath}`);
      assert.equal(response.status, 200);
      const served = Buffer.from(await response.arrayBuffer());
      assert.equal(served.length, lib12.size);
      assert.ok(served.equals(garbage), "the corrupted bytes, not a refusal");
      const fresh = clientSandbox(join(dir, "clients-corrupt"));
      const into = consumerProject(join(dir, "project-corrupt"), { [LIB]: "1.2.0" }).dir;
      const result = await npmCli(["install"], { cwd: into, registry, sandbox: fresh });
      assert.notEqual(result.code, 0);
      assert.match(result.stderr, /EINTEGRITY/, describeResult(result));
      assert.equal(installedVersion(into, LIB), undefined);
    });
  } finally {
    await proxy?.close();
    await verdaccio?.stop();
    await rm(dir, { recursive: true, force: true });
  }
});
