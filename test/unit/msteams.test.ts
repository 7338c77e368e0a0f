import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import fc from "fast-check";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { redactConfig, REDACTED } from "../../src/config/redact.js";
import { configSchema } from "../../src/config/schema.js";
import type { Block } from "../../src/core/blocks.js";
import { createIssue, withEnrichment, type Issue, type NewIssue } from "../../src/core/issue.js";
import { SEVERITIES } from "../../src/core/severity.js";
import { subjectFromLabels } from "../../src/core/subject.js";
import { closeHttpAgent } from "../../src/destinations/http.js";
import { create } from "../../src/destinations/msteams/index.js";
import { bytes, escapeMd, renderTeams, TEAMS_LIMITS, type CardElement, type TeamsPayload, type TextBlock } from "../../src/destinations/msteams/render.js";
import { DESTINATION_TYPES } from "../../src/destinations/registry.js";
import { DeliveryError, type Destination, type SendContext } from "../../src/destinations/types.js";
import { silentLogger } from "../../src/observability/logger.js";
import { checkTeamsCard, startTeamsFake, type TeamsFake } from "../fakes/msteams.js";
import { runCli } from "../helpers/cli.js";
import { blockArbitrary, degenerateBlocks, expectGolden, FIXED_ID, fixtureFiles, fixtureIssues, NOW, withManyEnrichments } from "../helpers/render-cases.js";

/**
 * The Microsoft Teams destination: golden files of the Adaptive Cards it
 * renders, the rules of the rendering (colours, facts, every block type,
 * escaping, mentions, the size limit), and the destination against the
 * local Workflows webhook fake, directly and through `kubecano
 * test-destination`. No error or output carries the webhook URL's signature.
 */

const log = silentLogger();

const BASE: NewIssue = {
  title: "Pod is crash looping.",
  description: "Pod shop/api-7d9f (api) is in waiting state (reason: CrashLoopBackOff).",
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
  fingerprint: "0a732576aaf8ce3c",
};

function issue(over: Partial<NewIssue> = {}): Issue {
  return { ...createIssue({ ...BASE, ...over }, NOW), id: FIXED_ID };
}

/** One enrichment per block type, as the built-in workflows produce them. */
function enrichedIssue(): Issue {
  const logs = Array.from({ length: 240 }, (_, i) => `2026-11-26T10:3${i % 10}:00Z ${i === 239 ? "panic: runtime error: invalid memory address" : `GET /api/orders 200 ${i}ms`}`).join("\n");
  const blocks: [string, Block[]][] = [
    ["Crash", [{ type: "header", text: "Container api restarted 12 times" }, { type: "markdown", text: "*Last state:* `Terminated` (OOMKilled, exit code 137). See <https://kubernetes.io/docs/concepts/|the docs>.\n```\nlimits:\n  memory: 256Mi\n```" }, { type: "divider" }]],
    ["Pod status", [{ type: "table", title: "Containers", headers: ["container", "state", "restarts", "last termination"], rows: [["api", "waiting (CrashLoopBackOff)", "12", "OOMKilled 137"], ["envoy", "running", "0", ""]] }]],
    ["Resources", [{ type: "table", headers: ["resource", "value"], rows: [["memory limit", "256Mi"], ["cpu request", "100m"]] }]],
    ["Pod logs", [{ type: "file", filename: "api.log", title: "api logs", content: `${logs}\n`, excerptLines: 20 }]],
    ["Owner", [{ type: "json", title: "owner", data: { kind: "Deployment", name: "api", replicas: { desired: 3, ready: 2 } } }]],
    ["Checks", [{ type: "list", items: ["memory limit 256Mi", "no HPA"] }]],
    ["More", [{ type: "links", links: [{ name: "Grafana", url: "https://grafana.example.com/d/pods?var-pod=api-7d9f", kind: "dashboard" }, { name: "not a web link", url: "javascript:alert(1)" }] }]],
  ];
  return issue({ enrichments: blocks.map(([title, b]) => ({ title, blocks: b, source: "test" })) });
}

function golden(name: string, value: unknown): void {
  expectGolden("msteams", name, value, "test/unit/msteams.test.ts");
}

/** Teams would show it, and it is within kubecano's own budget. */
function expectShown(p: TeamsPayload): void {
  expect(checkTeamsCard(p)).toEqual([]);
  expect(bytes(p)).toBeLessThanOrEqual(TEAMS_LIMITS.budgetBytes);
}

function card(p: TeamsPayload) {
  return p.attachments[0].content;
}

/** Every element, depth first. */
function elements(p: TeamsPayload): CardElement[] {
  const out: CardElement[] = [];
  const walk = (els: readonly CardElement[]): void => {
    for (const e of els) {
      out.push(e);
      if (e.type === "Container") walk(e.items);
    }
  };
  walk(card(p).body);
  return out;
}

/** The coloured band at the top: status, then title. */
function band(p: TeamsPayload): { style: string | undefined; items: TextBlock[] } {
  const head = card(p).body[0];
  if (head?.type !== "Container") throw new Error("the card has no header band");
  return { style: head.style, items: head.items as TextBlock[] };
}

function textBlocks(p: TeamsPayload): TextBlock[] {
  return elements(p).filter((e): e is TextBlock => e.type === "TextBlock");
}

function allText(p: TeamsPayload): string {
  return textBlocks(p).map((t) => t.text).join("\n");
}

describe("renderTeams golden files", () => {
  it("has Alertmanager fixtures to render", () => {
    expect(fixtureFiles.length).toBeGreaterThan(0);
  });

  it.each(fixtureFiles)("%s", (file) => {
    const rendered = fixtureIssues(file).map((i) => renderTeams(i));
    for (const p of rendered) expectShown(p);
    golden(file, rendered);
  });

  it("enriched.json: every block type", () => {
    const p = renderTeams(enrichedIssue());
    expectShown(p);
    golden("enriched.json", p);
  });

  it("renders the same Issue the same way (pure)", () => {
    const i = enrichedIssue();
    expect(renderTeams(i)).toEqual(renderTeams(structuredClone(i)));
  });
});

describe("renderTeams", () => {
  it("posts a message with one Adaptive Card 1.4, full width", () => {
    const p = renderTeams(issue());
    expect(p.type).toBe("message");
    expect(p.attachments).toHaveLength(1);
    expect(p.attachments[0]).toMatchObject({ contentType: "application/vnd.microsoft.card.adaptive", contentUrl: null });
    expect(card(p)).toMatchObject({ $schema: "http://adaptivecards.io/schemas/adaptive-card.json", type: "AdaptiveCard", version: "1.4", msteams: { width: "Full" } });
  });

  it.each([
    ["HIGH", "attention", "attention"],
    ["LOW", "warning", "warning"],
    ["INFO", "emphasis", "accent"],
    ["DEBUG", "emphasis", "default"],
  ] as const)("a firing %s Issue has a %s band and a %s status", (severity, bandStyle, color) => {
    const p = renderTeams(issue({ severity }));
    expect(card(p).body[0]).toMatchObject({ type: "Container", style: bandStyle, bleed: true });
    const status = band(p).items[0]!;
    expect(status).toMatchObject({ color, weight: "Bolder" });
    expect(status.text).toContain(`FIRING · ${severity}`);
    expect(band(p).items[1]!.text).toBe("Pod is crash looping.");
  });

  it("colours every RESOLVED Issue green and says when it resolved and after how long", () => {
    for (const severity of SEVERITIES) {
      const p = renderTeams(issue({ severity, status: "RESOLVED", endsAt: "2026-11-26T11:50:06.184Z" }));
      const head = band(p);
      expect(head.style).toBe("good");
      expect(head.items[0]).toMatchObject({ color: "good", text: `✅ RESOLVED · ${severity}` });
      const facts = elements(p).flatMap((e) => (e.type === "FactSet" ? e.facts : []));
      expect(facts).toContainEqual({ title: "Resolved", value: "2026-11-26 11:50:06 UTC (after 1h 12m)" });
    }
    expect(JSON.stringify(renderTeams(issue()))).not.toContain('"Resolved"');
  });

  it("lists the facts: cluster, namespace, object, container, alert, start", () => {
    const facts = card(renderTeams(issue())).body.find((e) => e.type === "FactSet")?.facts;
    expect(facts).toEqual([
      { title: "Cluster", value: "prod-eu-1" },
      { title: "Namespace", value: "shop" },
      { title: "Pod", value: "api-7d9f" },
      { title: "Container", value: "api" },
      { title: "Alert", value: "KubePodCrashLooping" },
      { title: "Started", value: "2026-11-26 10:38:06 UTC" },
    ]);
  });

  it("turns links into Action.OpenUrl buttons: http(s) only, at most five", () => {
    const links = [
      { name: "javascript", url: "javascript:alert(1)" },
      { name: "", url: "https://a.example/" },
      ...Array.from({ length: 8 }, (_, i) => ({ name: `L${i}`, url: `https://l${i}.example/` })),
    ];
    const actions = card(renderTeams(issue({ links }))).actions!;
    expect(actions.map((a) => a.title)).toEqual(["Link", "L0", "L1", "L2", "L3"]);
    expect(actions.every((a) => a.type === "Action.OpenUrl" && a.url.startsWith("https://"))).toBe(true);
    expect(card(renderTeams(issue({ links: [] }))).actions).toBeUndefined();
  });

  it("mentions the configured people on FIRING cards only", () => {
    const mentions = [{ id: "jane@example.com", name: "Jane Doe" }, { id: "0f8c1d2e-aaaa-bbbb-cccc-1234567890ab", name: "On-call <at>Bob</at>" }];
    const firing = renderTeams(issue(), { mentions });
    expectShown(firing);
    expect(card(firing).msteams.entities).toEqual([
      { type: "mention", text: "<at>Jane Doe</at>", mentioned: { id: "jane@example.com", name: "Jane Doe" } },
      { type: "mention", text: "<at>On-call atBob/at</at>", mentioned: { id: "0f8c1d2e-aaaa-bbbb-cccc-1234567890ab", name: "On-call atBob/at" } },
    ]);
    expect(allText(firing)).toContain("<at>Jane Doe</at> <at>On-call atBob/at</at>");
    const resolved = renderTeams(issue({ status: "RESOLVED", endsAt: "2026-11-26T11:00:00Z" }), { mentions });
    expect(card(resolved).msteams.entities).toBeUndefined();
    expect(allText(resolved)).not.toContain("<at>");
  });

  it("shows alert text as written: markdown is escaped and no text can pose as a mention", () => {
    const evil = "**bold** _it_ [click](https://evil.example) <at>Jane Doe</at> - item\n1. first &amp; `code` \\";
    const p = renderTeams(
      issue({ title: evil, description: evil, clusterName: evil, subject: subjectFromLabels({ alertname: evil, namespace: "shop", pod: evil, note: evil }), links: [{ name: evil, url: "https://ok.example/" }] }),
      { mentions: [{ id: "jane@example.com", name: "Jane Doe" }] },
    );
    expectShown(p);
    const texts = [...textBlocks(p).map((t) => t.text), ...elements(p).flatMap((e) => (e.type === "FactSet" ? e.facts.flatMap((f) => [f.title, f.value]) : []))];
    for (const t of texts) {
      // Only kubecano's own markup remains: the mention line and bold labels/titles.
      const own = t.replace(/^<at>Jane Doe<\/at>$/, "").replace(/^\*\*Labels:\*\* /, "");
      expect(own).not.toMatch(/(?<!\\)\*\*|(?<!\\)\[|<at>/);
    }
    expect(escapeMd("a*b_c[d](e)`f`~g\\h")).toBe("a\\*b\\_c\\[d\\](e)\\`f\\`\\~g\\\\h");
    expect(escapeMd("- x\n+ y\n12. z\n&lt;")).toBe("\\- x\n\\+ y\n12\\. z\n\\&lt;");
  });

  it("draws every block type", () => {
    const p = renderTeams(enrichedIssue());
    const text = allText(p);
    // markdown: *bold* → **bold**, <url|text> → [text](url), a fence → monospace lines
    expect(text).toContain("**Last state:** Terminated (OOMKilled, exit code 137). See [the docs](https://kubernetes.io/docs/concepts/).");
    const mono = textBlocks(p).filter((t) => t.fontType === "Monospace");
    expect(mono.every((t) => t.wrap === true)).toBe(true);
    expect(mono.map((t) => t.text)).toContain("\u00a0\u00a0memory: 256Mi");
    // header, list, json, links
    expect(textBlocks(p).find((t) => t.text === "Container api restarted 12 times")).toMatchObject({ weight: "Bolder" });
    expect(text).toContain("• memory limit 256Mi");
    expect(mono.map((t) => t.text)).toContain('\u00a0\u00a0"kind": "Deployment",');
    expect(text).toContain("[Grafana](https://grafana.example.com/d/pods?var-pod=api-7d9f)");
    expect(text).not.toContain("javascript:");
    // a wide table: aligned monospace lines, header in bold
    const header = mono.find((t) => t.text.startsWith("container"));
    expect(header).toMatchObject({ weight: "Bolder" });
    const row = mono.find((t) => t.text.startsWith("api"))!.text;
    expect(row).not.toMatch(/ {2}/);
    expect(row.replace(/\u00a0/g, " ")).toBe("api        waiting (CrashLoopBackOff)  12        OOMKilled 137");
    // a two-column table: facts
    expect(elements(p).filter((e) => e.type === "FactSet").at(-1)).toMatchObject({ facts: [{ title: "memory limit", value: "256Mi" }, { title: "cpu request", value: "100m" }] });
    // a log: the last lines, monospace, saying how many were shown
    expect(text).toContain("**api logs** _(api.log: 240 lines, last 20 shown)_");
    expect(mono.at(-1 - mono.slice().reverse().findIndex((t) => t.text.startsWith("2026")))!.text).toContain("panic: runtime error");
    expect(mono.some((t) => t.text.includes("GET /api/orders 200 219ms"))).toBe(false);
    // a divider: the next element is drawn with a separator line
    expect(elements(p).find((e) => e.type === "TextBlock" && e.text === "**Pod status**")).toBeUndefined();
  });

  it("keeps a divider as a separator on what follows it", () => {
    const p = renderTeams(withEnrichment(issue(), { title: "", blocks: [{ type: "markdown", text: "before" }, { type: "divider" }, { type: "markdown", text: "after" }] }));
    expect(textBlocks(p).find((t) => t.text === "after")).toMatchObject({ separator: true });
    expect(textBlocks(p).find((t) => t.text === "before")?.separator).toBeUndefined();
  });

  it("copes with empty and degenerate blocks", () => {
    const blocks = degenerateBlocks();
    const p = renderTeams(withEnrichment(issue({ title: "", description: " \n ", clusterName: "", links: [{ name: "", url: "https://x.example" }, { name: "mail", url: "mailto:a@b.c" }] }), { title: "", blocks }));
    expectShown(p);
    expect(allText(p)).toContain("(unserialisable value)");
  });
});

describe("renderTeams stays under Teams' message size limit", () => {
  const big = (n: number, base = issue()): Issue => withManyEnrichments(base, n);

  it("cuts enrichment content first, and says so", () => {
    const labels = Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`label_${i}`, `value-${i}`]));
    const p = renderTeams(big(60, issue({ subject: subjectFromLabels({ ...labels, pod: "api-1", namespace: "shop" }) })));
    expectShown(p);
    const text = allText(p);
    expect(text).toMatch(/✂️ Cut to fit Teams' message size limit: \d+ enrichment blocks\./);
    expect(text).toContain("Enrichment 0");
    // Labels and description are whole.
    expect(text).toContain("label\\_19=value-19");
    expect(text).toContain("Pod shop/api-7d9f (api) is in waiting state (reason: CrashLoopBackOff).");
  });

  it("shows a shorter excerpt of a log that does not fit whole, rather than none", () => {
    const lines = Array.from({ length: 200 }, (_, i) => `line ${i} ${"x".repeat(150)}`).join("\n");
    const p = renderTeams(withEnrichment(issue(), { title: "Logs", blocks: [{ type: "file", filename: "api.log", content: lines, excerptLines: 200 }] }));
    expectShown(p);
    const text = allText(p);
    expect(text).toContain("line 199 ");
    expect(text).toMatch(/api\.log: 200 lines, last \d+ shown/);
    expect(text).toContain("✂️ Cut to fit Teams' message size limit: the longest enrichments.");
  });

  it("then labels, then the description", () => {
    const labels = Object.fromEntries(Array.from({ length: 400 }, (_, i) => [`label_${i}`, `value-${i}-${"v".repeat(60)}`]));
    const withLabels = renderTeams(big(5, issue({ subject: subjectFromLabels({ ...labels, pod: "api-1", namespace: "shop" }) })));
    expectShown(withLabels);
    expect(allText(withLabels)).toMatch(/Cut to fit Teams' message size limit: \d+ enrichment blocks, \d+ of 402 labels\./);
    expect(allText(withLabels)).toMatch(/_\(\+\d+ more\)_/);
    expect(allText(withLabels)).toContain("Pod shop/api-7d9f (api)");

    // Five 2,000-character link URLs and long facts of 3-byte characters: even without labels the description does not fit whole.
    const links = Array.from({ length: 5 }, (_, i) => ({ name: `L${i}`, url: `https://l${i}.example/${"p".repeat(1970)}` }));
    const e = "€".repeat(300);
    const everything = renderTeams(
      issue({ description: "€".repeat(6000), title: "€".repeat(2000), clusterName: e, aggregationKey: e, links, subject: subjectFromLabels({ ...labels, pod: e, namespace: e, container: e, node: e }) }),
    );
    expectShown(everything);
    expect(allText(everything)).toContain("✂️ Cut to fit Teams' message size limit: 404 of 404 labels, the end of the description.");
    expect(allText(everything)).toMatch(/€{1000,}…/);
    expect(card(everything).actions).toHaveLength(5);
  });

  it("shows the tail of a 5 MB log", () => {
    const content = `${Array.from({ length: 80_000 }, (_, i) => `2026-11-26T10:38:06Z level=error msg="request failed" n=${i} <&>`).join("\n")}\n`;
    expect(content.length).toBeGreaterThan(5_000_000);
    const p = renderTeams(withEnrichment(issue(), { title: "Logs", blocks: [{ type: "file", filename: "api.log", content }] }));
    expectShown(p);
    expect(allText(p)).toContain("n=79999 <&>");
    expect(allText(p)).toContain("80000 lines, last 15 shown");
  });

  it("accepts anything (property test)", () => {
    const text = fc.string({ unit: "binary", maxLength: 300 });
    const bigText = fc.oneof(text, fc.string({ unit: fc.constantFrom("&", "<", ">", "`", "*", "_", "[", "]", "\\", "\n", " ", "a", "😀", "|", "-"), maxLength: 6000 }));
    const block = blockArbitrary(text, bigText);
    fc.assert(
      fc.property(
        fc.record({
          title: bigText,
          description: bigText,
          clusterName: text,
          labels: fc.dictionary(text, text, { maxKeys: 60 }),
          severity: fc.constantFrom(...SEVERITIES),
          resolved: fc.boolean(),
          links: fc.array(fc.record({ name: text, url: fc.webUrl() }), { maxLength: 8 }),
          mentions: fc.array(fc.record({ id: fc.emailAddress(), name: text }), { maxLength: 3 }),
          enrichments: fc.array(fc.record({ title: text, blocks: fc.array(block, { maxLength: 5 }) }), { maxLength: 12 }),
        }),
        (r) => {
          let i = issue({
            title: r.title,
            description: r.description,
            clusterName: r.clusterName,
            severity: r.severity,
            subject: subjectFromLabels(r.labels),
            links: r.links,
            ...(r.resolved ? { status: "RESOLVED" as const, endsAt: "2026-11-26T10:39:00Z" } : {}),
          });
          for (const e of r.enrichments) i = withEnrichment(i, e);
          expectShown(renderTeams(i, { mentions: r.mentions }));
        },
      ),
      { numRuns: 150, seed: 20261126 },
    );
  });
});

describe("msteams params", () => {
  const parse = (p: unknown) => DESTINATION_TYPES.msteams.params.safeParse(p);

  it("needs an http(s) webhook_url and takes timeout and mentions", () => {
    expect(parse({}).success).toBe(false);
    expect(parse({ webhook_url: "ftp://x.example/" }).success).toBe(false);
    expect(parse({ webhook_url: "https://x.example/", channel: "#a" }).success).toBe(false);
    const p = DESTINATION_TYPES.msteams.params.parse({ webhook_url: "https://x.example/hook", mentions: ["jane@example.com", { id: "abc", name: "Bob" }] });
    expect(p).toEqual({ webhook_url: "https://x.example/hook", timeout: 10_000, mentions: [{ id: "jane@example.com", name: "jane@example.com" }, { id: "abc", name: "Bob" }] });
  });

  it("is a secret in `config print`", () => {
    const config = configSchema.parse({ destinations: [{ name: "teams", type: "msteams", params: { webhook_url: "https://x.example/workflows/1?sig=SECRET" } }] });
    expect(JSON.stringify(redactConfig(config))).not.toContain("SECRET");
    expect((redactConfig(config).destinations[0]!.params as { webhook_url: string }).webhook_url).toBe(REDACTED);
  });
});

describe("msteams destination against the Workflows webhook fake", () => {
  let fake: TeamsFake;
  beforeAll(async () => {
    fake = await startTeamsFake();
  });
  afterEach(() => fake.reset());
  afterAll(async () => {
    await fake.close();
    await closeHttpAgent();
  });

  const ctx = (): SendContext => ({ signal: AbortSignal.timeout(10_000), attempt: 1, log });
  const dest = (params: Record<string, unknown> = {}): Destination => create("teams", DESTINATION_TYPES.msteams.params.parse({ webhook_url: fake.webhookUrl(), ...params }), { log });
  async function sendError(d: Destination, i: Issue = issue()): Promise<DeliveryError> {
    try {
      await d.send(i, ctx());
    } catch (e) {
      expect(e).toBeInstanceOf(DeliveryError);
      return e as DeliveryError;
    }
    throw new Error("expected send to fail");
  }
  const noSecret = (e: DeliveryError): void => {
    for (const t of [e.message, e.hint ?? "", e.code, JSON.stringify(e), e.stack ?? ""]) {
      expect(t).not.toContain(fake.signature());
      expect(t).not.toContain("/workflows/");
    }
  };

  it("posts the rendered card (202), and a RESOLVED card on resolution", async () => {
    const d = dest({ mentions: ["jane@example.com"] });
    expect(d.resolvesIncidents).toBeUndefined();
    const r = await d.send(issue(), ctx());
    expect(r.detail).toBe(`posted a card to the Teams workflow at ${fake.url}`);
    expect(fake.posts).toHaveLength(1);
    expect(fake.posts[0]!.body).toEqual(d.render(issue()).body);
    expect(card(fake.posts[0]!.body as TeamsPayload).msteams.entities).toHaveLength(1);
    const rr = await d.send(issue({ status: "RESOLVED", endsAt: "2026-11-26T11:00:00Z" }), ctx());
    expect(rr.detail).toContain("a RESOLVED card");
    expect(fake.received("0a732576aaf8ce3c")).toEqual(["open", "resolve"]);
    expect(fake.posts[1]!.status).toBe("RESOLVED");
  });

  it("posts a 5 MB-log Issue within the limit", async () => {
    const content = "x".repeat(200).concat("\n").repeat(25_000);
    await dest().send(withEnrichment(issue(), { title: "Logs", blocks: [{ type: "file", filename: "a.log", content, excerptLines: 500 }] }), ctx());
    expect(fake.posts[0]!.bytes).toBeLessThanOrEqual(TEAMS_LIMITS.budgetBytes);
  });

  it("a wrong signature (401) is not retryable, and the signature the flow echoes is not repeated", async () => {
    const wrong = fake.webhookUrl().replace(/sig=[^&]+/, "sig=WRONGsignatureVALUE123");
    const e = await sendError(create("teams", DESTINATION_TYPES.msteams.params.parse({ webhook_url: wrong }), { log }));
    expect(e).toMatchObject({ retryable: false, code: "DirectApiInvalidAuthorizationSignature" });
    expect(e.message).toBe("Teams workflow answered HTTP 401 (DirectApiInvalidAuthorizationSignature)");
    expect(e.hint).toMatch(/copy the URL again/);
    expect(`${e.message} ${e.hint}`).not.toContain("WRONGsignatureVALUE123");
    noSecret(e);
  });

  it("a deleted flow (404) and a disabled one (403) say to re-create the workflow", async () => {
    fake.deleteFlow("gone");
    const gone = fake.webhookUrl("gone");
    fake.deleteFlow("gone");
    const e404 = await sendError(create("teams", DESTINATION_TYPES.msteams.params.parse({ webhook_url: gone }), { log }));
    expect(e404).toMatchObject({ retryable: false, code: "WorkflowNotFound" });
    expect(e404.hint).toMatch(/re-create the workflow/);
    fake.disableFlow("off");
    const e403 = await sendError(create("teams", DESTINATION_TYPES.msteams.params.parse({ webhook_url: fake.webhookUrl("off") }), { log }));
    expect(e403).toMatchObject({ retryable: false, code: "WorkflowDisabled" });
    expect(e403.hint).toMatch(/re-create the workflow/);
    noSecret(e404);
    noSecret(e403);
  });

  it("400 is not retryable, with a hint about the flow's trigger", async () => {
    fake.failNext(400);
    const e = await sendError(dest());
    expect(e.retryable).toBe(false);
    expect(e.hint).toMatch(/When a Teams webhook request is received/);
  });

  it("429 and 5xx are retryable, honouring Retry-After", async () => {
    fake.failNext(429, { retryAfterSeconds: 30 });
    expect(await sendError(dest())).toMatchObject({ retryable: true, code: "http_429", retryAfterMs: 30_000 });
    fake.failNext(502);
    expect(await sendError(dest())).toMatchObject({ retryable: true, code: "http_502" });
    expect(fake.posts).toHaveLength(0);
  });

  it("a timeout or a cut connection is retryable and may have been delivered", async () => {
    fake.hangNext();
    const t = await sendError(dest({ timeout: "300ms" }));
    expect(t).toMatchObject({ retryable: true, code: "timeout", maybeDelivered: true });
    noSecret(t);
    fake.dropNext();
    const cut = await sendError(dest());
    expect(cut.retryable).toBe(true);
    expect(fake.posts).toHaveLength(1);
    noSecret(cut);
  });
});

describe("kubecano test-destination with Teams", () => {
  let fake: TeamsFake;
  let cwd: string;
  beforeAll(async () => {
    fake = await startTeamsFake();
    cwd = await mkdtemp(path.join(os.tmpdir(), "kubecano-teams-"));
    await writeFile(path.join(cwd, "kubecano.config.yaml"), "clusterName: ci\ndestinations:\n  - name: teams\n    type: msteams\n    params:\n      webhook_url: ${TEAMS_URL}\n");
  });
  afterAll(async () => {
    await fake.close();
    await rm(cwd, { recursive: true, force: true });
  });

  it("posts one card (exit 0)", async () => {
    const r = await runCli(["test-destination", "teams", "--json"], { cwd, env: { TEAMS_URL: fake.webhookUrl() } });
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout) as { ok: boolean; results: { ok: boolean; detail: string }[] };
    expect(report.ok).toBe(true);
    expect(report.results[0]!.detail).toMatch(/^posted a card to the Teams workflow at http:\/\/127\.0\.0\.1:\d+$/);
    expect(fake.posts).toHaveLength(1);
    const title = band(fake.posts[0]!.body as TeamsPayload).items[1]!.text;
    expect(title).toBe("kubecano test notification: please ignore");
    expect(`${r.stdout}${r.stderr}`).not.toContain(fake.signature());
  });

  it("a deleted workflow fails (exit 1) with the hint, and the URL appears nowhere", async () => {
    const url = fake.webhookUrl("deleted-flow");
    fake.deleteFlow("deleted-flow");
    const r = await runCli(["test-destination", "teams", "--log-level", "trace"], { cwd, env: { TEAMS_URL: url } });
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/✖ teams\s+Teams workflow answered HTTP 404 \(WorkflowNotFound\)/);
    expect(r.stdout).toMatch(/hint: there is no workflow at this URL/);
    expect(`${r.stdout}${r.stderr}`).not.toContain("deleted-flow");
  });
});
