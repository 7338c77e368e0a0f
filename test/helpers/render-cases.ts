import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import fc from "fast-check";
import { expect } from "vitest";
import type { Block } from "../../src/core/blocks.js";
import { withEnrichment, type Issue } from "../../src/core/issue.js";
import { alertmanagerToIssues, parseWebhookBody } from "../../src/sources/alertmanager/index.js";

/**
 * Inputs shared by the renderer tests of the destinations with a size limit
 * (msteams, jira): the Alertmanager fixtures as Issues with a fixed clock
 * and id, golden files, a pile of enrichments, degenerate blocks and
 * fast-check arbitraries for blocks.
 */

const FIXTURES = fileURLToPath(new URL("../fixtures/alertmanager/", import.meta.url));
export const GOLDEN_ROOT = fileURLToPath(new URL("../golden/", import.meta.url));
export const NOW = new Date("2026-11-26T10:40:00.000Z");
export const FIXED_ID = "00000000-0000-4000-8000-000000000000";

export const fixtureFiles: readonly string[] = readdirSync(FIXTURES)
  .filter((f) => f.endsWith(".json"))
  .sort();

/** The Issues of one captured webhook, received at NOW, with FIXED_ID. */
export function fixtureIssues(file: string): Issue[] {
  const fixture = JSON.parse(readFileSync(path.join(FIXTURES, file), "utf8")) as { body: unknown };
  const parsed = parseWebhookBody(JSON.stringify(fixture.body));
  if (!parsed.ok) throw new Error(`${file}: ${parsed.error.message}`);
  return alertmanagerToIssues(parsed.value, { clusterName: "prod-eu-1", now: NOW }).map((i) => ({ ...i, id: FIXED_ID, receivedAt: NOW.toISOString() }));
}

/** Compares `value` (as indented JSON) with test/golden/<dir>/<name>; UPDATE_GOLDEN=1 rewrites it. */
export function expectGolden(dir: string, name: string, value: unknown, testFile: string): void {
  const file = path.join(GOLDEN_ROOT, dir, name);
  const actual = `${JSON.stringify(value, null, 2)}\n`;
  if (process.env["UPDATE_GOLDEN"] === "1") {
    mkdirSync(path.dirname(file), { recursive: true });
    writeFileSync(file, actual);
    return;
  }
  if (!existsSync(file)) throw new Error(`no golden file test/golden/${dir}/${name}: run UPDATE_GOLDEN=1 npx vitest run ${testFile}`);
  expect(actual).toBe(readFileSync(file, "utf8"));
}

const PILE: readonly Block[] = [
  { type: "markdown", text: "*Recent events*\n• BackOff restarting failed container\n• Pulled image" },
  { type: "table", title: "Pods", headers: ["name", "status", "restarts"], rows: Array.from({ length: 40 }, (_, i) => [`api-${i}`, "CrashLoopBackOff", String(i)]) },
  { type: "file", filename: "api.log", content: "a fairly long log line with some detail in it\n".repeat(400) },
  { type: "json", title: "lastState", data: { terminated: { exitCode: 137, reason: "OOMKilled" } } },
  { type: "header", text: "Node state" },
  { type: "list", items: ["MemoryPressure=False", "DiskPressure=False"] },
  { type: "links", links: [{ name: "Grafana", url: "https://grafana.example/d/abc" }] },
  { type: "divider" },
];

/** `n` more enrichments "Enrichment 0…", two blocks each, of every type. */
export function withManyEnrichments(issue: Issue, n: number): Issue {
  let i = issue;
  for (let k = 0; k < n; k++) i = withEnrichment(i, { title: `Enrichment ${k}`, blocks: [PILE[k % PILE.length]!, PILE[(k + 2) % PILE.length]!] });
  return i;
}

/** Blocks with nothing (or nothing usable) in them. */
export function degenerateBlocks(): Block[] {
  const cyclic: Record<string, unknown> = {};
  cyclic["self"] = cyclic;
  return [
    { type: "markdown", text: "   " },
    { type: "markdown", text: "```\n```" },
    { type: "table", headers: [], rows: [] },
    { type: "table", headers: ["a", "b", "c"], rows: [] },
    { type: "table", headers: ["a"], rows: [[], ["1", "2", "3"]] },
    { type: "file", filename: "empty.log", content: "" },
    { type: "json", data: undefined },
    { type: "json", data: cyclic },
    { type: "list", items: ["", " "] },
    { type: "links", links: [] },
    { type: "header", text: "" },
    { type: "divider" },
  ];
}

/** Any block, from short and long texts. */
export function blockArbitrary(text: fc.Arbitrary<string>, bigText: fc.Arbitrary<string>): fc.Arbitrary<Block> {
  return fc.oneof(
    bigText.map((t) => ({ type: "markdown" as const, text: t })),
    fc.record({ type: fc.constant("table" as const), headers: fc.array(text, { maxLength: 6 }), rows: fc.array(fc.array(text, { maxLength: 8 }), { maxLength: 40 }) }),
    fc.record({ type: fc.constant("file" as const), filename: text, content: bigText }),
    fc.record({ type: fc.constant("json" as const), data: fc.jsonValue() }),
    text.map((t) => ({ type: "header" as const, text: t })),
    fc.array(text, { maxLength: 40 }).map((items) => ({ type: "list" as const, items })),
    fc.array(fc.record({ name: text, url: fc.oneof(fc.webUrl(), text) }), { maxLength: 6 }).map((links) => ({ type: "links" as const, links })),
    fc.constant({ type: "divider" as const }),
  );
}
