/**
 * A store as configured (after aliases like `AsyncFilesystemStore` are resolved and `${VAR}`s
 * substituted). Produced by `src/config/schema.ts`, consumed by `src/storage/registry.ts`.
 */
export type StoreConfig =
  | { readonly type: "memory"; readonly config: Readonly<Record<string, never>> }
  | { readonly type: "filesystem"; readonly config: FilesystemStoreOptions }
  | { readonly type: "s3"; readonly config: S3StoreOptions };

export interface FilesystemStoreOptions {
  readonly root_path: string;
  /** fsync files and directories on write (default true); off only for throwaway stores. */
  readonly fsync?: boolean;
  /**
   * Permission bits of object files (default 0o600: the service's user only); directories get the
   * same with the execute bits of each readable class (0o600 → 0o700, 0o640 → 0o750).
   */
  readonly file_mode?: number;
}

export interface S3StoreOptions {
  readonly bucket_name: string;
  readonly endpoint_url?: string;
  readonly region?: string;
  readonly s3_access_key?: string;
  readonly s3_secret_key?: string;
  /** Key prefix inside the bucket, for sharing one bucket. */
  readonly prefix?: string;
}
