/**
 * Reading `/metrics` in tests: the text is parsed as Prometheus parses it (`prometheus-text.ts`:
 * a line it would refuse fails the test), and samples are looked up by name and exact label set.
 */
import assert from "node:assert/strict";
import { rawRequest } from "./http.js";
import { parsePrometheusText, type MetricFamily, type Sample } from "./prometheus-text.js";

type Labels = Readonly<Record<string, string>>;

export class Scrape {
  constructor(readonly families: ReadonlyMap<string, MetricFamily>) {}

  /** The type a family declared (`# TYPE`). */
  typeOf(name: string): string | undefined {
    return this.families.get(name)?.type;
  }

  /** The value of the counter or gauge sample with exactly `labels`; undefined when absent. */
  value(name: string, labels: Labels = {}): number | undefined {
    const family = this.families.get(name);
    if (family === undefined) return undefined;
    assert.ok(family.type === "counter" || family.type === "gauge", `${name} is a ${family.type}`);
    return family.samples.find((sample) => sample.name === name && sameLabels(sample.labels, labels))?.value;
  }

  /** The `_count` of the histogram series with exactly `labels`; undefined when absent. */
  count(name: string, labels: Labels = {}): number | undefined {
    const family = this.families.get(name);
    if (family === undefined) return undefined;
    assert.equal(family.type, "histogram", `${name} is a ${family.type}`);
    return family.samples.find((sample) => sample.name === `${name}_count` && sameLabels(sample.labels, labels))?.value;
  }

  /** Every sample of a counter or gauge family. */
  samples(name: string): Sample[] {
    return [...(this.families.get(name)?.samples ?? [])];
  }

  /** How much a counter sample grew since `before` (an absent sample counts as 0). */
  delta(before: Scrape, name: string, labels: Labels = {}): number {
    return (this.value(name, labels) ?? 0) - (before.value(name, labels) ?? 0);
  }

  /** How much a histogram series' `_count` grew since `before`. */
  countDelta(before: Scrape, name: string, labels: Labels = {}): number {
    return (this.count(name, labels) ?? 0) - (before.count(name, labels) ?? 0);
  }
}

/** Parses Prometheus' text format; every family must say what it is (`# TYPE`, `# HELP`). */
export function parseMetrics(text: string): Scrape {
  const families = parsePrometheusText(text);
  for (const family of families.values()) {
    assert.notEqual(family.type, "untyped", `${family.name}: no TYPE`);
    assert.ok(family.help !== undefined && family.help !== "", `${family.name}: no HELP`);
  }
  return new Scrape(families);
}

/** `GET /metrics` (on a connection of its own), checked to be the text format, parsed. */
export async function scrape(baseUrl: string, headers: Record<string, string> = {}): Promise<Scrape> {
  const response = await rawRequest(baseUrl, "/metrics", { headers });
  assert.equal(response.status, 200, `GET /metrics: ${response.status} ${response.body.toString("utf8").slice(0, 500)}`);
  assert.match(response.header("content-type") ?? "", /^text\/plain; version=0\.0\.4/);
  return parseMetrics(response.body.toString("utf8"));
}

function sameLabels(actual: Labels, wanted: Labels): boolean {
  const keys = Object.keys(actual);
  return keys.length === Object.keys(wanted).length && keys.every((key) => actual[key] === wanted[key]);
}
