import type { Issue } from "../core/issue.js";
import { MinHeap } from "./heap.js";
import {
  BacklogFullError,
  type AcceptItem,
  type AcceptResult,
  type ClaimedDelivery,
  type Delivery,
  type DeliveryStore,
} from "./store.js";

type MutableDelivery = { -readonly [K in keyof Delivery]: Delivery[K] };

/** Per destination: FIFO per fingerprint, and a heap of the heads that can be taken. */
class DestinationQueue {
  readonly heads = new MinHeap<MutableDelivery>((a, b) => a.nextAttemptAt < b.nextAttemptAt || (a.nextAttemptAt === b.nextAttemptAt && a.seq < b.seq));
  readonly byFingerprint = new Map<string, MutableDelivery[]>();
  count = 0;

  add(d: MutableDelivery): void {
    const list = this.byFingerprint.get(d.fingerprint);
    if (list === undefined) {
      this.byFingerprint.set(d.fingerprint, [d]);
      this.heads.push(d);
    } else {
      list.push(d);
    }
    this.count++;
  }

  /** Removes the finished head of its fingerprint and exposes the next one. */
  finish(d: Delivery): void {
    const list = this.byFingerprint.get(d.fingerprint);
    if (list === undefined || list[0]?.id !== d.id) return;
    list.shift();
    this.count--;
    const next = list[0];
    if (next === undefined) this.byFingerprint.delete(d.fingerprint);
    else this.heads.push(next);
  }
}

export interface DeadLetter {
  readonly delivery: Delivery;
  readonly error: string;
  readonly at: number;
}

/**
 * The in-memory DeliveryStore: for tests, `--ephemeral` runs and the
 * foundation. Everything is lost when the process exits; the durable store
 * keeps the same contract on disk.
 */
export class MemoryDeliveryStore implements DeliveryStore {
  private readonly queues = new Map<string, DestinationQueue>();
  private readonly issues = new Map<string, { issue: Issue; open: number }>();
  private readonly deadLetters: DeadLetter[] = [];
  private seq = 0;
  private total = 0;

  constructor(
    private readonly opts: { maxBacklog: number; now?: () => number; maxDeadLetters?: number } = { maxBacklog: 10_000 },
  ) {}

  accept(items: readonly AcceptItem[]): AcceptResult {
    // The bound is checked before accepting, so one large request may
    // overshoot it: a group bigger than the whole backlog still gets in once
    // the backlog has drained, instead of being refused forever.
    if (this.total >= this.opts.maxBacklog) throw new BacklogFullError(this.total, this.opts.maxBacklog);
    const now = this.opts.now?.() ?? Date.now();
    let deliveries = 0;
    for (const { issue, destinations } of items) {
      if (destinations.length === 0) continue;
      this.issues.set(issue.id, { issue, open: destinations.length });
      for (const destination of destinations) {
        const d: MutableDelivery = {
          id: `${issue.id}/${destination}`,
          issueId: issue.id,
          destination,
          fingerprint: issue.fingerprint,
          seq: ++this.seq,
          createdAt: now,
          attempts: 0,
          nextAttemptAt: now,
        };
        this.queue(destination).add(d);
        deliveries++;
      }
    }
    this.total += deliveries;
    return { issues: items.length, deliveries };
  }

  take(destination: string, now: number): ClaimedDelivery | undefined {
    const q = this.queues.get(destination);
    const head = q?.heads.peek();
    if (q === undefined || head === undefined || head.nextAttemptAt > now) return undefined;
    q.heads.pop();
    const entry = this.issues.get(head.issueId);
    if (entry === undefined) throw new Error(`delivery ${head.id} has no issue`);
    return { delivery: { ...head }, issue: entry.issue };
  }

  nextDueAt(destination: string): number | undefined {
    return this.queues.get(destination)?.heads.peek()?.nextAttemptAt;
  }

  complete(delivery: Delivery): void {
    this.finish(delivery);
  }

  retry(delivery: Delivery, nextAttemptAt: number, error: string): void {
    const q = this.queues.get(delivery.destination);
    const head = q?.byFingerprint.get(delivery.fingerprint)?.[0];
    if (q === undefined || head === undefined || head.id !== delivery.id) return;
    head.attempts = delivery.attempts + 1;
    head.nextAttemptAt = nextAttemptAt;
    head.lastError = error;
    q.heads.push(head);
  }

  kill(delivery: Delivery, error: string): void {
    this.deadLetters.push({ delivery: { ...delivery, lastError: error }, error, at: this.opts.now?.() ?? Date.now() });
    const max = this.opts.maxDeadLetters ?? 1000;
    if (this.deadLetters.length > max) this.deadLetters.splice(0, this.deadLetters.length - max);
    this.finish(delivery);
  }

  depth(destination?: string): number {
    if (destination === undefined) return this.total;
    return this.queues.get(destination)?.count ?? 0;
  }

  dead(): readonly DeadLetter[] {
    return this.deadLetters;
  }

  close(): void {
    this.queues.clear();
    this.issues.clear();
    this.total = 0;
  }

  private queue(destination: string): DestinationQueue {
    let q = this.queues.get(destination);
    if (q === undefined) {
      q = new DestinationQueue();
      this.queues.set(destination, q);
    }
    return q;
  }

  private finish(delivery: Delivery): void {
    const q = this.queues.get(delivery.destination);
    if (q === undefined) return;
    const before = q.count;
    q.finish(delivery);
    if (q.count === before) return;
    this.total--;
    const entry = this.issues.get(delivery.issueId);
    if (entry !== undefined && --entry.open === 0) this.issues.delete(delivery.issueId);
  }
}
