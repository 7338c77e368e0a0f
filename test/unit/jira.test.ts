import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { Writable } from "node:stream";
import fc from "fast-check";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { redactConfig, REDACTED } from "../../src/config/redact.js";
import { configSchema, deliverySchema } from "../../src/config/schema.js";
import type { Block } from "../../src/core/blocks.js";
import { createIssue, withEnrichment, type Issue, type NewIssue } from "../../src/core/issue.js";
import { parseMrkdwn } from "../../src/core/mrkdwn.js";
import { SEVERITIES } from "../../src/core/severity.js";
import { subjectFromLabels } from "../../src/core/subject.js";
import { DeliveryEngine, type DeliveryEvent } from "../../src/delivery/engine.js";
import { SqliteDeliveryStore } from "../../src/delivery/sqlite-store.js";
import { closeHttpAgent } from "../../src/destinations/http.js";
import type { AdfDoc } from "../../src/destinations/jira/adf.js";
import { create, jqlString } from "../../src/destinations/jira/index.js";
import type { JiraParams } from "../../src/destinations/jira/params.js";
import { fingerprintLabel, issueLabels, JIRA_LIMITS, renderComment, renderCreate, summary, type JiraRenderOptions } from "../../src/destinations/jira/render.js";
import { DESTINATION_TYPES } from "../../src/destinations/registry.js";
import { DeliveryError, type Destination, type DestinationState, type SendContext } from "../../src/destinations/types.js";
import { createLogger, silentLogger, type Logger } from "../../src/observability/logger.js";
import { checkAdf, JIRA_TOKEN, JIRA_USER, parseJql, startJiraFake, type JiraFake, type JiraFakeOptions } from "../fakes/jira.js";
import { runCli } from "../helpers/cli.js";
import { blockArbitrary, degenerateBlocks, expectGolden, FIXED_ID, fixtureFiles, fixtureIssues, NOW, withManyEnrichments } from "../helpers/render-cases.js";

/**
 * The Jira destination: golden files of the requests it renders (the
 * create-issue body with its ADF description, the comments), the rules of
 * the rendering (summary, labels, priority, every block type, the field
 * size limit), and the destination against the local Jira Cloud fake:
 * one issue per fingerprint created, commented, transitioned and reopened,
 * found again by label when its state is lost, and every failure mapped to
 * a DeliveryError without the API token. Then `kubecano test-destination`.
 */

const FP = "0a732576aaf8ce3c";

const BASE: NewIssue = {
  title: "Pod is crash looping.",
  description: "Pod shop/api-7d9f (api) is in waiting state (reason: CrashLoopBackOff).\nIt restarted 12 times in 30 minutes.",
  aggregationKey: "KubePodCrashLooping",
  severity: "HIGH",
  status: "FIRING",
  source: "prometheus",
  type: "alert",
  subject: subjectFromLabels({ alertname: "KubePodCrashLooping", namespace: "shop", pod: "api-7d9f", container: "api", severity: "critical" }),
  startsAt: "2026-11-26T10:38:06.184688767Z",
  links: [
    { name: "Runbook", url: "https://runbooks.example.com/kubepodcrashlooping", kind: "runbook" },
    { name: "Silence", url: "http://alertmanager.example.com/#/silences/new?filter=%7Balertname%3D%22KubePodCrashLooping%22%7D", kind: "silence" },
  ],
  clusterName: "prod-eu-1",
  fingerprint: FP,
  receivedAt: "2026-11-26T10:40:00.000Z",
};

function issue(over: Partial<NewIssue> = {}): Issue {
  return { ...createIssue({ ...BASE, ...over }, NOW), id: FIXED_ID };
}

const resolvedOver: Partial<NewIssue> = { status: "RESOLVED", endsAt: "2026-11-26T11:50:06.184Z", receivedAt: "2026-11-26T11:50:30.000Z" };

/** One enrichment per block type, as the built-in workflows produce them. */
function enrichedIssue(): Issue {
  const logs = Array.from({ length: 240 }, (_, i) => `2026-11-26T10:3${i % 10}:00Z ${i === 239 ? "panic: runtime error: invalid memory address" : `GET /api/orders 200 ${i}ms`}`).join("\n");
  const blocks: [string, Block[]][] = [
    ["Crash", [{ type: "header", text: "Container api restarted 12 times" }, { type: "markdown", text: "*Last state:* `Terminated` (OOMKilled, exit code 137). See <https://kubernetes.io/docs/concepts/|the docs>.\n```\nlimits:\n  memory: 256Mi\n```" }, { type: "divider" }]],
    ["Pod status", [{ type: "table", title: "Containers", headers: ["container", "state", "restarts", "last termination"], rows: [["api", "waiting (CrashLoopBackOff)", "12", "OOMKilled 137"], ["envoy", "running", "0"]] }]],
    ["Pod logs", [{ type: "file", filename: "api.log", title: "api logs", content: `${logs}\n`, excerptLines: 20 }]],
    ["Owner", [{ type: "json", title: "owner", data: { kind: "Deployment", name: "api", replicas: { desired: 3, ready: 2 } } }]],
    ["Checks", [{ type: "list", items: ["memory limit 256Mi", "no HPA"] }]],
    ["More", [{ type: "links", links: [{ name: "Grafana", url: "https://grafana.example.com/d/pods?var-pod=api-7d9f", kind: "dashboard" }, { name: "not a web link", url: "javascript:alert(1)" }] }]],
  ];
  return issue({ enrichments: blocks.map(([title, b]) => ({ title, blocks: b, source: "test" })) });
}

function golden(name: string, value: unknown): void {
  expectGolden("jira", name, value, "test/unit/jira.test.ts");
}

const OPTS: JiraRenderOptions = { project: "OPS", issueType: "Bug", priority: "Highest", labels: ["team-payments"], components: ["api"], resolveTransition: "Done" };

function params(over: Record<string, unknown> = {}): JiraParams {
  return DESTINATION_TYPES.jira.params.parse({ url: "https://example.atlassian.net", user: JIRA_USER, api_token: JIRA_TOKEN, project: "OPS", ...over });
}

/** Jira would take it: valid ADF within the field limit. */
function expectAccepted(d: AdfDoc): void {
  expect(checkAdf(d)).toEqual([]);
  expect(JSON.stringify(d).length).toBeLessThanOrEqual(JIRA_LIMITS.maxChars);
}

/** Every text of a document, in order. */
function docText(d: unknown): string {
  const out: string[] = [];
  const walk = (n: unknown): void => {
    if (Array.isArray(n)) n.forEach(walk);
    else if (n !== null && typeof n === "object") {
      const o = n as { type?: unknown; text?: unknown; content?: unknown };
      if (o.type === "text" && typeof o.text === "string") out.push(o.text);
      if (o.type === "hardBreak") out.push("\n");
      walk(o.content);
      if (o.type === "paragraph" || o.type === "heading" || o.type === "codeBlock" || o.type === "tableCell" || o.type === "tableHeader") out.push("\n");
    }
  };
  walk(d);
  return out.join("");
}

function nodes(d: unknown, type: string): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  const walk = (n: unknown): void => {
    if (Array.isArray(n)) n.forEach(walk);
    else if (n !== null && typeof n === "object") {
      const o = n as { type?: unknown; content?: unknown };
      if (o.type === type) out.push(o as Record<string, unknown>);
      walk(o.content);
    }
  };
  walk(d);
  return out;
}

describe("jira golden files", () => {
  const dest = create("jira", params({ labels: ["team-payments"], components: ["api"] }), { log: silentLogger() });

  it("has Alertmanager fixtures to render", () => {
    expect(fixtureFiles.length).toBeGreaterThan(0);
  });

  it.each(fixtureFiles)("%s: what `replay --dry-run` shows (the create body, or the resolving transition)", (file) => {
    const rendered = fixtureIssues(file).map((i) => dest.render(i).body);
    for (const r of rendered) {
      const doc = (r as { fields?: { description: AdfDoc } }).fields?.description ?? (r as { update: { comment: { add: { body: AdfDoc } }[] } }).update.comment[0]!.add.body;
      expectAccepted(doc);
    }
    golden(file, rendered);
  });

  it("enriched.json: every block type", () => {
    const body = renderCreate(enrichedIssue(), OPTS);
    expectAccepted(body.fields.description);
    golden("enriched.json", body);
  });

  it("comments.json: a repeat, a reopen and a resolution", () => {
    const comments = {
      repeat: renderComment(enrichedIssue(), "repeat", OPTS),
      reopen: renderComment(issue(), "reopen", OPTS),
      resolve: renderComment(issue(resolvedOver), "resolve", OPTS),
    };
    for (const c of Object.values(comments)) expectAccepted(c);
    golden("comments.json", comments);
  });

  it("renders the same Issue the same way (pure)", () => {
    const i = enrichedIssue();
    expect(renderCreate(i, OPTS)).toEqual(renderCreate(structuredClone(i), OPTS));
  });
});

describe("jira rendering", () => {
  it("creates a Bug in the project with the summary, labels, priority and components", () => {
    const body = renderCreate(issue(), OPTS);
    expect(body.fields).toMatchObject({
      project: { key: "OPS" },
      issuetype: { name: "Bug" },
      summary: "Pod is crash looping. (shop/pod/api-7d9f, prod-eu-1)",
      labels: ["kubecano", `kubecano-fp-${FP}`, "team-payments"],
      priority: { name: "Highest" },
      components: [{ name: "api" }],
    });
    expect(renderCreate(issue(), { project: "OPS", issueType: "Task" }).fields).not.toHaveProperty("priority");
    expect(renderCreate(issue(), { project: "OPS", issueType: "Task" }).fields).not.toHaveProperty("components");
  });

  it("keeps the summary to one line of at most 255 characters", () => {
    expect(summary(issue({ title: "a\nb\r\nc\u0000d" }))).toBe("a b cd (shop/pod/api-7d9f, prod-eu-1)");
    expect(summary(issue({ title: "T".repeat(1000) }))).toHaveLength(255);
    expect(summary(issue({ title: "", subject: subjectFromLabels({}), clusterName: "" }))).toBe("KubePodCrashLooping");
  });

  it("labels: kubecano, the fingerprint label (no spaces), the extra ones, once each", () => {
    expect(fingerprintLabel("abc def\tx")).toBe("kubecano-fp-abc_def_x");
    expect(fingerprintLabel("f".repeat(400))).toHaveLength(255);
    expect(issueLabels(FP, ["kubecano", "x"])).toEqual(["kubecano", `kubecano-fp-${FP}`, "x"]);
  });

  it.each([
    ["HIGH", "error"],
    ["LOW", "warning"],
    ["INFO", "info"],
    ["DEBUG", "note"],
  ] as const)("a firing %s Issue opens with an %s panel", (severity, panelType) => {
    const d = renderCreate(issue({ severity }), OPTS).fields.description;
    expect(d.content[0]).toMatchObject({ type: "panel", attrs: { panelType } });
    expect(docText(d.content[0])).toBe(`FIRING · ${severity} · Pod is crash looping.\n`);
  });

  it("lists the facts in a table, with the resolution once resolved", () => {
    const d = renderCreate(issue(resolvedOver), OPTS).fields.description;
    const table = nodes(d, "table")[0]!;
    const rows = nodes(table, "tableRow").map((r) => docText(r).split("\n").filter((t) => t !== ""));
    expect(rows).toEqual([
      ["Cluster", "prod-eu-1"],
      ["Namespace", "shop"],
      ["Pod", "api-7d9f"],
      ["Container", "api"],
      ["Alert", "KubePodCrashLooping"],
      ["Severity", "HIGH"],
      ["Started", "2026-11-26 10:38:06 UTC"],
      ["Resolved", "2026-11-26 11:50:06 UTC (after 1h 12m)"],
    ]);
    expect(d.content[0]).toMatchObject({ type: "panel", attrs: { panelType: "success" } });
  });

  it("keeps the description's lines and paragraphs", () => {
    const d = renderCreate(issue({ description: "one\ntwo\n\nthree" }), OPTS).fields.description;
    expect(d.content[1]).toEqual({ type: "paragraph", content: [{ type: "text", text: "one" }, { type: "hardBreak" }, { type: "text", text: "two" }] });
    expect(d.content[2]).toEqual({ type: "paragraph", content: [{ type: "text", text: "three" }] });
  });

  it("draws every block type", () => {
    const d = renderCreate(enrichedIssue(), OPTS).fields.description;
    const text = docText(d);
    // markdown: *bold* → strong, `code` → code, <url|text> → a link, a fence → a code block
    const strongs = nodes(d, "text").filter((t) => JSON.stringify(t["marks"] ?? []).includes("strong")).map((t) => t["text"]);
    expect(strongs).toContain("Last state:");
    expect(nodes(d, "text")).toContainEqual({ type: "text", text: "Terminated", marks: [{ type: "code" }] });
    expect(nodes(d, "text")).toContainEqual({ type: "text", text: "the docs", marks: [{ type: "link", attrs: { href: "https://kubernetes.io/docs/concepts/" } }] });
    const codes = nodes(d, "codeBlock");
    expect(codes[0]).toEqual({ type: "codeBlock", attrs: {}, content: [{ type: "text", text: "limits:\n  memory: 256Mi" }] });
    // header → heading 4; divider → rule
    expect(nodes(d, "heading")).toContainEqual({ type: "heading", attrs: { level: 4 }, content: [{ type: "text", text: "Container api restarted 12 times" }] });
    expect(nodes(d, "rule").length).toBeGreaterThanOrEqual(2);
    // table: a header row, then rows padded to the same width
    const containers = nodes(d, "table")[1]!;
    const rows = nodes(containers, "tableRow");
    expect(rows).toHaveLength(3);
    expect(nodes(rows[0], "tableHeader")).toHaveLength(4);
    expect(nodes(rows[2], "tableCell")).toHaveLength(4);
    // file: the last lines in a code block, saying how many
    expect(text).toContain("api logs (api.log: 240 lines, last 20 shown)");
    const log = codes.find((c) => docText(c).includes("panic"))!;
    expect(docText(log).trim().split("\n")).toHaveLength(20);
    expect(docText(log)).not.toContain("GET /api/orders 200 219ms");
    // json: a json code block
    expect(codes.find((c) => (c["attrs"] as { language?: string }).language === "json")).toBeDefined();
    // list and links: bullet lists; only web links are links
    expect(text).toContain("memory limit 256Mi\nno HPA");
    expect(nodes(d, "text")).toContainEqual({ type: "text", text: "Grafana", marks: [{ type: "link", attrs: { href: "https://grafana.example.com/d/pods?var-pod=api-7d9f" } }] });
    expect(nodes(d, "text")).toContainEqual({ type: "text", text: "not a web link" });
  });

  it("a repeat comment carries what is new, not the whole issue again", () => {
    const c = renderComment(enrichedIssue(), "repeat", OPTS);
    const text = docText(c);
    expect(text).toMatch(/^STILL FIRING · HIGH · repeated notification of 2026-11-26 10:40:00 UTC\./);
    expect(text).toContain("panic: runtime error");
    expect(text).not.toContain("It restarted 12 times");
    expect(text).not.toContain("Labels:");
  });

  it("the resolution comment says when and after how long", () => {
    expect(docText(renderComment(issue(resolvedOver), "resolve", OPTS))).toBe('RESOLVED · the alert stopped firing at 2026-11-26 11:50:06 UTC after 1h 12m.\nMoved on by kubecano (transition "Done").\n');
  });

  it("copes with empty and degenerate blocks", () => {
    const blocks = degenerateBlocks();
    const d = renderCreate(withEnrichment(issue({ title: "", description: " \n ", clusterName: "", fingerprint: "x", links: [{ name: "", url: "https://x.example" }] }), { title: "", blocks }), OPTS).fields.description;
    expectAccepted(d);
    expect(docText(d)).toContain("(unserialisable value)");
  });
});

describe("jira rendering stays under Jira's field size limit", () => {
  const big = (n: number, base = issue()): Issue => withManyEnrichments(base, n);

  it("cuts enrichment content first, and says so", () => {
    const d = renderCreate(big(60), OPTS).fields.description;
    expectAccepted(d);
    const text = docText(d);
    expect(text).toMatch(/✂️ Cut to fit Jira's field size limit: \d+ enrichment blocks\./);
    expect(text).toContain("Enrichment 0");
    expect(text).toContain("It restarted 12 times in 30 minutes.");
    expect(text).toContain("severity=critical");
  });

  it("then labels, then the description", () => {
    const labels = Object.fromEntries(Array.from({ length: 600 }, (_, i) => [`label_${i}`, `value-${i}-${"v".repeat(60)}`]));
    const d = renderCreate(big(3, issue({ subject: subjectFromLabels({ ...labels, pod: "api-1", namespace: "shop" }) })), OPTS).fields.description;
    expectAccepted(d);
    expect(docText(d)).toMatch(/✂️ Cut to fit Jira's field size limit: 6 enrichment blocks, \d+ of 602 labels\./);

    const e = "€".repeat(300);
    const links = Array.from({ length: 10 }, (_, i) => ({ name: e, url: `https://l${i}.example/${"p".repeat(1970)}` }));
    const all = renderCreate(issue({ description: "d".repeat(9000), title: "T".repeat(3000), links, subject: subjectFromLabels({ ...labels, pod: e, namespace: e, container: e, node: e }) }), OPTS).fields.description;
    expectAccepted(all);
    expect(docText(all)).toContain("✂️ Cut to fit Jira's field size limit: 604 of 604 labels, the end of the description.");
  });

  it("shows the tail of a 5 MB log", () => {
    const content = `${Array.from({ length: 80_000 }, (_, i) => `2026-11-26T10:38:06Z level=error msg="request failed" n=${i} <&>`).join("\n")}\n`;
    const d = renderCreate(withEnrichment(issue(), { title: "Logs", blocks: [{ type: "file", filename: "api.log", content }] }), OPTS).fields.description;
    expectAccepted(d);
    expect(docText(d)).toContain('n=79999 <&>');
    expect(docText(d)).toContain("80000 lines, last 30 shown");
  });

  it("accepts anything (property test)", () => {
    const text = fc.string({ unit: "binary", maxLength: 300 });
    const bigText = fc.oneof(text, fc.string({ unit: fc.constantFrom("&", "<", ">", "`", "*", "_", "~", "|", "\n", " ", "a", "😀", "\u0000", "\r"), maxLength: 6000 }));
    const block = blockArbitrary(text, bigText);
    fc.assert(
      fc.property(
        fc.record({
          title: bigText,
          description: bigText,
          clusterName: text,
          fingerprint: text,
          labels: fc.dictionary(text, text, { maxKeys: 60 }),
          severity: fc.constantFrom(...SEVERITIES),
          resolved: fc.boolean(),
          links: fc.array(fc.record({ name: text, url: fc.oneof(fc.webUrl(), text) }), { maxLength: 8 }),
          enrichments: fc.array(fc.record({ title: text, blocks: fc.array(block, { maxLength: 5 }) }), { maxLength: 12 }),
        }),
        (r) => {
          let i = issue({
            title: r.title,
            description: r.description,
            clusterName: r.clusterName,
            fingerprint: r.fingerprint,
            severity: r.severity,
            subject: subjectFromLabels(r.labels),
            links: r.links,
            ...(r.resolved ? resolvedOver : {}),
          });
          for (const e of r.enrichments) i = withEnrichment(i, e);
          const body = renderCreate(i, OPTS);
          expectAccepted(body.fields.description);
          expect(body.fields.summary.length).toBeLessThanOrEqual(255);
          expect(body.fields.summary).not.toMatch(/[\r\n]/);
          expect(body.fields.labels.every((l) => l.length <= 255 && !/\s/.test(l))).toBe(true);
          for (const kind of ["repeat", "reopen", "resolve"] as const) expectAccepted(renderComment(i, kind, OPTS));
        },
      ),
      { numRuns: 150, seed: 20261126 },
    );
  });
});

describe("Slack-flavoured markdown, parsed once for other destinations", () => {
  it("finds fences, styles, links and mentions", () => {
    expect(parseMrkdwn("a *b* _c_ ~d~ `e` <https://x.example|f> <https://y.example> <!here> <@U1> <#C1|ops> &lt;&amp;&gt;\n\nnext\n```\ncode *x*\n```")).toEqual([
      {
        kind: "paragraph",
        lines: [
          [
            { text: "a " },
            { text: "b", bold: true },
            { text: " " },
            { text: "c", italic: true },
            { text: " " },
            { text: "d", strike: true },
            { text: " " },
            { text: "e", code: true },
            { text: " " },
            { text: "f", href: "https://x.example" },
            { text: " " },
            { text: "https://y.example", href: "https://y.example" },
            { text: " " },
            { text: "@here" },
            { text: " " },
            { text: "@U1" },
            { text: " " },
            { text: "#ops" },
            { text: " <&>" },
          ],
        ],
      },
      { kind: "paragraph", lines: [[{ text: "next" }]] },
      { kind: "code", text: "code *x*" },
    ]);
  });

  it("leaves snake_case, arithmetic and unknown schemes alone", () => {
    expect(parseMrkdwn("kube_pod_status 2*3*4 <javascript:alert(1)|x>")).toEqual([{ kind: "paragraph", lines: [[{ text: "kube_pod_status 2*3*4 " }, { text: "<javascript:alert(1)|x>" }]] }]);
  });
});

describe("jira params", () => {
  const parse = (p: Record<string, unknown>) => DESTINATION_TYPES.jira.params.safeParse({ user: JIRA_USER, api_token: JIRA_TOKEN, project: "ops", ...p });

  it("takes url or its alias api_url (not both), and fills in the defaults", () => {
    expect(parse({}).success).toBe(false);
    expect(parse({ url: "https://a.example", api_url: "https://b.example" }).success).toBe(false);
    const p = DESTINATION_TYPES.jira.params.parse({ api_url: "https://example.atlassian.net/", user: JIRA_USER, api_token: JIRA_TOKEN, project: "ops" });
    expect(p).toEqual({
      url: "https://example.atlassian.net",
      user: JIRA_USER,
      api_token: JIRA_TOKEN,
      project: "OPS",
      issue_type: "Bug",
      priority_map: { HIGH: "Highest", LOW: "Medium", INFO: "Low", DEBUG: "Low" },
      labels: [],
      components: [],
      resolve_transition: "Done",
      reopen_transition: "Reopen",
      timeout: 10_000,
    });
  });

  it("merges priority_map over the defaults, refuses labels with spaces, bad project keys and unknown keys", () => {
    expect(params({ priority_map: { LOW: "High" } }).priority_map).toEqual({ HIGH: "Highest", LOW: "High", INFO: "Low", DEBUG: "Low" });
    expect(parse({ url: "https://a.example", priority_map: { URGENT: "High" } }).success).toBe(false);
    expect(parse({ url: "https://a.example", labels: ["two words"] }).success).toBe(false);
    expect(parse({ url: "https://a.example", project: "1OPS" }).success).toBe(false);
    expect(parse({ url: "https://a.example", password: "x" }).success).toBe(false);
    expect(parse({ url: "ftp://a.example" }).success).toBe(false);
  });

  it("keeps the API token out of `config print`", () => {
    const config = configSchema.parse({ destinations: [{ name: "jira", type: "jira", params: { url: "https://x.atlassian.net", user: JIRA_USER, api_token: JIRA_TOKEN, project: "OPS" } }] });
    expect(JSON.stringify(redactConfig(config))).not.toContain(JIRA_TOKEN);
    expect((redactConfig(config).destinations[0]!.params as { api_token: string }).api_token).toBe(REDACTED);
  });

  it("quotes JQL strings; the fake's JQL parser reads them back", () => {
    expect(jqlString('a"b\\c')).toBe('"a\\"b\\\\c"');
    expect(parseJql(`project = ${jqlString("OPS")} AND labels = ${jqlString('x"y')} ORDER BY created DESC`)).toEqual({ clauses: [{ field: "project", value: "OPS" }, { field: "labels", value: 'x"y' }], order: "desc" });
  });
});

function memoryState(): DestinationState & { map: Map<string, string> } {
  const map = new Map<string, string>();
  return {
    map,
    getState: (ns, key) => map.get(`${ns}/${key}`),
    setState: (ns, key, value) => void (value === undefined ? map.delete(`${ns}/${key}`) : map.set(`${ns}/${key}`, value)),
  };
}

/** A logger whose lines the test can read. */
function capture(): { log: Logger; lines: () => Record<string, unknown>[]; raw: () => string } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(c: Buffer | string, _e, cb) {
      chunks.push(c.toString());
      cb();
    },
  });
  const raw = (): string => chunks.join("");
  return {
    log: createLogger({ stream, format: "json", level: "trace" }),
    raw,
    lines: () =>
      raw()
        .split("\n")
        .filter((l) => l.startsWith("{"))
        .map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}

describe("jira destination against the Jira Cloud fake", () => {
  let fake: JiraFake;
  let logs: ReturnType<typeof capture>;
  const extraFakes: JiraFake[] = [];

  beforeAll(async () => {
    fake = await startJiraFake();
  });
  afterEach(async () => {
    fake.reset();
    for (const f of extraFakes.splice(0)) await f.close();
    // No log line ever carries the token.
    expect(logs.raw()).not.toContain(JIRA_TOKEN);
  });
  afterAll(async () => {
    await fake.close();
    await closeHttpAgent();
  });

  const ctx = (): SendContext => ({ signal: AbortSignal.timeout(10_000), attempt: 1, log: logs.log });
  function dest(over: Record<string, unknown> = {}, state: DestinationState | undefined = memoryState(), on: JiraFake = fake): Destination {
    logs ??= capture();
    return create("jira", DESTINATION_TYPES.jira.params.parse({ url: on.url, user: JIRA_USER, api_token: JIRA_TOKEN, project: "OPS", timeout: "5s", ...over }), { log: logs.log, state });
  }
  async function withFake(opts: JiraFakeOptions): Promise<JiraFake> {
    const f = await startJiraFake(opts);
    extraFakes.push(f);
    return f;
  }
  async function sendError(d: Destination, i: Issue = issue()): Promise<DeliveryError> {
    try {
      await d.send(i, ctx());
    } catch (e) {
      expect(e).toBeInstanceOf(DeliveryError);
      const err = e as DeliveryError;
      for (const t of [err.message, err.hint ?? "", err.code, JSON.stringify(err), err.stack ?? ""]) {
        expect(t).not.toContain(JIRA_TOKEN);
        expect(t).not.toContain(Buffer.from(`${JIRA_USER}:${JIRA_TOKEN}`).toString("base64"));
      }
      return err;
    }
    throw new Error("expected send to fail");
  }
  const writes = (f: JiraFake = fake) => f.requests.filter((r) => r.method === "POST" && r.path !== "/rest/api/3/search/jql").map((r) => r.path);

  beforeAll(() => {
    logs = capture();
  });

  it("creates one issue per incident, comments on repeats, resolves it with the transition, and reopens it", async () => {
    const state = memoryState();
    const d = dest({ labels: ["team-payments"], components: ["api"] }, state);
    expect(d.resolvesIncidents).toBe(true);

    const first = await d.send(issue(), ctx());
    expect(first).toEqual({ remoteId: "OPS-1", detail: "created OPS-1 in OPS" });
    const created = fake.issue("OPS-1")!;
    expect(created.fields).toMatchObject({ summary: "Pod is crash looping. (shop/pod/api-7d9f, prod-eu-1)", labels: ["kubecano", `kubecano-fp-${FP}`, "team-payments"], priority: { name: "Highest" }, issuetype: { name: "Bug" }, components: [{ name: "api" }] });
    expect(created.fields["description"]).toEqual(renderCreate(issue(), { ...OPTS }).fields.description);
    expect(state.map.get(`jira:jira/${FP}`)).toBe("OPS-1");

    expect(await d.send({ ...issue(), id: "repeat" }, ctx())).toEqual({ remoteId: "OPS-1", detail: "commented on OPS-1 (still To Do)" });
    expect(created.comments).toHaveLength(1);

    expect(await d.send(issue(resolvedOver), ctx())).toEqual({ remoteId: "OPS-1", detail: "moved OPS-1 to Done" });
    expect(created.status).toBe("Done");
    expect(created.comments).toHaveLength(2);
    expect(docText(created.comments[1]!.body)).toContain("RESOLVED · the alert stopped firing at 2026-11-26 11:50:06 UTC after 1h 12m.");

    // A second resolution (Alertmanager repeats them) changes nothing.
    const before = writes().length;
    expect(await d.send(issue(resolvedOver), ctx())).toEqual({ remoteId: "OPS-1", detail: "OPS-1 is already Done" });
    expect(writes()).toHaveLength(before);

    expect(await d.send(issue(), ctx())).toEqual({ remoteId: "OPS-1", detail: "reopened OPS-1 (Reopen)" });
    expect(created.status).toBe("To Do");
    expect(created.transitions).toEqual(["Done", "Reopen"]);
    expect(docText(created.comments.at(-1)!.body)).toContain("FIRING AGAIN");
    expect(fake.issues).toHaveLength(1);
    expect(fake.received(FP)).toEqual(["open", "update", "resolve", "open"]);
    expect(fake.adfProblems).toEqual([]);
  });

  it("finds the issue by its label when the state is lost (another replica, a new state dir)", async () => {
    await dest().send(issue(), ctx());
    const other = dest({}, undefined);
    expect(await other.send({ ...issue(), id: "repeat" }, ctx())).toMatchObject({ remoteId: "OPS-1", detail: "commented on OPS-1 (still To Do)" });
    expect(await dest({}, memoryState()).send(issue(resolvedOver), ctx())).toMatchObject({ remoteId: "OPS-1", detail: "moved OPS-1 to Done" });
    expect(fake.issues).toHaveLength(1);
    const searches = fake.requests.filter((r) => r.path === "/rest/api/3/search/jql");
    expect(searches.at(-1)!.body).toEqual({ jql: `project = "OPS" AND labels = "kubecano-fp-${FP}" ORDER BY created DESC`, fields: ["status", "created"], maxResults: 1 });
  });

  it("uses the state's key without searching, and searches again when that issue was deleted", async () => {
    const state = memoryState();
    const d = dest({}, state);
    await d.send(issue(), ctx());
    const searchesBefore = fake.requests.filter((r) => r.path === "/rest/api/3/search/jql").length;
    await d.send({ ...issue(), id: "repeat" }, ctx());
    expect(fake.requests.filter((r) => r.path === "/rest/api/3/search/jql").length).toBe(searchesBefore);
    fake.deleteIssue("OPS-1");
    expect(await d.send({ ...issue(), id: "again" }, ctx())).toEqual({ remoteId: "OPS-2", detail: "created OPS-2 in OPS" });
    expect(state.map.get(`jira:jira/${FP}`)).toBe("OPS-2");
  });

  it("a FIRING after someone closed the issue by hand reopens it", async () => {
    await dest().send(issue(), ctx());
    fake.setStatus("OPS-1", "Done");
    expect(await dest({}, undefined).send(issue(), ctx())).toMatchObject({ detail: "reopened OPS-1 (Reopen)" });
  });

  it("resolving an incident with no issue is a no-op", async () => {
    expect(await dest().send(issue(resolvedOver), ctx())).toEqual({ detail: "no Jira issue for this incident in OPS: nothing to resolve" });
    expect(writes()).toEqual([]);
  });

  it("without a Reopen transition it takes one to a To Do status; with no way back it opens a new issue and says why", async () => {
    const noReopen = await withFake({ transitions: [{ id: "31", name: "Done", from: ["To Do", "In Progress"], to: "Done" }, { id: "61", name: "Back to backlog", from: ["Done"], to: "To Do" }] });
    const d = dest({}, memoryState(), noReopen);
    await d.send(issue(), ctx());
    await d.send(issue(resolvedOver), ctx());
    expect(await d.send(issue(), ctx())).toMatchObject({ detail: "reopened OPS-1 (Back to backlog)" });

    const closedForever = await withFake({ transitions: [{ id: "31", name: "Done", from: ["To Do"], to: "Done" }] });
    const c = dest({}, memoryState(), closedForever);
    await c.send(issue(), ctx());
    await c.send(issue(resolvedOver), ctx());
    expect(await c.send(issue(), ctx())).toEqual({ remoteId: "OPS-2", detail: "created OPS-2 in OPS (OPS-1 could not be reopened)" });
    expect(logs.lines().some((l) => typeof l["msg"] === "string" && l["msg"].includes("cannot reopen a resolved Jira issue"))).toBe(true);
  });

  it("takes resolve_transition by name or target status; else one into Done (with a warning); else fails with the choices", async () => {
    const workflow = await withFake({
      transitions: [
        { id: "71", name: "Won't fix", from: ["To Do"], to: "Won't Do" },
        { id: "81", name: "Close Issue", from: ["To Do"], to: "Closed" },
        { id: "91", name: "Resolve", from: ["To Do"], to: "Resolved" },
      ],
      statuses: [{ id: "1", name: "To Do", category: "new" }, { id: "2", name: "Won't Do", category: "done" }, { id: "3", name: "Closed", category: "done" }, { id: "4", name: "Resolved", category: "done" }],
    });
    const named = dest({ resolve_transition: "resolve" }, memoryState(), workflow);
    await named.send(issue({ fingerprint: "fp-a" }), ctx());
    expect(await named.send(issue({ fingerprint: "fp-a", ...resolvedOver }), ctx())).toMatchObject({ detail: "moved OPS-1 to Resolved" });
    const byStatus = dest({ resolve_transition: "Closed" }, memoryState(), workflow);
    await byStatus.send(issue({ fingerprint: "fp-b" }), ctx());
    expect(await byStatus.send(issue({ fingerprint: "fp-b", ...resolvedOver }), ctx())).toMatchObject({ detail: "moved OPS-2 to Closed" });
    // No "Done": a usual Done-category status, never "Won't Do" just because it comes first.
    const fallback = dest({}, memoryState(), workflow);
    await fallback.send(issue({ fingerprint: "fp-c" }), ctx());
    expect(await fallback.send(issue({ fingerprint: "fp-c", ...resolvedOver }), ctx())).toMatchObject({ detail: "moved OPS-3 to Closed" });
    expect(workflow.issue("OPS-3")!.transitions).toEqual(["Close Issue"]);
    expect(logs.lines().some((l) => l["used"] === "Close Issue" && String(l["msg"]).startsWith('no Jira transition "Done"'))).toBe(true);

    const nowhere = await withFake({ transitions: [{ id: "21", name: "Start Progress", from: ["To Do"], to: "In Progress" }] });
    const n = dest({}, memoryState(), nowhere);
    await n.send(issue(), ctx());
    const e = await sendError(n, issue(resolvedOver));
    expect(e).toMatchObject({ retryable: false, code: "transition_not_found" });
    expect(e.message).toBe('cannot resolve OPS-1: its workflow offers no transition "Done" (nor any to a Done status) from "To Do"');
    expect(e.hint).toBe('set params.resolve_transition to one of the transitions available from "To Do": Start Progress');
  });

  it("a transition without a screen takes no comment: the comment is added after it", async () => {
    const bare = await withFake({ transitionScreens: false });
    const d = dest({}, memoryState(), bare);
    await d.send(issue(), ctx());
    expect(await d.send(issue(resolvedOver), ctx())).toMatchObject({ detail: "moved OPS-1 to Done" });
    expect(bare.issue("OPS-1")!.status).toBe("Done");
    expect(bare.issue("OPS-1")!.comments).toHaveLength(1);
    expect(bare.received(FP)).toEqual(["open", "resolve", "update"]);
  });

  it("when Priority is not on the create screen, issues are created without it (once refused, not asked again)", async () => {
    const noPriority = await withFake({ projects: [{ key: "OPS", issueTypes: ["Bug"], priorityOnScreen: false }] });
    const d = dest({}, memoryState(), noPriority);
    expect(await d.send(issue(), ctx())).toMatchObject({ detail: "created OPS-1 in OPS" });
    expect(noPriority.issue("OPS-1")!.fields["priority"]).toBeUndefined();
    await d.send(issue({ fingerprint: "other" }), ctx());
    expect(noPriority.requests.filter((r) => r.path === "/rest/api/3/issue" && r.status === 400)).toHaveLength(1);
    expect(logs.lines().some((l) => typeof l["msg"] === "string" && l["msg"].startsWith("Jira refused the priority field"))).toBe(true);
  });

  it("bad credentials (401): not retryable, pointing at user and api_token", async () => {
    const e = await sendError(dest({ api_token: "ATATT-wrong-token-value" }));
    expect(e).toMatchObject({ retryable: false, code: "http_401" });
    expect(e.message).toBe("Jira search for the incident's issue failed: HTTP 401");
    expect(e.hint).toMatch(/check params\.user .* and params\.api_token/);
    expect(e.message + e.hint).not.toContain("ATATT-wrong-token-value");
  });

  it("no permission in the project (403): not retryable, naming the permissions", async () => {
    const ro = await withFake({ users: [{ email: JIRA_USER, token: JIRA_TOKEN, readOnlyProjects: ["OPS"] }] });
    const e = await sendError(dest({}, memoryState(), ro));
    expect(e).toMatchObject({ retryable: false, code: "http_403" });
    expect(e.message).toBe("Jira creating an issue in project OPS failed: HTTP 403: You do not have permission to create issues in this project.");
    expect(e.hint).toMatch(/lacks a permission in project OPS: it needs Browse projects, Create issues/);
  });

  it("an unknown project, issue type or component (400): not retryable, with Jira's field errors and the param to fix", async () => {
    const p = await sendError(dest({ project: "NOPE" }));
    expect(p).toMatchObject({ retryable: false, code: "http_400" });
    expect(p.message).toBe("Jira search for the incident's issue failed: HTTP 400: The value 'NOPE' does not exist for the field 'project'.");
    expect(p.hint).toMatch(/^check params\.project/);
    const t = await sendError(dest({ issue_type: "Epic Saga" }));
    expect(t.message).toBe("Jira creating an issue in project OPS failed: HTTP 400: issuetype: The issue type selected is invalid.");
    expect(t.hint).toMatch(/^check params\.issue_type: project OPS has no issue type "Epic Saga"/);
    const c = await sendError(dest({ components: ["nope"] }));
    expect(c.hint).toMatch(/^check params\.components/);
    expect(fake.issues).toHaveLength(0);
  });

  it("a wrong url (404): not retryable, pointing at url", async () => {
    const e = await sendError(create("jira", DESTINATION_TYPES.jira.params.parse({ url: `${fake.url}/jira`, user: JIRA_USER, api_token: JIRA_TOKEN, project: "OPS" }), { log: logs.log }));
    expect(e).toMatchObject({ retryable: false, code: "http_404" });
    expect(e.hint).toMatch(/^check params\.url/);
  });

  it("429 and 5xx are retryable, honouring Retry-After; nothing is created twice", async () => {
    const d = dest();
    fake.failNext(429, { retryAfterSeconds: 12 });
    expect(await sendError(d)).toMatchObject({ retryable: true, code: "http_429", retryAfterMs: 12_000 });
    await d.send(issue(), ctx());
    fake.failNext(503);
    expect(await sendError(d, issue(resolvedOver))).toMatchObject({ retryable: true, code: "http_503" });
    await d.send(issue(resolvedOver), ctx());
    expect(fake.issues).toHaveLength(1);
    expect(fake.received(FP)).toEqual(["open", "resolve"]);
  });

  it("a create cut off after Jira made the issue is found again (findExisting), not created twice", async () => {
    const state = memoryState();
    const d = dest({}, state);
    const since = Date.now();
    fake.dropNext("/rest/api/3/issue");
    expect(await sendError(d)).toMatchObject({ retryable: true, maybeDelivered: true });
    expect(fake.issues).toHaveLength(1);
    expect(state.map.size).toBe(0);
    const find = (i: Issue, at: number) => d.findExisting!(i, { since: at, signal: AbortSignal.timeout(5_000), log: logs.log });
    expect(await find(issue(), since)).toEqual({ remoteId: "OPS-1", detail: "found OPS-1, created before the interruption" });
    expect(state.map.get(`jira:jira/${FP}`)).toBe("OPS-1");
    // An issue from before the interrupted attempt is not what it created.
    expect(await find(issue(), Date.now() + 3_600_000)).toBeUndefined();
    expect(await find(issue({ fingerprint: "never" }), since)).toBeUndefined();
  });

  it("through the delivery engine, a cut create still makes exactly one issue", async () => {
    const store = SqliteDeliveryStore.open({ stateDir: ":memory:", maxBacklog: 100, log: logs.log });
    const d = dest({}, store);
    const engine = new DeliveryEngine({ store, destinations: [d], config: deliverySchema.parse({ attemptTimeout: "10s", retry: { initialDelay: "10ms", maxDelay: "50ms" } }), log: logs.log });
    const outcomes: string[] = [];
    engine.on("delivery", (e: DeliveryEvent) => outcomes.push(e.outcome));
    try {
      fake.dropNext("/rest/api/3/issue");
      engine.start();
      await engine.submit([issue()]);
      await vi.waitFor(() => expect(outcomes).toContain("success"), { timeout: 15_000, interval: 10 });
      expect(outcomes).toEqual(["retry", "success"]);
      expect(fake.issues).toHaveLength(1);
      expect(fake.requests.filter((r) => r.path === "/rest/api/3/issue")).toHaveLength(1);
    } finally {
      await engine.stop();
      store.close();
    }
  });

  it("a comment cut after Jira took it is retryable and maybe delivered", async () => {
    const d = dest();
    await d.send(issue(), ctx());
    fake.dropNext("/rest/api/3/issue/OPS-1/comment");
    expect(await sendError(d, { ...issue(), id: "repeat" })).toMatchObject({ retryable: true, maybeDelivered: true });
    expect(fake.issue("OPS-1")!.comments).toHaveLength(1);
  });

  it("no answer within the timeout is retryable and maybe delivered", async () => {
    fake.hangNext();
    expect(await sendError(dest({ timeout: "300ms" }))).toMatchObject({ retryable: true, code: "timeout", maybeDelivered: true });
  });

});

describe("kubecano test-destination with Jira", () => {
  let fake: JiraFake;
  let cwd: string;
  beforeAll(async () => {
    fake = await startJiraFake();
    cwd = await mkdtemp(path.join(os.tmpdir(), "kubecano-jira-"));
    await writeFile(
      path.join(cwd, "kubecano.config.yaml"),
      "clusterName: ci\ndestinations:\n  - name: jira\n    type: jira\n    params:\n      url: ${JIRA_URL}\n      user: kubecano-bot@example.com\n      api_token: ${JIRA_TOKEN}\n      project: OPS\n",
    );
  });
  afterAll(async () => {
    await fake.close();
    await rm(cwd, { recursive: true, force: true });
  });

  it("creates the test issue and resolves it at once (exit 0)", async () => {
    const r = await runCli(["test-destination", "jira", "--json"], { cwd, env: { JIRA_URL: fake.url, JIRA_TOKEN } });
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout) as { ok: boolean; results: { ok: boolean; detail: string }[] };
    expect(report.ok).toBe(true);
    expect(report.results[0]!.detail).toBe("created OPS-1 in OPS; resolved (moved OPS-1 to Done)");
    expect(fake.issues).toHaveLength(1);
    const i = fake.issues[0]!;
    expect(i.status).toBe("Done");
    expect(i.fields).toMatchObject({ summary: "kubecano test notification: please ignore (ci)", priority: { name: "Low" } });
    expect((i.fields["labels"] as string[])[1]).toMatch(/^kubecano-fp-test-[0-9a-f]+$/);
    expect(`${r.stdout}${r.stderr}`).not.toContain(JIRA_TOKEN);
  });

  it("a wrong token fails (exit 1) with the hint, and the token appears nowhere", async () => {
    const wrong = "ATATT-not-the-right-token-0000";
    const r = await runCli(["test-destination", "jira", "--log-level", "trace"], { cwd, env: { JIRA_URL: fake.url, JIRA_TOKEN: wrong } });
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/✖ jira\s+Jira search for the incident's issue failed: HTTP 401/);
    expect(r.stdout).toMatch(/hint: Jira did not accept the credentials/);
    expect(`${r.stdout}${r.stderr}`).not.toContain(wrong);
  });
});
