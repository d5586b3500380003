import { VaultError } from "../../core/errors.js";
import { decodePathSegment } from "../upstream-request.js";

/**
 * What a path below an npm backend's prefix names, in the npm registry's own URL shapes:
 *
 *     <name>                         the packument           lodash, @types%2fnode, @types%2Fnode, @types/node
 *     <name>/<version or tag>        one version's manifest  lodash/4.17.21, @types/node/latest
 *     <name>/-/<bare>-<version>.tgz  a tarball               lodash/-/lodash-4.17.21.tgz, @types/node/-/node-20.1.0.tgz
 *     -/...                          the registry's API      -/v1/search, -/npm/v1/security/..., -/ping
 *
 * Tarball paths are the public registry's, so a lockfile written against it installs through
 * the vault (npm's `replace-registry-host`).
 */
export interface PackageName {
  /** `@types/node` or `lodash`. */
  readonly full: string;
  /** `types` for `@types/node`; undefined when unscoped. */
  readonly scope: string | undefined;
  /** The name without its scope: `node`, `lodash` (tarball files are named after it). */
  readonly bare: string;
}

export type NpmPath =
  | { readonly kind: "packument"; readonly name: PackageName }
  | { readonly kind: "version"; readonly name: PackageName; readonly spec: string }
  | { readonly kind: "tarball"; readonly name: PackageName; readonly version: string }
  | { readonly kind: "api"; readonly path: string };

/** npm's URL-safe name characters (`validate-npm-package-name`); old packages have capitals too. */
const NAME_PART = /^[A-Za-z0-9~-][A-Za-z0-9._~-]*$/;
const MAX_NAME_LENGTH = 214;
/** A version (`1.2.3-beta.1+build`) or a dist-tag (`latest`, `next`). */
const SPEC = /^[A-Za-z0-9~-][A-Za-z0-9._+~-]*$/;

export function parseNpmPath(rawPath: string): NpmPath {
  if (rawPath === "-" || rawPath.startsWith("-/")) return { kind: "api", path: rawPath };
  const segments = rawPath.split("/").map(decodePathSegment);
  let name: PackageName;
  let rest: string[];
  const first = segments[0] ?? "";
  if (first.startsWith("@")) {
    // `@scope%2fname` decodes to one segment holding the slash; `@scope/name` is two.
    const joined = first.slice(1).split("/");
    if (joined.length > 2) throw new VaultError("not_found", `not a valid package name: ${JSON.stringify(first)}`);
    const [scope = "", bare] = joined.length === 2 ? joined : [joined[0], segments[1]];
    name = packageName(scope, bare ?? "");
    rest = segments.slice(joined.length === 2 ? 1 : 2);
  } else {
    name = packageName(undefined, first);
    rest = segments.slice(1);
  }
  if (rest.length === 0 || (rest.length === 1 && rest[0] === "")) return { kind: "packument", name };
  if (rest.length === 1) {
    const spec = rest[0] ?? "";
    if (!SPEC.test(spec)) throw new VaultError("not_found", `not a version or tag of ${name.full}: ${JSON.stringify(spec)}`);
    return { kind: "version", name, spec };
  }
  if (rest.length === 2 && rest[0] === "-") return { kind: "tarball", name, version: versionOfTarball(name, rest[1] ?? "") };
  throw new VaultError("not_found", `not an npm registry path: ${rawPath}`);
}

/** The registry path of a packument, as npm asks for it: `@scope%2fname` or `name`. */
export function packumentPath(name: PackageName): string {
  return name.scope === undefined ? name.bare : `@${name.scope}%2f${name.bare}`;
}

/** The public registry's path of a tarball: `@scope/name/-/name-1.0.0.tgz`. */
export function tarballPath(name: PackageName, version: string): string {
  return `${name.full}/-/${name.bare}-${version}.tgz`;
}

function packageName(scope: string | undefined, bare: string): PackageName {
  const full = scope === undefined ? bare : `@${scope}/${bare}`;
  if ((scope !== undefined && !NAME_PART.test(scope)) || !NAME_PART.test(bare) || full.length > MAX_NAME_LENGTH) {
    throw new VaultError("not_found", `not a valid package name: ${JSON.stringify(full)}`);
  }
  return { full, scope, bare };
}

/** `lodash-4.17.21.tgz` of `lodash` → `4.17.21`. */
function versionOfTarball(name: PackageName, file: string): string {
  const stem = `${name.bare}-`;
  const version = file.startsWith(stem) && file.endsWith(".tgz") ? file.slice(stem.length, -".tgz".length) : "";
  if (!SPEC.test(version)) throw new VaultError("not_found", `not a tarball of ${name.full}: ${JSON.stringify(file)} (expected ${name.bare}-<version>.tgz)`);
  return version;
}

