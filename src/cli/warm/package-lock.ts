/**
 * The registry tarballs a `package-lock.json` (or `npm-shrinkwrap.json`) pins, as paths below an
 * npm registry: `@scope/name/-/name-1.0.0.tgz`, the public registry's shape, which is also the
 * vault's npm backend's. Lockfile versions 2 and 3 (`packages`) and 1 (`dependencies`).
 *
 * The registry path comes from the `resolved` URL's tail (whatever host the lockfile was written
 * against: only the path is used, the host is never contacted), else from the package's name and
 * `version`. Links (workspaces), bundled dependencies and the root are not tarballs of their own
 * and are left out silently; git, file and other non-registry sources are reported as skipped.
 * Pure.
 */
import type { UnwarmedInput } from "./unwarmed-input.js";

export interface LockedTarball {
  /** `@scope/name` or `name`. */
  readonly name: string;
  readonly version: string;
  /** Below the registry: `@scope/name/-/name-1.0.0.tgz`. */
  readonly path: string;
}

export interface LockfileTarballs {
  readonly tarballs: readonly LockedTarball[];
  readonly skipped: readonly UnwarmedInput[];
}

/** `…/<@scope/>?<name>/-/<file>.tgz` at the end of a URL's (decoded) path. */
const TARBALL_TAIL = /(?:^|\/)(@[^/]+\/)?([^/@][^/]*)\/-\/([^/]+\.tgz)$/;
const VERSION = /^[0-9A-Za-z][0-9A-Za-z.+_-]*$/;

interface LockEntry {
  readonly name?: unknown;
  readonly version?: unknown;
  readonly resolved?: unknown;
  readonly link?: unknown;
  readonly inBundle?: unknown;
  readonly bundled?: unknown;
  readonly dependencies?: unknown;
}

/** Throws an Error naming what is wrong when the text is not a lockfile. */
export function parsePackageLock(text: string): LockfileTarballs {
  let lock: unknown;
  try {
    lock = JSON.parse(text);
  } catch (error) {
    throw new Error(`not JSON: ${(error as Error).message}`);
  }
  if (!isRecord(lock) || typeof lock["lockfileVersion"] !== "number") throw new Error("not a package-lock.json (no lockfileVersion)");
  const tarballs = new Map<string, LockedTarball>();
  const skipped: Array<{ text: string; reason: string }> = [];
  const add = (fallbackName: string, entry: LockEntry): void => {
    if (entry.link === true || entry.inBundle === true || entry.bundled === true) return;
    const name = typeof entry.name === "string" ? entry.name : fallbackName;
    const version = typeof entry.version === "string" ? entry.version : undefined;
    const resolved = typeof entry.resolved === "string" ? entry.resolved : undefined;
    const found = tarballOf(name, version, resolved);
    if ("reason" in found) skipped.push({ text: `${name}${version === undefined ? "" : `@${version}`}`, reason: found.reason });
    else tarballs.set(found.path, found);
  };
  const packages = lock["packages"];
  if (isRecord(packages)) {
    for (const [key, entry] of Object.entries(packages)) {
      if (key === "" || !isRecord(entry)) continue;
      const at = key.lastIndexOf("node_modules/");
      // Workspace folders (`packages/app`) are not from the registry; their node_modules are.
      if (at === -1) continue;
      add(key.slice(at + "node_modules/".length), entry);
    }
  } else {
    const walk = (dependencies: unknown): void => {
      if (!isRecord(dependencies)) return;
      for (const [name, entry] of Object.entries(dependencies)) {
        if (!isRecord(entry)) continue;
        add(name, entry);
        walk(entry["dependencies"]);
      }
    };
    walk(lock["dependencies"]);
  }
  return { tarballs: [...tarballs.values()], skipped };
}

function tarballOf(name: string, version: string | undefined, resolved: string | undefined): LockedTarball | { reason: string } {
  if (resolved !== undefined) {
    let url: URL;
    try {
      url = new URL(resolved);
    } catch {
      return { reason: `not from a registry (${resolved})` };
    }
    if (url.protocol !== "http:" && url.protocol !== "https:") return { reason: `not from a registry (${url.protocol.slice(0, -1)} source)` };
    let path: string;
    try {
      path = decodeURIComponent(url.pathname);
    } catch {
      return { reason: `not a registry tarball URL (${resolved})` };
    }
    const match = TARBALL_TAIL.exec(path);
    if (match === null) return { reason: `not a registry tarball URL (${resolved})` };
    const full = `${match[1] ?? ""}${match[2] ?? ""}`;
    return { name: full, version: version ?? match[3] ?? "", path: `${full}/-/${match[3] ?? ""}` };
  }
  if (version === undefined || !VERSION.test(version)) return { reason: version === undefined ? "no version and no resolved URL" : `not from a registry (${version})` };
  const bare = name.startsWith("@") ? name.slice(name.indexOf("/") + 1) : name;
  return { name, version, path: `${name}/-/${bare}-${version}.tgz` };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
