/**
 * A go.sum's module versions → the vault's go backend, at the GOPROXY paths below its prefix:
 * `.info` and `.zip` for a module's source, `.mod` for its go.mod (what `go mod download` and a
 * build ask the proxy for). The vault verifies each `.zip` and `.mod` against its checksum
 * database before it caches them.
 */
import type { GoSumFile } from "./go-sum.js";
import { vaultUrlFor } from "./vault-urls.js";
import type { WarmSource } from "./warm-run.js";

export function goSource(files: readonly GoSumFile[], prefix: string, base: URL): WarmSource {
  return {
    run: async (context) => {
      for (const file of files) {
        const extensions = file.kind === "source" ? (["info", "zip"] as const) : (["mod"] as const);
        for (const extension of extensions) {
          // Module paths are [A-Za-z0-9._~-] elements and `!`-escaped: nothing to percent-encode.
          context.artifact(vaultUrlFor(base, `${prefix}${file.base}.${extension}`), `go: ${file.module}@${file.version} .${extension}`);
        }
      }
    },
  };
}
