/**
 * End to end with real parts: the real go command (Debian's, fully isolated: its own GOPATH,
 * module and build caches, HOME, no go env file, no network) downloads and builds through the
 * vault's `go` backend from a module proxy and a checksum database that nginx serves as static
 * files. Both are built here, offline: module zips made with `zip`, their go.sum hashes computed
 * by the go command itself (from a file:// GOPROXY), the checksum database's tree, tiles and
 * signed tree heads by tests/support/go/. The go command verifies every module against that
 * database through the vault (`GOSUMDB=<its key>`), as the vault does before it caches. What
 * nginx logged is what reached the upstream.
 */
import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { promisify } from "node:util";
import { ChecksumDatabase } from "../support/go/checksum-database.js";
import { goEnvironment, goSumHashes, runGo, zipModule, type GoResult } from "../support/go/go-tool.js";
import { StaticModuleProxy, type ModuleVersion } from "../support/go/module-proxy.js";
import { startTlsFront } from "../support/go/tls-front.js";
import { startNginx, type Nginx } from "../support/nginx.js";
import { startTestVault, type TestVault } from "../support/test-vault.js";
import { requireTool } from "../support/tools.js";

const execFileAsync = promisify(execFile);
/** Version lists and lookups stay fresh this long in the second vault; long enough for a step, short enough to wait out. */
const SHORT_TTL_MS = 4000;
const SUMDB = "sum.vault.test";

function greeting(version: string): ModuleVersion {
  return {
    path: "example.test/Greeting",
    version,
    files: {
      "go.mod": "module example.test/Greeting\n\ngo 1.19\n",
      "greeting.go": `package greeting\n\n// Hello says which version it is.\nfunc Hello() string { return "hello from ${version}" }\n`,
    },
  };
}

const shout: ModuleVersion = {
  path: "example.test/shout",
  version: "v1.0.0",
  files: {
    "go.mod": "module example.test/shout\n\ngo 1.19\n\nrequire example.test/Greeting v1.0.0\n",
    "shout.go": 'package shout\n\nimport (\n\t"strings"\n\n\tgreeting "example.test/Greeting"\n)\n\n// Hello shouts the greeting.\nfunc Hello() string { return strings.ToUpper(greeting.Hello()) + "!" }\n',
  },
};

function brittle(body: string): ModuleVersion {
  return { path: "example.test/brittle", version: "v1.0.0", files: { "go.mod": "module example.test/brittle\n\ngo 1.19\n", "brittle.go": `package brittle\n\n${body}\n` } };
}

const APP_GO_MOD = "module example.test/app\n\ngo 1.19\n\nrequire (\n\texample.test/Greeting v1.1.0\n\texample.test/shout v1.0.0\n)\n";
const APP_MAIN = 'package main\n\nimport (\n\t"fmt"\n\n\tgreeting "example.test/Greeting"\n\t"example.test/shout"\n)\n\nfunc main() {\n\tfmt.Println(shout.Hello())\n\tfmt.Println(greeting.Hello())\n}\n';

function assertGoOk(result: GoResult, what: string): void {
  assert.equal(result.code, 0, `${what} failed:\n${result.stdout}${result.stderr}`);
}

test("go backend end to end: go → artifact-vault → nginx-served module proxy and checksum database", async (t: TestContext) => {
  for (const tool of ["nginx", "go", "zip"]) if (requireTool(t, tool) === undefined) return;
  const { stdout: goVersion } = await execFileAsync("go", ["version"]);
  t.diagnostic(goVersion.trim());

  const dir = await mkdtemp(join(tmpdir(), "vault-e2e-go-"));
  let nginx: Nginx | undefined;
  const vaults: TestVault[] = [];
  try {
    // --- the upstream: a module proxy and a checksum database, as static files
    const root = join(dir, "upstream");
    const proxyRoot = join(root, "proxy");
    const sumdbRoot = join(root, "sumdb");
    const work = join(dir, "work");
    await mkdir(work, { recursive: true });
    const unchecked: ModuleVersion = {
      path: "example.test/unchecked",
      version: "v1.0.0",
      files: { "go.mod": "module example.test/unchecked\n\ngo 1.19\n", "unchecked.go": "package unchecked\n" },
    };
    const initial = [greeting("v1.0.0"), greeting("v1.1.0"), shout, brittle("// Stable is the real thing.\nconst Stable = true"), unchecked];
    const proxy = new StaticModuleProxy();
    for (const module of initial) proxy.add(module, await zipModule(work, module));
    await proxy.writeTo(proxyRoot);
    const sumdb = new ChecksumDatabase(SUMDB);
    sumdb.add(...(await goSumHashes(work, proxyRoot, initial)));
    await sumdb.writeTo(sumdbRoot);
    // Published later (its hashes computed now, from a staging tree, so that publishing is quick).
    const later = greeting("v1.2.0");
    const laterZip = await zipModule(work, later);
    const staging = new StaticModuleProxy();
    staging.add(later, laterZip);
    await staging.writeTo(join(work, "staging"));
    const [laterHashes] = await goSumHashes(work, join(work, "staging"), [later]);
    assert.ok(laterHashes !== undefined);

    nginx = await startNginx({ dir: join(dir, "nginx"), root });
    const upstream = nginx;

    const startVault = async (ttl: string): Promise<TestVault> => {
      const vault = await startTestVault({
        extraYaml: [
          "backends:",
          `  - {type: go, name: go, config: {prefix: /go/, proxy_url: "${upstream.url}/proxy", sumdb: "${sumdb.verifierKey} ${upstream.url}/sumdb", nosumdb: [example.test/unchecked], ttl: ${ttl}, timeout: 10}}`,
        ].join("\n"),
      });
      vaults.push(vault);
      return vault;
    };
    const vault = await startVault("1h");

    let runs = 0;
    /** A new isolated go environment, and a copy of the app without go.sum, both empty of any cache. */
    const fresh = async (through: TestVault): Promise<{ app: string; env: Record<string, string> }> => {
      const run = join(dir, `run-${++runs}`);
      const app = join(run, "app");
      await mkdir(app, { recursive: true });
      await writeFile(join(app, "go.mod"), APP_GO_MOD);
      await writeFile(join(app, "main.go"), APP_MAIN);
      return { app, env: await goEnvironment(join(run, "go"), { proxy: `${through.url}/go/`, sumdb: sumdb.verifierKey }) };
    };
    const buildAndRun = async (app: string, env: Record<string, string>): Promise<string> => {
      assertGoOk(await runGo(["mod", "download"], { cwd: app, env }), "go mod download");
      assertGoOk(await runGo(["build", "-o", "app", "."], { cwd: app, env }), "go build");
      const { stdout } = await execFileAsync(join(app, "app"));
      return stdout;
    };

    await t.test("go mod download and go build through the vault, every module checked against the checksum database", async () => {
      const { app, env } = await fresh(vault);
      assert.equal(await buildAndRun(app, env), "HELLO FROM V1.1.0!\nhello from v1.1.0\n");
      // The go command wrote go.sum from what the database proved, through the vault.
      const goSum = await readFile(join(app, "go.sum"), "utf8");
      const greetingHash = (await goSumHashes(work, proxyRoot, [greeting("v1.1.0")]))[0]?.zipHash ?? "";
      assert.ok(goSum.includes(`example.test/Greeting v1.1.0 ${greetingHash}\n`), goSum);
      assert.ok(goSum.includes("example.test/shout v1.0.0/go.mod h1:"), goSum);
      const requests = upstream.requests();
      assert.ok(requests.some((entry) => entry.uri === "/proxy/example.test/!greeting/@v/v1.1.0.zip"), "the capital went upstream case-escaped");
      assert.ok(requests.some((entry) => entry.uri.startsWith("/sumdb/lookup/")) && requests.some((entry) => entry.uri.startsWith("/sumdb/tile/8/0/")), "the database was read");
      assert.deepEqual(
        // (nginx's readiness probe asks for `/`.)
        requests.filter((entry) => entry.uri !== "/" && !entry.userAgent.startsWith("artifact-vault/")),
        [],
        "only the vault talks to the upstream",
      );
    });

    await t.test("a second build with an empty module cache and GOPATH makes no upstream request", async () => {
      const before = upstream.requests().length;
      const { app, env } = await fresh(vault);
      assert.equal(await buildAndRun(app, env), "HELLO FROM V1.1.0!\nhello from v1.1.0\n");
      assert.equal(upstream.requests().length, before, JSON.stringify(upstream.requests().slice(before)));
    });

    await t.test("go list -m -versions shows the versions", async () => {
      const { app, env } = await fresh(vault);
      const listed = await runGo(["list", "-m", "-versions", "example.test/Greeting"], { cwd: app, env });
      assertGoOk(listed, "go list -m -versions");
      assert.equal(listed.stdout.trim(), "example.test/Greeting v1.0.0 v1.1.0");
    });

    await t.test("a zip that does not match the checksum database is refused and never cached", async () => {
      const zipFile = join(proxyRoot, proxy.pathOf("example.test/brittle", "v1.0.0", "zip"));
      const good = await readFile(zipFile);
      // Another valid module zip, which the go command would take if nothing checked it.
      await writeFile(zipFile, await zipModule(work, brittle("// Stable was replaced upstream.\nconst Stable = false")));
      const uri = "/proxy/example.test/brittle/@v/v1.0.0.zip";
      for (let attempt = 1; attempt <= 2; attempt++) {
        const { env } = await fresh(vault);
        const result = await runGo(["mod", "download", "-json", "example.test/brittle@v1.0.0"], { cwd: env["HOME"] ?? dir, env });
        assert.notEqual(result.code, 0, `attempt ${attempt}: go mod download must fail:\n${result.stdout}`);
        assert.equal((await upstream.logged(uri, attempt)).length, attempt, `attempt ${attempt} went upstream again: nothing was cached`);
      }
      assert.ok(vault.logs().some((line) => typeof line["reason"] === "string" && line["reason"].includes("failed verification against the checksum database")));
      await writeFile(zipFile, good);
      const { env } = await fresh(vault);
      assertGoOk(await runGo(["mod", "download", "-json", "example.test/brittle@v1.0.0"], { cwd: env["HOME"] ?? dir, env }), "go mod download of the repaired module");
      const cached = await fetch(`${vault.url}/go/example.test/brittle/@v/v1.0.0.zip`, { method: "HEAD" });
      assert.equal(cached.headers.get("x-cache"), "HIT");
    });

    await t.test("the go command checks modules against the checksum database through the vault (nosumdb: the vault does not)", async () => {
      const zipFile = join(proxyRoot, proxy.pathOf(unchecked.path, unchecked.version, "zip"));
      await writeFile(zipFile, await zipModule(work, { ...unchecked, files: { ...unchecked.files, "extra.go": "package unchecked\n" } }));
      const { env } = await fresh(vault);
      const result = await runGo(["mod", "download", "-json", "example.test/unchecked@v1.0.0"], { cwd: env["HOME"] ?? dir, env });
      assert.notEqual(result.code, 0, result.stdout);
      assert.match(result.stdout + result.stderr, /checksum mismatch/);
      // The vault served and kept it, unverified, as configured; the go command refused it.
      assert.equal((await fetch(`${vault.url}/go/example.test/unchecked/@v/v1.0.0.zip`, { method: "HEAD" })).headers.get("x-cache"), "HIT");
    });

    await t.test("auth.proxy: token, behind TLS: the token in GOPROXY's user info (the go command sends it over https only)", async () => {
      if (requireTool(t, "openssl") === undefined) return;
      const secured = await startTestVault({
        proxyAuth: "token",
        tokens: [{ name: "ci", scopes: ["read"] }],
        extraYaml: ["backends:", `  - {type: go, name: go, config: {prefix: /go/, proxy_url: "${upstream.url}/proxy", sumdb: "${sumdb.verifierKey} ${upstream.url}/sumdb"}}`].join("\n"),
      });
      vaults.push(secured);
      const front = await startTlsFront(work, secured.url);
      try {
        const token = secured.tokens["ci"] ?? "";
        const { env } = await fresh(secured);
        const cwd = env["HOME"] ?? dir;
        const trusted = { ...env, SSL_CERT_FILE: front.certificateFile };
        const withToken = `${front.url.replace("https://", `https://x:${token}@`)}/go/`;
        assertGoOk(await runGo(["mod", "download", "-json", "example.test/shout@v1.0.0"], { cwd, env: { ...trusted, GOPROXY: withToken } }), "go mod download with the token");
        const plain = await runGo(["mod", "download", "-json", "example.test/Greeting@v1.0.0"], { cwd, env: { ...trusted, GOPROXY: `${secured.url.replace("http://", `http://x:${token}@`)}/go/` } });
        assert.notEqual(plain.code, 0);
        assert.match(plain.stdout + plain.stderr, /refusing to pass credentials to insecure URL/);
        const anonymous = await runGo(["mod", "download", "-json", "example.test/Greeting@v1.0.0"], { cwd, env: { ...trusted, GOPROXY: `${front.url}/go/` } });
        assert.notEqual(anonymous.code, 0, "without the token nothing is served");
        assert.match(anonymous.stdout + anonymous.stderr, /401/);
        // Or in ~/.netrc (NETRC names another file), for the vault's host.
        await writeFile(join(cwd, ".netrc"), `machine 127.0.0.1 login x password ${token}\n`, { mode: 0o600 });
        assertGoOk(await runGo(["mod", "download", "-json", "example.test/Greeting@v1.0.0"], { cwd, env: { ...trusted, GOPROXY: `${front.url}/go/` } }), "go mod download with ~/.netrc");
      } finally {
        await front.close();
      }
    });

    // A second vault with a short ttl, for freshness and outages.
    const shortVault = await startVault(`${SHORT_TTL_MS}ms`);
    const listUrl = `${shortVault.url}/go/example.test/!greeting/@v/list`;
    const listVersions = async (): Promise<string> => {
      const { app, env } = await fresh(shortVault);
      const listed = await runGo(["list", "-m", "-versions", "example.test/Greeting"], { cwd: app, env });
      assertGoOk(listed, "go list -m -versions");
      return listed.stdout.trim();
    };

    await t.test("a version published upstream is invisible within the ttl and visible after it", async () => {
      const { app, env } = await fresh(shortVault);
      assert.equal(await buildAndRun(app, env), "HELLO FROM V1.1.0!\nhello from v1.1.0\n");
      assert.equal(await listVersions(), "example.test/Greeting v1.0.0 v1.1.0");
      const listUri = "/proxy/example.test/!greeting/@v/list";
      const listsBefore = upstream.requests(listUri).length;

      proxy.add(later, laterZip);
      await proxy.writeTo(proxyRoot);
      sumdb.add(laterHashes);
      await sumdb.writeTo(sumdbRoot);

      const cached = await fetch(listUrl);
      assert.equal(cached.headers.get("x-cache"), "HIT");
      assert.equal(await cached.text(), "v1.0.0\nv1.1.0\n");
      assert.equal(upstream.requests(listUri).length, listsBefore, "no upstream request while fresh");

      await sleep(SHORT_TTL_MS + 300);
      assert.equal(await listVersions(), "example.test/Greeting v1.0.0 v1.1.0 v1.2.0");
      const revalidation = (await upstream.logged(listUri, listsBefore + 1)).at(-1);
      assert.notEqual(revalidation?.ifNoneMatch, "", "the list was revalidated with the upstream's ETag");
      // The new version is verified against the grown tree, by the vault and by the go command.
      assertGoOk(await runGo(["mod", "download", "-json", "example.test/Greeting@v1.2.0"], { cwd: app, env }), "go mod download of the new version");
    });

    await t.test("with the upstream stopped, a fresh module cache still downloads and builds from the vault", async () => {
      await upstream.stop();
      await sleep(SHORT_TTL_MS + 300); // lists and lookups are stale now: served STALE, not refetched
      const { app, env } = await fresh(shortVault);
      assert.equal(await buildAndRun(app, env), "HELLO FROM V1.1.0!\nhello from v1.1.0\n");
      assert.equal(await listVersions(), "example.test/Greeting v1.0.0 v1.1.0 v1.2.0");
      const list = await fetch(listUrl);
      assert.equal(list.headers.get("x-cache"), "STALE");
      assert.equal(await list.text(), "v1.0.0\nv1.1.0\nv1.2.0\n");
    });
  } finally {
    await Promise.all(vaults.map((vault) => vault.close()));
    await nginx?.stop();
    await rm(dir, { recursive: true, force: true });
  }
});
