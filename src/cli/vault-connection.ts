import { usageError } from "./cli-errors.js";
import type { CliIo } from "./cli-io.js";

/** Where the client commands (`objects`, `cache`) find the vault unless told otherwise. */
export const DEFAULT_VAULT_URL = "http://127.0.0.1:8080";

/** `--url` and `--api-key`, shared by every command that talks to a running vault. */
export interface ConnectionOptions {
  readonly url?: string;
  readonly apiKey?: string;
}

/** The vault's base URL from `--url`, else `$VAULT_URL`, else the default; bad ones are usage errors. */
export function vaultUrl(options: ConnectionOptions, io: CliIo): string {
  const fromEnv = io.env["VAULT_URL"]?.trim();
  const [value, source] =
    options.url !== undefined
      ? [options.url, "--url"]
      : fromEnv !== undefined && fromEnv !== ""
        ? [fromEnv, "VAULT_URL"]
        : [DEFAULT_VAULT_URL, "the default URL"];
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw usageError(`${source}: not a URL: ${JSON.stringify(value)} (expected e.g. ${DEFAULT_VAULT_URL})`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw usageError(`${source}: expected an http:// or https:// URL, got ${JSON.stringify(value)}`);
  }
  return value;
}
