/**
 * `artifact-vault cache warm` end to end: the built CLI in its own process, against the real
 * vault (in this process, on port 0) in front of real local upstreams that record what reaches
 * them — scripted origins (tests/support/origin-server.ts) for plain files, a PyPI index with
 * its files host and an npm registry; Debian's docker-registry with images pushed by skopeo; a
 * signed APT archive built offline, served from files. For each input kind: a first run fetches
 * exactly what the input names through the vault (and nothing it does not), the vault then has
 * it cached, a second run makes no upstream request at all and says everything was already
 * cached, and a run naming something the upstream lacks lists it and exits 1.
 */
import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { once } from "node:events";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { TestAptRepository } from "../support/apt/apt-repository.js";
import { ChecksumDatabase } from "../support/go/checksum-database.js";
import { moduleHashes, StaticModuleProxy, storedZip, zipEntries, type ModuleVersion } from "../support/go/module-proxy.js";
import { rawRequest } from "../support/http.js";
import { writeSampleImages } from "../support/oci/image-layout.js";
import { startRegistry } from "../support/oci/registry.js";
import { OriginServer } from "../support/origin-server.js";
import { waitFor } from "../support/process.js";
import { startTestVault, type TestVault } from "../support/test-vault.js";
import { requireTool } from "../support/tools.js";

const CLI = fileURLToPath(new URL("../../src/cli/main.js", import.meta.url));

const sha256 = (bytes: Uint8Array): string => createHash("sha256").update(bytes).digest("hex");
const sri = (bytes: Uint8Array): string => `sha512-${createHash("sha512").update(bytes).digest("base64")}`;

interface Run {
  readonly code: number | null;
  readonly out: string;
  readonly err: string;
}

/** Runs the built CLI's `cache warm` (without the caller's VAULT_* variables), `input` on standard input. */
async function warm(args: readonly string[], options: { readonly cwd?: string; readonly env?: NodeJS.ProcessEnv; readonly input?: string } = {}): Promise<Run> {
  const env: NodeJS.ProcessEnv = { ...process.env, ...options.env };
  if (options.env?.["VAULT_URL"] === undefined) delete env["VAULT_URL"];
  if (options.env?.["VAULT_API_KEY"] === undefined) delete env["VAULT_API_KEY"];
  const child = spawn(process.execPath, [CLI, "cache", "warm", ...args], { cwd: options.cwd, env, stdio: ["pipe", "pipe", "pipe"] });
  let out = "";
  let err = "";
  child.stdout.on("data", (chunk: Buffer) => (out += chunk.toString("utf8")));
  child.stderr.on("data", (chunk: Buffer) => (err += chunk.toString("utf8")));
  child.stdin.end(options.input ?? "");
  const [code] = (await once(child, "close")) as [number | null];
  return { code, out, err };
}

interface Summary {
  readonly total: number;
  readonly fetched: number;
  readonly cached: number;
  readonly failed: number;
}

/** The counts of the summary's first line. */
function summaryOf(run: Run): Summary {
  const match = /^warmed (\d+) items? in \S+: (\d+) fetched \([^)]*\), (\d+) already cached \([^)]*\), (\d+) failed$/m.exec(run.out);
  assert.ok(match !== null, `a summary line in:\n${run.out}\n${run.err}`);
  return { total: Number(match[1]), fetched: Number(match[2]), cached: Number(match[3]), failed: Number(match[4]) };
}

const describeRun = (run: Run): string => `exit ${run.code}\n--- stdout\n${run.out}--- stderr\n${run.err}`;

/** The cache keys the vault lists under `prefix`, once `expected` are all there (an entry is listed once durable, a moment after its download ends). */
async function cachedKeys(vault: TestVault, prefix: string, expected: readonly string[]): Promise<string[]> {
  let keys: string[] = [];
  try {
    await waitFor(`cache entries ${expected.join(", ")}`, async () => {
      const response = await rawRequest(vault.url, `/admin/cache/entries?prefix=${encodeURIComponent(prefix)}&limit=1000`, { headers: vault.auth("all") });
      assert.equal(response.status, 200, response.body.toString());
      keys = response.json<{ entries: Array<{ key: string }> }>().entries.map((entry) => entry.key);
      return expected.every((key) => keys.includes(key)) ? true : undefined;
    });
  } catch (error) {
    assert.fail(`${(error as Error).message}; cached under ${prefix}: ${keys.join(", ") || "nothing"}`);
  }
  return keys;
}

async function filesUnder(root: string): Promise<string[]> {
  const files: string[] = [];
  for (const entry of await readdir(root, { withFileTypes: true })) {
    const path = join(root, entry.name);
    if (entry.isDirectory()) files.push(...(await filesUnder(path)));
    else files.push(path);
  }
  return files;
}

/** Runs `body` with a scratch dir; the callbacks pushed to `stops` run afterwards, last first. */
async function scenario(prefix: string, body: (dir: string, stops: Array<() => Promise<unknown>>) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  const stops: Array<() => Promise<unknown>> = [];
  try {
    await body(dir, stops);
  } finally {
    for (const stop of stops.reverse()) await stop();
    await rm(dir, { recursive: true, force: true });
  }
}

test("cache warm: a list of vault paths and URLs (with a token), resumed from standard input", async () => {
  await scenario("vault-warm-paths-", async (dir, stops) => {
    const origin = await new OriginServer().start();
    stops.push(() => origin.stop());
    const big = Buffer.alloc(3 * 1024 * 1024, 7);
    const small = Buffer.from("a small file");
    origin.files.set("/dist/pkg/big-1.0.tar.gz", { body: big, chunkSize: 256 * 1024 });
    origin.files.set("/dist/pkg/small%20file.txt", { body: small });
    const vault = await startTestVault({
      proxyAuth: "token",
      tokens: [
        { name: "reader", scopes: ["read"] },
        { name: "all", scopes: ["read", "admin"] },
      ],
      extraYaml: `backends: [{type: http, name: files, config: {prefix: /files/, base_url: "${origin.url}/dist", timeout: 5}}]`,
    });
    stops.push(() => vault.close());
    const list = ["# what the build downloads", "/files/pkg/big-1.0.tar.gz", `${vault.url}/files/pkg/small%20file.txt`, ""].join("\n");
    await writeFile(join(dir, "downloads.txt"), list);

    // The proxy routes need a token: without one the run ends at the first answer, having fetched nothing.
    const refused = await warm(["downloads.txt", "--url", vault.url], { cwd: dir });
    assert.equal(refused.code, 1, describeRun(refused));
    assert.match(refused.err, /^error: the vault refused the request \(401.*--api-key/m);
    assert.equal(origin.requests.length, 0);

    const reader = { VAULT_API_KEY: vault.tokens["reader"] ?? "" };
    const first = await warm(["downloads.txt", "--url", vault.url], { cwd: dir, env: reader });
    assert.equal(first.code, 0, describeRun(first));
    assert.deepEqual(summaryOf(first), { total: 2, fetched: 2, cached: 0, failed: 0 });
    assert.match(first.out, /^fetched +3\.00 MiB +\/files\/pkg\/big-1\.0\.tar\.gz$/m);
    assert.match(first.out, /^fetched +12 B +\/files\/pkg\/small%20file\.txt$/m);
    assert.equal(first.err, "", "nothing on standard error when it is not a terminal");
    assert.equal(origin.count("/dist/pkg/big-1.0.tar.gz", "GET"), 1);
    assert.equal(origin.count("/dist/pkg/small%20file.txt", "GET"), 1);
    await cachedKeys(vault, "files/", ["files/pkg/big-1.0.tar.gz", "files/pkg/small%20file.txt"]);

    // Again, from standard input, as a URL through VAULT_URL: everything is cached, upstream hears nothing.
    const seen = origin.requests.length;
    const second = await warm(["-"], { cwd: dir, env: { ...reader, VAULT_URL: vault.url }, input: list });
    assert.equal(second.code, 0, describeRun(second));
    assert.deepEqual(summaryOf(second), { total: 2, fetched: 0, cached: 2, failed: 0 });
    assert.match(second.out, /^cached +3\.00 MiB +\/files\/pkg\/big-1\.0\.tar\.gz$/m);
    assert.equal(origin.requests.length, seen, "the second run made no upstream request");

    // A file upstream lacks, and a URL of another host (never asked for): listed, exit 1; the rest still warmed.
    const third = await warm(["-", "--url", vault.url], {
      env: reader,
      input: ["/files/pkg/small%20file.txt", "/files/pkg/missing-2.0.tar.gz", "https://downloads.example.org/files/pkg/big-1.0.tar.gz"].join("\n"),
    });
    assert.equal(third.code, 1, describeRun(third));
    assert.deepEqual(summaryOf(third), { total: 3, fetched: 0, cached: 1, failed: 2 });
    assert.match(third.out, /^ {2}\/files\/pkg\/missing-2\.0\.tar\.gz: not found upstream \(404\)$/m);
    assert.match(third.out, /^ {2}https:\/\/downloads\.example\.org\/files\/pkg\/big-1\.0\.tar\.gz: not on the vault/m);
    assert.match(third.err, /^error: 2 of 3 items could not be warmed$/m);
    assert.equal(origin.count("/dist/pkg/missing-2.0.tar.gz", "GET"), 1);
  });
});

test("cache warm: a pinned requirements.txt (with -r and --hash) through the pypi backend", async () => {
  await scenario("vault-warm-pypi-", async (dir, stops) => {
    const index = await new OriginServer().start();
    stops.push(() => index.stop());
    const cdn = await new OriginServer().start();
    stops.push(() => cdn.stop());
    const files = {
      demoWheel: Buffer.from("demo 1.0 wheel"),
      demoMetadata: Buffer.from("Metadata-Version: 2.1\nName: demo\nVersion: 1.0\n"),
      demoSdist: Buffer.from("demo 1.0 sdist"),
      demo2Wheel: Buffer.from("demo 2.0 wheel"),
      gammaWheel: Buffer.from("gamma 0.5 wheel"),
      gammaMetadata: Buffer.from("Metadata-Version: 2.1\nName: Vault_Probe.Gamma\nVersion: 0.5\n"),
      gammaSdist: Buffer.from("gamma 0.5 sdist"),
    };
    // `demo`: PEP 691 JSON, files on another host (as files.pythonhosted.org is to pypi.org).
    const demoFile = (filename: string, body: Buffer, metadata?: Buffer) => ({
      filename,
      url: `${cdn.url}/packages/ab/${filename}`,
      hashes: { sha256: sha256(body) },
      "core-metadata": metadata === undefined ? false : { sha256: sha256(metadata) },
    });
    index.files.set("/simple/demo/", {
      contentType: "application/vnd.pypi.simple.v1+json",
      body: Buffer.from(
        JSON.stringify({
          meta: { "api-version": "1.1" },
          name: "demo",
          files: [demoFile("demo-1.0-py3-none-any.whl", files.demoWheel, files.demoMetadata), demoFile("demo-1.0.tar.gz", files.demoSdist), demoFile("demo-2.0-py3-none-any.whl", files.demo2Wheel)],
        }),
      ),
    });
    cdn.files.set("/packages/ab/demo-1.0-py3-none-any.whl", { body: files.demoWheel });
    cdn.files.set("/packages/ab/demo-1.0-py3-none-any.whl.metadata", { body: files.demoMetadata });
    cdn.files.set("/packages/ab/demo-1.0.tar.gz", { body: files.demoSdist });
    cdn.files.set("/packages/ab/demo-2.0-py3-none-any.whl", { body: files.demo2Wheel });
    // `Vault_Probe.Gamma`: an index that only speaks PEP 503 HTML, files on its own host.
    index.files.set("/simple/vault-probe-gamma/", {
      contentType: "text/html",
      body: Buffer.from(
        `<!DOCTYPE html><html><body>` +
          `<a href="../../files/gamma/vault_probe_gamma-0.5-py3-none-any.whl#sha256=${sha256(files.gammaWheel)}" data-core-metadata="sha256=${sha256(files.gammaMetadata)}">vault_probe_gamma-0.5-py3-none-any.whl</a><br/>` +
          `<a href="../../files/gamma/Vault_Probe.Gamma-0.5.tar.gz#sha256=${sha256(files.gammaSdist)}">Vault_Probe.Gamma-0.5.tar.gz</a><br/>` +
          `</body></html>`,
      ),
    });
    index.files.set("/files/gamma/vault_probe_gamma-0.5-py3-none-any.whl", { body: files.gammaWheel });
    index.files.set("/files/gamma/vault_probe_gamma-0.5-py3-none-any.whl.metadata", { body: files.gammaMetadata });
    index.files.set("/files/gamma/Vault_Probe.Gamma-0.5.tar.gz", { body: files.gammaSdist });
    const vault = await startTestVault({
      extraYaml: `backends: [{type: pypi, name: pypi, config: {prefix: /pypi/, index_url: "${index.url}/simple", packages_url: "${cdn.url}/packages", ttl: 10m}}]`,
    });
    stops.push(() => vault.close());
    await writeFile(join(dir, "requirements.txt"), ["# pinned by pip-compile", "demo==1.0.0", "    # via app", "-r more-requirements.txt", ""].join("\n"));
    // Only the wheel's hash is listed: the sdist of that version is not what pip would install.
    await writeFile(join(dir, "more-requirements.txt"), `Vault_Probe.Gamma==0.5 \\\n    --hash=sha256:${sha256(files.gammaWheel)}\n`);

    const first = await warm(["requirements.txt", "--url", vault.url], { cwd: dir });
    assert.equal(first.code, 0, describeRun(first));
    // Two index pages, and five files: demo's wheel, its metadata and its sdist; gamma's wheel and its metadata.
    assert.deepEqual(summaryOf(first), { total: 7, fetched: 7, cached: 0, failed: 0 });
    for (const path of ["/packages/ab/demo-1.0-py3-none-any.whl", "/packages/ab/demo-1.0-py3-none-any.whl.metadata", "/packages/ab/demo-1.0.tar.gz"]) assert.equal(cdn.count(path, "GET"), 1, path);
    assert.equal(cdn.count("/packages/ab/demo-2.0-py3-none-any.whl"), 0, "another version is not warmed");
    for (const path of ["/simple/demo/", "/simple/vault-probe-gamma/", "/files/gamma/vault_probe_gamma-0.5-py3-none-any.whl", "/files/gamma/vault_probe_gamma-0.5-py3-none-any.whl.metadata"]) {
      assert.equal(index.count(path, "GET"), 1, path);
    }
    assert.equal(index.count("/files/gamma/Vault_Probe.Gamma-0.5.tar.gz"), 0, "a file whose hash the requirements do not list is not warmed");
    const keys = await cachedKeys(vault, "pypi/", [
      "pypi/simple/demo/index.json",
      "pypi/simple/vault-probe-gamma/index.json",
      `pypi/packages/sha256/${sha256(files.demoWheel)}/demo-1.0-py3-none-any.whl`,
      `pypi/packages/sha256/${sha256(files.demoSdist)}/demo-1.0.tar.gz`,
      `pypi/packages/sha256/${sha256(files.gammaWheel)}/vault_probe_gamma-0.5-py3-none-any.whl`,
    ]);
    assert.equal(keys.filter((key) => key.startsWith("pypi/packages/")).length, 5, keys.join("\n"));
    // The page pip asks for (with its Accept) is the one warmed: a hit.
    const page = await rawRequest(vault.url, "/pypi/simple/demo/", { headers: { accept: "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html; q=0.1, text/html; q=0.01" } });
    assert.equal(page.header("x-cache"), "HIT");

    const upstream = index.requests.length + cdn.requests.length;
    const second = await warm(["--requirements", "requirements.txt", "--url", vault.url, "--concurrency", "2"], { cwd: dir });
    assert.equal(second.code, 0, describeRun(second));
    assert.deepEqual(summaryOf(second), { total: 7, fetched: 0, cached: 7, failed: 0 });
    assert.equal(index.requests.length + cdn.requests.length, upstream, "the second run made no upstream request");

    const third = await warm(["--requirements", "-", "--url", vault.url], { cwd: dir, input: "demo==9.9\nnot-there==1.0\nflask>=3\n" });
    assert.equal(third.code, 1, describeRun(third));
    assert.match(third.out, /^ {2}pypi: demo==9\.9: the index lists no files of version 9\.9$/m);
    assert.match(third.out, /^ {2}pypi: the index page of not-there: not found upstream \(404/m);
    assert.match(third.out, /^ {2}pypi: flask>=3: not pinned to one version/m);
    assert.deepEqual(summaryOf(third), { total: 4, fetched: 0, cached: 1, failed: 3 });
  });
});

test("cache warm: a package-lock.json through the npm backend", async () => {
  await scenario("vault-warm-npm-", async (dir, stops) => {
    const registry = await new OriginServer().start();
    stops.push(() => registry.stop());
    const lib100 = Buffer.from("@acme/lib 1.0.0 tarball");
    const lib110 = Buffer.from("@acme/lib 1.1.0 tarball");
    const leftPad = Buffer.from("left-pad 1.3.0 tarball");
    registry.files.set("/@acme%2flib", {
      contentType: "application/json",
      body: Buffer.from(
        JSON.stringify({
          name: "@acme/lib",
          "dist-tags": { latest: "1.1.0" },
          versions: {
            "1.0.0": { name: "@acme/lib", version: "1.0.0", dist: { tarball: `${registry.url}/@acme/lib/-/lib-1.0.0.tgz`, integrity: sri(lib100) } },
            "1.1.0": { name: "@acme/lib", version: "1.1.0", dist: { tarball: `${registry.url}/@acme/lib/-/lib-1.1.0.tgz`, integrity: sri(lib110) } },
          },
        }),
      ),
    });
    registry.files.set("/left-pad", {
      contentType: "application/json",
      body: Buffer.from(
        JSON.stringify({
          name: "left-pad",
          "dist-tags": { latest: "1.3.0" },
          versions: { "1.3.0": { name: "left-pad", version: "1.3.0", dist: { tarball: `${registry.url}/left-pad/-/left-pad-1.3.0.tgz`, integrity: sri(leftPad) } } },
        }),
      ),
    });
    registry.files.set("/@acme/lib/-/lib-1.0.0.tgz", { body: lib100 });
    registry.files.set("/@acme/lib/-/lib-1.1.0.tgz", { body: lib110 });
    registry.files.set("/left-pad/-/left-pad-1.3.0.tgz", { body: leftPad });
    const vault = await startTestVault({ extraYaml: `backends: [{type: npm, name: npm, config: {prefix: /npm/, registry_url: "${registry.url}", ttl: 10m}}]` });
    stops.push(() => vault.close());
    // Written against the public registry, as most lockfiles are: only the paths are used.
    const lock = (packages: Record<string, unknown>): string => JSON.stringify({ name: "app", version: "1.0.0", lockfileVersion: 3, requires: true, packages: { "": { name: "app" }, ...packages } }, null, 2);
    await writeFile(
      join(dir, "package-lock.json"),
      lock({
        "node_modules/@acme/lib": { version: "1.0.0", resolved: "https://registry.npmjs.org/@acme/lib/-/lib-1.0.0.tgz", integrity: sri(lib100) },
        "node_modules/left-pad": { version: "1.3.0", resolved: "https://registry.npmjs.org/left-pad/-/left-pad-1.3.0.tgz", integrity: sri(leftPad) },
        "node_modules/left-pad/node_modules/@acme/lib": { version: "1.0.0", resolved: "https://registry.npmjs.org/@acme/lib/-/lib-1.0.0.tgz", integrity: sri(lib100) },
        "node_modules/from-git": { version: "1.0.0", resolved: "git+ssh://git@github.com/acme/from-git.git#0123456789abcdef" },
      }),
    );

    const first = await warm(["package-lock.json", "--url", vault.url], { cwd: dir });
    assert.equal(first.code, 0, describeRun(first));
    assert.deepEqual(summaryOf(first), { total: 2, fetched: 2, cached: 0, failed: 0 });
    assert.match(first.out, /^skipped 1 input \(not for the vault\):\n {2}npm: from-git@1\.0\.0: not from a registry \(git\+ssh source\)$/m);
    assert.equal(registry.count("/@acme/lib/-/lib-1.0.0.tgz", "GET"), 1);
    assert.equal(registry.count("/left-pad/-/left-pad-1.3.0.tgz", "GET"), 1);
    assert.equal(registry.count("/@acme/lib/-/lib-1.1.0.tgz"), 0, "a version the lockfile does not pin is not warmed");
    await cachedKeys(vault, "npm/tarballs/", ["npm/tarballs/@acme/lib/lib-1.0.0.tgz", "npm/tarballs/left-pad/left-pad-1.3.0.tgz"]);

    const seen = registry.requests.length;
    const second = await warm(["--package-lock", "package-lock.json", "--url", vault.url, "--quiet"], { cwd: dir });
    assert.equal(second.code, 0, describeRun(second));
    assert.deepEqual(summaryOf(second), { total: 2, fetched: 0, cached: 2, failed: 0 });
    assert.doesNotMatch(second.out, /^cached /m, "--quiet: the summary only");
    assert.equal(registry.requests.length, seen, "the second run made no upstream request");

    await writeFile(join(dir, "stale-lock.json"), lock({ "node_modules/left-pad": { version: "9.9.9", resolved: "https://registry.npmjs.org/left-pad/-/left-pad-9.9.9.tgz" } }));
    const third = await warm(["--package-lock", "stale-lock.json", "--url", vault.url], { cwd: dir });
    assert.equal(third.code, 1, describeRun(third));
    assert.match(third.out, /^ {2}npm: left-pad@9\.9\.9: not found upstream \(404/m);
    assert.match(third.err, /^error: 1 of 1 item could not be warmed$/m);
  });
});

test("cache warm: a go.sum through the go backend, verified against its checksum database", async () => {
  await scenario("vault-warm-go-", async (dir, stops) => {
    const proxy = await new OriginServer().start();
    stops.push(() => proxy.stop());
    const db = await new OriginServer().start();
    stops.push(() => db.stop());
    const greeting: ModuleVersion = { path: "example.test/Greeting", version: "v1.0.0", files: { "go.mod": "module example.test/Greeting\n\ngo 1.21\n", "greeting.go": "package greeting\n" } };
    const dep: ModuleVersion = { path: "example.test/dep", version: "v0.1.0", files: { "go.mod": "module example.test/dep\n", "dep.go": "package dep\n" } };
    const modules = new StaticModuleProxy();
    const sumdb = new ChecksumDatabase("sum.warm.test");
    for (const version of [greeting, dep]) modules.add(version, storedZip(zipEntries(version)));
    sumdb.add(...[greeting, dep].map((version) => ({ path: version.path, version: version.version, ...moduleHashes(version) })));
    for (const [path, body] of modules.files) proxy.files.set(`/${path}`, { body });
    for (const [path, body] of sumdb.files) db.files.set(`/${path}`, { body });
    const vault = await startTestVault({
      extraYaml: `backends: [{type: go, name: go, config: {prefix: /go/, proxy_url: "${proxy.url}", sumdb: "${sumdb.verifierKey} ${db.url}"}}]`,
    });
    stops.push(() => vault.close());
    // A build's go.sum: the source and go.mod of a module it compiles, the go.mod alone of one it only reads.
    await writeFile(
      join(dir, "go.sum"),
      [
        `example.test/Greeting v1.0.0 ${moduleHashes(greeting).zipHash}`,
        `example.test/Greeting v1.0.0/go.mod ${moduleHashes(greeting).modHash}`,
        `example.test/dep v0.1.0/go.mod ${moduleHashes(dep).modHash}`,
        "",
      ].join("\n"),
    );

    const first = await warm(["go.sum", "--url", vault.url], { cwd: dir });
    assert.equal(first.code, 0, describeRun(first));
    assert.deepEqual(summaryOf(first), { total: 4, fetched: 4, cached: 0, failed: 0 });
    for (const ext of ["info", "zip", "mod"]) assert.equal(proxy.count(`/example.test/!greeting/@v/v1.0.0.${ext}`, "GET"), 1, ext);
    assert.equal(proxy.count("/example.test/dep/@v/v0.1.0.mod", "GET"), 1);
    assert.equal(proxy.count("/example.test/dep/@v/v0.1.0.zip"), 0, "a module whose go.mod alone the go.sum records: its source is not warmed");
    assert.ok(db.requests.length > 0, "the vault verified against the checksum database");
    for (const path of ["/go/example.test/!greeting/@v/v1.0.0.zip", "/go/example.test/dep/@v/v0.1.0.mod"]) {
      await waitFor(`${path} cached`, async () => ((await rawRequest(vault.url, path)).header("x-cache") === "HIT" ? true : undefined));
    }

    const seen = proxy.requests.length + db.requests.length;
    const second = await warm(["--go-sum", "go.sum", "--url", vault.url], { cwd: dir });
    assert.equal(second.code, 0, describeRun(second));
    assert.deepEqual(summaryOf(second), { total: 4, fetched: 0, cached: 4, failed: 0 });
    assert.equal(proxy.requests.length + db.requests.length, seen, "the second run made no upstream request");

    await writeFile(join(dir, "go.sum"), `example.test/Greeting v9.9.9 ${moduleHashes(greeting).zipHash}\n`);
    const third = await warm(["go.sum", "--url", vault.url], { cwd: dir });
    assert.equal(third.code, 1, describeRun(third));
    assert.match(third.out, /^ {2}go: example\.test\/Greeting@v9\.9\.9 \.zip: /m);
    assert.match(third.err, /^error: 2 of 2 items could not be warmed$/m);
  });
});

test("cache warm: a Cargo.lock through the cargo backend", async () => {
  await scenario("vault-warm-cargo-", async (dir, stops) => {
    const registry = await new OriginServer().start();
    stops.push(() => registry.stop());
    // Stand-ins for .crate files: the vault checks bytes against the index's cksum, not what they hold.
    const greeting = Buffer.from("vault-greeting 1.0.0 crate");
    const shout = Buffer.from("vault-shout 1.0.0 crate");
    const indexLine = (name: string, vers: string, bytes: Buffer): string => `${JSON.stringify({ name, vers, deps: [], cksum: sha256(bytes), features: {}, yanked: false })}\n`;
    registry.files.set("/index/va/ul/vault-greeting", { body: Buffer.from(indexLine("vault-greeting", "1.0.0", greeting)) });
    registry.files.set("/index/va/ul/vault-shout", { body: Buffer.from(indexLine("vault-shout", "1.0.0", shout)) });
    registry.files.set("/dl/vault-greeting/1.0.0/download", { body: greeting });
    registry.files.set("/dl/vault-shout/1.0.0/download", { body: shout });
    const vault = await startTestVault({
      extraYaml: `backends: [{type: cargo, name: crates, config: {prefix: /cargo/, index_url: "${registry.url}/index/", dl_url: "${registry.url}/dl/{crate}/{version}/download", ttl: 10m}}]`,
    });
    stops.push(() => vault.close());
    const crates = "registry+https://github.com/rust-lang/crates.io-index";
    const lock = (packages: string): string => `# This file is automatically @generated by Cargo.\n# It is not intended for manual editing.\nversion = 4\n\n[[package]]\nname = "app"\nversion = "0.1.0"\n${packages}`;
    await writeFile(
      join(dir, "Cargo.lock"),
      lock(
        `\n[[package]]\nname = "vault-greeting"\nversion = "1.0.0"\nsource = "${crates}"\nchecksum = "${sha256(greeting)}"\n` +
          `\n[[package]]\nname = "vault-shout"\nversion = "1.0.0"\nsource = "sparse+https://index.crates.io/"\nchecksum = "${sha256(shout)}"\n` +
          `\n[[package]]\nname = "from-git"\nversion = "0.1.0"\nsource = "git+https://github.com/acme/from-git#0123456789abcdef0123456789abcdef01234567"\n`,
      ),
    );

    const first = await warm(["Cargo.lock", "--url", vault.url], { cwd: dir });
    assert.equal(first.code, 0, describeRun(first));
    assert.deepEqual(summaryOf(first), { total: 2, fetched: 2, cached: 0, failed: 0 });
    assert.match(first.out, /^skipped 1 input \(not for the vault\):\n {2}cargo: from-git@0\.1\.0: not from a registry \(git source\)$/m);
    for (const name of ["vault-greeting", "vault-shout"]) {
      assert.equal(registry.count(`/dl/${name}/1.0.0/download`, "GET"), 1, name);
      assert.equal(registry.count(`/index/va/ul/${name}`, "GET"), 1, `${name}'s index file, read by the vault to verify it`);
    }
    await waitFor("the index file cached", async () => ((await rawRequest(vault.url, "/cargo/va/ul/vault-shout")).header("x-cache") === "HIT" ? true : undefined));

    const seen = registry.requests.length;
    const second = await warm(["--cargo-lock", "Cargo.lock", "--url", vault.url], { cwd: dir });
    assert.equal(second.code, 0, describeRun(second));
    assert.deepEqual(summaryOf(second), { total: 2, fetched: 0, cached: 2, failed: 0 });
    assert.equal(registry.requests.length, seen, "the second run made no upstream request");

    await writeFile(join(dir, "Cargo.lock"), lock(`\n[[package]]\nname = "vault-greeting"\nversion = "9.9.9"\nsource = "${crates}"\n`));
    const third = await warm(["Cargo.lock", "--url", vault.url], { cwd: dir });
    assert.equal(third.code, 1, describeRun(third));
    assert.match(third.out, /^ {2}cargo: vault-greeting@9\.9\.9: not found upstream \(404/m);
    assert.match(third.err, /^error: 1 of 1 item could not be warmed$/m);
  });
});

test("cache warm: a Gemfile.lock through the rubygems backend", async () => {
  await scenario("vault-warm-gems-", async (dir, stops) => {
    const source = await new OriginServer().start();
    stops.push(() => source.stop());
    // Stand-ins for .gem files: the vault checks bytes against info/<gem>'s checksum, not what they hold.
    const rack = Buffer.from("rack 3.0.8 gem");
    const nokogiri = Buffer.from("nokogiri 1.16.0 x86_64-linux gem");
    const info = (lines: ReadonlyArray<[string, Buffer]>): Buffer => Buffer.from(`---\n${lines.map(([version, bytes]) => `${version} |checksum:${sha256(bytes)}\n`).join("")}`);
    source.files.set("/info/rack", { body: info([["3.0.8", rack]]) });
    source.files.set("/info/nokogiri", { body: info([["1.16.0-x86_64-linux", nokogiri]]) });
    source.files.set("/gems/rack-3.0.8.gem", { body: rack });
    source.files.set("/gems/nokogiri-1.16.0-x86_64-linux.gem", { body: nokogiri });
    const vault = await startTestVault({ extraYaml: `backends: [{type: rubygems, name: gems, config: {prefix: /rubygems/, source_url: "${source.url}", ttl: 10m}}]` });
    stops.push(() => vault.close());
    const lock = (specs: string): string =>
      `GIT\n  remote: https://github.com/acme/widget.git\n  revision: 0123456789abcdef\n  specs:\n    widget (0.3.0)\n\nGEM\n  remote: https://rubygems.org/\n  specs:\n${specs}\nPLATFORMS\n  x86_64-linux\n\nDEPENDENCIES\n  rack\n\nBUNDLED WITH\n   2.5.6\n`;
    await writeFile(join(dir, "Gemfile.lock"), lock("    nokogiri (1.16.0-x86_64-linux)\n      racc (~> 1.4)\n    rack (3.0.8)\n"));

    const first = await warm(["Gemfile.lock", "--url", vault.url], { cwd: dir });
    assert.equal(first.code, 0, describeRun(first));
    assert.deepEqual(summaryOf(first), { total: 2, fetched: 2, cached: 0, failed: 0 });
    assert.match(first.out, /^skipped 1 input \(not for the vault\):\n {2}rubygems: widget 0\.3\.0: not from a gem source \(git: https:\/\/github\.com\/acme\/widget\.git\)$/m);
    assert.equal(source.count("/gems/rack-3.0.8.gem", "GET"), 1);
    assert.equal(source.count("/gems/nokogiri-1.16.0-x86_64-linux.gem", "GET"), 1);
    assert.equal(source.count("/gems/racc-1.7.3.gem"), 0, "a dependency line is no gem of its own");
    await waitFor("info/rack cached", async () => ((await rawRequest(vault.url, "/rubygems/info/rack")).header("x-cache") === "HIT" ? true : undefined));

    const seen = source.requests.length;
    const second = await warm(["--gemfile-lock", "Gemfile.lock", "--url", vault.url], { cwd: dir });
    assert.equal(second.code, 0, describeRun(second));
    assert.deepEqual(summaryOf(second), { total: 2, fetched: 0, cached: 2, failed: 0 });
    assert.equal(source.requests.length, seen, "the second run made no upstream request");

    await writeFile(join(dir, "Gemfile.lock"), lock("    rack (9.9.9)\n"));
    const third = await warm(["Gemfile.lock", "--url", vault.url], { cwd: dir });
    assert.equal(third.code, 1, describeRun(third));
    assert.match(third.out, /^ {2}rubygems: rack-9\.9\.9: not found upstream \(404/m);
    assert.match(third.err, /^error: 1 of 1 item could not be warmed$/m);
  });
});

test("cache warm: images (an image, an index, a manifest list by digest; --platform) through the oci backend", async (t: TestContext) => {
  if (requireTool(t, "docker-registry") === undefined || requireTool(t, "skopeo") === undefined) return;
  await scenario("vault-warm-oci-", async (dir, stops) => {
    const samples = await writeSampleImages(join(dir, "layout"), { seed: "warm" });
    const registry = await startRegistry();
    stops.push(() => registry.stop());
    // (A failed push throws with skopeo's message.)
    for (const tag of ["oci-image", "oci-index", "docker-list"] as const) await registry.push(samples.layout.reference(tag), `vault-test/${tag}:v1`);
    const vault = await startTestVault({ extraYaml: `backends: [{type: oci, name: hub, config: {prefix: /hub/, registry_url: "${registry.url}", ttl: 10m, timeout: 10}}]` });
    stops.push(() => vault.close());
    await writeFile(join(dir, "images.txt"), ["# base images", "vault-test/oci-image:v1", `${registry.host}/vault-test/oci-index:v1`, ""].join("\n"));
    const listDigest = samples.dockerList.index.digest;
    const blobGets = async (repository: string, digests: readonly string[]): Promise<number[]> => {
      const requests = await registry.settledRequests({ method: "GET" });
      return digests.map((digest) => requests.filter((entry) => entry.path === `/v2/vault-test/${repository}/blobs/${digest}`).length);
    };
    const platformBlobs = (architecture: string) => ({
      index: samples.ociIndex.images.filter((image) => image.platform.architecture === architecture).flatMap((image) => image.blobs),
      list: samples.dockerList.images.filter((image) => image.platform.architecture === architecture).flatMap((image) => image.blobs),
    });

    // linux/amd64 only: every blob of the single image, the amd64 ones of the index and of the list.
    const first = await warm(["--images", "images.txt", "--image", `vault-test/docker-list@${listDigest}`, "--platform", "linux/amd64", "--url", vault.url], { cwd: dir });
    assert.equal(first.code, 0, describeRun(first));
    const amd = platformBlobs("amd64");
    const arm = platformBlobs("arm64");
    // Manifests: the image's, the index and its amd64 child, the list and its amd64 child.
    assert.deepEqual(summaryOf(first), { total: 5 + samples.ociImage.blobs.length + amd.index.length + amd.list.length, fetched: 5 + samples.ociImage.blobs.length + amd.index.length + amd.list.length, cached: 0, failed: 0 });
    assert.deepEqual(await blobGets("oci-image", samples.ociImage.blobs), samples.ociImage.blobs.map(() => 1));
    assert.deepEqual(await blobGets("oci-index", amd.index), amd.index.map(() => 1));
    assert.deepEqual(await blobGets("docker-list", amd.list), amd.list.map(() => 1));
    assert.deepEqual(await blobGets("oci-index", arm.index), arm.index.map(() => 0), "no arm64 blob was asked for");
    const hex = (digest: string): string => digest.slice("sha256:".length);
    await cachedKeys(vault, "hub/blobs/", [...samples.ociImage.blobs, ...amd.index, ...amd.list].map((digest) => `hub/blobs/sha256/${hex(digest)}`));

    // Every platform: only what the first run left out is fetched (the arm64 manifests and blobs).
    const before = (await registry.settledRequests()).length;
    const second = await warm(["--images", "images.txt", "--image", `vault-test/docker-list@${listDigest}`, "--url", vault.url], { cwd: dir });
    assert.equal(second.code, 0, describeRun(second));
    const fresh = (await registry.settledRequests()).slice(before);
    assert.deepEqual(
      fresh.map((entry) => `${entry.method} ${entry.path}`).sort(),
      [
        ...samples.ociIndex.images.filter((image) => image.platform.architecture === "arm64").map((image) => `GET /v2/vault-test/oci-index/manifests/${image.manifest.digest}`),
        ...samples.dockerList.images.filter((image) => image.platform.architecture === "arm64").map((image) => `GET /v2/vault-test/docker-list/manifests/${image.manifest.digest}`),
        ...arm.index.map((digest) => `GET /v2/vault-test/oci-index/blobs/${digest}`),
        ...arm.list.map((digest) => `GET /v2/vault-test/docker-list/blobs/${digest}`),
      ].sort(),
    );
    const summary = summaryOf(second);
    assert.equal(summary.fetched, 2 + arm.index.length + arm.list.length);
    assert.equal(summary.failed, 0);

    // And again: nothing reaches the registry.
    const settled = (await registry.settledRequests()).length;
    const third = await warm(["--images", "images.txt", "--image", `vault-test/docker-list@${listDigest}`, "--url", vault.url], { cwd: dir });
    assert.equal(third.code, 0, describeRun(third));
    assert.deepEqual(summaryOf(third), { total: summary.total, fetched: 0, cached: summary.total, failed: 0 });
    assert.equal((await registry.settledRequests()).length, settled, "the third run made no upstream request");

    const missing = await warm(["--image", "vault-test/not-pushed:v1", "--image", "vault-test/oci-index:v1", "--platform", "linux/s390x", "--url", vault.url], { cwd: dir });
    assert.equal(missing.code, 1, describeRun(missing));
    assert.match(missing.out, /^ {2}image: vault-test\/not-pushed:v1 manifest: not found upstream \(404: MANIFEST_UNKNOWN/m);
    assert.match(missing.out, /^ {2}image: vault-test\/oci-index:v1: no manifest for linux\/s390x \(the index has linux\/amd64, linux\/arm64\/v8\)$/m);
  });
});

test("cache warm: Debian packages (newest version, a pinned one) through the apt backend", async (t: TestContext) => {
  for (const tool of ["dpkg-deb", "apt-ftparchive", "gpg"]) if (requireTool(t, tool) === undefined) return;
  await scenario("vault-warm-apt-", async (dir, stops) => {
    const repository = await TestAptRepository.create({
      root: join(dir, "www", "debian"),
      work: join(dir, "apt-work"),
      architecture: "amd64",
      packages: [
        { name: "vault-probe-lib", version: "1.9" },
        { name: "vault-probe-lib", version: "1.10" },
        { name: "vault-probe-app", version: "1.0", depends: "vault-probe-lib (>= 1.9)" },
        { name: "vault-probe-tool", version: "2.0", architecture: "amd64" },
      ],
    });
    stops.push(() => repository.close());
    // The archive's files, served as they are by an origin that records every request.
    const mirror = await new OriginServer().start();
    stops.push(() => mirror.stop());
    for (const file of await filesUnder(repository.root)) mirror.files.set(`/debian/${relative(repository.root, file)}`, { body: await readFile(file) });
    const vault = await startTestVault({ extraYaml: `backends: [{type: apt, name: debian, config: {prefix: /debian/, mirror_url: "${mirror.url}/debian", ttl: 10m}}]` });
    stops.push(() => vault.close());
    const lib = repository.deb("vault-probe-lib", "1.10");
    const oldLib = repository.deb("vault-probe-lib", "1.9");
    const app = repository.deb("vault-probe-app");
    const tool = repository.deb("vault-probe-tool");
    const packagesXz = await repository.indexFile("main/binary-amd64/Packages.xz");

    const first = await warm(["--url", vault.url, "--suite", "bookworm", "--apt", "vault-probe-lib", "vault-probe-app", "vault-probe-tool"]);
    assert.equal(first.code, 0, describeRun(first));
    // InRelease, the Packages index, three pool files.
    assert.deepEqual(summaryOf(first), { total: 5, fetched: 5, cached: 0, failed: 0 });
    assert.equal(mirror.count("/debian/dists/bookworm/InRelease", "GET"), 1);
    assert.equal(mirror.count(`/debian/${packagesXz.byHashPath}`, "GET"), 1, "the index is read by hash, as apt reads it");
    for (const file of [lib, app, tool]) assert.equal(mirror.count(`/debian/${file.path}`, "GET"), 1, file.path);
    assert.equal(mirror.count(`/debian/${oldLib.path}`), 0, "an older version is not warmed");
    assert.match(first.out, /^fetched +\S+ \S+ +apt: vault-probe-lib 1\.10 \(all\)$/m);
    await cachedKeys(vault, "debian/pool/", [lib, app, tool].map((file) => `debian/${file.path}`));

    const seen = mirror.requests.length;
    const second = await warm(["--url", vault.url, "--suite", "bookworm", "--apt", "vault-probe-lib", "vault-probe-app", "vault-probe-tool"]);
    assert.equal(second.code, 0, describeRun(second));
    assert.deepEqual(summaryOf(second), { total: 5, fetched: 0, cached: 5, failed: 0 });
    assert.equal(mirror.requests.length, seen, "the second run made no upstream request");

    // A pinned version: the older one; one the archive lacks; a package it does not have.
    const third = await warm(["--url", vault.url, "--suite", "bookworm", "--apt", "vault-probe-lib=1.9", "vault-probe-app=7.0", "no-such-package"]);
    assert.equal(third.code, 1, describeRun(third));
    assert.equal(mirror.count(`/debian/${oldLib.path}`, "GET"), 1);
    assert.match(third.out, /^ {2}apt: vault-probe-app=7\.0: no version 7\.0 in bookworm main \(amd64\) \(it has 1\.0\)$/m);
    assert.match(third.out, /^ {2}apt: no-such-package: not in bookworm main \(amd64\)$/m);
    assert.deepEqual(summaryOf(third), { total: 5, fetched: 1, cached: 2, failed: 2 });

    const usage = await warm(["--url", vault.url, "--apt", "vault-probe-lib"]);
    assert.equal(usage.code, 2, describeRun(usage));
    assert.match(usage.err, /--apt needs --suite/);
  });
});
