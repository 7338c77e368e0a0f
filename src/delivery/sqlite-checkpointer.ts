// The checkpoint thread of SqliteWriter (sqlite-writer.ts): folds the WAL
// into the database file on its own connection, so that neither the event
// loop nor the commits made on it wait for that.
//
// Why: a checkpoint with synchronous=NORMAL ends with two fsyncs (the WAL,
// then the database file). Run where the commits are (SQLite's automatic
// checkpoint after a commit, or a timer's), they held up every accept
// behind them for 100-300 ms every few seconds under load. A PASSIVE
// checkpoint on another connection runs beside the commits without locking
// them out. It cannot end the WAL by itself while commits keep coming
// (SQLite rewinds the WAL only when a write begins with every frame
// copied), so the committing connection's automatic checkpoint stays on:
// once the WAL is long, it finds nearly every frame copied and synced
// already, copies the rest and lets the next commit rewind the WAL.
import { workerData } from "node:worker_threads";
import Database from "better-sqlite3";
import { CHECKPOINT_PAUSE_MS, SIGNAL, type CheckpointerInit } from "./sqlite-writer.js";

const init = workerData as CheckpointerInit;
const signal = new Int32Array(init.signal);

const db = new Database(init.file);
try {
  // The checkpoint's syncs follow this connection's setting, as the writer's would.
  db.pragma(`synchronous = ${init.synchronous === "full" ? "FULL" : "NORMAL"}`);
  // The first pass runs at once: commits made before this thread started wait for it too.
  let copied = -1;
  while (Atomics.load(signal, SIGNAL.stop) === 0) {
    // Sleeps until the writer commits (or the store closes).
    Atomics.wait(signal, SIGNAL.commits, copied);
    if (Atomics.load(signal, SIGNAL.stop) !== 0) break;
    copied = Atomics.load(signal, SIGNAL.commits);
    try {
      // Never waits: with another checkpoint running it returns at once (busy).
      db.pragma("wal_checkpoint(PASSIVE)");
    } catch {
      // A state directory that cannot be written: the store's writability
      // probe reports it, and the next commit brings another try.
    }
    // At most one pass (two fsyncs) per pause; commits meanwhile wait for the next.
    Atomics.wait(signal, SIGNAL.stop, 0, CHECKPOINT_PAUSE_MS);
  }
} finally {
  db.close();
}
