/**
 * A real, signed Debian archive built offline in a temp dir, as the upstream of the APT
 * backend's end-to-end tests: tiny `.deb`s from `dpkg-deb --build --root-owner-group`, a
 * Debian pool (`pool/main/v/<pkg>/<pkg>_<ver>_<arch>.deb`), `Packages`, `Translation-en` (and
 * optionally `Sources`) indexes uncompressed, `.gz` and `.xz` from `apt-ftparchive generate`, a
 * `Release` from `apt-ftparchive release` with `Acquire-By-Hash: yes` and the
 * `by-hash/SHA256/<hex>` copies next to every index, signed by a throwaway key
 * (`InRelease` clearsigned, `Release.gpg` detached; the public key exported binary for
 * `signed-by=`).
 *
 * As on Debian's mirrors, the Release lists MD5Sum and SHA256 only (so apt picks the SHA256
 * by-hash paths), a republish keeps the previous by-hash files, and every publish has a Date and
 * file mtimes strictly later than the one before (nginx answers `If-Modified-Since` with 304 only
 * on an exact match, so two publishes in one second would otherwise look unchanged to apt).
 *
 * Needs dpkg-deb, apt-ftparchive (apt-utils), gpg (gnupg), and dpkg-source (dpkg-dev) for
 * `sources: true`.
 */
import { execFile } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { chmod, mkdir, readdir, readFile, rm, stat, utimes, writeFile } from "node:fs/promises";
import { dirname, join, relative } from "node:path";
import { promisify } from "node:util";

const execFileAsync = promisify(execFile);

const sha256 = (bytes: Uint8Array): string => createHash("sha256").update(bytes).digest("hex");

export interface AptPackageSpec {
  readonly name: string;
  /** A Debian version; an epoch (`1:2.0`) is kept out of the file name, as Debian does. */
  readonly version: string;
  /** `all` unless given; the repository's own is `repository.architecture`. */
  readonly architecture?: string;
  readonly depends?: string;
  /** The short description (the long one is fixed); defaults to `<name> probe package`. */
  readonly summary?: string;
  /** Random bytes in `/usr/share/<name>/payload.bin`, for a bigger (incompressible) .deb. */
  readonly payloadBytes?: number;
}

/** A file in the pool, as published. */
export interface PoolFile {
  /** Relative to the archive root, as in `Filename:` (`pool/main/v/vault-probe-lib/vault-probe-lib_1.0_all.deb`). */
  readonly path: string;
  readonly package: string;
  readonly version: string;
  /** `all`, `amd64`, ... or `source` for the `.dsc` and `.tar.xz` of a source package. */
  readonly architecture: string;
  readonly sha256: string;
  readonly size: number;
}

/** A file the current Release lists (relative to `dists/<codename>/`), with its by-hash path. */
export interface IndexFile {
  /** Relative to `dists/<codename>/` (`main/binary-amd64/Packages.xz`). */
  readonly name: string;
  /** Relative to the archive root (`dists/bookworm/main/binary-amd64/Packages.xz`). */
  readonly path: string;
  /** Relative to the archive root (`dists/bookworm/main/binary-amd64/by-hash/SHA256/<hex>`). */
  readonly byHashPath: string;
  readonly sha256: string;
  readonly size: number;
  /** False for a file the Release lists but the archive does not serve (none today). */
  readonly exists: boolean;
}

export interface TestAptRepositoryOptions {
  /** The archive root (created): serve it so that `<url>/dists/<codename>/InRelease` is reachable. */
  readonly root: string;
  /** A scratch dir of its own (created): the GnuPG home, package build trees, apt-ftparchive config. */
  readonly work: string;
  /** The directory under `dists/` and the Release's `Codename` (default `bookworm`). */
  readonly codename?: string;
  /** The Release's `Suite` (default `stable`). */
  readonly suite?: string;
  readonly component?: string;
  /** The binary architecture indexed (default: `dpkg --print-architecture`). */
  readonly architecture?: string;
  /** `Acquire-By-Hash: yes` and the by-hash copies (default true). */
  readonly byHash?: boolean;
  /** A source package (`.dsc` + native `.tar.xz`) for each binary one, and a Sources index (default false). */
  readonly sources?: boolean;
  /** Published by `create` (default `DEFAULT_APT_PACKAGES`). */
  readonly packages?: readonly AptPackageSpec[];
}

/** `vault-probe-lib` 1.0 and `vault-probe-app` 1.0, which depends on it. */
export const DEFAULT_APT_PACKAGES: readonly AptPackageSpec[] = [
  { name: "vault-probe-lib", version: "1.0" },
  { name: "vault-probe-app", version: "1.0", depends: "vault-probe-lib (>= 1.0)" },
];

/** A fixed time for file and archive timestamps inside the packages, so a rebuild is byte-identical. */
const SOURCE_DATE_EPOCH = "1767225600"; // 2026-01-01T00:00:00Z

async function run(command: string, args: readonly string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<string> {
  try {
    const { stdout } = await execFileAsync(command, args, { cwd: options.cwd, env: options.env ?? process.env, maxBuffer: 64 * 1024 * 1024, timeout: 120_000 });
    return stdout;
  } catch (error) {
    const failure = error as { message: string; stdout?: string; stderr?: string };
    throw new Error(`${command} ${args.join(" ")} failed: ${failure.message}\n${failure.stdout ?? ""}${failure.stderr ?? ""}`);
  }
}

/** Debian's pool directory for a source package: `libfoo` → `libf`, anything else → its first letter. */
export function poolPrefix(name: string): string {
  return name.startsWith("lib") && name.length > 3 ? name.slice(0, 4) : name.slice(0, 1);
}

const withoutEpoch = (version: string): string => version.replace(/^\d+:/, "");

async function walk(dir: string): Promise<string[]> {
  if (!existsSync(dir)) return [];
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await walk(path)));
    else if (entry.isFile()) out.push(path);
  }
  return out;
}

/** Parses the `SHA256:` section of a Release file. */
export function releaseSha256(release: string): Array<{ name: string; sha256: string; size: number }> {
  const out: Array<{ name: string; sha256: string; size: number }> = [];
  let inSection = false;
  for (const line of release.split("\n")) {
    if (/^\S/.test(line)) {
      inSection = line.trim() === "SHA256:";
      continue;
    }
    if (!inSection) continue;
    const [hash, size, name] = line.trim().split(/\s+/);
    if (hash !== undefined && size !== undefined && name !== undefined) out.push({ name, sha256: hash, size: Number(size) });
  }
  return out;
}

export class TestAptRepository {
  readonly root: string;
  readonly work: string;
  readonly codename: string;
  readonly suite: string;
  readonly component: string;
  readonly architecture: string;
  readonly byHash: boolean;
  readonly sources: boolean;
  /** The public key, binary (OpenPGP packets), for `deb [signed-by=<keyring>] ...`. */
  readonly keyring: string;
  /** The same key, ASCII-armored. */
  readonly armoredKey: string;
  #fingerprint = "";
  readonly #gnupgHome: string;
  #files: PoolFile[] = [];
  #lastPublish = 0;
  readonly #originals = new Map<string, Buffer>();

  private constructor(options: TestAptRepositoryOptions, architecture: string) {
    this.root = options.root;
    this.work = options.work;
    this.codename = options.codename ?? "bookworm";
    this.suite = options.suite ?? "stable";
    this.component = options.component ?? "main";
    this.architecture = architecture;
    this.byHash = options.byHash ?? true;
    this.sources = options.sources ?? false;
    this.keyring = join(options.work, "archive-key.gpg");
    this.armoredKey = join(options.work, "archive-key.asc");
    this.#gnupgHome = join(options.work, "gnupg");
  }

  /** Builds the packages, the indexes and the signed Release. Call `close()` when done (stops gpg-agent). */
  static async create(options: TestAptRepositoryOptions): Promise<TestAptRepository> {
    const architecture = options.architecture ?? (await run("dpkg", ["--print-architecture"])).trim();
    const repository = new TestAptRepository(options, architecture);
    await mkdir(options.root, { recursive: true });
    await mkdir(options.work, { recursive: true });
    await repository.#generateKey();
    for (const spec of options.packages ?? DEFAULT_APT_PACKAGES) await repository.#build(spec);
    await repository.#publish();
    return repository;
  }

  get fingerprint(): string {
    return this.#fingerprint;
  }

  /** `dists/<codename>` relative to the root. */
  get dist(): string {
    return `dists/${this.codename}`;
  }

  /** Every file in the pool, in publishing order (a republished version adds files, never replaces). */
  get poolFiles(): readonly PoolFile[] {
    return this.#files;
  }

  /** Pool path (relative to the root) → sha256, for every pool file. */
  sha256s(): Map<string, string> {
    return new Map(this.#files.map((file) => [file.path, file.sha256]));
  }

  /** The `.deb` of `name` at `version` (the only one when `version` is not given). */
  deb(name: string, version?: string): PoolFile {
    const matches = this.#files.filter((file) => file.package === name && file.architecture !== "source" && (version === undefined || file.version === version));
    const [found] = matches;
    if (found === undefined || matches.length > 1) throw new Error(`${matches.length} .deb files for ${name} ${version ?? "(any version)"}`);
    return found;
  }

  /** Absolute path of a file given relative to the root. */
  pathOf(relativePath: string): string {
    return join(this.root, relativePath);
  }

  /** Adds packages (new versions, or new packages) and regenerates the indexes, the Release and its signatures. */
  async republish(packages: readonly AptPackageSpec[]): Promise<PoolFile[]> {
    const before = this.#files.length;
    for (const spec of packages) await this.#build(spec);
    await this.#publish();
    return this.#files.slice(before);
  }

  /** Regenerates everything (a new Date and signatures) without a change in the pool. */
  async refresh(): Promise<void> {
    await this.#publish();
  }

  /**
   * Overwrites a pool file upstream with random bytes of the same size (its mtime moves on, so
   * nginx's ETag and Last-Modified change); the indexes still name the real hash.
   */
  async corruptPoolFile(relativePath: string): Promise<void> {
    const path = this.pathOf(relativePath);
    const bytes = await readFile(path);
    if (!this.#originals.has(relativePath)) this.#originals.set(relativePath, bytes);
    let garbage = randomBytes(bytes.length);
    while (sha256(garbage) === sha256(bytes)) garbage = randomBytes(bytes.length);
    await writeFile(path, garbage);
  }

  /** Puts back a pool file's real bytes after `corruptPoolFile` or `removePoolFile`. */
  async restorePoolFile(relativePath: string): Promise<void> {
    const original = this.#originals.get(relativePath);
    if (original === undefined) throw new Error(`${relativePath} was neither corrupted nor removed`);
    await mkdir(dirname(this.pathOf(relativePath)), { recursive: true });
    await writeFile(this.pathOf(relativePath), original);
    this.#originals.delete(relativePath);
  }

  /** Deletes a pool file upstream (a 404 there), keeping it in the indexes. */
  async removePoolFile(relativePath: string): Promise<void> {
    const path = this.pathOf(relativePath);
    if (!this.#originals.has(relativePath)) this.#originals.set(relativePath, await readFile(path));
    await rm(path);
  }

  /** The current Release, as signed. */
  async release(): Promise<string> {
    return readFile(join(this.root, this.dist, "Release"), "utf8");
  }

  /** Every file the current Release lists under SHA256, with its by-hash path. */
  async indexFiles(): Promise<IndexFile[]> {
    return releaseSha256(await this.release()).map(({ name, sha256: hash, size }) => {
      const path = `${this.dist}/${name}`;
      return { name, path, byHashPath: `${dirname(path)}/by-hash/SHA256/${hash}`, sha256: hash, size, exists: existsSync(this.pathOf(path)) };
    });
  }

  /** One index file of the current Release by its name under `dists/<codename>/` (`main/binary-amd64/Packages.xz`). */
  async indexFile(name: string): Promise<IndexFile> {
    const found = (await this.indexFiles()).find((file) => file.name === name);
    if (found === undefined) throw new Error(`the Release does not list ${name}`);
    return found;
  }

  /** The `Packages` index (uncompressed) as published now. */
  async packagesIndex(): Promise<string> {
    return readFile(join(this.root, this.dist, this.component, `binary-${this.architecture}`, "Packages"), "utf8");
  }

  /** Stops the gpg-agent that signing started for this GnuPG home. */
  async close(): Promise<void> {
    if (!existsSync(this.#gnupgHome)) return;
    const env = this.#gpgEnv();
    await run("gpgconf", ["--kill", "all"], { env }).catch(() => undefined);
    await run("gpgconf", ["--remove-socketdir"], { env }).catch(() => undefined);
  }

  // ----------------------------------------------------------------------------------------------

  #gpgEnv(): NodeJS.ProcessEnv {
    return { PATH: process.env["PATH"] ?? "/usr/bin:/bin", HOME: this.work, GNUPGHOME: this.#gnupgHome, LC_ALL: "C" };
  }

  async #gpg(args: readonly string[], cwd?: string): Promise<string> {
    return run("gpg", ["--batch", "--quiet", "--no-tty", ...args], { env: this.#gpgEnv(), ...(cwd === undefined ? {} : { cwd }) });
  }

  async #generateKey(): Promise<void> {
    await mkdir(this.#gnupgHome, { recursive: true });
    await chmod(this.#gnupgHome, 0o700);
    const params = join(this.work, "key-params");
    await writeFile(
      params,
      ["%no-protection", "Key-Type: eddsa", "Key-Curve: ed25519", "Key-Usage: sign", "Name-Real: artifact-vault test archive", "Name-Email: apt-tests@example.invalid", "Expire-Date: 0", "%commit", ""].join("\n"),
    );
    await this.#gpg(["--gen-key", params]);
    const listing = await this.#gpg(["--with-colons", "--list-secret-keys"]);
    const fpr = /^fpr:(?:[^:]*:){8}([0-9A-F]{40}):/m.exec(listing)?.[1];
    if (fpr === undefined) throw new Error(`no key generated:\n${listing}`);
    this.#fingerprint = fpr;
    await this.#gpg(["--yes", "--output", this.keyring, "--export", fpr]);
    await this.#gpg(["--yes", "--armor", "--output", this.armoredKey, "--export", fpr]);
  }

  async #build(spec: AptPackageSpec): Promise<void> {
    const architecture = spec.architecture ?? "all";
    const version = withoutEpoch(spec.version);
    const poolDir = `pool/${this.component}/${poolPrefix(spec.name)}/${spec.name}`;
    const debPath = `${poolDir}/${spec.name}_${version}_${architecture}.deb`;
    if (this.#files.some((file) => file.path === debPath)) throw new Error(`${debPath} is already published`);
    const tree = join(this.work, "build", `${spec.name}_${version}_${architecture}`);
    await rm(tree, { recursive: true, force: true });
    const doc = join(tree, "usr/share/doc", spec.name);
    await mkdir(join(tree, "DEBIAN"), { recursive: true });
    await mkdir(doc, { recursive: true });
    await writeFile(join(doc, "README"), `${spec.name} ${spec.version}: a probe package for artifact-vault's APT tests.\n`);
    if (spec.payloadBytes !== undefined) {
      await mkdir(join(tree, "usr/share", spec.name), { recursive: true });
      await writeFile(join(tree, "usr/share", spec.name, "payload.bin"), randomBytes(spec.payloadBytes));
    }
    const control = [
      `Package: ${spec.name}`,
      `Version: ${spec.version}`,
      `Architecture: ${architecture}`,
      "Maintainer: artifact-vault tests <apt-tests@example.invalid>",
      `Installed-Size: ${Math.ceil((spec.payloadBytes ?? 0) / 1024) + 4}`,
      ...(spec.depends === undefined ? [] : [`Depends: ${spec.depends}`]),
      "Section: misc",
      "Priority: optional",
      `Description: ${spec.summary ?? `${spec.name} probe package`}`,
      " A tiny package built by artifact-vault's APT test harness.",
      "",
    ].join("\n");
    await writeFile(join(tree, "DEBIAN/control"), control);
    await mkdir(this.pathOf(poolDir), { recursive: true });
    await run("dpkg-deb", ["--root-owner-group", "--build", tree, this.pathOf(debPath)], { env: { ...process.env, SOURCE_DATE_EPOCH } });
    await this.#record(debPath, spec.name, spec.version, architecture);
    if (this.sources) await this.#buildSource(spec, poolDir);
  }

  async #buildSource(spec: AptPackageSpec, poolDir: string): Promise<void> {
    const version = withoutEpoch(spec.version);
    const parent = join(this.work, "source", `${spec.name}_${version}`);
    const tree = join(parent, `${spec.name}-${version}`);
    await rm(parent, { recursive: true, force: true });
    await mkdir(join(tree, "debian/source"), { recursive: true });
    await writeFile(join(tree, "README"), `${spec.name} ${spec.version}\n`);
    await writeFile(join(tree, "debian/source/format"), "3.0 (native)\n");
    await writeFile(
      join(tree, "debian/control"),
      [
        `Source: ${spec.name}`,
        "Section: misc",
        "Priority: optional",
        "Maintainer: artifact-vault tests <apt-tests@example.invalid>",
        "Standards-Version: 4.6.2",
        "",
        `Package: ${spec.name}`,
        `Architecture: ${spec.architecture ?? "all"}`,
        ...(spec.depends === undefined ? [] : [`Depends: ${spec.depends}`]),
        `Description: ${spec.summary ?? `${spec.name} probe package`}`,
        " A tiny package built by artifact-vault's APT test harness.",
        "",
      ].join("\n"),
    );
    await writeFile(
      join(tree, "debian/changelog"),
      `${spec.name} (${spec.version}) ${this.codename}; urgency=medium\n\n  * Probe release.\n\n -- artifact-vault tests <apt-tests@example.invalid>  Thu, 01 Jan 2026 00:00:00 +0000\n`,
    );
    await writeFile(join(tree, "debian/rules"), "#!/usr/bin/make -f\n%:\n\tdh $@\n");
    await chmod(join(tree, "debian/rules"), 0o755);
    await run("dpkg-source", ["-b", `${spec.name}-${version}`], { cwd: parent, env: { ...process.env, SOURCE_DATE_EPOCH, LC_ALL: "C" } });
    for (const name of [`${spec.name}_${version}.dsc`, `${spec.name}_${version}.tar.xz`]) {
      await writeFile(this.pathOf(`${poolDir}/${name}`), await readFile(join(parent, name)));
      await this.#record(`${poolDir}/${name}`, spec.name, spec.version, "source");
    }
  }

  async #record(path: string, name: string, version: string, architecture: string): Promise<void> {
    const bytes = await readFile(this.pathOf(path));
    this.#files.push({ path, package: name, version, architecture, sha256: sha256(bytes), size: bytes.length });
  }

  /** apt-ftparchive's `generate` config for this archive. */
  #generateConfig(): string {
    const section = this.component;
    const architectures = [this.architecture, ...(this.sources ? ["source"] : [])].join(" ");
    return `Dir {
  ArchiveDir "${this.root}";
  CacheDir "${join(this.work, "ftparchive-cache")}";
};
Default {
  Packages::Compress ". gzip xz";
  Sources::Compress ". gzip xz";
  Translation::Compress ". gzip xz";
  Contents::Compress "gzip";
  FileMode 0644;
};
TreeDefault {
  Directory "pool/$(SECTION)";
  SrcDirectory "pool/$(SECTION)";
};
Tree "${this.dist}" {
  Sections "${section}";
  Architectures "${architectures}";
  LongDescription "false";
};
`;
  }

  async #publish(): Promise<void> {
    const distDir = join(this.root, this.dist);
    const componentDir = join(distDir, this.component);
    // apt-ftparchive writes into these but does not create them.
    for (const sub of [`binary-${this.architecture}`, "i18n", ...(this.sources ? ["source"] : [])]) await mkdir(join(componentDir, sub), { recursive: true });
    await mkdir(join(this.work, "ftparchive-cache"), { recursive: true });
    // The previous Release files would be listed in the new one.
    for (const name of ["Release", "InRelease", "Release.gpg"]) await rm(join(distDir, name), { force: true });

    const before = new Map<string, string>();
    for (const file of await walk(distDir)) before.set(file, sha256(await readFile(file)));

    // Strictly later than the previous publish, whole seconds (HTTP dates have no fractions).
    const now = Math.max(Math.floor(Date.now() / 1000) * 1000, this.#lastPublish + 1000);
    this.#lastPublish = now;
    const date = new Date(now).toUTCString().replace(/GMT$/, "UTC");

    const conf = join(this.work, "ftparchive.conf");
    await writeFile(conf, this.#generateConfig());
    const common = ["-o", "APT::FTPArchive::SHA1=false", "-o", "APT::FTPArchive::SHA512=false"];
    await run("apt-ftparchive", [...common, "-q=2", "generate", conf], { cwd: this.root });
    const release = [
      ...common,
      "-o",
      "APT::FTPArchive::Release::Origin=artifact-vault-tests",
      "-o",
      "APT::FTPArchive::Release::Label=artifact-vault-tests",
      "-o",
      `APT::FTPArchive::Release::Suite=${this.suite}`,
      "-o",
      `APT::FTPArchive::Release::Codename=${this.codename}`,
      "-o",
      `APT::FTPArchive::Release::Date=${date}`,
      "-o",
      `APT::FTPArchive::Release::Architectures=${this.architecture}`,
      "-o",
      `APT::FTPArchive::Release::Components=${this.component}`,
      "-o",
      "APT::FTPArchive::Release::Description=artifact-vault APT test archive",
      ...(this.byHash ? ["-o", "APT::FTPArchive::Release::Acquire-By-Hash=yes", "-o", "APT::FTPArchive::DoByHash=true", "-o", "APT::FTPArchive::By-Hash-Keep=1000"] : []),
      "release",
      this.dist,
    ];
    const text = await run("apt-ftparchive", release, { cwd: this.root });
    await writeFile(join(distDir, "Release"), text);
    await this.#gpg(["--yes", "--local-user", this.#fingerprint, "--digest-algo", "SHA256", "--clearsign", "--output", "InRelease", "Release"], distDir);
    await this.#gpg(["--yes", "--local-user", this.#fingerprint, "--digest-algo", "SHA256", "--armor", "--detach-sign", "--output", "Release.gpg", "Release"], distDir);

    // New or changed files get this publish's time; unchanged ones (and old by-hash copies) keep theirs.
    const seconds = now / 1000;
    for (const file of await walk(distDir)) {
      const previous = before.get(file);
      if (previous === undefined || previous !== sha256(await readFile(file))) await utimes(file, seconds, seconds);
    }
    for (const file of ["Release", "InRelease", "Release.gpg"]) await utimes(join(distDir, file), seconds, seconds);
    await this.#checkPublished(distDir);
  }

  /** Every listed index exists, and has its by-hash copy when by-hash is on. */
  async #checkPublished(distDir: string): Promise<void> {
    for (const file of await this.indexFiles()) {
      if (!file.exists) throw new Error(`the Release lists ${file.path}, which was not written`);
      if (this.byHash && !existsSync(this.pathOf(file.byHashPath))) throw new Error(`no by-hash copy ${file.byHashPath}`);
    }
    if ((await stat(join(distDir, "InRelease"))).size === 0) throw new Error("empty InRelease");
  }

  /** Paths (relative to the root) of every file under `dists/`, by-hash copies included. */
  async distFiles(): Promise<string[]> {
    return (await walk(join(this.root, this.dist))).map((file) => relative(this.root, file)).sort();
  }
}
