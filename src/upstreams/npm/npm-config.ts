import { z } from "zod";
import { duration, httpUrl, integer, text } from "../../core/config/scalars.js";
import { checkUpstreamCredentials, upstreamCredentialFields } from "../upstream-credentials.js";

export const NPM_REGISTRY_URL = "https://registry.npmjs.org";

/** Options of the `npm` backend. */
export const npmBackendConfigSchema = z
  .strictObject({
    prefix: text,
    /** The upstream registry: the public one, or Verdaccio, Artifactory, Nexus, GitHub Packages... */
    registry_url: httpUrl.default(NPM_REGISTRY_URL),
    /** `token` / `token_env` or `username` / `password` for a private upstream. */
    ...upstreamCredentialFields,
    /** Seconds for connect, headers and between body chunks. */
    timeout: integer(1).default(30),
    /** Freshness of packuments (default: `cache.metadata_ttl`). Tarballs never change. */
    ttl: duration().optional(),
    /** Attempts before the first byte for connection errors and 502/503/504. */
    retries: integer(1, 10).default(3),
  })
  .superRefine((config, ctx) => {
    checkUpstreamCredentials(config, ctx);
  });

export type NpmBackendConfig = z.output<typeof npmBackendConfigSchema>;
