/**
 * Every tool `artifact-vault setup` knows, by name and alias: adding a client is a `SetupTool`
 * and a line here.
 */
import { aptSetup } from "./apt-tool.js";
import { containerdSetup, dockerSetup, podmanSetup } from "./container-tools.js";
import { goSetup } from "./go-tool.js";
import { huggingFaceSetup } from "./huggingface-tool.js";
import { mavenSetup } from "./maven-tool.js";
import { npmSetup, pnpmSetup, yarnSetup } from "./npm-tools.js";
import { pipSetup, uvSetup } from "./python-tools.js";
import { bundlerSetup, gemSetup } from "./ruby-tools.js";
import type { SetupTool } from "./setup-tool.js";

export const SETUP_TOOLS: readonly SetupTool[] = [pipSetup, uvSetup, npmSetup, pnpmSetup, yarnSetup, dockerSetup, containerdSetup, podmanSetup, aptSetup, goSetup, mavenSetup, gemSetup, bundlerSetup, huggingFaceSetup];

const BY_NAME: ReadonlyMap<string, SetupTool> = new Map(SETUP_TOOLS.flatMap((tool) => [tool.name, ...(tool.aliases ?? [])].map((name) => [name, tool] as const)));

/** Every name `setup` accepts, aliases included. */
export const SETUP_TOOL_NAMES: readonly string[] = [...BY_NAME.keys()];

export function setupTool(name: string): SetupTool | undefined {
  return BY_NAME.get(name);
}
