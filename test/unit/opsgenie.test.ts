import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import fc from "fast-check";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { redactConfig, REDACTED } from "../../src/config/redact.js";
import { configSchema } from "../../src/config/schema.js";
import type { Block } from "../../src/core/blocks.js";
import { createIssue, type Issue, type NewIssue } from "../../src/core/issue.js";
import { SEVERITIES } from "../../src/core/severity.js";
import { subjectFromLabels } from "../../src/core/subject.js";
import { closeHttpAgent } from "../../src/destinations/http.js";
import { create } from "../../src/destinations/opsgenie/index.js";
import { aliasOf, OPSGENIE_LIMITS, renderOpsgenie, type OpsgenieCreate, type OpsgenieRenderOptions } from "../../src/destinations/opsgenie/render.js";
import { DESTINATION_TYPES } from "../../src/destinations/registry.js";
import { DeliveryError, type Destination, type SendContext } from "../../src/destinations/types.js";
import { createLogger, silentLogger } from "../../src/observability/logger.js";
import { compileTemplate } from "../../src/workflows/template.js";
import { OG_FAKE_API_KEY, startOpsgenieFake, type OpsgenieFake } from "../fakes/opsgenie.js";
import { runCli } from "../helpers/cli.js";
import { expectGolden, FIXED_ID, fixtureFiles, fixtureIssues, NOW } from "../helpers/render-cases.js";

/**
 * The Opsgenie destination: golden files of the requests it renders, the
 * rules of the rendering (priority, alias, responders and tags from
 * templates, field limits), and the destination against the local Alert API
 * fake, directly and through `kubecano test-destination`. No error or log
 * line carries the API key.
 */

const OTHER_KEY = "0b9e7d6c-5a4f-4e3d-9c2b-1a0f9e8d7c6b";
const READ_KEY = "11111111-2222-4333-8444-555555555555";
const ACCOUNT_KEY = "99999999-8888-4777-8666-555555555555";

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
  links: [{ name: "Runbook", url: "https://runbooks.example.com/kubepodcrashlooping", kind: "runbook" }],
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
    ["More", [{ type: "links", links: [{ name: "Grafana", url: "https://grafana.example.com/d/pods?var-pod=api-7d9f", kind: "dashboard" }] }]],
  ];
  return issue({ enrichments: blocks.map(([title, b]) => ({ title, blocks: b, source: "test" })) });
}

function golden(file: string, value: unknown): void {
  expectGolden("opsgenie", file, value, "test/unit/opsgenie.test.ts");
}

function created(i: Issue, opts?: OpsgenieRenderOptions): OpsgenieCreate {
  const r = renderOpsgenie(i, opts);
  if (r.action !== "create") throw new Error("expected a create");
  return r.body;
}

/** Every limit the Alert API enforces on a create. */
function expectWithinLimits(b: OpsgenieCreate): void {
  expect(b.message.trim()).not.toBe("");
  expect(b.message.length).toBeLessThanOrEqual(OPSGENIE_LIMITS.message);
  expect(b.alias.length).toBeLessThanOrEqual(OPSGENIE_LIMITS.alias);
  expect(b.description.length).toBeLessThanOrEqual(OPSGENIE_LIMITS.description);
  expect(b.entity?.length ?? 0).toBeLessThanOrEqual(OPSGENIE_LIMITS.entity);
  expect(b.tags?.length ?? 0).toBeLessThanOrEqual(OPSGENIE_LIMITS.tags);
  for (const t of b.tags ?? []) expect(t.length).toBeLessThanOrEqual(OPSGENIE_LIMITS.tagChars);
  expect(Object.entries(b.details).reduce((n, [k, v]) => n + k.length + v.length, 0)).toBeLessThanOrEqual(OPSGENIE_LIMITS.detailsChars);
  expect(b.responders?.length ?? 0).toBeLessThanOrEqual(OPSGENIE_LIMITS.responders);
}

describe("renderOpsgenie golden files", () => {
  it("has Alertmanager fixtures to render", () => {
    expect(fixtureFiles.length).toBeGreaterThan(0);
  });

  it.each(fixtureFiles)("%s", (file) => {
    golden(file, fixtureIssues(file).map((i) => renderOpsgenie(i)));
  });

  it("enriched.json: every block type, with responders, tags and entity from templates", () => {
    golden(
      "enriched.json",
      renderOpsgenie(enrichedIssue(), {
        responders: [
          { type: "team", by: "name", template: compileTemplate("{{ labels.team }}") },
          { type: "user", by: "username", template: compileTemplate("oncall@example.com") },
        ],
        tags: [compileTemplate("kubecano"), compileTemplate("{{ clusterName }}"), compileTemplate("{{ namespace }}")],
        entity: compileTemplate("{{ namespace }}/{{ labels.pod }}"),
      }),
    );
  });
});

describe("renderOpsgenie", () => {
  it("creates a FIRING Issue with its fingerprint as alias, and closes the RESOLVED one by alias", () => {
    const c = renderOpsgenie(issue());
    expect(c).toMatchObject({ action: "create", method: "POST", path: "/v2/alerts", body: { alias: "0a732576aaf8ce3c", message: "Pod is crash looping.", source: "kubecano", entity: "shop/pod/api-7d9f" } });
    expect(renderOpsgenie(issue({ status: "RESOLVED", endsAt: "2026-11-26T11:00:06.184Z" }))).toEqual({
      action: "close",
      method: "POST",
      path: "/v2/alerts/0a732576aaf8ce3c/close?identifierType=alias",
      body: { source: "kubecano", user: "kubecano", note: "Resolved after 22m in cluster prod-eu-1: Pod is crash looping." },
    });
  });

  it("escapes the alias in the close path", () => {
    expect(renderOpsgenie(issue({ fingerprint: "a/b?c d", status: "RESOLVED" })).path).toBe("/v2/alerts/a%2Fb%3Fc%20d/close?identifierType=alias");
  });

  it.each([
    ["HIGH", "P1"],
    ["LOW", "P3"],
    ["INFO", "P5"],
    ["DEBUG", "P5"],
  ] as const)("maps %s to %s by default", (severity, expected) => {
    expect(created(issue({ severity })).priority).toBe(expected);
  });

  it("takes priority_map over the defaults, severity by severity", () => {
    expect(SEVERITIES.map((s) => created(issue({ severity: s }), { priorityMap: { HIGH: "P2", DEBUG: "P4" } }).priority)).toEqual(["P2", "P3", "P5", "P4"]);
  });

  it("responders from templates: empty ones left out, duplicates once", () => {
    const opts: OpsgenieRenderOptions = {
      responders: [
        { type: "team", by: "name", template: compileTemplate("{{ labels.team }}") },
        { type: "team", by: "name", template: compileTemplate("{{ labels.owner }}") },
        { type: "team", by: "name", template: compileTemplate("payments") },
        { type: "escalation", by: "name", template: compileTemplate("{{ labels.team }}-escalation") },
        { type: "user", by: "username", template: compileTemplate("{{ annotations.oncall }}") },
        { type: "schedule", by: "id", template: compileTemplate("4513b7ea-3b91-438f-b7e4-e3e54af9147c") },
      ],
    };
    expect(created(issue(), opts).responders).toEqual([
      { type: "team", name: "payments" },
      { type: "escalation", name: "payments-escalation" },
      { type: "schedule", id: "4513b7ea-3b91-438f-b7e4-e3e54af9147c" },
    ]);
    expect(created(issue({ subject: { ...BASE.subject, labels: {} } }), { responders: opts.responders!.slice(0, 2) })).not.toHaveProperty("responders");
  });

  it("tags from templates: trimmed to one line, empty left out, each once, cut to 50 characters, at most 20", () => {
    const tags = [compileTemplate(" {{ namespace }} "), compileTemplate("{{ labels.nope }}"), compileTemplate("shop"), compileTemplate("x".repeat(80)), ...Array.from({ length: 30 }, (_, i) => compileTemplate(`t${i}`))];
    const got = created(issue(), { tags }).tags!;
    expect(got.slice(0, 2)).toEqual(["shop", `${"x".repeat(49)}…`]);
    expect(got).toHaveLength(20);
  });

  it("entity: the subject by default, a template when given, left out when empty", () => {
    expect(created(issue({ subject: { kind: "", name: "", labels: {}, annotations: {} } }))).not.toHaveProperty("entity");
    expect(created(issue(), { entity: compileTemplate("{{ labels.team }}/{{ labels.container }}") }).entity).toBe("payments/api");
  });

  it("message: the title on one line, at most 130 characters", () => {
    const m = created(issue({ title: `${"a".repeat(100)}\n${"b".repeat(100)}` })).message;
    expect(m).toHaveLength(130);
    expect(m).not.toContain("\n");
  });

  it("hashes a fingerprint longer than 512 characters, the same way for create and close", () => {
    const fp = "f".repeat(600);
    const alias = created(issue({ fingerprint: fp })).alias;
    expect(alias).toBe(aliasOf(fp));
    expect(alias.length).toBeLessThanOrEqual(512);
    expect(renderOpsgenie(issue({ fingerprint: fp, status: "RESOLVED" })).path).toBe(`/v2/alerts/${alias}/close?identifierType=alias`);
  });

  it("details: the labels, then cluster, subject and start where no label has the name", () => {
    expect(created(issue()).details).toEqual({ ...BASE.subject.labels, cluster: "prod-eu-1", subject: "shop/pod/api-7d9f", started_at: BASE.startsAt });
    const withCluster = issue({ subject: subjectFromLabels({ alertname: "X", cluster: "from-label" }) });
    expect(created(withCluster).details["cluster"]).toBe("from-label");
  });

  it("details over 8000 characters are cut, and say so", () => {
    const labels = Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`label_${i}`, "v".repeat(400)]));
    const d = created(issue({ subject: subjectFromLabels(labels) })).details;
    expect(Object.entries(d).reduce((n, [k, v]) => n + k.length + v.length, 0)).toBeLessThanOrEqual(8000);
    expect(d["kubecano_cut"]).toMatch(/^\d+ more details left out/);
  });

  it("description: what, where, links, annotations, then each enrichment as text (table aligned, logs' last lines)", () => {
    const d = created(enrichedIssue()).description;
    expect(d).toContain("Pod shop/api-7d9f (api) is in waiting state (reason: CrashLoopBackOff).\n\nCluster: prod-eu-1\nSubject: shop/pod/api-7d9f · container api");
    expect(d).toContain("- Runbook: https://runbooks.example.com/kubepodcrashlooping");
    expect(d).toContain("- runbook_url: https://runbooks.example.com/kubepodcrashlooping");
    expect(d).not.toContain("- summary:");
    expect(d).toMatch(/== Pod status ==\nContainers\ncontainer\s+state\s+restarts\s+last termination\napi\s+waiting \(CrashLoopBackOff\)\s+12\s+OOMKilled 137/);
    expect(d).toContain("api logs (api.log, 240 lines, last 20 shown)");
    expect(d.trimEnd().split("\n").filter((l) => l.startsWith("│ ")).at(-1)).toContain("panic: runtime error");
  });

  it("a description far over 15000 characters is cut block by block, then enrichment by enrichment, and says so", () => {
    const blocks: Block[] = [
      { type: "file", filename: "big.log", content: Array.from({ length: 3000 }, (_, i) => `${i} ${"y".repeat(300)}`).join("\n") },
      { type: "table", headers: ["a", "b"], rows: Array.from({ length: 500 }, (_, i) => [String(i), "b".repeat(500)]) },
      { type: "json", data: { blob: "j".repeat(50_000) } },
    ];
    const one = created(issue({ enrichments: [{ title: "one", blocks }] })).description;
    expect(one.length).toBeLessThanOrEqual(15_000);
    expect(one).toMatch(/\(big\.log, 3000 lines, last \d+ shown\)/);
    expect(one).toMatch(/\d+ more rows cut/);
    const many = created(issue({ enrichments: Array.from({ length: 200 }, (_, n) => ({ title: `e${n}`, blocks })) })).description;
    expect(many.length).toBeLessThanOrEqual(15_000);
    expect(many).toMatch(/more enrichments left out: Opsgenie descriptions are limited to 15000 characters\)$/);
  });

  it("keeps any Issue within the Alert API's limits (property)", () => {
    const text = fc.string({ unit: "binary", maxLength: 200 });
    const big = fc.string({ maxLength: 20_000 });
    const block: fc.Arbitrary<Block> = fc.oneof(
      fc.record({ type: fc.constant("markdown" as const), text: big }),
      fc.record({ type: fc.constant("table" as const), headers: fc.array(text, { maxLength: 5 }), rows: fc.array(fc.array(text, { maxLength: 5 }), { maxLength: 40 }) }),
      fc.record({ type: fc.constant("file" as const), filename: text, content: big }),
      fc.record({ type: fc.constant("json" as const), data: fc.jsonValue() }),
      fc.record({ type: fc.constant("header" as const), text }),
      fc.array(text, { maxLength: 10 }).map((items) => ({ type: "list" as const, items })),
      fc.array(fc.record({ name: text, url: fc.webUrl() }), { maxLength: 5 }).map((links) => ({ type: "links" as const, links })),
      fc.constant({ type: "divider" as const }),
    );
    fc.assert(
      fc.property(
        fc.record({
          title: big,
          description: big,
          fingerprint: fc.string({ minLength: 1, maxLength: 700 }),
          labels: fc.dictionary(text, big, { maxKeys: 20 }),
          annotations: fc.dictionary(text, big, { maxKeys: 10 }),
          tags: fc.array(text, { maxLength: 25 }),
          enrichments: fc.array(fc.record({ title: text, blocks: fc.array(block, { maxLength: 5 }) }), { maxLength: 15 }),
        }),
        (r) => {
          const i = issue({ title: r.title, description: r.description, fingerprint: r.fingerprint, subject: subjectFromLabels(r.labels, r.annotations), enrichments: r.enrichments });
          const tags = r.tags.map((t) => compileTemplate(t.replace(/\{\{|\\/g, "")));
          expectWithinLimits(created(i, { tags, entity: compileTemplate(`{{ title }}{{ title }}{{ title }}`) }));
        },
      ),
      { numRuns: 60 },
    );
  });

  it("is pure", () => {
    const i = enrichedIssue();
    expect(renderOpsgenie(i)).toEqual(renderOpsgenie(structuredClone(i)));
  });
});

describe("opsgenie params", () => {
  const parse = (p: Record<string, unknown>) => DESTINATION_TYPES.opsgenie.params.safeParse({ api_key: OG_FAKE_API_KEY, ...p });

  it("region picks the API (us by default), api_url overrides it", () => {
    expect(parse({}).data).toEqual({ api_key: OG_FAKE_API_KEY, region: "us", api_url: "https://api.opsgenie.com", timeout: 10_000 });
    expect(parse({ region: "eu" }).data?.api_url).toBe("https://api.eu.opsgenie.com");
    expect(parse({ region: "eu", api_url: "http://127.0.0.1:9/" }).data?.api_url).toBe("http://127.0.0.1:9");
    expect(parse({ region: "asia" }).success).toBe(false);
  });

  it("a responder needs a type and exactly one of name/username/id, fitting its type", () => {
    expect(parse({ responders: [{ type: "team", name: "{{ labels.team }}" }, { type: "user", username: "a@example.com" }, { type: "schedule", id: "x" }] }).success).toBe(true);
    const problems = (r: unknown): string => JSON.stringify(parse({ responders: [r] }).error?.issues ?? []);
    expect(problems({ type: "team" })).toContain("set exactly one of name or id for a team responder");
    expect(problems({ type: "team", name: "a", id: "b" })).toContain("set exactly one of name or id");
    expect(problems({ type: "user", name: "bob" })).toContain("a user responder is named by username");
    expect(problems({ type: "schedule", username: "bob" })).toContain("a schedule responder is named by name or id");
    expect(problems({ type: "group", name: "x" })).not.toBe("[]");
    expect(problems({ type: "team", name: "{{ labels.team" })).toContain("unterminated");
  });

  it("requires api_key; refuses more than 20 tags, bad templates and unknown priorities", () => {
    expect(DESTINATION_TYPES.opsgenie.params.safeParse({}).success).toBe(false);
    expect(parse({ tags: Array.from({ length: 21 }, (_, i) => `t${i}`) }).success).toBe(false);
    expect(parse({ tags: ["{{ labels.team | shout }}"] }).success).toBe(false);
    expect(parse({ priority_map: { HIGH: "P0" } }).success).toBe(false);
    expect(parse({ priority_map: { URGENT: "P1" } }).success).toBe(false);
    expect(parse({ apiKey: "x" }).success).toBe(false);
  });

  it("is a destination type in the config, and config print redacts the key", () => {
    const config = configSchema.parse({ destinations: [{ name: "og", type: "opsgenie", params: { api_key: OG_FAKE_API_KEY } }] });
    expect(JSON.stringify(redactConfig(config))).not.toContain(OG_FAKE_API_KEY);
    expect((redactConfig(config).destinations[0]!.params as Record<string, unknown>)["api_key"]).toBe(REDACTED);
  });
});

describe("opsgenie destination against the Alert API fake", () => {
  let fake: OpsgenieFake;
  const log = silentLogger();
  const ctx = (signal = new AbortController().signal): SendContext => ({ signal, attempt: 1, log });
  const dest = (params: Record<string, unknown> = {}): Destination =>
    create("og", DESTINATION_TYPES.opsgenie.params.parse({ api_key: OG_FAKE_API_KEY, api_url: fake.url, timeout: "10s", ...params }), { log });
  const failure = async (p: Promise<unknown>): Promise<DeliveryError> => {
    const e = await p.then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(e).toBeInstanceOf(DeliveryError);
    const err = e as DeliveryError;
    for (const text of [err.message, err.hint ?? "", err.code]) for (const k of [OG_FAKE_API_KEY, OTHER_KEY, READ_KEY, ACCOUNT_KEY]) expect(text).not.toContain(k);
    return err;
  };

  beforeAll(async () => {
    fake = await startOpsgenieFake({ apiKeys: { [OG_FAKE_API_KEY]: { access: "full" }, [READ_KEY]: { access: "read" }, [ACCOUNT_KEY]: { access: "account" } }, echoApiKey: true });
  });
  afterEach(() => fake.reset());
  afterAll(async () => {
    await fake.close();
    await closeHttpAgent();
  });

  it("creates, lets Opsgenie fold a repeat into the same alert, then closes it by alias", async () => {
    const d = dest({ responders: [{ type: "team", name: "{{ labels.team }}" }], tags: ["{{ namespace }}"] });
    const first = await d.send(issue(), ctx());
    expect(first.remoteId).toBe("0a732576aaf8ce3c");
    expect(first.detail).toMatch(/^created Opsgenie alert with alias 0a732576aaf8ce3c \(request [0-9a-f-]{36}\)$/);
    await d.send(issue(), ctx());
    const closed = await d.send(issue({ status: "RESOLVED", endsAt: "2026-11-26T11:00:06.184Z" }), ctx());
    expect(closed.detail).toMatch(/^closed Opsgenie alert with alias 0a732576aaf8ce3c/);
    expect(fake.received("0a732576aaf8ce3c")).toEqual(["open", "update", "resolve"]);
    expect(fake.alerts("0a732576aaf8ce3c")).toEqual([
      expect.objectContaining({ status: "closed", count: 2, priority: "P1", responders: [{ type: "team", name: "payments" }], tags: ["shop"], notes: ["Resolved after 22m in cluster prod-eu-1: Pod is crash looping."] }),
    ]);
    expect(fake.requests.map((r) => [r.action, r.path, r.query["identifierType"], r.apiKey])).toEqual([
      ["create", "/v2/alerts", undefined, OG_FAKE_API_KEY],
      ["create", "/v2/alerts", undefined, OG_FAKE_API_KEY],
      ["close", "/v2/alerts/0a732576aaf8ce3c/close", "alias", OG_FAKE_API_KEY],
    ]);
    expect(d.resolvesIncidents).toBe(true);
  });

  it("sends exactly what render shows", async () => {
    const d = dest();
    await d.send(enrichedIssue(), ctx());
    const shown = d.render(enrichedIssue());
    expect(shown).toEqual({ kind: "json", body: expect.objectContaining({ path: "/v2/alerts" }) });
    expect(fake.requests[0]!.body).toEqual((shown.body as { body: unknown }).body);
    expect(JSON.stringify(shown)).not.toContain(OG_FAKE_API_KEY);
  });

  it("an unknown key (401) is not retried, names api_key and the region in the hint, and never shows the key", async () => {
    const err = await failure(dest({ api_key: OTHER_KEY }).send(issue(), ctx()));
    expect(err).toMatchObject({ retryable: false, code: "unauthorized" });
    expect(err.message).toBe(`Opsgenie refused to create the alert (HTTP 401: the API key was not accepted): Could not authenticate (key ${REDACTED})`);
    expect(err.hint).toMatch(/api_key.*API integration.*region/);
  });

  it("a key without create rights (403) is not retried and says which access rights to enable", async () => {
    const err = await failure(dest({ api_key: READ_KEY }).send(issue(), ctx()));
    expect(err).toMatchObject({ retryable: false, code: "forbidden" });
    expect(err.hint).toMatch(/api_key.*Create and Update Access/);
    const account = await failure(dest({ api_key: ACCOUNT_KEY }).send(issue({ status: "RESOLVED" }), ctx()));
    expect(account.message).toBe("Opsgenie refused to close the alert (HTTP 403: no permission): To perform this action, use an API key from an API integration.");
  });

  it("a field Opsgenie refuses (422) is not retried; a responder problem points at responders", async () => {
    fake.failNext(422, { body: { message: "Request body is not processable. Please check the errors.", errors: { "responders[0]": "Responder should have one of id, name or username." } } });
    const err = await failure(dest().send(issue(), ctx()));
    expect(err).toMatchObject({ retryable: false, code: "validation_failed" });
    expect(err.message).toBe("Opsgenie refused to create the alert (HTTP 422): Request body is not processable. Please check the errors. responders[0]: Responder should have one of id, name or username.");
    expect(err.hint).toMatch(/^check responders/);
    fake.failNext(422, { body: { message: "Request body is not processable. Please check the errors.", errors: { priority: "should be one of [ P1, P2, P3, P4, P5 ]" } } });
    expect((await failure(dest().send(issue(), ctx()))).hint).toMatch(/report this bug/);
  });

  it("the fake refuses what Opsgenie refuses", async () => {
    const post = async (body: unknown): Promise<[number, unknown]> => {
      const res = await fetch(`${fake.url}/v2/alerts`, { method: "POST", headers: { "content-type": "application/json", authorization: `GenieKey ${OG_FAKE_API_KEY}` }, body: JSON.stringify(body) });
      return [res.status, await res.json()];
    };
    const [status, body] = await post({ message: "m".repeat(131), priority: "P0", tags: ["x".repeat(51)], details: { a: 1 }, responders: [{ type: "user", name: "bob" }] });
    expect(status).toBe(422);
    expect(body).toMatchObject({
      message: "Request body is not processable. Please check the errors.",
      errors: {
        message: "Message can not be longer than 130 characters.",
        priority: "should be one of [ P1, P2, P3, P4, P5 ]",
        tags: "Tag can not be longer than 50 characters.",
        details: "Details should be a map of strings",
        "responders[0]": "User responder should have id or username.",
      },
      requestId: expect.any(String),
    });
    const [ok, accepted] = await post({ message: "hello" });
    expect([ok, accepted]).toEqual([202, { result: "Request will be processed", took: expect.any(Number), requestId: expect.any(String) }]);
    const st = await fetch(`${fake.url}/v2/alerts/requests/${(accepted as { requestId: string }).requestId}`, { headers: { authorization: `GenieKey ${OG_FAKE_API_KEY}` } });
    expect(await st.json()).toMatchObject({ data: { success: true, action: "Create", alias: "hello" } });
    expect(fake.accepted()).toBe(2);
  });

  it("a close for an alert that does not exist is accepted (Opsgenie works asynchronously)", async () => {
    const r = await dest().send(issue({ fingerprint: "never-opened", status: "RESOLVED" }), ctx());
    expect(r.detail).toMatch(/^closed Opsgenie alert with alias never-opened/);
    expect(fake.alerts()).toEqual([]);
  });

  it("a close right behind its create waits until Opsgenie has had time to process the create", async () => {
    const slow = await startOpsgenieFake({ createDelayMs: 400 });
    try {
      const d = create("og", DESTINATION_TYPES.opsgenie.params.parse({ api_key: OG_FAKE_API_KEY, api_url: slow.url }), { log });
      await d.send(issue(), ctx());
      await d.send(issue({ status: "RESOLVED", endsAt: "2026-11-26T11:00:06.184Z" }), ctx());
      expect(slow.alerts("0a732576aaf8ce3c")).toEqual([expect.objectContaining({ status: "closed", count: 1 })]);
      expect(slow.received("0a732576aaf8ce3c")).toEqual(["open", "resolve"]);
    } finally {
      await slow.close();
    }
  });

  it("a close answered 404: retried while a create of ours may still be queued, else nothing to close", async () => {
    const slow = await startOpsgenieFake({ createDelayMs: 2_500, closeUnknown: 404 });
    try {
      const d = create("og", DESTINATION_TYPES.opsgenie.params.parse({ api_key: OG_FAKE_API_KEY, api_url: slow.url }), { log });
      await d.send(issue(), ctx());
      const err = await failure(d.send(issue({ status: "RESOLVED" }), ctx()));
      expect(err).toMatchObject({ retryable: true, code: "alert_not_created_yet" });
      await vi.waitFor(() => expect(slow.alerts("0a732576aaf8ce3c")).toHaveLength(1), { timeout: 10_000, interval: 50 });
      expect((await d.send(issue({ status: "RESOLVED" }), ctx())).detail).toMatch(/^closed Opsgenie alert/);
      expect(slow.alerts("0a732576aaf8ce3c")).toEqual([expect.objectContaining({ status: "closed" })]);
      const other = create("og", DESTINATION_TYPES.opsgenie.params.parse({ api_key: OG_FAKE_API_KEY, api_url: slow.url }), { log });
      expect(await other.send(issue({ fingerprint: "closed-elsewhere", status: "RESOLVED" }), ctx())).toEqual({ remoteId: "closed-elsewhere", detail: "no open Opsgenie alert with alias closed-elsewhere: nothing to close" });
    } finally {
      await slow.close();
    }
  });

  it("429 is retried after Retry-After", async () => {
    fake.failNext(429, { retryAfterSeconds: 3 });
    const err = await failure(dest().send(issue(), ctx()));
    expect(err).toMatchObject({ retryable: true, code: "rate_limited", retryAfterMs: 3000 });
  });

  it.each([500, 502, 503, 504])("HTTP %i is retried", async (status) => {
    fake.failNext(status);
    expect(await failure(dest().send(issue(), ctx()))).toMatchObject({ retryable: true, code: `http_${status}` });
  });

  it("a wrong api_url (404) is not retried and says to check api_url", async () => {
    const err = await failure(dest({ api_url: `${fake.url}/v2/alerts` }).send(issue(), ctx()));
    expect(err).toMatchObject({ retryable: false, code: "http_404" });
    expect(err.hint).toMatch(/api_url/);
  });

  it("no answer within the timeout: retryable, maybe delivered", async () => {
    fake.hangNext();
    expect(await failure(dest({ timeout: "300ms" }).send(issue(), ctx()))).toMatchObject({ retryable: true, code: "timeout", maybeDelivered: true });
  });

  it("a connection cut after the request went out: retryable, maybe delivered", async () => {
    fake.cutNext();
    expect(await failure(dest().send(issue(), ctx()))).toMatchObject({ retryable: true, maybeDelivered: true });
  });

  it("nothing listening: retryable, and surely not delivered", async () => {
    const closed = await startOpsgenieFake();
    const url = closed.url;
    await closed.close();
    expect(await failure(dest({ api_url: url }).send(issue(), ctx()))).toMatchObject({ retryable: true, code: "econnrefused", maybeDelivered: false });
  });

  it("logs nothing with the key, even at trace level", async () => {
    const lines: string[] = [];
    const traced = createLogger({ level: "trace", format: "json", stream: { write: (l: string) => lines.push(l) } as unknown as NodeJS.WritableStream });
    const d = create("og", DESTINATION_TYPES.opsgenie.params.parse({ api_key: OTHER_KEY, api_url: fake.url }), { log: traced });
    await failure(d.send(issue(), { signal: new AbortController().signal, attempt: 1, log: traced }));
    expect(lines.join("")).not.toContain(OTHER_KEY);
  });
});

describe("kubecano test-destination with opsgenie (built CLI)", () => {
  let fake: OpsgenieFake;
  let cwd: string;

  beforeAll(async () => {
    // Creates take effect after a moment, as in Opsgenie's queue: the close must still find the test alert.
    fake = await startOpsgenieFake({ echoApiKey: true, createDelayMs: 300 });
    cwd = await mkdtemp(path.join(os.tmpdir(), "kubecano-og-"));
    await writeFile(
      path.join(cwd, "kubecano.config.yaml"),
      [
        "clusterName: ci",
        "destinations:",
        "  - name: genie",
        "    type: opsgenie",
        "    params:",
        "      api_key: ${OPSGENIE_API_KEY}",
        `      api_url: ${fake.url}`,
        "      responders:",
        '        - { type: team, name: "{{ labels.team | default \\"platform\\" }}" }',
        "      tags: [kubecano, \"{{ clusterName }}\"]",
        "",
      ].join("\n"),
    );
  });
  afterEach(() => fake.reset());
  afterAll(async () => {
    await fake.close();
    await rm(cwd, { recursive: true, force: true });
  });

  it("creates a test alert and closes it right after", async () => {
    const r = await runCli(["test-destination", "genie", "--json"], { cwd, env: { OPSGENIE_API_KEY: OG_FAKE_API_KEY } });
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout) as { ok: boolean; results: { ok: boolean; detail: string }[] };
    expect(report.ok).toBe(true);
    expect(report.results[0]!.detail).toMatch(/^created Opsgenie alert with alias test-[0-9a-f]+ .*; resolved \(closed Opsgenie alert with alias test-/);
    expect(fake.requests.map((q) => q.action)).toEqual(["create", "close"]);
    const alias = (fake.requests[0]!.body as { alias: string }).alias;
    expect(fake.received(alias)).toEqual(["open", "resolve"]);
    expect(fake.alerts(alias)).toEqual([
      expect.objectContaining({ status: "closed", priority: "P5", message: "kubecano test notification: please ignore", responders: [{ type: "team", name: "platform" }], tags: ["kubecano", "ci"] }),
    ]);
    expect(`${r.stdout}${r.stderr}`).not.toContain(OG_FAKE_API_KEY);
  });

  it("an unknown key fails (exit 1) with the hint, and the key appears nowhere", async () => {
    const r = await runCli(["test-destination", "genie", "--log-level", "trace"], { cwd, env: { OPSGENIE_API_KEY: OTHER_KEY } });
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/✖ genie\s+Opsgenie refused to create the alert \(HTTP 401: the API key was not accepted\)/);
    expect(r.stdout).toMatch(/hint: check api_key/);
    expect(`${r.stdout}${r.stderr}`).not.toContain(OTHER_KEY);
    expect(fake.requests).toHaveLength(1);
  });
});
