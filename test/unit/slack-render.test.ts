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
import { blockToSlack, escape, fallbackText, MAX_FILES, METADATA_EVENT_TYPE, planReply, planSlack, renderSlack, RESOLVED_COLOR, SEVERITY_COLORS } from "../../src/destinations/slack/render.js";
import { compactIssue, newEnrichments, repeatLead, resolvedLead, resolvedRoot } from "../../src/destinations/slack/threads.js";
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
    expect(JSON.stringify(msg)).toMatch(/:scissors: (\*Enrichment \d+\* was cut; )?\d+ more enrichments? did not fit in this message \(Enrichment \d+, /);
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

/** Texts of the sections of the attachment, in order. */
function sectionTexts(msg: SlackMessage): string[] {
  return allBlocks(msg).flatMap((b) => (b.type === "section" && b.text !== undefined ? [b.text.text] : b.type === "context" ? b.elements.map((e) => e.text) : []));
}

describe("planSlack: what does not fit goes into files (bot mode)", () => {
  it("moves a 10,000-character description into description.txt and says so", () => {
    const description = `${"word ".repeat(1999)}END`;
    const plan = planSlack(issue({ description }), { files: true });
    expectAccepted(plan.message);
    expect(plan.files.map((f) => f.filename)).toEqual(["description.txt"]);
    expect(plan.files[0]!.content).toBe(description);
    expect(sectionTexts(plan.message)[0]).toMatch(/… the full description is in description\.txt in the thread_$/);
    // Without files (incoming webhooks) it is only cut.
    expect(planSlack(issue({ description }), { files: false }).files).toEqual([]);
  });

  it("puts all 200 labels in labels.txt, one per line", () => {
    const labels = Object.fromEntries(Array.from({ length: 200 }, (_, i) => [`label_${i}`, `value-${i}`]));
    const plan = planSlack(issue({ subject: subjectFromLabels(labels) }), { files: true });
    expectAccepted(plan.message);
    const f = plan.files.find((x) => x.filename === "labels.txt")!;
    expect(f.content.trimEnd().split("\n")).toHaveLength(200);
    expect(f.content).toContain("label_199=value-199");
    expect(JSON.stringify(plan.message)).toMatch(/\+\d+ more labels: all of them are in labels\.txt in the thread/);
  });

  it("attaches a long or wide table as aligned text named after it, and a big JSON as .json", () => {
    const headers = Array.from({ length: 12 }, (_, i) => `column_${i}`);
    const rows = Array.from({ length: 300 }, (_, r) => headers.map((_, c) => `r${r}c${c}`));
    const plan = planSlack(
      withEnrichment(issue(), {
        title: "Pods",
        blocks: [
          { type: "table", title: "All pods", headers, rows },
          { type: "table", title: "Wide", headers: ["name", "message"], rows: [["a", "m".repeat(300)]] },
          { type: "table", title: "Small", headers: ["a"], rows: [["1"]] },
          { type: "json", title: "Pod spec", data: { containers: Array.from({ length: 200 }, (_, i) => ({ name: `c${i}` })) } },
        ],
      }),
      { files: true },
    );
    expectAccepted(plan.message);
    expect(plan.files.map((f) => f.filename)).toEqual(["all-pods.txt", "wide.txt", "pod-spec.json"]);
    const table = plan.files[0]!.content.trimEnd().split("\n");
    expect(table).toHaveLength(301);
    expect(table[0]).toMatch(/^column_0 {2}column_1/);
    expect(table[300]).toContain("r299c11");
    expect(plan.files[1]!.content).toContain("m".repeat(300));
    expect(JSON.parse(plan.files[2]!.content)).toEqual({ containers: Array.from({ length: 200 }, (_, i) => ({ name: `c${i}` })) });
    const text = JSON.stringify(plan.message);
    expect(text).toContain("the whole table is in all-pods.txt in the thread");
    expect(text).toContain("columns cut to fit: the whole table is in wide.txt in the thread");
    expect(text).toContain("all of it is in pod-spec.json in the thread");
  });

  it("attaches every file block, identical contents once, distinct names, at most MAX_FILES", () => {
    let i = issue();
    for (let n = 0; n < 14; n++) i = withEnrichment(i, { title: `Logs ${n}`, blocks: [{ type: "file", filename: "../../etc/app.log", content: `log ${n % 12}\n` }] });
    const plan = planSlack(i, { files: true });
    expectAccepted(plan.message);
    expect(plan.files).toHaveLength(MAX_FILES);
    expect(plan.files[0]!.filename).toBe("app.log");
    expect(plan.files[1]!.filename).toBe("app-2.log");
    expect(new Set(plan.files.map((f) => f.filename)).size).toBe(MAX_FILES);
    expect(JSON.stringify(plan.message)).toContain(`2 more files could not be attached (at most ${MAX_FILES})`);
  });

  it("keeps or cuts an enrichment as a whole: never a title without its blocks; what is left out is in enrichments.txt", () => {
    let big = issue();
    for (let n = 0; n < 40; n++) big = withEnrichment(big, { title: `Section ${n}`, blocks: [{ type: "markdown", text: `${n} `.repeat(400) }, { type: "list", items: [`item ${n}`] }] });
    for (const files of [false, true]) {
      const plan = planSlack(big, { files });
      expectAccepted(plan.message);
      const texts = sectionTexts(plan.message);
      const titles = texts.filter((t) => /^\*Section \d+\*$/.test(t));
      for (const t of titles) {
        // Each shown title is followed by its first block.
        const n = /\d+/.exec(t)![0];
        expect(texts[texts.indexOf(t) + 1]).toContain(`${n} ${n} `);
      }
      const note = texts.find((t) => t.startsWith(":scissors:"))!;
      expect(note).toMatch(/more enrichments did not fit in this message/);
      if (files) {
        expect(note).toContain("All of it is in enrichments.txt in the thread.");
        const rest = plan.files.find((f) => f.filename === "enrichments.txt")!.content;
        expect(rest).toContain("== Section 39 ==");
        expect(rest).toContain("• item 39");
      }
    }
  });

  it("renders the same message from the compacted Issue kept for re-rendering", () => {
    let i = issue({ description: "x".repeat(3000) });
    i = withEnrichment(i, { title: "Logs", blocks: [{ type: "file", filename: "api.log", content: Array.from({ length: 5000 }, (_, n) => `line ${n}`).join("\n") }] });
    i = withEnrichment(i, { title: "Pods", blocks: [{ type: "table", headers: ["pod", "status"], rows: Array.from({ length: 700 }, (_, n) => [`api-${n}`, "Running"]) }] });
    const compact = compactIssue(i);
    expect(JSON.stringify(compact).length).toBeLessThan(JSON.stringify(i).length / 5);
    expect(planSlack(compact, { files: true }).message).toEqual(planSlack(i, { files: true }).message);
  });
});

describe("planSlack: roots, mentions and re-fires", () => {
  it("mentions (validated) go into a FIRING root's text and a context block, unescaped; never on RESOLVED", () => {
    const firing = planSlack(issue(), { mentions: ["<@U0ONCALL1>", "<!subteam^S0TEAM01>", "@bad", "<!channel|x>"] }).message;
    expect(firing.text).toBe(`<@U0ONCALL1> <!subteam^S0TEAM01> ${fallbackText(issue())}`);
    expect(firing.blocks[1]).toEqual({ type: "context", elements: [{ type: "mrkdwn", text: ":bell: <@U0ONCALL1> <!subteam^S0TEAM01>" }] });
    expectAccepted(firing);
    const res = planSlack(issue({ status: "RESOLVED", endsAt: "2026-11-26T10:50:00Z" }), { mentions: ["<@U0ONCALL1>"] }).message;
    expect(JSON.stringify(res)).not.toContain("<@U0ONCALL1>");
  });

  it("links the previous occurrence of a re-fire, or says it fired before", () => {
    const linked = planSlack(issue(), { previous: { permalink: "https://acme.slack.com/archives/C1/p1", resolvedAt: "2026-11-26T09:00:00Z" } }).message;
    expect(JSON.stringify(linked)).toContain("<https://acme.slack.com/archives/C1/p1|previous occurrence> (resolved <!date^");
    const words = planSlack(issue(), { previous: {} }).message;
    expect(JSON.stringify(words)).toContain(":leftwards_arrow_with_hook: This alert fired before.");
    expectAccepted(linked);
  });

  it("a resolved root keeps the firing context and shows when it resolved", () => {
    const root = withEnrichment(issue(), { title: "Logs", blocks: [{ type: "file", filename: "api.log", content: "boom\n" }] });
    const end = issue({ status: "RESOLVED", endsAt: "2026-11-26T10:50:06.184Z" });
    const msg = planSlack(resolvedRoot(compactIssue(root), end), { files: true }).message;
    expectAccepted(msg);
    expect(msg.attachments[0]!.color).toBe(RESOLVED_COLOR);
    expect(msg.metadata?.event_payload).toMatchObject({ status: "RESOLVED", issue_id: FIXED_ID });
    const text = JSON.stringify(msg);
    expect(text).toContain("boom");
    expect(text).toContain("(after 12m)");
  });
});

describe("planReply: repeats and resolutions", () => {
  it("a repeat shows one line and only what is new, marked as a reply", () => {
    const root = withEnrichment(issue(), { title: "Logs", blocks: [{ type: "file", filename: "api.log", content: "old\n" }] });
    const repeat = withEnrichment(withEnrichment({ ...issue(), receivedAt: "2026-11-26T12:38:06.184Z" }, root.enrichments[0]!), { title: "Pod status", blocks: [{ type: "markdown", text: "*restarts* 12" }] });
    const plan = planReply(repeat, { lead: repeatLead(repeat, false), status: "STILL FIRING HIGH", enrichments: newEnrichments(repeat, compactIssue(root)), files: true });
    expectAccepted(plan.message);
    expect(plan.message.text).toBe("STILL FIRING HIGH: Pod is crash looping. (shop/pod/api-7d9f, prod-eu-1)");
    expect(plan.message.metadata?.event_payload).toMatchObject({ kind: "reply", status: "FIRING" });
    const text = JSON.stringify(plan.message);
    expect(text).toContain(":repeat: *Still firing* · HIGH · for 2h (since <!date^");
    expect(text).toContain("*restarts* 12");
    expect(text).not.toContain("old");
    expect(text).not.toContain("*Labels*");
    expect(plan.files).toEqual([]);
  });

  it("a resolution says after how long and when, in UTC; in a storm thread it names its alert", () => {
    const end = issue({ status: "RESOLVED", endsAt: "2026-11-26T10:50:30.000Z", title: "Pod <x> is crash looping" });
    expect(resolvedLead(end, false)).toBe(":white_check_mark: *Resolved* after 12m at 10:50 UTC");
    expect(resolvedLead(end, true)).toBe(":white_check_mark: *Resolved* after 12m at 10:50 UTC · *Pod &lt;x&gt; is crash looping* (shop/pod/api-7d9f, prod-eu-1)");
    const plan = planReply(end, { lead: resolvedLead(end, false), status: "RESOLVED" });
    expectAccepted(plan.message);
    expect(plan.message.attachments).toEqual([]);
  });
});
