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

/**
 * A readable terminal rendering of an Issue and its enrichment blocks.
 * Pure: same Issue, options and `now` give the same text. Every piece of
 * text from the outside world goes through stripControl.
 */
const CHALK = { color: new Chalk({ level: 2 }), plain: new Chalk({ level: 0 }) };

export function renderConsole(issue: Issue, opts: ConsoleRenderOptions): string {
  const c = opts.color ? CHALK.color : CHALK.plain;
  const now = opts.now ?? new Date();
  const s = (t: string): string => stripControl(t);
  const lines: string[] = [];
  const status = issue.status === "FIRING" ? c.red.bold("● FIRING") : c.green.bold("✔ RESOLVED");
  const sev = SEVERITY_STYLE[issue.severity](c)(` ${issue.severity} `);
  lines.push(`${status} ${sev} ${c.bold(s(issue.title))}`);

  const subject = describeSubject(issue.subject);
  const facts = [
    s(issue.aggregationKey),
    `cluster ${s(issue.clusterName)}`,
    ...(subject !== "" ? [s(subject)] : []),
    ...(issue.subject.container !== undefined ? [`container ${s(issue.subject.container)}`] : []),
    ...(issue.subject.node !== undefined && issue.subject.kind !== "Node" ? [`node ${s(issue.subject.node)}`] : []),
  ];
  lines.push(`  ${c.dim(facts.join(" · "))}`);
  lines.push(`  ${c.dim(timeLine(issue, now))}`);
  if (issue.description !== undefined) {
    for (const l of s(issue.description).split("\n")) lines.push(`  ${l}`);
  }
  const labels = Object.entries(issue.subject.labels);
  if (labels.length > 0) {
    lines.push(`  ${c.dim("labels")} ${labels.map(([k, v]) => `${c.cyan(s(k))}=${s(v)}`).join(" ")}`);
  }
  for (const link of issue.links) lines.push(`  ${c.dim(link.name.padEnd(12))} ${c.underline(s(link.url))}`);
  for (const e of issue.enrichments) {
    lines.push(`  ${c.bold.magenta(`── ${s(e.title)} `)}`);
    for (const b of e.blocks) for (const l of renderBlockLines(b, c, opts)) lines.push(`  ${l}`);
  }
  lines.push(`  ${c.dim(`fingerprint ${issue.fingerprint} · source ${issue.source} · id ${issue.id}`)}`);
  return `${lines.join("\n")}\n`;
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
