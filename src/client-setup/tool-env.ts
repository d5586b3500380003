/** Where a tool looks for its per-user files, from the environment it runs in (as `SetupInput` gives it). */
import { isAbsolute, join } from "node:path";
import type { SetupInput } from "./setup-tool.js";

/** `$XDG_CONFIG_HOME`, else `~/.config` (a relative XDG_CONFIG_HOME is ignored, as XDG tells programs to). */
export function xdgConfigHome(input: SetupInput): string {
  const configured = input.env["XDG_CONFIG_HOME"];
  return configured !== undefined && isAbsolute(configured) ? configured : join(input.home, ".config");
}

/** An absolute path from the environment variable `name`, if it holds one. */
export function absoluteFromEnv(input: SetupInput, name: string): string | undefined {
  const value = input.env[name];
  return value !== undefined && isAbsolute(value) ? value : undefined;
}

/** Notes naming the environment variables set here that would override the written file. */
export function overriddenBy(input: SetupInput, names: readonly string[], file: string): string[] {
  return names.filter((name) => (input.env[name] ?? "") !== "").map((name) => `${name} is set in this environment and takes precedence over ${file}: unset it`);
}
