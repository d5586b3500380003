import { z } from "zod";
import { duration, httpUrl, optionalText, text } from "../../core/config/scalars.js";
import { isSumdbName } from "./goproxy-paths.js";
import { KNOWN_SUMDB_KEYS, parseVerifierKey, type VerifierKey } from "./sumdb-note.js";
import { checkUpstreamCredentials, upstreamCredentialFields } from "../upstream-credentials.js";
import { upstreamRequestFields } from "../upstream-request-fields.js";

export const GO_PROXY_URL = "https://proxy.golang.org";

/** A checksum database the backend verifies against and proxies. */
export interface SumdbSetting {
  readonly name: string;
  readonly key: VerifierKey;
  /** Where its lookups and tiles are fetched (no trailing slash). */
  readonly url: string;
}

/**
 * Reads `sumdb` as GOSUMDB is written: `<name>` for a database the go command knows by name
 * (sum.golang.org; sum.golang.google.cn is it at another URL), or `<name>+<hash>+<key>`,
 * optionally followed by a space and the URL to fetch it from (default `https://<name>`).
 * `off` is no database. A string says what is wrong.
 */
export function parseSumdbSetting(value: string): SumdbSetting | undefined | string {
  const setting = value.trim() === "sum.golang.google.cn" ? "sum.golang.org https://sum.golang.google.cn" : value.trim();
  if (setting === "off") return undefined;
  const fields = setting.split(/\s+/);
  if (fields.length > 2) return "give the database as GOSUMDB does: <name> or <name>+<hash>+<key>, then optionally its URL";
  const [given = "", url] = fields;
  const known = KNOWN_SUMDB_KEYS[given];
  if (known === undefined && !given.includes("+")) return `the vault knows no key for ${given}: give its verifier key, <name>+<hash>+<key>, as GOSUMDB does`;
  const key = parseVerifierKey(known ?? given);
  if (typeof key === "string") return key;
  if (!isSumdbName(key.name)) return `${key.name} is not a checksum database name (a host name, optionally with a path)`;
  if (url !== undefined && !/^https?:\/\/[^\s]+$/.test(url)) return "the database's URL must be an http(s) URL";
  return { name: key.name, key, url: (url ?? `https://${key.name}`).replace(/\/+$/, "") };
}

/** Options of the `go` backend: a GOPROXY upstream and, optionally, a checksum database. */
export const goBackendConfigSchema = z
  .strictObject({
    prefix: text,
    /** The upstream module proxy (GOPROXY protocol): the public one, Athens, Artifactory, a file tree behind a web server... */
    proxy_url: httpUrl.default(GO_PROXY_URL),
    /** The checksum database `.zip` and `.mod` files are verified against, as GOSUMDB names it; unset: none. */
    sumdb: optionalText,
    /** Module path patterns the checksum database does not know (private modules), as GONOSUMDB: cached unverified. */
    nosumdb: z.array(text).default([]),
    /** `token` / `token_env` or `username` / `password` for a private upstream. */
    ...upstreamCredentialFields,
    /** `timeout` and `retries`. */
    ...upstreamRequestFields,
    /** Freshness of version lists, `@latest`, version queries and checksum database lookups (default: `cache.metadata_ttl`). */
    ttl: duration().optional(),
  })
  .superRefine((config, ctx) => {
    checkUpstreamCredentials(config, ctx);
    const sumdb = config.sumdb === undefined ? undefined : parseSumdbSetting(config.sumdb);
    if (typeof sumdb === "string") ctx.addIssue({ code: "custom", path: ["sumdb"], message: sumdb });
  })
  .transform((config) => {
    const sumdb = config.sumdb === undefined ? undefined : parseSumdbSetting(config.sumdb);
    return { ...config, sumdb: typeof sumdb === "string" ? undefined : sumdb };
  });

export type GoBackendConfig = z.output<typeof goBackendConfigSchema>;
