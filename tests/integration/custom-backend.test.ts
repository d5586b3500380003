/**
 * Custom backends end to end: the example plugins in examples/plugins/ (a native one and one
 * written the source design's way), loaded through a config file by the real service on port 0,
 * against a real origin on port 0 that counts requests. The plugins are copied OUT of the package
 * first, as users keep them, so `import "artifact-vault/plugin"` must resolve through the vault's
 * resolve hook rather than the package's self-reference. Start failures go through the built CLI.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { randomBytes } from "node:crypto";
import { copyFile, mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { pino } from "pino";
import ts from "typescript";
import { loadConfig } from "../../src/config/load-config.js";
import { createBackends } from "../../src/upstreams/backend-types.js";
import { rawRequest } from "../support/http.js";
import { OriginServer } from "../support/origin-server.js";
import { GENERIC_UPSTREAM_FAILURE, loggedUpstreamReason, startTestVault, type TestVault } from "../support/test-vault.js";
import { CLI_PATH, spawnVault } from "../support/vault-process.js";

/** examples/plugins at the package root (this file runs as dist/tests/integration/custom-backend.test.js). */
const EXAMPLES = fileURLToPath(new URL("../../../examples/plugins/", import.meta.url));
const EXAMPLE_PLUGINS = ["github-releases.mjs", "legacy-backend.mjs"];

/** A native plugin that tries to write into the `files` backend's namespace and out of its own. */
const CONFINED_PLUGIN = `
import { normaliseUpstreamPath } from "artifact-vault/plugin";
export function createBackend(options) {
  return {
    resolve(request) {
      const path = normaliseUpstreamPath(request.path);
      const keys = { steal: options.target, escape: "../" + options.target, absolute: "/" + options.target };
      return { cacheKey: keys[path] ?? path, freshness: { kind: "immutable" } };
    },
    async fetch() {
      return { status: 200, headers: { "Content-Type": "text/plain" }, body: "forged by a plugin" };
    },
  };
}
`;

/** Copies the example plugins (and extra files) into a fresh directory outside the package. */
async function pluginDirectory(parent: string, extra: Record<string, string> = {}): Promise<string> {
  const dir = join(parent, "plugins");
  await mkdir(dir, { recursive: true });
  for (const name of EXAMPLE_PLUGINS) await copyFile(join(EXAMPLES, name), join(dir, name));
  for (const [name, text] of Object.entries(extra)) await writeFile(join(dir, name), text);
  return dir;
}

async function get(base: string, path: string, init: RequestInit = {}) {
  const response = await fetch(`${base}${path}`, init);
  const body = Buffer.from(await response.arrayBuffer());
  return { status: response.status, headers: response.headers, body };
}

const RELEASE = "/gh/acme/tool/releases/download/v1.2.0/tool-linux.tar.gz";
const LATEST = "/gh/acme/tool/releases/latest/download/tool-linux.tar.gz";

void describe("custom backends", () => {
  const origin = new OriginServer();
  let vault: TestVault;
  let scratch: string;

  before(async () => {
    await origin.start();
    scratch = await mkdtemp(join(tmpdir(), "custom-backend-"));
    const plugins = await pluginDirectory(scratch, { "confined.mjs": CONFINED_PLUGIN });
    const module = (name: string) => JSON.stringify(join(plugins, name));
    vault = await startTestVault({
      extraYaml: [
        "backends:",
        `  - {type: custom, name: releases, config: {prefix: /releases/, module: ${module("github-releases.mjs")}, base_url: "${origin.url}/gh", ttl: 0s}}`,
        `  - {type: custom, name: legacy, config: {prefix: /legacy/, module: ${module("legacy-backend.mjs")}, base_url: "${origin.url}/legacy", extensions: [.bin, .txt]}}`,
        `  - {type: http, name: files, config: {prefix: /files/, base_url: "${origin.url}/files"}}`,
        `  - {type: custom, name: evil, config: {prefix: /evil/, module: ${module("confined.mjs")}, target: files/shared.txt}}`,
      ].join("\n"),
    });
  });

  after(async () => {
    await vault?.close();
    await origin.stop();
    await rm(scratch, { recursive: true, force: true });
  });

  void describe("a native plugin (examples/plugins/github-releases.mjs)", () => {
    test("a miss then a hit: one upstream request", async () => {
      const asset = randomBytes(200_000);
      origin.files.set(RELEASE, { body: asset, contentType: "application/gzip" });
      const miss = await get(vault.url, "/releases/acme/tool/v1.2.0/tool-linux.tar.gz");
      assert.equal(miss.status, 200);
      assert.equal(miss.headers.get("x-cache"), "MISS");
      assert.ok(miss.body.equals(asset));
      const hit = await get(vault.url, "/releases/acme/tool/v1.2.0/tool-linux.tar.gz");
      assert.equal(hit.status, 200);
      assert.equal(hit.headers.get("x-cache"), "HIT");
      assert.equal(hit.headers.get("content-type"), "application/gzip");
      assert.ok(hit.body.equals(asset));
      assert.equal(origin.count(RELEASE), 1);
    });

    test("a mutable artifact is revalidated with the plugin's conditional request (304)", async () => {
      origin.files.set(LATEST, { body: Buffer.from("latest build"), etag: '"build-7"' });
      assert.equal((await get(vault.url, "/releases/acme/tool/latest/tool-linux.tar.gz")).headers.get("x-cache"), "MISS");
      const again = await get(vault.url, "/releases/acme/tool/latest/tool-linux.tar.gz");
      assert.equal(again.headers.get("x-cache"), "REVALIDATED");
      assert.equal(again.body.toString(), "latest build");
      const requests = origin.requests.filter((request) => request.url === LATEST);
      assert.equal(requests.length, 2);
      assert.equal(requests[1]?.headers["if-none-match"], '"build-7"');
    });

    test("the plugin's own errors: 404 for paths it does not serve, 400 for path tricks", async () => {
      assert.equal((await get(vault.url, "/releases/acme/tool")).status, 404);
      assert.equal((await rawRequest(vault.url, "/releases/acme/%2e%2e/x/y")).status, 400);
    });
  });

  void describe("a source-style plugin (examples/plugins/legacy-backend.mjs)", () => {
    test("its chunks are cached and served with the right content type and length", async () => {
      const data = randomBytes(1024 * 1024 + 17);
      origin.files.set("/legacy/dist/data.bin", { body: data, contentType: "application/x-custom", chunkSize: 64 * 1024 });
      for (const expected of ["MISS", "HIT"]) {
        const response = await get(vault.url, "/legacy/dist/data.bin");
        assert.equal(response.status, 200);
        assert.equal(response.headers.get("x-cache"), expected);
        assert.equal(response.headers.get("content-type"), "application/x-custom");
        assert.equal(response.headers.get("content-length"), String(data.length));
        assert.ok(response.body.equals(data), expected);
      }
      const head = await get(vault.url, "/legacy/dist/data.bin", { method: "HEAD" });
      assert.equal(head.headers.get("content-length"), String(data.length));
      assert.equal(origin.count("/legacy/dist/data.bin"), 1);
    });

    test("a decoded path reaches the plugin, which encodes it again", async () => {
      origin.files.set("/legacy/my%20notes.txt", { body: Buffer.from("notes"), contentType: "text/plain" });
      const response = await get(vault.url, "/legacy/my%20notes.txt");
      assert.equal(response.status, 200);
      assert.equal(response.body.toString(), "notes");
    });

    test("{error} before any content → 502, and nothing is cached", async () => {
      origin.files.set("/legacy/broken.bin", { body: Buffer.alloc(0), status: 500 });
      for (let attempt = 1; attempt <= 2; attempt++) {
        const response = await get(vault.url, "/legacy/broken.bin");
        assert.equal(response.status, 502);
        assert.match(response.body.toString(), GENERIC_UPSTREAM_FAILURE);
        assert.match(loggedUpstreamReason(vault, response.headers.get("x-request-id") ?? undefined), /upstream answered 500/);
        assert.equal(origin.count("/legacy/broken.bin"), attempt);
      }
    });

    test('an {error} that says "not found" → 404', async () => {
      const response = await get(vault.url, "/legacy/missing.bin");
      assert.equal(response.status, 404);
      assert.equal(origin.count("/legacy/missing.bin"), 1);
    });

    test("canHandle(path) === false → 404 without asking the plugin to fetch", async () => {
      const response = await get(vault.url, "/legacy/setup.exe");
      assert.equal(response.status, 404);
      assert.equal(origin.count("/legacy/setup.exe"), 0);
    });

    test("an {error} after content aborts the response, and the next request fetches again", async () => {
      const data = randomBytes(512 * 1024);
      origin.files.set("/legacy/cut.bin", { body: data, truncateAt: 200 * 1024, chunkSize: 16 * 1024 });
      await assert.rejects(get(vault.url, "/legacy/cut.bin"));
      origin.files.set("/legacy/cut.bin", { body: data });
      const retry = await get(vault.url, "/legacy/cut.bin");
      assert.equal(retry.headers.get("x-cache"), "MISS");
      assert.ok(retry.body.equals(data));
      assert.equal(origin.count("/legacy/cut.bin"), 2);
    });
  });

  void describe("confinement", () => {
    test("a plugin's cache key naming another backend's entry stays in its own namespace", async () => {
      origin.files.set("/files/shared.txt", { body: Buffer.from("genuine"), contentType: "text/plain" });
      assert.equal((await get(vault.url, "/files/shared.txt")).body.toString(), "genuine");

      // The plugin asks for the key "files/shared.txt": it neither reads the genuine entry...
      const forged = await get(vault.url, "/evil/steal");
      assert.equal(forged.headers.get("x-cache"), "MISS");
      assert.equal(forged.body.toString(), "forged by a plugin");
      assert.equal((await get(vault.url, "/evil/steal")).headers.get("x-cache"), "HIT");

      // ...nor overwrites it.
      const genuine = await get(vault.url, "/files/shared.txt");
      assert.equal(genuine.headers.get("x-cache"), "HIT");
      assert.equal(genuine.body.toString(), "genuine");
      assert.equal(origin.count("/files/shared.txt"), 1);
    });

    test("keys that would leave the namespace are refused (400)", async () => {
      for (const path of ["/evil/escape", "/evil/absolute"]) {
        const response = await get(vault.url, path);
        assert.equal(response.status, 400, path);
        assert.match(response.body.toString(), /invalid cache key/);
      }
    });
  });
});

void describe("examples/plugins", () => {
  test("the example plugins type-check (checkJs, strict) against artifact-vault/plugin's declarations", () => {
    const root = fileURLToPath(new URL("../../../", import.meta.url));
    const tsconfig = ts.readConfigFile(join(root, "tsconfig.json"), (path) => ts.sys.readFile(path));
    const parsed = ts.parseJsonConfigFileContent(tsconfig.config, ts.sys, root);
    const files = EXAMPLE_PLUGINS.map((name) => join(EXAMPLES, name));
    const program = ts.createProgram(files, { ...parsed.options, allowJs: true, checkJs: true, noEmit: true, outDir: undefined, rootDir: undefined });
    const problems = ts.getPreEmitDiagnostics(program).map((diagnostic) => {
      const where = diagnostic.file === undefined ? "" : `${diagnostic.file.fileName}:${diagnostic.file.getLineAndCharacterOfPosition(diagnostic.start ?? 0).line + 1}: `;
      return where + ts.flattenDiagnosticMessageText(diagnostic.messageText, "\n");
    });
    assert.deepEqual(problems, []);
  });


  test("vault.yml loads, with module paths relative to the file, and makes both backends", async () => {
    const config = await loadConfig({ file: join(EXAMPLES, "vault.yml"), env: {} });
    assert.deepEqual(
      config.backends.map((backend) => [backend.name, backend.options["module"]]),
      [
        ["releases", join(EXAMPLES, "github-releases.mjs")],
        ["legacy", join(EXAMPLES, "legacy-backend.mjs")],
      ],
    );
    // Plugins never read other artifacts through the cache: a source that refuses is enough here.
    const artifacts = { get: () => Promise.reject(new Error("no cache in this test")), peek: () => Promise.resolve(undefined) };
    const backends = await createBackends(config.backends, { logger: pino({ level: "silent" }), metadataTtlMs: 60_000, artifacts });
    try {
      assert.deepEqual(
        backends.map((backend) => [backend.type, backend.name, backend.prefix]),
        [
          ["custom", "releases", "/releases/"],
          ["custom", "legacy", "/legacy/"],
        ],
      );
    } finally {
      await Promise.all(backends.map((backend) => backend.close()));
    }
  });
});

void describe("artifact-vault serve with custom backends", () => {
  const origin = new OriginServer();
  let dir: string;

  before(async () => {
    await origin.start();
    dir = await mkdtemp(join(tmpdir(), "custom-backend-cli-"));
    await pluginDirectory(dir, {
      "nothing.mjs": "export const answer = 42;\n",
      "half.mjs": "export default { canHandle: () => true };\n",
      "broken.mjs": "export default function ( {\n",
    });
  });
  after(async () => {
    await origin.stop();
    await rm(dir, { recursive: true, force: true });
  });

  /** Writes `name` as a config with one custom backend, `module` as written. */
  async function configWith(name: string, backendConfig: string): Promise<string> {
    const file = join(dir, name);
    await writeFile(
      file,
      [
        "http_host: 127.0.0.1",
        "http_port: 0",
        "cache_dir: ./data",
        "auth: {tokens_file: ./tokens.json}",
        "backends:",
        `  - {type: http, name: files, config: {prefix: /files/, base_url: "${origin.url}"}}`,
        `  - {type: custom, name: legacy, config: {prefix: /legacy/, ${backendConfig}}}`,
      ].join("\n"),
    );
    return file;
  }

  async function runToExit(configFile: string): Promise<{ code: number | null; output: string }> {
    const child = spawn(process.execPath, [CLI_PATH, "serve", "--config", configFile], { cwd: tmpdir(), stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));
    const timer = setTimeout(() => child.kill("SIGKILL"), 20_000);
    const [code] = (await once(child, "exit")) as [number | null];
    clearTimeout(timer);
    return { code, output };
  }

  test("a module path relative to the config file works from another working directory", async () => {
    origin.files.set("/legacy/hello.txt", { body: Buffer.from("hello from the origin"), contentType: "text/plain" });
    const file = await configWith("ok.yml", `module: ./plugins/legacy-backend.mjs, base_url: "${origin.url}/legacy", extensions: [.txt]`);
    const running = await spawnVault(file);
    try {
      const response = await get(running.url, "/legacy/hello.txt");
      assert.equal(response.status, 200, running.output());
      assert.equal(response.body.toString(), "hello from the origin");
    } finally {
      running.kill("SIGTERM");
      assert.equal((await running.exited()).code, 0, running.output());
    }
  });

  const failures: ReadonlyArray<readonly [name: string, backendConfig: string, message: RegExp]> = [
    ["a module that does not exist", "module: ./plugins/missing.mjs", /backends\[1\]\.config\.module: cannot load .*missing\.mjs: no such file/],
    ["a module that exports nothing usable", "module: ./plugins/nothing.mjs", /backends\[1\]\.config\.module: .*nothing\.mjs exports no backend/],
    ["a module whose export has the wrong shape", "module: ./plugins/half.mjs", /backends\[1\]\.config\.module: .*half\.mjs does not provide/],
    ["a module that does not parse", "module: ./plugins/broken.mjs", /backends\[1\]\.config\.module: cannot load .*broken\.mjs/],
    ["a file path written like a package name", "module: plugins/nothing.mjs", /backends\[1\]\.config\.module: .*write \.\/plugins\/nothing\.mjs/],
    ["a native plugin forced through the source adapter", "module: ./plugins/github-releases.mjs, adapter: source", /backends\[1\]\.config\.module: .*adapter: source/],
    ["a plugin that refuses its options", "module: ./plugins/legacy-backend.mjs", /backends\[1\]\.config: the plugin .*legacy-backend\.mjs refused to start: base_url is required/],
  ];
  for (const [name, backendConfig, message] of failures) {
    test(`${name}: exit 2 naming the config key`, async () => {
      const file = await configWith(`${name.replaceAll(" ", "-")}.yml`, backendConfig);
      const { code, output } = await runToExit(file);
      assert.equal(code, 2, output);
      assert.match(output, message);
    });
  }
});
