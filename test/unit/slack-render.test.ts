import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { Block, Enrichment } from "../../src/core/blocks.js";
import { createIssue, withEnrichment, type Issue, type NewIssue } from "../../src/core/issue.js";
import { SEVERITIES, type Severity } from "../../src/core/severity.js";
import { subjectFromLabels } from "../../src/core/subject.js";
import { checkLimits, SLACK_LIMITS, type SlackBlock, type SlackMessage } from "../../src/destinations/slack/limits.js";
import { blockToSlack, escape, fallbackText, METADATA_EVENT_TYPE, renderSlack, RESOLVED_COLOR, SEVERITY_COLORS } from "../../src/destinations/slack/render.js";
import { alertmanagerToIssues, parseWebhookBody } from "../../src/sources/alertmanager/index.js";
import { checkBlockKit } from "../fakes/slack.js";

/**
 * The Slack renderer: golden files per Alertmanager fixture (UPDATE_GOLDEN=1
 * rewrites them), and proof that whatever goes in, what comes out is a
 * message Slack accepts (kubecano's checkLimits and the fake's independent
 * Block Kit checks) that can never ping a channel.
 */

const here = path.dirname(fileURLToPath(import.meta.url));
const FIXTURES = path.join(here, "../fixtures/alertmanager");
const GOLDEN = path.join(here, "../golden/slack");
const NOW = new Date("2026-11-26T10:40:00.000Z");
const FIXED_ID = "00000000-0000-4000-8000-000000000000";
const UPDATE = process.env["UPDATE_GOLDEN"] === "1";

function fixtureIssues(file: string): Issue[] {
  const fixture = JSON.parse(readFileSync(path.join(FIXTURES, file), "utf8")) as { body: unknown };
  const parsed = parseWebhookBody(JSON.stringify(fixture.body));
  if (!parsed.ok) throw new Error(`${file}: ${parsed.error.message}`);
  return alertmanagerToIssues(parsed.value, { clusterName: "prod-eu-1", now: NOW }).map((i) => ({ ...i, id: FIXED_ID }));
}

/** Every check a message must pass before it goes to Slack. */
function expectAccepted(msg: SlackMessage): void {
  expect(checkLimits(msg)).toEqual([]);
  const fakeCheck = checkBlockKit(msg.blocks, msg.attachments);
  expect(fakeCheck.errors).toEqual([]);
  expect(fakeCheck.tooLong).toBe(false);
  expect(msg.text.trim()).not.toBe("");
  expect(msg.text.length).toBeLessThanOrEqual(SLACK_LIMITS.messageText);
  for (const a of msg.attachments) expect(a.fallback?.length ?? 0).toBeLessThanOrEqual(300);
  // No lone surrogates: they are invalid UTF-8 on the wire.
  expect(JSON.stringify(msg)).not.toMatch(/(?:[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff])/);
}

function allBlocks(msg: SlackMessage): SlackBlock[] {
  return [...msg.blocks, ...msg.attachments.flatMap((a) => a.blocks)];
}

/** Every mrkdwn string Slack parses for mentions: mrkdwn text objects, the message text and fallback. */
function mrkdwnTexts(msg: SlackMessage): string[] {
  const out = [msg.text, ...msg.attachments.map((a) => a.fallback ?? "")];
  for (const b of allBlocks(msg)) {
    if (b.type === "section") {
      if (b.text?.type === "mrkdwn") out.push(b.text.text);
      for (const f of b.fields ?? []) if (f.type === "mrkdwn") out.push(f.text);
    }
    if (b.type === "context") for (const e of b.elements) if (e.type === "mrkdwn") out.push(e.text);
  }
  return out;
}

function plainTexts(msg: SlackMessage): string[] {
  const out: string[] = [];
  for (const b of allBlocks(msg)) {
    if (b.type === "header") out.push(b.text.text);
    if (b.type === "actions") for (const e of b.elements) out.push(e.text.text);
  }
  return out;
}

const BASE: NewIssue = {
  title: "Pod is crash looping.",
  description: "Pod shop/api-7d9f (api) is in waiting state (reason: CrashLoopBackOff).",
  aggregationKey: "KubePodCrashLooping",
  severity: "HIGH",
  status: "FIRING",
  source: "prometheus",
  type: "alert",
  subject: subjectFromLabels({ alertname: "KubePodCrashLooping", namespace: "shop", pod: "api-7d9f", container: "api", severity: "critical" }),
  startsAt: "2026-11-26T10:38:06.184Z",
  links: [{ name: "Runbook", url: "https://runbooks.example.com/kubepodcrashlooping", kind: "runbook" }],
  clusterName: "prod-eu-1",
  fingerprint: "0a732576aaf8ce3c",
};

function issue(over: Partial<NewIssue> = {}): Issue {
  return { ...createIssue({ ...BASE, ...over }, NOW), id: FIXED_ID };
}

const fixtureFiles = readdirSync(FIXTURES)
  .filter((f) => f.endsWith(".json"))
  .sort();

describe("renderSlack golden files", () => {
  it("has Alertmanager fixtures to render", () => {
    expect(fixtureFiles.length).toBeGreaterThan(0);
  });

  it.each(fixtureFiles)("%s", (file) => {
    const rendered = fixtureIssues(file).map((i) => renderSlack(i));
    for (const msg of rendered) expectAccepted(msg);
    const goldenPath = path.join(GOLDEN, file);
    const actual = `${JSON.stringify(rendered, null, 2)}\n`;
    if (UPDATE) {
      mkdirSync(GOLDEN, { recursive: true });
      writeFileSync(goldenPath, actual);
      return;
    }
    if (!existsSync(goldenPath)) throw new Error(`no golden file ${path.relative(process.cwd(), goldenPath)}: run UPDATE_GOLDEN=1 npx vitest run test/unit/slack-render.test.ts`);
    expect(actual).toBe(readFileSync(goldenPath, "utf8"));
  });

  it("renders the same Issue the same way (pure)", () => {
    const [a] = fixtureIssues(fixtureFiles[0]!);
    expect(renderSlack(a!)).toEqual(renderSlack(structuredClone(a!)));
  });
});

describe("renderSlack content", () => {
  it("carries the fingerprint in metadata in bot mode, and no metadata for webhooks", () => {
    const bot = renderSlack(issue());
    expect(bot.metadata).toEqual({
      event_type: METADATA_EVENT_TYPE,
      event_payload: { fingerprint: "0a732576aaf8ce3c", status: "FIRING", issue_id: FIXED_ID, severity: "HIGH", aggregation_key: "KubePodCrashLooping" },
    });
    expect(renderSlack(issue(), { metadata: false }).metadata).toBeUndefined();
  });

  it.each(SEVERITIES.map((s) => [s, SEVERITY_COLORS[s]] as const))("colours a firing %s Issue %s", (severity: Severity, color) => {
    const msg = renderSlack(issue({ severity }));
    expect(msg.attachments[0]!.color).toBe(color);
    expect((msg.blocks[0] as { text: { text: string } }).text.text).toContain(`FIRING · ${severity}`);
    expect(msg.text).toMatch(new RegExp(`^FIRING ${severity}: `));
  });

  it("colours every RESOLVED Issue green and shows when it resolved and after how long", () => {
    for (const severity of SEVERITIES) {
      const msg = renderSlack(issue({ severity, status: "RESOLVED", endsAt: "2026-11-26T11:50:06.184Z" }));
      expect(msg.attachments[0]!.color).toBe(RESOLVED_COLOR);
      expect(msg.text).toMatch(/^RESOLVED: /);
      const fields = allBlocks(msg).flatMap((b) => (b.type === "section" ? (b.fields ?? []) : [])).map((f) => f.text);
      const resolved = fields.find((f) => f.startsWith("*Resolved*"));
      expect(resolved).toBe(`*Resolved*\n<!date^${Date.parse("2026-11-26T11:50:06Z") / 1000}^{date_short_pretty} {time_secs}|2026-11-26 11:50:06 UTC> (after 1h 12m)`);
    }
    const firing = renderSlack(issue());
    expect(JSON.stringify(firing)).not.toContain("*Resolved*");
  });

  it("shows the resolution time of the resolved fixture", () => {
    const resolvedFile = fixtureFiles.find((f) => f.startsWith("resolved"));
    expect(resolvedFile).toBeDefined();
    const msg = renderSlack(fixtureIssues(resolvedFile!)[0]!);
    expect(JSON.stringify(msg)).toContain("*Resolved*");
  });

  it("escapes alert text so it can never ping or inject links", () => {
    const evil = "<!channel> <!here|here> <!everyone> <@U1> <#C123> <!subteam^S1|@oncall> <https://evil.example|click> a & b < c > d";
    const msg = renderSlack(
      issue({
        title: evil,
        description: evil,
        clusterName: `prod ${evil}`,
        aggregationKey: evil,
        subject: subjectFromLabels({ alertname: evil, namespace: evil, pod: evil, note: evil }),
        links: [{ name: evil, url: "https://ok.example/" }],
      }),
    );
    expectAccepted(msg);
    for (const t of mrkdwnTexts(msg)) {
      // After escaping, no "<" from the alert is left: Slack parses mentions and links only inside <...>.
      expect(t.replace(/<!date\^\d+\^\{date_short_pretty\} \{time_secs\}\|[^<>]*>/g, "")).not.toMatch(/[<>]/);
    }
    for (const t of plainTexts(msg)) expect(t).not.toMatch(/<[!@#]/);
    const description = allBlocks(msg).find((b) => b.type === "section" && b.text?.text.includes("&amp; b"));
    expect(description).toBeDefined();
    expect(JSON.stringify(description)).toContain("&lt;!channel&gt;");
  });

  it("never lets a markdown enrichment page a channel or a user group", () => {
    const md = blockToSlack({ type: "markdown", text: "hey <!channel> <!here> <!everyone|everyone> <!subteam^S1|@team> *bold* <https://ok.example|link>" }, {});
    const text = (md[0] as { text: { text: string } }).text.text;
    expect(text).not.toMatch(/<!(channel|here|everyone|subteam)/);
    expect(text).toContain("*bold* <https://ok.example|link>");
  });

  it("keeps links blocks from breaking out of the <url|name> syntax", () => {
    const [b] = blockToSlack({ type: "links", links: [{ name: "a|b>c", url: "https://x.example/a?b=1&c=<2>|3" }] }, {});
    const text = (b as { text: { text: string } }).text.text;
    expect(text.match(/</g)).toHaveLength(1);
    expect(text.match(/>/g)).toHaveLength(1);
    expect(text.match(/\|/g)).toHaveLength(1);
  });

  it("escapes the fallback text and keeps it one line", () => {
    expect(fallbackText(issue({ title: "a <b>\nc & d" }))).toBe("FIRING HIGH: a &lt;b&gt; c &amp; d (shop/pod/api-7d9f, prod-eu-1)");
    expect(escape("<&>")).toBe("&lt;&amp;&gt;");
  });
});

describe("renderSlack with oversized input stays within Slack's limits", () => {
  it("cuts a 10,000-character description", () => {
    const msg = renderSlack(issue({ description: "d".repeat(9_999) + "&" }));
    expectAccepted(msg);
    const desc = allBlocks(msg).find((b) => b.type === "section" && b.text?.text.startsWith("ddd"));
    expect(desc?.type === "section" && desc.text!.text.endsWith("…")).toBe(true);
  });

  it("cuts a description full of characters that grow when escaped without splitting an entity", () => {
    const msg = renderSlack(issue({ description: "&<>".repeat(3000) }));
    expectAccepted(msg);
    const desc = allBlocks(msg).find((b) => b.type === "section" && b.text?.text.startsWith("&amp;"));
    expect(desc?.type === "section" && /^(&amp;&lt;&gt;)+(&amp;|&amp;&lt;)?…$/.test(desc.text!.text)).toBe(true);
  });

  it("lists as many of 200 labels as fit and says how many more there are", () => {
    const labels = Object.fromEntries(Array.from({ length: 200 }, (_, i) => [`label_${i}`, `value-${i}-${"v".repeat(40)}`]));
    const msg = renderSlack(issue({ subject: subjectFromLabels({ ...labels, pod: "api-1", namespace: "shop" }) }));
    expectAccepted(msg);
    expect(JSON.stringify(msg)).toMatch(/_\+\d+ more labels_/);
  });

  it("takes a header-length title, and a longer one", () => {
    for (const n of [150, 151, 1000]) {
      const msg = renderSlack(issue({ title: "T".repeat(n) }));
      expectAccepted(msg);
      const header = msg.blocks[0]!;
      expect(header.type === "header" && header.text.text.length <= 150).toBe(true);
    }
  });

  it("takes 60 enrichments of every block type and notes what did not fit", () => {
    let big = issue();
    const kinds: Block[] = [
      { type: "markdown", text: "*Recent events*\n• BackOff restarting failed container\n• Pulled image" },
      { type: "table", title: "Pods", headers: ["name", "status", "restarts"], rows: [["api-1", "CrashLoopBackOff", "12"], ["api-2", "Running", "0"]] },
      { type: "file", filename: "api.log", content: "line\n".repeat(200) },
      { type: "json", title: "lastState", data: { terminated: { exitCode: 137, reason: "OOMKilled" } } },
      { type: "header", text: "Node state" },
      { type: "list", items: ["MemoryPressure=False", "DiskPressure=False"] },
      { type: "links", links: [{ name: "Grafana", url: "https://grafana.example/d/abc" }] },
      { type: "divider" },
    ];
    for (let i = 0; i < 60; i++) big = withEnrichment(big, { title: `Enrichment ${i}`, blocks: [kinds[i % kinds.length]!, kinds[(i + 3) % kinds.length]!] });
    const msg = renderSlack(big);
    expectAccepted(msg);
    expect(allBlocks(msg).length).toBeLessThanOrEqual(SLACK_LIMITS.maxBlocks);
    expect(JSON.stringify(msg)).toMatch(/:scissors: \d+ more enrichment blocks? did not fit/);
    expect(JSON.stringify(msg)).toContain("Enrichment 0");
  });

  it("shows the tail of a 5 MB log as an excerpt", () => {
    const lines = Array.from({ length: 80_000 }, (_, i) => `2026-11-26T10:38:06Z level=error msg="request failed" n=${i} <&>`);
    const content = `${lines.join("\n")}\n`;
    expect(content.length).toBeGreaterThan(5_000_000);
    const msg = renderSlack(withEnrichment(issue(), { title: "Logs", blocks: [{ type: "file", filename: "api.log", content }] }));
    expectAccepted(msg);
    const text = JSON.stringify(msg);
    expect(text).toContain("n=79999 &lt;&amp;&gt;");
    expect(text).not.toContain("n=0 ");
    expect(text).toContain("80000 lines, last 15 shown");
  });

  it("shows a single 5 MB line cut from the start", () => {
    const content = `${"x".repeat(5_000_000)}END`;
    const msg = renderSlack(withEnrichment(issue(), { title: "Logs", blocks: [{ type: "file", filename: "one.log", content, excerptLines: 5 }] }));
    expectAccepted(msg);
    expect(JSON.stringify(msg)).toContain("END```");
  });

  it("shows the first rows of a 500-row, 30-column table", () => {
    const headers = Array.from({ length: 30 }, (_, i) => `column_${i}`);
    const rows = Array.from({ length: 500 }, (_, r) => headers.map((_, c) => `r${r}c${c}-${"w".repeat(20)}`));
    const msg = renderSlack(withEnrichment(issue(), { title: "Wide", blocks: [{ type: "table", title: "All pods", headers, rows }] }));
    expectAccepted(msg);
    expect(JSON.stringify(msg)).toMatch(/_\d+ more rows not shown_/);
  });

  it("copes with empty and degenerate blocks", () => {
    const blocks: Block[] = [
      { type: "markdown", text: "   " },
      { type: "table", headers: [], rows: [] },
      { type: "file", filename: "empty.log", content: "" },
      { type: "json", data: undefined },
      { type: "json", data: (() => { const o: Record<string, unknown> = {}; o["self"] = o; return o; })() },
      { type: "list", items: [] },
      { type: "links", links: [] },
      { type: "header", text: "" },
    ];
    const enrichment: Enrichment = { title: "", blocks };
    const msg = renderSlack(withEnrichment(issue({ title: "", description: " \n ", clusterName: "", links: [{ name: "", url: "https://x.example" }, { name: "mail", url: "mailto:a@b.c" }] }), enrichment));
    expectAccepted(msg);
  });

  it("accepts anything (property test)", () => {
    const text = fc.string({ unit: "binary", maxLength: 400 });
    const bigText = fc.oneof(text, fc.string({ unit: fc.constantFrom("&", "<", ">", "`", "*", "\n", "a", "😀", "|"), maxLength: 6000 }));
    const block: fc.Arbitrary<Block> = fc.oneof(
      bigText.map((t) => ({ type: "markdown" as const, text: t })),
      fc.record({ type: fc.constant("table" as const), headers: fc.array(text, { maxLength: 6 }), rows: fc.array(fc.array(text, { maxLength: 8 }), { maxLength: 30 }) }),
      fc.record({ type: fc.constant("file" as const), filename: text, content: bigText }),
      fc.record({ type: fc.constant("json" as const), data: fc.jsonValue() }),
      text.map((t) => ({ type: "header" as const, text: t })),
      fc.array(text, { maxLength: 20 }).map((items) => ({ type: "list" as const, items })),
      fc.array(fc.record({ name: text, url: fc.webUrl() }), { maxLength: 6 }).map((links) => ({ type: "links" as const, links })),
      fc.constant({ type: "divider" as const }),
    );
    fc.assert(
      fc.property(
        fc.record({
          title: bigText,
          description: bigText,
          clusterName: text,
          labels: fc.dictionary(text, text, { maxKeys: 40 }),
          severity: fc.constantFrom(...SEVERITIES),
          resolved: fc.boolean(),
          links: fc.array(fc.record({ name: text, url: fc.webUrl() }), { maxLength: 8 }),
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
          const msg = renderSlack(i);
          expectAccepted(msg);
          for (const t of plainTexts(msg)) expect(t).not.toMatch(/<[!@#]/);
        },
      ),
      { numRuns: 200, seed: 20261126 },
    );
  });
});
