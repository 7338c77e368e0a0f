/**
 * The durable store's writer, in both modes: "thread" (the built worker in
 * dist/, what `kubecano listen` runs) and "inline" (on the caller's thread).
 * A callback runs only once its writes are committed and readable from
 * another connection; a failing batch fails alone; flushSync and close
 * leave nothing behind.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";
import Database from "better-sqlite3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type * as WriterModule from "../../src/delivery/sqlite-writer.js";
import { assertBuilt, REPO_ROOT } from "../helpers/cli.js";

let dir: string;
let built: typeof WriterModule;
beforeAll(async () => {
  assertBuilt();
  built = (await import(pathToFileURL(path.join(REPO_ROOT, "dist/delivery/sqlite-writer.js")).href)) as typeof WriterModule;
  dir = mkdtempSync(path.join(os.tmpdir(), "kubecano-writer-"));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let k = 0;
function database(): { file: string; db: Database.Database; count: () => number } {
  const file = path.join(dir, `w${++k}.db`);
  const db = new Database(file);
  db.pragma("journal_mode = WAL");
  db.exec("CREATE TABLE t (n INTEGER PRIMARY KEY, body TEXT NOT NULL)");
  return { file, db, count: () => (db.prepare("SELECT count(*) AS c FROM t").get() as { c: number }).c };
}

const STATEMENTS = { ins: "INSERT INTO t (n, body) VALUES (?, ?)" };

describe.each(["thread", "inline"] as const)("SqliteWriter (%s)", (mode) => {
  const open = (file: string): WriterModule.SqliteWriter =>
    new built.SqliteWriter({ target: mode === "thread" ? { file, synchronous: "normal" } : { db: new Database(file) }, statements: STATEMENTS });

  it("runs a callback only after its writes are committed, in order", async () => {
    const { file, count } = database();
    const w = open(file);
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
      w.send();
      if (turn % 7 === 0) await new Promise((r) => setImmediate(r));
    }
    await Promise.all(all);
    expect(seen).toEqual(Array.from({ length: 500 }, (_, i) => i + 1));
    expect(count()).toBe(500);
    w.close();
  });

  it("flushSync commits everything submitted and runs its callbacks before returning", async () => {
    const { file, count } = database();
    const w = open(file);
    let called = 0;
    for (let n = 1; n <= 100; n++) {
      w.submit([["ins", [n, "x"]]], () => called++);
      if (n % 10 === 0) w.send();
    }
    w.submit([["ins", [101, "unsent"]]]);
    w.flushSync();
    expect(called).toBe(100);
    expect(count()).toBe(101);
    w.close();
  });

  it("fails a bad batch alone, even when it was committed together with others", async () => {
    const { file, count } = database();
    const w = open(file);
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

  it("close commits what is still queued", async () => {
    const { file, count } = database();
    const w = open(file);
    w.submit([["ins", [1, "queued, never sent"]]]);
    w.close();
    expect(count()).toBe(1);
  });

  it("refuses every batch with the reason when the database cannot be opened, and keeps running", async () => {
    const missing = path.join(dir, "no-such-dir", "x.db");
    let w: WriterModule.SqliteWriter | undefined;
    let err: unknown;
    try {
      w = open(missing);
      err = await new Promise((resolve) => {
        w!.submit([["ins", [1, "x"]]], resolve);
        w!.send();
      });
      // Later batches get the same answer: nothing is silently dropped.
      const again = await new Promise((resolve) => {
        w!.submit([["ins", [2, "y"]]], resolve);
        w!.send();
      });
      expect(String(again)).toBe(String(err));
    } catch (e) {
      // Inline, the connection is opened on the caller's thread: the failure is thrown there.
      err = e;
    }
    expect(String(err)).toMatch(/directory does not exist|unable to open|cannot open/i);
    w?.close();
  });
});

describe("SqliteWriter's thread", () => {
  it("starts when the process runs with Node flags that Node refuses in a worker", () => {
    const { file, count } = database();
    const script = [
      `import { SqliteWriter } from ${JSON.stringify(pathToFileURL(path.join(REPO_ROOT, "dist/delivery/sqlite-writer.js")).href)};`,
      `const w = new SqliteWriter({ target: { file: ${JSON.stringify(file)}, synchronous: "normal" }, statements: ${JSON.stringify(STATEMENTS)} });`,
      `if (!w.threaded) throw new Error("not threaded");`,
      `let failed; w.submit([["ins", [1, "x"]]], (e) => { failed = e; }); w.flushSync(); w.close();`,
      `if (failed !== undefined) throw failed;`,
    ].join("\n");
    // --max-semi-space-size is a per-process heap flag: new Worker({ execArgv }) refuses it.
    const r = spawnSync(process.execPath, ["--max-semi-space-size=32", "--input-type=module", "-e", script], { encoding: "utf8" });
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
    expect(count()).toBe(1);
  });
});
