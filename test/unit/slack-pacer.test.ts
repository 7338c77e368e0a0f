import { afterEach, describe, expect, it, vi } from "vitest";
import { deliverySchema } from "../../src/config/schema.js";
import { createIssue, type Issue } from "../../src/core/issue.js";
import { subjectFromLabels } from "../../src/core/subject.js";
import { DeliveryEngine, type DeliveryEvent } from "../../src/delivery/engine.js";
import { MemoryDeliveryStore } from "../../src/delivery/memory-store.js";
import { SqliteDeliveryStore } from "../../src/delivery/sqlite-store.js";
import { deferral } from "../../src/destinations/slack/errors.js";
import { Pacer, waitForSlot } from "../../src/destinations/slack/pacer.js";
import { DeliveryError, type Destination, type SendContext } from "../../src/destinations/types.js";
import { createLogger } from "../../src/observability/logger.js";
import { Writable } from "node:stream";

/**
 * The per-channel pacer (GCRA with reserved slots; the clock is injected,
 * nothing here waits on it) and the delivery engine's side of deferral: a
 * deferred delivery comes back at its slot without an attempt counted or a
 * warning logged, and frees its worker for other deliveries.
 */

function clock(start = 1_000_000): { now: () => number; advance: (ms: number) => void } {
  let t = start;
  return { now: () => t, advance: (ms) => void (t += ms) };
}

describe("Pacer", () => {
  it("lets a burst through at once, then one call per interval", () => {
    const c = clock();
    const p = new Pacer({ ratePerSecond: 1, burst: 3, now: c.now });
    expect([p.acquire("a", "1"), p.acquire("a", "2"), p.acquire("a", "3")]).toEqual([0, 0, 0]);
    expect(p.acquire("a", "4")).toBe(1000);
    c.advance(1000);
    expect(p.acquire("a", "4")).toBe(0);
    // A quiet lane refills up to the burst, no further.
    c.advance(60_000);
    expect([p.acquire("a", "5"), p.acquire("a", "6"), p.acquire("a", "7"), p.acquire("a", "8")]).toEqual([0, 0, 0, 1000]);
  });

  it("gives each waiting key its own slot, one interval apart, kept until it comes back", () => {
    const c = clock();
    const p = new Pacer({ ratePerSecond: 1, burst: 1, now: c.now });
    expect(p.acquire("a", "first")).toBe(0);
    const waits = Array.from({ length: 5 }, (_, i) => p.acquire("a", `k${i}`));
    expect(waits).toEqual([1000, 2000, 3000, 4000, 5000]);
    expect(p.backlog("a")).toBe(5);
    // Asking again does not move a slot.
    expect(p.acquire("a", "k3")).toBe(4000);
    // A newcomer goes after everyone who waits.
    expect(p.acquire("a", "late")).toBe(6000);
    c.advance(3000);
    expect(p.acquire("a", "k2")).toBe(0);
    expect(p.backlog("a")).toBe(3);
  });

  it("lanes are independent", () => {
    const p = new Pacer({ ratePerSecond: 1, burst: 1, now: clock().now });
    expect(p.acquire("a", "1")).toBe(0);
    expect(p.acquire("a", "2")).toBe(1000);
    expect(p.acquire("b", "1")).toBe(0);
  });

  it("a released slot is a hole the next caller takes; a transferred slot goes to the waiting key", () => {
    const c = clock();
    const p = new Pacer({ ratePerSecond: 1, burst: 1, now: c.now });
    p.acquire("a", "0");
    expect(p.acquire("a", "x")).toBe(1000);
    expect(p.acquire("a", "y")).toBe(2000);
    p.release("a", "x");
    expect(p.acquire("a", "z")).toBe(1000);
    expect(p.backlog("a")).toBe(2);
    // The summary waits for a late slot; a delivery that gives up its earlier one hands it over.
    expect(p.acquire("a", "summary")).toBe(3000);
    p.transfer("a", "y", "summary");
    expect(p.acquire("a", "summary")).toBe(2000);
    expect(p.holds("a", "y")).toBe(false);
    // The summary's old slot is free again.
    expect(p.acquire("a", "w")).toBe(3000);
  });

  it("a pause (429 with Retry-After) holds the lane, voids earlier slots, and leaves other lanes alone", () => {
    const c = clock();
    const p = new Pacer({ ratePerSecond: 1, burst: 3, now: c.now });
    expect(p.acquire("a", "r")).toBe(0);
    p.acquire("a", "1");
    p.acquire("a", "2");
    expect(p.acquire("a", "early")).toBe(1000);
    p.pause("a", 7000);
    expect(p.acquire("a", "early")).toBe(7000);
    // No burst right after a 429: one call per interval from the end of the pause.
    expect(p.acquire("a", "next")).toBe(8000);
    expect(p.acquire("a", "after")).toBe(9000);
    expect(p.acquire("b", "x")).toBe(0);
  });

  it("forgets reservations abandoned long ago", () => {
    const c = clock();
    const p = new Pacer({ ratePerSecond: 1, burst: 1, now: c.now });
    p.acquire("a", "0");
    for (let i = 0; i < 10; i++) p.acquire("a", `gone${i}`);
    expect(p.backlog("a")).toBe(10);
    c.advance(120_000);
    expect(p.backlog("a")).toBe(0);
  });
});

describe("waitForSlot", () => {
  it("sleeps for a short wait, defers a long one when the caller can reschedule, and sleeps when it cannot", async () => {
    const p = new Pacer({ ratePerSecond: 20, burst: 1 });
    await waitForSlot(p, "a", "1", {});
    // 50 ms away: slept in place even when deferrable.
    await waitForSlot(p, "a", "2", { deferrable: true });
    const slow = new Pacer({ ratePerSecond: 0.1, burst: 1 });
    await waitForSlot(slow, "a", "1", {});
    const e = await waitForSlot(slow, "a", "2", { deferrable: true }).then(
      () => undefined,
      (x: unknown) => x,
    );
    expect(e).toBeInstanceOf(DeliveryError);
    expect(e).toMatchObject({ defer: true, retryable: true, code: "paced" });
    expect((e as DeliveryError).retryAfterMs).toBeGreaterThan(5_000);
    // Not deferrable: waits, and an abort ends the wait.
    const ac = new AbortController();
    const waiting = waitForSlot(slow, "a", "3", { signal: ac.signal });
    ac.abort(new Error("shutting down"));
    await expect(waiting).rejects.toThrow("shutting down");
  });
});

// ───────────────────────────── the engine's side ─────────────────────────────

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

let seq = 0;
function issue(fp: string): Issue {
  return createIssue({
    title: `alert ${++seq}`,
    aggregationKey: "Test",
    severity: "LOW",
    status: "FIRING",
    source: "prometheus",
    type: "alert",
    subject: subjectFromLabels({ pod: fp }),
    startsAt: new Date(Date.UTC(2026, 0, 1) + seq * 1000).toISOString(),
    clusterName: "test",
    fingerprint: fp,
  });
}

function captureLog(): { log: ReturnType<typeof createLogger>; lines: () => Record<string, unknown>[] } {
  const out: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer | string, _e, cb) {
      out.push(chunk.toString());
      cb();
    },
  });
  return { log: createLogger({ stream, format: "json", level: "debug" }), lines: () => out.join("").split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l) as Record<string, unknown>) };
}

describe("the delivery engine and deferral", () => {
  it.each(["memory", "sqlite"])("a deferred delivery comes back at its time, without an attempt counted or a warning (%s store)", async (kind) => {
    const store = kind === "memory" ? new MemoryDeliveryStore({ maxBacklog: 100 }) : SqliteDeliveryStore.open({ stateDir: ":memory:", maxBacklog: 100 });
    cleanups.push(() => store.close());
    const calls: { id: string; attempt: number; deferrable: boolean | undefined }[] = [];
    const deferTimes = new Map<string, number>();
    const d: Destination = {
      name: "paced",
      type: "test",
      render: () => ({ kind: "text", body: "" }),
      async send(i: Issue, ctx: SendContext) {
        calls.push({ id: i.id, attempt: ctx.attempt, deferrable: ctx.deferrable });
        const n = deferTimes.get(i.id) ?? 0;
        deferTimes.set(i.id, n + 1);
        if (n < 3) throw deferral(20, "paced in the test");
        return { remoteId: `r-${i.id}` };
      },
    };
    const c = captureLog();
    const engine = new DeliveryEngine({ store, destinations: [d], config: deliverySchema.parse({ concurrency: 1, retry: { initialDelay: "10s" } }), log: c.log });
    cleanups.push(() => engine.stop());
    const events: DeliveryEvent[] = [];
    engine.on("delivery", (e) => events.push(e));
    engine.start();
    const a = issue("fp-a");
    await engine.submit([a]);
    await vi.waitFor(() => expect(events).toHaveLength(1), { timeout: 5_000, interval: 10 });
    // Three deferrals then success: every call was attempt 1 (nothing counted), deferrable, and only the success is an event.
    expect(calls.map((x) => x.attempt)).toEqual([1, 1, 1, 1]);
    expect(calls.every((x) => x.deferrable === true)).toBe(true);
    expect(events).toEqual([expect.objectContaining({ outcome: "success", attempt: 1, remoteId: `r-${a.id}` })]);
    expect(store.recent(1)[0]!.deliveries[0]).toMatchObject({ state: "done", attempts: 0 });
    expect(c.lines().filter((l) => l["level"] === "warn" || l["level"] === "error")).toEqual([]);
    expect(c.lines().filter((l) => /^deferred: paced in the test/.test(String(l["msg"])))).toHaveLength(3);
  });

  it("deferral frees the worker: a delivery behind a long-deferred one goes out first", async () => {
    const store = new MemoryDeliveryStore({ maxBacklog: 100 });
    cleanups.push(() => store.close());
    const order: string[] = [];
    const slow = new Set<string>();
    const d: Destination = {
      name: "paced",
      type: "test",
      render: () => ({ kind: "text", body: "" }),
      async send(i: Issue) {
        if (slow.has(i.id)) {
          slow.delete(i.id);
          throw deferral(300, "busy channel");
        }
        order.push(i.title);
        return {};
      },
    };
    const engine = new DeliveryEngine({ store, destinations: [d], config: deliverySchema.parse({ concurrency: 1 }), log: createLogger({ stream: new Writable({ write: (_c, _e, cb) => cb() }), format: "json", level: "error" }) });
    cleanups.push(() => engine.stop());
    engine.start();
    const busy = issue("fp-busy");
    const other = issue("fp-other");
    slow.add(busy.id);
    await engine.submit([busy, other]);
    await vi.waitFor(() => expect(order).toHaveLength(2), { timeout: 5_000, interval: 10 });
    expect(order).toEqual([other.title, busy.title]);
  });
});
