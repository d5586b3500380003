/**
 * The results table every benchmark prints: each figure for the vault and the reference system,
 * their ratio (vault ÷ reference), the target, and PASS / MISS (or "info" for figures without a
 * target). Notes under the table explain anything a reader needs to trust the numbers.
 */

export interface Row {
  readonly measurement: string;
  readonly unit: string;
  /** undefined: not measured in this run. */
  readonly vault: number | undefined;
  /** undefined: the reference has no such figure (shown as n/a). */
  readonly reference: number | undefined;
  /**
   * The reference system of this row when it is not the table's (e.g. "upstream direct" for a
   * cache miss compared with no cache at all). A table with such rows gets a "reference" column.
   */
  readonly against?: string;
  /** Overrides the vault ÷ reference column (e.g. "1.08 ÷10k" for a scaling ratio). */
  readonly ratioText?: string;
  readonly target: string;
  /** true PASS, false MISS, undefined: informational. */
  readonly pass: boolean | undefined;
}

export function formatNumber(value: number | undefined): string {
  if (value === undefined) return "n/a";
  if (!Number.isFinite(value)) return "–";
  const abs = Math.abs(value);
  const digits = abs >= 100 ? 0 : abs >= 10 ? 1 : abs >= 1 ? 2 : 3;
  return value.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

export function ratio(vault: number | undefined, reference: number | undefined): number | undefined {
  if (vault === undefined || reference === undefined || reference === 0) return undefined;
  return vault / reference;
}

export function renderTable(
  title: string,
  referenceName: string,
  rows: readonly Row[],
  notes: readonly string[],
): string {
  const perRow = rows.some((row) => row.against !== undefined);
  const header = perRow
    ? ["measurement", "unit", "vault", "ref", "reference", "vault÷ref", "target", "result"]
    : ["measurement", "unit", "vault", referenceName, `vault÷${referenceName}`, "target", "result"];
  const cells = rows.map((row) => {
    const r = ratio(row.vault, row.reference);
    return [
      row.measurement,
      row.unit,
      formatNumber(row.vault),
      formatNumber(row.reference),
      ...(perRow ? [row.against ?? referenceName] : []),
      row.ratioText ?? (r === undefined ? "–" : `${r.toFixed(2)}×`),
      row.target,
      row.vault === undefined ? "not run" : row.pass === undefined ? "info" : row.pass ? "PASS" : "MISS",
    ];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((c) => (c[i] ?? "").length)));
  const numeric = new Set(perRow ? [2, 3, 5] : [2, 3, 4]);
  const line = (c: readonly string[]): string =>
    c
      .map((text, i) => (numeric.has(i) ? text.padStart(widths[i] ?? 0) : text.padEnd(widths[i] ?? 0)))
      .join("  ")
      .trimEnd();
  const rule = widths.map((w) => "-".repeat(w)).join("  ");
  const passed = rows.filter((row) => row.pass === true).length;
  const targets = rows.filter((row) => row.pass !== undefined && row.vault !== undefined).length;
  return [
    title,
    "",
    line(header),
    rule,
    ...cells.map(line),
    rule,
    `targets met: ${passed}/${targets}`,
    ...(notes.length > 0 ? ["", ...notes.map((note) => `- ${note}`)] : []),
  ].join("\n");
}
