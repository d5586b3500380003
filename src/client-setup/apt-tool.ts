/**
 * apt, pointed at the vault's `apt` backends (the README's "Debian and Ubuntu packages"
 * section), in one of its two ways:
 *
 * - as a mirror URL (the default): a deb822 source of its own per vault prefix,
 *   `/etc/apt/sources.list.d/artifact-vault-<prefix>.sources`, and with a token
 *   `/etc/apt/auth.conf.d/vault.conf`;
 * - in proxy mode (`--proxy`, `--proxy-host H`): `/etc/apt/apt.conf.d/01vault` with
 *   `Acquire::http::Proxy`, the sources left as they are; a token is the proxy's password.
 *
 * All of them are files of their own (nothing of the machine's sources is edited), under /etc:
 * written by root, or below `--root`. The archive's keys stay as they are (`Signed-By`): the
 * vault never rewrites an APT file, and apt checks the signatures itself.
 */
import { usageError } from "./failure.js";
import type { AptChoices, ConfigFile, SetupInput, SetupPlan, SetupTool } from "./setup-tool.js";

const APT_PREFIX = "/debian/";
const DEBIAN_KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg";

/** A file apt reads from one of its `.d` directories. */
function aptFile(path: string, text: string, secret: boolean): ConfigFile {
  return { path, snippet: text, comment: "#", secret, system: true, backupEndsInBak: true, merge: () => ({ text }) };
}

/** Suites and keyring: given, or Debian's defaults for the release `/etc/os-release` names. */
function archive(apt: AptChoices): { suites: readonly string[]; signedBy: string } {
  const debian = apt.release?.id === "debian" ? apt.release : undefined;
  const codename = debian?.codename;
  const suites = apt.suites.length > 0 ? apt.suites : codename === undefined ? [] : [codename, `${codename}-updates`];
  if (suites.length === 0) throw usageError("--suite: name the suites to fetch through the vault (e.g. --suite bookworm --suite bookworm-updates); only on Debian are they read from /etc/os-release");
  const signedBy = apt.signedBy ?? (debian === undefined ? undefined : DEBIAN_KEYRING);
  if (signedBy === undefined) throw usageError("--signed-by: name the archive's keyring (e.g. /usr/share/keyrings/ubuntu-archive-keyring.gpg); only on Debian is it known");
  return { suites, signedBy };
}

function mirrorPlan(input: SetupInput): SetupPlan {
  const prefix = input.prefix ?? APT_PREFIX;
  const { suites, signedBy } = archive(input.apt);
  const components = input.apt.components.length > 0 ? input.apt.components : ["main"];
  const sources = [
    "# written by artifact-vault setup apt",
    "Types: deb",
    `URIs: ${input.vault.origin}${prefix.replace(/\/$/, "")}`,
    `Suites: ${suites.join(" ")}`,
    `Components: ${components.join(" ")}`,
    `Signed-By: ${signedBy}`,
  ];
  const name = `artifact-vault-${prefix.replace(/^\/|\/$/g, "").replace(/\//g, "-")}.sources`;
  const files = [aptFile(`/etc/apt/sources.list.d/${name}`, `${sources.join("\n")}\n`, false)];
  if (input.token !== undefined) {
    // apt uses an entry for a plain-http host only when its machine says http://.
    files.push(aptFile("/etc/apt/auth.conf.d/vault.conf", `machine ${input.vault.origin}\nlogin x\npassword ${input.token}\n`, true));
  }
  return {
    files,
    notes: [
      `apt still reads the machine's other sources: turn off the entries for ${suites.join(", ")} there (Enabled: no in a .sources file, or comment out the sources.list line), so that apt fetches them through the vault only; then run apt-get update`,
    ],
  };
}

function proxyPlan(input: SetupInput): SetupPlan {
  const { apt } = input;
  if (input.prefix !== undefined || apt.suites.length > 0 || apt.components.length > 0 || apt.signedBy !== undefined) {
    throw usageError("--proxy: in proxy mode the sources stay as they are; --prefix, --suite, --component and --signed-by are for the mirror URL form");
  }
  const userinfo = input.token === undefined ? "" : `x:${encodeURIComponent(input.token)}@`;
  const proxy = JSON.stringify(`${input.vault.scheme}://${userinfo}${input.vault.host}/`);
  const lines =
    apt.proxyHosts.length === 0 ? [`Acquire::http::Proxy ${proxy};`] : apt.proxyHosts.map((host) => `Acquire::http::Proxy::${host} ${proxy};`);
  return {
    files: [aptFile("/etc/apt/apt.conf.d/01vault", `${lines.join("\n")}\n`, input.token !== undefined)],
    notes: [
      apt.proxyHosts.length === 0
        ? "the vault answers proxy requests only for the mirrors it is configured for, and refuses any other http:// source with 403: if some are on other hosts, use --proxy-host with the mirrored hosts instead; https:// sources go direct"
        : "sources on other hosts go direct; https:// sources go direct too",
      "then run apt-get update",
    ],
  };
}

export const aptSetup: SetupTool = {
  name: "apt",
  summary: "a deb822 source through the vault (or --proxy: Acquire::http::Proxy) in /etc/apt",
  defaultPrefix: APT_PREFIX,
  options: ["suite", "component", "signedBy", "proxy", "proxyHost"],
  plan: (input) => (input.apt.proxy || input.apt.proxyHosts.length > 0 ? proxyPlan(input) : mirrorPlan(input)),
};
