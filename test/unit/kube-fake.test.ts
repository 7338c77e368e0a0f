import { gunzipSync } from "node:zlib";
import {
  ApiException,
  AppsV1Api,
  BatchV1Api,
  CoordinationV1Api,
  CoreV1Api,
  KubeConfig,
  KubernetesObjectApi,
  Watch,
  type V1Lease,
  type V1Pod,
} from "@kubernetes/client-node";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  crashLoopingPod,
  deployment,
  event,
  helmReleaseSecret,
  imagePullBackOffPod,
  job,
  lease,
  node,
  oomKilledPod,
  pod,
  replicaSet,
  startKubeFake,
  statefulSet,
  daemonSet,
  type KubeFake,
  type KubeStatus,
} from "../fakes/kube.js";

/**
 * The Kubernetes API fake's own tests, driven through the real
 * @kubernetes/client-node 1.4 (KubeConfig from the fake's kubeconfig, typed
 * API clients, Watch), so the fake is proven to speak what the client speaks.
 */

let fake: KubeFake;
let kc: KubeConfig;
let core: CoreV1Api;

beforeEach(async () => {
  fake = await startKubeFake();
  kc = new KubeConfig();
  kc.loadFromFile(fake.kubeconfigPath());
  core = kc.makeApiClient(CoreV1Api);
});
afterEach(async () => {
  await fake.close();
});

/**
 * The ApiException a call rejects with, and its body (a JSON string) parsed as
 * the Status the server sent. client-node drops the body of a 401 (undefined).
 */
async function apiError(p: Promise<unknown>): Promise<{ code: number; status: KubeStatus | undefined; headers: Record<string, string> }> {
  try {
    await p;
  } catch (e) {
    if (!(e instanceof ApiException)) throw e;
    const err = e as ApiException<unknown>;
    return { code: err.code, status: err.body === undefined ? undefined : (JSON.parse(String(err.body)) as KubeStatus), headers: err.headers };
  }
  throw new Error("expected the call to fail");
}

/** Polls `cond` (watch events arrive asynchronously); fails after 5 s. */
async function until(cond: () => boolean, what = "condition"): Promise<void> {
  for (let i = 0; i < 500; i++) {
    if (cond()) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`timed out waiting for ${what}`);
}

interface WatchedObject {
  kind?: string;
  metadata: { name?: string; resourceVersion?: string; creationTimestamp?: unknown; annotations?: Record<string, string> };
  code?: number;
  reason?: string;
  message?: string;
  status?: unknown;
}

/** Runs client-node's Watch and records what it delivers. */
async function watch(path: string, query: Record<string, string | number | boolean | undefined>) {
  const events: { type: string; object: WatchedObject }[] = [];
  let ended: unknown = "open";
  const controller = await new Watch(kc).watch(
    path,
    query,
    (type, object: WatchedObject) => events.push({ type, object }),
    (err: unknown) => {
      ended = err ?? null;
    },
  );
  return {
    events,
    get ended(): unknown {
      return ended;
    },
    types: () => events.map((e) => `${e.type} ${e.object.metadata.name ?? ""}`.trim()),
    abort: () => controller.abort(),
  };
}

describe("kube fake: kubeconfig and auth", () => {
  it("writes a kubeconfig client-node loads (context fake, token user, plain http allowed)", () => {
    expect(kc.getCurrentContext()).toBe("fake");
    expect(kc.getCurrentCluster()?.server).toBe(fake.url);
    expect(kc.getCurrentCluster()?.skipTLSVerify).toBe(true);
    expect(kc.getCurrentUser()?.token).toBe(fake.token);
    const fromString = new KubeConfig();
    fromString.loadFromString(fake.kubeconfigYaml({ namespace: "apps" }));
    expect(fromString.getContextObject("fake")?.namespace).toBe("apps");
  });

  it("answers 401 Unauthorized to a wrong token", async () => {
    const other = new KubeConfig();
    other.loadFromString(fake.kubeconfigYaml().replace(String(fake.token), "wrong-token"));
    const e = await apiError(other.makeApiClient(CoreV1Api).listNamespacedPod({ namespace: "default" }));
    expect(e.code).toBe(401);
    expect(fake.requests[0]?.status).toBe(401);
  });
});

describe("kube fake: reading objects", () => {
  it("lists pods per namespace and across namespaces, sorted, with the list's resourceVersion; timestamps arrive as Dates", async () => {
    fake.add(pod({ name: "b", namespace: "default", node: "n1" }));
    fake.add(pod({ name: "a", namespace: "default", node: "n1" }));
    fake.add(pod({ name: "c", namespace: "other", node: "n2" }));
    const list = await core.listNamespacedPod({ namespace: "default" });
    expect(list.kind).toBe("PodList");
    expect(list.items.map((p) => p.metadata?.name)).toEqual(["a", "b"]);
    expect(list.metadata?.resourceVersion).toBe(fake.resourceVersion);
    // client-node deserialises list/get timestamps into Date objects (watches give strings).
    expect(list.items[0]?.metadata?.creationTimestamp).toBeInstanceOf(Date);
    const all = await core.listPodForAllNamespaces();
    expect(all.items.map((p) => `${p.metadata?.namespace}/${p.metadata?.name}`)).toEqual(["default/a", "default/b", "other/c"]);
  });

  it("refuses to add an object twice (a test bug) with the server's AlreadyExists", () => {
    fake.add(pod({ name: "p", node: "n1" }));
    expect(() => fake.add(pod({ name: "p", node: "n1" }))).toThrow('pods "p" already exists');
    expect(() => fake.update(pod({ name: "q", node: "n1" }))).toThrow('pods "q" not found');
    expect(fake.apply(pod({ name: "q", node: "n1", labels: { a: "1" } })).metadata.labels).toEqual({ a: "1" });
    expect(fake.apply(pod({ name: "q", node: "n1", labels: { a: "2" } })).metadata.labels).toEqual({ a: "2" });
    expect(fake.list("pods").map((p) => p.metadata.name)).toEqual(["p", "q"]);
  });

  it("stamps uid, creationTimestamp and a fresh resourceVersion on every write", async () => {
    const before = Number(fake.resourceVersion);
    const stored = fake.add(pod({ name: "p", node: "n1" }));
    expect(Number(stored.metadata.resourceVersion)).toBe(before + 1);
    const updated = fake.modify("Pod", "default", "p", (p) => {
      p.metadata.labels = { v: "2" };
    });
    expect(Number(updated.metadata.resourceVersion)).toBe(before + 2);
    expect(updated.metadata.uid).toBe(stored.metadata.uid);
    const read = await core.readNamespacedPod({ name: "p", namespace: "default" });
    expect(read.metadata?.resourceVersion).toBe(String(before + 2));
    expect(read.metadata?.labels).toEqual({ v: "2" });
    // A write that changes nothing keeps the resourceVersion, as on the real server.
    fake.update(fake.get("Pod", "default", "p")!);
    expect(fake.resourceVersion).toBe(String(before + 2));
  });

  it("answers a missing object with a NotFound Status (ApiException 404)", async () => {
    const e = await apiError(core.readNamespacedPod({ name: "ghost", namespace: "default" }));
    expect(e.code).toBe(404);
    expect(e.status).toMatchObject({ kind: "Status", apiVersion: "v1", status: "Failure", reason: "NotFound", code: 404, message: 'pods "ghost" not found' });
    const e2 = await apiError(kc.makeApiClient(AppsV1Api).readNamespacedDeployment({ name: "ghost", namespace: "default" }));
    expect(e2.status?.message).toBe('deployments.apps "ghost" not found');
  });

  it("filters by label selector: equality, !=, in, notin, exists, !exists", async () => {
    fake.add(pod({ name: "web-1", node: "n1", labels: { app: "web", tier: "front" } }));
    fake.add(pod({ name: "web-2", node: "n1", labels: { app: "web", tier: "back" } }));
    fake.add(pod({ name: "db-1", node: "n1", labels: { app: "db" } }));
    const names = async (labelSelector: string) => (await core.listNamespacedPod({ namespace: "default", labelSelector })).items.map((p) => p.metadata?.name);
    expect(await names("app=web")).toEqual(["web-1", "web-2"]);
    expect(await names("app==web,tier=back")).toEqual(["web-2"]);
    expect(await names("tier!=front")).toEqual(["db-1", "web-2"]);
    expect(await names("app in (db, web),tier")).toEqual(["web-1", "web-2"]);
    expect(await names("tier notin (front)")).toEqual(["db-1", "web-2"]);
    expect(await names("!tier")).toEqual(["db-1"]);
    const e = await apiError(core.listNamespacedPod({ namespace: "default", labelSelector: "app in web" }));
    expect(e.code).toBe(400);
    expect(e.status?.message).toMatch(/^unable to parse requirement/);
  });

  it("filters pods by spec.nodeName, status.phase and metadata.name; an unsupported field is 400", async () => {
    fake.add(pod({ name: "on-a", namespace: "x", node: "node-a" }));
    fake.add(pod({ name: "on-b", namespace: "y", node: "node-b" }));
    fake.add(pod({ name: "pending", namespace: "x" }));
    const names = async (fieldSelector: string) => (await core.listPodForAllNamespaces({ fieldSelector })).items.map((p) => p.metadata?.name);
    expect(await names("spec.nodeName=node-a")).toEqual(["on-a"]);
    expect(await names("spec.nodeName=")).toEqual(["pending"]);
    expect(await names("status.phase=Pending")).toEqual(["pending"]);
    expect(await names("status.phase!=Pending,metadata.name=on-b")).toEqual(["on-b"]);
    const e = await apiError(core.listPodForAllNamespaces({ fieldSelector: "spec.foo=bar" }));
    expect(e.code).toBe(400);
    expect(e.status?.message).toBe("field label not supported: spec.foo");
  });

  it("lists events about one object by involvedObject field selectors", async () => {
    const web = fake.add(pod({ name: "web-1", node: "n1" }));
    const other = fake.add(pod({ name: "web-2", node: "n1" }));
    fake.add(event({ involvedObject: web, reason: "BackOff", message: "Back-off restarting failed container app in pod web-1_default", count: 12, fieldPath: "spec.containers{app}" }));
    fake.add(event({ involvedObject: web, reason: "Pulled", message: 'Container image "x" already present on machine' }));
    fake.add(event({ involvedObject: other, reason: "Unhealthy", message: "Readiness probe failed" }));
    const list = await core.listNamespacedEvent({
      namespace: "default",
      fieldSelector: `involvedObject.name=web-1,involvedObject.kind=Pod,involvedObject.namespace=default,involvedObject.uid=${web.metadata.uid}`,
    });
    expect(list.items.map((e) => e.reason).sort()).toEqual(["BackOff", "Pulled"]);
    const backOff = list.items.find((e) => e.reason === "BackOff")!;
    expect(backOff).toMatchObject({ type: "Warning", count: 12, source: { component: "kubelet", host: "n1" }, involvedObject: { fieldPath: "spec.containers{app}" } });
    expect(backOff.lastTimestamp).toBeInstanceOf(Date);
    const warnings = await core.listEventForAllNamespaces({ fieldSelector: "type=Warning" });
    expect(warnings.items.map((e) => e.reason).sort()).toEqual(["BackOff", "Unhealthy"]);
  });

  it("serves the owner chain Pod → ReplicaSet → Deployment, and StatefulSets, DaemonSets, Jobs", async () => {
    const d = fake.add(deployment({ name: "web", namespace: "shop", replicas: 3, readyReplicas: 1 }));
    const rs = fake.add(replicaSet({ name: "web-5d8f7c9b4", namespace: "shop", owner: d, replicas: 3, readyReplicas: 1 }));
    fake.add(pod({ name: "web-5d8f7c9b4-abcde", namespace: "shop", node: "n1", owner: rs }));
    fake.add(statefulSet({ name: "db", namespace: "shop", replicas: 2, readyReplicas: 2 }));
    fake.add(daemonSet({ name: "agent", namespace: "kube-system", desired: 3, ready: 2 }));
    fake.add(job({ name: "migrate", namespace: "shop", outcome: "failed" }));

    const apps = kc.makeApiClient(AppsV1Api);
    const p = await core.readNamespacedPod({ name: "web-5d8f7c9b4-abcde", namespace: "shop" });
    const owner = p.metadata?.ownerReferences?.[0];
    expect(owner).toMatchObject({ kind: "ReplicaSet", name: "web-5d8f7c9b4", uid: rs.metadata.uid, controller: true });
    const readRs = await apps.readNamespacedReplicaSet({ name: owner!.name, namespace: "shop" });
    expect(readRs.metadata?.ownerReferences?.[0]).toMatchObject({ kind: "Deployment", name: "web", uid: d.metadata.uid });
    const readD = await apps.readNamespacedDeployment({ name: "web", namespace: "shop" });
    expect(readD.status).toMatchObject({ replicas: 3, readyReplicas: 1, unavailableReplicas: 2 });
    expect(readD.status?.conditions?.find((c) => c.type === "Available")?.status).toBe("False");
    expect((await apps.listNamespacedReplicaSet({ namespace: "shop" })).items).toHaveLength(1);
    expect((await apps.listNamespacedStatefulSet({ namespace: "shop" })).items[0]?.status?.readyReplicas).toBe(2);
    expect((await apps.listDaemonSetForAllNamespaces()).items[0]?.status).toMatchObject({ desiredNumberScheduled: 3, numberReady: 2, numberUnavailable: 1 });
    const j = await kc.makeApiClient(BatchV1Api).readNamespacedJob({ name: "migrate", namespace: "shop" });
    expect(j.status?.conditions?.[0]).toMatchObject({ type: "Failed", status: "True", reason: "BackoffLimitExceeded" });
  });

  it("serves nodes with their pressure conditions", async () => {
    fake.add(node({ name: "n1" }));
    fake.add(node({ name: "n2", ready: false, memoryPressure: true }));
    fake.add(node({ name: "n3", ready: "Unknown", unschedulable: true }));
    const list = await core.listNode();
    expect(list.items.map((n) => n.metadata?.name)).toEqual(["n1", "n2", "n3"]);
    const cond = (i: number, type: string) => list.items[i]?.status?.conditions?.find((c) => c.type === type);
    expect(cond(0, "Ready")?.status).toBe("True");
    expect(cond(1, "MemoryPressure")).toMatchObject({ status: "True", reason: "KubeletHasInsufficientMemory" });
    expect(cond(1, "DiskPressure")?.status).toBe("False");
    expect(cond(1, "PIDPressure")?.status).toBe("False");
    expect(cond(2, "Ready")).toMatchObject({ status: "Unknown", reason: "NodeStatusUnknown" });
    expect(list.items[0]?.status?.allocatable?.["cpu"]).toBe("3920m");
    expect((await core.listNode({ fieldSelector: "spec.unschedulable=true" })).items.map((n) => n.metadata?.name)).toEqual(["n3"]);
  });

  it("pages with limit + continue over a consistent snapshot; the token expires after compaction", async () => {
    for (const n of ["p1", "p2", "p3", "p4", "p5"]) fake.add(pod({ name: n, node: "n1" }));
    const first = await core.listNamespacedPod({ namespace: "default", limit: 2 });
    expect(first.items.map((p) => p.metadata?.name)).toEqual(["p1", "p2"]);
    expect(first.metadata?.remainingItemCount).toBe(3);
    // Written between pages: not part of this list, which shows the state at its resourceVersion.
    fake.add(pod({ name: "p0", node: "n1" }));
    fake.remove("Pod", "default", "p3");
    const second = await core.listNamespacedPod({ namespace: "default", limit: 2, _continue: first.metadata!._continue! });
    expect(second.items.map((p) => p.metadata?.name)).toEqual(["p3", "p4"]);
    expect(second.metadata?.resourceVersion).toBe(first.metadata?.resourceVersion);
    const third = await core.listNamespacedPod({ namespace: "default", limit: 2, _continue: second.metadata!._continue! });
    expect(third.items.map((p) => p.metadata?.name)).toEqual(["p5"]);
    expect(third.metadata?._continue).toBeUndefined();

    fake.compact();
    const e = await apiError(core.listNamespacedPod({ namespace: "default", limit: 2, _continue: first.metadata!._continue! }));
    expect(e.code).toBe(410);
    expect(e.status?.reason).toBe("Expired");
  });

  it("answers discovery, so KubernetesObjectApi can read by apiVersion/kind", async () => {
    fake.add(pod({ name: "p", node: "n1" }));
    fake.add(lease({ name: "kubecano", namespace: "kubecano", holderIdentity: "a" }));
    const objects = KubernetesObjectApi.makeApiClient(kc);
    const p = await objects.read({ apiVersion: "v1", kind: "Pod", metadata: { name: "p", namespace: "default" } });
    expect(p.metadata?.name).toBe("p");
    const l = await objects.read<V1Lease>({ apiVersion: "coordination.k8s.io/v1", kind: "Lease", metadata: { name: "kubecano", namespace: "kubecano" } });
    expect(l.spec?.holderIdentity).toBe("a");
  });
});

describe("kube fake: builders", () => {
  it("crashLoopingPod and oomKilledPod carry the status a real crash loop shows", async () => {
    fake.add(crashLoopingPod({ name: "crash", node: "n1", restartCount: 7 }));
    fake.add(oomKilledPod({ name: "oom", node: "n1", containers: [{ name: "app", resources: { requests: { memory: "64Mi" }, limits: { memory: "128Mi" } } }] }));
    fake.add(oomKilledPod({ name: "oom-running", node: "n1", backOff: false }));
    fake.add(imagePullBackOffPod({ name: "pull", node: "n1", containers: [{ name: "app", image: "registry.example.com/missing:9" }] }));
    const get = (name: string): Promise<V1Pod> => core.readNamespacedPod({ name, namespace: "default" });

    const crash = (await get("crash")).status?.containerStatuses?.[0];
    expect(crash).toMatchObject({ ready: false, restartCount: 7, state: { waiting: { reason: "CrashLoopBackOff" } }, lastState: { terminated: { reason: "Error", exitCode: 1 } } });
    expect(crash?.state?.waiting?.message).toMatch(/^back-off 5m0s restarting failed container=app pod=crash_default\(/);

    const oom = await get("oom");
    expect(oom.status?.containerStatuses?.[0]).toMatchObject({ state: { waiting: { reason: "CrashLoopBackOff" } }, lastState: { terminated: { reason: "OOMKilled", exitCode: 137 } } });
    expect(oom.spec?.containers[0]?.resources?.limits?.["memory"]).toBe("128Mi");
    expect(oom.status?.qosClass).toBe("Burstable");
    expect((await get("oom-running")).status?.containerStatuses?.[0]).toMatchObject({ ready: true, state: { running: {} }, lastState: { terminated: { reason: "OOMKilled" } } });
    expect((await get("pull")).status?.containerStatuses?.[0]?.state?.waiting).toEqual({ reason: "ImagePullBackOff", message: 'Back-off pulling image "registry.example.com/missing:9"' });
  });

  it("helmReleaseSecret encodes the release as Helm 3 stores it", async () => {
    fake.add(helmReleaseSecret({ release: "shop", namespace: "shop", revision: 4, status: "failed", chart: "shop", chartVersion: "2.1.0" }));
    const list = await core.listNamespacedSecret({ namespace: "shop", labelSelector: "owner=helm,name=shop", fieldSelector: "type=helm.sh/release.v1" });
    const s = list.items[0];
    expect(s?.metadata?.name).toBe("sh.helm.release.v1.shop.v4");
    expect(s?.metadata?.labels).toMatchObject({ owner: "helm", name: "shop", status: "failed", version: "4" });
    // client-node hands Secret data over still base64-encoded (the Secret encoding); inside is Helm's base64 of gzip.
    const helmEncoded = Buffer.from(s!.data!["release"]!, "base64").toString("utf8");
    const release = JSON.parse(gunzipSync(Buffer.from(helmEncoded, "base64")).toString("utf8")) as { name: string; version: number; info: { status: string }; chart: { metadata: { version: string } } };
    expect(release).toMatchObject({ name: "shop", version: 4, info: { status: "failed" }, chart: { metadata: { version: "2.1.0" } } });
  });
});

describe("kube fake: pod logs", () => {
  it("serves current and previous logs, tailLines, limitBytes and timestamps as text/plain", async () => {
    fake.add(oomKilledPod({ name: "api", node: "n1", backOff: false }));
    fake.setLog({ pod: "api", container: "app" }, "starting\nlistening on :8080\nready\n");
    fake.setLog({ pod: "api", container: "app", previous: true }, "starting\nallocating cache\nkilled\n");
    expect(await core.readNamespacedPodLog({ name: "api", namespace: "default" })).toBe("starting\nlistening on :8080\nready\n");
    expect(await core.readNamespacedPodLog({ name: "api", namespace: "default", previous: true })).toBe("starting\nallocating cache\nkilled\n");
    expect(await core.readNamespacedPodLog({ name: "api", namespace: "default", tailLines: 2 })).toBe("listening on :8080\nready\n");
    expect(await core.readNamespacedPodLog({ name: "api", namespace: "default", limitBytes: 5 })).toBe("start");
    const stamped = await core.readNamespacedPodLog({ name: "api", namespace: "default", timestamps: true, tailLines: 1 });
    expect(stamped).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z ready\n$/);
    expect(fake.requests.at(-1)).toMatchObject({ verb: "get", resource: "pods", subresource: "log", query: { tailLines: "1", timestamps: "true" } });
  });

  it("filters by sinceSeconds on each line's own time", async () => {
    fake.add(pod({ name: "p", node: "n1" }));
    const now = Date.now();
    fake.setLog({ pod: "p", container: "app" }, [
      { time: new Date(now - 3_600_000), line: "an hour ago" },
      { time: new Date(now - 1_000), line: "just now" },
    ]);
    expect(await core.readNamespacedPodLog({ name: "p", namespace: "default", sinceSeconds: 600 })).toBe("just now\n");
  });

  it("answers a crash-looping container's current logs from its last terminated instance, as the kubelet does", async () => {
    fake.add(crashLoopingPod({ name: "crash", node: "n1" }));
    fake.setLog({ pod: "crash", container: "app", previous: true }, "panic: boom\n");
    expect(await core.readNamespacedPodLog({ name: "crash", namespace: "default" })).toBe("panic: boom\n");
  });

  it("answers the real server's 400s and 404", async () => {
    fake.add(pod({ name: "multi", node: "n1", containers: [{ name: "a" }, { name: "b" }] }));
    fake.add(pod({ name: "fresh", node: "n1" }));
    fake.add(imagePullBackOffPod({ name: "pull", node: "n1" }));
    const cases: [Promise<unknown>, number, string][] = [
      [core.readNamespacedPodLog({ name: "multi", namespace: "default" }), 400, "a container name must be specified for pod multi, choose one of: [a b]"],
      [core.readNamespacedPodLog({ name: "fresh", namespace: "default", previous: true }), 400, 'previous terminated container "app" in pod "fresh" not found'],
      [core.readNamespacedPodLog({ name: "multi", namespace: "default", container: "c" }), 400, "container c is not valid for pod multi"],
      [core.readNamespacedPodLog({ name: "pull", namespace: "default" }), 400, 'container "app" in pod "pull" is waiting to start: trying and failing to pull image'],
      [core.readNamespacedPodLog({ name: "ghost", namespace: "default" }), 404, 'pods "ghost" not found'],
    ];
    for (const [call, code, message] of cases) {
      const e = await apiError(call);
      expect(e.code).toBe(code);
      expect(e.status?.message).toBe(message);
      expect(e.status?.reason).toBe(code === 400 ? "BadRequest" : "NotFound");
    }
    expect(await core.readNamespacedPodLog({ name: "multi", namespace: "default", container: "b" })).toBe("");
  });
});

describe("kube fake: leases", () => {
  it("creates, updates with optimistic concurrency (409 on a stale resourceVersion) and deletes", async () => {
    const coord = kc.makeApiClient(CoordinationV1Api);
    const body: V1Lease = { metadata: { name: "kubecano-leader", namespace: "kubecano" }, spec: { holderIdentity: "pod-a", leaseDurationSeconds: 15, acquireTime: new Date(), renewTime: new Date(), leaseTransitions: 0 } };
    const created = await coord.createNamespacedLease({ namespace: "kubecano", body });
    expect(created.metadata?.uid).toBeTruthy();
    expect(fake.requests.at(-1)?.status).toBe(201);
    const dup = await apiError(coord.createNamespacedLease({ namespace: "kubecano", body }));
    expect(dup.code).toBe(409);
    expect(dup.status).toMatchObject({ reason: "AlreadyExists", message: 'leases.coordination.k8s.io "kubecano-leader" already exists' });

    // pod-a renews with the resourceVersion it read.
    const renewed = await coord.replaceNamespacedLease({
      name: "kubecano-leader",
      namespace: "kubecano",
      body: { ...created, spec: { ...created.spec, renewTime: new Date(Date.now() + 1000) } },
    });
    expect(Number(renewed.metadata?.resourceVersion)).toBeGreaterThan(Number(created.metadata?.resourceVersion));

    // pod-b tries to take over with the stale copy: it lost the race.
    const stale = await apiError(
      coord.replaceNamespacedLease({ name: "kubecano-leader", namespace: "kubecano", body: { ...created, spec: { ...created.spec, holderIdentity: "pod-b" } } }),
    );
    expect(stale.code).toBe(409);
    expect(stale.status).toMatchObject({
      reason: "Conflict",
      message: 'Operation cannot be fulfilled on leases.coordination.k8s.io "kubecano-leader": the object has been modified; please apply your changes to the latest version and try again',
      details: { name: "kubecano-leader", group: "coordination.k8s.io", kind: "leases" },
    });
    expect(fake.get("Lease", "kubecano", "kubecano-leader")?.["spec"]).toMatchObject({ holderIdentity: "pod-a" });

    // Leases demand a resourceVersion on update.
    const noRv = await apiError(
      coord.replaceNamespacedLease({ name: "kubecano-leader", namespace: "kubecano", body: { metadata: { name: "kubecano-leader" }, spec: { holderIdentity: "pod-b" } } }),
    );
    expect(noRv.code).toBe(422);

    const deleted = await coord.deleteNamespacedLease({ name: "kubecano-leader", namespace: "kubecano" });
    expect(deleted).toMatchObject({ status: "Success", details: { name: "kubecano-leader", kind: "leases" } });
    expect((await apiError(coord.readNamespacedLease({ name: "kubecano-leader", namespace: "kubecano" }))).code).toBe(404);

    // A PUT may create a Lease (AllowCreateOnUpdate), as the real server allows.
    const viaPut = await coord.replaceNamespacedLease({ name: "other", namespace: "kubecano", body: { metadata: { name: "other" }, spec: { holderIdentity: "pod-c" } } });
    expect(viaPut.spec?.holderIdentity).toBe("pod-c");
    expect(fake.requests.at(-1)?.status).toBe(201);
  });
});

describe("kube fake: faults and the request log", () => {
  it("delays matching requests: the request is held unanswered, then answered", async () => {
    fake.add(pod({ name: "p", node: "n1" }));
    const d = fake.delay(300, { resource: "pods", verb: "list" });
    const call = core.listNamespacedPod({ namespace: "default" });
    await until(() => fake.requests.length === 1, "the request");
    expect(fake.requests[0]?.status).toBeUndefined();
    expect((await call).items).toHaveLength(1);
    expect(fake.requests[0]?.status).toBe(200);
    expect(d.hits).toBe(1);
    // Only matching requests are delayed.
    await core.readNamespacedPod({ name: "p", namespace: "default" });
    expect(d.hits).toBe(1);
  });

  it("fails the next N matching requests with a Status, then answers normally", async () => {
    fake.add(pod({ name: "p", node: "n1" }));
    const f = fake.failNext(503, "/api/v1/namespaces/default/pods", 2);
    expect((await apiError(core.readNamespacedPod({ name: "p", namespace: "default" }))).status).toMatchObject({ code: 503, reason: "ServiceUnavailable" });
    expect((await apiError(core.listNamespacedPod({ namespace: "default" }))).code).toBe(503);
    expect((await core.readNamespacedPod({ name: "p", namespace: "default" })).metadata?.name).toBe("p");
    expect(f.hits).toBe(2);
    fake.failNext(429, { verb: "get" }, 1, { retryAfterSeconds: 7 });
    const limited = await apiError(core.readNamespacedPod({ name: "p", namespace: "default" }));
    expect(limited.code).toBe(429);
    expect(limited.headers["retry-after"]).toBe("7");
    expect(fake.count((r) => r.fault === "fail")).toBe(3);
  });

  it("hangs matching requests until released", async () => {
    const h = fake.hang({ resource: "Pod" });
    const call = core.listNamespacedPod({ namespace: "default" });
    await until(() => h.waiting === 1, "the held request");
    expect(fake.requests[0]?.status).toBeUndefined();
    h.release();
    expect((await call).items).toEqual([]);
    expect(h.waiting).toBe(0);
  });

  it("drops connections, and denies as RBAC does", async () => {
    fake.dropNext({ verb: "list" });
    await expect(core.listNamespacedPod({ namespace: "default" })).rejects.toThrow();
    expect(fake.requests[0]).toMatchObject({ fault: "drop", status: undefined });
    fake.forbid({ resource: "pods", subresource: "log" });
    fake.add(pod({ name: "p", node: "n1" }));
    const e = await apiError(core.readNamespacedPodLog({ name: "p", namespace: "default" }));
    expect(e.code).toBe(403);
    expect(e.status?.message).toBe('pods "p" is forbidden: User "system:serviceaccount:kubecano:kubecano" cannot get resource "pods/log" in API group "" in the namespace "default"');
    expect(await core.readNamespacedPod({ name: "p", namespace: "default" })).toBeTruthy();
  });

  it("records every call so a workflow's API calls can be counted", async () => {
    fake.add(crashLoopingPod({ name: "crash", node: "n1" }));
    await core.readNamespacedPod({ name: "crash", namespace: "default" });
    await core.readNamespacedPodLog({ name: "crash", namespace: "default", previous: true, tailLines: 100 });
    await core.listNamespacedEvent({ namespace: "default", fieldSelector: "involvedObject.name=crash" });
    await core.readNode({ name: "n1" }).catch(() => undefined);
    expect(fake.requests.map((r) => `${r.method} ${r.verb} ${r.resource}${r.subresource ? `/${r.subresource}` : ""} ${r.status}`)).toEqual([
      "GET get pods 200",
      "GET get pods/log 200",
      "GET list events 200",
      "GET get nodes 404",
    ]);
    expect(fake.count({ resource: "pods" })).toBe(2);
    expect(fake.count({ resource: "pods", subresource: null })).toBe(1);
    expect(fake.requests[2]?.query).toEqual({ fieldSelector: "involvedObject.name=crash" });
    fake.clearRequests();
    expect(fake.requests).toHaveLength(0);
  });
});

describe("kube fake: watches through client-node's Watch", () => {
  it("streams ADDED, MODIFIED and DELETED after the listed resourceVersion (timestamps as strings)", async () => {
    fake.add(pod({ name: "old", node: "n1" }));
    const list = await core.listNamespacedPod({ namespace: "default" });
    const w = await watch("/api/v1/namespaces/default/pods", { resourceVersion: list.metadata?.resourceVersion, allowWatchBookmarks: true });
    await fake.waitForWatches(1, { resource: "pods", verb: "watch" });
    fake.add(pod({ name: "new", node: "n1" }));
    fake.modify("Pod", "default", "new", (p) => {
      p.metadata.labels = { touched: "yes" };
    });
    fake.remove("Pod", "default", "old");
    const deletedAt = fake.resourceVersion;
    fake.add(pod({ name: "elsewhere", namespace: "other", node: "n1" }));
    await until(() => w.events.length >= 3, "three events");
    expect(w.types()).toEqual(["ADDED new", "MODIFIED new", "DELETED old"]);
    // Watch objects are parsed JSON: timestamps stay strings (lists give Dates).
    expect(typeof w.events[0]?.object.metadata.creationTimestamp).toBe("string");
    // A DELETED event carries the last state stamped with the deletion's resourceVersion.
    expect(w.events[2]?.object.metadata.resourceVersion).toBe(deletedAt);
    w.abort();
  });

  it("replays history after an older resourceVersion, and starts with synthetic ADDED events without one", async () => {
    const rv = fake.resourceVersion;
    fake.add(pod({ name: "a", node: "n1" }));
    fake.add(pod({ name: "b", node: "n1" }));
    fake.remove("Pod", "default", "a");
    const replay = await watch("/api/v1/namespaces/default/pods", { resourceVersion: rv });
    await until(() => replay.events.length >= 3, "replayed events");
    expect(replay.types()).toEqual(["ADDED a", "ADDED b", "DELETED a"]);
    const fresh = await watch("/api/v1/pods", {});
    await until(() => fresh.events.length >= 1, "initial state");
    expect(fresh.types()).toEqual(["ADDED b"]);
    replay.abort();
    fresh.abort();
  });

  it("applies selectors to watches: leaving the selector is DELETED, entering it ADDED", async () => {
    fake.add(pod({ name: "p", node: "n1", labels: { app: "web" } }));
    const w = await watch("/api/v1/namespaces/default/pods", { resourceVersion: fake.resourceVersion, labelSelector: "app=web" });
    await fake.waitForWatches();
    fake.modify("Pod", "default", "p", (o) => {
      o.metadata.labels = { app: "db" };
    });
    fake.modify("Pod", "default", "p", (o) => {
      o.metadata.labels = { app: "web" };
    });
    await until(() => w.events.length >= 2, "two events");
    expect(w.types()).toEqual(["DELETED p", "ADDED p"]);
    expect(fake.watches[0]).toMatchObject({ resource: "pods", namespace: "default", labelSelector: "app=web" });
    w.abort();
  });

  it("watches events by field selector; a repeated event arrives as MODIFIED with a higher count", async () => {
    const web = fake.add(pod({ name: "web", node: "n1" }));
    const other = fake.add(pod({ name: "other", node: "n1" }));
    const w = await watch("/api/v1/events", { resourceVersion: fake.resourceVersion, fieldSelector: "involvedObject.name=web,type=Warning" });
    await fake.waitForWatches(1, { resource: "events" });
    const e = fake.add(event({ name: "web.1", involvedObject: web, reason: "BackOff", message: "Back-off restarting failed container" }));
    fake.add(event({ involvedObject: other, reason: "BackOff", message: "Back-off restarting failed container" }));
    fake.add(event({ involvedObject: web, reason: "Pulled", message: "Successfully pulled image" }));
    fake.modify("Event", "default", "web.1", (o) => {
      o["count"] = 2;
      o["lastTimestamp"] = new Date(Date.parse(String(e["lastTimestamp"])) + 10_000).toISOString();
    });
    await until(() => w.events.length >= 2, "two events");
    expect(w.types()).toEqual(["ADDED web.1", "MODIFIED web.1"]);
    expect((w.events[1]?.object as { count?: number }).count).toBe(2);
    w.abort();
  });

  it("answers a compacted resourceVersion with an ERROR event carrying a 410 Expired Status", async () => {
    const rv = fake.resourceVersion;
    fake.add(pod({ name: "a", node: "n1" }));
    fake.compact();
    const w = await watch("/api/v1/namespaces/default/pods", { resourceVersion: rv });
    await until(() => w.ended !== "open", "the stream to end");
    expect(w.events).toHaveLength(1);
    expect(w.events[0]?.type).toBe("ERROR");
    expect(w.events[0]?.object).toMatchObject({ kind: "Status", code: 410, reason: "Expired" });
    expect(w.events[0]?.object.message).toMatch(/^too old resource version: \d+ \(\d+\)$/);
    // From the compaction point on, watching works again.
    const ok = await watch("/api/v1/namespaces/default/pods", { resourceVersion: fake.resourceVersion });
    await fake.waitForWatches();
    fake.add(pod({ name: "b", node: "n1" }));
    await until(() => ok.events.length === 1, "the event after compaction");
    expect(ok.types()).toEqual(["ADDED b"]);
    ok.abort();
  });

  it("sends bookmarks only to watches that allow them", async () => {
    const withB = await watch("/apis/batch/v1/namespaces/default/jobs", { resourceVersion: fake.resourceVersion, allowWatchBookmarks: true });
    const without = await watch("/apis/batch/v1/namespaces/default/jobs", { resourceVersion: fake.resourceVersion });
    await fake.waitForWatches(2);
    fake.add(job({ name: "j" }));
    expect(fake.bookmark()).toBe(1);
    await until(() => withB.events.length >= 2, "the bookmark");
    expect(withB.events.map((e) => e.type)).toEqual(["ADDED", "BOOKMARK"]);
    expect(withB.events[1]?.object).toMatchObject({ kind: "Job", apiVersion: "batch/v1", metadata: { resourceVersion: fake.resourceVersion } });
    await until(() => without.events.length >= 1, "the job");
    expect(without.events.map((e) => e.type)).toEqual(["ADDED"]);
    withB.abort();
    without.abort();
  });

  it("ends watches on timeoutSeconds and on dropWatches(), and the client sees the end", async () => {
    const timed = await watch("/api/v1/nodes", { resourceVersion: fake.resourceVersion, timeoutSeconds: 1 });
    await until(() => timed.ended !== "open", "the server-side timeout");
    expect(timed.ended).toBeNull();

    // Abruptly (socket destroyed): the client's done callback gets an error.
    const events = await watch("/api/v1/events", { resourceVersion: fake.resourceVersion });
    const leases = await watch("/apis/coordination.k8s.io/v1/namespaces/kubecano/leases", { resourceVersion: fake.resourceVersion });
    await fake.waitForWatches(2);
    expect(fake.dropWatches()).toBe(2);
    await until(() => events.ended !== "open" && leases.ended !== "open", "both watches to end");
    expect(events.ended).toBeInstanceOf(Error);
    expect(leases.ended).toBeInstanceOf(Error);
    expect(fake.watches).toHaveLength(0);

    // Gracefully (stream ended, as on a server-side timeout): done(null).
    const graceful = await watch("/api/v1/secrets", { resourceVersion: fake.resourceVersion });
    await fake.waitForWatches();
    expect(fake.dropWatches({ graceful: true })).toBe(1);
    await until(() => graceful.ended !== "open", "the graceful end");
    expect(graceful.ended).toBeNull();
    expect(fake.count({ verb: "watch" })).toBe(4);
  });

  it("expireWatches() sends open watches a 410 ERROR", async () => {
    const w = await watch("/apis/apps/v1/deployments", { resourceVersion: fake.resourceVersion });
    await fake.waitForWatches();
    expect(fake.expireWatches()).toBe(1);
    await until(() => w.ended !== "open", "the end");
    expect(w.events.map((e) => [e.type, e.object.code])).toEqual([["ERROR", 410]]);
  });
});
