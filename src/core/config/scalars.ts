/**
 * Scalar schemas shared by the config schema (src/config/) and the backends' own option schemas
 * (each ecosystem's folder): here, below both, so that neither imports the other's folder for them. Values may
 * arrive as strings after `${VAR}` substitution, so numbers and booleans also accept their string
 * spelling. A failed scalar raises a "custom" issue carrying what it expected; `configErrorMap`
 * renders it (with the full path known, so secrets are never echoed).
 */
import { z } from "zod";
import { parseDuration, parseSize, UnitError } from "./units.js";

export interface ExpectedParams {
  readonly expected?: string;
  readonly reason?: string;
}

export function scalar<T>(expected: string, convert: (input: unknown) => T | undefined) {
  return z.unknown().transform((input, ctx): T => {
    const value = convert(input);
    if (value === undefined) {
      ctx.addIssue({ code: "custom", input, params: { expected } satisfies ExpectedParams });
      return z.NEVER;
    }
    return value;
  });
}

export function integer(min: number, max?: number) {
  const expected = max === undefined ? `a number ≥ ${min}` : `a number from ${min} to ${max}`;
  return scalar(expected, (input) => {
    const value = typeof input === "string" && /^\s*\d+\s*$/.test(input) ? Number(input) : input;
    if (typeof value !== "number" || !Number.isSafeInteger(value)) return undefined;
    return value >= min && (max === undefined || value <= max) ? value : undefined;
  });
}

export const boolean = scalar("true or false", (input) => {
  if (typeof input === "boolean") return input;
  if (typeof input !== "string") return undefined;
  const text = input.trim().toLowerCase();
  if (text === "true" || text === "yes" || text === "on" || text === "1") return true;
  if (text === "false" || text === "no" || text === "off" || text === "0") return false;
  return undefined;
});

export const text = z.string().min(1);

/** An optional string where an empty one (`${VAR:-}`) means "not given". */
export const optionalText = z
  .string()
  .optional()
  .transform((value) => (value === "" ? undefined : value));

/**
 * File permission bits as `chmod` writes them: `0640`, `"0640"` or `640` all mean rw-r-----. (YAML
 * reads an unquoted `0640` as the number 640, so a number's digits are read as octal too.) The
 * owner must keep read and write; execute bits are refused (these are data files).
 */
export const fileMode = scalar('a file mode like "0600" or "0640" (owner read and write, no execute bits)', (input) => {
  const digits = typeof input === "number" && Number.isSafeInteger(input) ? String(input) : typeof input === "string" ? input.trim() : undefined;
  if (digits === undefined || !/^0?[0-7]{3}$/.test(digits)) return undefined;
  const mode = Number.parseInt(digits, 8);
  return (mode & 0o600) === 0o600 && (mode & 0o111) === 0 ? mode : undefined;
});

export const httpUrl = scalar("an http(s) URL", (input) => {
  if (typeof input !== "string" || !URL.canParse(input)) return undefined;
  const protocol = new URL(input).protocol;
  return protocol === "http:" || protocol === "https:" ? input : undefined;
});

export function unit(parse: (input: string | number) => number, minimum: number) {
  return z.unknown().transform((input, ctx): number => {
    if (typeof input !== "string" && typeof input !== "number") {
      const expected = parse === parseSize ? 'a size like "512MB" or "100GiB"' : 'a duration like "30s" or "10m"';
      ctx.addIssue({ code: "custom", input, params: { expected } satisfies ExpectedParams });
      return z.NEVER;
    }
    try {
      const value = parse(input);
      if (value < minimum) {
        ctx.addIssue({ code: "custom", input, params: { reason: `must be greater than 0, got ${JSON.stringify(input)}` } });
        return z.NEVER;
      }
      return value;
    } catch (error) {
      if (!(error instanceof UnitError)) throw error;
      ctx.addIssue({ code: "custom", input, params: { reason: error.message } satisfies ExpectedParams });
      return z.NEVER;
    }
  });
}

export const size = (minimum = 0) => unit(parseSize, minimum);
export const duration = (minimum = 0) => unit(parseDuration, minimum);

