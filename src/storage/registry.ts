import { VaultError } from "../core/errors.js";
import { FilesystemDriver } from "./filesystem-driver.js";
import { MemoryDriver } from "./memory-driver.js";
import type { StorageDriver } from "./storage-driver.js";
import type { StoreConfig } from "./store-config.js";
import type { StoreSharing } from "./store-sharing.js";

/** What the composition root can hand every driver (all optional). */
export interface StorageDriverDeps {
  /** Where a driver reports recoverable oddities (corrupt or foreign files). */
  readonly onWarning?: (message: string) => void;
  /**
   * Keeps one face's keys apart from the other's in the same configured store: the vault's cache
   * opens the store with namespace "cache" (a `cache/` directory under a filesystem root), so no
   * object-API key, whatever its scope, can read or overwrite a cached artifact.
   */
  readonly namespace?: string;
  /**
   * How the vault's worker processes share a filesystem store (its commit lock and the news of
   * each change): one per driver, i.e. per namespace. The memory and S3 drivers ignore it.
   */
  readonly sharing?: StoreSharing;
}

type ConfigOf<T extends StoreConfig["type"]> = Extract<StoreConfig, { type: T }>["config"];

type DriverFactories = {
  readonly [T in StoreConfig["type"]]: (config: ConfigOf<T>, deps: StorageDriverDeps) => Promise<StorageDriver>;
};

/** One line per driver type: adding a driver is adding a line (and running the contract suite). */
const FACTORIES: DriverFactories = {
  memory: async () => new MemoryDriver(),
  // The namespace is a directory below root_path that the driver guards like the rest of its tree.
  filesystem: (config, deps) =>
    FilesystemDriver.open({
      ...config,
      ...(deps.namespace === undefined ? {} : { namespace: deps.namespace }),
      ...(deps.onWarning === undefined ? {} : { onWarning: deps.onWarning }),
      ...(deps.sharing === undefined ? {} : { sharing: deps.sharing }),
    }),
  // The namespace is a key prefix below the configured one (`<prefix>cache/`). Loaded only when
  // configured: the AWS SDK costs ~25 MB of memory in every vault that does not use it.
  s3: async (config, deps) => {
    const { S3Driver } = await import("./s3-driver.js");
    return S3Driver.open({
      ...config,
      ...(deps.namespace === undefined ? {} : { namespace: deps.namespace }),
      ...(deps.onWarning === undefined ? {} : { onWarning: deps.onWarning }),
      ...(deps.sharing === undefined ? {} : { sharing: deps.sharing }),
    });
  },
};

/** Opens the driver a store's config names (aliases are resolved by the config loader). */
export async function createStorageDriver(store: StoreConfig, deps: StorageDriverDeps = {}): Promise<StorageDriver> {
  const type: string = store.type;
  if (!Object.hasOwn(FACTORIES, type)) {
    throw new VaultError("bad_request", `unknown storage type "${type}"`);
  }
  const factory = FACTORIES[store.type] as (config: StoreConfig["config"], deps: StorageDriverDeps) => Promise<StorageDriver>;
  return factory(store.config, deps);
}
