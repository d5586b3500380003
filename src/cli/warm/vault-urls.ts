/**
 * Which URLs `cache warm` may ask for: the vault's own, and nothing else. A list may name a file
 * by its path on the vault (`/files/pkg/a-1.0.tgz`, or `files/pkg/a-1.0.tgz`) or by its full URL
 * on the vault (`http://vault.internal:8080/files/pkg/a-1.0.tgz`); a URL on any other host is
 * refused — the vault fetches only from the upstreams it is configured for, and warm never goes
 * around it. Pure.
 */

/** The vault's base URL with a path ending in `/` (`http://vault:8080/`, `https://host/vault/`). */
export function vaultBase(url: string): URL {
  const base = new URL(url);
  base.search = "";
  base.hash = "";
  if (!base.pathname.endsWith("/")) base.pathname = `${base.pathname}/`;
  return base;
}

/** Whether `url` is on the vault: same origin, below its base path. */
export function isVaultUrl(base: URL, url: URL): boolean {
  return url.origin === base.origin && url.pathname.startsWith(base.pathname);
}

/** A path below the vault's base (`pypi/simple/`, with or without a leading `/`) as a URL on it. */
export function vaultUrlFor(base: URL, path: string): URL {
  return new URL(path.replace(/^\/+/, ""), base);
}

/** The path of a vault URL below the base, with a leading `/` (for labels and messages). */
export function pathOnVault(base: URL, url: URL): string {
  return `/${url.pathname.slice(base.pathname.length)}${url.search}`;
}

/** A backend prefix as given on the command line (`/pypi/`, `pypi`, `/v2/docker`) in one form: `pypi/`, `v2/docker/`. */
export function normalisePrefix(prefix: string): string {
  const trimmed = prefix.trim().replace(/^\/+/, "").replace(/\/+$/, "");
  return trimmed === "" ? "" : `${trimmed}/`;
}

export type ListedPath = { readonly url: URL; readonly text: string } | { readonly refused: string; readonly reason: string };

/**
 * The entries of a list of vault paths or URLs: one per line; blank lines and `#` comments are
 * left out. Each is a URL on the vault, or refused with the reason.
 */
export function parsePathList(text: string, base: URL): ListedPath[] {
  const entries: ListedPath[] = [];
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) continue;
    if (/^[A-Za-z][A-Za-z0-9+.-]*:/.test(line)) {
      let url: URL;
      try {
        url = new URL(line);
      } catch {
        entries.push({ refused: line, reason: "not a URL" });
        continue;
      }
      if (!isVaultUrl(base, url)) {
        entries.push({ refused: line, reason: `not on the vault (${base.href}): warm asks the vault only, which fetches from its configured upstreams` });
        continue;
      }
      url.hash = "";
      entries.push({ url, text: line });
      continue;
    }
    const url = vaultUrlFor(base, line);
    // A path that climbs out of the base (`../x`) is not the vault's either.
    if (!isVaultUrl(base, url)) entries.push({ refused: line, reason: `not a path on the vault (${base.href})` });
    else entries.push({ url, text: line });
  }
  return entries;
}
