/**
 * The README's client examples run as shown: every block fenced as ```ts readme-example is
 * type-checked with the project's compiler settings, compiled (so `await using` works on Node 20)
 * and run as its own module against a real server on port 0, importing "artifact-vault/client"
 * the way users do — through the package's own `exports` (a module inside the package resolves
 * its own name). The server's URL and a token arrive in VAULT_URL and VAULT_API_KEY.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import ts from "typescript";
import { startTestVault, type TestVault } from "../support/test-vault.js";

/** The package root (this file runs as dist/tests/integration/readme-examples.test.js). */
const PACKAGE_ROOT = fileURLToPath(new URL("../../../", import.meta.url));
const MARKER = "```ts readme-example";

interface Example {
  readonly name: string;
  /** 1-based line of the code's first line in README.md. */
  readonly line: number;
  readonly code: string;
}

/** The fenced blocks marked ```ts readme-example, in order. */
function extractExamples(markdown: string): Example[] {
  const examples: Example[] = [];
  const lines = markdown.split("\n");
  for (let at = 0; at < lines.length; at++) {
    if (lines[at]?.trimEnd() !== MARKER) continue;
    const start = at + 1;
    let end = start;
    while (end < lines.length && lines[end]?.trimEnd() !== "```") end++;
    if (end === lines.length) throw new Error(`README.md:${start}: the readme-example block is not closed`);
    examples.push({ name: `example-${examples.length + 1}`, line: start + 1, code: lines.slice(start, end).join("\n") });
    at = end;
  }
  return examples;
}

interface Compiled {
  /** Compiler messages per example name (empty when it type-checks). */
  readonly diagnostics: ReadonlyMap<string, string>;
}

/** Type-checks and emits `<dir>/<name>.mts` → `<dir>/<name>.mjs` with the project's compiler options. */
function compile(dir: string, names: readonly string[]): Compiled {
  const config = ts.readConfigFile(join(PACKAGE_ROOT, "tsconfig.json"), (path) => ts.sys.readFile(path));
  if (config.error !== undefined) throw new Error(ts.flattenDiagnosticMessageText(config.error.messageText, "\n"));
  const parsed = ts.parseJsonConfigFileContent(config.config, ts.sys, PACKAGE_ROOT);
  const options: ts.CompilerOptions = {
    ...parsed.options,
    outDir: undefined,
    rootDir: undefined,
    declaration: false,
    sourceMap: false,
    noEmit: false,
    noEmitOnError: true,
  };
  const files = names.map((name) => join(dir, `${name}.mts`));
  const program = ts.createProgram(files, options);
  const host: ts.FormatDiagnosticsHost = {
    getCanonicalFileName: (path) => path,
    getCurrentDirectory: () => dir,
    getNewLine: () => "\n",
  };
  const diagnostics = new Map<string, string>();
  for (const [index, name] of names.entries()) {
    const source = program.getSourceFile(files[index] ?? "");
    const found = source === undefined ? [] : [...program.getSyntacticDiagnostics(source), ...program.getSemanticDiagnostics(source)];
    diagnostics.set(name, ts.formatDiagnostics(found, host));
    if (source !== undefined && found.length === 0) {
      const emitted = program.emit(source);
      if (emitted.emitSkipped) diagnostics.set(name, ts.formatDiagnostics(emitted.diagnostics, host) || "emit skipped");
    }
  }
  return { diagnostics };
}

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

function runModule(file: string, cwd: string, env: NodeJS.ProcessEnv): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, [file], { cwd, env: { ...process.env, ...env }, timeout: 120_000 }, (error, stdout, stderr) => {
      resolve({ code: error === null ? 0 : typeof error.code === "number" ? error.code : null, stdout, stderr });
    });
  });
}

const examples = extractExamples(readFileSync(join(PACKAGE_ROOT, "README.md"), "utf8"));

void describe("README client examples", () => {
  let vault: TestVault;
  let dir: string;
  let cwd: string;
  let compiled: Compiled;
  let upload: Buffer;
  const runs = new Map<string, Run>();
  const selfTests = {
    "broken-types": `import { RestStore } from "artifact-vault/client";\nRestStore.create({ baseUrl: "http://x", apiKey: "k", retries: 3 });\n`,
    "broken-run": `import { RestStore } from "artifact-vault/client";\nconst store = RestStore.create({ baseUrl: process.env.VAULT_URL!, apiKey: process.env.VAULT_API_KEY! });\ntry { await store.get("no/such/key"); } finally { await store.close(); }\n`,
  };

  before(async () => {
    vault = await startTestVault({ storage: "memory", tokens: [{ name: "rwd", scopes: ["read", "write", "delete"] }] });
    // Inside the package (dist/ is git-ignored), so "artifact-vault/client" resolves to this package.
    dir = await mkdtemp(join(PACKAGE_ROOT, "dist", ".readme-examples-"));
    cwd = await mkdtemp(join(tmpdir(), "readme-examples-cwd-"));
    // The file the streaming example uploads: big enough for several progress reports.
    upload = randomBytes(5 * 1024 * 1024 + 123);
    await mkdir(join(cwd, "build"));
    await writeFile(join(cwd, "build", "app.tar.gz"), upload);
    const names = [...examples.map((example) => example.name), ...Object.keys(selfTests)];
    for (const example of examples) await writeFile(join(dir, `${example.name}.mts`), `${example.code}\n`);
    for (const [name, code] of Object.entries(selfTests)) await writeFile(join(dir, `${name}.mts`), code);
    compiled = compile(dir, names);
  });

  after(async () => {
    await vault?.close();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
    if (cwd !== undefined) await rm(cwd, { recursive: true, force: true });
  });

  const env = () => ({ VAULT_URL: vault.url, VAULT_API_KEY: vault.tokens["rwd"] ?? "" });

  void it("the README has the client examples, importing the package's own export", () => {
    assert.ok(examples.length >= 3, `expected at least 3 ${MARKER} blocks, found ${examples.length}`);
    for (const example of examples) {
      assert.match(example.code, /from "artifact-vault\/client"/, `README.md:${example.line} does not import "artifact-vault/client"`);
    }
    assert.ok(
      examples.some((example) => /^await using /m.test(example.code)),
      "one example shows `await using`",
    );
  });

  for (const example of examples) {
    const where = `README.md:${example.line}`;
    void it(`${where} (${example.name}) type-checks and runs against a real server`, async () => {
      assert.equal(compiled.diagnostics.get(example.name), "", `${where} does not type-check`);
      const run = await runModule(join(dir, `${example.name}.mjs`), cwd, env());
      runs.set(example.name, run);
      assert.equal(run.code, 0, `${where} failed:\n${run.stderr}\n${run.stdout}`);
    });
  }

  void it("the examples did what they say: the first one saw its key go, the download is byte-identical", async () => {
    const first = runs.get("example-1");
    assert.ok(first !== undefined, "example 1 ran");
    assert.match(first.stdout, /^gone: reports\/q1\.csv$/m);
    assert.match(first.stdout, /^region,total\nnorth,100$/m);
    assert.deepEqual(await readFile(join(cwd, "app-copy.tar.gz")), upload);
  });

  void it("the harness catches a broken example: a type error, and a failing run", async () => {
    assert.match(compiled.diagnostics.get("broken-types") ?? "", /retries/);
    const run = await runModule(join(dir, "broken-run.mjs"), cwd, env());
    assert.notEqual(run.code, 0);
    assert.match(run.stderr, /NotFoundError/);
  });
});
