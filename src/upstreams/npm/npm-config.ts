import { z } from "zod";
import { duration, httpUrl, integer, optionalText, text } from "../../core/config/scalars.js";

export const NPM_REGISTRY_URL = "https://registry.npmjs.org";

/** Options of the `npm` backend. */
export const npmBackendConfigSchema = z
  .strictObject({
    prefix: text,
    /** The upstream registry: the public one, or Verdaccio, Artifactory, Nexus, GitHub Packages... */
    registry_url: httpUrl.default(NPM_REGISTRY_URL),
    /** A bearer token for a private registry (`_authToken` in an .npmrc). */
    token: optionalText,
    /** The name of an environment variable that holds the token (read at start), instead of `token`. */
    token_env: optionalText,
    /** Basic auth to the registry instead of a token. */
    username: optionalText,
    password: optionalText,
    /** Seconds for connect, headers and between body chunks. */
    timeout: integer(1).default(30),
    /** Freshness of packuments (default: `cache.metadata_ttl`). Tarballs never change. */
    ttl: duration().optional(),
    /** Attempts before the first byte for connection errors and 502/503/504. */
    retries: integer(1, 10).default(3),
  })
  .superRefine((config, ctx) => {
    if (config.token !== undefined && config.token_env !== undefined) {
      ctx.addIssue({ code: "custom", path: ["token_env"], message: "give either token or token_env, not both" });
    }
    if ((config.token !== undefined || config.token_env !== undefined) && (config.username !== undefined || config.password !== undefined)) {
      ctx.addIssue({ code: "custom", path: ["username"], message: "give either a token or username/password, not both" });
    }
  });

export type NpmBackendConfig = z.output<typeof npmBackendConfigSchema>;
