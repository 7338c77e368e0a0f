/**
 * Metrics: the cheap cells of the webhook path read exactly like the
 * prom-client metrics they stand for.
 */
import { Histogram, Registry } from "prom-client";
import { describe, expect, it } from "vitest";
import { CellHistogram, Metrics } from "../../src/observability/metrics.js";

describe("CellHistogram", () => {
  const buckets = [0.01, 0.1, 1, 10];
  const observations: [string, number][] = [
    ["slack", 0.004],
    ["slack", 0.01],
    ["slack", 0.5],
    ["slack", 99],
    ["console", 0.2],
    ["console", 0],
  ];

  it("is exposed exactly as prom-client's Histogram with the same observations", async () => {
    const ours = new Registry();
    const theirs = new Registry();
    const h = new CellHistogram({ name: "x_seconds", help: "X.", labelNames: ["destination"], buckets, registers: [ours] });
    const p = new Histogram({ name: "x_seconds", help: "X.", labelNames: ["destination"], buckets, registers: [theirs] });
    for (const [destination, v] of observations) {
      h.labels({ destination }).observe(v);
      p.labels({ destination }).observe(v);
    }
    expect(await ours.metrics()).toBe(await theirs.metrics());
    // prom-client adds `exemplar: null` to each value (exemplars are off); nothing else differs.
    const values = async (r: Registry): Promise<unknown[]> => (await r.getMetricsAsJSON()).flatMap((m) => m.values.map((v) => ({ ...v, exemplar: undefined })));
    expect(await values(ours)).toEqual(await values(theirs));
  });

  it("without labels, and after a reset", async () => {
    const ours = new Registry();
    const theirs = new Registry();
    const h = new CellHistogram({ name: "y_seconds", help: "Y.", labelNames: [], buckets, registers: [ours] });
    const p = new Histogram({ name: "y_seconds", help: "Y.", buckets, registers: [theirs] });
    for (const [, v] of observations) {
      h.observe(v);
      p.observe(v);
    }
    expect(await ours.metrics()).toBe(await theirs.metrics());
    ours.resetMetrics();
    theirs.resetMetrics();
    h.observe(3);
    p.observe(3);
    expect(await ours.metrics()).toBe(await theirs.metrics());
  });

  it("keeps one cell per label set and ignores a value that is not a number", async () => {
    const m = new Metrics({ defaultMetrics: false });
    const a = m.deliveryLatency.labels({ destination: "a" });
    expect(m.deliveryLatency.labels({ destination: "a" })).toBe(a);
    a.observe(Number.NaN);
    a.observe(0.02);
    const text = await m.registry.getSingleMetricAsString("kubecano_delivery_latency_seconds");
    expect(text).toContain('kubecano_delivery_latency_seconds_count{destination="a"} 1');
    expect(text).toContain('kubecano_delivery_latency_seconds_sum{destination="a"} 0.02');
  });
});
