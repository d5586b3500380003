import { execFileSync } from "node:child_process";
import type { TestContext } from "node:test";

/** Absolute path of an executable on PATH (or in the sbin dirs Debian puts daemons in). */
export function findTool(name: string): string | undefined {
  const path = `${process.env["PATH"] ?? ""}:/usr/sbin:/sbin:/usr/bin`;
  try {
    const found = execFileSync("sh", ["-c", `command -v ${name}`], {
      env: { ...process.env, PATH: path },
      encoding: "utf8",
    }).trim();
    return found === "" ? undefined : found;
  } catch {
    return undefined;
  }
}

/**
 * Returns the tool's path, or skips the test with the tool's name when it is missing on a
 * developer's machine. Under CI (`CI` set) a missing tool fails the test instead: `.ci/run`
 * installs every tool, so a skip there would hide a broken install step.
 */
export function requireTool(t: TestContext, name: string): string | undefined {
  const found = findTool(name);
  if (found !== undefined) return found;
  const message = `${name} is not installed (Debian: apt-get install ${debianPackageFor(name)})`;
  if (process.env["CI"]) throw new Error(`${message}; CI must install it in .ci/run`);
  t.skip(message);
  return undefined;
}

function debianPackageFor(tool: string): string {
  const packages: Record<string, string> = { "docker-registry": "docker-registry", wrk: "wrk", "apt-ftparchive": "apt-utils", gpg: "gnupg", "dpkg-deb": "dpkg" };
  return packages[tool] ?? tool;
}
