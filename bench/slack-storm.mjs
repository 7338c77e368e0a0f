// Slack under an alert storm: 500 alerts for one channel, against the Slack
// Web API fake of the tests (test/fakes/slack.ts, compiled to bench/.out/ by
// bench/tsconfig.slack-storm.json) limiting each channel as Slack does:
// 1 message/s with bursts of 5, 429 + Retry-After beyond.
//
// 1. Baseline, same run: a naive client posting the 500 messages at once
//    (20 in parallel): how many Slack would refuse with 429.
// 2. kubecano: `kubecano listen` (built dist/, durable store in a temporary
//    state directory, default Slack settings: 1 message/s, bursts of 3,
//    storm threshold 20, summary edits every 2 s, storm over after 30 s quiet)
//    gets the 500 alerts as 5 Alertmanager webhooks of 100. Measured: messages
//    posted, edits, files, 429s received, failed deliveries, the time until
//    every alert is counted in Slack (its own message or the storm summary's
//    count) and until every alert is listed on its own (its own message or
//    the list attached when the storm ends), and alerts represented / alerts
//    sent, which must be 1.0 with no 429 (the target).
//
//   npm run build && node bench/slack-storm.mjs [--quick] [--no-write]
//   npm run bench -- --only slack-storm
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { BENCH_DIR, REPO_DIR, codeVersion, loadLine, machineLine, mdTable, nowStamp, requireBuild, round, spawnListen, textTable, writeSection } from "./lib.mjs";

export const name = "slack-storm";

const DEFAULTS = { alerts: 500, perWebhook: 100, quiet: "30s" };
const QUICK = { alerts: 500, perWebhook: 100, quiet: "5s" };
const RATE = { ratePerSec: 1, burst: 5 };

async function loadFake() {
  execFileSync(process.execPath, [path.join(REPO_DIR, "node_modules", "typescript", "bin", "tsc"), "-p", path.join(BENCH_DIR, "tsconfig.slack-storm.json")], { cwd: REPO_DIR, stdio: "inherit" });
  return import(pathToFileURL(path.join(BENCH_DIR, ".out", "test", "fakes", "slack.js")).href);
}

const RUN = Date.now().toString(16).slice(-8);

function alert(n) {
  return {
    status: "firing",
    labels: { alertname: ["KubePodCrashLooping", "KubePodNotReady", "KubeContainerWaiting"][n % 3], namespace: `team-${n % 7}`, pod: `api-${RUN}-${n}`, severity: n % 5 === 0 ? "critical" : "warning" },
    annotations: { summary: `Pod api-${n} is not well (storm ${RUN})` },
    startsAt: new Date(Date.now() - 60_000 + n).toISOString(),
    endsAt: "0001-01-01T00:00:00Z",
    generatorURL: "",
    fingerprint: `${RUN}${n.toString(16).padStart(8, "0")}`,
  };
}

function webhook(alerts) {
  return { version: "4", groupKey: `{}:{storm="${RUN}"}`, truncatedAlerts: 0, status: "firing", receiver: "kubecano", groupLabels: {}, commonLabels: {}, commonAnnotations: {}, externalURL: "http://alertmanager.example:9093", alerts };
}

/** 1. A client without pacing: every message at once (20 in flight), no retries. */
async function naive(f, opts) {
  const fake = await f.startSlackFake({ rateLimit: { perChannel: RATE } });
  try {
    let next = 0;
    const post = async () => {
      for (;;) {
        const i = next++;
        if (i >= opts.alerts) return;
        const body = new URLSearchParams({ channel: fake.channelId, text: `alert ${i}` });
        const res = await fetch(`${fake.url}chat.postMessage`, { method: "POST", body, headers: { authorization: `Bearer ${f.FAKE_TOKEN}` } });
        await res.text();
      }
    };
    const t0 = performance.now();
    await Promise.all(Array.from({ length: 20 }, post));
    const s = fake.stats();
    return { posted: s.messages, rateLimited: s.rateLimited, ms: performance.now() - t0 };
  } finally {
    await fake.close();
  }
}

function startListen(cwd, stateDir) {
  return spawnListen(["--no-cluster"], { cwd, env: { KUBECANO_STATE_DIR: stateDir } });
}

async function metric(base, name, labels = {}) {
  const text = await (await fetch(`${base}/metrics`)).text();
  let sum = 0;
  for (const line of text.split("\n")) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (!Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) continue;
    sum += Number(line.slice(line.lastIndexOf(" ") + 1));
  }
  return sum;
}

/** What the fake shows of the alerts: own messages, the storm summary's count, the attached lists. */
function represented(fake, fps) {
  const own = new Set(fake.messages.filter((m) => m.metadata?.event_type === "kubecano_issue").map((m) => String(m.metadata.event_payload.fingerprint)));
  const listed = new Set();
  for (const file of fake.files.filter((x) => x.completed && x.filename.startsWith("storm-"))) {
    for (const line of (file.bytes?.toString("utf8") ?? "").trimEnd().split("\n").slice(1)) listed.add(line.trim().split(/\s+/).pop());
  }
  const summary = fake.messages.find((m) => m.metadata?.event_type === "kubecano_storm");
  const summaryCount = summary !== undefined ? Number(/(\d+) alerts/.exec(summary.text)?.[1] ?? 0) : 0;
  const ownOfRun = fps.filter((fp) => own.has(fp)).length;
  return { counted: ownOfRun + summaryCount, listed: fps.filter((fp) => own.has(fp) || listed.has(fp)).length };
}

/** 2. kubecano listen with the defaults. */
async function withKubecano(f, opts) {
  const dir = mkdtempSync(path.join(os.tmpdir(), "kubecano-bench-storm-"));
  const fake = await f.startSlackFake({ rateLimit: { perChannel: RATE } });
  let l;
  try {
    writeFileSync(
      path.join(dir, "kubecano.config.yaml"),
      ["destinations:", "  - name: slack", "    type: slack", "    params:", `      token: ${f.FAKE_TOKEN}`, `      api_url: ${fake.url}`, `      channel: ${fake.channelId}`, `      storm: { quiet: ${opts.quiet} }`, ""].join("\n"),
    );
    l = await startListen(dir, path.join(dir, "state"));
    const alerts = Array.from({ length: opts.alerts }, (_, n) => alert(n));
    const fps = alerts.map((a) => a.fingerprint);
    const t0 = performance.now();
    for (let i = 0; i < alerts.length; i += opts.perWebhook) {
      const res = await fetch(`${l.base}/api/alerts`, { method: "POST", body: JSON.stringify(webhook(alerts.slice(i, i + opts.perWebhook))), headers: { "content-type": "application/json" } });
      await res.text();
      if (res.status !== 202) throw new Error(`webhook answered ${res.status}`);
    }
    const accepted = performance.now() - t0;
    let counted;
    let listed;
    let firstSummary;
    const deadline = Date.now() + 10 * 60_000;
    for (;;) {
      const r = represented(fake, fps);
      const t = performance.now() - t0;
      if (firstSummary === undefined && fake.messages.some((m) => m.metadata?.event_type === "kubecano_storm")) firstSummary = t;
      if (counted === undefined && r.counted >= fps.length) counted = t;
      if (listed === undefined && r.listed === fps.length) listed = t;
      if (listed !== undefined && counted !== undefined && (await metric(l.base, "kubecano_queue_depth")) === 0) break;
      if (Date.now() > deadline) throw new Error(`not every alert represented after 10 minutes (${r.listed} of ${fps.length} listed, ${r.counted} counted)`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const s = fake.stats();
    const r = represented(fake, fps);
    return {
      accepted,
      firstSummary,
      counted,
      listed,
      posted: fake.calls.filter((c) => (c.method === "chat.postMessage" || c.method === "files.completeUploadExternal") && c.outcome === "ok").length,
      topLevel: s.topLevel,
      replies: s.replies,
      updates: s.updates,
      files: s.files,
      rateLimited: s.rateLimited,
      errors: s.errors,
      success: await metric(l.base, "kubecano_deliveries_total", { destination: "slack", outcome: "success" }),
      failed: await metric(l.base, "kubecano_deliveries_total", { destination: "slack", outcome: "failed" }),
      retried: await metric(l.base, "kubecano_deliveries_total", { destination: "slack", outcome: "retry" }),
      representedRatio: r.listed / fps.length,
    };
  } finally {
    await l?.stop();
    await fake.close();
    rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
  }
}

export async function run(options = {}) {
  requireBuild();
  const opts = { ...DEFAULTS, ...options };
  const f = await loadFake();
  const loadBefore = loadLine();
  const base = await naive(f, opts);
  const k = await withKubecano(f, opts);
  const loadAfter = loadLine();

  const ratio = k.representedRatio;
  const pass = ratio === 1 && k.rateLimited === 0 && k.failed === 0;
  const sec = (ms) => (ms === undefined ? "-" : round(ms / 1000, 1));
  // One message per alert at Slack's pace: what posting each alert on its own would take at best.
  const oneEach = (opts.alerts - RATE.burst) / RATE.ratePerSec;
  const headers = ["client", "alerts", "messages posted", "edits", "files", "429s", "failed", "all counted s", "all listed s", "represented"];
  const rows = [
    ["naive: all at once, no pacing, no retry", opts.alerts, base.posted, 0, 0, base.rateLimited, base.rateLimited, "-", "-", round(base.posted / opts.alerts, 2)],
    [`kubecano (defaults, storm quiet ${opts.quiet})`, opts.alerts, k.posted, k.updates, k.files, k.rateLimited, k.failed, sec(k.counted), sec(k.listed), round(ratio, 2)],
  ];
  const markdown = [
    "## Slack alert storm",
    "",
    `- **Date:** ${nowStamp()}`,
    `- **Machine:** ${machineLine()}; ${loadBefore} before, ${loadAfter} after`,
    `- **Code:** ${codeVersion()}`,
    `- **Result:** ${opts.alerts} alerts for one channel limited to ${RATE.ratePerSec} message/s (bursts of ${RATE.burst}): **${round(ratio, 2)}** of them represented in Slack (target 1.0), **${k.rateLimited}** 429s received (target 0), ${k.failed} failed deliveries: **${pass ? "PASS" : "FAIL"}**. kubecano posted **${k.posted}** messages (${k.topLevel} top-level, ${k.replies} in threads, ${k.files} file${k.files === 1 ? "" : "s"}) and **${k.updates}** edits; every alert was counted in Slack after **${sec(k.counted)} s** (its own message or the storm summary, first posted after ${sec(k.firstSummary)} s) and listed on its own after **${sec(k.listed)} s** (the list attached when the storm ended, ${opts.quiet} after the last alert). One message per alert at Slack's pace would take at least ${round(oneEach, 0)} s; the naive client got ${base.rateLimited} of ${opts.alerts} messages refused with 429.`,
    "",
    mdTable(headers, rows),
    "",
    `**Method.** \`bench/slack-storm.mjs\` compiles the Slack Web API fake of the tests (\`test/fakes/slack.ts\`) to \`bench/.out/\` and runs it on 127.0.0.1 in the benchmark's process with a per-channel token bucket of ${RATE.ratePerSec} message/s and bursts of ${RATE.burst} (chat.postMessage and file shares; beyond it, HTTP 429 with Retry-After), checking every message against Slack's Block Kit limits. Baseline, same run: ${opts.alerts} chat.postMessage calls, 20 in flight, no pacing and no retry. kubecano: \`kubecano listen --no-cluster\` from dist/ with its durable store in a temporary state directory and a Slack bot destination with default settings except \`storm.quiet: ${opts.quiet}\`; the ${opts.alerts} alerts (distinct fingerprints, three alert names, seven namespaces) arrive as ${opts.alerts / opts.perWebhook} webhooks of ${opts.perWebhook}, one after the other (all accepted after ${sec(k.accepted)} s). The clock starts at the first POST. "All counted": every alert is either a message of its own or in the storm summary's count; "all listed": every alert is a message of its own or a line of the list attached in the summary's thread; both polled every 100 ms. "Messages posted" counts successful chat.postMessage and files.completeUploadExternal calls (each is one message in the channel); "edits" successful chat.update calls. The run ends when the delivery queue is empty (${k.success} deliveries succeeded, ${k.retried} were retried).`,
  ].join("\n");
  return { pass, ratio, headers, rows, markdown };
}

if (process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({ options: { quick: { type: "boolean", default: false }, "no-write": { type: "boolean", default: false } } });
  const r = await run(values.quick ? QUICK : {});
  process.stdout.write(`\n${name}\n${textTable(r.headers, r.rows)}\nrepresented ${r.ratio.toFixed(2)}: ${r.pass ? "PASS" : "FAIL"}\n`);
  if (!values.quick && !values["no-write"]) {
    writeSection(name, r.markdown);
    process.stdout.write(`recorded in ${path.relative(REPO_DIR, path.join(BENCH_DIR, "RESULTS.md"))}\n`);
  }
}
