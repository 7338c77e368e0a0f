import { Writable } from "node:stream";
import fc from "fast-check";
import { afterEach, describe, expect, it, vi } from "vitest";
import { deliverySchema } from "../../src/config/schema.js";
import { createIssue, type Issue, type IssueStatus } from "../../src/core/issue.js";
import { subjectFromLabels } from "../../src/core/subject.js";
import { backoffDelay } from "../../src/delivery/backoff.js";
import { DeliveryEngine, toDeliveryError, type DeliveryEvent } from "../../src/delivery/engine.js";
import { MinHeap } from "../../src/delivery/heap.js";
import { MemoryDeliveryStore } from "../../src/delivery/memory-store.js";
import { BacklogFullError } from "../../src/delivery/store.js";
import { CONSOLE_CONCURRENCY, create as createConsole } from "../../src/destinations/console/index.js";
import { consoleParamsSchema } from "../../src/destinations/console/params.js";
import { DeliveryError, type Destination, type SendContext, type SendResult } from "../../src/destinations/types.js";
import { createLogger } from "../../src/observability/logger.js";
import { Metrics } from "../../src/observability/metrics.js";

let seq = 0;

function issue(fingerprint: string, status: IssueStatus = "FIRING", title = `issue ${++seq}`): Issue {
  return createIssue({
    title,
    aggregationKey: "Test",
    severity: "LOW",
    status,
    source: "prometheus",
    type: "alert",
    subject: subjectFromLabels({ pod: fingerprint }),
    // Distinct per Issue: no two are duplicates of each other.
    startsAt: new Date(Date.UTC(2026, 0, 1) + ++seq * 1000).toISOString(),
    clusterName: "test",
    fingerprint,
  });
}

interface Call {
  readonly issue: Issue;
  readonly ctx: SendContext;
}

/** A destination whose behaviour is a function of the call; records every call. */
function fake(name: string, behave: (call: Call, n: number) => Promise<SendResult> | SendResult = () => ({})): Destination & { calls: Call[]; done: Issue[] } {
  const calls: Call[] = [];
  const done: Issue[] = [];
  return {
    name,
    type: "fake",
    render: () => ({ kind: "text", body: "" }),
    calls,
    done,
    async send(i, ctx) {
      const call = { issue: i, ctx };
      calls.push(call);
      const r = await behave(call, calls.length);
      done.push(i);
      return r;
    },
  };
}

/** Never settles by itself; rejects when the engine aborts the attempt. */
function hang({ ctx }: Call): Promise<SendResult> {
  return new Promise((_resolve, reject) => ctx.signal.addEventListener("abort", () => reject(new Error("aborted")), { once: true }));
}

const retryable = (code = "http_503", retryAfterMs?: number): DeliveryError => new DeliveryError(`remote said ${code}`, { retryable: true, code, retryAfterMs });
const permanent = (code: string): DeliveryError => new DeliveryError(`remote said ${code}`, { retryable: false, code, hint: `fix ${code}` });

interface Setup {
  readonly engine: DeliveryEngine;
  readonly store: MemoryDeliveryStore;
  readonly events: DeliveryEvent[];
  readonly logs: () => Record<string, unknown>[];
  readonly metrics: Metrics;
}

const engines: DeliveryEngine[] = [];
afterEach(() => {
  for (const e of engines.splice(0)) e.stop();
});

function setup(
  destinations: Destination[],
  opts: { config?: Record<string, unknown>; maxBacklog?: number; now?: () => number; random?: () => number; onEvent?: (e: DeliveryEvent) => void } = {},
): Setup {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(chunk.toString());
      cb();
    },
  });
  const store = new MemoryDeliveryStore({ maxBacklog: opts.maxBacklog ?? 10_000, ...(opts.now !== undefined ? { now: opts.now } : {}) });
  const metrics = new Metrics({ defaultMetrics: false });
  const engine = new DeliveryEngine({
    store,
    destinations,
    config: deliverySchema.parse({ concurrency: 4, attemptTimeout: "60s", retry: { initialDelay: "100ms", maxDelay: "10s", maxAge: "1h" }, ...opts.config }),
    log: createLogger({ stream, format: "json", level: "info" }),
    metrics,
    ...(opts.now !== undefined ? { now: opts.now } : {}),
    ...(opts.random !== undefined ? { random: opts.random } : {}),
  });
  engines.push(engine);
  const events: DeliveryEvent[] = [];
  engine.on("delivery", (e) => {
    events.push(e);
    opts.onEvent?.(e);
  });
  return {
    engine,
    store,
    events,
    metrics,
    logs: () => lines.join("").split("\n").filter((l) => l !== "").map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}

/** A clock that only moves when told; a retry event moves it to the retry time, so retries run at once. */
function manualClock(start = 1_000_000): { now: () => number; set: (t: number) => void; advanceOnRetry: (e: DeliveryEvent) => void } {
  let t = start;
  return {
    now: () => t,
    set: (v) => void (t = v),
    advanceOnRetry: (e) => {
      if (e.outcome === "retry" && e.nextAttemptAt !== undefined) t = Math.max(t, e.nextAttemptAt);
    },
  };
}

const waitFor = (fn: () => void): Promise<void> => vi.waitFor(fn, { timeout: 5_000, interval: 5 });

describe("DeliveryEngine", () => {
  it("delivers every Issue exactly once to each destination", async () => {
    const dests = [fake("a"), fake("b", () => new Promise((r) => setImmediate(() => r({ remoteId: "b-id" })))), fake("c")];
    const { engine, store, events, metrics } = setup(dests);
    const issues = Array.from({ length: 30 }, (_, i) => issue(`fp-${i % 7}`));
    const accepted = await engine.submit(issues.slice(0, 10));
    expect(accepted).toMatchObject({ issues: 10, deliveries: 30 });
    await engine.submit(issues.slice(10));
    await waitFor(() => expect(store.depth()).toBe(0));
    for (const d of dests) {
      const ids = d.calls.map((c) => c.issue.id);
      expect(ids).toHaveLength(30);
      expect(new Set(ids)).toEqual(new Set(issues.map((i) => i.id)));
    }
    expect(events.filter((e) => e.outcome === "success")).toHaveLength(90);
    expect(events.find((e) => e.destination === "b")?.remoteId).toBe("b-id");
    expect((await metrics.render()).body).toMatch(/^kubecano_deliveries_total\{destination="a",outcome="success"\} 30$/m);
  });

  it("a destination that never answers does not hold up another", async () => {
    const stuck = fake("stuck", hang);
    const fast = fake("fast");
    const { engine, store } = setup([stuck, fast], { config: { concurrency: 2 } });
    await engine.submit(Array.from({ length: 20 }, (_, i) => issue(`fp-${i}`)));
    await waitFor(() => expect(fast.done).toHaveLength(20));
    // The stuck one holds its concurrency slots and nothing else.
    expect(stuck.calls).toHaveLength(2);
    expect(store.depth("stuck")).toBe(20);
    expect(store.depth("fast")).toBe(0);
  });

  it("retries retryable failures with exponential backoff, then succeeds", async () => {
    const clock = manualClock();
    const delays: number[] = [];
    const d = fake("d", ({ ctx }) => {
      if (ctx.attempt <= 3) throw retryable();
      return { remoteId: "ok" };
    });
    const { engine, events } = setup([d], {
      now: clock.now,
      random: () => 0.5,
      onEvent: (e) => {
        if (e.nextAttemptAt !== undefined) delays.push(e.nextAttemptAt - clock.now());
        clock.advanceOnRetry(e);
      },
    });
    await engine.submit([issue("fp")]);
    await waitFor(() => expect(d.done).toHaveLength(1));
    expect(d.calls.map((c) => c.ctx.attempt)).toEqual([1, 2, 3, 4]);
    // initialDelay 100 ms doubling per attempt, with random() = 0.5 giving 3/4 of it.
    expect(delays).toEqual([75, 150, 300]);
    expect(events.map((e) => `${e.outcome}:${e.attempt}`)).toEqual(["retry:1", "retry:2", "retry:3", "success:4"]);
    expect(events[0]).toMatchObject({ code: "http_503", error: "remote said http_503" });
  });

  it("caps the backoff at maxDelay", async () => {
    const clock = manualClock();
    const delays: number[] = [];
    const d = fake("d", ({ ctx }) => {
      if (ctx.attempt <= 6) throw retryable();
      return {};
    });
    const { engine } = setup([d], {
      config: { retry: { initialDelay: "100ms", maxDelay: "500ms", maxAge: "1h" } },
      now: clock.now,
      random: () => 1,
      onEvent: (e) => {
        if (e.nextAttemptAt !== undefined) delays.push(e.nextAttemptAt - clock.now());
        clock.advanceOnRetry(e);
      },
    });
    await engine.submit([issue("fp")]);
    await waitFor(() => expect(d.done).toHaveLength(1));
    expect(delays).toEqual([100, 200, 400, 500, 500, 500]);
  });

  it("honours Retry-After as a floor, not as a replacement", async () => {
    const clock = manualClock();
    const delays: number[] = [];
    const d = fake("d", ({ ctx }) => {
      if (ctx.attempt === 1) throw retryable("rate_limited", 5_000);
      if (ctx.attempt === 2) throw retryable("rate_limited", 10);
      return {};
    });
    const { engine, events } = setup([d], {
      now: clock.now,
      random: () => 1,
      onEvent: (e) => {
        if (e.nextAttemptAt !== undefined) delays.push(e.nextAttemptAt - clock.now());
        clock.advanceOnRetry(e);
      },
    });
    await engine.submit([issue("fp")]);
    await waitFor(() => expect(d.done).toHaveLength(1));
    // 5 s asked for beats the 100 ms backoff; 10 ms asked for loses to the 200 ms backoff.
    expect(delays).toEqual([5_000, 200]);
    expect(events.map((e) => e.outcome)).toEqual(["retry", "retry", "success"]);
  });

  it("does not wait for a retry before its time", async () => {
    const clock = manualClock();
    const d = fake("d", ({ issue: i, ctx }) => {
      if (i.fingerprint === "fp" && ctx.attempt === 1) throw retryable();
      return {};
    });
    const { engine, store, events } = setup([d], { now: clock.now, random: () => 1 });
    await engine.submit([issue("fp")]);
    await waitFor(() => expect(events).toHaveLength(1));
    expect(store.nextDueAt("d")).toBe(clock.now() + 100);
    // One ms early: submitting other work makes the worker look at its queue, and the retry is not taken.
    clock.set(clock.now() + 99);
    const other = issue("other");
    await engine.submit([other]);
    await waitFor(() => expect(d.done.map((i) => i.id)).toEqual([other.id]));
    expect(d.calls).toHaveLength(2);
    clock.set(clock.now() + 1);
    await engine.submit([issue("third")]);
    await waitFor(() => expect(d.done).toHaveLength(3));
    expect(d.calls.map((c) => c.ctx.attempt)).toEqual([1, 1, 2, 1]);
  });

  it("a permanent failure is attempted once, dead-lettered, and logged once per (destination, code)", async () => {
    const d = fake("slack-main", ({ issue: i }) => {
      throw permanent(i.title.startsWith("auth") ? "invalid_auth" : "channel_not_found");
    });
    const { engine, store, events, logs } = setup([d]);
    await engine.submit([issue("a", "FIRING", "chan 1"), issue("b", "FIRING", "chan 2"), issue("c", "FIRING", "chan 3"), issue("d", "FIRING", "auth 1"), issue("e", "FIRING", "auth 2")]);
    await waitFor(() => expect(events).toHaveLength(5));
    expect(d.calls).toHaveLength(5);
    expect(events.every((e) => e.outcome === "failed" && e.attempt === 1)).toBe(true);
    expect(events[0]).toMatchObject({ code: "channel_not_found", hint: "fix channel_not_found" });
    expect(store.dead()).toHaveLength(5);
    expect(store.depth()).toBe(0);
    const errors = logs().filter((l) => l["level"] === "error");
    expect(errors.map((l) => l["code"]).sort()).toEqual(["channel_not_found", "invalid_auth"]);
    expect(errors[0]).toMatchObject({ destination: "slack-main", hint: expect.stringMatching(/^fix /) });
  });

  it("gives up on a retryable failure after maxAge: a dead letter", async () => {
    const clock = manualClock(0);
    const d = fake("d", () => {
      throw retryable("timeout");
    });
    const { engine, store, events } = setup([d], {
      config: { retry: { initialDelay: "1s", maxDelay: "1s", maxAge: "5s" } },
      now: clock.now,
      random: () => 1,
      onEvent: clock.advanceOnRetry,
    });
    await engine.submit([issue("fp")]);
    await waitFor(() => expect(events.at(-1)?.outcome).toBe("failed"));
    // Attempts at 0, 1, 2, 3, 4 and 5 s; the next would be at 6 s, past maxAge.
    expect(d.calls).toHaveLength(6);
    expect(events.at(-1)?.error).toBe("gave up after 6 attempts over 5s: remote said timeout");
    expect(store.dead()).toHaveLength(1);
    expect(store.depth()).toBe(0);
  });

  it("never delivers a RESOLVED Issue before the FIRING one of the same fingerprint", async () => {
    const clock = manualClock();
    const order: string[] = [];
    const d = fake("d", ({ issue: i, ctx }) => {
      order.push(`${i.title}#${ctx.attempt}`);
      if (i.title === "firing" && ctx.attempt <= 2) throw retryable();
      return {};
    });
    const { engine, events } = setup([d], { now: clock.now, random: () => 1 });
    await engine.submit([issue("fp", "FIRING", "firing"), issue("fp", "RESOLVED", "resolved"), issue("other", "FIRING", "other")]);
    // The firing one waits for its retry; another fingerprint is not held up, the resolution is.
    await waitFor(() => expect(d.done.map((i) => i.title)).toEqual(["other"]));
    expect(order).not.toContain("resolved#1");
    clock.set(clock.now() + 100);
    await waitFor(() => expect(events.filter((e) => e.outcome === "retry")).toHaveLength(2));
    expect(order).not.toContain("resolved#1");
    clock.set(clock.now() + 200);
    await waitFor(() => expect(d.done.map((i) => i.title)).toEqual(["other", "firing", "resolved"]));
    expect(order.indexOf("resolved#1")).toBeGreaterThan(order.indexOf("firing#3"));
  });

  it("sends one Issue of a fingerprint at a time, in order", async () => {
    let inflight = 0;
    let max = 0;
    const d = fake("d", async () => {
      max = Math.max(max, ++inflight);
      await new Promise((r) => setImmediate(r));
      inflight--;
      return {};
    });
    const { engine } = setup([d], { config: { concurrency: 8 } });
    const issues = Array.from({ length: 6 }, () => issue("same"));
    await engine.submit(issues);
    await waitFor(() => expect(d.done).toHaveLength(6));
    expect(max).toBe(1);
    expect(d.done.map((i) => i.id)).toEqual(issues.map((i) => i.id));
  });

  it("respects the concurrency limit per destination", async () => {
    const gates: (() => void)[] = [];
    let inflight = 0;
    let max = 0;
    const d = fake("d", async () => {
      max = Math.max(max, ++inflight);
      await new Promise<void>((r) => gates.push(r));
      inflight--;
      return {};
    });
    const { engine } = setup([d], { config: { concurrency: 3 } });
    await engine.submit(Array.from({ length: 10 }, (_, i) => issue(`fp-${i}`)));
    while (d.done.length < 10) {
      await waitFor(() => expect(gates.length).toBe(Math.min(3, 10 - d.done.length)));
      expect(inflight).toBeLessThanOrEqual(3);
      const open = gates.splice(0);
      for (const g of open) g();
      const target = d.done.length + open.length;
      await waitFor(() => expect(d.done.length).toBe(target));
    }
    expect(max).toBe(3);
  });

  it("a destination's own concurrency replaces delivery.concurrency for it alone (the console's 64)", async () => {
    const gates: (() => void)[] = [];
    const held = (name: string): Destination & { calls: Call[]; done: Issue[] } =>
      fake(name, async () => {
        await new Promise<void>((r) => gates.push(r));
        return {};
      });
    const local = { ...held("local"), concurrency: 5 };
    const remote = held("remote");
    const { engine } = setup([local, remote], { config: { concurrency: 2 } });
    await engine.submit(Array.from({ length: 8 }, (_, i) => issue(`fp-${i}`)));
    await waitFor(() => expect(gates).toHaveLength(7));
    expect([local.calls.length, remote.calls.length]).toEqual([5, 2]);
    for (const g of gates.splice(0)) g();
    const sink = new Writable({ write: (_c, _e, cb) => cb() });
    expect(createConsole("c", consoleParamsSchema.parse({}), { log: createLogger({ stream: sink, format: "json" }), stdout: sink }).concurrency).toBe(CONSOLE_CONCURRENCY);
  });

  it("resolves a submit before its deliveries start, and starts them in the same turn", async () => {
    const order: string[] = [];
    const d = fake("d", () => {
      order.push("sent");
      return {};
    });
    const { engine } = setup([d]);
    const submitted = Promise.all([engine.submit([issue("a")]), engine.submit([issue("b")])]).then(() => order.push("answered"));
    let turnEnded = false;
    setImmediate(() => (turnEnded = true));
    await submitted;
    await new Promise<void>((resolve) => process.nextTick(resolve));
    // What waits for a submit (the webhook's 202) comes first; both deliveries go out before the event loop's next turn.
    expect(order).toEqual(["answered", "sent", "sent"]);
    expect(turnEnded).toBe(false);
  });

  it("refuses work with BacklogFullError past maxBacklog; one big batch may overshoot once", async () => {
    const d = fake("d", hang);
    const { engine } = setup([d], { maxBacklog: 5 });
    expect((await engine.submit([issue("a"), issue("b"), issue("c")])).deliveries).toBe(3);
    // 3 < 5 when it arrives: the whole batch of 4 gets in.
    expect((await engine.submit([issue("d"), issue("e"), issue("f"), issue("g")])).deliveries).toBe(4);
    expect(engine.backlog()).toBe(7);
    let err: unknown;
    try {
      await engine.submit([issue("h")]);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(BacklogFullError);
    expect(err).toMatchObject({ backlog: 7, limit: 5, message: "delivery backlog is full (7 pending, limit 5)" });
    // Nothing of the refused batch was recorded.
    expect(engine.backlog()).toBe(7);
  });

  it("drain() delivers what is pending, including a retry due within the grace, then resolves with left 0", async () => {
    const d = fake("d", async ({ issue: i, ctx }) => {
      await new Promise((r) => setTimeout(r, 2));
      if (i.title === "flaky" && ctx.attempt === 1) throw retryable();
      return {};
    });
    const { engine, store } = setup([d], { config: { retry: { initialDelay: "20ms", maxDelay: "20ms", maxAge: "1h" } } });
    await engine.submit([...Array.from({ length: 20 }, (_, i) => issue(`fp-${i}`)), issue("flaky-fp", "FIRING", "flaky")]);
    const r = await engine.drain(10_000);
    expect(r).toEqual({ left: 0 });
    expect(d.done).toHaveLength(21);
    expect(store.depth()).toBe(0);
  });

  it("drain() with a hanging destination resolves after the grace with what is left", async () => {
    const stuck = fake("stuck", hang);
    const fine = fake("fine");
    const { engine, store } = setup([stuck, fine], { config: { concurrency: 2 } });
    await engine.submit(Array.from({ length: 5 }, (_, i) => issue(`fp-${i}`)));
    const r = await engine.drain(200);
    expect(r.left).toBe(5);
    expect(fine.done).toHaveLength(5);
    // The hung attempts were aborted; they stay queued and were not counted as attempts.
    expect(stuck.calls.every((c) => c.ctx.signal.aborted)).toBe(true);
    expect(store.depth("stuck")).toBe(5);
    const again = store.take("stuck", Date.now());
    expect(again?.delivery.attempts).toBe(0);
  });

  it("drain() does not wait for a retry scheduled after the grace", async () => {
    const d = fake("d", () => {
      throw retryable();
    });
    const { engine, events } = setup([d], { config: { retry: { initialDelay: "10m", maxDelay: "10m", maxAge: "1h" } } });
    await engine.submit([issue("fp")]);
    await waitFor(() => expect(events).toHaveLength(1));
    const r = await engine.drain(60_000);
    expect(r).toEqual({ left: 1 });
    expect(d.calls).toHaveLength(1);
  });

  it("a destination that throws something other than DeliveryError is a bug: internal_error, not retried", async () => {
    const d = fake("d", () => {
      throw new TypeError("cannot read properties of undefined");
    });
    const { engine, store, events } = setup([d]);
    await engine.submit([issue("fp")]);
    await waitFor(() => expect(events).toHaveLength(1));
    expect(events[0]).toMatchObject({ outcome: "failed", code: "internal_error", error: "internal error: cannot read properties of undefined" });
    expect(events[0]!.hint).toMatch(/bug in kubecano/);
    expect(d.calls).toHaveLength(1);
    expect(store.dead()).toHaveLength(1);
  });

  it("attemptTimeout aborts a hung send and retries it", async () => {
    const d = fake("d", (call) => (call.ctx.attempt === 1 ? hang(call) : {}));
    const { engine, events } = setup([d], { config: { attemptTimeout: "50ms", retry: { initialDelay: "10ms", maxDelay: "10ms", maxAge: "1h" } } });
    await engine.submit([issue("fp")]);
    await waitFor(() => expect(d.done).toHaveLength(1));
    expect(events.map((e) => `${e.outcome}:${e.code ?? ""}`)).toEqual(["retry:timeout", "success:"]);
    expect(events[0]!.error).toBe("no answer within 50 ms");
    expect(d.calls[0]!.ctx.signal.aborted).toBe(true);
  });

  it("a send that ignores the abort signal still times out", async () => {
    let n = 0;
    const d = fake("d", () => (++n === 1 ? new Promise<SendResult>(() => undefined) : {}));
    const { engine, events } = setup([d], { config: { attemptTimeout: "30ms", retry: { initialDelay: "10ms", maxDelay: "10ms", maxAge: "1h" } } });
    await engine.submit([issue("fp")]);
    await waitFor(() => expect(events.map((e) => e.outcome)).toEqual(["retry", "success"]));
  });

  it("routes by the route function and ignores unknown destination names", async () => {
    const a = fake("a");
    const b = fake("b");
    const store = new MemoryDeliveryStore({ maxBacklog: 100 });
    const engine = new DeliveryEngine({
      store,
      destinations: [a, b],
      config: deliverySchema.parse({}),
      log: createLogger({ stream: new Writable({ write: (_c, _e, cb) => cb() }), format: "json" }),
      route: (i) => (i.title === "to-b" ? ["b", "nope"] : ["a"]),
    });
    engines.push(engine);
    expect((await engine.submit([issue("x", "FIRING", "to-b"), issue("y", "FIRING", "to-a")])).deliveries).toBe(2);
    await waitFor(() => expect(store.depth()).toBe(0));
    expect(a.calls.map((c) => c.issue.title)).toEqual(["to-a"]);
    expect(b.calls.map((c) => c.issue.title)).toEqual(["to-b"]);
  });
});

describe("toDeliveryError", () => {
  it("keeps DeliveryErrors, turns a timeout into a retryable one and anything else into internal_error", () => {
    const e = permanent("x");
    expect(toDeliveryError(e, true, 10)).toBe(e);
    expect(toDeliveryError(new Error("aborted"), true, 1500)).toMatchObject({ retryable: true, code: "timeout", message: "no answer within 1500 ms" });
    expect(toDeliveryError("a string", false, 10)).toMatchObject({ retryable: false, code: "internal_error", message: "internal error: a string" });
  });
});

describe("backoffDelay", () => {
  it("doubles from initialDelay with equal jitter", () => {
    const p = { initialDelayMs: 1_000, maxDelayMs: 300_000 };
    expect([1, 2, 3, 4].map((a) => backoffDelay(p, a, undefined, () => 0))).toEqual([500, 1_000, 2_000, 4_000]);
    expect([1, 2, 3, 4].map((a) => backoffDelay(p, a, undefined, () => 1))).toEqual([1_000, 2_000, 4_000, 8_000]);
    expect(backoffDelay(p, 100, undefined, () => 1)).toBe(300_000);
    expect(backoffDelay(p, 0, undefined, () => 1)).toBe(1_000);
  });

  it("stays within [retryAfter, maxDelay], or is exactly retryAfter when that is larger (property)", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 600_000 }),
        fc.integer({ min: 0, max: 3_600_000 }),
        fc.integer({ min: -5, max: 10_000 }),
        fc.option(fc.integer({ min: 0, max: 7_200_000 }), { nil: undefined }),
        fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
        (initialDelayMs, maxDelayMs, attempt, retryAfterMs, r) => {
          const d = backoffDelay({ initialDelayMs, maxDelayMs }, attempt, retryAfterMs, () => r);
          const floor = retryAfterMs ?? 0;
          expect(Number.isFinite(d)).toBe(true);
          expect(Number.isInteger(d)).toBe(true);
          expect(d).toBeGreaterThanOrEqual(floor);
          if (floor > maxDelayMs) expect(d).toBe(floor);
          else expect(d).toBeLessThanOrEqual(maxDelayMs);
          // Equal jitter: never less than half the capped exponential delay.
          const capped = Math.min(maxDelayMs, initialDelayMs * 2 ** Math.max(0, Math.min(attempt - 1, 30)));
          expect(d).toBeGreaterThanOrEqual(Math.floor(capped / 2));
        },
      ),
      { numRuns: 1_000 },
    );
  });

  it("grows with the attempt number for a fixed random value (property)", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 60_000 }), fc.integer({ min: 1, max: 40 }), fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), (initialDelayMs, attempt, r) => {
        const p = { initialDelayMs, maxDelayMs: 3_600_000 };
        expect(backoffDelay(p, attempt + 1, undefined, () => r)).toBeGreaterThanOrEqual(backoffDelay(p, attempt, undefined, () => r));
      }),
    );
  });
});

describe("MinHeap", () => {
  it("pops in order (property)", () => {
    fc.assert(
      fc.property(fc.array(fc.integer()), (xs) => {
        const h = new MinHeap<number>((a, b) => a < b);
        for (const x of xs) h.push(x);
        expect(h.size).toBe(xs.length);
        const out: number[] = [];
        for (let v = h.pop(); v !== undefined; v = h.pop()) out.push(v);
        expect(out).toEqual([...xs].sort((a, b) => a - b));
        expect(h.size).toBe(0);
        expect(h.peek()).toBeUndefined();
      }),
    );
  });

  it("matches a sorted list under any mix of push, pop and peek (property)", () => {
    type Op = { op: "push"; v: number } | { op: "pop" } | { op: "peek" };
    const op: fc.Arbitrary<Op> = fc.oneof(
      { weight: 3, arbitrary: fc.integer({ min: 0, max: 20 }).map((v) => ({ op: "push" as const, v })) },
      { weight: 2, arbitrary: fc.constant({ op: "pop" as const }) },
      { weight: 1, arbitrary: fc.constant({ op: "peek" as const }) },
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 200 }), (ops) => {
        // Ties broken by insertion order, as the delivery schedule does with seq.
        const h = new MinHeap<[number, number]>((a, b) => a[0] < b[0] || (a[0] === b[0] && a[1] < b[1]));
        const model: [number, number][] = [];
        let n = 0;
        for (const o of ops) {
          if (o.op === "push") {
            const item: [number, number] = [o.v, n++];
            h.push(item);
            model.push(item);
            model.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
          } else if (o.op === "pop") {
            expect(h.pop()).toEqual(model.shift());
          } else {
            expect(h.peek()).toEqual(model[0]);
          }
          expect(h.size).toBe(model.length);
        }
      }),
    );
  });
});
