/**
 * End to end with real parts: the real pip (in a fresh venv, its config, cache and find-links
 * neutralised by `--isolated --no-cache-dir` and PIP_CONFIG_FILE) installs through the vault's
 * `pypi` backend from a PyPI-style index that Debian's nginx serves with `Accept` negotiation.
 * The packages are built here, offline, with setuptools. What nginx logged is what reached the
 * upstream.
 */
import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { readdirSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { devNull, tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { promisify } from "node:util";
import { startNginx, type Nginx } from "../support/nginx.js";
import { buildDistribution, compareVersions, makeVenv, requirePythons, type DistributionSpec } from "../support/python.js";
import { normalise, pypiNginxConfig, StaticPypiIndex } from "../support/pypi-upstream.js";
import { startTestVault, type TestVault } from "../support/test-vault.js";
import { requireTool } from "../support/tools.js";

const execFileAsync = promisify(execFile);
/** Index pages stay fresh this long in the vault; long enough for a step, short enough to wait out. */
const PAGE_TTL_MS = 3000;
const PIP_JSON_ACCEPT = "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html; q=0.1, text/html; q=0.01";
const UPSTREAM_USER = "indexuser";
const UPSTREAM_PASSWORD = "s3cret-index-password";

interface PipResult {
  readonly code: number;
  readonly output: string;
}

/** Runs pip from the venv, isolated from any user or site config, its cache off. */
async function pip(pipPath: string, args: readonly string[]): Promise<PipResult> {
  try {
    const { stdout, stderr } = await execFileAsync(pipPath, ["--isolated", "--no-cache-dir", "--disable-pip-version-check", "--no-input", ...args], {
      env: { PATH: process.env["PATH"] ?? "", HOME: tmpdir(), PIP_CONFIG_FILE: devNull, PYTHONDONTWRITEBYTECODE: "1" },
      maxBuffer: 16 * 1024 * 1024,
    });
    return { code: 0, output: `${stdout}${stderr}` };
  } catch (error) {
    const failure = error as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof failure.code === "number" ? failure.code : 1, output: `${failure.stdout ?? ""}${failure.stderr ?? ""}` };
  }
}

function assertPipOk(result: PipResult, what: string): void {
  assert.equal(result.code, 0, `${what} failed:\n${result.output}`);
}

/** `name-version` of every distribution installed into a `--target` directory. */
function installed(target: string): string[] {
  return readdirSync(target)
    .filter((entry) => entry.endsWith(".dist-info"))
    .map((entry) => {
      const stem = entry.replace(/\.dist-info$/, "");
      const dash = stem.lastIndexOf("-");
      return `${normalise(stem.slice(0, dash))}-${stem.slice(dash + 1)}`;
    })
    .sort();
}

const sha256 = (bytes: Uint8Array): string => createHash("sha256").update(bytes).digest("hex");

/** Every link a client can follow in a page (HTML hrefs, JSON urls), as written. */
function linksIn(body: string, json: boolean): string[] {
  if (json) {
    const page = JSON.parse(body) as { files?: Array<{ url: string }> };
    return (page.files ?? []).map((file) => file.url);
  }
  return [...body.matchAll(/\shref\s*=\s*("([^"]*)"|'([^']*)'|([^\s>]+))/gi)].map((match) => (match[2] ?? match[3] ?? match[4] ?? "").replace(/&amp;/g, "&"));
}

test("pypi backend end to end: pip → artifact-vault → nginx-served index", async (t: TestContext) => {
  if (requireTool(t, "nginx") === undefined) return;
  const pythons = requirePythons(t);
  if (pythons === undefined) return;
  const python = pythons.build;
  t.diagnostic(`pip ${pythons.pipVersion} (venv from ${pythons.venv}), distributions built with ${python}`);

  const dir = await mkdtemp(join(tmpdir(), "vault-e2e-pypi-"));
  let nginx: Nginx | undefined;
  const vaults: TestVault[] = [];
  try {
    // --- the packages, built offline with setuptools
    const dist = join(dir, "dist");
    const later = join(dir, "dist-later");
    const build = join(dir, "build");
    const specs: Array<DistributionSpec & { out?: string }> = [
      { name: "vault-probe-alpha", version: "1.0", sdist: true },
      // Never installable here: pip must read data-requires-python / requires-python to skip it.
      { name: "vault-probe-alpha", version: "9.0", requiresPython: "<3" },
      { name: "vault-probe-beta", version: "1.0", requires: ["vault-probe-alpha>=1.0"] },
      { name: "vault-probe-beta", version: "2.0", requires: ["vault-probe-alpha>=1.0"], requiresPython: ">=3.6, <4" },
      { name: "vault-probe-beta", version: "3.0", requires: ["vault-probe-alpha>=1.0"] },
      { name: "Vault_Probe.Gamma", version: "0.1" },
      { name: "vault-probe-delta", version: "1.0" },
      { name: "vault-probe-alpha", version: "1.1", out: later },
    ];
    await mkdir(dist, { recursive: true });
    await mkdir(later, { recursive: true });
    await Promise.all(specs.map((spec) => buildDistribution(python, build, spec, spec.out ?? dist)));
    const built = readdirSync(dist).sort();
    const distFile = (prefix: string, suffix: string): string => {
      const found = built.find((name) => name.toLowerCase().startsWith(prefix.toLowerCase()) && name.endsWith(suffix));
      assert.ok(found !== undefined, `no ${prefix}*${suffix} in ${built.join(", ")}`);
      return join(dist, found);
    };

    const root = join(dir, "upstream");
    const index = new StaticPypiIndex(root, python);
    const alphaWheel = await index.publish("vault-probe-alpha", distFile("vault_probe_alpha-1.0-", ".whl"));
    const alphaSdist = await index.publish("vault-probe-alpha", distFile("vault-probe-alpha-1.0", ".tar.gz"));
    await index.publish("vault-probe-alpha", distFile("vault_probe_alpha-9.0-", ".whl"), { requiresPython: "<3" });
    await index.publish("vault-probe-beta", distFile("vault_probe_beta-1.0-", ".whl"));
    const betaWheel = await index.publish("vault-probe-beta", distFile("vault_probe_beta-2.0-", ".whl"), { requiresPython: ">=3.6, <4" });
    await index.publish("vault-probe-beta", distFile("vault_probe_beta-3.0-", ".whl"), { yanked: "broken <build> & withdrawn" });
    await index.publish("Vault_Probe.Gamma", distFile("vault_probe", "0.1-py3-none-any.whl"));
    const deltaWheel = await index.publish("vault-probe-delta", distFile("vault_probe_delta-1.0-", ".whl"));

    const htpasswd = join(dir, "htpasswd");
    await writeFile(htpasswd, `${UPSTREAM_USER}:{PLAIN}${UPSTREAM_PASSWORD}\n`);
    nginx = await startNginx({ dir: join(dir, "nginx"), root, ...pypiNginxConfig(root, htpasswd) });
    const upstream = nginx;
    // JSON pages link with absolute URLs on the upstream's host, HTML pages with relative ones.
    await index.writePages(upstream.url);

    // The delta wheel on the upstream is corrupted after its hash was published.
    const deltaPath = index.pathOf(deltaWheel);
    const deltaBytes = await readFile(deltaPath);
    const corrupted = Buffer.from(deltaBytes);
    corrupted[corrupted.length >> 1] = (corrupted[corrupted.length >> 1] ?? 0) ^ 0xff;
    await writeFile(deltaPath, corrupted);

    const vault = await startTestVault({
      extraYaml: [
        "backends:",
        `  - {type: pypi, name: pypi, config: {prefix: /pypi/, index_url: "${upstream.url}/simple/", packages_url: "${upstream.url}/packages/", ttl: ${PAGE_TTL_MS}ms, timeout: 10}}`,
      ].join("\n"),
    });
    vaults.push(vault);
    const indexUrl = `${vault.url}/pypi/simple/`;
    const pipPath = await makeVenv(pythons.venv, join(dir, "venv"));
    let targets = 0;
    const target = (): string => join(dir, `target-${++targets}`);

    await t.test("pip install resolves the dependency, skipping the yanked and the python-incompatible versions", async () => {
      const into = target();
      const result = await pip(pipPath, ["install", "--index-url", indexUrl, "--target", into, "vault-probe-beta"]);
      assertPipOk(result, "pip install vault-probe-beta");
      assert.deepEqual(installed(into), ["vault-probe-alpha-1.0", "vault-probe-beta-2.0"]);
      // pip ≥ 23.2 reads each wheel's PEP 658/714 metadata through the vault before downloading it.
      assert.ok(compareVersions(pythons.pipVersion, "23.2") >= 0, `pip ${pythons.pipVersion} predates PEP 714; this test needs pip ≥ 23.2`);
      assert.ok(upstream.requests(`/packages/vault-probe-beta/${betaWheel.filename}.metadata`).length >= 1, "beta's .metadata came through the vault");
    });

    await t.test("a hash-checking install (--require-hashes) succeeds", async () => {
      const requirements = join(dir, "requirements.txt");
      await writeFile(
        requirements,
        [`vault-probe-alpha==1.0 --hash=sha256:${alphaWheel.sha256} --hash=sha256:${alphaSdist.sha256}`, `vault-probe-beta==2.0 --hash=sha256:${betaWheel.sha256}`, ""].join("\n"),
      );
      const into = target();
      const result = await pip(pipPath, ["install", "--index-url", indexUrl, "--require-hashes", "--target", into, "-r", requirements]);
      assertPipOk(result, "pip install --require-hashes");
      assert.deepEqual(installed(into), ["vault-probe-alpha-1.0", "vault-probe-beta-2.0"]);
    });

    await t.test("pip download --no-binary :all: fetches the sdist, verified", async () => {
      // pip prepares the sdist's metadata, which needs setuptools and wheel: offline, only the
      // build interpreter's own (seen through --system-site-packages) can do it.
      const buildPip = await makeVenv(python, join(dir, "venv-build"), { systemSitePackages: true });
      const into = target();
      const result = await pip(buildPip, [
        "download",
        "--index-url",
        indexUrl,
        "--no-binary",
        ":all:",
        "--no-deps",
        "--no-build-isolation",
        "-d",
        into,
        "vault-probe-alpha==1.0",
      ]);
      assertPipOk(result, "pip download --no-binary :all:");
      assert.deepEqual(readdirSync(into), [alphaSdist.filename]);
      assert.equal(sha256(await readFile(join(into, alphaSdist.filename))), alphaSdist.sha256);
    });

    await t.test("a non-normalised name redirects to the normalised vault URL; pip installs it", async () => {
      const response = await fetch(`${vault.url}/pypi/simple/Vault_Probe.Gamma/`, { redirect: "manual" });
      assert.equal(response.status, 301);
      const location = response.headers.get("location") ?? "";
      assert.equal(new URL(location, response.url).href, `${vault.url}/pypi/simple/vault-probe-gamma/`);
      const noSlash = await fetch(`${vault.url}/pypi/simple/Vault_Probe.Gamma`, { redirect: "manual" });
      assert.equal(new URL(noSlash.headers.get("location") ?? "", noSlash.url).href, `${vault.url}/pypi/simple/vault-probe-gamma/`);
      const into = target();
      assertPipOk(await pip(pipPath, ["install", "--index-url", indexUrl, "--target", into, "Vault_Probe.Gamma"]), "pip install Vault_Probe.Gamma");
      assert.deepEqual(installed(into), ["vault-probe-gamma-0.1"]);
    });

    await t.test("both formats, chosen by Accept and cached apart: every link stays in the vault, attributes kept", async () => {
      for (const [accept, json] of [[PIP_JSON_ACCEPT, true], ["text/html", false]] as const) {
        for (const project of ["", "vault-probe-alpha/", "vault-probe-beta/", "vault-probe-gamma/", "vault-probe-delta/"]) {
          const pageUrl = `${indexUrl}${project}`;
          const response = await fetch(pageUrl, { headers: { accept } });
          assert.equal(response.status, 200, pageUrl);
          assert.equal(response.headers.get("vary"), "Accept");
          assert.match(response.headers.get("content-type") ?? "", json ? /application\/vnd\.pypi\.simple\.v1\+json/ : /text\/html/);
          const body = await response.text();
          if (project === "") continue;
          const links = linksIn(body, json);
          assert.ok(links.length > 0, `links in ${pageUrl}`);
          for (const link of links) {
            const resolved = new URL(link, pageUrl);
            assert.equal(resolved.origin, vault.url, `${link} in ${pageUrl} leaves the vault`);
            assert.ok(resolved.pathname.startsWith("/pypi/packages/"), `${link} in ${pageUrl}`);
          }
          assert.ok(!body.includes(upstream.url.replace("http://", "")), `${pageUrl} names the upstream host`);
        }
      }
      const html = await (await fetch(`${indexUrl}vault-probe-beta/`, { headers: { accept: "text/html" } })).text();
      assert.match(html, /data-requires-python="&gt;=3\.6, &lt;4"/);
      assert.match(html, /data-yanked="broken &lt;build&gt; &amp; withdrawn"/);
      assert.match(html, new RegExp(`#sha256=${betaWheel.sha256}"`));
      assert.match(html, /<meta name="pypi:repository-version" content="1\.1">/);
      const json = (await (await fetch(`${indexUrl}vault-probe-beta/`, { headers: { accept: PIP_JSON_ACCEPT } })).json()) as {
        files: Array<{ filename: string; hashes: Record<string, string>; yanked: unknown; "requires-python": unknown; "core-metadata": unknown }>;
      };
      const yanked = json.files.find((file) => file.filename.includes("-3.0-"));
      assert.equal(yanked?.yanked, "broken <build> & withdrawn");
      const two = json.files.find((file) => file.filename === betaWheel.filename);
      assert.deepEqual(two?.hashes, { sha256: betaWheel.sha256 });
      assert.equal(two?.["requires-python"], ">=3.6, <4");
      assert.deepEqual(two?.["core-metadata"], { sha256: betaWheel.metadataSha256 });
      // Both variants were asked upstream with the exact type, once each per TTL.
      const accepts = new Set(upstream.requests("/simple/vault-probe-beta/index.json").map((entry) => entry.accept));
      assert.deepEqual([...accepts], ["application/vnd.pypi.simple.v1+json"]);
    });

    await t.test("a corrupted file upstream is refused: the response is aborted and nothing is cached", async () => {
      const page = await (await fetch(`${indexUrl}vault-probe-delta/`, { headers: { accept: PIP_JSON_ACCEPT } })).json() as { files: Array<{ url: string }> };
      const fileUrl = new URL(page.files[0]?.url ?? "", `${indexUrl}vault-probe-delta/`).href;
      const uri = `/packages/vault-probe-delta/${deltaWheel.filename}`;
      for (let attempt = 1; attempt <= 2; attempt++) {
        const response = await fetch(fileUrl);
        assert.equal(response.status, 200);
        await assert.rejects(response.arrayBuffer(), `attempt ${attempt}: the body must not complete`);
        // Each attempt went upstream again: the bad copy was never cached.
        assert.equal((await upstream.logged(uri, attempt)).length, attempt);
      }
      const into = target();
      const result = await pip(pipPath, ["install", "--index-url", indexUrl, "--target", into, "vault-probe-delta"]);
      assert.notEqual(result.code, 0, "pip must fail on the corrupted wheel");
      // Repaired upstream: the next request is a fresh, verified download.
      await writeFile(deltaPath, deltaBytes);
      const repaired = await fetch(fileUrl);
      assert.equal(repaired.headers.get("x-cache"), "MISS");
      assert.equal(sha256(new Uint8Array(await repaired.arrayBuffer())), deltaWheel.sha256);
      assert.equal((await fetch(fileUrl, { method: "HEAD" })).headers.get("x-cache"), "HIT");
    });

    await t.test("a new version published upstream appears after the TTL, not before (pip's max-age=0 notwithstanding)", async () => {
      const pageUri = "/simple/vault-probe-alpha/index.json";
      const headers = { accept: PIP_JSON_ACCEPT, "cache-control": "max-age=0" };
      // The new file goes in first (reading its metadata runs python, seconds on a loaded
      // machine); the pages that list it are written after the priming: only that write falls
      // within the page's TTL.
      const [newWheel] = readdirSync(later);
      assert.ok(newWheel !== undefined);
      await index.publish("vault-probe-alpha", join(later, newWheel));
      const primed = await fetch(`${indexUrl}vault-probe-alpha/`, { headers });
      await primed.arrayBuffer();
      const primedAt = Date.now();
      const upstreamBefore = upstream.requests(pageUri).length;
      await index.writePages(upstream.url);

      const fresh = await fetch(`${indexUrl}vault-probe-alpha/`, { headers });
      assert.ok(Date.now() - primedAt < PAGE_TTL_MS, "the pages were written within the TTL (else this test cannot tell)");
      assert.equal(fresh.headers.get("x-cache"), "HIT");
      const cached = (await fresh.json()) as { files: Array<{ filename: string }> };
      assert.ok(!cached.files.some((file) => file.filename.includes("-1.1")), "within the TTL the page is the cached one");
      assert.equal(upstream.requests(pageUri).length, upstreamBefore, "no upstream request while fresh");

      await sleep(PAGE_TTL_MS + 200);
      const into = target();
      assertPipOk(await pip(pipPath, ["install", "--index-url", indexUrl, "--target", into, "vault-probe-alpha"]), "pip install after the TTL");
      assert.deepEqual(installed(into), ["vault-probe-alpha-1.1"]);
      const revalidation = (await upstream.logged(pageUri, upstreamBefore + 1)).at(-1);
      assert.notEqual(revalidation?.ifNoneMatch, "", "the page was revalidated with the upstream's ETag");
    });

    await t.test("no request from pip ever reached the upstream: only the vault did", () => {
      const all = upstream.requests();
      assert.ok(all.filter((entry) => entry.userAgent.startsWith("artifact-vault/")).length > 10);
      assert.deepEqual(
        all.filter((entry) => /pip\//.test(entry.userAgent)),
        [],
      );
    });

    await t.test("upstream index behind basic auth, and auth.proxy: token with pip's __token__ URL", async () => {
      const secured = await startTestVault({
        proxyAuth: "token",
        tokens: [{ name: "ci", scopes: ["read"] }],
        extraYaml: [
          "backends:",
          `  - {type: pypi, name: private, config: {prefix: /private/, index_url: "${upstream.url}/private/simple/", username: ${UPSTREAM_USER}, password: "${UPSTREAM_PASSWORD}", ttl: ${PAGE_TTL_MS}ms}}`,
        ].join("\n"),
      });
      vaults.push(secured);
      const host = secured.url.replace("http://", "");
      const withToken = `http://__token__:${secured.tokens["ci"] ?? ""}@${host}/private/simple/`;
      const into = target();
      assertPipOk(await pip(pipPath, ["install", "--index-url", withToken, "--target", into, "vault-probe-beta"]), "pip install with a token");
      assert.deepEqual(installed(into), ["vault-probe-alpha-1.1", "vault-probe-beta-2.0"]);
      const privateRequests = upstream.requests().filter((entry) => entry.uri.startsWith("/private/"));
      assert.ok(privateRequests.length > 0 && privateRequests.every((entry) => entry.status === 200 || entry.status === 304), JSON.stringify(privateRequests));

      const anonymous = await pip(pipPath, ["install", "--index-url", `${secured.url}/private/simple/`, "--target", target(), "vault-probe-beta"]);
      assert.notEqual(anonymous.code, 0, "pip without the token must not install anything");
      const denied = await fetch(`${secured.url}/private/simple/vault-probe-beta/`);
      assert.equal(denied.status, 401);
      assert.match(denied.headers.get("www-authenticate") ?? "", /^Basic/);
    });

    await t.test("with the upstream stopped, a second install still works from the vault", async () => {
      await upstream.stop();
      await sleep(PAGE_TTL_MS + 200); // the pages are stale now: served STALE, not refetched
      const into = target();
      assertPipOk(await pip(pipPath, ["install", "--index-url", indexUrl, "--target", into, "vault-probe-beta"]), "pip install with the upstream down");
      assert.deepEqual(installed(into), ["vault-probe-alpha-1.1", "vault-probe-beta-2.0"]);
      const page = await fetch(`${indexUrl}vault-probe-beta/`, { headers: { accept: PIP_JSON_ACCEPT } });
      assert.equal(page.headers.get("x-cache"), "STALE");
    });
  } finally {
    await Promise.all(vaults.map((vault) => vault.close()));
    await nginx?.stop();
    await rm(dir, { recursive: true, force: true });
  }
});
