// The terminal UI under a steady stream: Issues arrive at 100 per second for
// a minute (distinct one-alert webhooks POSTed to a running `kubecano listen`)
// while `kubecano tui --url` runs in a real terminal (tmux, 160x48). Measured
// on the tui process: renders (its own counter, KUBECANO_TUI_STATS), CPU time
// and RSS from /proc, and whether the screen keeps up: twice a second the
// newest Issue on screen is compared with the newest one posted (lag), and
// after the last POST the time until the screen shows it and the header
// counts all of them (catch-up).
//
// Baseline, same run, same stream: the same feed client without a UI,
// `kubecano tui --url ... --json` writing NDJSON to /dev/null: what following
// the feed costs before anything is drawn.
//
// Targets: the UI keeps up (catch-up ≤ 2 s, nothing missing) and redraws
// are throttled (≤ 15 renders/s at 100 Issues/s: not one per Issue).
import { execFileSync, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { codeVersion, cpuTimeMs, loadLine, machineLine, mdTable, nowStamp, peakRssMiB, percentile, REPO_DIR, requireBuild, round, spawnListen } from "./lib.mjs";

export const name = "tui";
export const TARGET_CATCH_UP_MS = 2_000;
export const TARGET_RENDERS_PER_S = 15;

const DEFAULTS = { rate: 100, seconds: 60 };
const BIN = path.join(REPO_DIR, "bin", "kubecano");
const SOCKET = `kubecano-bench-tui-${process.pid}`;

function cleanEnv(extra = {}) {
  const env = { ...process.env, NO_COLOR: "1", TERM: "xterm-256color", ...extra };
  for (const k of ["CI", "CONTINUOUS_INTEGRATION", "KUBECANO_CONFIG", "KUBECANO_LOG_LEVEL", "NODE_OPTIONS", "FORCE_COLOR"]) delete env[k];
  return env;
}

function tmux(...args) {
  return execFileSync("tmux", ["-L", SOCKET, "-f", "/dev/null", ...args], { encoding: "utf8", env: cleanEnv() });
}

/** kubecano listen on an ephemeral port, its Issues printed to a stdout nobody reads. */
async function startListen(dir) {
  const l = await spawnListen(["--ephemeral", "--no-cluster"], { cwd: dir });
  return { child: l.child, url: l.base };
}

let seq = 0;
/** One distinct firing alert (own pod, fingerprint and start): never a duplicate. */
function alertBody(i) {
  const n = ++seq;
  const labels = { alertname: "KubePodCrashLooping", namespace: `team-${n % 20}`, pod: `api-${n}`, container: "api", severity: ["critical", "warning", "info"][n % 3] };
  return JSON.stringify({
    version: "4",
    status: "firing",
    receiver: "kubecano",
    groupKey: `{}:{alertname="KubePodCrashLooping"}`,
    groupLabels: { alertname: "KubePodCrashLooping" },
    commonLabels: labels,
    commonAnnotations: {},
    externalURL: "http://alertmanager:9093",
    truncatedAlerts: 0,
    alerts: [{ status: "firing", labels, annotations: { summary: `Bench alert ${i}`, description: `Pod ${labels.namespace}/${labels.pod} is crash looping.` }, startsAt: new Date(Date.UTC(2026, 0, 1) + n * 1000).toISOString(), endsAt: "0001-01-01T00:00:00Z", generatorURL: "", fingerprint: n.toString(16).padStart(16, "0") }],
  });
}

/** POSTs `count` alerts at `rate`/s on a schedule (not back to back); resolves with the accepted count. */
async function postStream(url, count, rate, onPosted) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });
  const target = new URL("/api/alerts", url);
  const t0 = performance.now();
  let accepted = 0;
  const inflight = new Set();
  for (let i = 0; i < count; i++) {
    const at = t0 + (i * 1000) / rate;
    const wait = at - performance.now();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    const body = alertBody(i);
    const p = new Promise((resolve) => {
      const req = http.request(target, { method: "POST", agent, headers: { "content-type": "application/json", "content-length": Buffer.byteLength(body) } }, (res) => {
        res.resume();
        res.on("end", () => {
          if (res.statusCode === 202) accepted++;
          onPosted(i);
          resolve();
        });
      });
      req.on("error", () => resolve());
      req.end(body);
    });
    inflight.add(p);
    p.then(() => inflight.delete(p));
  }
  await Promise.all(inflight);
  agent.destroy();
  return { accepted, ms: performance.now() - t0 };
}

/** Samples a process's CPU time and memory once a second. */
function sampler(pid) {
  const samples = [];
  const take = () => {
    const cpu = cpuTimeMs(pid);
    let rss;
    try {
      rss = Number(/^VmRSS:\s*(\d+)\s*kB/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1]) / 1024;
    } catch {
      rss = undefined;
    }
    if (cpu !== undefined) samples.push({ t: performance.now(), cpu, rss, hwm: peakRssMiB(pid) });
  };
  take();
  const timer = setInterval(take, 1_000);
  return {
    stop() {
      clearInterval(timer);
      take();
      return samples;
    },
  };
}

function cpuPercent(samples) {
  const a = samples[0];
  const b = samples.at(-1);
  return a && b && b.t > a.t ? ((b.cpu - a.cpu) / (b.t - a.t)) * 100 : Number.NaN;
}

async function runTui(o, dir) {
  const listen = await startListen(dir);
  const stats = path.join(dir, "tui-stats.json");
  try {
    tmux("new-session", "-d", "-x", "160", "-y", "48", "-s", "bench", `env KUBECANO_TUI_STATS=${stats} ${process.execPath} ${BIN} tui --url ${listen.url}`);
    const pid = Number(tmux("display-message", "-p", "-t", "bench", "#{pane_pid}").trim());
    const screen = () => tmux("capture-pane", "-p", "-t", "bench");
    const deadline = Date.now() + 30_000;
    while (!screen().includes("● live")) {
      if (Date.now() > deadline) throw new Error(`the tui never went live:\n${screen()}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    const statsAt = () => {
      try {
        return JSON.parse(readFileSync(stats, "utf8"));
      } catch {
        return { renders: 0 };
      }
    };
    await new Promise((r) => setTimeout(r, 1_500));
    const before = statsAt();
    const cpu = sampler(pid);
    const count = o.rate * o.seconds;
    let posted = -1;
    const lags = [];
    let watching = true;
    const watcher = (async () => {
      while (watching) {
        const top = /▶ .*Bench alert (\d+)/.exec(screen());
        if (top && posted >= 0) lags.push(Math.max(0, posted - Number(top[1])));
        await new Promise((r) => setTimeout(r, 500));
      }
    })();
    const sent = await postStream(listen.url, count, o.rate, (i) => (posted = Math.max(posted, i)));
    const lastPostedAt = performance.now();
    watching = false;
    await watcher;
    // Catch-up: the newest Issue at the top and every one counted in the header.
    let caughtUp;
    const until = performance.now() + 30_000;
    while (performance.now() < until) {
      const s = screen();
      if (new RegExp(`▶ .*Bench alert ${count - 1}\\b`).test(s) && s.includes(`received ${sent.accepted} `)) {
        caughtUp = performance.now() - lastPostedAt;
        break;
      }
      await new Promise((r) => setTimeout(r, 20));
    }
    const samples = cpu.stop();
    // The UI writes its stats once a second: read a copy written after the catch-up.
    const caughtAt = Date.now();
    let after = statsAt();
    for (let i = 0; i < 30 && !((after.at ?? 0) > caughtAt); i++) {
      await new Promise((r) => setTimeout(r, 100));
      after = statsAt();
    }
    const wallS = (samples.at(-1).t - samples[0].t) / 1000;
    tmux("send-keys", "-t", "bench", "q");
    return {
      accepted: sent.accepted,
      postRate: (sent.accepted / sent.ms) * 1000,
      renders: after.renders - before.renders,
      rendersPerS: (after.renders - before.renders) / wallS,
      meanRenderMs: after.renders > 0 ? after.totalRenderMs / after.renders : Number.NaN,
      maxRenderMs: after.maxRenderMs,
      cpuPct: cpuPercent(samples),
      rssMiB: samples.at(-1).rss,
      peakRssMiB: samples.at(-1).hwm,
      lagP95: percentile(lags, 95),
      lagMax: Math.max(0, ...lags),
      catchUpMs: caughtUp,
      issuesInUi: after.issues,
    };
  } finally {
    try {
      tmux("kill-server");
    } catch {
      // gone already
    }
    listen.child.kill("SIGKILL");
  }
}

async function runBaseline(o, dir) {
  const listen = await startListen(dir);
  try {
    const out = path.join(dir, "lines.ndjson");
    const child = spawn(process.execPath, [BIN, "tui", "--url", listen.url, "--json"], { env: cleanEnv(), stdio: ["ignore", "pipe", "pipe"] });
    let lines = 0;
    let partial = "";
    child.stdout.on("data", (d) => {
      const parts = (partial + d).split("\n");
      partial = parts.pop();
      lines += parts.length;
    });
    // Following: give it a moment to connect.
    await new Promise((r) => setTimeout(r, 1_500));
    const cpu = sampler(child.pid);
    const count = o.rate * o.seconds;
    const sent = await postStream(listen.url, count, o.rate, () => undefined);
    const lastPostedAt = performance.now();
    let caughtUp;
    while (performance.now() - lastPostedAt < 30_000) {
      if (lines >= sent.accepted) {
        caughtUp = performance.now() - lastPostedAt;
        break;
      }
      await new Promise((r) => setTimeout(r, 20));
    }
    const samples = cpu.stop();
    child.kill("SIGKILL");
    writeFileSync(out, "");
    return { accepted: sent.accepted, cpuPct: cpuPercent(samples), rssMiB: samples.at(-1).rss, peakRssMiB: samples.at(-1).hwm, catchUpMs: caughtUp, lines };
  } finally {
    listen.child.kill("SIGKILL");
  }
}

export async function run(opts = {}) {
  const o = { ...DEFAULTS, ...opts };
  const log = o.log ?? ((s) => process.stderr.write(`${s}\n`));
  requireBuild();
  try {
    execFileSync("tmux", ["-V"], { stdio: "ignore" });
  } catch {
    throw new Error("tmux is needed to run the UI in a terminal: apt-get install tmux");
  }
  const loadBefore = loadLine();
  log(`tui: ${o.rate} Issues/s for ${o.seconds} s into kubecano listen, with kubecano tui in tmux (160x48), then the same stream to tui --json`);
  const dir = mkdtempSync(path.join(os.tmpdir(), "kubecano-bench-tui-"));
  let t;
  let b;
  try {
    t = await runTui(o, dir);
    log(`  tui: ${t.accepted} accepted, ${round(t.rendersPerS, 1)} renders/s, CPU ${round(t.cpuPct, 1)} %, RSS ${round(t.rssMiB, 1)} MiB (peak ${round(t.peakRssMiB, 1)}), lag p95 ${t.lagP95} Issues, catch-up ${round(t.catchUpMs, 0)} ms`);
    b = await runBaseline(o, dir);
    log(`  --json: ${b.accepted} accepted, CPU ${round(b.cpuPct, 1)} %, RSS ${round(b.rssMiB, 1)} MiB, catch-up ${round(b.catchUpMs, 0)} ms`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const loadAfter = loadLine();
  const ratio = t.cpuPct / b.cpuPct;
  const keptUp = t.catchUpMs !== undefined && t.catchUpMs <= TARGET_CATCH_UP_MS && t.issuesInUi >= t.accepted;
  const pass = keptUp && t.rendersPerS <= TARGET_RENDERS_PER_S;
  const headers = ["target", "Issues accepted", "renders/s", "CPU %", "RSS MiB (peak)", "lag p95 / max (Issues)", "catch-up after the last (ms)"];
  const rows = [
    ["baseline: tui --json (feed client, no UI)", String(b.accepted), "-", round(b.cpuPct, 1), `${round(b.rssMiB, 1)} (${round(b.peakRssMiB, 1)})`, "-", round(b.catchUpMs, 0)],
    ["kubecano tui (ink, 160x48)", String(t.accepted), round(t.rendersPerS, 1), round(t.cpuPct, 1), `${round(t.rssMiB, 1)} (${round(t.peakRssMiB, 1)})`, `${round(t.lagP95, 0)} / ${t.lagMax}`, round(t.catchUpMs, 0)],
  ];
  const markdown = [
    `### tui — ${nowStamp()}`,
    "",
    `${machineLine()} · code ${codeVersion()}`,
    `${loadBefore} before, ${loadAfter} after`,
    "",
    `${o.rate} distinct one-alert webhooks per second for ${o.seconds} s into \`kubecano listen --ephemeral --no-cluster\`, followed by \`kubecano tui --url\` in tmux (160x48), then by \`kubecano tui --url --json\` (the baseline). CPU is the tui process's own (user + system, /proc) over the stream; renders are counted by the UI itself (${t.renders} in all, mean ${round(t.meanRenderMs, 1)} ms, max ${round(t.maxRenderMs, 1)} ms); lag is how many Issues the screen's newest one was behind the newest posted, sampled twice a second (~${o.rate / 2} Issues arrive between samples).`,
    "",
    mdTable(headers, rows),
    "",
    `CPU ratio tui / --json: **${round(ratio, 2)}** · catch-up ≤ ${TARGET_CATCH_UP_MS} ms with all ${t.accepted} Issues in the UI: ${keptUp ? "yes" : "no"} · renders/s ≤ ${TARGET_RENDERS_PER_S}: ${t.rendersPerS <= TARGET_RENDERS_PER_S ? "yes" : "no"} · **${pass ? "PASS" : "FAIL"}**`,
  ].join("\n");
  return { pass, ratio, headers, rows, markdown };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const quick = process.argv.includes("--quick");
  const r = await run(quick ? { seconds: 10 } : {});
  process.stdout.write(`${r.markdown}\n`);
}
