import { z } from "zod";
import { duration, httpUrl, text } from "../../core/config/scalars.js";
import { checkUpstreamCredentials, upstreamCredentialFields } from "../upstream-credentials.js";
import { upstreamRequestFields } from "../upstream-request-fields.js";

export const NPM_REGISTRY_URL = "https://registry.npmjs.org";

/** Options of the `npm` backend. */
export const npmBackendConfigSchema = z
  .strictObject({
    prefix: text,
    /** The upstream registry: the public one, or Verdaccio, Artifactory, Nexus, GitHub Packages... */
    registry_url: httpUrl.default(NPM_REGISTRY_URL),
    /** `token` / `token_env` or `username` / `password` for a private upstream. */
    ...upstreamCredentialFields,
    /** `timeout` and `retries`. */
    ...upstreamRequestFields,
    /** Freshness of packuments (default: `cache.metadata_ttl`). Tarballs never change. */
    ttl: duration().optional(),
  })
  .superRefine((config, ctx) => {
    checkUpstreamCredentials(config, ctx);
  });

export type NpmBackendConfig = z.output<typeof npmBackendConfigSchema>;
