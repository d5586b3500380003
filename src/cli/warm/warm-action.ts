/**
 * `cache warm`'s work: reads the inputs, tells what each file lists, turns them into sources,
 * runs them through the vault and prints the summary. Exit 1 (a `CliError`) when any item
 * failed or the run was interrupted; 2 for bad usage (nothing to warm, `--apt` without
 * `--suite`, a file that says nothing recognisable).
 */
import { setMaxListeners } from "node:events";
import { readFile } from "node:fs/promises";
import { basename, dirname, resolve } from "node:path";
import { CliError, usageError } from "../cli-errors.js";
import type { CliIo } from "../cli-io.js";
import { vaultUrl } from "../vault-connection.js";
import { aptSource, parseAptRequest, type AptRequest } from "./apt-source.js";
import { parseCargoLock } from "./cargo-lock.js";
import { cargoSource } from "./cargo-source.js";
import { parseGemfileLock } from "./gemfile-lock.js";
import { parseGoSum } from "./go-sum.js";
import { goSource } from "./go-source.js";
import { parseImageReference, parsePlatform, type Platform } from "./image-reference.js";
import { npmSource } from "./npm-source.js";
import { ociSource, type ImageInput } from "./oci-source.js";
import { parsePackageLock } from "./package-lock.js";
import { pathsSource } from "./paths-source.js";
import { pypiSource } from "./pypi-source.js";
import { rubygemsSource } from "./rubygems-source.js";
import { parseRequirements, type PinnedRequirement } from "./requirements-file.js";
import { VaultRequests } from "./vault-requests.js";
import { normalisePrefix, parsePathList, vaultBase } from "./vault-urls.js";
import type { WarmDeps, WarmOptions } from "./warm-options.js";
import { summaryLines, warmDisplay } from "./warm-progress.js";
import { runWarm, type WarmSource } from "./warm-run.js";
import type { UnwarmedInput } from "./unwarmed-input.js";

/** What a positional file lists. */
export type ListKind = "paths" | "requirements" | "package-lock" | "go-sum" | "cargo-lock" | "gemfile-lock";

export async function warmAction(files: readonly string[], options: WarmOptions, io: CliIo, deps: WarmDeps): Promise<void> {
  const base = vaultBase(vaultUrl(options, io));
  const apiKey = (options.apiKey ?? io.env["VAULT_API_KEY"])?.trim();
  const inputs = new Inputs(io, deps);
  const sources = await collectSources(files, options, base, inputs);
  if (sources.length === 0) {
    throw usageError("nothing to warm: give lists of vault paths (FILE or -), --requirements FILE, --package-lock FILE, --go-sum FILE, --cargo-lock FILE, --gemfile-lock FILE, --images FILE, --image REF or --apt PACKAGE");
  }

  const controller = new AbortController();
  // Each request in flight and each retry's wait listens to it: up to a few per concurrent request.
  setMaxListeners(4 * options.concurrency + 16, controller.signal);
  const signals = deps.signals ?? process;
  const interrupt = (): void => controller.abort(new CliError("interrupted"));
  signals.once("SIGINT", interrupt);
  signals.once("SIGTERM", interrupt);
  const requests = new VaultRequests({ base, apiKey: apiKey === "" ? undefined : apiKey, concurrency: options.concurrency, attempts: options.retries + 1, signal: controller.signal });
  const display = warmDisplay(io, deps.stderr ?? process.stderr, { quiet: options.quiet === true });
  let summary;
  try {
    summary = await runWarm(sources, requests, display, controller);
  } finally {
    display.stop();
    signals.off("SIGINT", interrupt);
    signals.off("SIGTERM", interrupt);
    await requests.close();
  }
  for (const line of summaryLines(summary)) io.out(line);
  if (summary.interrupted) throw new CliError("interrupted");
  const total = summary.fetched.length + summary.cached.length + summary.failures.length;
  if (summary.failures.length > 0) throw new CliError(`${summary.failures.length} of ${total} ${total === 1 ? "item" : "items"} could not be warmed`);
}

async function collectSources(files: readonly string[], options: WarmOptions, base: URL, inputs: Inputs): Promise<WarmSource[]> {
  const pathLists: Array<ReturnType<typeof parsePathList>> = [];
  const requirementFiles = [...(options.requirements ?? [])];
  // Each lockfile kind's files: those given with its option, then positional ones of that kind.
  const lockfiles = new Map<LockfileKind, Array<{ file: string; text: string | undefined }>>(
    LOCKFILE_KINDS.map((kind) => [kind, (options[LOCKFILES[kind].option] ?? []).map((file) => ({ file, text: undefined }))]),
  );
  for (const file of files) {
    const text = await inputs.read(file);
    const kind = listKind(file, text);
    if (kind === "requirements") requirementFiles.push(file);
    else if (kind === "paths") pathLists.push(parsePathList(text, base));
    else lockfiles.get(kind)?.push({ file, text });
  }

  const sources: WarmSource[] = [];
  const paths = pathLists.flat();
  if (paths.length > 0) sources.push(pathsSource(paths, base));

  const pinned: PinnedRequirement[] = [];
  const problems: Problems = [];
  const visited = new Set<string>();
  const readRequirements = async (file: string, from: string | undefined): Promise<void> => {
    const path = file === "-" ? "-" : resolve(from === undefined ? inputs.cwd : dirname(from), file);
    if (visited.has(path)) return;
    visited.add(path);
    const listing = parseRequirements(await inputs.read(file === "-" ? "-" : path, file));
    pinned.push(...listing.pinned);
    for (const entry of listing.unpinned) problems.push({ label: `pypi: ${entry.text}`, reason: entry.reason, skipped: false });
    for (const entry of listing.skipped) problems.push({ label: `pypi: ${entry.text}`, reason: entry.reason, skipped: true });
    for (const include of listing.includes) await readRequirements(include, path === "-" ? undefined : path);
  };
  for (const file of requirementFiles) await readRequirements(file, undefined);
  if (pinned.length > 0 || problems.length > 0) sources.push(withProblems(pypiSource(pinned, normalisePrefix(options.pypiPrefix), base), problems));

  for (const [kind, given] of lockfiles) {
    const source = await LOCKFILES[kind].read(given, options, base, inputs);
    if (source !== undefined) sources.push(source);
  }

  const images: ImageInput[] = [];
  const imageProblems: Problems = [];
  const addImage = (text: string): void => {
    try {
      images.push({ text, image: parseImageReference(text) });
    } catch (error) {
      imageProblems.push({ label: `image: ${text}`, reason: (error as Error).message, skipped: false });
    }
  };
  for (const file of options.images ?? []) for (const line of meaningfulLines(await inputs.read(file))) addImage(line);
  for (const reference of options.image ?? []) addImage(reference);
  if (images.length > 0 || imageProblems.length > 0) {
    let platforms: Platform[];
    try {
      platforms = (options.platform ?? []).map(parsePlatform);
    } catch (error) {
      throw usageError(`--platform: ${(error as Error).message}`);
    }
    sources.push(withProblems(ociSource(images, normalisePrefix(options.ociPrefix), platforms, base), imageProblems));
  }

  if (options.apt !== undefined && options.apt.length > 0) {
    if (options.suite === undefined || options.suite.trim() === "") throw usageError("--apt needs --suite (the codename to take the packages from, e.g. bookworm)");
    let packages: AptRequest[];
    try {
      packages = options.apt.map(parseAptRequest);
    } catch (error) {
      throw usageError(`--apt: ${(error as Error).message}`);
    }
    for (const [flag, values] of [
      ["--suite", [options.suite]],
      ["--component", options.component],
      ["--arch", options.arch],
    ] as const) {
      for (const value of values) if (!/^[A-Za-z0-9][A-Za-z0-9._/-]*$/.test(value) || value.includes("..")) throw usageError(`${flag}: not a valid name: ${JSON.stringify(value)}`);
    }
    sources.push(aptSource(packages, { prefix: normalisePrefix(options.aptPrefix), suite: options.suite.trim(), components: options.component, architectures: options.arch }, base));
  } else if (options.suite !== undefined) {
    throw usageError("--suite is for --apt: name the Debian packages to warm");
  }
  return sources;
}

/** Inputs that name nothing to fetch: `skipped` ones are not for the vault, the others failures. */
type Problems = Array<{ label: string; reason: string; skipped: boolean }>;

/** A source whose inputs had problems found while reading them (unpinned lines, git dependencies): listed first. */
function withProblems(source: WarmSource, problems: Readonly<Problems>): WarmSource {
  return {
    run: async (context) => {
      for (const problem of problems) {
        if (problem.skipped) context.skipped(problem.label, problem.reason);
        else context.failed(problem.label, problem.reason);
      }
      await source.run(context);
    },
  };
}

/** Lockfiles: what `cache warm` reads from each (a parse error is bad usage naming the file). */
type LockfileKind = Exclude<ListKind, "paths" | "requirements">;
const LOCKFILE_KINDS: readonly LockfileKind[] = ["package-lock", "go-sum", "cargo-lock", "gemfile-lock"];

/** What a lockfile names: items to warm, and inputs that are not for the vault or name nothing valid. */
interface LockfileListing<Item> {
  readonly items: readonly Item[];
  readonly skipped: readonly UnwarmedInput[];
  readonly invalid: readonly UnwarmedInput[];
}

interface LockfileFormat<Item> {
  /** The option that names such files (`--package-lock`), as a key of the options. */
  readonly option: "packageLock" | "goSum" | "cargoLock" | "gemfileLock";
  /** Before each problem's text in the summary: the ecosystem (`npm`). */
  readonly label: string;
  parse(text: string): LockfileListing<Item>;
  /** The backend's prefix, from its option. */
  prefix(options: WarmOptions): string;
  source(items: readonly Item[], prefix: string, base: URL): WarmSource;
}

/** A lockfile kind with its item type sealed in: reads its files into one source, if they name anything. */
interface LockfileReader {
  readonly option: LockfileFormat<unknown>["option"];
  read(files: ReadonlyArray<{ file: string; text: string | undefined }>, options: WarmOptions, base: URL, inputs: Inputs): Promise<WarmSource | undefined>;
}

function lockfileReader<Item>(format: LockfileFormat<Item>): LockfileReader {
  return {
    option: format.option,
    read: async (files, options, base, inputs) => {
      const items: Item[] = [];
      const problems: Problems = [];
      for (const { file, text } of files) {
        let listing: LockfileListing<Item>;
        try {
          listing = format.parse(text ?? (await inputs.read(file)));
        } catch (error) {
          throw usageError(`${file}: ${(error as Error).message}`);
        }
        items.push(...listing.items);
        for (const entry of listing.skipped) problems.push({ label: `${format.label}: ${entry.text}`, reason: entry.reason, skipped: true });
        for (const entry of listing.invalid) problems.push({ label: `${format.label}: ${entry.text}`, reason: entry.reason, skipped: false });
      }
      if (items.length === 0 && problems.length === 0) return undefined;
      return withProblems(format.source(items, normalisePrefix(format.prefix(options)), base), problems);
    },
  };
}

const LOCKFILES: Readonly<Record<LockfileKind, LockfileReader>> = {
  "package-lock": lockfileReader({
    option: "packageLock",
    label: "npm",
    parse: (text) => {
      const { tarballs, skipped } = parsePackageLock(text);
      return { items: tarballs, skipped, invalid: [] };
    },
    prefix: (options) => options.npmPrefix,
    source: npmSource,
  }),
  "go-sum": lockfileReader({
    option: "goSum",
    label: "go",
    parse: (text) => {
      const { files, problems } = parseGoSum(text);
      return { items: files, skipped: [], invalid: problems };
    },
    prefix: (options) => options.goPrefix,
    source: goSource,
  }),
  "cargo-lock": lockfileReader({
    option: "cargoLock",
    label: "cargo",
    parse: (text) => {
      const { crates, skipped, invalid } = parseCargoLock(text);
      return { items: crates, skipped, invalid };
    },
    prefix: (options) => options.cargoPrefix,
    source: cargoSource,
  }),
  "gemfile-lock": lockfileReader({
    option: "gemfileLock",
    label: "rubygems",
    parse: (text) => {
      const { gems, skipped, invalid } = parseGemfileLock(text);
      return { items: gems, skipped, invalid };
    },
    prefix: (options) => options.rubygemsPrefix,
    source: rubygemsSource,
  }),
};

/**
 * What a positional file lists: a requirements file or a lockfile by its name, else by its
 * content (a JSON object with `lockfileVersion`; lines of paths and URLs; `name==version`
 * lines). Images and Debian package names look alike, so those need their flags.
 */
export function listKind(file: string, text: string): ListKind {
  const name = basename(file).toLowerCase();
  if (name === "package-lock.json" || name === "npm-shrinkwrap.json") return "package-lock";
  if (name === "go.sum") return "go-sum";
  if (name === "cargo.lock") return "cargo-lock";
  if (name === "gemfile.lock" || name === "gems.locked") return "gemfile-lock";
  if (/requirements.*\.txt$/.test(name) || /constraints.*\.txt$/.test(name)) return "requirements";
  const trimmed = text.trimStart();
  if (trimmed.startsWith("{") && /"lockfileVersion"\s*:/.test(trimmed)) return "package-lock";
  if (/^\[\[package\]\]\s*$/m.test(text) && /^version = /m.test(text)) return "cargo-lock";
  if (/^(GEM|GIT|PATH)\r?\n {2}remote: /m.test(text)) return "gemfile-lock";
  const lines = meaningfulLines(text);
  if (lines.length > 0 && lines.every((line) => GO_SUM_LINE.test(line))) return "go-sum";
  const pathLike = (line: string): boolean => line.startsWith("/") || /^[A-Za-z][A-Za-z0-9+.-]*:\/\//.test(line) || (line.includes("/") && !/[=<>~!]=/.test(line));
  if (lines.every(pathLike)) return "paths";
  if (lines.some((line) => /^[A-Za-z0-9][A-Za-z0-9._-]*(?:\[[^\]]*\])?\s*(?:===?|[<>~!]=)/.test(line))) return "requirements";
  const example = lines.find((line) => !pathLike(line)) ?? "";
  throw usageError(
    `${file === "-" ? "standard input" : file}: cannot tell what it lists (${JSON.stringify(example.slice(0, 60))} is no vault path or URL); ` +
      "say it with --requirements, --package-lock, --go-sum, --cargo-lock, --gemfile-lock, --images or --apt",
  );
}

/** `<module> <version>[/go.mod] h1:<hash>`. */
const GO_SUM_LINE = /^\S+ v\S+ h[0-9]+:\S+$/;

function meaningfulLines(text: string): string[] {
  return text
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter((line) => line !== "" && !line.startsWith("#"));
}

/** Reads input files (relative to the working directory) and standard input (once). */
class Inputs {
  readonly cwd: string;
  #stdin: Promise<string> | undefined;

  constructor(
    io: CliIo,
    private readonly deps: WarmDeps,
  ) {
    this.cwd = io.cwd;
  }

  async read(file: string, shown: string = file): Promise<string> {
    if (file === "-") {
      this.#stdin ??= readAll(this.deps.stdin ?? process.stdin);
      return this.#stdin;
    }
    try {
      return await readFile(resolve(this.cwd, file), "utf8");
    } catch (error) {
      throw new CliError(`cannot read ${shown}: ${fsReason(error)}`, undefined, { cause: error });
    }
  }
}

async function readAll(stream: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(typeof chunk === "string" ? Buffer.from(chunk) : chunk);
  return Buffer.concat(chunks).toString("utf8");
}

function fsReason(error: unknown): string {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  const reasons: Record<string, string> = { ENOENT: "no such file or directory", EACCES: "permission denied", EISDIR: "it is a directory" };
  return (code === undefined ? undefined : reasons[code]) ?? (error instanceof Error ? error.message : String(error));
}
