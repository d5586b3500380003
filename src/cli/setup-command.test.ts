import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { Command } from "commander";
import { lstat, mkdir, mkdtemp, readdir, readFile, readlink, rm, stat, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { exitCodeFor } from "./cli-errors.js";
import type { CliIo } from "./cli-io.js";
import { runCli } from "./program.js";
import { registerSetupCommand, type SetupDeps } from "./setup-command.js";

const VAULT = "http://vault.internal:8080";
const TOKEN = "avt_unit-Test_token0123456789";
const NOW = new Date("2025-01-02T03:04:05.678Z");

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), "setup-command-test-"));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

let homes = 0;
/** A fresh home (and cwd) for one case: every file a case writes is below it. */
async function freshHome(): Promise<string> {
  const home = join(dir, `home-${++homes}`);
  await mkdir(home, { recursive: true });
  return home;
}

interface Run {
  readonly code: number;
  readonly out: string;
  readonly err: string;
}

/** `artifact-vault setup ARGS` with HOME (and nothing else of this machine) as the environment. */
async function setup(args: readonly string[], env: Readonly<Record<string, string>>): Promise<Run> {
  const out: string[] = [];
  const err: string[] = [];
  const io: CliIo = { out: (line) => out.push(line), err: (line) => err.push(line), env: { ...env }, cwd: env["HOME"] ?? dir, now: () => NOW };
  const code = await runCli(["node", "artifact-vault", "setup", ...args], io);
  return { code, out: out.map((line) => `${line}\n`).join(""), err: err.map((line) => `${line}\n`).join("") };
}

/** The same with injected deps (runCli has none for setup): returns the exit code the CLI would. */
async function setupWith(deps: SetupDeps, args: readonly string[], env: Readonly<Record<string, string>>): Promise<Run> {
  const out: string[] = [];
  const err: string[] = [];
  const io: CliIo = { out: (line) => out.push(line), err: (line) => err.push(line), env: { ...env }, cwd: env["HOME"] ?? dir, now: () => NOW };
  const program = new Command("artifact-vault").exitOverride().configureOutput({ writeOut: () => undefined, writeErr: (text) => err.push(text) });
  registerSetupCommand(program, io, deps);
  try {
    await program.parseAsync(["node", "artifact-vault", "setup", ...args]);
    return { code: 0, out: out.join("\n"), err: err.join("\n") };
  } catch (error) {
    return { code: exitCodeFor(error), out: out.join("\n"), err: `${err.join("\n")}${error instanceof Error ? error.message : String(error)}` };
  }
}

const lines = (...text: string[]): string => `${text.join("\n")}\n`;

describe("setup prints each client's configuration, as the README shows it", () => {
  const cases: Array<{ tool: string; args?: string[]; expected: string }> = [
    {
      tool: "pip",
      expected: lines("# HOME/.config/pip/pip.conf", "[global]", "index-url = http://vault.internal:8080/pypi/simple/", "trusted-host = vault.internal"),
    },
    {
      tool: "uv",
      expected: lines("# HOME/.config/uv/uv.toml", "[[index]]", 'name = "artifact-vault"', 'url = "http://vault.internal:8080/pypi/simple/"', "default = true"),
    },
    { tool: "npm", expected: lines("# HOME/.npmrc", "registry=http://vault.internal:8080/npm/") },
    { tool: "pnpm", expected: lines("# HOME/.npmrc", "registry=http://vault.internal:8080/npm/") },
    { tool: "yarn", expected: lines("# HOME/.npmrc", "registry=http://vault.internal:8080/npm/") },
    {
      tool: "docker",
      expected: lines("// /etc/docker/daemon.json", '{ "registry-mirrors": ["http://vault.internal:8080"], "insecure-registries": ["vault.internal:8080"] }'),
    },
    {
      tool: "containerd",
      expected: lines(
        "# /etc/containerd/certs.d/docker.io/hosts.toml",
        'server = "https://registry-1.docker.io"',
        '[host."http://vault.internal:8080"]',
        '  capabilities = ["pull", "resolve"]',
      ),
    },
    ...["podman", "skopeo", "buildah"].map((tool) => ({
      tool,
      expected: lines(
        "# HOME/.config/containers/registries.conf.d/artifact-vault.conf",
        "[[registry]]",
        'prefix = "docker.io"',
        'location = "docker.io"',
        "[[registry.mirror]]",
        'location = "vault.internal:8080"',
        "insecure = true",
      ),
    })),
    {
      tool: "apt",
      args: ["--suite", "bookworm", "--suite", "bookworm-updates", "--signed-by", "/usr/share/keyrings/debian-archive-keyring.gpg"],
      expected: lines(
        "# /etc/apt/sources.list.d/artifact-vault-debian.sources",
        "# written by artifact-vault setup apt",
        "Types: deb",
        "URIs: http://vault.internal:8080/debian",
        "Suites: bookworm bookworm-updates",
        "Components: main",
        "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg",
      ),
    },
    { tool: "apt", args: ["--proxy"], expected: lines("# /etc/apt/apt.conf.d/01vault", 'Acquire::http::Proxy "http://vault.internal:8080/";') },
    {
      tool: "apt",
      args: ["--proxy-host", "deb.debian.org", "--proxy-host", "security.debian.org"],
      expected: lines(
        "# /etc/apt/apt.conf.d/01vault",
        'Acquire::http::Proxy::deb.debian.org "http://vault.internal:8080/";',
        'Acquire::http::Proxy::security.debian.org "http://vault.internal:8080/";',
      ),
    },
  ];
  for (const { tool, args = [], expected } of cases) {
    it(`${tool} ${args.join(" ")}`.trim(), async () => {
      const home = await freshHome();
      const result = await setup([tool, "--url", VAULT, ...args], { HOME: home });
      assert.equal(result.code, 0, result.err);
      assert.equal(result.out.replaceAll(home, "HOME"), expected);
      assert.deepEqual(await readdir(home), [], "printing writes nothing");
    });
  }

  it("an https vault needs no trusted-host or insecure flag; a loopback one no trusted-host", async () => {
    const home = await freshHome();
    const https = "https://vault.example.com";
    assert.doesNotMatch((await setup(["pip", "--url", https], { HOME: home })).out, /trusted-host/);
    assert.doesNotMatch((await setup(["podman", "--url", https], { HOME: home })).out, /insecure/);
    assert.match((await setup(["docker", "--url", https], { HOME: home })).out, /^\{ "registry-mirrors": \["https:\/\/vault\.example\.com"\] \}$/m);
    assert.match((await setup(["containerd", "--url", https], { HOME: home })).out, /\[host\."https:\/\/vault\.example\.com"\]/);
    for (const local of ["http://127.0.0.1:8080", "http://localhost:8080", "http://[::1]:8080"]) {
      const result = await setup(["pip", "--url", local], { HOME: home });
      assert.equal(result.code, 0, result.err);
      assert.doesNotMatch(result.out, /trusted-host/, local);
    }
  });

  it("the vault's URL may come from VAULT_URL; a trailing slash and the default port are fine", async () => {
    const home = await freshHome();
    assert.match((await setup(["npm"], { HOME: home, VAULT_URL: "http://vault.internal:8080/" })).out, /^registry=http:\/\/vault\.internal:8080\/npm\/$/m);
    assert.match((await setup(["npm", "--url", "HTTP://Vault.Internal:80"], { HOME: home })).out, /^registry=http:\/\/vault\.internal\/npm\/$/m);
  });

  it("--prefix picks another backend path", async () => {
    const home = await freshHome();
    assert.match((await setup(["pip", "--url", VAULT, "--prefix", "python"], { HOME: home })).out, /^index-url = http:\/\/vault\.internal:8080\/python\/simple\/$/m);
    assert.match((await setup(["uv", "--url", VAULT, "--prefix", "/mirrors/pypi/"], { HOME: home })).out, /^url = "http:\/\/vault\.internal:8080\/mirrors\/pypi\/simple\/"$/m);
    assert.match((await setup(["npm", "--url", VAULT, "--prefix", "/js/"], { HOME: home })).out, /^registry=http:\/\/vault\.internal:8080\/js\/$/m);
    assert.match((await setup(["podman", "--url", VAULT, "--prefix", "/v2/hub/"], { HOME: home })).out, /^location = "vault\.internal:8080\/hub"$/m);
    const containerd = (await setup(["containerd", "--url", VAULT, "--prefix", "/v2/hub/", "--registry", "quay.io"], { HOME: home })).out;
    assert.equal(
      containerd,
      lines(
        "# /etc/containerd/certs.d/quay.io/hosts.toml",
        'server = "https://quay.io"',
        '[host."http://vault.internal:8080/v2/hub"]',
        '  capabilities = ["pull", "resolve"]',
        "  override_path = true",
      ),
    );
    const apt = await setup(["apt", "--url", VAULT, "--prefix", "/debian-security/", "--suite", "bookworm-security", "--signed-by", "/k.gpg"], { HOME: home });
    assert.match(apt.out, /^# \/etc\/apt\/sources\.list\.d\/artifact-vault-debian-security\.sources$/m);
    assert.match(apt.out, /^URIs: http:\/\/vault\.internal:8080\/debian-security$/m);
  });

  it("--suite and --component take several values at once", async () => {
    const home = await freshHome();
    const result = await setup(["apt", "--url", VAULT, "--suite", "noble noble-updates", "--component", "main,universe", "--signed-by", "/usr/share/keyrings/ubuntu-archive-keyring.gpg", "--prefix", "/ubuntu/"], { HOME: home });
    assert.equal(result.code, 0, result.err);
    assert.match(result.out, /^Suites: noble noble-updates$/m);
    assert.match(result.out, /^Components: main universe$/m);
  });
});

describe("with --token, the token is in the configuration and nowhere else", () => {
  const cases: Array<{ tool: string; args?: string[]; expect: RegExp[] }> = [
    { tool: "pip", expect: [new RegExp(`^index-url = http://__token__:${TOKEN}@vault\\.internal:8080/pypi/simple/$`, "m")] },
    { tool: "uv", expect: [new RegExp(`^url = "http://__token__:${TOKEN}@vault\\.internal:8080/pypi/simple/"$`, "m")] },
    { tool: "npm", expect: [new RegExp(`^//vault\\.internal:8080/npm/:_authToken=${TOKEN}$`, "m")] },
    { tool: "pnpm", expect: [new RegExp(`^//vault\\.internal:8080/npm/:_authToken=${TOKEN}$`, "m")] },
    { tool: "yarn", expect: [new RegExp(`^//vault\\.internal:8080/npm/:_authToken=${TOKEN}$`, "m"), /^\/\/vault\.internal:8080\/npm\/:always-auth=true$/m] },
    {
      tool: "podman",
      expect: [/^\/\/ HOME\/\.config\/containers\/auth\.json$/m, new RegExp(`"auth": "${Buffer.from(`x:${TOKEN}`).toString("base64")}"`)],
    },
    {
      tool: "containerd",
      expect: [/^\[host\."http:\/\/vault\.internal:8080"\.header\]$/m, new RegExp(`^ {2}authorization = "Basic ${Buffer.from(`x:${TOKEN}`).toString("base64")}"$`, "m")],
    },
    {
      tool: "apt",
      args: ["--suite", "bookworm", "--signed-by", "/k.gpg"],
      expect: [/^# \/etc\/apt\/auth\.conf\.d\/vault\.conf$/m, new RegExp(`^machine http://vault\\.internal:8080\\nlogin x\\npassword ${TOKEN}$`, "m")],
    },
    { tool: "apt", args: ["--proxy"], expect: [new RegExp(`^Acquire::http::Proxy "http://x:${TOKEN}@vault\\.internal:8080/";$`, "m")] },
  ];
  for (const { tool, args = [], expect } of cases) {
    it(`${tool} ${args.join(" ")}`.trim(), async () => {
      const home = await freshHome();
      const result = await setup([tool, "--url", VAULT, "--token", TOKEN, ...args], { HOME: home });
      assert.equal(result.code, 0, result.err);
      const out = result.out.replaceAll(home, "HOME");
      for (const pattern of expect) assert.match(out, pattern);
      assert.ok(!result.err.includes(TOKEN), "no token on standard error");
    });
  }

  it("docker: the mirror cannot carry it; the note says how to pull by the vault's name, without the token", async () => {
    const result = await setup(["docker", "--url", VAULT, "--token", TOKEN], { HOME: await freshHome() });
    assert.equal(result.code, 0);
    assert.ok(!result.out.includes(TOKEN) && !result.err.includes(TOKEN));
    assert.match(result.err, /docker login vault\.internal:8080 -u x/);
  });
});

describe("bad usage is exit 2 with a message naming the problem; nothing is written", () => {
  const cases: Array<{ args: string[]; message: RegExp; env?: Record<string, string> }> = [
    { args: ["pip"], message: /--url: give the vault's URL/ },
    { args: ["pip", "--url", "ftp://vault.internal"], message: /--url: expected the vault's http:\/\/ or https:\/\/ root URL/ },
    { args: ["pip", "--url", "vault.internal:8080"], message: /--url: expected the vault's http/ },
    { args: ["pip", "--url", "http://vault.internal:8080/pypi/simple/"], message: /a backend's path goes in --prefix/ },
    { args: ["pip", "--url", "http://vault.internal:8080/a/.."], message: /a backend's path goes in --prefix/ },
    { args: ["pip", "--url", "http://vault.internal:8080?x=1"], message: /root URL/ },
    { args: ["pip", "--url", "http://vault.internal:8080#top"], message: /root URL/ },
    { args: ["pip", "--url", "http://u:secret@vault.internal:8080"], message: /no user or token in the URL; give the token with --token/ },
    { args: ["pip", "--url", "http://vault internal"], message: /--url/ },
    { args: ["pip", "--url", "http://"], message: /--url/ },
    { args: ["npm"], env: { VAULT_URL: "http://vault.internal/npm/" }, message: /^error: VAULT_URL: give the vault's root URL/m },
    { args: ["pip", "--url", VAULT, "--prefix", "../etc"], message: /--prefix: expected a path like \/pypi\// },
    { args: ["pip", "--url", VAULT, "--prefix", "/a//b/"], message: /--prefix/ },
    { args: ["pip", "--url", VAULT, "--prefix", "/a b/"], message: /--prefix/ },
    { args: ["pip", "--url", VAULT, "--token", "two words"], message: /--token: expected the token as printed by `tokens add`/ },
    { args: ["pip", "--url", VAULT, "--token", 'quo"te'], message: /--token/ },
    { args: ["pip", "--url", VAULT, "--suite", "bookworm"], message: /--suite does not apply to pip/ },
    { args: ["npm", "--url", VAULT, "--registry", "quay.io"], message: /--registry does not apply to npm/ },
    { args: ["npm", "--url", VAULT, "--root", "some-dir"], message: /--root goes with --write/ },
    { args: ["apt", "--url", VAULT, "--proxy", "--write", "--root", "no-such-dir"], message: /--root: .*no-such-dir is not a directory/ },
    { args: ["gradle", "--url", VAULT], message: /value 'gradle' is invalid for argument 'tool'\. Allowed choices are pip, uv, npm/ },
    { args: ["podman", "--url", VAULT, "--registry", "bad host"], message: /--registry: expected a host name/ },
    { args: ["podman", "--url", VAULT, "--prefix", "/dockerhub/"], message: /container clients reach the vault's registry API at \/v2\// },
    { args: ["docker", "--url", VAULT, "--prefix", "/v2/hub/"], message: /registry-mirrors cannot name a path/ },
    { args: ["docker", "--url", VAULT, "--registry", "quay.io"], message: /Docker Hub \(docker\.io\) images only/ },
    { args: ["docker", "--url", VAULT, "--write"], message: /daemon\.json is not written by setup/ },
    { args: ["apt", "--url", VAULT, "--proxy", "--suite", "bookworm"], message: /in proxy mode the sources stay as they are/ },
    { args: ["apt", "--url", VAULT, "--suite", "bookworm", "--signed-by", "relative.gpg"], message: /--signed-by: expected the absolute path/ },
    { args: ["apt", "--url", VAULT, "--suite", "bad suite!"], message: /--suite: expected a name like bookworm/ },
    { args: ["apt", "--url", VAULT, "--proxy-host", "http://deb.debian.org/"], message: /--proxy-host: expected a host name/ },
  ];
  for (const { args, message, env = {} } of cases) {
    it(args.join(" "), async () => {
      const home = await freshHome();
      const result = await setup(args, { HOME: home, ...env });
      assert.equal(result.code, 2, `${result.out}${result.err}`);
      assert.match(result.err, message);
      assert.equal(result.out, "");
      assert.deepEqual(await readdir(home), []);
    });
  }

  it("no HOME: the per-user files cannot be found", async () => {
    const result = await setup(["pip", "--url", VAULT], {});
    assert.equal(result.code, 2);
    assert.match(result.err, /HOME is not set/);
  });

  it("apt without --suite and --signed-by on a machine that is not Debian", async () => {
    const home = await freshHome();
    const root = join(home, "root");
    await mkdir(join(root, "etc"), { recursive: true });
    await writeFile(join(root, "etc", "os-release"), 'ID=ubuntu\nID_LIKE=debian\nVERSION_CODENAME=noble\n');
    const noSuite = await setup(["apt", "--url", VAULT, "--write", "--root", root], { HOME: home });
    assert.equal(noSuite.code, 2);
    assert.match(noSuite.err, /--suite: name the suites/);
    const noKeyring = await setup(["apt", "--url", VAULT, "--write", "--root", root, "--suite", "noble"], { HOME: home });
    assert.equal(noKeyring.code, 2);
    assert.match(noKeyring.err, /--signed-by: name the archive's keyring/);
    assert.deepEqual(await readdir(join(root, "etc")), ["os-release"]);
  });

  it("system files need root, or --root", async () => {
    const home = await freshHome();
    for (const args of [["containerd"], ["apt", "--proxy"]]) {
      const result = await setupWith({ isRoot: () => false }, [...args, "--url", VAULT, "--write"], { HOME: home });
      assert.equal(result.code, 2);
      assert.match(result.err, /is a system file: run setup as root \(e\.g\. with sudo\), or write below a directory with --root DIR/);
    }
    const user = await setupWith({ isRoot: () => false }, ["npm", "--url", VAULT, "--write"], { HOME: home });
    assert.equal(user.code, 0, user.err);
    assert.deepEqual(await readdir(home), [".npmrc"]);
  });
});

/** The files below `path` (relative, sorted), backups included. */
async function tree(path: string): Promise<string[]> {
  const found: string[] = [];
  const walk = async (at: string, prefix: string): Promise<void> => {
    for (const entry of await readdir(at, { withFileTypes: true })) {
      if (entry.isDirectory()) await walk(join(at, entry.name), `${prefix}${entry.name}/`);
      else found.push(`${prefix}${entry.name}`);
    }
  };
  await walk(path, "");
  return found.sort();
}

const modeOf = async (path: string): Promise<number> => (await stat(path)).mode & 0o777;

describe("--write merges into the client's own file, after a backup of what it replaces", () => {
  it("pip: index-url and trusted-host set in [global], everything else kept; a second run changes nothing", async () => {
    const home = await freshHome();
    const conf = join(home, ".config", "pip", "pip.conf");
    await mkdir(join(home, ".config", "pip"), { recursive: true });
    const before = lines(
      "# my pip settings",
      "[global]",
      "timeout = 30",
      "index_url = http://old.invalid/simple/",
      "trusted-host = pypi.internal",
      "    files.internal",
      "",
      "[install]",
      "index-url = http://other.invalid/simple/",
      "no-compile = true",
    );
    await writeFile(conf, before, { mode: 0o640 });
    const first = await setup(["pip", "--url", VAULT, "--write"], { HOME: home });
    assert.equal(first.code, 0, first.err);
    assert.equal(first.out, `updated ${conf} (the previous version is kept as ${conf}.bak-20250102T030405Z)\n`);
    assert.match(first.err, /also sets index-url in \[install\], which pip prefers there: remove it/);
    assert.equal(
      await readFile(conf, "utf8"),
      lines(
        "# my pip settings",
        "[global]",
        "timeout = 30",
        "index-url = http://vault.internal:8080/pypi/simple/",
        "trusted-host = pypi.internal files.internal vault.internal",
        "",
        "[install]",
        "index-url = http://other.invalid/simple/",
        "no-compile = true",
      ),
    );
    assert.equal(await readFile(`${conf}.bak-20250102T030405Z`, "utf8"), before);
    assert.equal(await modeOf(conf), 0o640, "the file's mode is kept");
    const second = await setup(["pip", "--url", VAULT, "--write"], { HOME: home });
    assert.equal(second.out, `unchanged ${conf} (it already says so)\n`);
    assert.deepEqual(await tree(join(home, ".config", "pip")), ["pip.conf", "pip.conf.bak-20250102T030405Z"]);
  });

  it("pip: a new file under XDG_CONFIG_HOME, or PIP_CONFIG_FILE when pip is told to read that; a token makes it 0600", async () => {
    const home = await freshHome();
    const xdg = join(home, "xdg");
    const created = await setup(["pip", "--url", VAULT, "--token", TOKEN, "--write"], { HOME: home, XDG_CONFIG_HOME: xdg });
    assert.equal(created.code, 0, created.err);
    const conf = join(xdg, "pip", "pip.conf");
    assert.equal(created.out, `created ${conf}\n`);
    assert.equal(await readFile(conf, "utf8"), lines("[global]", `index-url = http://__token__:${TOKEN}@vault.internal:8080/pypi/simple/`, "trusted-host = vault.internal"));
    assert.equal(await modeOf(conf), 0o600);
    assert.ok(!created.err.includes(TOKEN));

    const explicit = join(home, "elsewhere.conf");
    const result = await setup(["pip", "--url", VAULT, "--write"], { HOME: home, PIP_CONFIG_FILE: explicit, PIP_INDEX_URL: "http://x.invalid/" });
    assert.equal(result.out, `created ${explicit}\n`);
    assert.match(result.err, /PIP_INDEX_URL is set in this environment and takes precedence/);
  });

  it("npm: registry replaced in place, a token line added, other settings kept; a symlinked .npmrc is followed and a token narrows its mode", async () => {
    const home = await freshHome();
    const dotfiles = join(home, "dotfiles");
    await mkdir(dotfiles);
    const real = join(dotfiles, "npmrc");
    const before = lines("; my npmrc", "fund=false", "registry = https://registry.npmjs.org/", "@corp:registry=https://npm.corp.example/", "//vault.internal:8080/npm:_authToken=old-token", "", "[section]", "registry=ignored");
    await writeFile(real, before, { mode: 0o644 });
    await symlink(real, join(home, ".npmrc"));
    const result = await setup(["npm", "--url", VAULT, "--token", TOKEN, "--write"], { HOME: home });
    assert.equal(result.code, 0, result.err);
    assert.equal(result.out, `updated ${real} (the previous version is kept as ${real}.bak-20250102T030405Z; now readable by its owner only, as it holds the token)\n`);
    assert.equal(
      await readFile(real, "utf8"),
      lines("; my npmrc", "fund=false", "registry=http://vault.internal:8080/npm/", "@corp:registry=https://npm.corp.example/", `//vault.internal:8080/npm/:_authToken=${TOKEN}`, "", "[section]", "registry=ignored"),
    );
    assert.equal(await readlink(join(home, ".npmrc")), real, "the link stays a link");
    assert.equal(await modeOf(real), 0o600);
    assert.equal(await modeOf(`${real}.bak-20250102T030405Z`), 0o644, "the backup keeps the old mode");
    assert.ok(!result.err.includes(TOKEN) && !result.out.includes(TOKEN));
  });

  it("npm: npm_config_userconfig is the file npm reads; yarn adds always-auth", async () => {
    const home = await freshHome();
    const userconfig = join(home, "custom-npmrc");
    await writeFile(userconfig, "loglevel=warn\r\n");
    const result = await setup(["yarn", "--url", VAULT, "--token", TOKEN, "--write"], { HOME: home, npm_config_userconfig: userconfig });
    assert.equal(result.code, 0, result.err);
    assert.equal(
      await readFile(userconfig, "utf8"),
      ["loglevel=warn", "registry=http://vault.internal:8080/npm/", `//vault.internal:8080/npm/:_authToken=${TOKEN}`, "//vault.internal:8080/npm/:always-auth=true", ""].join("\r\n"),
      "CRLF kept",
    );
    assert.deepEqual(await tree(home), ["custom-npmrc", "custom-npmrc.bak-20250102T030405Z"]);
  });

  it("uv: the default [[index]] replaced, index-url dropped, other indexes and settings kept", async () => {
    const home = await freshHome();
    const file = join(home, ".config", "uv", "uv.toml");
    await mkdir(join(home, ".config", "uv"), { recursive: true });
    await writeFile(
      file,
      lines(
        'index-url = "https://pypi.org/simple"',
        "extra-index-url = [",
        '  "https://a.invalid/simple",',
        '  ["not", "a", "header"],',
        "]",
        "native-tls = true",
        "",
        "[[index]]",
        'name = "corp"',
        'url = "https://corp.invalid/simple"',
        "",
        "[[index]]",
        'name = "pypi"',
        'url = "https://pypi.org/simple"',
        "default = true  # the default",
        "",
        "[pip]",
        'index-url = "https://x.invalid/simple"',
      ),
    );
    const result = await setup(["uv", "--url", VAULT, "--write"], { HOME: home });
    assert.equal(result.code, 0, result.err);
    assert.match(result.err, /replaced its index-url/);
    assert.match(result.err, /the vault replaces the default index "pypi"/);
    assert.match(result.err, /also sets index-url in \[pip\]/);
    assert.equal(
      await readFile(file, "utf8"),
      lines(
        "extra-index-url = [",
        '  "https://a.invalid/simple",',
        '  ["not", "a", "header"],',
        "]",
        "native-tls = true",
        "",
        "[[index]]",
        'name = "corp"',
        'url = "https://corp.invalid/simple"',
        "",
        "[pip]",
        'index-url = "https://x.invalid/simple"',
        "",
        "[[index]]",
        'name = "artifact-vault"',
        'url = "http://vault.internal:8080/pypi/simple/"',
        "default = true",
      ),
    );
    const again = await setup(["uv", "--url", VAULT, "--write"], { HOME: home });
    assert.match(again.out, /^unchanged /);
  });

  it("podman: the registries.conf.d drop-in and, with a token, a login merged into auth.json", async () => {
    const home = await freshHome();
    const auth = join(home, ".config", "containers", "auth.json");
    await mkdir(join(home, ".config", "containers"), { recursive: true });
    await writeFile(auth, JSON.stringify({ auths: { "quay.io": { auth: "cXVheTpwdw==" } }, credHelpers: { "gcr.io": "gcloud" } }));
    const result = await setup(["skopeo", "--url", VAULT, "--token", TOKEN, "--registry", "upstream.example:5000", "--write"], { HOME: home });
    assert.equal(result.code, 0, result.err);
    const dropIn = join(home, ".config", "containers", "registries.conf.d", "artifact-vault.conf");
    assert.equal(
      await readFile(dropIn, "utf8"),
      lines(
        "# written by artifact-vault setup: upstream.example:5000 through the vault",
        "[[registry]]",
        'prefix = "upstream.example:5000"',
        'location = "upstream.example:5000"',
        "[[registry.mirror]]",
        'location = "vault.internal:8080"',
        "insecure = true",
      ),
    );
    assert.deepEqual(JSON.parse(await readFile(auth, "utf8")), {
      auths: { "quay.io": { auth: "cXVheTpwdw==" }, "vault.internal:8080": { auth: Buffer.from(`x:${TOKEN}`).toString("base64") } },
      credHelpers: { "gcr.io": "gcloud" },
    });
    assert.equal(await modeOf(auth), 0o600);
    assert.equal(await modeOf(dropIn), 0o644);
  });

  it("podman: an auth.json that is not JSON stops the command before any file is written", async () => {
    const home = await freshHome();
    const auth = join(home, ".config", "containers", "auth.json");
    await mkdir(join(home, ".config", "containers"), { recursive: true });
    await writeFile(auth, "{ not json");
    const result = await setup(["podman", "--url", VAULT, "--token", TOKEN, "--write"], { HOME: home });
    assert.equal(result.code, 1);
    assert.match(result.err, /cannot merge into .*auth\.json: it is not valid JSON/);
    assert.deepEqual(await tree(join(home, ".config")), ["containers/auth.json"]);
    assert.equal(await readFile(auth, "utf8"), "{ not json");
  });

  it("containerd below --root: the vault becomes the first host, the file's server and other hosts stay", async () => {
    const home = await freshHome();
    const root = join(home, "root");
    const file = join(root, "etc", "containerd", "certs.d", "docker.io", "hosts.toml");
    await mkdir(join(root, "etc", "containerd", "certs.d", "docker.io"), { recursive: true });
    await writeFile(
      file,
      lines(
        "# corp mirror first",
        'server = "https://registry-1.docker.io"',
        "",
        '[host."https://mirror.corp.example"]',
        '  capabilities = ["pull"]',
        '[host."https://mirror.corp.example".header]',
        '  x-team = ["a", "b"]',
        "",
        '[host."http://vault.internal:8080"]',
        '  capabilities = ["pull"]',
      ),
    );
    const result = await setupWith({ isRoot: () => false }, ["containerd", "--url", VAULT, "--write", "--root", root], { HOME: home });
    assert.equal(result.code, 0, result.err);
    assert.equal(
      await readFile(file, "utf8"),
      lines(
        "# corp mirror first",
        'server = "https://registry-1.docker.io"',
        '[host."http://vault.internal:8080"]',
        '  capabilities = ["pull", "resolve"]',
        "",
        '[host."https://mirror.corp.example"]',
        '  capabilities = ["pull"]',
        '[host."https://mirror.corp.example".header]',
        '  x-team = ["a", "b"]',
        "",
      ),
    );
    assert.deepEqual(await tree(root), ["etc/containerd/certs.d/docker.io/hosts.toml", "etc/containerd/certs.d/docker.io/hosts.toml.bak-20250102T030405Z"]);
  });

  it("apt below --root: a source of its own, the token in auth.conf.d (0600); backups end in .bak, which apt skips", async () => {
    const home = await freshHome();
    const root = join(home, "root");
    await mkdir(join(root, "etc"), { recursive: true });
    await writeFile(join(root, "etc", "os-release"), 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_CODENAME=bookworm\n');
    const first = await setup(["apt", "--url", VAULT, "--token", TOKEN, "--write", "--root", root], { HOME: home });
    assert.equal(first.code, 0, first.err);
    const sources = join(root, "etc", "apt", "sources.list.d", "artifact-vault-debian.sources");
    const auth = join(root, "etc", "apt", "auth.conf.d", "vault.conf");
    assert.equal(first.out, `created ${sources}\ncreated ${auth}\n`);
    assert.match(await readFile(sources, "utf8"), /^Suites: bookworm bookworm-updates\nComponents: main\nSigned-By: \/usr\/share\/keyrings\/debian-archive-keyring\.gpg\n$/m);
    assert.equal(await readFile(auth, "utf8"), `machine http://vault.internal:8080\nlogin x\npassword ${TOKEN}\n`);
    assert.equal(await modeOf(auth), 0o600);
    assert.equal(await modeOf(sources), 0o644);
    assert.match(first.err, /turn off the entries for bookworm, bookworm-updates there/);
    assert.ok(!first.err.includes(TOKEN) && !first.out.includes(TOKEN));

    const second = await setup(["apt", "--url", "http://vault2.internal:8080", "--write", "--root", root, "--suite", "trixie"], { HOME: home });
    assert.equal(second.code, 0, second.err);
    assert.equal(second.out, `updated ${sources} (the previous version is kept as ${sources}.20250102T030405Z.bak)\n`);
    const third = await setup(["apt", "--url", "http://vault3.internal:8080", "--write", "--root", root, "--suite", "trixie"], { HOME: home });
    assert.match(third.out, /kept as .*artifact-vault-debian\.sources\.20250102T030405Z-2\.bak\)/, "a backup never overwrites another");
    assert.deepEqual(await tree(join(root, "etc", "apt")), [
      "auth.conf.d/vault.conf",
      "sources.list.d/artifact-vault-debian.sources",
      "sources.list.d/artifact-vault-debian.sources.20250102T030405Z-2.bak",
      "sources.list.d/artifact-vault-debian.sources.20250102T030405Z.bak",
    ]);
  });

  it("below --root, a symbolic link that leads outside it is not followed", async () => {
    const home = await freshHome();
    const root = join(home, "root");
    const outside = join(home, "outside");
    await mkdir(root, { recursive: true });
    await mkdir(outside, { recursive: true });
    await symlink(outside, join(root, "etc"));
    const result = await setup(["apt", "--url", VAULT, "--proxy", "--write", "--root", root], { HOME: home });
    assert.equal(result.code, 1);
    assert.match(result.err, /leads outside .* \(through a symbolic link\): not written/);
    assert.deepEqual(await readdir(outside), []);
    assert.ok((await lstat(join(root, "etc"))).isSymbolicLink());
  });

  it("a file that cannot be written is a runtime failure (exit 1) with the reason, not a crash", async () => {
    const home = await freshHome();
    // HOME under a regular file: no user, root included, can create anything there.
    await writeFile(join(home, "plain-file"), "");
    const result = await setup(["npm", "--url", VAULT, "--write"], { HOME: join(home, "plain-file", "home") });
    assert.equal(result.code, 1);
    assert.match(result.err, /^error: ENOTDIR/m);
    assert.deepEqual(await readdir(home), ["plain-file"]);
  });
});

describe("go, maven, gem, bundler and hf", () => {
  it("print their settings under the file's name", async () => {
    const home = await freshHome();
    const expected: Record<string, string> = {
      go: lines("# HOME/.config/go/env", "GOPROXY=http://vault.internal:8080/go/"),
      gem: lines("# HOME/.gemrc", "---", ":sources:", "- http://vault.internal:8080/rubygems/"),
      bundler: lines("# HOME/.bundle/config", "---", 'BUNDLE_MIRROR__HTTPS://RUBYGEMS__ORG/: "http://vault.internal:8080/rubygems/"'),
      hf: lines("# HOME/.profile", "export HF_ENDPOINT=http://vault.internal:8080/hf"),
    };
    for (const [tool, text] of Object.entries(expected)) {
      const result = await setup([tool, "--url", VAULT], { HOME: home });
      assert.equal(result.code, 0, result.err);
      assert.equal(result.out.replaceAll(home, "HOME"), text, tool);
    }
    const maven = await setup(["mvn", "--url", VAULT], { HOME: home });
    assert.match(maven.out.replaceAll(home, "HOME"), /^# HOME\/\.m2\/settings\.xml\n<\?xml[^]*<url>http:\/\/vault\.internal:8080\/maven\/<\/url>[^]*<\/settings>\n$/);
  });

  it("go: a token with an http URL is a usage error that says why, without the token", async () => {
    const home = await freshHome();
    const result = await setup(["go", "--url", VAULT, "--token", TOKEN, "--write"], { HOME: home });
    assert.equal(result.code, 2);
    assert.match(result.err, /the go command sends credentials only over https/);
    assert.ok(!result.err.includes(TOKEN) && !result.out.includes(TOKEN));
    assert.deepEqual(await readdir(home), []);
  });

  it("go --write: GOPROXY set, other lines kept; with a token over https the file is 0600", async () => {
    const home = await freshHome();
    const env = join(home, ".config", "go", "env");
    await mkdir(join(home, ".config", "go"), { recursive: true });
    await writeFile(env, lines("GOPRIVATE=git.corp.example", "GOPROXY=https://proxy.golang.org,direct"), { mode: 0o644 });
    const result = await setup(["go", "--url", "https://vault.example.com", "--token", TOKEN, "--write"], { HOME: home });
    assert.equal(result.code, 0, result.err);
    assert.equal(await readFile(env, "utf8"), lines("GOPRIVATE=git.corp.example", `GOPROXY=https://x:${TOKEN}@vault.example.com/go/`));
    assert.equal(await modeOf(env), 0o600);
    assert.ok(!result.err.includes(TOKEN) && !result.out.includes(TOKEN));
  });

  it("maven --write: creates settings.xml (0600 with a token); refuses one it did not write (exit 1), leaving it as it was", async () => {
    const home = await freshHome();
    const settings = join(home, ".m2", "settings.xml");
    const created = await setup(["maven", "--url", VAULT, "--token", TOKEN, "--write"], { HOME: home });
    assert.equal(created.code, 0, created.err);
    assert.equal(created.out, `created ${settings}\n`);
    assert.match(await readFile(settings, "utf8"), new RegExp(`<password>${TOKEN}</password>`));
    assert.equal(await modeOf(settings), 0o600);
    const again = await setup(["maven", "--url", VAULT, "--write"], { HOME: home });
    assert.equal(again.code, 0, again.err);
    assert.doesNotMatch(await readFile(settings, "utf8"), /<servers>/, "a file it wrote is replaced");

    const other = await freshHome();
    const theirs = lines("<settings>", "  <offline>true</offline>", "</settings>");
    await mkdir(join(other, ".m2"));
    await writeFile(join(other, ".m2", "settings.xml"), theirs);
    const refused = await setup(["maven", "--url", VAULT, "--token", TOKEN, "--write"], { HOME: other });
    assert.equal(refused.code, 1);
    assert.match(refused.err, /Add to its <mirrors> a <mirror> with <id>artifact-vault<\/id>/);
    assert.ok(!refused.err.includes(TOKEN));
    assert.equal(await readFile(join(other, ".m2", "settings.xml"), "utf8"), theirs);
    assert.deepEqual(await tree(join(other, ".m2")), ["settings.xml"]);
  });

  it("gem and bundler --write with a token: the token in the files only, both 0600, other keys kept", async () => {
    const home = await freshHome();
    await writeFile(join(home, ".gemrc"), lines("---", "gem: --no-document", ":sources:", "- https://rubygems.org/"));
    const gem = await setup(["gem", "--url", VAULT, "--token", TOKEN, "--write"], { HOME: home });
    assert.equal(gem.code, 0, gem.err);
    assert.equal(await readFile(join(home, ".gemrc"), "utf8"), lines("---", "gem: --no-document", ":sources:", `- http://x:${TOKEN}@vault.internal:8080/rubygems/`));
    assert.equal(await modeOf(join(home, ".gemrc")), 0o600);
    const bundler = await setup(["bundle", "--url", VAULT, "--token", TOKEN, "--write"], { HOME: home });
    assert.equal(bundler.code, 0, bundler.err);
    assert.equal(
      await readFile(join(home, ".bundle", "config"), "utf8"),
      lines("---", 'BUNDLE_MIRROR__HTTPS://RUBYGEMS__ORG/: "http://vault.internal:8080/rubygems/"', `BUNDLE_HTTP://VAULT__INTERNAL:8080/RUBYGEMS/: "x:${TOKEN}"`),
    );
    assert.equal(await modeOf(join(home, ".bundle", "config")), 0o600);
    for (const run of [gem, bundler]) assert.ok(!run.err.includes(TOKEN) && !run.out.includes(TOKEN));
  });

  it("hf: --write is refused (it is an environment variable); the token only in the printed text", async () => {
    const home = await freshHome();
    const refused = await setup(["hf", "--url", VAULT, "--write"], { HOME: home });
    assert.equal(refused.code, 2);
    assert.match(refused.err, /HF_ENDPOINT is an environment variable/);
    const printed = await setup(["huggingface", "--url", VAULT, "--token", TOKEN], { HOME: home });
    assert.match(printed.out, new RegExp(`^export HF_TOKEN='${TOKEN}'$`, "m"));
    assert.ok(!printed.err.includes(TOKEN));
  });
});
