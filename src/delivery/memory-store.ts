import type { Issue } from "../core/issue.js";
import { Schedule } from "./schedule.js";
import {
  BacklogFullError,
  dedupKey,
  type AcceptItem,
  type AcceptResult,
  type ClaimedDelivery,
  type Delivery,
  type DeliveryInfo,
  type DeliveryStore,
  type IssueRecord,
} from "./store.js";

export interface MemoryStoreOptions {
  readonly maxBacklog: number;
  /** Duplicates of (fingerprint, status, startsAt) within this window are not delivered again. 0 = off. */
  readonly dedupWindowMs?: number;
  /** Issues kept for the recent feed (newest). */
  readonly recentLimit?: number;
  readonly now?: () => number;
  readonly maxDeadLetters?: number;
}

export interface DeadLetter {
  readonly delivery: Delivery;
  readonly error: string;
  readonly at: number;
}

interface IssueEntry {
  readonly issue: Issue;
  open: number;
  readonly deliveries: Map<string, DeliveryInfo>;
}

/**
 * The in-memory DeliveryStore: for tests and the foundation's runs. Holds the
 * same contract as the durable store, but everything is gone when the
 * process exits.
 */
export class MemoryDeliveryStore implements DeliveryStore {
  private readonly schedule = new Schedule();
  private readonly issues = new Map<string, IssueEntry>();
  /** Insertion-ordered: oldest first. */
  private readonly feed = new Map<string, IssueEntry>();
  private readonly seen = new Map<string, number>();
  private readonly state = new Map<string, string>();
  private readonly deadLetters: DeadLetter[] = [];
  private seq = 0;

  constructor(private readonly opts: MemoryStoreOptions = { maxBacklog: 10_000 }) {}

  private now(): number {
    return this.opts.now?.() ?? Date.now();
  }

  accept(items: readonly AcceptItem[]): Promise<AcceptResult> {
    try {
      return Promise.resolve(this.acceptNow(items));
    } catch (e) {
      return Promise.reject(e as Error);
    }
  }

  private acceptNow(items: readonly AcceptItem[]): AcceptResult {
    // The bound is checked before accepting, so one large request may
    // overshoot it: a group bigger than the whole backlog still gets in once
    // the backlog has drained, instead of being refused forever.
    if (this.schedule.size >= this.opts.maxBacklog) throw new BacklogFullError(this.schedule.size, this.opts.maxBacklog);
    const now = this.now();
    const window = this.opts.dedupWindowMs ?? 0;
    let deliveries = 0;
    const duplicateIds: string[] = [];
    let issues = 0;
    for (const { issue, destinations } of items) {
      if (window > 0) {
        const key = dedupKey(issue);
        const first = this.seen.get(key);
        if (first !== undefined && now - first < window) {
          duplicateIds.push(issue.id);
          continue;
        }
        this.seen.delete(key);
        this.seen.set(key, now);
      }
      issues++;
      const entry: IssueEntry = { issue, open: destinations.length, deliveries: new Map() };
      this.addToFeed(entry);
      if (destinations.length === 0) continue;
      this.issues.set(issue.id, entry);
      for (const destination of destinations) {
        const d: Delivery = {
          id: `${issue.id}/${destination}`,
          issueId: issue.id,
          destination,
          fingerprint: issue.fingerprint,
          seq: ++this.seq,
          createdAt: now,
          attempts: 0,
          nextAttemptAt: now,
        };
        this.schedule.add(d);
        entry.deliveries.set(d.id, info(d, "pending", issue));
        deliveries++;
      }
    }
    this.pruneSeen(now, window);
    return { issues, deliveries, duplicates: duplicateIds.length, duplicateIds };
  }

  take(destination: string, now: number): ClaimedDelivery | undefined {
    const d = this.schedule.take(destination, now);
    if (d === undefined) return undefined;
    const entry = this.issues.get(d.issueId);
    if (entry === undefined) throw new Error(`delivery ${d.id} has no issue`);
    return { delivery: d, issue: entry.issue };
  }

  nextDueAt(destination: string): number | undefined {
    return this.schedule.nextDueAt(destination);
  }

  complete(delivery: Delivery, remoteId?: string): void {
    this.finish(delivery, "done", { remoteId });
  }

  retry(delivery: Delivery, nextAttemptAt: number, error: string, inDoubtSince?: number): void {
    if (!this.schedule.has(delivery.id)) return;
    const attempts = delivery.attempts + 1;
    this.schedule.reschedule(delivery.id, { attempts, nextAttemptAt, lastError: error, inDoubtSince });
    const entry = this.issues.get(delivery.issueId);
    const prev = entry?.deliveries.get(delivery.id);
    if (entry !== undefined && prev !== undefined) entry.deliveries.set(delivery.id, { ...prev, attempts, nextAttemptAt, lastError: error });
  }

  defer(delivery: Delivery, nextAttemptAt: number): void {
    if (!this.schedule.has(delivery.id)) return;
    this.schedule.defer(delivery.id, nextAttemptAt, delivery.inDoubtSince);
    const entry = this.issues.get(delivery.issueId);
    const prev = entry?.deliveries.get(delivery.id);
    if (entry !== undefined && prev !== undefined) entry.deliveries.set(delivery.id, { ...prev, nextAttemptAt });
  }

  kill(delivery: Delivery, error: string): void {
    this.deadLetters.push({ delivery: { ...delivery, lastError: error }, error, at: this.now() });
    const max = this.opts.maxDeadLetters ?? 1000;
    if (this.deadLetters.length > max) this.deadLetters.splice(0, this.deadLetters.length - max);
    this.finish(delivery, "dead", { lastError: error });
  }

  fanOut(processing: Delivery, issue: Issue, destinations: readonly string[]): void {
    const entry = this.issues.get(processing.issueId);
    if (entry === undefined || !this.schedule.has(processing.id)) return;
    const now = this.now();
    const next: IssueEntry = { issue, open: entry.open, deliveries: entry.deliveries };
    this.issues.set(issue.id, next);
    if (this.feed.has(issue.id)) this.feed.set(issue.id, next);
    for (const destination of destinations) {
      const d: Delivery = { id: `${issue.id}/${destination}`, issueId: issue.id, destination, fingerprint: issue.fingerprint, seq: ++this.seq, createdAt: processing.createdAt, attempts: 0, nextAttemptAt: now };
      this.schedule.add(d);
      next.deliveries.set(d.id, info(d, "pending", issue));
      next.open++;
    }
    this.finish(processing, "done", {});
  }

  isPending(destination: string, fingerprint: string): boolean {
    return this.schedule.hasFingerprint(destination, fingerprint);
  }

  release(delivery: Delivery): void {
    this.schedule.reschedule(delivery.id, {});
  }

  depth(destination?: string): number {
    return this.schedule.depth(destination);
  }

  recent(limit: number): IssueRecord[] {
    const out: IssueRecord[] = [];
    const entries = [...this.feed.values()];
    for (let i = entries.length - 1; i >= 0 && out.length < limit; i--) {
      const e = entries[i]!;
      // The internal processing step is not a delivery anyone needs to see.
      out.push({ issue: e.issue, deliveries: [...e.deliveries.values()].filter((d) => !d.destination.startsWith("@")) });
    }
    return out;
  }

  getState(namespace: string, key: string): string | undefined {
    return this.state.get(`${namespace}\u0000${key}`);
  }

  setState(namespace: string, key: string, value: string | undefined): void {
    const k = `${namespace}\u0000${key}`;
    if (value === undefined) this.state.delete(k);
    else this.state.set(k, value);
  }

  dead(): readonly DeadLetter[] {
    return this.deadLetters;
  }

  close(): void {
    this.schedule.clear();
    this.issues.clear();
  }

  private finish(delivery: Delivery, state: "done" | "dead", extra: { remoteId?: string | undefined; lastError?: string | undefined }): void {
    if (this.schedule.remove(delivery.id) === undefined) return;
    const entry = this.issues.get(delivery.issueId);
    if (entry === undefined) return;
    const prev = entry.deliveries.get(delivery.id);
    if (prev !== undefined) {
      entry.deliveries.set(delivery.id, {
        ...prev,
        state,
        attempts: state === "done" ? delivery.attempts : delivery.attempts + 1,
        nextAttemptAt: undefined,
        finishedAt: this.now(),
        ...(extra.remoteId !== undefined ? { remoteId: extra.remoteId } : {}),
        ...(extra.lastError !== undefined ? { lastError: extra.lastError } : {}),
      });
    }
    if (--entry.open === 0) this.issues.delete(delivery.issueId);
  }

  private addToFeed(entry: IssueEntry): void {
    this.feed.set(entry.issue.id, entry);
    const limit = this.opts.recentLimit ?? 1000;
    while (this.feed.size > limit) {
      const oldest = this.feed.keys().next().value as string;
      this.feed.delete(oldest);
    }
  }

  /** The map is insertion-ordered by first sight, so expired keys are at the front. */
  private pruneSeen(now: number, window: number): void {
    for (const [key, at] of this.seen) {
      if (now - at < window) break;
      this.seen.delete(key);
    }
  }
}

function info(d: Delivery, state: "pending" | "done" | "dead", issue: Issue): DeliveryInfo {
  return {
    id: d.id,
    seq: d.seq,
    issueId: d.issueId,
    destination: d.destination,
    state,
    attempts: d.attempts,
    createdAt: d.createdAt,
    nextAttemptAt: d.nextAttemptAt,
    title: issue.title,
    fingerprint: d.fingerprint,
  };
}
