/**
 * The real `apt-get` (and `apt-cache`), fully isolated from the machine's apt: `APT_CONFIG`
 * points at a config of our own that also moves `Dir::Etc::main` and `Dir::Etc::parts` (apt
 * reads `APT_CONFIG` before those, so nothing in /etc/apt/apt.conf.d applies), and every other
 * directory apt touches (lists, status, archives, sources, preferences, trusted keys, logs)
 * lives in the env's temp dir. Nothing is locked (`Debug::NoLocking`), the dpkg status is an
 * empty file, and proxies from the environment (`http_proxy`, ...) are dropped.
 *
 * As root, apt hands downloads to the `_apt` user, who cannot enter a test's 0700 temp dir; apt
 * then warns and downloads as root anyway. `APT::Sandbox::User` is set to the current user,
 * so there is no warning and no dependence on the temp dir's mode.
 *
 * `Acquire::Retries` is 0 unless given (apt 2.6 retries failures 3 times with a growing delay):
 * a test that counts upstream requests sees exactly one per file.
 */
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, readdir, rm, writeFile } from "node:fs/promises";
import { userInfo } from "node:os";
import { join } from "node:path";

export interface AptSource {
  /** The archive root (`http://127.0.0.1:PORT/debian`). */
  readonly url: string;
  readonly suite: string;
  readonly components?: readonly string[];
  /** For `signed-by=` (binary or `.asc`); omit only with `trusted: true`. */
  readonly keyring?: string;
  /** `[trusted=yes]`: no signature check. */
  readonly trusted?: boolean;
  /** `deb` (default) or `deb-src`. */
  readonly type?: "deb" | "deb-src";
}

export interface AptEnvOptions {
  /** A directory of its own (created). */
  readonly dir: string;
  readonly sources: readonly AptSource[];
  /** `Acquire::http::Proxy` (`http://127.0.0.1:PORT/`): the sources keep their own URLs. */
  readonly proxy?: string;
  /** `APT::Architecture` (default: apt's own, that is the machine's). */
  readonly architecture?: string;
  /** `Acquire::Languages` (default: apt's, which is `en` under the `LC_ALL=C` we run with). `["none"]` skips Translation files. */
  readonly languages?: readonly string[];
  /** `Acquire::By-Hash` (default: apt's, `yes`: by-hash when the Release says `Acquire-By-Hash: yes`). */
  readonly byHash?: boolean | "force";
  /** `Acquire::Retries` (default 0). */
  readonly retries?: number;
  /** More `apt.conf` options, `name → value`. */
  readonly options?: Readonly<Record<string, string>>;
}

export interface AptEnv {
  readonly dir: string;
  /** The `APT_CONFIG` file. */
  readonly config: string;
  readonly sourceList: string;
  /** `Dir::State::lists`: the indexes `apt-get update` kept (`<host>_<path>_dists_<suite>_InRelease`, ...). */
  readonly lists: string;
  /** `Dir::Cache::archives`. */
  readonly archives: string;
}

export interface AptResult {
  /** The exit code (apt-get: 0 ok, 100 error), or -1 when it could not run or timed out. */
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
  /** stdout then stderr. */
  readonly output: string;
}

export interface AptRunOptions {
  /** Working directory (`apt-get download` and `apt-get source` write there); default the env dir. */
  readonly cwd?: string;
  /** Extra `-o name=value` for this run only (`Debug::Acquire::http=true` prints every request and response header). */
  readonly options?: Readonly<Record<string, string>>;
  readonly timeoutMs?: number;
}

function quote(value: string): string {
  if (value.includes('"') || value.includes("\n")) throw new Error(`apt.conf cannot quote ${JSON.stringify(value)}`);
  return `"${value}"`;
}

/** One `sources.list` line. */
export function sourcesLine(source: AptSource): string {
  const options = [...(source.keyring === undefined ? [] : [`signed-by=${source.keyring}`]), ...(source.trusted === true ? ["trusted=yes"] : [])];
  const bracket = options.length === 0 ? "" : ` [${options.join(" ")}]`;
  return `${source.type ?? "deb"}${bracket} ${source.url} ${source.suite} ${(source.components ?? ["main"]).join(" ")}`;
}

/** Creates the env's directories, an empty dpkg status, its `sources.list` and its `apt.conf`. */
export async function createAptEnv(options: AptEnvOptions): Promise<AptEnv> {
  const { dir } = options;
  const etc = join(dir, "etc");
  const env: AptEnv = {
    dir,
    config: join(dir, "apt.conf"),
    sourceList: join(etc, "sources.list"),
    lists: join(dir, "state", "lists"),
    archives: join(dir, "cache", "archives"),
  };
  for (const sub of ["etc/apt.conf.d", "etc/sources.list.d", "etc/preferences.d", "etc/trusted.gpg.d", "state/lists/partial", "cache/archives/partial", "log"]) {
    await mkdir(join(dir, sub), { recursive: true });
  }
  await writeFile(join(dir, "state", "status"), "");
  await writeAptSources(env, options.sources);

  const settings: Array<[string, string]> = [
    ["Dir::Etc", `${etc}/`],
    ["Dir::Etc::main", "/dev/null"],
    ["Dir::Etc::parts", `${etc}/apt.conf.d/`],
    ["Dir::Etc::sourcelist", env.sourceList],
    ["Dir::Etc::sourceparts", `${etc}/sources.list.d/`],
    ["Dir::Etc::preferences", `${etc}/preferences`],
    ["Dir::Etc::preferencesparts", `${etc}/preferences.d/`],
    ["Dir::Etc::trusted", `${etc}/trusted.gpg`],
    ["Dir::Etc::trustedparts", `${etc}/trusted.gpg.d/`],
    ["Dir::Etc::netrc", `${etc}/auth.conf`],
    ["Dir::Etc::netrcparts", `${etc}/auth.conf.d/`],
    ["Dir::State", `${join(dir, "state")}/`],
    ["Dir::State::lists", `${env.lists}/`],
    ["Dir::State::status", join(dir, "state", "status")],
    ["Dir::Cache", `${join(dir, "cache")}/`],
    ["Dir::Cache::archives", `${env.archives}/`],
    ["Dir::Log", `${join(dir, "log")}/`],
    ["Debug::NoLocking", "true"],
    ["APT::Sandbox::User", userInfo().username],
    ["Acquire::Retries", String(options.retries ?? 0)],
    ["Acquire::http::Timeout", "30"],
    ["APT::Get::Assume-Yes", "true"],
    // No progress meter; the Get:/Hit:/Err: lines stay.
    ["quiet", "1"],
  ];
  if (options.proxy !== undefined) settings.push(["Acquire::http::Proxy", options.proxy]);
  if (options.architecture !== undefined) settings.push(["APT::Architecture", options.architecture]);
  if (options.byHash !== undefined) settings.push(["Acquire::By-Hash", options.byHash === "force" ? "force" : options.byHash ? "yes" : "no"]);
  for (const [name, value] of Object.entries(options.options ?? {})) settings.push([name, value]);

  const lines = settings.map(([name, value]) => `${name} ${quote(value)};`);
  if (options.architecture !== undefined) lines.push(`APT::Architectures { ${quote(options.architecture)}; };`);
  if (options.languages !== undefined) lines.push(`Acquire::Languages { ${options.languages.map(quote).join(" ")} };`);
  await writeFile(env.config, `${lines.join("\n")}\n`);
  return env;
}

/** Replaces the env's `sources.list`. */
export async function writeAptSources(env: AptEnv, sources: readonly AptSource[]): Promise<void> {
  await writeFile(env.sourceList, `${sources.map(sourcesLine).join("\n")}\n`);
}

/** Forgets what `apt-get update` fetched, so the next one is a first one. */
export async function clearAptLists(env: AptEnv): Promise<void> {
  await rm(env.lists, { recursive: true, force: true });
  await mkdir(join(env.lists, "partial"), { recursive: true });
  for (const cache of ["pkgcache.bin", "srcpkgcache.bin"]) await rm(join(env.dir, "cache", cache), { force: true });
}

/** The index files `apt-get update` kept (names in `Dir::State::lists`), sorted. */
export async function aptListFiles(env: AptEnv): Promise<string[]> {
  if (!existsSync(env.lists)) return [];
  return (await readdir(env.lists, { withFileTypes: true }))
    .filter((entry) => entry.isFile() && entry.name !== "lock")
    .map((entry) => entry.name)
    .sort();
}

/** `apt-get`, `apt-cache` or `apt-config` with the env's config; never throws on a non-zero exit. */
export function aptRun(command: "apt-get" | "apt-cache" | "apt-config", env: AptEnv, args: readonly string[], run: AptRunOptions = {}): Promise<AptResult> {
  return runTool(command, env, args, run);
}

function runTool(command: string, env: AptEnv, args: readonly string[], run: AptRunOptions): Promise<AptResult> {
  const extra = Object.entries(run.options ?? {}).flatMap(([name, value]) => ["-o", `${name}=${value}`]);
  return new Promise((resolve) => {
    execFile(
      command,
      [...extra, ...args],
      {
        cwd: run.cwd ?? env.dir,
        // No http_proxy / no_proxy / APT_* from the caller's environment.
        env: { PATH: process.env["PATH"] ?? "/usr/bin:/bin", HOME: env.dir, LC_ALL: "C", APT_CONFIG: env.config, DEBIAN_FRONTEND: "noninteractive" },
        timeout: run.timeoutMs ?? 120_000,
        maxBuffer: 64 * 1024 * 1024,
        encoding: "utf8",
      },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === "number" ? error.code : -1;
        const note = error !== null && code === -1 ? `\n[${command}: ${error.message}]` : "";
        resolve({ code, stdout, stderr: `${stderr}${note}`, output: `${stdout}${stderr}${note}` });
      },
    );
  });
}

/** `apt-get ARGS` in the env; never throws on a non-zero exit. */
export function aptGet(env: AptEnv, args: readonly string[], run: AptRunOptions = {}): Promise<AptResult> {
  return runTool("apt-get", env, args, run);
}

/** `apt-cache ARGS` in the env. */
export function aptCache(env: AptEnv, args: readonly string[], run: AptRunOptions = {}): Promise<AptResult> {
  return runTool("apt-cache", env, args, run);
}

/** `apt-get update`. */
export function aptUpdate(env: AptEnv, run: AptRunOptions = {}): Promise<AptResult> {
  return aptGet(env, ["update"], run);
}

/** `apt-get download PACKAGES` (`name` or `name=version`): the .deb files land in `cwd`. */
export function aptDownload(env: AptEnv, packages: readonly string[], cwd: string, run: Omit<AptRunOptions, "cwd"> = {}): Promise<AptResult> {
  return aptGet(env, ["download", ...packages], { ...run, cwd });
}

/** `apt-get source --download-only PACKAGES` (needs a `deb-src` source): `.dsc` and tarballs land in `cwd`. */
export function aptSourceDownload(env: AptEnv, packages: readonly string[], cwd: string, run: Omit<AptRunOptions, "cwd"> = {}): Promise<AptResult> {
  return aptGet(env, ["source", "--download-only", ...packages], { ...run, cwd });
}

/** The versions of `name` the env's indexes offer (from `apt-cache madison`), as listed (newest first). */
export async function aptVersions(env: AptEnv, name: string): Promise<string[]> {
  const result = await aptCache(env, ["madison", name]);
  return result.stdout
    .split("\n")
    .map((line) => line.split("|").map((field) => field.trim()))
    .filter((fields) => fields[0] === name && fields[1] !== undefined && !(fields[2] ?? "").endsWith("Sources"))
    .map((fields) => fields[1] ?? "");
}

/** A failed apt run's lines that matter (`E:` and `W:`), for assertion messages. */
export function aptProblems(result: AptResult): string[] {
  return result.output.split("\n").filter((line) => /^(E|W|Err):?/.test(line));
}
