/**
 * gem and Bundler, pointed at the vault's `rubygems` backend (`<vault><prefix>`, the README's
 * "Ruby gems" section):
 *
 * - gem: `:sources:` in `~/.gemrc` (YAML) becomes the vault alone; every other key stays. A token
 *   is the source URL's password (`http://x:<token>@host/rubygems/`).
 * - Bundler: the vault as rubygems.org's mirror in `~/.bundle/config` (`$BUNDLE_USER_CONFIG`,
 *   `$BUNDLE_USER_HOME/config`), so Gemfiles keep `source "https://rubygems.org"`. A token is the
 *   credentials setting of the vault's URL (`x:<token>`), which Bundler looks up for the mirror.
 *   Keys are spelled as Bundler spells them (`Settings.key_for`: `.` → `__`, `-` → `___`,
 *   upper case; a URL with a trailing slash), one `KEY: "value"` line each; other lines stay.
 */
import { join } from "node:path";
import { createRequire } from "node:module";
import type * as Yaml from "yaml";
import { CliError } from "./failure.js";
import { joinLines, splitLines } from "./config-text.js";
import type { ConfigFile, SetupInput, SetupPlan, SetupTool } from "./setup-tool.js";
import { absoluteFromEnv } from "./tool-env.js";

const RUBYGEMS_PREFIX = "/rubygems/";

/** `http://vault.internal:8080/rubygems/`, with `x:<token>@` when asked to and there is a token. */
function sourceUrl(input: SetupInput, withToken: boolean): string {
  const userinfo = withToken && input.token !== undefined ? `x:${encodeURIComponent(input.token)}@` : "";
  return `${input.vault.scheme}://${userinfo}${input.vault.host}${input.prefix ?? RUBYGEMS_PREFIX}`;
}

function gemrcFile(input: SetupInput): ConfigFile {
  const path = join(input.home, ".gemrc");
  const source = sourceUrl(input, true);
  return {
    path,
    snippet: `---\n:sources:\n- ${source}\n`,
    comment: "#",
    secret: input.token !== undefined,
    system: false,
    merge: (existing) => {
      // Loaded when a .gemrc is merged, not with every command of the CLI (the YAML library is big).
      const { isMap, parseDocument } = createRequire(import.meta.url)("yaml") as typeof Yaml;
      const doc = parseDocument(existing ?? "");
      if (doc.errors.length > 0) {
        throw new CliError(`cannot merge into ${path}: it is not valid YAML (${doc.errors[0]?.message.split("\n")[0] ?? ""}); fix it or move it away, then run setup again`);
      }
      if (doc.contents !== null && !isMap(doc.contents)) {
        throw new CliError(`cannot merge into ${path}: it is not a YAML mapping; fix it or move it away, then run setup again`);
      }
      const notes = doc.has(":sources") ? [`${path}: the vault replaces the sources it listed (gem sources --add puts others back)`] : [];
      doc.set(":sources", [source]);
      const text = doc.toString({ indentSeq: false });
      return { text: existing === undefined || existing.trim() === "" ? `---\n${text}` : text, notes };
    },
  };
}

export const gemSetup: SetupTool = {
  name: "gem",
  summary: "the vault as the one source in ~/.gemrc",
  defaultPrefix: RUBYGEMS_PREFIX,
  options: [],
  plan: (input): SetupPlan => ({
    files: [gemrcFile(input)],
    notes: ["Bundler does not read .gemrc: run setup bundler as well"],
  }),
};

/** Bundler's `Settings.key_for`: `mirror.https://rubygems.org` → `BUNDLE_MIRROR__HTTPS://RUBYGEMS__ORG/`. */
export function bundlerKey(name: string): string {
  const normalised = /^(?:mirror\.)?http/.test(name) && !name.endsWith("/") ? `${name}/` : name;
  return `BUNDLE_${normalised.replace(/\./g, "__").replace(/-/g, "___").toUpperCase()}`;
}

/** Bundler's user config: `$BUNDLE_USER_CONFIG`, else `$BUNDLE_USER_HOME/config`, else `~/.bundle/config`. */
function bundleConfigPath(input: SetupInput): string {
  const userHome = absoluteFromEnv(input, "BUNDLE_USER_HOME");
  return absoluteFromEnv(input, "BUNDLE_USER_CONFIG") ?? (userHome === undefined ? join(input.home, ".bundle", "config") : join(userHome, "config"));
}

function bundleConfigFile(input: SetupInput): ConfigFile {
  const path = bundleConfigPath(input);
  const mirror = sourceUrl(input, false);
  const settings: Array<readonly [string, string]> = [[bundlerKey("mirror.https://rubygems.org"), mirror]];
  if (input.token !== undefined) settings.push([bundlerKey(mirror), `x:${encodeURIComponent(input.token)}`]);
  const lines = settings.map(([key, value]) => `${key}: ${JSON.stringify(value)}`);
  return {
    path,
    snippet: `---\n${lines.join("\n")}\n`,
    comment: "#",
    secret: input.token !== undefined,
    system: false,
    merge: (existing) => {
      const parsed = splitLines(existing);
      let out = parsed.lines.length === 0 ? ["---"] : [...parsed.lines];
      settings.forEach(([key], index) => {
        const line = lines[index] ?? "";
        const isKey = (candidate: string): boolean => candidate.startsWith(`${key}:`);
        const first = out.findIndex(isKey);
        if (first < 0) {
          out.push(line);
          return;
        }
        out = out.filter((candidate, at) => at === first || !isKey(candidate)).map((candidate) => (isKey(candidate) ? line : candidate));
      });
      return { text: joinLines({ lines: out, eol: parsed.eol }) };
    },
  };
}

export const bundlerSetup: SetupTool = {
  name: "bundler",
  aliases: ["bundle"],
  summary: "the vault as rubygems.org's mirror (and its credentials) in ~/.bundle/config",
  defaultPrefix: RUBYGEMS_PREFIX,
  options: [],
  plan: (input): SetupPlan => {
    const file = bundleConfigFile(input);
    const notes = ['Gemfiles keep source "https://rubygems.org": Bundler fetches it through the vault'];
    if ((input.env["BUNDLE_MIRROR__HTTPS://RUBYGEMS__ORG/"] ?? "") !== "") notes.push(`BUNDLE_MIRROR__HTTPS://RUBYGEMS__ORG/ is set in this environment and takes precedence over ${file.path}: unset it`);
    return { files: [file], notes };
  },
};
