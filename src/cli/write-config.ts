/**
 * How `setup --write` changes a file, for every tool alike. The rules it keeps:
 *
 * - Nothing is written before every file of the plan was read and merged: a file that cannot be
 *   merged (broken JSON) stops the command with all files untouched.
 * - A file that already says what it should is not touched (no write, no backup).
 * - Before an existing file changes, a copy of it is kept beside it (`<file>.bak-<time>`, or
 *   `<file>.<time>.bak` where the tool's reader skips `*.bak`), with its mode; a backup never
 *   overwrites another.
 * - The new text replaces the file atomically (a temporary file in the same directory, fsynced,
 *   renamed over it): a reader sees the old file or the new one, never a part. Its mode and (as
 *   root) its owner are kept; a file holding the token loses any group and other permissions.
 * - A symbolic link is followed: the file it points at is changed, the link stays.
 * - Below `--root DIR`, nothing is written outside DIR, even through a symbolic link.
 */
import { randomBytes } from "node:crypto";
import { constants } from "node:fs";
import { chmod, chown, copyFile, lstat, mkdir, open, readFile, realpath, rename, rm, stat } from "node:fs/promises";
import { basename, dirname, join, relative, isAbsolute } from "node:path";
import { CliError } from "./cli-errors.js";
import type { ConfigFile } from "../client-setup/setup-tool.js";

export interface PreparedWrite {
  readonly file: ConfigFile;
  /** The path that will be written (below `--root`, links followed). */
  readonly target: string;
  readonly existing: { readonly text: string; readonly mode: number; readonly uid: number; readonly gid: number } | undefined;
  readonly text: string;
  readonly notes: readonly string[];
}

export interface WriteOutcome {
  readonly target: string;
  readonly status: "created" | "updated" | "unchanged";
  /** Where the previous version was kept. */
  readonly backup?: string;
  /** The file's permissions were narrowed to its owner (it holds the token). */
  readonly narrowed?: boolean;
}

const isMissing = (error: unknown): boolean => (error as NodeJS.ErrnoException).code === "ENOENT";

function within(root: string, path: string): boolean {
  const rel = relative(root, path);
  return rel === "" || (!rel.startsWith("..") && !isAbsolute(rel));
}

/** The deepest existing ancestor of `path` (itself if it exists), links resolved. */
async function realAncestor(path: string): Promise<string> {
  for (let current = path; ; current = dirname(current)) {
    try {
      return await realpath(current);
    } catch (error) {
      if (!isMissing(error) || dirname(current) === current) throw error;
    }
  }
}

/** Where `file` is written: below `root` when given, following a link at its path. */
async function targetOf(file: ConfigFile, root: string | undefined): Promise<string> {
  const path = root === undefined ? file.path : join(root, file.path);
  let target = path;
  const link = await lstat(path).catch((error: unknown) => {
    if (isMissing(error)) return undefined;
    throw error;
  });
  if (link?.isSymbolicLink() === true) {
    try {
      target = await realpath(path);
    } catch (error) {
      if (isMissing(error)) throw new CliError(`${path} is a symbolic link to a missing file: fix or remove the link, then run setup again`);
      throw error;
    }
  }
  if (root !== undefined) {
    const realRoot = await realpath(root);
    if (!within(realRoot, await realAncestor(target))) throw new CliError(`${path} leads outside ${root} (through a symbolic link): not written`);
  }
  return target;
}

/** Reads and merges one file; writes nothing. */
export async function prepareWrite(file: ConfigFile, root: string | undefined): Promise<PreparedWrite> {
  const target = await targetOf(file, root);
  let existing: PreparedWrite["existing"];
  try {
    const info = await stat(target);
    if (!info.isFile()) throw new CliError(`${target} is not a regular file: not written`);
    existing = { text: await readFile(target, "utf8"), mode: info.mode & 0o7777, uid: info.uid, gid: info.gid };
  } catch (error) {
    if (!isMissing(error)) throw error;
  }
  const merged = file.merge(existing?.text);
  return { file, target, existing, text: merged.text, notes: merged.notes ?? [] };
}

/** `20250102T030405Z`. */
function stamp(now: Date): string {
  return now.toISOString().replace(/\.\d+Z$/, "Z").replace(/[-:]/g, "");
}

async function backUp(prepared: PreparedWrite, now: Date): Promise<string> {
  const time = stamp(now);
  for (let attempt = 1; ; attempt++) {
    const unique = attempt === 1 ? time : `${time}-${attempt}`;
    const backup = prepared.file.backupEndsInBak === true ? `${prepared.target}.${unique}.bak` : `${prepared.target}.bak-${unique}`;
    try {
      await copyFile(prepared.target, backup, constants.COPYFILE_EXCL);
      return backup;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST" || attempt >= 100) throw error;
    }
  }
}

/** Writes one prepared file (backing up what it replaces). */
export async function commitWrite(prepared: PreparedWrite, now: Date, isRoot: boolean): Promise<WriteOutcome> {
  const { target, existing, file } = prepared;
  if (existing !== undefined && existing.text === prepared.text) return { target, status: "unchanged" };
  const baseMode = existing?.mode ?? (file.secret ? 0o600 : 0o644);
  const mode = file.secret ? baseMode & ~0o077 : baseMode;
  await mkdir(dirname(target), { recursive: true });
  const backup = existing === undefined ? undefined : await backUp(prepared, now);
  const temporary = join(dirname(target), `.${basename(target)}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`);
  try {
    const handle = await open(temporary, "wx", 0o600);
    try {
      await handle.writeFile(prepared.text, "utf8");
      await handle.sync();
    } finally {
      await handle.close();
    }
    await chmod(temporary, mode);
    if (existing !== undefined && isRoot) await chown(temporary, existing.uid, existing.gid);
    await rename(temporary, target);
  } catch (error) {
    await rm(temporary, { force: true });
    throw error;
  }
  return {
    target,
    status: existing === undefined ? "created" : "updated",
    ...(backup === undefined ? {} : { backup }),
    ...(existing !== undefined && mode !== existing.mode ? { narrowed: true } : {}),
  };
}
