/** A list of vault paths or URLs → one artifact each (any backend: what a GET of it caches). */
import { pathOnVault, type ListedPath } from "./vault-urls.js";
import type { WarmSource } from "./warm-run.js";

export function pathsSource(entries: readonly ListedPath[], base: URL): WarmSource {
  return {
    run: async (context) => {
      for (const entry of entries) {
        if ("refused" in entry) context.failed(entry.refused, entry.reason);
        else context.artifact(entry.url, pathOnVault(base, entry.url));
      }
    },
  };
}
