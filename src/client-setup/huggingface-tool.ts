/**
 * huggingface_hub (and the hf CLI, transformers, datasets on it), pointed at the vault's
 * `huggingface` backend (the README's "Hugging Face" section). They read the endpoint from the
 * environment only (`HF_ENDPOINT`, no trailing slash), so this tool prints and never writes.
 */
import { join } from "node:path";
import type { SetupPlan, SetupTool } from "./setup-tool.js";

const HF_PREFIX = "/hf/";

export const huggingFaceSetup: SetupTool = {
  name: "hf",
  aliases: ["huggingface"],
  summary: "HF_ENDPOINT (and HF_TOKEN) for huggingface_hub: printed only",
  defaultPrefix: HF_PREFIX,
  options: [],
  plan: (input): SetupPlan => {
    const endpoint = `${input.vault.origin}${(input.prefix ?? HF_PREFIX).replace(/\/$/, "")}`;
    const lines = [`export HF_ENDPOINT=${endpoint}`, ...(input.token === undefined ? [] : [`export HF_TOKEN='${input.token}'`])];
    const text = `${lines.join("\n")}\n`;
    const notes = [`@huggingface/hub does not read HF_ENDPOINT: give it hubUrl: "${endpoint}"`];
    if (input.token !== undefined) {
      notes.push("HF_TOKEN is your vault token, not a hub token; @huggingface/hub takes only hf_ tokens: pass it a fetch that adds Authorization: Bearer <your vault token>");
    }
    return {
      files: [{ path: join(input.home, ".profile"), snippet: text, comment: "#", secret: input.token !== undefined, system: false, merge: () => ({ text }) }],
      notes,
      printOnly: "HF_ENDPOINT is an environment variable, not a file setting: put the printed lines in your shell's profile or your CI's environment yourself",
    };
  },
};
