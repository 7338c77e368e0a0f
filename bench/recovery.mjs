// Recovery after kill -9 with 10,000 deliveries queued (the durable store).
//
// 1. Baseline, same run: `kubecano listen` started on an EMPTY state
//    directory (same config): time until it announces its address and until
//    /readyz answers 200; then the same 10,000 alerts posted to it with the
//    receiver answering at once: time from the first POST until the receiver
//    has every delivery (what draining 10,000 costs when nothing went wrong).
// 2. kubecano: a second state directory; the receiver holds every request
//    open without answering, so the 10,000 deliveries are accepted (202:
//    committed) and stay queued (a few in flight, in doubt); once
//    kubecano_queue_depth says 10,000, the process is killed with SIGKILL.
//    The receiver then answers 200 at once and `kubecano listen` restarts on
//    the same state directory. Measured: time to its address, to /readyz
//    200, and until the receiver has every one of the 10,000 deliveries;
//    deliveries lost (must be 0) and sent twice (only the ones in flight at
//    the kill may be: at-least-once, with the same X-Kubecano-Delivery id,
//    so a receiver deduplicates them).
//
//   npm run build && node bench/recovery.mjs [--quick] [--no-write]
//   npm run bench -- --only recovery
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { codeVersion, loadLine, machineLine, mdTable, nowStamp, REPO_DIR, requireBuild, round, spawnListen, textTable, writeSection } from "./lib.mjs";

export const name = "recovery";

const DEFAULTS = { deliveries: 10_000, perWebhook: 100 };
const QUICK = { deliveries: 2_000, perWebhook: 100 };

/** A webhook receiver that holds requests (phase "hold") or answers 200 at once, counting deliveries by id. */
async function startReceiver() {
  const seen = new Map(); // X-Kubecano-Delivery → times received
  const held = [];
  const heldIds = new Set(); // received while holding, never answered: in doubt for kubecano
  let mode = "hold";
  const server = http.createServer((req, res) => {
    const id = req.headers["x-kubecano-delivery"];
    req.resume();
    req.on("end", () => {
      if (mode === "hold") {
        if (typeof id === "string") heldIds.add(id);
        held.push(res);
        return;
      }
      if (typeof id === "string") seen.set(id, (seen.get(id) ?? 0) + 1);
      res.writeHead(200, { "content-type": "application/json" }).end("{}");
    });
  });
  server.keepAliveTimeout = 60_000;
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${server.address().port}/hook`,
    seen,
    heldIds,
    held: () => held.length,
    answer: () => {
      mode = "answer";
    },
    hold: () => {
      mode = "hold";
    },
    reset: () => seen.clear(),
    close: async () => {
      for (const r of held) r.destroy();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

function writeConfig(dir, hookUrl) {
  const file = path.join(dir, "kubecano.config.json");
  writeFileSync(
    file,
    JSON.stringify({
      clusterName: "bench",
      server: { host: "127.0.0.1", port: 0 },
      delivery: { maxBacklog: 1_000_000 },
      destinations: [{ name: "hook", type: "webhook", params: { url: hookUrl, timeout: "120s" } }],
    }),
  );
  return file;
}

/** `kubecano listen` on a state directory; resolves when it announces its address, with timings from spawn. */
async function startListen(config, stateDir) {
  const l = await spawnListen(["--config", config, "--state-dir", stateDir, "--no-cluster"], { env: { KUBECANO_LOG_LEVEL: "info" } });
  return { ...l, url: l.base };
}

async function until(what, check, timeoutMs, everyMs = 20) {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

async function ready(url) {
  try {
    return (await fetch(`${url}/readyz`)).status === 200;
  } catch {
    return false;
  }
}

async function queueDepth(url) {
  const text = await (await fetch(`${url}/metrics`)).text();
  let s = 0;
  for (const m of text.matchAll(/^kubecano_queue_depth\{[^}]*\} (\S+)$/gm)) s += Number(m[1]);
  return s;
}

let seq = 0;
function webhookBody(n) {
  const fixture = JSON.parse(readFileSync(path.join(REPO_DIR, "test/fixtures/alertmanager/firing-crashloop.json"), "utf8")).body;
  const template = fixture.alerts[0];
  const alerts = [];
  for (let i = 0; i < n; i++) {
    seq++;
    alerts.push({ ...template, labels: { ...template.labels, pod: `api-${seq}` }, fingerprint: seq.toString(16).padStart(16, "0"), startsAt: new Date(Date.UTC(2026, 10, 26, 10, 0, 0, seq)).toISOString() });
  }
  return JSON.stringify({ ...fixture, alerts });
}

/** Posts `total` alerts in webhooks of `per`, 4 at a time; every answer must be 202. */
async function postAll(url, total, per) {
  const bodies = [];
  for (let i = 0; i < total; i += per) bodies.push(webhookBody(Math.min(per, total - i)));
  let next = 0;
  const worker = async () => {
    while (next < bodies.length) {
      const body = bodies[next++];
      const res = await fetch(`${url}/api/alerts`, { method: "POST", headers: { "content-type": "application/json" }, body });
      if (res.status !== 202) throw new Error(`POST /api/alerts answered ${res.status}: ${await res.text()}`);
    }
  };
  await Promise.all([worker(), worker(), worker(), worker()]);
}

function stop(child) {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    const t = setTimeout(() => child.kill("SIGKILL"), 25_000);
    child.once("exit", () => {
      clearTimeout(t);
      resolve();
    });
    child.kill("SIGTERM");
  });
}

export async function run(options = {}) {
  requireBuild();
  const opts = { ...DEFAULTS, ...options };
  const log = (s) => process.stderr.write(`${s}\n`);
  const dir = mkdtempSync(path.join(os.tmpdir(), "kubecano-bench-recovery-"));
  const receiver = await startReceiver();
  const loadBefore = loadLine();
  try {
    const config = writeConfig(dir, receiver.url);

    // 1. Baseline: an empty state directory, then a normal drain.
    receiver.answer();
    const fresh = await startListen(config, path.join(dir, "fresh"));
    await until("/readyz on a fresh start", () => ready(fresh.url), 30_000, 5);
    const freshReadyMs = performance.now() - fresh.t0;
    const d0 = performance.now();
    await postAll(fresh.url, opts.deliveries, opts.perWebhook);
    await until("the normal drain", () => receiver.seen.size >= opts.deliveries, 600_000);
    const normalDrainMs = performance.now() - d0;
    await stop(fresh.child);
    log(`  fresh start: listening ${round(fresh.listeningMs, 0)} ms, ready ${round(freshReadyMs, 0)} ms; ${opts.deliveries} delivered in ${round(normalDrainMs, 0)} ms`);
    receiver.reset();

    // 2. Queue the deliveries against a receiver that holds them, then SIGKILL.
    receiver.hold();
    const stateDir = path.join(dir, "state");
    const first = await startListen(config, stateDir);
    await until("/readyz", () => ready(first.url), 30_000);
    const q0 = performance.now();
    await postAll(first.url, opts.deliveries, opts.perWebhook);
    const acceptMs = performance.now() - q0;
    await until(`${opts.deliveries} queued`, async () => (await queueDepth(first.url)) + receiver.held() >= opts.deliveries, 120_000, 100);
    const inFlight = receiver.held();
    const depthAtKill = await queueDepth(first.url);
    first.child.kill("SIGKILL");
    await new Promise((r) => first.child.once("exit", r));
    log(`  queued ${opts.deliveries} (accepted in ${round(acceptMs, 0)} ms; queue depth ${depthAtKill}, ${inFlight} held in flight); SIGKILL`);

    // 3. Restart on the same state directory; the receiver now answers.
    receiver.answer();
    const second = await startListen(config, stateDir);
    await until("/readyz after the restart", () => ready(second.url), 60_000, 5);
    const readyMs = performance.now() - second.t0;
    await until("every delivery after the restart", () => receiver.seen.size >= opts.deliveries, 600_000);
    const drainedMs = performance.now() - second.t0;
    // Anything more would be a duplicate: give it a moment to show.
    await new Promise((r) => setTimeout(r, 2_000));
    const depthAfter = await queueDepth(second.url);
    await stop(second.child);
    const received = receiver.seen.size;
    const twice = [...receiver.seen.values()].filter((n) => n > 1).length;
    const resent = [...receiver.heldIds].filter((id) => receiver.seen.has(id)).length;
    const lost = opts.deliveries - received;
    log(`  restart: listening ${round(second.listeningMs, 0)} ms, ready ${round(readyMs, 0)} ms, all delivered ${round(drainedMs, 0)} ms; lost ${lost}, answered twice ${twice}; of the ${inFlight} in flight at the kill, ${resent} sent again`);

    const loadAfter = loadLine();
    const pass = lost === 0 && twice === 0 && depthAfter === 0;
    const ratio = drainedMs / (freshReadyMs + normalDrainMs);
    const headers = ["run", "deliveries", "listening (ms)", "/readyz 200 (ms)", "all delivered (ms)", "lost", "delivered twice", "in doubt at the kill, sent again"];
    const rows = [
      ["baseline: empty state directory, then a normal drain of the same alerts", opts.deliveries, round(fresh.listeningMs, 0), round(freshReadyMs, 0), `${round(normalDrainMs, 0)} (from the first POST)`, 0, 0, "-"],
      [`restart after SIGKILL with ${opts.deliveries} queued`, opts.deliveries, round(second.listeningMs, 0), round(readyMs, 0), `${round(drainedMs, 0)} (from the restart)`, lost, twice, `${resent} of ${inFlight}`],
    ];
    const markdown = [
      "## Recovery after kill -9",
      "",
      `- **Date:** ${nowStamp()}`,
      `- **Machine:** ${machineLine()}; ${loadBefore} before, ${loadAfter} after`,
      `- **Code:** ${codeVersion()}`,
      `- **Result:** killed with ${opts.deliveries} deliveries queued, \`kubecano listen\` restarted on the same state directory answered /readyz after **${round(readyMs, 0)} ms** (an empty state directory: ${round(freshReadyMs, 0)} ms) and delivered all ${opts.deliveries} within **${round(drainedMs / 1000, 1)} s** of the restart (${round(ratio, 2)}× an undisturbed start plus drain of the same alerts); **${lost}** lost, **${twice}** delivered twice; the ${inFlight} requests in flight at the kill (sent, never answered: in doubt) were sent again with the same X-Kubecano-Delivery id (${resent} of them), which is the at-least-once contract for a destination kubecano cannot ask: **${pass ? "PASS" : "FAIL"}**.`,
      "",
      mdTable(headers, rows),
      "",
      `**Method.** \`bench/recovery.mjs\` runs a webhook receiver in the benchmark's process and \`kubecano listen --no-cluster\` (built dist/, durable store, default delivery settings) with one \`webhook\` destination pointed at it. Baseline, same run: listen on an empty state directory, timed from spawn to its address and to /readyz 200, then the alerts posted (webhooks of ${opts.perWebhook} alerts, 4 in flight, every answer 202) with the receiver answering 200 at once, timed from the first POST until it has every delivery. Then a second state directory: the receiver holds every request open, the same number of new alerts is posted, and once kubecano_queue_depth counts them the process gets SIGKILL (queue depth ${depthAtKill} at the kill, ${inFlight} requests held in flight). The receiver then answers 200 at once and listen restarts on that state directory; timed from spawn. Deliveries are counted by their X-Kubecano-Delivery id ("delivered twice": an id answered 200 more than once); the run waits 2 s after the last one for any repeat.`,
    ].join("\n");
    return { pass, ratio, headers, rows, markdown };
  } finally {
    await receiver.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({ options: { quick: { type: "boolean", default: false }, "no-write": { type: "boolean", default: false } } });
  const r = await run(values.quick ? QUICK : {});
  process.stdout.write(`\n${name}\n${textTable(r.headers, r.rows)}\n${r.pass ? "PASS" : "FAIL"}\n`);
  if (!values.quick && !values["no-write"]) writeSection(name, r.markdown);
}
