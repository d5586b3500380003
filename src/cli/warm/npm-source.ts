/**
 * A lockfile's tarballs → the vault's npm backend, at the public registry's paths below its
 * prefix (`{prefix}@scope/name/-/name-1.0.0.tgz`): the vault reads the package's packument
 * itself to verify each tarball against its `dist.integrity`, as it does for `npm ci`.
 */
import { vaultUrlFor } from "./vault-urls.js";
import type { LockedTarball } from "./package-lock.js";
import type { WarmSource } from "./warm-run.js";

export function npmSource(tarballs: readonly LockedTarball[], prefix: string, base: URL): WarmSource {
  return {
    run: async (context) => {
      for (const tarball of tarballs) {
        // `@` stays literal (as npm writes these paths); everything else is encoded per segment.
        const path = tarball.path
          .split("/")
          .map((segment) => encodeURIComponent(segment).replace(/^%40/, "@"))
          .join("/");
        context.artifact(vaultUrlFor(base, `${prefix}${path}`), `npm: ${tarball.name}@${tarball.version}`);
      }
    },
  };
}
