/**
 * The go command, pointed at the vault's `go` backend (`<vault><prefix>`, the README's "Go
 * modules" section) through its environment file — the `KEY=value` file `go env -w` writes:
 * `$GOENV`, else `$XDG_CONFIG_HOME/go/env`, else `~/.config/go/env`. Only the `GOPROXY=` line is
 * the vault's; every other line stays.
 *
 * The go command sends credentials only over https: a token goes into an https GOPROXY as its
 * password (`https://x:<token>@host/go/`), and is refused with an http `--url`.
 */
import { join } from "node:path";
import { usageError } from "./failure.js";
import { joinLines, splitLines } from "./config-text.js";
import type { ConfigFile, SetupInput, SetupPlan, SetupTool } from "./setup-tool.js";
import { absoluteFromEnv, overriddenBy, xdgConfigHome } from "./tool-env.js";

const GO_PREFIX = "/go/";

/** The go command's own test of a line: the text before the first `=` is exactly the key. */
const isGoProxyLine = (line: string): boolean => line.startsWith("GOPROXY=");

/** `GOPROXY=http://vault.internal:8080/go/`, or with a token `GOPROXY=https://x:<token>@host/go/`. */
function goProxyLine(input: SetupInput): string {
  const { vault, token } = input;
  if (token !== undefined && vault.scheme !== "https") {
    throw usageError(
      "--token: the go command sends credentials only over https, and --url is http://: put TLS in front of the vault and give its https:// URL, or leave out --token",
    );
  }
  const userinfo = token === undefined ? "" : `x:${encodeURIComponent(token)}@`;
  return `GOPROXY=${vault.scheme}://${userinfo}${vault.host}${input.prefix ?? GO_PREFIX}`;
}

function goEnvFile(input: SetupInput): ConfigFile {
  const path = absoluteFromEnv(input, "GOENV") ?? join(xdgConfigHome(input), "go", "env");
  const line = goProxyLine(input);
  return {
    path,
    snippet: `${line}\n`,
    comment: "#",
    secret: input.token !== undefined,
    system: false,
    merge: (existing) => {
      const parsed = splitLines(existing);
      const first = parsed.lines.findIndex(isGoProxyLine);
      const kept = parsed.lines.filter((candidate, index) => index === first || !isGoProxyLine(candidate));
      const lines = first < 0 ? [...kept, line] : kept.map((candidate) => (isGoProxyLine(candidate) ? line : candidate));
      return { text: joinLines({ lines, eol: parsed.eol }) };
    },
  };
}

export const goSetup: SetupTool = {
  name: "go",
  summary: "GOPROXY in the go command's env file (what go env -w writes)",
  defaultPrefix: GO_PREFIX,
  options: [],
  plan: (input): SetupPlan => {
    const file = goEnvFile(input);
    const notes = overriddenBy(input, ["GOPROXY"], file.path);
    if (input.env["GOENV"] === "off") notes.push("GOENV is off in this environment: the go command reads no env file at all");
    notes.push("to fall back to the modules' own repositories when the vault answers 404, append ,direct to GOPROXY (go env -w GOPROXY=...,direct)");
    return { files: [file], notes };
  },
};
