import { randomBytes } from "node:crypto";
import { open, unlink, type FileHandle } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pipeline, Transform, type Readable } from "node:stream";
import { VaultError } from "../../core/errors.js";
import { GoModHasher, hashModuleZip } from "./dirhash.js";
import { ZipFormatError } from "./zip-directory.js";

/**
 * A download whose end waits for a check of its whole content: the bytes pass through as they
 * arrive, and the body ends only if the check passes — else it fails. The cache holds a fill's
 * last byte back from every client and stores nothing until the body has ended and been
 * verified, so content that fails the check reaches no client whole and is never cached.
 */
export interface ContentCheck {
  update(chunk: Buffer): Promise<void> | void;
  /** Resolves when the content passed; rejects (VaultError `upstream_failed`) otherwise. */
  finish(): Promise<void>;
  /** The download failed or was abandoned: let go of what the check holds. Idempotent. */
  abandon(): Promise<void>;
}

export function checkedBody(body: Readable, check: ContentCheck): Readable {
  const checking = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      new Promise<void>((resolve) => resolve(check.update(chunk))).then(() => done(null, chunk), done);
    },
    flush(done) {
      check.finish().then(() => done(), done);
    },
    destroy(error, done) {
      check.abandon().then(
        () => done(error),
        () => done(error),
      );
    },
  });
  // Errors of either side destroy both (and run `abandon`); the caller reads `checking`.
  return pipeline(body, checking, () => undefined);
}

/** The go command's own limits (golang.org/x/mod/zip): a module zip, and a go.mod file. */
export const MAX_MODULE_ZIP_BYTES = 500 * 1024 * 1024;
export const MAX_GO_MOD_BYTES = 16 * 1024 * 1024;

/** Checks a `.mod` file's h1 hash as it streams by. */
export function goModCheck(expected: string, what: string): ContentCheck {
  const hasher = new GoModHasher();
  let size = 0;
  return {
    update: (chunk) => {
      size += chunk.length;
      if (size > MAX_GO_MOD_BYTES) throw new VaultError("upstream_failed", `${what} is larger than the go command's limit of ${MAX_GO_MOD_BYTES} bytes`);
      hasher.update(chunk);
    },
    finish: async () => {
      const actual = hasher.digest();
      if (actual !== expected) throw new VaultError("upstream_failed", `${what} failed verification against the checksum database: ${actual}, expected ${expected}`);
    },
    abandon: async () => undefined,
  };
}

/**
 * Checks a module zip's h1 hash. A zip's hash needs its central directory (at the end) and then
 * each entry, so the bytes are also written to a private temporary file, read back once the
 * download is whole, and removed.
 */
export function moduleZipCheck(expected: string, what: string, directory: string = tmpdir()): ContentCheck {
  const path = join(directory, `artifact-vault-go-${randomBytes(12).toString("hex")}.zip`);
  let file: Promise<FileHandle> | undefined;
  let released = false;
  const handle = (): Promise<FileHandle> => (file ??= open(path, "wx", 0o600));
  const release = async (): Promise<void> => {
    if (released) return;
    released = true;
    if (file !== undefined) await (await file.catch(() => undefined))?.close().catch(() => undefined);
    await unlink(path).catch(() => undefined);
  };
  let size = 0;
  return {
    update: async (chunk) => {
      size += chunk.length;
      if (size > MAX_MODULE_ZIP_BYTES) throw new VaultError("upstream_failed", `${what} is larger than the go command's limit of ${MAX_MODULE_ZIP_BYTES} bytes`);
      await (await handle()).write(chunk);
    },
    finish: async () => {
      await (await handle()).close();
      file = undefined;
      try {
        let actual: string;
        try {
          actual = await hashModuleZip(path);
        } catch (error) {
          if (error instanceof ZipFormatError) throw new VaultError("upstream_failed", `${what} is not a valid module zip: ${error.message}`, { cause: error });
          throw error;
        }
        if (actual !== expected) throw new VaultError("upstream_failed", `${what} failed verification against the checksum database: ${actual}, expected ${expected}`);
      } finally {
        await release();
      }
    },
    abandon: release,
  };
}
