/**
 * The delivery engine on the durable store: in-doubt attempts are looked up
 * before sending again, only destinations that can look pay for recording
 * attempts, work left at shutdown is delivered exactly once by the next
 * run, and an operator's retry reaches a running engine.
 */
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { Writable } from "node:stream";
import Database from "better-sqlite3";
import { afterAll, afterEach, describe, expect, it, vi } from "vitest";
import { deliverySchema } from "../../src/config/schema.js";
import { createIssue, type Issue, type IssueStatus } from "../../src/core/issue.js";
import { subjectFromLabels } from "../../src/core/subject.js";
import { DeliveryEngine, type DeliveryEvent } from "../../src/delivery/engine.js";
import { DB_FILE, SqliteDeliveryStore } from "../../src/delivery/sqlite-store.js";
import { DeliveryError, type Destination, type FindContext, type SendContext, type SendResult } from "../../src/destinations/types.js";
import { createLogger } from "../../src/observability/logger.js";

let n = 0;
function issue(fingerprint: string, status: IssueStatus = "FIRING"): Issue {
  const k = ++n;
  return createIssue({
    title: `issue ${k}`,
    aggregationKey: "Test",
    severity: "LOW",
    status,
    source: "prometheus",
    type: "alert",
    subject: subjectFromLabels({ pod: fingerprint }),
    startsAt: new Date(Date.UTC(2026, 0, 1) + k * 1000).toISOString(),
    clusterName: "test",
    fingerprint,
  });
}

interface Recorder extends Destination {
  readonly sends: { issue: Issue; ctx: SendContext }[];
  readonly finds: { issue: Issue; ctx: FindContext }[];
}

/** An in-process destination recording every call; `find` given = it can look for earlier attempts. */
function destination(
  name: string,
  send: (issue: Issue, ctx: SendContext) => Promise<SendResult> | SendResult,
  find?: (issue: Issue, ctx: FindContext) => Promise<SendResult | undefined> | SendResult | undefined,
): Recorder {
  const sends: Recorder["sends"] = [];
  const finds: Recorder["finds"] = [];
  const d: Recorder = {
    name,
    type: "fake",
    render: () => ({ kind: "text", body: "" }),
    sends,
    finds,
    async send(i, ctx) {
      sends.push({ issue: i, ctx });
      return send(i, ctx);
    },
  };
  if (find !== undefined) {
    return {
      ...d,
      async findExisting(i: Issue, ctx: FindContext) {
        finds.push({ issue: i, ctx });
        return find(i, ctx);
      },
    };
  }
  return d;
}

/** Never answers; rejects when the engine aborts the attempt (timeout or shutdown). */
function hang(_i: Issue, ctx: SendContext): Promise<SendResult> {
  return new Promise((_resolve, reject) => ctx.signal.addEventListener("abort", () => reject(new Error("aborted")), { once: true }));
}

const dirs: string[] = [];
const stores: SqliteDeliveryStore[] = [];
const engines: DeliveryEngine[] = [];
afterEach(() => {
  for (const e of engines.splice(0)) e.stop();
  for (const s of stores.splice(0)) s.close();
});
afterAll(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function stateDir(): string {
  const d = mkdtempSync(path.join(os.tmpdir(), "kubecano-engine-durable-"));
  dirs.push(d);
  return path.join(d, "state");
}

function openStore(dir: string, owner = true): SqliteDeliveryStore {
  const s = SqliteDeliveryStore.open({ stateDir: dir, maxBacklog: 10_000, ...(owner ? {} : { owner: false }) });
  stores.push(s);
  return s;
}

function engineOn(store: SqliteDeliveryStore, destinations: Destination[], config: Record<string, unknown> = {}): { engine: DeliveryEngine; events: DeliveryEvent[] } {
  const sink = new Writable({ write: (_c, _e, cb) => cb() });
  const engine = new DeliveryEngine({
    store,
    destinations,
    config: deliverySchema.parse({ concurrency: 2, attemptTimeout: "60s", retry: { initialDelay: "10ms", maxDelay: "50ms", maxAge: "1h" }, ...config }),
    log: createLogger({ stream: sink, format: "json", level: "info" }),
  });
  engines.push(engine);
  const events: DeliveryEvent[] = [];
  engine.on("delivery", (e) => events.push(e));
  return { engine, events };
}

const waitFor = (fn: () => void, timeout = 5_000): Promise<void> => vi.waitFor(fn, { timeout, interval: 10 });

function attemptMarkers(dir: string): Record<string, number | null> {
  const db = new Database(path.join(dir, DB_FILE), { readonly: true });
  try {
    const rows = db.prepare("SELECT destination, attempt_started_at FROM deliveries ORDER BY seq").all() as { destination: string; attempt_started_at: number | null }[];
    return Object.fromEntries(rows.map((r) => [r.destination, r.attempt_started_at]));
  } finally {
    db.close();
  }
}

describe("DeliveryEngine on the SQLite store", () => {
  it("asks the destination about each in-doubt delivery once: completes what it finds without sending, sends what it does not", async () => {
    const dir = stateDir();
    const found = issue("fp-found");
    const missing = issue("fp-missing");
    const before = openStore(dir);
    await before.accept([found, missing].map((i) => ({ issue: i, destinations: ["slack"] })));
    const startedAt = Date.now();
    before.take("slack", startedAt, { recordAttempt: true });
    before.take("slack", startedAt, { recordAttempt: true });
    // The process dies mid-send: no outcome is recorded.
    before.close();

    const store = openStore(dir);
    let missingSends = 0;
    const slack = destination(
      "slack",
      (i) => {
        if (i.id === missing.id && ++missingSends === 1) throw new DeliveryError("remote said http_503", { retryable: true, code: "http_503" });
        return { remoteId: `sent-${i.id}` };
      },
      (i) => (i.id === found.id ? { remoteId: "found-it" } : undefined),
    );
    const { engine, events } = engineOn(store, [slack]);
    engine.start();
    await waitFor(() => expect(store.depth()).toBe(0));

    expect(slack.finds.map((f) => f.issue.id).sort()).toEqual([found.id, missing.id].sort());
    expect(slack.finds.map((f) => f.ctx.since)).toEqual([startedAt, startedAt]);
    // The retry after the failed send is not in doubt: no second look.
    expect(slack.sends.map((s) => [s.issue.id, s.ctx.attempt])).toEqual([
      [missing.id, 1],
      [missing.id, 2],
    ]);
    const byIssue = Object.fromEntries(store.recent(10).map((r) => [r.issue.id, r.deliveries[0]]));
    expect(byIssue[found.id]).toMatchObject({ state: "done", remoteId: "found-it" });
    expect(byIssue[missing.id]).toMatchObject({ state: "done", remoteId: `sent-${missing.id}`, attempts: 1 });
    expect(events.filter((e) => e.outcome === "success").map((e) => e.issueId).sort()).toEqual([found.id, missing.id].sort());
  });

  it("records the start of an attempt only for destinations that can look for it afterwards", async () => {
    const dir = stateDir();
    const store = openStore(dir);
    const plain = destination("plain", hang);
    const finder = destination("finder", hang, () => undefined);
    const { engine } = engineOn(store, [plain, finder]);
    engine.submit([issue("fp")]);
    await waitFor(() => expect(plain.sends.length + finder.sends.length).toBe(2));
    const markers = attemptMarkers(dir);
    expect(markers["plain"]).toBeNull();
    expect(typeof markers["finder"]).toBe("number");
    expect(finder.finds).toEqual([]);

    // After a shutdown that aborted both sends, only the finder's delivery is in doubt at the next start.
    const left = await engine.drain(0);
    expect(left.left).toBe(2);
    store.close();
    const next = openStore(dir);
    const plain2 = destination("plain", () => ({}));
    const finder2 = destination("finder", () => ({}), () => undefined);
    engineOn(next, [plain2, finder2]).engine.start();
    await waitFor(() => expect(next.depth()).toBe(0));
    expect(finder2.finds).toHaveLength(1);
    expect([plain2.sends.length, finder2.sends.length]).toEqual([1, 1]);
  });

  it("drain leaves undelivered work in the store; the next store and engine on the directory deliver it exactly once, in order", async () => {
    const dir = stateDir();
    const store = openStore(dir);
    const stuck = destination("d", hang);
    const { engine } = engineOn(store, [stuck], { concurrency: 2 });
    const firing = issue("fp-1");
    const resolved = issue("fp-1", "RESOLVED");
    const others = [issue("fp-2"), issue("fp-3"), issue("fp-4")];
    const all = [firing, resolved, ...others];
    engine.submit(all);
    await waitFor(() => expect(stuck.sends).toHaveLength(2));
    const { left } = await engine.drain(50);
    expect(left).toBe(5);
    expect(store.list({ states: ["pending"] })).toHaveLength(5);
    expect(store.list({ states: ["pending"] }).every((d) => d.attempts === 0)).toBe(true);
    store.close();

    const next = openStore(dir);
    const healthy = destination("d", (i) => ({ remoteId: `r-${i.id}` }));
    engineOn(next, [healthy]).engine.start();
    await waitFor(() => expect(next.depth()).toBe(0));
    const sent = healthy.sends.map((s) => s.issue.id);
    expect([...sent].sort()).toEqual(all.map((i) => i.id).sort());
    expect(sent.indexOf(firing.id)).toBeLessThan(sent.indexOf(resolved.id));
    expect(next.list({ states: ["done"] })).toHaveLength(5);
    next.close();

    // Nothing is left for a third run.
    const third = openStore(dir);
    const idle = destination("d", () => ({}));
    engineOn(third, [idle]).engine.start();
    expect(third.depth()).toBe(0);
    await new Promise((r) => setTimeout(r, 50));
    expect(idle.sends).toEqual([]);
  });

  it("a running, idle engine delivers a dead letter an operator queued again", async () => {
    const dir = stateDir();
    const store = openStore(dir);
    let calls = 0;
    const d = destination("d", () => {
      if (++calls === 1) throw new DeliveryError("channel_not_found", { retryable: false, code: "channel_not_found" });
      return { remoteId: "ok" };
    });
    const { engine, events } = engineOn(store, [d]);
    engine.start();
    const i = issue("fp");
    engine.submit([i]);
    await waitFor(() => expect(events.map((e) => e.outcome)).toEqual(["failed"]));
    expect(store.list({ states: ["dead"] })).toHaveLength(1);

    // `kubecano deliveries retry --all-dead` from another process; no new webhook arrives.
    const operator = openStore(dir, false);
    expect(operator.requeueAllDead()).toBe(1);
    operator.close();
    await waitFor(() => expect(events.map((e) => e.outcome)).toEqual(["failed", "success"]), 10_000);
    expect(d.sends.map((s) => s.issue.id)).toEqual([i.id, i.id]);
    expect(store.list({ states: ["done"] }).map((x) => x.issueId)).toEqual([i.id]);
  });

  it("an operator's retry is not held up by a worker sleeping until a far-off retry", async () => {
    const dir = stateDir();
    const store = openStore(dir);
    const slow = issue("fp-slow");
    const dead = issue("fp-dead");
    let deadCalls = 0;
    const d = destination("d", (i) => {
      if (i.id === slow.id) throw new DeliveryError("rate limited", { retryable: true, code: "ratelimited", retryAfterMs: 3_600_000 });
      if (++deadCalls === 1) throw new DeliveryError("channel_not_found", { retryable: false, code: "channel_not_found" });
      return {};
    });
    const { engine, events } = engineOn(store, [d], { retry: { initialDelay: "10ms", maxDelay: "2h", maxAge: "1d" } });
    engine.start();
    engine.submit([slow, dead]);
    await waitFor(() => expect(events.map((e) => e.outcome).sort()).toEqual(["failed", "retry"]));
    // Outcomes are committed with the next group commit; an operator is never this quick.
    store.flush();
    const operator = openStore(dir, false);
    expect(operator.requeue(`${dead.id}/d`)).toBe(true);
    operator.close();
    await waitFor(() => expect(events.filter((e) => e.outcome === "success").map((e) => e.issueId)).toEqual([dead.id]), 10_000);
    expect(store.depth()).toBe(1);
  });
});
