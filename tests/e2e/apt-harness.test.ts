/**
 * The APT test harness checked on its own, with no vault in between: a signed, by-hash Debian
 * archive built here (dpkg-deb, dpkg-source, apt-ftparchive, gpg) and served by Debian's nginx,
 * and the real apt-get, isolated from the machine's apt, updating from it and downloading
 * binary and source packages. What nginx logged is what apt asked for.
 */
import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { existsSync, readdirSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  aptDownload,
  aptListFiles,
  aptProblems,
  aptRun,
  aptSourceDownload,
  aptUpdate,
  aptVersions,
  createAptEnv,
  type AptEnv,
  type AptResult,
} from "../support/apt/apt-get.js";
import { TestAptRepository } from "../support/apt/apt-repository.js";
import { headerLogging, readHeaderLog, type HeaderLoggedRequest } from "../support/apt/header-log.js";
import { startNginx, type Nginx } from "../support/nginx.js";
import { requireTool } from "../support/tools.js";

const sha256 = (bytes: Uint8Array): string => createHash("sha256").update(bytes).digest("hex");

function assertAptOk(result: AptResult, what: string): void {
  assert.equal(result.code, 0, `${what} failed:\n${result.output}`);
  assert.deepEqual(aptProblems(result), [], `${what} warned:\n${result.output}`);
}

/** Reads the header log from where the previous call stopped. */
function logCursor(file: string): () => HeaderLoggedRequest[] {
  let seen = 0;
  return () => {
    const all = readHeaderLog(file);
    const fresh = all.slice(seen);
    seen = all.length;
    return fresh;
  };
}

test("apt harness: the real apt-get, isolated, against a signed by-hash archive on nginx", async (t: TestContext) => {
  for (const tool of ["nginx", "apt-get", "apt-ftparchive", "dpkg-deb", "dpkg-source", "gpg"]) if (requireTool(t, tool) === undefined) return;

  const dir = await mkdtemp(join(tmpdir(), "vault-e2e-apt-harness-"));
  let nginx: Nginx | undefined;
  let repository: TestAptRepository | undefined;
  try {
    const www = join(dir, "www");
    repository = await TestAptRepository.create({ root: join(www, "debian"), work: join(dir, "archive-work"), sources: true });
    const repo = repository;
    const logging = headerLogging(join(dir, "nginx"));
    nginx = await startNginx({ dir: join(dir, "nginx"), root: www, httpExtra: logging.httpExtra, serverExtra: logging.serverExtra });
    const archiveUrl = `${nginx.url}/debian`;
    const fresh = logCursor(logging.file);
    fresh(); // nginx's readiness probe

    const env: AptEnv = await createAptEnv({
      dir: join(dir, "apt"),
      sources: [
        { url: archiveUrl, suite: repo.codename, keyring: repo.keyring },
        { url: archiveUrl, suite: repo.codename, keyring: repo.keyring, type: "deb-src" },
      ],
    });
    const downloads = join(dir, "downloads");
    await mkdir(downloads);

    await t.test("the archive is laid out as Debian's: pool paths, by-hash copies, signatures", async () => {
      const lib = repo.deb("vault-probe-lib", "1.0");
      assert.equal(lib.path, "pool/main/v/vault-probe-lib/vault-probe-lib_1.0_all.deb");
      assert.equal(sha256(await readFile(repo.pathOf(lib.path))), lib.sha256);
      const release = await repo.release();
      assert.match(release, /^Acquire-By-Hash: yes$/m);
      assert.match(release, /^Suite: stable$/m);
      assert.match(release, /^Codename: bookworm$/m);
      assert.doesNotMatch(release, /^SHA512:/m);
      const packagesXz = await repo.indexFile(`main/binary-${repo.architecture}/Packages.xz`);
      assert.equal(sha256(await readFile(repo.pathOf(packagesXz.byHashPath))), packagesXz.sha256);
      for (const name of ["InRelease", "Release.gpg"]) assert.ok(existsSync(repo.pathOf(`${repo.dist}/${name}`)), name);
      assert.match(await repo.packagesIndex(), /^Depends: vault-probe-lib \(>= 1\.0\)$/m);
    });

    await t.test("apt-get update verifies InRelease with signed-by and fetches the .xz indexes by hash", async () => {
      const result = await aptUpdate(env);
      assertAptOk(result, "apt-get update");
      const requests = fresh();
      assert.equal(requests[0]?.uri, `/debian/${repo.dist}/InRelease`);
      const expected = await Promise.all(
        [`main/source/Sources.xz`, `main/binary-${repo.architecture}/Packages.xz`, `main/i18n/Translation-en.xz`].map(async (name) => `/debian/${(await repo.indexFile(name)).byHashPath}`),
      );
      assert.deepEqual(requests.slice(1).map((request) => request.uri).sort(), expected.sort());
      assert.ok(requests.every((request) => request.status === 200));
      const lists = await aptListFiles(env);
      assert.ok(lists.some((name) => name.endsWith("_InRelease")), lists.join("\n"));
      assert.ok(lists.some((name) => name.endsWith(`_binary-${repo.architecture}_Packages`)), lists.join("\n"));
      assert.deepEqual(await aptVersions(env, "vault-probe-app"), ["1.0"]);
    });

    await t.test("apt-get download fetches the pool files, and their sha256s match", async () => {
      const result = await aptDownload(env, ["vault-probe-app", "vault-probe-lib"], downloads);
      assertAptOk(result, "apt-get download");
      for (const name of ["vault-probe-app", "vault-probe-lib"]) {
        const deb = repo.deb(name, "1.0");
        const file = deb.path.split("/").at(-1) ?? "";
        assert.equal(sha256(await readFile(join(downloads, file))), deb.sha256, file);
      }
      assert.deepEqual(
        fresh().map((request) => request.uri),
        ["vault-probe-app", "vault-probe-lib"].map((name) => `/debian/${repo.deb(name, "1.0").path}`),
      );
    });

    await t.test("a second apt-get update with nothing changed is one conditional request for InRelease", async () => {
      assertAptOk(await aptUpdate(env), "apt-get update");
      const requests = fresh();
      assert.deepEqual(
        requests.map((request) => [request.uri, request.status]),
        [[`/debian/${repo.dist}/InRelease`, 304]],
      );
      assert.notEqual(requests[0]?.ifModifiedSince, "");
    });

    await t.test("a republished version appears after the next apt-get update; old by-hash files stay", async () => {
      const before = await repo.indexFile(`main/binary-${repo.architecture}/Packages.xz`);
      const [added] = await repo.republish([{ name: "vault-probe-lib", version: "1.1" }]);
      assert.equal(added?.path, "pool/main/v/vault-probe-lib/vault-probe-lib_1.1_all.deb");
      assert.ok(existsSync(repo.pathOf(before.byHashPath)), "the previous Packages.xz is still there by hash");
      assert.deepEqual(await aptVersions(env, "vault-probe-lib"), ["1.0"], "not before an update");

      assertAptOk(await aptUpdate(env), "apt-get update");
      const requests = fresh();
      assert.deepEqual(requests[0] && [requests[0].uri, requests[0].status], [`/debian/${repo.dist}/InRelease`, 200]);
      const after = await repo.indexFile(`main/binary-${repo.architecture}/Packages.xz`);
      assert.ok(
        requests.some((request) => request.uri === `/debian/${after.byHashPath}`),
        requests.map((request) => request.uri).join("\n"),
      );
      assert.deepEqual(await aptVersions(env, "vault-probe-lib"), ["1.1", "1.0"]);

      const result = await aptDownload(env, ["vault-probe-lib"], downloads);
      assertAptOk(result, "apt-get download vault-probe-lib");
      const deb = repo.deb("vault-probe-lib", "1.1");
      assert.equal(sha256(await readFile(join(downloads, "vault-probe-lib_1.1_all.deb"))), deb.sha256);
      assert.deepEqual(fresh().map((request) => request.uri), [`/debian/${deb.path}`]);
    });

    await t.test("apt-get source --download-only fetches the .dsc and the tarball", async () => {
      const sources = join(dir, "sources");
      await mkdir(sources);
      const result = await aptSourceDownload(env, ["vault-probe-app"], sources);
      assertAptOk(result, "apt-get source");
      const files = repo.poolFiles.filter((file) => file.package === "vault-probe-app" && file.architecture === "source");
      assert.equal(files.length, 2);
      for (const file of files) {
        const name = file.path.split("/").at(-1) ?? "";
        assert.equal(sha256(await readFile(join(sources, name))), file.sha256, name);
      }
      assert.deepEqual(fresh().map((request) => request.uri).sort(), files.map((file) => `/debian/${file.path}`).sort());
    });

    await t.test("a corrupted .deb upstream fails apt's hash check and leaves no .deb", async () => {
      const deb = repo.deb("vault-probe-app", "1.0");
      await repo.corruptPoolFile(deb.path);
      const target = join(dir, "corrupt");
      await mkdir(target);
      const result = await aptDownload(env, ["vault-probe-app"], target);
      assert.equal(result.code, 100, result.output);
      assert.match(result.output, /Hash Sum mismatch/);
      assert.equal(fresh().length, 1, "no retry (Acquire::Retries 0)");
      // apt keeps what it got as `<file>.FAILED`, never under the package's name.
      assert.deepEqual(readdirSync(target), ["vault-probe-app_1.0_all.deb.FAILED"]);
      await repo.restorePoolFile(deb.path);
      assert.equal(sha256(await readFile(repo.pathOf(deb.path))), deb.sha256);
    });

    await t.test("proxy mode: the source keeps its URL, apt sends absolute-form requests to the proxy", async () => {
      // nginx answers absolute-form requests for any host from its only server, so it can stand in for a proxy.
      const upstreamUrl = "http://deb.example.invalid:8080/debian";
      const proxied = await createAptEnv({ dir: join(dir, "apt-proxy"), proxy: `${nginx?.url ?? ""}/`, languages: ["none"], sources: [{ url: upstreamUrl, suite: repo.codename, keyring: repo.keyring }] });
      assertAptOk(await aptUpdate(proxied), "apt-get update through a proxy");
      const requests = fresh();
      assert.equal(requests[0]?.request, `GET ${upstreamUrl}/${repo.dist}/InRelease HTTP/1.1`);
      assert.ok(requests.every((request) => request.host === "deb.example.invalid:8080"));
      assertAptOk(await aptDownload(proxied, ["vault-probe-app=1.0"], join(dir, "apt-proxy")), "apt-get download through a proxy");
      assert.deepEqual(fresh().map((request) => request.request), [`GET ${upstreamUrl}/${repo.deb("vault-probe-app", "1.0").path} HTTP/1.1`]);
    });

    await t.test("apt's state stays in the env: its config names only the env's directories", async () => {
      const dump = await aptRun("apt-config", env, ["dump"]);
      assert.equal(dump.code, 0, dump.output);
      for (const name of ["Dir::State::lists", "Dir::State::status", "Dir::Cache::archives", "Dir::Etc::sourcelist", "Dir::Etc::parts"]) {
        const value = new RegExp(`^${name} "([^"]*)";$`, "m").exec(dump.stdout)?.[1] ?? "";
        assert.ok(value.startsWith(env.dir), `${name} is ${value}`);
      }
      const host = new URL(archiveUrl).host;
      const machineLists = existsSync("/var/lib/apt/lists") ? readdirSync("/var/lib/apt/lists") : [];
      assert.deepEqual(
        machineLists.filter((name) => name.startsWith(host)),
        [],
      );
    });
  } finally {
    await nginx?.stop();
    await repository?.close();
    await rm(dir, { recursive: true, force: true });
  }
});
