import { EventEmitter } from "node:events";
import type { Issue } from "../core/issue.js";
import { severityRank, type Severity } from "../core/severity.js";
import type { FeedCounters, FeedDelivery, FeedEvent, FeedIssue, FeedStage, IssuesSnapshot } from "../server/feed-protocol.js";
import type { ConnectionState, FeedSource } from "./feed-client.js";

/** One Issue as the TUI knows it: the feed's record with every update applied. */
export interface IssueRow {
  readonly issue: Issue;
  readonly stage: FeedStage;
  readonly silenced?: string | undefined;
  readonly deliveries: readonly FeedDelivery[];
  /** Arrival order in this store (ties of receivedAt). */
  readonly arrival: number;
}

export interface IssueFilter {
  /** Case-insensitive words that must all appear (title, alert, namespace, subject, labels, destinations). */
  readonly text: string;
  /** Only this severity and more urgent ones. */
  readonly minSeverity?: Severity | undefined;
  readonly firingOnly: boolean;
}

export const NO_FILTER: IssueFilter = { text: "", firingOnly: false };

export interface IssueStoreOptions {
  /** Issues kept; the oldest go first. */
  readonly maxIssues?: number;
}

/**
 * The TUI's state, outside React: Issues by id, newest first, fed by a
 * FeedSource (snapshots and events, in any order and with repeats after a
 * reconnect: applying is idempotent), plus the counters and the connection
 * state. Emits `change` only when something a view shows changed; views
 * read it through `list()` (memoised per version and filter) and `get()`.
 */
export class IssueStore extends EventEmitter<{ change: [] }> {
  private readonly rows = new Map<string, IssueRow>();
  /** Ids, newest first (receivedAt, then arrival). */
  private order: string[] = [];
  private arrivals = 0;
  private frozen: readonly string[] | undefined;
  private memo: { key: string; rows: readonly IssueRow[] } | undefined;
  private readonly haystacks = new WeakMap<IssueRow, string>();
  private readonly maxIssues: number;
  /** Bumped on every change a view may show. */
  version = 0;
  counters: FeedCounters | undefined;
  connection: ConnectionState = { kind: "connecting" };
  /** Issues that arrived while paused (shown as "+N new"). */
  newWhilePaused = 0;

  constructor(opts: IssueStoreOptions = {}) {
    super();
    this.maxIssues = Math.max(1, opts.maxIssues ?? 10_000);
  }

  /** Feeds the store from `source` until the returned function is called. */
  follow(source: FeedSource): () => void {
    const onSnapshot = (s: IssuesSnapshot): void => this.applySnapshot(s);
    const onEvent = (e: FeedEvent): void => this.applyEvent(e);
    const onState = (s: ConnectionState): void => this.setConnection(s);
    source.on("snapshot", onSnapshot);
    source.on("event", onEvent);
    source.on("state", onState);
    return () => {
      source.off("snapshot", onSnapshot);
      source.off("event", onEvent);
      source.off("state", onState);
    };
  }

  get size(): number {
    return this.rows.size;
  }

  get paused(): boolean {
    return this.frozen !== undefined;
  }

  get(id: string): IssueRow | undefined {
    return this.rows.get(id);
  }

  /** The snapshot's records replace what was known of them; older Issues stay. */
  applySnapshot(s: IssuesSnapshot): void {
    let changed = false;
    // Oldest first, so that arrival order matches the feed's order.
    for (let i = s.issues.length - 1; i >= 0; i--) changed = this.upsert(s.issues[i]!, true) || changed;
    changed = this.setCounters(s.counters) || changed;
    if (changed) this.changed();
  }

  applyEvent(e: FeedEvent): void {
    let changed = false;
    switch (e.type) {
      case "issue":
        changed = this.upsert(e.data, false);
        break;
      case "update": {
        const row = this.rows.get(e.data.id);
        if (row === undefined) {
          changed = this.upsert({ issue: e.data.issue, stage: e.data.stage, silenced: e.data.silenced, deliveries: e.data.deliveries }, false);
          break;
        }
        const byDest = new Map(row.deliveries.map((d) => [d.destination, d]));
        const deliveries = e.data.deliveries.map((d) => byDest.get(d.destination) ?? d);
        this.replace({ ...row, issue: e.data.issue, stage: e.data.stage, silenced: e.data.silenced, deliveries });
        changed = true;
        break;
      }
      case "delivery": {
        const row = this.rows.get(e.data.issueId);
        if (row === undefined) break;
        const { issueId: _id, ...d } = e.data;
        const i = row.deliveries.findIndex((x) => x.destination === d.destination);
        if (i >= 0 && sameDelivery(row.deliveries[i]!, d)) break;
        const deliveries = i >= 0 ? row.deliveries.map((x, j) => (j === i ? d : x)) : [...row.deliveries, d];
        // An outcome means routing is done, whatever the order the events came in.
        this.replace({ ...row, stage: row.stage === "processing" ? "routed" : row.stage, deliveries });
        changed = true;
        break;
      }
      case "counters":
        changed = this.setCounters(e.data);
        break;
      case "reset":
        break;
    }
    if (changed) this.changed();
  }

  setConnection(s: ConnectionState): void {
    if (JSON.stringify(s) === JSON.stringify(this.connection)) return;
    this.connection = s;
    this.changed();
  }

  /** Freezes the list as it is: new Issues are counted, not shown, until resume. Updates to shown ones still apply. */
  pause(): void {
    if (this.frozen !== undefined) return;
    this.frozen = [...this.order];
    this.newWhilePaused = 0;
    this.changed();
  }

  resume(): void {
    if (this.frozen === undefined) return;
    this.frozen = undefined;
    this.newWhilePaused = 0;
    this.changed();
  }

  togglePause(): void {
    if (this.paused) this.resume();
    else this.pause();
  }

  /** Rows that pass the filter, newest first. The same array until the store or the filter changes. */
  list(filter: IssueFilter = NO_FILTER): readonly IssueRow[] {
    const key = `${this.version}\u0000${filter.text}\u0000${filter.minSeverity ?? ""}\u0000${filter.firingOnly}`;
    if (this.memo?.key === key) return this.memo.rows;
    const words = filter.text.toLowerCase().split(/\s+/).filter((w) => w !== "");
    const maxRank = filter.minSeverity !== undefined ? severityRank(filter.minSeverity) : Infinity;
    const out: IssueRow[] = [];
    for (const id of this.frozen ?? this.order) {
      const row = this.rows.get(id);
      if (row === undefined) continue;
      if (filter.firingOnly && row.issue.status !== "FIRING") continue;
      if (severityRank(row.issue.severity) > maxRank) continue;
      if (words.length > 0) {
        const hay = this.haystack(row);
        if (!words.every((w) => hay.includes(w))) continue;
      }
      out.push(row);
    }
    this.memo = { key, rows: out };
    return out;
  }

  // ---- internals -----------------------------------------------------------------

  /** Adds or merges one record. `authoritative` (a snapshot) replaces; an event merges without going back. */
  private upsert(f: FeedIssue, authoritative: boolean): boolean {
    const existing = this.rows.get(f.issue.id);
    if (existing !== undefined) {
      const next: IssueRow = authoritative
        ? { ...existing, issue: f.issue, stage: f.stage, silenced: f.silenced, deliveries: f.deliveries }
        : {
            ...existing,
            issue: existing.stage !== "processing" && f.stage === "processing" ? existing.issue : f.issue,
            stage: existing.stage !== "processing" && f.stage === "processing" ? existing.stage : f.stage,
            silenced: f.silenced ?? existing.silenced,
            deliveries: mergeDeliveries(existing.deliveries, f.deliveries),
          };
      if (sameRow(existing, next)) return false;
      this.replace(next);
      return true;
    }
    const row: IssueRow = { issue: f.issue, stage: f.stage, silenced: f.silenced, deliveries: f.deliveries, arrival: ++this.arrivals };
    this.rows.set(row.issue.id, row);
    this.insert(row);
    if (this.frozen !== undefined) this.newWhilePaused++;
    while (this.rows.size > this.maxIssues) {
      const oldest = this.order.pop();
      if (oldest === undefined) break;
      this.rows.delete(oldest);
    }
    return true;
  }

  private replace(row: IssueRow): void {
    this.rows.set(row.issue.id, row);
  }

  private insert(row: IssueRow): void {
    // Binary search for the first id that is older than this row.
    let lo = 0;
    let hi = this.order.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (newer(this.rows.get(this.order[mid]!)!, row)) lo = mid + 1;
      else hi = mid;
    }
    if (lo === 0) this.order.unshift(row.issue.id);
    else this.order.splice(lo, 0, row.issue.id);
  }

  private setCounters(c: FeedCounters): boolean {
    if (this.counters !== undefined && JSON.stringify(c) === JSON.stringify(this.counters)) return false;
    this.counters = c;
    return true;
  }

  private haystack(row: IssueRow): string {
    let h = this.haystacks.get(row);
    if (h === undefined) {
      const i = row.issue;
      const s = i.subject;
      h = [
        i.title,
        i.aggregationKey,
        i.status,
        i.severity,
        s.namespace ?? "",
        s.kind,
        s.name,
        s.container ?? "",
        s.node ?? "",
        ...Object.entries(s.labels).map(([k, v]) => `${k}=${v}`),
        ...row.deliveries.map((d) => d.destination),
        row.silenced ?? "",
      ]
        .join("\n")
        .toLowerCase();
      this.haystacks.set(row, h);
    }
    return h;
  }

  private changed(): void {
    this.version++;
    this.emit("change");
  }
}

/** Whether `a` sorts before `b` (newest first). */
function newer(a: IssueRow, b: IssueRow): boolean {
  if (a.issue.receivedAt !== b.issue.receivedAt) return a.issue.receivedAt > b.issue.receivedAt;
  return a.arrival > b.arrival;
}

const RANK: Record<FeedDelivery["state"], number> = { pending: 0, retrying: 1, sent: 2, failed: 2 };

/** Per destination, the record further along (a repeat of an older record never undoes an outcome). */
function mergeDeliveries(old: readonly FeedDelivery[], incoming: readonly FeedDelivery[]): readonly FeedDelivery[] {
  const out = new Map(old.map((d) => [d.destination, d]));
  for (const d of incoming) {
    const o = out.get(d.destination);
    if (o === undefined || RANK[d.state] > RANK[o.state] || (RANK[d.state] === RANK[o.state] && d.attempts > o.attempts)) out.set(d.destination, d);
  }
  return [...out.values()];
}

function sameDelivery(a: FeedDelivery, b: FeedDelivery): boolean {
  return a.state === b.state && a.attempts === b.attempts && a.error === b.error && a.nextAttemptAt === b.nextAttemptAt;
}

function sameRow(a: IssueRow, b: IssueRow): boolean {
  return (
    a.stage === b.stage &&
    a.silenced === b.silenced &&
    (a.issue === b.issue || JSON.stringify(a.issue) === JSON.stringify(b.issue)) &&
    a.deliveries.length === b.deliveries.length &&
    a.deliveries.every((d, i) => {
      const e = b.deliveries[i]!;
      return d.destination === e.destination && sameDelivery(d, e);
    })
  );
}
