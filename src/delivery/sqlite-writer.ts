import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { MessageChannel, receiveMessageOnPort, Worker, type MessagePort } from "node:worker_threads";
import Database from "better-sqlite3";

/**
 * One write: a named prepared statement and its parameters, or
 * `["@checkpoint", []]` (a passive WAL checkpoint after the commit).
 */
export type WriteOp = readonly [statement: string, params: readonly unknown[]];

export interface WriterOptions {
  /**
   * The database: a file, written by a worker thread with its own
   * connection (needs the compiled worker: see writerThreadAvailable), or an
   * open connection, written inline at send() (":memory:" databases, which
   * another connection cannot see, and runs from TypeScript sources).
   */
  readonly target: { readonly file: string; readonly synchronous: "normal" | "full" } | { readonly db: Database.Database };
  /** The statements ops may name, by name. */
  readonly statements: Readonly<Record<string, string>>;
}

/** A failed commit, as the worker reports it (SQLite's code kept for messages). */
export class WriteError extends Error {
  readonly code: string | undefined;
  constructor(message: string, code: string | undefined) {
    super(message);
    this.name = "WriteError";
    this.code = code;
  }
}

/**
 * Ops flattened: statement name, parameter count, parameters, and so on. One
 * flat array is much cheaper to copy to the worker than an array per op.
 */
interface Batch {
  readonly id: number;
  readonly ops: readonly unknown[];
}

interface Result {
  readonly id: number;
  readonly error?: { readonly message: string; readonly code?: string | undefined } | undefined;
}

/** Connection settings shared by the store's own connection and the writer's. */
export function configureConnection(db: Database.Database, synchronous: "normal" | "full"): void {
  db.pragma("journal_mode = WAL");
  db.pragma(`synchronous = ${synchronous === "full" ? "FULL" : "NORMAL"}`);
  db.pragma("busy_timeout = 5000");
  // Checkpoint every ~40 MB of WAL instead of SQLite's 4 MB: fewer
  // checkpoints cost less CPU per alert (a page rewritten many times is
  // copied once). Durability is unchanged (commits are in the WAL either
  // way); the store's maintenance timer still checkpoints every few seconds,
  // so the WAL only grows this far under sustained load.
  db.pragma("wal_autocheckpoint = 10000");
  // A WAL file keeps its largest size unless told otherwise: once a
  // checkpoint has reset it, cut it back to 8 MB after a storm.
  db.pragma("journal_size_limit = 8388608");
  db.pragma("foreign_keys = OFF");
}

/**
 * Runs batches of writes on one connection: everything handed over at once
 * is committed in one transaction (group commit). If that transaction fails
 * and it held several batches, each is tried again on its own, so one bad
 * batch does not fail the others. Used by the worker thread and inline.
 */
export class WriterCore {
  private readonly stmts = new Map<string, Database.Statement>();
  private readonly runAll: Database.Transaction<(batches: readonly Batch[]) => void>;

  /** Opens `file` with the store's settings; closing the core closes it. */
  static open(file: string, synchronous: "normal" | "full", statements: Readonly<Record<string, string>>): WriterCore {
    const db = new Database(file);
    try {
      configureConnection(db, synchronous);
      return new WriterCore(db, statements, true);
    } catch (e) {
      db.close();
      throw e;
    }
  }

  constructor(
    private readonly db: Database.Database,
    statements: Readonly<Record<string, string>>,
    private readonly owned = false,
  ) {
    for (const [name, sql] of Object.entries(statements)) this.stmts.set(name, this.db.prepare(sql));
    this.runAll = this.db.transaction((batches: readonly Batch[]) => {
      for (const b of batches) {
        const ops = b.ops;
        for (let i = 0; i < ops.length; ) {
          const name = ops[i] as string;
          const count = ops[i + 1] as number;
          if (name !== "@checkpoint") this.run(name, ops.slice(i + 2, i + 2 + count));
          i += 2 + count;
        }
      }
    });
  }

  /** Commits the batches; one result per batch, in order. */
  commit(batches: readonly Batch[]): Result[] {
    let checkpoint = false;
    for (const b of batches) if (b.ops.includes("@checkpoint")) checkpoint = true;
    let results: Result[];
    try {
      this.runAll.immediate(batches);
      results = batches.map((b) => ({ id: b.id }));
    } catch (e) {
      if (batches.length === 1) results = [{ id: batches[0]!.id, error: describe(e) }];
      else {
        results = batches.map((b) => {
          try {
            this.runAll.immediate([b]);
            return { id: b.id };
          } catch (e2) {
            return { id: b.id, error: describe(e2) };
          }
        });
      }
    }
    if (checkpoint) {
      try {
        this.db.pragma("wal_checkpoint(PASSIVE)");
      } catch {
        // The next write reports a directory that cannot be written.
      }
    }
    return results;
  }

  close(): void {
    if (this.owned) this.db.close();
  }

  private run(name: string, params: readonly unknown[]): void {
    const stmt = this.stmts.get(name);
    if (stmt === undefined) throw new Error(`unknown statement ${name}`);
    stmt.run(...params);
  }
}

function describe(e: unknown): { message: string; code?: string | undefined } {
  const code = (e as { code?: unknown }).code;
  return { message: e instanceof Error ? e.message : String(e), code: typeof code === "string" ? code : undefined };
}

/** The compiled worker entry next to this module; absent when running from TypeScript sources (tests). */
const WORKER_URL = new URL("./sqlite-writer-worker.js", import.meta.url);
export function writerThreadAvailable(): boolean {
  return import.meta.url.endsWith(".js") && existsSync(fileURLToPath(WORKER_URL));
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
 * Starts the writer thread with the process's Node flags, or with none when
 * Node refuses some of them in a worker (`node --max-semi-space-size=64`,
 * per-process V8 heap flags): the writer needs none of them.
 */
function startWorker(init: WorkerInit): Worker {
  const options = { workerData: init, transferList: [init.port] };
  try {
    return new Worker(WORKER_URL, { ...options, execArgv: workerExecArgv() });
  } catch (e) {
    if ((e as { code?: unknown }).code !== "ERR_WORKER_INVALID_EXEC_ARGV") throw e;
    return new Worker(WORKER_URL, { ...options, execArgv: [] });
  }
}

/** What the worker is started with. */
export interface WorkerInit {
  readonly file: string;
  readonly synchronous: "normal" | "full";
  readonly statements: Readonly<Record<string, string>>;
  readonly port: MessagePort;
  /** [0]: the id of the last batch the worker finished (for flushSync). */
  readonly done: SharedArrayBuffer;
}

/**
 * The store's writer. Writes are queued with submit() and handed over with
 * send() (the store calls it once per event-loop turn), each send one batch;
 * a batch's callbacks run once its commit is known, in submit order. In
 * thread mode the commit happens on a worker thread, so the event loop goes
 * on serving webhooks meanwhile, and batches handed over while the worker
 * was busy are committed together. flushSync() waits (blocking) for
 * everything submitted so far: for reads that must see it, and shutdown.
 */
export class SqliteWriter {
  private queue: unknown[] = [];
  private callbacks: ((err: unknown) => void)[] = [];
  /** Batches cut by send() and not yet handed to the worker (one message in flight at a time). */
  private ready: Batch[] = [];
  /** Callbacks of batches not yet answered, by batch id. */
  private readonly waiting = new Map<number, ((err: unknown) => void)[]>();
  /** Whether a message is at the worker and not yet answered. */
  private inFlight = false;
  /** The last batch id handed to the worker. */
  private posted = 0;
  private nextId = 1;
  private closed = false;
  private readonly core: WriterCore | undefined;
  private readonly worker: Worker | undefined;
  private readonly port: MessagePort | undefined;
  private readonly done: Int32Array | undefined;
  /** Set when the worker died: every later write fails with it. */
  private broken: Error | undefined;

  constructor(opts: WriterOptions) {
    const t = opts.target;
    if ("db" in t) {
      this.core = new WriterCore(t.db, opts.statements);
      return;
    }
    const channel = new MessageChannel();
    const done = new SharedArrayBuffer(4);
    this.done = new Int32Array(done);
    this.port = channel.port1;
    const init: WorkerInit = { file: t.file, synchronous: t.synchronous, statements: opts.statements, port: channel.port2, done };
    this.worker = startWorker(init);
    // Neither keeps the process alive: the store's owner decides when it ends (close()).
    this.worker.unref();
    this.port.on("message", (r: readonly Result[]) => this.settle(r));
    this.port.unref();
    this.worker.on("error", (e) => this.fail(e));
    this.worker.on("exit", (code) => {
      if (!this.closed) this.fail(new Error(`the state directory's writer thread exited (code ${code})`));
    });
  }

  /** Queues writes for the next send(); `done` runs after they are committed (or failed). */
  submit(ops: readonly WriteOp[], done?: (err: unknown) => void): void {
    const q = this.queue;
    for (const op of ops) {
      const params = op[1];
      q.push(op[0], params.length);
      for (let i = 0; i < params.length; i++) q.push(params[i]);
    }
    if (done !== undefined) this.callbacks.push(done);
  }

  /** Whether commits run on a worker thread. */
  get threaded(): boolean {
    return this.worker !== undefined;
  }

  /** Why writes fail, when the writer thread died (every later write fails with it). */
  get failure(): Error | undefined {
    return this.broken;
  }

  /**
   * Makes what is queued one batch and hands it over. While the worker still
   * commits an earlier message, batches wait and go together when it
   * answers (committed in one transaction, each failing alone): under load
   * there are fewer, larger messages and transactions instead of one per
   * event-loop turn.
   */
  send(): void {
    if (this.queue.length > 0 || this.callbacks.length > 0) {
      const batch: Batch = { id: this.nextId++, ops: this.queue };
      const callbacks = this.callbacks;
      this.queue = [];
      this.callbacks = [];
      if (this.closed || this.broken !== undefined) {
        const err = this.broken ?? new Error("the store is closed");
        for (const cb of callbacks) cb(err);
        return;
      }
      if (this.core !== undefined) {
        const [r] = this.core.commit([batch]);
        const err = toError(r?.error);
        for (const cb of callbacks) cb(err);
        return;
      }
      this.waiting.set(batch.id, callbacks);
      this.ready.push(batch);
    }
    if (!this.inFlight) this.post();
  }

  private post(): void {
    if (this.ready.length === 0 || this.broken !== undefined) return;
    const batches = this.ready;
    this.ready = [];
    // Waiting for an answer keeps the process alive; an idle writer does not.
    this.port!.ref();
    this.inFlight = true;
    this.posted = batches[batches.length - 1]!.id;
    this.port!.postMessage(batches);
  }

  /**
   * Sends what is queued and blocks until every batch so far is committed,
   * running their callbacks. Milliseconds at most: the worker only ever runs
   * short transactions.
   */
  flushSync(): void {
    this.send();
    if (this.worker === undefined) return;
    const deadline = Date.now() + 30_000;
    while (this.waiting.size > 0 && this.broken === undefined) {
      const last = this.posted;
      while (Atomics.load(this.done!, 0) < last && this.broken === undefined) {
        if (Date.now() > deadline) {
          this.fail(new Error("the state directory's writer thread did not answer within 30 s"));
          return;
        }
        Atomics.wait(this.done!, 0, Atomics.load(this.done!, 0), 1_000);
      }
      // Answers are posted before the worker publishes the id: read them now (settling posts what waited).
      for (let m = receiveMessageOnPort(this.port!); m !== undefined; m = receiveMessageOnPort(this.port!)) this.settle(m.message as readonly Result[]);
    }
  }

  /**
   * Commits what is queued, then lets the worker close its connection and
   * end (closing the port tells it); nothing waits for that, since
   * everything is committed by then.
   */
  close(): void {
    if (this.closed) return;
    this.flushSync();
    this.closed = true;
    this.core?.close();
    this.port?.close();
  }

  private settle(results: readonly Result[]): void {
    this.inFlight = false;
    for (const r of results) {
      const callbacks = this.waiting.get(r.id);
      if (callbacks === undefined) continue;
      this.waiting.delete(r.id);
      const err = toError(r.error);
      for (const cb of callbacks) cb(err);
    }
    if (this.ready.length > 0) this.post();
    else if (!this.inFlight) this.port!.unref();
  }

  private fail(e: Error): void {
    if (this.broken !== undefined) return;
    this.broken = e;
    const waiting = [...this.waiting.values()];
    this.waiting.clear();
    this.ready = [];
    this.inFlight = false;
    this.port?.unref();
    for (const callbacks of waiting) for (const cb of callbacks) cb(e);
  }
}

function toError(e: Result["error"]): WriteError | undefined {
  return e === undefined ? undefined : new WriteError(e.message, e.code);
}
