/**
 * The gems a `Gemfile.lock` pins: the `specs:` of its `GEM` sections, `name (version)` or
 * `name (version-platform)`, as `.gem` file names (`nokogiri-1.16.0-x86_64-linux.gem`) with the
 * gem source they come from (the section's `remote:`). The vault's rubygems backend serves them
 * at `gems/<file>` and checks each against its version's checksum in `info/<gem>`. `GIT` and
 * `PATH` sections are not from a gem source: their gems are reported as skipped. Dependency lines
 * (indented deeper), `PLATFORMS`, `DEPENDENCIES`, `CHECKSUMS` and the rest are not gems to fetch.
 * Pure.
 */
import type { UnwarmedInput } from "./unwarmed-input.js";

export interface LockedGem {
  /** `name-version[-platform]`, the `.gem` file's name without the extension. */
  readonly fullName: string;
  /** The `remote:` of its `GEM` section (`https://rubygems.org/`). */
  readonly remote: string;
}

export interface GemfileLockGems {
  readonly gems: readonly LockedGem[];
  /** Gems of `GIT` and `PATH` sections: listed, not failures. */
  readonly skipped: readonly UnwarmedInput[];
  /** Gem lines that name no gem file a source could serve: failures. */
  readonly invalid: readonly UnwarmedInput[];
}

/** `    name (version)` in a section's `specs:` (four spaces; a dependency has six). */
const GEM_LINE = /^ {4}([^ ()]+) \(([^ ()]+)\)$/;
/** As the rubygems backend accepts a `.gem` file name (`rubygems-paths.ts`). */
const FULL_NAME = /^[A-Za-z0-9_-][A-Za-z0-9._-]*-[0-9][A-Za-z0-9._-]*$/;

/** Throws an Error when the text has no `GEM`, `GIT` or `PATH` section (it is no Gemfile.lock). */
export function parseGemfileLock(text: string): GemfileLockGems {
  const gems: LockedGem[] = [];
  const skipped: Array<{ text: string; reason: string }> = [];
  const invalid: Array<{ text: string; reason: string }> = [];
  const seen = new Set<string>();
  let section: string | undefined;
  let sources = 0;
  let remote: string | undefined;
  let inSpecs = false;
  for (const line of text.split(/\r?\n/)) {
    if (/^[A-Z]/.test(line)) {
      section = line.trim();
      if (section === "GEM" || section === "GIT" || section === "PATH") sources++;
      remote = undefined;
      inSpecs = false;
      continue;
    }
    if (section !== "GEM" && section !== "GIT" && section !== "PATH") continue;
    const remoteLine = /^ {2}remote: (\S+)$/.exec(line);
    if (remoteLine !== null) {
      remote ??= remoteLine[1];
      continue;
    }
    if (/^ {2}\S/.test(line)) {
      inSpecs = line === "  specs:";
      continue;
    }
    if (!inSpecs) continue;
    const gemLine = GEM_LINE.exec(line);
    if (gemLine === null) continue; // a dependency line, or blank
    const [, name = "", version = ""] = gemLine;
    const text = `${name} ${version}`;
    if (section !== "GEM") {
      skipped.push({ text, reason: `not from a gem source (${section === "GIT" ? `git: ${remote ?? "?"}` : `path: ${remote ?? "?"}`})` });
      continue;
    }
    const fullName = `${name}-${version}`;
    if (!FULL_NAME.test(fullName) || fullName.length > 256) {
      invalid.push({ text, reason: "not a gem name and version a gem source serves" });
      continue;
    }
    if (remote === undefined) {
      invalid.push({ text, reason: "its GEM section names no remote" });
      continue;
    }
    const key = `${remote} ${fullName}`;
    if (seen.has(key)) continue;
    seen.add(key);
    gems.push({ fullName, remote });
  }
  if (sources === 0) throw new Error("no GEM, GIT or PATH section: not a Gemfile.lock");
  return { gems, skipped, invalid };
}
