/**
 * Real packages for the npm end-to-end tests, made and published with the real `npm publish
 * --registry URL` (isolated: a sandbox npmrc holding a made-up `_authToken` for that registry
 * only, its own cache), into a registry whose storage is on disk (Verdaccio's):
 *
 * - `@vault-probe/lib` 1.0.0 and 1.1.0 (and any later version through `publishLib`, for "a new
 *   version is visible once the packument's TTL is over");
 * - `vault-probe-app` 1.0.0, depending on `@vault-probe/lib@^1.0.0`.
 *
 * Each has a tiny `index.js` and a README. What was published (integrity, shasum, the tarball's
 * path on the registry and in the storage) is returned, and `corruptTarball` overwrites a stored
 * tarball with garbage of the same length (Verdaccio serves it as it is, with the packument's
 * integrity unchanged).
 */
import { createHash, randomBytes } from "node:crypto";
import { mkdirSync, writeFileSync } from "node:fs";
import { readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { clientSandbox, describeResult, npmCli, type ClientSandbox } from "./clients.js";

export const LIB = "@vault-probe/lib";
export const APP = "vault-probe-app";

export interface PackageSpec {
  readonly name: string;
  readonly version: string;
  readonly dependencies?: Readonly<Record<string, string>>;
}

/** A registry whose storage is a Verdaccio-style folder (`startVerdaccio`'s answer fits). */
export interface StorageRegistry {
  /** `http://127.0.0.1:PORT/` */
  readonly registry: string;
  readonly storage: string;
}

export interface PublishedTarball {
  readonly name: string;
  readonly version: string;
  /** The file name the registry serves it under: `lib-1.0.0.tgz`, `vault-probe-app-1.0.0.tgz`. */
  readonly filename: string;
  /** Its path on the registry (and the path in `dist.tarball`): `/@vault-probe/lib/-/lib-1.0.0.tgz`. */
  readonly tarballPath: string;
  /** The file in the registry's storage: `<storage>/@vault-probe/lib/lib-1.0.0.tgz`. */
  readonly storagePath: string;
  /** `sha512-…` (base64), as in `dist.integrity`. */
  readonly integrity: string;
  /** sha1 (hex), as in `dist.shasum`. */
  readonly shasum: string;
  readonly size: number;
}

export interface ProbePackages {
  /** `@vault-probe/lib` by version. */
  readonly lib: ReadonlyMap<string, PublishedTarball>;
  readonly app: PublishedTarball;
  /** Everything published so far, in order. */
  readonly all: readonly PublishedTarball[];
  /** Publishes another version of `@vault-probe/lib` (1.2.0 by default). */
  publishLib(version?: string): Promise<PublishedTarball>;
}

const basename = (name: string): string => name.slice(name.lastIndexOf("/") + 1);

/** Where Verdaccio stores a tarball, and the path it serves it under. */
export function tarballLocation(storage: string, name: string, version: string): { filename: string; tarballPath: string; storagePath: string } {
  const filename = `${basename(name)}-${version}.tgz`;
  return { filename, tarballPath: `/${name}/-/${filename}`, storagePath: join(storage, ...name.split("/"), filename) };
}

export const sha512Integrity = (bytes: Uint8Array): string => `sha512-${createHash("sha512").update(bytes).digest("base64")}`;
export const sha1Hex = (bytes: Uint8Array): string => createHash("sha1").update(bytes).digest("hex");

/** Writes the package's source (package.json, index.js, README.md) into `dir`. */
export function writePackageSource(dir: string, spec: PackageSpec): void {
  mkdirSync(dir, { recursive: true });
  const manifest = {
    name: spec.name,
    version: spec.version,
    description: `artifact-vault test package ${spec.name}`,
    main: "index.js",
    license: "MIT",
    ...(spec.dependencies === undefined ? {} : { dependencies: spec.dependencies }),
  };
  writeFileSync(join(dir, "package.json"), `${JSON.stringify(manifest, null, 2)}\n`);
  const requires = Object.keys(spec.dependencies ?? {}).map((dependency) => `  ${JSON.stringify(dependency)}: require(${JSON.stringify(dependency)}),\n`);
  writeFileSync(join(dir, "index.js"), `module.exports = {\n  name: ${JSON.stringify(spec.name)},\n  version: ${JSON.stringify(spec.version)},\n${requires.join("")}};\n`);
  writeFileSync(join(dir, "README.md"), `# ${spec.name}\n\nVersion ${spec.version}, published by artifact-vault's tests.\n`);
}

/**
 * Publishes `spec` with `npm publish` from a sandbox in `workDir` whose npmrc holds a token for
 * this registry only; checks that the stored tarball has the integrity npm reported.
 */
export async function publishPackage(registry: StorageRegistry, spec: PackageSpec, workDir: string, sandbox?: ClientSandbox): Promise<PublishedTarball> {
  const publisher = sandbox ?? publisherSandbox(registry, workDir);
  const source = join(workDir, "src", `${spec.name.replace("/", "+")}-${spec.version}`);
  writePackageSource(source, spec);
  const result = await npmCli(["publish", "--json", "--access", "public", "--tag", "latest"], { cwd: source, registry: registry.registry, sandbox: publisher });
  if (result.code !== 0) throw new Error(`npm publish ${spec.name}@${spec.version} failed:\n${describeResult(result)}`);
  const reported = parsePublishJson(result.stdout, spec.name);
  const location = tarballLocation(registry.storage, spec.name, spec.version);
  const bytes = await readFile(location.storagePath);
  const integrity = sha512Integrity(bytes);
  if (reported.integrity !== undefined && reported.integrity !== integrity) {
    throw new Error(`${location.storagePath} has ${integrity}, npm publish reported ${reported.integrity}`);
  }
  return { name: spec.name, version: spec.version, ...location, integrity, shasum: sha1Hex(bytes), size: bytes.length };
}

function publisherSandbox(registry: StorageRegistry, workDir: string): ClientSandbox {
  const sandbox = clientSandbox(join(workDir, "publisher"));
  // Any token will do: the registry lets anyone publish, but npm refuses to publish without one.
  sandbox.addToken(registry.registry, "vault-probe-publish-token");
  return sandbox;
}

function parsePublishJson(stdout: string, name: string): { integrity?: string } {
  const start = stdout.indexOf("{");
  if (start < 0) return {};
  try {
    const parsed = JSON.parse(stdout.slice(start)) as Record<string, unknown>;
    // npm 11 answers `{ "<name>": {…} }`; older npms answered the object itself.
    const entry = (parsed[name] ?? parsed) as { integrity?: unknown };
    return typeof entry.integrity === "string" ? { integrity: entry.integrity } : {};
  } catch {
    return {};
  }
}

/** Publishes `@vault-probe/lib` 1.0.0 and 1.1.0, then `vault-probe-app` 1.0.0, from `workDir`. */
export async function publishProbePackages(registry: StorageRegistry, workDir: string): Promise<ProbePackages> {
  const sandbox = publisherSandbox(registry, workDir);
  const lib = new Map<string, PublishedTarball>();
  const all: PublishedTarball[] = [];
  const publishLib = async (version = "1.2.0"): Promise<PublishedTarball> => {
    const published = await publishPackage(registry, { name: LIB, version }, workDir, sandbox);
    lib.set(version, published);
    all.push(published);
    return published;
  };
  await publishLib("1.0.0");
  await publishLib("1.1.0");
  const app = await publishPackage(registry, { name: APP, version: "1.0.0", dependencies: { [LIB]: "^1.0.0" } }, workDir, sandbox);
  all.push(app);
  return { lib, app, all, publishLib };
}

/**
 * Overwrites the stored tarball with random bytes of the same length (so `Content-Length` and
 * the packument stay as they were); returns the bytes written.
 */
export async function corruptTarball(tarball: Pick<PublishedTarball, "storagePath">): Promise<Buffer> {
  const { size } = await stat(tarball.storagePath);
  const garbage = randomBytes(size);
  await writeFile(tarball.storagePath, garbage);
  return garbage;
}
