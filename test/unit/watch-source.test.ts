/**
 * The watch machinery in-process against the Kubernetes API fake over real
 * sockets: the supervised list+watch (paging, resume after a dropped watch,
 * re-list on 410 without duplicates, the stall watchdog, backoff), leader
 * election on a Lease (one leader, takeover after a silent leader, release,
 * the ledger handed over), and the source's noise control and backpressure.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { Issue } from "../../src/core/issue.js";
import { createLogger } from "../../src/observability/logger.js";
import { Metrics } from "../../src/observability/metrics.js";
import { KubeApi, type KubeApiLike } from "../../src/sources/kubernetes/api.js";
import { watchSchema, type WatchConfig } from "../../src/sources/kubernetes/config.js";
import { LEDGER_ANNOTATION, LeaderElector } from "../../src/sources/kubernetes/leader.js";
import { decodeLedger, type LedgerEntry } from "../../src/sources/kubernetes/noise.js";
import { projectPod, type PodP } from "../../src/sources/kubernetes/projections.js";
import { KubernetesSource, type SinkOutcome } from "../../src/sources/kubernetes/source.js";
import { ResourceWatcher, type Change } from "../../src/sources/kubernetes/watch.js";
import { KubeConfig } from "@kubernetes/client-node";
import {
  crashLoopingPod,
  deployment,
  event,
  helmReleaseSecret,
  lease,
  node,
  oomKilledPod,
  pod,
  replicaSet,
  startKubeFake,
  type KubeFake,
  type KubeObject,
} from "../fakes/kube.js";

const log = createLogger({ level: "silent" });
let kube: KubeFake;
let api: KubeApi;
const cleanups: (() => Promise<void> | void)[] = [];

beforeEach(async () => {
  kube = await startKubeFake();
  const kc = new KubeConfig();
  kc.loadFromString(kube.kubeconfigYaml());
  api = new KubeApi(kc);
});
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
  api.close();
  await kube.close();
});

async function until<T>(check: () => T | undefined | false, what: string, ms = 10_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = check();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const FAST = { initialMs: 30, maxMs: 200, healthyAfterMs: 60_000 };

function podWatcher(opts: { stallTimeoutMs?: number; pageSize?: number; path?: string } = {}) {
  const changes: Change<PodP, PodP>[] = [];
  const restarts: string[] = [];
  const w = new ResourceWatcher<PodP, PodP>(
    api,
    { resource: "pods", path: opts.path ?? "/api/v1/pods", project: projectPod, retain: (p) => p },
    { log, onChange: (c) => changes.push(c), stallTimeoutMs: opts.stallTimeoutMs ?? 60_000, pageSize: opts.pageSize ?? 500, backoff: FAST, watchTimeoutSeconds: () => 300, onRestart: (r) => restarts.push(r) },
  );
  cleanups.push(() => w.stop());
  const seen = (): string[] => changes.map((c) => `${c.type} ${(c.current ?? c.previous)?.name}${c.initial ? " (initial)" : ""}`);
  return { w, changes, restarts, seen };
}

describe("the supervised watch", () => {
  it("lists in pages, delivers the first list as initial, then follows changes", async () => {
    for (let i = 0; i < 7; i++) kube.add(pod({ name: `p${i}`, node: "n1" }));
    const { w, seen } = podWatcher({ pageSize: 3 });
    w.start();
    await until(() => w.status().synced, "the first list");
    expect(kube.count({ verb: "list", resource: "pods" })).toBe(3);
    expect(kube.requests.filter((r) => r.verb === "list").map((r) => r.query["limit"])).toEqual(["3", "3", "3"]);
    expect(seen()).toEqual([0, 1, 2, 3, 4, 5, 6].map((i) => `ADDED p${i} (initial)`));
    await kube.waitForWatches(1, { resource: "pods" });
    expect(kube.watches[0]).toMatchObject({ bookmarks: true });
    kube.modify("Pod", "default", "p1", (o) => void ((o.metadata.labels ??= {})["x"] = "1"));
    kube.remove("Pod", "default", "p2");
    kube.add(pod({ name: "p9", node: "n1" }));
    await until(() => seen().length === 10, "three changes");
    expect(seen().slice(7)).toEqual(["MODIFIED p1", "DELETED p2", "ADDED p9"]);
    expect(w.status()).toMatchObject({ synced: true, state: "watching", objects: 7 });
  });

  it("resumes a dropped watch from its last resourceVersion: nothing lost, nothing twice, no new list", async () => {
    kube.add(pod({ name: "a", node: "n1" }));
    const { w, seen, restarts } = podWatcher();
    w.start();
    await kube.waitForWatches(1, { resource: "pods" });
    kube.add(pod({ name: "b", node: "n1" }));
    await until(() => seen().length === 2, "b");
    // The reconnect is held while the cluster changes; then let it through.
    const held = kube.hang({ verb: "watch" });
    expect(kube.dropWatches()).toBe(1);
    await until(() => held.waiting === 1, "the reconnect");
    kube.add(pod({ name: "c", node: "n1" }));
    kube.modify("Pod", "default", "a", (o) => void ((o.metadata.labels ??= {})["v"] = "2"));
    kube.remove("Pod", "default", "b");
    held.release();
    await until(() => seen().length === 5, "the missed changes");
    expect(seen()).toEqual(["ADDED a (initial)", "ADDED b", "ADDED c", "MODIFIED a", "DELETED b"]);
    expect(kube.count({ verb: "list" })).toBe(1);
    const resumed = kube.requests.filter((r) => r.verb === "watch").map((r) => r.query["resourceVersion"]);
    expect(resumed).toHaveLength(2);
    expect(Number(resumed[1])).toBeGreaterThan(Number(resumed[0]));
    expect(restarts).toEqual(["error"]);
  });

  it("a server-ended watch (timeout) resumes at once from its bookmark's resourceVersion", async () => {
    const { w, restarts } = podWatcher();
    w.start();
    await kube.waitForWatches(1, { resource: "pods" });
    kube.add(node({ name: "elsewhere" }));
    expect(kube.bookmark()).toBe(1);
    await until(() => w.status().resourceVersion === kube.resourceVersion, "the bookmark");
    // Let the watch run a moment so that ending it is not "ended at once".
    await new Promise((r) => setTimeout(r, 1_100));
    kube.dropWatches({ graceful: true });
    await until(() => kube.count({ verb: "watch" }) === 2, "the resumed watch");
    expect(kube.requests.filter((r) => r.verb === "watch")[1]?.query["resourceVersion"]).toBe(kube.resourceVersion);
    expect(restarts).toEqual(["ended"]);
  });

  it("on 410 it lists again and hands over only the difference (changed, new, vanished)", async () => {
    for (const n of ["a", "b", "c", "d"]) kube.add(pod({ name: n, node: "n1" }));
    const { w, seen, restarts } = podWatcher({ pageSize: 2 });
    w.start();
    await kube.waitForWatches(1, { resource: "pods" });
    const held = kube.hang({ verb: "watch" });
    kube.dropWatches();
    await until(() => held.waiting === 1, "the reconnect");
    kube.modify("Pod", "default", "a", (o) => void ((o.metadata.labels ??= {})["v"] = "2"));
    kube.remove("Pod", "default", "b");
    kube.add(pod({ name: "e", node: "n1" }));
    kube.compact();
    held.release();
    await until(() => seen().length === 7, "the difference");
    expect(seen().slice(4).sort()).toEqual(["ADDED e", "DELETED b", "MODIFIED a"]);
    expect(restarts).toEqual(["error", "expired"]);
    expect(kube.count({ verb: "list" })).toBe(2 + 2);
    // And it carries on watching.
    kube.add(pod({ name: "f", node: "n1" }));
    await until(() => seen().length === 8, "f");
    expect(seen()[7]).toBe("ADDED f");
  });

  it("a 410 ERROR event mid-stream (watch cache too far behind) re-lists without duplicates", async () => {
    kube.add(pod({ name: "a", node: "n1" }));
    const { w, seen, restarts } = podWatcher();
    w.start();
    await kube.waitForWatches(1, { resource: "pods" });
    expect(kube.expireWatches()).toBe(1);
    await until(() => kube.count({ verb: "list" }) === 2 && w.status().state === "watching", "the new list");
    expect(seen()).toEqual(["ADDED a (initial)"]);
    expect(restarts).toEqual(["expired"]);
  });

  it("restarts a watch that went silent (no event, no bookmark) past the stall timeout, from where it was", async () => {
    kube.add(pod({ name: "a", node: "n1" }));
    const { w, seen, restarts } = podWatcher({ stallTimeoutMs: 1_000 });
    w.start();
    await kube.waitForWatches(1, { resource: "pods" });
    expect(kube.stallWatches()).toBe(1);
    kube.add(pod({ name: "b", node: "n1" }));
    await until(() => seen().length === 2, "b after the restart");
    expect(seen()).toEqual(["ADDED a (initial)", "ADDED b"]);
    expect(restarts).toEqual(["stall"]);
    expect(kube.count({ verb: "list" })).toBe(1);
  });

  it("backs off on errors and reports them in its status; a refusal (403) stays visible", async () => {
    kube.failNext(500, { verb: "list" }, 2);
    const { w } = podWatcher();
    const statuses: string[] = [];
    w.start();
    await until(() => {
      const s = w.status();
      if (s.state === "backoff") statuses.push(`${s.lastErrorStatus}`);
      return s.synced;
    }, "the list after two failures");
    expect(kube.count({ verb: "list" })).toBe(3);
    expect(statuses).toContain("500");
    expect(w.status().lastError).toBeUndefined();

    const denied = podWatcher({ path: "/api/v1/namespaces/locked/pods" });
    kube.forbid({ namespace: "locked" });
    denied.w.start();
    const s = await until(() => (denied.w.status().lastErrorStatus === 403 ? denied.w.status() : undefined), "the 403");
    expect(s.synced).toBe(false);
    expect(s.lastError).toMatch(/HTTP 403.*cannot list resource "pods".*see README, RBAC/);
  });
});

/** A KubeApi that can be cut off, as a replica that dies or is partitioned. */
function cuttable(inner: KubeApiLike): KubeApiLike & { cut(): void } {
  let dead = false;
  return {
    cut: () => void (dead = true),
    request: (m, p, o) => (dead ? new Promise(() => undefined) : inner.request(m, p, o)),
    watch: (p, q, cb) => inner.watch(p, q, cb),
    close: () => inner.close(),
  };
}

describe("leader election on a Lease", () => {
  const settings = { leaseName: "kubecano", namespace: "kubecano", leaseDurationMs: 1_500, renewDeadlineMs: 1_000, retryPeriodMs: 200 };
  function elector(name: string, a: KubeApiLike = api, ledger = () => "") {
    const events: string[] = [];
    let loaded: Map<string, LedgerEntry> | undefined;
    const e = new LeaderElector(a, { ...settings, identity: name }, log);
    e.start({
      onStartedLeading: (l) => {
        loaded = l;
        events.push("start");
      },
      onStoppedLeading: () => events.push("stop"),
      ledger,
    });
    cleanups.push(() => e.stop());
    return { e, events, loaded: () => loaded };
  }
  const spec = () => kube.get("Lease", "kubecano", "kubecano")?.["spec"] as { holderIdentity?: string; leaseTransitions?: number } | undefined;

  it("exactly one of two replicas leads; the other takes over once the leader went silent for a lease duration", async () => {
    const a = cuttable(api);
    const one = elector("one", a, () => '{"v":1,"e":{"abc":1700000000}}');
    await until(() => one.e.isLeader(), "one leading");
    const two = elector("two");
    // A few retry periods and more than a lease duration: one renews, two stands by.
    await new Promise((r) => setTimeout(r, 2_000));
    expect([one.e.isLeader(), two.e.isLeader()]).toEqual([true, false]);
    expect(spec()).toMatchObject({ holderIdentity: "one", leaseTransitions: 0 });
    await until(() => decodeLedger((kube.get("Lease", "kubecano", "kubecano")?.metadata.annotations ?? {})[LEDGER_ANNOTATION]).has("abc"), "the ledger in the Lease");
    a.cut();
    await until(() => two.e.isLeader(), "the takeover", 10_000);
    expect(spec()).toMatchObject({ holderIdentity: "two", leaseTransitions: 1 });
    expect(two.loaded()?.get("abc")).toEqual({ firedMs: 1_700_000_000_000 });
    // The cut-off leader gives up after its renew deadline.
    await until(() => one.events.includes("stop"), "the old leader to give up");
    expect(one.e.isLeader()).toBe(false);
  });

  it("of two replicas starting together, one creates the Lease and leads; the other's write loses the race", async () => {
    const one = elector("one");
    const two = elector("two");
    await until(() => one.e.isLeader() || two.e.isLeader(), "a leader");
    await new Promise((r) => setTimeout(r, 600));
    expect([one.e.isLeader(), two.e.isLeader()].filter(Boolean)).toHaveLength(1);
    expect(spec()?.holderIdentity).toBe(one.e.isLeader() ? "one" : "two");
  });

  it("a released lease is taken at once, and the leader's persist fails once it lost the lease", async () => {
    const one = elector("one");
    await until(() => one.e.isLeader(), "one leading");
    expect(await one.e.persist()).toBe(true);
    const two = elector("two");
    await new Promise((r) => setTimeout(r, 300));
    expect(two.e.isLeader()).toBe(false);
    await one.e.stop();
    expect(spec()?.holderIdentity).toBe("");
    expect(await one.e.persist()).toBe(false);
    await until(() => two.e.isLeader(), "two taking the released lease");
    expect(spec()).toMatchObject({ holderIdentity: "two", leaseTransitions: 1 });
  });

  it("does not take a lease another holder keeps renewing, whatever its timestamps say", async () => {
    // A holder whose clock is an hour behind: its renewTime looks stale, but it changes, so it is alive.
    kube.add(lease({ name: "kubecano", namespace: "kubecano", holderIdentity: "elsewhere", leaseDurationSeconds: 1, renewTime: new Date(Date.now() - 3_600_000) }));
    const renew = setInterval(() => kube.modify("Lease", "kubecano", "kubecano", (o) => void ((o["spec"] as Record<string, unknown>)["renewTime"] = new Date(Date.now() - 3_600_000 + Math.random() * 1000).toISOString())), 200);
    cleanups.push(() => clearInterval(renew));
    const me = elector("me");
    await new Promise((r) => setTimeout(r, 2_500));
    expect(me.e.isLeader()).toBe(false);
    clearInterval(renew);
    await until(() => me.e.isLeader(), "the takeover once it stops renewing");
  });
});

// ───────────────────────────── the source ─────────────────────────────

function config(over: Record<string, unknown> = {}): WatchConfig {
  return watchSchema.parse({ resolveDelay: "1s", stallTimeout: "30s", leaderElection: { enabled: false }, ...over });
}

function source(over: Record<string, unknown> = {}, sinkImpl?: (issues: readonly Issue[]) => Promise<SinkOutcome>) {
  const got: Issue[] = [];
  const metrics = new Metrics({ defaultMetrics: false });
  const s = new KubernetesSource({
    api,
    config: config(over),
    clusterName: "test",
    log,
    metrics,
    sink:
      sinkImpl ??
      (async (issues) => {
        got.push(...issues);
        return { kind: "accepted" };
      }),
    tickMs: 50,
    watcher: { backoff: FAST, watchTimeoutSeconds: () => 300 },
    resubmitMs: 50,
  });
  cleanups.push(() => s.stop(0));
  return { s, got, metrics, summary: () => got.map((i) => `${i.status} ${i.aggregationKey} ${i.subject.kind}/${i.subject.name}`) };
}

const dep = deployment({ name: "api", namespace: "shop" });
const rs = replicaSet({ name: "api-7d9f8b6c5d", namespace: "shop", owner: dep });
const labels = { app: "api", "pod-template-hash": "7d9f8b6c5d" };
const apiPod = (name: string, over: Partial<Parameters<typeof pod>[0]> = {}): KubeObject => pod({ name, namespace: "shop", owner: rs, node: "n1", labels, ...over });
const crashing = (name: string, uid: string | undefined, restarts = 4): KubeObject => crashLoopingPod({ name, namespace: "shop", owner: rs, node: "n1", labels, restartCount: restarts, ...(uid !== undefined ? { uid } : {}) });

describe("the Kubernetes source", () => {
  it("reports the current state once at start-up, not history; one Issue per workload and reason", async () => {
    kube.add(crashing("api-7d9f8b6c5d-a", undefined));
    kube.add(crashing("api-7d9f8b6c5d-b", undefined));
    kube.add(apiPod("api-7d9f8b6c5d-c"));
    const oldOom = oomKilledPod({ name: "worker", namespace: "shop", node: "n1", backOff: false, finishedAt: new Date(Date.now() - 3_600_000) });
    kube.add(oldOom);
    kube.add(event({ involvedObject: oldOom, reason: "FailedMount", message: "old", lastTimestamp: new Date(Date.now() - 3_600_000) }));
    kube.add(event({ involvedObject: oldOom, reason: "FailedMount", message: "recent", lastTimestamp: new Date(Date.now() - 60_000) }));
    const { s, summary, metrics, got } = source();
    s.start();
    await until(() => s.status().ok, "synced");
    await until(() => got.length >= 2, "Issues");
    await new Promise((r) => setTimeout(r, 300));
    expect(summary().sort()).toEqual(["FIRING CrashLoopBackOff Pod/api-7d9f8b6c5d-a", "FIRING FailedMount Pod/worker"]);
    expect(got.find((i) => i.aggregationKey === "FailedMount")?.description).toContain("recent");
    expect((await metrics.registry.getSingleMetricAsString("kubecano_watch_suppressed_total"))).toContain('reason="CrashLoopBackOff",why="rate_limited"} 1');
    expect(s.status().detail).toMatch(/^watching \(no leader election\); pods: watching, 4 objects; events: watching, 2 objects; jobs: watching, 0 objects; secrets: watching, 0 objects; nodes: watching, 0 objects$/);
  });

  it("resolves a pod incident once every troubled pod ran well for resolveDelay; a new crash then opens a new one", async () => {
    const p = kube.add(apiPod("api-7d9f8b6c5d-a"));
    const uid = p.metadata.uid!;
    const { s, summary } = source();
    s.start();
    await until(() => s.status().ok, "synced");
    await kube.waitForWatches(5);
    kube.update(crashing("api-7d9f8b6c5d-a", uid, 3));
    await until(() => summary().length === 1, "the crash loop");
    // A moment of running (no readiness probe) between crashes is not recovery.
    kube.update({ ...apiPod("api-7d9f8b6c5d-a", { uid, containerStatuses: [{ name: "app", restartCount: 4 }] }) });
    await new Promise((r) => setTimeout(r, 200));
    kube.update(crashing("api-7d9f8b6c5d-a", uid, 5));
    await new Promise((r) => setTimeout(r, 1_300));
    expect(summary()).toEqual(["FIRING CrashLoopBackOff Pod/api-7d9f8b6c5d-a"]);
    kube.update(apiPod("api-7d9f8b6c5d-a", { uid, containerStatuses: [{ name: "app", restartCount: 6 }] }));
    await until(() => summary().length === 2, "the resolution");
    expect(summary()[1]).toBe("RESOLVED CrashLoopBackOff Pod/api-7d9f8b6c5d-a");
    kube.update(crashing("api-7d9f8b6c5d-a", uid, 8));
    await until(() => summary().length === 3, "a new incident");
    expect(summary()[2]).toBe("FIRING CrashLoopBackOff Pod/api-7d9f8b6c5d-a");
  });

  it("a rollout that replaces the crashing pod with a healthy one resolves the incident", async () => {
    const { s, summary } = source();
    kube.add(crashing("api-7d9f8b6c5d-a", undefined));
    s.start();
    await until(() => summary().length === 1, "the crash loop");
    kube.add(apiPod("api-7d9f8b6c5d-b"));
    kube.remove("Pod", "shop", "api-7d9f8b6c5d-a");
    await until(() => summary().length === 2, "the resolution");
    expect(summary()[1]).toBe("RESOLVED CrashLoopBackOff Pod/api-7d9f8b6c5d-a");
  });

  it("filters namespaces and reasons, honours the opt-out annotation and watches plain namespaces one by one", async () => {
    kube.add(crashLoopingPod({ name: "a", namespace: "shop", node: "n1" }));
    kube.add(crashLoopingPod({ name: "b", namespace: "other", node: "n1" }));
    kube.add(crashLoopingPod({ name: "c", namespace: "shop", node: "n1", annotations: { "kubecano.io/ignore": "true" } }));
    kube.add(oomKilledPod({ name: "d", namespace: "shop", node: "n1" }));
    kube.add(node({ name: "w1", ready: false }));
    const { s, summary } = source({ namespaces: ["shop"], reasons: { exclude: ["OOMKilled"] } });
    s.start();
    await until(() => s.status().ok, "synced");
    await new Promise((r) => setTimeout(r, 300));
    expect(summary().sort()).toEqual(["FIRING CrashLoopBackOff Pod/a", "FIRING NodeNotReady Node/w1"]);
    expect(kube.requests.filter((r) => r.verb === "list").map((r) => r.path).sort()).toEqual([
      "/api/v1/namespaces/shop/events",
      "/api/v1/namespaces/shop/pods",
      "/api/v1/namespaces/shop/secrets",
      "/api/v1/nodes",
      "/apis/batch/v1/namespaces/shop/jobs",
    ]);
    kube.modify("Node", undefined, "w1", (o) => void ((o["status"] as { conditions: { type: string; status: string }[] }).conditions.find((c) => c.type === "Ready")!.status = "True"));
    await until(() => summary().length === 3, "the node resolution");
    expect(summary()[2]).toBe("RESOLVED NodeNotReady Node/w1");
  });

  it("keeps Issues the sink cannot take and offers them again in order: none lost", async () => {
    let refusals = 2;
    const got: Issue[] = [];
    const { s } = source({}, async (issues) => {
      if (refusals > 0) {
        refusals -= 1;
        return { kind: "unavailable", message: "backlog full", retryAfterSeconds: 1 };
      }
      got.push(...issues);
      return { kind: "accepted" };
    });
    for (const n of ["a", "b", "c"]) kube.add(crashLoopingPod({ name: n, namespace: "shop", node: "n1" }));
    s.start();
    await until(() => got.length === 3, "all three after the refusals");
    expect(refusals).toBe(0);
    expect(got.map((i) => i.subject.name).sort()).toEqual(["a", "b", "c"]);
  });

  it("Helm: judges each release by its newest revision once the first list is complete", async () => {
    kube.add(helmReleaseSecret({ release: "ok", namespace: "apps", revision: 1, status: "superseded" }));
    kube.add(helmReleaseSecret({ release: "ok", namespace: "apps", revision: 2, status: "failed" }));
    kube.add(helmReleaseSecret({ release: "ok", namespace: "apps", revision: 10, status: "deployed" }));
    kube.add(helmReleaseSecret({ release: "bad", namespace: "apps", revision: 2, status: "superseded" }));
    kube.add(helmReleaseSecret({ release: "bad", namespace: "apps", revision: 10, status: "failed" }));
    const { s, summary, got } = source();
    s.start();
    await until(() => got.length >= 1, "the failed release");
    await new Promise((r) => setTimeout(r, 300));
    expect(summary()).toEqual(["FIRING HelmReleaseFailed HelmRelease/bad"]);
    expect(got[0]).toMatchObject({ source: "helm", type: "event", severity: "HIGH", subject: { namespace: "apps", labels: { revision: "10", status: "failed" } } });
    // A new revision deployed resolves it.
    kube.modify("Secret", "apps", "sh.helm.release.v1.bad.v10", (o) => void (o.metadata.labels!["status"] = "superseded"));
    kube.add(helmReleaseSecret({ release: "bad", namespace: "apps", revision: 11, status: "deployed" }));
    await until(() => got.length === 2, "the resolution");
    expect(summary()[1]).toBe("RESOLVED HelmReleaseFailed HelmRelease/bad");
  });

  it("stops its watchers at once when it loses the lease, and the next leader knows what was sent", async () => {
    const a = cuttable(api);
    const settings = { leaseName: "kubecano", namespace: "default", leaseDurationMs: 1_500, renewDeadlineMs: 1_000, retryPeriodMs: 200 };
    const mk = (id: string, which: KubeApiLike) => {
      const got: Issue[] = [];
      const leader = new LeaderElector(which, { ...settings, identity: id }, log);
      const s = new KubernetesSource({ api, config: config(), clusterName: "t", log, leader, sink: async (i) => (got.push(...i), { kind: "accepted" }), tickMs: 50, watcher: { backoff: FAST } });
      cleanups.push(() => s.stop(0));
      return { s, got, leader };
    };
    kube.add(crashLoopingPod({ name: "a", namespace: "shop", node: "n1" }));
    const one = mk("one", a);
    one.s.start();
    await until(() => one.got.length === 1, "one's Issue");
    const two = mk("two", api);
    two.s.start();
    await new Promise((r) => setTimeout(r, 500));
    expect(two.s.status()).toMatchObject({ ok: true, leading: false });
    expect(two.s.status().detail).toMatch(/^standby: lease default\/kubecano is held by one/);
    a.cut();
    await until(() => two.leader.isLeader() && two.s.status().ok, "two leading and synced", 10_000);
    await until(() => !one.leader.isLeader(), "one giving up");
    expect(one.s.status().watchers).toEqual([]);
    kube.add(crashLoopingPod({ name: "b", namespace: "other", node: "n1" }));
    await until(() => two.got.length === 1, "two's Issue");
    await new Promise((r) => setTimeout(r, 300));
    // The crash loop of a was sent by one: two does not send it again.
    expect([...one.got, ...two.got].map((i) => i.subject.name)).toEqual(["a", "b"]);
  });

  it("a new leader resolves what the old one reported, also when the pods recovered while no one watched", async () => {
    const a = cuttable(api);
    const settings = { leaseName: "kubecano", namespace: "default", leaseDurationMs: 1_500, renewDeadlineMs: 1_000, retryPeriodMs: 200 };
    const mk = (id: string, which: KubeApiLike) => {
      const got: Issue[] = [];
      const leader = new LeaderElector(which, { ...settings, identity: id }, log);
      const s = new KubernetesSource({ api, config: config(), clusterName: "t", log, leader, sink: async (i) => (got.push(...i), { kind: "accepted" }), tickMs: 50, watcher: { backoff: FAST } });
      cleanups.push(() => s.stop(0));
      return { s, got, leader };
    };
    const p = kube.add(crashing("api-7d9f8b6c5d-a", undefined));
    const one = mk("one", a);
    one.s.start();
    await until(() => one.got.length === 1, "one's Issue");
    a.cut();
    await until(() => !one.leader.isLeader(), "one giving up");
    // Recovered while nobody watched.
    kube.update(apiPod("api-7d9f8b6c5d-a", { uid: p.metadata.uid, containerStatuses: [{ name: "app", restartCount: 5 }] }));
    const two = mk("two", api);
    two.s.start();
    await until(() => two.got.length === 1, "two's resolution", 10_000);
    expect(two.got[0]).toMatchObject({ status: "RESOLVED", aggregationKey: "CrashLoopBackOff", fingerprint: one.got[0]!.fingerprint, subject: { kind: "Pod", name: "api-7d9f8b6c5d-a" }, title: "Deployment shop/api recovered from CrashLoopBackOff" });
    expect(Date.parse(two.got[0]!.startsAt)).toBeLessThanOrEqual(Date.parse(one.got[0]!.receivedAt));
  });
});
