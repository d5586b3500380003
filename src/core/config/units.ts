/**
 * Sizes and durations as people write them in a config file, parsed once (by the config schema)
 * into plain numbers: bytes and milliseconds. Pure functions; a bad input throws a `UnitError`
 * whose message says what was expected, so the schema can attach the key path.
 */

export class UnitError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UnitError";
  }
}

const SIZE_UNITS: Readonly<Record<string, number>> = {
  b: 1,
  k: 1024,
  kb: 1000,
  kib: 1024,
  m: 1024 ** 2,
  mb: 1000 ** 2,
  mib: 1024 ** 2,
  g: 1024 ** 3,
  gb: 1000 ** 3,
  gib: 1024 ** 3,
  t: 1024 ** 4,
  tb: 1000 ** 4,
  tib: 1024 ** 4,
  p: 1024 ** 5,
  pb: 1000 ** 5,
  pib: 1024 ** 5,
};

const SIZE_PATTERN = /^(\d+(?:\.\d+)?|\.\d+)\s*([a-z]*)$/i;

/**
 * A size in bytes: a plain number (`1024`, `"1024"`) or a number with a unit, `KB`/`MB`/`GB`/`TB`/`PB`
 * (powers of 1000) or `KiB`/`MiB`/`GiB`/`TiB`/`PiB` and the bare letters `K`/`M`/`G`/`T`/`P` (powers of
 * 1024), case-insensitive: `"100GiB"`, `"512MB"`, `"1.5g"`. Fractions round down to whole bytes.
 */
export function parseSize(input: string | number): number {
  if (typeof input === "number") return checkedBytes(input, String(input));
  const match = SIZE_PATTERN.exec(input.trim());
  const unit = match === null ? undefined : SIZE_UNITS[(match[2] ?? "").toLowerCase() || "b"];
  if (match === null || unit === undefined) {
    throw new UnitError(`expected a size like "512MB", "100GiB" or a number of bytes, got ${JSON.stringify(input)}`);
  }
  return checkedBytes(Number(match[1]) * unit, JSON.stringify(input));
}

function checkedBytes(value: number, shown: string): number {
  if (!Number.isFinite(value) || value < 0) {
    throw new UnitError(`expected a size ≥ 0, got ${shown}`);
  }
  const bytes = Math.floor(value);
  if (!Number.isSafeInteger(bytes)) throw new UnitError(`size too large: ${shown}`);
  return bytes;
}

const DURATION_UNITS: Readonly<Record<string, number>> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
};

const DURATION_PART = /(\d+(?:\.\d+)?|\.\d+)(ms|s|m|h|d)/gy;

/**
 * A duration in milliseconds: a plain number of seconds (`30`, `"30"`, `0.25`), or one or more
 * number-unit pairs with units `ms`, `s`, `m`, `h`, `d`: `"250ms"`, `"30s"`, `"10m"`, `"1h30m"`.
 * Fractions of a millisecond round to the nearest millisecond.
 */
export function parseDuration(input: string | number): number {
  if (typeof input === "number") return checkedMs(input * 1000, String(input));
  const text = input.trim();
  if (/^(\d+(?:\.\d+)?|\.\d+)$/.test(text)) return checkedMs(Number(text) * 1000, JSON.stringify(input));
  let total = 0;
  let end = 0;
  DURATION_PART.lastIndex = 0;
  for (let match = DURATION_PART.exec(text); match !== null; match = DURATION_PART.exec(text)) {
    total += Number(match[1]) * (DURATION_UNITS[match[2] ?? ""] ?? Number.NaN);
    end = DURATION_PART.lastIndex;
  }
  if (text === "" || end !== text.length) {
    throw new UnitError(
      `expected a duration like "250ms", "30s", "10m", "1h" or a number of seconds, got ${JSON.stringify(input)}`,
    );
  }
  return checkedMs(total, JSON.stringify(input));
}

function checkedMs(value: number, shown: string): number {
  if (!Number.isFinite(value) || value < 0) throw new UnitError(`expected a duration ≥ 0, got ${shown}`);
  const ms = Math.round(value);
  if (!Number.isSafeInteger(ms)) throw new UnitError(`duration too large: ${shown}`);
  return ms;
}
