/**
 * A Cargo.lock's crates → the vault's cargo backend: `{prefix}crates/<name>/<version>/download`
 * each, the path cargo asks a sparse registry's `dl` for. The vault reads the crate's index file
 * (through its cache: warmed too) to verify the `.crate` against its `cksum` before it caches it.
 */
import type { LockedCrate } from "./cargo-lock.js";
import { vaultUrlFor } from "./vault-urls.js";
import type { WarmSource } from "./warm-run.js";

export function cargoSource(crates: readonly LockedCrate[], prefix: string, base: URL): WarmSource {
  return {
    run: async (context) => {
      // Names and versions are [A-Za-z0-9_-] and [0-9A-Za-z.+-] (cargo-lock.ts): nothing to encode.
      for (const crate of crates) context.artifact(vaultUrlFor(base, `${prefix}crates/${crate.name}/${crate.version}/download`), `cargo: ${crate.name}@${crate.version}`);
    },
  };
}
