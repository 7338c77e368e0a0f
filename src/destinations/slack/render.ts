import type { Block, Enrichment, Link } from "../../core/blocks.js";
import { tailLines } from "../../core/blocks.js";
import { formatDuration, type Issue } from "../../core/issue.js";
import type { Severity } from "../../core/severity.js";
import { describeSubject } from "../../core/subject.js";
import { truncate } from "../../core/text.js";
import { renderTable } from "../console/render.js";
import { blockChars, SLACK_LIMITS as L, type SlackBlock, type SlackMessage, type TextObject } from "./limits.js";

export const SEVERITY_COLORS: Record<Severity, string> = {
  HIGH: "#D62728",
  LOW: "#FF9F1C",
  INFO: "#2B8BE6",
  DEBUG: "#9E9E9E",
};
export const RESOLVED_COLOR = "#2EB67D";

const SEVERITY_EMOJI: Record<Severity, string> = {
  HIGH: ":red_circle:",
  LOW: ":large_orange_circle:",
  INFO: ":large_blue_circle:",
  DEBUG: ":white_circle:",
};

/** Metadata event type that marks kubecano's messages (and carries the fingerprint). */
export const METADATA_EVENT_TYPE = "kubecano_issue";

export interface SlackRenderOptions {
  /** Bot mode sends metadata; incoming webhooks do not take it. */
  readonly metadata?: boolean;
  /** Lines of a log shown inline. */
  readonly excerptLines?: number;
}

/**
 * Renders an Issue as a Slack message: a header block with status, severity
 * and title, then a colour-barred attachment with the description, facts,
 * labels, enrichments and link buttons. Pure. The result always passes
 * `checkLimits`: what does not fit is cut with a marker saying so.
 */
export function renderSlack(issue: Issue, opts: SlackRenderOptions = {}): SlackMessage {
  const resolved = issue.status === "RESOLVED";
  const emoji = resolved ? ":white_check_mark:" : SEVERITY_EMOJI[issue.severity];
  const statusText = resolved ? "RESOLVED" : `FIRING · ${issue.severity}`;
  const header: SlackBlock = {
    type: "header",
    text: { type: "plain_text", text: plain(`${emoji} ${statusText} · ${issue.title}`, L.headerText), emoji: true },
  };

  const core: SlackBlock[] = [];
  if (issue.description !== undefined && issue.description.trim() !== "") core.push(section(escape(issue.description), 2500));
  core.push({ type: "section", fields: factFields(issue) });
  const labels = labelsText(issue.subject.labels, 1200);
  if (labels !== undefined) core.push(section(labels, 1200));
  const actions = linkButtons(issue.links);
  const footer: SlackBlock = {
    type: "context",
    elements: [mrkdwn(`kubecano · cluster ${cutEscaped(oneLine(issue.clusterName), 200)} · ${issue.source} · fingerprint \`${code(truncate(oneLine(issue.fingerprint), 100))}\``)],
  };

  const fixed = [header, ...core, ...(actions !== undefined ? [actions] : []), footer];
  let used = fixed.reduce((n, b) => n + blockChars(b), 0);
  // One block and 200 chars are kept back for the "not shown" note.
  let budget = L.totalBlockChars - used - 200;
  let slots = L.maxBlocks - fixed.length - 1;
  const enrichmentBlocks: SlackBlock[] = [];
  let omitted = 0;
  for (const e of issue.enrichments) {
    for (const b of enrichmentToSlack(e, opts)) {
      const n = blockChars(b);
      if (slots > 0 && n <= budget) {
        enrichmentBlocks.push(b);
        budget -= n;
        slots--;
        used += n;
      } else {
        omitted++;
      }
    }
  }
  if (omitted > 0) {
    enrichmentBlocks.push({
      type: "context",
      elements: [mrkdwn(`:scissors: ${omitted} more enrichment block${omitted === 1 ? "" : "s"} did not fit in this message (Slack limits).`)],
    });
  }

  const message: SlackMessage = {
    text: fallbackText(issue),
    blocks: [header],
    attachments: [
      {
        color: resolved ? RESOLVED_COLOR : SEVERITY_COLORS[issue.severity],
        blocks: [...core, ...enrichmentBlocks, ...(actions !== undefined ? [actions] : []), footer],
        fallback: fixEntityCut(truncate(fallbackText(issue), 300)),
      },
    ],
  };
  if (opts.metadata !== false) {
    message.metadata = {
      event_type: METADATA_EVENT_TYPE,
      event_payload: {
        fingerprint: issue.fingerprint,
        status: issue.status,
        issue_id: issue.id,
        severity: issue.severity,
        aggregation_key: truncate(issue.aggregationKey, 200),
      },
    };
  }
  return message;
}

/** The notification text: status, severity, title and where. Escaped mrkdwn. */
export function fallbackText(issue: Issue): string {
  const subject = describeSubject(issue.subject);
  const where = [subject, issue.clusterName].filter((s) => s !== "").join(", ");
  const status = issue.status === "RESOLVED" ? "RESOLVED" : `FIRING ${issue.severity}`;
  return wellFormed(cutEscaped(oneLine(`${status}: ${issue.title}${where !== "" ? ` (${where})` : ""}`), L.fallbackText));
}

function factFields(issue: Issue): TextObject[] {
  const facts: [string, string][] = [];
  facts.push(["Cluster", issue.clusterName]);
  if (issue.subject.namespace !== undefined) facts.push(["Namespace", issue.subject.namespace]);
  if (issue.subject.kind !== "") facts.push([issue.subject.kind, issue.subject.name]);
  if (issue.subject.container !== undefined) facts.push(["Container", issue.subject.container]);
  if (issue.subject.node !== undefined && issue.subject.kind !== "Node") facts.push(["Node", issue.subject.node]);
  facts.push([issue.type === "alert" ? "Alert" : "Reason", issue.aggregationKey]);
  const started = Date.parse(issue.startsAt);
  const fields = facts.map(([k, v]) => mrkdwn(`*${cutEscaped(oneLine(k), 60)}*\n${cutEscaped(oneLine(v), 230)}`));
  if (Number.isFinite(started)) fields.push(mrkdwn(`*Started*\n${slackDate(started)}`));
  if (issue.status === "RESOLVED" && issue.endsAt !== undefined) {
    const ended = Date.parse(issue.endsAt);
    // The duration is taken between the whole seconds shown, so the two times and it agree.
    const lasted = Math.floor(ended / 1000) * 1000 - Math.floor(started / 1000) * 1000;
    if (Number.isFinite(ended)) fields.push(mrkdwn(`*Resolved*\n${slackDate(ended)}${Number.isFinite(started) ? ` (after ${formatDuration(lasted)})` : ""}`));
  }
  return fields.slice(0, L.maxFields);
}

/** `<!date^...>` shows the time in each reader's timezone; the fallback is UTC. */
function slackDate(ms: number): string {
  const iso = new Date(ms).toISOString();
  return `<!date^${Math.floor(ms / 1000)}^{date_short_pretty} {time_secs}|${iso.slice(0, 10)} ${iso.slice(11, 19)} UTC>`;
}

function labelsText(labels: Readonly<Record<string, string>>, max: number): string | undefined {
  const entries = Object.entries(labels);
  if (entries.length === 0) return undefined;
  let out = "*Labels*\n";
  let shown = 0;
  for (const [k, v] of entries) {
    const item = `\`${code(oneLine(`${k}=${truncate(v, 200)}`))}\` `;
    if (out.length + item.length > max - 30) break;
    out += item;
    shown++;
  }
  if (shown < entries.length) out += `_+${entries.length - shown} more labels_`;
  return out.trimEnd();
}

function linkButtons(links: readonly Link[]): SlackBlock | undefined {
  let urlBudget = 3000;
  const elements = [];
  for (const [i, link] of links.entries()) {
    if (elements.length >= 5) break;
    // Slack refuses the whole message for one bad button URL: only well-formed http(s) ones.
    if (link.url.length > L.buttonUrl || link.url.length > urlBudget || !isHttpUrl(link.url)) continue;
    urlBudget -= link.url.length;
    elements.push({
      type: "button" as const,
      text: { type: "plain_text" as const, text: plain(link.name.trim() === "" ? "Link" : link.name, L.buttonText), emoji: true },
      url: link.url,
      action_id: `kubecano_link_${i}`,
    });
  }
  return elements.length > 0 ? { type: "actions", elements } : undefined;
}

/** Slack blocks for one enrichment: its title, then each block. */
export function enrichmentToSlack(e: Enrichment, opts: SlackRenderOptions): SlackBlock[] {
  const out: SlackBlock[] = oneLine(e.title) === "" ? [] : [section(bold(e.title), 300)];
  for (const b of e.blocks) out.push(...blockToSlack(b, opts));
  return out;
}

export function blockToSlack(b: Block, opts: SlackRenderOptions): SlackBlock[] {
  switch (b.type) {
    case "markdown":
      return b.text.trim() === "" ? [] : [section(neutraliseBroadcasts(b.text), L.sectionText)];
    case "header":
      return oneLine(b.text) === "" ? [] : [section(bold(b.text), 300)];
    case "divider":
      return [{ type: "divider" }];
    case "list":
      return b.items.length === 0 ? [] : [section(b.items.map((i) => `• ${escape(oneLine(i))}`).join("\n"), L.sectionText)];
    case "links": {
      // Whole links only: a link cut in half would show its raw <url|name> syntax.
      const parts: string[] = [];
      let length = 0;
      for (const l of b.links) {
        const name = oneLine(l.name) === "" ? l.url : l.name;
        const part = `<${linkUrl(l.url)}|${cutEscaped(oneLine(name), 200).replace(/\|/g, "¦")}>`;
        if (length + part.length + 5 > L.sectionText) continue;
        parts.push(part);
        length += part.length + 5;
      }
      return parts.length === 0 ? [] : [section(parts.join("  ·  "), L.sectionText)];
    }
    case "json": {
      let json: string;
      try {
        json = JSON.stringify(b.data, null, 2) ?? "null";
      } catch {
        json = "(unserialisable value)";
      }
      return [section(`${titleLine(b.title)}${codeBlock(json, 2000, "end")}`, L.sectionText)];
    }
    case "table": {
      const lines = renderTable(b.headers, b.rows, 100);
      let shown = lines.length;
      let body = lines.join("\n");
      while (body.length > 2400 && shown > 2) {
        shown = Math.max(2, Math.floor(shown * 0.7));
        body = lines.slice(0, shown).join("\n");
      }
      const more = lines.length - shown;
      const title = titleLine(b.title);
      return [section(`${title}${codeBlock(body, 2500, "end")}${more > 0 ? `\n_${more} more rows not shown_` : ""}`, L.sectionText)];
    }
    case "file": {
      const n = b.excerptLines ?? opts.excerptLines ?? 15;
      const total = b.content === "" ? 0 : b.content.replace(/\n$/, "").split("\n").length;
      const excerpt = tailLines(b.content, n);
      const title = `${bold(b.title ?? b.filename)} _(${cutEscaped(oneLine(b.filename), 200)}: ${total} line${total === 1 ? "" : "s"}${total > n ? `, last ${n} shown` : ""})_`;
      return [section(`${title}\n${codeBlock(excerpt === "" ? "(empty)" : excerpt, 2400, "start")}`, L.sectionText)];
    }
  }
}

function section(text: string, max: number): SlackBlock {
  const t = safeCut(text, Math.min(max, L.sectionText));
  return { type: "section", text: mrkdwn(t === "" ? " " : t) };
}

function mrkdwn(text: string): TextObject {
  return { type: "mrkdwn", text: wellFormed(text) };
}

/** "*title*", cut and escaped; "" stays "". */
function bold(s: string): string {
  const t = oneLine(s);
  return t === "" ? "" : `*${cutEscaped(t, 250)}*`;
}

function titleLine(title: string | undefined): string {
  const t = bold(title ?? "");
  return t === "" ? "" : `${t}\n`;
}

/**
 * Text for plain_text objects (header, buttons): one line, at most `max`
 * chars. Slack does not parse mentions in plain_text; the `<` of anything
 * that looks like one is still replaced so no alert text can ever ping.
 */
function plain(s: string, max: number): string {
  return wellFormed(truncate(oneLine(s).replace(/<(?=[!@#])/g, "‹"), max));
}

/** Escaped mrkdwn of at most `max` chars, never ending in half an entity. */
function cutEscaped(s: string, max: number): string {
  const e = escape(s);
  return e.length <= max ? e : fixEntityCut(truncate(e, max));
}

/** Lone UTF-16 surrogates (from input, or a cut) are invalid UTF-8 on the wire. */
function wellFormed(s: string): string {
  return s.replace(/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g, "\ufffd");
}

function isHttpUrl(u: string): boolean {
  try {
    const p = new URL(u).protocol;
    return p === "http:" || p === "https:";
  } catch {
    return false;
  }
}

/**
 * A URL inside <url|name>: the characters that would end the link (or
 * start a mention) are percent-encoded. `&` is left as it is: query strings
 * need it, and it cannot open a mention.
 */
function linkUrl(u: string): string {
  return u.replace(/[<>|\s]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase().padStart(2, "0")}`);
}

/** Escapes the three characters Slack mrkdwn treats as control: & < >. */
export function escape(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

/** Inside inline code, backticks would end the span. */
function code(s: string): string {
  return escape(s).replace(/`/g, "ˋ");
}

/**
 * A fenced code block of at most `max` chars, cut at the end or (logs) at the
 * start. The raw text is cut before escaping so no entity is split.
 */
function codeBlock(s: string, max: number, cut: "start" | "end"): string {
  const marker = cut === "start" ? "…(earlier lines cut)\n" : "\n…(cut)";
  const room = max - 6;
  const enc = (t: string): string => escape(t).replace(/```/g, "ˋˋˋ");
  let raw = s;
  let body = enc(raw);
  while (body.length > room) {
    const keep = Math.max(0, raw.length - (body.length - room) - marker.length);
    raw = cut === "start" ? raw.slice(raw.length - keep) : raw.slice(0, keep);
    body = cut === "start" ? marker + enc(raw) : enc(raw) + marker;
    if (keep === 0) break;
  }
  return `\`\`\`${body}\`\`\``;
}

/** Markdown blocks are kubecano's own mrkdwn, but must never page a whole channel. */
function neutraliseBroadcasts(s: string): string {
  return s.replace(/<!(channel|here|everyone|subteam\^[^|>]*)(\|[^>]*)?>/g, "&lt;!$1&gt;");
}

/** Cuts mrkdwn without leaving half an entity (&am) or an open code fence. */
function safeCut(s: string, max: number): string {
  if (s.length <= max) return s;
  let t = fixEntityCut(truncate(s, max - 4, "…"));
  if ((t.match(/```/g)?.length ?? 0) % 2 === 1) t = `${t.slice(0, max - 4)}\`\`\``;
  return t.length <= max ? t : t.slice(0, max);
}

function fixEntityCut(s: string): string {
  return s.replace(/&[a-z]{0,4}(…?)$/, "$1");
}

function oneLine(s: string): string {
  return s.replace(/\s*[\r\n]+\s*/g, " ").trim();
}
