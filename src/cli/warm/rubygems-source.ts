/**
 * A Gemfile.lock's gems → the vault's rubygems backend: `{prefix}gems/<name>-<version>.gem`
 * each, the path Bundler and `gem` fetch. Which backend: rubygems.org's gems go to the
 * `--rubygems-prefix` one; a lockfile written against the vault itself (`source
 * "http://vault:8080/rubygems/"`) names its backend in the remote; gems of another source are
 * skipped (which prefix fronts it is not known here: list those downloads as vault paths). The
 * vault checks each `.gem` against its version's checksum in `info/<gem>` (cached too).
 */
import type { LockedGem } from "./gemfile-lock.js";
import { isVaultUrl, normalisePrefix, vaultUrlFor } from "./vault-urls.js";
import type { WarmSource } from "./warm-run.js";

export function rubygemsSource(gems: readonly LockedGem[], prefix: string, base: URL): WarmSource {
  return {
    run: async (context) => {
      for (const gem of gems) {
        const label = `rubygems: ${gem.fullName}`;
        const backend = backendPrefix(gem.remote, prefix, base);
        // Full names are [A-Za-z0-9._-] (gemfile-lock.ts): nothing to encode.
        if (backend === undefined) context.skipped(label, `from another gem source (${gem.remote})`);
        else context.artifact(vaultUrlFor(base, `${backend}gems/${gem.fullName}.gem`), label);
      }
    },
  };
}

/** The vault prefix serving a lockfile's `remote:`, or undefined when it is neither rubygems.org nor on the vault. */
function backendPrefix(remote: string, prefix: string, base: URL): string | undefined {
  let url: URL;
  try {
    url = new URL(remote);
  } catch {
    return undefined;
  }
  if (url.hostname === "rubygems.org" && (url.pathname === "/" || url.pathname === "")) return prefix;
  if (!isVaultUrl(base, url)) return undefined;
  return normalisePrefix(url.pathname.slice(base.pathname.length));
}
