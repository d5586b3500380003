import { z } from "zod";
import { boolean, duration, httpUrl, optionalText, text } from "../../core/config/scalars.js";
import { upstreamRequestFields } from "../upstream-request-fields.js";

/** Options of the `apt` backend: one Debian or Ubuntu mirror (`deb.debian.org/debian`, `security.debian.org/debian-security`, ...). */
export const aptBackendConfigSchema = z.strictObject({
  prefix: text,
  /** The mirror's base URL: the directory holding `dists/` and `pool/`. */
  mirror_url: httpUrl,
  username: optionalText,
  password: optionalText,
  /** `timeout` and `retries`. */
  ...upstreamRequestFields,
  /** Freshness of `dists/` metadata (default: `cache.metadata_ttl`). `pool/` and `by-hash/` files never change. */
  ttl: duration().optional(),
  /**
   * Also answer apt's proxy mode (`Acquire::http::Proxy "http://vault:8080/"` with unchanged
   * sources lists) for URLs under `mirror_url`. Other hosts are refused without a request.
   */
  proxy_mode: boolean.default(true),
});

export type AptBackendConfig = z.output<typeof aptBackendConfigSchema>;
