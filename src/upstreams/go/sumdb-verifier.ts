import type { ArtifactRef } from "../../core/cache/artifact-ref.js";
import type { ArtifactSource, CachedArtifact, UpstreamFetch } from "../../core/cache/artifact-source.js";
import { isVaultError, VaultError } from "../../core/errors.js";
import { readUpstreamBody } from "../upstream-request.js";
import type { ModulePath } from "./module-path.js";
import type { Version } from "./goproxy-paths.js";
import { openSignedNote, parseLookupAnswer, parseTreeHead, recordHashes, type VerifierKey } from "./sumdb-note.js";
import { recordHash, recordIncluded, type Tile } from "./sumdb-tlog.js";

/**
 * The `h1:` hashes the checksum database holds for a module version, proven: its lookup answer
 * (`lookup/<module>@<version>`) carries the record and a tree head; the tree head must be signed
 * by the configured key, and the record must be in that tree (`recordIncluded`, from tiles).
 * Lookups and tiles go through the cache, under the same keys as the go command's own requests
 * for them (which the vault proxies): one upstream request serves both, and a version verified
 * before an outage can still be verified during it.
 */
export interface ModuleHashes {
  /** The module zip's h1 hash. */
  readonly zip: string | undefined;
  /** The go.mod file's h1 hash. */
  readonly mod: string | undefined;
}

export interface SumdbVerifierOptions {
  readonly key: VerifierKey;
  readonly artifacts: ArtifactSource;
  /** The backend's fetch, for the refs below. */
  readonly fetch: UpstreamFetch;
  lookupRef(module: ModulePath, version: Version): ArtifactRef;
  tileRef(tile: Tile): ArtifactRef;
}

/** Lookups and tiles are small: a record and a tree head; 256 hashes. */
const MAX_LOOKUP_BYTES = 64 * 1024;
const MAX_TILE_BYTES = 256 * 32;
/** Versions whose proven hashes are remembered (each is asked for by its .mod, then its .zip). */
const REMEMBERED = 10_000;

export class SumdbVerifier {
  readonly #options: SumdbVerifierOptions;
  readonly #proven = new Map<string, ModuleHashes>();

  constructor(options: SumdbVerifierOptions) {
    this.#options = options;
  }

  /**
   * The proven hashes of `module@version`. Throws VaultError `upstream_failed` when the database
   * has no record of it, cannot be reached (and holds nothing cached), or its answer cannot be
   * proven.
   */
  async hashes(module: ModulePath, version: Version): Promise<ModuleHashes> {
    const id = `${module.path}@${version.version}`;
    const known = this.#proven.get(id);
    if (known !== undefined) return known;
    const ref = this.#options.lookupRef(module, version);
    // A cached lookup (however stale: a record never changes) is proof enough if it proves.
    const cached = await this.#options.artifacts.peek(ref);
    let hashes = cached === undefined ? undefined : await this.#prove(await read(cached, MAX_LOOKUP_BYTES, "a cached lookup"), module, version).catch(() => undefined);
    if (hashes === undefined) {
      let answer: CachedArtifact;
      try {
        answer = await this.#options.artifacts.get(ref, this.#options.fetch);
      } catch (error) {
        if (isVaultError(error, "not_found")) throw new VaultError("upstream_failed", `the checksum database has no record of ${id} (list private modules in nosumdb)`, { cause: error });
        throw error;
      }
      hashes = await this.#prove(await read(answer, MAX_LOOKUP_BYTES, "the checksum database's lookup"), module, version);
    }
    this.#proven.set(id, hashes);
    if (this.#proven.size > REMEMBERED) {
      const oldest = this.#proven.keys().next().value;
      if (oldest !== undefined) this.#proven.delete(oldest);
    }
    return hashes;
  }

  async #prove(body: Buffer, module: ModulePath, version: Version): Promise<ModuleHashes> {
    const id = `${module.path}@${version.version}`;
    const fail = (why: string): never => {
      throw new VaultError("upstream_failed", `the checksum database's answer for ${id} ${why}`);
    };
    const lookup = parseLookupAnswer(body) ?? fail("is malformed");
    const treeText = openSignedNote(lookup.signedTree, this.#options.key) ?? fail(`carries no tree head signed by ${this.#options.key.name}'s key`);
    const tree = parseTreeHead(treeText) ?? fail("carries a malformed tree head");
    const hashes = recordHashes(lookup.record, module.path, version.version) ?? fail("is a record of another module or version");
    if (hashes.zip === undefined && hashes.mod === undefined) fail("lists no h1 hash");
    const readTile = async (tile: Tile): Promise<Buffer> => read(await this.#options.artifacts.get(this.#options.tileRef(tile), this.#options.fetch), MAX_TILE_BYTES, "a tile");
    let included: boolean;
    try {
      included = await recordIncluded(lookup.id, recordHash(lookup.record), tree, readTile);
    } catch (error) {
      // A tile that is missing (404) or malformed is the database's failure, never a 404 of the module.
      if (isVaultError(error) && error.kind !== "not_found" && error.kind !== "bad_request") throw error;
      throw new VaultError("upstream_failed", `the checksum database's tiles for ${id} cannot be read: ${(error as Error).message}`, { cause: error });
    }
    if (!included) fail(`is not in its signed tree (record ${lookup.id} of ${tree.size})`);
    return hashes;
  }
}

async function read(artifact: CachedArtifact, limit: number, what: string): Promise<Buffer> {
  try {
    return artifact.contents ?? (await readUpstreamBody(artifact.body(), limit, what));
  } finally {
    artifact.release();
  }
}
