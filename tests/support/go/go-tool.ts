/**
 * The real go command for end-to-end tests, fully isolated: its GOPATH, module cache, build cache
 * and HOME in a directory of the test's own, no go env file, no toolchain download, no network
 * (GOPROXY is the vault, or a file:// tree; nothing else is configured). Also what the go
 * command itself says a module version's go.sum hashes are, and module zips made with `zip`.
 */
import { execFile } from "node:child_process";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { pathToFileURL } from "node:url";
import { promisify } from "node:util";
import type { ModuleVersion } from "./module-proxy.js";

const execFileAsync = promisify(execFile);

export interface GoResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** An isolated environment for the go command below `dir` (created empty; HOME is a directory to run in). */
export async function goEnvironment(dir: string, settings: { proxy: string; sumdb: string }): Promise<Record<string, string>> {
  await mkdir(join(dir, "home"), { recursive: true });
  return {
    PATH: process.env["PATH"] ?? "/usr/bin:/bin",
    HOME: join(dir, "home"),
    GOPATH: join(dir, "gopath"),
    GOMODCACHE: join(dir, "modcache"),
    GOCACHE: join(dir, "gocache"),
    GOENV: "off",
    GOTOOLCHAIN: "local",
    GOTELEMETRY: "off",
    GO111MODULE: "on",
    CGO_ENABLED: "0",
    GOPROXY: settings.proxy,
    GOSUMDB: settings.sumdb,
    GONOSUMDB: "",
    GOPRIVATE: "",
    GONOPROXY: "",
    GOINSECURE: "",
    GOVCS: "*:off",
    // -modcacherw: the module cache can be removed like any directory.
    GOFLAGS: "-mod=mod -modcacherw",
  };
}

export async function runGo(args: readonly string[], options: { cwd: string; env: Record<string, string> }): Promise<GoResult> {
  try {
    const { stdout, stderr } = await execFileAsync("go", args, { cwd: options.cwd, env: options.env, maxBuffer: 32 * 1024 * 1024, timeout: 180_000 });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failure = error as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof failure.code === "number" ? failure.code : 1, stdout: failure.stdout ?? "", stderr: failure.stderr ?? "" };
  }
}

/** A module zip made by the `zip` command (deflated, no directory entries), entries under `<module>@<version>/`. */
export async function zipModule(work: string, module: ModuleVersion): Promise<Buffer> {
  const stage = await mkdtemp(join(work, "zip-"));
  try {
    const root = join(stage, `${module.path}@${module.version}`);
    for (const [name, text] of Object.entries(module.files)) {
      await mkdir(dirname(join(root, name)), { recursive: true });
      await writeFile(join(root, name), text);
    }
    const out = join(stage, "module.zip");
    await execFileAsync("zip", ["-q", "-X", "-D", "-r", out, `${module.path}@${module.version}`], { cwd: stage });
    return await readFile(out);
  } finally {
    await rm(stage, { recursive: true, force: true });
  }
}

/**
 * The go.sum hashes (`Sum`, `GoModSum`) the go command computes for module versions served from
 * a proxy directory (`GOPROXY=file://...`, no checksum database): what a checksum database lists.
 */
export async function goSumHashes(work: string, proxyDir: string, modules: readonly ModuleVersion[]): Promise<Array<{ path: string; version: string; zipHash: string; modHash: string }>> {
  const dir = await mkdtemp(join(work, "go-hashes-"));
  try {
    const env = await goEnvironment(dir, { proxy: pathToFileURL(proxyDir).href, sumdb: "off" });
    const result = await runGo(["mod", "download", "-json", ...modules.map((module) => `${module.path}@${module.version}`)], { cwd: dir, env });
    if (result.code !== 0) throw new Error(`go mod download -json failed:\n${result.stdout}${result.stderr}`);
    // A stream of JSON objects, one per module.
    const objects = result.stdout.split(/\n(?=\{)/).map((text) => JSON.parse(text) as { Path: string; Version: string; Sum: string; GoModSum: string });
    return objects.map((object) => ({ path: object.Path, version: object.Version, zipHash: object.Sum, modHash: object.GoModSum }));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
