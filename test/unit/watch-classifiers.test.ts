/**
 * The pure parts of `kubecano watch`: projections of served objects (what a
 * watcher keeps), the classifiers (projection changes → findings), noise
 * control (filters, the per-workload rate limit and its Lease encoding),
 * the watch config and the on_kubernetes_event trigger.
 */
import { describe, expect, it } from "vitest";
import { configSchema } from "../../src/config/schema.js";
import { createIssue } from "../../src/core/issue.js";
import { classifyEvent, classifyHelm, classifyJob, classifyNode, classifyPod, replicaSetWorkload, type ClassifyContext } from "../../src/sources/kubernetes/classifiers.js";
import { WATCH_REASON_NAMES, watchSchema } from "../../src/sources/kubernetes/config.js";
import { decodeLedger, encodeLedger, exactNamespaces, IncidentLedger, MAX_ENTRIES, NoiseFilter } from "../../src/sources/kubernetes/noise.js";
import { projectEvent, projectHelmSecret, projectJob, projectNode, projectPod, workloadOf, type PodP } from "../../src/sources/kubernetes/projections.js";
import { DEFAULT_WORKFLOWS } from "../../src/workflows/defaults.js";
import { triggerSchema } from "../../src/workflows/schema.js";
import { compileTrigger } from "../../src/workflows/triggers.js";
import {
  crashLoopingPod,
  deployment,
  event,
  evictedPod,
  helmReleaseSecret,
  imagePullBackOffPod,
  job,
  node,
  oomKilledPod,
  pod,
  replicaSet,
  cronJob,
  type KubeObject,
} from "../fakes/kube.js";

const NOW = Date.parse("2026-11-26T12:00:00Z");
const S = 1000;
const M = 60 * S;
const ago = (ms: number): Date => new Date(NOW - ms);

const settings = { crashLoopRestarts: 2, imagePullDelay: 2 * M, schedulingDelay: 5 * M, helmPendingDelay: 10 * M, unhealthy: false };
function ctx(over: Partial<ClassifyContext> = {}): ClassifyContext {
  return { settings, now: NOW, startedMs: NOW - 10 * S, lookbackMs: 5 * M, ...over };
}

const dep = deployment({ name: "api", namespace: "shop" });
const rs = replicaSet({ name: "api-7d9f8b6c5d", namespace: "shop", owner: dep });
const podLabels = { app: "api", "pod-template-hash": "7d9f8b6c5d" };
const P = (o: KubeObject): PodP => {
  const p = projectPod(o);
  if (p === undefined) throw new Error("did not project");
  return { ...p, rv: String(Math.random()) };
};
const healthy = (): PodP => P(pod({ name: "api-7d9f8b6c5d-x1", namespace: "shop", owner: rs, node: "n1", labels: podLabels, uid: "u-1", createdAt: ago(30 * M) }));

describe("projections", () => {
  it("keep what the classifiers need of a pod: owner resolved to its Deployment, containers, conditions; Dates or strings", () => {
    const raw = oomKilledPod({ name: "api-7d9f8b6c5d-x1", namespace: "shop", owner: rs, node: "n1", labels: podLabels, restartCount: 4, finishedAt: ago(30 * S), annotations: { "kubecano.io/ignore": "true", big: "x".repeat(10_000) } });
    const p = projectPod(raw)!;
    expect(p).toMatchObject({ namespace: "shop", name: "api-7d9f8b6c5d-x1", owner: { kind: "Deployment", name: "api" }, node: "n1", phase: "Running", ignore: true, ready: { status: "False" } });
    expect(p.containers).toEqual([
      expect.objectContaining({ name: "app", init: false, ready: false, restarts: 4, running: false, waiting: expect.objectContaining({ reason: "CrashLoopBackOff" }), lastTerm: expect.objectContaining({ reason: "OOMKilled", exitCode: 137, finishedMs: NOW - 30 * S }) }),
    ]);
    // Annotations are not kept (only the opt-out flag).
    expect(JSON.stringify(p)).not.toContain("xxxx");
    // client-node's typed lists give Dates: the same projection.
    const dated = JSON.parse(JSON.stringify(raw)) as KubeObject;
    (dated.metadata as Record<string, unknown>)["creationTimestamp"] = new Date(String(dated.metadata.creationTimestamp));
    expect(projectPod(dated)?.createdMs).toBe(p.createdMs);
  });

  it("resolve owners: a ReplicaSet named <deployment>-<pod-template-hash> is its Deployment; other owners stay", () => {
    expect(workloadOf({ kind: "ReplicaSet", name: "web-5d8f9c7b6" }, { "pod-template-hash": "5d8f9c7b6" })).toEqual({ kind: "Deployment", name: "web" });
    expect(workloadOf({ kind: "ReplicaSet", name: "web-5d8f9c7b6" }, {})).toEqual({ kind: "ReplicaSet", name: "web-5d8f9c7b6" });
    expect(workloadOf({ kind: "StatefulSet", name: "db" }, {})).toEqual({ kind: "StatefulSet", name: "db" });
    expect(workloadOf(undefined, {})).toBeUndefined();
    expect(replicaSetWorkload("web-5d8f9c7b6")).toEqual({ kind: "Deployment", name: "web" });
    expect(replicaSetWorkload("web")).toEqual({ kind: "ReplicaSet", name: "web" });
  });

  it("skip malformed objects instead of throwing", () => {
    for (const bad of [null, 1, "x", {}, { metadata: {} }, { metadata: { name: "a" } }, { metadata: { uid: "u" } }]) {
      expect(projectPod(bad)).toBeUndefined();
      expect(projectEvent(bad)).toBeUndefined();
      expect(projectJob(bad)).toBeUndefined();
      expect(projectNode(bad)).toBeUndefined();
      expect(projectHelmSecret(bad)).toBeUndefined();
    }
    expect(projectPod({ metadata: { uid: "u", name: "p" }, status: { containerStatuses: "nope", conditions: [null, 3] } })).toMatchObject({ name: "p", containers: [], phase: "Unknown" });
  });

  it("events: last seen is lastTimestamp, else series.lastObservedTime, else eventTime", () => {
    const inv = pod({ name: "p", node: "n" });
    const a = projectEvent(event({ involvedObject: inv, reason: "FailedMount", message: "m", lastTimestamp: ago(M) }))!;
    expect(a.lastMs).toBe(NOW - M);
    const raw = event({ involvedObject: inv, reason: "FailedMount", message: "m", series: { count: 4, lastObservedTime: ago(2 * M) } }) as Record<string, unknown>;
    raw["lastTimestamp"] = null;
    expect(projectEvent(raw)?.lastMs).toBe(NOW - 2 * M);
    raw["series"] = undefined;
    raw["eventTime"] = ago(3 * M).toISOString();
    expect(projectEvent(raw)?.lastMs).toBe(NOW - 3 * M);
  });

  it("decode Helm release Secrets: base64 of Helm's base64 of gzipped JSON", () => {
    const h = projectHelmSecret(helmReleaseSecret({ release: "shop", namespace: "apps", revision: 7, status: "failed", chart: "shop", chartVersion: "2.3.4", appVersion: "9.9", description: "Upgrade \"shop\" failed: timed out" }))!;
    expect(h).toMatchObject({ release: "shop", namespace: "apps", revision: 7, status: "failed", chart: "shop", chartVersion: "2.3.4", appVersion: "9.9", description: 'Upgrade "shop" failed: timed out', secret: "sh.helm.release.v1.shop.v7" });
    // Undecodable: still known from the Secret's labels.
    const broken = helmReleaseSecret({ release: "web", revision: 3, status: "pending-upgrade" });
    (broken["data"] as Record<string, string>)["release"] = "!!!not base64";
    expect(projectHelmSecret(broken)).toMatchObject({ release: "web", revision: 3, status: "pending-upgrade", chart: undefined });
    // Not Helm's.
    const other = helmReleaseSecret({ release: "x" });
    other.metadata.labels = { owner: "someone" };
    expect(projectHelmSecret(other)).toBeUndefined();
  });

  it("jobs and nodes", () => {
    const cj = cronJob({ name: "nightly", namespace: "batch" });
    expect(projectJob(job({ name: "nightly-29410560", namespace: "batch", owner: cj, outcome: "failed", backoffLimit: 2 }))).toMatchObject({ owner: { kind: "CronJob", name: "nightly" }, failed: { status: "True", reason: "BackoffLimitExceeded" }, failedPods: 3, complete: false });
    expect(projectJob(job({ name: "j", outcome: "complete" }))).toMatchObject({ failed: undefined, complete: true });
    expect(projectNode(node({ name: "w1", ready: "Unknown", memoryPressure: true, unschedulable: true }))).toMatchObject({ ready: { status: "Unknown", reason: "NodeStatusUnknown" }, pressures: ["MemoryPressure"], unschedulable: true });
  });
});

describe("pod classifier", () => {
  it("a crash loop after OOM kills is one finding, OOMKilled, about the pod, counted per Deployment", () => {
    const cur = P(oomKilledPod({ name: "api-7d9f8b6c5d-x1", namespace: "shop", owner: rs, node: "n1", labels: podLabels, uid: "u-1", restartCount: 3, finishedAt: ago(20 * S) }));
    const v = classifyPod(healthy(), cur, ctx());
    expect(v.healthy).toBe(false);
    expect(v.findings).toHaveLength(1);
    expect(v.findings[0]).toMatchObject({
      reason: "OOMKilled",
      status: "FIRING",
      source: "kubernetes",
      workload: { kind: "Deployment", name: "api", namespace: "shop" },
      subject: { kind: "Pod", name: "api-7d9f8b6c5d-x1", namespace: "shop", node: "n1", container: "app", labels: podLabels },
      title: "Pod shop/api-7d9f8b6c5d-x1 is crash looping: container app was OOMKilled",
      eventType: "Warning",
      podUid: "u-1",
    });
    expect(v.findings[0]?.description).toMatch(/restarted 3 times; the last instance ended OOMKilled \(exit code 137, signal 9\)/);
  });

  it("an OOM kill the pod recovered from is reported on the transition only", () => {
    const oom = P(oomKilledPod({ name: "api-7d9f8b6c5d-x1", namespace: "shop", owner: rs, node: "n1", labels: podLabels, uid: "u-1", restartCount: 1, backOff: false, finishedAt: ago(10 * S) }));
    const first = classifyPod(healthy(), oom, ctx());
    expect(first.findings.map((f) => [f.reason, f.title])).toEqual([["OOMKilled", "Container app of pod shop/api-7d9f8b6c5d-x1 was OOMKilled"]]);
    expect(first.healthy).toBe(true);
    // The same termination seen again (any later change of the pod) is not news.
    expect(classifyPod(oom, { ...oom, rv: "later" }, ctx()).findings).toEqual([]);
    // At start-up: reported when it happened within the lookback, not when it is history.
    expect(classifyPod(undefined, oom, ctx()).findings).toHaveLength(1);
    const old = P(oomKilledPod({ name: "x", owner: rs, node: "n1", labels: podLabels, restartCount: 1, backOff: false, finishedAt: ago(2 * 3600 * S) }));
    expect(classifyPod(undefined, old, ctx()).findings).toEqual([]);
  });

  it("CrashLoopBackOff from crashLoopRestarts restarts on; it is a condition, reported while it holds", () => {
    const loop = (restarts: number): PodP => P(crashLoopingPod({ name: "p", namespace: "shop", node: "n1", restartCount: restarts }));
    expect(classifyPod(undefined, loop(1), ctx()).findings).toEqual([]);
    expect(classifyPod(undefined, loop(2), ctx()).findings.map((f) => f.reason)).toEqual(["CrashLoopBackOff"]);
    expect(classifyPod(loop(5), loop(6), ctx()).findings.map((f) => f.reason)).toEqual(["CrashLoopBackOff"]);
    expect(classifyPod(undefined, loop(5), ctx({ settings: { ...settings, crashLoopRestarts: 10 } })).findings).toEqual([]);
    // A bare pod is its own workload.
    expect(classifyPod(undefined, loop(5), ctx()).findings[0]?.workload).toEqual({ kind: "Pod", name: "p", namespace: "shop" });
  });

  it("image pull failures are delayed findings (counted from when they were first seen); config errors are not", () => {
    const pull = P(imagePullBackOffPod({ name: "p", namespace: "shop", uid: "u-9", containers: [{ name: "app", image: "registry.example.com/nope:1" }] }));
    const [f] = classifyPod(undefined, pull, ctx()).findings;
    expect(f).toMatchObject({ reason: "ImagePullBackOff", delay: { key: "u-9/app/ImagePullBackOff", ms: 2 * M } });
    expect(f?.delay?.since).toBeUndefined();
    expect(f?.description).toContain('Back-off pulling image "registry.example.com/nope:1"');
    const cfg = P(pod({ name: "p", node: "n1", containerStatuses: [{ name: "app", ready: false, state: { waiting: { reason: "CreateContainerConfigError", message: 'configmap "app-config" not found' } } }] }));
    const [c] = classifyPod(undefined, cfg, ctx()).findings;
    expect(c).toMatchObject({ reason: "CreateContainerConfigError", description: 'configmap "app-config" not found' });
    expect(c?.delay).toBeUndefined();
  });

  it("evictions: on the transition, or at start-up within the lookback", () => {
    const running = P(pod({ name: "p", node: "n1", uid: "u" }));
    const evicted = P(evictedPod({ name: "p", node: "n1", uid: "u", resource: "memory" }));
    expect(classifyPod(running, evicted, ctx()).findings).toEqual([expect.objectContaining({ reason: "Evicted", title: "Pod default/p was evicted from node n1", description: expect.stringContaining("low on resource: memory") })]);
    expect(classifyPod(evicted, { ...evicted, rv: "2" }, ctx()).findings).toEqual([]);
    const oldEviction = P(evictedPod({ name: "p", node: "n1", createdAt: ago(3_600 * S) }));
    expect(classifyPod(undefined, { ...oldEviction, lastTransitionMs: NOW - 3_600 * S }, ctx()).findings).toEqual([]);
  });

  it("unschedulable pods: delayed from the PodScheduled transition, with the scheduler's message", () => {
    const pending = P(pod({ name: "p", createdAt: ago(7 * M), startTime: ago(7 * M) }));
    const [f] = classifyPod(undefined, pending, ctx()).findings;
    expect(f).toMatchObject({ reason: "FailedScheduling", delay: { ms: 5 * M, since: NOW - 7 * M }, startsMs: NOW - 7 * M });
    expect(f?.description).toMatch(/^Pending and unscheduled for 7m\.\n0\/3 nodes are available: 3 Insufficient cpu/);
  });

  it("healthy means running and ready", () => {
    expect(classifyPod(undefined, healthy(), ctx())).toEqual({ findings: [], healthy: true });
  });
});

describe("event, job, node and Helm classifiers", () => {
  const inv = pod({ name: "api-7d9f8b6c5d-x1", namespace: "shop", node: "n1", owner: rs, labels: podLabels });
  it("FailedMount and quota events are reported; pod-state reasons and Normal events are left to the pod classifier", () => {
    const mount = projectEvent(event({ involvedObject: inv, reason: "FailedMount", message: 'MountVolume.SetUp failed for volume "data" : secret "db" not found', count: 4, lastTimestamp: ago(M) }))!;
    expect(classifyEvent(mount, ctx(), projectPod(inv))).toMatchObject({
      reason: "FailedMount",
      workload: { kind: "Deployment", name: "api", namespace: "shop" },
      subject: { kind: "Pod", name: "api-7d9f8b6c5d-x1", namespace: "shop", node: "n1" },
      title: "Pod shop/api-7d9f8b6c5d-x1 cannot mount a volume",
      description: 'FailedMount (4 times): MountVolume.SetUp failed for volume "data" : secret "db" not found',
    });
    const rsObj = replicaSet({ name: "web-5d8f9c7b6", namespace: "shop" });
    const quota = projectEvent(event({ involvedObject: rsObj, reason: "FailedCreate", message: 'pods "web-5d8f9c7b6-abcde" is forbidden: exceeded quota: compute, requested: cpu=2, used: cpu=8, limited: cpu=8' }))!;
    expect(classifyEvent(quota, ctx(), undefined)).toMatchObject({ reason: "QuotaExceeded", workload: { kind: "Deployment", name: "web" }, subject: { kind: "ReplicaSet", name: "web-5d8f9c7b6" } });
    const otherCreate = projectEvent(event({ involvedObject: rsObj, reason: "FailedCreate", message: "something else" }))!;
    expect(classifyEvent(otherCreate, ctx(), undefined)).toBeUndefined();
    for (const reason of ["BackOff", "Failed", "Evicted", "Killing"]) expect(classifyEvent(projectEvent(event({ involvedObject: inv, reason, message: "m" }))!, ctx(), undefined)).toBeUndefined();
    expect(classifyEvent(projectEvent(event({ involvedObject: inv, reason: "FailedMount", message: "m", type: "Normal" }))!, ctx(), undefined)).toBeUndefined();
  });

  it("events last seen before start-up minus the lookback are history", () => {
    const old = projectEvent(event({ involvedObject: inv, reason: "FailedMount", message: "m", lastTimestamp: ago(6 * M) }))!;
    expect(classifyEvent(old, ctx(), undefined)).toBeUndefined();
    expect(classifyEvent(old, ctx({ lookbackMs: 10 * M }), undefined)).toBeDefined();
  });

  it("probe failures only with unhealthy: true", () => {
    const e = projectEvent(event({ involvedObject: inv, reason: "Unhealthy", message: "Liveness probe failed: HTTP probe failed with statuscode: 500", fieldPath: "spec.containers{app}" }))!;
    expect(classifyEvent(e, ctx(), undefined)).toBeUndefined();
    expect(classifyEvent(e, ctx({ settings: { ...settings, unhealthy: true } }), undefined)).toMatchObject({ reason: "Unhealthy", title: "Pod shop/api-7d9f8b6c5d-x1 fails its liveness probe (container app)", subject: { container: "app" } });
  });

  it("a Job failing is reported once, per CronJob when it has one", () => {
    const cj = cronJob({ name: "nightly", namespace: "batch" });
    const running = projectJob(job({ name: "nightly-1", namespace: "batch", owner: cj, uid: "j" }))!;
    const failed = projectJob(job({ name: "nightly-1", namespace: "batch", owner: cj, uid: "j", outcome: "failed", completionTime: ago(M) }))!;
    expect(classifyJob(running, failed, ctx())).toMatchObject({ reason: "JobFailed", workload: { kind: "CronJob", name: "nightly" }, subject: { kind: "Job", name: "nightly-1" }, title: "Job batch/nightly-1 failed (CronJob nightly)" });
    expect(classifyJob(failed, { ...failed, rv: "x" }, ctx())).toBeUndefined();
    expect(classifyJob(undefined, failed, ctx())).toBeDefined();
    const oldFail = projectJob(job({ name: "j", outcome: "failed", completionTime: ago(3_600 * S) }))!;
    expect(classifyJob(undefined, oldFail, ctx())).toBeUndefined();
  });

  it("nodes: not ready fires, ready resolves", () => {
    expect(classifyNode(projectNode(node({ name: "w1", ready: false }))!, ctx())).toMatchObject({ reason: "NodeNotReady", status: "FIRING", subject: { kind: "Node", name: "w1" }, title: "Node w1 is not ready" });
    expect(classifyNode(projectNode(node({ name: "w1", ready: "Unknown" }))!, ctx())?.title).toBe("Node w1 is not ready (the kubelet stopped reporting)");
    expect(classifyNode(projectNode(node({ name: "w1" }))!, ctx())).toMatchObject({ reason: "NodeNotReady", status: "RESOLVED", eventType: "Normal" });
  });

  it("Helm: failed fires, pending waits helmPendingDelay, deployed resolves both", () => {
    const failed = projectHelmSecret(helmReleaseSecret({ release: "shop", namespace: "apps", revision: 4, status: "failed", chart: "shop", chartVersion: "1.2.0" }))!;
    expect(classifyHelm(failed, ctx())).toEqual([
      expect.objectContaining({ reason: "HelmReleaseFailed", status: "FIRING", source: "helm", subject: expect.objectContaining({ kind: "HelmRelease", name: "shop", namespace: "apps", labels: expect.objectContaining({ revision: "4", status: "failed", chart: "shop", chart_version: "1.2.0" }) }), title: "Helm release apps/shop failed (revision 4)" }),
    ]);
    const pending = projectHelmSecret(helmReleaseSecret({ release: "shop", namespace: "apps", revision: 5, status: "pending-upgrade", lastDeployed: ago(M) }))!;
    expect(classifyHelm(pending, ctx())).toEqual([expect.objectContaining({ reason: "HelmReleasePending", delay: expect.objectContaining({ ms: 10 * M, since: NOW - M }) })]);
    const deployed = projectHelmSecret(helmReleaseSecret({ release: "shop", namespace: "apps", revision: 6 }))!;
    expect(classifyHelm(deployed, ctx()).map((f) => [f.reason, f.status])).toEqual([
      ["HelmReleaseFailed", "RESOLVED"],
      ["HelmReleasePending", "RESOLVED"],
    ]);
    expect(classifyHelm(projectHelmSecret(helmReleaseSecret({ release: "shop", status: "superseded" }))!, ctx())).toEqual([]);
  });
});

describe("noise control", () => {
  const finding = (over: Record<string, unknown> = {}) => ({
    ...classifyPod(undefined, P(crashLoopingPod({ name: "p", namespace: "shop", node: "n1" })), ctx()).findings[0]!,
    ...over,
  });

  it("filters namespaces (patterns, exclude), reasons and the opt-out annotation", () => {
    const f = new NoiseFilter({ namespaces: ["shop", "team-*"], excludeNamespaces: ["team-sandbox"], reasons: { include: [], exclude: ["Unhealthy"] } });
    expect(f.rejects(finding())).toBeUndefined();
    expect(f.rejects(finding({ workload: { kind: "Pod", name: "p", namespace: "team-a" } }))).toBeUndefined();
    expect(f.rejects(finding({ workload: { kind: "Pod", name: "p", namespace: "team-sandbox" } }))).toBe("namespace");
    expect(f.rejects(finding({ workload: { kind: "Pod", name: "p", namespace: "other" } }))).toBe("namespace");
    expect(f.rejects(finding({ reason: "Unhealthy" }))).toBe("reason");
    expect(f.rejects(finding({ ignore: true }))).toBe("ignored");
    // Cluster-scoped findings (nodes) pass namespace filters.
    expect(f.rejects(finding({ workload: { kind: "Node", name: "w1" }, subject: { kind: "Node", name: "w1", labels: {} } }))).toBeUndefined();
    const only = new NoiseFilter({ namespaces: [], excludeNamespaces: [], reasons: { include: ["OOM*", "CrashLoopBackOff"], exclude: [] } });
    expect(only.rejects(finding())).toBeUndefined();
    expect(only.rejects(finding({ reason: "FailedMount" }))).toBe("reason");
  });

  it("plain namespace names are watched one by one; any pattern means watching all and filtering", () => {
    expect(exactNamespaces(["shop", "payments", "shop"])).toEqual(["shop", "payments"]);
    expect(exactNamespaces(["shop", "team-*"])).toBeUndefined();
    expect(exactNamespaces(["!=kube-system"])).toBeUndefined();
    expect(exactNamespaces([])).toBeUndefined();
  });

  it("one Issue per key per window; a resolution closes the window; only an open incident resolves", () => {
    const l = new IncidentLedger(4 * 3600 * S);
    expect(l.fire("a", NOW)).toBe(true);
    expect(l.fire("a", NOW + 3600 * S)).toBe(false);
    expect(l.fire("b", NOW)).toBe(true);
    expect(l.fire("a", NOW + 4 * 3600 * S)).toBe(true);
    expect(l.resolve("a")).toBe(true);
    expect(l.resolve("a")).toBe(false);
    expect(l.resolve("never")).toBe(false);
    expect(l.fire("a", NOW + 4 * 3600 * S + 1)).toBe(true);
  });

  it("the ledger round-trips through its Lease annotation, keeps the newest MAX_ENTRIES, and ignores garbage", () => {
    const l = new IncidentLedger(3600 * S);
    for (let i = 0; i < MAX_ENTRIES + 10; i++) l.fire(`k${i}`, NOW + i * S);
    expect(l.size).toBe(MAX_ENTRIES);
    const back = decodeLedger(encodeLedger(l.snapshot()));
    expect(back.size).toBe(MAX_ENTRIES);
    expect(back.has("k0")).toBe(false);
    expect(back.get(`k${MAX_ENTRIES + 9}`)).toEqual({ firedMs: NOW + (MAX_ENTRIES + 9) * S });
    const other = new IncidentLedger(3600 * S);
    other.load(back);
    expect(other.fire(`k${MAX_ENTRIES + 9}`, NOW + (MAX_ENTRIES + 10) * S)).toBe(false);
    for (const junk of [undefined, "", "{", "[]", '{"v":2,"e":{}}', '{"v":1,"e":{"a":"x","b":null}}']) expect(decodeLedger(junk).size).toBe(0);
  });
});

describe("config and triggers", () => {
  it("the watch section has the documented defaults and refuses mistakes with their path", () => {
    const c = configSchema.parse({}).watch;
    expect(c).toMatchObject({ namespaces: [], rateLimitWindow: 4 * 3600 * S, lookback: 5 * M, crashLoopRestarts: 2, imagePullDelay: 2 * M, schedulingDelay: 5 * M, helmPendingDelay: 10 * M, unhealthy: false, helm: true, stallTimeout: 5 * M, severity: {} });
    expect(c.leaderElection).toEqual({ enabled: true, leaseName: "kubecano", leaseDuration: 15 * S, renewDeadline: 10 * S, retryPeriod: 2 * S });
    const problems = (input: unknown): string[] => {
      const r = watchSchema.safeParse(input);
      return r.success ? [] : r.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`);
    };
    expect(problems({ severity: { CrashLoop: "HIGH" } })[0]).toMatch(/^severity\.CrashLoop: unknown reason "CrashLoop": use CrashLoopBackOff/);
    expect(problems({ namespaces: ["/(x/"] })[0]).toMatch(/^namespaces\.0: invalid pattern/);
    expect(problems({ leaderElection: { leaseDuration: "5s", renewDeadline: "10s" } })[0]).toBe("leaderElection.renewDeadline: must be shorter than leaseDuration");
    expect(problems({ stallTimeout: "10ms" })[0]).toBe("stallTimeout: must be at least 1s");
    expect(problems({ namespace: ["x"] })[0]).toMatch(/namespace/);
    expect(WATCH_REASON_NAMES).toContain("HelmReleasePending");
  });

  const issue = (over: Partial<Parameters<typeof createIssue>[0]> = {}) =>
    createIssue({
      title: "t",
      aggregationKey: "OOMKilled",
      severity: "HIGH",
      status: "FIRING",
      source: "kubernetes",
      type: "event",
      subject: { kind: "Pod", name: "p", namespace: "shop", labels: { app: "api" }, annotations: { "kubecano.io/event-type": "Warning" } },
      startsAt: new Date(NOW).toISOString(),
      clusterName: "c",
      ...over,
    });
  const trigger = (t: unknown) => compileTrigger(triggerSchema.parse(t));

  it("on_kubernetes_event matches watched Issues by reason, kind, namespace, labels, type and status, and says why not", () => {
    expect(trigger({ on_kubernetes_event: null }).match(issue()).ok).toBe(true);
    const t = trigger({ on_kubernetes_event: { reason: ["CrashLoopBackOff", "OOMKilled"], kind: "Pod", namespace: "shop", labels: { app: "api" }, type: "Warning", status: "firing" } });
    expect(t.match(issue())).toEqual({ ok: true, why: "on_kubernetes_event reason=[CrashLoopBackOff, OOMKilled] kind=Pod namespace=shop labels.app=api type=Warning status=firing" });
    expect(t.match(issue({ aggregationKey: "FailedMount" })).why).toBe('reason "FailedMount" does not match [CrashLoopBackOff, OOMKilled]');
    expect(t.match(issue({ status: "RESOLVED" })).why).toBe('status "resolved" does not match firing');
    expect(t.match(issue({ source: "prometheus", type: "alert" }))).toEqual({ ok: false, why: "not a Kubernetes event (source prometheus)" });
    expect(trigger({ on_kubernetes_event: { kind: "HelmRelease" } }).match(issue({ source: "helm", subject: { kind: "HelmRelease", name: "r", labels: {}, annotations: {} } })).ok).toBe(true);
    expect(trigger({ on_kubernetes_event: { type: "Normal" } }).match(issue()).why).toBe('type "Warning" does not match Normal');
    expect(() => triggerSchema.parse({ on_kubernetes_event: { reason: "/(/" } })).toThrow(/invalid pattern/);
    expect(() => triggerSchema.parse({ on_kubernetes_event: { type: "Error" } })).toThrow();
  });

  it("default workflows cover every reason that has context to add", () => {
    const names = DEFAULT_WORKFLOWS.map((w) => w.name);
    expect(names).toEqual(expect.arrayContaining(["watch-crashloop-context", "watch-pod-context", "watch-job-failed-context", "watch-node-not-ready-context", "watch-quota-context", "helm-release-context"]));
    const matching = (i: ReturnType<typeof issue>) => DEFAULT_WORKFLOWS.filter((w) => w.triggers.some((t) => compileTrigger(t).match(i).ok)).map((w) => w.name);
    expect(matching(issue())).toEqual(["watch-crashloop-context"]);
    expect(matching(issue({ aggregationKey: "JobFailed", subject: { kind: "Job", name: "j", namespace: "b", labels: {}, annotations: {} } }))).toEqual(["watch-job-failed-context"]);
    expect(matching(issue({ status: "RESOLVED" }))).toEqual([]);
    expect(matching(issue({ source: "helm", aggregationKey: "HelmReleaseFailed", subject: { kind: "HelmRelease", name: "r", namespace: "a", labels: {}, annotations: {} } }))).toEqual(["helm-release-context"]);
  });
});
