/**
 * The package as users get it: every entry point of `exports` imports by the package's name
 * (Node resolves a package's own name from inside it), and `npm pack` ships the service without
 * compiled tests.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

const execFileAsync = promisify(execFile);
const PACKAGE_ROOT = fileURLToPath(new URL("../../../", import.meta.url));

test('import "artifact-vault" gives the service, its config loader and the client', async () => {
  const main = (await import("artifact-vault")) as Record<string, unknown>;
  for (const name of ["startVault", "loadConfig", "defaultConfig", "ConfigError", "VaultError", "RestStore", "NotFoundError", "VERSION"]) {
    assert.ok(main[name] !== undefined, `artifact-vault exports ${name}`);
  }
  const { startVault, defaultConfig } = main as { startVault: (config: unknown, logger?: unknown) => Promise<{ url: string; close(): Promise<void> }>; defaultConfig: () => Record<string, unknown> };
  assert.equal(typeof startVault, "function");
  assert.equal(defaultConfig()["http_port"], 8080);
  const client = (await import("artifact-vault/client")) as Record<string, unknown>;
  assert.equal(client["RestStore"], main["RestStore"]);
  const plugin = (await import("artifact-vault/plugin")) as Record<string, unknown>;
  assert.equal(typeof plugin["createUpstreamClient"], "function");
});

test("npm pack ships the built service, its web UI and no compiled tests", async () => {
  const { stdout } = await execFileAsync("npm", ["pack", "--dry-run", "--json", "--ignore-scripts"], { cwd: PACKAGE_ROOT, maxBuffer: 64 * 1024 * 1024 });
  const [pack] = JSON.parse(stdout) as Array<{ files: Array<{ path: string }> }>;
  const files = (pack?.files ?? []).map((file) => file.path);
  for (const entry of ["dist/src/index.js", "dist/src/index.d.ts", "dist/src/cli/main.js", "dist/src/client/index.js", "dist/src/upstreams/custom/plugin-api.js", "dist/ui/index.html", "package.json", "README.md"]) {
    assert.ok(files.includes(entry), `the package carries ${entry}`);
  }
  assert.ok(files.some((file) => /^dist\/ui\/main-[A-Z0-9]+\.js$/.test(file)), "the package carries the web UI's script");
  const tests = files.filter((file) => /\.test\.|^dist\/(tests|bench)\//.test(file));
  assert.deepEqual(tests, [], "no test files in the package");
});

test("the LICENSE file is the license package.json names, and ships in the package", async () => {
  const manifest = JSON.parse(await readFile(join(PACKAGE_ROOT, "package.json"), "utf8")) as { license?: string };
  assert.equal(manifest.license, "MIT");
  const license = await readFile(join(PACKAGE_ROOT, "LICENSE"), "utf8");
  assert.match(license, /^MIT License\n\nCopyright \(c\) 2026 the artifact-vault authors\n/);
  assert.match(license, /THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND/);
  const { stdout } = await execFileAsync("npm", ["pack", "--dry-run", "--json", "--ignore-scripts"], { cwd: PACKAGE_ROOT, maxBuffer: 64 * 1024 * 1024 });
  const [pack] = JSON.parse(stdout) as Array<{ files: Array<{ path: string }> }>;
  assert.ok((pack?.files ?? []).some((file) => file.path === "LICENSE"), "npm pack ships LICENSE");
});
