import { z } from "zod";
import { duration, httpUrl, integer, optionalText, text } from "../../core/config/scalars.js";

/** Options of the `http` backend (generic files), with the source design's keys. */
export const httpBackendConfigSchema = z.strictObject({
  prefix: text,
  base_url: httpUrl,
  /** Seconds for connect, headers and between body chunks. */
  timeout: integer(1).default(30),
  username: optionalText,
  password: optionalText,
  /** Freshness of mutable files (default: `cache.metadata_ttl`). */
  ttl: duration().optional(),
  /**
   * Glob patterns (picomatch, matched against the path below the prefix) of files that change
   * upstream and are revalidated after `ttl`, e.g. `["**\/latest/**", "**\/*.xml"]`. Everything
   * else is immutable.
   */
  mutable: z.array(text).default([]),
  /** Attempts before the first byte for connection errors and 502/503/504. */
  retries: integer(1, 10).default(3),
});

export type HttpBackendConfig = z.output<typeof httpBackendConfigSchema>;
