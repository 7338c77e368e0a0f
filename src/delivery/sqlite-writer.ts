import { existsSync, fsync, fsyncSync, openSync, closeSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { Worker } from "node:worker_threads";
import type Database from "better-sqlite3";

/** One write: a named prepared statement and its parameters. */
export type WriteOp = readonly [statement: string, params: readonly unknown[]];

export interface WriterOptions {
  /** The connection written on (the store's own). */
  readonly db: Database.Database;
  /** The statements ops may name, by name. */
  readonly statements: Readonly<Record<string, string>>;
  /**
   * Checkpoint the WAL of this database file on a thread of its own (see
   * sqlite-checkpointer.ts). Without it, or when the thread cannot run, the
   * caller checkpoints (PRAGMA wal_checkpoint) and SQLite's automatic
   * checkpoint after a commit does the rest.
   */
  readonly checkpoint?: {
    readonly file: string;
    readonly synchronous: "normal" | "full";
    /**
     * Called once if the thread fails. Writes go on; checkpoints then run
     * on the connection's own thread, with their fsyncs.
     */
    readonly onError?: (e: Error) => void;
  };
  /**
   * The database's WAL file, for durability `full`: after each commit it is
   * fsynced on libuv's thread pool, and the commit's callbacks run once
   * that is done. Commits made while one fsync runs share the next. The
   * connection itself then runs with synchronous=NORMAL (SQLite's FULL
   * would fsync on the event loop); together they make SQLite's FULL: the
   * WAL synced after every commit.
   */
  readonly syncWal?: string;
  /**
   * Statements of the form `INSERT INTO t (...) VALUES (...)` that only add
   * new rows. A run of consecutive ops of these statements is written as
   * multi-row INSERTs, one per statement: they commute (none touches a row
   * another op of the run writes), so this changes nothing but the number
   * of statement runs, each a call into SQLite that cost more than the row.
   */
  readonly rowInserts?: readonly string[];
  /**
   * For a statement whose last parameter is a row's integer key (`... WHERE
   * seq = ?`), the same statement over a range of keys (`... WHERE seq
   * BETWEEN ? AND ?`, the other parameters first, in the same order).
   * Consecutive ops of the statement with equal other parameters and keys
   * that follow each other (k, k+1, ...) run once over their range.
   */
  readonly ranges?: Readonly<Record<string, string>>;
}

/** The most rows one multi-row INSERT carries (runs are split into powers of two up to this). */
const MAX_ROWS = 32;

/** Connection settings of every connection to the state database. */
export function configureConnection(db: Database.Database, synchronous: "normal" | "full"): void {
  db.pragma("journal_mode = WAL");
  db.pragma(`synchronous = ${synchronous === "full" ? "FULL" : "NORMAL"}`);
  db.pragma("busy_timeout = 5000");
  // SQLite's automatic checkpoint runs after a commit, on the committing
  // connection, once the WAL holds this many pages (~40 MB; SQLite's own
  // default is 4 MB). With the checkpoint thread running, it only copies
  // what the thread has not yet, and lets the next commit rewind the WAL
  // (see sqlite-checkpointer.ts); without it, it is what bounds the WAL.
  db.pragma("wal_autocheckpoint = 10000");
  // When the WAL starts over, SQLite cuts its file back to this size. Not
  // to less than the ~40 MB the automatic checkpoint lets it reach: under a
  // storm the WAL starts over again and again (several times a second when
  // the checkpoint thread keeps up, after tens of MB when it does not), and
  // a frame written over the file's old bytes cost ~6 us of CPU on the
  // event loop where one that extends the file cost ~10 us (ext4,
  // measured). The cap still bounds a WAL that grew past the checkpoint's
  // reach (a long reader) once it starts over.
  db.pragma("journal_size_limit = 67108864");
  db.pragma("foreign_keys = OFF");
}

/** The compiled checkpoint thread next to this module; absent when running from TypeScript sources (tests). */
const CHECKPOINTER_URL = new URL("./sqlite-checkpointer.js", import.meta.url);
export function checkpointThreadAvailable(): boolean {
  return import.meta.url.endsWith(".js") && existsSync(fileURLToPath(CHECKPOINTER_URL));
}

/**
 * The process's Node flags minus those about its main script (`node
 * --input-type=module -e CODE` would make the worker fail to start).
 */
function workerExecArgv(): string[] {
  const out: string[] = [];
  const args = process.execArgv;
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === "-e" || a === "--eval" || a === "-p" || a === "--print" || a === "-r" || a === "--require" || a === "--import") {
      i++;
      continue;
    }
    if (a.startsWith("--input-type") || a.startsWith("--eval=") || a.startsWith("--print=") || a.startsWith("--require=") || a.startsWith("--import=") || a === "-i" || a === "--interactive") continue;
    out.push(a);
  }
  return out;
}

/**
 * Starts the checkpoint thread with the process's Node flags, or with none
 * when Node refuses some of them in a worker (`node --max-semi-space-size=64`,
 * per-process V8 heap flags): the thread needs none of them.
 */
function startWorker(url: URL, workerData: unknown): Worker {
  try {
    return new Worker(url, { workerData, execArgv: workerExecArgv() });
  } catch (e) {
    if ((e as { code?: unknown }).code !== "ERR_WORKER_INVALID_EXEC_ARGV") throw e;
    return new Worker(url, { workerData, execArgv: [] });
  }
}

/** Slots of the Int32Array over the SharedArrayBuffer the writer shares with its checkpoint thread. */
export const SIGNAL = {
  /** Commits so far (the checkpoint thread sleeps until it changes). */
  commits: 0,
  /** Set to 1 when the writer closes: the checkpoint thread ends. */
  stop: 1,
} as const;

/** The least time between two checkpoint passes (each ends with two fsyncs). */
export const CHECKPOINT_PAUSE_MS = 25;

/** What the checkpoint thread is started with. */
export interface CheckpointerInit {
  readonly file: string;
  readonly synchronous: "normal" | "full";
  /** See SIGNAL. */
  readonly signal: SharedArrayBuffer;
}

/**
 * The store's writer. Writes are queued with submit() and committed with
 * send(), which the store calls once per event-loop turn: everything queued
 * in a turn is one transaction (group commit), on the store's connection,
 * and the callbacks run right after it, in submit order.
 *
 * A commit only appends to the WAL (no fsync with synchronous=NORMAL). The
 * fsyncs are the checkpoint's, which runs on a thread of its own so that
 * neither the event loop nor the commits wait for them. An earlier design
 * committed on a worker thread instead: on two cores, the hand-off there
 * and back (a structured clone, two thread wake-ups, and the answers
 * waiting for the event loop) cost the webhook more than the commit itself,
 * and that thread still waited for the checkpoints (100-300 ms every few
 * seconds under load, with every accept behind them).
 */
export class SqliteWriter {
  private queue: WriteOp[] = [];
  private callbacks: ((err: unknown) => void)[] = [];
  private closed = false;
  private readonly stmts = new Map<string, Database.Statement>();
  /** See WriterOptions.rowInserts and ranges. */
  private readonly rowInserts = new Map<string, RowInsert>();
  private readonly ranges = new Map<string, Database.Statement>();
  private readonly runAll: Database.Transaction<(ops: readonly WriteOp[]) => void>;
  /** See SIGNAL; undefined without a checkpoint thread. */
  private readonly signal: Int32Array | undefined;
  private readonly checkpointer: Worker | undefined;
  /** Set when the checkpoint thread failed or ended before close(). */
  private checkpointerBroken: Error | undefined;
  private readonly syncWal: string | undefined;
  /** The WAL file, opened at the first commit that syncs it. */
  private walFd: number | undefined;
  /** Callbacks of commits waiting for the next fsync, and whether one runs. */
  private unsynced: ((err: unknown) => void)[] = [];
  private syncing = false;

  constructor(opts: WriterOptions) {
    const db = opts.db;
    this.syncWal = opts.syncWal;
    for (const [name, sql] of Object.entries(opts.statements)) this.stmts.set(name, db.prepare(sql));
    for (const name of opts.rowInserts ?? []) {
      const single = this.stmts.get(name);
      if (single === undefined) throw new Error(`unknown statement ${name}`);
      this.rowInserts.set(name, new RowInsert(db, single));
    }
    for (const [name, sql] of Object.entries(opts.ranges ?? {})) this.ranges.set(name, db.prepare(sql));
    this.runAll = db.transaction((ops: readonly WriteOp[]) => this.run(ops));
    const c = opts.checkpoint;
    if (c === undefined) return;
    const signal = new SharedArrayBuffer(4 * Object.keys(SIGNAL).length);
    this.signal = new Int32Array(signal);
    const init: CheckpointerInit = { file: c.file, synchronous: c.synchronous, signal };
    const failed = (e: Error): void => {
      if (this.checkpointerBroken !== undefined || this.closed) return;
      this.checkpointerBroken = e;
      c.onError?.(e);
    };
    try {
      this.checkpointer = startWorker(CHECKPOINTER_URL, init);
    } catch (e) {
      failed(e instanceof Error ? e : new Error(String(e)));
      return;
    }
    // It never keeps the process alive: the store's owner decides when it ends (close()).
    this.checkpointer.unref();
    this.checkpointer.on("error", failed);
    this.checkpointer.on("exit", (code) => failed(new Error(`the state directory's checkpoint thread exited (code ${code})`)));
  }

  /** Runs ops in order, inside the transaction; merges what WriterOptions.rowInserts and ranges allow. */
  private run(ops: readonly WriteOp[]): void {
    let i = 0;
    while (i < ops.length) {
      const [name, params] = ops[i]!;
      if (this.rowInserts.has(name)) {
        let j = i + 1;
        while (j < ops.length && this.rowInserts.has(ops[j]![0])) j++;
        if (j - i > 1) {
          this.insertRows(ops, i, j);
          i = j;
          continue;
        }
      }
      const range = this.ranges.get(name);
      if (range !== undefined) {
        const last = params.length - 1;
        const from = params[last];
        let to = typeof from === "number" ? from : NaN;
        let j = i + 1;
        while (j < ops.length && ops[j]![0] === name && followsInRange(ops[j]![1], params, last, to)) {
          to += 1;
          j++;
        }
        if (j - i > 1) {
          range.run(...params.slice(0, last), from, to);
          i = j;
          continue;
        }
      }
      const stmt = this.stmts.get(name);
      if (stmt === undefined) throw new Error(`unknown statement ${name}`);
      stmt.run(...params);
      i++;
    }
  }

  /** ops[from..to) are all row inserts: each statement's rows go in multi-row INSERTs, in their order. */
  private insertRows(ops: readonly WriteOp[], from: number, to: number): void {
    const rows = new Map<string, (readonly unknown[])[]>();
    for (let i = from; i < to; i++) {
      const [name, params] = ops[i]!;
      let list = rows.get(name);
      if (list === undefined) rows.set(name, (list = []));
      list.push(params);
    }
    for (const [name, list] of rows) this.rowInserts.get(name)!.insert(list);
  }

  /** Queues writes for the next send(); `done` runs after they are committed (or failed). */
  submit(ops: readonly WriteOp[], done?: (err: unknown) => void): void {
    for (const op of ops) this.queue.push(op);
    if (done !== undefined) this.callbacks.push(done);
  }

  /**
   * Whether a thread checkpoints the WAL after commits: when not, the
   * caller asks for checkpoints now and then.
   */
  get checkpointsInBackground(): boolean {
    return this.checkpointer !== undefined && this.checkpointerBroken === undefined;
  }

  /** Commits what is queued as one transaction, then runs its callbacks with the outcome. */
  send(): void {
    if (this.queue.length === 0 && this.callbacks.length === 0) return;
    const ops = this.queue;
    const callbacks = this.callbacks;
    this.queue = [];
    this.callbacks = [];
    let err: unknown;
    if (this.closed) err = new Error("the store is closed");
    else if (ops.length > 0) {
      try {
        this.runAll.immediate(ops);
        if (this.signal !== undefined) {
          Atomics.add(this.signal, SIGNAL.commits, 1);
          Atomics.notify(this.signal, SIGNAL.commits);
        }
      } catch (e) {
        err = e;
      }
    }
    if (err === undefined && this.syncWal !== undefined && (ops.length > 0 || this.syncing)) {
      // In commit order: callbacks without writes wait behind an fsync that runs.
      for (const cb of callbacks) this.unsynced.push(cb);
      if (!this.syncing) this.sync();
      return;
    }
    for (const cb of callbacks) cb(err);
  }

  private closeWal(): void {
    if (this.walFd === undefined) return;
    try {
      closeSync(this.walFd);
    } catch {
      // Nothing left to lose: every commit was synced or failed.
    }
    this.walFd = undefined;
  }

  /** fsyncs the WAL on the thread pool, then runs the callbacks of every commit before it started. */
  private sync(): void {
    const callbacks = this.unsynced;
    this.unsynced = [];
    let fd: number;
    try {
      fd = this.walFd ??= openSync(this.syncWal!, "r");
    } catch (e) {
      for (const cb of callbacks) cb(e);
      return;
    }
    this.syncing = true;
    fsync(fd, (e) => {
      this.syncing = false;
      for (const cb of callbacks) cb(e ?? undefined);
      if (this.closed) this.closeWal();
      else if (this.unsynced.length > 0) this.sync();
    });
  }

  /**
   * Commits what is queued, then lets the checkpoint thread close its
   * connection and end (SIGNAL.stop); nothing waits for that, since
   * everything is committed by then.
   */
  close(): void {
    if (this.closed) return;
    this.send();
    this.closed = true;
    if (this.walFd !== undefined) {
      // What waits for the fsync in flight (or the next) is synced here, at once.
      let err: unknown;
      try {
        fsyncSync(this.walFd);
      } catch (e) {
        err = e;
      }
      const callbacks = this.unsynced;
      this.unsynced = [];
      for (const cb of callbacks) cb(err);
      // An fsync in flight still uses the descriptor: it closes it when it ends.
      if (!this.syncing) this.closeWal();
    }
    if (this.signal !== undefined) {
      Atomics.store(this.signal, SIGNAL.stop, 1);
      Atomics.notify(this.signal, SIGNAL.stop);
      Atomics.notify(this.signal, SIGNAL.commits);
    }
  }
}

/** Whether `params` is the op after one with these `head` parameters and key `key` (see WriterOptions.ranges). */
function followsInRange(params: readonly unknown[], head: readonly unknown[], last: number, key: number): boolean {
  if (params.length !== last + 1 || params[last] !== key + 1) return false;
  for (let k = 0; k < last; k++) if (params[k] !== head[k]) return false;
  return true;
}

/** One single-row INSERT statement and its multi-row forms (2, 4, ... MAX_ROWS rows), prepared when first used. */
class RowInsert {
  private readonly head: string;
  private readonly tuple: string;
  private readonly forms = new Map<number, Database.Statement>();

  constructor(
    private readonly db: Database.Database,
    single: Database.Statement,
  ) {
    // `INSERT INTO t (a, b) VALUES (?, ?)`: the tuple has no parentheses inside.
    const m = /^(\s*INSERT INTO [^;]*?\bVALUES\s*)(\([^()]*\))\s*$/i.exec(single.source);
    if (m === null) throw new Error(`not a single-row INSERT: ${single.source}`);
    this.head = m[1]!;
    this.tuple = m[2]!;
    this.forms.set(1, single);
  }

  insert(rows: readonly (readonly unknown[])[]): void {
    let i = 0;
    while (i < rows.length) {
      let k = MAX_ROWS;
      while (k > rows.length - i) k >>= 1;
      const params: unknown[] = [];
      for (let r = i; r < i + k; r++) for (const p of rows[r]!) params.push(p);
      this.form(k).run(params);
      i += k;
    }
  }

  private form(rows: number): Database.Statement {
    let stmt = this.forms.get(rows);
    if (stmt === undefined) {
      stmt = this.db.prepare(this.head + Array<string>(rows).fill(this.tuple).join(", "));
      this.forms.set(rows, stmt);
    }
    return stmt;
  }
}
