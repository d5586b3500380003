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
  /** An S3-compatible server (MinIO, Ceph, R2 ...); AWS S3 when absent. */
  readonly endpoint_url?: string;
  /** Default: the AWS chain's (`AWS_REGION`, the profile), else us-east-1. */
  readonly region?: string;
  /** Both or neither; without them the AWS credential chain (environment, profile, roles) is used. */
  readonly s3_access_key?: string;
  readonly s3_secret_key?: string;
  /** Key prefix inside the bucket, for sharing one bucket (a `/` is added when missing). */
  readonly prefix?: string;
  /** Path-style URLs (`endpoint/bucket/key`); default: true when `endpoint_url` is set. */
  readonly force_path_style?: boolean;
  /**
   * Create-only and compare-and-swap writes: with S3's conditional writes (`native`), or checked
   * with a HEAD before an unconditional write (`emulated`, exact within one process only);
   * `auto` (the default) probes the server once at start.
   */
  readonly conditional_writes?: "auto" | "native" | "emulated";
}
