import { Writable } from "node:stream";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { deliverySchema } from "../../src/config/schema.js";
import { createIssue, type Issue } from "../../src/core/issue.js";
import { subjectFromLabels } from "../../src/core/subject.js";
import { DeliveryEngine, type DeliveryEvent } from "../../src/delivery/engine.js";
import { MemoryDeliveryStore } from "../../src/delivery/memory-store.js";
import { closeHttpAgent } from "../../src/destinations/http.js";
import { DESTINATION_TYPES } from "../../src/destinations/registry.js";
import { create } from "../../src/destinations/slack/index.js";
import { checkLimits } from "../../src/destinations/slack/limits.js";
import { renderStormSummary, stormListFile, STORM_EVENT_TYPE, type FoldEntry } from "../../src/destinations/slack/storm.js";
import type { Destination } from "../../src/destinations/types.js";
import { createLogger, type Logger } from "../../src/observability/logger.js";
import { checkBlockKit, startSlackFake, type FakeMessage, type SlackFake } from "../fakes/slack.js";

/**
 * Storm mode through the delivery engine, against the Slack fake with
 * Slack's per-channel rate limit (1 message/s, bursts of 5): a burst of
 * alerts into one channel is folded into one summary edited in place,
 * nothing is lost, nothing is answered 429, and a restart mid-storm resumes
 * it. Counts and order only; no wall-clock assertions.
 */

const TOKEN = "xoxb-storm-test-token";
let fake: SlackFake;
const cleanups: (() => unknown)[] = [];

beforeAll(async () => {
  fake = await startSlackFake({ tokens: [TOKEN], rateLimit: { perChannel: { ratePerSec: 1, burst: 5 } } });
  fake.addChannel({ id: "C0SECOND01", name: "second" });
});
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
  fake.reset();
});
afterAll(async () => {
  await fake.close();
  await closeHttpAgent();
});

function quietLog(): Logger {
  return createLogger({ stream: new Writable({ write: (_c, _e, cb) => cb() }), format: "json", level: "error" });
}

let seq = 0;
const RUN = Date.now().toString(36);
function alert(n: number, o: { channel?: string; status?: "FIRING" | "RESOLVED"; fingerprint?: string } = {}): Issue {
  return createIssue({
    title: `Storm alert ${RUN}-${n}`,
    aggregationKey: n % 3 === 0 ? "KubePodCrashLooping" : "KubePodNotReady",
    severity: n % 5 === 0 ? "HIGH" : "LOW",
    status: o.status ?? "FIRING",
    source: "prometheus",
    type: "alert",
    subject: subjectFromLabels({ alertname: "X", namespace: `ns-${n % 4}`, pod: `pod-${n}`, chan: o.channel ?? "alerts" }),
    startsAt: new Date(Date.UTC(2026, 0, 1) + n * 1000).toISOString(),
    ...(o.status === "RESOLVED" ? { endsAt: new Date(Date.UTC(2026, 0, 1, 1) + n * 1000).toISOString() } : {}),
    clusterName: "storm",
    fingerprint: o.fingerprint ?? `storm-${RUN}-${n}-${++seq}`,
  });
}

interface Rig {
  readonly store: MemoryDeliveryStore;
  readonly engine: DeliveryEngine;
  readonly dest: Destination;
  readonly events: DeliveryEvent[];
}

function rig(store = new MemoryDeliveryStore({ maxBacklog: 10_000 }), params: Record<string, unknown> = {}): Rig {
  const p = DESTINATION_TYPES.slack.params.parse({
    token: TOKEN,
    channel: "#{{ labels.chan }}",
    fallback_channel: "#alerts",
    api_url: fake.url,
    storm: { threshold: 20, update_interval: "300ms", quiet: "1500ms" },
    update_interval: "300ms",
    ...params,
  });
  const dest = create("slack", p, { log: quietLog(), state: store });
  const engine = new DeliveryEngine({ store, destinations: [dest], config: deliverySchema.parse({ concurrency: 4, retry: { initialDelay: "200ms", maxDelay: "2s" } }), log: quietLog() });
  const events: DeliveryEvent[] = [];
  engine.on("delivery", (e) => events.push(e));
  engine.start();
  cleanups.push(() => dest.close?.(), () => engine.stop());
  return { store, engine, dest, events };
}

function payload(m: FakeMessage): Record<string, unknown> {
  return m.metadata?.event_payload ?? {};
}

/** Fingerprints listed in the storm list files the fake holds. */
function listed(): Set<string> {
  const out = new Set<string>();
  for (const f of fake.files) {
    if (!f.completed || !/^storm-/.test(f.filename)) continue;
    const lines = (f.bytes?.toString("utf8") ?? "").trimEnd().split("\n");
    // The first line is the header.
    for (const line of lines.slice(1)) out.add(line.trim().split(/\s+/).pop()!);
  }
  return out;
}

function summaries(): FakeMessage[] {
  return fake.messages.filter((m) => m.metadata?.event_type === STORM_EVENT_TYPE);
}

describe("storm mode", () => {
  it("500 alerts into one channel: one summary edited in place, every alert accounted for, no 429, few messages", async () => {
    const r = rig();
    const alerts = Array.from({ length: 500 }, (_, n) => alert(n));
    await r.engine.submit(alerts);
    await vi.waitFor(() => expect(fake.messages.some((m) => /^:checkered_flag: Storm over: /.test(m.text))).toBe(true), { timeout: 60_000, interval: 100 });
    await vi.waitFor(() => expect(r.engine.backlog()).toBe(0), { timeout: 10_000, interval: 50 });

    expect(fake.stats().rateLimited).toBe(0);
    expect(r.events.filter((e) => e.outcome !== "success")).toEqual([]);
    expect(r.events).toHaveLength(500);

    // Every alert is represented: its own root, or listed in the storm's list file.
    const own = new Set(fake.messages.filter((m) => m.metadata?.event_type === "kubecano_issue").map((m) => String(payload(m)["fingerprint"])));
    const inList = listed();
    const missing = alerts.filter((a) => !own.has(a.fingerprint) && !inList.has(a.fingerprint));
    expect(missing.map((a) => a.title)).toEqual([]);
    // A bounded number of messages: the first few, one summary, the list and the "storm over" reply.
    expect(fake.messages.length).toBeLessThanOrEqual(20 + 5);
    expect(summaries()).toHaveLength(1);
    const summary = summaries()[0]!;
    expect(summary.edits).toBeGreaterThanOrEqual(1);
    expect(summary.text).toBe(`Alert storm over: ${inList.size} alerts (${inList.size} firing, 0 resolved)`);
    const check = checkBlockKit(summary.blocks, summary.attachments);
    expect(check.errors).toEqual([]);
    // Folded deliveries point at the summary.
    const folded = r.events.filter((e) => e.remoteId === `C0ALERTS01/${summary.ts}`);
    expect(folded).toHaveLength(inList.size);
    expect(own.size + inList.size).toBe(500);
    // The list and the end of the storm are in the summary's thread.
    const thread = fake.replies("#alerts", summary.ts);
    expect(thread.map((m) => m.subtype ?? "message")).toEqual(["file_share", "message"]);
    expect(thread[1]!.text).toMatch(new RegExp(`^:checkered_flag: Storm over: ${inList.size} alerts in `));

    // After the storm: a folded alert's resolution and repeat reply in the summary's thread, naming the alert; nothing is edited.
    const a = alerts.find((x) => inList.has(x.fingerprint))!;
    const edits = summary.edits;
    await r.engine.submit([{ ...alert(0, { fingerprint: a.fingerprint, status: "RESOLVED" }), title: a.title }]);
    await vi.waitFor(() => expect(fake.replies("#alerts", summary.ts)).toHaveLength(3), { timeout: 10_000, interval: 50 });
    const reply = fake.replies("#alerts", summary.ts)[2]!;
    expect(payload(reply)).toMatchObject({ kind: "reply", status: "RESOLVED", fingerprint: a.fingerprint });
    expect(JSON.stringify(reply.blocks)).toContain(a.title);
    expect(fake.message("#alerts", summary.ts)!.edits).toBe(edits);
    // New alerts get their own messages again.
    const fresh = alert(1000);
    await r.engine.submit([fresh]);
    await vi.waitFor(() => expect(fake.topLevel().some((m) => payload(m)["issue_id"] === fresh.id)).toBe(true), { timeout: 10_000, interval: 50 });
    expect(fake.stats().rateLimited).toBe(0);
  });

  it("a storm in one channel does not hold up an alert for another", async () => {
    const r = rig();
    await r.engine.submit(Array.from({ length: 200 }, (_, n) => alert(n)));
    // The storm is on: the first alert for #second comes in behind 200 for #alerts.
    await vi.waitFor(() => expect(summaries().length).toBe(1), { timeout: 20_000, interval: 20 });
    const other = alert(5000, { channel: "second" });
    let alertsDoneWhenPosted: number | undefined;
    const posted = fake.waitFor(() => {
      if (fake.topLevel("#second").length === 0) return false;
      alertsDoneWhenPosted ??= r.events.filter((e) => e.issueId !== other.id).length;
      return true;
    }, 20_000);
    await r.engine.submit([other]);
    await posted;
    expect(payload(fake.topLevel("#second")[0]!)["issue_id"]).toBe(other.id);
    // It was posted while #alerts still had deliveries waiting, not after its backlog drained.
    expect(alertsDoneWhenPosted).toBeLessThan(200);
    await vi.waitFor(() => expect(r.engine.backlog()).toBe(0), { timeout: 30_000, interval: 50 });
    expect(fake.stats().rateLimited).toBe(0);
  });

  it("a restart mid-storm resumes it from the state: the summary, the folded deliveries and its end", async () => {
    const store = new MemoryDeliveryStore({ maxBacklog: 10_000 });
    const first = rig(store, { storm: { threshold: 20, update_interval: "300ms", quiet: "60s" } });
    const alerts = Array.from({ length: 120 }, (_, n) => alert(n));
    await first.engine.submit(alerts);
    await vi.waitFor(() => expect(summaries().length === 1 && summaries()[0]!.edits >= 1).toBe(true), { timeout: 30_000, interval: 20 });
    // Stop: in-flight sends are released, the folded ones stay waiting in the store.
    first.engine.stop();
    await first.dest.close?.();
    const doneBefore = first.events.length;
    expect(store.depth("slack")).toBeGreaterThan(0);

    const second = rig(store, { storm: { threshold: 20, update_interval: "300ms", quiet: "1s" } });
    await vi.waitFor(() => expect(fake.messages.some((m) => /^:checkered_flag: Storm over: /.test(m.text))).toBe(true), { timeout: 60_000, interval: 100 });
    await vi.waitFor(() => expect(second.engine.backlog()).toBe(0), { timeout: 10_000, interval: 50 });
    expect(doneBefore + second.events.filter((e) => e.outcome === "success").length).toBe(120);
    // Still one summary: the restarted destination edited the same one.
    expect(summaries()).toHaveLength(1);
    const own = new Set(fake.messages.filter((m) => m.metadata?.event_type === "kubecano_issue").map((m) => String(payload(m)["fingerprint"])));
    const inList = listed();
    expect(alerts.filter((a) => !own.has(a.fingerprint) && !inList.has(a.fingerprint))).toEqual([]);
    expect(fake.stats().rateLimited).toBe(0);
  });

  it("storm: false posts every alert on its own, paced", async () => {
    const r = rig(undefined, { storm: false, rate_per_second: 4, burst: 4 });
    fake.setRateLimit({ perChannel: { ratePerSec: 5, burst: 5 } });
    await r.engine.submit(Array.from({ length: 30 }, (_, n) => alert(n)));
    await vi.waitFor(() => expect(r.engine.backlog()).toBe(0), { timeout: 30_000, interval: 50 });
    expect(fake.topLevel()).toHaveLength(30);
    expect(summaries()).toHaveLength(0);
    expect(fake.stats().rateLimited).toBe(0);
    fake.setRateLimit({ perChannel: { ratePerSec: 1, burst: 5 } });
  });
});

describe("storm renderings", () => {
  const entry = (n: number, o: Partial<FoldEntry> = {}): FoldEntry => ({
    issueId: `i${n}`,
    fingerprint: `fp${n}`,
    status: n % 7 === 0 ? "RESOLVED" : "FIRING",
    severity: n % 2 === 0 ? "HIGH" : "LOW",
    alert: `Alert${n % 90}`,
    where: `ns-${n % 13}/pod/p-${n}`,
    title: `title ${n}`,
    time: new Date(Date.UTC(2026, 0, 1) + n * 1000).toISOString(),
    ...o,
  });

  it("counts by alert, namespace and severity, within Slack's limits however many there are", () => {
    for (const n of [1, 50, 5000]) {
      const entries = Array.from({ length: n }, (_, i) => entry(i));
      const msg = renderStormSummary({ channel: "#alerts", startedAt: Date.UTC(2026, 0, 1) }, entries, { ended: false });
      expect(checkLimits(msg)).toEqual([]);
      expect(checkBlockKit(msg.blocks, msg.attachments).errors).toEqual([]);
      const resolved = entries.filter((e) => e.status === "RESOLVED").length;
      expect(msg.text).toBe(`Alert storm: ${n} alerts (${n - resolved} firing, ${resolved} resolved)`);
    }
    const big = renderStormSummary({ channel: "#alerts", startedAt: 0 }, Array.from({ length: 5000 }, (_, i) => entry(i)), { ended: true });
    expect(JSON.stringify(big)).toMatch(/_and \d+ more groups_/);
    expect(JSON.stringify(big)).toContain("Alert storm over");
    const small = JSON.stringify(renderStormSummary({ channel: "#alerts", startedAt: 0 }, [entry(1), entry(91), entry(3, { alert: "Other <b>" })], { ended: false }));
    expect(small).toMatch(/Alert1 +ns-1 +LOW +1 +0/);
    expect(small).toContain("Other &lt;b&gt;");
  });

  it("lists every folded Issue on its own line", () => {
    const f = stormListFile({ id: "s", startedAt: Date.UTC(2026, 0, 1, 10, 5) }, [entry(1), entry(7)]);
    expect(f.filename).toBe("storm-20260101-1005.txt");
    const lines = f.content.trimEnd().split("\n");
    expect(lines).toHaveLength(3);
    expect(lines[0]).toMatch(/^time +status +severity +alert +namespace\/object +title +fingerprint$/);
    expect(lines[2]).toMatch(/RESOLVED +LOW +Alert7 +ns-7\/pod\/p-7 +title 7 +fp7$/);
  });
});
