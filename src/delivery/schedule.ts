import { MinHeap } from "./heap.js";
import type { Delivery } from "./store.js";

type Mutable<T> = { -readonly [K in keyof T]: T[K] };
export type ScheduledDelivery = Mutable<Delivery>;

/** One destination's waiting deliveries: FIFO per fingerprint, and a heap of the heads that may go. */
class DestinationQueue {
  readonly heads = new MinHeap<ScheduledDelivery>((a, b) => a.nextAttemptAt < b.nextAttemptAt || (a.nextAttemptAt === b.nextAttemptAt && a.seq < b.seq));
  readonly byFingerprint = new Map<string, ScheduledDelivery[]>();
  count = 0;
}

/**
 * The in-memory scheduling index every store uses: which delivery may be
 * sent next. Holds the ordering contract of DeliveryStore.take: oldest due
 * first; one delivery per (destination, fingerprint) at a time; a later
 * delivery of a fingerprint waits until the earlier one has finished.
 * O(log n) per operation; persistence is the store's business.
 */
export class Schedule {
  private readonly queues = new Map<string, DestinationQueue>();
  private readonly byId = new Map<string, ScheduledDelivery>();
  private readonly taken = new Set<string>();

  get size(): number {
    return this.byId.size;
  }

  has(id: string): boolean {
    return this.byId.has(id);
  }

  get(id: string): Delivery | undefined {
    return this.byId.get(id);
  }

  /**
   * Adds a delivery; deliveries must be added in seq order per (destination,
   * fingerprint). `taken`: it is in flight already (a rebuild of the
   * schedule): it waits in its line without entering the heap, until
   * rescheduled or removed.
   */
  add(d: Delivery, opts: { taken?: boolean } = {}): void {
    const item: ScheduledDelivery = { ...d };
    const q = this.queue(d.destination);
    this.byId.set(d.id, item);
    if (opts.taken === true) this.taken.add(d.id);
    const list = q.byFingerprint.get(d.fingerprint);
    if (list === undefined) {
      q.byFingerprint.set(d.fingerprint, [item]);
      if (opts.taken !== true) q.heads.push(item);
    } else {
      list.push(item);
    }
    q.count++;
  }

  /** The next due delivery of a destination, now marked taken; undefined when none is due. */
  take(destination: string, now: number): Delivery | undefined {
    const q = this.queues.get(destination);
    for (;;) {
      const head = q?.heads.peek();
      if (q === undefined || head === undefined || head.nextAttemptAt > now) return undefined;
      q.heads.pop();
      // Entries removed while waiting in the heap (dropped by an operator) are skipped.
      if (this.byId.get(head.id) !== head || this.taken.has(head.id)) continue;
      this.taken.add(head.id);
      return { ...head };
    }
  }

  nextDueAt(destination: string): number | undefined {
    const q = this.queues.get(destination);
    if (q === undefined) return undefined;
    for (;;) {
      const head = q.heads.peek();
      if (head === undefined) return undefined;
      if (this.byId.get(head.id) === head && !this.taken.has(head.id)) return head.nextAttemptAt;
      q.heads.pop();
    }
  }

  /** A taken delivery goes back to wait until `nextAttemptAt`. */
  reschedule(id: string, changes: Partial<Pick<Delivery, "attempts" | "nextAttemptAt" | "lastError" | "inDoubtSince" | "remoteId">>): void {
    const item = this.byId.get(id);
    if (item === undefined) return;
    Object.assign(item, changes);
    if (changes.inDoubtSince === undefined && "inDoubtSince" in changes) delete item.inDoubtSince;
    this.taken.delete(id);
    const q = this.queues.get(item.destination)!;
    if (q.byFingerprint.get(item.fingerprint)?.[0] === item) q.heads.push(item);
  }

  /** A taken delivery waits again until `nextAttemptAt` with its attempts unchanged (DeliveryStore.defer). */
  defer(id: string, nextAttemptAt: number, inDoubtSince: number | undefined): void {
    this.reschedule(id, { nextAttemptAt, inDoubtSince });
  }

  /** Removes a delivery (finished, dead or dropped) and lets the next one of its fingerprint go. */
  remove(id: string): Delivery | undefined {
    const item = this.byId.get(id);
    if (item === undefined) return undefined;
    this.byId.delete(id);
    this.taken.delete(id);
    const q = this.queues.get(item.destination)!;
    const list = q.byFingerprint.get(item.fingerprint)!;
    const idx = list.indexOf(item);
    list.splice(idx, 1);
    q.count--;
    if (list.length === 0) q.byFingerprint.delete(item.fingerprint);
    else if (idx === 0) q.heads.push(list[0]!);
    return item;
  }

  hasFingerprint(destination: string, fingerprint: string): boolean {
    return this.queues.get(destination)?.byFingerprint.has(fingerprint) ?? false;
  }

  depth(destination?: string): number {
    if (destination === undefined) return this.byId.size;
    return this.queues.get(destination)?.count ?? 0;
  }

  isTaken(id: string): boolean {
    return this.taken.has(id);
  }

  takenIds(): string[] {
    return [...this.taken];
  }

  clear(): void {
    this.queues.clear();
    this.byId.clear();
    this.taken.clear();
  }

  private queue(destination: string): DestinationQueue {
    let q = this.queues.get(destination);
    if (q === undefined) {
      q = new DestinationQueue();
      this.queues.set(destination, q);
    }
    return q;
  }
}
