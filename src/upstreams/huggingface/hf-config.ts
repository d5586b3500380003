import { z } from "zod";
import { duration, httpUrl, text } from "../../core/config/scalars.js";
import { checkUpstreamCredentials, upstreamCredentialFields } from "../upstream-credentials.js";
import { upstreamRequestFields } from "../upstream-request-fields.js";

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
    /** `timeout` and `retries`. */
    ...upstreamRequestFields,
    /** Freshness of branches and tags (which commit they name) and of API answers (default: `cache.metadata_ttl`). */
    ttl: duration().optional(),
  })
  .superRefine((config, ctx) => checkUpstreamCredentials(config, ctx));

export type HuggingFaceBackendConfig = z.output<typeof huggingFaceBackendConfigSchema>;
