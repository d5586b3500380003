import { z } from "zod";
import { optionalText } from "../core/config/scalars.js";
import { VaultError } from "../core/errors.js";

/**
 * How a backend authenticates to its upstream, the same keys for every ecosystem that takes
 * them: a bearer `token`, or `token_env` naming the environment variable that holds one (read
 * once, at start: a variable that is not set stops the start, naming the key), or basic auth
 * with `username` / `password`. Spread `upstreamCredentialFields` into a backend's options
 * schema and refine it with `checkUpstreamCredentials`.
 */
export const upstreamCredentialFields = {
  /** A bearer token for a private upstream. */
  token: optionalText,
  /** The name of an environment variable that holds the token (read at start), instead of `token`. */
  token_env: optionalText,
  /** Basic auth to the upstream instead of a token. */
  username: optionalText,
  password: optionalText,
};

export interface UpstreamCredentials {
  readonly token?: string | undefined;
  readonly token_env?: string | undefined;
  readonly username?: string | undefined;
  readonly password?: string | undefined;
}

/** One way of authenticating at a time: a token or token_env, or a username and password. */
export function checkUpstreamCredentials(config: UpstreamCredentials, ctx: z.RefinementCtx): void {
  if (config.token !== undefined && config.token_env !== undefined) {
    ctx.addIssue({ code: "custom", path: ["token_env"], message: "give either token or token_env, not both" });
  }
  if ((config.token !== undefined || config.token_env !== undefined) && (config.username !== undefined || config.password !== undefined)) {
    ctx.addIssue({ code: "custom", path: ["username"], message: "give either a token or username/password, not both" });
  }
}

/** The `Authorization` header the token gives (none without one); `where` names the backend in errors. */
export function bearerHeaders(config: UpstreamCredentials, where: string, env: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const token = config.token ?? tokenFromEnvironment(config.token_env, where, env);
  return token === undefined ? {} : { authorization: `Bearer ${token}` };
}

function tokenFromEnvironment(variable: string | undefined, where: string, env: NodeJS.ProcessEnv): string | undefined {
  if (variable === undefined) return undefined;
  const value = env[variable];
  if (value === undefined || value === "") throw new VaultError("bad_request", `${where}.config.token_env: environment variable ${variable} is not set`);
  return value;
}
