import type { Issue } from "../core/issue.js";

/** One Issue on its way to one destination. */
export interface Delivery {
  readonly id: string;
  readonly issueId: string;
  readonly destination: string;
  readonly fingerprint: string;
  /** Acceptance order; deliveries of one fingerprint go out in this order. */
  readonly seq: number;
  /** When the Issue was accepted (epoch ms). */
  readonly createdAt: number;
  /** Failed attempts so far. */
  readonly attempts: number;
  readonly nextAttemptAt: number;
  readonly lastError?: string;
  /** The destination's id for what an earlier attempt created, when known. */
  readonly remoteId?: string;
  /**
   * Set when an attempt started (at this time) and its outcome was never
   * recorded: the process died mid-send, so the destination may already have
   * it. The engine asks the destination to look before sending again.
   */
  readonly inDoubtSince?: number;
}

export type DeliveryState = "pending" | "done" | "dead";

export interface ClaimedDelivery {
  readonly delivery: Delivery;
  readonly issue: Issue;
}

export interface AcceptItem {
  readonly issue: Issue;
  readonly destinations: readonly string[];
}

export interface AcceptResult {
  /** Issues recorded (duplicates excluded). */
  readonly issues: number;
  readonly deliveries: number;
  /** Issues already seen within the dedup window: counted, not delivered again. */
  readonly duplicates: number;
  /** Ids of those duplicate Issues. */
  readonly duplicateIds: readonly string[];
}

/** A delivery as operators see it (`kubecano deliveries`, the live feed). */
export interface DeliveryInfo {
  readonly id: string;
  /** Short number operators type (`kubecano deliveries retry 42`). */
  readonly seq: number;
  readonly issueId: string;
  readonly destination: string;
  readonly state: DeliveryState;
  readonly attempts: number;
  readonly createdAt: number;
  readonly nextAttemptAt?: number | undefined;
  readonly lastError?: string | undefined;
  readonly remoteId?: string | undefined;
  readonly finishedAt?: number | undefined;
  readonly title?: string | undefined;
  readonly fingerprint: string;
}

export interface IssueRecord {
  readonly issue: Issue;
  readonly deliveries: readonly DeliveryInfo[];
}

/** The backlog is at its bound: answer 503 so the sender retries later. */
export class BacklogFullError extends Error {
  readonly backlog: number;
  readonly limit: number;
  constructor(backlog: number, limit: number) {
    super(`delivery backlog is full (${backlog} pending, limit ${limit})`);
    this.name = "BacklogFullError";
    this.backlog = backlog;
    this.limit = limit;
  }
}

/** The store cannot record new work (disk full, read-only): answer 503, never 202. */
export class StoreUnavailableError extends Error {
  constructor(message: string, cause?: unknown) {
    super(message, cause !== undefined ? { cause } : undefined);
    this.name = "StoreUnavailableError";
  }
}

export interface TakeOptions {
  /**
   * Record durably that an attempt starts, so that after a crash the
   * delivery comes back "in doubt". Only worth it for destinations that can
   * check whether they already have something (Destination.findExisting).
   */
  readonly recordAttempt?: boolean;
}

/**
 * Where accepted Issues wait for delivery. Contract:
 * - `accept` records all items or none, and throws BacklogFullError /
 *   StoreUnavailableError instead of accepting what it cannot keep; an Issue
 *   whose (fingerprint, status, startsAt) was accepted within the dedup
 *   window is counted as a duplicate and gets no deliveries;
 * - `take` hands out due deliveries oldest first, never two of one
 *   (destination, fingerprint) at once, and never a later one of a
 *   fingerprint before an earlier one has finished (so a resolution cannot
 *   overtake its firing notification);
 * - every taken delivery ends in exactly one of complete, retry, defer, kill or release.
 */
export interface DeliveryStore {
  /** Resolves once the items are durable (for the durable store: committed). */
  accept(items: readonly AcceptItem[]): Promise<AcceptResult>;
  take(destination: string, now: number, opts?: TakeOptions): ClaimedDelivery | undefined;
  /** Earliest time a delivery of this destination becomes due, if any waits. */
  nextDueAt(destination: string): number | undefined;
  /** Records success; `remoteId` is the destination's id for what it created. */
  complete(delivery: Delivery, remoteId?: string): void;
  /**
   * Schedules another attempt. `inDoubtSince` (the start of the earliest
   * attempt that may have reached the destination) keeps the delivery in
   * doubt, so the next attempt looks before it sends.
   */
  retry(delivery: Delivery, nextAttemptAt: number, error: string, inDoubtSince?: number): void;
  /**
   * Puts a taken delivery back to wait until `nextAttemptAt` without counting
   * an attempt: the destination paced it (DeliveryError.defer) and sent
   * nothing it has not recorded itself. Its in-doubt state becomes what it
   * was before this attempt (`delivery.inDoubtSince`), so a recorded attempt
   * marker (TakeOptions.recordAttempt) is cleared unless it was in doubt already.
   */
  defer(delivery: Delivery, nextAttemptAt: number): void;
  /** Gives up on a delivery (a permanent failure or too old): a dead letter. */
  kill(delivery: Delivery, error: string): void;
  /**
   * Puts a taken delivery back without counting an attempt (shutdown). A
   * recorded attempt (TakeOptions.recordAttempt) stays in doubt: the aborted
   * send may have reached the destination.
   */
  release(delivery: Delivery): void;
  /**
   * Finishes a taken processing step (destination PROCESS) in one
   * transaction: the Issue's stored body becomes `issue` (enriched) and it
   * gets one delivery per destination. Throws StoreUnavailableError when it
   * cannot be written (the step stays taken; the caller retries it).
   */
  fanOut(processing: Delivery, issue: Issue, destinations: readonly string[]): void;
  /** Whether any delivery of this fingerprint waits for (or is in) this destination. */
  isPending(destination: string, fingerprint: string): boolean;
  /** Deliveries not finished (waiting or in flight), for one destination or all. */
  depth(destination?: string): number;
  /** Recent Issues, newest first, with the state of each of their deliveries. */
  recent(limit: number): IssueRecord[];
  /** Small durable key/value state of destinations (e.g. Slack's fingerprint → thread). */
  getState(namespace: string, key: string): string | undefined;
  setState(namespace: string, key: string, value: string | undefined): void;
  /** Picks up changes another process made (operator commands); called about once a second. */
  refresh?(): void;
  close(): void;
}

/** The dedup key: Alertmanager HA replicas and retries resend exactly this. */
export function dedupKey(issue: Pick<Issue, "fingerprint" | "status" | "startsAt">): string {
  return `${issue.fingerprint}\u0000${issue.status}\u0000${issue.startsAt}`;
}
