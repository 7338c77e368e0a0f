// Where one webhook's CPU goes inside kubecano, stage by stage, without HTTP
// or a load generator: each stage of the ingest path runs in this process on
// distinct one-alert bodies, and its CPU time (process.cpuUsage, so other work
// on the machine barely matters) is divided by the iterations. Diagnostic, not
// part of `npm run bench`:
//   npm run build && node bench/ingest-stages.mjs [--iterations 20000] [--whole-only] [--profile]
// --whole-only runs just the whole-path rows; --profile runs the whole path
// with the in-memory store under the V8 profiler and prints where its time goes;
// --json prints the rows as JSON (bench/ingest.mjs adds them to its section).
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { Writable } from "node:stream";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { Session } from "node:inspector/promises";
import { REPO_DIR, requireBuild, round, summariseProfile, textTable } from "./lib.mjs";

const { values } = parseArgs({ options: { iterations: { type: "string", default: "20000" }, "whole-only": { type: "boolean", default: false }, profile: { type: "boolean", default: false }, json: { type: "boolean", default: false } } });
const N = Number(values.iterations);
requireBuild();

const dist = (p) => import(pathToFileURL(path.join(REPO_DIR, "dist", p)).href);
const tryDist = (p) => dist(p).catch(() => undefined);
const { parseWebhookBody } = await dist("sources/alertmanager/parse.js");
const { alertmanagerToIssues } = await dist("sources/alertmanager/to-issues.js");
const { renderConsole } = await dist("destinations/console/render.js");
const { Metrics } = await dist("observability/metrics.js");
const { silentLogger } = await dist("observability/logger.js");
const { configSchema } = await dist("config/schema.js");
const { Pipeline } = await dist("pipeline.js");
const { DeliveryEngine } = await dist("delivery/engine.js");
const { createDestinations } = await dist("destinations/index.js");
const { MemoryDeliveryStore } = await dist("delivery/memory-store.js");
const sqlite = await tryDist("delivery/sqlite-store.js");

const fixture = JSON.parse(readFileSync(path.join(REPO_DIR, "test/fixtures/alertmanager/firing-crashloop.json"), "utf8"));
fixture.body.alerts[0].fingerprint = "@@FP@@";
const parts = JSON.stringify(fixture.body).split("@@FP@@");
let seq = 0;
const nextBody = () => Buffer.from(parts.join((++seq).toString(16).padStart(16, "0")));

/** CPU µs per call of fn(i), after a warm-up; bodies are prepared outside the timing. */
function measure(fn, prepare = () => undefined, iterations = N) {
  const warm = Math.min(2000, iterations);
  for (let i = 0; i < warm; i++) fn(prepare(i), i);
  const inputs = Array.from({ length: iterations }, (_, i) => prepare(i));
  const c0 = process.cpuUsage();
  for (let i = 0; i < iterations; i++) fn(inputs[i], i);
  const c = process.cpuUsage(c0);
  return (c.user + c.system) / iterations;
}

const config = configSchema.parse({
  clusterName: "bench",
  delivery: { maxBacklog: 10_000_000 },
  destinations: [{ name: "c", type: "console", params: { format: "text", color: "never", output: "stdout" } }],
});
const amOpts = { clusterName: "bench", severityMap: {} };
const payload = parseWebhookBody(nextBody()).value;
const issue = alertmanagerToIssues(payload, amOpts)[0];
const dir = mkdtempSync(path.join(os.tmpdir(), "kubecano-stages-"));
// Also when a stage throws: the state directories are ours alone.
process.on("exit", () => rmSync(dir, { recursive: true, force: true }));

const rows = [];
const add = (stage, us, note = "") => rows.push([stage, round(us, 1), note]);

if (!values["whole-only"] && !values.profile) {
add("baseline: Buffer → string → JSON.parse", measure((b) => JSON.parse(b.toString("utf8")), nextBody), "what bench/bare-server.mjs does");
add("parseWebhookBody (UTF-8 check, JSON.parse, zod)", measure((b) => parseWebhookBody(b), nextBody));
add("  of which zod validation", measure((v) => parseWebhookBody(v), () => JSON.stringify(JSON.parse(nextBody().toString()))) - measure((b) => JSON.parse(b.toString("utf8")), nextBody), "string input, minus the JSON.parse baseline (approx.)");
add("alertmanagerToIssues (1 alert)", measure(() => alertmanagerToIssues(payload, amOpts)));
add("renderConsole (text, no colour)", measure(() => renderConsole(issue, { color: false })));
{
  const m = new Metrics();
  add(
    "prom-client updates of one request",
    measure(() => {
      m.httpRequests.inc({ route: "alerts", code: "202" });
      m.alertsReceived.inc({ source: "alertmanager" }, 1);
      m.issuesCreated.inc({ source: "prometheus", severity: "LOW" });
      m.queueDepth.set({ destination: "c" }, 1);
      m.queueDepth.set({ destination: "c" }, 0);
      m.deliveries.inc({ destination: "c", outcome: "success" });
      m.deliveryLatency.observe(0.001, { destination: "c" });
      m.deliveryAttemptDuration.observe(0.001, { destination: "c" });
    }),
    "2 counters + 2 gauge sets + 1 counter + 2 histograms, as the path does",
  );
}
{
  const log = silentLogger();
  add("pino child logger per attempt", measure((x) => log.child({ destination: "c", issue: x, fingerprint: "0a732576aaf8ce3c", attempt: 1 }), (i) => `id-${i}`));
}

/**
 * accept + take + complete of one Issue to one destination, `batch` accepts
 * per event-loop turn. `accept` resolves only after the store's commit (the
 * durable store commits once per turn: group commit), so the take comes
 * after awaiting it; the completes of a batch are committed together in the
 * next turn's transaction, which the next batch's await also covers (and the
 * final flush is awaited before the clock stops). batch 1 is a lone webhook
 * (one transaction per alert); batch 5 is what the real server mostly sees
 * (a few connections' webhooks per turn); batch 50 is what 50 busy connections give.
 */
async function storeCycle(store, batch) {
  const make = () => alertmanagerToIssues(parseWebhookBody(nextBody()).value, amOpts)[0];
  const turn = async (issues) => {
    await Promise.all(issues.map((iss) => store.accept([{ issue: iss, destinations: ["c"] }])));
    for (let j = 0; j < issues.length; j++) {
      const claimed = store.take("c", Date.now(), { recordAttempt: false });
      if (claimed === undefined) throw new Error("nothing to take after an accept resolved");
      store.complete(claimed.delivery, undefined);
    }
  };
  const run = async (n) => {
    const batches = Array.from({ length: Math.ceil(n / batch) }, () => Array.from({ length: batch }, make));
    const c0 = process.cpuUsage();
    for (const b of batches) await turn(b);
    // The last completes' commit (queued for the next turn) belongs to the cycle too.
    await new Promise((r) => setImmediate(r));
    if (store.depth() !== 0) throw new Error(`${store.depth()} deliveries left after the cycle`);
    const c = process.cpuUsage(c0);
    return (c.user + c.system) / (batches.length * batch);
  };
  await run(Math.min(2000, N));
  return run(Math.min(N, 10_000));
}
const stores = [["MemoryDeliveryStore", () => new MemoryDeliveryStore({ maxBacklog: 10_000_000 })]];
if (sqlite?.SqliteDeliveryStore !== undefined) {
  const open = (stateDir) => (batch) =>
    sqlite.SqliteDeliveryStore.open({
      stateDir: stateDir === ":memory:" ? stateDir : `${stateDir}-${batch}`,
      maxBacklog: 10_000_000,
      dedupWindowMs: config.delivery.dedupWindow,
      retentionMs: config.delivery.retention,
      synchronous: config.delivery.durability,
      log: silentLogger(),
    });
  stores.push(["SqliteDeliveryStore :memory: (--ephemeral)", open(":memory:")], ["SqliteDeliveryStore on disk (default)", open(path.join(dir, "state"))]);
}
for (const [label, make] of stores) {
  for (const batch of [1, 5, 50]) {
    const store = make(batch);
    try {
      add(`store: accept + take + complete (${label}), ${batch}/turn`, await storeCycle(store, batch), batch === 1 ? "one commit per alert" : `group commit of ${batch} accepts`);
    } finally {
      store.close?.();
    }
  }
}

}

/** The whole in-process path: pipeline → engine → store → console destination (to a null stream). */
async function wholePath(label, store, { workflows = true } = {}) {
  const sink = new Writable({ write: (_c, _e, cb) => cb() });
  const log = silentLogger();
  const metrics = new Metrics({ defaultMetrics: false });
  const destinations = await createDestinations(config.destinations, { log, stdout: sink, stderr: sink, state: store });
  let engine;
  let pipeline;
  if (typeof Pipeline.prototype.attach === "function") {
    // Builds where the engine calls back into the pipeline: with the default
    // workflows, as listen builds it, but with no cluster (--no-cluster).
    const setup = workflows ? await tryDist("commands/setup.js") : undefined;
    pipeline =
      setup?.createPipeline !== undefined
        ? (await setup.createPipeline({ config, filepath: undefined, secrets: [] }, { cluster: false }, { log, metrics, env: {} })).pipeline
        : new Pipeline({ config, log, metrics });
    engine = new DeliveryEngine({ store, destinations, config: config.delivery, log, metrics, processor: pipeline, processing: { concurrency: 4, timeoutMs: 30_000 } });
    pipeline.attach(engine);
  } else {
    engine = new DeliveryEngine({ store, destinations, config: config.delivery, log, metrics });
    pipeline = new Pipeline({ config, engine, log, metrics });
  }
  engine.start();
  const drain = async () => {
    while (engine.backlog() > 0) await new Promise((r) => setImmediate(r));
  };
  const run = async (n) => {
    const bodies = Array.from({ length: n }, nextBody);
    const c0 = process.cpuUsage();
    for (let i = 0; i < n; i++) {
      const out = await pipeline.ingestAlertmanager(bodies[i]);
      if (out.kind !== "accepted") throw new Error(`not accepted: ${JSON.stringify(out)}`);
      // Let deliveries run as they would between requests.
      if (i % 50 === 49) await new Promise((r) => setImmediate(r));
    }
    await drain();
    const c = process.cpuUsage(c0);
    return (c.user + c.system) / n;
  };
  await run(2000);
  const us = await run(Math.min(N, 10_000));
  engine.stop();
  store.close?.();
  add(`whole path without HTTP (${label}${workflows ? "" : ", no workflows"})`, us, `parse → Issues → ${workflows ? "default workflows (no cluster)" : "no workflows"} → queue → console render → done`);
}
let session;
if (values.profile) {
  session = new Session();
  session.connect();
  await session.post("Profiler.enable");
  await session.post("Profiler.setSamplingInterval", { interval: 100 });
  await session.post("Profiler.start");
}
await wholePath("MemoryDeliveryStore", new MemoryDeliveryStore({ maxBacklog: 10_000_000 }));
if (session === undefined) await wholePath("MemoryDeliveryStore", new MemoryDeliveryStore({ maxBacklog: 10_000_000 }), { workflows: false });
if (session !== undefined) {
  const { profile } = await session.post("Profiler.stop");
  session.disconnect();
  process.stdout.write(`${summariseProfile(profile, 30)}\n`);
} else if (sqlite?.SqliteDeliveryStore !== undefined) {
  await wholePath(
    "SqliteDeliveryStore on disk",
    sqlite.SqliteDeliveryStore.open({ stateDir: path.join(dir, "state2"), maxBacklog: 10_000_000, dedupWindowMs: config.delivery.dedupWindow, retentionMs: config.delivery.retention, synchronous: config.delivery.durability, log: silentLogger() }),
  );
}
rmSync(dir, { recursive: true, force: true });

if (values.json) process.stdout.write(`${JSON.stringify({ iterations: N, rows })}\n`);
else process.stdout.write(`CPU per webhook (one alert), ${N} iterations per stage, Node ${process.version}\n\n${textTable(["stage", "µs", "note"], rows)}\n`);
