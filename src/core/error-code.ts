/**
 * The error's `code`, or its cause's: undici and Node wrap some socket errors, and a failed
 * connection to every address of a host comes as an AggregateError.
 */
export function errorCode(error: unknown): string | undefined {
  for (let current = error, depth = 0; current !== undefined && current !== null && depth < 4; depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === "string") return code;
    const first = current instanceof AggregateError ? (current.errors as unknown[])[0] : undefined;
    current = first ?? (current as { cause?: unknown }).cause;
  }
  return undefined;
}
