import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { hostname } from "node:os";
import path from "node:path";
import Database from "better-sqlite3";
import type { Issue } from "../core/issue.js";
import { errorMessage } from "../errors.js";
import type { Logger } from "../observability/logger.js";
import { Schedule } from "./schedule.js";
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
const MIGRATIONS: readonly string[] = [
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

interface DeliveryRow {
  seq: number;
  id: string;
  issue_id: string;
  destination: string;
  fingerprint: string;
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
const OWNER_STALE_MS = 30_000;

/**
 * The durable DeliveryStore: SQLite in WAL mode under the state directory.
 * Accepted Issues and their deliveries are committed before `accept`
 * returns, so an acknowledged alert survives kill -9. Scheduling runs on the
 * in-memory Schedule, rebuilt from the database at start and whenever
 * another process (an operator's `kubecano deliveries retry`) changes it.
 */
export class SqliteDeliveryStore implements DeliveryStore {
  readonly dir: string;
  private readonly db: Database.Database;
  private readonly schedule = new Schedule();
  /** Issues with deliveries in the schedule, and how many. */
  private readonly issues = new Map<string, { issue: Issue; open: number }>();
  private readonly stmts: ReturnType<typeof prepare>;
  private readonly timers: NodeJS.Timeout[] = [];
  private dataVersion = 0;
  private unavailable: string | undefined;
  private closed = false;
  /**
   * Group commit: writes queued during one turn of the event loop are
   * committed together in one transaction (setImmediate). Accepts wait for
   * that commit before they resolve (the 202 follows it); delivery outcomes
   * do not wait: losing one to a crash means a resend, which the in-doubt
   * check or at-least-once covers.
   */
  private queue: { op: () => void; done?: (err: unknown) => void }[] = [];
  private flushScheduled = false;
  /** Accepted but not yet committed, for the backlog bound. */
  private pendingAccepts = 0;
  /**
   * The dedup window in memory (key → first seen), oldest first; the dedup
   * table is its durable copy, read back at start.
   */
  private readonly seen = new Map<string, number>();
  /** Keys seen by accepts of the transaction being committed (HA replicas in one turn). */
  private readonly batchSeen = new Map<string, number>();
  /** kv writes not yet committed: reads see them (read-your-writes). */
  private readonly kvPending = new Map<string, string | undefined>();
  private nextSeq = 1;
  private readonly runBatch: Database.Transaction<(batch: readonly { op: () => void }[]) => void>;

  private constructor(
    private readonly opts: SqliteStoreOptions,
    db: Database.Database,
  ) {
    this.dir = opts.stateDir;
    this.db = db;
    this.stmts = prepare(db);
    this.runBatch = db.transaction((batch: readonly { op: () => void }[]) => {
      for (const b of batch) b.op();
    });
  }

  static open(opts: SqliteStoreOptions): SqliteDeliveryStore {
    const memory = opts.stateDir === ":memory:";
    let db: Database.Database | undefined;
    let store: SqliteDeliveryStore;
    try {
      if (!memory) mkdirSync(opts.stateDir, { recursive: true, mode: 0o700 });
      db = new Database(memory ? ":memory:" : path.join(opts.stateDir, DB_FILE));
      db.pragma("journal_mode = WAL");
      db.pragma(`synchronous = ${opts.synchronous === "full" ? "FULL" : "NORMAL"}`);
      db.pragma("busy_timeout = 5000");
      // Checkpoint every ~40 MB of WAL instead of SQLite's 4 MB: each checkpoint
      // copies and fsyncs on the event loop, and fewer of them cost less CPU
      // per alert (a page rewritten many times is copied once). Durability is
      // unchanged (commits are in the WAL either way); the maintenance timer
      // still checkpoints every HEARTBEAT_MS, so the WAL only grows this far
      // under sustained load.
      db.pragma("wal_autocheckpoint = 10000");
      // A WAL file keeps its largest size unless told otherwise: once a
      // checkpoint has reset it, cut it back to 8 MB after a storm.
      db.pragma("journal_size_limit = 8388608");
      db.pragma("foreign_keys = OFF");
      migrate(db);
      store = new SqliteDeliveryStore(opts, db);
      if (opts.owner !== false) {
        store.claimOwnership();
        store.load();
      }
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
    const added: { issue: Issue; deliveries: Delivery[] }[] = [];
    const duplicateIds: string[] = [];
    const seenNow: string[] = [];
    return new Promise<AcceptResult>((resolve, reject) => {
      this.enqueue(
        () => {
          for (const { issue, destinations } of items) {
            if (window > 0) {
              const key = dedupKey(issue);
              const first = this.seen.get(key) ?? this.batchSeen.get(key);
              if (first !== undefined && now - first < window) {
                duplicateIds.push(issue.id);
                continue;
              }
              this.stmts.dedupPut.run(key, now);
              this.batchSeen.set(key, now);
              seenNow.push(key);
            }
            this.stmts.insertIssue.run(issue.id, issue.fingerprint, now, JSON.stringify(issue));
            const deliveries: Delivery[] = [];
            for (const destination of destinations) {
              const id = `${issue.id}/${destination}`;
              const seq = this.nextSeq++;
              this.stmts.insertDelivery.run(seq, id, issue.id, destination, issue.fingerprint, now, now);
              deliveries.push({ id, issueId: issue.id, destination, fingerprint: issue.fingerprint, seq, createdAt: now, attempts: 0, nextAttemptAt: now });
            }
            added.push({ issue, deliveries });
          }
        },
        (err) => {
          this.pendingAccepts -= count;
          if (err === undefined) for (const k of seenNow) this.rememberSeen(k, now);
          if (err !== undefined) {
            // Probe now rather than at the next maintenance tick, so /readyz says so at once.
            this.checkWritable();
            reject(new StoreUnavailableError(`cannot write to the state directory ${this.dir}: ${sqliteMessage(err)}`, err));
            return;
          }
          let deliveries = 0;
          for (const a of added) {
            if (a.deliveries.length > 0) this.issues.set(a.issue.id, { issue: a.issue, open: a.deliveries.length });
            for (const d of a.deliveries) this.schedule.add(d);
            deliveries += a.deliveries.length;
          }
          resolve({ issues: added.length, deliveries, duplicates: duplicateIds.length, duplicateIds });
        },
      );
    });
  }

  take(destination: string, now: number, opts?: TakeOptions): ClaimedDelivery | undefined {
    const d = this.schedule.take(destination, now);
    if (d === undefined) return undefined;
    const issue = this.issues.get(d.issueId)?.issue;
    if (issue === undefined) {
      // Cannot happen unless the database was edited by hand: do not loop on it.
      this.schedule.remove(d.id);
      this.write(() => this.stmts.finish.run("dead", now, null, "its Issue is missing from the store", d.id));
      return this.take(destination, now, opts);
    }
    // The marker must be on disk before the send can reach the destination: committed now, after what is queued.
    if (opts?.recordAttempt === true) {
      this.write(() => this.stmts.markAttempt.run(now, d.id));
      this.flush();
    }
    return { delivery: d, issue };
  }

  nextDueAt(destination: string): number | undefined {
    return this.schedule.nextDueAt(destination);
  }

  complete(delivery: Delivery, remoteId?: string): void {
    if (this.schedule.remove(delivery.id) === undefined) return;
    this.release1(delivery.issueId);
    const now = this.now();
    this.write(() => this.finishTx(delivery, "done", remoteId ?? null, null, now));
  }

  retry(delivery: Delivery, nextAttemptAt: number, error: string, inDoubtSince?: number): void {
    if (!this.schedule.has(delivery.id)) return;
    const attempts = delivery.attempts + 1;
    this.schedule.reschedule(delivery.id, { attempts, nextAttemptAt, lastError: error, inDoubtSince });
    this.write(() => this.stmts.retry.run(attempts, nextAttemptAt, truncateError(error), inDoubtSince ?? null, delivery.id));
  }

  defer(delivery: Delivery, nextAttemptAt: number): void {
    if (!this.schedule.has(delivery.id)) return;
    const inDoubt = delivery.inDoubtSince;
    this.schedule.defer(delivery.id, nextAttemptAt, inDoubt);
    this.write(() => this.stmts.defer.run(nextAttemptAt, inDoubt ?? null, delivery.id));
  }

  kill(delivery: Delivery, error: string): void {
    if (this.schedule.remove(delivery.id) === undefined) return;
    this.release1(delivery.issueId);
    const now = this.now();
    this.write(() => this.finishTx({ ...delivery, attempts: delivery.attempts + 1 }, "dead", null, truncateError(error), now));
  }

  fanOut(processing: Delivery, issue: Issue, destinations: readonly string[]): void {
    if (!this.schedule.has(processing.id)) return;
    const now = this.now();
    const added: Delivery[] = destinations.map((destination) => ({
      id: `${issue.id}/${destination}`,
      issueId: issue.id,
      destination,
      fingerprint: issue.fingerprint,
      seq: this.nextSeq++,
      createdAt: processing.createdAt,
      attempts: 0,
      nextAttemptAt: now,
    }));
    this.write(() => {
      this.stmts.updateIssue.run(JSON.stringify(issue), issue.id);
      for (const d of added) this.stmts.insertDelivery.run(d.seq, d.id, d.issueId, d.destination, d.fingerprint, d.createdAt, now);
      this.stmts.finish.run("done", now, null, null, processing.id);
    });
    const entry = this.issues.get(issue.id);
    if (entry !== undefined) entry.issue = issue;
    for (const d of added) this.schedule.add(d);
    if (entry !== undefined) entry.open += added.length;
    this.schedule.remove(processing.id);
    this.release1(processing.issueId);
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
      startedAt = (this.stmts.attemptStartedAt.get(delivery.id) as { attempt_started_at: number | null } | undefined)?.attempt_started_at ?? null;
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
    const rows = this.stmts.recentIssues.all(Math.max(0, Math.min(limit, 10_000))) as { id: string; body: string }[];
    return rows.map((r) => {
      const issue = JSON.parse(r.body) as Issue;
      // The internal processing step is not a delivery anyone needs to see.
      const deliveries = (this.stmts.deliveriesOfIssue.all(r.id) as DeliveryRow[]).filter((d) => !d.destination.startsWith("@")).map((d) => toInfo(d, issue.title));
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
    this.write(() => (value === undefined ? this.stmts.kvDelete.run(namespace, key) : this.stmts.kvPut.run(namespace, key, value, now)));
  }

  close(): void {
    if (this.closed) return;
    this.flush();
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
      this.db.pragma("wal_checkpoint(PASSIVE)");
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
      .prepare(`SELECT d.*, json_extract(i.body, '$.title') AS title FROM deliveries d LEFT JOIN issues i ON i.id = d.issue_id WHERE d.state IN (${states.map(() => "?").join(",")}) ORDER BY d.seq LIMIT ?`)
      .all(...states, limit) as (DeliveryRow & { title: string | null })[];
    return rows.map((r) => toInfo(r, r.title ?? undefined));
  }

  /** Makes a dead (or waiting) delivery due now with a fresh attempt budget. Returns false when there is no such delivery. */
  requeue(id: string): boolean {
    const now = this.now();
    const r = this.db.prepare("UPDATE deliveries SET state = 'pending', attempts = 0, next_attempt_at = ?, created_at = ?, finished_at = NULL, attempt_started_at = NULL WHERE (id = ? OR CAST(seq AS TEXT) = ?) AND state IN ('dead', 'pending')").run(now, now, id, id);
    return r.changes > 0;
  }

  requeueAllDead(): number {
    const now = this.now();
    const tx = this.db.transaction(() => {
      const r = this.db.prepare("UPDATE deliveries SET state = 'pending', attempts = 0, next_attempt_at = ?, created_at = ?, finished_at = NULL, attempt_started_at = NULL WHERE state = 'dead'").run(now, now);
      return r.changes;
    });
    return tx.immediate();
  }

  /** Removes a pending or dead delivery for good. */
  drop(id: string): boolean {
    const tx = this.db.transaction(() => {
      const row = this.db.prepare("SELECT id, issue_id, state FROM deliveries WHERE (id = ? OR CAST(seq AS TEXT) = ?) AND state IN ('pending', 'dead')").get(id, id) as { id: string; issue_id: string; state: string } | undefined;
      if (row === undefined) return false;
      this.db.prepare("DELETE FROM deliveries WHERE id = ?").run(row.id);
      return true;
    });
    return tx.immediate();
  }

  // ---- internals ----------------------------------------------------------------

  /** Marks a delivery done or dead; runs inside the group commit. */
  private finishTx(delivery: Delivery, state: "done" | "dead", remoteId: string | null, error: string | null, now: number): void {
    // By seq (the rowid, which a Delivery always carries) rather than id: no lookup in the id index.
    this.stmts.finishBySeq.run(state, now, remoteId, error, delivery.seq);
    if (state === "dead") this.stmts.setAttempts.run(delivery.attempts, delivery.id);
  }

  private rememberSeen(key: string, at: number): void {
    this.seen.delete(key);
    this.seen.set(key, at);
    const window = this.opts.dedupWindowMs ?? 0;
    for (const [k, t] of this.seen) {
      if (at - t < window) break;
      this.seen.delete(k);
    }
  }

  /** Called once a delivery left the schedule: forget its Issue when it was the last one. */
  private release1(issueId: string): void {
    const entry = this.issues.get(issueId);
    if (entry !== undefined && --entry.open <= 0) this.issues.delete(issueId);
  }

  /** Queues a write for a delivery outcome; a failure is logged, never thrown into the engine. */
  private write(fn: () => unknown): void {
    this.enqueue(() => void fn());
  }

  private enqueue(op: () => void, done?: (err: unknown) => void): void {
    this.queue.push(done !== undefined ? { op, done } : { op });
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(() => this.flush());
    }
  }

  /**
   * Commits everything queued in one transaction. An accept's `done` runs
   * after the commit; when the transaction fails every accept is refused
   * (503) and the outcome writes are lost (logged).
   */
  flush(): void {
    this.flushScheduled = false;
    if (this.queue.length === 0) return;
    const batch = this.queue;
    this.queue = [];
    const kv = new Map(this.kvPending);
    let err: unknown;
    if (this.closed) err = new Error("the store is closed");
    else {
      try {
        this.batchSeen.clear();
        this.runBatch.immediate(batch);
      } catch (e) {
        err = e;
      }
    }
    // Values written by this batch are on disk now (or lost): reads go to the database again.
    for (const [k, v] of kv) if (this.kvPending.get(k) === v) this.kvPending.delete(k);
    if (err !== undefined && batch.some((b) => b.done === undefined)) {
      this.opts.log?.error({ stateDir: this.dir }, `cannot record delivery outcomes in the state directory: ${sqliteMessage(err)} (they may be sent again after a restart)`);
    }
    for (const b of batch) b.done?.(err);
  }

  /** Picks up changes made by another process (operator commands). Called by the engine's poll, not per take. */
  refresh(): void {
    this.syncIfChanged();
  }

  private claimOwnership(): void {
    const now = this.now();
    const me = hostname();
    const tx = this.db.transaction(() => {
      const row = this.stmts.getOwner.get() as { pid: number; host: string; heartbeat_at: number } | undefined;
      if (row !== undefined && row.pid !== process.pid && now - row.heartbeat_at < OWNER_STALE_MS && (row.host !== me || isAlive(row.pid))) {
        throw new StateDirInUseError(this.dir, row.pid, row.host);
      }
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
    this.schedule.clear();
    this.issues.clear();
    const all = this.stmts.pendingAll.all() as (DeliveryRow & { body: string | null })[];
    const rows = inFlight.size === 0 ? all : [...all.filter((r) => inFlight.has(r.id)), ...all.filter((r) => !inFlight.has(r.id))];
    for (const r of rows) {
      if (r.body === null) continue;
      const entry = this.issues.get(r.issue_id);
      if (entry === undefined) this.issues.set(r.issue_id, { issue: JSON.parse(r.body) as Issue, open: 1 });
      else entry.open++;
      this.schedule.add(rowToDelivery(r), { taken: inFlight.has(r.id) });
    }
    this.dataVersion = this.db.pragma("data_version", { simple: true }) as number;
    const window = this.opts.dedupWindowMs ?? 0;
    if (window > 0 && this.seen.size === 0) {
      for (const r of this.db.prepare("SELECT key, first_seen FROM dedup WHERE first_seen >= ? ORDER BY first_seen").iterate(this.now() - window) as IterableIterator<{ key: string; first_seen: number }>) this.seen.set(r.key, r.first_seen);
    }
    const max = (this.db.prepare("SELECT max(seq) AS m FROM deliveries").get() as { m: number | null }).m;
    this.nextSeq = Math.max(this.nextSeq, (max ?? 0) + 1);
  }

  /**
   * Another connection (an operator command) committed: rebuild the schedule
   * from the database, keeping what is in flight here as taken.
   */
  private syncIfChanged(): void {
    if (this.opts.stateDir === ":memory:" || this.closed) return;
    // Our own queued writes first: a reload must not resurrect what we already finished.
    this.flush();
    let v: number;
    try {
      v = this.db.pragma("data_version", { simple: true }) as number;
    } catch {
      return;
    }
    if (v === this.dataVersion) return;
    this.dataVersion = v;
    this.load(new Set(this.schedule.takenIds()));
  }

  /** Also in memory (--ephemeral): pruning is what bounds the dedup keys and the finished Issues. */
  private startMaintenance(): void {
    const beat = setInterval(() => {
      try {
        this.stmts.putOwner.run(process.pid, hostname(), this.now());
      } catch {
        // checkWritable reports an unwritable directory.
      }
      this.checkWritable();
      this.prune();
    }, HEARTBEAT_MS);
    beat.unref();
    this.timers.push(beat);
    this.checkWritable();
  }

  /** Forgets expired dedup keys, finished Issues past retention and old dead letters. */
  prune(): void {
    const now = this.now();
    try {
      const tx = this.db.transaction(() => {
        this.db.prepare("DELETE FROM dedup WHERE first_seen < ?").run(now - Math.max(this.opts.dedupWindowMs ?? 0, 60_000));
        const cutoff = now - (this.opts.retentionMs ?? 24 * 3_600_000);
        this.db.prepare("DELETE FROM deliveries WHERE state = 'done' AND finished_at < ?").run(cutoff);
        this.db.prepare("DELETE FROM deliveries WHERE state = 'dead' AND finished_at < ?").run(now - (this.opts.deadRetentionMs ?? 7 * 86_400_000));
        this.db.prepare("DELETE FROM issues WHERE received_at < ? AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.issue_id = issues.id)").run(cutoff);
        // Destination state (thread maps, where a fingerprint was routed) of incidents quiet for a month.
        this.db.prepare("DELETE FROM kv WHERE updated_at < ?").run(now - 30 * 86_400_000);
      });
      tx.immediate();
    } catch (e) {
      this.opts.log?.debug({ err: errorMessage(e) }, "pruning the state directory failed");
    }
  }
}

function prepare(db: Database.Database) {
  return {
    insertIssue: db.prepare("INSERT INTO issues (id, fingerprint, received_at, body) VALUES (?, ?, ?, ?)"),
    insertDelivery: db.prepare("INSERT INTO deliveries (seq, id, issue_id, destination, fingerprint, state, attempts, created_at, next_attempt_at) VALUES (?, ?, ?, ?, ?, 'pending', 0, ?, ?)"),
    dedupPut: db.prepare("INSERT INTO dedup (key, first_seen, duplicates) VALUES (?, ?, 0) ON CONFLICT(key) DO UPDATE SET first_seen = excluded.first_seen, duplicates = 0"),
    // The first unfinished attempt's time is kept: what it may have created is older than a later attempt.
    markAttempt: db.prepare("UPDATE deliveries SET attempt_started_at = coalesce(attempt_started_at, ?) WHERE id = ?"),
    attemptStartedAt: db.prepare("SELECT attempt_started_at FROM deliveries WHERE id = ?"),
    retry: db.prepare("UPDATE deliveries SET attempts = ?, next_attempt_at = ?, last_error = ?, attempt_started_at = ? WHERE id = ? AND state = 'pending'"),
    finish: db.prepare("UPDATE deliveries SET state = ?, finished_at = ?, remote_id = coalesce(?, remote_id), last_error = coalesce(?, last_error), next_attempt_at = NULL, attempt_started_at = NULL WHERE id = ? AND state = 'pending'"),
    finishBySeq: db.prepare("UPDATE deliveries SET state = ?, finished_at = ?, remote_id = coalesce(?, remote_id), last_error = coalesce(?, last_error), next_attempt_at = NULL, attempt_started_at = NULL WHERE seq = ? AND state = 'pending'"),
    defer: db.prepare("UPDATE deliveries SET next_attempt_at = ?, attempt_started_at = ? WHERE id = ? AND state = 'pending'"),
    setAttempts: db.prepare("UPDATE deliveries SET attempts = ? WHERE id = ?"),
    updateIssue: db.prepare("UPDATE issues SET body = ? WHERE id = ?"),
    pendingAll: db.prepare("SELECT d.*, i.body AS body FROM deliveries d LEFT JOIN issues i ON i.id = d.issue_id WHERE d.state = 'pending' ORDER BY d.seq"),
    recentIssues: db.prepare("SELECT id, body FROM issues ORDER BY received_at DESC, rowid DESC LIMIT ?"),
    deliveriesOfIssue: db.prepare("SELECT * FROM deliveries WHERE issue_id = ? ORDER BY seq"),
    kvGet: db.prepare("SELECT value FROM kv WHERE namespace = ? AND key = ?"),
    kvPut: db.prepare("INSERT INTO kv (namespace, key, value, updated_at) VALUES (?, ?, ?, ?) ON CONFLICT(namespace, key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at"),
    kvDelete: db.prepare("DELETE FROM kv WHERE namespace = ? AND key = ?"),
    getOwner: db.prepare("SELECT pid, host, heartbeat_at FROM owner WHERE id = 1"),
    putOwner: db.prepare("INSERT INTO owner (id, pid, host, heartbeat_at) VALUES (1, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET pid = excluded.pid, host = excluded.host, heartbeat_at = excluded.heartbeat_at"),
    releaseOwner: db.prepare("DELETE FROM owner WHERE id = 1 AND pid = ?"),
  };
}

function migrate(db: Database.Database): void {
  const current = db.pragma("user_version", { simple: true }) as number;
  if (current > MIGRATIONS.length) {
    throw new Error(`the state was written by a newer kubecano (schema ${current}, this one knows ${MIGRATIONS.length}); upgrade kubecano or use another --state-dir`);
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
    id: r.id,
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
    id: r.id,
    seq: r.seq,
    issueId: r.issue_id,
    destination: r.destination,
    state: r.state,
    attempts: r.attempts,
    createdAt: r.created_at,
    nextAttemptAt: r.next_attempt_at ?? undefined,
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
