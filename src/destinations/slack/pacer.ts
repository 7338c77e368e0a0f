import { deferral } from "./errors.js";

/**
 * Per-lane pacing (one lane per Slack channel) by GCRA, the token bucket's
 * virtual-time form: `burst` calls at once, then one every 1/rate seconds.
 * Callers reserve slots by key (an Issue's step): a caller that cannot wait
 * now (a deferred delivery) keeps its slot, so many waiting callers get
 * distinct slots one interval apart instead of all coming back at once.
 * A released reservation leaves a hole the next caller may take, which
 * keeps the schedule within the bucket. Pure bookkeeping: no timers.
 */

export interface PacerOptions {
  readonly ratePerSecond: number;
  readonly burst: number;
  readonly now?: () => number;
}

interface Lane {
  /** Theoretical arrival time of the next call (GCRA). */
  tat: number;
  /** A 429 said nothing goes before this. */
  pausedUntil: number;
  readonly reservations: Map<string, number>;
  /** Released slots, ascending. */
  holes: number[];
}

/** A reservation this far in the past was abandoned (its caller is gone). */
const ABANDONED_MS = 60_000;
/** A slot this close counts as now. */
const NOW_SLACK_MS = 5;

export class Pacer {
  private readonly lanes = new Map<string, Lane>();
  private readonly interval: number;
  private readonly tolerance: number;
  private readonly now: () => number;

  constructor(opts: PacerOptions) {
    this.interval = 1000 / opts.ratePerSecond;
    this.tolerance = (opts.burst - 1) * this.interval;
    this.now = opts.now ?? Date.now;
  }

  /**
   * Milliseconds until `key`'s slot in `lane`. 0: the slot is taken, go now.
   * Otherwise the slot stays reserved for `key`; ask again at that time.
   */
  acquire(lane: string, key: string): number {
    const t = this.now();
    const l = this.lane(lane);
    let at = l.reservations.get(key);
    // A 429 since the reservation was made: its slot is no good any more.
    if (at !== undefined && at < l.pausedUntil && t < l.pausedUntil) {
      l.reservations.delete(key);
      at = undefined;
    }
    if (at === undefined) {
      at = this.takeHole(l, t) ?? this.next(l, t);
    }
    if (at <= t + NOW_SLACK_MS) {
      l.reservations.delete(key);
      return 0;
    }
    l.reservations.set(key, at);
    return at - t;
  }

  /** Gives up `key`'s reservation: its slot becomes free for another caller. */
  release(lane: string, key: string): void {
    const l = this.lanes.get(lane);
    const at = l?.reservations.get(key);
    if (l === undefined || at === undefined) return;
    l.reservations.delete(key);
    if (at > this.now()) insertSorted(l.holes, at);
  }

  /**
   * Hands `from`'s slot to `to` when it is earlier than `to`'s own (a caller
   * that no longer needs its slot gives it to one that is waiting); `to`'s
   * later slot is released. Without a slot for `from`, nothing changes.
   */
  transfer(lane: string, from: string, to: string): void {
    const l = this.lanes.get(lane);
    const at = l?.reservations.get(from);
    if (l === undefined || at === undefined) return;
    l.reservations.delete(from);
    const theirs = l.reservations.get(to);
    if (theirs !== undefined && theirs <= at) {
      if (at > this.now()) insertSorted(l.holes, at);
      return;
    }
    l.reservations.set(to, at);
    if (theirs !== undefined && theirs > this.now()) insertSorted(l.holes, theirs);
  }

  /** Whether `key` holds a slot in `lane`. */
  holds(lane: string, key: string): boolean {
    return this.lanes.get(lane)?.reservations.has(key) ?? false;
  }

  /** Nothing goes out on `lane` for `ms` (Slack answered 429 with Retry-After). */
  pause(lane: string, ms: number): void {
    const l = this.lane(lane);
    const until = this.now() + ms;
    if (until <= l.pausedUntil) return;
    l.pausedUntil = until;
    l.holes = l.holes.filter((h) => h >= until);
    // After a 429 the channel's bucket at Slack is empty: one call at the end of the pause, then one per interval.
    l.tat = Math.max(l.tat, until + this.tolerance);
  }

  /** Reserved slots still ahead: how far behind the lane is, in calls. */
  backlog(lane: string): number {
    const l = this.lanes.get(lane);
    if (l === undefined) return 0;
    const t = this.now();
    let n = 0;
    for (const [key, at] of l.reservations) {
      if (at > t) n++;
      else if (at < t - ABANDONED_MS) l.reservations.delete(key);
    }
    return n;
  }

  /** When the next unreserved call could go (for estimates). */
  nextFree(lane: string): number {
    const l = this.lanes.get(lane);
    const t = this.now();
    if (l === undefined) return t;
    return Math.max(t, l.pausedUntil, l.tat - this.tolerance);
  }

  private next(l: Lane, t: number): number {
    const at = Math.max(t, l.pausedUntil, l.tat - this.tolerance);
    l.tat = Math.max(l.tat, at) + this.interval;
    return at;
  }

  /** The earliest released slot that is not in the past (nor in a pause). */
  private takeHole(l: Lane, t: number): number | undefined {
    const from = Math.max(t - NOW_SLACK_MS, l.pausedUntil);
    while (l.holes.length > 0 && l.holes[0]! < from) l.holes.shift();
    const h = l.holes.shift();
    return h === undefined ? undefined : Math.max(h, t);
  }

  private lane(name: string): Lane {
    let l = this.lanes.get(name);
    if (l === undefined) {
      l = { tat: 0, pausedUntil: 0, reservations: new Map(), holes: [] };
      this.lanes.set(name, l);
    }
    return l;
  }
}

function insertSorted(xs: number[], x: number): void {
  let i = xs.length;
  while (i > 0 && xs[i - 1]! > x) i--;
  xs.splice(i, 0, x);
}

export interface PaceContext {
  readonly signal?: AbortSignal | undefined;
  /** The caller can reschedule (DeliveryError.defer): long waits defer instead of holding a worker. */
  readonly deferrable?: boolean | undefined;
  /**
   * Come back at least this often while waiting for a slot (the slot stays
   * reserved): in storm mode a waiting delivery may be folded before its slot.
   */
  readonly recheckMs?: number | undefined;
}

/** Waits up to this long in place; longer waits defer the delivery when they can. */
export const SHORT_WAIT_MS = 1_000;

/**
 * Takes `key`'s slot in `lane`: at once, after a short sleep, or (when the
 * caller can reschedule and the slot is further away) by throwing a
 * deferral that keeps the slot reserved for `key`.
 */
export async function waitForSlot(pacer: Pacer, lane: string, key: string, ctx: PaceContext, what = "this channel"): Promise<void> {
  for (;;) {
    const ms = pacer.acquire(lane, key);
    if (ms === 0) return;
    if (ctx.deferrable === true && ms > SHORT_WAIT_MS) throw deferral(Math.min(ms, ctx.recheckMs ?? ms), `${what} is paced: the next free slot is in ${Math.ceil(ms)} ms`);
    await sleep(ms, ctx.signal);
  }
}

/** Resolves after `ms`, or rejects with the signal's reason when it aborts first. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted === true) return Promise.reject(signal.reason as Error);
  return new Promise((resolve, reject) => {
    const onAbort = (): void => {
      clearTimeout(t);
      reject(signal!.reason as Error);
    };
    const t = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, Math.max(0, ms));
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
