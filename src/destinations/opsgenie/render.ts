import { createHash } from "node:crypto";
import { Chalk } from "chalk";
import type { Block } from "../../core/blocks.js";
import { formatDuration, type Issue } from "../../core/issue.js";
import type { Severity } from "../../core/severity.js";
import { describeSubject } from "../../core/subject.js";
import { stripControl, truncate } from "../../core/text.js";
import { templateData, type CompiledTemplate } from "../../workflows/template.js";
import { renderBlockLines } from "../console/render.js";
import type { OpsgeniePriority, ResponderType } from "./params.js";

/**
 * Alert API v2 field limits (docs.opsgenie.com "Alert API" and "Alerts and
 * alert fields"). Opsgenie answers 422 for a field over them and the alert is
 * lost, so the renderer keeps under them by construction.
 */
export const OPSGENIE_LIMITS = {
  message: 130,
  alias: 512,
  description: 15_000,
  tags: 20,
  tagChars: 50,
  /** Keys and values of `details`, all together. */
  detailsChars: 8_000,
  entity: 512,
  source: 100,
  user: 100,
  note: 25_000,
  responders: 50,
} as const;

export const DEFAULT_PRIORITY_MAP: Readonly<Record<Severity, OpsgeniePriority>> = { HIGH: "P1", LOW: "P3", INFO: "P5", DEBUG: "P5" };

export interface ResponderTemplate {
  readonly type: ResponderType;
  readonly by: "name" | "username" | "id";
  readonly template: CompiledTemplate;
}

export interface OpsgenieRenderOptions {
  readonly responders?: readonly ResponderTemplate[] | undefined;
  readonly tags?: readonly CompiledTemplate[] | undefined;
  readonly priorityMap?: Partial<Record<Severity, OpsgeniePriority>> | undefined;
  readonly entity?: CompiledTemplate | undefined;
}

export type OpsgenieResponder = { readonly type: ResponderType } & ({ readonly name: string } | { readonly username: string } | { readonly id: string });

export interface OpsgenieCreate {
  readonly message: string;
  readonly alias: string;
  readonly description: string;
  readonly responders?: readonly OpsgenieResponder[];
  readonly tags?: readonly string[];
  readonly details: Readonly<Record<string, string>>;
  readonly entity?: string;
  readonly source: "kubecano";
  readonly priority: OpsgeniePriority;
}

export interface OpsgenieClose {
  readonly source: "kubecano";
  readonly user: "kubecano";
  readonly note: string;
}

/** One Alert API request: the path (under the API base URL) and its JSON body. */
export type OpsgenieRequest =
  | { readonly action: "create"; readonly method: "POST"; readonly path: "/v2/alerts"; readonly body: OpsgenieCreate }
  | { readonly action: "close"; readonly method: "POST"; readonly path: string; readonly body: OpsgenieClose };

/**
 * The Issue as an Alert API request. FIRING → create with the fingerprint as
 * alias (Opsgenie folds a create for an alias that is still open into that
 * alert, counting it); RESOLVED → close by alias. Pure.
 */
export function renderOpsgenie(issue: Issue, opts: OpsgenieRenderOptions = {}): OpsgenieRequest {
  const alias = aliasOf(issue.fingerprint);
  if (issue.status === "RESOLVED") {
    const after = issue.endsAt !== undefined ? Date.parse(issue.endsAt) - Date.parse(issue.startsAt) : Number.NaN;
    const note = `Resolved${Number.isFinite(after) ? ` after ${formatDuration(after)}` : ""} in cluster ${oneLine(issue.clusterName)}: ${oneLine(issue.title)}`;
    return {
      action: "close",
      method: "POST",
      path: `/v2/alerts/${encodeURIComponent(alias)}/close?identifierType=alias`,
      body: { source: "kubecano", user: "kubecano", note: truncate(note, OPSGENIE_LIMITS.note) },
    };
  }
  const data = templateData(issue);
  const responders = renderResponders(opts.responders ?? [], data);
  const tags = renderTags(opts.tags ?? [], data);
  const subject = describeSubject(issue.subject);
  const entityText = opts.entity !== undefined ? oneLine(opts.entity.render(data)) : subject;
  const entity = truncate(entityText, OPSGENIE_LIMITS.entity);
  return {
    action: "create",
    method: "POST",
    path: "/v2/alerts",
    body: {
      message: truncate(oneLine(issue.title) || issue.aggregationKey || "kubecano Issue", OPSGENIE_LIMITS.message),
      alias,
      description: renderDescription(issue),
      ...(responders.length > 0 ? { responders } : {}),
      ...(tags.length > 0 ? { tags } : {}),
      details: renderDetails(issue),
      ...(entity !== "" ? { entity } : {}),
      source: "kubecano",
      priority: opts.priorityMap?.[issue.severity] ?? DEFAULT_PRIORITY_MAP[issue.severity],
    },
  };
}

/** The fingerprint, or a hash of it when it is longer than an alias may be (stable, so the close finds the alert). */
export function aliasOf(fingerprint: string): string {
  return fingerprint.length <= OPSGENIE_LIMITS.alias ? fingerprint : `kubecano-${createHash("sha256").update(fingerprint).digest("hex")}`;
}

function renderResponders(templates: readonly ResponderTemplate[], data: Record<string, unknown>): OpsgenieResponder[] {
  const out: OpsgenieResponder[] = [];
  const seen = new Set<string>();
  for (const r of templates) {
    // A template that renders empty (the Issue has no such label) names nobody: leave it out.
    const value = oneLine(r.template.render(data));
    const key = `${r.type}\0${r.by}\0${value}`;
    if (value === "" || seen.has(key)) continue;
    seen.add(key);
    out.push({ type: r.type, [r.by]: value } as OpsgenieResponder);
    if (out.length === OPSGENIE_LIMITS.responders) break;
  }
  return out;
}

function renderTags(templates: readonly CompiledTemplate[], data: Record<string, unknown>): string[] {
  const out: string[] = [];
  for (const t of templates) {
    const tag = truncate(oneLine(t.render(data)), OPSGENIE_LIMITS.tagChars);
    if (tag !== "" && !out.includes(tag)) out.push(tag);
    if (out.length === OPSGENIE_LIMITS.tags) break;
  }
  return out;
}

/**
 * Details (custom properties, filterable in Opsgenie): the alert's labels,
 * then cluster, subject and start time where no label has that name. Keys
 * and values together stay under 8000 characters; what does not fit is
 * counted in `kubecano_cut`.
 */
function renderDetails(issue: Issue): Record<string, string> {
  const subject = describeSubject(issue.subject);
  const entries: [string, string][] = Object.entries(issue.subject.labels).map(([k, v]) => [truncate(k, 100), truncate(v, 1000)]);
  const extra: [string, string][] = [
    ["cluster", issue.clusterName],
    ...(subject !== "" ? [["subject", subject] as [string, string]] : []),
    ["started_at", issue.startsAt],
  ];
  for (const [k, v] of extra) if (!entries.some(([key]) => key === k)) entries.push([k, truncate(v, 1000)]);
  const out: Record<string, string> = {};
  const room = OPSGENIE_LIMITS.detailsChars - 100;
  let used = 0;
  let left = 0;
  for (const [k, v] of entries) {
    if (k in out) continue;
    if (used + k.length + v.length > room) {
      left++;
      continue;
    }
    out[k] = v;
    used += k.length + v.length;
  }
  if (left > 0) out["kubecano_cut"] = `${left} more detail${left === 1 ? "" : "s"} left out (Opsgenie allows 8000 characters)`;
  return out;
}

/** How much of each block the description keeps; from generous to terse. */
interface Level {
  readonly blockLines: number;
  readonly lineChars: number;
  readonly width: number;
}

const LEVELS: readonly Level[] = [
  { blockLines: 60, lineChars: 300, width: 120 },
  { blockLines: 25, lineChars: 200, width: 100 },
  { blockLines: 10, lineChars: 120, width: 100 },
  { blockLines: 3, lineChars: 100, width: 80 },
];

const plain = new Chalk({ level: 0 });
const HEAD_CHARS = 6_000;

/**
 * Plain text: what happened, where, the links, the annotations, then each
 * enrichment drawn as in the terminal (tables aligned, logs' last lines).
 * Under 15000 characters: blocks are cut shorter level by level, then
 * enrichments are left out from the end, each cut marked.
 */
function renderDescription(issue: Issue): string {
  const max = OPSGENIE_LIMITS.description;
  const head = truncate(renderHead(issue), HEAD_CHARS, "\n…(cut)");
  let parts: string[] = [];
  for (const level of LEVELS) {
    parts = [head];
    let length = head.length;
    // Stops at the first enrichment that does not fit: the next level is tried, or the rest is left out.
    for (const e of issue.enrichments) {
      const section = renderEnrichment(e.title, e.blocks, level);
      length += 2 + section.length;
      if (length > max) break;
      parts.push(section);
    }
    if (parts.length === issue.enrichments.length + 1) return parts.join("\n\n");
  }
  // Even the tersest level is too long: keep the enrichments that fit, with room for the note.
  while (parts.length > 1 && parts.join("\n\n").length > max - 200) parts.pop();
  const left = issue.enrichments.length - (parts.length - 1);
  parts.push(`…(${left} more enrichment${left === 1 ? "" : "s"} left out: Opsgenie descriptions are limited to 15000 characters)`);
  return truncate(parts.join("\n\n"), max, "\n…(cut)");
}

function renderHead(issue: Issue): string {
  const s = (t: string): string => stripControl(t);
  const lines: string[] = [];
  if (issue.description !== undefined) lines.push(s(issue.description), "");
  const subject = describeSubject(issue.subject);
  lines.push(`Cluster: ${s(issue.clusterName)}`);
  if (subject !== "") {
    const where = [
      s(subject),
      ...(issue.subject.container !== undefined ? [`container ${s(issue.subject.container)}`] : []),
      ...(issue.subject.node !== undefined && issue.subject.kind !== "Node" ? [`node ${s(issue.subject.node)}`] : []),
    ];
    lines.push(`Subject: ${where.join(" · ")}`);
  }
  lines.push(`Alert: ${s(issue.aggregationKey)} · severity ${issue.severity} · ${issue.source}`);
  lines.push(`Started: ${issue.startsAt}`);
  if (issue.links.length > 0) {
    lines.push("", "Links:");
    for (const l of issue.links) lines.push(`- ${s(oneLine(l.name) || "link")}: ${s(l.url)}`);
  }
  const annotations = Object.entries(issue.subject.annotations).filter(([, v]) => v !== issue.description && v !== issue.title);
  if (annotations.length > 0) {
    lines.push("", "Annotations:");
    for (const [k, v] of annotations) lines.push(`- ${s(k)}: ${truncate(s(v), 1000)}`);
  }
  return lines.join("\n");
}

function renderEnrichment(title: string, blocks: readonly Block[], level: Level): string {
  const lines = [`== ${truncate(oneLine(stripControl(title)) || "Enrichment", 200)} ==`];
  for (const b of blocks) {
    const { block, note } = preCap(b, level);
    const all = renderBlockLines(block, plain, { width: level.width, fileExcerptLines: level.blockLines }).map((l) => truncate(l, level.lineChars));
    lines.push(...capLines(block, all, level.blockLines), ...(note !== undefined ? [note] : []));
  }
  return lines.join("\n");
}

/**
 * A block cut down before drawing, so a huge table or text costs no more
 * than what is shown: rows, items and links past the level's line budget,
 * and cells and texts past what could be shown.
 */
function preCap(b: Block, level: Level): { block: Block; note?: string } {
  const n = level.blockLines;
  const chars = n * level.lineChars;
  const more = (count: number, what: string): string => `…(${count} more ${what} cut)`;
  switch (b.type) {
    case "table": {
      const rows = b.rows.slice(0, n).map((r) => r.map((c) => truncate(c, level.lineChars)));
      return { block: { ...b, headers: b.headers.map((h) => truncate(h, level.lineChars)), rows }, ...(b.rows.length > n ? { note: more(b.rows.length - n, "rows") } : {}) };
    }
    case "list":
      return { block: { ...b, items: b.items.slice(0, n).map((i) => truncate(i, chars)) }, ...(b.items.length > n ? { note: more(b.items.length - n, "items") } : {}) };
    case "links":
      return { block: { ...b, links: b.links.slice(0, n) }, ...(b.links.length > n ? { note: more(b.links.length - n, "links") } : {}) };
    case "markdown":
    case "header":
      return { block: { ...b, text: truncate(b.text, chars) } };
    default:
      return { block: b };
  }
}

/** At most `max` lines of a block, saying how many were cut; logs keep their title line and last lines. */
function capLines(b: Block, lines: readonly string[], max: number): string[] {
  if (lines.length <= max + 1) return [...lines];
  if (b.type === "file") {
    const [title, ...rest] = lines;
    return [title ?? "", `…(${rest.length - max} earlier lines cut)`, ...rest.slice(rest.length - max)];
  }
  return [...lines.slice(0, max), `…(${lines.length - max} more lines cut)`];
}

function oneLine(s: string): string {
  return s.replace(/\s*[\r\n]+\s*/g, " ").trim();
}
