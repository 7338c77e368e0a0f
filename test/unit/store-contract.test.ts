/**
 * The DeliveryStore contract (src/delivery/store.ts), one table of cases run
 * against every implementation, as Alertmanager's notify tests do: the
 * in-memory store, the SQLite store on a file, and the SQLite store in
 * memory (--ephemeral). Time is injected; nothing here waits on the clock.
 */
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { createIssue, type Issue, type IssueStatus } from "../../src/core/issue.js";
import { subjectFromLabels } from "../../src/core/subject.js";
import { MemoryDeliveryStore } from "../../src/delivery/memory-store.js";
import { SqliteDeliveryStore } from "../../src/delivery/sqlite-store.js";
import { BacklogFullError, type ClaimedDelivery, type DeliveryStore } from "../../src/delivery/store.js";

const T0 = Date.UTC(2026, 0, 1, 12);

interface Clock {
  now: () => number;
  set(t: number): void;
  advance(ms: number): number;
}

function clock(start = T0): Clock {
  let t = start;
  return {
    now: () => t,
    set: (v) => void (t = v),
    advance: (ms) => (t += ms),
  };
}

interface MakeOptions {
  readonly maxBacklog?: number;
  readonly dedupWindowMs?: number;
  readonly now: () => number;
}

interface Impl {
  readonly name: string;
  make(o: MakeOptions): DeliveryStore;
}

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0).reverse()) c();
});

function tracked<S extends DeliveryStore>(s: S): S {
  cleanups.push(() => s.close());
  return s;
}

const IMPLS: readonly Impl[] = [
  {
    name: "MemoryDeliveryStore",
    make: (o) => tracked(new MemoryDeliveryStore({ maxBacklog: o.maxBacklog ?? 10_000, dedupWindowMs: o.dedupWindowMs ?? 0, now: o.now })),
  },
  {
    name: "SqliteDeliveryStore (file)",
    make: (o) => {
      const dir = mkdtempSync(path.join(os.tmpdir(), "kubecano-contract-"));
      cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
      return tracked(SqliteDeliveryStore.open({ stateDir: path.join(dir, "state"), maxBacklog: o.maxBacklog ?? 10_000, dedupWindowMs: o.dedupWindowMs ?? 0, now: o.now }));
    },
  },
  {
    name: "SqliteDeliveryStore (:memory:)",
    make: (o) => tracked(SqliteDeliveryStore.open({ stateDir: ":memory:", maxBacklog: o.maxBacklog ?? 10_000, dedupWindowMs: o.dedupWindowMs ?? 0, now: o.now })),
  },
];

let n = 0;
/** A new Issue; distinct (fingerprint, status, startsAt) unless `startsAt` is given. */
function issue(fingerprint: string, opts: { status?: IssueStatus; startsAt?: string; title?: string } = {}): Issue {
  const k = ++n;
  return createIssue({
    title: opts.title ?? `issue ${k}`,
    aggregationKey: "Test",
    severity: "LOW",
    status: opts.status ?? "FIRING",
    source: "prometheus",
    type: "alert",
    subject: subjectFromLabels({ pod: fingerprint }),
    startsAt: opts.startsAt ?? new Date(T0 - 3_600_000 + k * 1000).toISOString(),
    clusterName: "test",
    fingerprint,
  });
}

/** The issue id of what `take` handed out, or undefined. */
function takeId(store: DeliveryStore, destination: string, now: number): string | undefined {
  return store.take(destination, now)?.issue.id;
}

function mustTake(store: DeliveryStore, destination: string, now: number): ClaimedDelivery {
  const c = store.take(destination, now);
  if (c === undefined) throw new Error(`nothing due for ${destination} at ${now}`);
  return c;
}

describe.each(IMPLS)("DeliveryStore contract: $name", (impl) => {
  describe("accept", () => {
    it("records every Issue with one delivery per destination, each due at once", async () => {
      const c = clock();
      const store = impl.make({ now: c.now });
      const issues = [issue("fp-1"), issue("fp-2"), issue("fp-3")];
      const r = await store.accept(issues.map((i) => ({ issue: i, destinations: ["a", "b"] })));
      expect(r).toEqual({ issues: 3, deliveries: 6, duplicates: 0, duplicateIds: [] });
      expect(store.depth()).toBe(6);
      const claimed = mustTake(store, "a", T0);
      expect(claimed.issue).toEqual(issues[0]);
      expect(claimed.delivery).toMatchObject({ issueId: issues[0]!.id, destination: "a", fingerprint: "fp-1", attempts: 0, nextAttemptAt: T0, createdAt: T0 });
      expect(claimed.delivery.inDoubtSince).toBeUndefined();
      expect(claimed.delivery.lastError).toBeUndefined();
    });

    it("an Issue routed to no destination is recorded (in the feed) with no delivery", async () => {
      const store = impl.make({ now: clock().now });
      const i = issue("fp-none");
      expect(await store.accept([{ issue: i, destinations: [] }])).toEqual({ issues: 1, deliveries: 0, duplicates: 0, duplicateIds: [] });
      expect(store.depth()).toBe(0);
      expect(store.recent(10)).toEqual([{ issue: i, deliveries: [] }]);
    });

    it("an empty batch changes nothing", async () => {
      const store = impl.make({ now: clock().now });
      expect(await store.accept([])).toEqual({ issues: 0, deliveries: 0, duplicates: 0, duplicateIds: [] });
      expect(store.depth()).toBe(0);
      expect(store.recent(10)).toEqual([]);
    });

    it("refuses a batch at the bound with BacklogFullError, keeping none of it (not even its dedup keys)", async () => {
      const c = clock();
      const store = impl.make({ maxBacklog: 2, dedupWindowMs: 60_000, now: c.now });
      await store.accept([{ issue: issue("fp-1"), destinations: ["a", "b"] }]);
      const refused = [issue("fp-2"), issue("fp-3")];
      let err: unknown;
      try {
        await store.accept(refused.map((i) => ({ issue: i, destinations: ["a"] })));
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(BacklogFullError);
      expect(err).toMatchObject({ backlog: 2, limit: 2 });
      expect((err as Error).message).toBe("delivery backlog is full (2 pending, limit 2)");
      expect(store.depth()).toBe(2);
      expect(store.recent(10).map((r) => r.issue.id)).not.toContain(refused[0]!.id);
      // Drain below the bound: the sender's retry of the same alerts is accepted, not taken for a duplicate.
      store.complete(mustTake(store, "a", T0).delivery);
      const again = refused.map((i) => ({ ...i, id: `${i.id}-again` }));
      expect(await store.accept(again.map((i) => ({ issue: i, destinations: ["a"] })))).toMatchObject({ issues: 2, deliveries: 2, duplicates: 0 });
    });

    it("checks the bound before a batch, so one batch may overshoot it; the next is refused until the backlog drains", async () => {
      const c = clock();
      const store = impl.make({ maxBacklog: 3, now: c.now });
      expect((await store.accept([{ issue: issue("fp-0"), destinations: ["a", "b"] }])).deliveries).toBe(2);
      // 2 < 3: this batch of 5 gets in whole.
      expect((await store.accept(Array.from({ length: 5 }, (_, i) => ({ issue: issue(`fp-${i + 1}`), destinations: ["a"] })))).deliveries).toBe(5);
      expect(store.depth()).toBe(7);
      await expect(store.accept([{ issue: issue("fp-x"), destinations: ["a"] }])).rejects.toThrow(BacklogFullError);
      for (let i = 0; i < 5; i++) store.complete(mustTake(store, "a", T0).delivery);
      expect(store.depth()).toBe(2);
      expect((await store.accept([{ issue: issue("fp-y"), destinations: ["a"] }])).deliveries).toBe(1);
    });
  });

  describe("dedup of (fingerprint, status, startsAt)", () => {
    const startsAt = new Date(T0 - 60_000).toISOString();

    it("counts a repeat within the window as a duplicate and gives it no delivery", async () => {
      const c = clock();
      const store = impl.make({ dedupWindowMs: 10_000, now: c.now });
      const first = issue("fp", { startsAt });
      expect(await store.accept([{ issue: first, destinations: ["a"] }])).toMatchObject({ issues: 1, deliveries: 1, duplicates: 0 });
      c.advance(9_999);
      const repeat = issue("fp", { startsAt });
      const other = issue("fp-other");
      expect(await store.accept([{ issue: repeat, destinations: ["a"] }, { issue: other, destinations: ["a"] }])).toEqual({
        issues: 1,
        deliveries: 1,
        duplicates: 1,
        duplicateIds: [repeat.id],
      });
      expect(store.depth()).toBe(2);
      expect(store.recent(10).map((r) => r.issue.id)).toEqual([other.id, first.id]);
    });

    it("dedups within one batch too", async () => {
      const store = impl.make({ dedupWindowMs: 10_000, now: clock().now });
      const a = issue("fp", { startsAt });
      const b = issue("fp", { startsAt });
      expect(await store.accept([a, b].map((i) => ({ issue: i, destinations: ["a", "b"] })))).toEqual({ issues: 1, deliveries: 2, duplicates: 1, duplicateIds: [b.id] });
    });

    it("the window runs from the first sight: a repeat at its end is delivered again and starts a new window", async () => {
      const c = clock();
      const store = impl.make({ dedupWindowMs: 10_000, now: c.now });
      await store.accept([{ issue: issue("fp", { startsAt }), destinations: ["a"] }]);
      c.advance(5_000);
      expect((await store.accept([{ issue: issue("fp", { startsAt }), destinations: ["a"] }])).duplicates).toBe(1);
      c.advance(5_000); // 10 s after the first: outside
      expect(await store.accept([{ issue: issue("fp", { startsAt }), destinations: ["a"] }])).toMatchObject({ issues: 1, deliveries: 1, duplicates: 0 });
      c.advance(9_999);
      expect((await store.accept([{ issue: issue("fp", { startsAt }), destinations: ["a"] }])).duplicates).toBe(1);
      expect(store.depth()).toBe(2);
    });

    it("a different status or startsAt is not a duplicate", async () => {
      const store = impl.make({ dedupWindowMs: 10_000, now: clock().now });
      const r = await store.accept([
        { issue: issue("fp", { startsAt }), destinations: ["a"] },
        { issue: issue("fp", { startsAt, status: "RESOLVED" }), destinations: ["a"] },
        { issue: issue("fp", { startsAt: new Date(T0 - 30_000).toISOString() }), destinations: ["a"] },
        { issue: issue("fp-2", { startsAt }), destinations: ["a"] },
      ]);
      expect(r).toMatchObject({ issues: 4, deliveries: 4, duplicates: 0 });
    });

    it("a window of 0 turns dedup off", async () => {
      const store = impl.make({ dedupWindowMs: 0, now: clock().now });
      const r = await store.accept([1, 2, 3].map(() => ({ issue: issue("fp", { startsAt }), destinations: ["a"] })));
      expect(r).toMatchObject({ issues: 3, deliveries: 3, duplicates: 0 });
    });
  });

  describe("take", () => {
    it("hands out due deliveries oldest first, ties in acceptance order, nothing before it is due", async () => {
      const c = clock();
      const store = impl.make({ now: c.now });
      const [i1, i2, i3] = [issue("fp-1"), issue("fp-2"), issue("fp-3")];
      await store.accept([i1!, i2!, i3!].map((i) => ({ issue: i, destinations: ["a"] })));
      expect(takeId(store, "a", T0 - 1)).toBeUndefined();
      expect(store.nextDueAt("a")).toBe(T0);
      const d1 = mustTake(store, "a", T0);
      const d2 = mustTake(store, "a", T0);
      const d3 = mustTake(store, "a", T0);
      expect([d1, d2, d3].map((d) => d.issue.id)).toEqual([i1!.id, i2!.id, i3!.id]);
      expect(d1.delivery.seq).toBeLessThan(d2.delivery.seq);
      expect(d2.delivery.seq).toBeLessThan(d3.delivery.seq);
      expect(store.take("a", T0 + 1_000_000)).toBeUndefined();
      expect(store.nextDueAt("a")).toBeUndefined();
      // Due again at different times: the earliest goes first, whatever its seq.
      store.retry(d1.delivery, T0 + 300, "e1");
      store.retry(d2.delivery, T0 + 100, "e2");
      store.retry(d3.delivery, T0 + 300, "e3");
      expect(store.nextDueAt("a")).toBe(T0 + 100);
      expect(takeId(store, "a", T0 + 99)).toBeUndefined();
      expect([takeId(store, "a", T0 + 1000), takeId(store, "a", T0 + 1000), takeId(store, "a", T0 + 1000)]).toEqual([i2!.id, i1!.id, i3!.id]);
    });

    it("never hands out two deliveries of one (destination, fingerprint) at once, and keeps their order", async () => {
      const c = clock();
      const store = impl.make({ now: c.now });
      const firing = issue("fp-x");
      const resolved = issue("fp-x", { status: "RESOLVED" });
      const other = issue("fp-y");
      await store.accept([firing, resolved, other].map((i) => ({ issue: i, destinations: ["a"] })));
      const first = mustTake(store, "a", T0);
      expect(first.issue.id).toBe(firing.id);
      // The resolution is due but waits behind the firing one; another fingerprint does not.
      expect(takeId(store, "a", T0)).toBe(other.id);
      expect(takeId(store, "a", T0)).toBeUndefined();
      expect(store.nextDueAt("a")).toBeUndefined();
      // Still waiting while the firing one waits for its retry.
      store.retry(first.delivery, T0 + 5_000, "remote said http_503");
      expect(store.nextDueAt("a")).toBe(T0 + 5_000);
      expect(takeId(store, "a", T0 + 4_999)).toBeUndefined();
      const again = mustTake(store, "a", T0 + 5_000);
      expect(again.issue.id).toBe(firing.id);
      expect(takeId(store, "a", T0 + 5_000)).toBeUndefined();
      store.complete(again.delivery);
      expect(takeId(store, "a", T0 + 5_000)).toBe(resolved.id);
    });

    it("a dead or released delivery lets the next of its fingerprint go (release: the same one again)", async () => {
      const store = impl.make({ now: clock().now });
      const [x1, x2, x3] = [issue("fp-x"), issue("fp-x"), issue("fp-x")];
      await store.accept([x1!, x2!, x3!].map((i) => ({ issue: i, destinations: ["a"] })));
      const d1 = mustTake(store, "a", T0);
      store.kill(d1.delivery, "channel_not_found");
      const d2 = mustTake(store, "a", T0);
      expect(d2.issue.id).toBe(x2!.id);
      store.release(d2.delivery);
      expect(takeId(store, "a", T0)).toBe(x2!.id);
      expect(takeId(store, "a", T0)).toBeUndefined();
    });

    it("destinations are independent: one fingerprint in flight at one does not hold up another", async () => {
      const store = impl.make({ now: clock().now });
      const x1 = issue("fp-x");
      const x2 = issue("fp-x");
      await store.accept([x1, x2].map((i) => ({ issue: i, destinations: ["a", "b"] })));
      const a1 = mustTake(store, "a", T0);
      store.retry(a1.delivery, T0 + 60_000, "down");
      expect(takeId(store, "a", T0)).toBeUndefined();
      expect(takeId(store, "b", T0)).toBe(x1.id);
      expect(takeId(store, "c", T0)).toBeUndefined();
      expect(store.nextDueAt("c")).toBeUndefined();
      expect(store.depth("a")).toBe(2);
      expect(store.depth("b")).toBe(2);
    });
  });

  describe("outcomes", () => {
    it("retry counts the attempt, moves nextAttemptAt and keeps the error", async () => {
      const c = clock();
      const store = impl.make({ now: c.now });
      const i = issue("fp");
      await store.accept([{ issue: i, destinations: ["a"] }]);
      const d = mustTake(store, "a", T0);
      c.advance(10);
      store.retry(d.delivery, T0 + 1_000, "remote said http_503");
      expect(store.depth("a")).toBe(1);
      expect(store.recent(1)[0]!.deliveries).toEqual([
        expect.objectContaining({ state: "pending", attempts: 1, nextAttemptAt: T0 + 1_000, lastError: "remote said http_503", destination: "a", issueId: i.id, seq: d.delivery.seq, fingerprint: "fp", title: i.title }),
      ]);
      const d2 = mustTake(store, "a", T0 + 1_000);
      expect(d2.delivery).toMatchObject({ id: d.delivery.id, attempts: 1, nextAttemptAt: T0 + 1_000, lastError: "remote said http_503", createdAt: T0 });
      store.retry(d2.delivery, T0 + 3_000, "remote said http_502");
      expect(mustTake(store, "a", T0 + 3_000).delivery).toMatchObject({ attempts: 2, lastError: "remote said http_502" });
    });

    it("kill makes a dead letter: counted, out of the queue, never handed out again", async () => {
      const c = clock();
      const store = impl.make({ now: c.now });
      const i = issue("fp");
      await store.accept([{ issue: i, destinations: ["a", "b"] }]);
      const d = mustTake(store, "a", T0);
      store.retry(d.delivery, T0, "http_503");
      const d2 = mustTake(store, "a", T0);
      c.advance(50);
      store.kill(d2.delivery, "channel_not_found");
      expect(store.depth("a")).toBe(0);
      expect(store.depth()).toBe(1);
      expect(store.take("a", T0 + 10_000_000)).toBeUndefined();
      const info = store.recent(1)[0]!.deliveries.find((x) => x.destination === "a");
      expect(info).toMatchObject({ state: "dead", attempts: 2, lastError: "channel_not_found", finishedAt: T0 + 50 });
      expect(info?.nextAttemptAt).toBeUndefined();
    });

    it("release puts a taken delivery back unchanged: no attempt counted, due as before", async () => {
      const store = impl.make({ now: clock().now });
      await store.accept([{ issue: issue("fp"), destinations: ["a"] }]);
      const d = mustTake(store, "a", T0);
      store.release(d.delivery);
      expect(store.depth("a")).toBe(1);
      const again = mustTake(store, "a", T0);
      expect(again.delivery).toEqual(d.delivery);
      expect(store.recent(1)[0]!.deliveries[0]).toMatchObject({ state: "pending", attempts: 0 });
    });

    it("defer puts a taken delivery back until the given time without counting an attempt", async () => {
      const c = clock();
      const store = impl.make({ now: c.now });
      const i = issue("fp");
      const later = issue("fp");
      await store.accept([i, later].map((x) => ({ issue: x, destinations: ["a"] })));
      const d = mustTake(store, "a", T0);
      store.defer(d.delivery, T0 + 5_000);
      expect(store.depth("a")).toBe(2);
      // Not due before its time, and the later one of its fingerprint keeps waiting behind it.
      expect(store.take("a", T0 + 4_999)).toBeUndefined();
      expect(store.nextDueAt("a")).toBe(T0 + 5_000);
      expect(store.recent(2).find((r) => r.issue.id === i.id)!.deliveries[0]).toMatchObject({ state: "pending", attempts: 0, nextAttemptAt: T0 + 5_000 });
      const again = mustTake(store, "a", T0 + 5_000);
      expect(again.delivery).toMatchObject({ id: d.delivery.id, attempts: 0, nextAttemptAt: T0 + 5_000 });
      expect(again.delivery.lastError).toBeUndefined();
      // Deferring many times never counts: a retry afterwards is the first attempt.
      store.defer(again.delivery, T0 + 6_000);
      const third = mustTake(store, "a", T0 + 6_000);
      store.retry(third.delivery, T0 + 7_000, "http_503");
      expect(mustTake(store, "a", T0 + 7_000).delivery).toMatchObject({ attempts: 1, lastError: "http_503" });
    });

    it("defer leaves the in-doubt state as it was before the attempt, and is ignored after another outcome", async () => {
      const c = clock();
      const store = impl.make({ now: c.now });
      const fresh = issue("fp-fresh");
      const doubted = issue("fp-doubt");
      await store.accept([fresh, doubted].map((x) => ({ issue: x, destinations: ["a"] })));
      // An attempt recorded as started, then deferred: nothing was sent, so it is not in doubt.
      const f = store.take("a", T0, { recordAttempt: true })!;
      expect(f.issue.id).toBe(fresh.id);
      store.defer(f.delivery, T0 + 1_000);
      // A delivery in doubt from an earlier attempt stays in doubt since then.
      const dd = store.take("a", T0, { recordAttempt: true })!;
      store.retry(dd.delivery, T0, "timeout", T0 - 500);
      const dd2 = store.take("a", T0, { recordAttempt: true })!;
      expect(dd2.delivery.inDoubtSince).toBe(T0 - 500);
      store.defer(dd2.delivery, T0 + 2_000);
      const f2 = mustTake(store, "a", T0 + 1_000);
      expect(f2.issue.id).toBe(fresh.id);
      expect(f2.delivery.inDoubtSince).toBeUndefined();
      const dd3 = mustTake(store, "a", T0 + 2_000);
      expect(dd3.delivery).toMatchObject({ attempts: 1, inDoubtSince: T0 - 500 });
      store.complete(f2.delivery, "r");
      store.defer(f2.delivery, T0 + 9_000);
      expect(store.depth("a")).toBe(1);
      expect(store.recent(10).flatMap((r) => r.deliveries).find((x) => x.issueId === fresh.id)).toMatchObject({ state: "done", remoteId: "r" });
    });

    it("complete records success with the destination's id", async () => {
      const c = clock();
      const store = impl.make({ now: c.now });
      const i = issue("fp");
      await store.accept([{ issue: i, destinations: ["a", "b"] }]);
      const d = mustTake(store, "a", T0);
      c.advance(20);
      store.complete(d.delivery, "C0ALERTS01/1767268800.000100");
      expect(store.depth("a")).toBe(0);
      expect(store.depth("b")).toBe(1);
      const infos = store.recent(1)[0]!.deliveries;
      expect(infos.find((x) => x.destination === "a")).toMatchObject({ state: "done", attempts: 0, remoteId: "C0ALERTS01/1767268800.000100", finishedAt: T0 + 20 });
      expect(infos.find((x) => x.destination === "b")).toMatchObject({ state: "pending", attempts: 0 });
      // Without a remote id.
      store.complete(mustTake(store, "b", T0).delivery);
      expect(store.recent(1)[0]!.deliveries.find((x) => x.destination === "b")).toMatchObject({ state: "done" });
      expect(store.recent(1)[0]!.deliveries.find((x) => x.destination === "b")?.remoteId).toBeUndefined();
    });

    it("only the first outcome of a taken delivery counts", async () => {
      const store = impl.make({ now: clock().now });
      const x1 = issue("fp-x");
      const x2 = issue("fp-x");
      await store.accept([x1, x2].map((i) => ({ issue: i, destinations: ["a"] })));
      const d = mustTake(store, "a", T0);
      store.complete(d.delivery, "r1");
      store.complete(d.delivery, "r2");
      store.kill(d.delivery, "late");
      store.retry(d.delivery, T0, "late");
      store.release(d.delivery);
      expect(store.depth()).toBe(1);
      const infos = store.recent(10).flatMap((r) => r.deliveries);
      expect(infos.find((x) => x.issueId === x1.id)).toMatchObject({ state: "done", remoteId: "r1", attempts: 0 });
      expect(infos.find((x) => x.issueId === x1.id)?.lastError).toBeUndefined();
      // x1 is not handed out again; x2 is, once.
      expect(takeId(store, "a", T0)).toBe(x2.id);
      expect(takeId(store, "a", T0)).toBeUndefined();
    });
  });

  it("depth counts unfinished deliveries (waiting and in flight), per destination and in total", async () => {
    const store = impl.make({ now: clock().now });
    await store.accept([
      { issue: issue("fp-1"), destinations: ["a", "b"] },
      { issue: issue("fp-2"), destinations: ["a"] },
      { issue: issue("fp-3"), destinations: ["c"] },
    ]);
    expect([store.depth(), store.depth("a"), store.depth("b"), store.depth("c"), store.depth("nope")]).toEqual([4, 2, 1, 1, 0]);
    const a = mustTake(store, "a", T0);
    expect(store.depth("a")).toBe(2);
    store.complete(a.delivery);
    const b = mustTake(store, "b", T0);
    store.kill(b.delivery, "gone");
    expect([store.depth(), store.depth("a"), store.depth("b"), store.depth("c")]).toEqual([2, 1, 0, 1]);
  });

  it("recent lists Issues newest first with each delivery's state, up to the limit", async () => {
    const c = clock();
    const store = impl.make({ now: c.now });
    const [i1, i2, i3] = [issue("fp-1", { title: "first" }), issue("fp-2", { title: "second" }), issue("fp-3", { title: "third" })];
    await store.accept([{ issue: i1!, destinations: ["a", "b"] }]);
    c.advance(1);
    await store.accept([{ issue: i2!, destinations: ["a", "b"] }]);
    // Same millisecond as i2: acceptance order still decides.
    await store.accept([{ issue: i3!, destinations: ["b"] }]);
    store.complete(mustTake(store, "a", T0 + 1).delivery, "a-1");
    const b1 = mustTake(store, "b", T0 + 1);
    store.kill(b1.delivery, "not_in_channel");
    expect(store.recent(0)).toEqual([]);
    expect(store.recent(2).map((r) => r.issue.title)).toEqual(["third", "second"]);
    const all = store.recent(10);
    expect(all.map((r) => r.issue)).toEqual([i3, i2, i1]);
    const byDest = (k: number): Record<string, string> => Object.fromEntries(all[k]!.deliveries.map((d) => [d.destination, d.state]));
    expect(byDest(2)).toEqual({ a: "done", b: "dead" });
    expect(byDest(1)).toEqual({ a: "pending", b: "pending" });
    expect(byDest(0)).toEqual({ b: "pending" });
    expect(all[2]!.deliveries.find((d) => d.destination === "a")).toMatchObject({ id: `${i1!.id}/a`, issueId: i1!.id, remoteId: "a-1", title: "first", fingerprint: "fp-1", createdAt: T0 });
  });

  it("keeps small key/value state per namespace; setting undefined deletes", async () => {
    const store = impl.make({ now: clock().now });
    expect(store.getState("slack:main", "thread:fp")).toBeUndefined();
    store.setState("slack:main", "thread:fp", "C1/1.0001");
    store.setState("slack:other", "thread:fp", "C2/2.0002");
    expect(store.getState("slack:main", "thread:fp")).toBe("C1/1.0001");
    store.setState("slack:main", "thread:fp", "C1/3.0003");
    expect(store.getState("slack:main", "thread:fp")).toBe("C1/3.0003");
    store.setState("slack:main", "thread:fp", undefined);
    expect(store.getState("slack:main", "thread:fp")).toBeUndefined();
    expect(store.getState("slack:other", "thread:fp")).toBe("C2/2.0002");
    // Deleting what is not there is fine.
    store.setState("slack:main", "nothing", undefined);
    expect(store.getState("slack:main", "nothing")).toBeUndefined();
  });
});

describe("SqliteDeliveryStore: defer on disk", () => {
  it("a deferred delivery comes back after a restart at its deferred time, not in doubt; one in doubt before stays in doubt", async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), "kubecano-contract-"));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const stateDir = path.join(dir, "state");
    const c = clock();
    const first = SqliteDeliveryStore.open({ stateDir, maxBacklog: 100, now: c.now });
    const fresh = issue("fp-fresh");
    const doubted = issue("fp-doubt");
    await first.accept([fresh, doubted].map((x) => ({ issue: x, destinations: ["a"] })));
    const f = first.take("a", T0, { recordAttempt: true })!;
    first.defer(f.delivery, T0 + 3_000);
    const d = first.take("a", T0, { recordAttempt: true })!;
    first.retry(d.delivery, T0, "timeout", T0);
    const d2 = first.take("a", T0, { recordAttempt: true })!;
    first.defer(d2.delivery, T0 + 4_000);
    first.close();
    const second = tracked(SqliteDeliveryStore.open({ stateDir, maxBacklog: 100, now: c.now }));
    expect(second.take("a", T0 + 2_999)).toBeUndefined();
    const a = mustTake(second, "a", T0 + 3_000);
    expect(a.issue.id).toBe(fresh.id);
    expect(a.delivery).toMatchObject({ attempts: 0, nextAttemptAt: T0 + 3_000 });
    expect(a.delivery.inDoubtSince).toBeUndefined();
    const b = mustTake(second, "a", T0 + 4_000);
    expect(b.delivery).toMatchObject({ attempts: 1, nextAttemptAt: T0 + 4_000, inDoubtSince: T0 });
  });
});
