// Cluster enrichment: what the built-in crash-loop workflow (pod_status,
// pod_logs of the previous container, pod_events) costs per alert, against
// the Kubernetes API fake of the tests (test/fakes/kube.ts, compiled to
// bench/.out/ by bench/tsconfig.enrich.json) serving a realistic pod: 2
// containers, one OOMKilled, 10 events, 200 lines of previous logs.
//
// 1. In-process: p50/p99 of Pipeline.runWorkflows (dist/) over N alerts,
//    against a baseline measured in the same run, alternating: the same API
//    requests the workflow makes (the pod, its previous log, its events)
//    sent directly with client-node. The ratio is kubecano's own overhead.
// 2. End to end: `kubecano listen` with and without a cluster, alternating
//    requests between the two processes: time from POSTing a webhook to a
//    Slack incoming-webhook receiver getting the message, and to the 202.
//
//   npm run build && node bench/enrich.mjs [--quick] [--no-write]
//   npm run bench -- --only enrich
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { BENCH_DIR, codeVersion, loadLine, machineLine, mdTable, nowStamp, percentile, REPO_DIR, requireBuild, round, spawnListen, textTable, writeSection } from "./lib.mjs";

export const name = "enrich";
/** The brief's target: the crash-loop workflow's p50 per alert. */
export const TARGET_P50_MS = 30;

const DEFAULTS = { alerts: 500, warmup: 50, e2e: 100, e2eWarmup: 10 };
const QUICK = { alerts: 60, warmup: 10, e2e: 15, e2eWarmup: 3 };

/** Compiles the fake (TypeScript, owned by the tests) and imports it with the scenarios. */
async function loadFake() {
  execFileSync(process.execPath, [path.join(REPO_DIR, "node_modules", "typescript", "bin", "tsc"), "-p", path.join(BENCH_DIR, "tsconfig.enrich.json")], { cwd: REPO_DIR, stdio: "inherit" });
  const out = path.join(BENCH_DIR, ".out", "test");
  const kube = await import(pathToFileURL(path.join(out, "fakes", "kube.js")).href);
  const scenarios = await import(pathToFileURL(path.join(out, "helpers", "cluster-scenarios.js")).href);
  return { ...kube, ...scenarios };
}

const dist = (p) => import(pathToFileURL(path.join(REPO_DIR, "dist", p)).href);

const stats = (xs) => ({ p50: percentile(xs, 50), p90: percentile(xs, 90), p99: percentile(xs, 99), min: Math.min(...xs), max: Math.max(...xs) });

// ───────────────────────── 1. in-process ─────────────────────────

async function inProcess(f, opts) {
  const { validateConfig } = await dist("config/load.js");
  const { createPipeline } = await dist("commands/setup.js");
  const { silentLogger } = await dist("observability/logger.js");
  const { alertmanagerToIssues, parseWebhookBody } = await dist("sources/alertmanager/index.js");
  const k8s = await import("@kubernetes/client-node");

  const fake = await f.startKubeFake();
  try {
    f.addCrashLoopOom(fake, new Date());
    const kubeconfig = fake.kubeconfigPath();
    const loaded = await validateConfig({}, undefined, {});
    const { pipeline, cluster } = await createPipeline(loaded, { kubeconfig }, { log: silentLogger(), env: {} });
    if (!cluster.status().reachable) throw new Error(`no cluster: ${cluster.status().detail}`);

    const kc = new k8s.KubeConfig();
    kc.loadFromFile(kubeconfig);
    const core = kc.makeApiClient(k8s.CoreV1Api);
    const { namespace, pod, container } = f.CRASHLOOP;
    const raw = async () => {
      await core.readNamespacedPod({ namespace, name: pod });
      await core.readNamespacedPodLog({ namespace, name: pod, container, previous: true, tailLines: 200, limitBytes: 512 * 1024, timestamps: false });
      await core.listNamespacedEvent({ namespace, fieldSelector: `involvedObject.name=${pod},involvedObject.kind=Pod` });
    };

    let n = 0;
    const issueOf = () => {
      const body = f.crashLoopAlert(new Date(), (++n).toString(16).padStart(16, "0"));
      const parsed = parseWebhookBody(JSON.stringify(body));
      return alertmanagerToIssues(parsed.value, { clusterName: "bench" })[0];
    };
    let kubecanoRequests = 0;
    const kubecano = async () => {
      const before = fake.requests.length;
      const r = await pipeline.runWorkflows(issueOf());
      kubecanoRequests += fake.requests.length - before;
      const w = r.trace.find((t) => t.workflow === "crashloop-context");
      if (w === undefined || w.actions.some((a) => a.status !== "ok")) throw new Error(`the crash-loop workflow did not run cleanly: ${JSON.stringify(w)}`);
      return Object.fromEntries(w.actions.map((a) => [a.action, a.ms]));
    };

    const time = async (fn) => {
      const t = process.hrtime.bigint();
      const extra = await fn();
      return { ms: Number(process.hrtime.bigint() - t) / 1e6, extra };
    };
    for (let i = 0; i < opts.warmup; i++) {
      await kubecano();
      await raw();
    }
    kubecanoRequests = 0;
    const ours = [];
    const base = [];
    const perAction = {};
    for (let i = 0; i < opts.alerts; i++) {
      // Alternate which goes first, so neither always runs on a freshly idle event loop.
      const pair = i % 2 === 0 ? [kubecano, raw] : [raw, kubecano];
      for (const fn of pair) {
        const r = await time(fn);
        if (fn === kubecano) {
          ours.push(r.ms);
          for (const [a, ms] of Object.entries(r.extra)) (perAction[a] ??= []).push(ms);
        } else {
          base.push(r.ms);
        }
      }
    }
    const requestsPerAlert = kubecanoRequests / opts.alerts;
    return { ours: stats(ours), base: stats(base), perAction: Object.fromEntries(Object.entries(perAction).map(([a, xs]) => [a, stats(xs)])), requestsPerAlert };
  } finally {
    await fake.close();
  }
}

// ───────────────────────── 2. end to end ─────────────────────────

/** A Slack incoming webhook stand-in: records when each message arrives. */
async function startReceiver() {
  const waiters = new Map();
  const arrived = new Map();
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      const at = process.hrtime.bigint();
      const text = Buffer.concat(chunks).toString("utf8");
      const fp = /fingerprint `([0-9a-f]+)`/.exec(text)?.[1];
      res.writeHead(200, { "content-type": "text/plain" }).end("ok");
      if (fp === undefined) return;
      arrived.set(fp, { at, text });
      waiters.get(fp)?.();
    });
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${server.address().port}/services/T0BENCH/B0BENCH/benchsecret`,
    wait: (fp, timeoutMs = 30_000) =>
      arrived.has(fp)
        ? Promise.resolve(arrived.get(fp))
        : new Promise((resolve, reject) => {
            const t = setTimeout(() => reject(new Error(`message ${fp} did not arrive within ${timeoutMs} ms`)), timeoutMs);
            waiters.set(fp, () => {
              clearTimeout(t);
              waiters.delete(fp);
              resolve(arrived.get(fp));
            });
          }),
    close: () => new Promise((resolve) => server.close(resolve)),
  };
}

async function startListen(args, cwd) {
  const l = await spawnListen(["--ephemeral", ...args], { cwd });
  return { url: `${l.base}/api/alerts`, stop: l.stop };
}

async function endToEnd(f, opts) {
  const dir = mkdtempSync(path.join(os.tmpdir(), "kubecano-bench-enrich-"));
  const fake = await f.startKubeFake();
  const receiver = await startReceiver();
  const procs = [];
  try {
    f.addCrashLoopOom(fake, new Date());
    writeFileSync(path.join(dir, "kubecano.config.yaml"), ["destinations:", "  - name: slack", "    type: slack", "    params:", `      webhook_url: ${receiver.url}`,
      // Pacing off for this measurement (Slack's 1 message/s per channel would be most of the latency).
      "      rate_per_second: 1000", "      burst: 1000", ""].join("\n"));
    const withCluster = await startListen(["--kubeconfig", fake.kubeconfigPath()], dir);
    procs.push(withCluster);
    const without = await startListen(["--no-cluster"], dir);
    procs.push(without);
    let n = 0;
    const one = async (target) => {
      const fp = `e${(++n).toString(16).padStart(15, "0")}`;
      const body = JSON.stringify(f.crashLoopAlert(new Date(), fp));
      const t0 = process.hrtime.bigint();
      const res = await fetch(target.url, { method: "POST", body, headers: { "content-type": "application/json" } });
      const t1 = process.hrtime.bigint();
      await res.text();
      if (res.status !== 202) throw new Error(`webhook answered ${res.status}`);
      const got = await receiver.wait(fp);
      return { answer: Number(t1 - t0) / 1e6, delivered: Number(got.at - t0) / 1e6, enriched: got.text.includes("OOMKilled") };
    };
    for (let i = 0; i < opts.e2eWarmup; i++) {
      await one(withCluster);
      await one(without);
    }
    const res = { cluster: [], none: [] };
    for (let i = 0; i < opts.e2e; i++) {
      const order = i % 2 === 0 ? [["cluster", withCluster], ["none", without]] : [["none", without], ["cluster", withCluster]];
      for (const [key, target] of order) {
        const r = await one(target);
        if ((key === "cluster") !== r.enriched) throw new Error(`${key}: enrichment ${r.enriched ? "present" : "missing"}`);
        res[key].push(r);
      }
    }
    const s = (rows, k) => stats(rows.map((r) => r[k]));
    return { cluster: { answer: s(res.cluster, "answer"), delivered: s(res.cluster, "delivered") }, none: { answer: s(res.none, "answer"), delivered: s(res.none, "delivered") } };
  } finally {
    await Promise.all(procs.map((p) => p.stop()));
    await receiver.close();
    await fake.close();
    rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
  }
}

// ───────────────────────── run ─────────────────────────

export async function run(options = {}) {
  requireBuild();
  const opts = { ...DEFAULTS, ...options };
  const f = await loadFake();
  const loadBefore = loadLine();
  const a = await inProcess(f, opts);
  const e = await endToEnd(f, opts);
  const loadAfter = loadLine();

  const ratio = a.ours.p50 / a.base.p50;
  const pass = a.ours.p50 <= TARGET_P50_MS;
  const ms = (x) => round(x, 1);
  const headers = ["measure", "p50 ms", "p90 ms", "p99 ms", "min ms", "max ms"];
  const row = (label, s) => [label, ms(s.p50), ms(s.p90), ms(s.p99), ms(s.min), ms(s.max)];
  const rows = [
    row(`Pipeline.runWorkflows, crash-loop workflow (${opts.alerts} alerts)`, a.ours),
    row(`baseline: the same ${round(a.requestsPerAlert, 0)} API requests with client-node`, a.base),
    ...Object.entries(a.perAction).map(([act, s]) => row(`  action ${act}`, s)),
  ];
  const e2eRows = [
    row("listen with cluster: POST → 202", e.cluster.answer),
    row("listen --no-cluster: POST → 202", e.none.answer),
    row("listen with cluster: POST → Slack", e.cluster.delivered),
    row("listen --no-cluster: POST → Slack", e.none.delivered),
  ];
  const added = e.cluster.delivered.p50 - e.none.delivered.p50;
  const markdown = [
    "## Cluster enrichment",
    "",
    `- **Date:** ${nowStamp()}`,
    `- **Machine:** ${machineLine()}; ${loadBefore} before, ${loadAfter} after`,
    `- **Code:** ${codeVersion()}`,
    `- **Result:** crash-loop enrichment p50 **${ms(a.ours.p50)} ms** per alert (p99 ${ms(a.ours.p99)} ms; target p50 ≤ ${TARGET_P50_MS} ms): **${pass ? "PASS" : "FAIL"}**; ${round(ratio, 2)}× the bare API requests it makes (${ms(a.base.p50)} ms). End to end, enrichment adds **${ms(added)} ms** at p50 from webhook to Slack; the 202 does not wait for it.`,
    "",
    mdTable(headers, rows),
    "",
    mdTable(headers, e2eRows),
    "",
    `**Method.** \`bench/enrich.mjs\` compiles the Kubernetes API fake of the tests (\`test/fakes/kube.ts\`, with \`test/helpers/cluster-scenarios.ts\`) to \`bench/.out/\` and serves, on 127.0.0.1 in the benchmark's process, shop/api-7d9f: 2 containers, one OOMKilled and in CrashLoopBackOff, 10 events, 200 lines of previous logs. In-process: \`createPipeline\` from dist/ with \`--kubeconfig\` to the fake (client-node over HTTP), ${opts.warmup} warm-up alerts, then ${opts.alerts} alerts (distinct fingerprints, all about that pod) through \`Pipeline.runWorkflows\` (every built-in workflow is evaluated; crash-loop-context runs pod_status, pod_logs previous tail 200, pod_events), timed with hrtime, alternating with the baseline: the same ${round(a.requestsPerAlert, 0)} requests per alert (the pod, its previous log, its event list) sent directly with client-node's CoreV1Api, so the ratio is kubecano's own cost on top of the API calls. Per-action figures are the trace's own timings. End to end: two \`kubecano listen --ephemeral\` processes (one with \`--kubeconfig\` to the same fake, one with \`--no-cluster\`) with a Slack destination in incoming-webhook mode pointed at a local receiver (pacing raised to 1,000 messages/s so the figure is not Slack's 1/s per channel); ${opts.e2eWarmup} warm-up requests each, then ${opts.e2e} one-alert webhooks to each, one at a time, alternating between the two, each timed from the POST to the receiver getting its message (and to the 202). Every enriched message was checked to contain the OOMKilled note, every unenriched one not to. The fake, the receiver and the client share the benchmark's process; the machine's other load shows in the load averages. With the load average far above the core count, the absolute figures mostly measure waiting for a CPU (the min column is nearer what an idle machine gives); the ratio to the baseline is the figure to compare.`,
  ].join("\n");
  return { pass, ratio, headers, rows: [...rows, ...e2eRows], markdown };
}

if (process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({ options: { quick: { type: "boolean", default: false }, "no-write": { type: "boolean", default: false } } });
  const r = await run(values.quick ? QUICK : {});
  process.stdout.write(`\n${name}\n${textTable(r.headers, r.rows)}\nratio ${r.ratio.toFixed(2)}, p50 target ${TARGET_P50_MS} ms: ${r.pass ? "PASS" : "FAIL"}\n`);
  if (!values.quick && !values["no-write"]) {
    writeSection(name, r.markdown);
    process.stdout.write(`recorded in ${path.relative(REPO_DIR, path.join(BENCH_DIR, "RESULTS.md"))}\n`);
  }
}
