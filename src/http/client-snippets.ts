/**
 * What a client needs to use one backend, as the web UI's backends page shows it: the settings
 * `artifact-vault setup <tool>` would print for each tool of the backend's ecosystem (the same
 * pure `plan`s, `client-setup/`), for the vault's address as the browser reached it, and the
 * command that writes them. Pure.
 *
 * The rule: no token is ever in a snippet. Where the vault wants one (`auth.proxy: token`) the
 * text says `<token>`; where a tool keeps it encoded (base64 in a container login) the snippet
 * goes without it, and a note says the command puts it in.
 */
import type { Backend } from "../upstreams/backend.js";
import type { AptChoices, SetupInput, SetupTool } from "../client-setup/setup-tool.js";
import { setupTool } from "../client-setup/setup-tools.js";
import type { VaultAddress } from "../client-setup/vault-address.js";
import { redactUrl } from "./url-redaction.js";

/** What stands for the user's token in a snippet. */
export const TOKEN_PLACEHOLDER = "<token>";
/**
 * What the plans are given as the token, then replaced by `TOKEN_PLACEHOLDER`: printable, no
 * character that `encodeURIComponent` changes, so it reads the same in every URL and file.
 */
const TOKEN_STAND_IN = "AVT-UI-TOKEN-STAND-IN";

export interface SnippetFile {
  /** Where the tool reads it (`~` for the user's home). */
  readonly path: string;
  readonly text: string;
}

export interface ClientSnippet {
  /** The client (`pip`, `apt`, `curl`), with the way it is set up when it has several (`apt (proxy mode)`). */
  readonly tool: string;
  readonly files: readonly SnippetFile[];
  readonly notes: readonly string[];
  /** The `artifact-vault setup` command that writes the files; undefined for clients it does not set up. */
  readonly command: string | undefined;
  /** Why there is no snippet (the tool cannot reach this backend as configured); files are then empty. */
  readonly unavailable?: string;
}

export interface SnippetContext {
  /** The vault's origin as the browser reached it: `http://vault.internal:8080`. */
  readonly origin: string;
  /** `auth.proxy: token`: clients must send a token. */
  readonly tokenRequired: boolean;
  /** How many backends serve the registry API at `/v2/`: with several, each is `/v2/<name>/`. */
  readonly registryBackends: number;
}

type ClientsOf = (backend: Backend, context: SnippetContext, vault: VaultAddress) => ClientSnippet[];

/** The clients of each backend type (canonical type names, `backend-types.ts`). */
const CLIENTS: Readonly<Record<string, ClientsOf>> = {
  pypi: (backend, context, vault) => ["pip", "uv"].map((tool) => setupSnippet(tool, tool, input(vault, backend.prefix), context)),
  npm: (backend, context, vault) => ["npm", "pnpm", "yarn"].map((tool) => setupSnippet(tool, tool, input(vault, backend.prefix), context)),
  dockerhub: (backend, context, vault) => {
    const prefix = context.registryBackends > 1 ? `/v2/${backend.name}/` : "/v2/";
    return ["docker", "podman", "containerd"].map((tool) => setupSnippet(tool, tool, input(vault, prefix), context));
  },
  apt: aptClients,
  go: goClients,
  maven: (backend, context, vault) => [setupSnippet("maven", "maven", input(vault, backend.prefix), context)],
  rubygems: (backend, context, vault) => ["gem", "bundler"].map((tool) => setupSnippet(tool, tool, input(vault, backend.prefix), context)),
  huggingface: (backend, context, vault) => [setupSnippet("huggingface_hub", "hf", input(vault, backend.prefix), context)],
  cargo: (backend, context) => [cargoSnippet(backend, context)],
  http: (backend, context) => [curlSnippet(backend, context)],
  custom: (backend, context) => [curlSnippet(backend, context)],
};

/** The snippets for one backend's clients; a type with none listed gets a `curl` line. */
export function clientSnippets(backend: Backend, context: SnippetContext): ClientSnippet[] {
  const url = new URL(context.origin);
  const vault: VaultAddress = {
    origin: url.origin,
    host: url.host,
    hostname: url.hostname,
    scheme: url.protocol === "https:" ? "https" : "http",
  };
  return (CLIENTS[backend.type] ?? CLIENTS["http"] ?? (() => []))(backend, context, vault);
}

const NO_APT: AptChoices = { suites: [], components: [], signedBy: undefined, proxy: false, proxyHosts: [], release: undefined };

function input(vault: VaultAddress, prefix: string | undefined, apt: AptChoices = NO_APT): SetupInput {
  return { vault, prefix, token: undefined, home: "~", env: {}, registry: "docker.io", apt };
}

/** `artifact-vault setup <tool>` for `base`, with the token where the vault wants one. */
function setupSnippet(title: string, toolName: string, base: SetupInput, context: SnippetContext, extraArgs: readonly string[] = []): ClientSnippet {
  const tool = setupTool(toolName);
  if (tool === undefined) throw new Error(`no setup tool ${toolName}`);
  const prefix = base.prefix === tool.defaultPrefix ? undefined : base.prefix;
  const plain: SetupInput = { ...base, prefix };
  const args = ["npx", "artifact-vault", "setup", tool.name, "--url", plain.vault.origin, ...(prefix === undefined ? [] : ["--prefix", prefix]), ...extraArgs];
  const command = [...args, ...(context.tokenRequired ? ["--token", TOKEN_PLACEHOLDER] : [])].join(" ");
  let withoutToken: ReturnType<SetupTool["plan"]>;
  try {
    withoutToken = tool.plan(plain);
  } catch (error) {
    return { tool: title, files: [], notes: [], command: undefined, unavailable: error instanceof Error ? error.message : String(error) };
  }
  if (!context.tokenRequired) {
    return { tool: title, files: withoutToken.files.map((file) => ({ path: file.path, text: file.snippet })), notes: [...withoutToken.notes], command };
  }
  const withToken = tool.plan({ ...plain, token: TOKEN_STAND_IN });
  const files: SnippetFile[] = [];
  const notes = withToken.notes.map(placeholder);
  for (const file of withToken.files) {
    if (file.snippet.includes(TOKEN_STAND_IN)) {
      files.push({ path: file.path, text: placeholder(file.snippet) });
      continue;
    }
    // The token is in it encoded (a base64 login), or not at all: the text without it, if any.
    const bare = withoutToken.files.find((candidate) => candidate.path === file.path);
    if (bare !== undefined) files.push({ path: file.path, text: bare.snippet });
    if (file.secret) notes.push(`${file.path} needs the token in an encoded form: the command above writes it`);
  }
  return { tool: title, files, notes, command };
}

function placeholder(text: string): string {
  return text.replaceAll(TOKEN_STAND_IN, TOKEN_PLACEHOLDER);
}

const DEBIAN_KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg";
const UBUNTU_KEYRING = "/usr/share/keyrings/ubuntu-archive-keyring.gpg";

/** apt as a mirror URL (suites left for the user: the browser does not know the machine's release), and in proxy mode when the backend answers it. */
function aptClients(backend: Backend, context: SnippetContext, vault: VaultAddress): ClientSnippet[] {
  const mirrors = backend.mounts?.forwardProxy ?? [];
  const ubuntu = mirrors.some((url) => /ubuntu/i.test(url.href));
  const signedBy = ubuntu ? UBUNTU_KEYRING : DEBIAN_KEYRING;
  const apt: AptChoices = { ...NO_APT, suites: ["<codename>"], signedBy };
  const mirror = setupSnippet("apt", "apt", input(vault, backend.prefix, apt), context, ["--suite", "<codename>", "--signed-by", signedBy]);
  const snippets: ClientSnippet[] = [{ ...mirror, notes: [`replace <codename> with the machine's release (${ubuntu ? "noble, jammy" : "bookworm, trixie"}, ...) and add the suites wanted, e.g. <codename>-updates`, ...mirror.notes] }];
  const hosts = [...new Set(mirrors.map((url) => url.host))];
  if (hosts.length > 0) {
    const proxy = { ...NO_APT, proxy: true, proxyHosts: hosts };
    snippets.push(setupSnippet("apt (proxy mode)", "apt", input(vault, undefined, proxy), context, hosts.flatMap((host) => ["--proxy-host", host])));
  }
  return snippets;
}

/**
 * The go command sends a token only over https (`setup go` refuses one with an http URL): where
 * the vault wants a token and the browser reached it over http, the settings are for the same
 * host behind TLS, and a note says so.
 */
function goClients(backend: Backend, context: SnippetContext, vault: VaultAddress): ClientSnippet[] {
  if (!context.tokenRequired || vault.scheme === "https") return [setupSnippet("go", "go", input(vault, backend.prefix), context)];
  const secure: VaultAddress = { ...vault, scheme: "https", origin: `https://${vault.host}` };
  const snippet = setupSnippet("go", "go", input(secure, backend.prefix), context);
  return [{ ...snippet, notes: [`the go command sends a token only over https: put TLS in front of the vault; these settings assume it at ${secure.origin}`, ...snippet.notes] }];
}

/** A plain download of a file under the backend's prefix. */
function curlSnippet(backend: Backend, context: SnippetContext): ClientSnippet {
  const auth = context.tokenRequired ? ` -H "Authorization: Bearer ${TOKEN_PLACEHOLDER}"` : "";
  return {
    tool: "curl",
    files: [{ path: "", text: `curl -fLO${auth} ${context.origin}${backend.prefix}<path>\n` }],
    notes: [`<path> is the file's path below the upstream's base URL`],
    command: undefined,
  };
}

/**
 * cargo: crates.io replaced by the vault. A token needs the vault named as a registry (a plain
 * source cannot carry one); the token itself goes in cargo's credentials, not in this file.
 */
function cargoSnippet(backend: Backend, context: SnippetContext): ClientSnippet {
  const index = `sparse+${context.origin}${backend.prefix}`;
  const source = context.tokenRequired
    ? `[source.crates-io]\nreplace-with = "vault"\n\n[registries.vault]\nindex = "${index}"\ncredential-provider = "cargo:token"\n`
    : `[source.crates-io]\nreplace-with = "vault"\n\n[source.vault]\nregistry = "${index}"\n`;
  const notes = context.tokenRequired ? [`the token: CARGO_REGISTRIES_VAULT_TOKEN="Bearer ${TOKEN_PLACEHOLDER}" (or cargo login --registry vault)`] : [];
  return { tool: "cargo", files: [{ path: "~/.cargo/config.toml", text: source }], notes, command: undefined };
}

/** One upstream URL a backend's options name, as anyone may see it. */
export interface UpstreamUrl {
  /** The option that names it (`index_url`, `upstreams[0].registry_url`). */
  readonly option: string;
  /** Without credentials: no userinfo, credential-looking query values `[redacted]`. */
  readonly url: string;
}

/**
 * Every `http(s)` URL in a backend's parsed options (keys named `url` or `*_url`, nested lists
 * and objects included), credentials removed: what `/admin/backends` shows as the upstream.
 * Options that are not URLs (usernames, passwords, tokens) are never looked at.
 */
export function upstreamUrls(options: Readonly<Record<string, unknown>>): UpstreamUrl[] {
  const found: UpstreamUrl[] = [];
  const visit = (value: unknown, path: string, key: string): void => {
    if (typeof value === "string") {
      if (/(?:^|_)url$/i.test(key) && /^https?:\/\//i.test(value)) found.push({ option: path, url: safeUrl(value) });
      return;
    }
    if (Array.isArray(value)) {
      value.forEach((item, index) => visit(item, `${path}[${index}]`, key));
      return;
    }
    if (value !== null && typeof value === "object") {
      for (const [name, item] of Object.entries(value as Record<string, unknown>)) visit(item, path === "" ? name : `${path}.${name}`, name);
    }
  };
  visit(options, "", "");
  return found;
}

/** `redactUrl`, and the URL's form normalised when it parses (so userinfo with odd characters goes too). */
function safeUrl(value: string): string {
  try {
    const url = new URL(value);
    url.username = "";
    url.password = "";
    return redactUrl(url.href);
  } catch {
    return redactUrl(value);
  }
}
