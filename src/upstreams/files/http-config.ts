import { z } from "zod";
import { duration, httpUrl, optionalText, text } from "../../core/config/scalars.js";
import { upstreamRequestFields } from "../upstream-request-fields.js";

/** Options of the `http` backend (generic files), with the source design's keys. */
export const httpBackendConfigSchema = z.strictObject({
  prefix: text,
  base_url: httpUrl,
  /** `timeout` and `retries`. */
  ...upstreamRequestFields,
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
});

export type HttpBackendConfig = z.output<typeof httpBackendConfigSchema>;
