/**
 * The artifact-vault object store client: `import { RestStore } from "artifact-vault/client"`.
 * See `RestStore` for the retry, streaming and error contracts.
 */
export {
  RestStore,
  type CallOptions,
  type GetStreamOptions,
  type KeysOptions,
  type ListOptions,
  type ListPage,
  type ObjectStat,
  type Progress,
  type ProgressListener,
  type PutOptions,
  type PutResult,
  type PutStreamOptions,
  type RestStoreOptions,
  type UploadSource,
} from "./rest-store.js";
export {
  AuthError,
  NotFoundError,
  NotSupportedError,
  PreconditionFailedError,
  RateLimitedError,
  RestStoreError,
  VaultConnectionError,
  VaultHttpError,
  type RestStoreErrorOptions,
} from "./errors.js";
export { encodeKeyPath } from "./key-path.js";
export { systemClock, type RetryClock, type RetryEvent } from "./retry.js";
