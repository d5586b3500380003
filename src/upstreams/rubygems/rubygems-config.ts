import { z } from "zod";
import { duration, httpUrl, optionalText, text } from "../../core/config/scalars.js";
import { upstreamRequestFields } from "../upstream-request-fields.js";

export const RUBYGEMS_SOURCE_URL = "https://rubygems.org";

/** Options of the `rubygems` backend. */
export const rubygemsBackendConfigSchema = z.strictObject({
  prefix: text,
  /** The gem source: rubygems.org, or a private one (Gemstash, Geminabox, Artifactory, Nexus...) serving the compact index. */
  source_url: httpUrl.default(RUBYGEMS_SOURCE_URL),
  /** Basic auth to the source. */
  username: optionalText,
  password: optionalText,
  /** `timeout` and `retries`. */
  ...upstreamRequestFields,
  /** Freshness of `versions`, `names`, `info/<gem>` and the specs files (default: `cache.metadata_ttl`). Gems never change. */
  ttl: duration().optional(),
});

export type RubygemsBackendConfig = z.output<typeof rubygemsBackendConfigSchema>;
