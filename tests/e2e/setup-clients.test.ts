/**
 * `artifact-vault setup <tool> --write`, end to end: the built CLI writes a client's
 * configuration into a sandboxed home (HOME, and for apt a `--root` dir that apt is pointed at),
 * then the real client — pip, npm, pnpm, yarn 1, apt-get, skopeo; go, gem, Bundler and Maven for
 * the settings they read — runs with no option naming
 * the vault, so only the written file can send it there. Each part checks that its requests
 * went through the vault: the vault's cache holds what the client fetched, and the upstream's
 * log shows only the vault's requests, never the client's own.
 *
 * Nothing of this machine's configuration is read for the vault's settings or written: every
 * client runs with an environment built from scratch (PATH and the sandbox), apt with its own
 * APT_CONFIG (tests/support/apt/apt-get.ts), skopeo with HOME and XDG_RUNTIME_DIR in the sandbox.
 * The upstreams are local: nginx (PyPI index, APT archive), Verdaccio, docker-registry.
 */
import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { readdirSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { aptDownload, aptProblems, aptUpdate, createAptEnv, type AptEnv, type AptResult } from "../support/apt/apt-get.js";
import { TestAptRepository } from "../support/apt/apt-repository.js";
import { startNginx, type Nginx } from "../support/nginx.js";
import { clientSandbox, consumerProject, describeResult, installedVersion, npmLockPackages, npmPath, runCommand, yarnLockPackages, type ClientResult, type ClientSandbox } from "../support/npm/clients.js";
import { installedPackageFile } from "../support/npm/node-modules.js";
import { APP, publishProbePackages } from "../support/npm/packages.js";
import { startVerdaccio, type Verdaccio } from "../support/npm/verdaccio.js";
import { writeSampleImages } from "../support/oci/image-layout.js";
import { startRegistry, type Registry } from "../support/oci/registry.js";
import { waitFor } from "../support/process.js";
import { buildDistribution, makeVenv, requirePythons } from "../support/python.js";
import { pypiNginxConfig, StaticPypiIndex } from "../support/pypi-upstream.js";
import { ALL_SCOPES, startTestVault, type TestVault } from "../support/test-vault.js";
import { requireTool } from "../support/tools.js";
import { CLI_PATH } from "../support/vault-process.js";

const execFileAsync = promisify(execFile);
const PATH = process.env["PATH"] ?? "/usr/bin:/bin";
const VAULT_AGENT = /^artifact-vault\//;

interface CliResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** `artifact-vault setup ARGS` (the built CLI), with exactly `env` as its environment. */
async function setupCli(args: readonly string[], env: Readonly<Record<string, string>>): Promise<CliResult> {
  try {
    const { stdout, stderr } = await execFileAsync(process.execPath, [CLI_PATH, "setup", ...args], { env: { ...env }, timeout: 30_000 });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof failed.code === "number" ? failed.code : -1, stdout: failed.stdout ?? "", stderr: failed.stderr ?? "" };
  }
}

async function setupOk(args: readonly string[], env: Readonly<Record<string, string>>): Promise<CliResult> {
  const result = await setupCli(args, env);
  assert.equal(result.code, 0, `setup ${args.join(" ")}\n${result.stdout}${result.stderr}`);
  return result;
}

/** The vault's cache keys under `prefix` (an admin token's view). */
async function cacheKeys(vault: TestVault, prefix: string, admin = "all"): Promise<string[]> {
  const response = await fetch(`${vault.url}/admin/cache/entries?prefix=${encodeURIComponent(prefix)}&limit=1000`, { headers: vault.auth(admin) });
  assert.equal(response.status, 200);
  return ((await response.json()) as { entries: Array<{ key: string }> }).entries.map((entry) => entry.key);
}

/** Waits until the vault's cache holds an entry under `prefix` ending in `suffix` (a download is committed just after its last byte). */
function cached(vault: TestVault, prefix: string, suffix: string, admin = "all"): Promise<string> {
  return waitFor(`${prefix}…${suffix} in the vault's cache`, async () => (await cacheKeys(vault, prefix, admin)).find((key) => key.endsWith(suffix)));
}

async function purgeAll(vault: TestVault): Promise<void> {
  const response = await fetch(`${vault.url}/admin/cache/entries?all=true`, { method: "DELETE", headers: vault.auth("all") });
  assert.equal(response.status, 200);
}

const sha256 = (bytes: Uint8Array): string => createHash("sha256").update(bytes).digest("hex");

test("setup pip --write: pip installs through the vault with only the written pip.conf", async (t: TestContext) => {
  if (requireTool(t, "nginx") === undefined) return;
  const pythons = requirePythons(t);
  if (pythons === undefined) return;
  const dir = await mkdtemp(join(tmpdir(), "vault-e2e-setup-pip-"));
  let nginx: Nginx | undefined;
  const vaults: TestVault[] = [];
  try {
    const dist = join(dir, "dist");
    await mkdir(dist, { recursive: true });
    await buildDistribution(pythons.build, join(dir, "build"), { name: "vault-probe-setup", version: "1.0" }, dist);
    const wheel = readdirSync(dist).find((name) => name.endsWith(".whl"));
    assert.ok(wheel !== undefined);
    const root = join(dir, "upstream");
    const index = new StaticPypiIndex(root, pythons.build);
    await index.publish("vault-probe-setup", join(dist, wheel));
    const htpasswd = join(dir, "htpasswd");
    await writeFile(htpasswd, "");
    nginx = await startNginx({ dir: join(dir, "nginx"), root, ...pypiNginxConfig(root, htpasswd) });
    const upstream = nginx;
    await index.writePages(upstream.url);
    const backend = `backends: [{type: pypi, name: python, config: {prefix: /python/, index_url: "${upstream.url}/simple/", packages_url: "${upstream.url}/packages/"}}]`;
    const pipPath = await makeVenv(pythons.venv, join(dir, "venv"));
    const emptyDir = join(dir, "empty");
    await mkdir(emptyDir);

    /** pip with nothing but HOME to find its configuration (no --index-url, no PIP_* variable, no /etc/xdg). */
    const pipInstall = async (home: string, target: string): Promise<CliResult> => {
      try {
        const { stdout, stderr } = await execFileAsync(pipPath, ["install", "--no-cache-dir", "--disable-pip-version-check", "--no-input", "--target", target, "vault-probe-setup"], {
          env: { PATH, HOME: home, XDG_CONFIG_DIRS: emptyDir, PYTHONDONTWRITEBYTECODE: "1" },
          timeout: 120_000,
        });
        return { code: 0, stdout, stderr };
      } catch (error) {
        const failed = error as { code?: number; stdout?: string; stderr?: string };
        return { code: typeof failed.code === "number" ? failed.code : -1, stdout: failed.stdout ?? "", stderr: failed.stderr ?? "" };
      }
    };
    const installed = (target: string): string[] => readdirSync(target).filter((name) => name.endsWith(".dist-info"));

    await t.test("an existing pip.conf's dead index is replaced (backed up), its other settings kept; pip fetches through the vault", async () => {
      const vault = await startTestVault({ extraYaml: backend });
      vaults.push(vault);
      const home = join(dir, "home");
      const conf = join(home, ".config", "pip", "pip.conf");
      await mkdir(join(home, ".config", "pip"), { recursive: true });
      // Without setup, pip would go to this dead index (and fail at once: no retries).
      const before = "[global]\nindex-url = http://127.0.0.1:9/simple/\nretries = 0\n";
      await writeFile(conf, before);
      const result = await setupOk(["pip", "--url", vault.url, "--prefix", "/python/", "--write"], { PATH, HOME: home });
      assert.match(result.stdout, /^updated .*pip\.conf \(the previous version is kept as .*pip\.conf\.bak-\d{8}T\d{6}Z\)$/m);
      assert.equal(await readFile(conf, "utf8"), `[global]\nindex-url = ${vault.url}/python/simple/\nretries = 0\n`);
      const backups = readdirSync(join(home, ".config", "pip")).filter((name) => name.startsWith("pip.conf.bak-"));
      assert.equal(backups.length, 1);
      assert.equal(await readFile(join(home, ".config", "pip", backups[0] ?? ""), "utf8"), before);

      const upstreamBefore = upstream.requests().length;
      const target = join(dir, "target-1");
      const pip = await pipInstall(home, target);
      assert.equal(pip.code, 0, `${pip.stdout}${pip.stderr}`);
      assert.deepEqual(installed(target), ["vault_probe_setup-1.0.dist-info"]);
      await cached(vault, "python/", wheel);
      const reached = upstream.requests().slice(upstreamBefore);
      assert.ok(reached.some((entry) => entry.uri === `/packages/vault-probe-setup/${wheel}`), JSON.stringify(reached));
      assert.deepEqual(reached.filter((entry) => !VAULT_AGENT.test(entry.userAgent)), [], "only the vault reached the index");
    });

    await t.test("with --token, pip logs in to a vault with auth.proxy: token (the token only in the 0600 pip.conf)", async () => {
      const guarded = await startTestVault({ proxyAuth: "token", tokens: [{ name: "ci", scopes: ["read"] }, { name: "all", scopes: ALL_SCOPES }], extraYaml: backend });
      vaults.push(guarded);
      const token = guarded.tokens["ci"] ?? "";
      const home = join(dir, "home-token");
      const result = await setupOk(["pip", "--url", guarded.url, "--prefix", "/python/", "--token", token, "--write"], { PATH, HOME: home });
      assert.ok(!result.stdout.includes(token) && !result.stderr.includes(token));
      const conf = join(home, ".config", "pip", "pip.conf");
      assert.equal((await stat(conf)).mode & 0o777, 0o600);
      const target = join(dir, "target-2");
      const pip = await pipInstall(home, target);
      assert.equal(pip.code, 0, `${pip.stdout}${pip.stderr}`);
      assert.deepEqual(installed(target), ["vault_probe_setup-1.0.dist-info"]);
      await cached(guarded, "python/", wheel);
    });
  } finally {
    await Promise.all(vaults.map((vault) => vault.close()));
    await nginx?.stop();
    await rm(dir, { recursive: true, force: true });
  }
});

/** What an npm client sees of its environment: the sandbox only (no registry named anywhere but in ~/.npmrc). */
function sandboxEnv(sandbox: ClientSandbox): NodeJS.ProcessEnv {
  const { home } = sandbox;
  return {
    PATH,
    HOME: home,
    USERPROFILE: home,
    LANG: "C.UTF-8",
    TMPDIR: join(sandbox.dir, "tmp"),
    XDG_CONFIG_HOME: join(home, ".config"),
    XDG_CACHE_HOME: join(home, ".cache"),
    XDG_DATA_HOME: join(home, ".data"),
    XDG_STATE_HOME: join(home, ".state"),
    npm_config_globalconfig: sandbox.globalNpmrc,
    npm_config_cache: sandbox.npmCache,
    npm_config_update_notifier: "false",
    NO_UPDATE_NOTIFIER: "1",
    NO_COLOR: "1",
    YARN_CACHE_FOLDER: sandbox.yarnCache,
    YARN_DISABLE_SELF_UPDATE_CHECK: "true",
    YARN_IGNORE_PATH: "1",
  };
}

type NpmClient = "npm" | "pnpm" | "yarn";

/** `<client> install` in `cwd`, the registry coming from the sandbox's ~/.npmrc alone. */
function install(client: NpmClient, sandbox: ClientSandbox, cwd: string): Promise<ClientResult> {
  const env = sandboxEnv(sandbox);
  switch (client) {
    case "npm":
      return runCommand(npmPath(), ["install", "--no-audit"], { cwd, env, label: "npm" });
    case "pnpm":
      return runCommand(
        process.execPath,
        [
          installedPackageFile("pnpm", "bin/pnpm.cjs"),
          "install",
          `--config.store-dir=${sandbox.pnpmStore}`,
          `--config.cache-dir=${join(sandbox.home, ".cache", "pnpm")}`,
          "--config.update-notifier=false",
          "--config.manage-package-manager-versions=false",
        ],
        { cwd, env, label: "pnpm" },
      );
    default:
      return runCommand(process.execPath, [installedPackageFile("yarn", "bin/yarn.js"), "install", "--cache-folder", sandbox.yarnCache, "--non-interactive", "--no-progress"], {
        cwd,
        env,
        label: "yarn",
      });
  }
}

test("setup npm|pnpm|yarn --write: each installs through the vault with only the written ~/.npmrc", async (t: TestContext) => {
  if (requireTool(t, "npm") === undefined) return;
  const dir = await mkdtemp(join(tmpdir(), "vault-e2e-setup-npm-"));
  let verdaccio: Verdaccio | undefined;
  const vaults: TestVault[] = [];
  try {
    verdaccio = await startVerdaccio({ dir: join(dir, "verdaccio") });
    const upstream = verdaccio;
    const packages = await publishProbePackages(upstream, join(dir, "packages"));
    const backend = `backends: [{type: npm, name: npm, config: {prefix: /npm/, registry_url: ${JSON.stringify(upstream.registry)}}}]`;
    const vault = await startTestVault({ extraYaml: backend });
    vaults.push(vault);
    const registry = `${vault.url}/npm/`;
    const tarballs = [packages.app.filename, packages.lib.get("1.1.0")?.filename ?? "lib-1.1.0.tgz"];

    for (const client of ["npm", "pnpm", "yarn"] as const) {
      await t.test(`${client}: setup merges the registry into the sandbox's ~/.npmrc; the install's tarballs come through the vault`, async () => {
        const sandbox = clientSandbox(join(dir, client));
        const npmrcBefore = await readFile(sandbox.npmrc, "utf8");
        const result = await setupOk([client, "--url", vault.url, "--write"], { PATH, HOME: sandbox.home });
        assert.match(result.stdout, /^updated .*\.npmrc \(the previous version is kept as .*\.npmrc\.bak-\d{8}T\d{6}Z\)$/m);
        const npmrc = await readFile(sandbox.npmrc, "utf8");
        assert.equal(npmrc, `${npmrcBefore.replace(/\n$/, "")}\nregistry=${registry}\n`, "the sandbox's own settings (the dead https proxy, ...) are kept");

        await purgeAll(vault);
        const upstreamBefore = upstream.requests().length;
        const cwd = consumerProject(join(dir, `${client}-project`)).dir;
        const installResult = await install(client, sandbox, cwd);
        assert.equal(installResult.code, 0, describeResult(installResult));
        assert.equal(installedVersion(cwd, APP), "1.0.0");
        for (const tarball of tarballs) await cached(vault, "npm/tarballs/", tarball);
        if (client === "npm") for (const entry of npmLockPackages(cwd)) assert.ok(entry.resolved?.startsWith(registry), `${entry.id} resolved ${entry.resolved ?? "nowhere"}`);
        if (client === "yarn") for (const entry of yarnLockPackages(cwd)) assert.ok(entry.resolved?.startsWith(registry), `${entry.id} resolved ${entry.resolved ?? "nowhere"}`);
        const reached = upstream.requests().slice(upstreamBefore);
        assert.ok(reached.length > 0);
        assert.deepEqual(
          reached.filter((request) => !VAULT_AGENT.test(request.headers["user-agent"] ?? "")).map((request) => `${request.method} ${request.url} ${request.headers["user-agent"] ?? ""}`),
          [],
          "only the vault reached the registry",
        );
      });
    }

    await t.test("with --token, npm, pnpm and yarn 1 log in to a vault with auth.proxy: token", async () => {
      const guarded = await startTestVault({ proxyAuth: "token", tokens: [{ name: "ci", scopes: ["read"] }, { name: "all", scopes: ALL_SCOPES }], extraYaml: backend });
      vaults.push(guarded);
      const token = guarded.tokens["ci"] ?? "";
      for (const client of ["npm", "pnpm", "yarn"] as const) {
        const sandbox = clientSandbox(join(dir, `${client}-token`));
        const result = await setupOk([client, "--url", guarded.url, "--token", token, "--write"], { PATH, HOME: sandbox.home });
        assert.ok(!result.stdout.includes(token) && !result.stderr.includes(token), "the token is not printed");
        assert.equal((await stat(sandbox.npmrc)).mode & 0o777, 0o600);
        const cwd = consumerProject(join(dir, `${client}-token-project`)).dir;
        const installResult = await install(client, sandbox, cwd);
        assert.equal(installResult.code, 0, describeResult(installResult));
        assert.equal(installedVersion(cwd, APP), "1.0.0");
      }
      await cached(guarded, "npm/tarballs/", packages.app.filename);
    });
  } finally {
    await Promise.all(vaults.map((vault) => vault.close()));
    await verdaccio?.stop();
    await rm(dir, { recursive: true, force: true });
  }
});

function assertAptOk(result: AptResult, what: string): void {
  assert.equal(result.code, 0, `${what} failed:\n${result.output}`);
  assert.deepEqual(aptProblems(result), [], `${what} warned:\n${result.output}`);
}

/**
 * An isolated apt whose sources.list.d, apt.conf.d and auth.conf.d are those below `root`, where
 * `setup --root ROOT` writes (created if missing, as a Debian system has them).
 */
async function aptReading(root: string, dir: string, sources: Parameters<typeof createAptEnv>[0]["sources"] = []): Promise<AptEnv> {
  for (const part of ["sources.list.d", "apt.conf.d", "auth.conf.d"]) await mkdir(join(root, "etc", "apt", part), { recursive: true });
  return createAptEnv({
    dir,
    sources,
    options: {
      "Dir::Etc::sourceparts": `${join(root, "etc", "apt", "sources.list.d")}/`,
      "Dir::Etc::parts": `${join(root, "etc", "apt", "apt.conf.d")}/`,
      "Dir::Etc::netrcparts": `${join(root, "etc", "apt", "auth.conf.d")}/`,
    },
  });
}

test("setup apt --write --root: apt-get updates and downloads through the vault, as a mirror URL and in proxy mode", async (t: TestContext) => {
  for (const tool of ["nginx", "apt-get", "apt-ftparchive", "dpkg-deb", "gpg"]) if (requireTool(t, tool) === undefined) return;
  const dir = await mkdtemp(join(tmpdir(), "vault-e2e-setup-apt-"));
  let nginx: Nginx | undefined;
  let repository: TestAptRepository | undefined;
  const vaults: TestVault[] = [];
  try {
    const www = join(dir, "www");
    const debian = await TestAptRepository.create({ root: join(www, "debian"), work: join(dir, "debian-work") });
    repository = debian;
    nginx = await startNginx({ dir: join(dir, "nginx"), root: www });
    const upstream = nginx;
    const backend = `backends: [{type: apt, name: debian, config: {prefix: /debian/, mirror_url: "${upstream.url}/debian", retries: 1, timeout: 10}}]`;
    const vault = await startTestVault({ extraYaml: backend });
    vaults.push(vault);
    const app = debian.deb("vault-probe-app", "1.0");
    const appName = app.path.split("/").at(-1) ?? "";
    const onlyTheVaultSince = (from: number): void => {
      const reached = upstream.requests().slice(from);
      assert.ok(reached.length > 0, "the archive was asked");
      assert.deepEqual(
        reached.filter((request) => !VAULT_AGENT.test(request.userAgent)).map((request) => `${request.uri} ${request.userAgent}`),
        [],
        "only the vault reached the archive",
      );
    };

    await t.test("mirror URL: a deb822 source of its own under --root; apt reads it and fetches from the vault", async () => {
      const root = join(dir, "root-mirror");
      await mkdir(root);
      const result = await setupOk(["apt", "--url", vault.url, "--suite", debian.codename, "--signed-by", debian.keyring, "--write", "--root", root], { PATH, HOME: join(dir, "home") });
      const sources = join(root, "etc", "apt", "sources.list.d", "artifact-vault-debian.sources");
      assert.equal(result.stdout, `created ${sources}\n`);
      const env = await aptReading(root, join(dir, "apt-mirror"));
      const from = upstream.requests().length;
      assertAptOk(await aptUpdate(env), "apt-get update");
      const downloads = join(dir, "downloads-mirror");
      await mkdir(downloads);
      assertAptOk(await aptDownload(env, ["vault-probe-app"], downloads), "apt-get download");
      assert.equal(sha256(await readFile(join(downloads, appName))), app.sha256);
      await cached(vault, "debian/pool/", appName);
      await cached(vault, `debian/${debian.dist}/`, "InRelease");
      onlyTheVaultSince(from);
    });

    await t.test("proxy mode: 01vault under --root; the sources keep the archive's own URL and apt goes through the vault", async () => {
      const root = join(dir, "root-proxy");
      await mkdir(root);
      await setupOk(["apt", "--url", vault.url, "--proxy", "--write", "--root", root], { PATH, HOME: join(dir, "home") });
      assert.equal(await readFile(join(root, "etc", "apt", "apt.conf.d", "01vault"), "utf8"), `Acquire::http::Proxy "${vault.url}/";\n`);
      const env = await aptReading(root, join(dir, "apt-proxy"), [{ url: `${upstream.url}/debian`, suite: debian.codename, keyring: debian.keyring }]);
      await purgeAll(vault);
      const from = upstream.requests().length;
      assertAptOk(await aptUpdate(env), "apt-get update through the proxy");
      const downloads = join(dir, "downloads-proxy");
      await mkdir(downloads);
      assertAptOk(await aptDownload(env, ["vault-probe-app"], downloads), "apt-get download through the proxy");
      assert.equal(sha256(await readFile(join(downloads, appName))), app.sha256);
      await cached(vault, "debian/pool/", appName);
      onlyTheVaultSince(from);
    });

    await t.test("with --token: auth.conf.d/vault.conf (0600) logs apt in to a vault with auth.proxy: token", async () => {
      const guarded = await startTestVault({ proxyAuth: "token", tokens: [{ name: "apt", scopes: ["read"] }, { name: "all", scopes: ALL_SCOPES }], extraYaml: backend });
      vaults.push(guarded);
      const token = guarded.tokens["apt"] ?? "";
      const root = join(dir, "root-token");
      await mkdir(root);
      const result = await setupOk(["apt", "--url", guarded.url, "--token", token, "--suite", debian.codename, "--signed-by", debian.keyring, "--write", "--root", root], {
        PATH,
        HOME: join(dir, "home"),
      });
      assert.ok(!result.stdout.includes(token) && !result.stderr.includes(token));
      assert.equal((await stat(join(root, "etc", "apt", "auth.conf.d", "vault.conf"))).mode & 0o777, 0o600);
      const env = await aptReading(root, join(dir, "apt-token"));
      assertAptOk(await aptUpdate(env), "apt-get update with the token");
      const downloads = join(dir, "downloads-token");
      await mkdir(downloads);
      assertAptOk(await aptDownload(env, ["vault-probe-app"], downloads), "apt-get download with the token");
      assert.equal(sha256(await readFile(join(downloads, appName))), app.sha256);
      await cached(guarded, "debian/pool/", appName);
    });
  } finally {
    await Promise.all(vaults.map((vault) => vault.close()));
    await nginx?.stop();
    await repository?.close();
    await rm(dir, { recursive: true, force: true });
  }
});

test("setup skopeo --write: skopeo pulls through the vault with only the written registries.conf.d drop-in (and auth.json)", async (t: TestContext) => {
  if (requireTool(t, "skopeo") === undefined || requireTool(t, "docker-registry") === undefined) return;
  const dir = await mkdtemp(join(tmpdir(), "vault-e2e-setup-skopeo-"));
  let registry: Registry | undefined;
  const vaults: TestVault[] = [];
  try {
    const images = await writeSampleImages(join(dir, "layout"));
    registry = await startRegistry();
    const upstream = registry;
    await upstream.push(images.layout.reference("oci-image"), "team/app:1.0");
    const backend = `backends: [{type: oci, name: hub, config: {prefix: /hub/, registry_url: "${upstream.url}"}}]`;
    const layer = images.ociImage.layers[0]?.digest ?? "";

    /** skopeo copy with HOME (and XDG_RUNTIME_DIR) in the sandbox: its registries.conf.d and auth.json are the sandbox's. */
    const pull = async (home: string, reference: string, out: string): Promise<void> => {
      await execFileAsync("skopeo", ["--insecure-policy", "copy", "--retry-times=0", reference, `oci:${out}:1.0`], {
        env: { PATH, HOME: home, XDG_RUNTIME_DIR: join(home, "run") },
        timeout: 120_000,
      });
      const index = JSON.parse(await readFile(join(out, "index.json"), "utf8")) as { manifests: Array<{ digest: string }> };
      assert.equal(index.manifests[0]?.digest, images.ociImage.manifest.digest);
    };

    await t.test("the mirror of upstream.invalid is the vault: every download the registry served went to the vault", async () => {
      const vault = await startTestVault({ extraYaml: backend });
      vaults.push(vault);
      const home = join(dir, "home");
      await mkdir(join(home, "run"), { recursive: true });
      const result = await setupOk(["skopeo", "--url", vault.url, "--registry", "upstream.invalid", "--write"], { PATH, HOME: home });
      assert.match(result.stdout, /^created .*\/\.config\/containers\/registries\.conf\.d\/artifact-vault\.conf$/m);
      // upstream.invalid does not resolve: without the mirror, the pull could not succeed.
      await pull(home, "docker://upstream.invalid/team/app:1.0", join(dir, "pulled"));
      const seen = await upstream.settledRequests({ method: "GET", path: /^\/v2\/team\/app\// });
      assert.ok(seen.length > 0);
      assert.deepEqual(seen.filter((entry) => !VAULT_AGENT.test(entry.userAgent)), []);
      const hit = await fetch(`${vault.url}/v2/team/app/blobs/${layer}`, { method: "HEAD" });
      assert.equal(hit.headers.get("x-cache"), "HIT");
    });

    await t.test("with --token (podman's name for the same files), the login in auth.json gets skopeo past auth.proxy: token", async () => {
      const guarded = await startTestVault({ proxyAuth: "token", tokens: [{ name: "ci", scopes: ["read"] }, { name: "all", scopes: ALL_SCOPES }], extraYaml: backend });
      vaults.push(guarded);
      const token = guarded.tokens["ci"] ?? "";
      const home = join(dir, "home-token");
      await mkdir(join(home, "run"), { recursive: true });
      const result = await setupOk(["podman", "--url", guarded.url, "--registry", "upstream.invalid", "--token", token, "--write"], { PATH, HOME: home });
      assert.ok(!result.stdout.includes(token) && !result.stderr.includes(token));
      assert.equal((await stat(join(home, ".config", "containers", "auth.json"))).mode & 0o777, 0o600);
      await pull(home, "docker://upstream.invalid/team/app:1.0", join(dir, "pulled-token"));
      await cached(guarded, "hub/blobs/", layer.replace("sha256:", ""));
    });
  } finally {
    await Promise.all(vaults.map((vault) => vault.close()));
    await registry?.stop();
    await rm(dir, { recursive: true, force: true });
  }
});

/** A client with exactly `env` as its environment, in `cwd`; never throws. */
async function runClient(file: string, args: readonly string[], env: Readonly<Record<string, string>>, cwd: string): Promise<CliResult> {
  try {
    const { stdout, stderr } = await execFileAsync(file, [...args], { env: { ...env }, cwd, timeout: 60_000 });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof failed.code === "number" ? failed.code : -1, stdout: failed.stdout ?? "", stderr: failed.stderr ?? "" };
  }
}

/*
 * go, gem and Bundler read what `setup` wrote: each client, with only the sandbox's HOME (and
 * XDG_CONFIG_HOME) to find its configuration, reports the vault as its proxy, source or mirror.
 * No vault and no network are needed for that; fetching through the go, rubygems and maven
 * backends is tested in their own e2e files. Maven (help:effective-settings is a plugin from
 * Central) is asked offline for a parent POM: its error names the repository it would use.
 */
test("setup go --write: go env GOPROXY reads the vault from the written env file only", async (t: TestContext) => {
  const go = requireTool(t, "go");
  if (go === undefined) return;
  const dir = await mkdtemp(join(tmpdir(), "vault-e2e-setup-go-"));
  try {
    const goEnv = (home: string): Record<string, string> => ({ PATH, HOME: home, XDG_CONFIG_HOME: join(home, "xdg"), GOCACHE: join(home, "gocache"), GOTOOLCHAIN: "local" });
    const home = join(dir, "home");
    await mkdir(home);
    const before = await runClient(go, ["env", "GOPROXY"], goEnv(home), home);
    assert.equal(before.stdout.trim(), "https://proxy.golang.org,direct", "the sandbox starts with go's default");
    const written = await setupOk(["go", "--url", "http://vault.internal:8080", "--write"], goEnv(home));
    assert.equal(written.stdout, `created ${join(home, "xdg", "go", "env")}\n`);
    const after = await runClient(go, ["env", "GOPROXY"], goEnv(home), home);
    assert.equal(after.code, 0, after.stderr);
    assert.equal(after.stdout.trim(), "http://vault.internal:8080/go/");

    // go env -w keeps what setup wrote, and setup keeps what go env -w wrote.
    assert.equal((await runClient(go, ["env", "-w", "GOPRIVATE=git.corp.example"], goEnv(home), home)).code, 0);
    const token = "avt_e2e-go-token";
    const secured = await setupOk(["go", "--url", "https://vault.example.com", "--prefix", "/modules/", "--token", token, "--write"], goEnv(home));
    assert.ok(!secured.stdout.includes(token) && !secured.stderr.includes(token));
    const proxy = await runClient(go, ["env", "GOPROXY", "GOPRIVATE"], goEnv(home), home);
    assert.equal(proxy.stdout, `https://x:${token}@vault.example.com/modules/\ngit.corp.example\n`);
    assert.equal((await stat(join(home, "xdg", "go", "env"))).mode & 0o777, 0o600);

    const refused = await setupCli(["go", "--url", "http://vault.internal:8080", "--token", token, "--write"], goEnv(home));
    assert.equal(refused.code, 2);
    assert.match(refused.stderr, /sends credentials only over https/);
    assert.ok(!refused.stderr.includes(token));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("setup gem and bundler --write: gem lists the vault as its source, Bundler as rubygems.org's mirror", async (t: TestContext) => {
  const gem = requireTool(t, "gem");
  const bundle = gem === undefined ? undefined : requireTool(t, "bundle");
  if (gem === undefined || bundle === undefined) return;
  const dir = await mkdtemp(join(tmpdir(), "vault-e2e-setup-ruby-"));
  try {
    const home = join(dir, "home");
    await mkdir(home);
    const env = { PATH, HOME: home };
    await writeFile(join(home, ".gemrc"), "---\ngem: --no-document\n:sources:\n- https://rubygems.org/\n");
    const token = "avt_e2e-ruby-token";
    const gemWritten = await setupOk(["gem", "--url", "http://vault.internal:8080", "--token", token, "--write"], env);
    assert.match(gemWritten.stdout, /^updated .*\.gemrc \(the previous version is kept as .*; now readable by its owner only, as it holds the token\)$/m);
    const sources = await runClient(gem, ["sources", "--list"], env, home);
    assert.equal(sources.code, 0, sources.stderr);
    assert.match(sources.stdout, new RegExp(`^http://x:${token}@vault\\.internal:8080/rubygems/$`, "m"));
    assert.doesNotMatch(sources.stdout, /rubygems\.org/);

    const bundleWritten = await setupOk(["bundler", "--url", "http://vault.internal:8080", "--token", token, "--write"], env);
    assert.ok(!bundleWritten.stdout.includes(token) && !bundleWritten.stderr.includes(token));
    const mirror = await runClient(bundle, ["config", "get", "mirror.https://rubygems.org"], env, home);
    assert.equal(mirror.code, 0, mirror.stderr);
    assert.match(mirror.stdout, /Set for the current user \(.*\.bundle\/config\): "http:\/\/vault\.internal:8080\/rubygems\/"/);
    const credentials = await runClient(bundle, ["config", "get", "http://vault.internal:8080/rubygems/"], env, home);
    assert.equal(credentials.code, 0, credentials.stderr);
    assert.match(credentials.stdout, /Set for the current user \(.*\.bundle\/config\): "x:/);
    // What Bundler fetches rubygems.org from: the mirror, with the credentials it looked up for it.
    const ruby = requireTool(t, "ruby");
    if (ruby !== undefined) {
      const remote = 'require "bundler/vendored_uri"; require "bundler/source/rubygems/remote"; puts Bundler::Source::Rubygems::Remote.new(Bundler::URI("https://rubygems.org/")).uri';
      const used = await runClient(ruby, ["-rbundler", "-e", remote], env, home);
      assert.equal(used.code, 0, used.stderr);
      assert.equal(used.stdout, `http://x:${token}@vault.internal:8080/rubygems/\n`);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("setup maven --write: Maven reads the written settings.xml and sends every repository to the vault", async (t: TestContext) => {
  const mvn = requireTool(t, "mvn");
  if (mvn === undefined) return;
  const dir = await mkdtemp(join(tmpdir(), "vault-e2e-setup-maven-"));
  try {
    const home = join(dir, "home");
    const project = join(dir, "project");
    await mkdir(home);
    await mkdir(project);
    const token = "avt_e2e-maven-token";
    const written = await setupOk(["maven", "--url", "http://vault.internal:8080", "--token", token, "--write"], { PATH, HOME: home });
    assert.equal(written.stdout, `created ${join(home, ".m2", "settings.xml")}\n`);
    assert.ok(!written.stderr.includes(token));
    // A parent POM that is nowhere: offline, Maven names the repository it would fetch it from.
    const pom = `<project xmlns="http://maven.apache.org/POM/4.0.0"><modelVersion>4.0.0</modelVersion><parent><groupId>org.example.vault</groupId><artifactId>probe-parent</artifactId><version>1</version></parent><artifactId>probe</artifactId><packaging>pom</packaging></project>\n`;
    await writeFile(join(project, "pom.xml"), pom);
    // Maven's user.home is Java's, not $HOME: say it, so only the sandbox's settings.xml is read.
    const result = await runClient(mvn, ["-o", "-B", "validate"], { PATH, HOME: home, MAVEN_OPTS: `-Duser.home=${home}` }, project);
    assert.notEqual(result.code, 0);
    assert.doesNotMatch(result.stdout, /Non-parseable settings/);
    assert.match(result.stdout, /Cannot access artifact-vault \(http:\/\/vault\.internal:8080\/maven\/\) in offline mode/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
