/**
 * npm, pnpm and yarn 1, pointed at the vault's `npm` backend (`<vault><prefix>`, the README's
 * "npm packages" section) through the user's `.npmrc`, which all three read. A token is the
 * registry's `_authToken`; for yarn 1, which sends it for scoped packages only, also that
 * registry's `always-auth`.
 */
import { join } from "node:path";
import { NPMRC, upsertIni, type IniUpdate } from "./config-text.js";
import type { ConfigFile, SetupInput, SetupPlan, SetupTool } from "./setup-tool.js";
import { absoluteFromEnv, overriddenBy } from "./tool-env.js";

const NPM_PREFIX = "/npm/";

/** npm's user config: `$npm_config_userconfig` (npm reads its variables in either case), else `~/.npmrc`. */
function npmrcPath(input: SetupInput): string {
  return absoluteFromEnv(input, "npm_config_userconfig") ?? absoluteFromEnv(input, "NPM_CONFIG_USERCONFIG") ?? join(input.home, ".npmrc");
}

/** `//vault.internal:8080/npm/`: the registry's "nerf dart", the key prefix of its settings. */
const nerfDart = (input: SetupInput): string => `//${input.vault.host}${input.prefix ?? NPM_PREFIX}`;

/** A per-registry key, written or found with or without the slash before the colon. */
function registryKey(input: SetupInput, name: string): IniUpdate["matches"] {
  const dart = nerfDart(input);
  const accepted = new Set([`${dart}:${name}`, `${dart.replace(/\/$/, "")}:${name}`]);
  return (key) => accepted.has(key.trim());
}

function npmrc(input: SetupInput, alwaysAuth: boolean): ConfigFile {
  const path = npmrcPath(input);
  const updates: IniUpdate[] = [{ matches: (key) => key.trim() === "registry", line: `registry=${input.vault.origin}${input.prefix ?? NPM_PREFIX}` }];
  if (input.token !== undefined) {
    updates.push({ matches: registryKey(input, "_authToken"), line: `${nerfDart(input)}:_authToken=${input.token}` });
    if (alwaysAuth) updates.push({ matches: registryKey(input, "always-auth"), line: `${nerfDart(input)}:always-auth=true` });
  }
  return {
    path,
    snippet: `${updates.map((update) => update.line).join("\n")}\n`,
    comment: "#",
    secret: input.token !== undefined,
    system: false,
    merge: (existing) => ({ text: upsertIni(existing, undefined, updates, NPMRC) }),
  };
}

function npmFamily(name: "npm" | "pnpm" | "yarn", summary: string, extraNotes: readonly string[] = []): SetupTool {
  return {
    name,
    summary,
    defaultPrefix: NPM_PREFIX,
    options: [],
    plan: (input): SetupPlan => {
      const file = npmrc(input, name === "yarn");
      const variables = ["npm_config_registry", "NPM_CONFIG_REGISTRY", ...(name === "yarn" ? ["YARN_REGISTRY"] : [])];
      const alwaysAuth =
        name === "yarn" && input.token !== undefined
          ? ["npm >= 9 warns that always-auth in .npmrc is an unknown setting: the line is yarn 1's, which sends the token for unscoped packages only with it"]
          : [];
      return { files: [file], notes: [...overriddenBy(input, variables, file.path), ...extraNotes, ...alwaysAuth] };
    },
  };
}

export const npmSetup = npmFamily("npm", "registry (and _authToken) in the user's .npmrc");
export const pnpmSetup = npmFamily("pnpm", "registry (and _authToken) in the user's .npmrc");
export const yarnSetup = npmFamily("yarn", "yarn 1: registry (and _authToken, always-auth) in the user's .npmrc", [
  "yarn >= 2 does not read .npmrc: set npmRegistryServer in .yarnrc.yml instead",
]);
