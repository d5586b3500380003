/**
 * A small Debian archive made in memory, for tests that need an APT upstream without the
 * archive tools (the real one, built with dpkg-deb and apt-ftparchive and signed, is
 * `apt-repository.ts`): pool files of given bytes, a `Packages` index (plain and `.gz`, with
 * their `by-hash/SHA256/` copies) listing them, a `Release` listing the index, and an
 * `InRelease` / `Release.gpg` whose signatures are placeholders (the vault never checks them;
 * apt would). Served by an `OriginServer`, each file with an ETag and a Last-Modified.
 */
import { createHash } from "node:crypto";
import { gzipSync } from "node:zlib";
import type { OriginServer } from "../origin-server.js";

const sha256 = (bytes: Uint8Array): string => createHash("sha256").update(bytes).digest("hex");

export interface FakePoolFile {
  /** Relative to the archive root (`pool/main/h/hello/hello_1.0_all.deb`). */
  readonly path: string;
  readonly bytes: Buffer;
  /** Listed in `Packages` (default true). */
  readonly listed?: boolean;
}

export interface FakeArchive {
  readonly suite: string;
  /** `Date` of the Release, also every file's Last-Modified. */
  readonly date: string;
  /** Every file by its path relative to the root. */
  readonly files: ReadonlyMap<string, Buffer>;
  /** `dists/<suite>/main/binary-amd64/by-hash/SHA256/<hex>` of `Packages.gz` and of `Packages`. */
  readonly packagesGzByHash: string;
  readonly packagesByHash: string;
}

/** Builds the archive's files. */
export function fakeArchive(options: { readonly suite?: string; readonly date?: Date; readonly pool: readonly FakePoolFile[] }): FakeArchive {
  const suite = options.suite ?? "bookworm";
  const date = (options.date ?? new Date(Date.UTC(2026, 0, 1))).toUTCString();
  const files = new Map<string, Buffer>();
  const stanzas: string[] = [];
  for (const file of options.pool) {
    files.set(file.path, file.bytes);
    if (file.listed === false) continue;
    const name = file.path.slice(file.path.lastIndexOf("/") + 1).split("_")[0] ?? "x";
    stanzas.push(
      [`Package: ${name}`, "Version: 1.0", "Architecture: all", "Description: a test package", " with a long description.", `Filename: ${file.path}`, `Size: ${file.bytes.length}`, `SHA256: ${sha256(file.bytes)}`, ""].join("\n"),
    );
  }
  const dir = `dists/${suite}/main/binary-amd64`;
  const packages = Buffer.from(stanzas.join("\n"));
  const packagesGz = gzipSync(packages);
  files.set(`${dir}/Packages`, packages);
  files.set(`${dir}/Packages.gz`, packagesGz);
  const packagesByHash = `${dir}/by-hash/SHA256/${sha256(packages)}`;
  const packagesGzByHash = `${dir}/by-hash/SHA256/${sha256(packagesGz)}`;
  files.set(packagesByHash, packages);
  files.set(packagesGzByHash, packagesGz);
  const release = Buffer.from(
    [
      "Origin: artifact-vault-tests",
      `Suite: ${suite}`,
      `Codename: ${suite}`,
      `Date: ${date.replace(/GMT$/, "UTC")}`,
      "Acquire-By-Hash: yes",
      "Architectures: amd64",
      "Components: main",
      "SHA256:",
      ` ${sha256(packages)} ${packages.length} main/binary-amd64/Packages`,
      ` ${sha256(packagesGz)} ${packagesGz.length} main/binary-amd64/Packages.gz`,
      "",
    ].join("\n"),
  );
  files.set(`dists/${suite}/Release`, release);
  files.set(`dists/${suite}/InRelease`, Buffer.from(`-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\n${release.toString()}-----BEGIN PGP SIGNATURE-----\n\nplaceholder\n-----END PGP SIGNATURE-----\n`));
  files.set(`dists/${suite}/Release.gpg`, Buffer.from("-----BEGIN PGP SIGNATURE-----\n\nplaceholder\n-----END PGP SIGNATURE-----\n"));
  return { suite, date, files, packagesGzByHash, packagesByHash };
}

/** Serves the archive's files below `root` (`/debian`), each with an ETag and a Last-Modified. */
export function serveFakeArchive(origin: OriginServer, root: string, archive: FakeArchive): void {
  for (const [path, bytes] of archive.files) {
    origin.files.set(`${root}/${path}`, { body: bytes, etag: `"${sha256(bytes).slice(0, 16)}"`, lastModified: archive.date });
  }
}
