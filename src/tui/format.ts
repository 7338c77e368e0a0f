import type { ChalkInstance } from "chalk";
import { formatDuration } from "../core/issue.js";
import type { Severity } from "../core/severity.js";
import { describeSubject } from "../core/subject.js";
import { stripControl, truncate } from "../core/text.js";
import { renderBlockLines } from "../destinations/console/render.js";
import type { FeedCounters, FeedDelivery } from "../server/feed-protocol.js";
import type { ConnectionState } from "./feed-client.js";
import type { IssueFilter, IssueRow } from "./store.js";

/**
 * What the TUI writes, as plain functions of the data (and `now`), so
 * frames are easy to test and the components stay thin.
 */

export const SEVERITY_COLOR: Record<Severity, string> = { HIGH: "red", LOW: "yellow", INFO: "blue", DEBUG: "gray" };

export const DELIVERY_MARK: Record<FeedDelivery["state"], { mark: string; color: string }> = {
  sent: { mark: "✔", color: "green" },
  failed: { mark: "✖", color: "red" },
  pending: { mark: "…", color: "gray" },
  retrying: { mark: "↻", color: "yellow" },
};

/** "4s", "12m", "3h": compact ages for the list. */
export function age(fromIso: string, now: number): string {
  const t = Date.parse(fromIso);
  if (!Number.isFinite(t)) return "?";
  const s = Math.max(0, Math.floor((now - t) / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m`;
  if (s < 172_800) return `${Math.floor(s / 3600)}h`;
  return `${Math.floor(s / 86_400)}d`;
}

/** One line of the issue list as cells; the component colours them. */
export interface RowCells {
  readonly severity: string;
  readonly status: string;
  readonly age: string;
  readonly title: string;
  readonly subject: string;
  /** Either delivery marks or a word for the stage. */
  readonly where: readonly { readonly text: string; readonly color: string }[];
}

export function rowCells(row: IssueRow, now: number): RowCells {
  const i = row.issue;
  const subject = describeSubject(i.subject);
  return {
    severity: i.severity,
    status: i.status,
    age: age(i.receivedAt, now),
    title: clean(i.title),
    subject: clean(subject !== "" ? subject : i.aggregationKey),
    where: whereCells(row),
  };
}

function whereCells(row: IssueRow): RowCells["where"] {
  if (row.stage === "processing") return [{ text: "enriching…", color: "cyan" }];
  if (row.stage === "silenced") return [{ text: "silenced", color: "gray" }];
  if (row.deliveries.length === 0) return [{ text: "no destination", color: "gray" }];
  return row.deliveries.map((d) => ({ text: `${clean(d.destination)} ${DELIVERY_MARK[d.state].mark}`, color: DELIVERY_MARK[d.state].color }));
}

/** Column widths of the list for a terminal `width` columns wide. */
export interface Columns {
  readonly severity: number;
  readonly status: number;
  readonly age: number;
  readonly title: number;
  readonly subject: number;
  readonly where: number;
}

export function columns(width: number): Columns {
  const fixed = 2 + 6 + 9 + 5;
  const rest = Math.max(10, width - fixed);
  // Narrow terminals drop the subject, then the destinations.
  const where = width >= 60 ? Math.min(28, Math.floor(rest * 0.25)) : 0;
  const subject = width >= 90 ? Math.min(36, Math.floor(rest * 0.28)) : 0;
  const title = Math.max(8, rest - where - subject - (where > 0 ? 1 : 0) - (subject > 0 ? 1 : 0));
  return { severity: 6, status: 9, age: 5, title, subject, where };
}

export function fit(s: string, width: number): string {
  if (width <= 0) return "";
  return s.length > width ? truncate(s, width) : s.padEnd(width);
}

export function connectionText(c: ConnectionState, now: number): { text: string; color: string } {
  switch (c.kind) {
    case "connecting":
      return { text: "◌ connecting…", color: "yellow" };
    case "live":
      return { text: "● live", color: "green" };
    case "reconnecting":
      return { text: `⟳ reconnecting in ${Math.max(0, Math.ceil((c.retryAt - now) / 1000))}s (${c.error})`, color: "yellow" };
    case "failed":
      return { text: `✖ ${c.error}`, color: "red" };
  }
}

/** " received 12 · sent 10 · failed 1 · queued 1" as [label, value] pairs (values drawn apart from labels). */
export function countersParts(c: FeedCounters | undefined): [string, string][] {
  const v = (n: number | undefined): string => (n === undefined ? "-" : String(n));
  return [
    [" received ", v(c?.received)],
    [" · sent ", v(c?.sent)],
    [" · failed ", v(c?.failed)],
    ...(c !== undefined && c.retried > 0 ? [[" · retried ", v(c.retried)] as [string, string]] : []),
    [" · queued ", v(c?.queued)],
  ];
}

export function filterText(f: IssueFilter): string {
  const parts: string[] = [];
  if (f.text !== "") parts.push(`"${f.text}"`);
  if (f.minSeverity !== undefined) parts.push(f.minSeverity === "HIGH" ? "HIGH only" : `≥ ${f.minSeverity}`);
  if (f.firingOnly) parts.push("firing only");
  return parts.join(" · ");
}

/** `s` cycles: every severity → INFO and up → LOW and up → HIGH → every severity. */
export function nextMinSeverity(s: Severity | undefined): Severity | undefined {
  switch (s) {
    case undefined:
    case "DEBUG":
      return "INFO";
    case "INFO":
      return "LOW";
    case "LOW":
      return "HIGH";
    case "HIGH":
      return undefined;
  }
}

/**
 * Every line of the detail view of one Issue: facts, description, labels,
 * links, where it went (with errors and hints), then each enrichment's
 * blocks drawn as the console destination draws them (tables, log
 * excerpts). Text from alerts goes through stripControl.
 */
export function detailLines(row: IssueRow, c: ChalkInstance, width: number, now: number): string[] {
  const i = row.issue;
  const s = clean;
  const out: string[] = [];
  const sev = SEVERITY_STYLE[i.severity](c)(` ${i.severity} `);
  out.push(`${i.status === "FIRING" ? c.red.bold("● FIRING") : c.green.bold("✔ RESOLVED")} ${sev} ${c.bold(s(i.title))}`);
  const subject = describeSubject(i.subject);
  out.push(c.dim([s(i.aggregationKey), `cluster ${s(i.clusterName)}`, ...(subject !== "" ? [s(subject)] : []), ...(i.subject.container !== undefined ? [`container ${s(i.subject.container)}`] : []), ...(i.subject.node !== undefined && i.subject.kind !== "Node" ? [`node ${s(i.subject.node)}`] : [])].join(" · ")));
  const started = Date.parse(i.startsAt);
  const times = [`received ${i.receivedAt.replace("T", " ").replace(/\.\d+Z$/, "Z")} (${age(i.receivedAt, now)} ago)`];
  if (Number.isFinite(started)) times.push(i.status === "RESOLVED" && i.endsAt !== undefined ? `lasted ${formatDuration(Date.parse(i.endsAt) - started)}` : `firing for ${formatDuration(now - started)}`);
  out.push(c.dim(times.join(" · ")));
  out.push("");
  if (i.description !== undefined) {
    for (const l of s(i.description).split("\n")) out.push(...wrap(l, width));
    out.push("");
  }
  const labels = Object.entries(i.subject.labels);
  if (labels.length > 0) {
    out.push(c.bold("Labels"));
    for (const l of wrap(labels.map(([k, v]) => `${s(k)}=${s(v)}`).join("  "), width - 2)) out.push(`  ${l}`);
  }
  const annotations = Object.entries(i.subject.annotations).filter(([k]) => k !== "description" && k !== "summary");
  if (annotations.length > 0) {
    out.push(c.bold("Annotations"));
    for (const [k, v] of annotations) out.push(`  ${c.cyan(s(k))} ${truncate(s(v).replace(/\s*\n\s*/g, " "), Math.max(10, width - k.length - 3))}`);
  }
  if (i.links.length > 0) {
    out.push(c.bold("Links"));
    for (const link of i.links) out.push(`  ${c.dim(s(link.name).padEnd(12))} ${c.underline(s(link.url))}`);
  }
  out.push(c.bold("Delivery"));
  if (row.stage === "processing") out.push(`  ${c.cyan("enriching…")} workflows and routing have not run yet`);
  else if (row.stage === "silenced") out.push(`  ${c.gray(`silenced: ${s(row.silenced ?? "")}`)}`);
  else if (row.deliveries.length === 0) out.push(`  ${c.gray("routed to no destination")}`);
  for (const d of row.deliveries) {
    const m = DELIVERY_MARK[d.state];
    const paint = (c as unknown as Record<string, (t: string) => string>)[m.color] ?? ((t: string) => t);
    const when = d.state === "retrying" && d.nextAttemptAt !== undefined ? `, next attempt in ${formatDuration(d.nextAttemptAt - now)}` : "";
    out.push(`  ${paint(m.mark)} ${s(d.destination)} ${c.dim(`${d.state}${d.attempts > 0 ? ` after ${d.attempts} attempt${d.attempts === 1 ? "" : "s"}` : ""}${when}`)}`);
    if (d.error !== undefined) for (const l of wrap(`${d.code !== undefined ? `[${s(d.code)}] ` : ""}${s(d.error)}`, width - 4)) out.push(`    ${c.red(l)}`);
    if (d.hint !== undefined) for (const l of wrap(`hint: ${s(d.hint)}`, width - 4)) out.push(`    ${c.yellow(l)}`);
  }
  for (const e of i.enrichments) {
    out.push("");
    out.push(c.bold.magenta(`── ${s(e.title)}${e.source !== undefined ? c.dim(` (${s(e.source)})`) : ""} `));
    for (const b of e.blocks) {
      // The detail scrolls: a file shows far more than the excerpt meant for chat destinations.
      const block = b.type === "file" ? { ...b, excerptLines: Math.max(b.excerptLines ?? 0, FILE_LINES) } : b;
      const lines = renderBlockLines(block, c, { width: Math.max(20, width - 2) });
      for (const l of lines) out.push(...(b.type === "markdown" || b.type === "list" ? wrap(l, width - 2) : [l]).map((x) => `  ${x}`));
    }
  }
  out.push("");
  out.push(c.dim(`fingerprint ${i.fingerprint} · source ${i.source} · id ${i.id}`));
  return out;
}

const FILE_LINES = 500;

const SEVERITY_STYLE: Record<Severity, (c: ChalkInstance) => ChalkInstance> = {
  HIGH: (c) => c.bgRed.white.bold,
  LOW: (c) => c.bgYellow.black.bold,
  INFO: (c) => c.bgBlue.white.bold,
  DEBUG: (c) => c.bgGray.white,
};

/** Text from the outside world, on one line. */
function clean(s: string): string {
  return stripControl(s).replace(/\s*\n\s*/g, " ");
}

/** Hard-wraps plain text at `width` columns, on spaces where it can. */
export function wrap(text: string, width: number): string[] {
  const w = Math.max(10, width);
  if (text.length <= w) return [text];
  const out: string[] = [];
  let rest = text;
  while (rest.length > w) {
    let cut = rest.lastIndexOf(" ", w);
    if (cut < w / 2) cut = w;
    out.push(rest.slice(0, cut).trimEnd());
    rest = rest.slice(cut).trimStart();
  }
  if (rest !== "") out.push(rest);
  return out;
}
