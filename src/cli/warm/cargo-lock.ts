/**
 * The registry crates a `Cargo.lock` pins: `[[package]]` entries whose `source` is crates.io's
 * index (`registry+https://github.com/rust-lang/crates.io-index`, or the sparse
 * `sparse+https://index.crates.io/`), as `{name, version}` — the vault's cargo backend serves them
 * at `crates/<name>/<version>/download` and reads their index file itself to verify each one.
 * Entries without a `source` are the workspace's own crates (left out silently); git and path
 * sources and other registries are reported as skipped (which vault prefix fronts another
 * registry is not known here: list its downloads as vault paths). Lockfile versions 1 to 4. Pure.
 */
import { parse } from "smol-toml";
import type { UnwarmedInput } from "./unwarmed-input.js";

export interface LockedCrate {
  readonly name: string;
  readonly version: string;
}

export interface CargoLockCrates {
  readonly crates: readonly LockedCrate[];
  /** Not for the vault (git, path, another registry): listed, not failures. */
  readonly skipped: readonly UnwarmedInput[];
  /** A crates.io entry with a name or version no registry serves: failures. */
  readonly invalid: readonly UnwarmedInput[];
}

const CRATES_IO_SOURCES = new Set(["registry+https://github.com/rust-lang/crates.io-index", "sparse+https://index.crates.io/"]);
/** As the cargo backend accepts them (`sparse-index.ts`). */
const CRATE_NAME = /^[A-Za-z0-9_-]{1,64}$/;
const CRATE_VERSION = /^[0-9A-Za-z.+-]{1,128}$/;

/** Throws an Error naming what is wrong when the text is not a Cargo.lock. */
export function parseCargoLock(text: string): CargoLockCrates {
  let document: Record<string, unknown>;
  try {
    document = parse(text);
  } catch (error) {
    throw new Error(`not TOML: ${(error as Error).message.split("\n")[0] ?? ""}`);
  }
  const packages = document["package"];
  if (!Array.isArray(packages)) throw new Error("no [[package]] entries: not a Cargo.lock");
  const crates: LockedCrate[] = [];
  const skipped: Array<{ text: string; reason: string }> = [];
  const invalid: Array<{ text: string; reason: string }> = [];
  const seen = new Set<string>();
  for (const [index, entry] of packages.entries()) {
    const { name, version, source } = (entry ?? {}) as Record<string, unknown>;
    if (typeof name !== "string" || typeof version !== "string") throw new Error(`[[package]] number ${index + 1} has no name and version`);
    const text = `${name}@${version}`;
    if (source === undefined) continue; // a crate of the workspace itself
    const sourceText = typeof source === "string" ? source : JSON.stringify(source);
    if (!CRATES_IO_SOURCES.has(sourceText.split("#")[0] ?? "")) {
      const kind = /^(\w+)\+/.exec(sourceText)?.[1] ?? "unknown";
      skipped.push({ text, reason: kind === "registry" || kind === "sparse" ? `from another registry (${sourceText})` : `not from a registry (${kind} source)` });
      continue;
    }
    if (!CRATE_NAME.test(name) || !CRATE_VERSION.test(version)) {
      invalid.push({ text, reason: "not a crate name and version a registry serves" });
      continue;
    }
    if (seen.has(text)) continue;
    seen.add(text);
    crates.push({ name, version });
  }
  return { crates, skipped, invalid };
}
