/**
 * An npm package as a registry serves it, written as static files for an nginx upstream (the
 * cache benchmark's `npm` section): every version's tarball at `<root>/<name>/-/<name>-<version>.tgz`
 * (a real `package/` tree gzipped by `tar czf`: package.json, index.js, README.md and a `lib/data.js`
 * of random text, about 6 KiB), and the full packument as one JSON file (`<packuments>/<name>.json`,
 * which the upstream serves at `/<name>`) with the fields the public registry gives: versions
 * (each with its `dist`: tarball URL at the upstream, sha512 `integrity` and sha1 `shasum` of the
 * real file, fileCount, unpackedSize), dist-tags, time, maintainers and a readme of a few KB.
 */
import { createHash, randomBytes } from "node:crypto";
import { mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { sha1Hex, sha512Integrity, tarballLocation, writePackageSource } from "../../tests/support/npm/packages.js";
import { runChecked } from "./processes.js";

export interface NpmTarball {
  readonly version: string;
  /** Its path on the registry: `/<name>/-/<name>-<version>.tgz`. */
  readonly path: string;
  readonly size: number;
  readonly sha256: string;
  /** `sha512-…`, as in `dist.integrity`. */
  readonly integrity: string;
}

export interface NpmPackage {
  readonly name: string;
  /** Its path on the registry: `/<name>`. */
  readonly path: string;
  /** The packument as the upstream serves it. */
  readonly packumentBytes: number;
  readonly packumentSha256: string;
  /** Its `readme` field, UTF-8 bytes. */
  readonly readmeBytes: number;
  readonly versions: readonly string[];
  readonly tarballs: ReadonlyMap<string, NpmTarball>;
  /** The `latest` version's tarball. */
  readonly latest: NpmTarball;
}

export interface NpmPackageOptions {
  /** An unscoped name (its paths then need no encoding). */
  readonly name: string;
  readonly versionCount: number;
  /** The upstream's static root: tarballs go below it. */
  readonly root: string;
  /** Where `<name>.json` goes. */
  readonly packuments: string;
  /** The upstream's URL, for `dist.tarball` (`http://127.0.0.1:PORT`, no trailing slash). */
  readonly registryUrl: string;
  /** Scratch space for the package sources. */
  readonly scratch: string;
}

const sha256Hex = (bytes: Uint8Array): string => createHash("sha256").update(bytes).digest("hex");

/** Bytes and number of the files below `dir`. */
function unpacked(dir: string): { fileCount: number; unpackedSize: number } {
  let fileCount = 0;
  let unpackedSize = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile()) continue;
    fileCount++;
    unpackedSize += statSync(join(entry.parentPath, entry.name)).size;
  }
  return { fileCount, unpackedSize };
}

function readme(name: string): string {
  const sections = ["Install", "Usage", "Options", "API", "Compatibility", "Changelog", "License"].map(
    (title, i) =>
      `## ${title}\n\n` +
      `${name} keeps its promises small: this section (${i + 1} of 7) is filler text of the length a real README has, ` +
      `so that the packument carries a readme of a few kilobytes like most packages on the public registry. ` +
      `It says nothing a benchmark needs, but every cache has to store it and send it again.\n\n` +
      "```js\n" +
      `const lib = require(${JSON.stringify(name)});\nconsole.log(lib.name, lib.version);\n` +
      "```\n",
  );
  return `# ${name}\n\nA package made up for artifact-vault's cache benchmark.\n\n${sections.join("\n")}`;
}

export async function writeNpmPackage(options: NpmPackageOptions): Promise<NpmPackage> {
  const { name } = options;
  const versions = Array.from({ length: options.versionCount }, (_, i) => `1.${i}.0`);
  const latest = versions.at(-1) ?? "1.0.0";
  const person = { name: "Bench Maintainer", email: "bench@example.invalid" };
  const repository = { type: "git", url: `git+https://example.invalid/${name}.git` };
  const tarballs = new Map<string, NpmTarball>();
  const manifests: Record<string, unknown> = {};
  const time: Record<string, string> = {};
  const started = Date.UTC(2023, 0, 10);
  for (const [i, version] of versions.entries()) {
    const source = join(options.scratch, version);
    const packageDir = join(source, "package");
    writePackageSource(packageDir, { name, version });
    mkdirSync(join(packageDir, "lib"), { recursive: true });
    writeFileSync(join(packageDir, "lib", "data.js"), `module.exports = ${JSON.stringify(randomBytes(4500).toString("base64"))};\n`);
    const { filename, tarballPath } = tarballLocation("", name, version);
    const file = join(options.root, name, "-", filename);
    mkdirSync(join(options.root, name, "-"), { recursive: true });
    await runChecked("tar", ["-czf", file, "--owner=0", "--group=0", "--numeric-owner", "-C", source, "package"]);
    const bytes = readFileSync(file);
    const tarball: NpmTarball = { version, path: tarballPath, size: bytes.length, sha256: sha256Hex(bytes), integrity: sha512Integrity(bytes) };
    tarballs.set(version, tarball);
    manifests[version] = {
      name,
      version,
      description: `A package made up for artifact-vault's cache benchmark (${version})`,
      main: "index.js",
      scripts: { test: "node --test" },
      repository,
      keywords: ["benchmark", "cache", "registry"],
      author: person,
      license: "MIT",
      bugs: { url: `https://example.invalid/${name}/issues` },
      homepage: `https://example.invalid/${name}#readme`,
      engines: { node: ">=18" },
      gitHead: sha1Hex(Buffer.from(`${name}@${version}`)),
      _id: `${name}@${version}`,
      _nodeVersion: "20.19.0",
      _npmVersion: "10.8.2",
      dist: {
        integrity: tarball.integrity,
        shasum: sha1Hex(bytes),
        tarball: `${options.registryUrl}${tarballPath}`,
        ...unpacked(packageDir),
      },
      _npmUser: person,
      directories: {},
      maintainers: [person],
      _hasShrinkwrap: false,
    };
    time[version] = new Date(started + i * 9 * 86_400_000).toISOString();
  }
  const text = readme(name);
  const packument = {
    _id: name,
    _rev: `${versions.length + 3}-${sha1Hex(Buffer.from(name)).slice(0, 32)}`,
    name,
    description: "A package made up for artifact-vault's cache benchmark",
    "dist-tags": { latest },
    versions: manifests,
    time: { created: time[versions[0] ?? latest], modified: time[latest], ...time },
    maintainers: [person],
    author: person,
    repository,
    homepage: `https://example.invalid/${name}#readme`,
    keywords: ["benchmark", "cache", "registry"],
    bugs: { url: `https://example.invalid/${name}/issues` },
    license: "MIT",
    readme: text,
    readmeFilename: "README.md",
  };
  mkdirSync(options.packuments, { recursive: true });
  const body = Buffer.from(JSON.stringify(packument), "utf8");
  writeFileSync(join(options.packuments, `${name}.json`), body);
  const latestTarball = tarballs.get(latest);
  if (latestTarball === undefined) throw new Error(`no tarball for ${name}@${latest}`);
  return {
    name,
    path: `/${name}`,
    packumentBytes: body.length,
    packumentSha256: sha256Hex(body),
    readmeBytes: Buffer.byteLength(text),
    versions,
    tarballs,
    latest: latestTarball,
  };
}

/**
 * nginx `location` blocks for an upstream that serves packuments from `packuments`: `GET /<name>`
 * (an unscoped name) answers `<packuments>/<name>.json` as `application/json`. Tarballs are plain
 * static files below the root.
 */
export function packumentLocation(packuments: string): string {
  return `    location ~ "^/(?<npm_package>[a-z0-9][a-z0-9._-]*)$" {
      default_type application/json;
      alias ${packuments}/$npm_package.json;
    }`;
}
