import { createHash, type Hash } from "node:crypto";
import { open } from "node:fs/promises";
import { readZipDirectory, readZipEntry, ZipFormatError } from "./zip-directory.js";

/**
 * The `h1:` hashes of go.sum and the checksum database (golang.org/x/mod/sumdb/dirhash Hash1):
 * SHA-256 over one line `<hex SHA-256 of the file>  <file name>\n` per file, files sorted by
 * name (bytewise), base64-encoded with the prefix `h1:`.
 *
 * - A module zip's hash (`HashZip`) is over every entry of its central directory, named as stored
 *   (`example.com/m@v1.0.0/go.mod`, ...).
 * - A `.mod` file's hash is over the one file `go.mod` with its bytes: it can be computed while
 *   the bytes stream by (`GoModHasher`).
 */

/** Computes the h1 hash of a go.mod file as its bytes go by. */
export class GoModHasher {
  readonly #content: Hash = createHash("sha256");

  update(chunk: Uint8Array): void {
    this.#content.update(chunk);
  }

  digest(): string {
    return h1([{ name: Buffer.from("go.mod"), sha256: this.#content.digest("hex") }]);
  }
}

/** Uncompressed bytes a module zip may hold (the go command refuses more when it extracts one). */
const MAX_UNCOMPRESSED_BYTES = 500 * 1024 * 1024;

/** The h1 hash of a module zip in a file; rejects with `ZipFormatError` for a malformed archive. */
export async function hashModuleZip(path: string): Promise<string> {
  const file = await open(path, "r");
  try {
    const { size } = await file.stat();
    const entries = await readZipDirectory(file, size);
    const files: Array<{ name: Buffer; sha256: string }> = [];
    const seen = new Set<string>();
    let total = 0;
    for (const entry of entries) {
      total += entry.size;
      if (total > MAX_UNCOMPRESSED_BYTES) throw new ZipFormatError(`more than ${MAX_UNCOMPRESSED_BYTES} bytes uncompressed`);
      const key = entry.name.toString("latin1");
      // Go's zip hash would hash a duplicate name twice with one entry's bytes; the go command
      // refuses such a zip when it extracts it. It is no module zip.
      if (seen.has(key)) throw new ZipFormatError("duplicate file name in the archive");
      seen.add(key);
      if (entry.name.includes(0x0a)) throw new ZipFormatError("a file name holds a newline");
      const hash = createHash("sha256");
      await readZipEntry(file, size, entry, (chunk) => hash.update(chunk));
      files.push({ name: entry.name, sha256: hash.digest("hex") });
    }
    return h1(files);
  } finally {
    await file.close();
  }
}

function h1(files: Array<{ name: Buffer; sha256: string }>): string {
  const summary = createHash("sha256");
  for (const file of [...files].sort((a, b) => Buffer.compare(a.name, b.name))) {
    summary.update(`${file.sha256}  `).update(file.name).update("\n");
  }
  return `h1:${summary.digest("base64")}`;
}
