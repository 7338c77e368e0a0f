/**
 * Several `kubecano watch --send` replicas against one Kubernetes API fake
 * and one Slack fake: leader election on the fake's Lease means exactly one
 * watches and sends; when the leader is killed (SIGKILL, no release) another
 * takes over once the lease runs out, and what the old leader sent (the
 * ledger it kept in the Lease) is not sent again, nor is anything lost.
 */
import { afterAll, afterEach, describe, expect, it, vi } from "vitest";
import { crashLoopingPod, deployment, node, replicaSet, startKubeFake, type KubeFake } from "../fakes/kube.js";
import { FAKE_TOKEN, startSlackFake, type SlackFake } from "../fakes/slack.js";
import { removeTempDir, tempDirWith } from "../helpers/cli.js";
import { killAll, spawnKubecano, type Proc } from "./watch-harness.js";

vi.setConfig({ testTimeout: 180_000, hookTimeout: 60_000 });

const closers: { close(): Promise<void> }[] = [];
const procs: Proc[] = [];
const dirs: string[] = [];
afterEach(async () => {
  await Promise.all(procs.splice(0).map((p) => p.stop("SIGKILL")));
  await Promise.all(closers.splice(0).map((c) => c.close()));
});
afterAll(async () => {
  await killAll();
  await Promise.all(dirs.splice(0).map(removeTempDir));
});

const LEASE_SECONDS = 3;

async function setup(): Promise<{ kube: KubeFake; slack: SlackFake; cwd: string }> {
  const kube = await startKubeFake({ bookmarkIntervalMs: 500 });
  const slack = await startSlackFake();
  closers.push(kube, slack);
  const cwd = await tempDirWith({
    "kubecano.config.yaml": [
      "watch:",
      "  resolveDelay: 1s",
      "  stallTimeout: 3s",
      `  leaderElection: { leaseDuration: ${LEASE_SECONDS}s, renewDeadline: 2s, retryPeriod: 500ms }`,
      "destinations:",
      "  - name: slack-main",
      "    type: slack",
      "    params:",
      `      token: ${FAKE_TOKEN}`,
      `      channel: ${slack.channelId}`,
      `      api_url: ${slack.url}`,
    ].join("\n"),
  });
  dirs.push(cwd);
  return { kube, slack, cwd };
}

function replica(kube: KubeFake, cwd: string): Proc {
  const p = spawnKubecano(["watch", "--send", "--kubeconfig", kube.kubeconfigPath(), "--log-format", "json"], { cwd });
  procs.push(p);
  return p;
}

const identityOf = (p: Proc): string | undefined => p.logs().find((l) => /^leader election on lease/.test(String(l.msg)))?.["identity"] as string | undefined;
const holder = (kube: KubeFake): string | undefined => (kube.get("Lease", "default", "kubecano")?.["spec"] as { holderIdentity?: string } | undefined)?.holderIdentity;

/** Slack messages posted per (fingerprint, status) — root messages and thread replies alike. */
function sends(slack: SlackFake): Map<string, number> {
  const n = new Map<string, number>();
  for (const c of slack.callsTo("chat.postMessage")) {
    if (c.outcome !== "ok") continue;
    const p = (c.params["metadata"] as { event_payload?: Record<string, unknown> } | undefined)?.event_payload;
    if (p === undefined) continue;
    const k = `${String(p["aggregation_key"])} ${String(p["status"])} ${String(p["fingerprint"])}`;
    n.set(k, (n.get(k) ?? 0) + 1);
  }
  return n;
}
const posted = (slack: SlackFake, text: string): boolean => slack.callsTo("chat.postMessage").some((c) => c.outcome === "ok" && JSON.stringify(c.params).includes(text));

function crashing(kube: KubeFake, ns: string, restarts = 3): void {
  const d = kube.apply(deployment({ name: "app", namespace: ns }));
  const r = kube.apply(replicaSet({ name: "app-6b7c8d9f5", namespace: ns, owner: d }));
  const name = "app-6b7c8d9f5-aaaaa";
  const existing = kube.get("Pod", ns, name);
  kube.apply(crashLoopingPod({ name, namespace: ns, owner: r, labels: { "pod-template-hash": "6b7c8d9f5" }, restartCount: restarts, ...(existing !== undefined ? { uid: existing.metadata.uid } : {}) }));
}

describe("kubecano watch --send with two replicas", () => {
  it("exactly one replica watches and sends: every Issue reaches Slack once", async () => {
    const { kube, slack, cwd } = await setup();
    const a = replica(kube, cwd);
    const b = replica(kube, cwd);
    await Promise.all([a, b].map((p) => p.waitFor(() => identityOf(p), "the identity line")));
    const leaderId = await a.waitFor(() => holder(kube) || undefined, "a leader");
    const [leader, standby] = identityOf(a) === leaderId ? [a, b] : [b, a];
    await leader.waitForLog((l) => /^leading: this replica/.test(String(l.msg)), "the leader's line");
    await kube.waitForWatches(5, undefined, 30_000);

    for (const ns of ["one", "two", "three"]) crashing(kube, ns);
    kube.add(node({ name: "w1", ready: false }));
    await slack.waitFor(() => ["one", "two", "three"].every((ns) => posted(slack, `Pod ${ns}/app-6b7c8d9f5-aaaaa is crash looping`)) && posted(slack, "Node w1 is not ready"), 60_000);
    // More restarts of the same pods, and the node's recovery.
    for (const ns of ["one", "two", "three"]) crashing(kube, ns, 6);
    kube.update(node({ name: "w1" }));
    await slack.waitFor(() => [...sends(slack).keys()].some((k) => k.startsWith("NodeNotReady RESOLVED")), 60_000);
    crashing(kube, "marker");
    await slack.waitFor(() => posted(slack, "Pod marker/app-6b7c8d9f5-aaaaa is crash looping"), 60_000);
    await new Promise((r) => setTimeout(r, 2_000));

    const counts = sends(slack);
    expect([...counts.values()].every((n) => n === 1)).toBe(true);
    expect([...counts.keys()].map((k) => k.split(" ").slice(0, 2).join(" ")).sort()).toEqual(
      ["CrashLoopBackOff FIRING", "CrashLoopBackOff FIRING", "CrashLoopBackOff FIRING", "CrashLoopBackOff FIRING", "NodeNotReady FIRING", "NodeNotReady RESOLVED"].sort(),
    );
    // The standby never watched.
    expect(standby.logs().some((l) => /^watching the cluster/.test(String(l.msg)))).toBe(false);
    expect(kube.watches.length).toBe(5);
  });

  it("when the leader is killed, the other takes over the lease: nothing it sent is sent again, nothing is lost", async () => {
    const { kube, slack, cwd } = await setup();
    const a = replica(kube, cwd);
    const b = replica(kube, cwd);
    await Promise.all([a, b].map((p) => p.waitFor(() => identityOf(p), "the identity line")));
    const firstId = await a.waitFor(() => holder(kube) || undefined, "a leader");
    const [first, second] = identityOf(a) === firstId ? [a, b] : [b, a];
    await kube.waitForWatches(5, undefined, 30_000);

    crashing(kube, "before");
    await slack.waitFor(() => posted(slack, "Pod before/app-6b7c8d9f5-aaaaa is crash looping"), 60_000);

    // SIGKILL: no release, the lease stays with the dead replica until it runs out.
    await first.stop("SIGKILL");
    crashing(kube, "before", 7);
    crashing(kube, "during");
    kube.add(node({ name: "w2", ready: false }));
    const secondId = identityOf(second)!;
    await second.waitForLog((l) => /^took over the lease from/.test(String(l.msg)), "the takeover", 60_000);
    expect(holder(kube)).toBe(secondId);
    expect((kube.get("Lease", "default", "kubecano")?.["spec"] as { leaseTransitions?: number }).leaseTransitions).toBe(1);
    await slack.waitFor(() => posted(slack, "Pod during/app-6b7c8d9f5-aaaaa is crash looping") && posted(slack, "Node w2 is not ready"), 60_000);
    crashing(kube, "marker");
    await slack.waitFor(() => posted(slack, "Pod marker/app-6b7c8d9f5-aaaaa is crash looping"), 60_000);
    await new Promise((r) => setTimeout(r, 2_000));

    const counts = sends(slack);
    expect([...counts.entries()].filter(([, n]) => n !== 1)).toEqual([]);
    expect(counts.size).toBe(4);
    // The new leader read the ledger from the Lease: the crash loop in "before" was known.
    const took = second.logs().find((l) => /^watching the cluster/.test(String(l.msg)));
    expect(took?.["known"]).toBeGreaterThanOrEqual(1);
  });
});
