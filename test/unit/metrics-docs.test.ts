/**
 * The metrics /metrics exposes, their documentation (README's Metrics table)
 * and the Grafana dashboard (deploy/grafana/kubecano-dashboard.json) stay in
 * step: a new metric must be documented and shown, and the dashboard may
 * only query metrics that exist.
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { Metrics } from "../../src/observability/metrics.js";
import { REPO_ROOT } from "../helpers/cli.js";

interface Panel {
  readonly id: number;
  readonly type: string;
  readonly title: string;
  readonly datasource?: { readonly uid?: string };
  readonly targets?: readonly { readonly expr: string; readonly datasource?: { readonly uid?: string } }[];
  readonly gridPos: { readonly x: number; readonly y: number; readonly w: number; readonly h: number };
}

const dashboard = JSON.parse(readFileSync(path.join(REPO_ROOT, "deploy", "grafana", "kubecano-dashboard.json"), "utf8")) as {
  uid: string;
  title: string;
  panels: Panel[];
  templating: { list: { name: string; type: string }[] };
};
const readme = readFileSync(path.join(REPO_ROOT, "README.md"), "utf8");

async function exposed(): Promise<{ custom: Map<string, string>; all: Set<string> }> {
  const m = new Metrics();
  const all = new Set<string>();
  const custom = new Map<string, string>();
  for (const metric of await m.registry.getMetricsAsJSON()) {
    all.add(metric.name);
    if (!/^kubecano_(process|nodejs)_/.test(metric.name)) custom.set(metric.name, String(metric.type));
  }
  return { custom, all };
}

/** kubecano_* series names a PromQL expression reads (histogram suffixes folded). */
function metricsIn(expr: string): string[] {
  return [...expr.matchAll(/\bkubecano_[a-z0-9_]+/g)].map((m) => m[0].replace(/_(bucket|sum|count)$/, ""));
}

const queries = dashboard.panels.flatMap((p) => (p.targets ?? []).map((t) => t.expr));

describe("metrics documentation", () => {
  it("README's Metrics table lists every kubecano metric with its type", async () => {
    const section = readme.slice(readme.indexOf("### Metrics"), readme.indexOf("### Logs"));
    const { custom } = await exposed();
    expect(custom.size).toBeGreaterThan(10);
    for (const [name, type] of custom) expect(section, `${name} (${type}) is not in README's Metrics table`).toMatch(new RegExp(`\\| \`${name}\` \\| ${type} \\|`));
    // And nothing that does not exist.
    const documented = [...section.matchAll(/^\| `(kubecano_[a-z0-9_]+)` \|/gm)].map((m) => m[1]!);
    expect(documented.filter((n) => !custom.has(n))).toEqual([]);
  });
});

describe("Grafana dashboard", () => {
  it("shows every kubecano metric", async () => {
    const { custom } = await exposed();
    const used = new Set(queries.flatMap(metricsIn));
    expect([...custom.keys()].filter((n) => !used.has(n))).toEqual([]);
  });

  it("queries only metrics kubecano exposes, the standard process ones included", async () => {
    const { all } = await exposed();
    const used = new Set(queries.flatMap(metricsIn));
    expect(used.size).toBeGreaterThan(10);
    expect([...used].filter((n) => !all.has(n) && !all.has(n.replace(/_(bucket|sum|count)$/, "")))).toEqual([]);
  });

  it("is importable: unique panel ids, every query on the chosen data source, filtered by the namespace and pod variables", () => {
    expect(dashboard.uid).toBe("kubecano");
    const ids = dashboard.panels.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    expect(dashboard.templating.list.map((v) => v.name)).toEqual(["datasource", "namespace", "pod"]);
    for (const p of dashboard.panels.filter((x) => x.type !== "row")) {
      expect(p.targets?.length, p.title).toBeGreaterThan(0);
      expect(p.datasource?.uid, p.title).toBe("${datasource}");
      for (const t of p.targets ?? []) {
        expect(t.datasource?.uid, p.title).toBe("${datasource}");
        expect(t.expr, p.title).toContain('namespace=~"$namespace", pod=~"$pod"');
      }
    }
  });

  it("lays panels out without overlaps on Grafana's 24-column grid", () => {
    const cells = new Set<string>();
    for (const p of dashboard.panels) {
      const { x, y, w, h } = p.gridPos;
      expect(x + w, p.title).toBeLessThanOrEqual(24);
      for (let i = x; i < x + w; i++) {
        for (let j = y; j < y + h; j++) {
          const k = `${i},${j}`;
          expect(cells.has(k), `${p.title} overlaps at ${k}`).toBe(false);
          cells.add(k);
        }
      }
    }
  });
});
