import { z } from "zod";
import { duration, httpUrl, integer, text } from "../../core/config/scalars.js";
import { checkUpstreamCredentials, upstreamCredentialFields } from "../upstream-credentials.js";

export const HUGGING_FACE_HUB_URL = "https://huggingface.co";

/** Options of the `huggingface` backend: a Hugging Face hub (the public one by default). */
export const huggingFaceBackendConfigSchema = z
  .strictObject({
    prefix: text,
    /** The hub: its API, and the `resolve` URLs files are downloaded from. */
    endpoint: httpUrl.default(HUGGING_FACE_HUB_URL),
    /** `token` / `token_env`: a hub access token, for gated and private repositories. Sent to the hub only. */
    token: upstreamCredentialFields.token,
    token_env: upstreamCredentialFields.token_env,
    /** Seconds for connect, headers and between body chunks. */
    timeout: integer(1).default(30),
    /** Freshness of branches and tags (which commit they name) and of API answers (default: `cache.metadata_ttl`). */
    ttl: duration().optional(),
    /** Attempts before the first byte for connection errors and 502/503/504. */
    retries: integer(1, 10).default(3),
  })
  .superRefine((config, ctx) => checkUpstreamCredentials(config, ctx));

export type HuggingFaceBackendConfig = z.output<typeof huggingFaceBackendConfigSchema>;
