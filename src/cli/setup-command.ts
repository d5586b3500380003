/**
 * `artifact-vault setup <tool> --url URL [--token T] [--prefix P] [--write [--root DIR]]`:
 * prints the configuration that points a client (pip, uv, npm, pnpm, yarn, docker, containerd,
 * podman/skopeo/buildah, apt, go, maven, gem, bundler, hf) at the vault — the README's settings — or, with `--write`, puts it
 * into the file the client reads, merged into what is there and after a backup of any file it
 * changes (see `setup/write-config.ts`).
 *
 * - Standard output: without `--write`, each file's settings under a comment naming the file;
 *   with it, one line per file saying what was done. Standard error: notes (what to do next,
 *   what would override the file). The token appears only in the files' text, never in a note
 *   or an error.
 * - Per-user files (pip, uv, npm, pnpm, yarn, podman) are found from `$HOME` and the variables
 *   each tool reads (`XDG_CONFIG_HOME`, `PIP_CONFIG_FILE`, `npm_config_userconfig`, ...). System
 *   files (apt, containerd) are written only by root, or below `--root DIR` (as if DIR were /).
 *   docker's daemon.json and hf's environment variables are printed only.
 * - Exit codes: 0 done; 1 a file could not be read, merged or written; 2 bad usage.
 */
import { Argument, type Command } from "commander";
import { readFile, stat } from "node:fs/promises";
import { isAbsolute, join, resolve } from "node:path";
import { usageError } from "./cli-errors.js";
import type { CliIo } from "./cli-io.js";
import { SETUP_TOOL_NAMES, SETUP_TOOLS, setupTool } from "../client-setup/setup-tools.js";
import type { AptChoices, SetupInput, SetupTool, ToolOption } from "../client-setup/setup-tool.js";
import { parseArchiveName, parseHostName, parseKeyringPath, parsePrefix, parseToken, parseVaultUrl } from "../client-setup/vault-address.js";
import { commitWrite, prepareWrite, type PreparedWrite, type WriteOutcome } from "./write-config.js";

/** What the command touches besides the CLI's io; tests hand in their own. */
export interface SetupDeps {
  /** Whether this process may write system files without `--root` (default: it runs as root). */
  readonly isRoot?: () => boolean;
}

interface SetupOptions {
  readonly url?: string;
  readonly token?: string;
  readonly prefix?: string;
  readonly write?: boolean;
  readonly root?: string;
  readonly registry?: string;
  readonly suite?: string[];
  readonly component?: string[];
  readonly signedBy?: string;
  readonly proxy?: boolean;
  readonly proxyHost?: string[];
}

/** The flag of each tool-specific option, and whether it was given. */
const TOOL_OPTIONS: Readonly<Record<ToolOption, { flag: string; given: (options: SetupOptions) => boolean }>> = {
  registry: { flag: "--registry", given: (options) => options.registry !== undefined },
  suite: { flag: "--suite", given: (options) => (options.suite ?? []).length > 0 },
  component: { flag: "--component", given: (options) => (options.component ?? []).length > 0 },
  signedBy: { flag: "--signed-by", given: (options) => options.signedBy !== undefined },
  proxy: { flag: "--proxy", given: (options) => options.proxy === true },
  proxyHost: { flag: "--proxy-host", given: (options) => (options.proxyHost ?? []).length > 0 },
};

/** Repeatable list options also take several values in one (`--suite "bookworm bookworm-updates"`). */
const collect = (value: string, previous: string[] = []): string[] => [...previous, ...value.split(/[\s,]+/).filter((part) => part !== "")];

export function registerSetupCommand(program: Command, io: CliIo, deps: SetupDeps = {}): void {
  const tools = SETUP_TOOLS.map((tool) => `  ${[tool.name, ...(tool.aliases ?? [])].join(", ").padEnd(25)}${tool.summary}`).join("\n");
  program
    .command("setup")
    .description("print (or with --write, write) the configuration that points a client at the vault")
    .addArgument(new Argument("<tool>", "the client to set up").choices(SETUP_TOOL_NAMES))
    .option("--url <url>", "the vault's root URL, e.g. http://vault.internal:8080 (default: $VAULT_URL)")
    .option("--token <token>", "a vault token with the read scope, for a vault with auth.proxy: token")
    .option("--prefix <path>", "where the vault serves this client's backend (default: /pypi/, /npm/, /v2/, /debian/, /go/, /maven/, /rubygems/ or /hf/)")
    .option("--write", "write it into the client's own file (after a backup of any file it changes)")
    .option("--root <dir>", "with --write: write below DIR as if it were / (system files need it unless run as root)")
    .option("--registry <host>", "podman, containerd, docker: the registry the vault mirrors (default: docker.io)")
    .option("--suite <suite>", "apt: a suite to fetch through the vault; repeat for several (default on Debian: <codename> <codename>-updates)", collect)
    .option("--component <name>", "apt: a component; repeat for several (default: main)", collect)
    .option("--signed-by <file>", "apt: the archive's keyring (default on Debian: /usr/share/keyrings/debian-archive-keyring.gpg)")
    .option("--proxy", "apt: proxy mode (Acquire::http::Proxy) instead of a source through the vault")
    .option("--proxy-host <host>", "apt: proxy mode for this mirror host only; repeat for several", collect)
    .addHelpText(
      "after",
      `
Clients:
${tools}

Without --write the settings are printed, each file's under a comment naming it. With --write
they are merged into that file (other settings kept), a changed file's previous version kept as
<file>.bak-<time> (apt's as <file>.<time>.bak). Per-user files follow $HOME and the client's own
variables (XDG_CONFIG_HOME, PIP_CONFIG_FILE, UV_CONFIG_FILE, npm_config_userconfig,
REGISTRY_AUTH_FILE, GOENV, BUNDLE_USER_CONFIG). apt's and containerd's files are under /etc:
written as root, or below --root DIR. docker's daemon.json and hf's variables are printed only;
an existing ~/.m2/settings.xml that setup did not write is left alone.`,
    )
    .action(async (toolName: string, options: SetupOptions) => {
      const tool = setupTool(toolName);
      if (tool === undefined) throw usageError(`unknown tool ${JSON.stringify(toolName)}`);
      await runSetup(tool, toolName, options, io, deps);
    });
}

async function runSetup(tool: SetupTool, toolName: string, options: SetupOptions, io: CliIo, deps: SetupDeps): Promise<void> {
  for (const [option, { flag, given }] of Object.entries(TOOL_OPTIONS) as Array<[ToolOption, (typeof TOOL_OPTIONS)[ToolOption]]>) {
    if (given(options) && !tool.options.includes(option)) throw usageError(`${flag} does not apply to ${toolName}`);
  }
  if (options.root !== undefined && options.write !== true) throw usageError("--root goes with --write");
  const input = await setupInput(tool, options, io);
  const plan = tool.plan(input);
  const note = (text: string): void => io.err(`note: ${text}`);

  if (options.write !== true) {
    plan.files.forEach((file, index) => {
      if (index > 0) io.out("");
      io.out(`${file.comment} ${file.path}`);
      io.out(file.snippet.replace(/\n$/, ""));
    });
    plan.notes.forEach(note);
    return;
  }

  if (plan.printOnly !== undefined) throw usageError(plan.printOnly);
  const root = options.root === undefined ? undefined : resolve(io.cwd, options.root);
  if (root !== undefined && !(await stat(root).catch(() => undefined))?.isDirectory()) throw usageError(`--root: ${root} is not a directory`);
  const isRoot = (deps.isRoot ?? (() => process.getuid?.() === 0))();
  const system = plan.files.find((file) => file.system);
  if (system !== undefined && root === undefined && !isRoot) {
    throw usageError(`${system.path} is a system file: run setup as root (e.g. with sudo), or write below a directory with --root DIR`);
  }
  // Every file is read and merged before any is written: one that cannot be merged changes nothing.
  const prepared: PreparedWrite[] = [];
  for (const file of plan.files) prepared.push(await prepareWrite(file, root));
  // Said as each is done: if a later one fails, what was already written (and its backup) is known.
  for (const write of prepared) io.out(describeOutcome(await commitWrite(write, io.now(), isRoot)));
  [...prepared.flatMap((write) => write.notes), ...plan.notes].forEach(note);
}

function describeOutcome(outcome: WriteOutcome): string {
  const narrowed = outcome.narrowed === true ? "; now readable by its owner only, as it holds the token" : "";
  switch (outcome.status) {
    case "created":
      return `created ${outcome.target}`;
    case "unchanged":
      return `unchanged ${outcome.target} (it already says so)`;
    default:
      return `updated ${outcome.target} (the previous version is kept as ${outcome.backup ?? "?"}${narrowed})`;
  }
}

async function setupInput(tool: SetupTool, options: SetupOptions, io: CliIo): Promise<SetupInput> {
  const fromEnv = io.env["VAULT_URL"]?.trim();
  const [url, source] = options.url !== undefined ? [options.url, "--url"] : fromEnv !== undefined && fromEnv !== "" ? [fromEnv, "VAULT_URL"] : [undefined, ""];
  if (url === undefined) throw usageError("--url: give the vault's URL (e.g. --url http://vault.internal:8080), or set VAULT_URL");
  const home = io.env["HOME"];
  if (home === undefined || !isAbsolute(home)) throw usageError("HOME is not set (or not an absolute path): it says where the per-user files are");
  const proxyHosts = options.proxyHost ?? [];
  const proxy = options.proxy === true || proxyHosts.length > 0;
  const apt: AptChoices = {
    suites: (options.suite ?? []).map((suite) => parseArchiveName(suite, "--suite")),
    components: (options.component ?? []).map((component) => parseArchiveName(component, "--component")),
    signedBy: options.signedBy === undefined ? undefined : parseKeyringPath(options.signedBy),
    proxy,
    proxyHosts: proxyHosts.map((host) => parseHostName(host, "--proxy-host")),
    release: tool.options.includes("suite") && !proxy ? await osRelease(options.root === undefined ? "/" : resolve(io.cwd, options.root)) : undefined,
  };
  return {
    vault: parseVaultUrl(url, source),
    prefix: options.prefix === undefined ? undefined : parsePrefix(options.prefix),
    token: options.token === undefined ? undefined : parseToken(options.token),
    home,
    env: io.env,
    registry: parseHostName(options.registry ?? "docker.io", "--registry"),
    apt,
  };
}

/** `ID` and `VERSION_CODENAME` of `<root>/etc/os-release` (or `<root>/usr/lib/os-release`), when there is one. */
async function osRelease(root: string): Promise<AptChoices["release"]> {
  for (const path of ["etc/os-release", "usr/lib/os-release"]) {
    let text: string;
    try {
      text = await readFile(join(root, path), "utf8");
    } catch {
      continue;
    }
    const field = (name: string): string | undefined => {
      const match = new RegExp(`^${name}=(?:"([^"]*)"|'([^']*)'|(\\S*))\\s*$`, "m").exec(text);
      const value = match?.[1] ?? match?.[2] ?? match?.[3];
      return value === undefined || value === "" ? undefined : value;
    };
    return { id: field("ID"), codename: field("VERSION_CODENAME") };
  }
  return undefined;
}
