/**
 * An offline gem source as static files, for a web server (nginx) to serve: tiny gems built by
 * the real `gem build` from hand-written gemspecs, the legacy index (`specs.4.8.gz`,
 * `quick/Marshal.4.8/*.gemspec.rz`; Marshal dumps, deflated) made by `gem generate_index`, and
 * the compact index written here:
 *
 *     versions    created_at: ...\n---\n<gem> <version>,<version> <md5 of info/<gem>>\n ...
 *                 (append-only: publishing appends a line with the new versions and the new MD5)
 *     info/<gem>  ---\n<version> <dep>:<requirement>,...|checksum:<sha256 of the .gem>\n ...
 *     names       ---\n<gem>\n ...
 *
 * Also the real `gem` and `bundle` commands, fully isolated (HOME, GEM_HOME, GEM_PATH, the spec
 * cache, Bundler's home, config and path in a sandbox; an empty gemrc; the environment built from
 * PATH alone), so that nothing reaches rubygems.org.
 */
import { createHash } from "node:crypto";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { runTool as run, type ToolResult } from "../process.js";


export interface GemVersion {
  readonly name: string;
  readonly version: string;
  /** Runtime dependencies: name → requirement (`">= 1.0"`; several joined by `&` as in the index, `, ` in the gemspec). */
  readonly dependencies?: Readonly<Record<string, string>>;
  /** What `lib/<name>.rb` says (a different text makes a different .gem). */
  readonly body?: string;
}

// The tool runner is the shared one; these names are this module's API for its tests.
export { run, type ToolResult };

/** The file a gem's library is in: `vault-greeting` → `vault_greeting.rb`. */
export function libraryFile(name: string): string {
  return `${name.replaceAll("-", "_")}.rb`;
}

/** Builds `<name>-<version>.gem` with `gem build` in a fresh directory below `work`; its bytes. */
export async function buildGem(work: string, gem: GemVersion): Promise<Buffer> {
  const dir = await mkdtemp(join(work, "gem-"));
  try {
    const lib = libraryFile(gem.name);
    await mkdir(join(dir, "lib"));
    await writeFile(join(dir, "lib", lib), gem.body ?? `# ${gem.name} ${gem.version}\nmodule ${constantName(gem.name)}\n  VERSION = ${JSON.stringify(gem.version)}\nend\n`);
    const dependencies = Object.entries(gem.dependencies ?? {})
      .map(([name, requirement]) => `  s.add_runtime_dependency ${JSON.stringify(name)}, ${requirement.split("&").map((part) => JSON.stringify(part)).join(", ")}\n`)
      .join("");
    await writeFile(
      join(dir, `${gem.name}.gemspec`),
      `Gem::Specification.new do |s|
  s.name = ${JSON.stringify(gem.name)}
  s.version = ${JSON.stringify(gem.version)}
  s.summary = "A test gem"
  s.authors = ["artifact-vault tests"]
  s.license = "MIT"
  s.files = ["lib/${lib}"]
${dependencies}end
`,
    );
    const result = await run("gem", ["build", `${gem.name}.gemspec`], { cwd: dir, env: isolatedEnv(dir) });
    if (result.code !== 0) throw new Error(`gem build failed:\n${result.stdout}${result.stderr}`);
    return await readFile(join(dir, `${gem.name}-${gem.version}.gem`));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function constantName(name: string): string {
  return name
    .split(/[-_]/)
    .map((part) => part.charAt(0).toUpperCase() + part.slice(1))
    .join("");
}

/** The environment for a build: PATH, and a HOME of its own. */
function isolatedEnv(home: string): Record<string, string> {
  return { PATH: process.env["PATH"] ?? "/usr/bin:/bin", HOME: home, LANG: "C.UTF-8", SOURCE_DATE_EPOCH: "1700000000" };
}

export const md5 = (bytes: Uint8Array | string): string => createHash("md5").update(bytes).digest("hex");
export const sha256 = (bytes: Uint8Array | string): string => createHash("sha256").update(bytes).digest("hex");

/** The gem source's tree below `root`: what was published, and its index files. */
export class GemSource {
  readonly #published: Array<{ gem: GemVersion; bytes: Buffer }> = [];
  /** The lines of `versions` after its header, as written so far (append-only). */
  readonly #versionLines: string[] = [];
  /** Versions of each gem already on a line of `versions`. */
  readonly #listed = new Map<string, Set<string>>();

  constructor(readonly root: string) {}

  /** The URL path below the root of a gem file (`gems/<name>-<version>.gem`). */
  static gemPath(name: string, version: string): string {
    return `gems/${name}-${version}.gem`;
  }

  add(gem: GemVersion, bytes: Buffer): void {
    this.#published.push({ gem, bytes });
  }

  bytesOf(name: string, version: string): Buffer | undefined {
    return this.#published.find((entry) => entry.gem.name === name && entry.gem.version === version)?.bytes;
  }

  /** `info/<name>` as it stands. */
  info(name: string): string {
    const lines = this.#published
      .filter((entry) => entry.gem.name === name)
      .map(({ gem, bytes }) => {
        const dependencies = Object.entries(gem.dependencies ?? {})
          .map(([dependency, requirement]) => `${dependency}:${requirement}`)
          .join(",");
        return `${gem.version} ${dependencies}|checksum:${sha256(bytes)}\n`;
      });
    return `---\n${lines.join("")}`;
  }

  /** Writes the gems, the legacy index (`gem generate_index`) and the compact index (`versions` appended to). */
  async writeTo(): Promise<void> {
    await mkdir(join(this.root, "gems"), { recursive: true });
    for (const { gem, bytes } of this.#published) await writeFile(join(this.root, GemSource.gemPath(gem.name, gem.version)), bytes);
    const indexed = await run("gem", ["generate_index", "--directory", this.root], { cwd: this.root, env: isolatedEnv(dirname(this.root)) });
    if (indexed.code !== 0) throw new Error(`gem generate_index failed:\n${indexed.stdout}${indexed.stderr}`);
    const names = [...new Set(this.#published.map((entry) => entry.gem.name))].sort();
    await mkdir(join(this.root, "info"), { recursive: true });
    for (const name of names) {
      const info = this.info(name);
      await writeFile(join(this.root, "info", name), info);
      const listed = this.#listed.get(name) ?? new Set<string>();
      const added = this.#published.filter((entry) => entry.gem.name === name && !listed.has(entry.gem.version)).map((entry) => entry.gem.version);
      if (added.length === 0) continue;
      for (const version of added) listed.add(version);
      this.#listed.set(name, listed);
      this.#versionLines.push(`${name} ${added.join(",")} ${md5(info)}\n`);
    }
    await writeFile(join(this.root, "versions"), `created_at: 2024-01-01T00:00:00Z\n---\n${this.#versionLines.join("")}`);
    await writeFile(join(this.root, "names"), `---\n${names.map((name) => `${name}\n`).join("")}`);
  }
}

/** A sandbox for `gem` and `bundle`: every directory they read or write outside the project. */
export interface RubySandbox {
  readonly dir: string;
  /** Where `gem install --install-dir` puts gems. */
  readonly installDir: string;
  /** The project (Gemfile, Gemfile.lock). */
  readonly project: string;
  /** `BUNDLE_PATH`. */
  readonly bundlePath: string;
  readonly env: Record<string, string>;
}

export async function rubySandbox(dir: string): Promise<RubySandbox> {
  const home = join(dir, "home");
  const installDir = join(dir, "gems");
  const project = join(dir, "project");
  const bundlePath = join(dir, "bundle");
  for (const path of [home, installDir, project, bundlePath]) await mkdir(path, { recursive: true });
  const gemrc = join(dir, "gemrc");
  await writeFile(gemrc, "--- {}\n");
  return {
    dir,
    installDir,
    project,
    bundlePath,
    env: {
      PATH: process.env["PATH"] ?? "/usr/bin:/bin",
      LANG: "C.UTF-8",
      HOME: home,
      GEMRC: gemrc,
      GEM_HOME: installDir,
      GEM_PATH: installDir,
      GEM_SPEC_CACHE: join(dir, "spec-cache"),
      BUNDLE_USER_HOME: join(dir, "bundle-home"),
      BUNDLE_USER_CACHE: join(dir, "bundle-cache"),
      BUNDLE_USER_CONFIG: join(dir, "bundle-user-config"),
      BUNDLE_APP_CONFIG: join(dir, "bundle-app-config"),
      BUNDLE_GEMFILE: join(project, "Gemfile"),
      BUNDLE_PATH: bundlePath,
      BUNDLE_DISABLE_VERSION_CHECK: "true",
      BUNDLE_SILENCE_ROOT_WARNING: "true",
      BUNDLE_IGNORE_MESSAGES: "true",
      BUNDLE_RETRY: "0",
      BUNDLE_JOBS: "2",
    },
  };
}

/** `gem install --clear-sources --source <source> --install-dir <sandbox> ...` (no documentation). */
export function gemInstall(sandbox: RubySandbox, source: string, args: readonly string[]): Promise<ToolResult> {
  return run("gem", ["install", "--clear-sources", "--source", source, "--install-dir", sandbox.installDir, "--no-document", ...args], { cwd: sandbox.dir, env: sandbox.env });
}

/** Writes the Gemfile and runs `bundle install` in the sandbox's project. */
export async function bundleInstall(sandbox: RubySandbox, gemfile: string): Promise<ToolResult> {
  await writeFile(join(sandbox.project, "Gemfile"), gemfile);
  return run("bundle", ["install"], { cwd: sandbox.project, env: sandbox.env });
}
