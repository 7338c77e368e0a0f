import { Chalk, type ChalkInstance } from "chalk";
import type { Block } from "../../core/blocks.js";
import { tailLines } from "../../core/blocks.js";
import { formatDuration, type Issue } from "../../core/issue.js";
import type { Severity } from "../../core/severity.js";
import { describeSubject } from "../../core/subject.js";
import { stripControl, truncate } from "../../core/text.js";

export interface ConsoleRenderOptions {
  readonly color: boolean;
  /** Reference time for "ago" texts; fixed in golden tests. */
  readonly now?: Date;
  /** Lines of a file block shown inline. */
  readonly fileExcerptLines?: number;
  /** Terminal width for tables; long cells are cut to fit. */
  readonly width?: number;
}

const SEVERITY_STYLE: Record<Severity, (c: ChalkInstance) => ChalkInstance> = {
  HIGH: (c) => c.bgRed.white.bold,
  LOW: (c) => c.bgYellow.black.bold,
  INFO: (c) => c.bgBlue.white.bold,
  DEBUG: (c) => c.bgGray.white,
};

/** The styles renderConsole uses, made once per colour mode: chalk's chained builders cost more than the text they wrap. */
interface Paint {
  readonly chalk: ChalkInstance;
  readonly firing: string;
  readonly resolved: string;
  readonly severity: Readonly<Record<Severity, string>>;
  readonly bold: (t: string) => string;
  readonly dim: (t: string) => string;
  readonly cyan: (t: string) => string;
  readonly underline: (t: string) => string;
  readonly heading: (t: string) => string;
}

function paint(c: ChalkInstance): Paint {
  const plain = c.level === 0;
  const style = (f: ChalkInstance): ((t: string) => string) => (plain ? (t) => t : (t) => f(t));
  return {
    chalk: c,
    firing: c.red.bold("● FIRING"),
    resolved: c.green.bold("✔ RESOLVED"),
    severity: { HIGH: SEVERITY_STYLE.HIGH(c)(" HIGH "), LOW: SEVERITY_STYLE.LOW(c)(" LOW "), INFO: SEVERITY_STYLE.INFO(c)(" INFO "), DEBUG: SEVERITY_STYLE.DEBUG(c)(" DEBUG ") },
    bold: style(c.bold),
    dim: style(c.dim),
    cyan: style(c.cyan),
    underline: style(c.underline),
    heading: style(c.bold.magenta),
  };
}

const PAINT = { color: paint(new Chalk({ level: 2 })), plain: paint(new Chalk({ level: 0 })) };

/**
 * A readable terminal rendering of an Issue and its enrichment blocks.
 * Pure: same Issue, options and `now` give the same text. Every piece of
 * text from the outside world goes through stripControl.
 */
export function renderConsole(issue: Issue, opts: ConsoleRenderOptions): string {
  const p = opts.color ? PAINT.color : PAINT.plain;
  const s = stripControl;
  const subject = describeSubject(issue.subject);
  let facts = `${s(issue.aggregationKey)} · cluster ${s(issue.clusterName)}`;
  if (subject !== "") facts += ` · ${s(subject)}`;
  if (issue.subject.container !== undefined) facts += ` · container ${s(issue.subject.container)}`;
  if (issue.subject.node !== undefined && issue.subject.kind !== "Node") facts += ` · node ${s(issue.subject.node)}`;
  let out = `${issue.status === "FIRING" ? p.firing : p.resolved} ${p.severity[issue.severity]} ${p.bold(s(issue.title))}\n  ${p.dim(facts)}\n  ${p.dim(timeLine(issue, opts.now ?? new Date()))}\n`;
  if (issue.description !== undefined) {
    const d = s(issue.description);
    out += d.includes("\n") ? `  ${d.split("\n").join("\n  ")}\n` : `  ${d}\n`;
  }
  const labels = issue.subject.labels;
  let labelText = "";
  for (const k in labels) labelText += ` ${p.cyan(s(k))}=${s(labels[k]!)}`;
  if (labelText !== "") out += `  ${p.dim("labels")}${labelText}\n`;
  for (const link of issue.links) out += `  ${p.dim(link.name.padEnd(12))} ${p.underline(s(link.url))}\n`;
  for (const e of issue.enrichments) {
    out += `  ${p.heading(`── ${s(e.title)} `)}\n`;
    for (const b of e.blocks) for (const l of renderBlockLines(b, p.chalk, opts)) out += `  ${l}\n`;
  }
  return `${out}  ${p.dim(`fingerprint ${issue.fingerprint} · source ${issue.source} · id ${issue.id}`)}\n`;
}

function timeLine(issue: Issue, now: Date): string {
  const started = Date.parse(issue.startsAt);
  const startText = Number.isFinite(started) ? `started ${issue.startsAt.replace("T", " ").replace(/\.\d+Z$/, "Z")} (${formatDuration(now.getTime() - started)} ago)` : `started ${issue.startsAt}`;
  if (issue.status === "RESOLVED" && issue.endsAt !== undefined) {
    const ended = Date.parse(issue.endsAt);
    return `${startText} · resolved after ${formatDuration(ended - started)}`;
  }
  return startText;
}

/** Terminal lines for one block; also used by the TUI's detail view. */
export function renderBlockLines(block: Block, c: ChalkInstance, opts: Pick<ConsoleRenderOptions, "fileExcerptLines" | "width">): string[] {
  const s = (t: string): string => stripControl(t);
  switch (block.type) {
    case "markdown":
      return s(block.text).split("\n");
    case "header":
      return [c.bold(s(block.text))];
    case "divider":
      return [c.dim("─".repeat(40))];
    case "list":
      return block.items.map((i) => `• ${s(i)}`);
    case "links":
      return block.links.map((l) => `${c.dim(s(l.name))} ${c.underline(s(l.url))}`);
    case "json":
      return [...(block.title !== undefined ? [c.bold(s(block.title))] : []), ...s(safeJson(block.data)).split("\n")];
    case "table":
      return [...(block.title !== undefined ? [c.bold(s(block.title))] : []), ...renderTable(block.headers, block.rows, opts.width ?? 120).map((l, i) => (i === 0 ? c.bold(l) : l))];
    case "file": {
      const n = block.excerptLines ?? opts.fileExcerptLines ?? 20;
      const total = block.content === "" ? 0 : block.content.replace(/\n$/, "").split("\n").length;
      const excerpt = tailLines(block.content, n);
      const head = `${c.bold(s(block.title ?? block.filename))} ${c.dim(`(${block.filename}, ${total} line${total === 1 ? "" : "s"}${total > n ? `, last ${n} shown` : ""})`)}`;
      return [head, ...s(excerpt).split("\n").map((l) => c.dim("│ ") + l)];
    }
  }
}

/** A plain aligned table; cells are cut so a row fits in `width` columns. */
export function renderTable(headers: readonly string[], rows: readonly (readonly string[])[], width: number): string[] {
  const cols = Math.max(headers.length, ...rows.map((r) => r.length));
  const cell = (r: readonly string[], i: number): string => stripControl(r[i] ?? "").replace(/\s*\n\s*/g, " ");
  const widths = Array.from({ length: cols }, (_, i) => Math.min(width, Math.max(cell(headers, i).length, ...rows.map((r) => cell(r, i).length))));
  // Too wide: the widest column gives up a character at a time (down to 8), so
  // short columns keep their whole text and the long ones (messages) share the rest.
  let excess = widths.reduce((a, b) => a + b, 0) + 2 * (cols - 1) - width;
  while (excess > 0) {
    const widest = widths.indexOf(Math.max(...widths));
    if (widths[widest]! <= 8) break;
    widths[widest]! -= 1;
    excess -= 1;
  }
  const line = (r: readonly string[]): string =>
    widths.map((w, i) => truncate(cell(r, i), w).padEnd(w)).join("  ").trimEnd();
  return [line(headers), ...rows.map(line)];
}

function safeJson(v: unknown): string {
  try {
    return truncate(JSON.stringify(v, null, 2) ?? "null", 20_000, "\n… (truncated)");
  } catch {
    return "(unserialisable value)";
  }
}
