import { VaultError } from "../core/errors.js";
import type { Scope } from "./tokens-file.js";

/** Who is asking: a named token with its scopes, or an anonymous client (proxy routes only). */
export interface Principal {
  readonly name: string;
  readonly scopes: ReadonlySet<Scope>;
  readonly anonymous: boolean;
}

export const ANONYMOUS: Principal = { name: "anonymous", scopes: new Set<Scope>(["read"]), anonymous: true };

/** The access policy: a route names the scope its action needs; a principal either has it or not. */
export function requireScope(principal: Principal, scope: Scope): void {
  if (!principal.scopes.has(scope)) {
    throw new VaultError("forbidden", `this token lacks the '${scope}' scope`);
  }
}
