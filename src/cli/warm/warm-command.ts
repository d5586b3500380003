/**
 * `artifact-vault cache warm`: fills the vault's cache ahead of time from lists of what builds
 * will need — vault paths or URLs, a pinned `requirements.txt`, a `package-lock.json`, image
 * references, Debian package names — through the vault itself (it fetches from its upstreams;
 * warm never goes around it). Concurrent, resumable (cached items are skipped without a
 * download), with a progress bar on a terminal and a summary at the end; exit 1 if any item
 * failed. The work is in `warm-action.ts`, loaded only when the command runs.
 */
import { InvalidArgumentError, type Command } from "commander";
import type { CliIo } from "../cli-io.js";
import { DEFAULT_VAULT_URL } from "../vault-connection.js";
import type { WarmDeps, WarmOptions } from "./warm-options.js";

export const WARM_DEFAULTS = {
  pypiPrefix: "/pypi/",
  npmPrefix: "/npm/",
  ociPrefix: "/v2/",
  aptPrefix: "/debian/",
  goPrefix: "/go/",
  cargoPrefix: "/cargo/",
  rubygemsPrefix: "/rubygems/",
  concurrency: 8,
  retries: 3,
} as const;

export function registerWarmCommand(cache: Command, io: CliIo, deps: WarmDeps = {}): void {
  const collect = (value: string, previous: readonly string[] | undefined): string[] => [...(previous ?? []), value];
  cache
    .command("warm")
    .description("fill the cache ahead of builds: vault paths or URLs, requirements.txt, package-lock.json, go.sum, Cargo.lock, Gemfile.lock, images, Debian packages")
    .argument("[files...]", "lists of vault paths or URLs, one per line (- for standard input); requirements*.txt, package-lock.json, go.sum, Cargo.lock and Gemfile.lock files are recognised")
    .option("-r, --requirements <file>", "a pinned pip requirements file (repeatable; - for standard input)", collect)
    .option("--package-lock <file>", "a package-lock.json or npm-shrinkwrap.json (repeatable)", collect)
    .option("--go-sum <file>", "a go.sum: every module version's source and go.mod it records (repeatable)", collect)
    .option("--cargo-lock <file>", "a Cargo.lock: every crates.io crate it pins (repeatable)", collect)
    .option("--gemfile-lock <file>", "a Gemfile.lock: every gem of its GEM sections (repeatable)", collect)
    .option("--images <file>", "a file of image references, one per line (repeatable; - for standard input)", collect)
    .option("--image <refs...>", "image references, e.g. debian:12 or ghcr.io/org/app@sha256:…")
    .option("--apt <packages...>", "Debian package names (name or name=version) of an APT backend; needs --suite")
    .option("--suite <suite>", "the APT suite (codename) to take the packages from, e.g. bookworm")
    .option("--component <names...>", "APT components to look in", ["main"])
    .option("--arch <architectures...>", "APT architectures to warm", ["amd64"])
    .option("--platform <platforms...>", "only these platforms of a multi-platform image, e.g. linux/amd64 linux/arm64/v8 (default: all)")
    .option("--pypi-prefix <path>", "where the vault serves its pypi backend", WARM_DEFAULTS.pypiPrefix)
    .option("--npm-prefix <path>", "where the vault serves its npm backend", WARM_DEFAULTS.npmPrefix)
    .option("--oci-prefix <path>", "where the vault serves the registry API (/v2/<backend name>/ with several OCI backends)", WARM_DEFAULTS.ociPrefix)
    .option("--apt-prefix <path>", "where the vault serves the APT backend's mirror", WARM_DEFAULTS.aptPrefix)
    .option("--go-prefix <path>", "where the vault serves its go backend", WARM_DEFAULTS.goPrefix)
    .option("--cargo-prefix <path>", "where the vault serves its cargo backend (for crates.io)", WARM_DEFAULTS.cargoPrefix)
    .option("--rubygems-prefix <path>", "where the vault serves its rubygems backend (for rubygems.org)", WARM_DEFAULTS.rubygemsPrefix)
    .option("-j, --concurrency <n>", "requests to the vault at a time (1-64)", integerIn(1, 64), WARM_DEFAULTS.concurrency)
    .option("--retries <n>", "retries of a request that failed on the way (connection, 429, 502-504) (0-10)", integerIn(0, 10), WARM_DEFAULTS.retries)
    .option("-q, --quiet", "no line per item: the summary only")
    .option("--url <url>", `the vault's base URL (default: $VAULT_URL, else ${DEFAULT_VAULT_URL})`)
    .option("--api-key <token>", "a token, when the vault's proxy routes need one (default: $VAULT_API_KEY)")
    .addHelpText(
      "after",
      `
Everything goes through the vault, which fetches from its configured upstreams; URLs of other
hosts are refused. Items the vault already has are skipped without a download, so a second run
fetches nothing. Exit codes: 0 all warmed, 1 some item failed (each listed with its reason),
2 bad usage.`,
    )
    .action(async (files: string[], options: WarmOptions) => {
      const { warmAction } = await import("./warm-action.js");
      await warmAction(files, options, io, deps);
    });
}

function integerIn(min: number, max: number): (value: string) => number {
  return (value) => {
    const number = Number(value);
    if (!/^\d+$/.test(value.trim()) || number < min || number > max) throw new InvalidArgumentError(`expected a whole number from ${min} to ${max}`);
    return number;
  };
}
