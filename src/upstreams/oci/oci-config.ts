import { z } from "zod";
import { duration, httpUrl, optionalText, text } from "../../core/config/scalars.js";
import { upstreamRequestFields } from "../upstream-request-fields.js";

/** One upstream registry: where it is, where its tokens come from, and how to log in. */
const registrySchema = z.strictObject({
  registry_url: httpUrl,
  /**
   * The token service (`https://auth.docker.io` for Docker Hub). A `WWW-Authenticate: Bearer`
   * challenge's realm must be on this host or on the registry's own: the vault never sends
   * credentials to a host the config does not name.
   */
  auth_url: httpUrl.optional(),
  /** Basic auth to the registry, or the credentials presented to its token service. */
  username: optionalText,
  password: optionalText,
});

/** Options of the `dockerhub` / `oci` backend, with the source design's keys. */
export const ociBackendConfigSchema = z
  .strictObject({
    prefix: text,
    registry_url: httpUrl.optional(),
    auth_url: httpUrl.optional(),
    username: optionalText,
    password: optionalText,
    /** Several upstreams, tried in order: a 404 or an outage at one moves on to the next. */
    repositories: z.array(registrySchema).min(1).optional(),
    /** `timeout` and `retries`. */
    ...upstreamRequestFields,
    /** Freshness of tags and tag lists (default: `cache.metadata_ttl`). Digests never change. */
    ttl: duration().optional(),
  })
  .superRefine((config, ctx) => {
    const single = config.registry_url !== undefined;
    const several = config.repositories !== undefined;
    if (single === several) {
      ctx.addIssue({
        code: "custom",
        path: single ? ["repositories"] : ["registry_url"],
        message: single ? "give either registry_url or repositories, not both" : "missing: give registry_url (or repositories: [...])",
      });
    }
    if (several && (config.auth_url !== undefined || config.username !== undefined || config.password !== undefined)) {
      ctx.addIssue({ code: "custom", path: ["repositories"], message: "with repositories, give auth_url, username and password per repository" });
    }
  })
  .transform((config) => ({
    prefix: config.prefix,
    timeout: config.timeout,
    ttl: config.ttl,
    retries: config.retries,
    upstreams: config.repositories ?? [{ registry_url: config.registry_url ?? "", auth_url: config.auth_url, username: config.username, password: config.password }],
  }));

export type OciBackendConfig = z.output<typeof ociBackendConfigSchema>;
export type RegistryConfig = OciBackendConfig["upstreams"][number];
