/**
 * Python for end-to-end tests of the PyPI backend: an interpreter that can build distributions
 * offline (setuptools + wheel) and make venvs with pip, found among `python3` on PATH and
 * Debian's own (`apt-get install python3-venv python3-setuptools python3-wheel`, which `.ci/run`
 * installs). pyenv-style interpreters often lack `wheel`, and nothing can be installed from PyPI
 * here, so the first candidate that has everything wins.
 */
import { execFile, execFileSync } from "node:child_process";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { TestContext } from "node:test";
import { promisify } from "node:util";

const execFileAsync = promisify(execFile);

const CANDIDATES = ["python3", "/usr/bin/python3"];

export interface Pythons {
  /** Builds distributions: has setuptools and wheel. */
  readonly build: string;
  /**
   * Makes the venv pip runs in: the candidate whose bundled pip (ensurepip) is newest, so the
   * test runs the most current pip this machine has (pip ≥ 23.2 reads PEP 714 `core-metadata`).
   */
  readonly venv: string;
  readonly pipVersion: string;
}

function probe(python: string, code: string): string | undefined {
  try {
    return execFileSync(python, ["-c", code], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim();
  } catch {
    return undefined;
  }
}

export function findPythons(): Pythons | undefined {
  const candidates = [process.env["VAULT_TEST_PYTHON"], ...CANDIDATES].filter((candidate): candidate is string => candidate !== undefined && candidate !== "");
  const build = candidates.find((candidate) => probe(candidate, "import setuptools, wheel") !== undefined);
  const venvs = candidates
    .map((candidate) => ({ candidate, pip: probe(candidate, "import venv, ensurepip; print(ensurepip.version())") }))
    .filter((entry): entry is { candidate: string; pip: string } => entry.pip !== undefined)
    .sort((a, b) => compareVersions(b.pip, a.pip));
  const venv = venvs[0];
  return build === undefined || venv === undefined ? undefined : { build, venv: venv.candidate, pipVersion: venv.pip };
}

/** As `requireTool`: skips on a developer's machine without them, fails under CI. */
export function requirePythons(t: TestContext): Pythons | undefined {
  const found = findPythons();
  if (found !== undefined) return found;
  const message = "no python3 with setuptools, wheel and venv (Debian: apt-get install python3-venv python3-setuptools python3-wheel)";
  if (process.env["CI"]) throw new Error(`${message}; CI must install it in .ci/run`);
  t.skip(message);
  return undefined;
}

export function compareVersions(a: string, b: string): number {
  const parts = (version: string): number[] => version.split(".").map((part) => Number.parseInt(part, 10) || 0);
  const [x, y] = [parts(a), parts(b)];
  for (let i = 0; i < Math.max(x.length, y.length); i++) {
    const difference = (x[i] ?? 0) - (y[i] ?? 0);
    if (difference !== 0) return difference;
  }
  return 0;
}

export interface DistributionSpec {
  /** As written in setup.py (not normalised). */
  readonly name: string;
  readonly version: string;
  readonly requires?: readonly string[];
  readonly requiresPython?: string;
  readonly wheel?: boolean;
  readonly sdist?: boolean;
}

/**
 * Builds a tiny pure-Python distribution with setuptools (`setup.py sdist bdist_wheel`) into
 * `outDir`, offline; returns the file names written.
 */
export async function buildDistribution(python: string, workDir: string, spec: DistributionSpec, outDir: string): Promise<void> {
  const module = spec.name.replace(/[-.]/g, "_").toLowerCase();
  const source = join(workDir, `${module}-${spec.version}`);
  await mkdir(source, { recursive: true });
  await writeFile(join(source, `${module}.py`), `VERSION = ${JSON.stringify(spec.version)}\n`);
  await writeFile(
    join(source, "setup.py"),
    `from setuptools import setup
setup(
    name=${JSON.stringify(spec.name)},
    version=${JSON.stringify(spec.version)},
    py_modules=[${JSON.stringify(module)}],
    install_requires=${JSON.stringify(spec.requires ?? [])},
    ${spec.requiresPython === undefined ? "" : `python_requires=${JSON.stringify(spec.requiresPython)},`}
)
`,
  );
  const commands: string[] = [];
  if (spec.sdist ?? false) commands.push("sdist", "--formats=gztar", "-d", outDir);
  if (spec.wheel ?? true) commands.push("bdist_wheel", "-d", outDir);
  await execFileAsync(python, ["setup.py", "-q", ...commands], { cwd: source, env: { ...process.env, SOURCE_DATE_EPOCH: "1700000000" } });
}

/** The METADATA file inside a wheel (PEP 658 serves it as `<wheel>.metadata`). */
export async function wheelMetadata(python: string, wheel: string): Promise<Buffer> {
  const script = `import sys, zipfile
z = zipfile.ZipFile(sys.argv[1])
name = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA") and n.count("/") == 1)
sys.stdout.buffer.write(z.read(name))`;
  const { stdout } = await execFileAsync(python, ["-c", script, wheel], { encoding: "buffer" });
  return stdout;
}

/**
 * A fresh venv with the interpreter's bundled pip (no network needed); returns its pip. With
 * `systemSitePackages` it also sees the interpreter's own packages (setuptools and wheel, to
 * build an sdist's metadata offline).
 */
export async function makeVenv(python: string, dir: string, options: { systemSitePackages?: boolean } = {}): Promise<string> {
  await execFileAsync(python, ["-m", "venv", ...(options.systemSitePackages === true ? ["--system-site-packages"] : []), dir]);
  return join(dir, "bin", "pip");
}
