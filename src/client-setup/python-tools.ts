/**
 * pip and uv, pointed at the vault's `pypi` backend (`<vault><prefix>simple/`, the README's
 * "Python packages" section). Both write the user's own file: pip's `pip.conf`, uv's `uv.toml`.
 * A token goes into the index URL as pip's `__token__` user (uv reads URL credentials too).
 */
import { devNull } from "node:os";
import { isAbsolute, join } from "node:path";
import { iniEntries, joinLines, PIP_INI, splitLines, tomlSimpleValue, tomlString, tomlTables, upsertIni } from "./config-text.js";
import type { ConfigFile, SetupInput, SetupPlan, SetupTool } from "./setup-tool.js";
import { absoluteFromEnv, overriddenBy, xdgConfigHome } from "./tool-env.js";
import { isLoopback } from "./vault-address.js";

const PYPI_PREFIX = "/pypi/";
/** The name of uv's `[[index]]` entry `setup uv` owns. */
const UV_INDEX_NAME = "artifact-vault";

/** `http://vault.internal:8080/pypi/simple/`, with `__token__:<token>@` when there is a token. */
function indexUrl(input: SetupInput): string {
  const { vault, token } = input;
  const userinfo = token === undefined ? "" : `__token__:${encodeURIComponent(token)}@`;
  return `${vault.scheme}://${userinfo}${vault.host}${input.prefix ?? PYPI_PREFIX}simple/`;
}

const normalisePipKey = (key: string): string => key.trim().toLowerCase().replace(/_/g, "-").replace(/^--/, "");

function pipConfigFile(input: SetupInput): ConfigFile {
  const configured = input.env["PIP_CONFIG_FILE"];
  // pip reads $PIP_CONFIG_FILE last (it wins over the user's file), and no user file when it exists.
  const path = configured !== undefined && configured !== devNull && isAbsolute(configured) ? configured : join(xdgConfigHome(input), "pip", "pip.conf");
  const url = indexUrl(input);
  // pip trusts plain http only on this machine; anywhere else the README's advice is trusted-host.
  const trustedHost = input.vault.scheme === "http" && !isLoopback(input.vault) ? input.vault.hostname : undefined;
  const snippet = ["[global]", `index-url = ${url}`, ...(trustedHost === undefined ? [] : [`trusted-host = ${trustedHost}`]), ""].join("\n");
  return {
    path,
    snippet,
    comment: "#",
    secret: input.token !== undefined,
    system: false,
    merge: (existing) => {
      const entries = iniEntries(existing, PIP_INI);
      const updates = [{ matches: (key: string) => normalisePipKey(key) === "index-url", line: `index-url = ${url}` }];
      if (trustedHost !== undefined) {
        const current = entries
          .filter((entry) => entry.section === "global" && normalisePipKey(entry.key) === "trusted-host")
          .flatMap((entry) => entry.value.split(/\s+/))
          .filter((host) => host !== "");
        const hosts = current.includes(trustedHost) ? current : [...current, trustedHost];
        updates.push({ matches: (key) => normalisePipKey(key) === "trusted-host", line: `trusted-host = ${hosts.join(" ")}` });
      }
      const notes = entries
        .filter((entry) => entry.section !== "global" && entry.section !== undefined && normalisePipKey(entry.key) === "index-url")
        .map((entry) => `${path} also sets index-url in [${entry.section ?? ""}], which pip prefers there: remove it`);
      return { text: upsertIni(existing, "global", updates, PIP_INI), notes };
    },
  };
}

export const pipSetup: SetupTool = {
  name: "pip",
  summary: "index-url in the user's pip.conf",
  defaultPrefix: PYPI_PREFIX,
  options: [],
  plan: (input): SetupPlan => {
    const file = pipConfigFile(input);
    const notes = overriddenBy(input, ["PIP_INDEX_URL"], file.path);
    if (input.env["PIP_CONFIG_FILE"] === devNull) notes.push(`PIP_CONFIG_FILE is ${devNull} in this environment: pip reads no configuration file at all`);
    return { files: [file], notes };
  },
};

function uvConfigFile(input: SetupInput): ConfigFile {
  const path = absoluteFromEnv(input, "UV_CONFIG_FILE") ?? join(xdgConfigHome(input), "uv", "uv.toml");
  const block = ["[[index]]", `name = ${tomlString(UV_INDEX_NAME)}`, `url = ${tomlString(indexUrl(input))}`, "default = true"];
  return {
    path,
    snippet: `${block.join("\n")}\n`,
    comment: "#",
    secret: input.token !== undefined,
    system: false,
    merge: (existing) => {
      const parsed = splitLines(existing);
      const notes: string[] = [];
      const drop: Array<[number, number]> = [];
      for (const table of tomlTables(parsed.lines)) {
        const header = table.header;
        if (header === undefined) {
          // The pre-0.4.23 spelling of the default index would contradict the [[index]] below.
          for (const key of table.keys) {
            if (key.name.join(".") !== "index-url") continue;
            drop.push([key.start, key.end]);
            notes.push(`${path}: replaced its index-url with the [[index]] "${UV_INDEX_NAME}"`);
          }
          continue;
        }
        if (header.name.join(".") === "pip" && table.keys.some((key) => key.name.join(".") === "index-url")) {
          notes.push(`${path} also sets index-url in [pip], which uv pip prefers: remove it`);
        }
        if (!header.arrayTable || header.name.join(".") !== "index") continue;
        const value = (name: string): string | boolean | undefined => {
          const key = table.keys.find((candidate) => candidate.name.join(".") === name);
          return key === undefined ? undefined : tomlSimpleValue(parsed.lines[key.start] ?? "");
        };
        const name = value("name");
        if (name === UV_INDEX_NAME || value("default") === true) {
          drop.push([table.start, table.end]);
          if (name !== UV_INDEX_NAME) notes.push(`${path}: the vault replaces the default index${typeof name === "string" ? ` "${name}"` : ""}`);
        }
      }
      const lines = [...parsed.lines];
      for (const [start, end] of drop.sort((a, b) => b[0] - a[0])) lines.splice(start, end - start);
      while (lines.length > 0 && (lines.at(-1) ?? "").trim() === "") lines.pop();
      const text = joinLines({ lines: [...lines, ...(lines.length === 0 ? [] : [""]), ...block], eol: parsed.eol });
      return { text, notes };
    },
  };
}

export const uvSetup: SetupTool = {
  name: "uv",
  summary: "the default [[index]] in the user's uv.toml (uv >= 0.4.23)",
  defaultPrefix: PYPI_PREFIX,
  options: [],
  plan: (input): SetupPlan => {
    const file = uvConfigFile(input);
    return {
      files: [file],
      notes: overriddenBy(input, ["UV_DEFAULT_INDEX", "UV_INDEX_URL", "UV_INDEX"], file.path),
    };
  },
};
