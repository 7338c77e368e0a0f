// Webhook ingest: throughput and latency of the built `kubecano listen`
// against a bare node:http server (bench/bare-server.mjs) measured in the
// same run, alternating targets so that drift (thermal, noisy neighbours)
// hits both alike. Every request carries a distinct alert (fingerprint and
// startsAt vary) so that deduplication cannot turn the benchmark into a
// measurement of duplicates.
import { execFile, spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { createInterface } from "node:readline";
import autocannon from "autocannon";
import { BENCH_DIR, REPO_DIR, codeVersion, cpuTimeMs, loadLine, machineLine, median, mdTable, nowStamp, peakRssMiB, requireBuild, round } from "./lib.mjs";

export const name = "ingest";
export const TARGET_RATIO = 0.5;

/**
 * Five rounds, not two: on a 2-core machine shared with the load generator,
 * one 10 s run of either server moves by up to ±15% from the next (measured:
 * bare 9,100-11,700/s, kubecano 4,400-5,600/s within one benchmark), often in
 * opposite directions, so a ratio of two-run medians swung by ±0.05.
 */
const DEFAULTS = { duration: 10, warmup: 2, connections: 50, pipelining: 1, rounds: 5, ephemeral: false };

/**
 * The kubecano processes to measure. A build with a durable store is run
 * with it (the product's default path) in a fresh temp --state-dir, never
 * the user's own, and also with --ephemeral to show what durability costs;
 * the target is judged on the first variant. `ephemeral` measures only the
 * in-memory queue.
 */
export function kubecanoVariants(dir, ephemeral = false) {
  const help = spawnSync(process.execPath, ["bin/kubecano", "listen", "--help"], { cwd: REPO_DIR, encoding: "utf8" }).stdout ?? "";
  // Never let a benchmark read whatever cluster the machine's kubeconfig points at.
  const noCluster = help.includes("--no-cluster") ? ["--no-cluster"] : [];
  const memory = { key: "memory", label: "kubecano listen --ephemeral", args: ["--ephemeral", ...noCluster], store: "in-memory queue (--ephemeral)" };
  if (!help.includes("--state-dir")) return [{ ...memory, label: "kubecano listen", args: noCluster, store: "in-memory queue (this build has no durable store)" }];
  if (ephemeral) return [memory];
  return [{ key: "durable", label: "kubecano listen", args: ["--state-dir", path.join(dir, "state"), ...noCluster], store: "durable store in a fresh temp --state-dir (default durability settings)" }, memory];
}

/**
 * Request bodies: the captured firing-crashloop webhook with a per-request
 * fingerprint and startsAt. The counter is shared by all runs, so no two
 * requests of a whole benchmark carry the same alert.
 */
function bodyFactory() {
  const fixture = JSON.parse(readFileSync(path.join(REPO_DIR, "test/fixtures/alertmanager/firing-crashloop.json"), "utf8"));
  const body = structuredClone(fixture.body);
  const alert = body.alerts[0];
  alert.fingerprint = "@@FP@@";
  alert.startsAt = "2026-11-26T10:38:06.@@NS@@Z";
  // ["...", "@@FP@@", "...", "@@NS@@", "..."] in whatever order the keys come.
  const parts = JSON.stringify(body).split(/(@@FP@@|@@NS@@)/);
  const fill = (n) => {
    const fp = n.toString(16).padStart(16, "0");
    const ns = String(n % 1e9).padStart(9, "0");
    return parts.map((p) => (p === "@@FP@@" ? fp : p === "@@NS@@" ? ns : p)).join("");
  };
  let n = 0;
  return {
    next: () => fill(++n),
    count: () => n,
    sample: () => fill(0),
  };
}

/** Spawns a server process and resolves with its pid, address and a stop(). */
function startServer(label, args, { addressFrom }) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, {
      cwd: REPO_DIR,
      // kubecano's console destination writes Issues to stdout: /dev/null.
      stdio: addressFrom === "stdout" ? ["ignore", "pipe", "pipe"] : ["ignore", "ignore", "pipe"],
      env: { ...process.env, NO_COLOR: "1" },
    });
    const tail = [];
    const warnings = { count: 0, last: undefined };
    let settled = false;
    const onLine = (line) => {
      tail.push(line);
      if (tail.length > 20) tail.shift();
      let rec;
      try {
        rec = JSON.parse(line);
      } catch {
        return;
      }
      if (rec.level === "warn" || rec.level === "error" || rec.level === "fatal") {
        warnings.count++;
        warnings.last = rec.msg;
      }
      if (!settled && typeof rec.address === "string") {
        settled = true;
        const m = /^(.*):(\d+)$/.exec(rec.address);
        const host = m[1] === "0.0.0.0" || m[1] === "::" ? "127.0.0.1" : m[1];
        resolve({
          label,
          pid: child.pid,
          url: `http://${host}:${m[2]}`,
          warnings,
          tail,
          stop: () => stopChild(child),
        });
      }
    };
    createInterface({ input: child.stderr }).on("line", onLine);
    if (child.stdout) createInterface({ input: child.stdout }).on("line", onLine);
    child.once("error", (e) => {
      if (!settled) reject(e);
    });
    child.once("exit", (code, signal) => {
      if (!settled) {
        settled = true;
        reject(new Error(`${label} exited (${code ?? signal}) before listening:\n${tail.join("\n")}`));
      }
    });
    setTimeout(() => {
      if (!settled) {
        settled = true;
        child.kill("SIGKILL");
        reject(new Error(`${label} did not announce its address within 15 s:\n${tail.join("\n")}`));
      }
    }, 15_000).unref();
  });
}

/** SIGTERM, then SIGKILL after 25 s (kubecano drains deliveries for up to 20 s). */
function stopChild(child) {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve({ code: child.exitCode, signal: child.signalCode });
    const t = setTimeout(() => child.kill("SIGKILL"), 25_000);
    child.once("exit", (code, signal) => {
      clearTimeout(t);
      resolve({ code, signal });
    });
    child.kill("SIGTERM");
  });
}

/** A few kubecano_* samples from /metrics. */
async function scrape(url) {
  const text = await (await fetch(`${url}/metrics`)).text();
  const sum = (re) => {
    let s = 0;
    for (const m of text.matchAll(re)) s += Number(m[1]);
    return s;
  };
  return {
    alerts: sum(/^kubecano_alerts_received_total\{[^}]*\} (\S+)$/gm),
    delivered: sum(/^kubecano_deliveries_total\{[^}]*outcome="success"[^}]*\} (\S+)$/gm),
    depth: sum(/^kubecano_queue_depth\{[^}]*\} (\S+)$/gm),
  };
}

/** Waits until kubecano has delivered everything it accepted, so it does not steal CPU from the next run. */
async function waitDrained(url, maxMs) {
  const start = Date.now();
  for (;;) {
    const m = await scrape(url);
    if (m.depth === 0) return { ...m, waitedMs: Date.now() - start };
    if (Date.now() - start > maxMs) return { ...m, waitedMs: Date.now() - start, timedOut: true };
    await new Promise((r) => setTimeout(r, 100));
  }
}

function cannon(url, bodies, o) {
  return autocannon({
    url: `${url}/api/alerts`,
    method: "POST",
    headers: { "Content-Type": "application/json", "User-Agent": "Alertmanager/0.25.0" },
    connections: o.connections,
    pipelining: o.pipelining,
    duration: o.duration,
    warmup: { connections: o.connections, duration: o.warmup },
    requests: [
      {
        setupRequest: (req) => {
          req.body = bodies.next();
          return req;
        },
      },
    ],
  });
}

function summarise(label, r) {
  const ok = r["2xx"];
  const seconds = r.duration;
  return {
    label,
    acceptedPerSec: ok / seconds,
    reqPerSec: r.requests.total / seconds,
    p50: r.latency.p50,
    p99: r.latency.p99,
    non2xx: r.non2xx,
    errors: r.errors,
    timeouts: r.timeouts,
    total: r.requests.total,
    seconds,
  };
}

/**
 * The in-process CPU breakdown of bench/ingest-stages.mjs, run as its own
 * process after the load runs. It uses kubecano's internal modules, which
 * change more often than the CLI: when it cannot run, the section says why
 * instead of failing the benchmark.
 */
function stageBreakdown() {
  return new Promise((resolve) => {
    execFile(process.execPath, [path.join(BENCH_DIR, "ingest-stages.mjs"), "--json"], { cwd: REPO_DIR, timeout: 300_000, maxBuffer: 1 << 20 }, (err, stdout, stderr) => {
      if (err) return resolve({ error: (String(stderr).trim().split("\n").find((l) => /Error/.test(l)) ?? err.message).slice(0, 300) });
      try {
        resolve(JSON.parse(stdout.trim().split("\n").pop()));
      } catch (e) {
        resolve({ error: String(e) });
      }
    });
  });
}

export async function run(opts = {}) {
  const o = { ...DEFAULTS, ...opts };
  const log = o.log ?? ((s) => process.stderr.write(`${s}\n`));
  requireBuild();
  const bodies = bodyFactory();
  const bodyBytes = Buffer.byteLength(bodies.sample());

  const dir = mkdtempSync(path.join(os.tmpdir(), "kubecano-bench-"));
  const configFile = path.join(dir, "kubecano.config.json");
  writeFileSync(
    configFile,
    JSON.stringify({
      clusterName: "bench",
      delivery: { maxBacklog: 1_000_000 },
      destinations: [{ name: "bench-console", type: "console", params: { format: "text", color: "never", output: "stdout" } }],
    }),
  );

  const variants = kubecanoVariants(dir, o.ephemeral);
  const loadBefore = loadLine();
  const servers = [];
  try {
    const bare = await startServer("bare node:http", [path.join(BENCH_DIR, "bare-server.mjs"), "127.0.0.1", "0"], { addressFrom: "stdout" });
    servers.push(bare);
    const targets = [{ key: "bare", label: bare.label, srv: bare }];
    for (const v of variants) {
      const srv = await startServer(
        v.label,
        ["bin/kubecano", "listen", "--host", "127.0.0.1", "--port", "0", "--log-format", "json", "--log-level", "info", "-c", configFile, ...v.args],
        { addressFrom: "stderr" },
      );
      servers.push(srv);
      targets.push({ ...v, srv, drains: [] });
    }

    const runs = Object.fromEntries(targets.map((t) => [t.key, []]));
    const order = [];
    for (let i = 0; i < o.rounds; i++) {
      for (const t of targets) {
        log(`ingest: round ${i + 1}/${o.rounds} ${t.label}: ${o.warmup}s warm-up + ${o.duration}s, ${o.connections} connections`);
        const cpu0 = cpuTimeMs(t.srv.pid);
        const r = await cannon(t.srv.url, bodies, o);
        const s = { ...summarise(t.label, r), round: i + 1 };
        runs[t.key].push(s);
        order.push(s);
        log(`  ${round(s.acceptedPerSec, 0)} accepted/s, p50 ${s.p50} ms, p99 ${s.p99} ms, non-2xx ${s.non2xx}, errors ${s.errors + s.timeouts}`);
        if (t.key !== "bare") {
          const d = await waitDrained(t.srv.url, 60_000);
          t.drains.push(d);
          log(`  delivered everything accepted ${d.waitedMs} ms after the run${d.timedOut ? ` (NOT drained: ${d.depth} left)` : ""}`);
        }
        // CPU of warm-up + run (+ the deliveries that finished after it), per request answered.
        const cpu1 = cpuTimeMs(t.srv.pid);
        const answered = r.requests.total + (r.warmup?.requests?.total ?? 0);
        s.cpuUsPerReq = cpu0 === undefined || cpu1 === undefined || answered === 0 ? Number.NaN : ((cpu1 - cpu0) * 1000) / answered;
        log(`  server CPU ${round(s.cpuUsPerReq, 0)} µs per request`);
      }
    }
    for (const t of targets) {
      t.rss = peakRssMiB(t.srv.pid);
      if (t.key !== "bare") t.final = await scrape(t.srv.url);
    }
    const loadAfter = loadLine();
    log("ingest: CPU per stage, in-process (bench/ingest-stages.mjs)");
    const stages = o.stages === false ? { error: "skipped" } : await stageBreakdown();

    const agg = (rs) => ({
      acceptedPerSec: median(rs.map((r) => r.acceptedPerSec)),
      p50: median(rs.map((r) => r.p50)),
      p99: median(rs.map((r) => r.p99)),
      non2xx: rs.reduce((a, r) => a + r.non2xx, 0),
      errors: rs.reduce((a, r) => a + r.errors + r.timeouts, 0),
      cpuUsPerReq: median(rs.map((r) => r.cpuUsPerReq)),
    });
    for (const t of targets) t.agg = agg(runs[t.key]);
    const bareRate = targets[0].agg.acceptedPerSec;
    const bareCpu = targets[0].agg.cpuUsPerReq;
    for (const t of targets) {
      t.ratio = t.agg.acceptedPerSec / bareRate;
      t.cpuRatio = bareCpu / t.agg.cpuUsPerReq;
    }
    const judged = targets[1];
    const ratio = judged.ratio;
    const pass = ratio >= TARGET_RATIO && judged.agg.non2xx === 0 && judged.agg.errors === 0;

    const headers = ["target", "accepted alerts/s", "× bare", "CPU µs/req", "bare CPU / its CPU", "p50 ms", "p99 ms", "non-2xx", "errors", "peak RSS MiB"];
    const rows = targets.map((t) => [
      t.label,
      round(t.agg.acceptedPerSec, 0),
      round(t.ratio, 2),
      round(t.agg.cpuUsPerReq, 0),
      round(t.cpuRatio, 2),
      round(t.agg.p50, 0),
      round(t.agg.p99, 0),
      String(t.agg.non2xx),
      String(t.agg.errors),
      t.rss === undefined ? "n/a" : round(t.rss, 0),
    ]);
    // Each run against the bare server's run of the same round: the spread of these is the benchmark's noise.
    const bareOf = new Map(runs.bare.map((r) => [r.round, r.acceptedPerSec]));
    const perRun = order.map((r) => [String(r.round), r.label, round(r.acceptedPerSec, 0), round(r.acceptedPerSec / (bareOf.get(r.round) ?? Number.NaN), 2), round(r.cpuUsPerReq, 0), String(r.p50), String(r.p99), String(r.non2xx), String(r.errors + r.timeouts)]);
    const after = targets
      .filter((t) => t.key !== "bare")
      .map(
        (t) =>
          `- \`${t.label}\` (${t.store}): ${t.final.alerts} alerts received, ${t.final.delivered} delivered to the console destination, queue depth ${t.final.depth} at the end; the queue was empty ${t.drains.map((d) => `${d.waitedMs} ms`).join(" / ")} after its runs ended${t.drains.some((d) => d.timedOut) ? " (**not drained** within 60 s: the destination fell behind)" : ""}; ${t.srv.warnings.count === 0 ? "no warnings logged" : `${t.srv.warnings.count} warning/error log lines, the last: ${JSON.stringify(t.srv.warnings.last)}`}.`,
      )
      .join("\n");

    const markdown = `## Webhook ingest

- **Date:** ${nowStamp()}
- **Machine:** ${machineLine()}; ${loadBefore} before, ${loadAfter} after
- **Code:** ${codeVersion()}
- **Result:** \`${judged.label}\` (${judged.store}) / bare node:http = **${round(ratio, 2)}×** accepted alerts/s (target ≥ ${TARGET_RATIO}×, and no non-2xx answers): **${pass ? "PASS" : "FAIL"}**

${mdTable(headers, rows)}

Medians of ${o.rounds} runs per target; non-2xx and errors are totals over all runs. "CPU µs/req" is the server process's user + system CPU time (all its threads: the event loop, kubecano's checkpoint thread, V8's helpers) over the warm-up, the run and (for kubecano) the deliveries finished after it, divided by the requests answered; "bare CPU / its CPU" is the throughput ratio the server would reach if each had a core of its own, and it moves much less than requests/s when other work shares the machine. Peak RSS is VmHWM from /proc at the end of the whole benchmark.

Per run, in the order they ran:

${mdTable(["round", "target", "accepted/s", "× bare (same round)", "CPU µs/req", "p50 ms", "p99 ms", "non-2xx", "errors"], perRun)}

After the benchmark:
${after}

Where kubecano's CPU goes, stage by stage, measured in-process without HTTP or load generator (\`node bench/ingest-stages.mjs\`: CPU time per call over ${stages.iterations ?? "n"} distinct one-alert bodies after a warm-up; stages overlap, e.g. the whole path includes the others):

${stages.rows !== undefined ? mdTable(["stage", "CPU µs per webhook", "note"], stages.rows) : `(not available: ${stages.error})`}

**Method.** \`bench/ingest.mjs\` starts every server as a child process on 127.0.0.1: \`bench/bare-server.mjs\` (node:http that reads the body, \`JSON.parse\`s it and answers 202: the baseline) and \`node bin/kubecano listen --log-format json\` (built dist/; ${variants[0].args.includes("--no-cluster") ? "\`--no-cluster\`, so the default workflows run without cluster reads; " : ""}a temp config with one \`console\` destination, text format, writing to a stdout that goes to /dev/null, and \`delivery.maxBacklog: 1000000\` so that no 503 is due to the bound)${variants.length > 1 ? `, once per queue: ${variants.map((v) => `${v.store} (\`${v.label}\`)`).join(" and ")}` : `, with ${variants[0].store}`}. autocannon ${o.connections} connections, pipelining ${o.pipelining}, ${o.warmup} s warm-up then ${o.duration} s per run; the targets take turns (${targets.map((t) => t.key).join(", ")}, then again). Each request POSTs the captured firing-crashloop webhook (${bodyBytes} bytes, one alert, \`Content-Type: application/json\`) with a distinct fingerprint and startsAt, so every request is a new alert and none is a duplicate. Accepted alerts/s = 2xx answers / run time. After each kubecano run the benchmark waits until that kubecano's queue is empty, so delivery work left over does not run during the next target's run. The machine has ${os.availableParallelism?.() ?? os.cpus().length} cores shared by autocannon (one process) and the server under test, and possibly by other work (see the load average): absolute figures are lower than where the load generator has its own cores; compare the ratios.`;

    return { name, pass, ratio, headers, rows, markdown, runs, targets: targets.map(({ srv, ...t }) => ({ ...t, warnings: srv.warnings })) };
  } finally {
    for (const s of servers.reverse()) await s.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const r = await run();
  process.stdout.write(`${r.markdown}\n`);
}
