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
}

export interface ClaimedDelivery {
  readonly delivery: Delivery;
  readonly issue: Issue;
}

export interface AcceptItem {
  readonly issue: Issue;
  readonly destinations: readonly string[];
}

export interface AcceptResult {
  readonly issues: number;
  readonly deliveries: number;
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

/**
 * Where accepted Issues wait for delivery. Contract:
 * - `accept` records all items or none, and throws BacklogFullError /
 *   StoreUnavailableError instead of accepting what it cannot keep;
 * - `take` hands out due deliveries oldest first, never two of one
 *   (destination, fingerprint) at once, and never a later one of a
 *   fingerprint before an earlier one has finished (so a resolution cannot
 *   overtake its firing notification);
 * - every taken delivery ends in exactly one of complete, retry or kill.
 */
export interface DeliveryStore {
  accept(items: readonly AcceptItem[]): AcceptResult;
  take(destination: string, now: number): ClaimedDelivery | undefined;
  /** Earliest time a delivery of this destination becomes due, if any waits. */
  nextDueAt(destination: string): number | undefined;
  complete(delivery: Delivery, remoteId?: string): void;
  retry(delivery: Delivery, nextAttemptAt: number, error: string): void;
  /** Gives up on a delivery (a permanent failure or too old): a dead letter. */
  kill(delivery: Delivery, error: string): void;
  /** Deliveries not finished (waiting or in flight), for one destination or all. */
  depth(destination?: string): number;
  close(): void;
}
