/**
 * Container clients, pointed at the vault's OCI backend as a mirror of one registry (the
 * README's "Container images" section):
 *
 * - podman (and skopeo, buildah — the same containers/image library): a drop-in of the user's
 *   `~/.config/containers/registries.conf.d/`, which is read after the main registries.conf
 *   (the user's or the system's) without replacing it; a token goes into the user's
 *   `auth.json`, as `podman login` would put it;
 * - containerd: `/etc/containerd/certs.d/<registry>/hosts.toml`, a system file;
 * - docker: printed only (see `DOCKER_PRINT_ONLY`).
 *
 * `--prefix` is where clients reach the registry API: `/v2/` (one OCI backend) or
 * `/v2/<backend name>/` (several).
 */
import { join } from "node:path";
import { CliError, usageError } from "./failure.js";
import { joinLines, jsonObject, splitLines, tomlString, tomlTables } from "./config-text.js";
import type { ConfigFile, SetupInput, SetupPlan, SetupTool } from "./setup-tool.js";
import { absoluteFromEnv, xdgConfigHome } from "./tool-env.js";
import { basicCredentials } from "./vault-address.js";

const REGISTRY_API = "/v2/";
const DOCKER_HUB = "docker.io";

/** The backend name in `/v2/<name>/`, or undefined for `/v2/`; anything else is a usage error. */
function ociBackend(input: SetupInput): string | undefined {
  const prefix = input.prefix ?? REGISTRY_API;
  if (prefix === REGISTRY_API) return undefined;
  const match = /^\/v2\/([^/]+)\/$/.exec(prefix);
  if (match?.[1] === undefined) {
    throw usageError(
      `--prefix: container clients reach the vault's registry API at /v2/ (one OCI backend) or /v2/<backend name>/ (several), got ${JSON.stringify(prefix)}`,
    );
  }
  return match[1];
}

/** `vault.internal:8080` or, with several OCI backends, `vault.internal:8080/docker`: a mirror's location. */
function mirrorLocation(input: SetupInput): string {
  const backend = ociBackend(input);
  return backend === undefined ? input.vault.host : `${input.vault.host}/${backend}`;
}

function registriesDropIn(input: SetupInput): ConfigFile {
  const lines = [
    "[[registry]]",
    `prefix = ${tomlString(input.registry)}`,
    `location = ${tomlString(input.registry)}`,
    "[[registry.mirror]]",
    `location = ${tomlString(mirrorLocation(input))}`,
    ...(input.vault.scheme === "http" ? ["insecure = true"] : []),
  ];
  const text = `${lines.join("\n")}\n`;
  return {
    // containers/image reads $HOME/.config/containers/registries.conf.d, whatever XDG_CONFIG_HOME says.
    path: join(input.home, ".config", "containers", "registries.conf.d", "artifact-vault.conf"),
    snippet: text,
    comment: "#",
    secret: false,
    system: false,
    merge: () => ({ text: `# written by artifact-vault setup: ${input.registry} through the vault\n${text}` }),
  };
}

/** The login `podman login <vault> -u x` would store: `auths["vault.internal:8080"].auth`. */
function authJson(input: SetupInput, token: string): ConfigFile {
  const path = absoluteFromEnv(input, "REGISTRY_AUTH_FILE") ?? join(xdgConfigHome(input), "containers", "auth.json");
  const entry = { auth: basicCredentials(token) };
  return {
    path,
    snippet: `${JSON.stringify({ auths: { [input.vault.host]: entry } }, null, "\t")}\n`,
    comment: "//",
    secret: true,
    system: false,
    merge: (existing) => {
      const document = jsonObject(existing, path);
      const auths = document["auths"] ?? {};
      if (auths === null || typeof auths !== "object" || Array.isArray(auths)) throw new CliError(`cannot merge into ${path}: its "auths" is not a JSON object; fix it or move it away, then run setup again`);
      const merged = { ...document, auths: { ...(auths as Record<string, unknown>), [input.vault.host]: entry } };
      // containers/image writes its auth.json tab-indented.
      return { text: `${JSON.stringify(merged, null, "\t")}\n` };
    },
  };
}

export const podmanSetup: SetupTool = {
  name: "podman",
  aliases: ["skopeo", "buildah"],
  summary: "a mirror in the user's registries.conf.d (and a login in auth.json)",
  defaultPrefix: REGISTRY_API,
  options: ["registry"],
  plan: (input): SetupPlan => {
    const files = [registriesDropIn(input), ...(input.token === undefined ? [] : [authJson(input, input.token)])];
    const notes = [
      "a mirror that fails is passed over: pulls then go to the registry itself; `podman pull --log-level=debug` shows which was used",
      ...(input.token === undefined
        ? []
        : ["a login for the vault in $XDG_RUNTIME_DIR/containers/auth.json (where `podman login` writes) is read first and wins over this one"]),
    ];
    return { files, notes };
  },
};

/** containerd's `server` for a registry: Docker Hub's API host for docker.io, else the registry itself. */
const upstreamServer = (registry: string): string => (registry === DOCKER_HUB ? "https://registry-1.docker.io" : `https://${registry}`);

function hostsToml(input: SetupInput): ConfigFile {
  const backend = ociBackend(input);
  const hostUrl = backend === undefined ? input.vault.origin : `${input.vault.origin}/v2/${backend}`;
  const hostKey = `host.${tomlString(hostUrl)}`;
  const block = [
    `[${hostKey}]`,
    '  capabilities = ["pull", "resolve"]',
    ...(backend === undefined ? [] : ["  override_path = true"]),
    ...(input.token === undefined ? [] : [`[${hostKey}.header]`, `  authorization = ${tomlString(`Basic ${basicCredentials(input.token)}`)}`]),
  ];
  const server = `server = ${tomlString(upstreamServer(input.registry))}`;
  const path = join("/etc/containerd/certs.d", input.registry, "hosts.toml");
  return {
    path,
    snippet: `${[server, ...block].join("\n")}\n`,
    comment: "#",
    secret: input.token !== undefined,
    system: true,
    merge: (existing) => {
      if (existing === undefined || existing.trim() === "") return { text: `${[server, ...block].join("\n")}\n` };
      // Keep the file's server and other hosts; the vault's host goes first (hosts are tried in order).
      const parsed = splitLines(existing);
      const tables = tomlTables(parsed.lines);
      const isOurs = (name: readonly string[]): boolean => name[0] === "host" && name[1] === hostUrl;
      const kept = tables.filter((table) => table.header === undefined || !isOurs(table.header.name));
      const firstHost = kept.findIndex((table) => table.header?.name[0] === "host");
      const slice = (table: (typeof kept)[number]): string[] => parsed.lines.slice(table.start, table.end);
      const before = (firstHost < 0 ? kept : kept.slice(0, firstHost)).flatMap(slice);
      const after = firstHost < 0 ? [] : kept.slice(firstHost).flatMap(slice);
      const hasServer = tables[0]?.keys.some((key) => key.name.join(".") === "server") ?? false;
      const head = hasServer ? before : [server, ...before];
      while (head.length > 0 && (head.at(-1) ?? "").trim() === "") head.pop();
      return { text: joinLines({ lines: [...head, ...block, ...(after.length === 0 ? [] : [""]), ...after], eol: parsed.eol }) };
    },
  };
}

export const containerdSetup: SetupTool = {
  name: "containerd",
  summary: "the vault as the first host in /etc/containerd/certs.d/<registry>/hosts.toml",
  defaultPrefix: REGISTRY_API,
  options: ["registry"],
  plan: (input): SetupPlan => ({
    files: [hostsToml(input)],
    notes: [
      'containerd reads certs.d only with config_path set: containerd 1.x needs [plugins."io.containerd.grpc.v1.cri".registry] config_path = "/etc/containerd/certs.d" in /etc/containerd/config.toml (then restart containerd); containerd 2 reads it by default',
    ],
  }),
};

/**
 * Why `setup docker --write` is refused: daemon.json is read only when dockerd starts (a restart
 * stops running containers unless live-restore is on), and dockerd refuses to start at all when
 * a setting is both in daemon.json and on its command line (a `--registry-mirror` in its systemd
 * unit, say) — a change to make with eyes open, not from a setup command.
 */
export const DOCKER_PRINT_ONLY =
  "docker's /etc/docker/daemon.json is not written by setup: dockerd reads it only when it starts, and refuses to start when a setting is also on its command line. Merge the printed keys into it yourself, then restart dockerd";

export const dockerSetup: SetupTool = {
  name: "docker",
  summary: "registry-mirrors for /etc/docker/daemon.json (printed only)",
  defaultPrefix: REGISTRY_API,
  options: ["registry"],
  plan: (input): SetupPlan => {
    if (input.registry !== DOCKER_HUB) throw usageError(`--registry: docker's registry-mirrors apply to Docker Hub (docker.io) images only, got ${input.registry}`);
    if (ociBackend(input) !== undefined) {
      throw usageError("--prefix: docker's registry-mirrors cannot name a path (/v2/<backend name>/): pull by the vault's name instead, docker pull <vault host>/<backend name>/<name>:<tag>");
    }
    const settings = [`"registry-mirrors": [${JSON.stringify(input.vault.origin)}]`, ...(input.vault.scheme === "http" ? [`"insecure-registries": [${JSON.stringify(input.vault.host)}]`] : [])];
    const text = `{ ${settings.join(", ")} }\n`;
    const file: ConfigFile = {
      path: "/etc/docker/daemon.json",
      snippet: text,
      comment: "//",
      secret: false,
      system: true,
      merge: () => ({ text }),
    };
    const notes = [
      "then restart dockerd; docker uses a mirror for Docker Hub images only, and goes to Docker Hub itself when the mirror fails",
      ...(input.token === undefined
        ? []
        : [`docker sends no credentials to a registry mirror: with a token, pull by the vault's name instead (docker login ${input.vault.host} -u x, the token as the password; docker pull ${input.vault.host}/<name>:<tag>)`]),
    ];
    return { files: [file], notes, printOnly: DOCKER_PRINT_ONLY };
  },
};
