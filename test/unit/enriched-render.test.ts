import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { KubeConfig } from "@kubernetes/client-node";
import { afterEach, describe, expect, it } from "vitest";
import type { Issue } from "../../src/core/issue.js";
import { renderConsole } from "../../src/destinations/console/render.js";
import { checkLimits } from "../../src/destinations/slack/limits.js";
import { renderSlack } from "../../src/destinations/slack/render.js";
import { KubeClient } from "../../src/kube/client.js";
import { silentLogger } from "../../src/observability/logger.js";
import { alertmanagerToIssues, parseWebhookBody } from "../../src/sources/alertmanager/index.js";
import { WorkflowEngine, type WorkflowTrace } from "../../src/workflows/engine.js";
import { startKubeFake, type KubeFake } from "../fakes/kube.js";
import { checkBlockKit } from "../fakes/slack.js";
import {
  addCrashLoopOom,
  addDeploymentMismatch,
  addFailedJob,
  addNotReadyNode,
  deploymentMismatchAlert,
  failedJobAlert,
  notReadyNodeAlert,
} from "../helpers/cluster-scenarios.js";

/**
 * Golden files of enriched Issues: the built-in workflows run against the
 * Kubernetes API fake through the real client, and the result is rendered
 * for the console and for Slack with a fixed clock and a fixed Issue id.
 * `UPDATE_GOLDEN=1 npx vitest run test/unit/enriched-render.test.ts` rewrites
 * them; review the diff like code.
 */

const here = path.dirname(fileURLToPath(import.meta.url));
const GOLDEN = path.join(here, "../golden/enriched");
const FIXTURES = path.join(here, "../fixtures/alertmanager");
const NOW = new Date("2026-11-26T10:40:00.000Z");
const FIXED_ID = "00000000-0000-4000-8000-000000000000";
const UPDATE = process.env["UPDATE_GOLDEN"] === "1";

let fake: KubeFake | undefined;
afterEach(async () => {
  await fake?.close();
  fake = undefined;
});

async function enrich(setup: (f: KubeFake) => void, body: unknown): Promise<{ issue: Issue; trace: readonly WorkflowTrace[] }> {
  fake = await startKubeFake({ now: () => NOW });
  setup(fake);
  const kc = new KubeConfig();
  kc.loadFromFile(fake.kubeconfigPath());
  const kube = await KubeClient.create(kc);
  const engine = await WorkflowEngine.create({ workflows: [], actionTimeoutMs: 10_000, defaults: true }, { configDir: here });
  const parsed = parseWebhookBody(JSON.stringify(body));
  if (!parsed.ok) throw new Error(parsed.error.message);
  const [raw] = alertmanagerToIssues(parsed.value, { clusterName: "prod-eu-1", now: NOW });
  const r = await engine.run({ ...raw!, id: FIXED_ID }, { kube, log: silentLogger(), now: () => NOW });
  return { issue: r.issue, trace: r.trace };
}

function golden(name: string, actual: string): void {
  const file = path.join(GOLDEN, name);
  if (UPDATE) {
    mkdirSync(GOLDEN, { recursive: true });
    writeFileSync(file, actual);
    return;
  }
  if (!existsSync(file)) throw new Error(`no golden file ${path.relative(process.cwd(), file)}: run UPDATE_GOLDEN=1 npx vitest run test/unit/enriched-render.test.ts`);
  expect(actual).toBe(readFileSync(file, "utf8"));
}

function checkGoldens(name: string, issue: Issue): { console: string; slack: string } {
  const text = renderConsole(issue, { color: false, now: NOW, width: 120 });
  const msg = renderSlack(issue, { metadata: true });
  // Slack would take it: kubecano's own budget and the fake's independent Block Kit checks.
  expect(checkLimits(msg)).toEqual([]);
  const bk = checkBlockKit(msg.blocks, msg.attachments);
  expect(bk.errors).toEqual([]);
  expect(bk.tooLong).toBe(false);
  const slack = `${JSON.stringify(msg, null, 2)}\n`;
  golden(`${name}.console.txt`, text);
  golden(`${name}.slack.json`, slack);
  return { console: text, slack };
}

/** Every action of every matched workflow ran and succeeded. */
function expectAllOk(trace: readonly WorkflowTrace[], workflow: string): void {
  const w = trace.find((t) => t.workflow === workflow);
  expect(w?.matched, `${workflow} matched`).toBe(true);
  for (const a of w!.actions) expect(a, `${workflow}/${a.action}`).toMatchObject({ status: "ok" });
}

describe("enriched renderings (golden files)", () => {
  it("crash loop with OOM: pod status, previous logs and events", async () => {
    const fixture = JSON.parse(readFileSync(path.join(FIXTURES, "firing-crashloop.json"), "utf8")) as { body: unknown };
    const { issue, trace } = await enrich((f) => addCrashLoopOom(f, NOW), fixture.body);
    expectAllOk(trace, "crashloop-context");
    const out = checkGoldens("crashloop-oom", issue);
    expect(out.console).toContain("OOMKilled");
    expect(out.console).toContain("137 (SIGKILL)");
    expect(out.console).toContain("memory limit 256Mi");
    expect(out.console).toContain("java.lang.OutOfMemoryError: Java heap space");
    expect(out.console).toContain("BackOff");
    expect(out.slack).toContain("OOMKilled");
  });

  it("job failed: job status, failed pods and the newest one's logs", async () => {
    const { issue, trace } = await enrich((f) => addFailedJob(f, NOW), failedJobAlert(NOW));
    expectAllOk(trace, "job-failed-context");
    const out = checkGoldens("job-failed", issue);
    expect(out.console).toContain("BackoffLimitExceeded");
    expect(out.console).toContain("nightly-report-29410560-b8r3w");
    expect(out.console).toContain("could not connect to reports-db");
  });

  it("node not ready: conditions, pressure, resources and its unwell pods", async () => {
    const { issue, trace } = await enrich((f) => addNotReadyNode(f, NOW), notReadyNodeAlert(NOW));
    expectAllOk(trace, "node-not-ready-context");
    const out = checkGoldens("node-not-ready", issue);
    expect(out.console).toContain("MemoryPressure");
    expect(out.console).toContain("search/search-indexer-5f6d7c8b9-qwert");
    expect(out.console).not.toContain("elsewhere-1");
    expect(out.console).not.toContain("web-6c9d8-abcde");
  });

  it("deployment replicas mismatch: replicas, failing conditions, revisions with images, events", async () => {
    const { issue, trace } = await enrich((f) => addDeploymentMismatch(f, NOW), deploymentMismatchAlert(NOW));
    const matched = trace.filter((t) => t.matched).map((t) => t.workflow);
    expect(matched.length).toBeGreaterThan(0);
    for (const w of matched) expectAllOk(trace, w);
    const out = checkGoldens("deployment-mismatch", issue);
    expect(out.console).toContain("ProgressDeadlineExceeded");
    expect(out.console).toContain("registry.example.com/shop/checkout:3.1.0");
  });
});
