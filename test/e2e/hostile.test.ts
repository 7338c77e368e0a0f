/**
 * The hostile-input corpus against one running `kubecano listen` (built
 * CLI): malformed bodies, wrong types and nulls everywhere, huge and deep
 * payloads, invalid UTF-8, wrong methods and paths, slow and idle clients.
 * Each case is its own test and is followed by a valid POST that must still
 * get 202; the last test checks that the process stayed alive and its memory
 * bounded. Assertions are status codes, messages and counts, never durations.
 */
import { readFileSync } from "node:fs";
import net from "node:net";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { FAKE_TOKEN, startSlackFake, type SlackFake } from "../fakes/slack.js";
import { eventually, postAlerts, removeTempDir, request, startListen, stopAllChildren, tempDirWith, type HttpReply, type Listener } from "../helpers/cli.js";

vi.setConfig({ testTimeout: 120_000, hookTimeout: 90_000 });

const RUN = Date.now().toString(16).slice(-6);
/** Default server.maxBodyBytes (10 MiB). */
const MAX_BODY = 10 * 1024 * 1024;
/**
 * Generous: the 50,000-alert payload alone takes the process to 300-400 MB
 * (parsed, converted, enriched and stored in one go, and V8 keeps the heap it
 * grew); keeping something per request would go well past it.
 */
const RSS_LIMIT_BYTES = 512 * 1024 * 1024;

const tempDirs: string[] = [];
let l: Listener;
let rssBefore = 0;

/** Lines of the console destination (JSON Issues on stdout), counted by aggregationKey (the alertname). */
const printed = new Map<string, number>();
const printedFingerprints = new Set<string>();

beforeAll(async () => {
  const cwd = await tempDirWith({
    "kubecano.config.yaml": [
      "destinations:",
      "  - name: out",
      "    type: console",
      "    params:",
      "      format: json",
      "delivery:",
      "  maxBacklog: 200000",
      "  concurrency: 16",
      "",
    ].join("\n"),
  });
  tempDirs.push(cwd);
  l = await startListen([], { cwd, timeoutMs: 60_000 });
  let partial = "";
  l.proc.stdout!.on("data", (s: string) => {
    const lines = (partial + s).split("\n");
    partial = lines.pop() ?? "";
    for (const line of lines) {
      const key = field(line, "aggregationKey");
      if (key !== undefined) printed.set(key, (printed.get(key) ?? 0) + 1);
      const fp = field(line, "fingerprint");
      if (fp !== undefined) printedFingerprints.add(fp);
    }
  });
  rssBefore = vmRss(l.proc.pid!);
});

afterAll(async () => {
  await l?.stop("SIGKILL");
  await stopAllChildren();
  await Promise.all(tempDirs.splice(0).map(removeTempDir));
});

/** A top-level string field of a JSON line, without parsing megabytes of it. */
function field(line: string, name: string): string | undefined {
  const tag = `"${name}":"`;
  const i = line.indexOf(tag);
  if (i < 0) return undefined;
  const end = line.indexOf('"', i + tag.length);
  return end < 0 ? undefined : line.slice(i + tag.length, end);
}

/** Resident memory of a process, from /proc (bytes). */
function vmRss(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  if (m === null) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(m[1]) * 1024;
}

// ───────────────────────────── payloads ─────────────────────────────

type Json = Record<string, unknown>;
let seq = 0;

function alert(name = "HostileValid", extra: Json = {}): Json {
  const n = ++seq;
  return {
    status: "firing",
    labels: { alertname: name, namespace: "default", pod: `pod-${RUN}-${n}`, severity: "warning" },
    annotations: { summary: `${name} #${n}` },
    startsAt: new Date(Date.UTC(2026, 2, 1) + n * 1000).toISOString(),
    endsAt: "0001-01-01T00:00:00Z",
    generatorURL: "http://prometheus.example:9090/graph?g0.expr=up",
    fingerprint: `${RUN}${n.toString(16).padStart(10, "0")}`,
    ...extra,
  };
}

function payload(alerts: Json[] = [alert()], extra: Json = {}): Json {
  return {
    version: "4",
    groupKey: `{}:{run="${RUN}"}`,
    truncatedAlerts: 0,
    status: "firing",
    receiver: "kubecano",
    groupLabels: { alertname: "HostileValid" },
    commonLabels: { namespace: "default" },
    commonAnnotations: {},
    externalURL: "http://alertmanager.example:9093",
    alerts,
    ...extra,
  };
}

function errorOf(r: HttpReply): string {
  const body = r.json<{ status?: string; error?: string }>();
  expect(body.status).toBe("error");
  expect(typeof body.error).toBe("string");
  return body.error!;
}

/** The check after every case: a valid alert is still accepted, and the process is alive. */
async function stillAccepting(): Promise<void> {
  const r = await postAlerts(l.url, payload());
  expect(r.status, r.text).toBe(202);
  expect(l.proc.exitCode).toBeNull();
}

async function expect400(body: unknown, message: RegExp): Promise<string> {
  const r = await postAlerts(l.url, body);
  expect(r.status, r.text).toBe(400);
  const error = errorOf(r);
  expect(error).toMatch(message);
  // One line, and short: never the input echoed back.
  expect(error).not.toMatch(/\n/);
  expect(error.length).toBeLessThan(1000);
  return error;
}

/** `depth` nested arrays around `inner`: built as text, JSON.stringify would recurse. */
function nestedArrays(depth: number, inner = "1"): string {
  return "[".repeat(depth) + inner + "]".repeat(depth);
}
function nestedObjects(depth: number): string {
  return '{"a":'.repeat(depth) + "1" + "}".repeat(depth);
}

// ───────────────────────────── malformed JSON ─────────────────────────────

describe("malformed bodies", () => {
  it("truncated JSON: 400 naming where it ends", async () => {
    const text = JSON.stringify(payload([alert(), alert()]), null, 2);
    for (const cut of [1, Math.floor(text.length / 3), text.length - 1]) {
      await expect400(text.slice(0, cut), /^invalid JSON at line \d+ column \d+/);
      await stillAccepting();
    }
  });

  it.each([
    ["a trailing comma", '{"alerts": [1,]}'],
    ["single quotes", "{'alerts': []}"],
    ["a bare word", "alerts"],
    ["two documents", '{"alerts": []} {"alerts": []}'],
    ["an unterminated string", '{"alerts": [], "x": "abc'],
    ["a control character in a string", '{"alerts": [], "x": "a\u0001b"}'],
    ["a bad escape", '{"alerts": [], "x": "\\q"}'],
    ["NaN", '{"alerts": [], "truncatedAlerts": NaN}'],
    ["a comment", '{"alerts": [] /* hi */}'],
    ["NUL bytes", "\u0000\u0000\u0000"],
  ])("invalid JSON (%s): 400", async (_name, body) => {
    await expect400(body, /^invalid JSON/);
    await stillAccepting();
  });

  it.each([
    ["an empty body", "", /empty/],
    ["only whitespace", " \n\t ", /empty/],
    ["an array", "[]", /expected a JSON object/],
    ["a string", '"alerts"', /expected a JSON object/],
    ["a number", "42", /expected a JSON object/],
    ["null", "null", /expected a JSON object/],
    ["an object without alerts", "{}", /^alerts: is required/],
  ])("not a webhook object (%s): 400", async (_name, body, message) => {
    await expect400(body, message);
    await stillAccepting();
  });
});

// ───────────────────────────── wrong types and nulls ─────────────────────────────

/** [field, wrong value, the path the error must name]. */
const PAYLOAD_WRONG_TYPES: readonly [string, unknown, string][] = [
  ["version", 4, "version"],
  ["groupKey", { a: 1 }, "groupKey"],
  ["truncatedAlerts", "0", "truncatedAlerts"],
  ["truncatedAlerts", -1, "truncatedAlerts"],
  ["truncatedAlerts", 1.5, "truncatedAlerts"],
  ["status", "exploded", "status"],
  ["status", true, "status"],
  ["receiver", ["kubecano"], "receiver"],
  ["groupLabels", "alertname=x", "groupLabels"],
  ["groupLabels", { alertname: 1 }, "groupLabels.alertname"],
  ["commonLabels", [], "commonLabels"],
  ["commonLabels", { namespace: false }, "commonLabels.namespace"],
  ["commonAnnotations", 7, "commonAnnotations"],
  ["commonAnnotations", { summary: { text: "x" } }, "commonAnnotations.summary"],
  ["externalURL", 9093, "externalURL"],
  ["alerts", {}, "alerts"],
  ["alerts", "[]", "alerts"],
  ["alerts", [1], "alerts[0]"],
  ["alerts", [[]], "alerts[0]"],
];

const ALERT_WRONG_TYPES: readonly [string, unknown, string][] = [
  ["status", "pending", "status"],
  ["status", 1, "status"],
  ["labels", "alertname=x", "labels"],
  ["labels", ["alertname"], "labels"],
  ["labels", { alertname: "X", severity: 2 }, "labels.severity"],
  ["labels", { alertname: "X", nested: { a: "b" } }, "labels.nested"],
  ["annotations", 5, "annotations"],
  ["annotations", { summary: ["a"] }, "annotations.summary"],
  ["startsAt", 0, "startsAt"],
  ["startsAt", "yesterday", "startsAt"],
  ["startsAt", "2026-01-01", "startsAt"],
  ["endsAt", false, "endsAt"],
  ["endsAt", "soon", "endsAt"],
  ["generatorURL", 1, "generatorURL"],
  ["fingerprint", 123, "fingerprint"],
  ["fingerprint", { hex: "abc" }, "fingerprint"],
];

const escape = (s: string): string => s.replace(/[.[\]]/g, (c) => `\\${c}`);

describe("wrong types: 400 naming the field path", () => {
  it.each(PAYLOAD_WRONG_TYPES)("payload.%s = %j", async (key, value, where) => {
    await expect400(payload([alert()], { [key]: value }), new RegExp(`(^|; )${escape(where)}: `));
    await stillAccepting();
  });

  it.each(ALERT_WRONG_TYPES)("alert.%s = %j (in the second alert)", async (key, value, where) => {
    await expect400(payload([alert(), alert("HostileValid", { [key]: value })]), new RegExp(`(^|; )alerts\\[1\\]\\.${escape(where)}: `));
    await stillAccepting();
  });

  it("several wrong fields: the first few are named, the rest counted", async () => {
    const bad = alert("HostileValid", { status: 1, labels: 2, startsAt: 3, endsAt: 4, generatorURL: 5 });
    const error = await expect400(payload([bad]), /alerts\[0\]\.status: .*; and \d+ more problems?$/);
    expect(error.split("; ").length).toBeLessThanOrEqual(4);
    await stillAccepting();
  });
});

/** Every position that can hold a value, set to null: [description, payload, expected]. */
function nullCases(): [string, unknown, { status: 400; path: string } | { status: 202 }][] {
  const cases: [string, unknown, { status: 400; path: string } | { status: 202 }][] = [];
  for (const key of ["version", "groupKey", "truncatedAlerts", "status", "receiver", "groupLabels", "commonLabels", "commonAnnotations", "externalURL", "alerts"]) {
    cases.push([`payload.${key}`, payload([alert()], { [key]: null }), { status: 400, path: key }]);
  }
  for (const key of ["status", "labels", "annotations", "startsAt", "endsAt", "generatorURL", "fingerprint"]) {
    cases.push([`alert.${key}`, payload([alert("HostileValid", { [key]: null })]), { status: 400, path: `alerts[0].${key}` }]);
  }
  cases.push(["an alert", payload([null as unknown as Json]), { status: 400, path: "alerts[0]" }]);
  cases.push(["a label value", payload([alert("HostileValid", { labels: { alertname: "X", pod: null } })]), { status: 400, path: "alerts[0].labels.pod" }]);
  cases.push(["an annotation value", payload([alert("HostileValid", { annotations: { summary: null } })]), { status: 400, path: "alerts[0].annotations.summary" }]);
  cases.push(["a groupLabels value", payload([alert()], { groupLabels: { alertname: null } }), { status: 400, path: "groupLabels.alertname" }]);
  // Fields kubecano does not know are passed over, nulls included.
  cases.push(["an unknown payload field", payload([alert()], { routeLabels: null }), { status: 202 }]);
  cases.push(["an unknown alert field", payload([alert("HostileValid", { silencedBy: null })]), { status: 202 }]);
  return cases;
}

describe("nulls in every position", () => {
  it.each(nullCases())("null as %s", async (_name, body, expected) => {
    const r = await postAlerts(l.url, body);
    expect(r.status, r.text).toBe(expected.status);
    if (expected.status === 400) expect(errorOf(r)).toMatch(new RegExp(`(^|; )${escape(expected.path)}: `));
    await stillAccepting();
  });
});

describe("unknown fields everywhere", () => {
  it("are accepted and ignored, and the Issue is built from the known ones", async () => {
    const a = alert("HostileUnknownFields", {
      silencedBy: ["abc"],
      inhibitedBy: [],
      future: { nested: { deeper: [1, "two", null, { three: true }] } },
      "": "empty key",
      constructor: { prototype: { polluted: "yes" } },
    });
    // JSON text, so that "__proto__" is an own key as it would be on the wire.
    const text = JSON.stringify(payload([a], { notification_reason: 2, routeLabels: { team: "sre" }, future: { x: [{}] }, "\u0000": 1 })).replace('"alerts":[{', '"alerts":[{"__proto__":{"polluted":"yes"},');
    const r = await postAlerts(l.url, text);
    expect(r.status, r.text).toBe(202);
    expect(r.json()).toMatchObject({ alerts: 1, issues: 1 });
    await eventually(() => printedFingerprints.has(a["fingerprint"] as string), "the Issue printed");
    expect(({} as Record<string, unknown>)["polluted"]).toBeUndefined();
    await stillAccepting();
  });
});

// ───────────────────────────── size, depth, encoding ─────────────────────────────

describe("huge and deep payloads", () => {
  let slack: SlackFake | undefined;
  afterAll(async () => {
    await slack?.close();
  });

  it("10 MB of labels in one alert: 202 (or a clear 4xx), and it renders within Slack's limits", async () => {
    const labels: Record<string, string> = { alertname: "HostileHugeLabels", namespace: "default", pod: `huge-${RUN}` };
    const value = "v".repeat(4000);
    const description = "d".repeat(100_000);
    // Thousands of huge labels, the whole body just under maxBodyBytes.
    let size = JSON.stringify(payload([alert("HostileHugeLabels", { labels, annotations: { summary: "huge labels", description } })])).length;
    for (let i = 0; ; i++) {
      const key = `label_${i.toString().padStart(5, "0")}`;
      const added = key.length + value.length + 6;
      if (size + added > MAX_BODY - 1024) break;
      labels[key] = value;
      size += added;
    }
    const a = alert("HostileHugeLabels", { labels, annotations: { summary: "huge labels", description } });
    const body = JSON.stringify(payload([a]));
    expect(body.length).toBeLessThanOrEqual(MAX_BODY);
    expect(body.length).toBeGreaterThan(MAX_BODY - 64 * 1024);
    expect(Object.keys(labels).length).toBeGreaterThan(2000);

    const r = await postAlerts(l.url, body);
    if (r.status === 202) {
      await eventually(() => printedFingerprints.has(a["fingerprint"] as string), "the huge Issue printed", 60_000);
    } else {
      expect(r.status).toBeGreaterThanOrEqual(400);
      expect(r.status).toBeLessThan(500);
      expect(errorOf(r)).not.toMatch(/\n/);
    }
    await stillAccepting();

    // The same alert through the Slack destination: the fake applies Slack's Block Kit
    // limits (and kubecano's stricter budget), so a rendering past them is a rejected call.
    slack = await startSlackFake();
    const cwd = await tempDirWith({
      "kubecano.config.yaml": `destinations:\n  - name: slack\n    type: slack\n    params:\n      token: ${FAKE_TOKEN}\n      channel: C0ALERTS01\n      api_url: ${slack.url}\n`,
    });
    tempDirs.push(cwd);
    const toSlack = await startListen([], { cwd, timeoutMs: 60_000 });
    try {
      const r2 = await postAlerts(toSlack.url, body);
      expect(r2.status, r2.text).toBe(202);
      await slack.waitFor(() => slack!.callsTo("chat.postMessage").some((c) => c.outcome !== "pending"), 60_000);
      const posts = slack.callsTo("chat.postMessage");
      expect(posts.map((c) => `${c.outcome} ${c.error ?? ""}`)).toEqual(["ok "]);
      // One message; what did not fit (the labels) follows in its thread as files.
      expect(slack.topLevel()).toHaveLength(1);
      const m = slack.messages[0]!;
      expect(m.metadata?.event_payload["fingerprint"]).toBe(a["fingerprint"]);
      expect(m.text.length).toBeLessThanOrEqual(40_000);
      expect(JSON.stringify(m.blocks).length + JSON.stringify(m.attachments).length).toBeLessThan(100_000);
    } finally {
      await toSlack.stop("SIGKILL");
    }
  });

  it("50,000 alerts in one payload: 202, all accepted and all delivered", async () => {
    const N = 50_000;
    const alerts: Json[] = [];
    for (let i = 0; i < N; i++) {
      alerts.push({
        status: "firing",
        labels: { alertname: "HostileStorm", i: String(i) },
        startsAt: "2026-03-02T00:00:00Z",
        fingerprint: `${RUN}s${i.toString(16).padStart(6, "0")}`,
      });
    }
    const body = JSON.stringify(payload(alerts));
    expect(body.length).toBeLessThanOrEqual(MAX_BODY);
    // Accepting 50,000 Issues takes 10-20 s here, and delivering them (one durable commit each) 30 s more;
    // both take several times longer while other test files load the two cores.
    let answered = false;
    const posted = request(`${l.url}/api/alerts`, { method: "POST", body, headers: { "content-type": "application/json" }, timeoutMs: 150_000 }).finally(() => {
      answered = true;
    });
    // While it is being stored (in chunks), the server answers other requests.
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect((await request(`${l.url}/healthz`, { timeoutMs: 150_000 })).status).toBe(200);
    expect(answered, "/healthz was answered only after the 50,000 alerts were stored").toBe(false);
    const r = await posted;
    expect(r.status, r.text).toBe(202);
    expect(r.json()).toMatchObject({ alerts: N, issues: N, deliveries: N, duplicates: 0 });
    await eventually(() => (printed.get("HostileStorm") ?? 0) >= N, `${N} Issues printed`, 200_000, 500);
    expect(printed.get("HostileStorm")).toBe(N);
    await stillAccepting();
  }, 300_000);

  it("10,000-deep nesting in an unknown field: accepted and ignored", async () => {
    for (const nested of [nestedArrays(10_000), nestedObjects(10_000)]) {
      // At the top level of the payload...
      const a = alert("HostileDeepUnknown");
      const r = await postAlerts(l.url, JSON.stringify(payload([a])).replace('{"version"', `{"deep":${nested},"version"`));
      expect(r.status, r.text).toBe(202);
      await eventually(() => printedFingerprints.has(a["fingerprint"] as string), "the Issue printed");
      await stillAccepting();

      // ...and inside an alert.
      const b = alert("HostileDeepUnknown");
      const r2 = await postAlerts(l.url, JSON.stringify(payload([b])).replace('"alerts":[{', `"alerts":[{"deep":${nested},`));
      expect(r2.status, r2.text).toBe(202);
      await eventually(() => printedFingerprints.has(b["fingerprint"] as string), "the Issue printed");
      await stillAccepting();
    }
  });

  it("10,000-deep nesting in alerts and in labels: 400 naming the field", async () => {
    await expect400(`{"alerts":${nestedArrays(10_000)}}`, /^alerts\[0\]: expected object, received array$/);
    await stillAccepting();
    const text = JSON.stringify(payload([alert()])).replace('"labels":{', `"labels":{"deep":${nestedObjects(10_000)},`);
    await expect400(text, /^alerts\[0\]\.labels\.deep: expected string, received object$/);
    await stillAccepting();
  });

  it("invalid UTF-8: 400 naming the offset", async () => {
    const valid = Buffer.from(JSON.stringify(payload([alert()])));
    const at = valid.indexOf("HostileValid #");
    const bad: [string, Buffer][] = [
      ["a lone 0xff", Buffer.from([0xff])],
      ["a lone continuation byte", Buffer.from([0x80])],
      ["a truncated 3-byte sequence", Buffer.from([0xe2, 0x82])],
      ["an overlong '/'", Buffer.from([0xc0, 0xaf])],
      ["an encoded surrogate", Buffer.from([0xed, 0xa0, 0x80])],
      ["a code point past U+10FFFF", Buffer.from([0xf4, 0x90, 0x80, 0x80])],
    ];
    for (const [name, bytes] of bad) {
      const body = Buffer.concat([valid.subarray(0, at), bytes, valid.subarray(at)]);
      const r = await postAlerts(l.url, body);
      expect(r.status, `${name}: ${r.text}`).toBe(400);
      expect(errorOf(r)).toMatch(new RegExp(`not valid UTF-8 \\(first bad byte at offset ${at}\\)`));
      await stillAccepting();
    }
    // Truncated at the very end of the body.
    const r = await postAlerts(l.url, Buffer.concat([valid, Buffer.from([0xf0, 0x9f])]));
    expect(r.status).toBe(400);
    expect(errorOf(r)).toMatch(/not valid UTF-8/);
    await stillAccepting();
    // A UTF-8 byte order mark is not an error.
    const bom = await postAlerts(l.url, Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(JSON.stringify(payload()))]));
    expect(bom.status, bom.text).toBe(202);
  });
});

// ───────────────────────────── HTTP: methods, paths, slow and idle clients ─────────────────────────────

/** Writes raw bytes on a fresh connection; resolves with what came back once the server closes it (or after `idleMs` of silence). */
function rawExchange(port: number, data: string | Buffer, idleMs = 5_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, "127.0.0.1", () => s.write(data));
    let got = "";
    const t = (): NodeJS.Timeout =>
      setTimeout(() => {
        s.destroy();
        resolve(got);
      }, idleMs);
    let timer = t();
    s.setEncoding("latin1");
    s.on("data", (d: string) => {
      got += d;
      clearTimeout(timer);
      timer = t();
    });
    s.on("close", () => {
      clearTimeout(timer);
      resolve(got);
    });
    s.on("error", (e: NodeJS.ErrnoException) => (e.code === "ECONNRESET" ? undefined : reject(e)));
  });
}

describe("wrong methods and paths", () => {
  it.each(["GET", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"])("%s /api/alerts: 405 with Allow: POST", async (method) => {
    const r = await request(`${l.url}/api/alerts`, { method, ...(method === "PUT" || method === "PATCH" ? { body: JSON.stringify(payload()), headers: { "content-type": "application/json" } } : {}) });
    expect(r.status).toBe(405);
    expect(r.headers.get("allow")).toBe("POST");
    await stillAccepting();
  });

  it.each([
    ["/api/alert"],
    ["/api/alerts/extra"],
    ["/API/ALERTS"],
    ["/api/v2/alerts"],
    ["/api//alerts"],
    ["/api/alerts%00"],
    [`/${"a".repeat(8000)}`],
  ])("POST %s: 404 with a short message", async (p) => {
    const r = await request(`${l.url}${p}`, { method: "POST", body: JSON.stringify(payload()), headers: { "content-type": "application/json" } });
    expect(r.status).toBe(404);
    expect(errorOf(r).length).toBeLessThan(300);
    await stillAccepting();
  });

  it("raw requests: absolute-form, CONNECT, TRACE, a bad version, no Host: answered or closed, never a crash", async () => {
    const body = JSON.stringify(payload());
    const cases: [string, string, RegExp][] = [
      ["absolute-form target", `POST http://evil.example/api/alerts HTTP/1.1\r\nHost: evil.example\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`, /^HTTP\/1\.1 (202|400|404) /],
      ["CONNECT", "CONNECT 127.0.0.1:22 HTTP/1.1\r\nHost: 127.0.0.1:22\r\n\r\n", /^$|^HTTP\/1\.1 [45]\d\d /],
      ["TRACE", "TRACE /api/alerts HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", /^HTTP\/1\.1 405 /],
      ["HTTP/2.0 in an HTTP/1 request line", "POST /api/alerts HTTP/2.0\r\nHost: x\r\n\r\n", /^HTTP\/1\.1 (400|415|505) /],
      ["a dot-dot path (not normalised: no such endpoint)", `POST /%2e%2e/api/alerts HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`, /^HTTP\/1\.1 404 /],
      ["a dot-dot path", `POST /x/../api/alerts HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`, /^HTTP\/1\.1 404 /],
      ["HTTP/1.0 without Host", `POST /api/alerts HTTP/1.0\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`, /^HTTP\/1\.1 (202|400) /],
      ["a header without a colon", "GET /healthz HTTP/1.1\r\nHost: x\r\nnot a header\r\n\r\n", /^HTTP\/1\.1 400 /],
      ["a NUL in the path", "GET /he\u0000althz HTTP/1.1\r\nHost: x\r\n\r\n", /^HTTP\/1\.1 400 /],
      ["binary garbage", "\u0016\u0003\u0001\u0002\u0000\u0001\u0000\u01fc\u0003\u0003", /^$|^HTTP\/1\.1 400 /],
    ];
    for (const [name, data, expected] of cases) {
      const got = await rawExchange(l.port, Buffer.from(data, "latin1"));
      expect(got, name).toMatch(expected);
      await stillAccepting();
    }
  });
});

describe("slow and idle clients", () => {
  it("slow headers (slowloris): the server answers 408 and closes the connection", async () => {
    const started = { at: 0 };
    const got = await new Promise<{ data: string; closedByServer: boolean }>((resolve, reject) => {
      const s = net.connect(l.port, "127.0.0.1", () => {
        started.at = Date.now();
        s.write("POST /api/alerts HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n");
      });
      let data = "";
      // headersTimeout (10 s) is enforced by Node's connection checker (every 30 s): allow both.
      const guard = setTimeout(() => {
        s.destroy();
        resolve({ data, closedByServer: false });
      }, 80_000);
      s.setEncoding("latin1");
      s.on("data", (d: string) => (data += d));
      s.on("close", () => {
        clearTimeout(guard);
        resolve({ data, closedByServer: true });
      });
      s.on("error", (e: NodeJS.ErrnoException) => (e.code === "ECONNRESET" ? undefined : reject(e)));
    });
    expect(got.closedByServer).toBe(true);
    expect(got.data).toMatch(/^HTTP\/1\.1 408 /);
    await stillAccepting();
  }, 100_000);

  it("1,500 idle connections: new requests succeed or are refused cleanly, and the process stays up", async () => {
    const N = 1500;
    const sockets: net.Socket[] = [];
    let closedByServer = 0;
    let connectErrors = 0;
    await Promise.all(
      Array.from(
        { length: N },
        () =>
          new Promise<void>((resolve) => {
            const s = net.connect(l.port, "127.0.0.1");
            sockets.push(s);
            // Read what the server sends (a 408 when it cuts an idle one), so its close is seen.
            s.resume();
            s.once("connect", () => resolve());
            s.once("error", () => {
              connectErrors++;
              resolve();
            });
            s.once("close", () => {
              closedByServer++;
              resolve();
            });
          }),
      ),
    );
    try {
      // server.maxConnections (1024): connections past it are closed by the server at once
      // (on a slow machine some idle ones may already have been cut, making room for others).
      await eventually(() => closedByServer + connectErrors >= N - 1024, "the connections past maxConnections closed", 30_000);
      // A new connection now: accepted (if some idle ones were cut) or closed at once. A raw
      // request, not fetch: undici would quietly retry a request whose connection was closed.
      const outcome = await rawPost(l.port, JSON.stringify(payload()));
      expect(outcome).toMatch(/^202$|^refused: (ECONNRESET|EPIPE|ECONNREFUSED|closed)/);
      expect(l.proc.exitCode).toBeNull();
    } finally {
      for (const s of sockets) s.destroy();
    }
    // Once the idle connections are gone, everything is served again.
    await eventually(async () => (await postAlerts(l.url, payload())).status === 202, "202 after the idle connections closed", 30_000, 250);
    expect((await request(`${l.url}/healthz`)).status).toBe(200);
    await stillAccepting();
  });
});

// ───────────────────────────── afterwards ─────────────────────────────

describe("after the corpus", () => {
  it("the process is alive, healthy, and its memory stayed bounded", async () => {
    expect(l.proc.exitCode).toBeNull();
    expect((await request(`${l.url}/healthz`)).status).toBe(200);
    expect((await request(`${l.url}/readyz`)).status).toBe(200);
    const rssAfter = vmRss(l.proc.pid!);
    expect(rssBefore).toBeGreaterThan(0);
    expect(rssAfter, `VmRSS ${Math.round(rssBefore / 1048576)} MB before the corpus, ${Math.round(rssAfter / 1048576)} MB after`).toBeLessThan(RSS_LIMIT_BYTES);
    // No error was logged for bad input: refusals are warnings at most.
    expect(l.logs().filter((x) => x.level === "error" || x.level === "fatal").map((x) => x.msg)).toEqual([]);
    await stillAccepting();
  });
});

/** One POST /api/alerts on a connection of its own: "202", or "refused: CODE" when the server closes it without an answer. */
function rawPost(port: number, body: string): Promise<string> {
  return new Promise((resolve) => {
    const s = net.connect(port, "127.0.0.1");
    let data = "";
    const timer = setTimeout(() => {
      s.destroy();
      resolve("no answer within 15 s");
    }, 15_000);
    const done = (outcome: string): void => {
      clearTimeout(timer);
      resolve(outcome);
    };
    s.on("connect", () => s.write(`POST /api/alerts HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`));
    s.on("data", (d) => (data += String(d)));
    s.on("error", (e: NodeJS.ErrnoException) => done(`refused: ${e.code ?? e.message}`));
    s.on("close", () => done(data === "" ? "refused: closed" : (/^HTTP\/1\.1 (\d{3})/.exec(data)?.[1] ?? `unexpected answer ${data.slice(0, 40)}`)));
  });
}
