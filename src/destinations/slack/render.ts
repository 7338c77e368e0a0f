import { Chalk } from "chalk";
import type { Block, Enrichment, FileBlock, Link, TableBlock } from "../../core/blocks.js";
import { tailLines } from "../../core/blocks.js";
import { formatDuration, type Issue } from "../../core/issue.js";
import type { Severity } from "../../core/severity.js";
import { describeSubject } from "../../core/subject.js";
import { truncate } from "../../core/text.js";
import { renderBlockLines, renderTable } from "../console/render.js";
import { blockChars, SLACK_LIMITS as L, type SlackBlock, type SlackMessage, type TextObject } from "./limits.js";
import { MENTION_RE } from "./params.js";

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
  /**
   * Bot mode: data that does not fit in the message (logs, a long
   * description, many labels, long or wide tables, big JSON, enrichments
   * left out) goes into files attached in the Issue's thread, and the
   * message says so. Without it (incoming webhooks) it is cut with a marker.
   */
  readonly files?: boolean;
  /** Mentions (already validated) for a FIRING root: in `text` and a context block. */
  readonly mentions?: readonly string[];
  /** A re-fire: where the previous occurrence's thread is. */
  readonly previous?: PreviousOccurrence;
  /** Extra context lines (kubecano's own mrkdwn), e.g. "posted here because #x was not found". */
  readonly notes?: readonly string[];
}

export interface PreviousOccurrence {
  readonly permalink?: string | undefined;
  /** When it resolved (ISO), when known. */
  readonly resolvedAt?: string | undefined;
}

/** A file the message refers to, to attach in the Issue's thread. */
export interface PlannedFile {
  readonly filename: string;
  readonly title: string;
  readonly content: string;
}

export interface SlackPlan {
  readonly message: SlackMessage;
  readonly files: readonly PlannedFile[];
}

/**
 * A file block as kubecano stores it for re-rendering a root message later:
 * the content cut to its excerpt, with the original line count.
 */
export type StoredFileBlock = FileBlock & { readonly totalLines?: number };
/** A table as stored for re-rendering: the first rows, with the original row count. */
export type StoredTableBlock = TableBlock & { readonly totalRows?: number };

/** Files attached to one message at most (one files.completeUploadExternal). */
export const MAX_FILES = 10;

/**
 * Renders an Issue as a Slack message: a header block with status, severity
 * and title, then a colour-barred attachment with the description, facts,
 * labels, enrichments and link buttons. Pure. The result always passes
 * `checkLimits`: what does not fit is cut with a marker saying so (or, with
 * `files`, moved into a file; see planSlack).
 */
export function renderSlack(issue: Issue, opts: SlackRenderOptions = {}): SlackMessage {
  return planSlack(issue, opts).message;
}

/**
 * The message for an Issue's root and the files that go into its thread.
 * Pure: the same Issue and options give the same plan. Enrichments go in
 * whole, in order; the first that does not fit is cut (its title and the
 * blocks that fit) when at least one of its blocks fits, and the rest are
 * left out, named in one marker.
 */
export function planSlack(issue: Issue, opts: SlackRenderOptions = {}): SlackPlan {
  const files = opts.files === true ? new FileSet() : undefined;
  const resolved = issue.status === "RESOLVED";
  const emoji = resolved ? ":white_check_mark:" : SEVERITY_EMOJI[issue.severity];
  const statusText = resolved ? "RESOLVED" : `FIRING · ${issue.severity}`;
  const header: SlackBlock = {
    type: "header",
    text: { type: "plain_text", text: plain(`${emoji} ${statusText} · ${issue.title}`, L.headerText), emoji: true },
  };
  const mentions = !resolved ? (opts.mentions ?? []).filter((m) => MENTION_RE.test(m)) : [];
  const top: SlackBlock[] = [header];
  if (mentions.length > 0) top.push({ type: "context", elements: [mrkdwn(`:bell: ${mentions.join(" ")}`)] });

  const core: SlackBlock[] = [];
  if (issue.description !== undefined && issue.description.trim() !== "") core.push(descriptionSection(issue.description, files));
  core.push({ type: "section", fields: factFields(issue) });
  const labels = labelsText(issue.subject.labels, 1200, files);
  if (labels !== undefined) core.push(section(labels, 1200));
  const notes = noteLines(opts);
  if (notes.length > 0) core.push({ type: "context", elements: notes.slice(0, L.contextElements).map((n) => mrkdwn(safeCut(n, 1000))) });
  const actions = linkButtons(issue.links);
  const footer: SlackBlock = {
    type: "context",
    elements: [mrkdwn(`kubecano · cluster ${cutEscaped(oneLine(issue.clusterName), 200)} · ${issue.source} · fingerprint \`${code(truncate(oneLine(issue.fingerprint), 100))}\``)],
  };

  const fixed = [...top, ...core, ...(actions !== undefined ? [actions] : []), footer];
  const used = fixed.reduce((n, b) => n + blockChars(b), 0);
  // One block and 600 chars are kept back for the "did not fit" note.
  const enrichmentBlocks = fitEnrichmentBlocks(issue.enrichments, opts, files, L.totalBlockChars - used - 600, L.maxBlocks - fixed.length - 1);

  const text = mentions.length > 0 ? `${mentions.join(" ")} ${fallbackText(issue)}` : fallbackText(issue);
  const message: SlackMessage = {
    text,
    blocks: top,
    attachments: [
      {
        color: resolved ? RESOLVED_COLOR : SEVERITY_COLORS[issue.severity],
        blocks: [...core, ...enrichmentBlocks, ...(actions !== undefined ? [actions] : []), footer],
        fallback: fixEntityCut(truncate(fallbackText(issue), 300)),
      },
    ],
  };
  if (opts.metadata !== false) message.metadata = issueMetadata(issue);
  return { message, files: files?.list() ?? [] };
}

/** The metadata of kubecano's messages about an Issue; replies say `kind: "reply"` (roots say nothing). */
export function issueMetadata(issue: Issue, kind?: "reply"): NonNullable<SlackMessage["metadata"]> {
  return {
    event_type: METADATA_EVENT_TYPE,
    event_payload: {
      fingerprint: issue.fingerprint,
      status: issue.status,
      issue_id: issue.id,
      severity: issue.severity,
      aggregation_key: truncate(issue.aggregationKey, 200),
      ...(kind !== undefined ? { kind } : {}),
    },
  };
}

/** The notification text: status, severity, title and where. Escaped mrkdwn. */
export function fallbackText(issue: Issue, status?: string): string {
  const subject = describeSubject(issue.subject);
  const where = [subject, issue.clusterName].filter((s) => s !== "").join(", ");
  const st = status ?? (issue.status === "RESOLVED" ? "RESOLVED" : `FIRING ${issue.severity}`);
  return wellFormed(cutEscaped(oneLine(`${st}: ${issue.title}${where !== "" ? ` (${where})` : ""}`), L.fallbackText));
}

export interface ReplyOptions extends SlackRenderOptions {
  /** The reply's first line (kubecano's own mrkdwn; alert text in it escaped by the caller). */
  readonly lead: string;
  /** The status word of the notification text ("STILL FIRING HIGH", "RESOLVED"). */
  readonly status: string;
  /** What to show below the lead; the Issue's enrichments by default. */
  readonly enrichments?: readonly Enrichment[];
}

/**
 * A reply in an Issue's thread (a repeat, a resolution): one lead line,
 * then the enrichments that are new, fitted like a root's. Pure.
 */
export function planReply(issue: Issue, o: ReplyOptions): SlackPlan {
  const files = o.files === true ? new FileSet() : undefined;
  const lead = section(o.lead, 1500);
  const blocks = fitEnrichmentBlocks(o.enrichments ?? issue.enrichments, o, files, L.totalBlockChars - blockChars(lead) - 600, L.maxBlocks - 2);
  const text = fallbackText(issue, o.status);
  const message: SlackMessage = {
    text,
    blocks: [lead],
    attachments:
      blocks.length === 0
        ? []
        : [{ color: issue.status === "RESOLVED" ? RESOLVED_COLOR : SEVERITY_COLORS[issue.severity], blocks, fallback: fixEntityCut(truncate(text, 300)) }],
  };
  if (o.metadata !== false) message.metadata = issueMetadata(issue, "reply");
  return { message, files: files?.list() ?? [] };
}

/** "shop/pod/api-7d9f, prod-eu-1": where an Issue is, escaped. */
export function whereText(issue: Issue): string {
  const subject = describeSubject(issue.subject);
  return cutEscaped(oneLine([subject, issue.clusterName].filter((x) => x !== "").join(", ")), 300);
}

/** Collects the files of one message: distinct names, identical contents attached once, at most MAX_FILES. */
export class FileSet {
  private readonly files: PlannedFile[] = [];
  private readonly byContent = new Map<string, PlannedFile>();
  private readonly names = new Set<string>();
  /** Files that did not make it under MAX_FILES. */
  skipped = 0;

  /** The name the file is attached under, or undefined when there are too many. */
  add(filename: string, title: string, content: string): string | undefined {
    const same = this.byContent.get(content);
    if (same !== undefined) return same.filename;
    if (this.files.length >= MAX_FILES) {
      this.skipped++;
      return undefined;
    }
    const name = this.unique(safeFilename(filename));
    const f: PlannedFile = { filename: name, title: oneLine(title).slice(0, 200) || name, content };
    this.files.push(f);
    this.byContent.set(content, f);
    return name;
  }

  list(): PlannedFile[] {
    return [...this.files];
  }

  private unique(name: string): string {
    let n = name;
    for (let i = 2; this.names.has(n); i++) {
      const dot = name.lastIndexOf(".");
      n = dot > 0 ? `${name.slice(0, dot)}-${i}${name.slice(dot)}` : `${name}-${i}`;
    }
    this.names.add(n);
    return n;
  }
}

/** A file name Slack and people are happy with: no paths, no control characters, at most 80 chars. */
export function safeFilename(name: string): string {
  const base = name.split(/[\\/]/).pop() ?? "";
  const cleaned = base.replace(/[^\w.+-]+/g, "-").replace(/^[.-]+/, "").replace(/-+/g, "-");
  const cut = cleaned.length > 80 ? cleaned.slice(cleaned.length - 80).replace(/^[.-]+/, "") : cleaned;
  return cut === "" ? "file.txt" : cut;
}

/** `<title>.txt` for a table or data without a file name of its own. */
function slugFile(title: string | undefined, fallback: string, ext: string): string {
  const slug = oneLine(title ?? "")
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, "-")
    .replace(/^-+|-+$/g, "")
    .slice(0, 60);
  return `${slug === "" ? fallback : slug}.${ext}`;
}

function descriptionSection(description: string, files: FileSet | undefined): SlackBlock {
  const esc = escape(description);
  if (files === undefined || esc.length <= 2500) return section(esc, 2500);
  const name = files.add("description.txt", "Description", description);
  if (name === undefined) return section(esc, 2500);
  const note = `\n_… the full description is in ${cutEscaped(name, 90)} in the thread_`;
  return section(`${safeCut(esc, 2500 - note.length)}${note}`, 2500);
}

function noteLines(opts: SlackRenderOptions): string[] {
  const out = [...(opts.notes ?? [])];
  const prev = opts.previous;
  if (prev !== undefined) {
    const when = prev.resolvedAt !== undefined && Number.isFinite(Date.parse(prev.resolvedAt)) ? ` (resolved ${slackDate(Date.parse(prev.resolvedAt))})` : "";
    out.push(
      prev.permalink !== undefined && isHttpUrl(prev.permalink)
        ? `:leftwards_arrow_with_hook: This alert fired before: <${linkUrl(prev.permalink)}|previous occurrence>${when}`
        : `:leftwards_arrow_with_hook: This alert fired before${when}.`,
    );
  }
  return out;
}

/**
 * The enrichments' blocks that fit in `budget` chars and `slots` blocks,
 * with one note for what was cut or left out (and, with files, an
 * enrichments.txt holding it).
 */
function fitEnrichmentBlocks(enrichments: readonly Enrichment[], opts: SlackRenderOptions, files: FileSet | undefined, budget: number, slots: number): SlackBlock[] {
  const out: SlackBlock[] = [];
  // Every enrichment is drawn (even one left out), so its files are attached either way.
  const drawn = enrichments.map((e) => ({ e, blocks: enrichmentToSlack(e, opts, files) }));
  let stopped = false;
  let cutTitle: string | undefined;
  const leftOut: Enrichment[] = [];
  const cutOrLeft: Enrichment[] = [];
  for (const { e, blocks } of drawn) {
    if (blocks.length === 0) continue;
    if (stopped) {
      leftOut.push(e);
      cutOrLeft.push(e);
      continue;
    }
    const cost = blocks.reduce((n, b) => n + blockChars(b), 0);
    if (blocks.length <= slots && cost <= budget) {
      out.push(...blocks);
      budget -= cost;
      slots -= blocks.length;
      continue;
    }
    stopped = true;
    cutOrLeft.push(e);
    // Cut: its title and the leading blocks that fit, when at least one of its blocks does.
    const titled = oneLine(e.title) !== "";
    const prefix: SlackBlock[] = [];
    let c = 0;
    for (const b of blocks) {
      const n = blockChars(b);
      if (prefix.length + 1 > slots || c + n > budget) break;
      prefix.push(b);
      c += n;
    }
    if (prefix.length > (titled ? 1 : 0)) {
      out.push(...prefix);
      cutTitle = oneLine(e.title) === "" ? "an enrichment" : e.title;
    } else {
      leftOut.push(e);
    }
  }
  const skippedFiles = files?.skipped ?? 0;
  if (cutOrLeft.length === 0 && skippedFiles === 0) return out;
  const restFile = files !== undefined && cutOrLeft.length > 0 ? files.add("enrichments.txt", "Enrichments that did not fit in the message", enrichmentsText(cutOrLeft)) : undefined;
  const parts: string[] = [];
  if (cutTitle !== undefined) parts.push(`${bold(cutTitle)} was cut`);
  if (leftOut.length > 0) {
    const names = leftOut.map((e) => (oneLine(e.title) === "" ? "(untitled)" : cutEscaped(oneLine(e.title), 60)));
    const shown = names.slice(0, 8).join(", ");
    parts.push(`${leftOut.length} more enrichment${leftOut.length === 1 ? "" : "s"} did not fit in this message (${shown}${names.length > 8 ? ", …" : ""})`);
  }
  let note = `:scissors: ${parts.length > 0 ? `${parts.join("; ")} (Slack limits).` : ""}`;
  if (restFile !== undefined) note += ` All of it is in ${cutEscaped(restFile, 90)} in the thread.`;
  if (skippedFiles > 0) note += ` ${skippedFiles} more file${skippedFiles === 1 ? "" : "s"} could not be attached (at most ${MAX_FILES}).`;
  out.push({ type: "context", elements: [mrkdwn(safeCut(note.replace(/^:scissors: {2}/, ":scissors: "), 590))] });
  return out;
}

/** Plain text of enrichments, for the file that holds what did not fit. */
function enrichmentsText(enrichments: readonly Enrichment[]): string {
  const lines: string[] = [];
  for (const e of enrichments) {
    lines.push(`== ${oneLine(e.title) === "" ? "(untitled)" : oneLine(e.title)} ==`);
    for (const b of e.blocks) {
      if (b.type === "file") lines.push(`(${b.filename}: attached as its own file)`);
      else lines.push(...renderBlockLines(b, PLAIN, { width: 200, fileExcerptLines: 0 }));
    }
    lines.push("");
  }
  return `${lines.join("\n")}\n`;
}

const PLAIN = new Chalk({ level: 0 });

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
export function slackDate(ms: number): string {
  const iso = new Date(ms).toISOString();
  return `<!date^${Math.floor(ms / 1000)}^{date_short_pretty} {time_secs}|${iso.slice(0, 10)} ${iso.slice(11, 19)} UTC>`;
}

function labelsText(labels: Readonly<Record<string, string>>, max: number, files: FileSet | undefined): string | undefined {
  const entries = Object.entries(labels);
  if (entries.length === 0) return undefined;
  let out = "*Labels*\n";
  let shown = 0;
  for (const [k, v] of entries) {
    const item = `\`${code(oneLine(`${k}=${truncate(v, 200)}`))}\` `;
    if (out.length + item.length > max - 90) break;
    out += item;
    shown++;
  }
  const cutValue = entries.some(([, v]) => v.length > 200);
  if (shown < entries.length || cutValue) {
    const name = files?.add("labels.txt", "Labels", `${entries.map(([k, v]) => `${k}=${v}`).join("\n")}\n`);
    const more = shown < entries.length ? `+${entries.length - shown} more labels` : "values cut";
    out += name !== undefined ? `_${more}: all of them are in ${cutEscaped(name, 40)} in the thread_` : shown < entries.length ? `_${more}_` : "";
  }
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

/** Slack blocks for one enrichment: its title, then each block. With `files`, data that does not fit is attached. */
export function enrichmentToSlack(e: Enrichment, opts: SlackRenderOptions, files?: FileSet): SlackBlock[] {
  const out: SlackBlock[] = oneLine(e.title) === "" ? [] : [section(bold(e.title), 300)];
  for (const b of e.blocks) out.push(...blockToSlack(b, opts, files, e.title));
  return out;
}

export function blockToSlack(b: Block, opts: SlackRenderOptions, files?: FileSet, enrichmentTitle?: string): SlackBlock[] {
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
      const name = files !== undefined && escape(json).replace(/```/g, "ˋˋˋ").length > 1994 ? files.add(slugFile(b.title ?? enrichmentTitle, "data", "json"), b.title ?? enrichmentTitle ?? "Data", `${json}\n`) : undefined;
      const note = name !== undefined ? `\n_cut: all of it is in ${cutEscaped(name, 90)} in the thread_` : "";
      return [section(`${titleLine(b.title)}${codeBlock(json, 2000, "end")}${note}`, L.sectionText)];
    }
    case "table": {
      const stored = b as StoredTableBlock;
      const totalRows = Math.max(stored.totalRows ?? b.rows.length, b.rows.length);
      const lines = renderTable(b.headers, b.rows, 100);
      // The first rows that fit (at least the header and one row): the same however many rows follow.
      let shown = 0;
      let size = -1;
      while (shown < lines.length && (shown < 2 || size + 1 + lines[shown]!.length <= 2400)) size += 1 + lines[shown++]!.length;
      const body = lines.slice(0, shown).join("\n");
      const more = totalRows + 1 - shown;
      const tooWide = tableWidth(b.headers, b.rows) > 100;
      const title = titleLine(b.title);
      let note = more > 0 ? `\n_${more} more rows not shown_` : "";
      if (files !== undefined && (more > 0 || tooWide)) {
        const name = files.add(slugFile(b.title ?? enrichmentTitle, "table", "txt"), b.title ?? enrichmentTitle ?? "Table", `${renderTable(b.headers, b.rows, Number.MAX_SAFE_INTEGER).join("\n")}\n`);
        if (name !== undefined) note = `\n_${more > 0 ? `${more} more rows not shown` : "columns cut to fit"}: the whole table is in ${cutEscaped(name, 90)} in the thread_`;
      }
      return [section(`${title}${codeBlock(body, 2500, "end")}${note}`, L.sectionText)];
    }
    case "file": {
      const n = b.excerptLines ?? opts.excerptLines ?? 15;
      const counted = b.content === "" ? 0 : b.content.replace(/\n$/, "").split("\n").length;
      const total = Math.max((b as StoredFileBlock).totalLines ?? counted, counted);
      const excerpt = tailLines(b.content, n);
      const name = files?.add(b.filename, b.title ?? b.filename, b.content);
      const where = name !== undefined ? " · the whole file is in the thread" : "";
      const title = `${bold(b.title ?? b.filename)} _(${cutEscaped(oneLine(name ?? b.filename), 200)}: ${total} line${total === 1 ? "" : "s"}${total > n ? `, last ${n} shown` : ""}${where})_`;
      return [section(`${title}\n${codeBlock(excerpt === "" ? "(empty)" : excerpt, 2400, "start")}`, L.sectionText)];
    }
  }
}

/** Columns of a table drawn without cutting any cell. */
function tableWidth(headers: readonly string[], rows: readonly (readonly string[])[]): number {
  const cols = Math.max(headers.length, ...rows.map((r) => r.length));
  let w = 2 * Math.max(0, cols - 1);
  for (let i = 0; i < cols; i++) {
    let m = (headers[i] ?? "").length;
    for (const r of rows) m = Math.max(m, (r[i] ?? "").length);
    w += m;
  }
  return w;
}

export function section(text: string, max: number): SlackBlock {
  const t = safeCut(text, Math.min(max, L.sectionText));
  return { type: "section", text: mrkdwn(t === "" ? " " : t) };
}

export function mrkdwn(text: string): TextObject {
  return { type: "mrkdwn", text: wellFormed(text) };
}

/** "*title*", cut and escaped; "" stays "". */
export function bold(s: string): string {
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
export function plain(s: string, max: number): string {
  return wellFormed(truncate(oneLine(s).replace(/<(?=[!@#])/g, "‹"), max));
}

/** Escaped mrkdwn of at most `max` chars, never ending in half an entity. */
export function cutEscaped(s: string, max: number): string {
  const e = escape(s);
  return e.length <= max ? e : fixEntityCut(truncate(e, max));
}

/** Lone UTF-16 surrogates (from input, or a cut) are invalid UTF-8 on the wire. */
export function wellFormed(s: string): string {
  return s.replace(/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g, "\ufffd");
}

export function isHttpUrl(u: string): boolean {
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
export function linkUrl(u: string): string {
  return u.replace(/[<>|\s]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase().padStart(2, "0")}`);
}

/** Escapes the three characters Slack mrkdwn treats as control: & < >. */
export function escape(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

/** Inside inline code, backticks would end the span. */
export function code(s: string): string {
  return escape(s).replace(/`/g, "ˋ");
}

/**
 * A fenced code block of at most `max` chars, cut at the end or (logs) at the
 * start. The raw text is cut before escaping so no entity is split.
 */
export function codeBlock(s: string, max: number, cut: "start" | "end"): string {
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
export function safeCut(s: string, max: number): string {
  if (s.length <= max) return s;
  let t = fixEntityCut(truncate(s, max - 4, "…"));
  if ((t.match(/```/g)?.length ?? 0) % 2 === 1) t = `${t.slice(0, max - 4)}\`\`\``;
  return t.length <= max ? t : t.slice(0, max);
}

export function fixEntityCut(s: string): string {
  return s.replace(/&[a-z]{0,4}(…?)$/, "$1");
}

export function oneLine(s: string): string {
  return s.replace(/\s*[\r\n]+\s*/g, " ").trim();
}
