import { randomBytes } from "node:crypto";
import type { Issue } from "../core/issue.js";
import type { Severity } from "../core/severity.js";
import type { EventEmitter } from "node:events";
import { PROCESS, type AcceptedRoute, type DeliveryEvent, type EngineEvents } from "../delivery/engine.js";
import type { DeliveryInfo, IssueRecord } from "../delivery/store.js";
import type { FeedCounters, FeedDelivery, FeedDeliveryEvent, FeedEvent, FeedIssue, FeedStage, FeedUpdate, IssuesSnapshot } from "./feed-protocol.js";

export interface FeedHubOptions {
  /** Recent Issues with their deliveries, newest first (DeliveryStore.recent). */
  readonly recent: (limit: number) => readonly IssueRecord[];
  /** Deliveries waiting now (DeliveryStore.depth). */
  readonly depth: () => number;
  /** Whether an Issue listed without deliveries still waits for its workflows (after a restart the hub has not seen it). */
  readonly isProcessing?: (issue: Issue) => boolean;
  /** Events kept so a client can resume with Last-Event-ID: at most this many... */
  readonly ringEvents?: number;
  /** ...and this many bytes of serialised events. */
  readonly ringBytes?: number;
  /** How long events are still kept after the last client left (they are not kept while nobody uses the feed). */
  readonly keepAfterLastClientMs?: number;
  /** Counters are sent this often when they changed. */
  readonly countersEveryMs?: number;
  readonly now?: () => number;
}

/** One feed event and its Server-Sent Events frame (serialised once for every client). */
export interface HubEvent {
  /** 0 for events that are not numbered (counters, reset). */
  readonly seq: number;
  readonly event: FeedEvent;
  readonly frame: string;
}

export type HubListener = (e: HubEvent) => void;

export type Resume =
  | { readonly ok: true; readonly backlog: readonly HubEvent[]; readonly unsubscribe: () => void }
  | { readonly ok: false; readonly reason: string };

const STAGES_KEPT = 5_000;

/**
 * The live issue feed's source: turns the delivery engine's events into
 * numbered feed events, keeps the recent ones in a bounded ring so a client
 * that reconnects with Last-Event-ID misses nothing and sees nothing twice,
 * and counts what the header of `kubecano tui` shows.
 *
 * Events are only kept while someone uses the feed (a client connected, or
 * one left or fetched a snapshot less than keepAfterLastClientMs ago): a
 * daemon nobody watches pays a counter increment per event, nothing more.
 * A Last-Event-ID that cannot be resumed (too old, or from before a
 * restart: ids carry a per-process epoch) gets a `reset`.
 */
export class FeedHub {
  readonly epoch = randomBytes(4).toString("hex");
  private seq = 0;
  private readonly ring: HubEvent[] = [];
  private ringHead = 0;
  private ringBytes = 0;
  /** The seq of the oldest event still kept (seq + 1 when none is). */
  private firstKept = 1;
  private readonly listeners = new Set<HubListener>();
  private lastActivity = -Infinity;
  private readonly stages = new Map<string, { stage: FeedStage; silenced?: string | undefined }>();
  private received = 0;
  private sent = 0;
  private failed = 0;
  private retried = 0;
  private readonly bySeverity: Record<Severity, number> = { HIGH: 0, LOW: 0, INFO: 0, DEBUG: 0 };
  private countersTimer: NodeJS.Timeout | undefined;
  private soonTimer: NodeJS.Timeout | undefined;
  private lastCounters = "";
  private readonly now: () => number;
  private readonly maxEvents: number;
  private readonly maxBytes: number;
  private readonly keepMs: number;
  private closed = false;

  constructor(private readonly opts: FeedHubOptions) {
    this.now = opts.now ?? Date.now;
    this.maxEvents = Math.max(1, opts.ringEvents ?? 5_000);
    this.maxBytes = opts.ringBytes ?? 16 * 1024 * 1024;
    this.keepMs = opts.keepAfterLastClientMs ?? 5 * 60_000;
  }

  /** Follows the engine's events; returns the function that stops following. */
  attach(engine: EventEmitter<EngineEvents>): () => void {
    const accepted = (issues: readonly Issue[], routes: readonly AcceptedRoute[]): void => this.accepted(issues, routes);
    const processed = (issue: Issue, destinations: readonly string[], silenced: string | undefined): void => this.processed(issue, destinations, silenced);
    const delivery = (e: DeliveryEvent): void => this.delivery(e);
    engine.on("accepted", accepted);
    engine.on("processed", processed);
    engine.on("delivery", delivery);
    return () => {
      engine.off("accepted", accepted);
      engine.off("processed", processed);
      engine.off("delivery", delivery);
    };
  }

  /** The id of the newest event: a snapshot taken now is followed by the events after it. */
  cursor(): string {
    return `${this.epoch}-${this.seq}`;
  }

  /** Recent Issues, newest first, and the cursor to resume the stream after them. */
  snapshot(limit: number): IssuesSnapshot {
    // The client connects to the stream right after: keep events for it meanwhile.
    this.lastActivity = this.now();
    const cursor = this.cursor();
    const issues = this.opts.recent(limit).map((r) => this.fromRecord(r));
    return { cursor, issues, counters: this.counters() };
  }

  counters(): FeedCounters {
    return { received: this.received, sent: this.sent, failed: this.failed, retried: this.retried, queued: this.opts.depth(), bySeverity: { ...this.bySeverity } };
  }

  /** Clients connected now. */
  clients(): number {
    return this.listeners.size;
  }

  /**
   * Subscribes `listener` to every event after `lastEventId` (or after now,
   * without one). `backlog` holds the kept events the client missed; they and
   * the live ones that follow come without gaps or repeats. A Last-Event-ID
   * that cannot be resumed is refused (the client fetches a snapshot again).
   */
  subscribe(lastEventId: string | undefined, listener: HubListener): Resume {
    let backlog: HubEvent[] = [];
    if (lastEventId !== undefined && lastEventId !== "") {
      const m = /^([0-9a-f]+)-(\d+)$/.exec(lastEventId.trim());
      if (m === null) return { ok: false, reason: "unreadable Last-Event-ID" };
      const after = Number(m[2]);
      if (m[1] !== this.epoch || after > this.seq) return { ok: false, reason: "kubecano restarted since that event" };
      if (after + 1 < this.firstKept) return { ok: false, reason: "that event is too old to resume from" };
      backlog = this.keptAfter(after);
    }
    this.listeners.add(listener);
    this.lastActivity = this.now();
    this.startCounters();
    return {
      ok: true,
      backlog,
      unsubscribe: () => {
        if (!this.listeners.delete(listener)) return;
        this.lastActivity = this.now();
        if (this.listeners.size === 0) this.stopCounters();
      },
    };
  }

  /** Stops the counters timer and forgets every listener. */
  close(): void {
    this.closed = true;
    this.stopCounters();
    this.listeners.clear();
  }

  // ---- engine events -----------------------------------------------------------

  private accepted(issues: readonly Issue[], routes: readonly AcceptedRoute[]): void {
    for (let i = 0; i < issues.length; i++) {
      const issue = issues[i]!;
      const route = routes[i] ?? { destinations: [] };
      this.received++;
      this.bySeverity[issue.severity] = (this.bySeverity[issue.severity] ?? 0) + 1;
      const processing = route.destinations.length === 1 && route.destinations[0] === PROCESS;
      const stage: FeedStage = processing ? "processing" : route.silenced !== undefined ? "silenced" : "routed";
      // Routed somewhere: its deliveries say so (fromRecord), nothing to remember.
      if (stage !== "routed" || route.destinations.length === 0) this.remember(issue.id, stage, route.silenced);
      if (!this.publishing()) continue;
      const data: FeedIssue = {
        issue,
        stage,
        ...(route.silenced !== undefined ? { silenced: route.silenced } : {}),
        deliveries: processing ? [] : route.destinations.map(pending),
      };
      this.publish({ type: "issue", id: "", data });
    }
  }

  private processed(issue: Issue, destinations: readonly string[], silenced: string | undefined): void {
    const stage = silenced !== undefined ? "silenced" : "routed";
    if (stage === "routed" && destinations.length > 0) this.stages.delete(issue.id);
    else this.remember(issue.id, stage, silenced);
    if (!this.publishing()) return;
    const data: FeedUpdate = { id: issue.id, issue, stage, ...(silenced !== undefined ? { silenced } : {}), deliveries: destinations.map(pending) };
    this.publish({ type: "update", id: "", data });
  }

  private delivery(e: DeliveryEvent): void {
    if (e.outcome === "success") this.sent++;
    else if (e.outcome === "failed") this.failed++;
    else this.retried++;
    if (!this.publishing()) return;
    const data: FeedDeliveryEvent = {
      issueId: e.issueId,
      destination: e.destination,
      state: e.outcome === "success" ? "sent" : e.outcome === "failed" ? "failed" : "retrying",
      attempts: e.attempt,
      at: this.now(),
      ...(e.error !== undefined ? { error: e.error } : {}),
      ...(e.code !== undefined ? { code: e.code } : {}),
      ...(e.hint !== undefined ? { hint: e.hint } : {}),
      ...(e.nextAttemptAt !== undefined ? { nextAttemptAt: e.nextAttemptAt } : {}),
    };
    this.publish({ type: "delivery", id: "", data });
  }

  // ---- ring ----------------------------------------------------------------------

  /**
   * Whether events are kept and sent. When not, the sequence still advances
   * (so ids stay unique) and the ring empties: a later resume gets a reset.
   */
  private publishing(): boolean {
    if (this.closed) return false;
    if (this.listeners.size > 0) return true;
    // Nobody has used the feed since it was last found idle: no clock read per event.
    if (this.lastActivity !== -Infinity) {
      if (this.now() - this.lastActivity < this.keepMs) return true;
      this.lastActivity = -Infinity;
    }
    this.seq++;
    this.clearRing();
    return false;
  }

  private publish(event: Extract<FeedEvent, { id: string }>): void {
    const seq = ++this.seq;
    const id = `${this.epoch}-${seq}`;
    const numbered = { ...event, id } as FeedEvent;
    const frame = `id: ${id}\nevent: ${event.type}\ndata: ${JSON.stringify(event.data)}\n\n`;
    const e: HubEvent = { seq, event: numbered, frame };
    this.keep(e);
    this.countersSoon();
    for (const l of this.listeners) {
      try {
        l(e);
      } catch {
        // A listener's failure is its own (a closed socket): the others still get the event.
      }
    }
  }

  private keep(e: HubEvent): void {
    if (this.ring.length - this.ringHead === 0) this.firstKept = e.seq;
    this.ring.push(e);
    this.ringBytes += e.frame.length;
    while (this.ring.length - this.ringHead > this.maxEvents || (this.ringBytes > this.maxBytes && this.ring.length - this.ringHead > 1)) {
      const old = this.ring[this.ringHead]!;
      this.ring[this.ringHead] = undefined as unknown as HubEvent;
      this.ringHead++;
      this.ringBytes -= old.frame.length;
    }
    // Compact now and then: shifting one at a time would be quadratic.
    if (this.ringHead > 1024 && this.ringHead * 2 > this.ring.length) {
      this.ring.splice(0, this.ringHead);
      this.ringHead = 0;
    }
    this.firstKept = this.ring[this.ringHead]!.seq;
  }

  private clearRing(): void {
    this.ring.length = 0;
    this.ringHead = 0;
    this.ringBytes = 0;
    this.firstKept = this.seq + 1;
  }

  private keptAfter(seq: number): HubEvent[] {
    const n = this.ring.length;
    // Seqs in the ring are consecutive: index arithmetic instead of a search.
    const start = this.ringHead + Math.max(0, seq + 1 - this.firstKept);
    return start >= n ? [] : this.ring.slice(start);
  }

  // ---- counters ------------------------------------------------------------------

  private startCounters(): void {
    if (this.countersTimer !== undefined || this.closed) return;
    this.countersTimer = setInterval(() => this.broadcastCounters(), this.opts.countersEveryMs ?? 2_000);
    this.countersTimer.unref();
  }

  private stopCounters(): void {
    if (this.countersTimer !== undefined) clearInterval(this.countersTimer);
    this.countersTimer = undefined;
    if (this.soonTimer !== undefined) clearTimeout(this.soonTimer);
    this.soonTimer = undefined;
  }

  /** Counters follow events within a moment (coalesced), not only on the next tick. */
  private countersSoon(): void {
    if (this.soonTimer !== undefined || this.listeners.size === 0) return;
    this.soonTimer = setTimeout(() => {
      this.soonTimer = undefined;
      this.broadcastCounters();
    }, 250);
    this.soonTimer.unref();
  }

  /** Sends the counters to every client when they changed since the last time. */
  broadcastCounters(): void {
    const counters = this.counters();
    const json = JSON.stringify(counters);
    if (json === this.lastCounters) return;
    this.lastCounters = json;
    const e: HubEvent = { seq: 0, event: { type: "counters", data: counters }, frame: `event: counters\ndata: ${json}\n\n` };
    for (const l of this.listeners) {
      try {
        l(e);
      } catch {
        // see publish
      }
    }
  }

  // ---- snapshot ------------------------------------------------------------------

  private remember(id: string, stage: FeedStage, silenced: string | undefined): void {
    this.stages.delete(id);
    this.stages.set(id, silenced !== undefined ? { stage, silenced } : { stage });
    if (this.stages.size > STAGES_KEPT) this.stages.delete(this.stages.keys().next().value as string);
  }

  private fromRecord(r: IssueRecord): FeedIssue {
    const deliveries = r.deliveries.map(fromInfo);
    const known = this.stages.get(r.issue.id);
    const stage: FeedStage =
      deliveries.length > 0 ? "routed" : known !== undefined ? known.stage : this.opts.isProcessing?.(r.issue) === true ? "processing" : "routed";
    const silenced = stage === "silenced" ? known?.silenced : undefined;
    return { issue: r.issue, stage, ...(silenced !== undefined ? { silenced } : {}), deliveries };
  }
}

function pending(destination: string): FeedDelivery {
  return { destination, state: "pending", attempts: 0 };
}

function fromInfo(d: DeliveryInfo): FeedDelivery {
  switch (d.state) {
    case "done":
      return { destination: d.destination, state: "sent", attempts: d.attempts + 1, ...(d.finishedAt !== undefined ? { at: d.finishedAt } : {}) };
    case "dead":
      return { destination: d.destination, state: "failed", attempts: d.attempts, ...(d.lastError !== undefined ? { error: d.lastError } : {}), ...(d.finishedAt !== undefined ? { at: d.finishedAt } : {}) };
    case "pending":
      return d.attempts > 0
        ? { destination: d.destination, state: "retrying", attempts: d.attempts, ...(d.lastError !== undefined ? { error: d.lastError } : {}), ...(d.nextAttemptAt !== undefined ? { nextAttemptAt: d.nextAttemptAt } : {}) }
        : { destination: d.destination, state: "pending", attempts: 0 };
  }
}

