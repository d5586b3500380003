import { z } from "zod";
import { duration, httpUrl, optionalText, text } from "../../core/config/scalars.js";
import { upstreamRequestFields } from "../upstream-request-fields.js";

export const PYPI_INDEX_URL = "https://pypi.org/simple";
export const PYPI_PACKAGES_URL = "https://files.pythonhosted.org/packages";

/** Options of the `pypi` backend, with the source design's keys. */
export const pypiBackendConfigSchema = z
  .strictObject({
    prefix: text,
    /** The simple index (PEP 503/691), e.g. `https://pypi.org/simple` or a devpi/Artifactory/Nexus index. */
    index_url: httpUrl.default(PYPI_INDEX_URL),
    /**
     * Where the index's file links point. Default: files.pythonhosted.org for PyPI, otherwise the
     * index host itself (private indexes serve their files from their own host).
     */
    packages_url: httpUrl.optional(),
    /** Basic auth for the index (and for `packages_url` when it is on the index's host). */
    username: optionalText,
    password: optionalText,
    /** `timeout` and `retries`. */
    ...upstreamRequestFields,
    /** Freshness of index pages (default: `cache.metadata_ttl`). Files never change. */
    ttl: duration().optional(),
  })
  .transform((config) => ({
    ...config,
    packages_url: config.packages_url ?? (sameUrl(config.index_url, PYPI_INDEX_URL) ? PYPI_PACKAGES_URL : `${new URL(config.index_url).origin}/`),
  }));

export type PypiBackendConfig = z.output<typeof pypiBackendConfigSchema>;

function sameUrl(a: string, b: string): boolean {
  const strip = (url: string): string => url.replace(/\/+$/, "");
  return strip(a) === strip(b);
}
