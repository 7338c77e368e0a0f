import type { Block, Enrichment, Link } from "../../core/blocks.js";
import { tailLines } from "../../core/blocks.js";
import { formatDuration, type Issue } from "../../core/issue.js";
import { inlineText, isLinkUrl, parseMrkdwn, type MrkdwnInline } from "../../core/mrkdwn.js";
import type { Severity } from "../../core/severity.js";
import { stripControl, truncate } from "../../core/text.js";
import { renderTable } from "../console/render.js";
import { fitEnrichments, largest } from "../fit.js";

/**
 * Teams refuses a message over about 28 KB (the whole message, which wraps
 * the card). kubecano keeps the JSON it posts under `budgetBytes`, leaving
 * room for what the flow and Teams add around the card.
 */
export const TEAMS_LIMITS = {
  messageBytes: 28_000,
  budgetBytes: 25_000,
  /** Buttons Teams shows on a card. */
  maxActions: 5,
  maxUrl: 2000,
} as const;

export type TextColor = "default" | "accent" | "good" | "warning" | "attention";
export type ContainerStyle = "default" | "emphasis" | "good" | "warning" | "attention" | "accent";

export interface TextBlock {
  readonly type: "TextBlock";
  readonly text: string;
  readonly wrap?: boolean;
  readonly weight?: "Bolder";
  readonly size?: "Small" | "Medium" | "Large";
  readonly color?: TextColor;
  readonly isSubtle?: boolean;
  readonly fontType?: "Monospace";
  readonly spacing?: "None" | "Small" | "Medium";
  readonly separator?: boolean;
}

export interface Container {
  readonly type: "Container";
  readonly items: readonly CardElement[];
  readonly style?: ContainerStyle;
  readonly bleed?: boolean;
  readonly spacing?: "None" | "Small" | "Medium";
  readonly separator?: boolean;
}

export interface FactSet {
  readonly type: "FactSet";
  readonly facts: readonly { readonly title: string; readonly value: string }[];
  readonly spacing?: "None" | "Small" | "Medium";
  readonly separator?: boolean;
}

export type CardElement = TextBlock | Container | FactSet;

export interface OpenUrlAction {
  readonly type: "Action.OpenUrl";
  readonly title: string;
  readonly url: string;
}

export interface MentionEntity {
  readonly type: "mention";
  readonly text: string;
  readonly mentioned: { readonly id: string; readonly name: string };
}

export interface AdaptiveCard {
  readonly $schema: "http://adaptivecards.io/schemas/adaptive-card.json";
  readonly type: "AdaptiveCard";
  readonly version: "1.4";
  readonly msteams: { readonly width: "Full"; readonly entities?: readonly MentionEntity[] };
  readonly body: readonly CardElement[];
  readonly actions?: readonly OpenUrlAction[];
}

/** The body a Workflows webhook takes: a message with one Adaptive Card attachment. */
export interface TeamsPayload {
  readonly type: "message";
  readonly attachments: readonly [{ readonly contentType: "application/vnd.microsoft.card.adaptive"; readonly contentUrl: null; readonly content: AdaptiveCard }];
}

export interface TeamsMention {
  /** UPN (jane@example.com) or Microsoft Entra object ID. */
  readonly id: string;
  readonly name: string;
}

export interface TeamsRenderOptions {
  /** Mentioned on FIRING cards. */
  readonly mentions?: readonly TeamsMention[];
  /** Lines of a log shown (its last lines). */
  readonly excerptLines?: number;
  /** Size budget of the serialised payload, in bytes (default TEAMS_LIMITS.budgetBytes). */
  readonly maxBytes?: number;
}

const BAND_STYLE: Record<Severity, ContainerStyle> = { HIGH: "attention", LOW: "warning", INFO: "emphasis", DEBUG: "emphasis" };
const STATUS_COLOR: Record<Severity, TextColor> = { HIGH: "attention", LOW: "warning", INFO: "accent", DEBUG: "default" };
const SEVERITY_ICON: Record<Severity, string> = { HIGH: "🔴", LOW: "🟠", INFO: "🔵", DEBUG: "⚪" };

/** Room kept for the "what was cut" note. */
const NOTE_RESERVE = 400;
const DESCRIPTION_MAX = 4000;
const TABLE_ROWS = 30;
const JSON_LINES = 40;
const CODE_LINES = 30;
const LIST_ITEMS = 30;

/**
 * Renders an Issue as a Teams message with one Adaptive Card: a coloured
 * band with status and title, the description, facts, labels, enrichments,
 * link buttons and a footer carrying the fingerprint. Pure. The serialised
 * payload always stays within `maxBytes`: enrichment content goes first, then
 * labels, then the description, and a note says what was cut.
 */
export function renderTeams(issue: Issue, opts: TeamsRenderOptions = {}): TeamsPayload {
  const budget = opts.maxBytes ?? TEAMS_LIMITS.budgetBytes;
  const resolved = issue.status === "RESOLVED";
  const labels = Object.entries(issue.subject.labels);
  const mentions = resolved ? [] : (opts.mentions ?? []);

  const parts: CardParts = {
    header: header(issue),
    mention: mentionLine(mentions),
    description: issue.description?.trim() ?? "",
    descriptionMax: DESCRIPTION_MAX,
    facts: facts(issue),
    labels,
    labelsShown: labels.length,
    enrichments: [],
    note: undefined,
    footer: footer(issue),
    actions: linkActions(issue.links),
    entities: mentions.map((m) => ({ type: "mention" as const, text: `<at>${mentionName(m.name)}</at>`, mentioned: { id: m.id, name: mentionName(m.name) } })),
  };

  const cut: string[] = [];
  // The fixed part first: when it alone is too big, labels and then the description shrink.
  const fits = (): boolean => bytes(assemble(parts)) + NOTE_RESERVE <= budget;
  if (!fits()) {
    parts.labelsShown = largest(labels.length, (n) => {
      parts.labelsShown = n;
      return fits();
    });
    cut.push(`${labels.length - parts.labelsShown} of ${labels.length} labels`);
  }
  if (!fits()) {
    parts.descriptionMax = largest(DESCRIPTION_MAX, (n) => {
      parts.descriptionMax = n;
      return fits();
    });
    if (parts.description.length > parts.descriptionMax) cut.push(parts.descriptionMax === 0 ? "the description" : "the end of the description");
  }

  // Then enrichments, unit by unit, into what is left; a unit that does not fit is tried smaller.
  const fitted = fitEnrichments(issue.enrichments, (e, scale) => enrichmentUnits(e, opts, scale), budget - bytes(assemble(parts)) - NOTE_RESERVE, (u) => bytes(u) + 1);
  parts.enrichments = fitted.units;
  if (fitted.omitted > 0) cut.unshift(`${fitted.omitted} enrichment block${fitted.omitted === 1 ? "" : "s"}`);
  else if (fitted.shrunk > 0) cut.unshift("the longest enrichments");
  if (cut.length > 0) parts.note = { type: "TextBlock", text: escapeMd(`✂️ Cut to fit Teams' message size limit: ${cut.join(", ")}.`), wrap: true, isSubtle: true, size: "Small", separator: true };

  const payload = assemble(parts);
  // By construction this cannot happen; if it ever does, a small card beats a rejected one.
  if (bytes(payload) > budget) return assemble({ ...parts, enrichments: [], labelsShown: 0, descriptionMax: 0, actions: [], note: { type: "TextBlock", text: "✂️ This notification was too large for Teams: its details were left out.", wrap: true, isSubtle: true } });
  return payload;
}

interface CardParts {
  header: Container;
  mention: TextBlock | undefined;
  description: string;
  descriptionMax: number;
  facts: FactSet;
  labels: readonly (readonly [string, string])[];
  labelsShown: number;
  enrichments: CardElement[];
  note: TextBlock | undefined;
  footer: TextBlock;
  actions: OpenUrlAction[];
  entities: MentionEntity[];
}

function assemble(p: CardParts): TeamsPayload {
  const body: CardElement[] = [p.header];
  if (p.mention !== undefined) body.push(p.mention);
  const description = p.descriptionMax > 0 ? plainParagraphs(p.description, p.descriptionMax) : "";
  if (description !== "") body.push({ type: "TextBlock", text: description, wrap: true });
  body.push(p.facts);
  if (p.labelsShown > 0) body.push(labelsBlock(p.labels, p.labelsShown));
  body.push(...p.enrichments);
  if (p.note !== undefined) body.push(p.note);
  body.push(p.footer);
  const card: AdaptiveCard = {
    $schema: "http://adaptivecards.io/schemas/adaptive-card.json",
    type: "AdaptiveCard",
    version: "1.4",
    msteams: { width: "Full", ...(p.entities.length > 0 ? { entities: p.entities } : {}) },
    body,
    ...(p.actions.length > 0 ? { actions: p.actions } : {}),
  };
  return { type: "message", attachments: [{ contentType: "application/vnd.microsoft.card.adaptive", contentUrl: null, content: card }] };
}

function header(issue: Issue): Container {
  const resolved = issue.status === "RESOLVED";
  const status = resolved ? `✅ RESOLVED · ${issue.severity}` : `${SEVERITY_ICON[issue.severity]} FIRING · ${issue.severity}`;
  const title = oneLine(issue.title) === "" ? "(no title)" : oneLine(issue.title);
  return {
    type: "Container",
    style: resolved ? "good" : BAND_STYLE[issue.severity],
    bleed: true,
    items: [
      { type: "TextBlock", text: status, weight: "Bolder", color: resolved ? "good" : STATUS_COLOR[issue.severity], wrap: true },
      { type: "TextBlock", text: md(title, 400), size: "Large", weight: "Bolder", wrap: true, spacing: "Small" },
    ],
  };
}

function mentionLine(mentions: readonly TeamsMention[]): TextBlock | undefined {
  if (mentions.length === 0) return undefined;
  return { type: "TextBlock", text: mentions.map((m) => `<at>${mentionName(m.name)}</at>`).join(" "), wrap: true };
}

/** A mention's name appears inside <at>…</at> and must match its entity exactly. */
function mentionName(name: string): string {
  return wellFormed(truncate(oneLine(name).replace(/[<>*_[\]\\`]/g, ""), 100)) || "someone";
}

function facts(issue: Issue): FactSet {
  const f: [string, string][] = [["Cluster", issue.clusterName]];
  if (issue.subject.namespace !== undefined) f.push(["Namespace", issue.subject.namespace]);
  if (issue.subject.kind !== "") f.push([issue.subject.kind, issue.subject.name]);
  if (issue.subject.container !== undefined) f.push(["Container", issue.subject.container]);
  if (issue.subject.node !== undefined && issue.subject.kind !== "Node") f.push(["Node", issue.subject.node]);
  f.push([issue.type === "alert" ? "Alert" : "Reason", issue.aggregationKey]);
  const started = Date.parse(issue.startsAt);
  if (Number.isFinite(started)) f.push(["Started", utc(started)]);
  if (issue.status === "RESOLVED" && issue.endsAt !== undefined) {
    const ended = Date.parse(issue.endsAt);
    const lasted = Math.floor(ended / 1000) * 1000 - Math.floor(started / 1000) * 1000;
    if (Number.isFinite(ended)) f.push(["Resolved", `${utc(ended)}${Number.isFinite(started) ? ` (after ${formatDuration(lasted)})` : ""}`]);
  }
  return { type: "FactSet", facts: f.map(([k, v]) => ({ title: md(k, 60), value: md(v, 250) || "—" })) };
}

/** "2026-11-26 10:38:06 UTC": cards are read in many timezones, and a fact cannot localise. */
function utc(ms: number): string {
  const iso = new Date(ms).toISOString();
  return `${iso.slice(0, 10)} ${iso.slice(11, 19)} UTC`;
}

function labelsBlock(labels: readonly (readonly [string, string])[], shown: number): TextBlock {
  const items = labels.slice(0, shown).map(([k, v]) => md(`${k}=${v}`, 200));
  const more = labels.length - shown;
  return { type: "TextBlock", text: `**Labels:** ${items.join("  ·  ")}${more > 0 ? `  _(+${more} more)_` : ""}`, wrap: true, isSubtle: true, size: "Small" };
}

function footer(issue: Issue): TextBlock {
  return {
    type: "TextBlock",
    text: escapeMd(`kubecano · cluster ${truncate(oneLine(issue.clusterName), 100)} · ${issue.source} · fingerprint ${truncate(oneLine(issue.fingerprint), 100)}`),
    wrap: true,
    isSubtle: true,
    size: "Small",
    separator: true,
  };
}

function linkActions(links: readonly Link[]): OpenUrlAction[] {
  const out: OpenUrlAction[] = [];
  for (const l of links) {
    if (out.length >= TEAMS_LIMITS.maxActions) break;
    // Teams drops the whole card for a bad action URL: only absolute http(s) ones.
    if (l.url.length > TEAMS_LIMITS.maxUrl || !isHttpUrl(l.url)) continue;
    out.push({ type: "Action.OpenUrl", title: wellFormed(truncate(oneLine(l.name), 60)) || "Link", url: l.url });
  }
  return out;
}

/**
 * One enrichment as card units (each measured and kept or cut as a whole):
 * its title travels with its first block. `scale` < 1 shows fewer lines and rows.
 */
export function enrichmentUnits(e: Enrichment, opts: TeamsRenderOptions, scale: number): CardElement[] {
  const groups: CardElement[][] = [];
  let separate = false;
  for (const b of e.blocks) {
    if (b.type === "divider") {
      separate = true;
      continue;
    }
    const els = blockElements(b, opts, scale);
    if (els.length === 0) continue;
    if (separate) els[0] = { ...els[0]!, separator: true };
    separate = false;
    groups.push(els);
  }
  const title = oneLine(e.title);
  if (title !== "") {
    const t: TextBlock = { type: "TextBlock", text: md(title, 200), weight: "Bolder", size: "Medium", wrap: true, separator: true, spacing: "Medium" };
    if (groups.length === 0) groups.push([t]);
    else groups[0]!.unshift(t);
  }
  return groups.map((g) => (g.length === 1 ? g[0]! : { type: "Container", items: g }));
}

/** Card elements for one enrichment block (dividers are handled by the caller). */
export function blockElements(b: Block, opts: TeamsRenderOptions, scale = 1): CardElement[] {
  const n = (base: number): number => Math.max(3, Math.floor(base * scale));
  switch (b.type) {
    case "markdown":
      return markdownElements(b.text, n(CODE_LINES), scale);
    case "header":
      return oneLine(b.text) === "" ? [] : [{ type: "TextBlock", text: md(oneLine(b.text), 200), weight: "Bolder", wrap: true }];
    case "divider":
      return [];
    case "list": {
      const items = b.items.filter((i) => oneLine(i) !== "");
      const shown = items.slice(0, n(LIST_ITEMS));
      const out: CardElement[] = shown.map((i) => ({ type: "TextBlock", text: `• ${md(oneLine(i), 300)}`, wrap: true, spacing: "None" }));
      if (items.length > shown.length) out.push(subtle(`${items.length - shown.length} more items not shown`));
      return out;
    }
    case "links": {
      const parts = b.links.filter((l) => isLinkUrl(l.url) && l.url.length <= TEAMS_LIMITS.maxUrl).map((l) => `[${md(oneLine(l.name) === "" ? l.url : oneLine(l.name), 100)}](${linkUrl(l.url)})`);
      return parts.length === 0 ? [] : [{ type: "TextBlock", text: parts.join("  ·  "), wrap: true }];
    }
    case "json": {
      let json: string;
      try {
        json = JSON.stringify(b.data, null, 2) ?? "null";
      } catch {
        json = "(unserialisable value)";
      }
      const lines = json.split("\n");
      const shown = n(JSON_LINES);
      return [
        ...titleElements(b.title),
        ...monoLines(lines.slice(0, shown)),
        ...(lines.length > shown ? [subtle(`${lines.length - shown} more lines not shown`)] : []),
      ];
    }
    case "table": {
      if (b.headers.length === 0 && b.rows.length === 0) return [];
      const maxRows = n(TABLE_ROWS);
      const rows = b.rows.slice(0, maxRows);
      const more = b.rows.length - rows.length;
      const cols = Math.max(b.headers.length, ...b.rows.map((r) => r.length));
      const tail = more > 0 ? [subtle(`${more} more rows not shown`)] : [];
      if (cols <= 2 && rows.length > 0) {
        // Two columns read best as name/value facts.
        return [...titleElements(b.title), { type: "FactSet", facts: rows.map((r) => ({ title: md(oneLine(r[0] ?? ""), 100) || "—", value: md(oneLine(r[1] ?? ""), 300) || "—" })) }, ...tail];
      }
      const lines = renderTable(b.headers, rows, 100);
      const [head, ...body] = lines;
      return [
        ...titleElements(b.title),
        ...(head !== undefined && b.headers.length > 0 ? [{ ...monoLine(head), weight: "Bolder" as const }] : []),
        ...monoLines(body),
        ...tail,
      ];
    }
    case "file": {
      const want = b.excerptLines ?? opts.excerptLines ?? 15;
      const shown = scale < 1 ? Math.max(3, Math.floor(want * scale)) : want;
      const total = b.content === "" ? 0 : b.content.replace(/\n$/, "").split("\n").length;
      const excerpt = tailLines(b.content, shown);
      const name = b.title ?? b.filename;
      const info = `${truncate(oneLine(b.filename), 200)}: ${total} line${total === 1 ? "" : "s"}${total > shown ? `, last ${shown} shown` : ""}`;
      return [
        { type: "TextBlock", text: `**${md(oneLine(name), 200) || "file"}** _(${md(info, 300)})_`, wrap: true },
        ...(excerpt === "" ? [subtle("(empty)")] : monoLines(excerpt.split("\n"))),
      ];
    }
  }
}

function markdownElements(text: string, maxCodeLines: number, scale: number): CardElement[] {
  const out: CardElement[] = [];
  let chars = Math.floor(3000 * scale);
  for (const block of parseMrkdwn(text)) {
    if (chars <= 0) break;
    if (block.kind === "code") {
      const lines = block.text.split("\n");
      out.push(...monoLines(lines.slice(0, maxCodeLines)));
      if (lines.length > maxCodeLines) out.push(subtle(`${lines.length - maxCodeLines} more lines not shown`));
      chars -= Math.min(block.text.length, maxCodeLines * 100);
    } else {
      let text = block.lines.map((l) => inlineMd(l)).join("\n\n");
      // Too long: the plain text, cut (a cut through markdown could leave a link or ** open).
      if (text.length > chars) text = escapeMd(wellFormed(truncate(stripControl(block.lines.map(inlineText).join(" ")), chars)));
      out.push({ type: "TextBlock", text, wrap: true });
      chars -= text.length;
    }
  }
  return out;
}

/** Slack-style runs as Adaptive Card markdown (bold, italic, links; the rest plain). */
function inlineMd(runs: readonly MrkdwnInline[]): string {
  return runs
    .map((r) => {
      const t = escapeMd(stripControl(r.text));
      if (t.trim() === "") return t;
      if (r.href !== undefined) return `[${t}](${linkUrl(r.href)})`;
      if (r.bold === true) return `**${t}**`;
      if (r.italic === true) return `_${t}_`;
      return t;
    })
    .join("");
}

function titleElements(title: string | undefined): TextBlock[] {
  const t = oneLine(title ?? "");
  return t === "" ? [] : [{ type: "TextBlock", text: `**${md(t, 200)}**`, wrap: true }];
}

function subtle(text: string): TextBlock {
  return { type: "TextBlock", text: `_${escapeMd(text)}_`, isSubtle: true, size: "Small", wrap: true, spacing: "None" };
}

function monoLines(lines: readonly string[]): TextBlock[] {
  return lines.map(monoLine);
}

/**
 * One line of a log or table, in a monospace TextBlock of its own (Teams
 * joins single newlines inside a TextBlock). Runs of spaces become no-break
 * spaces so columns stay aligned.
 */
function monoLine(line: string): TextBlock {
  const t = escapeMd(wellFormed(truncate(stripControl(line.replace(/\t/g, "    ")).trimEnd(), 300)))
    .replace(/ {2,}/g, (m) => "\u00a0".repeat(m.length))
    .replace(/^ /, "\u00a0");
  return { type: "TextBlock", text: t === "" ? "\u00a0" : t, fontType: "Monospace", wrap: true, spacing: "None" };
}

/** Plain text (the description) as card markdown: escaped, one paragraph per line. */
function plainParagraphs(s: string, max: number): string {
  const cut = truncate(stripControl(s).trim(), max);
  return wellFormed(
    cut
      .split(/\r?\n/)
      .map((l) => l.trim())
      .filter((l) => l !== "")
      .map(escapeMd)
      .join("\n\n"),
  );
}

/** One line of plain text as escaped card markdown, at most `max` characters before escaping. */
function md(s: string, max: number): string {
  return escapeMd(wellFormed(truncate(oneLine(stripControl(s)), max)));
}

/**
 * Escapes the markdown Adaptive Cards understand (emphasis, links, lists,
 * entities), so alert text shows as written, and breaks <at> tags so no
 * text can take the place of a mention.
 */
export function escapeMd(s: string): string {
  return s
    .replace(/[\\*_`[\]~]/g, "\\$&")
    .replace(/&(?=#?\w+;)/g, "\\&")
    .replace(/<(\/?at\b)/gi, "‹$1")
    .replace(/^(\s*)([-+])(?=\s)/gm, "$1\\$2")
    .replace(/^(\s*\d+)([.)])(?=\s)/gm, "$1\\$2");
}

/** A URL inside (…) of a markdown link: characters that would end it are percent-encoded. */
function linkUrl(u: string): string {
  return u.replace(/[()<>\s]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase().padStart(2, "0")}`);
}

function isHttpUrl(u: string): boolean {
  try {
    const p = new URL(u).protocol;
    return p === "http:" || p === "https:";
  } catch {
    return false;
  }
}

/** UTF-8 bytes of the serialised value: what Teams measures. */
export function bytes(v: unknown): number {
  return Buffer.byteLength(JSON.stringify(v), "utf8");
}

function wellFormed(s: string): string {
  return s.replace(/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g, "\ufffd");
}

function oneLine(s: string): string {
  return s.replace(/\s*[\r\n]+\s*/g, " ").trim();
}
