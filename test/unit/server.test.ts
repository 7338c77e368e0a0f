import { readFileSync } from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import net from "node:net";
import { Writable } from "node:stream";
import { afterEach, describe, expect, it, vi } from "vitest";
import { serverSchema } from "../../src/config/schema.js";
import { createLogger } from "../../src/observability/logger.js";
import { Metrics } from "../../src/observability/metrics.js";
import type { IngestOutcome } from "../../src/pipeline.js";
import { createServer, type KubecanoServer, type ReadyCheck } from "../../src/server/http.js";
import { parseWebhookBody } from "../../src/sources/alertmanager/parse.js";

const FIXTURE = Buffer.from(
  JSON.stringify((JSON.parse(readFileSync(new URL("../fixtures/alertmanager/firing-crashloop.json", import.meta.url), "utf8")) as { body: unknown }).body),
);
const JSON_CT = { "content-type": "application/json" };

interface Harness {
  readonly server: KubecanoServer;
  readonly port: number;
  readonly metrics: Metrics;
  readonly logs: () => Record<string, unknown>[];
  /** Bodies the stub ingest received. */
  readonly received: Buffer[];
  /** Replaces what the stub ingest does. */
  ingest: (body: Buffer) => IngestOutcome;
  readiness: Record<string, ReadyCheck>;
}

const open: KubecanoServer[] = [];

afterEach(async () => {
  await Promise.all(open.splice(0).map((s) => s.close(100)));
});

/** The default stub: parses for real, "queues" nothing. */
function parsingIngest(body: Buffer): IngestOutcome {
  const r = parseWebhookBody(body);
  if (!r.ok) return { kind: "invalid", error: r.error };
  const n = r.value.alerts.length;
  return { kind: "accepted", alerts: n, issues: n, deliveries: n, duplicates: 0 } as IngestOutcome;
}

async function start(server: Record<string, unknown> = {}, before?: (s: KubecanoServer) => void): Promise<Harness> {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(chunk.toString());
      cb();
    },
  });
  const metrics = new Metrics({ defaultMetrics: false });
  const h: Harness = {
    server: undefined as unknown as KubecanoServer,
    port: 0,
    metrics,
    logs: () => lines.join("").split("\n").filter((l) => l !== "").map((l) => JSON.parse(l) as Record<string, unknown>),
    received: [],
    ingest: parsingIngest,
    readiness: {},
  };
  const s = createServer({
    config: serverSchema.parse({ host: "127.0.0.1", port: 0, ...server }),
    log: createLogger({ stream, format: "json", level: "debug" }),
    metrics,
    version: "9.9.9-test",
    ingestAlertmanager: async (body) => {
      h.received.push(body);
      return h.ingest(body);
    },
    readiness: () => h.readiness,
  });
  before?.(s);
  open.push(s);
  const addr: AddressInfo = await s.listen();
  return Object.assign(h, { server: s, port: addr.port });
}

interface Reply {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  readonly text: string;
  json(): Record<string, unknown>;
}

function request(port: number, opts: { method?: string; path?: string; headers?: Record<string, string | number>; body?: Buffer | string; agent?: http.Agent }): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: "127.0.0.1", port, method: opts.method ?? "GET", path: opts.path ?? "/", headers: opts.headers, agent: opts.agent ?? false }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => {
        const text = Buffer.concat(chunks).toString("utf8");
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json: () => JSON.parse(text) as Record<string, unknown> });
      });
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end(opts.body);
  });
}

const post = (port: number, body: Buffer | string, headers: Record<string, string | number> = JSON_CT): Promise<Reply> =>
  request(port, { method: "POST", path: "/api/alerts", headers, body });

/** Sends raw bytes on a fresh socket and collects everything until the server closes it. */
function raw(port: number, bytes: string | Buffer, keepOpen = false): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const c = net.connect(port, "127.0.0.1", () => {
      c.write(bytes);
      if (!keepOpen) c.end();
    });
    c.on("data", (d: Buffer) => chunks.push(d));
    c.on("error", (e: NodeJS.ErrnoException) => (e.code === "ECONNRESET" || e.code === "EPIPE" ? undefined : reject(e)));
    c.on("close", () => resolve(Buffer.concat(chunks).toString("latin1")));
  });
}

/** Counter values of kubecano_http_requests_total as "route code" → value. */
async function httpCounts(port: number): Promise<Map<string, number>> {
  const r = await request(port, { path: "/metrics" });
  const out = new Map<string, number>();
  for (const m of r.text.matchAll(/^kubecano_http_requests_total\{(.*)\} (\d+)$/gm)) {
    const labels = Object.fromEntries([...m[1]!.matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]]));
    out.set(`${labels["route"]} ${labels["code"]}`, Number(m[2]));
  }
  return out;
}

async function expectServing(port: number): Promise<void> {
  const r = await request(port, { path: "/healthz" });
  expect(r.status).toBe(200);
}

describe("POST /api/alerts", () => {
  it("answers 202 with JSON once the stub has taken the body", async () => {
    const h = await start();
    const r = await post(h.port, FIXTURE);
    expect(r.status).toBe(202);
    expect(r.headers["content-type"]).toBe("application/json; charset=utf-8");
    expect(r.headers["cache-control"]).toBe("no-store");
    expect(r.json()).toMatchObject({ status: "accepted", alerts: 1, issues: 1, deliveries: 1 });
    expect(h.received).toHaveLength(1);
    expect(h.received[0]!.equals(FIXTURE)).toBe(true);
  });

  it("answers 400 with the parser's message for invalid JSON and for a wrong schema", async () => {
    const h = await start();
    const bad = await post(h.port, '{"alerts": [tru]}');
    expect(bad.status).toBe(400);
    expect(bad.json()).toEqual({ status: "error", error: 'invalid JSON at line 1 column 16: Unexpected token "]"' });
    const schema = await post(h.port, '{"alerts": {}}');
    expect(schema.status).toBe(400);
    expect(schema.json()["error"]).toBe("alerts: expected array, received object");
    const utf8 = await post(h.port, Buffer.from([0x7b, 0xff, 0x7d]));
    expect(utf8.status).toBe(400);
    expect(utf8.json()["error"]).toMatch(/not valid UTF-8 \(first bad byte at offset 1\)/);
    const text = (await request(h.port, { path: "/metrics" })).text;
    expect(text).toMatch(/^kubecano_rejected_payloads_total\{reason="json"\} 1$/m);
    expect(text).toMatch(/^kubecano_rejected_payloads_total\{reason="schema"\} 1$/m);
    expect(text).toMatch(/^kubecano_rejected_payloads_total\{reason="encoding"\} 1$/m);
  });

  it("accepts application/json with parameters and +json types, refuses others with 415", async () => {
    const h = await start();
    for (const ct of ["application/json; charset=utf-8", "application/vnd.foo+json", "APPLICATION/JSON", "application/json;charset=UTF-8"]) {
      expect((await post(h.port, FIXTURE, { "content-type": ct })).status, ct).toBe(202);
    }
    const none = await post(h.port, FIXTURE, {});
    expect(none.status).toBe(415);
    expect(none.json()["error"]).toBe("unsupported content type (none): send Content-Type: application/json");
    const wrong = await post(h.port, FIXTURE, { "content-type": "text/plain" });
    expect(wrong.status).toBe(415);
    expect(wrong.json()["error"]).toContain('"text/plain"');
    expect((await post(h.port, FIXTURE, { "content-type": "application/jsonx" })).status).toBe(415);
    expect((await post(h.port, FIXTURE, { "content-type": "application/x-www-form-urlencoded" })).status).toBe(415);
    // Refused bodies never reach the pipeline.
    expect(h.received).toHaveLength(4);
  });

  it("answers 503 with Retry-After when the pipeline cannot take the work", async () => {
    const h = await start();
    h.ingest = () => ({ kind: "unavailable", reason: "backlog_full", message: "delivery backlog is full (10 pending, limit 10); retry later", retryAfterSeconds: 30 });
    const r = await post(h.port, FIXTURE);
    expect(r.status).toBe(503);
    expect(r.headers["retry-after"]).toBe("30");
    expect(r.json()).toEqual({ status: "error", error: "delivery backlog is full (10 pending, limit 10); retry later" });
    // Logged once per reason, not once per request.
    await post(h.port, FIXTURE);
    const warns = h.logs().filter((l) => l["level"] === "warn" && String(l["msg"]).startsWith("answering 503"));
    expect(warns).toHaveLength(1);
  });

  it("answers 500 when the handler throws, logs it, and keeps serving", async () => {
    const h = await start();
    h.ingest = () => {
      throw new Error("bug in the pipeline");
    };
    const r = await post(h.port, FIXTURE);
    expect(r.status).toBe(500);
    expect(r.json()).toEqual({ status: "error", error: "internal error; the request can be retried" });
    expect(h.logs().some((l) => l["level"] === "error" && String(l["msg"]).includes("bug in the pipeline"))).toBe(true);
    h.ingest = parsingIngest;
    expect((await post(h.port, FIXTURE)).status).toBe(202);
    await expectServing(h.port);
  });
});

describe("auth", () => {
  const TOKEN = "0123456789abcdef-secret";

  it("bearer: 401 without or with wrong credentials, 202 with the token (scheme case-insensitive)", async () => {
    const h = await start({ auth: { bearerToken: TOKEN } });
    const none = await post(h.port, FIXTURE);
    expect(none.status).toBe(401);
    expect(none.headers["www-authenticate"]).toBe('Bearer realm="kubecano"');
    expect(none.json()["error"]).toMatch(/^authentication required/);
    const wrong = await post(h.port, FIXTURE, { ...JSON_CT, authorization: `Bearer ${TOKEN}x` });
    expect(wrong.status).toBe(401);
    expect(wrong.json()["error"]).toBe("invalid credentials");
    const short = await post(h.port, FIXTURE, { ...JSON_CT, authorization: "Bearer x" });
    expect(short.status).toBe(401);
    const wrongScheme = await post(h.port, FIXTURE, { ...JSON_CT, authorization: `Basic ${TOKEN}` });
    expect(wrongScheme.status).toBe(401);
    const noCredentials = await post(h.port, FIXTURE, { ...JSON_CT, authorization: "Bearer" });
    expect(noCredentials.status).toBe(401);
    expect(h.received).toHaveLength(0);
    expect((await post(h.port, FIXTURE, { ...JSON_CT, authorization: `Bearer ${TOKEN}` })).status).toBe(202);
    expect((await post(h.port, FIXTURE, { ...JSON_CT, authorization: `bearer ${TOKEN}` })).status).toBe(202);
    expect(h.received).toHaveLength(2);
    // The token never appears in a log line.
    expect(JSON.stringify(h.logs())).not.toContain(TOKEN);
  });

  it("basic: 401 for a wrong password or scheme, 202 for the right pair", async () => {
    const h = await start({ auth: { basic: { username: "alertmanager", password: "p4ssw0rd-long" } } });
    const b64 = (s: string): string => Buffer.from(s).toString("base64");
    const none = await post(h.port, FIXTURE);
    expect(none.status).toBe(401);
    expect(none.headers["www-authenticate"]).toBe('Basic realm="kubecano", charset="UTF-8"');
    expect((await post(h.port, FIXTURE, { ...JSON_CT, authorization: `Basic ${b64("alertmanager:wrong-password")}` })).status).toBe(401);
    expect((await post(h.port, FIXTURE, { ...JSON_CT, authorization: `Basic ${b64("other:p4ssw0rd-long")}` })).status).toBe(401);
    expect((await post(h.port, FIXTURE, { ...JSON_CT, authorization: `Bearer ${b64("alertmanager:p4ssw0rd-long")}` })).status).toBe(401);
    expect((await post(h.port, FIXTURE, { ...JSON_CT, authorization: `Basic ${b64("alertmanager:p4ssw0rd-long")}` })).status).toBe(202);
  });

  it("leaves health, readiness and metrics open", async () => {
    const h = await start({ auth: { bearerToken: TOKEN } });
    for (const p of ["/healthz", "/livez", "/readyz", "/metrics", "/"]) expect((await request(h.port, { path: p })).status, p).toBe(200);
  });

  it("checks auth before reading the body: 401 even when the body is too large", async () => {
    const h = await start({ auth: { bearerToken: TOKEN }, maxBodyBytes: 1024 });
    expect((await post(h.port, Buffer.alloc(4096, 0x20))).status).toBe(401);
    await expectServing(h.port);
  });
});

describe("body size", () => {
  it("answers 413 by Content-Length without reading the body, and keeps serving", async () => {
    const h = await start({ maxBodyBytes: 1024 });
    const r = await post(h.port, Buffer.alloc(5000, 0x20));
    expect(r.status).toBe(413);
    expect(r.headers["connection"]).toBe("close");
    expect(r.json()["error"]).toMatch(/exceeds server\.maxBodyBytes \(1024 bytes\)/);
    expect(h.received).toHaveLength(0);
    await expectServing(h.port);
    // At the limit exactly is fine.
    const atLimit = await post(h.port, Buffer.concat([Buffer.from('{"alerts":[]}'), Buffer.alloc(1024 - 13, 0x20)]));
    expect(atLimit.status).toBe(202);
  });

  it("answers 413 to a chunked body that grows past the limit, and keeps serving", async () => {
    const h = await start({ maxBodyBytes: 1024 });
    const status = await new Promise<number>((resolve, reject) => {
      const req = http.request({ host: "127.0.0.1", port: h.port, method: "POST", path: "/api/alerts", headers: { ...JSON_CT, "transfer-encoding": "chunked" }, agent: false });
      let answered = false;
      req.on("response", (res) => {
        answered = true;
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      // The server may close while we are still writing: only the answer matters.
      req.on("error", (e) => (answered ? undefined : reject(e)));
      let sent = 0;
      const pump = (): void => {
        if (answered || sent > 1_000_000) return void req.end();
        sent += 256;
        req.write(Buffer.alloc(256, 0x20), () => setImmediate(pump));
      };
      pump();
    });
    expect(status).toBe(413);
    expect(h.received).toHaveLength(0);
    await expectServing(h.port);
    expect((await post(h.port, '{"alerts":[]}')).status).toBe(202);
  });
});

describe("routing", () => {
  it("answers 404 for an unknown path", async () => {
    const h = await start();
    const r = await request(h.port, { path: "/api/alert" });
    expect(r.status).toBe(404);
    expect(r.json()["error"]).toBe("no such endpoint /api/alert: Alertmanager should POST to /api/alerts");
    expect((await request(h.port, { path: "/%00%ff" })).status).toBe(404);
    expect((await request(h.port, { path: `/${"x".repeat(5000)}` })).json()["error"]).toMatch(/…: Alertmanager/);
  });

  it("ignores a trailing slash and the query string", async () => {
    const h = await start();
    expect((await request(h.port, { path: "/healthz/" })).status).toBe(200);
    expect((await request(h.port, { path: "/healthz?verbose=1" })).status).toBe(200);
    expect((await request(h.port, { method: "POST", path: "/api/alerts/?x=1", headers: JSON_CT, body: FIXTURE })).status).toBe(202);
  });

  it("answers 405 with Allow for a wrong method", async () => {
    const h = await start();
    const get = await request(h.port, { path: "/api/alerts" });
    expect(get.status).toBe(405);
    expect(get.headers["allow"]).toBe("POST");
    expect(get.json()["error"]).toBe("GET is not allowed on /api/alerts: use POST");
    const postHealth = await request(h.port, { method: "POST", path: "/healthz", body: "x" });
    expect(postHealth.status).toBe(405);
    expect(postHealth.headers["allow"]).toBe("GET, HEAD");
    expect((await request(h.port, { method: "DELETE", path: "/metrics" })).status).toBe(405);
  });

  it("answers GET and HEAD on the health endpoints", async () => {
    const h = await start();
    for (const p of ["/healthz", "/livez"]) {
      const get = await request(h.port, { path: p });
      expect(get.json()).toEqual({ status: "ok" });
      const head = await request(h.port, { method: "HEAD", path: p });
      expect(head.status).toBe(200);
      expect(head.text).toBe("");
      expect(Number(head.headers["content-length"])).toBe(Buffer.byteLength(get.text));
    }
    const root = await request(h.port, { path: "/" });
    expect(root.json()).toMatchObject({ name: "kubecano", version: "9.9.9-test" });
  });
});

describe("readiness", () => {
  it("is ready until markNotReady()", async () => {
    const h = await start();
    const ok = await request(h.port, { path: "/readyz" });
    expect(ok.status).toBe(200);
    expect(ok.json()).toEqual({ status: "ready", checks: { server: { ok: true } } });
    h.server.markNotReady();
    const not = await request(h.port, { path: "/readyz" });
    expect(not.status).toBe(503);
    expect(not.json()).toEqual({ status: "not ready", checks: { server: { ok: false, detail: "shutting down" } } });
    expect((await request(h.port, { method: "HEAD", path: "/readyz" })).status).toBe(503);
    // Liveness is unaffected.
    await expectServing(h.port);
  });

  it("is not ready while a readiness check fails", async () => {
    const h = await start();
    h.readiness = { store: { ok: false, detail: "disk full" }, slack: { ok: true } };
    const r = await request(h.port, { path: "/readyz" });
    expect(r.status).toBe(503);
    expect(r.json()).toEqual({ status: "not ready", checks: { server: { ok: true }, store: { ok: false, detail: "disk full" }, slack: { ok: true } } });
    h.readiness = { store: { ok: true } };
    expect((await request(h.port, { path: "/readyz" })).status).toBe(200);
  });
});

describe("metrics", () => {
  it("counts requests by route and code", async () => {
    const h = await start();
    await post(h.port, FIXTURE);
    await post(h.port, FIXTURE);
    await post(h.port, "{");
    await request(h.port, { path: "/healthz" });
    await request(h.port, { path: "/livez" });
    await request(h.port, { path: "/readyz" });
    await request(h.port, { path: "/nope" });
    await request(h.port, { path: "/api/alerts" });
    await post(h.port, FIXTURE, {});
    const counts = await httpCounts(h.port);
    expect(Object.fromEntries(counts)).toEqual({
      "alerts 202": 2,
      "alerts 400": 1,
      "alerts 405": 1,
      "alerts 415": 1,
      "health 200": 2,
      "ready 200": 1,
      "unknown 404": 1,
    });
    // The scrape itself is counted afterwards.
    expect((await httpCounts(h.port)).get("metrics 200")).toBe(1);
    const head = await request(h.port, { method: "HEAD", path: "/metrics" });
    expect(head.status).toBe(200);
    expect(head.text).toBe("");
  });

  it("serves the Prometheus text format", async () => {
    const h = await start();
    const r = await request(h.port, { path: "/metrics" });
    expect(r.headers["content-type"]).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(r.text).toContain("# TYPE kubecano_http_requests_total counter");
  });
});

describe("bad clients", () => {
  it("is configured against slow headers and slow bodies", async () => {
    const h = await start();
    expect(h.server.server.headersTimeout).toBe(10_000);
    expect(h.server.server.requestTimeout).toBe(60_000);
    expect(h.server.server.keepAliveTimeout).toBe(5_000);
    expect(h.server.server.maxHeadersCount === null || h.server.server.maxHeadersCount > 0).toBe(true);
  });

  it("cuts off a client that never finishes its headers (slowloris) with 408, and keeps serving", async () => {
    // Same server, shorter clock: the settings are read by Node's connection checker, which starts on listen.
    const h = await start({}, (s) => {
      s.server.headersTimeout = 300;
      s.server.requestTimeout = 600;
      // Public since Node 18.12 (ServerOptions.connectionsCheckingInterval), missing from @types/node's Server.
      (s.server as http.Server & { connectionsCheckingInterval: number }).connectionsCheckingInterval = 50;
    });
    const answer = await raw(h.port, "POST /api/alerts HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n", true);
    expect(answer).toMatch(/^HTTP\/1\.1 408 Request Timeout\r\n/);
    await expectServing(h.port);
    const counts = await httpCounts(h.port);
    expect(counts.get("unknown 408")).toBe(1);
    // The cut connection is not counted a second time as a malformed request.
    expect(counts.get("unknown 400")).toBeUndefined();
  });

  it("answers garbage with 400 and keeps serving", async () => {
    const h = await start();
    expect(await raw(h.port, "\x00\x01GARBAGE \xff\r\n\r\n")).toMatch(/^HTTP\/1\.1 400 Bad Request\r\n/);
    expect(await raw(h.port, "GET / HTTP/9.9\r\n\r\n")).toMatch(/^HTTP\/1\.1 (400|505) /);
    expect(await raw(h.port, "POST /api/alerts HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n")).toMatch(/^HTTP\/1\.1 400 /);
    expect(await raw(h.port, "POST /api/alerts HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n")).toMatch(/^HTTP\/1\.1 400 /);
    expect(await raw(h.port, `GET / HTTP/1.1\r\nHost: x\r\nX-Big: ${"a".repeat(20_000)}\r\n\r\n`)).toMatch(/^HTTP\/1\.1 431 /);
    await expectServing(h.port);
    expect((await post(h.port, FIXTURE)).status).toBe(202);
    // One log line per kind of refusal, not one per request.
    const refusals = h.logs().filter((l) => String(l["msg"]).startsWith("refused a malformed or slow request"));
    const infos = refusals.filter((l) => l["level"] === "info");
    expect(refusals.length).toBeGreaterThanOrEqual(5);
    expect(new Set(infos.map((l) => l["code"])).size).toBe(infos.length);
    expect(infos.length).toBeLessThan(refusals.length);
  });

  it("a client that disconnects mid-body does not reach the pipeline", async () => {
    const h = await start();
    await raw(h.port, `POST /api/alerts HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"alerts":`);
    await expectServing(h.port);
    expect(h.received).toHaveLength(0);
  });
});

describe("close()", () => {
  it("resolves with an idle keep-alive connection open", async () => {
    const h = await start();
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      expect((await request(h.port, { path: "/healthz", agent })).status).toBe(200);
      expect((await request(h.port, { path: "/healthz", agent })).status).toBe(200);
      // One connection, still open and idle.
      expect(Object.values(agent.freeSockets).flat()).toHaveLength(1);
      const closed = vi.fn();
      // A long grace: resolving must not depend on the forced cut.
      void h.server.close(60_000).then(closed);
      await vi.waitFor(() => expect(closed).toHaveBeenCalled(), { timeout: 3_000, interval: 10 });
      await expect(request(h.port, { path: "/healthz" })).rejects.toThrow(/ECONNREFUSED/);
    } finally {
      agent.destroy();
    }
  });

  it("lets an in-flight request finish", async () => {
    const h = await start();
    const arrived = new Promise<void>((resolve) => h.server.server.once("request", () => resolve()));
    let release: () => void = () => undefined;
    const gate = new Promise<void>((r) => (release = r));
    // A request whose body is still arriving when close() is called.
    const pending = new Promise<number>((resolve, reject) => {
      const req = http.request({ host: "127.0.0.1", port: h.port, method: "POST", path: "/api/alerts", headers: { ...JSON_CT, "content-length": FIXTURE.length }, agent: false }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on("error", reject);
      req.write(FIXTURE.subarray(0, 10));
      void gate.then(() => req.end(FIXTURE.subarray(10)));
    });
    await arrived;
    const closing = h.server.close(5_000);
    release();
    expect(await pending).toBe(202);
    await closing;
  });
});

/**
 * Reads responses off one connection: each parsed by its Content-Length.
 * Resolves with them once `n` arrived (or the server closed the connection).
 */
function exchange(port: number, writes: (string | Buffer)[], n: number, gapMs = 20): Promise<{ head: string; body: string }[]> {
  return new Promise((resolve, reject) => {
    let buf = Buffer.alloc(0);
    const out: { head: string; body: string }[] = [];
    const c = net.connect(port, "127.0.0.1", () => {
      void (async () => {
        for (const w of writes) {
          c.write(w);
          await new Promise((r) => setTimeout(r, gapMs));
        }
      })();
    });
    const done = (): void => {
      c.destroy();
      resolve(out);
    };
    c.on("data", (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      for (;;) {
        const end = buf.indexOf("\r\n\r\n");
        if (end < 0) return;
        const head = buf.toString("latin1", 0, end);
        const len = Number(/\r\ncontent-length: (\d+)/i.exec(head)?.[1] ?? 0);
        if (buf.length < end + 4 + len) return;
        out.push({ head, body: buf.toString("utf8", end + 4, end + 4 + len) });
        buf = buf.subarray(end + 4 + len);
        if (out.length === n) return done();
      }
    });
    c.on("error", reject);
    c.on("close", () => resolve(out));
  });
}

const alertRequest = (body: Buffer | string, extra = ""): string =>
  `POST /api/alerts HTTP/1.1\r\nHost: kubecano\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n${extra}\r\n${body.toString()}`;

describe("webhook fast path", () => {
  /** Requests node:http parsed itself (the fast path's are not in its 'request' events). */
  function viaNodeHttp(h: Harness): { count: () => number } {
    let n = 0;
    h.server.server.on("request", () => n++);
    return { count: () => n };
  }

  it("answers a plain webhook itself, with the bytes node:http writes for the same answer", async () => {
    const h = await start();
    const seen = viaNodeHttp(h);
    // Chunked: node:http's path. Content-Length: the fast path's. Same answer otherwise.
    const [slow] = await exchange(h.port, [`POST /api/alerts HTTP/1.1\r\nHost: kubecano\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n${FIXTURE.length.toString(16)}\r\n${FIXTURE.toString()}\r\n0\r\n\r\n`], 1);
    expect(seen.count()).toBe(1);
    const [fast] = await exchange(h.port, [alertRequest(FIXTURE)], 1);
    expect(seen.count()).toBe(1);
    const noDate = (head: string): string => head.replace(/\r\nDate: [^\r]+/, "");
    expect(noDate(fast!.head)).toBe(noDate(slow!.head));
    expect(fast!.head).toMatch(/^HTTP\/1\.1 202 Accepted\r\n.*\r\nDate: \w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d GMT\r\n/s);
    expect(fast!.body).toBe(slow!.body);
    expect(h.received).toHaveLength(2);
    expect(h.received[1]!.equals(FIXTURE)).toBe(true);
    const counts = await httpCounts(h.port);
    expect(counts.get("alerts 202")).toBe(2);
  });

  it("answers 400 and 503 as node:http's path does, and keeps the connection", async () => {
    const h = await start();
    const seen = viaNodeHttp(h);
    const answers = await exchange(h.port, [alertRequest('{"alerts": [tru]}'), alertRequest("{}")], 2);
    expect(answers.map((a) => a.head.split("\r\n")[0])).toEqual(["HTTP/1.1 400 Bad Request", "HTTP/1.1 400 Bad Request"]);
    expect(JSON.parse(answers[0]!.body)).toMatchObject({ status: "error", error: expect.stringMatching(/invalid JSON/) as unknown });
    h.ingest = () => ({ kind: "unavailable", reason: "backlog_full", message: "the queue is full", retryAfterSeconds: 30 });
    const [busy] = await exchange(h.port, [alertRequest(FIXTURE)], 1);
    expect(busy!.head).toMatch(/^HTTP\/1\.1 503 Service Unavailable\r\nRetry-After: 30\r\n/);
    expect(busy!.head).toMatch(/\r\nConnection: keep-alive\r\n/);
    expect(seen.count()).toBe(0);
    const counts = await httpCounts(h.port);
    expect(counts.get("alerts 400")).toBe(2);
    expect(counts.get("alerts 503")).toBe(1);
  });

  it("answers pipelined requests and a body split over several reads, in order", async () => {
    const h = await start();
    const seen = viaNodeHttp(h);
    const a = alertRequest(FIXTURE);
    const answers = await exchange(h.port, [a + a, a.slice(0, a.length - 100), a.slice(a.length - 100)], 3);
    expect(answers.map((x) => x.head.split("\r\n")[0])).toEqual(Array(3).fill("HTTP/1.1 202 Accepted"));
    expect(h.received).toHaveLength(3);
    expect(seen.count()).toBe(0);
  });

  it("takes a large body that arrives in many reads", async () => {
    const h = await start();
    const seen = viaNodeHttp(h);
    const fixture = JSON.parse(FIXTURE.toString()) as { alerts: unknown[] };
    const big = Buffer.from(JSON.stringify({ ...fixture, alerts: Array.from({ length: 2_000 }, () => fixture.alerts[0]) }));
    expect(big.length).toBeGreaterThan(1_000_000);
    const request = Buffer.from(alertRequest(big));
    const pieces: Buffer[] = [];
    for (let i = 0; i < request.length; i += 65_536) pieces.push(request.subarray(i, i + 65_536));
    const [answer] = await exchange(h.port, pieces, 1, 1);
    expect(answer!.head).toMatch(/^HTTP\/1\.1 202 /);
    expect(JSON.parse(answer!.body)).toMatchObject({ alerts: 2_000 });
    expect(h.received[0]!.equals(big)).toBe(true);
    expect(seen.count()).toBe(0);
  });

  it("hands the connection to node:http at the first request it does not take, bytes and all", async () => {
    const h = await start({ auth: { bearerToken: "0123456789abcdef-secret" } });
    const seen = viaNodeHttp(h);
    const ok = alertRequest(FIXTURE, "Authorization: Bearer 0123456789abcdef-secret\r\n");
    const answers = await exchange(h.port, [ok, `GET /healthz HTTP/1.1\r\nHost: kubecano\r\n\r\n${ok}`, ok], 4);
    expect(answers.map((x) => x.head.split("\r\n")[0])).toEqual(["HTTP/1.1 202 Accepted", "HTTP/1.1 200 OK", "HTTP/1.1 202 Accepted", "HTTP/1.1 202 Accepted"]);
    // The first on the fast path; from the health check on, node:http has the connection.
    expect(seen.count()).toBe(3);
    expect(h.received).toHaveLength(3);
  });

  it("leaves every request it does not take to node:http, which answers as before", async () => {
    const h = await start({ auth: { bearerToken: "0123456789abcdef-secret" }, maxBodyBytes: 4096 });
    const seen = viaNodeHttp(h);
    const auth = "Authorization: Bearer 0123456789abcdef-secret\r\n";
    const cases: [string, RegExp][] = [
      [alertRequest(FIXTURE), /^HTTP\/1\.1 401 /],
      [alertRequest(FIXTURE, "Authorization: Bearer wrong\r\n"), /^HTTP\/1\.1 401 /],
      // Repeated: node:http keeps the first Authorization.
      [alertRequest(FIXTURE, `${auth}${auth}`), /^HTTP\/1\.1 202 /],
      [alertRequest(FIXTURE, auth).replace("Content-Type: application/json", "Content-Type: text/plain"), /^HTTP\/1\.1 415 /],
      [alertRequest("x".repeat(5000), auth), /^HTTP\/1\.1 413 /],
      [alertRequest(FIXTURE, `${auth}Content-Length: ${FIXTURE.length}\r\n`), /^HTTP\/1\.1 400 /],
      [alertRequest(FIXTURE, `${auth}X-Folded: a\r\n b\r\n`), /^HTTP\/1\.1 (400|202) /],
      [alertRequest(FIXTURE, `${auth}Bad Name: x\r\n`), /^HTTP\/1\.1 400 /],
      [alertRequest(FIXTURE, `${auth}Connection: close\r\n`), /^HTTP\/1\.1 202 [^]*Connection: close/],
      [alertRequest(FIXTURE, auth).replace("Host: kubecano\r\n", ""), /^HTTP\/1\.1 400 /],
      [alertRequest(FIXTURE, auth).replace("/api/alerts", "/api/alerts/"), /^HTTP\/1\.1 202 /],
      [alertRequest(FIXTURE, auth).replace("HTTP/1.1", "HTTP/1.0"), /^HTTP\/1\.1 202 /],
      [alertRequest(FIXTURE, `${auth}X-Bin: caf\xe9\r\n`), /^HTTP\/1\.1 (400|202) /],
    ];
    for (const [bytes, expected] of cases) {
      const before = seen.count();
      const answer = await raw(h.port, Buffer.from(bytes, "latin1"));
      expect(answer, `case ${cases.findIndex((c) => c[0] === bytes)}`).toMatch(expected);
      // Whatever node:http made of it, the request was its to parse (a 400 never reaches 'request').
      if (/^HTTP\/1\.1 (202|401|415|413) /.test(answer)) expect(seen.count(), bytes.slice(0, 200)).toBe(before + 1);
    }
    await expectServing(h.port);
  });

  it("a request whose headers come in pieces is node:http's", async () => {
    const h = await start();
    const seen = viaNodeHttp(h);
    const a = alertRequest(FIXTURE);
    const answers = await exchange(h.port, [a.slice(0, 30), a.slice(30)], 1);
    expect(answers[0]!.head).toMatch(/^HTTP\/1\.1 202 /);
    expect(seen.count()).toBe(1);
  });

  it("close(): an idle connection closes at once, a request in hand is answered with Connection: close", async () => {
    const h = await start();
    const idle = net.connect(h.port, "127.0.0.1");
    idle.on("error", () => undefined);
    const idleClosed = new Promise((r) => idle.once("close", r));
    // Served once, so it is a fast-path connection, then idle.
    idle.write(alertRequest(FIXTURE));
    await new Promise((r) => idle.once("data", r));
    let release: () => void = () => undefined;
    let entered: () => void = () => undefined;
    const inHand = new Promise<void>((r) => (entered = r));
    const held = new Promise<IngestOutcome>((r) => (release = () => r({ kind: "accepted", alerts: 1, issues: 1, deliveries: 1, duplicates: 0 })));
    // The stub's answer waits at the gate (a store commit, in kubecano).
    h.ingest = (() => {
      entered();
      return held;
    }) as unknown as Harness["ingest"];
    const pending = exchange(h.port, [alertRequest(FIXTURE)], 1);
    await inHand;
    const closing = h.server.close(5_000);
    await idleClosed;
    release();
    const [answer] = await pending;
    expect(answer!.head).toMatch(/^HTTP\/1\.1 202 [^]*\r\nConnection: close$/);
    await closing;
  });
});
