/**
 * The deployment files do what they say, tested with everything short of a container engine:
 *
 * - deploy/dotenv.template, deploy/config.yml, deploy/replicas.yml and deploy/storage.yaml.template
 *   load through the vault's own config loader, with the environment the template gives;
 * - compose.yaml and compose.replicas.yaml parse, name only files that exist, and agree with the
 *   Dockerfile and the configs they run (ports, paths, stop timeouts, service names);
 * - the Dockerfile's stages are checked (non-root USER, HEALTHCHECK, exec-form CMD, a context that
 *   holds what the build copies), then its CMD runs here against the built CLI, as the image's
 *   user when the tests run as root: the HEALTHCHECK command passes against it, and SIGTERM lets
 *   a slow upload finish before it exits 0;
 * - the replicas' setup runs for real: two replicas of deploy/replicas.yml on an S3 server and a
 *   Redis, behind nginx with deploy/nginx-replicas.conf;
 * - the systemd unit parses, passes `systemd-analyze verify`, and its ExecStart runs and drains;
 * - signals: `npm start` (an `exec` script) and the bin drain on SIGTERM; `npx artifact-vault serve`
 *   does not (npm signals its `sh -c`, which does not pass the signal on), as the README says.
 *
 * What cannot run here: `docker build` / `docker compose` themselves (no engine), and the units
 * under a running systemd.
 */
import { after, before, describe, it, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { accessSync, chmodSync, constants, existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { chmod, chown, mkdir, mkdtemp, readdir, rm, symlink, writeFile } from "node:fs/promises";
import { request as httpRequest } from "node:http";
import { tmpdir } from "node:os";
import { dirname, isAbsolute, join, posix } from "node:path";
import { fileURLToPath } from "node:url";
import { parse as parseYamlText } from "yaml";
import { writeTokensFile } from "../../src/auth/tokens-file.js";
import { loadConfig } from "../../src/config/load-config.js";
import { rawRequest } from "../support/http.js";
import { freePort, spawnDaemon, waitFor, type Daemon } from "../support/process.js";
import { startRedis, type RedisServer } from "../support/redis-server.js";
import { startTestS3, type TestS3 } from "../support/s3-server.js";
import { tokenRecords } from "../support/test-vault.js";
import { findTool, requireTool } from "../support/tools.js";
import { CLI_PATH } from "../support/vault-process.js";

const ROOT = fileURLToPath(new URL("../../../", import.meta.url));
/** The built tree the tests run (dist/, or another outDir): what the image's `dist/` holds. */
const BUILD_ROOT = dirname(dirname(dirname(CLI_PATH)));
const repoFile = (path: string): string => join(ROOT, path);
const read = (path: string): string => readFileSync(repoFile(path), "utf8");

/** The image's user (the node images' `node`), used for the CMD when the tests run as root. */
const IMAGE_UID = 1000;
/** What `artifact-vault serve` allows itself past shutdown_timeout before giving up (serve-command.ts). */
const SHUTDOWN_GRACE_S = 10;

// ------------------------------------------------------------------------------------------------
// Parsers for the files' formats (small on purpose: only what these files use).

/** KEY=VALUE lines; blank lines and `#` comments skipped. Throws on anything else. */
function parseDotenv(text: string, source: string): Record<string, string> {
  const values: Record<string, string> = {};
  text.split("\n").forEach((line, index) => {
    if (line.trim() === "" || line.trimStart().startsWith("#")) return;
    const match = /^([A-Z][A-Z0-9_]*)=(.*)$/.exec(line);
    if (match === null) throw new Error(`${source}:${index + 1}: not a KEY=VALUE line: ${line}`);
    const [, key = "", value = ""] = match;
    if (Object.hasOwn(values, key)) throw new Error(`${source}:${index + 1}: ${key} given twice`);
    values[key] = value;
  });
  return values;
}

/** The names of `${NAME}`, `${NAME:-x}`, `${NAME-x}` references in a text. */
function referencedVariables(text: string): Set<string> {
  return new Set([...text.matchAll(/(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?-[^}]*)?\}/g)].map((match) => match[1] ?? ""));
}

/** Compose's interpolation of one value: `${NAME}`, `${NAME:-default}`, `$$` for a literal `$`. */
function interpolate(value: string, env: Record<string, string>): string {
  return value.replace(/\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g, (whole, name: string | undefined, fallback: string | undefined) => {
    if (whole === "$$") return "$";
    const current = env[name ?? ""];
    return current === undefined || current === "" ? (fallback ?? "") : current;
  });
}

/** "45s", "1m30s", "2m" → seconds. */
function seconds(duration: string): number {
  const match = /^(?:(\d+)m)?(?:(\d+)s)?$/.exec(duration.trim());
  if (match === null || duration.trim() === "") throw new Error(`not a duration: ${duration}`);
  return Number(match[1] ?? 0) * 60 + Number(match[2] ?? 0);
}

interface Instruction {
  readonly keyword: string;
  readonly args: string;
  readonly line: number;
}
interface Stage {
  readonly from: string;
  readonly name: string | undefined;
  readonly instructions: Instruction[];
}

/** The Dockerfile's stages and their instructions (line continuations joined, comments dropped). */
function parseDockerfile(text: string): Stage[] {
  const logical: Instruction[] = [];
  let pending = "";
  let start = 0;
  text.split("\n").forEach((raw, index) => {
    const line = raw.trimEnd();
    if (line.trim().startsWith("#") || (pending === "" && line.trim() === "")) return;
    if (pending === "") start = index + 1;
    if (line.endsWith("\\")) {
      pending += `${line.slice(0, -1)} `;
      return;
    }
    const whole = `${pending}${line}`.trim();
    pending = "";
    const space = whole.search(/\s/);
    logical.push({ keyword: whole.slice(0, space).toUpperCase(), args: whole.slice(space).trim(), line: start });
  });
  const stages: Stage[] = [];
  for (const instruction of logical) {
    if (instruction.keyword === "FROM") {
      const [from = "", as, name] = instruction.args.split(/\s+/);
      stages.push({ from, name: as?.toUpperCase() === "AS" ? name : undefined, instructions: [] });
    } else {
      const stage = stages.at(-1);
      if (stage === undefined) assert.equal(instruction.keyword, "ARG", `Dockerfile:${instruction.line}: ${instruction.keyword} before FROM`);
      else stage.instructions.push(instruction);
    }
  }
  return stages;
}

function execForm(instruction: Instruction): string[] {
  assert.ok(instruction.args.startsWith("["), `Dockerfile:${instruction.line}: ${instruction.keyword} is not in exec form (a JSON array)`);
  const parsed = JSON.parse(instruction.args) as unknown;
  assert.ok(Array.isArray(parsed) && parsed.every((part) => typeof part === "string"), `Dockerfile:${instruction.line}: not a JSON array of strings`);
  return parsed;
}

/**
 * A command line that runs node on a script: `[node, ...node's flags, script, ...arguments]`. The
 * flags are those before the first word that is not one (`--max-semi-space-size=4`).
 */
function nodeCommand(argv: readonly string[]): { node: string; flags: string[]; script: string; args: string[] } {
  const scriptAt = argv.findIndex((part, index) => index > 0 && !part.startsWith("-"));
  assert.ok(scriptAt > 0, `no script in ${JSON.stringify(argv)}`);
  return { node: argv[0] ?? "", flags: argv.slice(1, scriptAt), script: argv[scriptAt] ?? "", args: argv.slice(scriptAt + 1) };
}

/** The young-generation cap the vault's launchers pass (src/core/young-generation.ts). */
const SEMI_SPACE_CAP = "--max-semi-space-size=4";
/** What a vault serving in one process without that cap logs at start. */
const UNCAPPED_LINE = "V8's default young generation";

function only(stage: Stage, keyword: string): Instruction {
  const found = stage.instructions.filter((instruction) => instruction.keyword === keyword);
  assert.equal(found.length, 1, `the stage from ${stage.from} should have one ${keyword}, has ${found.length}`);
  return found[0] as Instruction;
}

/** `ENV A=1 B=2` instructions of a stage, in order. */
function stageEnv(stage: Stage): Record<string, string> {
  const env: Record<string, string> = {};
  for (const instruction of stage.instructions.filter((each) => each.keyword === "ENV")) {
    for (const pair of instruction.args.split(/\s+/)) {
      const match = /^([A-Za-z_][A-Za-z0-9_]*)=(\S*)$/.exec(pair);
      assert.ok(match !== null, `Dockerfile:${instruction.line}: ENV ${pair} (expected KEY=VALUE without quotes)`);
      env[match[1] ?? ""] = match[2] ?? "";
    }
  }
  return env;
}

interface Copy {
  readonly from: string | undefined;
  readonly sources: string[];
  readonly destination: string;
}

function copies(stage: Stage): Copy[] {
  return stage.instructions
    .filter((instruction) => instruction.keyword === "COPY")
    .map((instruction) => {
      const words = instruction.args.split(/\s+/);
      const flags = words.filter((word) => word.startsWith("--"));
      const paths = words.filter((word) => !word.startsWith("--"));
      const from = flags.find((flag) => flag.startsWith("--from="))?.slice("--from=".length);
      return { from, sources: paths.slice(0, -1), destination: paths.at(-1) ?? "" };
    });
}

/** Whether .dockerignore keeps `path` (relative, `/`-separated) in the build context: the last matching pattern decides, and a pattern matching a parent matches its children. */
function inBuildContext(dockerignore: string, path: string): boolean {
  let kept = true;
  for (const raw of dockerignore.split("\n")) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) continue;
    const negated = line.startsWith("!");
    const pattern = posix.normalize(line.slice(negated ? 1 : 0).replace(/^\/+/, "")).replace(/\/+$/, "");
    const regex = new RegExp(
      `^${pattern
        .split("**")
        .map((part) => part.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, "[^/]*").replace(/\?/g, "[^/]"))
        .join(".*")}$`,
    );
    const parts = path.split("/");
    const matches = parts.some((_, index) => regex.test(parts.slice(0, index + 1).join("/")));
    if (matches) kept = negated;
  }
  return kept;
}

/** A systemd unit: section → key → values (in order; a key may repeat). */
function parseUnit(text: string, source: string): Map<string, Map<string, string[]>> {
  const sections = new Map<string, Map<string, string[]>>();
  let current: Map<string, string[]> | undefined;
  text.split("\n").forEach((raw, index) => {
    const line = raw.trim();
    if (line === "" || line.startsWith("#") || line.startsWith(";")) return;
    const section = /^\[([A-Za-z]+)\]$/.exec(line);
    if (section !== null) {
      current = new Map();
      sections.set(section[1] ?? "", current);
      return;
    }
    const pair = /^([A-Za-z]+)=(.*)$/.exec(line);
    if (pair === null || current === undefined) throw new Error(`${source}:${index + 1}: not a key=value line in a section: ${line}`);
    const [, key = "", value = ""] = pair;
    current.set(key, [...(current.get(key) ?? []), value]);
  });
  return sections;
}

// ------------------------------------------------------------------------------------------------
// The files, parsed once.

/** deploy/config.yml's (and deploy/replicas.yml's) shutdown_timeout, in seconds: what stop timeouts must exceed. */
const SHUTDOWN_TIMEOUT_S = seconds(String((parseYamlText(read("deploy/config.yml")) as { shutdown_timeout: unknown }).shutdown_timeout));
const dotenv = parseDotenv(read("deploy/dotenv.template"), "deploy/dotenv.template");
const stages = parseDockerfile(read("Dockerfile"));
const runtime = stages.at(-1) as Stage;
const dockerCmd = execForm(only(runtime, "CMD"));
const dockerNode = nodeCommand(dockerCmd);
const imageEnv = stageEnv(runtime);
const workdir = only(runtime, "WORKDIR").args;

type ComposeService = {
  build?: string | { context: string; dockerfile?: string };
  image?: string;
  command?: string[];
  entrypoint?: string[];
  environment?: Record<string, string>;
  env_file?: (string | { path: string; required?: boolean })[];
  ports?: string[];
  volumes?: string[];
  depends_on?: string[] | Record<string, { condition: string }>;
  stop_grace_period?: string;
  deploy?: { replicas?: number };
};
type ComposeFile = { services: Record<string, ComposeService>; volumes?: Record<string, unknown> };
const compose = (path: string): ComposeFile => parseYamlText(read(path)) as ComposeFile;

/** The file a command's `--config` names (a path inside the container). */
function configArgument(command: readonly string[]): string {
  const index = command.indexOf("--config");
  assert.ok(index > 0 && command[index + 1] !== undefined, `no --config in ${JSON.stringify(command)}`);
  return command[index + 1] as string;
}
/** The repository file that lands at `path` in the container: a bind mount of the service, else a COPY of the Dockerfile. */
function imageFileSource(path: string, service?: ComposeService): string {
  for (const volume of service?.volumes ?? []) {
    const [source = "", target] = volume.split(":");
    if (target === path && source.startsWith("./")) return source.slice(2);
  }
  const copy = copies(runtime).find((each) => each.from === undefined && each.destination === path);
  assert.ok(copy !== undefined && copy.sources.length === 1, `nothing puts ${path} into the container`);
  return copy.sources[0] as string;
}

// ------------------------------------------------------------------------------------------------
// Processes: a command that runs the vault, its URL from the "listening" line, its exit.

interface Started {
  readonly child: ChildProcess;
  /** Resolves with the vault's URL once it logs that it listens. */
  readonly url: Promise<string>;
  output(): string;
  exited(): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Signals the process group (the command and whatever it started), if it is still there. */
  killGroup(signal: NodeJS.Signals): void;
}

/** Starts `argv` in a process group of its own (so nothing it starts outlives the test). */
function start(argv: readonly string[], options: { cwd: string; env: NodeJS.ProcessEnv; uid?: number; gid?: number }): Started {
  const [command = "", ...args] = argv;
  const child = spawn(command, args, {
    cwd: options.cwd,
    env: options.env,
    detached: true,
    stdio: ["ignore", "pipe", "pipe"],
    ...(options.uid === undefined ? {} : { uid: options.uid, gid: options.gid ?? options.uid }),
  });
  let output = "";
  const exit = once(child, "exit").then(([code, signal]) => ({ code: code as number | null, signal: signal as NodeJS.Signals | null }));
  const killGroup = (signal: NodeJS.Signals): void => {
    try {
      if (child.pid !== undefined) process.kill(-child.pid, signal);
    } catch {
      // the group is gone
    }
  };
  const onExit = (): void => killGroup("SIGKILL");
  process.once("exit", onExit);
  const url = new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${argv.join(" ")}: no "listening" line in time:\n${output}`)), 30_000);
    const onData = (chunk: Buffer): void => {
      output += chunk.toString();
      const match = /"url":"(http:\/\/[^"]+)"/.exec(output);
      if (match?.[1] !== undefined) {
        clearTimeout(timer);
        resolve(match[1]);
      }
    };
    child.stdout.on("data", onData);
    child.stderr.on("data", onData);
    void exit.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`${argv.join(" ")} exited (${signal ?? code}) before listening:\n${output}`));
    });
  });
  url.catch(() => undefined);
  return { child, url, output: () => output, exited: () => exit, killGroup };
}

async function stopGroup(started: Started | undefined): Promise<void> {
  if (started === undefined) return;
  started.killGroup("SIGKILL");
  await Promise.race([started.exited(), new Promise((resolve) => setTimeout(resolve, 5000))]);
}

/** The environment of a child without the npm_* variables of an `npm test` around this run. */
function cleanEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) if (!/^npm_/i.test(key)) env[key] = value;
  return { ...env, npm_config_update_notifier: "false", npm_config_fund: "false", npm_config_audit: "false", ...extra };
}

async function healthy(url: string): Promise<boolean> {
  try {
    return (await rawRequest(url, "/health")).status === 200;
  } catch {
    return false;
  }
}

/** A PUT whose body the test feeds by hand, so it is in flight for as long as the test wants. */
function startUpload(url: string, path: string, token: string, totalLength: number) {
  const { hostname, port } = new URL(url);
  const req = httpRequest({ host: hostname, port, method: "PUT", path, agent: false, headers: { authorization: `Bearer ${token}`, "content-length": totalLength } });
  const response = new Promise<{ status: number; body: string }>((resolve, reject) => {
    req.on("response", (res) => {
      let body = "";
      res.on("data", (chunk: Buffer) => (body += chunk.toString()));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on("error", reject);
  });
  response.catch(() => undefined);
  const write = (chunk: Buffer) => new Promise<void>((resolve) => (req.write(chunk) ? resolve() : req.once("drain", resolve)));
  return { req, response, write };
}

async function stagingFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true }).catch(() => []);
  return entries.filter((entry) => entry.isFile() && entry.name.startsWith(".tmp")).map((entry) => entry.name);
}

/**
 * With a vault running on the data dir `dataDir`: starts a 4 MiB upload, waits until the vault is
 * staging it, sends SIGTERM to `target` and waits until the vault logs that it got it, then
 * finishes the upload. Returns the upload's answer.
 */
async function uploadAcrossSigterm(url: string, dataDir: string, token: string, target: Started): Promise<{ status: number; body: string }> {
  const body = Buffer.alloc(4 * 1024 * 1024, 7);
  const upload = startUpload(url, "/objects/deploy/in-flight.bin", token, body.length);
  await upload.write(body.subarray(0, 1024 * 1024));
  await waitFor("the upload's staging file", async () => ((await stagingFiles(dataDir)).length > 0 ? true : undefined));
  const before = target.output().length;
  target.child.kill("SIGTERM");
  await waitFor("the vault to log the SIGTERM", () => (target.output().slice(before).includes('"signal":"SIGTERM"') ? true : undefined));
  await upload.write(body.subarray(1024 * 1024));
  upload.req.end();
  return upload.response;
}

/** A directory standing for an installed package: package.json (with `scripts`) and `dist` → the built tree. */
async function packageDir(root: string, scripts: Record<string, string> = {}): Promise<string> {
  const dir = join(root, "app");
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, "package.json"), JSON.stringify({ name: "artifact-vault-deploy-test", private: true, scripts }, null, 2));
  await symlink(BUILD_ROOT, join(dir, "dist"));
  return dir;
}

/** Whether this process may run the built CLI as the image's user: it is root, and that user can read node and the build. */
function canRunAsImageUser(): boolean {
  if (process.getuid?.() !== 0) return false;
  const probe = spawnSync(process.execPath, [CLI_PATH, "--version"], { cwd: tmpdir(), uid: IMAGE_UID, gid: IMAGE_UID, encoding: "utf8" });
  return probe.status === 0;
}

/** A temp root with a data dir and a tokens file in it (one token with every scope). */
async function dataDirWithToken(prefix: string): Promise<{ root: string; data: string; token: string }> {
  const root = await mkdtemp(join(tmpdir(), prefix));
  const data = join(root, "data");
  await mkdir(data);
  const { records, tokens } = await tokenRecords([{ name: "ops", scopes: ["read", "write", "delete"] }]);
  await writeTokensFile(join(data, "tokens.json"), records);
  return { root, data, token: tokens["ops"] ?? "" };
}

// ------------------------------------------------------------------------------------------------

void describe("deploy/dotenv.template and the configs", () => {
  void it("the template is KEY=VALUE lines that docker --env-file, compose and systemd read alike, and names every variable the configs use", () => {
    for (const [key, value] of Object.entries(dotenv)) {
      assert.doesNotMatch(value, /["'\s#]/, `${key}: quotes, spaces and inline comments are read differently by docker, compose and systemd`);
    }
    const template = read("deploy/dotenv.template");
    const mentioned = new Set([...template.matchAll(/^#?\s*([A-Z][A-Z0-9_]*)=/gm)].map((match) => match[1] ?? ""));
    // Set by systemd for the unit's StateDirectory=, not by users.
    const systemdOnly = new Set(["STATE_DIRECTORY"]);
    for (const file of ["deploy/config.yml", "deploy/replicas.yml", "deploy/storage.yaml.template"]) {
      for (const name of referencedVariables(read(file))) {
        if (!systemdOnly.has(name)) assert.ok(mentioned.has(name), `${file} uses \${${name}}, which deploy/dotenv.template does not mention`);
      }
    }
    const overrides = ["HOST", "PORT", "LOG_LEVEL", "STORAGE_CONFIG", "STORAGE_NAME", "AUTH_TOKENS_FILE"];
    const used = new Set([...overrides, ...["deploy/config.yml", "deploy/replicas.yml", "deploy/storage.yaml.template"].flatMap((file) => [...referencedVariables(read(file))])]);
    for (const name of mentioned) assert.ok(used.has(name), `deploy/dotenv.template sets ${name}, which nothing reads`);
  });

  void it("deploy/config.yml, the image's, loads with the template's environment: /data, 0.0.0.0:8080", async () => {
    const config = await loadConfig({ file: repoFile("deploy/config.yml"), env: dotenv, cwd: ROOT });
    assert.equal(config.http_host, "0.0.0.0");
    assert.equal(config.http_port, 8080);
    assert.deepEqual(config.storage.stores[config.storage.main], { type: "filesystem", config: { root_path: "/data" } });
    assert.equal(config.auth.tokens_file, "/data/tokens.json");
    assert.equal(config.workers, "auto");
    assert.equal(config.shutdown_timeout_ms, SHUTDOWN_TIMEOUT_S * 1000);
    // As an empty file gives, apart from where it listens and keeps things.
    const defaults = await loadConfig({ env: {}, cwd: ROOT });
    const backends = (list: typeof config.backends) => list.map(({ type, name, options }) => ({ type, name, options }));
    assert.deepEqual(backends(config.backends), backends(defaults.backends));
  });

  void it("under systemd, deploy/config.yml keeps everything in $STATE_DIRECTORY", async () => {
    const config = await loadConfig({ file: repoFile("deploy/config.yml"), env: { ...dotenv, STATE_DIRECTORY: "/var/lib/artifact-vault" }, cwd: ROOT });
    assert.deepEqual(config.storage.stores[config.storage.main], { type: "filesystem", config: { root_path: "/var/lib/artifact-vault" } });
    assert.equal(config.auth.tokens_file, "/var/lib/artifact-vault/tokens.json");
  });

  void it("deploy/storage.yaml.template, as STORAGE_CONFIG: STORAGE_NAME=bucket is S3 from the S3_* variables, local the data dir", async () => {
    const env = {
      ...dotenv,
      STORAGE_CONFIG: repoFile("deploy/storage.yaml.template"),
      STORAGE_NAME: "bucket",
      S3_ENDPOINT: "http://minio:9000",
      S3_ACCESS_KEY: "vault-key",
      S3_SECRET_KEY: "vault-secret",
    };
    const onS3 = await loadConfig({ file: repoFile("deploy/config.yml"), env, cwd: ROOT });
    assert.deepEqual(onS3.storage.stores[onS3.storage.main], {
      type: "s3",
      config: { bucket_name: "artifacts", endpoint_url: "http://minio:9000", region: "us-east-1", s3_access_key: "vault-key", s3_secret_key: "vault-secret", prefix: "vault/" },
    });
    // The template's empty values: AWS S3 with the credential chain.
    const onAws = await loadConfig({ file: repoFile("deploy/config.yml"), env: { ...dotenv, STORAGE_CONFIG: env.STORAGE_CONFIG, STORAGE_NAME: "bucket" }, cwd: ROOT });
    assert.deepEqual(onAws.storage.stores[onAws.storage.main], { type: "s3", config: { bucket_name: "artifacts", region: "us-east-1", prefix: "vault/" } });
    const local = await loadConfig({ file: repoFile("deploy/config.yml"), env: { ...env, STORAGE_NAME: "local" }, cwd: ROOT });
    assert.deepEqual(local.storage.stores[local.storage.main], { type: "filesystem", config: { root_path: "/data" } });
  });

  void it("deploy/replicas.yml loads with the template's environment and compose.replicas.yaml's: the shared bucket, Redis", async () => {
    const service = compose("compose.replicas.yaml").services["vault"] as ComposeService;
    const environment = Object.fromEntries(Object.entries(service.environment ?? {}).map(([key, value]) => [key, interpolate(String(value), dotenv)]));
    const config = await loadConfig({ file: repoFile("deploy/replicas.yml"), env: { ...dotenv, ...environment }, cwd: ROOT });
    assert.equal(config.storage.stores[config.storage.main]?.type, "s3");
    assert.equal(config.coordination.redis_url, "redis://redis:6379");
    assert.equal(config.http_port, 8080);
    assert.equal(config.shutdown_timeout_ms, SHUTDOWN_TIMEOUT_S * 1000, "the same drain as deploy/config.yml, which the stop timeouts are checked against");
  });
});

void describe("the Dockerfile", () => {
  void it("builds in a node:20 stage with the README's commands and runs a non-root stage with a volume, a HEALTHCHECK and an exec-form CMD", () => {
    const pkg = JSON.parse(read("package.json")) as { engines: { node: string }; bin: Record<string, string>; scripts: Record<string, string> };
    assert.ok(stages.length >= 2, "a multi-stage build");
    const nodeMajor = /(\d+)/.exec(pkg.engines.node)?.[1];
    for (const stage of stages) assert.match(stage.from, new RegExp(`^node:${nodeMajor}-`), `every stage on Node ${nodeMajor} (package.json engines)`);
    const build = stages[0] as Stage;
    const commands = build.instructions.filter((instruction) => instruction.keyword === "RUN").map((instruction) => instruction.args).join(" && ");
    assert.match(commands, /\bnpm ci\b/);
    assert.match(commands, /\bnpm run build\b/);
    assert.ok(pkg.scripts["build"] !== undefined);
    assert.match(commands, /\bnpm prune --omit=dev\b/);

    const user = only(runtime, "USER").args;
    assert.ok(!/^(0|root)(:|$)/.test(user), `USER ${user} is root`);
    assert.match(user, /^\d+(:\d+)?$/, "a numeric USER, which Kubernetes' runAsNonRoot can check");
    assert.deepEqual(execForm(only(runtime, "VOLUME")), ["/data"]);
    assert.equal(only(runtime, "STOPSIGNAL").args, "SIGTERM");
    assert.match(only(runtime, "HEALTHCHECK").args, /^(--[a-z-]+=\S+\s+)*CMD \[/, "HEALTHCHECK in exec form");

    // The CMD is node on the package's bin, not npm or a shell, with the vault's young-generation cap.
    assert.equal(dockerNode.node, "node");
    assert.deepEqual(dockerNode.flags, [SEMI_SPACE_CAP]);
    assert.equal(posix.normalize(dockerNode.script), posix.normalize(pkg.bin["artifact-vault"] ?? "?"));
    assert.equal(dockerNode.args[0], "serve");
    assert.equal(imageFileSource(configArgument(dockerCmd)), "deploy/config.yml");
    // The CLI the CMD runs is what the build stage made and the runtime stage copied.
    const distCopy = copies(runtime).find((copy) => copy.from === build.name && posix.join(workdir, dockerNode.script).startsWith(`${posix.join(workdir, copy.destination)}/`));
    assert.ok(distCopy !== undefined, `no COPY --from=${build.name} brings ${dockerNode.script} into ${workdir}`);
    // `docker exec vault artifact-vault tokens add ...`: the bin on the PATH, and the same tokens file as the server's.
    const runtimeRuns = runtime.instructions.filter((instruction) => instruction.keyword === "RUN").map((instruction) => instruction.args).join(" && ");
    assert.ok(runtimeRuns.includes(`ln -s ${posix.join(workdir, dockerNode.script)} /usr/local/bin/artifact-vault`), "artifact-vault on the PATH");
    assert.equal(imageEnv["AUTH_TOKENS_FILE"], "/data/tokens.json");
  });

  void it("its build context (.dockerignore) holds what the build copies and nothing of local state", () => {
    const dockerignore = read(".dockerignore");
    for (const stage of stages) {
      for (const copy of copies(stage).filter((each) => each.from === undefined)) {
        for (const source of copy.sources) {
          assert.ok(existsSync(repoFile(source)), `COPY ${source}: no such file in the repository`);
          assert.ok(inBuildContext(dockerignore, source.replace(/\/$/, "")), `COPY ${source}: excluded by .dockerignore`);
        }
      }
    }
    for (const file of ["src/cli/main.ts", "src/app.ts", "package-lock.json"]) assert.ok(inBuildContext(dockerignore, file), `${file} must be in the build context`);
    for (const file of ["node_modules/yaml/package.json", "dist/src/cli/main.js", "data/objects/x", "tokens.json", ".env", ".git/HEAD", "tests/integration/x.test.ts"]) {
      assert.ok(!inBuildContext(dockerignore, file), `${file} must stay out of the build context`);
    }
  });

  void it("its CMD serves here (as the image's user when run as root), its HEALTHCHECK passes, and SIGTERM lets an in-flight upload finish, then exits 0", async () => {
    const { root, data, token } = await dataDirWithToken("vault-docker-");
    let vault: Started | undefined;
    try {
      const app = await packageDir(root);
      const asImageUser = canRunAsImageUser();
      if (asImageUser) {
        await chmod(root, 0o755);
        for (const path of [data, join(data, "tokens.json")]) await chown(path, IMAGE_UID, IMAGE_UID);
      }
      const port = await freePort();
      // What `docker run -e PORT=...` would give it; the image's /data is the temp data dir, and the
      // test listens on loopback only.
      const env = cleanEnv({
        ...Object.fromEntries(Object.entries(imageEnv).map(([key, value]) => [key, value.replace(/^\/data(?=\/|$)/, data)])),
        STATE_DIRECTORY: data,
        HOST: "127.0.0.1",
        PORT: String(port),
      });
      const argv = dockerCmd.map((part) => (part === configArgument(dockerCmd) ? repoFile(imageFileSource(part)) : part));
      vault = start(argv, { cwd: app, env, ...(asImageUser ? { uid: IMAGE_UID } : {}) });
      const url = await vault.url;
      assert.equal(url, `http://127.0.0.1:${port}`);

      const healthcheck = execForm({ ...only(runtime, "HEALTHCHECK"), args: only(runtime, "HEALTHCHECK").args.replace(/^.*?CMD\s+/, "") });
      const check = spawnSync(healthcheck[0] === "node" ? process.execPath : (healthcheck[0] ?? ""), healthcheck.slice(1), { env, encoding: "utf8", timeout: 10_000 });
      assert.equal(check.status, 0, `HEALTHCHECK failed: ${check.stderr}`);

      const answer = await uploadAcrossSigterm(url, data, token, vault);
      assert.equal(answer.status, 200, answer.body);
      const exit = await vault.exited();
      assert.deepEqual(exit, { code: 0, signal: null }, vault.output());
      if (asImageUser) assert.equal(statSync(join(data, "objects")).uid, IMAGE_UID, "the image's user made the store in /data");
      const after = spawnSync(process.execPath, healthcheck.slice(1), { env, encoding: "utf8", timeout: 10_000 });
      assert.equal(after.status, 1, "the HEALTHCHECK fails once the vault is gone");
    } finally {
      await stopGroup(vault);
      await rm(root, { recursive: true, force: true });
    }
  });
});

void describe("compose.yaml and compose.replicas.yaml", () => {
  const grace = (service: ComposeService): number => seconds(service.stop_grace_period ?? "10s");

  void it("every file a service names exists; env files from the template are optional", () => {
    for (const file of ["compose.yaml", "compose.replicas.yaml"]) {
      for (const [name, service] of Object.entries(compose(file).services)) {
        const where = `${file}: ${name}`;
        if (service.build !== undefined) {
          const context = typeof service.build === "string" ? service.build : service.build.context;
          const dockerfile = typeof service.build === "string" ? "Dockerfile" : (service.build.dockerfile ?? "Dockerfile");
          assert.ok(existsSync(join(ROOT, context, dockerfile)), `${where}: builds ${context}/${dockerfile}, which does not exist`);
        }
        for (const volume of service.volumes ?? []) {
          const source = volume.split(":")[0] ?? "";
          if (source.startsWith(".") || isAbsolute(source)) assert.ok(existsSync(repoFile(source)), `${where}: mounts ${source}, which does not exist`);
          else assert.ok(Object.hasOwn(compose(file).volumes ?? {}, source), `${where}: volume ${source} is not declared`);
        }
        for (const envFile of service.env_file ?? []) {
          const entry = typeof envFile === "string" ? { path: envFile, required: true } : envFile;
          if (entry.required !== false) assert.ok(existsSync(repoFile(entry.path)), `${where}: env_file ${entry.path} does not exist (or say required: false)`);
        }
        for (const dependency of Array.isArray(service.depends_on) ? service.depends_on : Object.keys(service.depends_on ?? {})) {
          assert.ok(Object.hasOwn(compose(file).services, dependency), `${where}: depends on ${dependency}, which is not a service`);
        }
      }
    }
  });

  void it("compose.yaml runs the image's CMD on a /data volume, publishes the config's port, and waits longer than the drain", () => {
    const vault = compose("compose.yaml").services["vault"] as ComposeService;
    assert.equal(vault.build, ".");
    assert.equal(vault.command, undefined, "the Dockerfile's CMD (checked above) applies");
    assert.ok((vault.volumes ?? []).some((volume) => volume.split(":")[1] === "/data"), "a volume at /data");
    assert.deepEqual(vault.ports?.map((port) => interpolate(port, dotenv)), [`${dotenv["PORT"]}:${dotenv["PORT"]}`]);
    assert.deepEqual(vault.ports?.map((port) => interpolate(port, {})), ["8080:8080"], "without .env, the config's http_port");
    assert.ok(grace(vault) > SHUTDOWN_TIMEOUT_S + SHUTDOWN_GRACE_S, `stop_grace_period ${vault.stop_grace_period} is shorter than shutdown_timeout + ${SHUTDOWN_GRACE_S} s`);
  });

  void it("compose.replicas.yaml: two or more replicas of deploy/replicas.yml on the MinIO service's bucket and the Redis service, behind the nginx config", () => {
    const file = compose("compose.replicas.yaml");
    const vault = file.services["vault"] as ComposeService;
    assert.ok((vault.deploy?.replicas ?? 1) >= 2);
    assert.equal(imageFileSource(configArgument(vault.command ?? []), vault), "deploy/replicas.yml");
    const command = nodeCommand(vault.command ?? []);
    assert.deepEqual([command.node, ...command.flags, command.script, command.args[0]], [dockerNode.node, ...dockerNode.flags, dockerNode.script, "serve"], "node on the CLI, as the image's CMD");
    const env = vault.environment ?? {};
    assert.equal(env["STORAGE_CONFIG"], "", "the store is replicas.yml's bucket, whatever .env says");
    const endpoint = new URL(env["S3_ENDPOINT"] ?? "");
    assert.ok(Object.hasOwn(file.services, endpoint.hostname), `S3_ENDPOINT names ${endpoint.hostname}, not a service`);
    const minio = file.services[endpoint.hostname] as ComposeService;
    assert.equal(env["S3_ACCESS_KEY"], minio.environment?.["MINIO_ROOT_USER"]);
    assert.equal(env["S3_SECRET_KEY"], minio.environment?.["MINIO_ROOT_PASSWORD"]);
    assert.equal(env["S3_BUCKET"], file.services["minio-init"]?.environment?.["S3_BUCKET"], "minio-init creates the bucket the replicas use");
    assert.deepEqual(vault.depends_on, { "minio-init": { condition: "service_completed_successfully" }, redis: { condition: "service_healthy" } });
    assert.equal(new URL(env["REDIS_URL"] ?? "").hostname, "redis");
    assert.ok(Object.hasOwn(file.services, "redis"));
    assert.ok(grace(vault) > SHUTDOWN_TIMEOUT_S + SHUTDOWN_GRACE_S, `stop_grace_period ${vault.stop_grace_period}`);
    const tokens = (vault.volumes ?? []).find((volume) => volume.split(":")[1] === "/data");
    assert.ok(tokens !== undefined && Object.hasOwn(file.volumes ?? {}, tokens.split(":")[0] ?? ""), "one named volume at /data shares tokens.json");

    const lb = file.services["lb"] as ComposeService;
    assert.equal(imageFileSource("/etc/nginx/conf.d/default.conf", lb), "deploy/nginx-replicas.conf");
    const conf = read("deploy/nginx-replicas.conf");
    assert.match(conf, new RegExp(`server vault:${env["PORT"]};`), "the upstream is every replica of the vault service on its PORT");
    assert.deepEqual(lb.ports?.map((port) => interpolate(port, {})), [`8080:${/listen (\d+);/.exec(conf)?.[1]}`]);
  });
});

void describe("the replicas' setup runs: deploy/replicas.yml x2, S3, Redis, nginx with deploy/nginx-replicas.conf", () => {
  let s3: TestS3 | undefined;
  let redis: RedisServer | undefined;
  const started: Started[] = [];
  let nginx: Daemon | undefined;
  let root = "";

  before(async () => {
    root = await mkdtemp(join(tmpdir(), "vault-replicas-deploy-"));
  });
  after(async () => {
    await nginx?.stop();
    for (const replica of started) await stopGroup(replica);
    await redis?.stop();
    await s3?.close();
    await rm(root, { recursive: true, force: true });
  });

  void it("a write through the load balancer is read from each replica; /health says they coordinate through Redis; SIGTERM stops them with 0", async (t: TestContext) => {
    if (requireTool(t, "nginx") === undefined || requireTool(t, "redis-server") === undefined) return;
    s3 = await startTestS3({ conditionalWrites: true });
    redis = await startRedis();
    const { records, tokens } = await tokenRecords([{ name: "ci", scopes: ["read", "write"] }]);
    // The shared /data volume: tokens.json only.
    const shared = join(root, "shared");
    await mkdir(shared);
    await writeTokensFile(join(shared, "tokens.json"), records);
    const token = tokens["ci"] ?? "";

    const service = compose("compose.replicas.yaml").services["vault"] as ComposeService;
    const composeEnv = Object.fromEntries(Object.entries(service.environment ?? {}).map(([key, value]) => [key, interpolate(String(value), dotenv)]));
    const env = cleanEnv({
      ...dotenv,
      ...composeEnv,
      // Where this machine has them (compose names the services minio and redis instead).
      S3_ENDPOINT: s3.endpoint,
      S3_BUCKET: s3.bucket,
      S3_REGION: s3.region,
      S3_ACCESS_KEY: s3.accessKeyId,
      S3_SECRET_KEY: s3.secretAccessKey,
      S3_PREFIX: s3.storeConfig().prefix,
      REDIS_URL: redis.url,
      REDIS_KEY_PREFIX: `deploy-test-${process.pid}:`,
      AUTH_TOKENS_FILE: join(shared, "tokens.json"),
      HOST: "127.0.0.1",
      PORT: "0",
      WORKERS: "1",
    });
    const app = await packageDir(root);
    const argv = (service.command ?? []).map((part, index, all) => (all[index - 1] === "--config" ? repoFile(imageFileSource(part, service)) : part));
    for (let replica = 0; replica < 2; replica++) started.push(start(argv, { cwd: app, env }));
    const urls = await Promise.all(started.map((replica) => replica.url));

    // nginx with the compose file's config: the `vault` service's addresses are the two replicas.
    const conf = read("deploy/nginx-replicas.conf");
    const port = await freePort();
    const adapted = conf
      .replace(/server vault:\d+;/, urls.map((url) => `server ${new URL(url).host};`).join("\n    "))
      .replace(/listen \d+;/, `listen 127.0.0.1:${port};`);
    const dir = join(root, "nginx");
    for (const name of ["body", "proxy", "fastcgi", "uwsgi", "scgi"]) await mkdir(join(dir, "tmp", name), { recursive: true });
    await writeFile(join(dir, "default.conf"), adapted);
    await writeFile(
      join(dir, "nginx.conf"),
      `${process.getuid?.() === 0 ? "user root;\n" : ""}daemon off;
worker_processes 1;
pid ${join(dir, "nginx.pid")};
error_log ${join(dir, "error.log")} warn;
events { worker_connections 256; }
http {
  access_log ${join(dir, "access.log")};
${["body", "proxy", "fastcgi", "uwsgi", "scgi"].map((name) => `  ${name === "body" ? "client_body" : name}_temp_path ${join(dir, "tmp", name)};`).join("\n")}
  include ${join(dir, "default.conf")};
}
`,
    );
    nginx = spawnDaemon("nginx", ["-p", dir, "-c", join(dir, "nginx.conf"), "-e", join(dir, "error.log")], { cwd: dir, stdout: join(dir, "stdout.log"), stderr: join(dir, "stderr.log") });
    const lb = `http://127.0.0.1:${port}`;
    await waitFor("nginx in front of the replicas", async () => ((await healthy(lb)) ? true : undefined));

    const health = JSON.parse((await rawRequest(lb, "/health")).body.toString()) as { status: string; coordination: { mode: string; redis: string } };
    assert.equal(health.status, "healthy");
    assert.deepEqual(health.coordination, { mode: "redis", redis: "up" });

    const body = Buffer.alloc(3 * 1024 * 1024, 3);
    const put = await rawRequest(lb, "/objects/deploy/through-lb.bin", { method: "PUT", headers: { authorization: `Bearer ${token}` }, body });
    assert.equal(put.status, 200, put.body.toString());
    for (const url of urls) {
      const got = await rawRequest(url, "/objects/deploy/through-lb.bin", { headers: { authorization: `Bearer ${token}` } });
      assert.equal(got.status, 200);
      assert.ok(got.body.equals(body), `${url} reads the object written through the load balancer`);
    }
    const missing = await rawRequest(lb, "/objects/deploy/missing", { headers: { authorization: `Bearer ${token}` } });
    assert.equal(missing.status, 404);

    for (const replica of started) replica.child.kill("SIGTERM");
    for (const replica of started) assert.deepEqual(await replica.exited(), { code: 0, signal: null }, replica.output());
  });
});

void describe("deploy/artifact-vault.service", () => {
  const unit = parseUnit(read("deploy/artifact-vault.service"), "deploy/artifact-vault.service");
  const service = unit.get("Service") ?? new Map<string, string[]>();
  const one = (key: string): string => {
    const values = service.get(key) ?? [];
    assert.equal(values.length, 1, `[Service] ${key}= should be given once`);
    return values[0] as string;
  };
  const execStart = one("ExecStart").split(/\s+/);
  const execNode = nodeCommand(execStart);
  const stateDirectory = `/var/lib/${one("StateDirectory")}`;

  void it("runs node on the CLI directly as its own user, signals it with SIGTERM and waits longer than the drain, hardened", () => {
    assert.deepEqual([...unit.keys()], ["Unit", "Service", "Install"]);
    assert.equal(one("Type"), "simple");
    assert.ok(isAbsolute(execNode.node), "ExecStart names the node binary by its absolute path");
    assert.equal(posix.basename(execNode.node), "node");
    assert.deepEqual(execNode.flags, [SEMI_SPACE_CAP], "the vault's young-generation cap");
    const pkg = JSON.parse(read("package.json")) as { bin: Record<string, string> };
    assert.ok(execNode.script.endsWith(`/${posix.normalize(pkg.bin["artifact-vault"] ?? "?")}`), `ExecStart runs the package's bin: ${execNode.script}`);
    assert.deepEqual(execNode.args, ["serve", "--config", "/etc/artifact-vault/config.yml"]);
    assert.ok(!["root", "0"].includes(one("User")));
    assert.equal(one("KillSignal"), "SIGTERM");
    assert.equal(one("KillMode"), "mixed", "SIGTERM to the primary only, which stops its workers itself");
    assert.ok(seconds(one("TimeoutStopSec")) > SHUTDOWN_TIMEOUT_S + SHUTDOWN_GRACE_S, "TimeoutStopSec covers shutdown_timeout and the vault's grace");
    assert.equal(one("ProtectSystem"), "strict");
    assert.equal(one("NoNewPrivileges"), "yes");
    assert.ok(one("ReadWritePaths").split(/\s+/).includes(stateDirectory), `ReadWritePaths= has the data dir ${stateDirectory}`);
    assert.equal(one("WorkingDirectory"), stateDirectory);
    assert.ok(!service.has("MemoryDenyWriteExecute"), "V8's JIT needs writable, executable memory");
    assert.ok(one("EnvironmentFile").startsWith("-"), "the environment file is optional");
  });

  void it("passes `systemd-analyze verify`, and `systemd-analyze security` rates it OK", (t: TestContext) => {
    const analyze = requireTool(t, "systemd-analyze");
    if (analyze === undefined) return;
    let unitFile = repoFile("deploy/artifact-vault.service");
    const dir = mkdtempSync(join(tmpdir(), "vault-unit-"));
    try {
      // verify checks that ExecStart's binary exists: on a machine whose node is elsewhere, that one.
      if (!existsSync(execStart[0] ?? "")) {
        unitFile = join(dir, "artifact-vault.service");
        writeFileSync(unitFile, read("deploy/artifact-vault.service").replace(/^ExecStart=\S+/m, `ExecStart=${process.execPath}`));
      }
      const verify = spawnSync(analyze, ["verify", unitFile], { encoding: "utf8" });
      assert.equal(verify.status, 0, verify.stderr);
      assert.equal(verify.stderr.trim(), "", "no warnings");
      const security = spawnSync(analyze, ["security", "--offline=true", "--no-pager", unitFile], { encoding: "utf8" });
      const exposure = /Overall exposure level for \S+: ([\d.]+)/.exec(`${security.stdout}${security.stderr}`)?.[1];
      assert.ok(exposure !== undefined, security.stdout + security.stderr);
      assert.ok(Number(exposure) <= 2, `exposure ${exposure}`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  void it("its ExecStart, with the unit's environment, serves from $STATE_DIRECTORY and stops with 0 on its KillSignal", async () => {
    const { root, data } = await dataDirWithToken("vault-systemd-");
    let vault: Started | undefined;
    try {
      const app = await packageDir(root);
      const environment = Object.fromEntries((service.get("Environment") ?? []).map((pair) => pair.split("=", 2) as [string, string]));
      const env = cleanEnv({ ...environment, STATE_DIRECTORY: data, HOST: "127.0.0.1", PORT: "0", WORKERS: "1" });
      // /opt/artifact-vault is the package (here: the temp package dir), the config the repo's.
      const argv = [process.execPath, ...execNode.flags, execNode.script.replace(/^\/opt\/artifact-vault\//, `${app}/`), ...execNode.args].map((part) =>
        part === "/etc/artifact-vault/config.yml" ? repoFile("deploy/config.yml") : part,
      );
      vault = start(argv, { cwd: data, env });
      const url = await vault.url;
      assert.ok(!vault.output().includes(UNCAPPED_LINE), `the unit's node flags cap the young generation:\n${vault.output()}`);
      assert.ok(await healthy(url));
      assert.ok(existsSync(join(data, "objects")) || existsSync(join(data, "cache")), "the store is in $STATE_DIRECTORY");
      vault.child.kill(one("KillSignal") as NodeJS.Signals);
      assert.deepEqual(await vault.exited(), { code: 0, signal: null }, vault.output());
    } finally {
      await stopGroup(vault);
      await rm(root, { recursive: true, force: true });
    }
  });
});

void describe("SIGTERM through npm and npx", () => {
  const pkg = JSON.parse(read("package.json")) as { scripts: Record<string, string> };
  const startScript = pkg.scripts["start"] ?? "";
  const npm = findTool("npm") ?? "npm";
  const npx = findTool("npx") ?? "npx";

  /** The CLI as npm links a bin: a symlink in node_modules/.bin (executable, as `npm run build` leaves it). */
  async function withBin(dir: string): Promise<void> {
    try {
      accessSync(CLI_PATH, constants.X_OK);
    } catch {
      chmodSync(CLI_PATH, statSync(CLI_PATH).mode | 0o111);
    }
    await mkdir(join(dir, "node_modules", ".bin"), { recursive: true });
    await symlink(CLI_PATH, join(dir, "node_modules", ".bin", "artifact-vault"));
  }

  async function setup(prefix: string): Promise<{ root: string; app: string; data: string; token: string; env: NodeJS.ProcessEnv }> {
    const { root, data, token } = await dataDirWithToken(prefix);
    const app = await packageDir(root, { start: startScript });
    await withBin(app);
    return { root, app, data, token, env: cleanEnv({ STATE_DIRECTORY: data, HOST: "127.0.0.1", PORT: "0", WORKERS: "1" }) };
  }

  void it("package.json's start script execs node, so npm's SIGTERM reaches the vault", () => {
    assert.match(startScript, /^exec node --max-semi-space-size=4 dist\/src\/cli\/main\.js serve$/, "without `exec`, npm's `sh -c` stays between npm and node and does not pass SIGTERM on");
  });

  for (const [name, argv] of [
    ["`npm start -- --config FILE` drains", [npm, "start", "--", "--config", repoFile("deploy/config.yml")]],
    ["`npx -c 'exec artifact-vault serve --config FILE'` drains", [npx, "-c", `exec artifact-vault serve --config '${repoFile("deploy/config.yml")}'`]],
  ] as const) {
    void it(`${name}: SIGTERM to npm lets an in-flight upload finish, then npm exits 0 and nothing is left serving`, async () => {
      const { root, app, data, token, env } = await setup("vault-npm-");
      let vault: Started | undefined;
      try {
        vault = start(argv, { cwd: app, env });
        const url = await vault.url;
        assert.ok(!vault.output().includes(UNCAPPED_LINE), `the script's (or the bin's) node flags cap the young generation:\n${vault.output()}`);
        const answer = await uploadAcrossSigterm(url, data, token, vault);
        assert.equal(answer.status, 200, answer.body);
        assert.deepEqual(await vault.exited(), { code: 0, signal: null }, vault.output());
        assert.equal(await healthy(url), false, "the vault is gone with npm");
      } finally {
        await stopGroup(vault);
        await rm(root, { recursive: true, force: true });
      }
    });
  }

  void it("`node dist/src/cli/main.js serve`, without the young-generation cap the launchers pass, says so at start", async () => {
    const { root, app, env } = await setup("vault-uncapped-");
    let vault: Started | undefined;
    try {
      vault = start([process.execPath, CLI_PATH, "serve", "--config", repoFile("deploy/config.yml")], { cwd: app, env });
      await vault.url;
      assert.ok(vault.output().includes(UNCAPPED_LINE), vault.output());
      assert.ok(vault.output().includes(SEMI_SPACE_CAP), "the line names the flag");
    } finally {
      await stopGroup(vault);
      await rm(root, { recursive: true, force: true });
    }
  });

  void it("`npx artifact-vault serve` does not drain: SIGTERM to npm ends npm and its shell, and the vault goes on serving (the README says what to run instead)", async () => {
    const { root, app, env } = await setup("vault-npx-");
    let vault: Started | undefined;
    try {
      vault = start([npx, "artifact-vault", "serve", "--config", repoFile("deploy/config.yml")], { cwd: app, env });
      const url = await vault.url;
      vault.child.kill("SIGTERM");
      const exit = await vault.exited();
      assert.ok(exit.signal === "SIGTERM" || exit.code === 143, `npm exits as its shell did: ${JSON.stringify(exit)}`);
      assert.ok(
        await healthy(url),
        "the vault stopped with npx: if npm now passes SIGTERM on to `npx artifact-vault serve`, update the README's Deploy section and this test",
      );
      // The orphan still drains on a SIGTERM of its own.
      vault.killGroup("SIGTERM");
      await waitFor("the orphaned vault to stop", async () => ((await healthy(url)) ? undefined : true), 20_000);
    } finally {
      await stopGroup(vault);
      await rm(root, { recursive: true, force: true });
    }
  });
});
