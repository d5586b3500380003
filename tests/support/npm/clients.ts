/**
 * The real npm clients — npm (the one on PATH), pnpm 10 and yarn 1 (devDependencies) — run fully
 * isolated for end-to-end tests. Each runs in a sandbox of its own: HOME, XDG dirs, a user npmrc
 * and an empty global npmrc (so neither `~/.npmrc` nor `/usr/etc/npmrc` is read), the npm cache,
 * pnpm's store and cache, yarn's cache and `.yarnrc`. The environment is built from scratch
 * (PATH and the sandbox only): no `npm_config_*`, `CI`, proxy or token variable of this process
 * leaks in. The registry is passed on every command line, so nothing ever goes to
 * registry.npmjs.org or registry.yarnpkg.com.
 *
 * A client's exit code, stdout and stderr are returned; a failure never throws.
 */
import { spawn } from "node:child_process";
import { once } from "node:events";
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { findTool } from "../tools.js";
import { installedPackageFile } from "./node-modules.js";

export interface ClientResult {
  /** The exit code; -1 if the client was killed (timeout) or could not start. */
  readonly code: number;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
  /** The command line, for assertion messages. */
  readonly command: string;
  /** Wall-clock time from spawn to exit. */
  readonly durationMs: number;
}

/** A client's isolated home: every file and folder an npm client reads or writes outside the project. */
export interface ClientSandbox {
  readonly dir: string;
  readonly home: string;
  /** The user npmrc (`npm_config_userconfig`, also `$HOME/.npmrc`). */
  readonly npmrc: string;
  /** An empty global npmrc (`npm_config_globalconfig`). */
  readonly globalNpmrc: string;
  readonly npmCache: string;
  readonly pnpmStore: string;
  readonly yarnCache: string;
  /** Empties the npm cache, the pnpm store and cache, and the yarn cache. */
  clearCaches(): void;
  /** Adds `//host:port/path/:_authToken=TOKEN` for `registry` to the npmrc. */
  addToken(registry: string, token: string): void;
}

export interface ClientOptions {
  /** The project directory the client runs in. */
  readonly cwd: string;
  /** The registry (`http://VAULT/npm/`); a trailing slash is added when missing. */
  readonly registry: string;
  readonly sandbox: ClientSandbox;
  /** Extra environment variables (on top of the isolated set). */
  readonly env?: Readonly<Record<string, string>>;
  /** Kills the client (its process group) after this long; default 120 s. */
  readonly timeoutMs?: number;
}

/**
 * Nothing may leave for the internet: every https request goes to a dead proxy (the registries the
 * tests use are plain http on loopback). yarn 1 needs it most: `yarn audit` posts to
 * https://registry.yarnpkg.com whatever the registry is (hard-coded in yarn 1.22).
 */
export const DEAD_PROXY = "http://127.0.0.1:9";

/**
 * npm's and pnpm's retries are kept (2) but with short pauses: by default they back off 10 s, then
 * up to 60 s, so a test that serves a bad tarball or a 5xx would wait minutes.
 */
const USER_NPMRC = [
  "fund=false",
  "update-notifier=false",
  "loglevel=notice",
  "fetch-retries=2",
  "fetch-retry-mintimeout=100",
  "fetch-retry-maxtimeout=1000",
  `https-proxy=${DEAD_PROXY}`,
  "noproxy=127.0.0.1,localhost,::1",
  "",
].join("\n");
const YARNRC = (yarnCache: string): string =>
  ["disable-self-update-check true", `cache-folder ${JSON.stringify(yarnCache)}`, `https-proxy ${JSON.stringify(DEAD_PROXY)}`, ""].join("\n");

/** Creates a sandbox in `dir` (or reuses one there, its npmrc and tokens kept). */
export function clientSandbox(dir: string): ClientSandbox {
  const home = join(dir, "home");
  const npmrc = join(home, ".npmrc");
  const globalNpmrc = join(dir, "global-npmrc");
  const npmCache = join(dir, "npm-cache");
  const pnpmStore = join(dir, "pnpm-store");
  const yarnCache = join(dir, "yarn-cache");
  const xdg = ["config", "cache", "data", "state"].map((name) => join(home, `.${name}`));
  const caches = [npmCache, pnpmStore, yarnCache, join(home, ".cache")];
  for (const folder of [home, ...xdg, ...caches]) mkdirSync(folder, { recursive: true });
  if (!existsSync(npmrc)) writeFileSync(npmrc, USER_NPMRC);
  writeFileSync(globalNpmrc, "", { flag: "a" });
  writeFileSync(join(home, ".yarnrc"), YARNRC(yarnCache));
  return {
    dir,
    home,
    npmrc,
    globalNpmrc,
    npmCache,
    pnpmStore,
    yarnCache,
    clearCaches: () => {
      for (const folder of caches) {
        rmSync(folder, { recursive: true, force: true });
        mkdirSync(folder, { recursive: true });
      }
    },
    addToken: (registry, token) => {
      const url = new URL(withSlash(registry));
      writeFileSync(npmrc, `//${url.host}${url.pathname}:_authToken=${token}\n`, { flag: "a" });
    },
  };
}

const withSlash = (url: string): string => (url.endsWith("/") ? url : `${url}/`);

function isolatedEnv(sandbox: ClientSandbox, extra: Readonly<Record<string, string>> = {}): NodeJS.ProcessEnv {
  const { home } = sandbox;
  return {
    PATH: process.env["PATH"] ?? "/usr/bin:/bin",
    HOME: home,
    USERPROFILE: home,
    LANG: "C.UTF-8",
    TMPDIR: join(sandbox.dir, "tmp"),
    XDG_CONFIG_HOME: join(home, ".config"),
    XDG_CACHE_HOME: join(home, ".cache"),
    XDG_DATA_HOME: join(home, ".data"),
    XDG_STATE_HOME: join(home, ".state"),
    npm_config_userconfig: sandbox.npmrc,
    npm_config_globalconfig: sandbox.globalNpmrc,
    npm_config_cache: sandbox.npmCache,
    npm_config_update_notifier: "false",
    NO_UPDATE_NOTIFIER: "1",
    NO_COLOR: "1",
    FORCE_COLOR: "0",
    YARN_CACHE_FOLDER: sandbox.yarnCache,
    YARN_DISABLE_SELF_UPDATE_CHECK: "true",
    YARN_IGNORE_PATH: "1",
    ...extra,
  };
}

/** Process groups of the clients running now: killed if this process exits first (one listener for all). */
const running = new Set<number>();
let exitHookInstalled = false;

function killGroup(pid: number): void {
  try {
    process.kill(-pid, "SIGKILL");
  } catch {
    // already gone
  }
}

/** Runs `command args` in `cwd` with `env`, its own process group, killed after `timeoutMs`. */
export async function runCommand(command: string, args: readonly string[], options: { cwd: string; env: NodeJS.ProcessEnv; timeoutMs?: number; label?: string }): Promise<ClientResult> {
  const label = `${options.label ?? command} ${args.join(" ")}`;
  const tmp = options.env["TMPDIR"];
  if (tmp !== undefined) mkdirSync(tmp, { recursive: true });
  const started = performance.now();
  const child = spawn(command, args, { cwd: options.cwd, env: options.env, detached: true, stdio: ["ignore", "pipe", "pipe"] });
  const stdout: Buffer[] = [];
  const stderr: Buffer[] = [];
  child.stdout.on("data", (chunk: Buffer) => stdout.push(chunk));
  child.stderr.on("data", (chunk: Buffer) => stderr.push(chunk));
  const pid = child.pid;
  if (pid !== undefined) running.add(pid);
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.once("exit", () => running.forEach(killGroup));
  }
  const timer = setTimeout(() => pid !== undefined && killGroup(pid), options.timeoutMs ?? 120_000);
  let code = -1;
  let signal: NodeJS.Signals | null = null;
  let startError = "";
  try {
    const [exitCode, exitSignal] = (await once(child, "close")) as [number | null, NodeJS.Signals | null];
    code = exitCode ?? -1;
    signal = exitSignal;
  } catch (error) {
    startError = `${String(error)}\n`;
  } finally {
    clearTimeout(timer);
    if (pid !== undefined) running.delete(pid);
  }
  return { code, signal, stdout: Buffer.concat(stdout).toString("utf8"), stderr: `${startError}${Buffer.concat(stderr).toString("utf8")}`, command: label, durationMs: performance.now() - started };
}

/** The npm on PATH (`VAULT_TEST_NPM` overrides it). */
export function npmPath(): string {
  const configured = process.env["VAULT_TEST_NPM"];
  if (configured !== undefined && configured !== "") return configured;
  const found = findTool("npm");
  if (found === undefined) throw new Error("npm is not on PATH");
  return found;
}

/** `npm ARGS --registry R` in the sandbox (the registry goes last: no `--` in `args`). */
export function npmCli(args: readonly string[], options: ClientOptions): Promise<ClientResult> {
  return runCommand(npmPath(), [...args, "--registry", withSlash(options.registry)], {
    cwd: options.cwd,
    env: isolatedEnv(options.sandbox, options.env),
    label: "npm",
    timeoutMs: options.timeoutMs,
  });
}

/** `pnpm ARGS --config.registry=R --config.store-dir=S …` (pnpm 10, the devDependency) in the sandbox. */
export function pnpmCli(args: readonly string[], options: ClientOptions): Promise<ClientResult> {
  const pnpm = installedPackageFile("pnpm", "bin/pnpm.cjs");
  // `--config.X=` rather than `--registry` / `--store-dir`: some commands (audit, outdated) refuse those.
  const pnpmArgs = [
    ...args,
    `--config.registry=${withSlash(options.registry)}`,
    `--config.store-dir=${options.sandbox.pnpmStore}`,
    `--config.cache-dir=${join(options.sandbox.home, ".cache", "pnpm")}`,
    "--config.update-notifier=false",
    "--config.manage-package-manager-versions=false",
  ];
  return runCommand(process.execPath, [pnpm, ...pnpmArgs], {
    cwd: options.cwd,
    env: isolatedEnv(options.sandbox, options.env),
    label: "pnpm",
    timeoutMs: options.timeoutMs,
  });
}

/** `yarn ARGS --registry R --cache-folder C --non-interactive` (yarn 1, the devDependency) in the sandbox. */
export function yarnCli(args: readonly string[], options: ClientOptions): Promise<ClientResult> {
  const yarn = installedPackageFile("yarn", "bin/yarn.js");
  const yarnArgs = [...args, "--registry", withSlash(options.registry), "--cache-folder", options.sandbox.yarnCache, "--non-interactive", "--no-progress"];
  return runCommand(process.execPath, [yarn, ...yarnArgs], {
    cwd: options.cwd,
    env: isolatedEnv(options.sandbox, { YARN_REGISTRY: withSlash(options.registry), ...options.env }),
    label: "yarn",
    timeoutMs: options.timeoutMs,
  });
}

/** `name@version` of each client, for test diagnostics. */
export async function clientVersions(sandbox: ClientSandbox): Promise<{ npm: string; pnpm: string; yarn: string }> {
  const options: ClientOptions = { cwd: sandbox.dir, registry: "http://127.0.0.1:9/", sandbox };
  const [npm, pnpm, yarn] = await Promise.all([npmCli(["--version"], options), pnpmCli(["--version"], options), yarnCli(["--version"], options)]);
  return { npm: npm.stdout.trim(), pnpm: pnpm.stdout.trim(), yarn: yarn.stdout.trim() };
}

/** A failed client's whole story, for `assert` messages. */
export function describeResult(result: ClientResult): string {
  return `${result.command}\nexit ${result.code}${result.signal === null ? "" : ` (${result.signal})`}\n--- stdout\n${result.stdout}\n--- stderr\n${result.stderr}`;
}

export interface ConsumerProject {
  readonly dir: string;
  readonly packageJson: string;
}

/**
 * Writes a private consumer project (`package.json` only) into `dir` (created), depending on
 * `vault-probe-app@^1.0.0` unless `dependencies` says otherwise.
 */
export function consumerProject(dir: string, dependencies: Readonly<Record<string, string>> = { "vault-probe-app": "^1.0.0" }): ConsumerProject {
  mkdirSync(dir, { recursive: true });
  const packageJson = join(dir, "package.json");
  writeFileSync(packageJson, `${JSON.stringify({ name: "vault-probe-consumer", version: "1.0.0", private: true, license: "MIT", dependencies }, null, 2)}\n`);
  return { dir, packageJson };
}

/** The version in `node_modules/<name>/package.json` (npm, yarn, and pnpm's symlinks), or undefined. */
export function installedVersion(projectDir: string, name: string): string | undefined {
  try {
    const manifest = JSON.parse(readFileSync(join(projectDir, "node_modules", name, "package.json"), "utf8")) as { version?: string };
    return manifest.version;
  } catch {
    return undefined;
  }
}

export interface LockedPackage {
  /** `name@version`. */
  readonly id: string;
  /** The tarball URL the lockfile records (undefined where it records none: pnpm's registry packages). */
  readonly resolved: string | undefined;
  readonly integrity: string | undefined;
}

/** Packages in `package-lock.json` (lockfileVersion 3). */
export function npmLockPackages(projectDir: string): LockedPackage[] {
  const lock = JSON.parse(readFileSync(join(projectDir, "package-lock.json"), "utf8")) as {
    packages?: Record<string, { version?: string; resolved?: string; integrity?: string; name?: string }>;
  };
  return Object.entries(lock.packages ?? {})
    .filter(([path]) => path !== "")
    .map(([path, entry]) => {
      const name = entry.name ?? path.slice(path.lastIndexOf("node_modules/") + "node_modules/".length);
      return { id: `${name}@${entry.version ?? "?"}`, resolved: entry.resolved, integrity: entry.integrity };
    })
    .sort((a, b) => a.id.localeCompare(b.id));
}

/** Packages in `yarn.lock` (yarn 1): `resolved` keeps its `#sha1` fragment. */
export function yarnLockPackages(projectDir: string): LockedPackage[] {
  const text = readFileSync(join(projectDir, "yarn.lock"), "utf8");
  const packages: LockedPackage[] = [];
  for (const block of text.split(/\n(?=\S)/)) {
    const header = /^"?((?:@[^@/"]+\/)?[^@"]+)@/.exec(block);
    const version = /\n\s+version "([^"]+)"/.exec(block);
    if (header?.[1] === undefined || version?.[1] === undefined) continue;
    packages.push({ id: `${header[1]}@${version[1]}`, resolved: /\n\s+resolved "([^"]+)"/.exec(block)?.[1], integrity: /\n\s+integrity (\S+)/.exec(block)?.[1] });
  }
  return packages.sort((a, b) => a.id.localeCompare(b.id));
}

/**
 * Packages in `pnpm-lock.yaml` (lockfile v9): a registry package's `resolution` holds its
 * integrity and no URL (a `tarball:` only for a tarball off the registry's usual path). Read with
 * a pattern rather than a YAML parser, so the helpers import nothing outside node: (tests may be
 * built into an outDir where bare imports do not resolve).
 */
export function pnpmLockPackages(projectDir: string): LockedPackage[] {
  const text = readFileSync(join(projectDir, "pnpm-lock.yaml"), "utf8");
  const section = /^packages:\n([\s\S]*?)(?=^\S|(?![\s\S]))/m.exec(text)?.[1] ?? "";
  const packages: LockedPackage[] = [];
  for (const match of section.matchAll(/^ {2}'?([^'\n]+?)'?:\n {4}resolution: \{([^}\n]*)\}/gm)) {
    const [, id = "", resolution = ""] = match;
    const field = (name: string): string | undefined => new RegExp(`(?:^|,)\\s*${name}:\\s*([^,\\s]+)`).exec(resolution)?.[1];
    packages.push({ id, resolved: field("tarball"), integrity: field("integrity") });
  }
  return packages.sort((a, b) => a.id.localeCompare(b.id));
}
