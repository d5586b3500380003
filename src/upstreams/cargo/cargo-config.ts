import { z } from "zod";
import { duration, httpUrl, optionalText, text } from "../../core/config/scalars.js";
import { checkUpstreamCredentials, upstreamCredentialFields } from "../upstream-credentials.js";
import { checkDownloadTemplate } from "./sparse-index.js";
import { upstreamRequestFields } from "../upstream-request-fields.js";

export const CARGO_INDEX_URL = "https://index.crates.io/";
/** crates.io's `dl`, as its `config.json` gives it. */
export const CARGO_DL_URL = "https://static.crates.io/crates";

/** Options of the `cargo` backend. */
export const cargoBackendConfigSchema = z
  .strictObject({
    prefix: text,
    /** The sparse index (the URL after `sparse+`): crates.io's, or a private registry's. */
    index_url: httpUrl.default(CARGO_INDEX_URL),
    /**
     * Where `.crate` files are downloaded: the `dl` of the upstream's `config.json`, markers and
     * all (`{crate}`, `{version}`, `{prefix}`, `{lowerprefix}`, `{sha256-checksum}`); without
     * markers, `/{crate}/{version}/download` is appended, as cargo does. Default: crates.io's,
     * when `index_url` is crates.io's; another registry's must be given.
     */
    dl_url: optionalText,
    /** `token` / `token_env` or `username` / `password` for a private registry (sent to the index and downloads). */
    ...upstreamCredentialFields,
    /** `timeout` and `retries`. */
    ...upstreamRequestFields,
    /** Freshness of index files (default: `cache.metadata_ttl`). `.crate` files never change. */
    ttl: duration().optional(),
  })
  .superRefine((config, ctx) => {
    checkUpstreamCredentials(config, ctx);
    if (config.dl_url === undefined) {
      if (!isCratesIoIndex(config.index_url)) ctx.addIssue({ code: "custom", path: ["dl_url"], message: "give the registry's download URL (the `dl` of its config.json) when index_url is not crates.io's" });
      return;
    }
    const problem = checkDownloadTemplate(config.dl_url);
    if (problem !== undefined) ctx.addIssue({ code: "custom", path: ["dl_url"], message: problem });
  })
  .transform((config) => ({ ...config, dl_url: config.dl_url ?? CARGO_DL_URL }));

function isCratesIoIndex(url: string): boolean {
  return new URL(url).href.replace(/\/*$/, "/") === CARGO_INDEX_URL;
}

export type CargoBackendConfig = z.output<typeof cargoBackendConfigSchema>;
