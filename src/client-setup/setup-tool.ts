/**
 * What `artifact-vault setup <tool>` knows about one client: where the client reads its
 * configuration and the text that points it at the vault. A tool's `plan` is pure — it reads no
 * file and no environment of its own; everything it needs is in `SetupInput` — so the text for
 * every tool is unit-tested as strings, and one writer (`write-config.ts`) does the I/O for all.
 *
 * The token, when given, appears only in the files' text: never in `notes` or in an error message.
 */
import type { VaultAddress } from "./vault-address.js";

/** Options some tools take besides `--url`, `--token`, `--prefix`, `--write` and `--root`. */
export type ToolOption = "registry" | "suite" | "component" | "signedBy" | "proxy" | "proxyHost";

export interface AptChoices {
  /** `--suite`s; empty: the tool picks from the release (see `release`). */
  readonly suites: readonly string[];
  readonly components: readonly string[];
  readonly signedBy: string | undefined;
  /** Proxy mode (`Acquire::http::Proxy`) instead of a sources file. */
  readonly proxy: boolean;
  /** Proxy mode for these hosts only. */
  readonly proxyHosts: readonly string[];
  /** `ID` and `VERSION_CODENAME` of the machine's `/etc/os-release` (under `--root`), when readable. */
  readonly release: { readonly id: string | undefined; readonly codename: string | undefined } | undefined;
}

export interface SetupInput {
  readonly vault: VaultAddress;
  /** The backend's path on the vault, normalised (`/pypi/`), or undefined for the tool's default. */
  readonly prefix: string | undefined;
  readonly token: string | undefined;
  /** The user's home directory (absolute). */
  readonly home: string;
  /** The environment the tool itself would see (its config-file variables: `XDG_CONFIG_HOME`, `PIP_CONFIG_FILE`, ...). */
  readonly env: Readonly<Record<string, string | undefined>>;
  /** Container tools: the registry the vault mirrors (`docker.io`). */
  readonly registry: string;
  readonly apt: AptChoices;
}

/** A file's new text, and what the user should know about what was in it before. */
export interface Merged {
  readonly text: string;
  /** Said on standard error (no token in them). */
  readonly notes?: readonly string[];
}

export interface ConfigFile {
  /** Where the tool reads it (absolute; `--root DIR` puts it below DIR). */
  readonly path: string;
  /** What `setup` prints without `--write`: the settings alone. */
  readonly snippet: string;
  /**
   * The file's whole new text given its current text (undefined: no such file). Pure; keeps
   * everything of the file that is not the vault's settings where the format allows. Throws a
   * `CliError` when the current text cannot be merged safely (it is then left as it is).
   */
  merge(existing: string | undefined): Merged;
  /** How a comment line starts in this format (the printed header uses it). */
  readonly comment: "#" | "//";
  /** It holds the token: written readable by its owner only. */
  readonly secret: boolean;
  /** A system file (under /etc): written only by root, or below `--root`. */
  readonly system: boolean;
  /**
   * Backups of this file end in `.bak` (`<file>.<time>.bak`) rather than `<file>.bak-<time>`:
   * for files in a directory whose reader would otherwise load the backup or complain about it
   * (apt reads every file of its `.d` directories, and passes over `*.bak` silently).
   */
  readonly backupEndsInBak?: boolean;
}

export interface SetupPlan {
  readonly files: readonly ConfigFile[];
  /** What to do next, and limits worth knowing: said on standard error (no token in them). */
  readonly notes: readonly string[];
  /** Why `--write` is refused for this tool, if it is. */
  readonly printOnly?: string;
}

export interface SetupTool {
  readonly name: string;
  /** Other names for the same configuration (`skopeo` and `buildah` read podman's files). */
  readonly aliases?: readonly string[];
  /** For `setup --help`. */
  readonly summary: string;
  /** The backend's path on a vault configured as the README's examples are. */
  readonly defaultPrefix: string;
  /** Tool-specific options it accepts; any other is a usage error. */
  readonly options: readonly ToolOption[];
  plan(input: SetupInput): SetupPlan;
}
