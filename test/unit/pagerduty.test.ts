import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import fc from "fast-check";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { redactConfig, REDACTED } from "../../src/config/redact.js";
import { configSchema } from "../../src/config/schema.js";
import type { Block } from "../../src/core/blocks.js";
import { createIssue, type Issue, type NewIssue } from "../../src/core/issue.js";
import { SEVERITIES } from "../../src/core/severity.js";
import { subjectFromLabels } from "../../src/core/subject.js";
import { closeHttpAgent } from "../../src/destinations/http.js";
import { create } from "../../src/destinations/pagerduty/index.js";
import { dedupKey, eventBytes, PAGERDUTY_LIMITS, renderPagerDuty, type PagerDutyRenderOptions, type PagerDutyTrigger } from "../../src/destinations/pagerduty/render.js";
import { DESTINATION_TYPES } from "../../src/destinations/registry.js";
import { DeliveryError, type Destination, type SendContext } from "../../src/destinations/types.js";
import { createLogger, silentLogger } from "../../src/observability/logger.js";
import { compileTemplate } from "../../src/workflows/template.js";
import { PD_FAKE_ROUTING_KEY, startPagerDutyFake, type PagerDutyFake } from "../fakes/pagerduty.js";
import { runCli } from "../helpers/cli.js";
import { expectGolden, FIXED_ID, fixtureFiles, fixtureIssues, NOW } from "../helpers/render-cases.js";

/**
 * The PagerDuty destination: golden files of the events it renders, the
 * rules of the rendering (severity, dedup key, sizes), and the destination
 * against the local Events API fake, directly and through
 * `kubecano test-destination`. No error or log line carries the routing key.
 */

const OTHER_KEY = "Q9UNKNOWNKEY00000000000000000009";

const BASE: NewIssue = {
  title: "Pod is crash looping.",
  description: "Pod shop/api-7d9f (api) is in waiting state (reason: CrashLoopBackOff).",
  aggregationKey: "KubePodCrashLooping",
  severity: "HIGH",
  status: "FIRING",
  source: "prometheus",
  type: "alert",
  subject: subjectFromLabels(
    { alertname: "KubePodCrashLooping", namespace: "shop", pod: "api-7d9f", container: "api", severity: "critical", team: "payments" },
    { summary: "Pod is crash looping.", runbook_url: "https://runbooks.example.com/kubepodcrashlooping" },
  ),
  startsAt: "2026-11-26T10:38:06.184688767Z",
  links: [
    { name: "Runbook", url: "https://runbooks.example.com/kubepodcrashlooping", kind: "runbook" },
    { name: "Silence", url: "http://alertmanager.example.com/#/silences/new?filter=%7Balertname%3D%22KubePodCrashLooping%22%7D", kind: "silence" },
  ],
  clusterName: "prod-eu-1",
  fingerprint: "0a732576aaf8ce3c",
};

function issue(over: Partial<NewIssue> = {}): Issue {
  return { ...createIssue({ ...BASE, ...over }, NOW), id: FIXED_ID };
}

/** One enrichment per block type, as the built-in workflows produce them. */
function enrichedIssue(): Issue {
  const logs = Array.from({ length: 240 }, (_, i) => `2026-11-26T10:3${i % 10}:00Z ${i === 239 ? "panic: runtime error: invalid memory address" : `GET /api/orders 200 ${i}ms`}`).join("\n");
  const blocks: [string, Block[]][] = [
    ["Crash", [{ type: "header", text: "Container api restarted 12 times" }, { type: "markdown", text: "*Last state:* `Terminated` (OOMKilled, exit code 137)" }, { type: "divider" }]],
    ["Pod status", [{ type: "table", title: "Containers", headers: ["container", "state", "restarts", "last termination"], rows: [["api", "waiting (CrashLoopBackOff)", "12", "OOMKilled 137"], ["envoy", "running", "0", ""]] }]],
    ["Pod logs", [{ type: "file", filename: "api.log", title: "api logs", content: `${logs}\n`, excerptLines: 20 }]],
    ["Owner", [{ type: "json", title: "owner", data: { kind: "Deployment", name: "api", replicas: { desired: 3, ready: 2 } } }]],
    ["Checks", [{ type: "list", items: ["memory limit 256Mi", "no HPA"] }]],
    ["More", [{ type: "links", links: [{ name: "Grafana", url: "https://grafana.example.com/d/pods?var-pod=api-7d9f", kind: "dashboard" }, { name: "Runbook again", url: "https://runbooks.example.com/kubepodcrashlooping" }, { name: "not a web link", url: "javascript:alert(1)" }] }]],
  ];
  return issue({ enrichments: blocks.map(([title, b]) => ({ title, blocks: b, source: "test" })) });
}

function golden(file: string, value: unknown): void {
  expectGolden("pagerduty", file, value, "test/unit/pagerduty.test.ts");
}

function trigger(i: Issue, opts?: PagerDutyRenderOptions): PagerDutyTrigger {
  const e = renderPagerDuty(i, opts);
  if (e.event_action !== "trigger") throw new Error("expected a trigger");
  return e;
}

describe("renderPagerDuty golden files", () => {
  it("has Alertmanager fixtures to render", () => {
    expect(fixtureFiles.length).toBeGreaterThan(0);
  });

  it.each(fixtureFiles)("%s", (file) => {
    golden(file, fixtureIssues(file).map((i) => renderPagerDuty(i)));
  });

  it("enriched.json: every block type", () => {
    golden("enriched.json", renderPagerDuty(enrichedIssue()));
  });
});

describe("renderPagerDuty", () => {
  it("triggers a FIRING Issue with its fingerprint as dedup_key, and resolves the RESOLVED one with the same key and nothing else", () => {
    const t = renderPagerDuty(issue());
    expect(t).toMatchObject({ event_action: "trigger", dedup_key: "0a732576aaf8ce3c", client: "kubecano" });
    expect(renderPagerDuty(issue({ status: "RESOLVED", endsAt: "2026-11-26T11:00:00Z" }))).toEqual({ event_action: "resolve", dedup_key: "0a732576aaf8ce3c" });
  });

  it.each([
    ["HIGH", "critical"],
    ["LOW", "warning"],
    ["INFO", "info"],
    ["DEBUG", "info"],
  ] as const)("maps %s to %s by default", (severity, expected) => {
    expect(trigger(issue({ severity })).payload.severity).toBe(expected);
  });

  it("takes severity_map over the defaults, severity by severity", () => {
    const opts = { severityMap: { LOW: "error", DEBUG: "warning" } } as const;
    expect(SEVERITIES.map((s) => trigger(issue({ severity: s }), opts).payload.severity)).toEqual(["critical", "error", "info", "warning"]);
  });

  it("fills PD-CEF fields from the Issue: source cluster/subject, component container, group namespace, class alert name, timestamp in ms", () => {
    const p = trigger(issue()).payload;
    expect(p).toMatchObject({ summary: "Pod is crash looping.", source: "prod-eu-1/shop/pod/api-7d9f", component: "api", group: "shop", class: "KubePodCrashLooping", timestamp: "2026-11-26T10:38:06.184Z" });
  });

  it("renders source/component/group/class templates, falling back to the default when one renders empty", () => {
    const opts: PagerDutyRenderOptions = {
      source: compileTemplate("{{ clusterName }}:{{ labels.pod }}"),
      component: compileTemplate("{{ labels.team }}"),
      group: compileTemplate("{{ labels.nope }}"),
      class: compileTemplate("{{ alertname | lower }}"),
    };
    expect(trigger(issue(), opts).payload).toMatchObject({ source: "prod-eu-1:api-7d9f", component: "payments", group: "shop", class: "kubepodcrashlooping" });
  });

  it("an Issue with no subject is sourced at its cluster and has no empty fields", () => {
    const p = trigger(issue({ subject: { kind: "", name: "", labels: { alertname: "Watchdog" }, annotations: {} }, startsAt: "not a time" })).payload;
    expect(p.source).toBe("prod-eu-1");
    expect(p).not.toHaveProperty("component");
    expect(p).not.toHaveProperty("group");
    expect(p).not.toHaveProperty("timestamp");
  });

  it("cuts the summary to 1024 characters on one line", () => {
    const p = trigger(issue({ title: `${"x".repeat(600)}\n${"y".repeat(600)}` })).payload;
    expect(p.summary).toHaveLength(PAGERDUTY_LIMITS.summary);
    expect(p.summary).not.toContain("\n");
    expect(p.summary.endsWith("…")).toBe(true);
  });

  it("hashes a fingerprint longer than 255 characters, the same way for trigger and resolve", () => {
    const fp = "f".repeat(300);
    const t = renderPagerDuty(issue({ fingerprint: fp }));
    const r = renderPagerDuty(issue({ fingerprint: fp, status: "RESOLVED" }));
    expect(t.dedup_key.length).toBeLessThanOrEqual(255);
    expect(t.dedup_key).toBe(r.dedup_key);
    expect(t.dedup_key).toBe(dedupKey(fp));
    expect(dedupKey("f".repeat(299))).not.toBe(t.dedup_key);
  });

  it("links: the Issue's and the enrichments', http(s) only, each once", () => {
    expect(trigger(enrichedIssue()).links.map((l) => l.text)).toEqual(["Runbook", "Silence", "Grafana"]);
  });

  it("custom_details: labels, annotations, subject, and each enrichment compactly (rows as objects, logs as their last lines)", () => {
    const d = trigger(enrichedIssue()).payload.custom_details;
    expect(d["labels"]).toEqual(BASE.subject.labels);
    expect(d["annotations"]).toEqual(BASE.subject.annotations);
    expect(d).toMatchObject({ cluster: "prod-eu-1", subject: "shop/pod/api-7d9f", container: "api", severity: "HIGH" });
    expect(d["Pod status"]).toEqual({
      title: "Containers",
      rows: [
        { container: "api", state: "waiting (CrashLoopBackOff)", restarts: "12", "last termination": "OOMKilled 137" },
        { container: "envoy", state: "running", restarts: "0", "last termination": "" },
      ],
    });
    const log = d["Pod logs"] as { lines: number; last_20_lines: string[] };
    expect(log.lines).toBe(240);
    expect(log.last_20_lines).toHaveLength(20);
    expect(log.last_20_lines.at(-1)).toContain("panic: runtime error");
    expect(d["Crash"]).toEqual(["Container api restarted 12 times", "*Last state:* `Terminated` (OOMKilled, exit code 137)"]);
    expect(d["Owner"]).toEqual({ title: "owner", data: { kind: "Deployment", name: "api", replicas: { desired: 3, ready: 2 } } });
  });

  it("two enrichments with one title both stay, the second suffixed", () => {
    const i = issue({ enrichments: [{ title: "labels", blocks: [{ type: "list", items: ["a"] }] }, { title: "labels", blocks: [{ type: "list", items: ["b"] }] }] });
    const d = trigger(i).payload.custom_details;
    expect(d["labels"]).toEqual(BASE.subject.labels);
    expect(d["labels (2)"]).toEqual(["a"]);
    expect(d["labels (3)"]).toEqual(["b"]);
  });

  it("shrinks an Issue far over 512 KB until it fits, and says what was cut", () => {
    const huge = "x".repeat(200_000);
    const blocks: Block[] = [
      { type: "file", filename: "big.log", content: Array.from({ length: 5000 }, (_, i) => `${i} ${"y".repeat(300)}`).join("\n") },
      { type: "json", data: { blob: huge } },
      { type: "table", headers: ["a", "b"], rows: Array.from({ length: 5000 }, () => [huge.slice(0, 5000), "b"]) },
      { type: "markdown", text: huge },
      { type: "list", items: Array.from({ length: 3000 }, () => huge.slice(0, 1000)) },
    ];
    const i = issue({ enrichments: Array.from({ length: 40 }, (_, n) => ({ title: `e${n}`, blocks })) });
    const e = trigger(i);
    expect(eventBytes(e)).toBeLessThanOrEqual(PAGERDUTY_LIMITS.budgetBytes);
    expect(JSON.stringify(e.payload.custom_details)).toMatch(/cut|left out/);
  });

  it("keeps any Issue under the size limits (property)", () => {
    const text = fc.string({ unit: "binary", maxLength: 300 });
    const big = fc.string({ maxLength: 30_000 });
    const block: fc.Arbitrary<Block> = fc.oneof(
      fc.record({ type: fc.constant("markdown" as const), text: big }),
      fc.record({ type: fc.constant("table" as const), headers: fc.array(text, { maxLength: 5 }), rows: fc.array(fc.array(big, { maxLength: 5 }), { maxLength: 20 }) }),
      fc.record({ type: fc.constant("file" as const), filename: text, content: big }),
      fc.record({ type: fc.constant("json" as const), data: fc.jsonValue() }),
      fc.record({ type: fc.constant("header" as const), text }),
      fc.array(text, { maxLength: 10 }).map((items) => ({ type: "list" as const, items })),
      fc.array(fc.record({ name: text, url: fc.oneof(fc.webUrl(), text) }), { maxLength: 5 }).map((links) => ({ type: "links" as const, links })),
      fc.constant({ type: "divider" as const }),
    );
    fc.assert(
      fc.property(
        fc.record({
          title: big,
          fingerprint: fc.string({ minLength: 1, maxLength: 400 }),
          labels: fc.dictionary(text, big, { maxKeys: 30 }),
          severity: fc.constantFrom(...SEVERITIES),
          enrichments: fc.array(fc.record({ title: text, blocks: fc.array(block, { maxLength: 6 }) }), { maxLength: 30 }),
        }),
        (r) => {
          const i = issue({ title: r.title, fingerprint: r.fingerprint, severity: r.severity, subject: subjectFromLabels(r.labels), enrichments: r.enrichments });
          const e = trigger(i);
          expect(eventBytes(e)).toBeLessThanOrEqual(PAGERDUTY_LIMITS.budgetBytes);
          expect(e.payload.summary.length).toBeGreaterThan(0);
          expect(e.payload.summary.length).toBeLessThanOrEqual(PAGERDUTY_LIMITS.summary);
          expect(e.payload.source.length).toBeGreaterThan(0);
          expect(e.dedup_key.length).toBeLessThanOrEqual(PAGERDUTY_LIMITS.dedupKey);
          for (const l of e.links) expect(l.href).toMatch(/^https?:/);
        },
      ),
      { numRuns: 60 },
    );
  });

  it("is pure", () => {
    const i = enrichedIssue();
    expect(renderPagerDuty(i)).toEqual(renderPagerDuty(structuredClone(i)));
  });
});

describe("pagerduty params", () => {
  const parse = (p: Record<string, unknown>) => DESTINATION_TYPES.pagerduty.params.safeParse(p);

  it("defaults api_url and timeout, and drops a trailing slash", () => {
    expect(DESTINATION_TYPES.pagerduty.params.parse({ routing_key: PD_FAKE_ROUTING_KEY })).toEqual({ routing_key: PD_FAKE_ROUTING_KEY, api_url: "https://events.pagerduty.com", timeout: 10_000 });
    expect(DESTINATION_TYPES.pagerduty.params.parse({ routing_key: PD_FAKE_ROUTING_KEY, api_url: "http://pd.local:8080/", timeout: "3s" })).toMatchObject({ api_url: "http://pd.local:8080", timeout: 3000 });
  });

  it.each([
    ["a REST API token", "u+AbCdEfGhIjKlMnOpQr"],
    ["a key of the wrong length", "abc123"],
    ["a key with punctuation", "R0FAKEPAGERDUTYKEY0000000000000-"],
  ])("refuses %s without echoing it", (_what, key) => {
    const r = parse({ routing_key: key });
    expect(r.success).toBe(false);
    const text = JSON.stringify(r.error?.issues);
    expect(text).toContain("32-character Integration Key");
    expect(text).not.toContain(key);
  });

  it("requires routing_key, refuses unknown keys, bad templates and unknown severities", () => {
    expect(parse({}).success).toBe(false);
    expect(parse({ routing_key: PD_FAKE_ROUTING_KEY, routingKey: "x" }).success).toBe(false);
    expect(JSON.stringify(parse({ routing_key: PD_FAKE_ROUTING_KEY, source: "{{ labels.pod" }).error?.issues)).toMatch(/unterminated/);
    expect(parse({ routing_key: PD_FAKE_ROUTING_KEY, severity_map: { HIGH: "sev1" } }).success).toBe(false);
    expect(parse({ routing_key: PD_FAKE_ROUTING_KEY, severity_map: { CRITICAL: "critical" } }).success).toBe(false);
  });

  it("is a destination type in the config, and config print redacts the routing key", () => {
    const config = configSchema.parse({ destinations: [{ name: "pd", type: "pagerduty", params: { routing_key: PD_FAKE_ROUTING_KEY } }] });
    expect(JSON.stringify(redactConfig(config))).not.toContain(PD_FAKE_ROUTING_KEY);
    expect((redactConfig(config).destinations[0]!.params as Record<string, unknown>)["routing_key"]).toBe(REDACTED);
  });
});

describe("pagerduty destination against the Events API fake", () => {
  let fake: PagerDutyFake;
  const log = silentLogger();
  const ctx = (signal = new AbortController().signal): SendContext => ({ signal, attempt: 1, log });
  const dest = (params: Record<string, unknown> = {}): Destination =>
    create("pd", DESTINATION_TYPES.pagerduty.params.parse({ routing_key: PD_FAKE_ROUTING_KEY, api_url: fake.url, timeout: "10s", ...params }), { log });
  const failure = async (p: Promise<unknown>): Promise<DeliveryError> => {
    const e = await p.then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(e).toBeInstanceOf(DeliveryError);
    const err = e as DeliveryError;
    for (const text of [err.message, err.hint ?? "", err.code]) {
      expect(text).not.toContain(PD_FAKE_ROUTING_KEY);
      expect(text).not.toContain(OTHER_KEY);
    }
    return err;
  };

  beforeAll(async () => {
    fake = await startPagerDutyFake({ echoRoutingKey: true });
  });
  afterEach(() => fake.reset());
  afterAll(async () => {
    await fake.close();
    await closeHttpAgent();
  });

  it("triggers, folds a repeat into the same alert, then resolves it", async () => {
    const d = dest();
    const first = await d.send(issue(), ctx());
    expect(first).toEqual({ remoteId: "0a732576aaf8ce3c", detail: "triggered PagerDuty alert (dedup_key 0a732576aaf8ce3c)" });
    await d.send(issue(), ctx());
    const resolved = await d.send(issue({ status: "RESOLVED", endsAt: "2026-11-26T11:00:00Z" }), ctx());
    expect(resolved.detail).toBe("resolved PagerDuty alert (dedup_key 0a732576aaf8ce3c)");
    expect(fake.received("0a732576aaf8ce3c")).toEqual(["open", "update", "resolve"]);
    expect(fake.alerts("0a732576aaf8ce3c")).toEqual([expect.objectContaining({ status: "resolved", triggers: 2 })]);
    expect(fake.events.map((e) => [e.path, e.contentType, e.routing_key, e.event_action])).toEqual([
      ["/v2/enqueue", "application/json", PD_FAKE_ROUTING_KEY, "trigger"],
      ["/v2/enqueue", "application/json", PD_FAKE_ROUTING_KEY, "trigger"],
      ["/v2/enqueue", "application/json", PD_FAKE_ROUTING_KEY, "resolve"],
    ]);
    expect(d.resolvesIncidents).toBe(true);
  });

  it("sends exactly what render shows, with the routing key in place of the redaction", async () => {
    const d = dest();
    await d.send(enrichedIssue(), ctx());
    const shown = d.render(enrichedIssue());
    expect(shown.kind).toBe("json");
    expect(JSON.stringify(shown.body)).not.toContain(PD_FAKE_ROUTING_KEY);
    expect(fake.events[0]!.body).toEqual({ ...(shown.body as Record<string, unknown>), routing_key: PD_FAKE_ROUTING_KEY });
  });

  it("an Issue far over 512 KB is shrunk and accepted", async () => {
    const big: Block = { type: "file", filename: "huge.log", content: "z".repeat(400_000), excerptLines: 10 };
    await dest().send(issue({ enrichments: Array.from({ length: 10 }, (_, n) => ({ title: `logs ${n}`, blocks: [big, { type: "markdown", text: "m".repeat(100_000) }] })) }), ctx());
    expect(fake.events[0]!.status).toBe(202);
    expect(fake.events[0]!.bytes).toBeLessThanOrEqual(512 * 1024);
  });

  it("an unknown routing key is not retried, names routing_key in the hint, and never shows the key", async () => {
    const err = await failure(dest({ routing_key: OTHER_KEY }).send(issue(), ctx()));
    expect(err).toMatchObject({ retryable: false, code: "invalid_routing_key" });
    expect(err.message).toMatch(/^PagerDuty refused the event \(HTTP 400, invalid event\): Event object is invalid: Invalid routing key/);
    expect(err.message).toContain(REDACTED);
    expect(err.hint).toMatch(/routing_key.*Events API v2/);
  });

  it("an event PagerDuty refuses for another reason is a kubecano bug, not retried", async () => {
    fake.failNext(400, { body: { status: "invalid event", message: "Event object is invalid", errors: ["'payload.summary' is missing or blank"] } });
    const err = await failure(dest().send(issue(), ctx()));
    expect(err).toMatchObject({ retryable: false, code: "invalid_event" });
    expect(err.message).toBe("PagerDuty refused the event (HTTP 400, invalid event): Event object is invalid: 'payload.summary' is missing or blank");
    expect(err.hint).toMatch(/report this bug/);
  });

  it("the fake refuses events the way PagerDuty does", async () => {
    const post = async (body: unknown): Promise<[number, unknown]> => {
      const res = await fetch(`${fake.url}/v2/enqueue`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
      return [res.status, await res.json()];
    };
    expect(await post({ routing_key: PD_FAKE_ROUTING_KEY, event_action: "trigger", payload: { summary: "", source: "x", severity: "bad" } })).toEqual([
      400,
      { status: "invalid event", message: "Event object is invalid", errors: ["'payload.summary' is missing or blank", "'payload.severity' is invalid (must be one of: critical, error, warning, info)"] },
    ]);
    expect(await post({ routing_key: "short", event_action: "resolve" })).toEqual([
      400,
      { status: "invalid event", message: "Event object is invalid", errors: ["Length of 'routing_key' is incorrect (should be 32 characters) (short)", "'dedup_key' is missing or blank"] },
    ]);
    const [status, ok] = await post({ routing_key: PD_FAKE_ROUTING_KEY, event_action: "trigger", payload: { summary: "s", source: "x", severity: "info" } });
    expect(status).toBe(202);
    expect(ok).toMatchObject({ status: "success", message: "Event processed", dedup_key: expect.stringMatching(/^[0-9a-f]{32}$/) });
    expect(fake.accepted()).toBe(1);
  });

  it("429 is retried after Retry-After", async () => {
    fake.failNext(429, { retryAfterSeconds: 7 });
    const err = await failure(dest().send(issue(), ctx()));
    expect(err).toMatchObject({ retryable: true, code: "rate_limited", retryAfterMs: 7000 });
    await dest().send(issue(), ctx());
    expect(fake.received("0a732576aaf8ce3c")).toEqual(["open"]);
  });

  it.each([500, 502, 503, 504])("HTTP %i is retried", async (status) => {
    fake.failNext(status);
    const err = await failure(dest().send(issue(), ctx()));
    expect(err).toMatchObject({ retryable: true, code: `http_${status}` });
  });

  it("a wrong api_url (404) is not retried and says to check api_url", async () => {
    const err = await failure(dest({ api_url: `${fake.url}/v2/enqueue` }).send(issue(), ctx()));
    expect(err).toMatchObject({ retryable: false, code: "http_404" });
    expect(err.hint).toMatch(/api_url/);
  });

  it("no answer within the timeout: retryable, maybe delivered", async () => {
    fake.hangNext();
    const err = await failure(dest({ timeout: "300ms" }).send(issue(), ctx()));
    expect(err).toMatchObject({ retryable: true, code: "timeout", maybeDelivered: true });
  });

  it("a connection cut after the request went out: retryable, maybe delivered", async () => {
    fake.cutNext();
    const err = await failure(dest().send(issue(), ctx()));
    expect(err).toMatchObject({ retryable: true, maybeDelivered: true });
  });

  it("nothing listening: retryable", async () => {
    const closed = await startPagerDutyFake();
    const url = closed.url;
    await closed.close();
    const err = await failure(dest({ api_url: url }).send(issue(), ctx()));
    expect(err.retryable).toBe(true);
  });

  it("the delivery's abort signal stops the request", async () => {
    fake.hangNext();
    const ac = new AbortController();
    const p = dest().send(issue(), ctx(ac.signal));
    setTimeout(() => ac.abort(), 50);
    expect(await failure(p)).toMatchObject({ retryable: true, maybeDelivered: true });
  });

  it("logs nothing with the key, even at trace level", async () => {
    const lines: string[] = [];
    const traced = createLogger({ level: "trace", format: "json", stream: { write: (l: string) => lines.push(l) } as unknown as NodeJS.WritableStream });
    const d = create("pd", DESTINATION_TYPES.pagerduty.params.parse({ routing_key: OTHER_KEY, api_url: fake.url }), { log: traced });
    await failure(d.send(issue(), { signal: new AbortController().signal, attempt: 1, log: traced }));
    expect(lines.join("")).not.toContain(OTHER_KEY);
  });
});

describe("kubecano test-destination with pagerduty (built CLI)", () => {
  let fake: PagerDutyFake;
  let cwd: string;

  beforeAll(async () => {
    fake = await startPagerDutyFake({ echoRoutingKey: true });
    cwd = await mkdtemp(path.join(os.tmpdir(), "kubecano-pd-"));
    await writeFile(
      path.join(cwd, "kubecano.config.yaml"),
      `clusterName: ci\ndestinations:\n  - name: pager\n    type: pagerduty\n    params:\n      routing_key: \${PD_ROUTING_KEY}\n      api_url: ${fake.url}\n`,
    );
  });
  afterEach(() => fake.reset());
  afterAll(async () => {
    await fake.close();
    await rm(cwd, { recursive: true, force: true });
  });

  it("triggers a test incident and resolves it right after", async () => {
    const r = await runCli(["test-destination", "pager", "--json"], { cwd, env: { PD_ROUTING_KEY: PD_FAKE_ROUTING_KEY } });
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout) as { ok: boolean; results: { ok: boolean; detail: string }[] };
    expect(report.ok).toBe(true);
    expect(report.results[0]!.detail).toMatch(/^triggered PagerDuty alert \(dedup_key test-[0-9a-f]+\); resolved \(resolved PagerDuty alert/);
    expect(fake.events.map((e) => e.event_action)).toEqual(["trigger", "resolve"]);
    const key = fake.events[0]!.dedup_key!;
    expect(fake.events[1]!.dedup_key).toBe(key);
    expect(fake.received(key)).toEqual(["open", "resolve"]);
    expect(fake.alerts(key)).toEqual([expect.objectContaining({ status: "resolved", payload: expect.objectContaining({ severity: "info", summary: "kubecano test notification: please ignore", source: "ci" }) })]);
    expect(`${r.stdout}${r.stderr}`).not.toContain(PD_FAKE_ROUTING_KEY);
  });

  it("an unknown routing key fails (exit 1) with the hint, and the key appears nowhere", async () => {
    const r = await runCli(["test-destination", "pager", "--log-level", "trace"], { cwd, env: { PD_ROUTING_KEY: OTHER_KEY } });
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/✖ pager\s+PagerDuty refused the event \(HTTP 400, invalid event\): Event object is invalid: Invalid routing key/);
    expect(r.stdout).toMatch(/hint: check routing_key/);
    expect(`${r.stdout}${r.stderr}`).not.toContain(OTHER_KEY);
    expect(fake.events).toHaveLength(1);
  });
});
