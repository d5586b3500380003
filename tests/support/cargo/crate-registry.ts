/**
 * An offline sparse cargo registry as static files, for a web server (nginx) to serve: tiny
 * library crates packed here as cargo packs them (a gzipped tar of `<name>-<version>/`, with
 * `Cargo.toml` and `src/lib.rs`, made by `tar`), and the sparse index written here:
 *
 *     index/config.json                        {"dl": "<base>/dl"}
 *     index/<ab>/<cd>/<name>                   one JSON line a version: name, vers, deps, cksum, features, yanked
 *     dl/<name>/<version>/download             the .crate files (cargo's default `dl` layout)
 *
 * Also the real `cargo`, isolated: a fresh CARGO_HOME with a `config.toml` that replaces
 * crates.io with the vault, HOME and the target directory in the sandbox, an environment built
 * from PATH alone (and the rustup home, when cargo is rustup's proxy).
 */
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { homedir } from "node:os";
import { dirname, join } from "node:path";
import { promisify } from "node:util";
import { findTool } from "../tools.js";
import { runTool as run, type ToolResult } from "../process.js";

const execFileAsync = promisify(execFile);

export interface CrateVersion {
  readonly name: string;
  readonly version: string;
  /** Normal dependencies: name → requirement (`"^1.0"`). */
  readonly dependencies?: Readonly<Record<string, string>>;
  /** What `src/lib.rs` says (a different text makes a different .crate). */
  readonly body?: string;
}

// The tool runner is the shared one; these names are this module's API for its tests.
export { run, type ToolResult };

/** cargo: `$CARGO`, else on PATH, else rustup's default place (~/.cargo/bin/cargo); undefined when none. */
export function findCargo(): string | undefined {
  const given = process.env["CARGO"];
  if (given !== undefined && given !== "" && existsSync(given)) return given;
  return findTool("cargo") ?? [join(homedir(), ".cargo", "bin", "cargo")].find((path) => existsSync(path));
}

/** `vault-greeting` → `vault_greeting` (the library's name in Rust code). */
export function libraryName(name: string): string {
  return name.replaceAll("-", "_");
}

/** The index file's path below `index/` (`vault-greeting` → `va/ul/vault-greeting`). */
export function indexFilePath(name: string): string {
  const lower = name.toLowerCase();
  if (lower.length <= 2) return `${lower.length}/${lower}`;
  if (lower.length === 3) return `3/${lower.slice(0, 1)}/${lower}`;
  return `${lower.slice(0, 2)}/${lower.slice(2, 4)}/${lower}`;
}

function manifest(crate: CrateVersion): string {
  const dependencies = Object.entries(crate.dependencies ?? {}).map(([name, req]) => `${name} = ${JSON.stringify(req)}\n`);
  return `[package]\nname = ${JSON.stringify(crate.name)}\nversion = ${JSON.stringify(crate.version)}\nedition = "2021"\ndescription = "a test crate"\nlicense = "MIT"\n\n[lib]\npath = "src/lib.rs"\n\n[dependencies]\n${dependencies.join("")}`;
}

/** Packs `<name>-<version>.crate` with `tar` in a fresh directory below `work`; its bytes. */
export async function packCrate(work: string, crate: CrateVersion): Promise<Buffer> {
  const dir = await mkdtemp(join(work, "crate-"));
  try {
    const top = `${crate.name}-${crate.version}`;
    await mkdir(join(dir, top, "src"), { recursive: true });
    await writeFile(join(dir, top, "Cargo.toml"), manifest(crate));
    const body = crate.body ?? `pub fn greeting() -> &'static str {\n    "${crate.name} ${crate.version}"\n}\n`;
    await writeFile(join(dir, top, "src", "lib.rs"), body);
    const file = join(dir, `${top}.crate`);
    await execFileAsync("tar", ["--sort=name", "--mtime=@0", "--owner=0", "--group=0", "--numeric-owner", "-czf", file, "-C", dir, top]);
    return await readFile(file);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** The registry's files under `root`; `add` then `writeTo` (again after each publish). */
export class CrateRegistry {
  readonly #crates: Array<{ crate: CrateVersion; bytes: Buffer }> = [];

  constructor(readonly root: string) {}

  add(crate: CrateVersion, bytes: Buffer): void {
    this.#crates.push({ crate, bytes });
  }

  bytesOf(name: string, version: string): Buffer {
    const found = this.#crates.find(({ crate }) => crate.name === name && crate.version === version);
    if (found === undefined) throw new Error(`no crate ${name} ${version}`);
    return found.bytes;
  }

  /** `dl/<name>/<version>/download` below the root. */
  static cratePath(name: string, version: string): string {
    return `dl/${name}/${version}/download`;
  }

  /** Writes every .crate, every index file and config.json (`dl` names `baseUrl`'s `dl/`). */
  async writeTo(baseUrl: string): Promise<void> {
    await mkdir(join(this.root, "index"), { recursive: true });
    await writeFile(join(this.root, "index", "config.json"), `${JSON.stringify({ dl: `${baseUrl}/dl` })}\n`);
    const lines = new Map<string, string[]>();
    for (const { crate, bytes } of this.#crates) {
      const file = join(this.root, CrateRegistry.cratePath(crate.name, crate.version));
      await mkdir(dirname(file), { recursive: true });
      await writeFile(file, bytes);
      const deps = Object.entries(crate.dependencies ?? {}).map(([name, req]) => ({ name, req, features: [], optional: false, default_features: true, target: null, kind: "normal" }));
      const cksum = createHash("sha256").update(bytes).digest("hex");
      const line = JSON.stringify({ name: crate.name, vers: crate.version, deps, cksum, features: {}, yanked: false, v: 1 });
      lines.set(crate.name, [...(lines.get(crate.name) ?? []), line]);
    }
    for (const [name, entries] of lines) {
      const file = join(this.root, "index", indexFilePath(name));
      await mkdir(dirname(file), { recursive: true });
      await writeFile(file, `${entries.join("\n")}\n`);
    }
  }
}

/** A cargo of its own: CARGO_HOME (with a config.toml replacing crates.io), HOME, a target dir, a project. */
export interface CargoSandbox {
  readonly dir: string;
  readonly cargoHome: string;
  readonly project: string;
  readonly env: Record<string, string>;
}

/**
 * A sandbox whose cargo takes every crate from `registry` (`sparse+<url>`) in place of
 * crates.io, and a binary project depending on `dependencies`. `token`: sent as the registry's
 * token (cargo sends it as the whole `Authorization` header).
 */
export async function cargoSandbox(dir: string, registry: string, dependencies: Readonly<Record<string, string>>, token?: string): Promise<CargoSandbox> {
  const cargoHome = join(dir, "cargo-home");
  const project = join(dir, "project");
  await mkdir(join(project, "src"), { recursive: true });
  await mkdir(cargoHome, { recursive: true });
  await mkdir(join(dir, "home"), { recursive: true });
  await writeFile(
    join(cargoHome, "config.toml"),
    [
      "[source.crates-io]",
      'replace-with = "vault"',
      "",
      "[registries.vault]",
      `index = ${JSON.stringify(`sparse+${registry}`)}`,
      // An authenticated registry needs a credential provider: cargo's own, reading this token.
      ...(token === undefined ? [] : [`token = ${JSON.stringify(token)}`, 'credential-provider = "cargo:token"']),
      "",
      "[net]",
      "retry = 0",
      "",
    ].join("\n"),
  );
  const deps = Object.entries(dependencies).map(([name, req]) => `${name} = ${JSON.stringify(req)}\n`);
  await writeFile(join(project, "Cargo.toml"), `[package]\nname = "vault-consumer"\nversion = "0.1.0"\nedition = "2021"\n\n[dependencies]\n${deps.join("")}`);
  const uses = Object.keys(dependencies).map((name) => `    println!("{}", ${libraryName(name)}::greeting());\n`);
  await writeFile(join(project, "src", "main.rs"), `fn main() {\n${uses.join("")}}\n`);
  const env: Record<string, string> = {
    PATH: process.env["PATH"] ?? "/usr/bin:/bin",
    HOME: join(dir, "home"),
    CARGO_HOME: cargoHome,
    CARGO_TARGET_DIR: join(dir, "target"),
    // cargo at ~/.cargo/bin is rustup's proxy: it finds the toolchains here.
    RUSTUP_HOME: process.env["RUSTUP_HOME"] ?? join(homedir(), ".rustup"),
    CARGO_TERM_COLOR: "never",
  };
  return { dir, cargoHome, project, env };
}

/** `cargo <args>` in the sandbox's project. */
export function cargo(sandbox: CargoSandbox, args: readonly string[]): Promise<ToolResult> {
  const command = findCargo();
  if (command === undefined) throw new Error("cargo is not installed");
  return run(command, args, { cwd: sandbox.project, env: sandbox.env });
}

/** The .crate file cargo downloaded into the sandbox's CARGO_HOME (registry/cache/<registry>-<hash>/<name>-<version>.crate). */
export async function downloadedCrate(sandbox: CargoSandbox, name: string, version: string): Promise<Buffer> {
  const found = await run("sh", ["-c", `find "$1" -name "$2"`, "sh", join(sandbox.cargoHome, "registry", "cache"), `${name}-${version}.crate`], { cwd: sandbox.dir, env: sandbox.env });
  const path = found.stdout.trim().split("\n")[0] ?? "";
  if (path === "") throw new Error(`cargo did not download ${name}-${version}.crate`);
  return readFile(path);
}
