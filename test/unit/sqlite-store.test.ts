/**
 * What only the durable store does: survive close and kill -9, migrate, own
 * its directory, pick up operator changes from other connections, prune,
 * and refuse work (StoreUnavailableError, never another error) when the
 * directory cannot take it.
 *
 * Crashes and other owners are real processes: child node processes running
 * the built store (dist/), so `npm run build` first (npm test does).
 */
import { spawn, spawnSync } from "node:child_process";
import { chownSync, closeSync, mkdirSync, mkdtempSync, openSync, rmSync, writeSync } from "node:fs";
import os, { hostname } from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";
import Database from "better-sqlite3";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import { createIssue, type Issue, type IssueStatus } from "../../src/core/issue.js";
import { subjectFromLabels } from "../../src/core/subject.js";
import { DB_FILE, MIGRATIONS, SCHEMA_VERSION, SqliteDeliveryStore, StateDirInUseError, type SqliteStoreOptions } from "../../src/delivery/sqlite-store.js";
import { dedupKey, StoreUnavailableError, type ClaimedDelivery } from "../../src/delivery/store.js";
import { assertBuilt, REPO_ROOT } from "../helpers/cli.js";

const T0 = Date.UTC(2026, 0, 1, 12);
const HOUR = 3_600_000;
const DAY = 24 * HOUR;

let n = 0;
function issue(fingerprint: string, opts: { status?: IssueStatus; startsAt?: string; title?: string; description?: string } = {}): Issue {
  const k = ++n;
  return createIssue({
    title: opts.title ?? `issue ${k}`,
    aggregationKey: "Test",
    severity: "LOW",
    status: opts.status ?? "FIRING",
    source: "prometheus",
    type: "alert",
    subject: subjectFromLabels({ pod: fingerprint }),
    startsAt: opts.startsAt ?? new Date(T0 - HOUR + k * 1000).toISOString(),
    clusterName: "test",
    fingerprint,
    ...(opts.description !== undefined ? { description: opts.description } : {}),
  });
}

const dirs: string[] = [];
const stores: SqliteDeliveryStore[] = [];
function tempDir(prefix = "kubecano-sqlite-"): string {
  const d = mkdtempSync(path.join(os.tmpdir(), prefix));
  dirs.push(d);
  return d;
}
/** A state directory that does not exist yet (open creates it). */
function stateDir(): string {
  return path.join(tempDir(), "state");
}
function open(opts: Partial<SqliteStoreOptions> & { stateDir: string }): SqliteDeliveryStore {
  const s = SqliteDeliveryStore.open({ maxBacklog: 10_000, ...opts });
  stores.push(s);
  return s;
}
function mustTake(store: SqliteDeliveryStore, destination: string, now: number, recordAttempt = false): ClaimedDelivery {
  const c = store.take(destination, now, { recordAttempt });
  if (c === undefined) throw new Error(`nothing due for ${destination}`);
  return c;
}
/** A read-only look at the database, as another process would have. */
function peek<T>(dir: string, sql: string, ...params: unknown[]): T[] {
  const db = new Database(path.join(dir, DB_FILE), { readonly: true });
  try {
    return db.prepare(sql).all(...params) as T[];
  } finally {
    db.close();
  }
}

afterEach(() => {
  for (const s of stores.splice(0)) s.close();
});
afterAll(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

// ── child processes running the built store ──

const STORE_URL = pathToFileURL(path.join(REPO_ROOT, "dist", "delivery", "sqlite-store.js")).href;

interface Child {
  readonly pid: number;
  stdout(): string;
  /** Resolves with the first stdout line that matches. */
  line(match: RegExp): Promise<string>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>;
  kill(signal: NodeJS.Signals): void;
}

const children: Child[] = [];
afterEach(() => {
  for (const c of children.splice(0)) c.kill("SIGKILL");
});

/** Runs `code` (an ES module body; `Store` is SqliteDeliveryStore from dist/) in a new node process. */
function child(code: string, env: Record<string, string> = {}, ids: { uid?: number; gid?: number } = {}): Child {
  const src = `const { SqliteDeliveryStore: Store } = await import(${JSON.stringify(STORE_URL)});\n${code}`;
  const p = spawn(process.execPath, ["--input-type=module", "-e", src], {
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
    cwd: os.tmpdir(),
    ...ids,
  });
  let out = "";
  let err = "";
  const waiters = new Set<() => void>();
  p.stdout.setEncoding("utf8").on("data", (s: string) => {
    out += s;
    for (const w of [...waiters]) w();
  });
  p.stderr.setEncoding("utf8").on("data", (s: string) => (err += s));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>((resolve) =>
    p.once("close", (code, signal) => {
      for (const w of [...waiters]) w();
      resolve({ code, signal, stdout: out, stderr: err });
    }),
  );
  let done = false;
  void exited.then(() => (done = true));
  const c: Child = {
    pid: p.pid!,
    stdout: () => out,
    exited,
    kill: (s) => {
      if (!done) p.kill(s);
    },
    line: (match) =>
      new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`child: no line matching ${String(match)} within 20 s\n--- stdout ---\n${out}\n--- stderr ---\n${err}`));
        }, 20_000);
        const check = (): void => {
          const l = out.split("\n").find((x) => match.test(x));
          if (l !== undefined) {
            clearTimeout(timer);
            waiters.delete(check);
            resolve(l);
          } else if (done) {
            clearTimeout(timer);
            waiters.delete(check);
            reject(new Error(`child exited before printing ${String(match)}\n--- stdout ---\n${out}\n--- stderr ---\n${err}`));
          }
        };
        waiters.add(check);
        check();
      }),
  };
  children.push(c);
  return c;
}

beforeAll(() => {
  assertBuilt();
});

// ───────────────────────────────────────────────────────────────────────────

describe("SqliteDeliveryStore: restarts", () => {
  it("reopened after close, keeps pending deliveries in order with their attempts, next attempt and last error", async () => {
    const dir = stateDir();
    const a = open({ stateDir: dir, now: () => T0 });
    const [x1, x2, y] = [issue("fp-x"), issue("fp-x", { status: "RESOLVED" }), issue("fp-y")];
    await a.accept([x1!, x2!, y!].map((i) => ({ issue: i, destinations: ["slack"] })));
    await a.accept([{ issue: issue("fp-z"), destinations: ["console"] }]);
    const first = mustTake(a, "slack", T0);
    a.retry(first.delivery, T0 + 60_000, "remote said http_503");
    a.complete(mustTake(a, "console", T0).delivery, "ok-1");
    a.setState("slack:slack", "channel-id:#alerts", "C0ALERTS01");
    a.close();

    const b = open({ stateDir: dir, now: () => T0 + 1 });
    expect(b.depth()).toBe(3);
    expect(b.depth("console")).toBe(0);
    expect(b.getState("slack:slack", "channel-id:#alerts")).toBe("C0ALERTS01");
    // x1 waits for its retry, x2 waits behind it; y is due.
    expect(b.take("slack", T0 + 1)?.issue).toEqual(y);
    expect(b.take("slack", T0 + 1)).toBeUndefined();
    expect(b.nextDueAt("slack")).toBe(T0 + 60_000);
    const again = mustTake(b, "slack", T0 + 60_000);
    expect(again.issue).toEqual(x1);
    expect(again.delivery).toMatchObject({ id: first.delivery.id, seq: first.delivery.seq, attempts: 1, nextAttemptAt: T0 + 60_000, lastError: "remote said http_503", createdAt: T0 });
    expect(again.delivery.inDoubtSince).toBeUndefined();
    b.complete(again.delivery);
    expect(b.take("slack", T0 + 60_000)?.issue).toEqual(x2);
    // The feed survives too.
    expect(b.recent(10).map((r) => r.issue.id)).toHaveLength(4);
  });

  it("with durability full, an accept resolves only after the WAL's fsync (later than its commit) and its Issue is there after a reopen", async () => {
    const dir = stateDir();
    const a = open({ stateDir: dir, now: () => T0, synchronous: "full" });
    const x = issue("fp-full");
    let resolved = false;
    const accepted = a.accept([{ issue: x, destinations: ["slack"] }]).then((r) => {
      resolved = true;
      return r;
    });
    // The commit runs at the end of this turn; the answer waits for the fsync on the thread pool after it.
    await new Promise((r) => setImmediate(r));
    const committed = new Database(path.join(dir, DB_FILE), { readonly: true });
    expect((committed.prepare("SELECT count(*) AS c FROM issues").get() as { c: number }).c).toBe(1);
    committed.close();
    expect(resolved).toBe(false);
    expect(await accepted).toMatchObject({ issues: 1, deliveries: 1 });
    a.close();
    const b = open({ stateDir: dir, now: () => T0 + 1 });
    expect(mustTake(b, "slack", T0 + 1).issue).toEqual(x);
  });

  it("an attempt recorded and never finished (the process was killed) comes back in doubt; others do not", async () => {
    const dir = stateDir();
    const inDoubt = issue("fp-a");
    const waiting = issue("fp-b");
    const plain = issue("fp-c");
    const c = child(
      `
      const store = Store.open({ stateDir: process.env.DIR, maxBacklog: 100 });
      const [a, b, c] = JSON.parse(process.env.ISSUES);
      await store.accept([{ issue: a, destinations: ["slack"] }, { issue: b, destinations: ["slack"] }, { issue: c, destinations: ["console"] }]);
      const t = Date.now();
      const taken = [t, store.take("slack", t, { recordAttempt: true }).delivery.id, store.take("console", t).delivery.id];
      process.stdout.write(JSON.stringify(taken) + "\\n", () => process.kill(process.pid, "SIGKILL"));
      `,
      { DIR: dir, ISSUES: JSON.stringify([inDoubt, waiting, plain]) },
    );
    const exit = await c.exited;
    expect(exit.signal, exit.stderr).toBe("SIGKILL");
    const [attemptAt, ...taken] = JSON.parse(exit.stdout) as [number, string, string];
    expect(taken).toEqual([`${inDoubt.id}/slack`, `${plain.id}/console`]);

    // The dead child still owns the directory on paper: its pid is gone, so it is taken over.
    const store = open({ stateDir: dir });
    expect(store.depth()).toBe(3);
    const a = mustTake(store, "slack", Date.now(), true);
    expect(a.issue).toEqual(inDoubt);
    expect(a.delivery.inDoubtSince).toBe(attemptAt);
    expect(a.delivery.attempts).toBe(0);
    const b = mustTake(store, "slack", Date.now());
    expect(b.issue).toEqual(waiting);
    expect(b.delivery.inDoubtSince).toBeUndefined();
    const cDel = mustTake(store, "console", Date.now());
    expect(cDel.issue).toEqual(plain);
    expect(cDel.delivery.inDoubtSince).toBeUndefined();
  });

  it("a delivery in doubt keeps the time of the first unfinished attempt until an outcome is recorded", async () => {
    const dir = stateDir();
    const a = open({ stateDir: dir, now: () => T0 });
    await a.accept([{ issue: issue("fp"), destinations: ["slack"] }]);
    mustTake(a, "slack", T0, true);
    a.close(); // no outcome recorded, as after a crash
    const b = open({ stateDir: dir, now: () => T0 });
    const d = mustTake(b, "slack", T0 + 60_000, true);
    expect(d.delivery.inDoubtSince).toBe(T0);
    b.close(); // crashed again while looking
    const c = open({ stateDir: dir, now: () => T0 });
    const d2 = mustTake(c, "slack", T0 + 120_000, true);
    // Still from T0: what the first attempt may have created is older than the second attempt.
    expect(d2.delivery.inDoubtSince).toBe(T0);
    c.retry(d2.delivery, T0 + 130_000, "remote said http_503");
    c.close();
    const e = open({ stateDir: dir, now: () => T0 });
    const d3 = mustTake(e, "slack", T0 + 130_000, true);
    expect(d3.delivery.inDoubtSince).toBeUndefined();
    expect(d3.delivery.attempts).toBe(1);
  });

  it("a delivery released at shutdown after its attempt was recorded stays in doubt (the send may have reached the destination)", async () => {
    const dir = stateDir();
    const a = open({ stateDir: dir, now: () => T0 });
    await a.accept([{ issue: issue("fp-1"), destinations: ["slack"] }, { issue: issue("fp-2"), destinations: ["webhook"] }]);
    const s = mustTake(a, "slack", T0, true);
    const w = mustTake(a, "webhook", T0, false);
    a.release(s.delivery);
    a.release(w.delivery);
    expect(a.depth()).toBe(2);
    a.close();
    const b = open({ stateDir: dir, now: () => T0 });
    const s2 = mustTake(b, "slack", T0 + 1, true);
    expect(s2.delivery).toMatchObject({ attempts: 0, inDoubtSince: T0 });
    const w2 = mustTake(b, "webhook", T0 + 1, false);
    expect(w2.delivery.attempts).toBe(0);
    expect(w2.delivery.inDoubtSince).toBeUndefined();
  });

  it("remembers dedup keys across a restart", async () => {
    const dir = stateDir();
    const startsAt = new Date(T0 - 60_000).toISOString();
    const a = open({ stateDir: dir, dedupWindowMs: HOUR, now: () => T0 });
    await a.accept([{ issue: issue("fp", { startsAt }), destinations: ["slack"] }]);
    a.close();
    const b = open({ stateDir: dir, dedupWindowMs: HOUR, now: () => T0 + HOUR - 1 });
    const repeat = issue("fp", { startsAt });
    expect(await b.accept([{ issue: repeat, destinations: ["slack"] }])).toEqual({ issues: 0, deliveries: 0, duplicates: 1, duplicateIds: [repeat.id] });
    expect(b.depth()).toBe(1);
  });

  it("rebuilds the dedup window from the newest Issues: a key's latest acceptance counts, duplicates are not stored, keys accepted with dedup off are not keys", async () => {
    const dir = stateDir();
    const startsAt = new Date(T0 - 60_000).toISOString();
    const a = open({ stateDir: dir, dedupWindowMs: HOUR, now: () => T0 });
    await a.accept([{ issue: issue("fp", { startsAt }), destinations: ["slack"] }]);
    a.close();
    // Past the window: accepted again, which starts a new window.
    const b = open({ stateDir: dir, dedupWindowMs: HOUR, now: () => T0 + HOUR + 1 });
    expect((await b.accept([{ issue: issue("fp", { startsAt }), destinations: ["slack"] }])).issues).toBe(1);
    expect((await b.accept([{ issue: issue("fp", { startsAt }), destinations: ["slack"] }])).duplicates).toBe(1);
    b.close();
    const c = open({ stateDir: dir, dedupWindowMs: HOUR, now: () => T0 + 2 * HOUR });
    expect((await c.accept([{ issue: issue("fp", { startsAt }), destinations: ["slack"] }])).duplicates).toBe(1);
    // Two Issues stored, not the duplicates.
    expect(c.recent(10)).toHaveLength(2);
    c.close();

    const other = { startsAt: new Date(T0).toISOString() };
    const off = open({ stateDir: dir, dedupWindowMs: 0, now: () => T0 + 2 * HOUR });
    await off.accept([{ issue: issue("fp-off", other), destinations: ["slack"] }]);
    off.close();
    const on = open({ stateDir: dir, dedupWindowMs: HOUR, now: () => T0 + 2 * HOUR });
    expect((await on.accept([{ issue: issue("fp-off", other), destinations: ["slack"] }])).issues).toBe(1);
    expect((await on.accept([{ issue: issue("fp", { startsAt }), destinations: ["slack"] }])).duplicates).toBe(1);
  });

  it("a processed Issue (fanOut) keeps its enriched body and its deliveries across a restart; operators find them by id; pruning removes it all", async () => {
    const dir = stateDir();
    let now = T0;
    const a = open({ stateDir: dir, retentionMs: DAY, now: () => now });
    const raw = issue("fp-p", { title: "raw" });
    const other = issue("fp-o", { title: "other" });
    await a.accept([{ issue: raw, destinations: ["@process"] }]);
    const step = mustTake(a, "@process", T0);
    // Accepted while the first is processed: its delivery lies between the first one's.
    await a.accept([{ issue: other, destinations: ["console"] }]);
    const enriched: Issue = { ...raw, title: "enriched" };
    a.fanOut(step.delivery, enriched, ["slack", "pagerduty"]);
    a.complete(mustTake(a, "slack", T0).delivery, "1700.5");
    a.close();

    const b = open({ stateDir: dir, retentionMs: DAY, now: () => now });
    expect(b.depth()).toBe(2);
    expect(b.recent(10).map((r) => [r.issue.title, r.deliveries.map((d) => [d.id, d.state, d.remoteId])])).toEqual([
      ["other", [[`${other.id}/console`, "pending", undefined]]],
      [
        "enriched",
        [
          [`${raw.id}/slack`, "done", "1700.5"],
          [`${raw.id}/pagerduty`, "pending", undefined],
        ],
      ],
    ]);
    expect(mustTake(b, "pagerduty", T0).issue).toEqual(enriched);
    const op = open({ stateDir: dir, owner: false });
    expect(op.drop(`${raw.id}/pagerduty`)).toBe(true);
    expect(op.drop(`${raw.id}/@process`)).toBe(false);
    op.close();
    b.refresh();
    expect(b.depth()).toBe(1);

    now = T0 + DAY + 1;
    b.complete(mustTake(b, "console", now).delivery);
    b.prune();
    // Delivered just now: kept for retention from now.
    expect(b.recent(10).map((r) => r.issue.title)).toEqual(["other"]);
    now = T0 + 2 * DAY + 2;
    b.prune();
    expect(b.recent(10)).toEqual([]);
    const count = (table: string): number => peek<{ n: number }>(dir, `SELECT count(*) AS n FROM ${table}`)[0]!.n;
    expect([count("issues"), count("deliveries")]).toEqual([0, 0]);
  });
});

describe("SqliteDeliveryStore: schema migrations", () => {
  it("a fresh database ends at SCHEMA_VERSION, and reopening does not migrate again", async () => {
    const dir = stateDir();
    open({ stateDir: dir }).close();
    expect(peek<{ user_version: number }>(dir, "PRAGMA user_version")).toEqual([{ user_version: SCHEMA_VERSION }]);
    expect(SCHEMA_VERSION).toBeGreaterThanOrEqual(1);
    const again = open({ stateDir: dir });
    await again.accept([{ issue: issue("fp"), destinations: ["a"] }]);
    expect(again.depth()).toBe(1);
    expect(peek<{ journal_mode: string }>(dir, "PRAGMA journal_mode")).toEqual([{ journal_mode: "wal" }]);
  });

  it("refuses a database written by a newer kubecano, with a clear message, and leaves it alone", async () => {
    const dir = stateDir();
    open({ stateDir: dir }).close();
    const db = new Database(path.join(dir, DB_FILE));
    db.pragma(`user_version = ${SCHEMA_VERSION + 1}`);
    db.close();
    let err: unknown;
    try {
      open({ stateDir: dir });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(StoreUnavailableError);
    expect((err as Error).message).toBe(
      `cannot open the state directory ${dir}: the state was written by a newer kubecano (schema ${SCHEMA_VERSION + 1}, this one knows ${SCHEMA_VERSION}); upgrade kubecano or use another --state-dir`,
    );
    expect(peek<{ user_version: number }>(dir, "PRAGMA user_version")).toEqual([{ user_version: SCHEMA_VERSION + 1 }]);
  });

  /** A state directory as kubecano with schema 1 left it (its migration's SQL, rows as it wrote them). */
  function schema1(): { dir: string; db: Database.Database; put: (i: Issue, receivedAt: number, deliveries?: Record<string, unknown>[]) => void } {
    const dir = stateDir();
    mkdirSync(dir, { recursive: true });
    const db = new Database(path.join(dir, DB_FILE));
    db.pragma("journal_mode = WAL");
    db.exec(MIGRATIONS[0]!);
    db.pragma("user_version = 1");
    const put = (i: Issue, receivedAt: number, deliveries: Record<string, unknown>[] = []): void => {
      db.prepare("INSERT INTO issues (id, fingerprint, received_at, body) VALUES (?, ?, ?, ?)").run(i.id, i.fingerprint, receivedAt, JSON.stringify(i));
      for (const d of deliveries) {
        const row = { attempts: 0, created_at: receivedAt, next_attempt_at: null, last_error: null, remote_id: null, attempt_started_at: null, finished_at: null, ...d };
        db.prepare(
          "INSERT INTO deliveries (seq, id, issue_id, destination, fingerprint, state, attempts, created_at, next_attempt_at, last_error, remote_id, attempt_started_at, finished_at) VALUES (@seq, @id, @issue_id, @destination, @fingerprint, @state, @attempts, @created_at, @next_attempt_at, @last_error, @remote_id, @attempt_started_at, @finished_at)",
        ).run({ ...row, id: `${i.id}/${String(d["destination"])}`, issue_id: i.id, fingerprint: i.fingerprint });
      }
    };
    return { dir, db, put };
  }

  it("a schema-1 state directory opens with all its data: waiting (in doubt too), dead letters with their errors, delivered history, feed order, kv and dedup keys", async () => {
    const { dir, db, put } = schema1();
    const [a, b, c, d, e, f] = [issue("fp-a", { title: "a" }), issue("fp-b", { title: "b" }), issue("fp-b", { title: "c", status: "RESOLVED" }), issue("fp-d", { title: "d" }), issue("fp-e", { title: "e" }), issue("fp-f", { title: "f" })];
    const gone = issue("fp-gone");
    // Written out of arrival order: the feed follows received_at.
    put(f!, T0 - 5 * 60_000, [{ seq: 9, destination: "console", state: "done", remote_id: null, finished_at: T0 - 5 * 60_000 + 10 }]);
    put(a!, T0 - 3 * HOUR, [
      { seq: 1, destination: "slack", state: "done", remote_id: "1700.1", finished_at: T0 - 3 * HOUR + 1000 },
      { seq: 2, destination: "pagerduty", state: "dead", attempts: 3, last_error: "http_400 invalid routing key", finished_at: T0 - 2 * HOUR },
    ]);
    put(b!, T0 - 2 * HOUR, [{ seq: 3, destination: "slack", state: "pending", attempts: 2, next_attempt_at: T0 + 60_000, last_error: "remote said http_503" }]);
    put(c!, T0 - HOUR - 1, [{ seq: 4, destination: "slack", state: "pending" }]);
    put(d!, T0 - 30 * 60_000, [{ seq: 5, destination: "slack", state: "pending", attempt_started_at: T0 - 29 * 60_000 }]);
    put(e!, T0 - 10 * 60_000);
    // A delivery whose Issue is gone (only a hand edit does that): it could never be sent.
    db.prepare("INSERT INTO deliveries (seq, id, issue_id, destination, fingerprint, state, attempts, created_at) VALUES (7, 'ghost/slack', 'ghost', 'slack', 'fp-ghost', 'pending', 0, ?)").run(T0);
    const seen = (i: Issue, at: number): void => void db.prepare("INSERT INTO dedup (key, first_seen) VALUES (?, ?)").run(dedupKey(i), at);
    seen(a!, T0 - 3 * HOUR); // expired
    seen(d!, T0 - 30 * 60_000);
    seen(e!, T0 - 10 * 60_000);
    seen(f!, T0 - 5 * 60_000);
    seen(gone, T0 - 20 * 60_000); // its Issue was pruned (retention shorter than the window)
    db.prepare("INSERT INTO kv (namespace, key, value, updated_at) VALUES ('slack:slack', 'thread:fp-a', '1700.1', ?)").run(T0 - 3 * HOUR);
    db.prepare("INSERT INTO owner (id, pid, host, heartbeat_at) VALUES (1, 4242, 'other-node', ?)").run(T0 - HOUR);
    db.close();

    const store = open({ stateDir: dir, dedupWindowMs: HOUR, now: () => T0 });
    expect(peek<{ user_version: number }>(dir, "PRAGMA user_version")).toEqual([{ user_version: SCHEMA_VERSION }]);
    expect(peek<{ name: string }>(dir, "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").map((r) => r.name)).toEqual(["dedup_carried", "deliveries", "issues", "kv", "owner"]);
    expect(store.recent(10).map((r) => r.issue.title)).toEqual(["f", "e", "d", "c", "b", "a"]);
    expect(store.recent(10).find((r) => r.issue.id === a!.id)?.deliveries.map((x) => [x.id, x.seq, x.state, x.remoteId ?? x.lastError])).toEqual([
      [`${a!.id}/slack`, 1, "done", "1700.1"],
      [`${a!.id}/pagerduty`, 2, "dead", "http_400 invalid routing key"],
    ]);
    expect(store.list({ states: ["dead"] })).toEqual([
      { id: `${a!.id}/pagerduty`, seq: 2, issueId: a!.id, destination: "pagerduty", state: "dead", attempts: 3, createdAt: T0 - 3 * HOUR, nextAttemptAt: undefined, lastError: "http_400 invalid routing key", remoteId: undefined, finishedAt: T0 - 2 * HOUR, title: "a", fingerprint: "fp-a" },
    ]);
    expect(store.list({ states: ["done"] }).map((x) => [x.id, x.remoteId, x.finishedAt])).toEqual([
      [`${a!.id}/slack`, "1700.1", T0 - 3 * HOUR + 1000],
      [`${f!.id}/console`, undefined, T0 - 5 * 60_000 + 10],
    ]);
    expect(store.getState("slack:slack", "thread:fp-a")).toBe("1700.1");

    // The waiting ones, in their order, with their attempts and doubts.
    expect(store.depth()).toBe(3);
    const first = mustTake(store, "slack", T0, true);
    expect(first.issue).toEqual(d);
    expect(first.delivery).toMatchObject({ id: `${d!.id}/slack`, seq: 5, attempts: 0, inDoubtSince: T0 - 29 * 60_000 });
    expect(store.take("slack", T0)).toBeUndefined();
    expect(store.nextDueAt("slack")).toBe(T0 + 60_000);
    const second = mustTake(store, "slack", T0 + 60_000);
    expect(second.issue).toEqual(b);
    expect(second.delivery).toMatchObject({ seq: 3, attempts: 2, lastError: "remote said http_503", createdAt: T0 - 2 * HOUR });
    expect(store.take("slack", T0 + 60_000)).toBeUndefined(); // c waits behind b (same fingerprint)
    store.complete(second.delivery, "1700.2");
    expect(mustTake(store, "slack", T0 + 60_000).issue).toEqual(c);

    // The dedup window: keys within it are duplicates (also the one whose Issue was gone); expired or unrecorded keys are not.
    const again = (i: Issue): Issue => ({ ...issue(i.fingerprint, { status: i.status, startsAt: i.startsAt }) });
    const result = await store.accept([d!, e!, f!, gone, a!, b!].map((i) => ({ issue: again(i), destinations: ["slack"] })));
    expect([result.issues, result.duplicates]).toEqual([2, 4]);
    // New Issues follow the migrated ones; numbers go on from the highest.
    expect(store.recent(2).map((r) => r.issue.fingerprint)).toEqual(["fp-b", "fp-a"]);
    expect(Math.min(...store.recent(2).flatMap((r) => r.deliveries.map((x) => x.seq)))).toBe(10);

    // Operators find the migrated ones by id or number.
    store.flush();
    const op = open({ stateDir: dir, owner: false });
    expect(op.requeue(`${a!.id}/pagerduty`)).toBe(true);
    expect(op.list({ states: ["dead"] })).toEqual([]);
    expect(op.drop("2")).toBe(true);
    expect(op.list().map((x) => x.id)).not.toContain("ghost/slack");
  });

  it("a schema-1 state directory is not migrated while an older kubecano still runs on it (operator commands neither)", async () => {
    const { dir, db } = schema1();
    // A live process on this host: the older daemon.
    db.prepare("INSERT INTO owner (id, pid, host, heartbeat_at) VALUES (1, ?, ?, ?)").run(process.ppid, hostname(), T0);
    db.close();
    const message = `cannot open the state directory ${dir}: the state directory ${dir} is in use by kubecano pid ${process.ppid} on ${hostname()}, which uses an older schema (1, this one is ${SCHEMA_VERSION}); stop it before upgrading`;
    expect(() => open({ stateDir: dir, owner: false, now: () => T0 + 1 })).toThrow(message);
    expect(() => open({ stateDir: dir, now: () => T0 + 1 })).toThrow(message);
    expect(peek<{ user_version: number }>(dir, "PRAGMA user_version")).toEqual([{ user_version: 1 }]);
    // Once its heartbeat is stale, it is gone: migrate.
    open({ stateDir: dir, now: () => T0 + 30_000 });
    expect(peek<{ user_version: number }>(dir, "PRAGMA user_version")).toEqual([{ user_version: SCHEMA_VERSION }]);
  });
});

describe("SqliteDeliveryStore: ownership of the state directory", () => {
  const holder = `
    const store = Store.open({ stateDir: process.env.DIR, maxBacklog: 100 });
    process.on("SIGTERM", () => { store.close(); process.exit(0); });
    process.stdout.write("ready\\n");
    setInterval(() => {}, 60_000);
  `;

  it("a second owner is refused while another live process holds it; operator access still works; a clean stop releases it", async () => {
    const dir = stateDir();
    const c = child(holder, { DIR: dir });
    await c.line(/^ready$/);
    let err: unknown;
    try {
      open({ stateDir: dir });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(StateDirInUseError);
    expect((err as Error).message).toBe(`state directory ${dir} is in use by kubecano pid ${c.pid} on ${hostname()}`);
    const operator = open({ stateDir: dir, owner: false });
    expect(operator.list()).toEqual([]);
    operator.close();
    c.kill("SIGTERM");
    expect((await c.exited).code).toBe(0);
    const store = open({ stateDir: dir });
    expect(store.depth()).toBe(0);
  });

  it("takes over from an owner killed with -9 (same host, dead pid) at once", async () => {
    const dir = stateDir();
    const c = child(holder, { DIR: dir });
    await c.line(/^ready$/);
    expect(() => open({ stateDir: dir })).toThrow(StateDirInUseError);
    c.kill("SIGKILL");
    expect((await c.exited).signal).toBe("SIGKILL");
    expect(peek<{ pid: number }>(dir, "SELECT pid FROM owner")).toEqual([{ pid: c.pid }]);
    open({ stateDir: dir });
    expect(peek<{ pid: number }>(dir, "SELECT pid FROM owner")).toEqual([{ pid: process.pid }]);
  });

  it("an owner on another host is refused while its heartbeat is fresh, and taken over once it is 30 s old", async () => {
    const dir = stateDir();
    open({ stateDir: dir }).close();
    const db = new Database(path.join(dir, DB_FILE));
    db.prepare("INSERT INTO owner (id, pid, host, heartbeat_at) VALUES (1, ?, ?, ?)").run(4242, "other-node", T0);
    db.close();
    expect(() => open({ stateDir: dir, now: () => T0 + 29_999 })).toThrow(`state directory ${dir} is in use by kubecano pid 4242 on other-node`);
    open({ stateDir: dir, now: () => T0 + 30_000 });
    expect(peek<{ pid: number; host: string }>(dir, "SELECT pid, host FROM owner")).toEqual([{ pid: process.pid, host: hostname() }]);
  });

  it("an operator connection does not take ownership or load the queue", async () => {
    const dir = stateDir();
    const c = child(holder, { DIR: dir });
    await c.line(/^ready$/);
    const operator = open({ stateDir: dir, owner: false });
    expect(operator.depth()).toBe(0);
    operator.close();
    expect(peek<{ pid: number }>(dir, "SELECT pid FROM owner")).toEqual([{ pid: c.pid }]);
  });
});

describe("SqliteDeliveryStore: operator changes from another connection", () => {
  function setup(): { owner: SqliteDeliveryStore; operator: () => SqliteDeliveryStore; dir: string } {
    const dir = stateDir();
    const owner = open({ stateDir: dir, now: () => T0 });
    return { owner, operator: () => open({ stateDir: dir, owner: false }), dir };
  }

  it("requeue of a dead letter (by number or id) is picked up by the owner's next take, with a fresh attempt budget", async () => {
    const { owner, operator } = setup();
    const [i1, i2] = [issue("fp-1"), issue("fp-2")];
    await owner.accept([i1!, i2!].map((i) => ({ issue: i, destinations: ["slack"] })));
    const d1 = mustTake(owner, "slack", T0);
    const d2 = mustTake(owner, "slack", T0);
    owner.retry(d1.delivery, T0, "remote said http_503");
    owner.kill(mustTake(owner, "slack", T0).delivery, "channel_not_found");
    owner.kill(d2.delivery, "channel_not_found");
    expect(owner.depth()).toBe(0);
    expect(owner.take("slack", Date.now())).toBeUndefined();

    owner.flush();
    const op = operator();
    expect(op.list({ states: ["dead"] }).map((d) => [d.issueId, d.attempts, d.lastError])).toEqual([
      [i1!.id, 2, "channel_not_found"],
      [i2!.id, 1, "channel_not_found"],
    ]);
    expect(op.requeue(String(d1.delivery.seq))).toBe(true);
    expect(op.requeue(d2.delivery.id)).toBe(true);
    expect(op.requeue("999999")).toBe(false);
    op.close();
    owner.refresh();

    const now = Date.now() + 1;
    const a = mustTake(owner, "slack", now);
    const b = mustTake(owner, "slack", now);
    expect([a.issue.id, b.issue.id]).toEqual([i1!.id, i2!.id]);
    expect(a.delivery.attempts).toBe(0);
    expect(owner.depth()).toBe(2);
    owner.complete(a.delivery);
    owner.complete(b.delivery);
    expect(owner.list({ states: ["dead", "pending"] })).toEqual([]);
  });

  it("requeueAllDead is picked up by the owner's next take", async () => {
    const { owner, operator } = setup();
    const issues = [issue("fp-1"), issue("fp-2"), issue("fp-3")];
    await owner.accept(issues.map((i) => ({ issue: i, destinations: ["slack"] })));
    for (let k = 0; k < 3; k++) owner.kill(mustTake(owner, "slack", T0).delivery, "is_archived");
    owner.flush();
    const op = operator();
    expect(op.requeueAllDead()).toBe(3);
    expect(op.requeueAllDead()).toBe(0);
    op.close();
    owner.refresh();
    const now = Date.now() + 1;
    const got = [owner.take("slack", now), owner.take("slack", now), owner.take("slack", now), owner.take("slack", now)].map((c) => c?.issue.id);
    expect(got).toEqual([...issues.map((i) => i.id), undefined]);
  });

  it("drop of a waiting delivery removes it from the owner's schedule and lets the next of its fingerprint go", async () => {
    const { owner, operator } = setup();
    const [x1, x2] = [issue("fp-x"), issue("fp-x")];
    await owner.accept([x1!, x2!].map((i) => ({ issue: i, destinations: ["slack"] })));
    const d1 = mustTake(owner, "slack", T0);
    owner.retry(d1.delivery, T0 + HOUR, "remote said http_503");
    owner.flush();
    const op = operator();
    expect(op.drop(String(d1.delivery.seq))).toBe(true);
    expect(op.drop(String(d1.delivery.seq))).toBe(false);
    op.close();
    owner.refresh();
    expect(owner.take("slack", T0 + 1)?.issue.id).toBe(x2!.id);
    expect(owner.depth()).toBe(1);
  });

  it("drop of a dead letter removes it from the list", async () => {
    const { owner, operator } = setup();
    await owner.accept([{ issue: issue("fp"), destinations: ["slack"] }]);
    const d = mustTake(owner, "slack", T0);
    owner.kill(d.delivery, "channel_not_found");
    owner.flush();
    const op = operator();
    expect(op.list().map((x) => x.state)).toEqual(["dead"]);
    expect(op.drop(d.delivery.id)).toBe(true);
    expect(op.list()).toEqual([]);
    // A delivered one cannot be dropped (nor requeued).
    await owner.accept([{ issue: issue("fp-2"), destinations: ["slack"] }]);
    const ok = mustTake(owner, "slack", T0);
    owner.complete(ok.delivery);
    owner.flush();
    expect(op.drop(ok.delivery.id)).toBe(false);
    expect(op.requeue(ok.delivery.id)).toBe(false);
  });

  it("a requeued dead letter waits while a later delivery of its fingerprint is in flight", async () => {
    const { owner, operator } = setup();
    const [firing, resolved] = [issue("fp-x"), issue("fp-x", { status: "RESOLVED" })];
    await owner.accept([firing!, resolved!].map((i) => ({ issue: i, destinations: ["slack"] })));
    owner.kill(mustTake(owner, "slack", T0).delivery, "channel_not_found");
    const inFlight = mustTake(owner, "slack", T0);
    expect(inFlight.issue.id).toBe(resolved!.id);
    owner.flush();
    const op = operator();
    expect(op.requeue(`${firing!.id}/slack`)).toBe(true);
    op.close();
    owner.refresh();
    const now = Date.now() + 1;
    // Never two of one (destination, fingerprint) at once.
    expect(owner.take("slack", now)).toBeUndefined();
    owner.complete(inFlight.delivery);
    expect(owner.take("slack", now)?.issue.id).toBe(firing!.id);
  });

  it("a reload after an operator change keeps every waiting delivery: on its first pass, retried, deferred, in doubt, in flight", async () => {
    const { owner, operator } = setup();
    const [dead, retried, deferred, marked, inFlight, waiting] = ["fp-dead", "fp-r", "fp-d", "fp-m", "fp-f", "fp-w"].map((fp) => issue(fp));
    await owner.accept([dead!, retried!, deferred!, marked!, inFlight!, waiting!].map((i) => ({ issue: i, destinations: ["slack"] })));
    const taken = [0, 1, 2, 3, 4].map((k) => mustTake(owner, "slack", T0, k === 3));
    owner.kill(taken[0]!.delivery, "channel_not_found");
    owner.retry(taken[1]!.delivery, T0 + 1000, "http_503");
    owner.defer(taken[2]!.delivery, T0 + 2000);
    owner.release(taken[3]!.delivery);
    owner.flush();
    const op = operator();
    expect(op.requeue(`${dead!.id}/slack`)).toBe(true);
    op.close();
    owner.refresh();
    expect(owner.depth()).toBe(6);
    const now = Date.now() + 1;
    const next = (): ClaimedDelivery | undefined => owner.take("slack", now);
    expect(next()?.delivery).toMatchObject({ id: `${marked!.id}/slack`, inDoubtSince: T0 });
    expect(next()?.issue.id).toBe(waiting!.id);
    expect(next()?.delivery).toMatchObject({ id: `${retried!.id}/slack`, attempts: 1, lastError: "http_503", nextAttemptAt: T0 + 1000 });
    expect(next()?.delivery).toMatchObject({ id: `${deferred!.id}/slack`, attempts: 0, nextAttemptAt: T0 + 2000 });
    expect(next()?.delivery).toMatchObject({ id: `${dead!.id}/slack`, attempts: 0 });
    // Still in flight here: not handed out again.
    expect(next()).toBeUndefined();
    owner.complete(taken[4]!.delivery);
    expect(owner.depth()).toBe(5);
  });

  it("an operator change while a delivery is in flight does not hand it out twice", async () => {
    const { owner, operator } = setup();
    const [x1, y] = [issue("fp-x"), issue("fp-y")];
    await owner.accept([x1!, y!].map((i) => ({ issue: i, destinations: ["slack"] })));
    const inFlight = mustTake(owner, "slack", T0);
    const dead = mustTake(owner, "slack", T0);
    owner.kill(dead.delivery, "channel_not_found");
    owner.flush();
    const op = operator();
    expect(op.requeueAllDead()).toBe(1);
    op.close();
    owner.refresh();
    // The reload keeps x1 in flight: only y is handed out.
    const now = Date.now() + 1;
    expect(owner.take("slack", now)?.issue.id).toBe(y!.id);
    expect(owner.take("slack", now)).toBeUndefined();
    owner.complete(inFlight.delivery, "r-x1");
    expect(owner.take("slack", now)).toBeUndefined();
    expect(owner.depth()).toBe(1);
  });
});

describe("SqliteDeliveryStore: list and prune", () => {
  it("list filters by state, oldest first, with the Issue's title, up to a limit", async () => {
    const dir = stateDir();
    const store = open({ stateDir: dir, now: () => T0 });
    const issues = [issue("fp-1", { title: "one" }), issue("fp-2", { title: "two" }), issue("fp-3", { title: "three" }), issue("fp-4", { title: "four" })];
    await store.accept(issues.map((i) => ({ issue: i, destinations: ["slack"] })));
    store.complete(mustTake(store, "slack", T0).delivery, "r1");
    store.kill(mustTake(store, "slack", T0).delivery, "channel_not_found");
    const third = mustTake(store, "slack", T0);
    store.retry(third.delivery, T0 + 1000, "http_503");
    const summary = (states?: ("pending" | "done" | "dead")[], limit?: number): string[] =>
      store.list({ ...(states !== undefined ? { states } : {}), ...(limit !== undefined ? { limit } : {}) }).map((d) => `${d.title}:${d.state}`);
    expect(summary()).toEqual(["two:dead", "three:pending", "four:pending"]);
    expect(summary(["done"])).toEqual(["one:done"]);
    expect(summary(["dead"])).toEqual(["two:dead"]);
    expect(summary(["pending"])).toEqual(["three:pending", "four:pending"]);
    expect(summary(["pending", "done", "dead"], 2)).toEqual(["one:done", "two:dead"]);
    expect(store.list({ states: ["pending"] })[0]).toMatchObject({ attempts: 1, lastError: "http_503", nextAttemptAt: T0 + 1000, destination: "slack", fingerprint: "fp-3" });
    // Never tried yet: due since it was accepted.
    expect(store.list({ states: ["pending"] })[1]).toMatchObject({ attempts: 0, nextAttemptAt: T0, lastError: undefined });
    expect(store.list({ states: ["done"] })[0]).toMatchObject({ remoteId: "r1", finishedAt: T0 });
  });

  it("prune forgets delivered ones past retention, dead letters past deadRetention and Issues left with nothing", async () => {
    const dir = stateDir();
    let now = T0;
    const store = open({ stateDir: dir, dedupWindowMs: 2 * HOUR, retentionMs: DAY, deadRetentionMs: 7 * DAY, now: () => now });
    const done = issue("fp-done");
    const dead = issue("fp-dead");
    const waiting = issue("fp-waiting");
    const unrouted = issue("fp-unrouted");
    await store.accept([
      { issue: done, destinations: ["slack"] },
      { issue: dead, destinations: ["slack"] },
      { issue: waiting, destinations: ["slack"] },
      { issue: unrouted, destinations: [] },
    ]);
    store.complete(mustTake(store, "slack", T0).delivery, "r-done");
    store.kill(mustTake(store, "slack", T0).delivery, "channel_not_found");
    store.retry(mustTake(store, "slack", T0).delivery, T0 + 30 * DAY, "http_503");
    const count = (table: string): number => peek<{ n: number }>(dir, `SELECT count(*) AS n FROM ${table}`)[0]!.n;
    const ids = (): string[] => store.recent(100).map((r) => r.issue.id).sort();

    now = T0 + 2 * HOUR + 1;
    store.prune();
    expect(ids()).toEqual([done.id, dead.id, waiting.id, unrouted.id].sort());
    expect(count("deliveries")).toBe(3);

    now = T0 + DAY + 1;
    store.prune();
    // Delivered and unrouted ones are gone; the dead letter and the waiting one stay.
    expect(ids()).toEqual([dead.id, waiting.id].sort());
    expect(store.list({ states: ["done"] })).toEqual([]);
    expect(store.list({ states: ["dead"] }).map((d) => d.issueId)).toEqual([dead.id]);

    now = T0 + 7 * DAY + 1;
    store.prune();
    expect(ids()).toEqual([waiting.id]);
    expect(store.list({ states: ["dead"] })).toEqual([]);
    expect(count("issues")).toBe(1);
    expect(count("deliveries")).toBe(1);

    // A waiting delivery is never pruned, however old.
    now = T0 + 29 * DAY;
    store.prune();
    expect(store.depth()).toBe(1);
    expect(store.take("slack", T0 + 30 * DAY)?.issue).toEqual(waiting);
  });

  it("an Issue within the dedup window outlives a shorter retention, so a restart still knows its key; it goes once the window has passed", async () => {
    const dir = stateDir();
    let now = T0;
    const opts = { stateDir: dir, dedupWindowMs: 2 * HOUR, retentionMs: HOUR, now: () => now };
    const startsAt = new Date(T0).toISOString();
    const a = open(opts);
    await a.accept([{ issue: issue("fp", { startsAt }), destinations: ["slack"] }]);
    a.complete(mustTake(a, "slack", T0).delivery);
    now = T0 + 2 * HOUR - 1;
    a.prune();
    expect(a.recent(10)).toHaveLength(1);
    a.close();
    const b = open(opts);
    expect((await b.accept([{ issue: issue("fp", { startsAt }), destinations: ["slack"] }])).duplicates).toBe(1);
    now = T0 + 2 * HOUR + 1;
    b.prune();
    expect(b.recent(10)).toEqual([]);
    b.close();
    const c = open(opts);
    expect((await c.accept([{ issue: issue("fp", { startsAt }), destinations: ["slack"] }])).issues).toBe(1);
  });

  it("a dead letter keeps its Issue until it expires, while a delivered sibling goes after retention", async () => {
    const dir = stateDir();
    let now = T0;
    const store = open({ stateDir: dir, retentionMs: DAY, deadRetentionMs: 1.5 * DAY, now: () => now });
    const both = issue("fp-both");
    const later = issue("fp-later");
    await store.accept([{ issue: both, destinations: ["slack", "pagerduty"] }]);
    store.complete(mustTake(store, "slack", T0).delivery, "1700.1");
    store.kill(mustTake(store, "pagerduty", T0).delivery, "invalid routing key");
    now = T0 + DAY + 1;
    await store.accept([{ issue: later, destinations: ["slack"] }]);
    store.complete(mustTake(store, "slack", now).delivery);
    store.prune();
    expect(store.recent(10).map((r) => [r.issue.id, r.deliveries.map((d) => d.destination)])).toEqual([
      [later.id, ["slack"]],
      [both.id, ["pagerduty"]],
    ]);
    now = T0 + 2 * DAY;
    store.prune();
    expect(store.recent(10).map((r) => r.issue.id)).toEqual([later.id]);
    const count = (table: string): number => peek<{ n: number }>(dir, `SELECT count(*) AS n FROM ${table}`)[0]!.n;
    expect([count("issues"), count("deliveries")]).toEqual([1, 1]);
  });

  it("a delivery that finishes after pruning passed its Issue is kept for retention from when it finished", async () => {
    let now = T0;
    const store = open({ stateDir: stateDir(), retentionMs: HOUR, now: () => now });
    const slow = issue("fp-slow");
    await store.accept([{ issue: slow, destinations: ["slack"] }]);
    const d = mustTake(store, "slack", T0);
    store.retry(d.delivery, T0 + 2 * HOUR, "http_503");
    now = T0 + 2 * HOUR;
    store.prune(); // past retention, but waiting: kept
    expect(store.recent(10).map((r) => r.issue.id)).toEqual([slow.id]);
    store.complete(mustTake(store, "slack", now).delivery, "1700.9");
    now = T0 + 3 * HOUR;
    store.prune();
    expect(store.list({ states: ["done"] }).map((x) => x.remoteId)).toEqual(["1700.9"]);
    now = T0 + 3 * HOUR + 1;
    store.prune();
    expect(store.list({ states: ["done"] })).toEqual([]);
    expect(store.recent(10)).toEqual([]);
  });

  it("an Issue whose dead letter an operator dropped is pruned (the owner picks the change up)", async () => {
    const dir = stateDir();
    let now = T0;
    const owner = open({ stateDir: dir, retentionMs: HOUR, now: () => now });
    const gone = issue("fp-gone");
    await owner.accept([{ issue: gone, destinations: ["slack"] }]);
    owner.kill(mustTake(owner, "slack", T0).delivery, "channel_not_found");
    now = T0 + 2 * HOUR;
    owner.prune();
    expect(owner.recent(10).map((r) => r.issue.id)).toEqual([gone.id]);
    const op = open({ stateDir: dir, owner: false });
    expect(op.drop(`${gone.id}/slack`)).toBe(true);
    op.close();
    owner.refresh();
    owner.prune();
    expect(owner.recent(10)).toEqual([]);
  });
});

describe("SqliteDeliveryStore in memory (--ephemeral)", () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it("prunes on its maintenance timer too, so a long run does not pile up finished Issues", async () => {
    vi.useFakeTimers({ toFake: ["setInterval", "clearInterval"] });
    let now = T0;
    const store = open({ stateDir: ":memory:", retentionMs: 60_000, now: () => now });
    const old = issue("fp-old");
    await store.accept([{ issue: old, destinations: ["console"] }]);
    store.complete(mustTake(store, "console", T0).delivery);
    now = T0 + 60_001;
    const fresh = issue("fp-new");
    await store.accept([{ issue: fresh, destinations: ["console"] }]);
    expect(store.recent(10).map((r) => r.issue.id)).toEqual([fresh.id, old.id]);
    vi.advanceTimersByTime(5_000);
    expect(store.recent(10).map((r) => r.issue.id)).toEqual([fresh.id]);
  });
});

describe("SqliteDeliveryStore: when the directory cannot take more", () => {
  it("checkWritable flips unavailableReason, accept then throws StoreUnavailableError, and recovers", async () => {
    const base = tempDir("kubecano-ro-");
    const asRoot = process.getuid?.() === 0;
    // Root ignores directory permissions: run the store as nobody, in a directory nobody owns.
    const ids = asRoot ? { uid: 65534, gid: 65534 } : {};
    if (asRoot) chownSync(base, 65534, 65534);
    const dir = path.join(base, "state");
    const c = child(
      `
      const { chmodSync } = await import("node:fs");
      {
        const dir = process.env.DIR;
        const store = Store.open({ stateDir: dir, maxBacklog: 100 });
        const item = (id) => ({ issue: { id, fingerprint: id, status: "FIRING", startsAt: id, title: id }, destinations: ["a"] });
        const attempt = async (id) => { try { await store.accept([item(id)]); return "accepted"; } catch (e) { return e.name + ": " + e.message; } };
        const out = { before: [store.unavailableReason() ?? null, await attempt("one")] };
        chmodSync(dir, 0o500);
        store.checkWritable();
        out.readOnly = [store.unavailableReason() ?? null, await attempt("two"), store.depth()];
        chmodSync(dir, 0o700);
        store.checkWritable();
        out.after = [store.unavailableReason() ?? null, await attempt("three"), store.depth()];
        store.close();
        process.stdout.write(JSON.stringify(out) + "\\n");
      }
      `,
      { DIR: dir },
      ids,
    );
    const exit = await c.exited;
    expect(exit.code, exit.stderr).toBe(0);
    const out = JSON.parse(exit.stdout) as Record<string, unknown[]>;
    expect(out["before"]).toEqual([null, "accepted"]);
    const reason = `the state directory ${dir} is not writable: EACCES: permission denied, open '${dir}/.kubecano-write-probe'`;
    expect(out["readOnly"]).toEqual([reason, `StoreUnavailableError: ${reason}`, 1]);
    expect(out["after"]).toEqual([null, "accepted", 2]);
  });

  describe("on a full disk (a 512 KiB tmpfs per test)", () => {
    let mnt: string | undefined;
    let mountError: string | undefined;
    beforeEach(() => {
      const d = tempDir("kubecano-tmpfs-");
      mountError = spawnSyncQuiet("mount", ["-t", "tmpfs", "-o", "size=512k", "tmpfs", d]);
      mnt = mountError === undefined ? d : undefined;
    });
    afterEach(() => {
      for (const s of stores.splice(0)) s.close();
      if (mnt !== undefined) {
        const err = spawnSyncQuiet("umount", [mnt]);
        if (err !== undefined) throw new Error(`cannot unmount ${mnt} (a database handle left open?): ${err}`);
      }
    });
    /** The mount point, or skips the test where mounting is not permitted. */
    function tmpfs(ctx: { skip: (note?: string) => void }): string {
      if (mnt === undefined) ctx.skip(`cannot mount a small tmpfs here (${mountError ?? "?"}): needs root with CAP_SYS_ADMIN`);
      return mnt!;
    }

    it("accept throws StoreUnavailableError, keeps none of the batch, and works again once there is room", async (ctx) => {
      const m = tmpfs(ctx);
      const dir = path.join(m, "state");
      const store = open({ stateDir: dir, dedupWindowMs: HOUR });
      const small = issue("fp-small");
      await store.accept([{ issue: small, destinations: ["slack"] }]);
      const filler = path.join(m, "filler");
      fillDisk(filler);
      // Bigger than whatever room the write-ahead log already has.
      const batch = [issue("fp-1"), issue("fp-big", { description: "x".repeat(100_000) })];
      // The background probe has not noticed: this is the write itself failing.
      expect(store.unavailableReason()).toBeUndefined();
      let err: unknown;
      try {
        await store.accept(batch.map((i) => ({ issue: i, destinations: ["slack"] })));
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(StoreUnavailableError);
      expect((err as Error).message).toBe(`cannot write to the state directory ${dir}: database or disk is full (SQLITE_FULL)`);
      // Nothing of the batch: not scheduled, not in the feed.
      expect(store.depth()).toBe(1);
      expect(store.recent(10).map((r) => r.issue.id)).toEqual([small.id]);
      const taken = mustTake(store, "slack", Date.now());
      expect(taken.issue).toEqual(small);
      expect(store.take("slack", Date.now())).toBeUndefined();

      rmSync(filler);
      store.checkWritable();
      expect(store.unavailableReason()).toBeUndefined();
      // Retried by Alertmanager: accepted, not counted as duplicates of the refused batch.
      expect(await store.accept(batch.map((i) => ({ issue: i, destinations: ["slack"] })))).toMatchObject({ issues: 2, deliveries: 2, duplicates: 0 });
      store.complete(taken.delivery);
      expect(store.depth()).toBe(2);
      store.close();
      // And it was written: a reopen finds both.
      expect(open({ stateDir: dir }).depth()).toBe(2);
    });

    it("an outcome lost with a refused batch does not lose its delivery when an operator change reloads the schedule", async (ctx) => {
      const m = tmpfs(ctx);
      const dir = path.join(m, "state");
      const store = open({ stateDir: dir });
      const waiting = issue("fp-retried");
      await store.accept([{ issue: waiting, destinations: ["slack"] }]);
      const d = mustTake(store, "slack", Date.now());
      const filler = path.join(m, "filler");
      fillDisk(filler);
      // Committed with the accept of this turn, which does not fit: the retry is lost, the delivery stays on its first pass on disk.
      store.retry(d.delivery, Date.now(), "http_503");
      await expect(store.accept([{ issue: issue("fp-big", { description: "x".repeat(100_000) }), destinations: ["slack"] }])).rejects.toThrow(StoreUnavailableError);
      rmSync(filler);
      store.checkWritable();
      await store.accept([{ issue: issue("fp-2"), destinations: ["console"] }]);
      store.kill(mustTake(store, "console", Date.now()).delivery, "nope");
      store.flush();
      const op = open({ stateDir: dir, owner: false });
      expect(op.requeueAllDead()).toBe(1);
      op.close();
      store.refresh();
      expect(store.depth()).toBe(2);
      expect(store.take("slack", Date.now() + 1)?.issue).toEqual(waiting);
    });

    it("the write probe notices a full disk: unavailableReason is set and accept refuses before writing", async (ctx) => {
      const m = tmpfs(ctx);
      const store = open({ stateDir: path.join(m, "state") });
      const filler = path.join(m, "filler");
      fillDisk(filler);
      store.checkWritable();
      expect(store.unavailableReason()).toMatch(/^the state directory .* is not writable: ENOSPC/);
      await expect(store.accept([{ issue: issue("fp"), destinations: ["slack"] }])).rejects.toThrow(StoreUnavailableError);
      expect(store.depth()).toBe(0);
      rmSync(filler);
      store.checkWritable();
      expect(store.unavailableReason()).toBeUndefined();
      expect((await store.accept([{ issue: issue("fp"), destinations: ["slack"] }])).deliveries).toBe(1);
    });

    it("opening on a full disk is refused with StoreUnavailableError (and leaves no handle open)", async (ctx) => {
      const m = tmpfs(ctx);
      const dir = path.join(m, "state");
      const first = open({ stateDir: dir });
      await first.accept([{ issue: issue("fp"), destinations: ["slack"] }]);
      first.close();
      // An operator's connection keeps the WAL index in place, so opening gets as far as claiming ownership.
      open({ stateDir: dir, owner: false });
      fillDisk(path.join(m, "filler"));
      let err: unknown;
      try {
        open({ stateDir: dir });
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(StoreUnavailableError);
      expect((err as Error).message).toBe(`cannot open the state directory ${dir}: database or disk is full (SQLITE_FULL)`);
      // afterEach unmounts: it fails if the refused open left the database open.
    });
  });
});

/** Runs a command; undefined on success, else its error output. */
function spawnSyncQuiet(cmd: string, args: string[]): string | undefined {
  const r = spawnSync(cmd, args, { encoding: "utf8" });
  return r.status === 0 ? undefined : (r.stderr || r.error?.message || `exit ${r.status}`).trim();
}

/** Writes to `file` until the file system has no room left. */
function fillDisk(file: string): void {
  const chunk = Buffer.alloc(4096, 1);
  const fd = openSync(file, "a");
  try {
    for (;;) {
      try {
        writeSync(fd, chunk);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === "ENOSPC") break;
        throw e;
      }
    }
    // Whatever is left is smaller than a page: take it too.
    for (;;) {
      try {
        writeSync(fd, Buffer.alloc(1));
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === "ENOSPC") break;
        throw e;
      }
    }
  } finally {
    closeSync(fd);
  }
}
