import { z } from "zod";
import { boolean, duration, httpUrl, integer, optionalText, text } from "../../core/config/scalars.js";

/** Options of the `apt` backend: one Debian or Ubuntu mirror (`deb.debian.org/debian`, `security.debian.org/debian-security`, ...). */
export const aptBackendConfigSchema = z.strictObject({
  prefix: text,
  /** The mirror's base URL: the directory holding `dists/` and `pool/`. */
  mirror_url: httpUrl,
  username: optionalText,
  password: optionalText,
  /** Seconds for connect, headers and between body chunks. */
  timeout: integer(1).default(30),
  /** Freshness of `dists/` metadata (default: `cache.metadata_ttl`). `pool/` and `by-hash/` files never change. */
  ttl: duration().optional(),
  /** Attempts before the first byte for connection errors and 502/503/504. */
  retries: integer(1, 10).default(3),
  /**
   * Also answer apt's proxy mode (`Acquire::http::Proxy "http://vault:8080/"` with unchanged
   * sources lists) for URLs under `mirror_url`. Other hosts are refused without a request.
   */
  proxy_mode: boolean.default(true),
});

export type AptBackendConfig = z.output<typeof aptBackendConfigSchema>;
