import { z } from "zod";
import { customBackendConfigSchema } from "./custom/custom-config.js";
import { httpBackendConfigSchema } from "./files/http-config.js";
import { ociBackendConfigSchema } from "./oci/oci-config.js";
import { pypiBackendConfigSchema } from "./pypi/pypi-config.js";

/**
 * Every backend type the config may name, with the schema of its `config` block. The config
 * loader checks each backend against its type's schema, so a typo or an unknown type is refused
 * at start with its path; the factories (`registry.ts`) receive the parsed options.
 *
 * Types whose implementation has not landed yet keep their documented keys here so configs stay
 * valid, and `IMPLEMENTED_BACKEND_TYPES` says which can run.
 */
const upstreamCommon = {
  prefix: z.string(),
  timeout: z.unknown().optional(),
  username: z.string().optional(),
  password: z.string().optional(),
  ttl: z.unknown().optional(),
};

export const BACKEND_CONFIG_SCHEMAS: Readonly<Record<string, z.ZodType>> = {
  http: httpBackendConfigSchema,
  pypi: pypiBackendConfigSchema,
  npm: z.looseObject({ ...upstreamCommon, registry_url: z.string().optional() }),
  dockerhub: ociBackendConfigSchema,
  apt: z.looseObject({ ...upstreamCommon, mirror_url: z.string().optional() }),
  custom: customBackendConfigSchema,
};

/** The source design's and users' other names for a type. */
export const BACKEND_TYPE_ALIASES: Readonly<Record<string, string>> = { oci: "dockerhub" };

export const IMPLEMENTED_BACKEND_TYPES: ReadonlySet<string> = new Set(["http", "pypi", "dockerhub", "custom"]);

export function canonicalBackendType(type: string): string {
  return BACKEND_TYPE_ALIASES[type] ?? type;
}
