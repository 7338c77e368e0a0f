import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { Writable } from "node:stream";
import { KubeConfig } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig, validateConfig } from "../../src/config/load.js";
import { createIssue, type Issue, type IssueSource, type IssueType } from "../../src/core/issue.js";
import type { Severity } from "../../src/core/severity.js";
import { subjectFromLabels } from "../../src/core/subject.js";
import { ConfigError } from "../../src/errors.js";
import { KubeClient } from "../../src/kube/client.js";
import { createLogger, silentLogger, type Logger } from "../../src/observability/logger.js";
import { Metrics } from "../../src/observability/metrics.js";
import { Pipeline } from "../../src/pipeline.js";
import { ACTION_NAMES } from "../../src/workflows/actions/registry.js";
import { WorkflowEngine, type WorkflowResult } from "../../src/workflows/engine.js";
import { triggerSchema, workflowsSchema } from "../../src/workflows/schema.js";
import { compileTemplate, templateData, templateProblem, TemplateError } from "../../src/workflows/template.js";
import { compileTrigger } from "../../src/workflows/triggers.js";
import { startKubeFake, type KubeFake } from "../fakes/kube.js";
import { addCrashLoopOom, CRASHLOOP } from "../helpers/cluster-scenarios.js";

/**
 * Workflows: triggers and their "why not" texts, the engine's plan and run
 * (order, stop, disabling and replacing built-ins, failures and timeouts
 * that never lose the Issue), the pure actions, config validation of
 * workflows, user action modules, and the template language.
 */

const NOW = new Date("2026-11-26T10:40:00.000Z");
const log = silentLogger();

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), "kubecano-workflows-"));
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

interface IssueOptions {
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  status?: "FIRING" | "RESOLVED";
  severity?: Severity;
  source?: IssueSource;
  type?: IssueType;
  alertname?: string;
  /** Use `labels` as they are (plus alertname), without the pod defaults. */
  only?: boolean;
}

function mkIssue(o: IssueOptions = {}): Issue {
  const labels = { alertname: o.alertname ?? "KubePodCrashLooping", ...(o.only === true ? {} : { namespace: "shop", pod: "api-7d9f", container: "api" }), ...o.labels };
  return createIssue(
    {
      title: "Pod is crash looping.",
      aggregationKey: labels.alertname,
      severity: o.severity ?? "LOW",
      status: o.status ?? "FIRING",
      source: o.source ?? "prometheus",
      type: o.type ?? "alert",
      subject: subjectFromLabels(labels, o.annotations ?? {}),
      startsAt: "2026-11-26T10:38:06.184Z",
      clusterName: "prod-eu-1",
      links: [{ name: "Runbook", url: "https://runbooks.example/crashloop", kind: "runbook" }],
    },
    NOW,
  );
}

async function engine(workflows: unknown[], opts: { defaults?: boolean; actionTimeoutMs?: number; configDir?: string } = {}): Promise<WorkflowEngine> {
  return WorkflowEngine.create({ workflows: workflowsSchema.parse(workflows), actionTimeoutMs: opts.actionTimeoutMs ?? 5_000, defaults: opts.defaults ?? false }, { configDir: opts.configDir ?? dir });
}

function run(e: WorkflowEngine, issue: Issue, kube?: Parameters<WorkflowEngine["run"]>[1]["kube"], logger: Logger = log): Promise<WorkflowResult> {
  return e.run(issue, { kube, log: logger, now: () => NOW });
}

function trigger(t: unknown): ReturnType<typeof compileTrigger> {
  return compileTrigger(triggerSchema.parse(t));
}

/** Writes a module into the test's temp dir and returns its file name. */
function moduleFile(name: string, source: string): string {
  writeFileSync(path.join(dir, name), source);
  return name;
}

// ───────────────────────────── triggers ─────────────────────────────

describe("triggers", () => {
  it("match alert names exactly, by glob, by /regex/ and by list, and say why not", () => {
    const crash = mkIssue();
    const exact = trigger({ on_alertmanager_alert: { alert_name: "KubePodCrashLooping" } });
    expect(exact.match(crash)).toEqual({ ok: true, why: "on_alertmanager_alert alert_name=KubePodCrashLooping" });
    expect(exact.match(mkIssue({ alertname: "KubePodCrashLoopingX" }))).toEqual({ ok: false, why: 'alert_name "KubePodCrashLoopingX" does not match KubePodCrashLooping' });

    const glob = trigger({ on_alertmanager_alert: { alert_name: "Kube*Crash?ooping" } });
    expect(glob.match(crash).ok).toBe(true);
    expect(glob.match(mkIssue({ alertname: "NodeCrashLooping" })).ok).toBe(false);

    const regex = trigger({ on_alertmanager_alert: { alert_name: "/^kube(let)?down$/i" } });
    expect(regex.match(mkIssue({ alertname: "KubeletDown" })).ok).toBe(true);
    expect(regex.match(mkIssue({ alertname: "KubeDown" })).ok).toBe(true);
    expect(regex.match(mkIssue({ alertname: "KubeletDownNow" })).ok).toBe(false);

    const list = trigger({ on_alertmanager_alert: { alert_name: ["Watchdog", "InfoInhibitor"] } });
    expect(list.match(mkIssue({ alertname: "InfoInhibitor" })).ok).toBe(true);
    expect(list.match(crash)).toEqual({ ok: false, why: 'alert_name "KubePodCrashLooping" does not match [Watchdog, InfoInhibitor]' });
  });

  it("negate with !=, alone, in a list, and next to positive patterns", () => {
    const notSystem = trigger({ on_alertmanager_alert: { namespace: "!=kube-system" } });
    expect(notSystem.match(mkIssue()).ok).toBe(true);
    expect(notSystem.match(mkIssue({ labels: { namespace: "kube-system" } }))).toEqual({ ok: false, why: 'namespace "kube-system" does not match !=kube-system' });

    const neither = trigger({ on_alertmanager_alert: { namespace: ["!=kube-system", "!=/^monitoring/"] } });
    expect(neither.match(mkIssue({ labels: { namespace: "monitoring-2" } })).ok).toBe(false);
    expect(neither.match(mkIssue({ labels: { namespace: "shop" } })).ok).toBe(true);

    const shopButNotTest = trigger({ on_alertmanager_alert: { namespace: ["shop*", "!=shop-test"] } });
    expect(shopButNotTest.match(mkIssue({ labels: { namespace: "shop-eu" } })).ok).toBe(true);
    expect(shopButNotTest.match(mkIssue({ labels: { namespace: "shop-test" } })).ok).toBe(false);
    expect(shopButNotTest.match(mkIssue({ labels: { namespace: "payments" } })).ok).toBe(false);
    // A negated label pattern also matches when the label is absent.
    expect(trigger({ on_alertmanager_alert: { labels: { team: "!=payments" } } }).match(mkIssue()).ok).toBe(true);
  });

  it("match status firing, resolved or all (the default)", () => {
    const firing = mkIssue();
    const resolved = mkIssue({ status: "RESOLVED" });
    const onFiring = trigger({ on_alertmanager_alert: { status: "firing" } });
    expect(onFiring.match(firing).ok).toBe(true);
    expect(onFiring.match(resolved)).toEqual({ ok: false, why: 'status "resolved" does not match firing' });
    expect(trigger({ on_alertmanager_alert: { status: "resolved" } }).match(resolved).ok).toBe(true);
    expect(trigger({ on_alertmanager_alert: { status: "resolved" } }).match(firing).ok).toBe(false);
    const all = trigger({ on_alertmanager_alert: {} });
    expect(all.match(firing).ok && all.match(resolved).ok).toBe(true);
    expect(all.description).toBe("on_alertmanager_alert");
  });

  it("match severity, namespace and labels (all must match; dotted label keys work)", () => {
    const t = trigger({ on_alertmanager_alert: { severity: ["HIGH", "LOW"], namespace: "shop", labels: { team: "payments", "app.kubernetes.io/name": "api*" } } });
    const ok = mkIssue({ severity: "HIGH", labels: { team: "payments", "app.kubernetes.io/name": "api-server" } });
    expect(t.match(ok)).toEqual({ ok: true, why: "on_alertmanager_alert severity=[HIGH, LOW] namespace=shop labels.team=payments labels.app.kubernetes.io/name=api*" });
    expect(t.match(mkIssue({ severity: "INFO", labels: { team: "payments", "app.kubernetes.io/name": "api" } }))).toEqual({ ok: false, why: 'severity "INFO" does not match [HIGH, LOW]' });
    expect(t.match(mkIssue({ severity: "HIGH", labels: { "app.kubernetes.io/name": "api" } }))).toEqual({ ok: false, why: "labels.team is not set (wanted payments)" });
    expect(t.match(mkIssue({ severity: "HIGH", labels: { team: "payments", "app.kubernetes.io/name": "web" } })).why).toBe('labels.app.kubernetes.io/name "web" does not match api*');
    // A node alert names no namespace.
    expect(trigger({ on_alertmanager_alert: { namespace: "shop" } }).match(mkIssue({ only: true, labels: { node: "worker-1" } }))).toEqual({ ok: false, why: "namespace is not set (wanted shop)" });
  });

  it("on_issue matches any source and filters by source and type; on_alertmanager_alert only Alertmanager alerts", () => {
    const event = mkIssue({ source: "kubernetes", type: "event", alertname: "BackOff" });
    expect(trigger({ on_alertmanager_alert: {} }).match(event)).toEqual({ ok: false, why: "not an Alertmanager alert" });
    expect(trigger({ on_alertmanager_alert: { alert_name: "BackOff" } }).match(event).why).toBe("not an Alertmanager alert");
    expect(trigger({ on_issue: {} }).match(event).ok).toBe(true);
    const k8sEvents = trigger({ on_issue: { source: "kubernetes", type: "event", alert_name: "BackOff" } });
    expect(k8sEvents.match(event)).toEqual({ ok: true, why: "on_issue alert_name=BackOff source=kubernetes type=event" });
    expect(k8sEvents.match(mkIssue({ alertname: "BackOff" }))).toEqual({ ok: false, why: 'source "prometheus" does not match kubernetes' });
    expect(trigger({ on_issue: { type: "alert" } }).match(event)).toEqual({ ok: false, why: 'type "event" does not match alert' });
    expect(trigger({ on_issue: { source: ["helm", "kubernetes"] } }).match(event).ok).toBe(true);
  });
});

// ───────────────────────────── plan ─────────────────────────────

describe("WorkflowEngine.plan", () => {
  const note = (text: string): unknown => ({ markdown: { text } });

  it("puts the built-ins first in their order, then user workflows in config order", async () => {
    const e = await engine([{ name: "mine-b", triggers: [{ on_issue: {} }], actions: [note("b")] }, { name: "mine-a", triggers: [{ on_issue: {} }], actions: [note("a")] }], { defaults: true });
    const names = e.plan(mkIssue()).map((p) => p.workflow.name);
    expect(names.slice(-2)).toEqual(["mine-b", "mine-a"]);
    expect(names[0]).toBe("silence-watchdog");
    expect(names).toContain("crashloop-context");
    expect(e.workflows.filter((w) => w.builtin).map((w) => w.name)).toEqual(names.slice(0, -2));
  });

  it("stop: true ends the evaluation: later workflows are listed as not evaluated", async () => {
    const e = await engine([
      { name: "first", triggers: [{ on_issue: {} }], actions: [note("1")], stop: true },
      { name: "second", triggers: [{ on_issue: {} }], actions: [note("2")] },
    ]);
    expect(e.plan(mkIssue()).map((p) => [p.workflow.name, p.matched, p.why])).toEqual([
      ["first", true, "matched on_issue"],
      ["second", false, "not evaluated: first matched and has stop: true"],
    ]);
    // A stop workflow that does not match stops nothing.
    const e2 = await engine([
      { name: "first", triggers: [{ on_issue: { alert_name: "Other" } }], actions: [note("1")], stop: true },
      { name: "second", triggers: [{ on_issue: {} }], actions: [note("2")] },
    ]);
    expect(e2.plan(mkIssue()).map((p) => p.matched)).toEqual([false, true]);
  });

  it("the built-in Watchdog silencer stops everything after it", async () => {
    const e = await engine([], { defaults: true });
    const plan = e.plan(mkIssue({ alertname: "Watchdog", only: true }));
    expect(plan[0]).toMatchObject({ matched: true });
    expect(plan.slice(1).every((p) => !p.matched && p.why === "not evaluated: silence-watchdog matched and has stop: true")).toBe(true);
  });

  it("enabled: false turns a built-in off by its name, keeping its place", async () => {
    const on = await engine([], { defaults: true });
    const off = await engine([{ name: "crashloop-context", enabled: false }], { defaults: true });
    const i = on.workflows.findIndex((w) => w.name === "crashloop-context");
    expect(off.workflows.findIndex((w) => w.name === "crashloop-context")).toBe(i);
    expect(off.workflows[i]).toMatchObject({ builtin: true, enabled: false });
    const p = off.plan(mkIssue()).find((x) => x.workflow.name === "crashloop-context");
    expect(p).toMatchObject({ matched: false, why: "disabled" });
    expect(on.isPure(mkIssue())).toBe(false);
    expect(off.isPure(mkIssue())).toBe(true);
  });

  it("a user workflow with a built-in's name replaces it in place", async () => {
    const e = await engine([{ name: "crashloop-context", triggers: [{ on_alertmanager_alert: { alert_name: "KubePodCrashLooping" } }], actions: [note("ours")] }], { defaults: true });
    const builtin = await engine([], { defaults: true });
    expect(e.workflows.map((w) => w.name)).toEqual(builtin.workflows.map((w) => w.name));
    const w = e.workflows.find((x) => x.name === "crashloop-context")!;
    expect(w.builtin).toBe(false);
    expect(w.actions.map((a) => a.name)).toEqual(["markdown"]);
    expect(e.isPure(mkIssue())).toBe(true);
    const r = await run(e, mkIssue());
    expect(r.issue.enrichments.map((x) => x.blocks)).toContainEqual([{ type: "markdown", text: "ours" }]);
  });

  it("enrichment.defaults: false runs no built-in at all", async () => {
    const e = await engine([{ name: "mine", triggers: [{ on_issue: {} }], actions: [note("x")] }], { defaults: false });
    expect(e.workflows.map((w) => w.name)).toEqual(["mine"]);
    expect((await run(e, mkIssue({ alertname: "Watchdog" }))).silenced).toBeUndefined();
  });

  it("a workflow without triggers never runs and says so", async () => {
    const e = await engine([{ name: "lonely", actions: [note("x")] }]);
    expect(e.plan(mkIssue())).toMatchObject([{ matched: false, why: "has no triggers" }]);
  });

  it("shows every trigger's reason when none matches", async () => {
    const e = await engine([{ name: "w", triggers: [{ on_alertmanager_alert: { alert_name: "A" } }, { on_alertmanager_alert: { namespace: "kube-system" } }], actions: [note("x")] }]);
    expect(e.plan(mkIssue())[0]?.why).toBe('alert_name "KubePodCrashLooping" does not match A; namespace "shop" does not match kube-system');
    // Decisions are kept between Issues: each must still get the reasons of its own values.
    expect(e.plan(mkIssue({ labels: { namespace: "payments" } }))[0]?.why).toBe('alert_name "KubePodCrashLooping" does not match A; namespace "payments" does not match kube-system');
    expect(e.plan(mkIssue({ alertname: "B" }))[0]?.why).toBe('alert_name "B" does not match A; namespace "shop" does not match kube-system');
    expect(e.plan(mkIssue({ alertname: "A" }))[0]).toMatchObject({ matched: true, why: "matched on_alertmanager_alert alert_name=A" });
    expect(e.plan(mkIssue({ labels: { namespace: "kube-system" } }))[0]).toMatchObject({ matched: true, why: "matched on_alertmanager_alert namespace=kube-system" });
    expect(e.plan(mkIssue())[0]?.why).toBe('alert_name "KubePodCrashLooping" does not match A; namespace "shop" does not match kube-system');
  });

  it("workflows for another source say so, per source, and still match their own", async () => {
    const e = await engine([], { defaults: true });
    const why = (i: Issue, name: string): unknown => e.plan(i).find((p) => p.workflow.name === name);
    const event = mkIssue({ source: "kubernetes", type: "event", alertname: "CrashLoopBackOff" });
    const helm = mkIssue({ source: "helm", type: "event", alertname: "CrashLoopBackOff" });
    for (let n = 0; n < 2; n++) {
      expect(why(mkIssue(), "watch-crashloop-context")).toMatchObject({ matched: false, why: "not a Kubernetes event (source prometheus)" });
      expect(why(event, "crashloop-context")).toMatchObject({ matched: false, why: "not an Alertmanager alert" });
      expect(why(event, "oom-context")).toMatchObject({ matched: false, why: "not an Alertmanager alert; not an Alertmanager alert" });
      expect(why(event, "watch-crashloop-context")).toMatchObject({ matched: true });
      expect(why(helm, "watch-crashloop-context")).toMatchObject({ matched: true });
      expect(why(mkIssue({ source: "manual" }), "watch-quota-context")).toMatchObject({ matched: false, why: "not a Kubernetes event (source manual)" });
      expect(why(mkIssue({ source: "manual" }), "alert-annotations")).toMatchObject({ matched: false, why: "not an Alertmanager alert" });
    }
  });

  it("isPure: only matching workflows count, and cluster and custom actions are not pure", async () => {
    const custom = moduleFile("pure-check.mjs", "export default () => ({});\n");
    const e = await engine(
      [
        { name: "cluster", triggers: [{ on_alertmanager_alert: { alert_name: "NeedsCluster" } }], actions: [{ pod_status: {} }] },
        { name: "custom", triggers: [{ on_alertmanager_alert: { alert_name: "NeedsCustom" } }], actions: [{ custom: { module: custom } }] },
        { name: "pure", triggers: [{ on_issue: {} }], actions: [note("x"), { set_severity: { severity: "HIGH" } }] },
      ],
      {},
    );
    expect(e.isPure(mkIssue({ alertname: "Other" }))).toBe(true);
    expect(e.isPure(mkIssue({ alertname: "NeedsCluster" }))).toBe(false);
    expect(e.isPure(mkIssue({ alertname: "NeedsCustom" }))).toBe(false);
    const defaults = await engine([], { defaults: true });
    expect(defaults.isPure(mkIssue())).toBe(false);
    expect(defaults.isPure(mkIssue({ status: "RESOLVED" }))).toBe(true);
    expect(defaults.isPure(mkIssue({ alertname: "Watchdog" }))).toBe(true);
    expect(defaults.isPure(mkIssue({ alertname: "TargetDown" }))).toBe(true);
  });
});

// ───────────────────────────── run ─────────────────────────────

describe("WorkflowEngine.run", () => {
  it("a failing action adds an enrichment saying what failed, and later actions still run", async () => {
    const boom = moduleFile("boom.mjs", 'export default () => { throw new Error("the inventory service said no\\nstack line"); };\n');
    const e = await engine([{ name: "w", triggers: [{ on_issue: {} }], actions: [{ custom: { module: boom } }, { markdown: { text: "after" } }] }]);
    const r = await run(e, mkIssue());
    expect(r.trace[0]?.actions.map((a) => [a.action, a.status, a.error])).toEqual([
      ["custom:boom", "failed", "the inventory service said no"],
      ["markdown", "ok", undefined],
    ]);
    expect(r.issue.enrichments).toEqual([
      { title: "custom:boom could not run", source: "custom:boom", blocks: [{ type: "markdown", text: ":warning: the inventory service said no" }] },
      { title: "Notes", source: "markdown", blocks: [{ type: "markdown", text: "after" }] },
    ]);
  });

  it("a hanging action times out (per-action timeout) and the Issue still comes out", async () => {
    const hang = moduleFile("hang.mjs", "export default () => new Promise(() => {});\n");
    const e = await engine([{ name: "w", triggers: [{ on_issue: {} }], actions: [{ custom: { module: hang }, timeout: "50ms" }, { set_severity: { severity: "HIGH" } }] }], { actionTimeoutMs: 60_000 });
    expect(e.workflows[0]?.actions[0]?.timeoutMs).toBe(50);
    const r = await run(e, mkIssue());
    expect(r.trace[0]?.actions.map((a) => [a.action, a.status, a.error])).toEqual([
      ["custom:hang", "timeout", "no result within 50 ms"],
      ["set_severity", "ok", undefined],
    ]);
    expect(r.issue.severity).toBe("HIGH");
    expect(r.issue.enrichments[0]?.title).toBe("custom:hang could not run");
  });

  it("uses enrichment.actionTimeout when an action has no timeout of its own", async () => {
    const e = await engine([{ name: "w", triggers: [{ on_issue: {} }], actions: [{ pod_logs: {} }, { pod_status: {}, timeout: "2s" }] }], { actionTimeoutMs: 1234 });
    expect(e.workflows[0]?.actions.map((a) => a.timeoutMs)).toEqual([1234, 2000]);
  });

  it("skips cluster actions without a cluster, and says so", async () => {
    const e = await engine([], { defaults: true });
    const r = await run(e, mkIssue(), undefined);
    const w = r.trace.find((t) => t.workflow === "crashloop-context")!;
    expect(w.actions.map((a) => [a.action, a.status, a.note])).toEqual([
      ["pod_status", "skipped", "no cluster access"],
      ["pod_logs", "skipped", "no cluster access"],
      ["pod_events", "skipped", "no cluster access"],
    ]);
    expect(r.issue.enrichments).toEqual([]);
  });

  it("silence drops the Issue, says which workflow did it, and runs nothing after it", async () => {
    const e = await engine([
      { name: "quiet-test-ns", triggers: [{ on_alertmanager_alert: { namespace: "shop" } }], actions: [{ silence: { reason: "test namespace" } }, { markdown: { text: "never" } }] },
      { name: "later", triggers: [{ on_issue: {} }], actions: [{ markdown: { text: "never either" } }] },
    ]);
    const r = await run(e, mkIssue());
    expect(r.silenced).toBe("test namespace (workflow quiet-test-ns)");
    expect(r.issue.enrichments).toEqual([]);
    expect(r.trace[0]?.actions.map((a) => [a.action, a.note])).toEqual([["silence", "test namespace"]]);
    expect(r.trace.find((t) => t.workflow === "later")).toMatchObject({ matched: false, why: "not run: quiet-test-ns silenced the Issue" });
    expect((await run(e, mkIssue({ labels: { namespace: "payments" } }))).silenced).toBeUndefined();
  });

  it("the built-in workflows silence Watchdog", async () => {
    const r = await run(await engine([], { defaults: true }), mkIssue({ alertname: "Watchdog" }));
    expect(r.silenced).toMatch(/^Watchdog and InfoInhibitor always fire.*\(workflow silence-watchdog\)$/);
  });

  it("set_severity overrides the severity and notes the change", async () => {
    const e = await engine([{ name: "w", triggers: [{ on_alertmanager_alert: { labels: { team: "payments" } } }], actions: [{ set_severity: { severity: "HIGH" } }] }]);
    const r = await run(e, mkIssue({ labels: { team: "payments" } }));
    expect(r.issue.severity).toBe("HIGH");
    expect(r.trace[0]?.actions[0]?.note).toBe("LOW → HIGH");
    expect((await run(e, mkIssue())).issue.severity).toBe("LOW");
  });

  it("add_link renders name and url templates (urlencode), skips duplicates and refuses non-http URLs", async () => {
    const e = await engine([
      {
        name: "w",
        triggers: [{ on_issue: {} }],
        actions: [
          { add_link: { name: "Pod dashboard ({{ labels.pod }})", url: "https://grafana.example/d/pods?var-ns={{ namespace }}&var-pod={{ labels.pod | urlencode }}", kind: "dashboard" } },
          { add_link: { name: "Runbook again", url: "https://runbooks.example/crashloop" } },
          { add_link: { name: "Evil", url: "javascript:alert({{ labels.pod }})" } },
          { add_link: { name: "{{ labels.nothing }}", url: "{{ annotations.logs_url }}" } },
        ],
      },
    ]);
    const r = await run(e, mkIssue({ labels: { pod: "api 7d9f&x" }, annotations: { logs_url: "https://logs.example/?q=a" } }));
    expect(r.issue.links).toEqual([
      { name: "Runbook", url: "https://runbooks.example/crashloop", kind: "runbook" },
      { name: "Pod dashboard (api 7d9f&x)", url: "https://grafana.example/d/pods?var-ns=shop&var-pod=api%207d9f%26x", kind: "dashboard" },
      { name: "Link", url: "https://logs.example/?q=a", kind: "other" },
    ]);
    expect(r.trace[0]?.actions[2]).toMatchObject({ status: "ok", note: 'skipped: "javascript:alert(api 7d9f&x)" is not an http(s) URL' });
    // A template that renders to nothing is no URL either.
    const r2 = await run(e, mkIssue());
    expect(r2.trace[0]?.actions[3]?.note).toBe('skipped: "" is not an http(s) URL');
  });

  it("markdown renders its template; an empty result adds nothing", async () => {
    const e = await engine([
      {
        name: "w",
        triggers: [{ on_issue: {} }],
        actions: [{ markdown: { title: "Ownership", text: "Owner: *{{ labels.team | default \"unknown\" | upper }}* · {{ alertname }} in {{ namespace }}" } }, { markdown: { text: "{{ labels.nothing }}" } }],
      },
    ]);
    const r = await run(e, mkIssue({ labels: { team: "payments" } }));
    expect(r.issue.enrichments).toEqual([{ title: "Ownership", source: "markdown", blocks: [{ type: "markdown", text: "Owner: *PAYMENTS* · KubePodCrashLooping in shop" }] }]);
    expect(r.trace[0]?.actions[1]?.note).toBe("the template rendered empty");
    expect((await run(e, mkIssue())).issue.enrichments[0]?.blocks).toEqual([{ type: "markdown", text: "Owner: *UNKNOWN* · KubePodCrashLooping in shop" }]);
  });

  it("labels_table and annotations_table include and exclude keys by pattern, sorted", async () => {
    const e = await engine([
      {
        name: "w",
        triggers: [{ on_issue: {} }],
        actions: [
          { labels_table: { include: ["team", "app.kubernetes.io/*", "/^pod$/"], exclude: ["app.kubernetes.io/version"] } },
          { annotations_table: { title: "More", exclude: ["summary", "/^runbook/"] } },
          { labels_table: { include: ["nothing-*"] } },
        ],
      },
    ]);
    const r = await run(
      e,
      mkIssue({
        labels: { team: "payments", "app.kubernetes.io/name": "api", "app.kubernetes.io/version": "2.14.1", other: "x" },
        annotations: { summary: "s", runbook_url: "https://r", owner_chat: "#payments", dashboard_hint: "cpu" },
      }),
    );
    expect(r.issue.enrichments).toEqual([
      { title: "Labels", source: "labels_table", blocks: [{ type: "table", headers: ["Label", "Value"], rows: [["app.kubernetes.io/name", "api"], ["pod", "api-7d9f"], ["team", "payments"]] }] },
      { title: "More", source: "annotations_table", blocks: [{ type: "table", headers: ["Annotation", "Value"], rows: [["dashboard_hint", "cpu"], ["owner_chat", "#payments"]] }] },
    ]);
    expect(r.trace[0]?.actions[2]?.note).toBe("no labels to show");
  });

  it("runNow gives the result itself when nothing is waited for, a promise when an action must be, and the same result as run", async () => {
    const defaults = await engine([], { defaults: true });
    const opts = { kube: undefined, log, now: () => NOW };
    const issue = mkIssue({ annotations: { summary: "s", owner: "payments" } });
    const now = defaults.runNow(issue, opts);
    expect(now).not.toBeInstanceOf(Promise);
    const viaRun = await defaults.run(issue, opts);
    const strip = (r: WorkflowResult): unknown => ({ ...r, trace: r.trace.map((t) => ({ ...t, actions: t.actions.map((a) => ({ ...a, ms: 0 })) })) });
    expect(strip(now as WorkflowResult)).toEqual(strip(viaRun));
    expect((now as WorkflowResult).issue.enrichments.map((e) => e.title)).toEqual(["More annotations"]);
    expect((now as WorkflowResult).trace.map((t) => [t.workflow, t.matched])).toContainEqual(["crashloop-context", true]);

    const echo = moduleFile("echo.mjs", "export default (_p, ctx) => ({ note: ctx.issue.aggregationKey });\n");
    const e = await engine([{ name: "w", triggers: [{ on_issue: {} }], actions: [{ set_severity: { severity: "HIGH" } }, { custom: { module: echo } }, { markdown: { text: "after" } }] }]);
    const later = e.runNow(mkIssue(), opts);
    expect(later).toBeInstanceOf(Promise);
    const r = await later;
    expect(r.trace[0]?.actions.map((a) => [a.action, a.status, a.note])).toEqual([
      ["set_severity", "ok", "LOW → HIGH"],
      ["custom:echo", "ok", "KubePodCrashLooping"],
      ["markdown", "ok", undefined],
    ]);
    expect(r.issue.severity).toBe("HIGH");
  });

  it("results of one Issue do not show in another's (decisions and skipped actions are shared)", async () => {
    const e = await engine([], { defaults: true });
    // Everything but how long each action took (a pure action's `ms` is measured).
    const shape = (trace: unknown): string => JSON.stringify(trace, (k, v: unknown) => (k === "ms" ? 0 : v));
    const first = await run(e, mkIssue());
    const json = shape(first.trace);
    await run(e, mkIssue({ alertname: "KubeJobFailed", annotations: { extra: "x" } }));
    await run(e, mkIssue({ status: "RESOLVED" }));
    const again = await run(e, mkIssue());
    expect(shape(again.trace)).toBe(json);
    // Shared parts of a trace cannot be changed by one reader for the others.
    const skipped = again.trace.find((t) => t.workflow === "crashloop-context")!;
    expect(() => (skipped.actions as unknown[]).push("x")).toThrow(TypeError);
  });

  it("a later action sees what earlier ones did", async () => {
    const seen = moduleFile("seen.mjs", "export default (_p, ctx) => ({ note: `${ctx.issue.severity} ${ctx.issue.enrichments.length}` });\n");
    const e = await engine([{ name: "w", triggers: [{ on_issue: {} }], actions: [{ set_severity: { severity: "HIGH" } }, { markdown: { text: "x" } }, { custom: { module: seen } }] }]);
    expect((await run(e, mkIssue())).trace[0]?.actions[2]?.note).toBe("HIGH 1");
  });
});

// ───────────────────────────── pipeline ─────────────────────────────

describe("Pipeline and workflows", () => {
  it("counts every action run by action and status, as of each read of the metric, also with two pipelines on one registry", async () => {
    const { config } = await validateConfig({}, undefined, {});
    const workflows = await engine([], { defaults: true });
    const metrics = new Metrics({ defaultMetrics: false });
    const a = new Pipeline({ config, log, metrics, workflows });
    const b = new Pipeline({ config, log, metrics, workflows });
    const counts = async (): Promise<Record<string, number>> =>
      Object.fromEntries((await metrics.actions.get()).values.map((v) => [`${String(v.labels["action"])} ${String(v.labels["status"])}`, v.value]));
    const signal = new AbortController().signal;
    await a.process(mkIssue({ annotations: { owner: "payments" } }), signal);
    expect(await counts()).toEqual({ "pod_status skipped": 1, "pod_logs skipped": 1, "pod_events skipped": 1, "annotations_table ok": 1 });
    await b.process(mkIssue(), signal);
    await a.process(mkIssue({ status: "RESOLVED" }), signal);
    await b.runWorkflows(mkIssue({ alertname: "Watchdog" }));
    expect(await counts()).toEqual({ "pod_status skipped": 2, "pod_logs skipped": 2, "pod_events skipped": 2, "annotations_table ok": 3, "silence ok": 1 });
    expect(await metrics.registry.metrics()).toContain('kubecano_workflow_actions_total{action="annotations_table",status="ok"} 3');
  });
});

// ───────────────────────────── config validation ─────────────────────────────

async function configProblems(raw: Record<string, unknown>): Promise<string[]> {
  try {
    await validateConfig(raw, undefined, {});
  } catch (e) {
    if (e instanceof ConfigError) return [...e.problems];
    throw e;
  }
  throw new Error("expected the config to be refused");
}

describe("workflow config validation", () => {
  const wf = (actions: unknown[], extra: Record<string, unknown> = {}): Record<string, unknown> => ({ workflows: [{ name: "w", triggers: [{ on_alertmanager_alert: {} }], actions, ...extra }] });

  it("an unknown action names its path and lists the known actions", async () => {
    const problems = await configProblems(wf([{ markdown: { text: "x" } }, { pod_logz: { previous: true } }]));
    expect(problems).toHaveLength(1);
    expect(problems[0]).toContain('workflows[0].actions[1].pod_logz: unknown action "pod_logz": use one of ');
    for (const name of ACTION_NAMES) expect(problems[0]).toContain(name);
  });

  it("a bad parameter value names the path down to the parameter", async () => {
    expect(await configProblems(wf([{ pod_logs: { tail_lines: "x" } }]))).toEqual(["embedded default config: workflows[0].actions[0].pod_logs.tail_lines: expected number, received string"]);
    expect(await configProblems(wf([{ pod_logs: { previous: "sometimes" } }]))).toEqual([expect.stringMatching(/^embedded default config: workflows\[0\]\.actions\[0\]\.pod_logs\.previous: /)]);
    expect(await configProblems(wf([{ pod_events: { types: ["Fatal"] } }]))).toEqual([expect.stringMatching(/workflows\[0\]\.actions\[0\]\.pod_events\.types\[0\]: /)]);
  });

  it("an unknown parameter is named with its action", async () => {
    expect(await configProblems(wf([{ pod_logs: { tail: 5 } }]))).toEqual(["embedded default config: workflows[0].actions[0].pod_logs: unknown parameter tail of pod_logs"]);
  });

  it("a bad regex in a trigger names the trigger field", async () => {
    const problems = await configProblems({ workflows: [{ name: "w", triggers: [{ on_alertmanager_alert: { alert_name: "/(unclosed/" } }] }] });
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(/^embedded default config: workflows\[0\]\.triggers\[0\]\.on_alertmanager_alert\.alert_name: invalid pattern "\/\(unclosed\/": /);
    const flags = await configProblems({ workflows: [{ name: "w", triggers: [{ on_issue: { labels: { team: "/x/g" } } }] }] });
    expect(flags[0]).toMatch(/workflows\[0\]\.triggers\[0\]\.on_issue\.labels\.team: invalid pattern "\/x\/g": unsupported regex flag/);
  });

  it("a bad template is refused where it is written", async () => {
    expect(await configProblems(wf([{ markdown: { text: "Owner: {{ labels.team" } }]))).toEqual(['embedded default config: workflows[0].actions[0].markdown.text: invalid template "Owner: {{ labels.team": unterminated {{']);
    expect((await configProblems(wf([{ add_link: { name: "x", url: "https://x/{{ labels.a | shout }}" } }])))[0]).toMatch(/workflows\[0\]\.actions\[0\]\.add_link\.url: invalid template .*unknown filter "shout"/);
  });

  it("two actions in one list entry, or none, are refused", async () => {
    expect(await configProblems(wf([{ markdown: { text: "x" }, silence: {} }]))).toEqual(["embedded default config: workflows[0].actions[0]: one action per list entry, found markdown, silence"]);
    expect(await configProblems(wf([{ timeout: "5s" }]))).toEqual(["embedded default config: workflows[0].actions[0]: no action named here"]);
    expect(await configProblems(wf([{ pod_status: {}, timeout: "soon" }]))).toEqual([expect.stringMatching(/^embedded default config: workflows\[0\]\.actions\[0\]\.timeout: /)]);
    expect((await configProblems(wf(["pod_status"])))[0]).toMatch(/workflows\[0\]\.actions\[0\]: an action is a mapping with one action name as key/);
  });

  it("duplicate workflow names are refused", async () => {
    const problems = await configProblems({ workflows: [{ name: "dup", triggers: [] }, { name: "other" }, { name: "dup" }] });
    expect(problems).toEqual(['embedded default config: workflows[2].name: duplicate workflow name "dup" (also workflows[0])']);
  });

  it("a trigger that is neither kind is refused with what a trigger is", async () => {
    expect((await configProblems({ workflows: [{ name: "w", triggers: [{ on_alert: {} }] }] }))[0]).toMatch(/workflows\[0\]\.triggers\[0\]: a trigger is on_alertmanager_alert: \{\.\.\.\} or on_issue: \{\.\.\.\}/);
  });

  it("loadConfig points at the line in a YAML file", async () => {
    const cfgDir = mkdtempSync(path.join(os.tmpdir(), "kubecano-wfcfg-"));
    try {
      writeFileSync(
        path.join(cfgDir, "kubecano.config.yaml"),
        ["workflows:", "  - name: w", "    triggers:", "      - on_alertmanager_alert: {}", "    actions:", "      - pod_status: {}", "      - pod_logs:", "          tail_lines: x", ""].join("\n"),
      );
      let err: unknown;
      try {
        await loadConfig({ cwd: cfgDir, env: {} });
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as ConfigError).problems).toEqual([`${path.join(cfgDir, "kubecano.config.yaml")}:8: workflows[0].actions[1].pod_logs.tail_lines: expected number, received string`]);
    } finally {
      rmSync(cfgDir, { recursive: true, force: true });
    }
  });

  it("valid workflows load with their defaults filled in", async () => {
    const { config } = await validateConfig(wf([{ pod_logs: { previous: "both", since: "30m" }, timeout: "3s" }]), undefined, {});
    expect(config.workflows[0]).toMatchObject({ name: "w", enabled: true, stop: false, actions: [{ action: "pod_logs", timeoutMs: 3000, params: { previous: "both", since: 1_800_000, tail_lines: 200, timestamps: false } }] });
    expect(config.enrichment).toEqual({ concurrency: 8, actionTimeout: 10_000, defaults: true });
  });
});

// ───────────────────────────── custom actions ─────────────────────────────

describe("custom actions", () => {
  async function createError(actions: unknown[]): Promise<ConfigError> {
    try {
      await engine([{ name: "w", triggers: [{ on_issue: {} }], actions }]);
    } catch (e) {
      if (e instanceof ConfigError) return e;
      throw e;
    }
    throw new Error("expected a ConfigError");
  }

  it("a .mjs module whose default export is a function", async () => {
    const m = moduleFile("hello.mjs", "export default (params, ctx) => ({ enrichments: [{ title: 'Hello', blocks: [{ type: 'markdown', text: `hello ${params.who} about ${ctx.issue.subject.name}` }] }], note: 'greeted' });\n");
    const e = await engine([{ name: "w", triggers: [{ on_issue: {} }], actions: [{ custom: { module: m, params: { who: "on-call" } } }] }]);
    expect(e.workflows[0]?.actions[0]).toMatchObject({ name: "custom:hello", kind: "custom", params: { who: "on-call" } });
    const r = await run(e, mkIssue());
    expect(r.issue.enrichments).toEqual([{ title: "Hello", source: "custom:hello", blocks: [{ type: "markdown", text: "hello on-call about api-7d9f" }] }]);
    expect(r.trace[0]?.actions[0]).toMatchObject({ action: "custom:hello", status: "ok", note: "greeted" });
  });

  it("an object export with zod-like params: validated at load, parsed params passed to run", async () => {
    const m = moduleFile(
      "greeter.mjs",
      `export default {
  name: "greeter",
  params: {
    safeParse(v) {
      if (typeof v.who !== "string") return { success: false, error: { issues: [{ path: ["who"], message: "expected string" }] } };
      return { success: true, data: { who: v.who, shout: v.shout ?? false } };
    },
  },
  run(p) {
    return { enrichments: [{ title: this.name, blocks: [{ type: "markdown", text: p.shout ? p.who.toUpperCase() : p.who }] }] };
  },
};
`,
    );
    const e = await engine([{ name: "w", triggers: [{ on_issue: {} }], actions: [{ custom: { module: m, params: { who: "sre" } } }] }]);
    expect(e.workflows[0]?.actions[0]).toMatchObject({ name: "custom:greeter", params: { who: "sre", shout: false } });
    expect((await run(e, mkIssue())).issue.enrichments).toEqual([{ title: "greeter", source: "custom:greeter", blocks: [{ type: "markdown", text: "sre" }] }]);
    const err = await createError([{ markdown: { text: "x" } }, { custom: { module: m, params: { who: 42 } } }]);
    expect(err.message).toBe("invalid params for custom action greeter");
    expect(err.problems).toEqual(["workflows[0].actions[1].custom.params.who: expected string"]);
  });

  it("a .ts module is transpiled with the typescript package", async () => {
    const m = moduleFile(
      "typed.ts",
      `interface Params { readonly prefix: string }
interface Ctx { readonly issue: { readonly aggregationKey: string } }
export default function typed(params: Params, ctx: Ctx): { note: string } {
  const n: number = ctx.issue.aggregationKey.length;
  return { note: \`\${params.prefix}:\${n}\` };
}
`,
    );
    const e = await engine([{ name: "w", triggers: [{ on_issue: {} }], actions: [{ custom: { module: m, params: { prefix: "len" }, name: "typed-len" } }] }]);
    expect((await run(e, mkIssue())).trace[0]?.actions[0]).toMatchObject({ action: "custom:typed-len", status: "ok", note: "len:19" });
  });

  it("a missing module is a ConfigError naming the path and where it is configured", async () => {
    const err = await createError([{ custom: { module: "./nowhere/action.mjs" } }]);
    expect(err.message).toBe(`custom action module not found: ${path.join(dir, "nowhere/action.mjs")}`);
    expect(err.problems).toEqual(["workflows[0].actions[0].custom: module ./nowhere/action.mjs does not exist (paths are relative to the config file)"]);
  });

  it("a module with no usable default export is a ConfigError", async () => {
    const none = moduleFile("no-default.mjs", "export const run = () => ({});\n");
    const err = await createError([{ custom: { module: none } }]);
    expect(err.message).toBe(`custom action ${path.join(dir, "no-default.mjs")} exports no action`);
    expect(err.problems[0]).toMatch(/^workflows\[0\]\.actions\[0\]\.custom: the module's default export must be a function/);
    const obj = moduleFile("object-no-run.mjs", "export default { name: 'x' };\n");
    expect((await createError([{ custom: { module: obj } }])).message).toMatch(/exports no action/);
    const broken = moduleFile("broken.mjs", "export default (;\n");
    const err2 = await createError([{ custom: { module: broken } }]);
    expect(err2.message).toBe(`cannot load custom action ${path.join(dir, "broken.mjs")}`);
    expect(err2.problems[0]).toMatch(/^workflows\[0\]\.actions\[0\]\.custom: /);
  });

  it("reads the cluster through ctx.kube and returns enrichments", async () => {
    const fake: KubeFake = await startKubeFake({ now: () => NOW });
    try {
      addCrashLoopOom(fake, NOW);
      const kc = new KubeConfig();
      kc.loadFromFile(fake.kubeconfigPath());
      const kube = await KubeClient.create(kc);
      const m = moduleFile(
        "restarts.mjs",
        `export default async (_p, ctx) => {
  const pod = await ctx.kube.getPod(ctx.issue.subject.namespace, ctx.issue.subject.name);
  const rows = pod.status.containerStatuses.map((s) => [s.name, String(s.restartCount)]);
  return { enrichments: [{ title: "Restarts", blocks: [{ type: "table", headers: ["Container", "Restarts"], rows }] }] };
};
`,
      );
      const e = await engine([{ name: "w", triggers: [{ on_issue: {} }], actions: [{ custom: { module: m } }] }]);
      const r = await run(e, mkIssue(), kube);
      expect(r.issue.enrichments[0]?.blocks).toEqual([{ type: "table", headers: ["Container", "Restarts"], rows: [[CRASHLOOP.container, String(CRASHLOOP.restarts)], [CRASHLOOP.sidecar, "0"]] }]);
      expect(fake.count({ resource: "pods", name: CRASHLOOP.pod, verb: "get" })).toBe(1);
    } finally {
      await fake.close();
    }
  });

  it("logs an unexpected failure of an action (a bug) once, as a warning", async () => {
    const lines: string[] = [];
    const logger = createLogger({ format: "json", stream: new Writable({ write: (c: Buffer, _e, cb) => (lines.push(c.toString()), cb()) }) });
    const bad = moduleFile("typeerror.mjs", "export default (_p, ctx) => ctx.nothing.here;\n");
    const e = await engine([{ name: "w", triggers: [{ on_issue: {} }], actions: [{ custom: { module: bad } }] }]);
    const r = await run(e, mkIssue(), undefined, logger);
    expect(r.trace[0]?.actions[0]?.status).toBe("failed");
    const warns = lines.map((l) => JSON.parse(l) as { level: string; msg: string }).filter((l) => l.level === "warn");
    expect(warns).toHaveLength(1);
    expect(warns[0]?.msg).toMatch(/^action custom:typeerror failed: Cannot read properties of undefined/);
  });
});

// ───────────────────────────── template language ─────────────────────────────

describe("template language", () => {
  const issue = mkIssue({ labels: { team: "payments", "app.kubernetes.io/name": "api", empty: "" }, annotations: { summary: "  Pod is crash looping.  " } });
  const data = templateData(issue);
  const t = (source: string): string => compileTemplate(source).render(data);

  it("looks up the Issue's fields, labels and annotations (dotted label keys included)", () => {
    expect(t("{{ labels.team }}/{{ annotations.summary }}")).toBe("payments/  Pod is crash looping.  ");
    expect(t("{{labels.app.kubernetes.io/name}} {{ labels[\"app.kubernetes.io/name\"] }} {{ subject.labels.app.kubernetes.io/name }}")).toBe("api api api");
    expect(t("{{ alertname }} {{ namespace }} {{ subject.kind }} {{ subject.name }} {{ severity }} {{ status }} {{ clusterName }} {{ fingerprint }}")).toBe(
      `KubePodCrashLooping shop Pod api-7d9f LOW FIRING prod-eu-1 ${issue.fingerprint}`,
    );
    expect(t("{{ links }}")).toBe(JSON.stringify(issue.links));
  });

  it("applies filters left to right", () => {
    expect(t('{{ labels.owner | default "nobody" | upper }}')).toBe("NOBODY");
    expect(t('{{ labels.empty | default "none" }}')).toBe("none");
    expect(t('{{ labels.team | default "none" }}')).toBe("payments");
    expect(t("{{ annotations.summary | trim | lower }}")).toBe("pod is crash looping.");
    expect(t("{{ labels.app.kubernetes.io/name | urlencode }}")).toBe("api");
    expect(t("{{ annotations.summary | trim | urlencode }}")).toBe("Pod%20is%20crash%20looping.");
    expect(t("{{ labels.team | json }}")).toBe('"payments"');
    expect(t('{{ labels.x | default "a \\"quoted\\" | pipe" }}')).toBe('a "quoted" | pipe');
  });

  it("a missing value is an empty string", () => {
    expect(t("[{{ labels.nope }}][{{ nothing.at.all }}][{{ annotations.summary.length }}]")).toBe("[][][]");
  });

  it("cannot reach anything outside the data: prototypes give nothing", () => {
    expect(t("[{{ constructor }}][{{ __proto__ }}][{{ toString }}][{{ labels.__proto__ }}][{{ labels.constructor }}][{{ subject.constructor.name }}][{{ title.length }}]")).toBe("[][][][][][][]");
    const hostile = templateData(mkIssue({ labels: JSON.parse('{"__proto__": "own value"}') as Record<string, string> }));
    expect(compileTemplate("{{ labels.__proto__ }}").render(hostile)).toBe("own value");
  });

  it("writes \\{{ as a literal {{", () => {
    expect(t("\\{{ labels.team }} is {{ labels.team }}")).toBe("{{ labels.team }} is payments");
  });

  it("refuses what it cannot read, with the reason", () => {
    expect(() => compileTemplate("Owner: {{ labels.team")).toThrow(new TemplateError("Owner: {{ labels.team", "unterminated {{"));
    expect(() => compileTemplate("{{ a }} and {{ b")).toThrow(/unterminated \{\{/);
    expect(() => compileTemplate("{{ labels.team | shout }}")).toThrow(/unknown filter "shout" \(use default, upper, lower, urlencode, trim, json\)/);
    expect(() => compileTemplate("{{ 1 + 1 }}")).toThrow(/"1 \+ 1" is not a field path/);
    expect(() => compileTemplate("{{ labels.team() }}")).toThrow(/is not a field path/);
    expect(() => compileTemplate("{{ }}")).toThrow(/is not a field path/);
    expect(templateProblem("ok {{ labels.team }}")).toBeUndefined();
    expect(templateProblem("{{ x")).toMatch(/unterminated/);
    // Text without any {{ is fine, and so are single braces.
    expect(t("plain { text } }}")).toBe("plain { text } }}");
  });
});
