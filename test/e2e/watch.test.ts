/**
 * End-to-end tests of `kubecano watch` and `kubecano listen --watch` through
 * the built CLI against the Kubernetes API fake (and the Slack fake for
 * --send). Each test has its own fakes, cwd and state directory.
 */
import { afterAll, afterEach, describe, expect, it, vi } from "vitest";
import type { Issue } from "../../src/core/issue.js";
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
  startKubeFake,
  type KubeFake,
  type KubeObject,
  type KubeFakeOptions,
} from "../fakes/kube.js";
import { FAKE_TOKEN, startSlackFake, type SlackFake } from "../fakes/slack.js";
import { removeTempDir, request, runCli, startListen, stopAllChildren, tempDirWith, type Listener } from "../helpers/cli.js";
import { oomLog } from "../helpers/cluster-scenarios.js";
import { killAll, spawnKubecano, type Proc } from "./watch-harness.js";

vi.setConfig({ testTimeout: 120_000, hookTimeout: 60_000 });

const closers: { close(): Promise<void> }[] = [];
const procs: Proc[] = [];
const listeners: Listener[] = [];
const dirs: string[] = [];

afterEach(async () => {
  await Promise.all(procs.splice(0).map((p) => p.stop("SIGKILL")));
  await Promise.all(listeners.splice(0).map((l) => l.stop("SIGKILL")));
  await Promise.all(closers.splice(0).map((c) => c.close()));
});
afterAll(async () => {
  await killAll();
  await stopAllChildren();
  await Promise.all(dirs.splice(0).map(removeTempDir));
});

async function cluster(opts: KubeFakeOptions = {}): Promise<KubeFake> {
  const k = await startKubeFake({ bookmarkIntervalMs: 500, ...opts });
  closers.push(k);
  return k;
}
async function slackFake(): Promise<SlackFake> {
  const s = await startSlackFake();
  closers.push(s);
  return s;
}
async function cwdWith(files: Record<string, string>): Promise<string> {
  const d = await tempDirWith(files);
  dirs.push(d);
  return d;
}

const FAST_WATCH = ["watch:", "  imagePullDelay: 1s", "  schedulingDelay: 1s", "  helmPendingDelay: 1s", "  resolveDelay: 1s", "  stallTimeout: 3s"];
const slackDestination = (slack: SlackFake): string[] => ["destinations:", "  - name: slack-main", "    type: slack", "    params:", `      token: ${FAKE_TOKEN}`, `      channel: ${slack.channelId}`, `      api_url: ${slack.url}`];

/** Starts `kubecano watch` and resolves once every watcher has its watch open. */
async function watch(kube: KubeFake, args: readonly string[], opts: { cwd?: string; watches?: number } = {}): Promise<Proc> {
  const p = spawnKubecano(["watch", "--kubeconfig", kube.kubeconfigPath(), "--log-format", "json", ...args], { cwd: opts.cwd ?? (await cwdWith({ "kubecano.config.yaml": FAST_WATCH.join("\n") })) });
  procs.push(p);
  await p.waitForLog((l) => /^kubecano .* watching /.test(String(l.msg)), "the watching line");
  await kube.waitForWatches(opts.watches ?? 5, undefined, 30_000);
  return p;
}

const issues = (p: Proc): Issue[] => p.lines<Issue>().filter((l) => typeof l.fingerprint === "string");
const summary = (p: Proc): string[] => issues(p).map((i) => `${i.status} ${i.aggregationKey} ${i.subject.kind}/${i.subject.name}`);

/** The watchers' own lists of a resource (they page; enrichment's reads do not). */
const watcherLists = (kube: KubeFake, resource: string): number => kube.count((q) => q.verb === "list" && q.resource === resource && q.query["limit"] !== undefined);

/** A marker Issue from an unrelated namespace: once it is out, everything changed before it has been classified. */
async function marker(kube: KubeFake, p: Proc, name: string): Promise<void> {
  kube.add(crashLoopingPod({ name, namespace: "zz-marker", node: "n9" }));
  await p.waitFor(() => issues(p).some((i) => i.subject.name === name), `the marker ${name}`);
  // Deliveries run concurrently: give any Issue found before the marker time to print too.
  await new Promise((r) => setTimeout(r, 1_500));
}
const withoutMarkers = (xs: string[]): string[] => xs.filter((x) => !x.includes("marker"));

// ───────────────────────────── the crash loop after an OOM kill ─────────────────────────────

const dep = deployment({ name: "api", namespace: "shop" });
const rs = replicaSet({ name: "api-7d9f8b6c5d", namespace: "shop", owner: dep });
const labels = { app: "api", "pod-template-hash": "7d9f8b6c5d" };
const containers = [{ name: "api", image: "registry.example.com/shop/api:2.14.1", resources: { requests: { memory: "128Mi" }, limits: { memory: "256Mi" } } }];
const POD = "api-7d9f8b6c5d-x7k2p";

/** A healthy api pod; returns its uid. */
function healthyApi(kube: KubeFake): string {
  kube.add(dep);
  kube.add(rs);
  return kube.add(pod({ name: POD, namespace: "shop", owner: rs, node: "node-1", labels, containers })).metadata.uid!;
}

/** The pod is OOM killed, runs again, is OOM killed again and crash loops; the kubelet's events come along. */
async function oomThenCrashLoop(kube: KubeFake, uid: string): Promise<void> {
  kube.setLog({ namespace: "shop", pod: POD, container: "api", previous: true }, oomLog(60));
  const base = { name: POD, namespace: "shop", owner: rs, node: "node-1", labels, containers, uid, container: "api" };
  const running = kube.update(oomKilledPod({ ...base, restartCount: 1, backOff: false }));
  kube.add(event({ involvedObject: running, reason: "Killing", message: "Container api exceeded its memory limit, will be restarted", fieldPath: "spec.containers{api}" }));
  await new Promise((r) => setTimeout(r, 300));
  const looping = kube.update(oomKilledPod({ ...base, restartCount: 2 }));
  kube.add(event({ involvedObject: looping, reason: "BackOff", message: `Back-off restarting failed container api in pod ${POD}_shop(${uid})`, count: 2, fieldPath: "spec.containers{api}" }));
  await new Promise((r) => setTimeout(r, 300));
  kube.update(oomKilledPod({ ...base, restartCount: 3 }));
}

describe("kubecano watch: the crash loop after an OOM kill", () => {
  it("is one Issue in the terminal, with the pod's status and its previous logs", async () => {
    const kube = await cluster();
    const uid = healthyApi(kube);
    const w = await watch(kube, []);
    await oomThenCrashLoop(kube, uid);
    await w.waitFor(() => /java\.lang\.OutOfMemoryError/.test(w.stdout()), "the enriched Issue");
    // One more crash, later: still the same incident.
    kube.update(oomKilledPod({ name: POD, namespace: "shop", owner: rs, node: "node-1", labels, containers, uid, container: "api", restartCount: 4 }));
    kube.add(crashLoopingPod({ name: "marker", namespace: "zz-marker", node: "n9" }));
    await w.waitFor(() => /zz-marker\/pod\/marker/.test(w.stdout()), "the marker");
    await new Promise((r) => setTimeout(r, 1_500));
    const out = w.stdout();
    const shop = out.split(/(?=^● FIRING|^✔ RESOLVED)/m).filter((b) => b.includes(`shop/pod/${POD}`));
    expect(shop).toHaveLength(1);
    const text = shop[0]!;
    // Reported at the first OOM kill; the crash loop that followed is the same incident.
    expect(text).toMatch(new RegExp(`^● FIRING  HIGH  Container api of pod shop/${POD} was OOMKilled`, "m"));
    expect(text).toMatch(/OOMKilled · cluster default · shop\/pod\/api-7d9f8b6c5d-x7k2p · container api · node node-1/);
    expect(text).toContain("── Pod shop/api-7d9f8b6c5d-x7k2p");
    expect(text).toMatch(/api +(Running|CrashLoopBackOff) +[1-4] +⚠ OOMKilled, exit 137 \(SIGKILL\)/);
    expect(text).toContain("memory limit 256Mi");
    expect(text).toContain("── Logs of api (previous container");
    expect(text).toContain("java.lang.OutOfMemoryError: Java heap space");
    expect(text).toMatch(/Killing .*Container api exceeded its memory limit/);
    expect(w.stderr()).not.toMatch(/"level":"(error|fatal)"/);
  });

  it("with --send is one Slack message with the status and the logs", async () => {
    const kube = await cluster();
    const slack = await slackFake();
    const uid = healthyApi(kube);
    const cwd = await cwdWith({ "kubecano.config.yaml": [...FAST_WATCH, ...slackDestination(slack)].join("\n") });
    const w = await watch(kube, ["--send", "--no-leader-election"], { cwd });
    await oomThenCrashLoop(kube, uid);
    await slack.waitFor(() => slack.messages.length >= 1, 30_000);
    kube.add(crashLoopingPod({ name: "marker", namespace: "zz-marker", node: "n9" }));
    await slack.waitFor(() => JSON.stringify(slack.messages).includes("marker"), 30_000);
    await new Promise((r) => setTimeout(r, 1_500));
    const posts = slack.callsTo("chat.postMessage").filter((c) => c.outcome === "ok" && JSON.stringify(c.params).includes(POD));
    expect(posts).toHaveLength(1);
    const meta = posts[0]!.params["metadata"] as { event_payload: Record<string, unknown> };
    expect(meta.event_payload).toMatchObject({ status: "FIRING", aggregation_key: "OOMKilled", severity: "HIGH" });
    const everything = JSON.stringify(slack.messages) + slack.files.map((f) => f.bytes?.toString("utf8") ?? "").join("\n");
    expect(everything).toContain("java.lang.OutOfMemoryError: Java heap space");
    expect(everything).toContain("memory limit 256Mi");
    expect(w.stderr()).not.toMatch(/"level":"(error|fatal)"/);
  });
});

// ───────────────────────────── every classifier ─────────────────────────────

describe("kubecano watch: what it reports", () => {
  it("a failed Helm release is one Issue with the release's details", async () => {
    const kube = await cluster();
    kube.add(helmReleaseSecret({ release: "shop", namespace: "shop", revision: 1, status: "deployed", chart: "shop", chartVersion: "1.0.0" }));
    const w = await watch(kube, ["-o", "json"]);
    const v2 = kube.add(helmReleaseSecret({ release: "shop", namespace: "shop", revision: 2, status: "pending-upgrade", chart: "shop", chartVersion: "1.1.0" }));
    await new Promise((r) => setTimeout(r, 200));
    kube.update(helmReleaseSecret({ release: "shop", namespace: "shop", revision: 2, status: "failed", chart: "shop", chartVersion: "1.1.0", description: 'Upgrade "shop" failed: context deadline exceeded' }));
    kube.modify("Secret", "shop", "sh.helm.release.v1.shop.v1", (o) => void (o.metadata.labels!["status"] = "superseded"));
    void v2;
    await marker(kube, w, "marker-helm");
    expect(withoutMarkers(summary(w))).toEqual(["FIRING HelmReleaseFailed HelmRelease/shop"]);
    const i = issues(w).find((x) => x.aggregationKey === "HelmReleaseFailed")!;
    expect(i).toMatchObject({ source: "helm", severity: "HIGH", title: "Helm release shop/shop failed (revision 2)", subject: { namespace: "shop", labels: { chart: "shop", chart_version: "1.1.0", revision: "2", status: "failed" } } });
    expect(i.description).toContain('Upgrade "shop" failed: context deadline exceeded');
    const md = i.enrichments.find((e) => e.title === "Helm release")?.blocks[0];
    expect(md).toEqual({ type: "markdown", text: expect.stringContaining("*Release* shop/shop · *revision* 2 · *status* failed\n*Chart* shop 1.1.0") });
  });

  it("reports each kind of trouble once, with its context, and resolves what recovers", async () => {
    const kube = await cluster();
    kube.add(node({ name: "w1" }));
    const runningJob = kube.add(job({ name: "report", namespace: "batch" }));
    const toEvict = kube.add(pod({ name: "ev", namespace: "e", node: "w1" }));
    const cwd = await cwdWith({ "kubecano.config.yaml": [...FAST_WATCH, "  unhealthy: true"].join("\n") });
    const w = await watch(kube, ["-o", "json"], { cwd });

    const loopDep = kube.add(deployment({ name: "loop", namespace: "a" }));
    const loopRs = kube.add(replicaSet({ name: "loop-5d8f9c7b6", namespace: "a", owner: loopDep }));
    kube.add(crashLoopingPod({ name: "loop-5d8f9c7b6-aaaaa", namespace: "a", owner: loopRs, labels: { "pod-template-hash": "5d8f9c7b6" }, restartCount: 5 }));
    kube.add(oomKilledPod({ name: "oom", namespace: "b", backOff: false, restartCount: 1 }));
    kube.add(imagePullBackOffPod({ name: "pull", namespace: "c", containers: [{ name: "app", image: "registry.example.com/nope:1" }] }));
    kube.add(pod({ name: "cfg", namespace: "d", node: "w1", containerStatuses: [{ name: "app", ready: false, state: { waiting: { reason: "CreateContainerConfigError", message: 'secret "db-password" not found' } } }] }));
    kube.update(evictedPod({ name: "ev", namespace: "e", node: "w1", uid: toEvict.metadata.uid }));
    kube.add(pod({ name: "pending", namespace: "f" }));
    const mountPod = kube.add(pod({ name: "mount", namespace: "g", node: "w1" }));
    kube.add(event({ involvedObject: mountPod, reason: "FailedMount", message: 'MountVolume.SetUp failed for volume "data" : secret "data" not found' }));
    kube.add(event({ involvedObject: mountPod, reason: "Unhealthy", message: "Readiness probe failed: HTTP probe failed with statuscode: 503", fieldPath: "spec.containers{app}" }));
    const webRs = kube.add(replicaSet({ name: "web-6b7c8d9f5", namespace: "h" }));
    kube.add(event({ involvedObject: webRs, reason: "FailedCreate", message: 'pods "web-6b7c8d9f5-x" is forbidden: exceeded quota: compute, requested: cpu=2, used: cpu=8, limited: cpu=8' }));
    kube.update(job({ name: "report", namespace: "batch", uid: runningJob.metadata.uid, outcome: "failed", backoffLimit: 2 }));
    kube.update(node({ name: "w1", ready: false }));
    kube.add(helmReleaseSecret({ release: "stuck", namespace: "i", revision: 1, status: "pending-install" }));

    const want = [
      "FIRING CrashLoopBackOff Pod/loop-5d8f9c7b6-aaaaa",
      "FIRING OOMKilled Pod/oom",
      "FIRING ImagePullBackOff Pod/pull",
      "FIRING CreateContainerConfigError Pod/cfg",
      "FIRING Evicted Pod/ev",
      "FIRING FailedScheduling Pod/pending",
      "FIRING FailedMount Pod/mount",
      "FIRING Unhealthy Pod/mount",
      "FIRING QuotaExceeded ReplicaSet/web-6b7c8d9f5",
      "FIRING JobFailed Job/report",
      "FIRING NodeNotReady Node/w1",
      "FIRING HelmReleasePending HelmRelease/stuck",
    ];
    await w.waitFor(() => want.every((x) => summary(w).includes(x)), "every kind of trouble", 60_000);
    kube.update(node({ name: "w1" }));
    await w.waitFor(() => summary(w).includes("RESOLVED NodeNotReady Node/w1"), "the node's recovery");
    await marker(kube, w, "marker-all");
    // The OOM-killed pod ran well for resolveDelay after its restart: that incident is over too.
    expect(withoutMarkers(summary(w)).sort()).toEqual([...want, "RESOLVED NodeNotReady Node/w1", "RESOLVED OOMKilled Pod/oom"].sort());

    const by = (reason: string): Issue => issues(w).find((i) => i.aggregationKey === reason && i.status === "FIRING")!;
    expect(by("CrashLoopBackOff").subject.annotations["kubecano.io/workload"]).toBe("Deployment/loop");
    expect(by("CreateContainerConfigError").description).toBe('secret "db-password" not found');
    expect(by("JobFailed").enrichments.map((e) => e.title)).toContain("Job batch/report");
    expect(by("NodeNotReady").enrichments.map((e) => e.title)).toContain("Node w1");
    expect(by("ImagePullBackOff").enrichments.map((e) => e.source)).toEqual(expect.arrayContaining(["pod_status"]));
    expect(by("QuotaExceeded").subject.annotations["kubecano.io/workload"]).toBe("Deployment/web");
    expect(by("NodeNotReady").severity).toBe("HIGH");
    expect(by("Evicted").severity).toBe("LOW");
    const resolved = issues(w).find((i) => i.status === "RESOLVED" && i.aggregationKey === "NodeNotReady")!;
    expect(resolved.fingerprint).toBe(by("NodeNotReady").fingerprint);
    expect(resolved.endsAt).toBeDefined();
  });

  it("noise control: one Issue per workload, the current state once at start, not history; namespaces, reasons and the opt-out", async () => {
    const kube = await cluster();
    const d = kube.add(deployment({ name: "web", namespace: "shop" }));
    const r = kube.add(replicaSet({ name: "web-6b7c8d9f5", namespace: "shop", owner: d }));
    const webPod = (n: string): KubeObject => crashLoopingPod({ name: `web-6b7c8d9f5-${n}`, namespace: "shop", owner: r, labels: { "pod-template-hash": "6b7c8d9f5" }, restartCount: 3 });
    kube.add(webPod("aaaaa"));
    kube.add(oomKilledPod({ name: "history", namespace: "shop", backOff: false, finishedAt: new Date(Date.now() - 3_600_000) }));
    const old = kube.add(pod({ name: "old-mount", namespace: "shop", node: "n1" }));
    kube.add(event({ involvedObject: old, reason: "FailedMount", message: "an hour ago", lastTimestamp: new Date(Date.now() - 3_600_000), firstTimestamp: new Date(Date.now() - 3_700_000) }));
    const cwd = await cwdWith({ "kubecano.config.yaml": [...FAST_WATCH, "  excludeNamespaces: [kube-system]", "  reasons: { exclude: [QuotaExceeded] }"].join("\n") });
    const w = await watch(kube, ["-o", "json", "-n", "shop", "-n", "zz-*", "-n", "kube-system"], { cwd });
    // More crashing replicas of the same Deployment, a bare pod that opted out, other namespaces, an excluded reason.
    kube.add(webPod("bbbbb"));
    kube.add(webPod("ccccc"));
    kube.add(crashLoopingPod({ name: "quiet", namespace: "shop", annotations: { "kubecano.io/ignore": "true" } }));
    kube.add(crashLoopingPod({ name: "elsewhere", namespace: "other" }));
    kube.add(crashLoopingPod({ name: "system", namespace: "kube-system" }));
    kube.add(event({ involvedObject: r, reason: "FailedCreate", message: "exceeded quota: compute" }));
    await marker(kube, w, "marker-noise");
    expect(withoutMarkers(summary(w))).toEqual(["FIRING CrashLoopBackOff Pod/web-6b7c8d9f5-aaaaa"]);
    // A glob among the namespaces: everything is watched cluster-wide and filtered here.
    expect(kube.requests.filter((q) => q.verb === "list" && q.resource === "pods").map((q) => q.path)).toEqual(["/api/v1/pods"]);
  });
});

// ───────────────────────────── watches that break ─────────────────────────────

describe("kubecano watch: watches that break", () => {
  it("a dropped watch misses nothing, and a 410 on reconnecting or mid-stream repeats nothing", async () => {
    const kube = await cluster();
    kube.add(crashLoopingPod({ name: "before", namespace: "shop" }));
    const w = await watch(kube, ["-o", "json"]);
    await w.waitFor(() => summary(w).length === 1, "the state at start");

    // 1. Dropped: the reconnects are held while the cluster changes, then resume from their resourceVersion.
    let held = kube.hang({ verb: "watch" });
    expect(kube.dropWatches()).toBe(5);
    await w.waitFor(() => held.waiting === 5, "five reconnects");
    kube.add(crashLoopingPod({ name: "during-drop", namespace: "shop" }));
    kube.add(node({ name: "w9", ready: false }));
    held.release();
    await w.waitFor(() => summary(w).length === 3, "the changes made while disconnected");
    expect(watcherLists(kube, "pods")).toBe(1);

    // 2. Dropped and the history compacted meanwhile: 410, a new list, only the difference.
    held = kube.hang({ verb: "watch" });
    kube.dropWatches();
    await w.waitFor(() => held.waiting === 5, "five reconnects");
    kube.add(crashLoopingPod({ name: "during-410", namespace: "other" }));
    kube.remove("Pod", "shop", "before");
    kube.compact();
    held.release();
    await w.waitFor(() => summary(w).length === 4, "the change made before the 410");
    expect(watcherLists(kube, "pods")).toBe(2);
    await w.waitForLog((l) => /watch expired \(410/.test(String(l.msg)), "the 410 line");

    // 3. A 410 in the middle of open streams (a watch cache that fell behind): listed again, nothing twice.
    expect(kube.expireWatches()).toBe(5);
    kube.add(crashLoopingPod({ name: "after-expiry", namespace: "third" }));
    await w.waitFor(() => summary(w).length === 5, "the change after the expiry");
    expect(watcherLists(kube, "pods")).toBe(3);

    // 4. And the watches carry on.
    await marker(kube, w, "marker-drop");
    const fps = issues(w).map((i) => `${i.fingerprint} ${i.status}`);
    expect(new Set(fps).size).toBe(fps.length);
    expect(withoutMarkers(summary(w)).sort()).toEqual(
      ["FIRING CrashLoopBackOff Pod/before", "FIRING CrashLoopBackOff Pod/during-drop", "FIRING NodeNotReady Node/w9", "FIRING CrashLoopBackOff Pod/during-410", "FIRING CrashLoopBackOff Pod/after-expiry"].sort(),
    );
  });

  it("a watch that goes silent is restarted from where it was", async () => {
    const kube = await cluster();
    const w = await watch(kube, ["-o", "json"]);
    const before = kube.count({ verb: "watch", resource: "pods" });
    expect(kube.stallWatches()).toBe(5);
    kube.add(crashLoopingPod({ name: "while-stalled", namespace: "shop" }));
    await w.waitFor(() => summary(w).includes("FIRING CrashLoopBackOff Pod/while-stalled"), "the Issue after the restart");
    expect(kube.count({ verb: "watch", resource: "pods" })).toBeGreaterThan(before);
    expect(watcherLists(kube, "pods")).toBe(1);
    await w.waitForLog((l) => /the pods watch was silent for 3 s: restarting it/.test(String(l.msg)), "the stall line");
  });
});

// ───────────────────────────── the command ─────────────────────────────

describe("kubecano watch: the command", () => {
  it("refuses to run without a cluster, and bad flag combinations, with one line and exit 2", async () => {
    const cwd = await cwdWith({});
    const none = await runCli(["watch"], { cwd, env: { KUBECONFIG: undefined, HOME: cwd, KUBERNETES_SERVICE_HOST: undefined } });
    expect(none.code).toBe(2);
    expect(none.stderr).toBe("kubecano: no Kubernetes cluster to watch: no --kubeconfig, KUBECONFIG, ~/.kube/config or in-cluster service account\n  hint: pass --kubeconfig FILE (and --context NAME), or run kubecano inside the cluster\n");
    const kube = await cluster();
    const both = await runCli(["watch", "--send", "--dry-run", "--kubeconfig", kube.kubeconfigPath()], { cwd });
    expect(both.code).toBe(2);
    expect(both.stderr).toMatch(/^kubecano: --send and --dry-run exclude each other\n/);
    const ctx = await runCli(["watch", "--kubeconfig", kube.kubeconfigPath(), "--context", "nope"], { cwd });
    expect(ctx.code).toBe(2);
    expect(ctx.stderr).toMatch(/^kubecano: no context "nope" in .*\n {2}hint: known contexts: fake\n$/);
    const listen = await runCli(["listen", "--watch", "--no-cluster", "--port", "0"], { cwd });
    expect(listen.code).toBe(2);
    expect(listen.stderr).toMatch(/^kubecano: --watch and --no-cluster exclude each other\n/);
    const help = await runCli(["watch", "--help"], { cwd });
    expect(help.stdout).toContain("kubecano watch --send -c kubecano.config.yaml");
    expect(kube.requests).toHaveLength(0);
  });

  it("--dry-run shows what Slack would get and sends nothing", async () => {
    const kube = await cluster();
    const slack = await slackFake();
    const cwd = await cwdWith({ "kubecano.config.yaml": [...FAST_WATCH, ...slackDestination(slack)].join("\n") });
    kube.add(crashLoopingPod({ name: "now", namespace: "shop" }));
    const w = await watch(kube, ["--dry-run", "-o", "json"], { cwd });
    const line = await w.waitFor(() => w.lines<{ issue: Issue; destinations: { name: string; type: string; payload: { message?: { text?: string } } }[] }>()[0], "the preview");
    expect(line.issue.aggregationKey).toBe("CrashLoopBackOff");
    expect(line.destinations.map((d) => [d.name, d.type])).toEqual([["slack-main", "slack"]]);
    expect(JSON.stringify(line.destinations[0]!.payload)).toContain("Pod shop/now is crash looping");
    await new Promise((r) => setTimeout(r, 500));
    expect(slack.calls).toHaveLength(0);
    expect(kube.count({ resource: "leases" })).toBe(0);
  });

  it("stops on SIGTERM with exit 0, releasing nothing it did not hold", async () => {
    const kube = await cluster();
    const w = await watch(kube, []);
    expect(await w.stop("SIGTERM")).toBe(0);
    expect(w.stderr()).toMatch(/stopping: no longer watching/);
  });
});

describe("kubecano listen --watch", () => {
  it("serves webhooks and watches the cluster in one process; /readyz and /metrics say how the watchers are", async () => {
    const kube = await cluster();
    kube.add(crashLoopingPod({ name: "at-start", namespace: "shop" }));
    const cwd = await cwdWith({ "kubecano.config.yaml": [...FAST_WATCH, "  leaderElection: { leaseDuration: 3s, renewDeadline: 2s, retryPeriod: 500ms }"].join("\n") });
    const l = await startListen(["--ephemeral", "--watch", "--kubeconfig", kube.kubeconfigPath()], { cwd });
    listeners.push(l);
    const ready = await (async () => {
      for (let i = 0; i < 100; i++) {
        const r = await request(`${l.url}/readyz`);
        const body = r.json<{ checks: Record<string, { ok: boolean; detail?: string }> }>();
        // A replica is ready while it stands by too; this one takes the free lease and lists.
        if (r.status === 200 && /^leading/.test(body.checks["watch"]?.detail ?? "")) return body;
        await new Promise((res) => setTimeout(res, 200));
      }
      throw new Error("never ready");
    })();
    expect(ready.checks["watch"]?.ok).toBe(true);
    expect(ready.checks["watch"]?.detail).toMatch(/^leading \(lease default\/kubecano, .+\); pods: watching, 1 objects; events: watching, 0 objects; jobs: watching, 0 objects; secrets: watching, 0 objects; nodes: watching, 0 objects$/);
    await l.waitForStdout(/Pod shop\/at-start is crash looping/);
    kube.add(node({ name: "w1", ready: false }));
    await l.waitForStdout(/Node w1 is not ready/);
    const metrics = (await request(`${l.url}/metrics`)).text;
    expect(metrics).toMatch(/^kubecano_watch_events_total\{resource="pods"\} [1-9]/m);
    expect(metrics).toMatch(/^kubecano_watch_issues_total\{reason="NodeNotReady"\} 1$/m);
    expect(metrics).toMatch(/^kubecano_leader 1$/m);
    expect(kube.get("Lease", "default", "kubecano")?.["spec"]).toMatchObject({ holderIdentity: expect.any(String) });
    // The webhook still works.
    const hook = await request(`${l.url}/api/alerts`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ version: "4", status: "firing", receiver: "r", groupKey: "g", groupLabels: {}, commonLabels: {}, commonAnnotations: {}, externalURL: "", alerts: [{ status: "firing", labels: { alertname: "Test" }, annotations: {}, startsAt: new Date().toISOString(), endsAt: "0001-01-01T00:00:00Z", generatorURL: "" }] }) });
    expect(hook.status).toBe(202);
    expect(await l.stop("SIGTERM")).toBe(0);
    expect(kube.get("Lease", "default", "kubecano")?.["spec"]).toMatchObject({ holderIdentity: "" });
  });
});
