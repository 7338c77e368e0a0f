import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { Writable } from "node:stream";
import { KubeConfig } from "@kubernetes/client-node";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { Block, Enrichment, FileBlock, TableBlock } from "../../src/core/blocks.js";
import { createIssue, type Issue } from "../../src/core/issue.js";
import { subjectFromLabels } from "../../src/core/subject.js";
import { validateConfig } from "../../src/config/load.js";
import { InputError } from "../../src/errors.js";
import { ClusterAccess } from "../../src/kube/access.js";
import { KubeClient, KubeError, type KubeReader } from "../../src/kube/client.js";
import { resolveKubeConfig } from "../../src/kube/config.js";
import { createLogger, silentLogger } from "../../src/observability/logger.js";
import { Pipeline } from "../../src/pipeline.js";
import { BUILTIN_ACTIONS } from "../../src/workflows/actions/registry.js";
import { WorkflowEngine } from "../../src/workflows/engine.js";
import { workflowsSchema } from "../../src/workflows/schema.js";
import type { ActionOutput } from "../../src/workflows/types.js";
import {
  crashLoopingPod,
  daemonSet,
  deployment,
  event,
  job,
  node,
  oomKilledPod,
  pod,
  replicaSet,
  startKubeFake,
  statefulSet,
  type KubeFake,
  type KubeObject,
  type KubeRequest,
} from "../fakes/kube.js";
import { addCrashLoopOom, addFailedJob, addNotReadyNode, CRASHLOOP, FAILED_JOB } from "../helpers/cluster-scenarios.js";

/**
 * Every action that reads the cluster, run against the Kubernetes API fake
 * through the real client (KubeClient over client-node): what each one
 * finds and shows, what it asks the API server, how it fails (404, 403,
 * timeouts), and ClusterAccess when the API server cannot be reached. Also
 * kubeconfig resolution in kubectl's order.
 */

const NOW = new Date("2026-11-26T10:40:00.000Z");
const log = silentLogger();
const M = 60_000;

let fake: KubeFake;
let kc: KubeConfig;
let client: KubeClient;

beforeEach(async () => {
  fake = await startKubeFake({ now: () => NOW });
  kc = new KubeConfig();
  kc.loadFromFile(fake.kubeconfigPath());
  client = await KubeClient.create(kc, { timeoutMs: 5_000 });
});
afterEach(async () => {
  await fake.close();
});

function alertIssue(labels: Record<string, string>, alertname = "KubePodCrashLooping"): Issue {
  return createIssue(
    {
      title: alertname,
      aggregationKey: alertname,
      severity: "LOW",
      status: "FIRING",
      source: "prometheus",
      type: "alert",
      subject: subjectFromLabels({ alertname, ...labels }),
      startsAt: new Date(NOW.getTime() - 2 * M).toISOString(),
      clusterName: "test",
    },
    NOW,
  );
}

const crashIssue = (extra: Record<string, string> = {}): Issue => alertIssue({ namespace: CRASHLOOP.namespace, pod: CRASHLOOP.pod, ...extra });

async function act(name: string, raw: unknown, issue: Issue, kube: KubeReader | undefined = client): Promise<ActionOutput> {
  const def = BUILTIN_ACTIONS[name];
  if (def === undefined) throw new Error(`no action ${name}`);
  return def.run(def.params.parse(raw), { issue, kube, signal: new AbortController().signal, log, now: () => NOW });
}

async function actError(name: string, raw: unknown, issue: Issue, kube: KubeReader | undefined = client): Promise<Error> {
  try {
    await act(name, raw, issue, kube);
  } catch (e) {
    return e as Error;
  }
  throw new Error(`expected ${name} to fail`);
}

const blocks = (out: ActionOutput): Block[] => (out.enrichments ?? []).flatMap((e) => e.blocks);
const table = (out: ActionOutput, title?: string): TableBlock => {
  const t = blocks(out).find((b): b is TableBlock => b.type === "table" && b.title === title);
  if (t === undefined) throw new Error(`no table ${title ?? "(untitled)"} in ${JSON.stringify(out.enrichments)}`);
  return t;
};
const markdown = (out: ActionOutput): string[] => blocks(out).flatMap((b) => (b.type === "markdown" ? [b.text] : []));
const files = (out: ActionOutput): FileBlock[] => blocks(out).filter((b): b is FileBlock => b.type === "file");
const column = (t: TableBlock, header: string): string[] => t.rows.map((r) => r[t.headers.indexOf(header)] ?? "");
const logRequests = (): KubeRequest[] => fake.requests.filter((r) => r.subresource === "log");

// ───────────────────────────── pod_logs ─────────────────────────────

describe("pod_logs", () => {
  beforeEach(() => addCrashLoopOom(fake, NOW));

  it("picks the crash-looping container, reads its previous logs and attaches them as a file", async () => {
    const out = await act("pod_logs", { previous: true, tail_lines: 200 }, crashIssue());
    expect(logRequests().map((r) => [r.path, r.query["container"], r.query["previous"], r.query["tailLines"]])).toEqual([
      [`/api/v1/namespaces/${CRASHLOOP.namespace}/pods/${CRASHLOOP.pod}/log`, CRASHLOOP.container, "true", "200"],
    ]);
    expect(out.enrichments?.map((e) => e.title)).toEqual([`Logs of ${CRASHLOOP.container} (previous container, before the last restart)`]);
    const [f] = files(out);
    expect(f).toMatchObject({ type: "file", filename: "api-7d9f-api-previous.log", title: "shop/api-7d9f api (previous): last 200 lines", excerptLines: 15 });
    expect(f!.content.split("\n")).toHaveLength(201);
    expect(f!.content).toMatch(/Terminating due to java\.lang\.OutOfMemoryError: Java heap space\n$/);
    expect(out.note).toBe("container api; previous: 200 lines");
  });

  it("takes the container from its parameter, then from the container label, before guessing", async () => {
    await act("pod_logs", { container: CRASHLOOP.sidecar, previous: false }, crashIssue());
    await act("pod_logs", { previous: false }, crashIssue({ container: CRASHLOOP.sidecar }));
    // A label naming no container of the pod is ignored.
    await act("pod_logs", { previous: false }, crashIssue({ container: "not-there" }));
    expect(logRequests().map((r) => r.query["container"])).toEqual([CRASHLOOP.sidecar, CRASHLOOP.sidecar, CRASHLOOP.container]);
  });

  it("reads the only container of a healthy pod, and refuses to guess among several", async () => {
    fake.add(pod({ name: "single", namespace: "shop", node: "node-1" }));
    fake.setLog({ namespace: "shop", pod: "single", container: "app" }, "hello\n");
    const out = await act("pod_logs", {}, alertIssue({ namespace: "shop", pod: "single" }));
    expect(files(out)[0]).toMatchObject({ filename: "single-app.log", title: "shop/single app", content: "hello\n" });

    fake.add(pod({ name: "duo", namespace: "shop", node: "node-1", containers: [{ name: "web" }, { name: "proxy" }] }));
    const err = await actError("pod_logs", {}, alertIssue({ namespace: "shop", pod: "duo" }));
    expect(err.message).toBe("pod shop/duo has several containers (web, proxy) and none is in trouble: set pod_logs.container");
    expect(logRequests()).toHaveLength(1);
  });

  it("previous: false, both and auto", async () => {
    fake.add(oomKilledPod({ name: "again", namespace: "shop", backOff: false, finishedAt: new Date(NOW.getTime() - M) }));
    fake.setLog({ namespace: "shop", pod: "again", container: "app", previous: true }, "old instance\n");
    fake.setLog({ namespace: "shop", pod: "again", container: "app" }, "new instance\n");
    const issue = alertIssue({ namespace: "shop", pod: "again" });

    const current = await act("pod_logs", { previous: false }, issue);
    expect(files(current).map((f) => [f.filename, f.content])).toEqual([["again-app.log", "new instance\n"]]);

    const both = await act("pod_logs", { previous: "both" }, issue);
    expect(files(both).map((f) => [f.filename, f.content])).toEqual([
      ["again-app-previous.log", "old instance\n"],
      ["again-app.log", "new instance\n"],
    ]);
    expect(both.enrichments?.map((e) => e.title)).toEqual(["Logs of app (previous container, before the last restart)", "Logs of app"]);

    // auto: the previous instance once the container has restarted...
    expect(files(await act("pod_logs", { previous: "auto" }, issue))[0]?.content).toBe("old instance\n");
    // ...and the current one of a container that never did (both then reads only the current).
    fake.add(pod({ name: "fresh", namespace: "shop", node: "node-1" }));
    fake.setLog({ namespace: "shop", pod: "fresh", container: "app" }, "first run\n");
    expect(files(await act("pod_logs", { previous: "auto" }, alertIssue({ namespace: "shop", pod: "fresh" })))[0]?.content).toBe("first run\n");
    expect(files(await act("pod_logs", { previous: "both" }, alertIssue({ namespace: "shop", pod: "fresh" }))).map((f) => f.filename)).toEqual(["fresh-app.log"]);
    expect(logRequests().map((r) => r.query["previous"])).toEqual(["false", "true", "false", "true", "false", "false"]);
  });

  it("previous: auto falls back to the current logs when the previous instance's are gone; previous: true says so", async () => {
    // Restarted (restartCount 2) but its last terminated state is gone, e.g. after a node reboot: the kubelet answers 400.
    fake.add(pod({ name: "rebooted", namespace: "shop", node: "node-1", containerStatuses: [{ name: "app", restartCount: 2, lastState: {} }] }));
    fake.setLog({ namespace: "shop", pod: "rebooted", container: "app" }, "running again\n");
    const issue = alertIssue({ namespace: "shop", pod: "rebooted" });
    const out = await act("pod_logs", { previous: "auto" }, issue);
    expect(files(out).map((f) => [f.filename, f.content])).toEqual([["rebooted-app.log", "running again\n"]]);
    expect(out.note).toBe("container app; no previous logs, current: 1 lines");
    expect(logRequests().map((r) => [r.query["previous"], r.status])).toEqual([
      ["true", 400],
      ["false", 200],
    ]);

    const err = await actError("pod_logs", { previous: true }, issue);
    expect(err).toBeInstanceOf(KubeError);
    expect((err as KubeError).status).toBe(400);
    expect(err.message).toBe('reading logs of pod shop/rebooted container app (previous): HTTP 400: previous terminated container "app" in pod "rebooted" not found');
  });

  it("passes tail_lines, limit_bytes, since and timestamps through to the API server", async () => {
    fake.add(pod({ name: "chatty", namespace: "shop", node: "node-1" }));
    fake.setLog(
      { namespace: "shop", pod: "chatty", container: "app" },
      Array.from({ length: 100 }, (_, i) => ({ time: new Date(NOW.getTime() - (100 - i) * M), line: `line ${i} ${"x".repeat(40)}` })),
    );
    const out = await act("pod_logs", { previous: false, tail_lines: 50, limit_bytes: 2048, since: "30m", timestamps: true }, alertIssue({ namespace: "shop", pod: "chatty" }));
    expect(logRequests()[0]?.query).toEqual({ container: "app", previous: "false", tailLines: "50", limitBytes: "2048", sinceSeconds: "1800", timestamps: "true" });
    const content = files(out)[0]!.content;
    // The last 50 lines, of which those of the last 30 minutes, capped at 2048 bytes, each with its timestamp.
    expect(Buffer.byteLength(content)).toBeLessThanOrEqual(2048);
    expect(content.startsWith(`${new Date(NOW.getTime() - 30 * M).toISOString().replace(".000Z", "Z")} line 70 `)).toBe(true);
    // Fewer lines than asked for: the title does not claim "last 50 lines".
    expect(files(out)[0]?.title).toBe("shop/chatty app");
  });

  it("redacts every match of its patterns (regex or glob)", async () => {
    fake.add(pod({ name: "leaky", namespace: "shop", node: "node-1" }));
    fake.setLog({ namespace: "shop", pod: "leaky", container: "app" }, "connect postgres://app:hunter2@db/shop\nAuthorization: Bearer eyJhbGciOi.abc\napi token tok_live_1234 ok\n");
    const out = await act("pod_logs", { redact: ["/:\\/\\/[^:]+:[^@]+@/", "/Bearer \\S+/", "tok_live_*"] }, alertIssue({ namespace: "shop", pod: "leaky" }));
    expect(files(out)[0]?.content).toBe("connect postgres[REDACTED]db/shop\nAuthorization: [REDACTED]\napi token [REDACTED] ok\n");
  });

  it("a pod that is gone is said to be gone; an Issue about no pod is refused", async () => {
    const err = await actError("pod_logs", {}, alertIssue({ namespace: "shop", pod: "gone-123" }));
    expect(err.message).toBe("pod shop/gone-123 no longer exists");
    expect((await actError("pod_logs", {}, alertIssue({ namespace: "shop", deployment: "api" }, "KubeDeploymentReplicasMismatch"))).message).toBe("this Issue is not about a pod (subject: Deployment)");
  });

  it("a container that wrote nothing gives a file that says so", async () => {
    fake.add(pod({ name: "quiet", namespace: "shop", node: "node-1" }));
    const out = await act("pod_logs", {}, alertIssue({ namespace: "shop", pod: "quiet" }));
    expect(files(out)[0]?.content).toBe("(the container wrote no output)\n");
    expect(out.note).toBe("container app; current: 0 lines");
  });
});

// ───────────────────────────── pod_status ─────────────────────────────

describe("pod_status", () => {
  it("marks the OOMKilled container with exit 137 (SIGKILL), restarts, requests, limits, the memory limit and unmet conditions", async () => {
    addCrashLoopOom(fake, NOW);
    const out = await act("pod_status", {}, crashIssue());
    expect(out.enrichments?.map((e) => e.title)).toEqual(["Pod shop/api-7d9f"]);
    expect(markdown(out)).toEqual(["*Phase* Running  ·  *Node* node-1  ·  *QoS* Burstable  ·  *Started* 25m ago", ":warning: *api was OOMKilled* — exit code 137 (SIGKILL), memory limit 256Mi"]);
    const containers = table(out, "Containers");
    expect(containers.headers).toEqual(["Container", "State", "Restarts", "Last termination"]);
    expect(containers.rows).toEqual([
      ["api", "CrashLoopBackOff", "7", "⚠ OOMKilled, exit 137 (SIGKILL), 1m ago after 5s"],
      ["log-shipper", "Running", "0", "-"],
    ]);
    expect(table(out, "Resources").rows).toEqual([
      ["api", "cpu 250m, memory 128Mi", "memory 256Mi"],
      ["log-shipper", "cpu 10m, memory 32Mi", "memory 64Mi"],
    ]);
    expect(table(out, "Conditions not met").rows).toEqual([
      ["Ready", "ContainersNotReady", "-", "25m ago"],
      ["ContainersReady", "ContainersNotReady", "-", "25m ago"],
    ]);
    expect(out.note).toBe("2 containers, 7 restarts, OOMKilled: api");
  });

  it("says when no memory limit was set, shows other exit signals, and leaves out empty resources", async () => {
    fake.add(oomKilledPod({ name: "nolimit", namespace: "shop", finishedAt: new Date(NOW.getTime() - 2 * M) }));
    const out = await act("pod_status", {}, alertIssue({ namespace: "shop", pod: "nolimit" }));
    expect(markdown(out)).toContain(":warning: *app was OOMKilled* — exit code 137 (SIGKILL), no memory limit set: the node ran out of memory");
    expect(() => table(out, "Resources")).toThrow(/no table Resources/);

    fake.add(crashLoopingPod({ name: "segv", namespace: "shop", exitCode: 139, terminatedReason: "Error", finishedAt: new Date(NOW.getTime() - 3 * M) }));
    const segv = await act("pod_status", {}, alertIssue({ namespace: "shop", pod: "segv" }));
    expect(column(table(segv, "Containers"), "Last termination")).toEqual(["Error, exit 139 (SIGSEGV), 3m ago after 5s"]);
    expect(markdown(segv).some((t) => t.includes("OOMKilled"))).toBe(false);
  });

  it("shows a pod's own reason and message (an eviction)", async () => {
    fake.add(
      pod({
        name: "evicted",
        namespace: "shop",
        node: "node-1",
        phase: "Failed",
        reason: "Evicted",
        message: "The node was low on resource: memory.",
        containerStatuses: [{ name: "app", ready: false, state: { terminated: { exitCode: 137, reason: "ContainerStatusUnknown" } } }],
      }),
    );
    const out = await act("pod_status", {}, alertIssue({ namespace: "shop", pod: "evicted" }));
    expect(markdown(out)[0]).toMatch(/^\*Phase\* Failed \(Evicted\)/);
    expect(markdown(out)).toContain("> The node was low on resource: memory.");
    expect(column(table(out, "Containers"), "State")).toEqual(["ContainerStatusUnknown (exit 137 (SIGKILL))"]);
  });

  it("a pod that is gone is said to be gone", async () => {
    expect((await actError("pod_status", {}, alertIssue({ namespace: "shop", pod: "api-0ld" }))).message).toBe("pod shop/api-0ld no longer exists");
  });
});

// ───────────────────────────── pod_events ─────────────────────────────

describe("pod_events", () => {
  it("lists the object's events newest first, by involvedObject field selector", async () => {
    addCrashLoopOom(fake, NOW);
    const out = await act("pod_events", {}, crashIssue());
    const ev = fake.requests.find((r) => r.resource === "events");
    expect(ev?.path).toBe("/api/v1/namespaces/shop/events");
    expect(ev?.query["fieldSelector"]).toBe("involvedObject.name=api-7d9f,involvedObject.kind=Pod");
    const t = table(out, undefined);
    expect(t.headers).toEqual(["Last seen", "Type", "Reason", "Count", "Message"]);
    expect(t.rows).toHaveLength(10);
    expect(t.rows[0]?.slice(0, 4)).toEqual(["30s ago", "Warning", "BackOff", "42"]);
    expect(column(t, "Last seen").at(-1)).toBe("25m ago");
    expect(out.enrichments?.[0]?.title).toBe("Events of pod api-7d9f");
    expect(out.note).toBe("10 events");
  });

  it("limit and types filter", async () => {
    addCrashLoopOom(fake, NOW);
    expect(table(await act("pod_events", { limit: 3 }, crashIssue()), undefined).rows.map((r) => r[2])).toEqual(["BackOff", "Created", "Started"]);
    expect(table(await act("pod_events", { types: ["Warning"] }, crashIssue()), undefined).rows.map((r) => r[2])).toEqual(["BackOff", "Unhealthy"]);
  });

  it("knows when an event last happened: lastTimestamp, else series.lastObservedTime, else eventTime", async () => {
    const p = fake.add(pod({ name: "p", namespace: "shop", node: "node-1" }));
    const at = (m: number): Date => new Date(NOW.getTime() - m * M);
    const legacy = event({ involvedObject: p, reason: "Legacy", message: "core/v1 style", lastTimestamp: at(5), firstTimestamp: at(9), count: 3 });
    // events.k8s.io writers (the scheduler, newer controllers) leave the legacy timestamps empty.
    const series = { ...event({ involvedObject: p, reason: "Series", message: "a series", eventTime: at(20), series: { count: 12, lastObservedTime: at(1) } }), firstTimestamp: null, lastTimestamp: null };
    const single = { ...event({ involvedObject: p, reason: "Single", message: "eventTime only", eventTime: at(3) }), firstTimestamp: null, lastTimestamp: null };
    for (const e of [legacy, series, single]) fake.add(e as KubeObject);
    const t = table(await act("pod_events", {}, alertIssue({ namespace: "shop", pod: "p" })), undefined);
    expect(t.rows.map((r) => [r[0], r[2], r[3]])).toEqual([
      ["1m ago", "Series", "12"],
      ["3m ago", "Single", "1"],
      ["5m ago", "Legacy", "3"],
    ]);
  });

  it("reads a node's events across namespaces; no events is a note, not an enrichment", async () => {
    addNotReadyNode(fake, NOW);
    const out = await act("pod_events", {}, alertIssue({ node: "worker-3" }, "KubeNodeNotReady"));
    const ev = fake.requests.find((r) => r.resource === "events");
    expect([ev?.path, ev?.query["fieldSelector"]]).toEqual(["/api/v1/events", "involvedObject.name=worker-3,involvedObject.kind=Node"]);
    expect(table(out, undefined).rows.map((r) => r[2])).toEqual(["NodeNotReady"]);
    const none = await act("pod_events", {}, alertIssue({ node: "worker-9" }, "KubeNodeNotReady"));
    expect(none).toEqual({ note: "no events (Kubernetes keeps them about an hour)" });
  });
});

// ───────────────────────────── resource_owner ─────────────────────────────

describe("resource_owner", () => {
  it("follows Pod → ReplicaSet → Deployment and shows the Deployment's failing conditions", async () => {
    const d = fake.add(deployment({ name: "api", namespace: "shop", replicas: 3, readyReplicas: 1, availableReplicas: 1 }));
    const rs = fake.add(replicaSet({ name: "api-7d9f8b6c5d", namespace: "shop", owner: d, replicas: 3, readyReplicas: 1, revision: "4" }));
    fake.add(crashLoopingPod({ name: "api-7d9f8b6c5d-x1", namespace: "shop", owner: rs }));
    const out = await act("resource_owner", {}, alertIssue({ namespace: "shop", pod: "api-7d9f8b6c5d-x1" }));
    expect(out.note).toBe("Pod/api-7d9f8b6c5d-x1 → ReplicaSet/api-7d9f8b6c5d → Deployment/api");
    expect(out.enrichments?.[0]?.title).toBe("Owner: Deployment api");
    expect(table(out, undefined).rows).toEqual([
      ["Pod", "api-7d9f8b6c5d-x1", "Running, 0/1 containers ready"],
      ["ReplicaSet", "api-7d9f8b6c5d", "1/3 ready, revision 4"],
      ["Deployment", "api", "1/3 ready, 3 updated, 1 available, revision 1"],
    ]);
    expect(table(out, "Deployment conditions").rows.map((r) => r.slice(0, 3))).toEqual([["Available", "False", "MinimumReplicasUnavailable"]]);
  });

  it("follows Pod → Job → CronJob", async () => {
    addFailedJob(fake, NOW);
    const out = await act("resource_owner", {}, alertIssue({ namespace: FAILED_JOB.namespace, pod: `${FAILED_JOB.job}-b8r3w` }));
    expect(out.note).toBe(`Pod/${FAILED_JOB.job}-b8r3w → Job/${FAILED_JOB.job} → CronJob/${FAILED_JOB.cronJob}`);
    const rows = table(out, undefined).rows;
    expect(rows[1]).toEqual(["Job", FAILED_JOB.job, "0 active, 0 succeeded, 3 failed (backoff limit 2)"]);
    expect(rows[2]).toEqual(["CronJob", FAILED_JOB.cronJob, `schedule 0 2 * * *, last scheduled ${new Date(NOW.getTime() - 40 * M).toISOString()}`]);
  });

  it("follows pods of a StatefulSet and of a DaemonSet", async () => {
    const sts = fake.add(statefulSet({ name: "db", namespace: "shop", replicas: 3, readyReplicas: 2, updateRevision: "db-6f7c9d" }));
    fake.add(crashLoopingPod({ name: "db-2", namespace: "shop", owner: sts }));
    expect((await act("resource_owner", {}, alertIssue({ namespace: "shop", pod: "db-2" }))).note).toBe("Pod/db-2 → StatefulSet/db");
    const ds = fake.add(daemonSet({ name: "node-exporter", namespace: "monitoring", desired: 5, ready: 4 }));
    fake.add(crashLoopingPod({ name: "node-exporter-abcde", namespace: "monitoring", owner: ds }));
    const out = await act("resource_owner", {}, alertIssue({ namespace: "monitoring", pod: "node-exporter-abcde" }));
    expect(table(out, undefined).rows[1]).toEqual(["DaemonSet", "node-exporter", "4/5 ready, 5 updated, 1 unavailable"]);
  });

  it("says when an owner is gone", async () => {
    const d = deployment({ name: "old", namespace: "shop" });
    const rs = replicaSet({ name: "old-5c6d7e8f9a", namespace: "shop", owner: d });
    fake.add(crashLoopingPod({ name: "orphan", namespace: "shop", owner: rs }));
    const out = await act("resource_owner", {}, alertIssue({ namespace: "shop", pod: "orphan" }));
    expect(table(out, undefined).rows[1]).toEqual(["ReplicaSet", "old-5c6d7e8f9a", "not found (deleted?)"]);
    expect(out.note).toBe("Pod/orphan → ReplicaSet/old-5c6d7e8f9a");
  });

  it("refuses Issues with no namespaced workload", async () => {
    expect((await actError("resource_owner", {}, alertIssue({ node: "worker-1" }, "KubeNodeNotReady"))).message).toBe("no namespaced workload to follow (subject: Node)");
  });
});

// ───────────────────────────── node_info ─────────────────────────────

describe("node_info", () => {
  it("shows conditions, pressures, resources and the pods on the node that are not running well", async () => {
    addNotReadyNode(fake, NOW);
    const out = await act("node_info", {}, alertIssue({ node: "worker-3" }, "KubeNodeNotReady"));
    expect(markdown(out)).toEqual(["*Ready* False (KubeletNotReady) since 7m ago  ·  :warning: *MemoryPressure*  ·  kubelet v1.31.4, Ubuntu 24.04 LTS"]);
    expect(column(table(out, "Conditions"), "Condition")).toEqual(["MemoryPressure", "DiskPressure", "PIDPressure", "Ready"]);
    expect(table(out, "Resources").rows).toContainEqual(["memory", "32863252Ki", "31712276Ki"]);
    const pods = fake.requests.find((r) => r.resource === "pods");
    expect([pods?.path, pods?.query["fieldSelector"]]).toEqual(["/api/v1/pods", "spec.nodeName=worker-3"]);
    expect(table(out, "Pods on worker-3 not running well (2 of 3)").rows).toEqual([
      ["search/search-indexer-5f6d7c8b9-qwert", "Running", "12", "CrashLoopBackOff"],
      ["shop/cache-0", "Running", "1", "not ready: app"],
    ]);
    expect(out.note).toBe("Ready=False, MemoryPressure, 3 pods (2 not ready)");
  });

  it("pods: false reads no pods; a node that is gone, or none named, is said so", async () => {
    fake.add(node({ name: "worker-1" }));
    const out = await act("node_info", { pods: false }, alertIssue({ node: "worker-1" }, "KubeNodeNotReady"));
    expect(markdown(out)[0]).toMatch(/^\*Ready\* True \(KubeletReady\) since .* · {2}no pressure/);
    expect(fake.count({ resource: "pods" })).toBe(0);
    expect((await actError("node_info", {}, alertIssue({ node: "worker-7" }, "KubeNodeNotReady"))).message).toBe("node worker-7 no longer exists");
    expect((await actError("node_info", {}, alertIssue({ namespace: "shop" }, "Other"))).message).toBe("this Issue names no node");
  });

  it("finds the node of a pod alert through its node label", async () => {
    addNotReadyNode(fake, NOW);
    const out = await act("node_info", { pods: false }, alertIssue({ namespace: "shop", pod: "cache-0", node: "worker-3" }));
    expect(out.enrichments?.[0]?.title).toBe("Node worker-3");
  });
});

// ───────────────────────────── deployment_status ─────────────────────────────

describe("deployment_status", () => {
  function addRollout(): void {
    const d = fake.add(deployment({ name: "checkout", namespace: "shop", replicas: 4, readyReplicas: 2, availableReplicas: 2, updatedReplicas: 1, progressDeadlineExceeded: true, annotations: { "deployment.kubernetes.io/revision": "10" } }));
    const rs = (name: string, revision: string, image: string, replicas: number, ready: number, age: number): KubeObject =>
      fake.add(replicaSet({ name, namespace: "shop", revision, owner: d, replicas, readyReplicas: ready, createdAt: new Date(NOW.getTime() - age * M), labels: { app: "checkout" }, containers: [{ name: "checkout", image }, { name: "envoy", image: "envoy:1.31" }] }));
    rs("checkout-aaaaaaaaa1", "9", "shop/checkout:3.0.2", 3, 2, 120);
    rs("checkout-aaaaaaaaa2", "10", "shop/checkout:3.1.0", 1, 0, 30);
    rs("checkout-aaaaaaaaa3", "2", "shop/checkout:2.9.0", 0, 0, 9000);
    // Same labels, another owner: not one of checkout's revisions.
    const other = deployment({ name: "checkout-canary", namespace: "shop", labels: { app: "checkout" } });
    fake.add(replicaSet({ name: "checkout-canary-bbbbbbbb", namespace: "shop", revision: "50", owner: other, labels: { app: "checkout" } }));
  }

  it("shows replicas, conditions and the revisions newest first with their images", async () => {
    addRollout();
    const out = await act("deployment_status", {}, alertIssue({ namespace: "shop", deployment: "checkout" }, "KubeDeploymentReplicasMismatch"));
    expect(out.enrichments?.[0]?.title).toBe("Deployment shop/checkout");
    expect(table(out, undefined).rows).toEqual([["4", "2", "1", "2", "2", "RollingUpdate"]]);
    expect(column(table(out, "Conditions"), "Condition")).toEqual(["⚠ Available", "⚠ Progressing"]);
    const revs = table(out, "Recent revisions");
    expect(revs.rows.map((r) => [r[0], r[1], r[2], r[3]])).toEqual([
      ["10", "checkout-aaaaaaaaa2", "shop/checkout:3.1.0, envoy:1.31", "0/1"],
      ["9", "checkout-aaaaaaaaa1", "shop/checkout:3.0.2, envoy:1.31", "2/3"],
      ["2", "checkout-aaaaaaaaa3", "shop/checkout:2.9.0, envoy:1.31", "0/0"],
    ]);
    expect(column(revs, "Created")).toEqual(["30m ago", "2h ago", "6d 6h ago"]);
    expect(fake.requests.find((r) => r.resource === "replicasets" && r.verb === "list")?.query["labelSelector"]).toBe("app=checkout");
    expect(out.note).toBe("2/4 ready");
    expect(table(await act("deployment_status", { revisions: 1 }, alertIssue({ namespace: "shop", deployment: "checkout" }, "KubeDeploymentReplicasMismatch")), "Recent revisions").rows).toHaveLength(1);
  });

  it("finds the Deployment of a pod alert through its ReplicaSet", async () => {
    addCrashLoopOom(fake, NOW);
    const out = await act("deployment_status", {}, crashIssue());
    expect(out.enrichments?.[0]?.title).toBe(`Deployment shop/${CRASHLOOP.deployment}`);
    expect((await actError("deployment_status", {}, alertIssue({ namespace: "shop", deployment: "gone" }, "KubeDeploymentReplicasMismatch"))).message).toBe("deployment shop/gone no longer exists");
  });
});

// ───────────────────────────── job_info ─────────────────────────────

describe("job_info", () => {
  it("shows the Job, its failed pods newest first, and the logs of the newest failed one", async () => {
    addFailedJob(fake, NOW);
    const out = await act("job_info", {}, alertIssue({ namespace: FAILED_JOB.namespace, job_name: FAILED_JOB.job }, "KubeJobFailed"));
    expect(out.enrichments?.map((e) => e.title)).toEqual([`Job batch/${FAILED_JOB.job}`, `Logs of the failed pod ${FAILED_JOB.job}-b8r3w`]);
    expect(table(out, undefined).rows).toEqual([["0", "0", "3", "1", "2", "40m ago"]]);
    expect(table(out, "Conditions").rows).toEqual([["Failed", "BackoffLimitExceeded", "Job has reached the specified backoff limit", "3m ago"]]);
    expect(table(out, "Failed pods (3)").rows.map((r) => [r[0], r[2], r[3], r[4]])).toEqual([
      [`${FAILED_JOB.job}-b8r3w`, "Error", "1", "6m ago"],
      [`${FAILED_JOB.job}-m4q9d`, "Error", "1", "20m ago"],
      [`${FAILED_JOB.job}-x7k2p`, "Error", "1", "35m ago"],
    ]);
    expect(fake.requests.find((r) => r.resource === "pods" && r.verb === "list")?.query["labelSelector"]).toBe(`job-name=${FAILED_JOB.job}`);
    expect(logRequests().map((r) => [r.name, r.query["container"], r.query["tailLines"]])).toEqual([[`${FAILED_JOB.job}-b8r3w`, FAILED_JOB.container, "100"]]);
    expect(files(out)[0]?.content).toMatch(/could not connect to reports-db/);
    expect(out.note).toBe("3 failed, 3 failed pods found");
  });

  it("logs: false reads no logs; a Job that is gone is said so", async () => {
    addFailedJob(fake, NOW);
    await act("job_info", { logs: false }, alertIssue({ namespace: FAILED_JOB.namespace, job_name: FAILED_JOB.job }, "KubeJobFailed"));
    expect(logRequests()).toHaveLength(0);
    const err = await actError("job_info", {}, alertIssue({ namespace: "batch", job_name: "cleaned-up" }, "KubeJobFailed"));
    expect(err.message).toBe("job batch/cleaned-up no longer exists (finished Jobs may be cleaned up by ttlSecondsAfterFinished)");
  });

  it("finds the Job of a pod alert through its owner", async () => {
    addFailedJob(fake, NOW);
    const out = await act("job_info", { logs: false }, alertIssue({ namespace: FAILED_JOB.namespace, pod: `${FAILED_JOB.job}-x7k2p` }));
    expect(out.enrichments?.[0]?.title).toBe(`Job batch/${FAILED_JOB.job}`);
    const j = job({ name: "running", namespace: "batch" });
    fake.add(j);
    const running = await act("job_info", {}, alertIssue({ namespace: "batch", job_name: "running" }, "KubeJobNotCompleted"));
    expect(running.enrichments?.map((e) => e.title)).toEqual(["Job batch/running"]);
  });
});

// ───────────────────────────── API errors ─────────────────────────────

describe("API errors", () => {
  it("403 (RBAC) is a KubeError whose message says what to do", async () => {
    addCrashLoopOom(fake, NOW);
    fake.forbid({ resource: "pods", subresource: "log" });
    const err = await actError("pod_logs", {}, crashIssue());
    expect(err).toBeInstanceOf(KubeError);
    expect((err as KubeError).status).toBe(403);
    expect((err as KubeError).unreachable).toBe(false);
    expect(err.message).toMatch(/^reading logs of pod shop\/api-7d9f container api \(previous\): HTTP 403: pods "api-7d9f" is forbidden: User "system:serviceaccount:kubecano:kubecano" cannot get resource "pods\/log" in API group "" in the namespace "shop" \(kubecano's service account lacks this permission: see README, RBAC\)$/);

    // Through the engine, the reader is told in the Issue.
    const engine = await WorkflowEngine.create({ workflows: [], actionTimeoutMs: 5_000, defaults: true }, { configDir: os.tmpdir() });
    const r = await engine.run(crashIssue({ container: CRASHLOOP.container }), { kube: client, log, now: () => NOW });
    const failed = r.issue.enrichments.find((e) => e.title === "pod_logs could not run");
    expect(failed?.blocks[0]).toMatchObject({ type: "markdown", text: expect.stringContaining("RBAC") as unknown });
    expect(r.issue.enrichments.map((e) => e.title)).toEqual(["Pod shop/api-7d9f", "pod_logs could not run", "Events of pod api-7d9f"]);
  });

  it("a 500 keeps the server's message and reason", async () => {
    fake.failNext(500, { resource: "pods", name: "x" }, 1, { message: "etcdserver: request timed out" });
    const err = await actError("pod_status", {}, alertIssue({ namespace: "shop", pod: "x" }));
    expect(err.message).toBe("reading pod shop/x: HTTP 500: etcdserver: request timed out");
    expect((err as KubeError).reason).toBe("InternalError");
  });

  it("an answer slower than the client's timeout is a KubeError timeout", async () => {
    addCrashLoopOom(fake, NOW);
    const slow = await KubeClient.create(kc, { timeoutMs: 100 });
    const held = fake.hang({ resource: "pods", name: CRASHLOOP.pod });
    try {
      const err = await actError("pod_status", {}, crashIssue(), slow);
      expect(err).toBeInstanceOf(KubeError);
      expect(err).toMatchObject({ status: 0, reason: "Timeout", message: "reading pod shop/api-7d9f: the API server did not answer within 100 ms" });
      expect(held.waiting).toBe(1);
    } finally {
      held.release();
    }
  });
});

describe("one Issue's reads", () => {
  it("are made once per run and shared between actions: the crash-loop workflow reads the pod once", async () => {
    addCrashLoopOom(fake, NOW);
    const engine = await WorkflowEngine.create({ workflows: [], actionTimeoutMs: 5_000, defaults: true }, { configDir: os.tmpdir() });
    const r = await engine.run(crashIssue({ container: CRASHLOOP.container }), { kube: client, log, now: () => NOW });
    expect(r.issue.enrichments).toHaveLength(3);
    expect(fake.requests.map((q) => `${q.verb} ${q.resource}${q.subresource !== undefined ? `/${q.subresource}` : ""}`)).toEqual(["get pods", "get pods/log", "list events"]);
    // The next Issue reads afresh.
    await engine.run(crashIssue({ container: CRASHLOOP.container }), { kube: client, log, now: () => NOW });
    expect(fake.count({ resource: "pods", name: CRASHLOOP.pod, subresource: null })).toBe(2);
  });

  it("a hanging API server costs one timeout per read, not one per action", async () => {
    addCrashLoopOom(fake, NOW);
    const slow = await KubeClient.create(kc, { timeoutMs: 100 });
    const held = fake.hang({ resource: "pods", name: CRASHLOOP.pod, subresource: null });
    try {
      const workflows = workflowsSchema.parse([{ name: "w", triggers: [{ on_issue: {} }], actions: [{ pod_status: {} }, { pod_logs: {} }, { resource_owner: {} }] }]);
      const engine = await WorkflowEngine.create({ workflows, actionTimeoutMs: 5_000, defaults: false }, { configDir: os.tmpdir() });
      const r = await engine.run(crashIssue({ container: CRASHLOOP.container }), { kube: slow, log, now: () => NOW });
      expect(r.trace[0]?.actions.map((a) => [a.action, a.status, a.error])).toEqual([
        ["pod_status", "failed", "reading pod shop/api-7d9f: the API server did not answer within 100 ms"],
        ["pod_logs", "failed", "reading pod shop/api-7d9f: the API server did not answer within 100 ms"],
        ["resource_owner", "failed", "reading pod shop/api-7d9f: the API server did not answer within 100 ms"],
      ]);
      expect(held.waiting).toBe(1);
      expect(fake.count({ resource: "pods", verb: "get" })).toBe(1);
    } finally {
      held.release();
    }
  });

  it("the cluster's reader can be passed through promises (it is no thenable)", async () => {
    const cluster = ClusterAccess.of(client, "fake", log);
    const reader = await Promise.resolve(cluster.reader());
    expect(reader).toBe(cluster.reader());
    expect((reader as unknown as Record<string, unknown>)["then"]).toBeUndefined();
  });
});

// ───────────────────────────── cluster access ─────────────────────────────

/** A TCP proxy in front of the fake: closing it makes the API server unreachable on a port that was fine. */
class Proxy {
  private server: net.Server | undefined;
  private readonly sockets = new Set<net.Socket>();
  port = 0;
  connections = 0;
  constructor(private readonly target: number) {}

  async open(): Promise<void> {
    const server = net.createServer((s) => {
      this.connections++;
      const up = net.connect(this.target, "127.0.0.1");
      this.sockets.add(s).add(up);
      const drop = (): void => {
        s.destroy();
        up.destroy();
      };
      s.on("error", drop).on("close", drop).pipe(up);
      up.on("error", drop).on("close", drop).pipe(s);
    });
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(this.port, "127.0.0.1", () => resolve());
    });
    this.port = (server.address() as net.AddressInfo).port;
    this.server = server;
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
    const server = this.server;
    this.server = undefined;
    if (server !== undefined) await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

function capture(): { logger: ReturnType<typeof createLogger>; lines: () => { level: string; msg: string }[] } {
  const out: string[] = [];
  const logger = createLogger({ format: "json", stream: new Writable({ write: (c: Buffer, _e, cb) => (out.push(c.toString()), cb()) }) });
  return { logger, lines: () => out.map((l) => JSON.parse(l) as { level: string; msg: string }) };
}

describe("ClusterAccess", () => {
  async function viaProxy(proxy: Proxy): Promise<KubeClient> {
    const k = new KubeConfig();
    k.loadFromString(fake.kubeconfigYaml().replace(new URL(fake.url).port, String(proxy.port)));
    return KubeClient.create(k, { timeoutMs: 2_000 });
  }

  it("marks an unreachable API server down, warns once for many Issues, reports it, and resumes when it is back", async () => {
    addCrashLoopOom(fake, NOW);
    const proxy = new Proxy(Number(new URL(fake.url).port));
    await proxy.open();
    try {
      const { logger, lines } = capture();
      const cluster = ClusterAccess.of(await viaProxy(proxy), "fake (context fake)", logger, { probeEveryMs: 0 });
      const { config } = await validateConfig({}, undefined, {});
      const workflows = await WorkflowEngine.create({ workflows: [], actionTimeoutMs: 5_000, defaults: true }, { configDir: os.tmpdir() });
      const pipeline = new Pipeline({ config, log: logger, workflows, cluster });
      const titles = async (): Promise<string[]> => (await pipeline.runWorkflows(crashIssue({ container: CRASHLOOP.container }))).issue.enrichments.map((e: Enrichment) => e.title);

      expect(await titles()).toEqual(["Pod shop/api-7d9f", "Logs of api (previous container, before the last restart)", "Events of pod api-7d9f"]);
      expect(cluster.status()).toEqual({ configured: true, reachable: true, detail: "fake (context fake)" });

      await proxy.close();
      for (let i = 0; i < 4; i++) expect(await titles()).toEqual([]);
      const st = cluster.status();
      expect(st.reachable).toBe(false);
      expect(st.detail).toMatch(/^fake \(context fake\): unreachable since \d{4}-\d\d-\d\dT[\d:.]+Z \(reading pod shop\/api-7d9f: cannot reach the API server: ECONNREFUSED\); Issues are sent without cluster enrichment$/);
      expect(lines().filter((l) => l.level === "warn").map((l) => l.msg)).toEqual([
        "the Kubernetes API is unreachable (reading pod shop/api-7d9f: cannot reach the API server: ECONNREFUSED); Issues are sent without cluster enrichment until it is back",
      ]);

      await proxy.open();
      expect(await titles()).toHaveLength(3);
      expect(cluster.status().reachable).toBe(true);
      expect(lines().filter((l) => l.level === "info").map((l) => l.msg)).toEqual(["the Kubernetes API is reachable again: enrichment resumes"]);
      expect(lines().filter((l) => l.level === "warn")).toHaveLength(1);
    } finally {
      await proxy.close();
    }
  });

  it("while down, reads nothing until the next probe is due; Issues then count as pure", async () => {
    addCrashLoopOom(fake, NOW);
    const proxy = new Proxy(Number(new URL(fake.url).port));
    await proxy.open();
    const cluster = ClusterAccess.of(await viaProxy(proxy), "fake", silentLogger());
    await proxy.close();
    const reader = cluster.reader();
    expect(reader).toBeDefined();
    await expect(reader!.getPod("shop", CRASHLOOP.pod)).rejects.toMatchObject({ status: 0, unreachable: true });
    const t = Date.now();
    expect(cluster.reader(t)).toBeUndefined();
    expect(cluster.reader(t + 29_000)).toBeUndefined();
    const { config } = await validateConfig({}, undefined, {});
    const workflows = await WorkflowEngine.create({ workflows: [], actionTimeoutMs: 5_000, defaults: true }, { configDir: os.tmpdir() });
    const pipeline = new Pipeline({ config, log, workflows, cluster });
    expect(pipeline.isPure(crashIssue())).toBe(true);
    // Past the probe interval one more try is allowed; it succeeds once the server is back.
    await proxy.open();
    try {
      const probe = cluster.reader(t + 31_000);
      expect(probe).toBeDefined();
      expect((await probe!.getPod("shop", CRASHLOOP.pod))?.metadata?.name).toBe(CRASHLOOP.pod);
      expect(cluster.reader()).toBeDefined();
      expect(pipeline.isPure(crashIssue())).toBe(false);
    } finally {
      await proxy.close();
    }
  });

  it("an HTTP error is not unreachability: the cluster stays up", async () => {
    fake.forbid({ resource: "pods" });
    const cluster = ClusterAccess.of(client, "fake", silentLogger());
    await expect(cluster.reader()!.getPod("shop", "x")).rejects.toMatchObject({ status: 403 });
    expect(cluster.status().reachable).toBe(true);
    expect(cluster.reader()).toBeDefined();
  });

  it("--no-cluster and no credentials: no reader, and a status that says why", async () => {
    const off = await ClusterAccess.open({ disabled: true, log });
    expect(off.reader()).toBeUndefined();
    expect(off.status()).toEqual({ configured: false, reachable: false, detail: "disabled (--no-cluster): Issues are sent without cluster enrichment" });
    const home = mkdtempSync(path.join(os.tmpdir(), "kubecano-home-"));
    try {
      const { logger, lines } = capture();
      const none = await ClusterAccess.open({ env: { HOME: home }, log: logger });
      expect(none.reader()).toBeUndefined();
      expect(none.status().detail).toBe("no kubeconfig found: Issues are sent without cluster enrichment");
      expect(lines().map((l) => [l.level, l.msg])).toEqual([
        ["warn", "no Kubernetes credentials found (no --kubeconfig, KUBECONFIG, ~/.kube/config or in-cluster service account): Issues are sent without cluster enrichment"],
      ]);
    } finally {
      rmSync(home, { recursive: true, force: true });
    }
  });
});

// ───────────────────────────── kubeconfig resolution ─────────────────────────────

describe("resolveKubeConfig (kubectl's order)", () => {
  let tmp: string;
  beforeEach(() => {
    tmp = mkdtempSync(path.join(os.tmpdir(), "kubecano-kubeconfig-"));
  });
  afterEach(() => {
    rmSync(tmp, { recursive: true, force: true });
  });

  /** A kubeconfig with one context per fake: ctx-0, ctx-1, ... (current: the first). */
  function multiContext(fakes: readonly KubeFake[], current = "ctx-0"): string {
    const q = JSON.stringify;
    return [
      "apiVersion: v1",
      "kind: Config",
      "clusters:",
      ...fakes.flatMap((f, i) => [`  - name: c${i}`, "    cluster:", `      server: ${q(f.url)}`, "      insecure-skip-tls-verify: true"]),
      "users:",
      "  - name: u",
      "    user:",
      `      token: ${q(fake.token ?? "")}`,
      "contexts:",
      ...fakes.flatMap((_, i) => [`  - name: ctx-${i}`, "    context:", `      cluster: c${i}`, "      user: u"]),
      `current-context: ${current}`,
      "",
    ].join("\n");
  }

  it("--kubeconfig wins over KUBECONFIG and ~/.kube/config", async () => {
    mkdirSync(path.join(tmp, ".kube"));
    writeFileSync(path.join(tmp, ".kube", "config"), "not: [valid");
    const r = await resolveKubeConfig({ kubeconfig: fake.kubeconfigPath(), env: { HOME: tmp, KUBECONFIG: path.join(tmp, ".kube", "config") } });
    expect(r?.source).toBe(`${fake.kubeconfigPath()} (context fake)`);
    expect(r?.context).toBe("fake");
    await expect(resolveKubeConfig({ kubeconfig: path.join(tmp, "nope"), env: {} })).rejects.toMatchObject({ name: "InputError", message: `kubeconfig not found: ${path.join(tmp, "nope")}`, hint: "check the path given to --kubeconfig" });
  });

  it("KUBECONFIG is a list merged as kubectl does: missing files skipped, the first to set a name or current-context wins", async () => {
    const second = await startKubeFake();
    try {
      const a = path.join(tmp, "a.yaml");
      const b = path.join(tmp, "b.yaml");
      const shadow = path.join(tmp, "shadow.yaml");
      writeFileSync(a, fake.kubeconfigYaml());
      writeFileSync(b, multiContext([fake, second], "ctx-1").replace(/current-context: .*\n/, ""));
      // Same cluster, user and context names as a.yaml, another server, its own current-context: all shadowed by a.yaml.
      writeFileSync(shadow, second.kubeconfigYaml());
      const list = [path.join(tmp, "missing.yaml"), a, shadow, b].join(path.delimiter);
      const r = await resolveKubeConfig({ env: { KUBECONFIG: list, HOME: tmp } });
      expect(r?.source).toBe(`KUBECONFIG (${list}) (context fake)`);
      await (await KubeClient.create(r!.kc)).getNode("first");
      expect([fake.count({ resource: "nodes" }), second.count({ resource: "nodes" })]).toEqual([1, 0]);
      fake.clearRequests();
      const other = await resolveKubeConfig({ env: { KUBECONFIG: list, HOME: tmp }, context: "ctx-1" });
      expect(other?.context).toBe("ctx-1");
      const c = await KubeClient.create(other!.kc);
      await c.getNode("anything");
      expect(second.count({ resource: "nodes" })).toBe(1);
      expect(fake.count({ resource: "nodes" })).toBe(0);
    } finally {
      await second.close();
    }
  });

  it("~/.kube/config through HOME, and nothing at all", async () => {
    expect(await resolveKubeConfig({ env: { HOME: tmp } })).toBeUndefined();
    await expect(resolveKubeConfig({ env: { HOME: tmp }, context: "prod" })).rejects.toThrow(/no kubeconfig found, so there is no context "prod"/);
    mkdirSync(path.join(tmp, ".kube"));
    writeFileSync(path.join(tmp, ".kube", "config"), fake.kubeconfigYaml());
    expect((await resolveKubeConfig({ env: { HOME: tmp, KUBECONFIG: "" } }))?.source).toBe("~/.kube/config (context fake)");
  });

  it("--context: an unknown one lists the known ones; a known one switches clusters", async () => {
    const second = await startKubeFake();
    try {
      const file = path.join(tmp, "config");
      writeFileSync(file, multiContext([fake, second]));
      let err: unknown;
      try {
        await resolveKubeConfig({ kubeconfig: file, context: "prod", env: {} });
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(InputError);
      expect(err).toMatchObject({ message: `no context "prod" in ${file}`, hint: "known contexts: ctx-0, ctx-1" });

      for (const [ctx, hit, miss] of [["ctx-0", fake, second], ["ctx-1", second, fake]] as const) {
        const r = await resolveKubeConfig({ kubeconfig: file, context: ctx, env: {} });
        expect(r?.source).toBe(`${file} (context ${ctx})`);
        hit.clearRequests();
        miss.clearRequests();
        await (await KubeClient.create(r!.kc)).getNode("n");
        expect([hit.count({ resource: "nodes" }), miss.count({ resource: "nodes" })]).toEqual([1, 0]);
      }
    } finally {
      await second.close();
    }
  });

  it("a kubeconfig that cannot be read, or names no cluster, is an input error", async () => {
    const bad = path.join(tmp, "bad");
    writeFileSync(bad, "clusters: [");
    await expect(resolveKubeConfig({ kubeconfig: bad, env: {} })).rejects.toThrow(/^cannot read kubeconfig /);
    const empty = path.join(tmp, "empty");
    writeFileSync(empty, "apiVersion: v1\nkind: Config\n");
    await expect(resolveKubeConfig({ kubeconfig: empty, env: {} })).rejects.toThrow(`${empty} has no current context with a cluster`);
  });
});
