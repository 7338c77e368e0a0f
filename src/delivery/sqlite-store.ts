import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { hostname } from "node:os";
import path from "node:path";
import Database from "better-sqlite3";
import type { Issue } from "../core/issue.js";
import { errorMessage } from "../errors.js";
import type { Logger } from "../observability/logger.js";
import { Schedule } from "./schedule.js";
import { checkpointThreadAvailable, configureConnection, SqliteWriter, type WriteOp } from "./sqlite-writer.js";
import {
  BacklogFullError,
  dedupKey,
  StoreUnavailableError,
  type AcceptItem,
  type AcceptResult,
  type ClaimedDelivery,
  type Delivery,
  type DeliveryInfo,
  type DeliveryState,
  type DeliveryStore,
  type IssueRecord,
  type TakeOptions,
} from "./store.js";

export const DB_FILE = "kubecano.db";

/**
 * Versioned schema. Append a migration; never edit a released one. Each runs
 * in its own transaction and bumps PRAGMA user_version.
 */
export const MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE issues (
    id TEXT PRIMARY KEY,
    fingerprint TEXT NOT NULL,
    received_at INTEGER NOT NULL,
    body TEXT NOT NULL
  );
  CREATE INDEX issues_received ON issues(received_at);
  CREATE TABLE deliveries (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    issue_id TEXT NOT NULL,
    destination TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'done', 'dead')),
    attempts INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    next_attempt_at INTEGER,
    last_error TEXT,
    remote_id TEXT,
    attempt_started_at INTEGER,
    finished_at INTEGER
  );
  CREATE INDEX deliveries_state ON deliveries(state, destination);
  CREATE INDEX deliveries_issue ON deliveries(issue_id);
  CREATE TABLE dedup (
    key TEXT PRIMARY KEY,
    first_seen INTEGER NOT NULL,
    duplicates INTEGER NOT NULL DEFAULT 0
  );
  CREATE INDEX dedup_first_seen ON dedup(first_seen);
  CREATE TABLE kv (
    namespace TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (namespace, key)
  );
  CREATE TABLE owner (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    pid INTEGER NOT NULL,
    host TEXT NOT NULL,
    heartbeat_at INTEGER NOT NULL
  );
  `,
  // 2: fewer b-trees written per alert (each one is a page written to the
  // WAL per commit). Issues and deliveries are keyed by integers the store
  // assigns in arrival order (rowids: inserts append); the Issue id index
  // appends too (ids are time-ordered). No index on a delivery's Issue: an
  // Issue records the seq range its deliveries lie in (first_seq..last_seq,
  // others may be in between). No index touched by a delivery that goes out
  // at its first attempt: the partial index holds only deliveries that left
  // that path (`parked`: retried, deferred, dead or requeued); waiting ones
  // still on it are found by seq (a scan at start; later from the lowest
  // such seq the owner holds). The dedup window is rebuilt from the
  // newest Issues' dedup_key, set when dedup was on as the dedup table was;
  // keys whose Issue is gone (retention shorter than the window) are
  // carried in dedup_carried until they expire. Deliveries whose Issue is
  // missing could never be sent (schema 1 skipped them) and are not carried over.
  `
  CREATE TABLE issues_v2 (
    n INTEGER PRIMARY KEY,
    id TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    dedup_key TEXT,
    received_at INTEGER NOT NULL,
    first_seq INTEGER NOT NULL,
    last_seq INTEGER NOT NULL,
    body TEXT NOT NULL
  );
  CREATE TEMP TABLE v1_order (n INTEGER PRIMARY KEY, r INTEGER NOT NULL);
  INSERT INTO v1_order (n, r) SELECT row_number() OVER (ORDER BY received_at, rowid), rowid FROM issues;
  INSERT INTO issues_v2 (n, id, fingerprint, dedup_key, received_at, first_seq, last_seq, body)
    SELECT o.n, i.id, i.fingerprint, CASE WHEN k IN (SELECT key FROM dedup) THEN k END, i.received_at, coalesce(lo, top + 1), coalesce(hi, top), i.body
    FROM v1_order o JOIN (
      SELECT rowid AS r, id, fingerprint, received_at, body,
        CASE WHEN received_at >= (SELECT min(first_seen) FROM dedup) AND json_valid(body) THEN fingerprint || char(0) || json_extract(body, '$.status') || char(0) || json_extract(body, '$.startsAt') END AS k,
        (SELECT min(seq) FROM deliveries d WHERE d.issue_id = issues.id) AS lo,
        (SELECT max(seq) FROM deliveries d WHERE d.issue_id = issues.id) AS hi,
        (SELECT coalesce(max(seq), 0) FROM deliveries) AS top
      FROM issues
    ) i ON i.r = o.r
    ORDER BY o.n;
  DROP TABLE v1_order;
  CREATE UNIQUE INDEX issues_id ON issues_v2(id);
  CREATE TABLE dedup_carried (
    key TEXT NOT NULL,
    first_seen INTEGER NOT NULL
  );
  INSERT INTO dedup_carried (key, first_seen)
    SELECT d.key, d.first_seen FROM dedup d
    LEFT JOIN (SELECT dedup_key, max(received_at) AS last FROM issues_v2 WHERE dedup_key IS NOT NULL GROUP BY dedup_key) i ON i.dedup_key = d.key
    WHERE i.last IS NULL OR i.last < d.first_seen;
  CREATE TABLE deliveries_v2 (
    seq INTEGER PRIMARY KEY,
    issue_n INTEGER NOT NULL,
    destination TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'done', 'dead')),
    attempts INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    next_attempt_at INTEGER,
    last_error TEXT,
    remote_id TEXT,
    attempt_started_at INTEGER,
    finished_at INTEGER,
    parked INTEGER
  );
  INSERT INTO deliveries_v2 (seq, issue_n, destination, state, attempts, created_at, next_attempt_at, last_error, remote_id, attempt_started_at, finished_at, parked)
    SELECT d.seq, i.n, d.destination, d.state, d.attempts, d.created_at, d.next_attempt_at, d.last_error, d.remote_id, d.attempt_started_at, d.finished_at, CASE WHEN d.state <> 'done' THEN 1 END
    FROM deliveries d JOIN issues_v2 i ON i.id = d.issue_id;
  DROP TABLE dedup;
  DROP TABLE deliveries;
  DROP TABLE issues;
  ALTER TABLE issues_v2 RENAME TO issues;
  ALTER TABLE deliveries_v2 RENAME TO deliveries;
  CREATE INDEX deliveries_parked ON deliveries(state, finished_at) WHERE parked = 1 AND state <> 'done';
  `,
];

export const SCHEMA_VERSION = MIGRATIONS.length;

export interface SqliteStoreOptions {
  /** Directory of the database; ":memory:" keeps everything in memory (--ephemeral). */
  readonly stateDir: string;
  readonly maxBacklog: number;
  readonly dedupWindowMs?: number;
  /** Finished Issues kept for the feed and `kubecano deliveries`. */
  readonly retentionMs?: number;
  /** Dead letters are kept this long unless retried or dropped. */
  readonly deadRetentionMs?: number;
  readonly log?: Logger;
  readonly now?: () => number;
  /**
   * The daemon owns the state directory: it schedules deliveries from it and
   * refuses to share it with another live daemon. Operator commands open it
   * without ownership.
   */
  readonly owner?: boolean;
  /** PRAGMA synchronous: "normal" survives process crashes; "full" also power loss (slower). */
  readonly synchronous?: "normal" | "full";
}

/** Another live kubecano owns this state directory. */
export class StateDirInUseError extends Error {
  constructor(dir: string, pid: number, host: string) {
    super(`state directory ${dir} is in use by kubecano pid ${pid} on ${host}`);
    this.name = "StateDirInUseError";
  }
}

/** A deliveries row with its Issue's id and fingerprint (every read joins them). */
interface DeliveryRow {
  seq: number;
  parked: number | null;
  issue_n: number;
  issue_id: string;
  fingerprint: string;
  destination: string;
  state: DeliveryState;
  attempts: number;
  created_at: number;
  next_attempt_at: number | null;
  last_error: string | null;
  remote_id: string | null;
  attempt_started_at: number | null;
  finished_at: number | null;
}

const HEARTBEAT_MS = 5_000;
/** How long past the dedup window an expired key may stay in memory (see rememberSeen). */
const SEEN_EXPIRY_SLACK_MS = 1_000;
/**
 * Operator commands (another process) set this kv entry when they change
 * deliveries; the owner reloads its schedule when it changed.
 */
const OPERATOR_MARK = { namespace: "@kubecano", key: "operator-change" } as const;
const OWNER_STALE_MS = 30_000;
/** Issues examined per pruning transaction (about 20 ms of deleting). */
const PRUNE_CHUNK = 1_000;
const DAY_MS = 86_400_000;

/**
 * The durable DeliveryStore: SQLite in WAL mode under the state directory.
 * Accepted Issues and their deliveries are committed before `accept`
 * returns, so an acknowledged alert survives kill -9. Scheduling runs on the
 * in-memory Schedule, rebuilt from the database at start and whenever
 * another process (an operator's `kubecano deliveries retry`) changes it.
 *
 * Rows are keyed by integers assigned here, in arrival order: an Issue's `n`
 * and a delivery's `seq` (both rowids). A delivery's id
 * (`${issueId}/${destination}`) exists in memory and in what operators see;
 * the database resolves it through the Issue's id and seq range.
 */
export class SqliteDeliveryStore implements DeliveryStore {
  readonly dir: string;
  private readonly db: Database.Database;
  private readonly schedule = new Schedule();
  /** Issues with deliveries in the schedule: their row number and how many deliveries are open. */
  private readonly issues = new Map<string, { issue: Issue; n: number; open: number }>();
  private readonly stmts: ReturnType<typeof prepare>;
  private readonly timers: NodeJS.Timeout[] = [];
  /** The operator-change mark last seen (see OPERATOR_MARK). */
  private operatorMark: string | undefined;
  private unavailable: string | undefined;
  private closed = false;
  /**
   * Group commit: writes queued during one turn of the event loop are handed
   * to the writer together (setImmediate) and committed in one transaction
   * (see SqliteWriter, and its checkpoint thread for the fsyncs).
   * Accepts wait for that commit before they resolve (the 202 follows it);
   * delivery outcomes do not wait: losing one to a crash means a resend,
   * which the in-doubt check or at-least-once covers.
   */
  private writer!: SqliteWriter;
  private sendScheduled = false;
  /** Whether the batch being gathered holds delivery outcomes (their failure is logged once per batch). */
  private outcomesQueued = false;
  /** Accepted but not yet committed, for the backlog bound. */
  private pendingAccepts = 0;
  /**
   * The dedup window in memory (key → first seen), oldest first. It is the
   * authority while running; its durable copy is the dedup_key of the
   * Issues accepted within the window, read back at start (which is why
   * prune keeps Issues for at least the window).
   */
  private readonly seen = new Map<string, number>();
  /** No key in `seen` is older than this (see rememberSeen). */
  private seenOldestAt = -Infinity;
  /** Keys of accepts handed to the writer and not yet committed (HA replicas arriving together). */
  private readonly pendingSeen = new Map<string, number>();
  /** kv writes not yet committed: reads see them (read-your-writes). */
  private readonly kvPending = new Map<string, string | undefined>();
  private nextSeq = 1;
  private nextN = 1;
  /**
   * Seqs of the scheduled deliveries not parked in the database (on their
   * first pass: never retried, deferred, requeued). A reload finds those
   * from the lowest of them on, and parked ones by their index.
   */
  private readonly fresh = new Set<number>();
  /**
   * False once a write failed: the database may then hold a delivery on its
   * first pass that `fresh` no longer has (its parking was lost), so reloads
   * look at every delivery.
   */
  private freshKnown = false;
  /**
   * Pruning walks the Issues oldest first and remembers how far it got:
   * every Issue with n ≤ pruneFloor is past the cutoff and was either
   * deleted or kept because a delivery still needed it (pending, dead, or
   * delivered within retention). Those kept are looked at again only when
   * that may have changed: their dead letter expired (prune), their last
   * open delivery finished here (`pruneLater`), or another process changed
   * the deliveries (a reload starts the walk over).
   */
  private pruneFloor = 0;
  /** Kept Issues (below pruneFloor) to look at again, by when; in due order. */
  private readonly pruneLater: { n: number; due: number }[] = [];
  /** Whether dedup keys carried over from schema 1 (dedup_carried) are still there. */
  private carriedDedup = false;
  /** A timer-driven prune is still walking (in steps, letting the event loop go in between). */
  private pruning = false;
  private kvPrunedAt = -Infinity;

  private constructor(
    private readonly opts: SqliteStoreOptions,
    db: Database.Database,
  ) {
    this.dir = opts.stateDir;
    this.db = db;
    this.stmts = prepare(db);
  }

  /**
   * Writes are committed on this connection. The daemon's database file is
   * checkpointed by a thread of the writer; an in-memory database has no
   * WAL, and operator commands write too little to need one.
   */
  private startWriter(): void {
    const opts = this.opts;
    const daemon = opts.stateDir !== ":memory:" && opts.owner !== false;
    // From TypeScript sources (the in-process unit tests) there is no compiled thread: this store checkpoints (checkWritable).
    const thread = daemon && checkpointThreadAvailable();
    // Durability full: the writer fsyncs the WAL after its commits off the event loop (see syncWal), not SQLite on it.
    const syncWal = daemon && opts.synchronous === "full" ? path.join(opts.stateDir, `${DB_FILE}-wal`) : undefined;
    if (syncWal !== undefined) this.db.pragma("synchronous = NORMAL");
    this.writer = new SqliteWriter({
      db: this.db,
      statements: WRITES,
      rowInserts: ["insertIssue", "insertDelivery"],
      ranges: { finishDone: FINISH_DONE_RANGE },
      syncWal,
      checkpoint: thread
        ? {
            file: path.join(opts.stateDir, DB_FILE),
            synchronous: opts.synchronous ?? "normal",
            onError: (e) =>
              opts.log?.warn({ stateDir: opts.stateDir, err: e.message }, "the state directory's checkpoint thread stopped; checkpoints now run on the event loop, which delays webhook answers under load"),
          }
        : undefined,
    });
  }

  static open(opts: SqliteStoreOptions): SqliteDeliveryStore {
    const memory = opts.stateDir === ":memory:";
    let db: Database.Database | undefined;
    let store: SqliteDeliveryStore;
    try {
      if (!memory) mkdirSync(opts.stateDir, { recursive: true, mode: 0o700 });
      db = new Database(memory ? ":memory:" : path.join(opts.stateDir, DB_FILE));
      configureConnection(db, opts.synchronous ?? "normal");
      migrate(db, opts.stateDir, opts.now?.() ?? Date.now());
      store = new SqliteDeliveryStore(opts, db);
      if (opts.owner !== false) {
        store.claimOwnership();
        store.load();
        store.loadSeen();
      }
      store.startWriter();
    } catch (e) {
      // A refused open leaves nothing open (a full disk, another owner).
      db?.close();
      if (e instanceof StateDirInUseError) throw e;
      throw new StoreUnavailableError(`cannot open the state directory ${opts.stateDir}: ${sqliteMessage(e)}`, e);
    }
    if (opts.owner !== false) store.startMaintenance();
    return store;
  }

  private now(): number {
    return this.opts.now?.() ?? Date.now();
  }

  // ---- DeliveryStore -------------------------------------------------------

  accept(items: readonly AcceptItem[]): Promise<AcceptResult> {
    if (this.unavailable !== undefined) return Promise.reject(new StoreUnavailableError(this.unavailable));
    const backlog = this.schedule.size + this.pendingAccepts;
    if (backlog >= this.opts.maxBacklog) return Promise.reject(new BacklogFullError(backlog, this.opts.maxBacklog));
    const now = this.now();
    const window = this.opts.dedupWindowMs ?? 0;
    const count = items.reduce((n, i) => n + i.destinations.length, 0);
    this.pendingAccepts += count;
    const added: { issue: Issue; n: number; deliveries: Delivery[] }[] = [];
    const duplicateIds: string[] = [];
    const seenNow: string[] = [];
    const ops: WriteOp[] = [];
    for (const item of items) {
      const issue = item.issue;
      let key: string | null = null;
      if (window > 0) {
        key = dedupKey(issue);
        // Decided here, not at commit: accepts of one key handed over together (HA replicas) keep only the first.
        const first = this.seen.get(key) ?? this.pendingSeen.get(key);
        if (first !== undefined && now - first < window) {
          duplicateIds.push(issue.id);
          continue;
        }
        this.pendingSeen.set(key, now);
        seenNow.push(key);
      }
      // Numbered in the order handed to the writer, which commits in that order: n and seq follow the rows on disk.
      const n = this.nextN++;
      // A delivery is known by (Issue, destination): one each.
      const destinations = item.destinations.length > 1 ? [...new Set(item.destinations)] : item.destinations;
      const first = this.nextSeq;
      ops.push(["insertIssue", [n, issue.id, issue.fingerprint, key, now, first, first + destinations.length - 1, JSON.stringify(issue)]]);
      const deliveries: Delivery[] = [];
      for (const destination of destinations) {
        const seq = this.nextSeq++;
        // Due when created: no next_attempt_at is stored until a retry or deferral sets one.
        ops.push(["insertDelivery", [seq, n, destination, now, null]]);
        deliveries.push({ id: `${issue.id}/${destination}`, issueId: issue.id, destination, fingerprint: issue.fingerprint, seq, createdAt: now, attempts: 0, nextAttemptAt: now });
      }
      added.push({ issue, n, deliveries });
    }
    return new Promise<AcceptResult>((resolve, reject) => {
      this.enqueue(ops, (err) => {
        this.pendingAccepts -= count;
        for (const k of seenNow) if (this.pendingSeen.get(k) === now) this.pendingSeen.delete(k);
        if (err === undefined) for (const k of seenNow) this.rememberSeen(k, now);
        if (err !== undefined) {
          // Probe now rather than at the next maintenance tick, so /readyz says so at once.
          this.checkWritable();
          reject(new StoreUnavailableError(`cannot write to the state directory ${this.dir}: ${sqliteMessage(err)}`, err));
          return;
        }
        let deliveries = 0;
        for (const a of added) {
          if (a.deliveries.length > 0) this.issues.set(a.issue.id, { issue: a.issue, n: a.n, open: a.deliveries.length });
          for (const d of a.deliveries) {
            this.schedule.add(d);
            this.fresh.add(d.seq);
          }
          deliveries += a.deliveries.length;
        }
        resolve({ issues: added.length, deliveries, duplicates: duplicateIds.length, duplicateIds });
      });
    });
  }

  take(destination: string, now: number, opts?: TakeOptions): ClaimedDelivery | undefined {
    const d = this.schedule.take(destination, now);
    if (d === undefined) return undefined;
    const issue = this.issues.get(d.issueId)?.issue;
    if (issue === undefined) {
      // Cannot happen unless the database was edited by hand: do not loop on it.
      this.schedule.remove(d.id);
      this.fresh.delete(d.seq);
      this.write(["finishDead", [now, "its Issue is missing from the store", d.attempts, d.seq]]);
      return this.take(destination, now, opts);
    }
    // The marker must be on disk before the send can reach the destination: committed now, after what is queued.
    if (opts?.recordAttempt === true) {
      this.write(["markAttempt", [now, d.seq]]);
      this.flush();
    }
    return { delivery: d, issue };
  }

  nextDueAt(destination: string): number | undefined {
    return this.schedule.nextDueAt(destination);
  }

  complete(delivery: Delivery, remoteId?: string): void {
    if (this.schedule.remove(delivery.id) === undefined) return;
    const now = this.now();
    this.release1(delivery.issueId, now);
    const seq = delivery.seq;
    this.fresh.delete(seq);
    this.write(remoteId === undefined ? ["finishDone", [now, seq]] : ["finishDoneRemote", [now, remoteId, seq]]);
  }

  retry(delivery: Delivery, nextAttemptAt: number, error: string, inDoubtSince?: number): void {
    if (!this.schedule.has(delivery.id)) return;
    const attempts = delivery.attempts + 1;
    this.schedule.reschedule(delivery.id, { attempts, nextAttemptAt, lastError: error, inDoubtSince });
    this.fresh.delete(delivery.seq);
    this.write(["retry", [attempts, nextAttemptAt, truncateError(error), inDoubtSince ?? null, delivery.seq]]);
  }

  defer(delivery: Delivery, nextAttemptAt: number): void {
    if (!this.schedule.has(delivery.id)) return;
    const inDoubt = delivery.inDoubtSince;
    this.schedule.defer(delivery.id, nextAttemptAt, inDoubt);
    this.fresh.delete(delivery.seq);
    this.write(["defer", [nextAttemptAt, inDoubt ?? null, delivery.seq]]);
  }

  kill(delivery: Delivery, error: string): void {
    if (this.schedule.remove(delivery.id) === undefined) return;
    const now = this.now();
    // A dead letter keeps its Issue: nothing for pruning to look at until it expires.
    this.release1(delivery.issueId, undefined);
    this.fresh.delete(delivery.seq);
    const attempts = delivery.attempts + 1;
    this.write(["finishDead", [now, truncateError(error), attempts, delivery.seq]]);
  }

  fanOut(processing: Delivery, issue: Issue, destinations: readonly string[]): void {
    if (!this.schedule.has(processing.id)) return;
    const now = this.now();
    const entry = this.issues.get(issue.id);
    const added: Delivery[] = [...new Set(destinations)].map((destination) => ({
      id: `${issue.id}/${destination}`,
      issueId: issue.id,
      destination,
      fingerprint: issue.fingerprint,
      seq: this.nextSeq++,
      createdAt: processing.createdAt,
      attempts: 0,
      nextAttemptAt: now,
    }));
    // The processing delivery is open, so its Issue is in memory; the lookup is for a hand-edited database.
    const n = entry?.n ?? (this.stmts.issueN.get(issue.id) as { n: number } | undefined)?.n;
    if (n === undefined) throw new StoreUnavailableError(`the Issue ${issue.id} is missing from the store`);
    this.enqueue([
      ["updateIssue", [JSON.stringify(issue), issue.fingerprint, added.at(-1)?.seq ?? null, n]],
      ...added.map((d): WriteOp => ["insertDelivery", [d.seq, n, d.destination, d.createdAt, now]]),
      ["finishDone", [now, processing.seq]],
    ]);
    this.outcomesQueued = true;
    if (entry !== undefined) entry.issue = issue;
    for (const d of added) {
      this.schedule.add(d);
      this.fresh.add(d.seq);
    }
    if (entry !== undefined) entry.open += added.length;
    this.schedule.remove(processing.id);
    this.fresh.delete(processing.seq);
    this.release1(processing.issueId, now);
  }

  isPending(destination: string, fingerprint: string): boolean {
    return this.schedule.hasFingerprint(destination, fingerprint);
  }

  /**
   * The attempt marker stays: a release comes from a shutdown that aborted
   * the send, which may already have reached the destination, so a recorded
   * attempt stays in doubt (the next start looks before sending again).
   */
  release(delivery: Delivery): void {
    if (!this.schedule.has(delivery.id)) return;
    let startedAt: number | null = null;
    try {
      // The marker may still be on its way to the database.
      this.flush();
      startedAt = (this.stmts.attemptStartedAt.get(delivery.seq) as { attempt_started_at: number | null } | undefined)?.attempt_started_at ?? null;
    } catch {
      // Unreadable: the database's marker, if any, still holds for the next start.
    }
    this.schedule.reschedule(delivery.id, startedAt !== null ? { inDoubtSince: startedAt } : {});
  }

  depth(destination?: string): number {
    return this.schedule.depth(destination);
  }

  recent(limit: number): IssueRecord[] {
    this.flush();
    const rows = this.stmts.recentIssues.all(Math.max(0, Math.min(limit, 10_000))) as (IssueSpan & { id: string; fingerprint: string; body: string })[];
    return rows.map((r) => {
      const issue = JSON.parse(r.body) as Issue;
      // The internal processing step is not a delivery anyone needs to see.
      const deliveries = (this.stmts.deliveriesOfIssue.all(r.first_seq, r.last_seq, r.n) as DeliveryRow[])
        .filter((d) => !d.destination.startsWith("@"))
        .map((d) => toInfo({ ...d, issue_id: r.id, fingerprint: r.fingerprint }, issue.title));
      return { issue, deliveries };
    });
  }

  getState(namespace: string, key: string): string | undefined {
    const k = `${namespace}\u0000${key}`;
    if (this.kvPending.has(k)) return this.kvPending.get(k);
    const row = this.stmts.kvGet.get(namespace, key) as { value: string } | undefined;
    return row?.value;
  }

  setState(namespace: string, key: string, value: string | undefined): void {
    const k = `${namespace}\u0000${key}`;
    this.kvPending.set(k, value);
    const now = this.now();
    // Reads see the value until it is committed, then the database has it (unless a later write replaced it meanwhile).
    this.enqueue([value === undefined ? ["kvDelete", [namespace, key]] : ["kvPut", [namespace, key, value, now]]], () => {
      if (this.kvPending.get(k) === value) this.kvPending.delete(k);
    });
    this.outcomesQueued = true;
  }

  close(): void {
    if (this.closed) return;
    this.flush();
    this.writer.close();
    this.closed = true;
    for (const t of this.timers) clearInterval(t);
    try {
      if (this.opts.owner !== false) this.stmts.releaseOwner.run(process.pid);
    } catch {
      // A read-only or full disk must not turn shutdown into a crash.
    }
    this.db.close();
  }

  // ---- health -----------------------------------------------------------------

  /** Undefined when the store can take new work; otherwise why not. */
  unavailableReason(): string | undefined {
    return this.unavailable;
  }

  /**
   * Creates and removes a file in the state directory. Writes to the already
   * open database can keep working on a directory that became read-only, but
   * the next checkpoint or restart would not: refuse new work early.
   */
  checkWritable(): void {
    if (this.opts.stateDir === ":memory:") return;
    const probe = path.join(this.dir, ".kubecano-write-probe");
    const before = this.unavailable;
    try {
      writeFileSync(probe, String(this.now()));
      rmSync(probe, { force: true });
      // Folds the WAL into the database: the checkpoint thread does after every commit.
      if (!this.writer.checkpointsInBackground) this.db.pragma("wal_checkpoint(PASSIVE)");
      this.unavailable = undefined;
    } catch (e) {
      this.unavailable = `the state directory ${this.dir} is not writable: ${sqliteMessage(e)}`;
    }
    if (before === undefined && this.unavailable !== undefined) this.opts.log?.error({ stateDir: this.dir }, `${this.unavailable}; answering 503 to webhooks until it is writable again`);
    if (before !== undefined && this.unavailable === undefined) this.opts.log?.info({ stateDir: this.dir }, "the state directory is writable again; accepting webhooks");
  }

  // ---- operator commands (also usable without ownership) -----------------------

  list(filter: { states?: readonly DeliveryState[]; limit?: number } = {}): DeliveryInfo[] {
    this.flush();
    const states = filter.states ?? ["pending", "dead"];
    const limit = filter.limit ?? 1000;
    const rows = this.db
      .prepare(
        `SELECT d.*, i.id AS issue_id, i.fingerprint AS fingerprint, json_extract(i.body, '$.title') AS title FROM deliveries d JOIN issues i ON i.n = d.issue_n WHERE d.state IN (${states.map(() => "?").join(",")}) ORDER BY d.seq LIMIT ?`,
      )
      .all(...states, limit) as (DeliveryRow & { title: string | null })[];
    return rows.map((r) => toInfo(r, r.title ?? undefined));
  }

  /** Makes a dead (or waiting) delivery due now with a fresh attempt budget. Returns false when there is no such delivery. */
  requeue(id: string): boolean {
    const now = this.now();
    const tx = this.db.transaction(() => {
      const seq = this.resolve(id);
      if (seq === undefined) return false;
      const r = this.db.prepare("UPDATE deliveries SET state = 'pending', attempts = 0, next_attempt_at = ?, created_at = ?, finished_at = NULL, attempt_started_at = NULL, parked = 1 WHERE seq = ? AND state IN ('dead', 'pending')").run(now, now, seq);
      if (r.changes > 0) this.markOperatorChange(now);
      return r.changes > 0;
    });
    return tx.immediate();
  }

  requeueAllDead(): number {
    const now = this.now();
    const tx = this.db.transaction(() => {
      const r = this.db.prepare("UPDATE deliveries SET state = 'pending', attempts = 0, next_attempt_at = ?, created_at = ?, finished_at = NULL, attempt_started_at = NULL WHERE parked = 1 AND state <> 'done' AND state = 'dead'").run(now, now);
      if (r.changes > 0) this.markOperatorChange(now);
      return r.changes;
    });
    return tx.immediate();
  }

  /** Removes a pending or dead delivery for good. */
  drop(id: string): boolean {
    const tx = this.db.transaction(() => {
      const seq = this.resolve(id);
      if (seq === undefined) return false;
      const dropped = this.db.prepare("DELETE FROM deliveries WHERE seq = ? AND state IN ('pending', 'dead')").run(seq).changes > 0;
      if (dropped) this.markOperatorChange(this.now());
      return dropped;
    });
    return tx.immediate();
  }

  /** The seq of a delivery given as operators do: its number, or its id (`${issueId}/${destination}`). */
  private resolve(id: string): number | undefined {
    if (/^\d+$/.test(id) && String(Number(id)) === id) return Number(id);
    const slash = id.indexOf("/");
    if (slash < 0) return undefined;
    const span = this.db.prepare("SELECT n, first_seq, last_seq FROM issues WHERE id = ?").get(id.slice(0, slash)) as IssueSpan | undefined;
    if (span === undefined) return undefined;
    const row = this.db
      .prepare("SELECT seq FROM deliveries WHERE seq BETWEEN ? AND ? AND issue_n = ? AND destination = ? ORDER BY seq DESC LIMIT 1")
      .get(span.first_seq, span.last_seq, span.n, id.slice(slash + 1)) as { seq: number } | undefined;
    return row?.seq;
  }

  // ---- internals ----------------------------------------------------------------

  private rememberSeen(key: string, at: number): void {
    this.seen.delete(key);
    this.seen.set(key, at);
    // Expired keys go about once a second, not one per accept: a key kept
    // past the window is harmless (accept compares its age), and the oldest
    // key is no older than seenOldestAt, so until then nothing has expired.
    const window = this.opts.dedupWindowMs ?? 0;
    if (at - this.seenOldestAt < window + SEEN_EXPIRY_SLACK_MS) return;
    for (const [k, t] of this.seen) {
      if (at - t < window) {
        this.seenOldestAt = t;
        return;
      }
      this.seen.delete(k);
    }
  }

  /**
   * Called once a delivery left the schedule: forget its Issue when it was
   * the last one. `finishedAt`: it was delivered (not dead), so an Issue the
   * pruning walk already kept may go once that delivery is past retention.
   */
  private release1(issueId: string, finishedAt: number | undefined): void {
    const entry = this.issues.get(issueId);
    if (entry === undefined || --entry.open > 0) return;
    this.issues.delete(issueId);
    if (finishedAt !== undefined && entry.n <= this.pruneFloor) this.pruneLater.push({ n: entry.n, due: finishedAt + this.retention() + 1 });
  }

  private retention(): number {
    return this.opts.retentionMs ?? DAY_MS;
  }

  /** Queues a write for a delivery outcome; a failure is logged, never thrown into the engine. */
  private write(op: WriteOp): void {
    this.enqueue([op]);
    this.outcomesQueued = true;
  }

  private enqueue(ops: readonly WriteOp[], done?: (err: unknown) => void): void {
    this.writer.submit(ops, done);
    if (!this.sendScheduled) {
      this.sendScheduled = true;
      setImmediate(() => this.send());
    }
  }

  /**
   * Hands everything queued to the writer as one batch. When its commit
   * fails, every accept in it is refused (503) and the outcome writes are
   * lost (logged once).
   */
  private send(): void {
    this.sendScheduled = false;
    if (this.outcomesQueued) {
      this.outcomesQueued = false;
      this.writer.submit([], (err) => {
        if (err === undefined) return;
        this.freshKnown = false;
        this.opts.log?.error({ stateDir: this.dir }, `cannot record delivery outcomes in the state directory: ${sqliteMessage(err)} (they may be sent again after a restart)`);
      });
    }
    this.writer.send();
  }

  /** Commits everything queued now (reads that must see it, tests, shutdown). */
  flush(): void {
    if (this.closed) return;
    this.send();
  }

  /** Picks up changes made by another process (operator commands). Called by the engine's poll, not per take. */
  refresh(): void {
    this.syncIfChanged();
  }

  private claimOwnership(): void {
    const now = this.now();
    const me = hostname();
    const tx = this.db.transaction(() => {
      const row = liveOwner(this.db, now);
      if (row !== undefined) throw new StateDirInUseError(this.dir, row.pid, row.host);
      this.stmts.putOwner.run(process.pid, me, now);
    });
    tx.immediate();
  }

  /**
   * Loads pending deliveries into the schedule; attempts that never finished
   * come back in doubt. Deliveries in flight here (`inFlight`, kept taken)
   * go first in their fingerprint's line: an operator may have queued an
   * earlier one again, which must wait for them, not go out alongside.
   */
  private load(inFlight: ReadonlySet<string> = new Set()): void {
    // Every delivery at start (and after a failed write); later the parked ones and those from the first fresh one on.
    let from: number | undefined;
    if (this.freshKnown) {
      from = this.nextSeq;
      for (const seq of this.fresh) from = Math.min(from, seq);
    }
    type Row = DeliveryRow & { body: string };
    const pending =
      from === undefined
        ? (this.stmts.pendingAll.all() as Row[])
        : [...(this.stmts.pendingParked.all() as Row[]), ...(this.stmts.pendingFreshFrom.all(from) as Row[])].sort((x, y) => x.seq - y.seq);
    this.schedule.clear();
    this.issues.clear();
    this.fresh.clear();
    this.freshKnown = true;
    const all = pending.map((r) => ({ r, d: rowToDelivery(r) }));
    const rows = inFlight.size === 0 ? all : [...all.filter((x) => inFlight.has(x.d.id)), ...all.filter((x) => !inFlight.has(x.d.id))];
    for (const { r, d } of rows) {
      const entry = this.issues.get(r.issue_id);
      if (entry === undefined) this.issues.set(r.issue_id, { issue: JSON.parse(r.body) as Issue, n: r.issue_n, open: 1 });
      else entry.open++;
      this.schedule.add(d, { taken: inFlight.has(d.id) });
    }
    for (const r of pending) if (r.parked === null) this.fresh.add(r.seq);
    this.operatorMark = this.readOperatorMark();
    this.nextSeq = Math.max(this.nextSeq, ((this.stmts.maxSeq.get() as { m: number | null }).m ?? 0) + 1);
    this.nextN = Math.max(this.nextN, ((this.stmts.maxN.get() as { m: number | null }).m ?? 0) + 1);
    // Another process may have removed or revived deliveries of Issues pruning kept: walk them again.
    this.pruneFloor = 0;
    this.pruneLater.length = 0;
  }

  /**
   * Rebuilds the dedup window at start: the newest Issues' keys, newest
   * first, back to the start of the window (arrival order; a clock stepped
   * back only ends the walk early for Issues that were in it by a little).
   */
  private loadSeen(): void {
    const window = this.opts.dedupWindowMs ?? 0;
    this.carriedDedup = this.db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'dedup_carried'").get() !== undefined;
    if (window <= 0) return;
    const since = this.now() - window;
    const found = new Map<string, number>();
    for (const r of this.stmts.newestKeys.iterate() as IterableIterator<{ dedup_key: string | null; received_at: number }>) {
      if (r.received_at < since) break;
      if (r.dedup_key !== null && !found.has(r.dedup_key)) found.set(r.dedup_key, r.received_at);
    }
    if (this.carriedDedup) {
      for (const r of this.db.prepare("SELECT key, first_seen FROM dedup_carried WHERE first_seen >= ?").iterate(since) as IterableIterator<{ key: string; first_seen: number }>) {
        if ((found.get(r.key) ?? -Infinity) < r.first_seen) found.set(r.key, r.first_seen);
      }
    }
    this.seen.clear();
    this.seenOldestAt = -Infinity;
    for (const [k, t] of [...found].sort((a, b) => a[1] - b[1])) this.seen.set(k, t);
  }

  /**
   * Another connection (an operator command) committed: rebuild the schedule
   * from the database, keeping what is in flight here as taken.
   */
  private syncIfChanged(): void {
    if (this.opts.stateDir === ":memory:" || this.closed) return;
    let mark: string | undefined;
    try {
      mark = this.readOperatorMark();
    } catch {
      return;
    }
    if (mark === this.operatorMark) return;
    this.operatorMark = mark;
    // Our own queued writes first: a reload must not resurrect what we already finished.
    this.flush();
    this.load(new Set(this.schedule.takenIds()));
  }

  private readOperatorMark(): string | undefined {
    return (this.stmts.kvGet.get(OPERATOR_MARK.namespace, OPERATOR_MARK.key) as { value: string } | undefined)?.value;
  }

  /** Tells the owner (syncIfChanged) that deliveries changed under it; inside the operator's transaction. */
  private markOperatorChange(now: number): void {
    this.stmts.kvPut.run(OPERATOR_MARK.namespace, OPERATOR_MARK.key, `${process.pid}:${now}:${Math.random().toString(36).slice(2)}`, now);
  }


  /** Also in memory (--ephemeral): pruning is what bounds the dedup keys and the finished Issues. */
  private startMaintenance(): void {
    const beat = setInterval(() => {
      // A failure is reported by checkWritable (an unwritable directory).
      this.enqueue([["putOwner", [process.pid, hostname(), this.now()]]]);
      this.checkWritable();
      this.pruneInSteps();
    }, HEARTBEAT_MS);
    beat.unref();
    this.timers.push(beat);
    this.checkWritable();
  }

  /**
   * Deletes dead letters past deadRetention, delivered deliveries past
   * retention, and Issues past max(retention, dedup window) that no
   * delivery needs any more (none pending or dead, none delivered within
   * retention). Work is proportional to what it deletes: the Issues are
   * walked oldest first from where the last run stopped (see pruneFloor),
   * their deliveries read by seq range, and dead letters found by the
   * parked index ordered by finished_at.
   */
  prune(): void {
    // What was finished before is on disk, so the walk sees it (one finished later is looked at again: release1).
    this.flush();
    this.pruneHeld();
    while (this.pruneStep());
  }

  /**
   * The maintenance timer's prune: one chunk per turn of the event loop, so
   * a backlog to delete (after a long stop) does not hold up webhooks. Each
   * chunk runs right after the commit of everything queued before it
   * (afterCommit), so the walk sees what was finished.
   */
  private pruneInSteps(): void {
    if (this.pruning) return;
    this.pruning = true;
    const step = (first: boolean): void => {
      if (this.closed) {
        this.pruning = false;
        return;
      }
      if (first) this.pruneHeld();
      if (this.pruneStep()) this.afterCommit(() => step(false));
      else this.pruning = false;
    };
    this.afterCommit(() => step(true));
  }

  /**
   * Runs `fn` once everything queued so far is committed. Not at all when
   * the commit failed: the directory's trouble is reported elsewhere
   * (checkWritable, the accepts).
   */
  private afterCommit(fn: () => void): void {
    this.enqueue([], (err) => {
      if (err === undefined) fn();
      else this.pruning = false;
    });
  }

  /** Expired dead letters, kept Issues due for another look, kv, carried dedup keys. Call with nothing queued (flush or afterCommit). */
  private pruneHeld(): void {
    const now = this.now();
    const window = this.opts.dedupWindowMs ?? 0;
    const doneCutoff = now - this.retention();
    try {
      this.db.transaction(() => {
        const recheck = new Set<number>();
        for (const r of this.stmts.deleteDead.all(now - (this.opts.deadRetentionMs ?? 7 * DAY_MS)) as { issue_n: number }[]) if (r.issue_n <= this.pruneFloor) recheck.add(r.issue_n);
        while (this.pruneLater.length > 0 && this.pruneLater[0]!.due <= now) recheck.add(this.pruneLater.shift()!.n);
        for (const n of recheck) {
          const span = this.stmts.issueSpan.get(n) as IssueSpan | undefined;
          if (span === undefined) continue;
          this.stmts.deleteDoneOfIssue.run(span.first_seq, span.last_seq, n, doneCutoff);
          const left = this.stmts.deliveriesLeft.get(span.first_seq, span.last_seq, n) as { total: number; open: number | null };
          if (left.total === 0) this.stmts.deleteIssue.run(n);
          else if (left.open === 0) this.pruneLater.push({ n, due: now + this.retention() + 1 });
        }
        // Destination state (thread maps, where a fingerprint was routed) of incidents quiet for a month; a scan, so hourly.
        if (now - this.kvPrunedAt >= 3_600_000) {
          this.stmts.kvPrune.run(now - 30 * DAY_MS);
          this.kvPrunedAt = now;
        }
        if (this.carriedDedup) {
          const last = (this.db.prepare("SELECT max(first_seen) AS m FROM dedup_carried").get() as { m: number | null }).m;
          if (last === null || last < now - Math.max(window, 60_000)) {
            this.db.exec("DROP TABLE dedup_carried");
            this.carriedDedup = false;
          }
        }
      }).immediate();
    } catch (e) {
      this.opts.log?.debug({ err: errorMessage(e) }, "pruning the state directory failed");
    }
  }

  /** One chunk of the walk over Issues past the cutoff; true when there may be more. Call with nothing queued (flush or afterCommit). */
  private pruneStep(): boolean {
    const now = this.now();
    const doneCutoff = now - this.retention();
    const cutoff = now - Math.max(this.retention(), this.opts.dedupWindowMs ?? 0);
    try {
      return this.db.transaction(() => {
        const from = this.pruneFloor;
        let to = from;
        let count = 0;
        for (const r of this.stmts.issuesFrom.iterate(from) as IterableIterator<{ n: number; received_at: number }>) {
          if (r.received_at >= cutoff) break;
          to = r.n;
          if (++count >= PRUNE_CHUNK) break;
        }
        if (to === from) return false;
        // The deliveries of Issues from+1..to lie in this seq range.
        const range = this.stmts.spanOfIssues.get(from, to) as { lo: number | null; hi: number | null };
        const lo = range.lo ?? 0;
        const hi = range.hi ?? -1;
        this.stmts.deleteDoneInRange.run(lo, hi, from, to, doneCutoff);
        this.stmts.deleteUnusedIssuesInRange.run(from, to, lo, hi, from, to);
        // Kept only for a delivery within retention: looked at again once it is past it.
        for (const r of this.stmts.keptForDoneInRange.all(lo, hi, from, to) as { issue_n: number }[]) this.pruneLater.push({ n: r.issue_n, due: now + this.retention() + 1 });
        this.pruneFloor = to;
        return count >= PRUNE_CHUNK;
      }).immediate();
    } catch (e) {
      this.opts.log?.debug({ err: errorMessage(e) }, "pruning the state directory failed");
      return false;
    }
  }
}

/** Where an Issue's deliveries are: seqs first_seq..last_seq with issue_n = n. */
interface IssueSpan {
  n: number;
  first_seq: number;
  last_seq: number;
}

/** The statements the writer runs (SqliteWriter ops name them). */
const WRITES = {
  insertIssue: "INSERT INTO issues (n, id, fingerprint, dedup_key, received_at, first_seq, last_seq, body) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
  insertDelivery: "INSERT INTO deliveries (seq, issue_n, destination, state, created_at, next_attempt_at) VALUES (?, ?, ?, 'pending', ?, ?)",
  markAttempt: "UPDATE deliveries SET attempt_started_at = coalesce(attempt_started_at, ?) WHERE seq = ?",
  retry: "UPDATE deliveries SET attempts = ?, next_attempt_at = ?, last_error = ?, attempt_started_at = ?, parked = 1 WHERE seq = ? AND state = 'pending'",
  finishDone: "UPDATE deliveries SET state = 'done', finished_at = ? WHERE seq = ? AND state = 'pending'",
  finishDoneRemote: "UPDATE deliveries SET state = 'done', finished_at = ?, remote_id = ? WHERE seq = ? AND state = 'pending'",
  finishDead: "UPDATE deliveries SET state = 'dead', finished_at = ?, last_error = ?, attempts = ?, parked = 1 WHERE seq = ? AND state = 'pending'",
  defer: "UPDATE deliveries SET next_attempt_at = ?, attempt_started_at = ?, parked = 1 WHERE seq = ? AND state = 'pending'",
  updateIssue: "UPDATE issues SET body = ?, fingerprint = ?, last_seq = max(last_seq, coalesce(?, last_seq)) WHERE n = ?",
  kvPut: "INSERT INTO kv (namespace, key, value, updated_at) VALUES (?, ?, ?, ?) ON CONFLICT(namespace, key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
  kvDelete: "DELETE FROM kv WHERE namespace = ? AND key = ?",
  putOwner: "INSERT INTO owner (id, pid, host, heartbeat_at) VALUES (1, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET pid = excluded.pid, host = excluded.host, heartbeat_at = excluded.heartbeat_at",
} as const;

/**
 * finishDone over a run of deliveries finished at the same time (the
 * writer merges them: under a storm a turn finishes dozens in seq order).
 */
const FINISH_DONE_RANGE = "UPDATE deliveries SET state = 'done', finished_at = ? WHERE seq BETWEEN ? AND ? AND state = 'pending'";

function prepare(db: Database.Database) {
  const delivery = "SELECT d.*, i.id AS issue_id, i.fingerprint AS fingerprint, i.body AS body FROM deliveries d JOIN issues i ON i.n = d.issue_n";
  return {
    insertIssue: db.prepare(WRITES.insertIssue),
    // next_attempt_at NULL: due when created.
    insertDelivery: db.prepare(WRITES.insertDelivery),
    issueN: db.prepare("SELECT n FROM issues WHERE id = ?"),
    // The first unfinished attempt's time is kept: what it may have created is older than a later attempt.
    markAttempt: db.prepare(WRITES.markAttempt),
    attemptStartedAt: db.prepare("SELECT attempt_started_at FROM deliveries WHERE seq = ?"),
    retry: db.prepare(WRITES.retry),
    // Only what changes: a finished delivery's next_attempt_at and attempt_started_at are never read (toInfo, load).
    finishDone: db.prepare(WRITES.finishDone),
    finishDoneRemote: db.prepare(WRITES.finishDoneRemote),
    finishDead: db.prepare(WRITES.finishDead),
    defer: db.prepare(WRITES.defer),
    updateIssue: db.prepare(WRITES.updateIssue),
    pendingAll: db.prepare(`${delivery} WHERE d.state = 'pending' ORDER BY d.seq`),
    // The terms of the partial index's WHERE let SQLite use it.
    pendingParked: db.prepare(`${delivery} WHERE d.parked = 1 AND d.state <> 'done' AND d.state = 'pending'`),
    pendingFreshFrom: db.prepare(`${delivery} WHERE d.seq >= ? AND d.state = 'pending' AND d.parked IS NULL ORDER BY d.seq`),
    maxSeq: db.prepare("SELECT max(seq) AS m FROM deliveries"),
    maxN: db.prepare("SELECT max(n) AS m FROM issues"),
    newestKeys: db.prepare("SELECT dedup_key, received_at FROM issues ORDER BY n DESC"),
    recentIssues: db.prepare("SELECT n, id, fingerprint, first_seq, last_seq, body FROM issues ORDER BY n DESC LIMIT ?"),
    deliveriesOfIssue: db.prepare("SELECT * FROM deliveries WHERE seq BETWEEN ? AND ? AND issue_n = ? ORDER BY seq"),
    issueSpan: db.prepare("SELECT n, first_seq, last_seq FROM issues WHERE n = ?"),
    deleteDead: db.prepare("DELETE FROM deliveries WHERE parked = 1 AND state <> 'done' AND state = 'dead' AND finished_at < ? RETURNING issue_n"),
    deleteDoneOfIssue: db.prepare("DELETE FROM deliveries WHERE seq BETWEEN ? AND ? AND issue_n = ? AND state = 'done' AND finished_at < ?"),
    deliveriesLeft: db.prepare("SELECT count(*) AS total, max(state <> 'done') AS open FROM deliveries WHERE seq BETWEEN ? AND ? AND issue_n = ?"),
    deleteIssue: db.prepare("DELETE FROM issues WHERE n = ?"),
    issuesFrom: db.prepare("SELECT n, received_at FROM issues WHERE n > ? ORDER BY n"),
    spanOfIssues: db.prepare("SELECT min(first_seq) AS lo, max(last_seq) AS hi FROM issues WHERE n > ? AND n <= ? AND last_seq >= first_seq"),
    deleteDoneInRange: db.prepare("DELETE FROM deliveries WHERE seq BETWEEN ? AND ? AND issue_n > ? AND issue_n <= ? AND state = 'done' AND finished_at < ?"),
    deleteUnusedIssuesInRange: db.prepare("DELETE FROM issues WHERE n > ? AND n <= ? AND n NOT IN (SELECT issue_n FROM deliveries WHERE seq BETWEEN ? AND ? AND issue_n > ? AND issue_n <= ?)"),
    keptForDoneInRange: db.prepare("SELECT issue_n FROM deliveries WHERE seq BETWEEN ? AND ? AND issue_n > ? AND issue_n <= ? GROUP BY issue_n HAVING max(state <> 'done') = 0"),
    kvGet: db.prepare("SELECT value FROM kv WHERE namespace = ? AND key = ?"),
    kvPut: db.prepare(WRITES.kvPut),
    kvDelete: db.prepare(WRITES.kvDelete),
    kvPrune: db.prepare("DELETE FROM kv WHERE updated_at < ?"),
    putOwner: db.prepare(WRITES.putOwner),
    releaseOwner: db.prepare("DELETE FROM owner WHERE id = 1 AND pid = ?"),
  };
}

/** The owner row when another live process holds the directory. */
function liveOwner(db: Database.Database, now: number): { pid: number; host: string } | undefined {
  const row = db.prepare("SELECT pid, host, heartbeat_at FROM owner WHERE id = 1").get() as { pid: number; host: string; heartbeat_at: number } | undefined;
  if (row !== undefined && row.pid !== process.pid && now - row.heartbeat_at < OWNER_STALE_MS && (row.host !== hostname() || isAlive(row.pid))) return row;
  return undefined;
}

function migrate(db: Database.Database, dir: string, now: number): void {
  const current = db.pragma("user_version", { simple: true }) as number;
  if (current > MIGRATIONS.length) {
    throw new Error(`the state was written by a newer kubecano (schema ${current}, this one knows ${MIGRATIONS.length}); upgrade kubecano or use another --state-dir`);
  }
  // A live kubecano of the older schema would fail on every write after the
  // migration: migrate only once it has stopped (this also holds for
  // operator commands, which never take ownership).
  if (current >= 1 && current < MIGRATIONS.length) {
    const owner = liveOwner(db, now);
    if (owner !== undefined) {
      throw new Error(`the state directory ${dir} is in use by kubecano pid ${owner.pid} on ${owner.host}, which uses an older schema (${current}, this one is ${MIGRATIONS.length}); stop it before upgrading`);
    }
  }
  for (let v = current; v < MIGRATIONS.length; v++) {
    db.transaction(() => {
      db.exec(MIGRATIONS[v]!);
      db.pragma(`user_version = ${v + 1}`);
    }).immediate();
  }
}

function rowToDelivery(r: DeliveryRow): Delivery {
  return {
    id: `${r.issue_id}/${r.destination}`,
    issueId: r.issue_id,
    destination: r.destination,
    fingerprint: r.fingerprint,
    seq: r.seq,
    createdAt: r.created_at,
    attempts: r.attempts,
    nextAttemptAt: r.next_attempt_at ?? r.created_at,
    ...(r.last_error !== null ? { lastError: r.last_error } : {}),
    ...(r.remote_id !== null ? { remoteId: r.remote_id } : {}),
    ...(r.attempt_started_at !== null ? { inDoubtSince: r.attempt_started_at } : {}),
  };
}

function toInfo(r: DeliveryRow, title: string | undefined): DeliveryInfo {
  return {
    id: `${r.issue_id}/${r.destination}`,
    seq: r.seq,
    issueId: r.issue_id,
    destination: r.destination,
    state: r.state,
    attempts: r.attempts,
    createdAt: r.created_at,
    // Only a waiting delivery has a next attempt (a finished row keeps its last one); none recorded: due when created.
    nextAttemptAt: r.state === "pending" ? (r.next_attempt_at ?? r.created_at) : undefined,
    lastError: r.last_error ?? undefined,
    remoteId: r.remote_id ?? undefined,
    finishedAt: r.finished_at ?? undefined,
    title,
    fingerprint: r.fingerprint,
  };
}

function truncateError(s: string): string {
  return s.length > 1000 ? `${s.slice(0, 999)}…` : s;
}

/** "disk is full (SQLITE_FULL)" rather than a stack. */
export function sqliteMessage(e: unknown): string {
  const code = (e as { code?: unknown }).code;
  const msg = errorMessage(e);
  return typeof code === "string" && !msg.includes(code) ? `${msg} (${code})` : msg;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}
