// Watching a big cluster: `kubecano watch` against a purpose-built stub of
// the Kubernetes API (node:http) that serves 10,000 pods as paged lists and
// then streams 50,000 Warning events on the events watch as fast as the
// client reads them. The stub does no work per request beyond writing
// pre-built JSON, so what is measured is kubecano's side: listing and
// projecting the pods (initial sync), reading, projecting and classifying
// the events (events/s), and the process's peak RSS.
//
// Baseline, same run, same stub: a bare Node client that pages the same
// list and reads the same watch line by line with JSON.parse, keeping
// nothing: the least any watcher has to do.
//
// When the events are done the stub sends one last FailedMount event about a
// marker pod; kubecano reports it (stdout, -o json), which marks the end of
// processing (noise control lets it through: its workload is new).
//
// Targets (the issue's): ≥ 5,000 events/s classified, peak RSS ≤ 150 MB.
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { createInterface } from "node:readline";
import { REPO_DIR, codeVersion, loadLine, machineLine, median, mdTable, nowStamp, peakRssMiB, requireBuild, round } from "./lib.mjs";

export const name = "watch";
export const TARGET_EVENTS_PER_S = 5_000;
export const TARGET_RSS_MIB = 150;

const DEFAULTS = { pods: 10_000, events: 50_000, rounds: 2, pageSize: 500 };
const REASONS = [
  ["BackOff", "Back-off restarting failed container app in pod %s"],
  ["Unhealthy", 'Readiness probe failed: Get "http://10.244.1.17:8080/ready": dial tcp 10.244.1.17:8080: connect: connection refused'],
  ["FailedMount", 'MountVolume.SetUp failed for volume "config" : configmap "app-config" not found'],
  ["Failed", 'Failed to pull image "registry.example.com/app:9.9.9": rpc error: code = NotFound'],
  ["FailedScheduling", "0/12 nodes are available: 12 Insufficient cpu. preemption: 0/12 nodes are available: 12 No preemption victims found for incoming pod."],
];

const iso = (ms) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, "Z");
const hex = (n, len) => n.toString(16).padStart(len, "0");

/** A pod as the API serves it (≈ 3 KB with its managedFields, like a real one). */
export function podJson(i, now) {
  const ns = `team-${i % 50}`;
  const app = `app-${Math.floor(i / 5)}`;
  const hash = "5d8f9c7b6";
  const name = `${app}-${hash}-${hex(i, 5)}`;
  const started = iso(now - 3_600_000);
  return {
    metadata: {
      name,
      generateName: `${app}-${hash}-`,
      namespace: ns,
      uid: `00000000-0000-4000-8000-${hex(i, 12)}`,
      resourceVersion: String(1000 + i),
      creationTimestamp: started,
      labels: { app, "pod-template-hash": hash, "app.kubernetes.io/name": app, "app.kubernetes.io/part-of": ns },
      annotations: { "kubectl.kubernetes.io/restartedAt": started, "prometheus.io/scrape": "true", "prometheus.io/port": "9090" },
      ownerReferences: [{ apiVersion: "apps/v1", kind: "ReplicaSet", name: `${app}-${hash}`, uid: `10000000-0000-4000-8000-${hex(i, 12)}`, controller: true, blockOwnerDeletion: true }],
      managedFields: [
        { manager: "kube-controller-manager", operation: "Update", apiVersion: "v1", time: started, fieldsType: "FieldsV1", fieldsV1: { "f:metadata": { "f:generateName": {}, "f:labels": { ".": {}, "f:app": {}, "f:pod-template-hash": {} }, "f:ownerReferences": {} }, "f:spec": { "f:containers": { 'k:{"name":"app"}': { ".": {}, "f:image": {}, "f:imagePullPolicy": {}, "f:name": {}, "f:resources": {} } } } } },
        { manager: "kubelet", operation: "Update", apiVersion: "v1", time: started, fieldsType: "FieldsV1", subresource: "status", fieldsV1: { "f:status": { "f:conditions": {}, "f:containerStatuses": {}, "f:hostIP": {}, "f:phase": {}, "f:podIP": {}, "f:startTime": {} } } },
      ],
    },
    spec: {
      containers: [{ name: "app", image: `registry.example.com/${app}:1.${i % 20}.0`, imagePullPolicy: "IfNotPresent", resources: { requests: { cpu: "100m", memory: "128Mi" }, limits: { memory: "256Mi" } }, ports: [{ containerPort: 8080, protocol: "TCP" }], terminationMessagePath: "/dev/termination-log", terminationMessagePolicy: "File" }],
      restartPolicy: "Always",
      terminationGracePeriodSeconds: 30,
      dnsPolicy: "ClusterFirst",
      serviceAccountName: "default",
      nodeName: `node-${i % 12}`,
      schedulerName: "default-scheduler",
      tolerations: [{ key: "node.kubernetes.io/not-ready", operator: "Exists", effect: "NoExecute", tolerationSeconds: 300 }],
    },
    status: {
      phase: "Running",
      conditions: ["PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady", "PodScheduled"].map((type) => ({ type, status: "True", lastProbeTime: null, lastTransitionTime: started })),
      hostIP: `10.0.0.${i % 12}`,
      podIP: `10.244.${i % 250}.${(i >> 8) % 250}`,
      startTime: started,
      containerStatuses: [{ name: "app", ready: true, started: true, restartCount: 0, state: { running: { startedAt: started } }, lastState: {}, image: `registry.example.com/${app}:1.${i % 20}.0`, imageID: `registry.example.com/${app}@sha256:${"ab".repeat(32)}`, containerID: `containerd://${"cd".repeat(32)}` }],
      qosClass: "Burstable",
    },
  };
}

export function eventLine(i, pods, now) {
  const p = i % pods;
  const [reason, message] = REASONS[i % REASONS.length];
  const ns = `team-${p % 50}`;
  const pod = `app-${Math.floor(p / 5)}-5d8f9c7b6-${hex(p, 5)}`;
  const t = iso(now);
  const object = {
    kind: "Event",
    apiVersion: "v1",
    metadata: { name: `${pod}.${hex(i, 16)}`, namespace: ns, uid: `20000000-0000-4000-8000-${hex(i, 12)}`, resourceVersion: String(100_000 + i), creationTimestamp: t },
    involvedObject: { kind: "Pod", namespace: ns, name: pod, uid: `00000000-0000-4000-8000-${hex(p, 12)}`, apiVersion: "v1", resourceVersion: String(1000 + p), fieldPath: "spec.containers{app}" },
    reason,
    message: message.replace("%s", pod),
    source: { component: "kubelet", host: `node-${p % 12}` },
    firstTimestamp: t,
    lastTimestamp: t,
    count: 1 + (i % 7),
    type: "Warning",
    eventTime: null,
    reportingComponent: "kubelet",
    reportingInstance: `node-${p % 12}`,
  };
  return `${JSON.stringify({ type: "ADDED", object })}\n`;
}

/** The stub API server. Resolves with its URL and a handle on what happened. */
export async function startStub(o) {
  const now = Date.now();
  const state = { podsWatchAt: undefined, firstListAt: undefined, eventsStartAt: undefined, eventsWrittenAt: undefined, watches: new Set() };
  const pages = [];
  for (let start = 0; start < o.pods; start += o.pageSize) {
    const items = [];
    for (let i = start; i < Math.min(o.pods, start + o.pageSize); i++) items.push(podJson(i, now));
    const last = start + o.pageSize >= o.pods;
    pages.push(JSON.stringify({ kind: "PodList", apiVersion: "v1", metadata: { resourceVersion: "99999", ...(last ? {} : { continue: String(pages.length + 1) }) }, items }));
  }
  // The events, pre-serialised in chunks so the stub's own cost stays out of the measurement.
  const chunks = [];
  let buf = "";
  for (let i = 0; i < o.events; i++) {
    buf += eventLine(i, o.pods, now);
    if (buf.length > 256 * 1024) {
      chunks.push(buf);
      buf = "";
    }
  }
  if (buf !== "") chunks.push(buf);
  const markerLine = `${JSON.stringify({
    type: "ADDED",
    object: {
      kind: "Event",
      apiVersion: "v1",
      metadata: { name: "marker.1", namespace: "zz-marker", uid: "30000000-0000-4000-8000-000000000001", resourceVersion: "999999", creationTimestamp: iso(now) },
      involvedObject: { kind: "Pod", namespace: "zz-marker", name: "marker", uid: "marker-uid" },
      reason: "FailedMount",
      message: "the last event of the benchmark",
      type: "Warning",
      count: 1,
      firstTimestamp: iso(now),
      lastTimestamp: iso(now),
      source: { component: "kubelet" },
    },
  })}\n`;

  const empty = (kind) => JSON.stringify({ kind: `${kind}List`, apiVersion: "v1", metadata: { resourceVersion: "99999" }, items: [] });
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://x");
    const watch = url.searchParams.get("watch") === "true" || url.searchParams.get("watch") === "1";
    const p = url.pathname;
    if (!watch) {
      res.writeHead(200, { "content-type": "application/json" });
      if (p === "/api/v1/pods") {
        state.firstListAt ??= performance.now();
        const page = Number(url.searchParams.get("continue") ?? "0");
        return res.end(pages[page] ?? empty("Pod"));
      }
      return res.end(empty(p.split("/").pop() ?? "x"));
    }
    res.writeHead(200, { "content-type": "application/json" });
    res.flushHeaders();
    state.watches.add(res);
    res.on("close", () => state.watches.delete(res));
    if (p === "/api/v1/pods") state.podsWatchAt ??= performance.now();
    if (p === "/api/v1/events" && state.eventsStartAt === undefined) {
      // Wait for the pods to be synced first, so the two phases do not overlap.
      const go = () => {
        if (state.podsWatchAt === undefined) return setTimeout(go, 5);
        state.eventsStartAt = performance.now();
        let k = 0;
        const write = () => {
          while (k < chunks.length) {
            const ok = res.write(chunks[k++]);
            if (!ok) return res.once("drain", write);
          }
          state.eventsWrittenAt = performance.now();
          res.write(markerLine);
        };
        write();
      };
      go();
    }
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  const url = `http://127.0.0.1:${server.address().port}`;
  return {
    url,
    state,
    close: () =>
      new Promise((r) => {
        for (const w of state.watches) w.destroy();
        server.close(() => r());
      }),
  };
}

export function kubeconfig(dir, url) {
  const file = path.join(dir, "kubeconfig");
  writeFileSync(file, ["apiVersion: v1", "kind: Config", "clusters:", "  - name: stub", "    cluster:", `      server: ${JSON.stringify(url)}`, "      insecure-skip-tls-verify: true", "users:", "  - name: stub", "    user:", '      token: "stub"', "contexts:", "  - name: stub", "    context: { cluster: stub, user: stub }", "current-context: stub", ""].join("\n"));
  return file;
}

/** One run of kubecano watch against a fresh stub. */
export async function runKubecano(o) {
  const stub = await startStub(o);
  const dir = mkdtempSync(path.join(os.tmpdir(), "kubecano-bench-watch-"));
  // Workflows off: the enrichment reads would measure the stub, not the classifiers.
  writeFileSync(path.join(dir, "kubecano.config.yaml"), "enrichment: { defaults: false }\n");
  const t0 = performance.now();
  const child = spawn(process.execPath, [path.join(REPO_DIR, "bin", "kubecano"), "watch", "--kubeconfig", kubeconfig(dir, stub.url), "-o", "json", "--log-level", "warn", "--log-format", "json"], {
    cwd: dir,
    env: Object.fromEntries(Object.entries({ ...process.env, NO_COLOR: "1", KUBECANO_STATE_DIR: path.join(dir, "state") }).filter(([key]) => !["KUBECANO_CONFIG", "KUBECANO_LOG_LEVEL", "NODE_OPTIONS"].includes(key))),
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stderr = "";
  child.stderr.on("data", (d) => (stderr += d));
  let issues = 0;
  let rss;
  const done = new Promise((resolve, reject) => {
    const lines = createInterface({ input: child.stdout });
    lines.on("line", (l) => {
      issues++;
      if (l.includes('"zz-marker"')) resolve(performance.now());
    });
    child.once("exit", (code) => reject(new Error(`kubecano watch exited ${code} before the end:\n${stderr}`)));
  });
  // Sample the peak while it runs (VmHWM is the high-water mark; read it before exit).
  const sampler = setInterval(() => {
    const r = peakRssMiB(child.pid);
    if (r !== undefined) rss = r;
  }, 100);
  try {
    const end = await done;
    const r = peakRssMiB(child.pid);
    if (r !== undefined) rss = r;
    const s = stub.state;
    return {
      startMs: s.firstListAt - t0,
      syncMs: s.podsWatchAt - s.firstListAt,
      eventsMs: end - s.eventsStartAt,
      eventsPerS: (o.events / (end - s.eventsStartAt)) * 1000,
      rssMiB: rss,
      issues,
    };
  } finally {
    clearInterval(sampler);
    child.kill("SIGKILL");
    await stub.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The baseline: page the same list and read the same watch, parsing each line, keeping nothing. */
const BASELINE = `
import http from "node:http";
import { createInterface } from "node:readline";
const base = process.argv[2];
const get = (p) => new Promise((res, rej) => http.get(base + p, (r) => { const c = []; r.on("data", (d) => c.push(d)); r.on("end", () => res(JSON.parse(Buffer.concat(c).toString()))); }).on("error", rej));
let cont = "";
let n = 0;
do { const page = await get("/api/v1/pods?limit=500" + (cont ? "&continue=" + cont : "")); n += page.items.length; cont = page.metadata.continue ?? ""; } while (cont);
http.get(base + "/api/v1/pods?watch=true", () => {});
http.get(base + "/api/v1/events?watch=true", (r) => {
  const lines = createInterface({ input: r });
  lines.on("line", (l) => { const e = JSON.parse(l); if (e.object.metadata.namespace === "zz-marker") { process.stdout.write("done " + n + "\\n"); process.exit(0); } });
});
`;

async function runBaseline(o) {
  const stub = await startStub(o);
  const dir = mkdtempSync(path.join(os.tmpdir(), "kubecano-bench-watch-base-"));
  const script = path.join(dir, "baseline.mjs");
  writeFileSync(script, BASELINE);
  const t0 = performance.now();
  const child = spawn(process.execPath, [script, stub.url], { stdio: ["ignore", "pipe", "pipe"] });
  let rss;
  const sampler = setInterval(() => {
    const r = peakRssMiB(child.pid);
    if (r !== undefined) rss = r;
  }, 100);
  try {
    const end = await new Promise((resolve, reject) => {
      child.stdout.on("data", () => resolve(performance.now()));
      child.once("exit", (code) => (code === 0 ? resolve(performance.now()) : reject(new Error(`baseline exited ${code}`))));
    });
    const s = stub.state;
    return { startMs: s.firstListAt - t0, syncMs: s.podsWatchAt - s.firstListAt, eventsMs: end - s.eventsStartAt, eventsPerS: (o.events / (end - s.eventsStartAt)) * 1000, rssMiB: rss, issues: 0 };
  } finally {
    clearInterval(sampler);
    child.kill("SIGKILL");
    await stub.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function run(opts = {}) {
  const o = { ...DEFAULTS, ...opts };
  const log = o.log ?? ((s) => process.stderr.write(`${s}\n`));
  requireBuild();
  const loadBefore = loadLine();
  log(`watch: ${o.pods} pods, ${o.events} events, ${o.rounds} round(s) of baseline and kubecano, alternating`);
  const results = { baseline: [], kubecano: [] };
  for (let r = 0; r < o.rounds; r++) {
    for (const key of r % 2 === 0 ? ["baseline", "kubecano"] : ["kubecano", "baseline"]) {
      const x = key === "kubecano" ? await runKubecano(o) : await runBaseline(o);
      log(`  ${key}: sync ${round(x.syncMs, 0)} ms, ${round(x.eventsPerS, 0)} events/s, peak RSS ${round(x.rssMiB, 1)} MiB, ${x.issues} Issues`);
      results[key].push(x);
    }
  }
  const loadAfter = loadLine();
  const med = (key, f) => median(results[key].map((x) => x[f]));
  const k = { sync: med("kubecano", "syncMs"), eps: med("kubecano", "eventsPerS"), rss: Math.max(...results.kubecano.map((x) => x.rssMiB ?? Infinity)), issues: med("kubecano", "issues") };
  const b = { sync: med("baseline", "syncMs"), eps: med("baseline", "eventsPerS"), rss: Math.max(...results.baseline.map((x) => x.rssMiB ?? Infinity)) };
  const ratio = k.eps / b.eps;
  const pass = k.eps >= TARGET_EVENTS_PER_S && k.rss <= TARGET_RSS_MIB;
  const headers = ["target", `initial sync of ${o.pods} pods (ms)`, `${o.events} events: events/s`, "peak RSS (MiB)", "Issues"];
  const rows = [
    ["baseline (list + JSON lines, nothing kept)", round(b.sync, 0), round(b.eps, 0), round(b.rss, 1), "-"],
    ["kubecano watch", round(k.sync, 0), round(k.eps, 0), round(k.rss, 1), String(k.issues)],
  ];
  const markdown = [
    `### watch — ${nowStamp()}`,
    "",
    `${machineLine()} · code ${codeVersion()} · ${loadBefore} before, ${loadAfter} after`,
    "",
    `\`kubecano watch -o json\` (workflows off) against a stub API server: ${o.pods} pods listed in pages of ${o.pageSize}, then ${o.events} Warning events (BackOff, Unhealthy, FailedMount, Failed, FailedScheduling about those pods) streamed on the events watch as fast as they are read; median of ${o.rounds} round(s), peak RSS the highest (VmHWM).`,
    "",
    mdTable(headers, rows),
    "",
    `Events/s ratio to the baseline: **${ratio.toFixed(2)}**. Targets: ≥ ${TARGET_EVENTS_PER_S} events/s classified and peak RSS ≤ ${TARGET_RSS_MIB} MB: **${pass ? "PASS" : "FAIL"}** (${round(k.eps, 0)} events/s, ${round(k.rss, 1)} MiB).`,
    "",
    "**Reading the RSS.** The figure is the whole process: Node itself (~42 MB, most of it the node binary's pages), the modules kubecano loads (@kubernetes/client-node alone ~65 MB: its generated API sources stay in the heap), the watchers' state (10,000 pod projections, 50,000 event versions: ~15 MB live) and GC headroom. Parsing alone makes the baseline peak at ~120 MB: V8's defaults let the heap grow well past what is live while input arrives this fast. `kubecano watch` and `listen --watch` therefore set two V8 heap heuristics at start (`--semi-space-growth-factor=1`, `--optimize-for-size`; `tuneHeapForWatching` in src/commands/watch.ts, skipped when NODE_OPTIONS sets heap flags); without them the same run peaks at ~185 MB with ~10–15k events/s.",
  ].join("\n");
  return { pass, ratio, headers, rows, markdown };
}

// Run directly: node bench/watch.mjs [--quick]
if (import.meta.url === `file://${process.argv[1]}`) {
  const quick = process.argv.includes("--quick");
  const r = await run(quick ? { pods: 1_000, events: 5_000, rounds: 1 } : {});
  process.stdout.write(`${r.markdown}\n`);
}
