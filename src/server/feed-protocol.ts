import type { Issue } from "../core/issue.js";
import type { Severity } from "../core/severity.js";

/**
 * The live issue feed's wire format: what GET /api/issues answers and what
 * GET /api/issues/stream sends as Server-Sent Events. Shared by the daemon
 * (src/server/feed.ts) and its clients (src/tui/). Types only: importing it
 * loads nothing.
 *
 * Stream events (`event:` name → `data:` JSON):
 * - `issue`    FeedIssue       an Issue was accepted
 * - `update`   FeedUpdate      its workflows ran: enriched, routed or silenced
 * - `delivery` FeedDeliveryEvent  an attempt to one destination ended
 * - `counters` FeedCounters    totals, every few seconds when they changed (no id)
 * - `reset`    { reason }      the Last-Event-ID cannot be resumed: fetch /api/issues again (no id; the stream ends)
 * `issue`, `update` and `delivery` carry an `id:` "EPOCH-SEQ": SEQ grows by
 * one per event, EPOCH changes when the daemon restarts.
 */

/** sent ✔, failed ✖ (dead letter), pending …, retrying ↻ (a failed attempt, another one is scheduled). */
export type FeedDeliveryState = "pending" | "retrying" | "sent" | "failed";

export interface FeedDelivery {
  readonly destination: string;
  readonly state: FeedDeliveryState;
  /** Attempts made so far. */
  readonly attempts: number;
  readonly error?: string | undefined;
  readonly code?: string | undefined;
  readonly hint?: string | undefined;
  /** Epoch ms of the next attempt (retrying). */
  readonly nextAttemptAt?: number | undefined;
  /** Epoch ms of the last outcome. */
  readonly at?: number | undefined;
}

/** processing: workflows (cluster enrichment) and routing have not run yet. */
export type FeedStage = "processing" | "routed" | "silenced";

export interface FeedIssue {
  readonly issue: Issue;
  readonly stage: FeedStage;
  readonly silenced?: string | undefined;
  readonly deliveries: readonly FeedDelivery[];
}

export interface FeedUpdate {
  readonly id: string;
  /** The Issue as enriched by its workflows. */
  readonly issue: Issue;
  readonly stage: Exclude<FeedStage, "processing">;
  readonly silenced?: string | undefined;
  /** One pending delivery per destination it was routed to. */
  readonly deliveries: readonly FeedDelivery[];
}

export interface FeedDeliveryEvent extends FeedDelivery {
  readonly issueId: string;
}

export interface FeedCounters {
  /** Issues accepted since the daemon started (duplicates excluded). */
  readonly received: number;
  /** Deliveries that succeeded, failed for good, or failed an attempt and wait for another. */
  readonly sent: number;
  readonly failed: number;
  readonly retried: number;
  /** Deliveries (and enrichment steps) waiting now. */
  readonly queued: number;
  /** Issues accepted since the daemon started, by severity. */
  readonly bySeverity: Readonly<Record<Severity, number>>;
}

/** GET /api/issues: newest first. Resume the stream after it with Last-Event-ID: cursor. */
export interface IssuesSnapshot {
  readonly cursor: string;
  readonly issues: readonly FeedIssue[];
  readonly counters: FeedCounters;
}

export type FeedEvent =
  | { readonly type: "issue"; readonly id: string; readonly data: FeedIssue }
  | { readonly type: "update"; readonly id: string; readonly data: FeedUpdate }
  | { readonly type: "delivery"; readonly id: string; readonly data: FeedDeliveryEvent }
  | { readonly type: "counters"; readonly data: FeedCounters }
  | { readonly type: "reset"; readonly data: { readonly reason: string } };

export const FEED_LIMIT_DEFAULT = 100;
export const FEED_LIMIT_MAX = 1000;
