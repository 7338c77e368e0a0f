import { readFileSync } from "node:fs";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { SEVERITIES } from "../../src/core/severity.js";
import { alertmanagerToIssues, parseWebhookBody, PayloadError, silenceUrl, validatePayload, type WebhookPayload } from "../../src/sources/alertmanager/index.js";
import { jsonErrorOffset } from "../../src/sources/alertmanager/parse.js";

interface Fixture {
  readonly body: Record<string, unknown>;
}

function fixture(name: string): Record<string, unknown> {
  const f = JSON.parse(readFileSync(new URL(`../fixtures/alertmanager/${name}.json`, import.meta.url), "utf8")) as Fixture;
  return f.body;
}

const clone = <T>(v: T): T => structuredClone(v);
const bytes = (v: unknown): Uint8Array => Buffer.from(typeof v === "string" ? v : JSON.stringify(v));
const FIRING = fixture("firing-crashloop");
const RESOLVED = fixture("resolved-crashloop");
const NOW = new Date("2026-11-26T12:00:00Z");

function parseOk(body: Uint8Array | string): WebhookPayload {
  const r = parseWebhookBody(body);
  if (!r.ok) throw new Error(`expected a valid payload, got: ${r.error.message}`);
  return r.value;
}

function parseErr(body: Uint8Array | string): PayloadError {
  const r = parseWebhookBody(body);
  if (r.ok) throw new Error("expected the payload to be refused");
  return r.error;
}

/** A one-alert payload with the given labels/annotations and alert fields. */
function payload(alert: Record<string, unknown> = {}, top: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    version: "4",
    status: "firing",
    externalURL: "http://am.example:9093",
    ...top,
    alerts: [{ status: "firing", labels: { alertname: "TestAlert" }, annotations: {}, startsAt: "2026-11-26T10:00:00Z", endsAt: "0001-01-01T00:00:00Z", generatorURL: "", ...alert }],
  };
}

function issuesOf(body: Record<string, unknown>, opts: Parameters<typeof alertmanagerToIssues>[1] = { clusterName: "test", now: NOW }) {
  return alertmanagerToIssues(parseOk(bytes(body)), opts);
}

function oneIssue(alert: Record<string, unknown>, top: Record<string, unknown> = {}) {
  const issues = issuesOf(payload(alert, top));
  expect(issues).toHaveLength(1);
  return issues[0]!;
}

/** The `filter` of a silence link, decoded. */
function silenceFilter(url: string): string {
  const u = new URL(url);
  const hash = u.hash; // "#/silences/new?filter=..."
  const q = hash.slice(hash.indexOf("?") + 1);
  return new URLSearchParams(q).get("filter") ?? "";
}

describe("captured fixtures", () => {
  it("converts the firing CrashLoop notification", () => {
    const issues = alertmanagerToIssues(parseOk(bytes(FIRING)), { clusterName: "prod", now: NOW });
    expect(issues).toHaveLength(1);
    const i = issues[0]!;
    expect(i).toMatchObject({
      fingerprint: "0a732576aaf8ce3c",
      title: "Pod is crash looping.",
      description: "Pod shop/api-7d9f (api) is in waiting state (reason: CrashLoopBackOff).",
      aggregationKey: "KubePodCrashLooping",
      severity: "LOW",
      status: "FIRING",
      source: "prometheus",
      type: "alert",
      startsAt: "2026-11-26T10:38:06.184Z",
      receivedAt: NOW.toISOString(),
      groupKey: '{}:{alertname="KubePodCrashLooping", namespace="shop"}',
      clusterName: "prod",
      enrichments: [],
    });
    expect(i.endsAt).toBeUndefined();
    expect("endsAt" in i).toBe(false);
    expect(i.subject).toMatchObject({ kind: "Pod", name: "api-7d9f", namespace: "shop", container: "api" });
    expect(i.subject.node).toBeUndefined();
    expect(i.subject.labels["job"]).toBe("kube-state-metrics");
    expect(i.subject.annotations["summary"]).toBe("Pod is crash looping.");
    // generatorURL is "" in the capture: no graph link.
    expect(i.links.map((l) => l.kind)).toEqual(["runbook", "silence"]);
    expect(i.links[0]).toEqual({ name: "Runbook", url: "https://runbooks.prometheus-operator.dev/runbooks/kubernetes/kubepodcrashlooping", kind: "runbook" });
    const silence = i.links[1]!;
    expect(silence.url.startsWith("http://vm:19093/#/silences/new?filter=")).toBe(true);
    expect(silenceFilter(silence.url)).toBe('{alertname="KubePodCrashLooping",container="api",job="kube-state-metrics",namespace="shop",pod="api-7d9f",severity="warning"}');
    expect(i.id).toMatch(/^[0-9a-f-]{36}$/);
  });

  it("converts the resolved notification with the same fingerprint and an endsAt", () => {
    const [firing] = alertmanagerToIssues(parseOk(bytes(FIRING)), { clusterName: "prod" });
    const issues = alertmanagerToIssues(parseOk(bytes(RESOLVED)), { clusterName: "prod" });
    expect(issues).toHaveLength(1);
    const r = issues[0]!;
    expect(r.status).toBe("RESOLVED");
    expect(r.endsAt).toBe("2026-11-26T10:38:09.000Z");
    expect(r.fingerprint).toBe(firing!.fingerprint);
    expect(r.id).not.toBe(firing!.id);
    // Only the summary annotation is left in the resolved capture.
    expect(r.title).toBe("Pod is crash looping.");
    expect(r.description).toBeUndefined();
  });

  it("accepts the fixture given as a string as well as bytes", () => {
    expect(parseWebhookBody(JSON.stringify(FIRING)).ok).toBe(true);
  });
});

describe("alertmanagerToIssues", () => {
  it("makes one Issue per alert, in order", () => {
    const body = payload();
    const alerts = ["A", "B", "C"].map((n) => ({ status: "firing", labels: { alertname: n, pod: `p-${n}` }, startsAt: "2026-11-26T10:00:00Z" }));
    const issues = issuesOf({ ...body, alerts });
    expect(issues.map((i) => i.aggregationKey)).toEqual(["A", "B", "C"]);
    expect(new Set(issues.map((i) => i.id)).size).toBe(3);
    expect(issuesOf({ ...body, alerts: [] })).toEqual([]);
  });

  it("takes the title from summary, else the alertname, else a placeholder", () => {
    expect(oneIssue({ annotations: { summary: "Disk full" } }).title).toBe("Disk full");
    expect(oneIssue({ annotations: { summary: "   " } }).title).toBe("TestAlert");
    expect(oneIssue({ annotations: {} }).title).toBe("TestAlert");
    expect(oneIssue({ annotations: undefined }).title).toBe("TestAlert");
    const unnamed = oneIssue({ labels: { pod: "x" } });
    expect(unnamed.title).toBe("UnnamedAlert");
    expect(unnamed.aggregationKey).toBe("UnnamedAlert");
  });

  it("takes the description from description, else message", () => {
    expect(oneIssue({ annotations: { description: "d", message: "m" } }).description).toBe("d");
    expect(oneIssue({ annotations: { description: "", message: "m" } }).description).toBe("m");
    expect(oneIssue({ annotations: { message: "m" } }).description).toBe("m");
    const none = oneIssue({ annotations: {} });
    expect(none.description).toBeUndefined();
    expect("description" in none).toBe(false);
  });

  it.each([
    ["critical", "HIGH"],
    ["high", "HIGH"],
    ["error", "HIGH"],
    ["page", "HIGH"],
    ["warning", "LOW"],
    ["low", "LOW"],
    ["info", "INFO"],
    ["none", "INFO"],
    ["debug", "DEBUG"],
    ["WARNING", "LOW"],
    ["p5-whatever", "INFO"],
    [undefined, "INFO"],
    // Names on Object.prototype are ordinary unknown values.
    ["constructor", "INFO"],
    ["__proto__", "INFO"],
    ["toString", "INFO"],
  ] as const)("severity label %s → %s", (label, expected) => {
    const labels: Record<string, string> = { alertname: "X" };
    if (label !== undefined) labels["severity"] = label;
    expect(oneIssue({ labels }).severity).toBe(expected);
  });

  it("applies the config severityMap on top of the defaults", () => {
    const body = payload({ labels: { alertname: "X", severity: "P1" } });
    expect(issuesOf(body, { clusterName: "c", severityMap: { p1: "HIGH" } })[0]!.severity).toBe("HIGH");
    const warn = payload({ labels: { alertname: "X", severity: "warning" } });
    expect(issuesOf(warn, { clusterName: "c", severityMap: { warning: "DEBUG" } })[0]!.severity).toBe("DEBUG");
  });

  describe("subject", () => {
    const ALL: Record<string, string> = {
      alertname: "X",
      pod: "p",
      deployment: "d",
      statefulset: "s",
      daemonset: "ds",
      job_name: "j",
      cronjob: "cj",
      replicaset: "rs",
      horizontalpodautoscaler: "hpa",
      persistentvolumeclaim: "pvc",
      persistentvolume: "pv",
      service: "svc",
      node: "n1",
      namespace: "ns",
    };
    const ORDER: [label: string, kind: string][] = [
      ["pod", "Pod"],
      ["deployment", "Deployment"],
      ["statefulset", "StatefulSet"],
      ["daemonset", "DaemonSet"],
      ["job_name", "Job"],
      ["cronjob", "CronJob"],
      ["replicaset", "ReplicaSet"],
      ["horizontalpodautoscaler", "HorizontalPodAutoscaler"],
      ["persistentvolumeclaim", "PersistentVolumeClaim"],
      ["persistentvolume", "PersistentVolume"],
      ["service", "Service"],
      ["node", "Node"],
      ["namespace", "Namespace"],
    ];

    it("follows the priority pod > deployment > statefulset > daemonset > job_name > ... > node > namespace", () => {
      const labels = { ...ALL };
      for (const [label, kind] of ORDER) {
        const s = oneIssue({ labels }).subject;
        expect([s.kind, s.name]).toEqual([kind, labels[label]]);
        delete labels[label];
      }
      const none = oneIssue({ labels }).subject;
      expect(none.kind).toBe("");
      expect(none.name).toBe("");
    });

    it("does not take the scrape job label for a Kubernetes Job", () => {
      const s = oneIssue({ labels: { alertname: "TargetDown", job: "kube-state-metrics", namespace: "monitoring" } }).subject;
      expect(s.kind).toBe("Namespace");
      expect(s.name).toBe("monitoring");
      const noNs = oneIssue({ labels: { alertname: "TargetDown", job: "node-exporter" } }).subject;
      expect(noNs.kind).toBe("");
      const both = oneIssue({ labels: { alertname: "KubeJobFailed", job: "kube-state-metrics", job_name: "backup-123", namespace: "ops" } }).subject;
      expect([both.kind, both.name, both.namespace]).toEqual(["Job", "backup-123", "ops"]);
    });

    it("fills container, node and namespace, and leaves namespace off cluster-scoped kinds", () => {
      const pod = oneIssue({ labels: { alertname: "X", pod: "p", container: "c", node: "n1", namespace: "ns" } }).subject;
      expect(pod).toMatchObject({ kind: "Pod", name: "p", container: "c", node: "n1", namespace: "ns" });
      const node = oneIssue({ labels: { alertname: "X", node: "n1", namespace: "monitoring" } }).subject;
      expect(node).toMatchObject({ kind: "Node", name: "n1", node: "n1" });
      expect(node.namespace).toBeUndefined();
      const pv = oneIssue({ labels: { alertname: "X", persistentvolume: "pv-1", namespace: "x" } }).subject;
      expect(pv.namespace).toBeUndefined();
      const ns = oneIssue({ labels: { alertname: "X", namespace: "shop" } }).subject;
      expect(ns.namespace).toBeUndefined();
      expect(ns.name).toBe("shop");
    });

    it("ignores empty label values", () => {
      const s = oneIssue({ labels: { alertname: "X", pod: "", deployment: "web", container: "", namespace: "ns" } }).subject;
      expect([s.kind, s.name]).toEqual(["Deployment", "web"]);
      expect(s.container).toBeUndefined();
    });
  });

  describe("fingerprint", () => {
    it("uses Alertmanager's fingerprint when present", () => {
      expect(oneIssue({ fingerprint: "abcdef0123456789" }).fingerprint).toBe("abcdef0123456789");
    });

    it("computes a stable one otherwise, different by subject and by alertname", () => {
      const base = { labels: { alertname: "A", pod: "p1", namespace: "ns" } };
      const f1 = oneIssue(base).fingerprint;
      expect(f1).toMatch(/^[0-9a-f]{16}$/);
      expect(oneIssue(base).fingerprint).toBe(f1);
      // An empty fingerprint is treated as absent.
      expect(oneIssue({ ...base, fingerprint: "" }).fingerprint).toBe(f1);
      // Same subject and alertname, different other labels and times: same incident.
      expect(oneIssue({ labels: { ...base.labels, severity: "critical" }, startsAt: "2026-11-27T00:00:00Z" }).fingerprint).toBe(f1);
      expect(oneIssue({ labels: { alertname: "A", pod: "p2", namespace: "ns" } }).fingerprint).not.toBe(f1);
      expect(oneIssue({ labels: { alertname: "A", pod: "p1", namespace: "other" } }).fingerprint).not.toBe(f1);
      expect(oneIssue({ labels: { alertname: "B", pod: "p1", namespace: "ns" } }).fingerprint).not.toBe(f1);
      expect(oneIssue({ labels: { alertname: "A", deployment: "p1", namespace: "ns" } }).fingerprint).not.toBe(f1);
    });
  });

  describe("timestamps", () => {
    it.each([
      ["2026-11-26T10:38:06.184688767Z", "2026-11-26T10:38:06.184Z"],
      ["2026-11-26T10:38:06Z", "2026-11-26T10:38:06.000Z"],
      ["2026-11-26T10:38:06.1Z", "2026-11-26T10:38:06.100Z"],
      ["2026-11-26T12:38:06.999999999+02:00", "2026-11-26T10:38:06.999Z"],
      ["2026-11-26t10:38:06z", "2026-11-26T10:38:06.000Z"],
      ["2026-11-26 10:38:06.12Z", "2026-11-26T10:38:06.120Z"],
      ["2026-11-26T10:38:06.123Z", "2026-11-26T10:38:06.123Z"],
      ["2024-02-29T23:59:59.5Z", "2024-02-29T23:59:59.500Z"],
      // Years before 100 (Date.UTC would read 0099 as 1999), 24:00 and day overflow as Date.parse has them.
      ["0099-12-31T00:00:00Z", "0099-12-31T00:00:00.000Z"],
      ["2026-11-26T24:00:00Z", "2026-11-27T00:00:00.000Z"],
      ["2026-02-29T00:00:00Z", "2026-03-01T00:00:00.000Z"],
      // A leap second does not parse: the text is kept as given.
      ["2026-12-31T23:59:60Z", "2026-12-31T23:59:60Z"],
    ])("startsAt %s → %s", (input, expected) => {
      expect(oneIssue({ startsAt: input }).startsAt).toBe(expected);
    });

    it("has no endsAt while firing (Go zero time) and one when resolved", () => {
      expect(oneIssue({ status: "firing", endsAt: "0001-01-01T00:00:00Z" }).endsAt).toBeUndefined();
      // A firing alert with a future endsAt (Alertmanager's resolve timeout) is still open.
      expect(oneIssue({ status: "firing", endsAt: "2026-11-26T10:05:00Z" }).endsAt).toBeUndefined();
      expect(oneIssue({ status: "firing", endsAt: undefined }).endsAt).toBeUndefined();
      const r = oneIssue({ status: "resolved", endsAt: "2026-11-26T10:05:00.123456789Z" });
      expect(r.status).toBe("RESOLVED");
      expect(r.endsAt).toBe("2026-11-26T10:05:00.123Z");
      expect(oneIssue({ status: "resolved", endsAt: "0001-01-01T00:00:00Z" }).endsAt).toBeUndefined();
    });
  });

  describe("links", () => {
    it("adds the graph, runbook, dashboard and silence links", () => {
      const i = oneIssue({
        generatorURL: "http://prometheus:9090/graph?g0.expr=up",
        annotations: { runbook_url: "https://runbooks.example/x", dashboard_url: "https://grafana.example/d/abc" },
      });
      expect(i.links.map((l) => [l.kind, l.name, l.url])).toEqual([
        ["runbook", "Runbook", "https://runbooks.example/x"],
        ["graph", "Source graph", "http://prometheus:9090/graph?g0.expr=up"],
        ["dashboard", "Dashboard", "https://grafana.example/d/abc"],
        ["silence", "Silence", expect.stringMatching(/^http:\/\/am\.example:9093\/#\/silences\/new\?filter=/)],
      ]);
    });

    it("reads the alternative runbook and dashboard annotations and drops duplicates", () => {
      const i = oneIssue({ annotations: { runbook: "https://r.example/", grafana_url: "https://g.example/", dashboard: "https://g.example/" } });
      expect(i.links.filter((l) => l.kind === "runbook").map((l) => l.url)).toEqual(["https://r.example/"]);
      expect(i.links.filter((l) => l.kind === "dashboard").map((l) => l.url)).toEqual(["https://g.example/"]);
    });

    it("skips an empty generatorURL and drops non-http(s) URLs", () => {
      const i = oneIssue({
        generatorURL: "javascript:alert(1)",
        annotations: { runbook_url: "javascript:alert(document.cookie)", dashboard_url: "file:///etc/passwd", grafana_url: "not a url" },
      });
      expect(i.links.map((l) => l.kind)).toEqual(["silence"]);
      expect(oneIssue({ generatorURL: "" }).links.map((l) => l.kind)).toEqual(["silence"]);
      expect(oneIssue({}, { externalURL: "javascript:alert(1)" }).links).toEqual([]);
      expect(oneIssue({ annotations: { runbook_url: `https://x.example/${"a".repeat(3100)}` } }).links.map((l) => l.kind)).toEqual(["silence"]);
    });

    it("builds no silence link without an externalURL", () => {
      expect(oneIssue({}, { externalURL: "" }).links).toEqual([]);
      expect(oneIssue({}, { externalURL: undefined }).links).toEqual([]);
    });

    it("puts every label in the silence filter, sorted, with quotes and backslashes escaped", () => {
      const labels = { alertname: "X", zeta: "last", path: "C:\\tmp", msg: 'say "hi"', multi: "a\nb", amp: "a&b=c#d" };
      const i = oneIssue({ labels }, { externalURL: "https://am.example/prefix/" });
      const link = i.links.find((l) => l.kind === "silence")!;
      expect(link.url.startsWith("https://am.example/prefix/#/silences/new?filter=")).toBe(true);
      expect(silenceFilter(link.url)).toBe('{alertname="X",amp="a&b=c#d",msg="say \\"hi\\"",multi="a\\nb",path="C:\\\\tmp",zeta="last"}');
    });

    it("encodes the filter exactly as encodeURIComponent of the whole text does", () => {
      const labels = { "a b": "plain-v_1.2~*(x)'!", alertname: "A", emoji: "\ud83d\ude00 ok", pct: "%41", "\u00e9": "\u00fc", slash: "a/b?c" };
      const url = silenceUrl("http://am//", labels);
      const text = '{a b="plain-v_1.2~*(x)\'!",alertname="A",emoji="\ud83d\ude00 ok",pct="%41",slash="a/b?c",\u00e9="\u00fc"}';
      expect(url).toBe(`http://am/#/silences/new?filter=${encodeURIComponent(text)}`);
    });

    it("drops a silence link whose externalURL is not http(s), or that is too long", () => {
      expect(oneIssue({}, { externalURL: "http://am#x/" }).links.map((l) => l.kind)).toEqual(["silence"]);
      expect(oneIssue({}, { externalURL: "ftp://am/" }).links).toEqual([]);
      expect(oneIssue({}, { externalURL: "http://am:9093" }).links.map((l) => l.kind)).toEqual(["silence"]);
      expect(oneIssue({ labels: { alertname: "X", long: "v".repeat(3000) } }, { externalURL: "http://am:9093" }).links).toEqual([]);
    });

    it("silenceUrl does not throw on a lone surrogate in a label (valid JSON can carry one)", () => {
      const url = silenceUrl("http://am", { a: "x\ud800y", b: "\udc00", "k\ud800": "v" });
      expect(silenceFilter(url)).toBe('{a="x\ufffdy",b="\ufffd",k\ufffd="v"}');
      // Through the whole path, from a JSON escape.
      const body = '{"externalURL":"http://am","alerts":[{"status":"firing","labels":{"alertname":"\\ud83d","pod":"\\udc00"},"startsAt":"2026-11-26T10:00:00Z"}]}';
      const issues = alertmanagerToIssues(parseOk(body), { clusterName: "c" });
      expect(issues).toHaveLength(1);
    });
  });

  it("tolerates unknown fields at every level", () => {
    const body = clone(FIRING);
    body["notification_reason"] = "repeat_interval";
    body["routeLabels"] = { team: "shop" };
    body["somethingNew"] = [1, { x: null }];
    const alert = (body["alerts"] as Record<string, unknown>[])[0]!;
    alert["silencedBy"] = [];
    alert["extra"] = { nested: true };
    const issues = alertmanagerToIssues(parseOk(bytes(body)), { clusterName: "c" });
    expect(issues).toHaveLength(1);
    expect(issues[0]!.fingerprint).toBe("0a732576aaf8ce3c");
  });
});

describe("parse errors", () => {
  it("reports invalid JSON with line and column", () => {
    const e = parseErr('{"alerts": [\n  {,}]}');
    expect(e).toBeInstanceOf(PayloadError);
    expect(e.kind).toBe("json");
    expect(e.message).toMatch(/^invalid JSON at line 2 column 4: /);
    const e2 = parseErr('{\n"a": 1,\n"b": tru }');
    expect(e2.message).toMatch(/^invalid JSON at line 3 column \d+/);
  });

  it.each([
    ['{"a" 1}', 1, 6, "Expected ':' after property name"],
    ["[1 2]", 1, 4, "Expected ',' or ']' after array element"],
    ["[1,]", 1, 4, "Unexpected token \"]\""],
    ["{'a':1}", 1, 2, "Expected property name or '}'"],
    ['{"a":1}}', 1, 8, "Unexpected non-whitespace character after JSON"],
    ['{"a":\n  [1,\n   2,\n   x]}', 4, 4, 'Unexpected token "x"'],
    ['{"a":\n  "b\u0001"}', 2, 5, "Bad control character in string literal"],
    ['{"a": "\\q"}', 1, 9, "Bad escaped character"],
    ["[-]", 1, 3, "No number after minus sign"],
    ["\ud83d\ude00", 1, 1, "Unexpected token U+1F600"],
    ["[\u2028]", 1, 2, "Unexpected token U+2028"],
    ["[1,\n\t ]", 2, 3, 'Unexpected token "]"'],
  ])("invalid JSON %j → line %i column %i", (text, line, column, reason) => {
    const e = parseErr(text);
    expect(e.kind).toBe("json");
    expect(e.message).toBe(`invalid JSON at line ${line} column ${column}: ${reason}`);
  });

  it("does not echo the input in a JSON error", () => {
    const secret = "xoxb-not-to-be-echoed";
    const e = parseErr(`{"token": "${secret}", "alerts": [tru]}`);
    expect(e.message).toBe('invalid JSON at line 1 column 50: Unexpected token "]"');
    expect(e.message).not.toContain(secret);
  });

  it("reports truncated JSON at its end", () => {
    const text = JSON.stringify(FIRING, null, 2);
    const cut = text.slice(0, Math.floor(text.length / 2));
    const e = parseErr(cut);
    expect(e.kind).toBe("json");
    const lines = cut.split("\n");
    expect(e.message).toMatch(new RegExp(`^invalid JSON at line ${lines.length} column \\d+: `));
    expect(parseErr('{"alerts": [').message).toMatch(/^invalid JSON at line 1 column 13: /);
  });

  it("refuses an empty body", () => {
    for (const b of ["", "   \n\t ", new Uint8Array(0)]) {
      const e = parseErr(b);
      expect(e.kind).toBe("json");
      expect(e.message).toMatch(/request body is empty/);
    }
  });

  it("refuses invalid UTF-8 and names the byte offset", () => {
    const valid = Buffer.from('{"alerts":[],"x":"');
    const bad = Buffer.concat([valid, Buffer.from([0xc3, 0x28]), Buffer.from('"}')]);
    const e = parseErr(bad);
    expect(e.kind).toBe("encoding");
    expect(e.message).toBe(`request body is not valid UTF-8 (first bad byte at offset ${valid.length})`);
    // Overlong encoding, a UTF-16 surrogate encoded in UTF-8, and a truncated sequence at the end.
    expect(parseErr(Buffer.from([0x7b, 0xc0, 0xaf, 0x7d])).message).toMatch(/offset 1\)/);
    expect(parseErr(Buffer.from([0x20, 0x20, 0xed, 0xa0, 0x80])).message).toMatch(/offset 2\)/);
    expect(parseErr(Buffer.from([0x7b, 0x7d, 0xe2, 0x82])).message).toMatch(/offset 2\)/);
    // A UTF-8 BOM is fine.
    expect(parseWebhookBody(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('{"alerts":[]}')])).ok).toBe(true);
  });

  const a0 = (f: (alert: Record<string, unknown>) => void) => (b: Record<string, unknown>) => f((b["alerts"] as Record<string, unknown>[])[0]!);
  it.each<[string, (b: Record<string, unknown>) => void, string]>([
    ["version", (b) => (b["version"] = 4), "version"],
    ["groupKey", (b) => (b["groupKey"] = {}), "groupKey"],
    ["truncatedAlerts (string)", (b) => (b["truncatedAlerts"] = "0"), "truncatedAlerts"],
    ["truncatedAlerts (negative)", (b) => (b["truncatedAlerts"] = -1), "truncatedAlerts"],
    ["truncatedAlerts (fraction)", (b) => (b["truncatedAlerts"] = 1.5), "truncatedAlerts"],
    ["status", (b) => (b["status"] = "pending"), "status"],
    ["receiver", (b) => (b["receiver"] = null), "receiver"],
    ["groupLabels (array)", (b) => (b["groupLabels"] = []), "groupLabels"],
    ["groupLabels value", (b) => (b["groupLabels"] = { alertname: 1 }), "groupLabels.alertname"],
    ["commonLabels value", (b) => (b["commonLabels"] = { namespace: false }), "commonLabels.namespace"],
    ["commonAnnotations value", (b) => (b["commonAnnotations"] = { summary: ["x"] }), "commonAnnotations.summary"],
    ["externalURL", (b) => (b["externalURL"] = 9093), "externalURL"],
    ["alerts (object)", (b) => (b["alerts"] = {}), "alerts"],
    ["alerts (null)", (b) => (b["alerts"] = null), "alerts"],
    ["alerts[0] (number)", (b) => (b["alerts"] = [5]), "alerts[0]"],
    ["alerts[0].status", a0((a) => (a["status"] = "pending")), "alerts[0].status"],
    ["alerts[0].status missing", a0((a) => delete a["status"]), "alerts[0].status"],
    ["alerts[0].labels missing", a0((a) => delete a["labels"]), "alerts[0].labels"],
    ["alerts[0].labels (string)", a0((a) => (a["labels"] = "x")), "alerts[0].labels"],
    ["alerts[0].labels.severity", a0((a) => ((a["labels"] as Record<string, unknown>)["severity"] = 3)), "alerts[0].labels.severity"],
    ["alerts[0].labels odd key", a0((a) => ((a["labels"] as Record<string, unknown>)["app.kubernetes.io/name"] = null)), 'alerts[0].labels["app.kubernetes.io/name"]'],
    ["alerts[0].annotations", a0((a) => (a["annotations"] = [])), "alerts[0].annotations"],
    ["alerts[0].annotations.summary", a0((a) => ((a["annotations"] as Record<string, unknown>)["summary"] = true)), "alerts[0].annotations.summary"],
    ["alerts[0].startsAt (not a time)", a0((a) => (a["startsAt"] = "yesterday")), "alerts[0].startsAt"],
    ["alerts[0].startsAt (number)", a0((a) => (a["startsAt"] = 1732617486)), "alerts[0].startsAt"],
    ["alerts[0].startsAt missing", a0((a) => delete a["startsAt"]), "alerts[0].startsAt"],
    ["alerts[0].endsAt", a0((a) => (a["endsAt"] = "2026-11-26")), "alerts[0].endsAt"],
    ["alerts[0].generatorURL", a0((a) => (a["generatorURL"] = false)), "alerts[0].generatorURL"],
    ["alerts[0].fingerprint", a0((a) => (a["fingerprint"] = 123)), "alerts[0].fingerprint"],
  ])("wrong type: %s", (_name, mutate, path) => {
    const body = clone(FIRING);
    mutate(body);
    const e = parseErr(bytes(body));
    expect(e.kind).toBe("schema");
    expect(e.message.startsWith(`${path}: `)).toBe(true);
    expect(e.message).not.toContain("\n");
  });

  it("names the index of the bad alert and counts further problems", () => {
    const body = clone(FIRING);
    const good = (body["alerts"] as unknown[])[0];
    body["alerts"] = [good, good, { ...(good as object), labels: { severity: 1, a: 2, b: 3, c: 4, d: 5 } }];
    const e = parseErr(bytes(body));
    expect(e.message).toMatch(/^alerts\[2\]\.labels\.severity: expected string, received number; .*; and 2 more problems$/);
  });

  it("says what is missing when alerts is absent", () => {
    const body = clone(FIRING);
    delete body["alerts"];
    const e = parseErr(bytes(body));
    expect(e.kind).toBe("schema");
    expect(e.message).toBe("alerts: is required (expected array)");
  });

  it.each([
    ["[]", "an array"],
    ["[{}]", "an array"],
    ["null", "null"],
    ["42", "a number"],
    ['"alerts"', "a string"],
    ["true", "a boolean"],
  ])("refuses a top level %s", (text, what) => {
    const e = parseErr(text);
    expect(e.kind).toBe("schema");
    expect(e.message).toBe(`expected a JSON object with an "alerts" array, got ${what}`);
  });

  it("validatePayload refuses non-objects without throwing", () => {
    for (const v of [undefined, null, 1, "x", [], () => 1]) {
      const r = validatePayload(v);
      expect(r.ok).toBe(false);
    }
    expect(validatePayload({ alerts: [] }).ok).toBe(true);
  });

  it("handles 10,000-deep nesting without throwing", () => {
    const deepArray = `${"[".repeat(10_000)}${"]".repeat(10_000)}`;
    expect(parseErr(deepArray).kind).toBe("schema");
    const deepObject = `${'{"a":'.repeat(10_000)}1${"}".repeat(10_000)}`;
    expect(parseErr(deepObject).message).toMatch(/^alerts: is required/);
    // Deep but unknown: tolerated like any unknown field.
    const deepUnknown = `{"alerts":[],"x":${deepArray}}`;
    expect(parseWebhookBody(deepUnknown).ok).toBe(true);
    // Deep where a string is expected: a schema error at that path.
    const deepLabel = `{"alerts":[{"status":"firing","startsAt":"2026-11-26T10:00:00Z","labels":{"a":${deepArray}}}]}`;
    expect(parseErr(deepLabel).message).toMatch(/^alerts\[0\]\.labels\.a: /);
    // Unbalanced deep input is a JSON error.
    expect(parseErr("[".repeat(10_000)).kind).toBe("json");
  });
});

describe("parseWebhookBody never throws (property)", () => {
  /** Strings that include lone surrogates, quotes, backslashes and controls. */
  const nastyChar = fc.oneof(
    { weight: 1, arbitrary: fc.constantFrom("\ud800", "\udbff", "\udc00", "\udfff", '"', "\\", "\u0000", "\u001b", "\n", "}", "constructor", "__proto__") },
    { weight: 4, arbitrary: fc.string({ unit: "binary", minLength: 1, maxLength: 1 }) },
  );
  const nastyString = fc.string({ unit: nastyChar, maxLength: 20 });
  const anyJson = fc.jsonValue({ stringUnit: nastyChar, maxDepth: 4 });

  /** True when the body was valid and converted. */
  function checkResult(body: Uint8Array | string): boolean {
    let r: ReturnType<typeof parseWebhookBody>;
    try {
      r = parseWebhookBody(body);
    } catch (e) {
      throw new Error(`parseWebhookBody threw: ${String(e)}`);
    }
    if (r.ok) {
      const issues = alertmanagerToIssues(r.value, { clusterName: "c" });
      expect(issues).toHaveLength(r.value.alerts.length);
      for (const i of issues) {
        expect(SEVERITIES).toContain(i.severity);
        expect(typeof i.title).toBe("string");
        expect(i.fingerprint).not.toBe("");
        // The Issue is plain JSON: it can be stored and shipped as is.
        expect(() => JSON.stringify(i)).not.toThrow();
      }
      return true;
    }
    expect(r.error).toBeInstanceOf(PayloadError);
    expect(["encoding", "json", "schema"]).toContain(r.error.kind);
    expect(r.error.message).not.toMatch(/[\r\n\u2028\u2029]/);
    expect(r.error.message.length).toBeGreaterThan(0);
    expect(r.error.message.length).toBeLessThanOrEqual(500);
    if (r.error.kind === "json" && !/empty|nested too deeply/.test(r.error.message)) {
      expect(r.error.message).toMatch(/^invalid JSON at line \d+ column \d+: /);
    }
    return false;
  }

  it("the JSON error locator accepts every valid JSON text and agrees with JSON.parse", () => {
    fc.assert(
      fc.property(anyJson, fc.constantFrom(undefined, 2), (v, indent) => {
        expect(jsonErrorOffset(JSON.stringify(v, null, indent))).toBeUndefined();
      }),
      { numRuns: 300 },
    );
    fc.assert(
      fc.property(fc.string({ unit: fc.constantFrom(..."{}[],:\"\\ 01-.eE+tfnrulsax\n\u0001"), maxLength: 30 }), (t) => {
        let valid = true;
        try {
          JSON.parse(t);
        } catch {
          valid = false;
        }
        const at = jsonErrorOffset(t);
        if (valid) expect(at).toBeUndefined();
        else expect(at).toBeGreaterThanOrEqual(0);
      }),
      { numRuns: 2000 },
    );
  });

  it("for arbitrary bytes", () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 512 }), (b) => void checkResult(b)), { numRuns: 500 });
  });

  it("for arbitrary JSON values, as bytes and as a string", () => {
    fc.assert(
      fc.property(anyJson, (v) => {
        checkResult(bytes(v));
        checkResult(JSON.stringify(v));
      }),
      { numRuns: 500 },
    );
  });

  it("for objects that look like payloads", () => {
    // Mostly valid fields, so that most payloads get through to the conversion.
    const mostly = <T,>(valid: fc.Arbitrary<T>): fc.Arbitrary<unknown> => fc.oneof({ weight: 6, arbitrary: valid }, { weight: 1, arbitrary: anyJson });
    const alert = fc.record(
      {
        status: mostly(fc.constantFrom("firing", "resolved")),
        labels: mostly(fc.dictionary(fc.oneof(fc.constantFrom("alertname", "severity", "pod", "namespace", "node", "job", "container"), nastyString), nastyString)),
        annotations: mostly(fc.dictionary(fc.constantFrom("summary", "description", "message", "runbook_url", "dashboard_url", "x"), fc.oneof(nastyString, fc.webUrl()))),
        startsAt: mostly(fc.constantFrom("2026-11-26T10:00:00Z", "0001-01-01T00:00:00Z", "9999-12-31T23:59:59.999999999+14:00", "2026-13-45T99:99:99Z", "0000-01-01T00:00:00-23:59")),
        endsAt: mostly(fc.constantFrom("0001-01-01T00:00:00Z", "2026-02-30T10:00:00-23:59", "2026-11-26T10:00:00.5Z")),
        generatorURL: mostly(fc.oneof(fc.webUrl(), nastyString, fc.constant("javascript:alert(1)"))),
        fingerprint: mostly(fc.oneof(fc.string({ unit: fc.constantFrom(..."0123456789abcdef") }), nastyString)),
      },
      { requiredKeys: ["status", "labels", "startsAt"] },
    );
    const body = fc.record(
      {
        alerts: fc.array(alert, { maxLength: 4 }),
        externalURL: mostly(fc.oneof(fc.webUrl(), nastyString)),
        groupKey: mostly(nastyString),
        truncatedAlerts: mostly(fc.nat()),
        extra: anyJson,
      },
      { requiredKeys: ["alerts"] },
    );
    let converted = 0;
    fc.assert(
      fc.property(body, (b) => {
        if (checkResult(bytes(b))) converted++;
      }),
      // About a quarter reach the conversion: 1000 runs put ~240 there, far from the bound below (500 runs gave ~120, and now and then under 100).
      { numRuns: 1000 },
    );
    // The property is only worth something if many payloads reached the conversion.
    expect(converted).toBeGreaterThan(100);
  });

  it("for mutated versions of the fixture", () => {
    type Mutation = { op: "set" | "delete"; path: (string | number)[]; value: unknown } | { op: "bytes"; at: number; byte: number } | { op: "cut"; at: number };
    const key = fc.oneof(
      fc.constantFrom("alerts", "labels", "annotations", "status", "startsAt", "endsAt", "fingerprint", "generatorURL", "externalURL", "severity", "pod", "summary", "truncatedAlerts", "groupKey"),
      fc.nat(2),
      nastyString,
    );
    // Paths into the places that matter, then anywhere.
    const path = fc.oneof(
      fc.tuple(fc.constantFrom<(string | number)[]>([], ["alerts"], ["alerts", 0], ["alerts", 0, "labels"], ["alerts", 0, "annotations"], ["commonLabels"]), key).map(([prefix, k]) => [...prefix, k]),
      fc.array(key, { minLength: 1, maxLength: 4 }),
    );
    const mutation: fc.Arbitrary<Mutation> = fc.oneof(
      fc.record({ op: fc.constantFrom("set" as const, "delete" as const), path, value: fc.oneof(nastyString, anyJson) }),
      fc.record({ op: fc.constant("bytes" as const), at: fc.nat(), byte: fc.integer({ min: 0, max: 255 }) }),
      fc.record({ op: fc.constant("cut" as const), at: fc.nat() }),
    );
    const base = JSON.stringify(FIRING);
    fc.assert(
      fc.property(fc.array(mutation, { minLength: 1, maxLength: 5 }), (mutations) => {
        let doc: unknown = clone(FIRING);
        let text: Buffer | undefined;
        for (const m of mutations) {
          if (m.op === "set" || m.op === "delete") {
            if (text !== undefined) continue;
            doc = applyAt(doc, m.path, m.op, m.value);
          } else {
            text ??= Buffer.from(JSON.stringify(doc) ?? base);
            if (text.length === 0) continue;
            if (m.op === "bytes") text[m.at % text.length] = m.byte;
            else if (m.op === "cut") text = text.subarray(0, m.at % text.length);
          }
        }
        checkResult(text ?? bytes(doc));
      }),
      { numRuns: 1000 },
    );
  });
});

/** Sets or deletes the value at `path`, creating nothing: a path that does not exist is left alone. */
function applyAt(doc: unknown, path: readonly (string | number)[], op: "set" | "delete", value: unknown): unknown {
  if (path.length === 0) return op === "set" ? value : doc;
  let node: unknown = doc;
  for (const k of path.slice(0, -1)) {
    if (typeof node !== "object" || node === null) return doc;
    node = (node as Record<string | number, unknown>)[k];
  }
  if (typeof node !== "object" || node === null) return doc;
  const last = path[path.length - 1]!;
  if (op === "delete") delete (node as Record<string | number, unknown>)[last];
  else (node as Record<string | number, unknown>)[last] = value;
  return doc;
}
