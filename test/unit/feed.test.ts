/**
 * The live issue feed on the daemon: the hub (engine events → numbered feed
 * events, the resume ring, counters, snapshots), its HTTP endpoints (auth,
 * limit, SSE, resume with Last-Event-ID, slow clients, the stream cap,
 * shutdown) and the SSE parser the clients use. Real sockets on 127.0.0.1.
 */
import { EventEmitter } from "node:events";
import http from "node:http";
import type { AddressInfo } from "node:net";
import net from "node:net";
import { Writable } from "node:stream";
import { afterEach, describe, expect, it } from "vitest";
import { deliverySchema, serverSchema } from "../../src/config/schema.js";
import { createIssue, withEnrichment, type Issue } from "../../src/core/issue.js";
import type { Severity } from "../../src/core/severity.js";
import { subjectFromLabels } from "../../src/core/subject.js";
import { DeliveryEngine, type EngineEvents, type IssueProcessor } from "../../src/delivery/engine.js";
import { MemoryDeliveryStore } from "../../src/delivery/memory-store.js";
import type { IssueRecord } from "../../src/delivery/store.js";
import { DeliveryError, type Destination } from "../../src/destinations/types.js";
import { createLogger, silentLogger } from "../../src/observability/logger.js";
import { Metrics } from "../../src/observability/metrics.js";
import { FeedHub, type HubEvent } from "../../src/server/feed.js";
import { FeedEndpoints } from "../../src/server/feed-http.js";
import type { FeedEvent, IssuesSnapshot } from "../../src/server/feed-protocol.js";
import { createServer, type KubecanoServer } from "../../src/server/http.js";
import { SseParser, type SseMessage } from "../../src/tui/sse.js";

let n = 0;
function issue(opts: { severity?: Severity; title?: string; description?: string } = {}): Issue {
  const k = ++n;
  return createIssue({
    title: opts.title ?? `issue ${k}`,
    ...(opts.description !== undefined ? { description: opts.description } : {}),
    aggregationKey: "KubePodCrashLooping",
    severity: opts.severity ?? "LOW",
    status: "FIRING",
    source: "prometheus",
    type: "alert",
    subject: subjectFromLabels({ namespace: "shop", pod: `api-${k}` }),
    startsAt: new Date(Date.UTC(2026, 0, 1) + k * 1000).toISOString(),
    clusterName: "test",
    fingerprint: `fp${k}`,
  });
}

/** A stand-in for the engine: the hub only listens to its three events. */
function fakeEngine(): EventEmitter<EngineEvents> {
  return new EventEmitter<EngineEvents>();
}

function hubWith(opts: Partial<ConstructorParameters<typeof FeedHub>[0]> = {}, records: IssueRecord[] = []): FeedHub {
  return new FeedHub({ recent: (limit) => records.slice(0, limit), depth: () => 0, ...opts });
}

describe("FeedHub", () => {
  it("turns accepted, processed and delivery events into numbered issue, update and delivery events", () => {
    const hub = hubWith();
    const engine = fakeEngine();
    hub.attach(engine);
    const got: HubEvent[] = [];
    const sub = hub.subscribe(undefined, (e) => got.push(e));
    expect(sub.ok).toBe(true);

    const a = issue({ severity: "HIGH" });
    const b = issue();
    engine.emit("accepted", [a, b], [{ destinations: ["slack", "console"] }, { destinations: ["@process"] }]);
    const enriched = withEnrichment(b, { title: "Logs", blocks: [{ type: "markdown", text: "boom" }] });
    engine.emit("processed", enriched, ["console"], undefined);
    engine.emit("delivery", { issueId: a.id, fingerprint: a.fingerprint, destination: "slack", outcome: "retry", attempt: 1, error: "http 503", code: "http_503", nextAttemptAt: 1234 });
    engine.emit("delivery", { issueId: a.id, fingerprint: a.fingerprint, destination: "slack", outcome: "success", attempt: 2 });

    expect(got.map((e) => e.event.type)).toEqual(["issue", "issue", "update", "delivery", "delivery"]);
    expect(got.map((e) => e.seq)).toEqual([1, 2, 3, 4, 5]);
    const [first, second, update, retry] = got.map((e) => e.event);
    expect(first).toMatchObject({ type: "issue", id: `${hub.epoch}-1`, data: { stage: "routed", deliveries: [{ destination: "slack", state: "pending" }, { destination: "console", state: "pending" }] } });
    expect(second).toMatchObject({ type: "issue", data: { stage: "processing", deliveries: [] } });
    expect(update).toMatchObject({ type: "update", data: { id: b.id, stage: "routed", deliveries: [{ destination: "console", state: "pending" }] } });
    expect((update as Extract<FeedEvent, { type: "update" }>).data.issue.enrichments).toHaveLength(1);
    expect(retry).toMatchObject({ type: "delivery", data: { issueId: a.id, destination: "slack", state: "retrying", attempts: 1, error: "http 503", code: "http_503", nextAttemptAt: 1234 } });
    // Each frame is one complete SSE event carrying its id.
    expect(got[0]!.frame).toMatch(new RegExp(`^id: ${hub.epoch}-1\nevent: issue\ndata: \\{.*\\}\n\n$`));

    expect(hub.counters()).toEqual({ received: 2, sent: 1, failed: 0, retried: 1, queued: 0, bySeverity: { HIGH: 1, LOW: 1, INFO: 0, DEBUG: 0 } });
  });

  it("marks a silenced Issue as such", () => {
    const hub = hubWith();
    const engine = fakeEngine();
    hub.attach(engine);
    const got: HubEvent[] = [];
    hub.subscribe(undefined, (e) => got.push(e));
    const a = issue();
    engine.emit("accepted", [a], [{ destinations: [], silenced: "maintenance window" }]);
    expect(got[0]!.event).toMatchObject({ type: "issue", data: { stage: "silenced", silenced: "maintenance window", deliveries: [] } });
  });

  it("resumes after a Last-Event-ID with exactly the events after it", () => {
    const hub = hubWith();
    const engine = fakeEngine();
    hub.attach(engine);
    const first: HubEvent[] = [];
    const s1 = hub.subscribe(undefined, (e) => first.push(e));
    for (let i = 0; i < 5; i++) engine.emit("accepted", [issue()], [{ destinations: ["console"] }]);
    if (!s1.ok) throw new Error("refused");
    s1.unsubscribe();
    const lastSeen = first[2]!.event as { id: string };
    for (let i = 0; i < 3; i++) engine.emit("accepted", [issue()], [{ destinations: ["console"] }]);

    const live: HubEvent[] = [];
    const s2 = hub.subscribe(lastSeen.id, (e) => live.push(e));
    if (!s2.ok) throw new Error(s2.reason);
    expect(s2.backlog.map((e) => e.seq)).toEqual([4, 5, 6, 7, 8]);
    engine.emit("accepted", [issue()], [{ destinations: ["console"] }]);
    expect(live.map((e) => e.seq)).toEqual([9]);
    // Up to date: nothing to replay.
    const s3 = hub.subscribe(hub.cursor(), () => undefined);
    expect(s3.ok && s3.backlog.length).toBe(0);
  });

  it("refuses to resume from another process's id, a future id, an evicted one or garbage", () => {
    const hub = hubWith({ ringEvents: 3 });
    const engine = fakeEngine();
    hub.attach(engine);
    hub.subscribe(undefined, () => undefined);
    for (let i = 0; i < 6; i++) engine.emit("accepted", [issue()], [{ destinations: ["console"] }]);
    const other = hubWith();
    expect(hub.subscribe(`${other.epoch}-3`, () => undefined)).toMatchObject({ ok: false, reason: expect.stringMatching(/restarted/) });
    expect(hub.subscribe(`${hub.epoch}-99`, () => undefined)).toMatchObject({ ok: false });
    expect(hub.subscribe("not an id", () => undefined)).toMatchObject({ ok: false, reason: expect.stringMatching(/unreadable/) });
    // Events 4, 5 and 6 are kept: resuming after 3 works, after 2 does not (event 3 is gone).
    const ok = hub.subscribe(`${hub.epoch}-3`, () => undefined);
    expect(ok.ok && ok.backlog.map((e) => e.seq)).toEqual([4, 5, 6]);
    expect(hub.subscribe(`${hub.epoch}-2`, () => undefined)).toMatchObject({ ok: false, reason: expect.stringMatching(/too old/) });
  });

  it("bounds the ring by bytes too", () => {
    const hub = hubWith({ ringEvents: 1000, ringBytes: 50_000 });
    const engine = fakeEngine();
    hub.attach(engine);
    hub.subscribe(undefined, () => undefined);
    const start = hub.cursor();
    for (let i = 0; i < 20; i++) engine.emit("accepted", [issue({ description: "x".repeat(10_000) })], [{ destinations: ["console"] }]);
    // 20 events of ~10 kB cannot all be kept in 50 kB: resuming from the start is refused, from near the end is not.
    expect(hub.subscribe(start, () => undefined).ok).toBe(false);
    const near = hub.subscribe(`${hub.epoch}-18`, () => undefined);
    expect(near.ok && near.backlog.map((e) => e.seq)).toEqual([19, 20]);
  });

  it("keeps no events while nobody uses the feed, but keeps numbering them", () => {
    let now = 1_000_000;
    const hub = hubWith({ now: () => now, keepAfterLastClientMs: 60_000 });
    const engine = fakeEngine();
    hub.attach(engine);
    engine.emit("accepted", [issue(), issue()], [{ destinations: ["console"] }, { destinations: ["console"] }]);
    expect(hub.cursor()).toBe(`${hub.epoch}-2`);
    expect(hub.counters().received).toBe(2);

    // A snapshot marks the feed as used: the events after it are kept for the client's stream.
    const snap = hub.snapshot(10);
    engine.emit("accepted", [issue()], [{ destinations: ["console"] }]);
    const r = hub.subscribe(snap.cursor, () => undefined);
    expect(r.ok && r.backlog.map((e) => e.seq)).toEqual([3]);
    if (!r.ok) return;
    r.unsubscribe();
    // Long after the last client left: nothing is kept, and an old id cannot resume.
    now += 61_000;
    engine.emit("accepted", [issue()], [{ destinations: ["console"] }]);
    expect(hub.subscribe(`${hub.epoch}-3`, () => undefined)).toMatchObject({ ok: false });
  });

  it("sends counters only when they changed", () => {
    let depth = 0;
    const hub = hubWith({ depth: () => depth });
    const got: HubEvent[] = [];
    hub.subscribe(undefined, (e) => got.push(e));
    hub.broadcastCounters();
    hub.broadcastCounters();
    depth = 3;
    hub.broadcastCounters();
    expect(got.map((e) => e.event)).toEqual([
      { type: "counters", data: expect.objectContaining({ queued: 0 }) },
      { type: "counters", data: expect.objectContaining({ queued: 3 }) },
    ]);
    // Counters are not numbered: they carry no id and are not replayed.
    expect(got[0]!.frame).toMatch(/^event: counters\ndata: /);
    hub.close();
  });

  it("builds snapshots from the store's records with each delivery's state", () => {
    const a = issue();
    const b = issue();
    const c = issue();
    const info = (destination: string, state: "pending" | "done" | "dead", attempts: number, extra: Record<string, unknown> = {}) => ({
      id: `${destination}`,
      seq: 1,
      issueId: a.id,
      destination,
      state,
      attempts,
      createdAt: 0,
      fingerprint: a.fingerprint,
      ...extra,
    });
    const records: IssueRecord[] = [
      { issue: a, deliveries: [info("slack", "done", 1, { finishedAt: 50 }), info("pd", "dead", 3, { lastError: "invalid routing key", finishedAt: 60 }), info("hook", "pending", 2, { lastError: "503", nextAttemptAt: 99 }), info("file", "pending", 0)] },
      { issue: b, deliveries: [] },
      { issue: c, deliveries: [] },
    ];
    const hub = hubWith({ isProcessing: (i) => i.id === b.id }, records);
    const engine = fakeEngine();
    hub.attach(engine);
    engine.emit("accepted", [c], [{ destinations: [], silenced: "quiet hours" }]);
    const snap = hub.snapshot(10);
    expect(snap.cursor).toBe(hub.cursor());
    expect(snap.issues.map((f) => f.stage)).toEqual(["routed", "processing", "silenced"]);
    expect(snap.issues[2]!.silenced).toBe("quiet hours");
    expect(snap.issues[0]!.deliveries).toEqual([
      { destination: "slack", state: "sent", attempts: 2, at: 50 },
      { destination: "pd", state: "failed", attempts: 3, error: "invalid routing key", at: 60 },
      { destination: "hook", state: "retrying", attempts: 2, error: "503", nextAttemptAt: 99 },
      { destination: "file", state: "pending", attempts: 0 },
    ]);
    expect(hub.snapshot(1).issues).toHaveLength(1);
  });

  it("follows a real delivery engine: pure workflow enrichments, the processing stage, outcomes", async () => {
    const store = new MemoryDeliveryStore({ maxBacklog: 100 });
    const sent: string[] = [];
    const ok: Destination = { name: "ok", type: "fake", render: () => ({ kind: "text", body: "" }), send: async (i) => {
      sent.push(i.id);
      return {};
    } };
    const bad: Destination = {
      name: "bad",
      type: "fake",
      render: () => ({ kind: "text", body: "" }),
      send: async () => {
        throw new DeliveryError("channel_not_found", { retryable: false, code: "channel_not_found", hint: "invite the bot" });
      },
    };
    const processor: IssueProcessor = {
      isPure: (i) => i.title !== "needs the cluster",
      process: async (i) => ({ issue: withEnrichment(i, { title: "Pure", blocks: [{ type: "markdown", text: "added before the 202" }] }), destinations: ["ok", "bad"] }),
      fallback: (i) => ({ issue: i, destinations: ["ok"] }),
    };
    const engine = new DeliveryEngine({
      store,
      destinations: [ok, bad],
      config: deliverySchema.parse({}),
      log: silentLogger(),
      processor,
    });
    const hub = new FeedHub({ recent: (l) => store.recent(l), depth: () => store.depth() });
    hub.attach(engine);
    const got: FeedEvent[] = [];
    hub.subscribe(undefined, (e) => got.push(e.event));
    try {
      engine.start();
      const pure = issue();
      const slow = issue({ title: "needs the cluster" });
      await engine.submit([pure, slow]);
      await engine.drain(10_000);
      const issues = got.filter((e) => e.type === "issue");
      expect(issues.map((e) => e.data.stage)).toEqual(["routed", "processing"]);
      // The Issue as stored: the pure workflow's enrichment is in the very first event.
      expect(issues[0]!.data.issue.enrichments.map((e) => e.title)).toEqual(["Pure"]);
      expect(got.filter((e) => e.type === "update").map((e) => e.data.id)).toEqual([slow.id]);
      const outcomes = got.filter((e) => e.type === "delivery").map((e) => `${e.data.issueId === pure.id ? "pure" : "slow"}:${e.data.destination}:${e.data.state}`);
      expect(outcomes.sort()).toEqual(["pure:bad:failed", "pure:ok:sent", "slow:bad:failed", "slow:ok:sent"]);
      const failed = got.find((e) => e.type === "delivery" && e.data.state === "failed");
      expect(failed).toMatchObject({ data: { code: "channel_not_found", hint: "invite the bot" } });
      expect(hub.counters()).toMatchObject({ received: 2, sent: 2, failed: 2, queued: 0 });
      // The snapshot agrees with the events.
      const snap = hub.snapshot(10);
      expect(snap.issues.map((f) => f.deliveries.map((d) => `${d.destination}:${d.state}`).sort())).toEqual([
        ["bad:failed", "ok:sent"],
        ["bad:failed", "ok:sent"],
      ]);
    } finally {
      engine.stop();
      hub.close();
    }
  });
});

// ───────────────────────────── HTTP ─────────────────────────────

const TOKEN = "feed-test-token-0123456789";
const servers: KubecanoServer[] = [];
const plain: http.Server[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close(100)));
  for (const s of plain.splice(0)) {
    s.closeAllConnections();
    s.close();
  }
});

interface Daemon {
  readonly url: string;
  readonly hub: FeedHub;
  readonly engine: EventEmitter<EngineEvents>;
  readonly server: KubecanoServer;
  readonly records: IssueRecord[];
  readonly logs: () => string;
}

/** The real webhook server with a hub fed by a stand-in engine. */
async function daemon(server: Record<string, unknown> = { auth: { bearerToken: TOKEN } }): Promise<Daemon> {
  const records: IssueRecord[] = [];
  const hub = new FeedHub({ recent: (l) => records.slice(0, l), depth: () => 0 });
  const engine = fakeEngine();
  hub.attach(engine);
  engine.on("accepted", (issues) => {
    for (const i of issues) records.unshift({ issue: i, deliveries: [] });
  });
  let log = "";
  const s = createServer({
    config: serverSchema.parse({ host: "127.0.0.1", port: 0, ...server }),
    log: createLogger({ stream: new Writable({ write: (c: Buffer, _e, cb) => ((log += c.toString()), cb()) }), format: "json" }),
    metrics: new Metrics({ defaultMetrics: false }),
    version: "test",
    ingestAlertmanager: async () => ({ kind: "accepted", alerts: 0, issues: 0, deliveries: 0, duplicates: 0 }),
    feed: hub,
  });
  servers.push(s);
  const addr = await s.listen();
  return { url: `http://127.0.0.1:${addr.port}`, hub, engine, server: s, records, logs: () => log };
}

const auth = { authorization: `Bearer ${TOKEN}` };

/** An SSE connection read with the TUI's parser. */
interface Stream {
  readonly messages: SseMessage[];
  readonly comments: () => number;
  readonly status: number;
  readonly ended: Promise<"end" | "error">;
  close(): void;
  waitFor(count: number, what?: (m: SseMessage) => boolean): Promise<SseMessage[]>;
}

function openStream(url: string, headers: Record<string, string> = {}): Promise<Stream> {
  return new Promise((resolve, reject) => {
    const req = http.get(`${url}/api/issues/stream`, { headers }, (res) => {
      const messages: SseMessage[] = [];
      let comments = 0;
      const waiters = new Set<() => void>();
      const parser = new SseParser((m) => {
        messages.push(m);
        for (const w of [...waiters]) w();
      });
      res.setEncoding("utf8");
      res.on("data", (s: string) => {
        comments += s.split("\n").filter((l) => l.startsWith(":")).length;
        parser.push(s);
      });
      const ended = new Promise<"end" | "error">((r) => {
        res.once("end", () => r("end"));
        res.once("error", () => r("error"));
        res.once("aborted", () => r("error"));
      });
      resolve({
        messages,
        comments: () => comments,
        status: res.statusCode ?? 0,
        ended,
        close: () => req.destroy(),
        waitFor: (count, what = () => true) =>
          new Promise((done, fail) => {
            const check = (): void => {
              const hits = messages.filter(what);
              if (hits.length >= count) {
                waiters.delete(check);
                clearTimeout(t);
                done(hits);
              }
            };
            const t = setTimeout(() => {
              waiters.delete(check);
              fail(new Error(`timed out waiting for ${count} events; got ${JSON.stringify(messages.map((m) => m.event))}`));
            }, 20_000);
            waiters.add(check);
            check();
          }),
      });
    });
    req.on("error", reject);
  });
}

describe("GET /api/issues and /api/issues/stream", () => {
  it("require the webhook's credentials", async () => {
    const d = await daemon();
    for (const path of ["/api/issues", "/api/issues/stream"]) {
      const none = await fetch(`${d.url}${path}`);
      expect(none.status).toBe(401);
      expect(none.headers.get("www-authenticate")).toMatch(/^Bearer/);
      expect(((await none.json()) as { error: string }).error).toMatch(/authentication required/);
      const wrong = await fetch(`${d.url}${path}`, { headers: { authorization: "Bearer wrong-token-0123456789" } });
      expect(wrong.status).toBe(401);
      await wrong.body?.cancel();
    }
    const ok = await fetch(`${d.url}/api/issues`, { headers: auth });
    expect(ok.status).toBe(200);
    await ok.body?.cancel();
    const s = await openStream(d.url, auth);
    expect(s.status).toBe(200);
    s.close();
  });

  it("are open without server.auth, and listed at /", async () => {
    const d = await daemon({});
    expect((await fetch(`${d.url}/api/issues`)).status).toBe(200);
    const root = (await (await fetch(`${d.url}/`)).json()) as { endpoints: string[] };
    expect(root.endpoints).toEqual(expect.arrayContaining(["GET /api/issues", "GET /api/issues/stream"]));
  });

  it("list recent Issues newest first with a cursor; limit defaults to 100, is capped at 1000 and checked", async () => {
    const d = await daemon();
    const issues = Array.from({ length: 150 }, () => issue());
    d.engine.emit("accepted", issues, issues.map(() => ({ destinations: ["console"] })));
    const res = await fetch(`${d.url}/api/issues`, { headers: auth });
    expect(res.headers.get("content-type")).toMatch(/application\/json/);
    const body = (await res.json()) as IssuesSnapshot;
    expect(body.issues).toHaveLength(100);
    expect(body.issues[0]!.issue.id).toBe(issues[149]!.id);
    expect(body.cursor).toBe(`${d.hub.epoch}-150`);
    expect(body.counters.received).toBe(150);

    const two = (await (await fetch(`${d.url}/api/issues?limit=2`, { headers: auth })).json()) as IssuesSnapshot;
    expect(two.issues.map((f) => f.issue.id)).toEqual([issues[149]!.id, issues[148]!.id]);
    const many = (await (await fetch(`${d.url}/api/issues?limit=5000`, { headers: auth })).json()) as IssuesSnapshot;
    expect(many.issues).toHaveLength(150);
    for (const bad of ["0", "-1", "abc", "1.5", ""]) {
      const r = await fetch(`${d.url}/api/issues?limit=${bad}`, { headers: auth });
      expect(r.status, bad).toBe(400);
      expect(((await r.json()) as { error: string }).error).toMatch(/limit must be a whole number from 1 to 1000/);
    }
    // The server is still fine after bad input.
    expect((await fetch(`${d.url}/api/issues?limit=1`, { headers: auth })).status).toBe(200);
    expect((await fetch(`${d.url}/api/issues/stream`, { method: "POST", headers: auth })).status).toBe(405);
  });

  it("stream events as SSE and resume after Last-Event-ID without gaps or repeats", async () => {
    const d = await daemon();
    const s1 = await openStream(d.url, auth);
    const counters = await s1.waitFor(1, (m) => m.event === "counters");
    expect(JSON.parse(counters[0]!.data)).toMatchObject({ received: 0 });
    for (let i = 0; i < 3; i++) d.engine.emit("accepted", [issue()], [{ destinations: ["console"] }]);
    const first = await s1.waitFor(3, (m) => m.event === "issue");
    expect(first.map((m) => m.lastEventId)).toEqual([1, 2, 3].map((k) => `${d.hub.epoch}-${k}`));
    s1.close();
    await eventuallyTrue(() => d.hub.clients() === 0);

    // Missed while away.
    const missed = [issue(), issue()];
    d.engine.emit("accepted", missed, missed.map(() => ({ destinations: ["console"] })));
    const s2 = await openStream(d.url, { ...auth, "last-event-id": first[2]!.lastEventId });
    const later = issue();
    d.engine.emit("accepted", [later], [{ destinations: ["console"] }]);
    const resumed = await s2.waitFor(3, (m) => m.event === "issue");
    expect(resumed.map((m) => (JSON.parse(m.data) as { issue: Issue }).issue.id)).toEqual([missed[0]!.id, missed[1]!.id, later.id]);
    expect(resumed.map((m) => m.lastEventId)).toEqual([4, 5, 6].map((k) => `${d.hub.epoch}-${k}`));
    s2.close();
  });

  it("answer an id they cannot resume from with a reset event and end the stream", async () => {
    const d = await daemon();
    const s = await openStream(d.url, { ...auth, "last-event-id": "0badc0de-42" });
    const reset = await s.waitFor(1, (m) => m.event === "reset");
    expect(JSON.parse(reset[0]!.data)).toEqual({ reason: expect.stringMatching(/restarted/) });
    expect(await s.ended).toBe("end");
  });

  it("end open streams when the server shuts down", async () => {
    const d = await daemon();
    const s = await openStream(d.url, auth);
    await s.waitFor(1);
    servers.splice(servers.indexOf(d.server), 1);
    await d.server.close(60_000);
    expect(await s.ended).toBe("end");
  });
});

describe("FeedEndpoints on its own", () => {
  async function mount(opts: Partial<ConstructorParameters<typeof FeedEndpoints>[0]> = {}): Promise<{ url: string; hub: FeedHub; engine: EventEmitter<EngineEvents>; endpoints: FeedEndpoints; logs: () => string }> {
    const hub = hubWith();
    const engine = fakeEngine();
    hub.attach(engine);
    let log = "";
    const endpoints = new FeedEndpoints({ hub, log: createLogger({ stream: new Writable({ write: (c: Buffer, _e, cb) => ((log += c.toString()), cb()) }), format: "json" }), ...opts });
    const server = http.createServer((req, res) => {
      const reply = endpoints.stream(req, res, new URL(req.url ?? "/", "http://x").searchParams);
      if (reply !== undefined) {
        res.writeHead(reply.status, { "content-type": "application/json", ...reply.headers });
        res.end(JSON.stringify(reply.body));
      }
    });
    plain.push(server);
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, hub, engine, endpoints, logs: () => log };
  }

  it("drops a client that stops reading, and its memory with it", async () => {
    const m = await mount({ maxBufferedBytes: 256 * 1024 });
    // A raw socket that sends the request and then never reads.
    const socket = net.connect(Number(new URL(m.url).port), "127.0.0.1");
    await new Promise<void>((r) => socket.once("connect", r));
    socket.write("GET /api/issues/stream HTTP/1.1\r\nHost: x\r\n\r\n");
    socket.pause();
    await eventuallyTrue(() => m.endpoints.open() === 1);
    const closed = new Promise<void>((r) => socket.once("close", r));
    socket.on("error", () => undefined);
    // ~40 MB of events: far more than the kernel's socket buffers take.
    const big = "x".repeat(100_000);
    for (let i = 0; i < 400 && m.endpoints.open() > 0; i++) {
      m.engine.emit("accepted", [issue({ description: big })], [{ destinations: ["console"] }]);
      await new Promise((r) => setImmediate(r));
    }
    expect(m.endpoints.open()).toBe(0);
    expect(m.hub.clients()).toBe(0);
    expect(m.logs()).toMatch(/dropped an issue feed client that does not keep up/);
    socket.resume();
    await closed;
  });

  it("caps concurrent streams", async () => {
    const m = await mount({ maxStreams: 2 });
    const a = await openStream(m.url);
    const b = await openStream(m.url);
    const c = await fetch(`${m.url}/api/issues/stream`);
    expect(c.status).toBe(503);
    expect(c.headers.get("retry-after")).toBe("5");
    expect(((await c.json()) as { error: string }).error).toMatch(/too many issue feed streams/);
    a.close();
    await eventuallyTrue(() => m.endpoints.open() === 1);
    const d = await openStream(m.url);
    expect(d.status).toBe(200);
    b.close();
    d.close();
  });

  it("sends heartbeat comments on a quiet stream", async () => {
    const m = await mount({ heartbeatMs: 20 });
    const s = await openStream(m.url);
    await eventuallyTrue(() => s.comments() >= 2);
    s.close();
  });

  it("sends a reset instead of a backlog larger than a client may leave unread", async () => {
    const m = await mount({ maxBufferedBytes: 64 * 1024 });
    const s1 = await openStream(m.url);
    m.engine.emit("accepted", [issue()], [{ destinations: ["console"] }]);
    const [first] = await s1.waitFor(1, (x) => x.event === "issue");
    s1.close();
    for (let i = 0; i < 20; i++) m.engine.emit("accepted", [issue({ description: "y".repeat(10_000) })], [{ destinations: ["console"] }]);
    const s2 = await openStream(m.url, { "last-event-id": first!.lastEventId });
    const [reset] = await s2.waitFor(1, (x) => x.event === "reset");
    expect(JSON.parse(reset!.data)).toEqual({ reason: "too many events since then" });
    expect(m.hub.clients()).toBe(0);
  });
});

describe("SseParser", () => {
  const STREAM = "retry: 1000\n\n: comment\nid: e-1\nevent: issue\ndata: {\"a\":1}\n\nevent: counters\ndata: line1\ndata: line2\n\nid: e-2\ndata: plain\r\n\r\nevent: empty\n\nid: e-3\revent: delivery\rdata:x\r\r";

  function parseAll(chunks: string[]): { messages: SseMessage[]; retry: number | undefined } {
    const messages: SseMessage[] = [];
    const p = new SseParser((m) => messages.push(m));
    for (const c of chunks) p.push(c);
    return { messages, retry: p.retry };
  }

  it("reads events, ids, multi-line data, comments, retry and every line ending", () => {
    const { messages, retry } = parseAll([STREAM]);
    expect(retry).toBe(1000);
    expect(messages).toEqual([
      { event: "issue", data: '{"a":1}', lastEventId: "e-1", hasId: true },
      { event: "counters", data: "line1\nline2", lastEventId: "e-1", hasId: false },
      { event: "message", data: "plain", lastEventId: "e-2", hasId: true },
      { event: "delivery", data: "x", lastEventId: "e-3", hasId: true },
    ]);
  });

  it("gives the same events however the text is cut", () => {
    const whole = parseAll([STREAM]).messages;
    for (let i = 1; i < STREAM.length; i++) {
      expect(parseAll([STREAM.slice(0, i), STREAM.slice(i)]).messages, `cut at ${i}`).toEqual(whole);
    }
    expect(parseAll([...STREAM]).messages).toEqual(whole);
  });

  it("does not dispatch an event that is not complete", () => {
    expect(parseAll(["id: 1\nevent: issue\ndata: {}\n"]).messages).toEqual([]);
  });
});

async function eventuallyTrue(check: () => boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 10));
  }
}
