import { z } from "zod";
import { duration, httpUrl, integer, optionalText, text } from "../../core/config/scalars.js";

export const RUBYGEMS_SOURCE_URL = "https://rubygems.org";

/** Options of the `rubygems` backend. */
export const rubygemsBackendConfigSchema = z.strictObject({
  prefix: text,
  /** The gem source: rubygems.org, or a private one (Gemstash, Geminabox, Artifactory, Nexus...) serving the compact index. */
  source_url: httpUrl.default(RUBYGEMS_SOURCE_URL),
  /** Basic auth to the source. */
  username: optionalText,
  password: optionalText,
  /** Seconds for connect, headers and between body chunks. */
  timeout: integer(1).default(30),
  /** Freshness of `versions`, `names`, `info/<gem>` and the specs files (default: `cache.metadata_ttl`). Gems never change. */
  ttl: duration().optional(),
  /** Attempts before the first byte for connection errors and 502/503/504. */
  retries: integer(1, 10).default(3),
});

export type RubygemsBackendConfig = z.output<typeof rubygemsBackendConfigSchema>;
