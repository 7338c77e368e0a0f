/**
 * The durable store's writer, from the build in dist/ (what `kubecano
 * listen` runs, with its compiled checkpoint thread): a callback runs only
 * once its writes are committed and readable from another connection; a
 * failing batch fails alone; the checkpoint thread folds the WAL into the
 * database file; durability `full` runs callbacks only after the WAL's fsync.
 */
import { spawnSync } from "node:child_process";
import { copyFileSync, mkdtempSync, rmSync, statSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";
import Database from "better-sqlite3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type * as WriterModule from "../../src/delivery/sqlite-writer.js";
import { assertBuilt, REPO_ROOT } from "../helpers/cli.js";

const BUILT_WRITER = path.join(REPO_ROOT, "dist/delivery/sqlite-writer.js");
let dir: string;
let built: typeof WriterModule;
beforeAll(async () => {
  assertBuilt();
  built = (await import(pathToFileURL(BUILT_WRITER).href)) as typeof WriterModule;
  dir = mkdtempSync(path.join(os.tmpdir(), "kubecano-writer-"));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let k = 0;
/** A WAL database with table t; `db` is the connection the writer writes on (configured as the store's). */
function database(): { file: string; db: Database.Database; reader: Database.Database; count: () => number } {
  const file = path.join(dir, `w${++k}.db`);
  const db = new Database(file);
  built.configureConnection(db, "normal");
  db.exec("CREATE TABLE t (n INTEGER PRIMARY KEY, body TEXT NOT NULL)");
  const reader = new Database(file);
  return { file, db, reader, count: () => (reader.prepare("SELECT count(*) AS c FROM t").get() as { c: number }).c };
}

const STATEMENTS = { ins: "INSERT INTO t (n, body) VALUES (?, ?)" };

/** Rows in the database file alone, as if the WAL were lost: what checkpoints have folded in. */
function rowsInMainFile(file: string): number {
  const copy = path.join(dir, `copy${++k}.db`);
  copyFileSync(file, copy);
  const db = new Database(copy, { readonly: true });
  try {
    return (db.prepare("SELECT count(*) AS c FROM t").get() as { c: number }).c;
  } catch {
    // The table itself is not in the file yet.
    return 0;
  } finally {
    db.close();
    rmSync(copy, { force: true });
  }
}

async function eventually(check: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe.each(["with its checkpoint thread", "without a checkpoint thread"] as const)("SqliteWriter (%s)", (mode) => {
  const open = (file: string, db: Database.Database): WriterModule.SqliteWriter =>
    new built.SqliteWriter({ db, statements: STATEMENTS, checkpoint: mode === "with its checkpoint thread" ? { file, synchronous: "normal" } : undefined });

  it("runs a callback only after its writes are committed, in order", async () => {
    const { file, db, count } = database();
    const w = open(file, db);
    const seen: number[] = [];
    const all: Promise<void>[] = [];
    for (let turn = 0; turn < 50; turn++) {
      for (let i = 0; i < 10; i++) {
        const n = turn * 10 + i + 1;
        all.push(
          new Promise<void>((resolve, reject) =>
            w.submit([["ins", [n, `body ${n}`]]], (err) => {
              if (err !== undefined) return reject(err as Error);
              // Committed means another connection reads it now.
              expect(count()).toBeGreaterThanOrEqual(n);
              seen.push(n);
              resolve();
            }),
          ),
        );
      }
      // Nothing is written before send().
      expect(count()).toBe(turn * 10);
      w.send();
      if (turn % 7 === 0) await new Promise((r) => setImmediate(r));
    }
    await Promise.all(all);
    expect(seen).toEqual(Array.from({ length: 500 }, (_, i) => i + 1));
    expect(count()).toBe(500);
    w.close();
  });

  it("commits everything submitted in one send and runs its callbacks before returning", () => {
    const { file, db, count } = database();
    const w = open(file, db);
    let called = 0;
    for (let n = 1; n <= 100; n++) w.submit([["ins", [n, "x"]]], () => called++);
    w.send();
    expect(called).toBe(100);
    expect(count()).toBe(100);
    w.close();
  });

  it("fails a bad batch alone, with SQLite's code, and leaves nothing of it behind", async () => {
    const { file, db, count } = database();
    const w = open(file, db);
    const outcome = (ops: WriterModule.WriteOp[]): Promise<unknown> =>
      new Promise((resolve) => {
        w.submit(ops, resolve);
        w.send();
      });
    const results = await Promise.all([outcome([["ins", [1, "a"]]]), outcome([["ins", [1, "duplicate key"]], ["ins", [2, "b"]]]), outcome([["ins", [3, "c"]]]), outcome([["nope", []]])]);
    expect(results[0]).toBeUndefined();
    expect(String(results[1])).toMatch(/UNIQUE constraint failed/);
    expect((results[1] as { code?: string }).code).toBe("SQLITE_CONSTRAINT_PRIMARYKEY");
    expect(results[2]).toBeUndefined();
    expect(String(results[3])).toMatch(/unknown statement nope/);
    // The failed batch left nothing behind (row 2 was in it).
    expect(count()).toBe(2);
    w.close();
  });

  it("close commits what is still queued, and refuses what comes after", async () => {
    const { file, db, count } = database();
    const w = open(file, db);
    w.submit([["ins", [1, "queued, never sent"]]]);
    w.close();
    expect(count()).toBe(1);
    const late = await new Promise((resolve) => {
      w.submit([["ins", [2, "after close"]]], resolve);
      w.send();
    });
    expect(String(late)).toMatch(/closed/);
    expect(count()).toBe(1);
  });

  it(mode === "with its checkpoint thread" ? "folds committed writes into the database file by itself" : "leaves the WAL to SQLite's automatic checkpoint (the control case)", async () => {
    const { file, db } = database();
    const w = open(file, db);
    expect(w.checkpointsInBackground).toBe(mode === "with its checkpoint thread");
    for (let n = 1; n <= 300; n++) {
      w.submit([["ins", [n, "x".repeat(500)]]]);
      if (n % 30 === 0) w.send();
    }
    if (mode === "with its checkpoint thread") await eventually(() => rowsInMainFile(file) === 300, "the checkpoint thread");
    else {
      // Far below the 10,000 pages of wal_autocheckpoint: nothing folds them in.
      await new Promise((r) => setTimeout(r, 300));
      expect(rowsInMainFile(file)).toBe(0);
    }
    w.close();
  });
});

describe("SqliteWriter merging writes (rowInserts, ranges)", () => {
  const MERGED = {
    ins: "INSERT INTO t (n, body) VALUES (?, ?)",
    insU: "INSERT INTO u (n, t_n, note) VALUES (?, ?, 'fixed')",
    setBody: "UPDATE t SET body = ? WHERE n = ?",
    done: "UPDATE u SET state = 'done', at = ? WHERE n = ? AND state = 'pending'",
  };
  function merged(): { db: Database.Database; w: WriterModule.SqliteWriter; commit: (ops: WriterModule.WriteOp[]) => unknown } {
    const file = path.join(dir, `m${++k}.db`);
    const db = new Database(file);
    built.configureConnection(db, "normal");
    db.exec("CREATE TABLE t (n INTEGER PRIMARY KEY, body TEXT); CREATE TABLE u (n INTEGER PRIMARY KEY, t_n INTEGER, note TEXT, state TEXT NOT NULL DEFAULT 'pending', at INTEGER)");
    const w = new built.SqliteWriter({
      db,
      statements: MERGED,
      rowInserts: ["ins", "insU"],
      ranges: { done: "UPDATE u SET state = 'done', at = ? WHERE n BETWEEN ? AND ? AND state = 'pending'" },
    });
    const commit = (ops: WriterModule.WriteOp[]): unknown => {
      let outcome: unknown = "not called";
      w.submit(ops, (err) => (outcome = err));
      w.send();
      return outcome;
    };
    return { db, w, commit };
  }

  it("writes interleaved row inserts of two tables as the same rows, in order, with nulls", () => {
    const { db, w, commit } = merged();
    const ops: WriterModule.WriteOp[] = [];
    // 101 rows each: more than MAX_ROWS (32), and not a power of two.
    for (let n = 1; n <= 101; n++) ops.push(["ins", [n, n % 7 === 0 ? null : `body ${n}`]], ["insU", [n, n]]);
    expect(commit(ops)).toBeUndefined();
    const t = db.prepare("SELECT n, body FROM t ORDER BY n").all() as { n: number; body: string | null }[];
    expect(t).toHaveLength(101);
    expect(t.every((r) => r.body === (r.n % 7 === 0 ? null : `body ${r.n}`))).toBe(true);
    const u = db.prepare("SELECT n, t_n, note FROM u ORDER BY n").all() as { n: number; t_n: number; note: string }[];
    expect(u.map((r) => [r.n, r.t_n, r.note])).toEqual(Array.from({ length: 101 }, (_, i) => [i + 1, i + 1, "fixed"]));
    w.close();
  });

  it("keeps an op between inserts in its place", () => {
    const { db, w, commit } = merged();
    expect(commit([["ins", [1, "a"]], ["setBody", ["changed", 1]], ["ins", [2, "b"]], ["ins", [3, "c"]], ["setBody", ["changed too", 3]]])).toBeUndefined();
    expect(db.prepare("SELECT n, body FROM t ORDER BY n").all()).toEqual([
      { n: 1, body: "changed" },
      { n: 2, body: "b" },
      { n: 3, body: "changed too" },
    ]);
    w.close();
  });

  it("fails a whole batch whose merged insert breaks a constraint, with SQLite's code", () => {
    const { db, w, commit } = merged();
    const ops: WriterModule.WriteOp[] = [];
    for (let n = 1; n <= 40; n++) ops.push(["ins", [n === 30 ? 5 : n, "x"]]);
    const err = commit(ops) as { code?: string };
    expect(err.code).toBe("SQLITE_CONSTRAINT_PRIMARYKEY");
    expect((db.prepare("SELECT count(*) AS c FROM t").get() as { c: number }).c).toBe(0);
    w.close();
  });

  it("runs a range statement only over keys that follow each other with the same other parameters", () => {
    const { db, w, commit } = merged();
    const rows: WriterModule.WriteOp[] = [];
    for (let n = 1; n <= 12; n++) rows.push(["insU", [n, n]]);
    expect(commit(rows)).toBeUndefined();
    db.prepare("UPDATE u SET state = 'dead' WHERE n = 10").run();
    // 4 is not finished here, 7 and 8 finish at another time, 10 is dead (state guard), 12 comes after 11 but out of order.
    expect(
      commit([
        ["done", [100, 1]],
        ["done", [100, 2]],
        ["done", [100, 3]],
        ["done", [100, 5]],
        ["done", [100, 6]],
        ["done", [200, 7]],
        ["done", [200, 8]],
        ["done", [300, 9]],
        ["done", [300, 10]],
        ["done", [300, 12]],
        ["done", [300, 11]],
      ]),
    ).toBeUndefined();
    const state = Object.fromEntries((db.prepare("SELECT n, state, at FROM u").all() as { n: number; state: string; at: number | null }[]).map((r) => [r.n, `${r.state}@${r.at}`]));
    expect(state).toEqual({
      1: "done@100",
      2: "done@100",
      3: "done@100",
      4: "pending@null",
      5: "done@100",
      6: "done@100",
      7: "done@200",
      8: "done@200",
      9: "done@300",
      10: "dead@null",
      11: "done@300",
      12: "done@300",
    });
    w.close();
  });

  it("refuses a row insert that is not a single-row INSERT", () => {
    const db = new Database(":memory:");
    db.exec("CREATE TABLE t (n INTEGER PRIMARY KEY, body TEXT)");
    expect(() => new built.SqliteWriter({ db, statements: { up: "UPDATE t SET body = ? WHERE n = ?" }, rowInserts: ["up"] })).toThrow(/not a single-row INSERT/);
    db.close();
  });
});

describe("the state database's WAL file", () => {
  it("keeps its length when the WAL starts over (up to 64 MB), so the next storm writes over it instead of growing it", () => {
    const { file, db, reader, count } = database();
    const w = new built.SqliteWriter({ db, statements: STATEMENTS });
    const wal = `${file}-wal`;
    // ~12 MB of WAL: more than the 8 MB an earlier limit cut it back to.
    for (let n = 1; n <= 3_000; n++) {
      w.submit([["ins", [n, "x".repeat(4_000)]]]);
      if (n % 100 === 0) w.send();
    }
    const grown = statSync(wal).size;
    expect(grown).toBeGreaterThan(12_000_000);
    // Everything copied into the database (as the checkpoint thread does): the next commit starts the WAL over.
    reader.pragma("wal_checkpoint(PASSIVE)");
    w.submit([["ins", [3_001, "after the checkpoint"]]]);
    w.send();
    expect(rowsInMainFile(file)).toBe(3_000);
    expect(count()).toBe(3_001);
    expect(statSync(wal).size).toBe(grown);
    w.close();
  });
});

describe("SqliteWriter's checkpoint thread", () => {
  it("starts when the process runs with Node flags that Node refuses in a worker", () => {
    const { file, count } = database();
    const script = [
      `import Database from "better-sqlite3";`,
      `import { configureConnection, SqliteWriter } from ${JSON.stringify(pathToFileURL(BUILT_WRITER).href)};`,
      `const db = new Database(${JSON.stringify(file)}); configureConnection(db, "normal");`,
      `let threadError;`,
      `const w = new SqliteWriter({ db, statements: ${JSON.stringify(STATEMENTS)}, checkpoint: { file: ${JSON.stringify(file)}, synchronous: "normal", onError: (e) => { threadError = e; } } });`,
      `let failed; w.submit([["ins", [1, "x"]]], (e) => { failed = e; }); w.send();`,
      `setTimeout(() => { w.close(); if (failed !== undefined) throw failed; if (threadError !== undefined || !w.checkpointsInBackground) throw new Error("no checkpoint thread: " + threadError); }, 300);`,
    ].join("\n");
    // --max-semi-space-size is a per-process heap flag: new Worker({ execArgv }) refuses it.
    const r = spawnSync(process.execPath, ["--max-semi-space-size=32", "--input-type=module", "-e", script], { encoding: "utf8", cwd: REPO_ROOT });
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
    expect(count()).toBe(1);
  });

  it("reports once when it cannot run, and the writes go on", async () => {
    const { db, count } = database();
    const errors: Error[] = [];
    const w = new built.SqliteWriter({ db, statements: STATEMENTS, checkpoint: { file: path.join(dir, "no-such-dir", "x.db"), synchronous: "normal", onError: (e) => errors.push(e) } });
    await eventually(() => errors.length > 0, "the thread's failure");
    await new Promise((r) => setTimeout(r, 100));
    expect(errors).toHaveLength(1);
    expect(String(errors[0])).toMatch(/unable to open|cannot open|directory does not exist/i);
    expect(w.checkpointsInBackground).toBe(false);
    let err: unknown = "not called";
    w.submit([["ins", [1, "x"]]], (e) => (err = e));
    w.send();
    expect(err).toBeUndefined();
    expect(count()).toBe(1);
    w.close();
  });
});

describe("SqliteWriter with durability full (syncWal)", () => {
  it("runs the callbacks after the WAL's fsync, in commit order, and commits meanwhile share the next fsync", async () => {
    const { file, db, count } = database();
    const w = new built.SqliteWriter({ db, statements: STATEMENTS, syncWal: `${file}-wal` });
    const order: number[] = [];
    const all: Promise<void>[] = [];
    for (let n = 1; n <= 30; n++) {
      all.push(
        new Promise<void>((resolve, reject) =>
          w.submit([["ins", [n, "x"]]], (err) => {
            if (err !== undefined) return reject(err as Error);
            order.push(n);
            resolve();
          }),
        ),
      );
      w.send();
      // Committed (another connection reads it), but not answered before the fsync.
      expect(count()).toBe(n);
    }
    expect(order).toEqual([]);
    // A callback with no writes of its own waits behind the fsync that runs.
    let empty = false;
    w.submit([], () => (empty = true));
    w.send();
    expect(empty).toBe(false);
    await Promise.all(all);
    expect(order).toEqual(Array.from({ length: 30 }, (_, i) => i + 1));
    await eventually(() => empty, "the callback without writes");
    w.close();
  });

  it("refuses the commit's callbacks with the reason when the WAL cannot be synced", async () => {
    const { db, count } = database();
    const w = new built.SqliteWriter({ db, statements: STATEMENTS, syncWal: path.join(dir, "no-such-dir", "x.db-wal") });
    const err = await new Promise((resolve) => {
      w.submit([["ins", [1, "x"]]], resolve);
      w.send();
    });
    expect(String(err)).toMatch(/ENOENT/);
    // Written, but never acknowledged: an Alertmanager retry finds it a duplicate.
    expect(count()).toBe(1);
    w.close();
  });

  it("close syncs at once what waits for an fsync", () => {
    const { file, db } = database();
    const w = new built.SqliteWriter({ db, statements: STATEMENTS, syncWal: `${file}-wal` });
    const outcomes: unknown[] = [];
    for (let n = 1; n <= 3; n++) {
      w.submit([["ins", [n, "x"]]], (e) => outcomes.push(e));
      w.send();
    }
    w.close();
    // The first fsync may still be in flight; the commits after it were synced by close.
    expect(outcomes.length).toBeGreaterThanOrEqual(2);
    expect(outcomes.every((e) => e === undefined)).toBe(true);
  });
});
