/**
 * Finds a package the project installed (verdaccio, pnpm, yarn) in a `node_modules` folder above
 * this file or above the working directory: tests may be built into an outDir outside the repo
 * (`tsc --outDir /tmp/...`), where only the working directory still leads to it.
 */
import { existsSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

function ancestors(start: string): string[] {
  const found: string[] = [];
  for (let dir = resolve(start); ; dir = dirname(dir)) {
    found.push(dir);
    if (dirname(dir) === dir) return found;
  }
}

/** Absolute path of `node_modules/<name>/<file>`, or throws naming where it looked. */
export function installedPackageFile(name: string, file: string): string {
  const starts = [dirname(fileURLToPath(import.meta.url)), process.cwd()];
  for (const start of starts) {
    for (const dir of ancestors(start)) {
      const candidate = join(dir, "node_modules", name, file);
      if (existsSync(candidate)) return candidate;
    }
  }
  throw new Error(`node_modules/${name}/${file} not found above ${starts.join(" or ")}; run npm install in the repository (it is a devDependency)`);
}
