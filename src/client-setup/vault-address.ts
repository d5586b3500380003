/**
 * The values `setup` writes into other programs' configuration files, checked before anything
 * is printed or written: each must be exactly what it looks like in every format it lands in
 * (INI, TOML, JSON, apt.conf, deb822, netrc), so nothing here may carry a quote, a space, a
 * newline or a path of its own. A bad value is a usage error (exit 2) naming the flag.
 */
import { isIP } from "node:net";
import { usageError } from "./failure.js";

/** The vault's root: scheme, host and port only. */
export interface VaultAddress {
  /** `http://vault.internal:8080` (no trailing slash; the default port left out). */
  readonly origin: string;
  /** `vault.internal:8080` (`[::1]:8080` for IPv6). */
  readonly host: string;
  /** `vault.internal` (`[::1]` for IPv6). */
  readonly hostname: string;
  readonly scheme: "http" | "https";
}

const URL_SHAPE = /^(https?):\/\/([^/?#\\@\s]+)\/?$/i;

/**
 * `--url`: `http(s)://host[:port]` with nothing after it but an optional `/`. A path, query,
 * fragment or user-info is refused rather than silently dropped: a backend's path is `--prefix`,
 * a token is `--token`.
 */
export function parseVaultUrl(value: string, source: string): VaultAddress {
  const example = "e.g. http://vault.internal:8080";
  const shape = URL_SHAPE.exec(value);
  if (shape === null) {
    if (/^https?:\/\/[^/?#]*@/i.test(value)) throw usageError(`${source}: no user or token in the URL; give the token with --token`);
    if (/^https?:\/\/[^/?#\\\s]+[/?#\\]/i.test(value)) {
      throw usageError(`${source}: give the vault's root URL (${example}); a backend's path goes in --prefix, got ${JSON.stringify(value)}`);
    }
    throw usageError(`${source}: expected the vault's http:// or https:// root URL (${example}), got ${JSON.stringify(value)}`);
  }
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw usageError(`${source}: not a URL: ${JSON.stringify(value)} (${example})`);
  }
  if (url.hostname === "" || url.pathname !== "/" || url.search !== "" || url.hash !== "" || url.username !== "" || url.password !== "") {
    throw usageError(`${source}: expected the vault's root URL (${example}), got ${JSON.stringify(value)}`);
  }
  return { origin: url.origin, host: url.host, hostname: url.hostname, scheme: url.protocol === "https:" ? "https" : "http" };
}

/** Whether clients treat the host as this machine (pip trusts plain http only there). */
export function isLoopback(vault: VaultAddress): boolean {
  const bare = vault.hostname.replace(/^\[|\]$/g, "");
  if (bare === "localhost" || bare.endsWith(".localhost")) return true;
  if (isIP(bare) === 4) return bare.startsWith("127.");
  return bare === "::1";
}

const SEGMENT = /^[A-Za-z0-9_~-][A-Za-z0-9._~-]*$/;

/** `--prefix`: `/pypi/`, `pypi`, `/mirrors/pypi` → `/pypi/`, `/mirrors/pypi/`; no `.`/`..` or odd characters. */
export function parsePrefix(value: string): string {
  const trimmed = value.replace(/^\/+|\/+$/g, "");
  const segments = trimmed.split("/");
  if (trimmed === "" || segments.some((segment) => !SEGMENT.test(segment) || segment === "." || segment === "..")) {
    throw usageError(`--prefix: expected a path like /pypi/ (letters, digits, ".", "_", "~", "-" between slashes), got ${JSON.stringify(value)}`);
  }
  return `/${segments.join("/")}/`;
}

/**
 * `--token`: printable ASCII without space, quote or backslash (the vault's own tokens are
 * `avt_` and base64url), so it needs no escaping in any file format and no percent-encoding in
 * pip's and apt's URLs beyond what `encodeURIComponent` does.
 */
export function parseToken(value: string): string {
  if (!/^[\x21-\x7e]+$/.test(value) || /["'\\`]/.test(value) || value.length > 4096) {
    throw usageError("--token: expected the token as printed by `tokens add` (printable characters, no spaces or quotes)");
  }
  return value;
}

const HOSTNAME = /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

/** A host name with an optional port: `docker.io`, `registry.example.com:5000`, `deb.debian.org`. */
export function parseHostName(value: string, flag: string): string {
  const match = /^([^:]+)(?::(\d{1,5}))?$/.exec(value);
  const port = match?.[2] === undefined ? undefined : Number(match[2]);
  if (match?.[1] === undefined || !(HOSTNAME.test(match[1]) || isIP(match[1]) === 4) || (port !== undefined && (port < 1 || port > 65535))) {
    throw usageError(`${flag}: expected a host name like docker.io or registry.example.com:5000, got ${JSON.stringify(value)}`);
  }
  return value.toLowerCase();
}

/** `--suite` / `--component`: a Debian archive name (`bookworm`, `bookworm-updates`, `main`, `non-free-firmware`). */
export function parseArchiveName(value: string, flag: string): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9.+_~-]*(?:\/[A-Za-z0-9.+_~-]+)*$/.test(value)) {
    throw usageError(`${flag}: expected a name like bookworm or main, got ${JSON.stringify(value)}`);
  }
  return value;
}

/** `--signed-by`: an absolute path to a keyring on the machine apt runs on. */
export function parseKeyringPath(value: string): string {
  if (!/^\/[^\s"\\]*$/.test(value) || value.split("/").some((segment) => segment === "..")) {
    throw usageError(`--signed-by: expected the absolute path of the archive's keyring (e.g. /usr/share/keyrings/debian-archive-keyring.gpg), got ${JSON.stringify(value)}`);
  }
  return value;
}

/** `x:<token>` in base64: the basic-auth login container clients and containerd send. */
export function basicCredentials(token: string): string {
  return Buffer.from(`x:${token}`, "utf8").toString("base64");
}
