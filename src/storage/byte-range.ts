import { VaultError } from "../core/errors.js";
import type { ReadOptions } from "./storage-driver.js";

/**
 * The inclusive byte range a read covers: the whole object (`end` is -1 when it is empty) or the
 * asked-for range, which must lie within the object (else `range_not_satisfiable`).
 */
export function resolveRange(options: ReadOptions, size: number): { start: number; end: number } {
  if (options.range === undefined) return { start: 0, end: size - 1 };
  const { start, end } = options.range;
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || start < 0 || end < start || end >= size) {
    throw new VaultError("range_not_satisfiable", `bytes ${start}-${end} are not within the object's ${size} bytes`);
  }
  return { start, end };
}
