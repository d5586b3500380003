import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client";
import { parsePrometheusText, PrometheusTextError } from "./prometheus-text.js";

describe("the Prometheus text parser of the tests", () => {
  it("reads samples, labels with escapes, special values, timestamps and help text", () => {
    const families = parsePrometheusText(
      [
        "# a plain comment",
        "# HELP requests_total Requests\\nanswered, with a \\\\.",
        "# TYPE requests_total counter",
        'requests_total{method="GET",path="/a \\"b\\"\\\\c\\nd",} 3 1700000000000',
        "requests_total 0",
        "# TYPE lag gauge",
        "lag Nan",
        'lag{which="max"} +Inf',
        'lag{which="min"} -Inf',
        'lag{which="e"} 1.5e-3',
        "",
      ].join("\n"),
    );
    const requests = families.get("requests_total");
    assert.equal(requests?.type, "counter");
    assert.equal(requests?.help, "Requests\nanswered, with a \\.");
    assert.deepEqual(requests?.samples[0], { name: "requests_total", labels: { method: "GET", path: '/a "b"\\c\nd' }, value: 3, timestamp: 1700000000000 });
    assert.deepEqual(requests?.samples[1], { name: "requests_total", labels: {}, value: 0 });
    const lag = families.get("lag")?.samples.map((sample) => sample.value);
    assert.deepEqual(lag, [Number.NaN, Infinity, -Infinity, 0.0015]);
  });

  it("keeps each series of a labelled histogram apart", () => {
    const families = parsePrometheusText(
      [
        "# TYPE d histogram",
        'd_bucket{backend="a",le="0.1"} 1',
        'd_bucket{backend="a",le="+Inf"} 2',
        'd_sum{backend="a"} 0.7',
        'd_count{backend="a"} 2',
        'd_bucket{le="0.1",backend="b"} 0',
        'd_bucket{le="+Inf",backend="b"} 1',
        'd_sum{backend="b"} 3',
        'd_count{backend="b"} 1',
      ].join("\n"),
    );
    const counts = families
      .get("d")
      ?.samples.filter((sample) => sample.name === "d_count")
      .map((sample) => [sample.labels["backend"], sample.value]);
    assert.deepEqual(counts, [
      ["a", 2],
      ["b", 1],
    ]);
  });

  const refused: ReadonlyArray<readonly [string, string]> = [
    ["an unquoted label value", "x{a=b} 1"],
    ["an unclosed label value", 'x{a="b} 1'],
    ["an unknown escape", 'x{a="\\t"} 1'],
    ["a label twice", 'x{a="1",a="2"} 1'],
    ["no value", "x"],
    ["no value after labels", 'x{a="1"}'],
    ["a value that is not a number", "x one"],
    ["too many fields", "x 1 2 3"],
    ["a timestamp that is not an integer", "x 1 2.5"],
    ["a name that is not one", "1x 1"],
    ["a TYPE after the samples", "x 1\n# TYPE x gauge"],
    ["a second TYPE", "# TYPE x gauge\n# TYPE x gauge\nx 1"],
    ["an unknown type", "# TYPE x meter\nx 1"],
    ["a family in two groups", "x 1\ny 1\nx{a=\"1\"} 2"],
    ["a series twice", 'x{a="1"} 1\nx{a="1"} 2'],
    ["a counter below 0", "# TYPE x counter\nx -1"],
    ["a histogram without +Inf", '# TYPE h histogram\nh_bucket{le="1"} 1\nh_sum 1\nh_count 1'],
    ["a histogram whose count is not its +Inf bucket", '# TYPE h histogram\nh_bucket{le="+Inf"} 2\nh_sum 1\nh_count 1'],
    ["a histogram whose buckets decrease", '# TYPE h histogram\nh_bucket{le="1"} 2\nh_bucket{le="+Inf"} 1\nh_sum 1\nh_count 1'],
    ["a histogram sample of its own name", "# TYPE h histogram\nh 1"],
    ["le on a histogram's count", '# TYPE h histogram\nh_bucket{le="+Inf"} 1\nh_count{le="1"} 1'],
  ];
  for (const [what, text] of refused) {
    it(`refuses ${what}`, () => {
      assert.throws(() => parsePrometheusText(text), PrometheusTextError);
    });
  }

  it("reads what prom-client writes, process metrics included", async () => {
    const registry = new Registry();
    collectDefaultMetrics({ register: registry });
    new Counter({ name: "c_total", help: "c", labelNames: ["a"], registers: [registry] }).inc({ a: 'x"y' }, 2);
    new Gauge({ name: "g", help: "g", registers: [registry] }).set(Number.NaN);
    const histogram = new Histogram({ name: "h_seconds", help: "h", labelNames: ["backend"], buckets: [0.1, 1], registers: [registry] });
    histogram.observe({ backend: "a" }, 0.05);
    histogram.observe({ backend: "b" }, 5);
    const families = parsePrometheusText(await registry.metrics());
    assert.deepEqual(families.get("c_total")?.samples[0]?.labels, { a: 'x"y' });
    assert.ok(Number.isNaN(families.get("g")?.samples[0]?.value));
    assert.equal(families.get("h_seconds")?.samples.filter((sample) => sample.name === "h_seconds_count").length, 2);
    assert.equal(families.get("process_cpu_user_seconds_total")?.type, "counter");
  });
});
