/**
 * The TUI's state outside React: the IssueStore on its own, the HTTP feed
 * client against the real feed endpoints on 127.0.0.1 (reconnect, resume with
 * Last-Event-ID without duplicates, reset after a daemon restart, backoff,
 * idle connections, credentials), and the line output used without a terminal.
 */
import { Chalk } from "chalk";
import { EventEmitter } from "node:events";
import http from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { PassThrough } from "node:stream";
import { afterEach, describe, expect, it } from "vitest";
import { serverSchema } from "../../src/config/schema.js";
import { createIssue, type Issue } from "../../src/core/issue.js";
import type { Severity } from "../../src/core/severity.js";
import { subjectFromLabels } from "../../src/core/subject.js";
import type { EngineEvents } from "../../src/delivery/engine.js";
import { silentLogger } from "../../src/observability/logger.js";
import { Metrics } from "../../src/observability/metrics.js";
import { FeedHub } from "../../src/server/feed.js";
import type { FeedCounters, FeedEvent, FeedIssue, IssuesSnapshot } from "../../src/server/feed-protocol.js";
import { createServer, type KubecanoServer } from "../../src/server/http.js";
import { feedEndpoints, HttpFeedClient, type ConnectionState, type FeedSource, type FeedSourceEvents } from "../../src/tui/feed-client.js";
import { followLines, issueLine, printSnapshot } from "../../src/tui/lines.js";
import { IssueStore } from "../../src/tui/store.js";

let n = 0;
function issue(o: { severity?: Severity; status?: "FIRING" | "RESOLVED"; title?: string; at?: number } = {}): Issue {
  const k = ++n;
  return createIssue(
    {
      title: o.title ?? `issue ${k}`,
      aggregationKey: "KubePodCrashLooping",
      severity: o.severity ?? "LOW",
      status: o.status ?? "FIRING",
      source: "prometheus",
      type: "alert",
      subject: subjectFromLabels({ namespace: "shop", pod: `api-${k}`, team: "payments" }),
      startsAt: "2026-01-01T00:00:00Z",
      clusterName: "test",
      fingerprint: `fp${k}`,
    },
    new Date(o.at ?? Date.UTC(2026, 0, 1, 0, 0, k)),
  );
}

const COUNTERS: FeedCounters = { received: 0, sent: 0, failed: 0, retried: 0, queued: 0, bySeverity: { HIGH: 0, LOW: 0, INFO: 0, DEBUG: 0 } };
const routed = (i: Issue, destinations = ["slack"]): FeedIssue => ({ issue: i, stage: "routed", deliveries: destinations.map((d) => ({ destination: d, state: "pending", attempts: 0 })) });
const snapshot = (issues: FeedIssue[], cursor = "e-0"): IssuesSnapshot => ({ cursor, issues, counters: COUNTERS });

describe("IssueStore", () => {
  it("keeps Issues newest first, whatever order they arrive in", () => {
    const store = new IssueStore();
    const [a, b, c, d] = [issue(), issue(), issue(), issue()];
    store.applySnapshot(snapshot([routed(c!), routed(a!)]));
    store.applyEvent({ type: "issue", id: "e-1", data: routed(d!) });
    store.applyEvent({ type: "issue", id: "e-2", data: routed(b!) });
    expect(store.list().map((r) => r.issue.id)).toEqual([d!.id, c!.id, b!.id, a!.id]);
  });

  it("applies updates and delivery outcomes, and ignores repeats and unknown Issues", () => {
    const store = new IssueStore();
    const a = issue();
    let changes = 0;
    store.on("change", () => changes++);
    store.applyEvent({ type: "issue", id: "e-1", data: { issue: a, stage: "processing", deliveries: [] } });
    expect(changes).toBe(1);
    // The same event again (a resumed stream overlapping a snapshot): no change.
    store.applyEvent({ type: "issue", id: "e-1", data: { issue: a, stage: "processing", deliveries: [] } });
    expect(changes).toBe(1);
    const enriched = { ...a, enrichments: [{ title: "Logs", blocks: [] }] };
    store.applyEvent({ type: "update", id: "e-2", data: { id: a.id, issue: enriched, stage: "routed", deliveries: [{ destination: "slack", state: "pending", attempts: 0 }, { destination: "pd", state: "pending", attempts: 0 }] } });
    expect(store.get(a.id)).toMatchObject({ stage: "routed", issue: { enrichments: [{ title: "Logs" }] } });
    store.applyEvent({ type: "delivery", id: "e-3", data: { issueId: a.id, destination: "slack", state: "retrying", attempts: 1, error: "503" } });
    store.applyEvent({ type: "delivery", id: "e-4", data: { issueId: a.id, destination: "slack", state: "sent", attempts: 2 } });
    const before = changes;
    store.applyEvent({ type: "delivery", id: "e-4", data: { issueId: a.id, destination: "slack", state: "sent", attempts: 2 } });
    store.applyEvent({ type: "delivery", id: "e-9", data: { issueId: "unknown", destination: "slack", state: "sent", attempts: 1 } });
    expect(changes).toBe(before);
    expect(store.get(a.id)!.deliveries).toEqual([
      { destination: "slack", state: "sent", attempts: 2 },
      { destination: "pd", state: "pending", attempts: 0 },
    ]);
    // An older copy of the record (a repeat from before the update) does not undo anything.
    store.applyEvent({ type: "issue", id: "e-1", data: { issue: a, stage: "processing", deliveries: [] } });
    expect(store.get(a.id)).toMatchObject({ stage: "routed", issue: { enrichments: [{ title: "Logs" }] } });
    expect(store.get(a.id)!.deliveries.map((d) => d.state)).toEqual(["sent", "pending"]);
  });

  it("changes only for new counters and connection states", () => {
    const store = new IssueStore();
    let changes = 0;
    store.on("change", () => changes++);
    store.applyEvent({ type: "counters", data: COUNTERS });
    store.applyEvent({ type: "counters", data: { ...COUNTERS } });
    store.applyEvent({ type: "counters", data: { ...COUNTERS, queued: 1 } });
    store.setConnection({ kind: "live", since: 1 });
    store.setConnection({ kind: "live", since: 1 });
    store.applyEvent({ type: "reset", data: { reason: "x" } });
    expect(changes).toBe(3);
    expect(store.counters?.queued).toBe(1);
  });

  it("keeps at most maxIssues, dropping the oldest", () => {
    const store = new IssueStore({ maxIssues: 3 });
    const all = Array.from({ length: 5 }, () => issue());
    for (const [k, i] of all.entries()) store.applyEvent({ type: "issue", id: `e-${k}`, data: routed(i) });
    expect(store.size).toBe(3);
    expect(store.list().map((r) => r.issue.title)).toEqual(all.slice(2).reverse().map((i) => i.title));
  });

  it("pauses: the list stays as it was, new Issues are counted, updates still apply", () => {
    const store = new IssueStore();
    const a = issue();
    store.applyEvent({ type: "issue", id: "e-1", data: routed(a) });
    store.pause();
    store.applyEvent({ type: "issue", id: "e-2", data: routed(issue()) });
    store.applyEvent({ type: "delivery", id: "e-3", data: { issueId: a.id, destination: "slack", state: "sent", attempts: 1 } });
    expect(store.list().map((r) => r.issue.id)).toEqual([a.id]);
    expect(store.list()[0]!.deliveries[0]!.state).toBe("sent");
    expect(store.newWhilePaused).toBe(1);
    store.resume();
    expect(store.list()).toHaveLength(2);
    expect(store.newWhilePaused).toBe(0);
  });

  it("filters by words (all must match), minimum severity and firing, and memoises", () => {
    const store = new IssueStore();
    const high = issue({ severity: "HIGH", title: "Checkout is down" });
    const low = issue({ severity: "LOW", title: "Disk almost full" });
    const resolved = issue({ severity: "HIGH", status: "RESOLVED", title: "Checkout was slow" });
    for (const [k, i] of [high, low, resolved].entries()) store.applyEvent({ type: "issue", id: `e-${k}`, data: routed(i, k === 1 ? ["pagerduty"] : ["slack"]) });
    const titles = (f: Parameters<IssueStore["list"]>[0]): string[] => store.list(f).map((r) => r.issue.title);
    expect(titles({ text: "checkout", firingOnly: false })).toEqual(["Checkout was slow", "Checkout is down"]);
    expect(titles({ text: "CHECKOUT down", firingOnly: false })).toEqual(["Checkout is down"]);
    expect(titles({ text: "pagerduty", firingOnly: false })).toEqual(["Disk almost full"]);
    expect(titles({ text: "team=payments", firingOnly: true })).toEqual(["Disk almost full", "Checkout is down"]);
    expect(titles({ text: "", minSeverity: "HIGH", firingOnly: true })).toEqual(["Checkout is down"]);
    const f = { text: "checkout", firingOnly: false };
    expect(store.list(f)).toBe(store.list({ ...f }));
  });

  it("a snapshot replaces what it lists (after a reset) and keeps older Issues", () => {
    const store = new IssueStore();
    const old = issue();
    const a = issue();
    store.applyEvent({ type: "issue", id: "e-1", data: routed(old) });
    store.applyEvent({ type: "issue", id: "e-2", data: { ...routed(a), deliveries: [{ destination: "slack", state: "sent", attempts: 1 }] } });
    // The daemon restarted and retried the delivery by hand: its snapshot is the truth.
    store.applySnapshot(snapshot([{ ...routed(a), deliveries: [{ destination: "slack", state: "pending", attempts: 0 }] }]));
    expect(store.get(a.id)!.deliveries[0]!.state).toBe("pending");
    expect(store.size).toBe(2);
  });
});

// ───────────────────────────── the HTTP client ─────────────────────────────

const TOKEN = "tui-client-token-0123456789";

interface Daemon {
  url: string;
  port: number;
  hub: FeedHub;
  engine: EventEmitter<EngineEvents>;
  server: KubecanoServer;
  records: { issue: Issue; deliveries: [] }[];
  /** Cuts every open connection (a network drop). */
  drop(): void;
  requests: http.IncomingHttpHeaders[];
}

const servers: KubecanoServer[] = [];
const clients: HttpFeedClient[] = [];
const raw: http.Server[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) c.stop();
  await Promise.all(servers.splice(0).map((s) => s.close(100)));
  for (const s of raw.splice(0)) {
    s.closeAllConnections();
    s.close();
  }
});

async function daemon(port = 0, auth: Record<string, unknown> | undefined = { bearerToken: TOKEN }): Promise<Daemon> {
  const records: Daemon["records"] = [];
  const hub = new FeedHub({ recent: (l) => records.slice(0, l), depth: () => 0 });
  const engine = new EventEmitter<EngineEvents>();
  hub.attach(engine);
  engine.on("accepted", (issues) => {
    for (const i of issues) records.unshift({ issue: i, deliveries: [] });
  });
  const server = createServer({
    config: serverSchema.parse({ host: "127.0.0.1", port, ...(auth !== undefined ? { auth } : {}) }),
    log: silentLogger(),
    metrics: new Metrics({ defaultMetrics: false }),
    version: "test",
    ingestAlertmanager: async () => ({ kind: "accepted", alerts: 0, issues: 0, deliveries: 0, duplicates: 0 }),
    feed: hub,
  });
  const sockets = new Set<Socket>();
  const requests: http.IncomingHttpHeaders[] = [];
  server.server.on("connection", (s: Socket) => {
    sockets.add(s);
    s.once("close", () => sockets.delete(s));
  });
  server.server.on("request", (req: http.IncomingMessage) => {
    if ((req.url ?? "").startsWith("/api/issues/stream")) requests.push(req.headers);
  });
  servers.push(server);
  const addr = await server.listen();
  return {
    url: `http://127.0.0.1:${addr.port}`,
    port: addr.port,
    hub,
    engine,
    server,
    records,
    drop: () => {
      for (const s of sockets) s.destroy();
    },
    requests,
  };
}

/** A client with fast retries, recording what it emits. */
function follow(url: string, opts: Partial<ConstructorParameters<typeof HttpFeedClient>[0]> = {}): { client: HttpFeedClient; store: IssueStore; snapshots: IssuesSnapshot[]; events: FeedEvent[]; states: ConnectionState[] } {
  const client = new HttpFeedClient({ url, token: TOKEN, initialBackoffMs: 20, maxBackoffMs: 100, ...opts });
  clients.push(client);
  const store = new IssueStore();
  const snapshots: IssuesSnapshot[] = [];
  const events: FeedEvent[] = [];
  const states: ConnectionState[] = [];
  client.on("snapshot", (s) => snapshots.push(s));
  client.on("event", (e) => events.push(e));
  client.on("state", (s) => states.push(s));
  store.follow(client);
  client.start();
  return { client, store, snapshots, events, states };
}

async function until(check: () => boolean, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const accept = (d: Daemon, ...issues: Issue[]): void => void d.engine.emit("accepted", issues, issues.map(() => ({ destinations: ["slack"] })));

describe("HttpFeedClient", () => {
  it("loads the snapshot, then follows the stream", async () => {
    const d = await daemon();
    const first = [issue(), issue()];
    accept(d, ...first);
    const f = follow(d.url);
    await until(() => f.store.connection.kind === "live", "live");
    expect(f.snapshots).toHaveLength(1);
    expect(f.store.list().map((r) => r.issue.id)).toEqual([first[1]!.id, first[0]!.id]);
    const later = issue();
    accept(d, later);
    d.engine.emit("delivery", { issueId: later.id, fingerprint: later.fingerprint, destination: "slack", outcome: "success", attempt: 1 });
    await until(() => f.store.get(later.id)?.deliveries[0]?.state === "sent", "the delivery");
    expect(f.store.counters?.received).toBeGreaterThanOrEqual(2);
  });

  it("after a dropped connection, reconnects and resumes with Last-Event-ID: nothing missed, nothing twice", async () => {
    const d = await daemon();
    const f = follow(d.url);
    await until(() => f.store.connection.kind === "live", "live");
    const before = [issue(), issue()];
    accept(d, ...before);
    await until(() => f.store.size === 2, "two Issues");
    d.drop();
    // While the client is away (it retries after 20 ms), more happens.
    const during = [issue(), issue(), issue()];
    accept(d, ...during);
    await until(() => f.store.size === 5, "all five Issues");
    accept(d, issue());
    await until(() => f.store.size === 6, "six Issues");
    expect(f.states.some((s) => s.kind === "reconnecting")).toBe(true);
    // One snapshot: the stream resumed, no reset.
    expect(f.snapshots).toHaveLength(1);
    const ids = f.events.filter((e) => e.type === "issue").map((e) => (e.data as FeedIssue).issue.id);
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids).toHaveLength(6);
    // The reconnect said where it stopped.
    const resumed = d.requests.at(-1)!;
    expect(resumed["last-event-id"]).toBe(`${d.hub.epoch}-2`);
    expect(d.requests[0]!["last-event-id"]).toBe(`${d.hub.epoch}-0`);
  });

  it("after the daemon restarted, gets a reset and loads a fresh snapshot", async () => {
    const d1 = await daemon();
    accept(d1, issue({ title: "from the first daemon" }));
    const f = follow(d1.url);
    await until(() => f.store.connection.kind === "live" && f.store.size === 1, "live");
    const port = d1.port;
    servers.splice(servers.indexOf(d1.server), 1);
    await d1.server.close(100);
    await until(() => f.store.connection.kind === "reconnecting", "reconnecting");
    const d2 = await daemon(port);
    accept(d2, issue({ title: "from the second daemon" }));
    await until(() => f.snapshots.length === 2 && f.store.connection.kind === "live", "a second snapshot");
    expect(f.store.list().map((r) => r.issue.title)).toEqual(["from the second daemon", "from the first daemon"]);
    accept(d2, issue({ title: "live again" }));
    await until(() => f.store.list()[0]?.issue.title === "live again", "events of the second daemon");
  });

  it("stops for good when the credentials are refused, with a hint", async () => {
    const d = await daemon();
    const f = follow(d.url, { token: "wrong-token-0123456789" });
    await until(() => f.store.connection.kind === "failed", "failed");
    expect(f.store.connection).toMatchObject({ kind: "failed", error: expect.stringMatching(/refused the credentials \(401\)/), hint: expect.stringMatching(/--token/) });
    const attempts = f.states.length;
    await new Promise((r) => setTimeout(r, 100));
    expect(f.states.length).toBe(attempts);
  });

  it("sends basic credentials given in the URL", async () => {
    const d = await daemon(0, { basic: { username: "sre", password: "pass-word-1" } });
    const u = new URL(d.url);
    const f = follow(`http://sre:pass-word-1@${u.host}`, { token: undefined });
    await until(() => f.store.connection.kind === "live", "live");
    expect(f.client.target).toBe(`http://${u.host}`);
  });

  it("backs off 1, 2, 4... up to the maximum while the daemon is down, and says why", async () => {
    const d = await daemon();
    const url = d.url;
    servers.splice(servers.indexOf(d.server), 1);
    await d.server.close(100);
    const f = follow(url, { initialBackoffMs: 5, maxBackoffMs: 20, now: () => 0 });
    await until(() => f.states.filter((s) => s.kind === "reconnecting").length >= 5, "five retries");
    const retries = f.states.filter((s): s is Extract<ConnectionState, { kind: "reconnecting" }> => s.kind === "reconnecting").slice(0, 5);
    expect(retries.map((s) => s.retryAt)).toEqual([5, 10, 20, 20, 20]);
    expect(retries.map((s) => s.attempt)).toEqual([1, 2, 3, 4, 5]);
    expect(retries[0]!.error).toMatch(/connection refused/);
  });

  it("reconnects when a stream goes silent", async () => {
    let streams = 0;
    const server = http.createServer((req, res) => {
      if ((req.url ?? "").startsWith("/api/issues/stream")) {
        streams++;
        res.writeHead(200, { "content-type": "text/event-stream" });
        res.write(": hello\n\n");
        return; // and then nothing, ever
      }
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify(snapshot([], "abc-0")));
    });
    raw.push(server);
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const f = follow(`http://127.0.0.1:${(server.address() as AddressInfo).port}`, { idleTimeoutMs: 50 });
    await until(() => streams >= 2, "a second stream");
    const gave = f.states.find((s) => s.kind === "reconnecting");
    expect(gave).toMatchObject({ error: "no data for 0 s" });
  });

  it("refuses a URL that is not one and says what serves no feed", async () => {
    expect(() => new HttpFeedClient({ url: "ftp://x" })).toThrow(/unsupported URL scheme/);
    const server = http.createServer((_req, res) => {
      res.writeHead(404, { "content-type": "application/json" });
      res.end('{"error":"not found"}');
    });
    raw.push(server);
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const f = follow(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
    await until(() => f.store.connection.kind === "failed", "failed");
    expect(f.store.connection).toMatchObject({ error: expect.stringMatching(/serves no issue feed at \/api\/issues \(404\)/) });
  });
});

describe("feedEndpoints", () => {
  it("accepts a base URL, a path prefix, the endpoint itself or a bare host:port", () => {
    expect(feedEndpoints("http://h:8080").list.href).toBe("http://h:8080/api/issues");
    expect(feedEndpoints("http://h:8080/").stream.href).toBe("http://h:8080/api/issues/stream");
    expect(feedEndpoints("https://h/kubecano/").list.href).toBe("https://h/kubecano/api/issues");
    expect(feedEndpoints("http://h:8080/api/issues/stream").list.href).toBe("http://h:8080/api/issues");
    expect(feedEndpoints("127.0.0.1:8080").shown).toBe("http://127.0.0.1:8080");
    expect(feedEndpoints("http://h", "t0k").authorization).toBe("Bearer t0k");
    expect(feedEndpoints("http://u:p%40ss@h").authorization).toBe(`Basic ${Buffer.from("u:p@ss").toString("base64")}`);
    expect(feedEndpoints("http://u:p@h").list.href).toBe("http://h/api/issues");
  });
});

// ───────────────────────────── lines ─────────────────────────────

class FakeSource extends EventEmitter<FeedSourceEvents> implements FeedSource {
  readonly target = "fake";
  started = 0;
  stopped = 0;
  start(): void {
    this.started++;
  }
  stop(): void {
    this.stopped++;
  }
}

describe("line output", () => {
  const plain = new Chalk({ level: 0 });

  it("one line per Issue: time, status, severity, title, subject, destinations", () => {
    const i = issue({ severity: "HIGH", title: "API\u001b[2J is down\nnow" });
    expect(issueLine(routed(i, ["slack", "pagerduty"]), plain)).toBe(`${i.receivedAt.replace(/\.\d+Z$/, "Z")} FIRING   HIGH  API is down now  shop/pod/${i.subject.name}  → slack, pagerduty`);
    expect(issueLine({ issue: i, stage: "silenced", silenced: "maintenance", deliveries: [] }, plain)).toMatch(/ {2}silenced: maintenance$/);
    expect(issueLine({ issue: i, stage: "routed", deliveries: [] }, plain)).toMatch(/ {2}no destination$/);
  });

  it("prints each Issue once it is routed, oldest first, never twice, and stops when told", async () => {
    const source = new FakeSource();
    const out = new PassThrough();
    let text = "";
    out.on("data", (b: Buffer) => (text += b.toString()));
    let stop!: () => void;
    const until = new Promise<void>((r) => (stop = r));
    const done = followLines(source, { out, err: new PassThrough(), json: false, chalk: plain, until });
    expect(source.started).toBe(1);
    const [a, b, c] = [issue({ title: "first" }), issue({ title: "second" }), issue({ title: "third" })];
    source.emit("snapshot", snapshot([{ issue: b!, stage: "processing", deliveries: [] }, routed(a!)]));
    source.emit("event", { type: "issue", id: "e-1", data: routed(c!) });
    source.emit("event", { type: "update", id: "e-2", data: { id: b!.id, issue: b!, stage: "routed", deliveries: [{ destination: "pd", state: "pending", attempts: 0 }] } });
    // A reset and a fresh snapshot with the same Issues: nothing printed again.
    source.emit("snapshot", snapshot([routed(c!), routed(b!, ["pd"]), routed(a!)]));
    stop();
    expect(await done).toEqual({});
    expect(source.stopped).toBe(1);
    expect(text.trim().split("\n").map((l) => / (first|second|third) /.exec(l)?.[1])).toEqual(["first", "third", "second"]);
    expect(text).toMatch(/second .* → pd\n/);
  });

  it("prints NDJSON with --json, and a snapshot with --once", () => {
    const out = new PassThrough();
    const [a, b] = [issue({ title: "older" }), issue({ title: "newer" })];
    printSnapshot(snapshot([routed(b!), routed(a!)]), { out, json: true, chalk: plain });
    const docs = (out.read() as Buffer).toString().trim().split("\n").map((l) => JSON.parse(l) as FeedIssue);
    expect(docs.map((d) => d.issue.title)).toEqual(["older", "newer"]);
    expect(docs[0]).toMatchObject({ stage: "routed", deliveries: [{ destination: "slack", state: "pending" }] });
  });

  it("ends with the reason when the feed fails for good, and tells about reconnects on stderr", async () => {
    const source = new FakeSource();
    const err = new PassThrough();
    let errText = "";
    err.on("data", (b: Buffer) => (errText += b.toString()));
    const done = followLines(source, { out: new PassThrough(), err, json: false, chalk: plain, until: new Promise(() => undefined) });
    source.emit("state", { kind: "live", since: 0 });
    source.emit("state", { kind: "reconnecting", attempt: 1, retryAt: Date.now() + 2000, error: "the connection was cut" });
    source.emit("state", { kind: "live", since: 0 });
    source.emit("state", { kind: "failed", error: "refused (401)", hint: "pass --token" });
    expect(await done).toEqual({ failed: { error: "refused (401)", hint: "pass --token" } });
    expect(errText).toMatch(/lost the issue feed \(the connection was cut\); retrying in 2s\n.*the issue feed is back/);
  });
});
