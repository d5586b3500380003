/**
 * A strict parser of Prometheus' text exposition format (version 0.0.4), for tests: whatever
 * `/metrics` answers is read the way Prometheus reads it, and anything Prometheus would refuse
 * fails with the line. It checks what the format requires, not how prom-client happens to write:
 *
 * - `# HELP name text` (escapes `\\`, `\n`) and `# TYPE name counter|gauge|histogram|summary|untyped`,
 *   at most once per family, the TYPE before the family's first sample; other comments are free;
 * - samples `name{label="value",...} value [timestamp]`: names `[a-zA-Z_:][a-zA-Z0-9_:]*`, label
 *   names `[a-zA-Z_][a-zA-Z0-9_]*`, label values with the escapes `\\`, `\"`, `\n`, a trailing
 *   comma allowed; values as Go's ParseFloat reads them (so `NaN`, `Nan`, `+Inf`, `-Inf`);
 * - a family's samples in one group, no series twice, no label twice in a series;
 * - histograms: `_bucket` samples with `le`, `_sum` and `_count`; per series a `+Inf` bucket equal
 *   to `_count`, and buckets that never decrease. Summaries: `quantile` on the plain samples.
 *
 * The published JavaScript parsers were each wrong about valid output of prom-client (one drops
 * the labels of a histogram's series, one refuses `NaN`, one skips lines it cannot read), hence
 * this one, with its own tests (`prometheus-text.test.ts`).
 */

export type MetricType = "counter" | "gauge" | "histogram" | "summary" | "untyped";
const TYPES: ReadonlySet<string> = new Set<MetricType>(["counter", "gauge", "histogram", "summary", "untyped"]);

export interface Sample {
  /** The sample's own name: `x_bucket`, `x_sum` and `x_count` for a histogram `x`. */
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
  readonly timestamp?: number;
}

export interface MetricFamily {
  readonly name: string;
  readonly type: MetricType;
  readonly help: string | undefined;
  readonly samples: Sample[];
}

export class PrometheusTextError extends Error {
  constructor(
    readonly line: number,
    reason: string,
    readonly text: string,
  ) {
    super(`line ${line}: ${reason}: ${JSON.stringify(text.length > 200 ? `${text.slice(0, 200)}…` : text)}`);
  }
}

export function parsePrometheusText(text: string): Map<string, MetricFamily> {
  const families = new Map<string, MetricFamily>();
  /** Families whose samples have started, and the one being read (its samples must be contiguous). */
  const started = new Set<string>();
  let current: string | undefined;
  const seen = new Set<string>();
  const typed = new Set<string>();
  const lines = text.split("\n");
  lines.forEach((raw, index) => {
    const lineNumber = index + 1;
    const fail = (reason: string): never => {
      throw new PrometheusTextError(lineNumber, reason, raw);
    };
    const line = raw.replace(/^[ \t]+/, "");
    if (line === "") return;
    if (line.startsWith("#")) {
      const parts = line.slice(1).trimStart().split(/[ \t]+/);
      const keyword = parts[0];
      if (keyword !== "HELP" && keyword !== "TYPE") return; // a plain comment
      const rest = line.slice(1).trimStart().slice(keyword.length).replace(/^[ \t]+/, "");
      const nameEnd = rest.search(/[ \t]|$/);
      const name = rest.slice(0, nameEnd);
      if (!isMetricName(name)) fail(`# ${keyword} without a valid metric name`);
      const value = rest.slice(nameEnd).replace(/^[ \t]+/, "");
      const family = families.get(name) ?? { name, type: "untyped" as MetricType, help: undefined, samples: [] };
      if (keyword === "HELP") {
        if (family.help !== undefined) fail(`a second HELP for ${name}`);
        families.set(name, { ...family, help: unescapeHelp(value) });
      } else {
        if (typed.has(name)) fail(`a second TYPE for ${name}`);
        typed.add(name);
        if (started.has(name)) fail(`the TYPE of ${name} after its samples`);
        if (!TYPES.has(value)) fail(`unknown type ${JSON.stringify(value)}`);
        families.set(name, { ...family, type: value as MetricType });
      }
      return;
    }
    const sample = readSample(line, fail);
    const familyName = familyOf(sample, families);
    if (familyName !== current) {
      if (started.has(familyName)) fail(`samples of ${familyName} in two groups`);
      started.add(familyName);
      current = familyName;
    }
    const family = families.get(familyName) ?? { name: familyName, type: "untyped" as MetricType, help: undefined, samples: [] };
    families.set(familyName, family);
    checkSampleOf(family, sample, fail);
    const series = `${sample.name}${seriesKey(sample.labels)}`;
    if (seen.has(series)) fail("a series given twice");
    seen.add(series);
    family.samples.push(sample);
  });
  for (const family of families.values()) if (family.type === "histogram") checkHistogram(family);
  return families;
}

function readSample(line: string, fail: (reason: string) => never): Sample {
  let at = 0;
  const nameMatch = /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(line);
  if (nameMatch === null) return fail("no metric name");
  const name = nameMatch[0];
  at = name.length;
  const labels: Record<string, string> = {};
  if (line[at] === "{") {
    at++;
    for (;;) {
      at = skipBlanks(line, at);
      if (line[at] === "}") {
        at++;
        break;
      }
      const labelMatch = /^[a-zA-Z_][a-zA-Z0-9_]*/.exec(line.slice(at));
      if (labelMatch === null) return fail("a label without a valid name");
      const label = labelMatch[0];
      at = skipBlanks(line, at + label.length);
      if (line[at] !== "=") return fail(`no = after label ${label}`);
      at = skipBlanks(line, at + 1);
      if (line[at] !== '"') return fail(`the value of label ${label} is not quoted`);
      at++;
      let value = "";
      for (;;) {
        const char = line[at];
        if (char === undefined) return fail(`the value of label ${label} is not closed`);
        at++;
        if (char === '"') break;
        if (char !== "\\") {
          value += char;
          continue;
        }
        const escaped = line[at];
        at++;
        if (escaped === "\\") value += "\\";
        else if (escaped === '"') value += '"';
        else if (escaped === "n") value += "\n";
        else return fail(`an unknown escape \\${escaped ?? ""} in label ${label}`);
      }
      if (Object.hasOwn(labels, label)) return fail(`label ${label} given twice`);
      labels[label] = value;
      at = skipBlanks(line, at);
      if (line[at] === ",") at++;
      else if (line[at] !== "}") return fail(`no , or } after label ${label}`);
    }
  }
  const rest = line.slice(at);
  if (!/^[ \t]/.test(rest)) return fail("no blank before the value");
  const fields = rest.trim().split(/[ \t]+/);
  if (fields.length > 2) return fail("more than a value and a timestamp");
  const value = parseGoFloat(fields[0] ?? "");
  if (value === undefined) return fail(`not a number: ${JSON.stringify(fields[0])}`);
  if (fields[1] === undefined) return { name, labels, value };
  if (!/^-?\d+$/.test(fields[1])) return fail(`not a timestamp: ${JSON.stringify(fields[1])}`);
  return { name, labels, value, timestamp: Number(fields[1]) };
}

/** Go's ParseFloat: decimal or hex floats, and Inf/Infinity/NaN in any case, with a sign. */
function parseGoFloat(text: string): number | undefined {
  const lower = text.toLowerCase();
  const unsigned = lower.replace(/^[+-]/, "");
  if (unsigned === "inf" || unsigned === "infinity") return lower.startsWith("-") ? -Infinity : Infinity;
  if (lower === "nan") return Number.NaN;
  if (/^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/.test(lower)) return Number(lower);
  return undefined;
}

/** The family a sample belongs to: a histogram's or summary's suffixed samples belong to it. */
function familyOf(sample: Sample, families: ReadonlyMap<string, MetricFamily>): string {
  for (const suffix of ["_bucket", "_sum", "_count"]) {
    if (!sample.name.endsWith(suffix)) continue;
    const base = sample.name.slice(0, -suffix.length);
    const type = families.get(base)?.type;
    if (type === "histogram" || (type === "summary" && suffix !== "_bucket")) return base;
  }
  return sample.name;
}

function checkSampleOf(family: MetricFamily, sample: Sample, fail: (reason: string) => never): void {
  const suffix = sample.name.slice(family.name.length);
  if (family.type === "histogram") {
    if (suffix === "") fail(`histogram ${family.name} has a sample without _bucket, _sum or _count`);
    if ((suffix === "_bucket") !== Object.hasOwn(sample.labels, "le")) fail("le belongs on _bucket samples, and only there");
    if (suffix === "_bucket" && parseGoFloat(sample.labels["le"] ?? "") === undefined) fail("le is not a number");
  } else if (family.type === "summary") {
    if ((suffix === "") !== Object.hasOwn(sample.labels, "quantile")) fail("quantile belongs on a summary's plain samples, and only there");
  } else if (family.type === "counter" && !(sample.value >= 0) && !Number.isNaN(sample.value)) {
    fail("a counter below 0");
  }
}

function checkHistogram(family: MetricFamily): void {
  const series = new Map<string, { buckets: Array<[number, number]>; count?: number }>();
  const of = (labels: Readonly<Record<string, string>>) => {
    const { le: _le, ...rest } = labels;
    const key = seriesKey(rest);
    let entry = series.get(key);
    if (entry === undefined) series.set(key, (entry = { buckets: [] }));
    return { key, entry };
  };
  for (const sample of family.samples) {
    const { entry } = of(sample.labels);
    if (sample.name.endsWith("_bucket")) entry.buckets.push([parseGoFloat(sample.labels["le"] ?? "") ?? Number.NaN, sample.value]);
    else if (sample.name.endsWith("_count")) entry.count = sample.value;
  }
  for (const [key, { buckets, count }] of series) {
    const where = `histogram ${family.name}${key}`;
    const sorted = [...buckets].sort((a, b) => a[0] - b[0]);
    const infinite = sorted.at(-1);
    if (infinite === undefined || infinite[0] !== Infinity) throw new PrometheusTextError(0, `${where} has no +Inf bucket`, "");
    sorted.forEach(([le, value], index) => {
      const previous = sorted[index - 1];
      if (previous !== undefined && value < previous[1]) throw new PrometheusTextError(0, `${where}: bucket le=${le} holds less than the one before`, "");
    });
    if (count !== infinite[1]) throw new PrometheusTextError(0, `${where}: _count ${String(count)} is not the +Inf bucket ${infinite[1]}`, "");
  }
}

function isMetricName(name: string): boolean {
  return /^[a-zA-Z_:][a-zA-Z0-9_:]*$/.test(name);
}

function skipBlanks(line: string, at: number): number {
  while (line[at] === " " || line[at] === "\t") at++;
  return at;
}

function unescapeHelp(text: string): string {
  return text.replace(/\\(\\|n)/g, (_match, escaped: string) => (escaped === "n" ? "\n" : "\\"));
}

/** The labels of a series in a canonical order, `{a="1",b="2"}`. */
function seriesKey(labels: Readonly<Record<string, string>>): string {
  const names = Object.keys(labels).sort();
  return `{${names.map((name) => `${name}=${JSON.stringify(labels[name])}`).join(",")}}`;
}
