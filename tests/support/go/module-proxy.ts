/**
 * A Go module proxy as static files (the GOPROXY protocol needs nothing else): for each module
 * version `<module>/@v/<version>.info` (`{"Version","Time"}`), `.mod` and `.zip`, and
 * `<module>/@v/list`, module paths and versions case-escaped. Kept as a map (for a scripted
 * origin) and written to a directory (for nginx).
 *
 * Zips come from the caller: `storedZip` here (no compression, for integration tests), or the
 * `zip` command (go-tool.ts). `moduleHashes` computes the go.sum hashes of a `storedZip` module
 * from its files, apart from the vault's zip reader.
 */
import { createHash } from "node:crypto";
import { mkdir, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { crc32 } from "node:zlib";
import { escapeCase } from "./checksum-database.js";

export interface ModuleVersion {
  readonly path: string;
  readonly version: string;
  /** File name (below the module root) → contents; `go.mod` is the `.mod` file too. */
  readonly files: Readonly<Record<string, string>>;
  /** The `.info` Time (RFC 3339). */
  readonly time?: string;
}

export class StaticModuleProxy {
  readonly files = new Map<string, Buffer>();
  readonly #versions = new Map<string, string[]>();

  /** Publishes a version: its .info, .mod and .zip, and the module's list. */
  add(module: ModuleVersion, zip: Buffer): void {
    const base = `${escapeCase(module.path)}/@v`;
    const version = escapeCase(module.version);
    this.files.set(`${base}/${version}.info`, Buffer.from(`${JSON.stringify({ Version: module.version, Time: module.time ?? "2024-01-01T00:00:00Z" })}\n`));
    this.files.set(`${base}/${version}.mod`, Buffer.from(module.files["go.mod"] ?? `module ${module.path}\n`));
    this.files.set(`${base}/${version}.zip`, zip);
    const versions = this.#versions.get(module.path) ?? [];
    versions.push(module.version);
    this.#versions.set(module.path, versions);
    this.files.set(`${base}/list`, Buffer.from(versions.map((v) => `${v}\n`).join("")));
  }

  /** `<module>/@v/<version>.<ext>` as the proxy serves it. */
  pathOf(path: string, version: string, ext: "info" | "mod" | "zip"): string {
    return `${escapeCase(path)}/@v/${escapeCase(version)}.${ext}`;
  }

  async writeTo(dir: string): Promise<void> {
    for (const [path, bytes] of this.files) {
      const file = join(dir, path);
      await mkdir(dirname(file), { recursive: true });
      await writeFile(file, bytes);
    }
  }
}

/** The zip entries of a module version: every file under `<module>@<version>/`. */
export function zipEntries(module: ModuleVersion): Array<{ name: string; data: Buffer }> {
  return Object.entries(module.files).map(([name, text]) => ({ name: `${module.path}@${module.version}/${name}`, data: Buffer.from(text) }));
}

/** A zip archive of `entries`, stored (no compression), no directory entries. */
export function storedZip(entries: ReadonlyArray<{ name: string; data: Buffer }>): Buffer {
  const locals: Buffer[] = [];
  const centrals: Buffer[] = [];
  let offset = 0;
  for (const { name, data } of entries) {
    const nameBytes = Buffer.from(name);
    const crc = crc32(data);
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4);
    local.writeUInt16LE(0x0800, 6); // UTF-8 names
    local.writeUInt16LE(0, 8); // stored
    local.writeUInt16LE(0x21, 12); // 1980-01-01
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(data.length, 18);
    local.writeUInt32LE(data.length, 22);
    local.writeUInt16LE(nameBytes.length, 26);
    const central = Buffer.alloc(46);
    central.writeUInt32LE(0x02014b50, 0);
    central.writeUInt16LE(20, 4);
    central.writeUInt16LE(20, 6);
    central.writeUInt16LE(0x0800, 8);
    central.writeUInt16LE(0x21, 14);
    central.writeUInt32LE(crc, 16);
    central.writeUInt32LE(data.length, 20);
    central.writeUInt32LE(data.length, 24);
    central.writeUInt16LE(nameBytes.length, 28);
    central.writeUInt32LE(offset, 42);
    locals.push(local, nameBytes, data);
    centrals.push(central, nameBytes);
    offset += local.length + nameBytes.length + data.length;
  }
  const directory = Buffer.concat(centrals);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(entries.length, 8);
  end.writeUInt16LE(entries.length, 10);
  end.writeUInt32LE(directory.length, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...locals, directory, end]);
}

/** dirhash's Hash1 over named contents: SHA-256 of `<hex sha256>  <name>\n` lines, sorted by name. */
export function hash1(files: ReadonlyArray<{ name: string; data: Buffer }>): string {
  const lines = files
    .map(({ name, data }) => `${createHash("sha256").update(data).digest("hex")}  ${name}\n`)
    .sort((a, b) => Buffer.compare(Buffer.from(a.slice(66)), Buffer.from(b.slice(66))));
  return `h1:${createHash("sha256").update(lines.join("")).digest("base64")}`;
}

/** The go.sum hashes of a module version zipped by `storedZip(zipEntries(module))`. */
export function moduleHashes(module: ModuleVersion): { zipHash: string; modHash: string } {
  return {
    zipHash: hash1(zipEntries(module)),
    modHash: hash1([{ name: "go.mod", data: Buffer.from(module.files["go.mod"] ?? `module ${module.path}\n`) }]),
  };
}
