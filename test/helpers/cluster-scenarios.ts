import {
  crashLoopingPod,
  cronJob,
  deployment,
  event,
  job,
  node,
  oomKilledPod,
  pod,
  replicaSet,
  type KubeFake,
  type KubeObject,
} from "../fakes/kube.js";

/**
 * Realistic cluster states for enrichment tests, golden files and the
 * enrichment benchmark, built on the Kubernetes API fake. Every timestamp is
 * relative to `now`, so a fixed clock gives fixed renderings. Each scenario
 * comes with the Alertmanager webhook body that is about it.
 */

const ago = (now: Date, ms: number): Date => new Date(now.getTime() - ms);
const S = 1000;
const M = 60 * S;
const H = 60 * M;

/** An Alertmanager webhook body with one alert (what the fixtures hold under `.body`). */
export function webhookBody(labels: Record<string, string>, annotations: Record<string, string>, opts: { startsAt: Date; fingerprint?: string; status?: "firing" | "resolved" }): Record<string, unknown> {
  const status = opts.status ?? "firing";
  return {
    receiver: "kubecano",
    status,
    alerts: [
      {
        status,
        labels,
        annotations,
        startsAt: opts.startsAt.toISOString(),
        endsAt: "0001-01-01T00:00:00Z",
        generatorURL: "",
        ...(opts.fingerprint !== undefined ? { fingerprint: opts.fingerprint } : {}),
      },
    ],
    groupLabels: { alertname: labels["alertname"] ?? "" },
    commonLabels: labels,
    commonAnnotations: annotations,
    externalURL: "http://alertmanager.example:9093",
    version: "4",
    groupKey: `{}:{alertname="${labels["alertname"] ?? ""}"}`,
    truncatedAlerts: 0,
  };
}

// ───────────────────────────── crash loop with OOM ─────────────────────────────

export const CRASHLOOP = { namespace: "shop", pod: "api-7d9f", container: "api", sidecar: "log-shipper", deployment: "api", replicaSet: "api-7d9f8b6c5d", node: "node-1", memoryLimit: "256Mi", restarts: 7 } as const;

/** The last lines of a JVM that ran out of heap; `lines` in all (earlier ones are ordinary request logs). */
export function oomLog(lines = 200): string {
  const tail = [
    "2026-11-26T10:37:58.902Z WARN  [gc] GC overhead limit approaching: 97% of time in GC over the last 30s",
    "2026-11-26T10:37:59.417Z ERROR [http-nio-8080-exec-7] c.e.shop.api.CartController: request failed",
    "java.lang.OutOfMemoryError: Java heap space",
    "\tat java.base/java.util.Arrays.copyOf(Arrays.java:3512)",
    "\tat com.example.shop.api.CartService.loadAll(CartService.java:88)",
    "\tat com.example.shop.api.CartController.list(CartController.java:41)",
    "Terminating due to java.lang.OutOfMemoryError: Java heap space",
  ];
  const head = Array.from({ length: Math.max(0, lines - tail.length) }, (_, i) => {
    const t = new Date(Date.UTC(2026, 10, 26, 10, 30, 0) + i * 2300).toISOString();
    return `${t} INFO  [http-nio-8080-exec-${(i % 8) + 1}] c.e.shop.api.RequestLog: GET /api/cart/${1000 + i} 200 ${12 + (i % 37)}ms`;
  });
  return `${[...head, ...tail].join("\n")}\n`;
}

/**
 * shop/api-7d9f (Deployment api → ReplicaSet api-7d9f8b6c5d), container `api`
 * OOMKilled (exit 137) and now in CrashLoopBackOff after 7 restarts, memory
 * limit 256Mi; a healthy `log-shipper` sidecar; 200 lines of previous logs
 * ending in an OutOfMemoryError; 10 events.
 */
export function addCrashLoopOom(fake: KubeFake, now: Date, opts: { logLines?: number } = {}): void {
  const c = CRASHLOOP;
  const created = ago(now, 3 * H);
  const dep = fake.add(deployment({ name: c.deployment, namespace: c.namespace, replicas: 3, readyReplicas: 2, createdAt: created, labels: { app: "api" } }));
  const rs = fake.add(replicaSet({ name: c.replicaSet, namespace: c.namespace, replicas: 3, readyReplicas: 2, owner: dep, createdAt: created, labels: { app: "api" } }));
  const p = fake.add(
    oomKilledPod({
      name: c.pod,
      namespace: c.namespace,
      uid: "5b0c6f0e-2d7a-4c31-9a57-7e1f3c9d2a10",
      container: c.container,
      owner: rs,
      node: c.node,
      createdAt: ago(now, 25 * M),
      finishedAt: ago(now, 90 * S),
      restartCount: c.restarts,
      labels: { app: "api", "pod-template-hash": "7d9f8b6c5d" },
      containers: [
        { name: c.container, image: "registry.example.com/shop/api:2.14.1", resources: { requests: { cpu: "250m", memory: "128Mi" }, limits: { memory: c.memoryLimit } } },
        { name: c.sidecar, image: "registry.example.com/log-shipper:1.4.0", resources: { requests: { cpu: "10m", memory: "32Mi" }, limits: { memory: "64Mi" } } },
      ],
    }),
  );
  fake.setLog({ namespace: c.namespace, pod: c.pod, container: c.container, previous: true }, oomLog(opts.logLines ?? 200));
  fake.setLog({ namespace: c.namespace, pod: c.pod, container: c.container }, "2026-11-26T10:38:31.001Z INFO  Starting ShopApi v2.14.1 on api-7d9f\n");
  fake.setLog({ namespace: c.namespace, pod: c.pod, container: c.sidecar }, "shipping 120 lines\n");
  const ev = (reason: string, message: string, first: number, last: number, count: number, type?: "Normal" | "Warning"): KubeObject =>
    event({ involvedObject: p, reason, message, firstTimestamp: ago(now, first), lastTimestamp: ago(now, last), count, ...(type !== undefined ? { type } : {}), fieldPath: `spec.containers{${c.container}}` });
  // Named in order: events seen at the same second are listed in name order, which must not be random here.
  for (const [i, e] of [
    event({ involvedObject: p, reason: "Scheduled", message: `Successfully assigned ${c.namespace}/${c.pod} to ${c.node}`, firstTimestamp: ago(now, 25 * M), source: { component: "default-scheduler" } }),
    ev("Pulling", 'Pulling image "registry.example.com/shop/api:2.14.1"', 25 * M, 25 * M, 1),
    ev("Pulled", 'Successfully pulled image "registry.example.com/shop/api:2.14.1" in 2.1s (2.1s including waiting). Image size: 312 MB bytes.', 25 * M, 25 * M, 1),
    ev("Created", `Created container ${c.container}`, 25 * M, 2 * M, 8),
    ev("Started", `Started container ${c.container}`, 25 * M, 2 * M, 8),
    ev("Pulled", 'Container image "registry.example.com/shop/api:2.14.1" already present on machine', 20 * M, 2 * M, 7),
    ev("Unhealthy", "Readiness probe failed: Get \"http://10.244.1.17:8080/ready\": dial tcp 10.244.1.17:8080: connect: connection refused", 24 * M, 3 * M, 15),
    ev("Killing", `Container ${c.container} failed liveness probe, will be restarted`, 22 * M, 12 * M, 2),
    ev("BackOff", `Back-off restarting failed container ${c.container} in pod ${c.pod}_${c.namespace}(${p.metadata.uid ?? ""})`, 18 * M, 30 * S, 42),
    event({ involvedObject: p, reason: "Started", message: `Started container ${c.sidecar}`, firstTimestamp: ago(now, 25 * M), fieldPath: `spec.containers{${c.sidecar}}` }),
  ].entries()) {
    fake.add({ ...e, metadata: { ...e.metadata, name: `${c.pod}.18b2c7d9e4f${String(i).padStart(5, "0")}` } });
  }
}

/** The firing KubePodCrashLooping alert about shop/api-7d9f (as in test/fixtures/alertmanager/firing-crashloop.json). */
export function crashLoopAlert(now: Date, fingerprint = "0a732576aaf8ce3c"): Record<string, unknown> {
  return webhookBody(
    { alertname: "KubePodCrashLooping", container: CRASHLOOP.container, job: "kube-state-metrics", namespace: CRASHLOOP.namespace, pod: CRASHLOOP.pod, severity: "warning" },
    {
      description: `Pod ${CRASHLOOP.namespace}/${CRASHLOOP.pod} (${CRASHLOOP.container}) is in waiting state (reason: CrashLoopBackOff).`,
      runbook_url: "https://runbooks.prometheus-operator.dev/runbooks/kubernetes/kubepodcrashlooping",
      summary: "Pod is crash looping.",
    },
    { startsAt: ago(now, 2 * M), fingerprint },
  );
}

// ───────────────────────────── failed job ─────────────────────────────

export const FAILED_JOB = { namespace: "batch", cronJob: "nightly-report", job: "nightly-report-29410560", container: "report" } as const;

/** CronJob nightly-report → Job nightly-report-29410560, BackoffLimitExceeded after 3 failed pods; the newest failed pod's logs. */
export function addFailedJob(fake: KubeFake, now: Date): void {
  const f = FAILED_JOB;
  const cj = fake.add(cronJob({ name: f.cronJob, namespace: f.namespace, schedule: "0 2 * * *", lastScheduleTime: ago(now, 40 * M), createdAt: ago(now, 30 * 24 * H) }));
  const j = fake.add(
    job({ name: f.job, namespace: f.namespace, owner: cj, outcome: "failed", backoffLimit: 2, failed: 3, startTime: ago(now, 40 * M), completionTime: ago(now, 3 * M), createdAt: ago(now, 40 * M), containers: [{ name: f.container, image: "registry.example.com/report:5.2.0" }] }),
  );
  const uid = j.metadata.uid ?? "";
  for (const [i, started] of [35 * M, 20 * M, 6 * M].entries()) {
    const name = `${f.job}-${["x7k2p", "m4q9d", "b8r3w"][i]}`;
    fake.add(
      pod({
        name,
        namespace: f.namespace,
        owner: j,
        node: "node-2",
        phase: "Failed",
        restartPolicy: "Never",
        createdAt: ago(now, started),
        labels: { "batch.kubernetes.io/controller-uid": uid, "batch.kubernetes.io/job-name": f.job, "controller-uid": uid, "job-name": f.job },
        containers: [{ name: f.container, image: "registry.example.com/report:5.2.0" }],
        containerStatuses: [
          {
            name: f.container,
            ready: false,
            restartCount: 0,
            state: { terminated: { exitCode: 1, reason: "Error", startedAt: ago(now, started).toISOString(), finishedAt: ago(now, started - 40 * S).toISOString() } },
          },
        ],
      }),
    );
    fake.setLog(
      { namespace: f.namespace, pod: name, container: f.container },
      [
        "2026-11-26T10:34:00Z starting nightly report for 2026-11-25",
        "2026-11-26T10:34:02Z connecting to postgres://reports-db.batch.svc:5432/reports",
        "2026-11-26T10:34:32Z ERROR could not connect to reports-db.batch.svc:5432: timeout after 30s",
        "2026-11-26T10:34:32Z exiting with status 1",
        "",
      ].join("\n"),
    );
  }
  fake.add(event({ involvedObject: j, reason: "BackoffLimitExceeded", message: "Job has reached the specified backoff limit", firstTimestamp: ago(now, 3 * M) }));
}

export function failedJobAlert(now: Date): Record<string, unknown> {
  return webhookBody(
    { alertname: "KubeJobFailed", job_name: FAILED_JOB.job, namespace: FAILED_JOB.namespace, job: "kube-state-metrics", severity: "warning" },
    { description: `Job ${FAILED_JOB.namespace}/${FAILED_JOB.job} failed to complete. Removing failed job after investigation should clear this alert.`, summary: "Job failed to complete." },
    { startsAt: ago(now, 2 * M), fingerprint: "5c1b2d3e4f506172" },
  );
}

// ───────────────────────────── node not ready ─────────────────────────────

export const NOT_READY_NODE = { node: "worker-3" } as const;

/** worker-3: Ready False with MemoryPressure for 7 minutes; two pods on it in trouble, one fine, and a pod on another node. */
export function addNotReadyNode(fake: KubeFake, now: Date): void {
  const n = NOT_READY_NODE.node;
  const since = ago(now, 7 * M).toISOString();
  fake.add(
    node({
      name: n,
      createdAt: ago(now, 40 * 24 * H),
      kubeletVersion: "v1.31.4",
      capacity: { cpu: "8", memory: "32863252Ki", pods: "110", "ephemeral-storage": "203056560Ki", "hugepages-2Mi": "0" },
      allocatable: { cpu: "7910m", memory: "31712276Ki", pods: "110", "ephemeral-storage": "187136925387", "hugepages-2Mi": "0" },
      conditions: [
        { type: "MemoryPressure", status: "True", reason: "KubeletHasInsufficientMemory", message: "kubelet has insufficient memory available", lastTransitionTime: since, lastHeartbeatTime: since },
        { type: "DiskPressure", status: "False", reason: "KubeletHasNoDiskPressure", message: "kubelet has no disk pressure", lastTransitionTime: ago(now, 40 * 24 * H).toISOString(), lastHeartbeatTime: since },
        { type: "PIDPressure", status: "False", reason: "KubeletHasSufficientPID", message: "kubelet has sufficient PID available", lastTransitionTime: ago(now, 40 * 24 * H).toISOString(), lastHeartbeatTime: since },
        { type: "Ready", status: "False", reason: "KubeletNotReady", message: "PLEG is not healthy: pleg was last seen active 3m10s ago; threshold is 3m0s", lastTransitionTime: since, lastHeartbeatTime: since },
      ],
    }),
  );
  fake.add(crashLoopingPod({ name: "search-indexer-5f6d7c8b9-qwert", namespace: "search", node: n, restartCount: 12, createdAt: ago(now, 2 * H), finishedAt: ago(now, 2 * M) }));
  fake.add(pod({ name: "cache-0", namespace: "shop", node: n, createdAt: ago(now, 5 * H), containerStatuses: [{ name: "app", ready: false, restartCount: 1 }] }));
  fake.add(pod({ name: "web-6c9d8-abcde", namespace: "shop", node: n, createdAt: ago(now, 5 * H) }));
  fake.add(crashLoopingPod({ name: "elsewhere-1", namespace: "shop", node: "worker-1", createdAt: ago(now, 5 * H) }));
  fake.add(event({ involvedObject: { kind: "Node", name: n, uid: n }, namespace: "default", reason: "NodeNotReady", message: `Node ${n} status is now: NodeNotReady`, firstTimestamp: ago(now, 7 * M), source: { component: "node-controller" } }));
}

export function notReadyNodeAlert(now: Date): Record<string, unknown> {
  return webhookBody(
    { alertname: "KubeNodeNotReady", condition: "Ready", job: "kube-state-metrics", node: NOT_READY_NODE.node, status: "true", severity: "warning" },
    { description: `${NOT_READY_NODE.node} has been unready for more than 15 minutes.`, summary: "Node is not ready." },
    { startsAt: ago(now, 2 * M), fingerprint: "7e8f9a0b1c2d3e4f" },
  );
}

// ───────────────────────────── deployment replicas mismatch ─────────────────────────────

export const MISMATCH = { namespace: "shop", deployment: "checkout" } as const;

/** Deployment shop/checkout: 4 desired, 2 available, rollout of revision 3 stuck (new image cannot start); revisions 1-3. */
export function addDeploymentMismatch(fake: KubeFake, now: Date): void {
  const m = MISMATCH;
  const d = fake.add(
    deployment({
      name: m.deployment,
      namespace: m.namespace,
      replicas: 4,
      readyReplicas: 2,
      availableReplicas: 2,
      updatedReplicas: 1,
      progressDeadlineExceeded: true,
      newReplicaSet: "checkout-6b7c8d9f5c",
      createdAt: ago(now, 50 * M),
      annotations: { "deployment.kubernetes.io/revision": "3" },
      containers: [{ name: "checkout", image: "registry.example.com/shop/checkout:3.1.0" }],
    }),
  );
  const rs = (name: string, revision: string, image: string, replicas: number, ready: number, age: number): KubeObject =>
    replicaSet({ name, namespace: m.namespace, revision, owner: d, replicas, readyReplicas: ready, createdAt: ago(now, age), labels: { app: m.deployment }, containers: [{ name: "checkout", image }] });
  fake.add(rs("checkout-5d4c3b2a19", "1", "registry.example.com/shop/checkout:3.0.0", 0, 0, 9 * 24 * H));
  fake.add(rs("checkout-7f8e9d0c1b", "2", "registry.example.com/shop/checkout:3.0.2", 3, 2, 2 * 24 * H));
  fake.add(rs("checkout-6b7c8d9f5c", "3", "registry.example.com/shop/checkout:3.1.0", 1, 0, 50 * M));
  fake.add(
    event({ involvedObject: d, reason: "ScalingReplicaSet", message: "Scaled up replica set checkout-6b7c8d9f5c to 1", firstTimestamp: ago(now, 50 * M), source: { component: "deployment-controller" } }),
  );
  fake.add(event({ involvedObject: d, reason: "ProgressDeadlineExceeded", message: 'ReplicaSet "checkout-6b7c8d9f5c" has timed out progressing.', firstTimestamp: ago(now, 40 * M), type: "Warning" }));
}

export function deploymentMismatchAlert(now: Date): Record<string, unknown> {
  return webhookBody(
    { alertname: "KubeDeploymentReplicasMismatch", deployment: MISMATCH.deployment, namespace: MISMATCH.namespace, job: "kube-state-metrics", severity: "warning" },
    { description: `Deployment ${MISMATCH.namespace}/${MISMATCH.deployment} has not matched the expected number of replicas for longer than 15 minutes.`, summary: "Deployment has not matched the expected number of replicas." },
    { startsAt: ago(now, 2 * M), fingerprint: "2a3b4c5d6e7f8091" },
  );
}
