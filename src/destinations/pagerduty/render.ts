import { createHash } from "node:crypto";
import { tailLines, type Block, type Link } from "../../core/blocks.js";
import type { Issue } from "../../core/issue.js";
import type { Severity } from "../../core/severity.js";
import { describeSubject } from "../../core/subject.js";
import { truncate } from "../../core/text.js";
import { templateData, type CompiledTemplate } from "../../workflows/template.js";
import type { PagerDutySeverity } from "./params.js";

/**
 * PagerDuty Events API v2 limits (developer.pagerduty.com, "Send an Alert
 * Event" and "Events API v2 Overview"). An event over them is refused with
 * 400 and the page is lost, so the renderer stays under them by construction.
 */
export const PAGERDUTY_LIMITS = {
  summary: 1024,
  dedupKey: 255,
  /** "Events API payloads are limited to 512 KB". */
  eventBytes: 512 * 1024,
  /** kubecano's own budget for the whole request body: under 512 KB however KB is counted, with room for the routing key. */
  budgetBytes: 500_000,
} as const;

export const DEFAULT_SEVERITY_MAP: Readonly<Record<Severity, PagerDutySeverity>> = { HIGH: "critical", LOW: "warning", INFO: "info", DEBUG: "info" };

export interface PagerDutyRenderOptions {
  readonly source?: CompiledTemplate | undefined;
  readonly component?: CompiledTemplate | undefined;
  readonly group?: CompiledTemplate | undefined;
  readonly class?: CompiledTemplate | undefined;
  readonly severityMap?: Partial<Record<Severity, PagerDutySeverity>> | undefined;
}

export interface PagerDutyLink {
  readonly href: string;
  readonly text: string;
}

export interface PagerDutyTrigger {
  readonly event_action: "trigger";
  readonly dedup_key: string;
  readonly payload: {
    readonly summary: string;
    readonly source: string;
    readonly severity: PagerDutySeverity;
    readonly timestamp?: string;
    readonly component?: string;
    readonly group?: string;
    readonly class?: string;
    readonly custom_details: Record<string, unknown>;
  };
  readonly links: readonly PagerDutyLink[];
  readonly client: "kubecano";
}

export interface PagerDutyResolve {
  readonly event_action: "resolve";
  readonly dedup_key: string;
}

/** An event as sent, without the routing key (the destination adds it; previews must not show it). */
export type PagerDutyEvent = PagerDutyTrigger | PagerDutyResolve;

/**
 * The Issue as a PagerDuty event. FIRING → trigger (a repeat with the same
 * dedup_key adds to the open alert instead of opening another), RESOLVED →
 * resolve with the same dedup_key. Pure.
 */
export function renderPagerDuty(issue: Issue, opts: PagerDutyRenderOptions = {}): PagerDutyEvent {
  const dedup_key = dedupKey(issue.fingerprint);
  if (issue.status === "RESOLVED") return { event_action: "resolve", dedup_key };

  const data = templateData(issue);
  const fromTemplate = (t: CompiledTemplate | undefined, fallback: string): string => {
    const v = t === undefined ? "" : oneLine(t.render(data));
    return truncate(v === "" ? fallback : v, 1024);
  };
  const subject = describeSubject(issue.subject);
  const source = fromTemplate(opts.source, subject === "" ? issue.clusterName : `${issue.clusterName}/${subject}`);
  const component = fromTemplate(opts.component, issue.subject.container ?? issue.subject.name);
  const group = fromTemplate(opts.group, issue.subject.namespace ?? "");
  const klass = fromTemplate(opts.class, issue.aggregationKey);
  const timestamp = isoTime(issue.startsAt);
  const summary = truncate(oneLine(issue.title) || issue.aggregationKey || "kubecano Issue", PAGERDUTY_LIMITS.summary);

  const base = {
    event_action: "trigger" as const,
    dedup_key,
    payload: {
      summary,
      source: source === "" ? "kubecano" : source,
      severity: opts.severityMap?.[issue.severity] ?? DEFAULT_SEVERITY_MAP[issue.severity],
      ...(timestamp !== undefined ? { timestamp } : {}),
      ...(component !== "" ? { component } : {}),
      ...(group !== "" ? { group } : {}),
      ...(klass !== "" ? { class: klass } : {}),
      custom_details: {} as Record<string, unknown>,
    },
    links: eventLinks(issue),
    client: "kubecano" as const,
  };
  const withDetails = (custom_details: Record<string, unknown>): PagerDutyTrigger => ({ ...base, payload: { ...base.payload, custom_details } });
  const room = PAGERDUTY_LIMITS.budgetBytes - eventBytes(base);
  // The most detailed rendering that fits; else the tersest with the enrichments that fit; else no enrichments.
  for (const level of LEVELS) {
    const details = customDetails(issue, level, room, false);
    if (details !== undefined) return withDetails(details);
  }
  return withDetails(customDetails(issue, LEVELS[LEVELS.length - 1]!, room, true) ?? minimalDetails(issue));
}

/** Bytes of the request body with a routing key in it. */
export function eventBytes(event: PagerDutyEvent): number {
  return Buffer.byteLength(JSON.stringify({ routing_key: "R".repeat(32), ...event }), "utf8");
}

/** The fingerprint, or a hash of it when it is longer than PagerDuty allows (stable, so the resolve matches). */
export function dedupKey(fingerprint: string): string {
  return fingerprint.length <= PAGERDUTY_LIMITS.dedupKey ? fingerprint : `kubecano-${createHash("sha256").update(fingerprint).digest("hex")}`;
}

/** How much of each block a rendering keeps; the levels go from generous to terse. */
interface Level {
  readonly fileLines: number;
  readonly lineChars: number;
  readonly rows: number;
  readonly cellChars: number;
  readonly jsonChars: number;
  readonly textChars: number;
  readonly valueChars: number;
  /** Enrichments kept: the first ones, in the order the workflows added them. */
  readonly enrichments: number;
}

const LEVELS: readonly Level[] = [
  { fileLines: 100, lineChars: 2000, rows: 200, cellChars: 2000, jsonChars: 50_000, textChars: 20_000, valueChars: 10_000, enrichments: 100 },
  { fileLines: 50, lineChars: 500, rows: 50, cellChars: 500, jsonChars: 10_000, textChars: 5_000, valueChars: 2_000, enrichments: 50 },
  { fileLines: 20, lineChars: 300, rows: 20, cellChars: 200, jsonChars: 2_000, textChars: 1_000, valueChars: 500, enrichments: 20 },
  { fileLines: 5, lineChars: 200, rows: 5, cellChars: 100, jsonChars: 500, textChars: 300, valueChars: 200, enrichments: 5 },
];

const CUT = "…(cut)";

/**
 * custom_details at one level, or undefined when they take more than `room`
 * bytes. With `partial`, the enrichments that fit are kept and the rest
 * counted in a note instead.
 */
function customDetails(issue: Issue, level: Level, room: number, partial: boolean): Record<string, unknown> | undefined {
  const out: Record<string, unknown> = {
    ...(issue.description !== undefined ? { description: truncate(issue.description, level.textChars, CUT) } : {}),
    cluster: issue.clusterName,
    ...subjectDetails(issue, level.valueChars),
    severity: issue.severity,
    started_at: issue.startsAt,
    labels: cutRecord(issue.subject.labels, level.valueChars, level.rows),
    annotations: cutRecord(issue.subject.annotations, level.valueChars, level.rows),
  };
  // Bytes of `out` as JSON, counted entry by entry (an upper bound), with room left for the note.
  let size = jsonBytes(out) + 200;
  if (size > room) return undefined;
  let kept = 0;
  for (const e of issue.enrichments.slice(0, level.enrichments)) {
    const values = e.blocks.map((b) => blockValue(b, level)).filter((v) => v !== undefined);
    const key = uniqueKey(out, truncate(oneLine(e.title) || "enrichment", 200));
    const value = values.length === 1 ? values[0] : values;
    size += jsonBytes(key) + jsonBytes(value) + 2;
    if (size > room) {
      if (!partial) return undefined;
      break;
    }
    out[key] = value;
    kept++;
  }
  const left = issue.enrichments.length - kept;
  if (left > 0) out[uniqueKey(out, "kubecano_cut")] = `${left} more enrichment${left === 1 ? "" : "s"} left out to fit PagerDuty's 512 KB event limit`;
  return out;
}

function jsonBytes(v: unknown): number {
  return Buffer.byteLength(JSON.stringify(v) ?? "null", "utf8");
}

/** The last resort: no enrichments, labels and annotations cut hard. Always far under the limit. */
function minimalDetails(issue: Issue): Record<string, unknown> {
  return {
    ...(issue.description !== undefined ? { description: truncate(issue.description, 1000, CUT) } : {}),
    cluster: truncate(issue.clusterName, 200),
    ...subjectDetails(issue, 200),
    severity: issue.severity,
    started_at: truncate(issue.startsAt, 64),
    labels: cutRecord(issue.subject.labels, 200, 50),
    annotations: cutRecord(issue.subject.annotations, 200, 20),
    kubecano_cut: `enrichments (${issue.enrichments.length}) left out to fit PagerDuty's 512 KB event limit`,
  };
}

function subjectDetails(issue: Issue, max: number): Record<string, string> {
  const s = issue.subject;
  const subject = describeSubject(s);
  return {
    ...(subject !== "" ? { subject: truncate(subject, max) } : {}),
    ...(s.container !== undefined ? { container: truncate(s.container, max) } : {}),
    ...(s.node !== undefined && s.kind !== "Node" ? { node: truncate(s.node, max) } : {}),
  };
}

/** A block as compact JSON: text stays text, tables become row objects, logs their last lines. */
function blockValue(b: Block, level: Level): unknown {
  switch (b.type) {
    case "markdown":
      return truncate(b.text, level.textChars, CUT);
    case "header":
      return truncate(oneLine(b.text), level.valueChars);
    case "divider":
      return undefined;
    case "list":
      return cutList(b.items, level.rows, "items", (i) => truncate(i, level.cellChars, CUT));
    case "links":
      return cutList(
        b.links.filter((l) => isHttpUrl(l.url)),
        level.rows,
        "links",
        (l) => ({ text: truncate(oneLine(l.name) || l.url, level.cellChars), href: truncate(l.url, 2000) }),
      );
    case "json": {
      let text: string | undefined;
      try {
        text = JSON.stringify(b.data);
      } catch {
        text = undefined;
      }
      const data = text === undefined ? "(unserialisable value)" : text.length <= level.jsonChars ? (JSON.parse(text) as unknown) : truncate(text, level.jsonChars, CUT);
      return b.title !== undefined ? { title: truncate(oneLine(b.title), level.valueChars), data } : data;
    }
    case "table": {
      const rows = b.rows.slice(0, level.rows).map((r) => tableRow(b.headers, r, level.cellChars));
      const more = b.rows.length - rows.length;
      const value = more > 0 ? [...rows, `… ${more} more row${more === 1 ? "" : "s"} cut`] : rows;
      return b.title !== undefined ? { title: truncate(oneLine(b.title), level.valueChars), rows: value } : value;
    }
    case "file": {
      const n = Math.min(b.excerptLines ?? level.fileLines, level.fileLines);
      const total = lineCount(b.content);
      const lines = tailLines(b.content, n)
        .split("\n")
        .map((l) => truncate(l, level.lineChars, CUT));
      return {
        ...(b.title !== undefined ? { title: truncate(oneLine(b.title), level.valueChars) } : {}),
        file: truncate(b.filename, level.valueChars),
        lines: total,
        [total > n ? `last_${n}_lines` : "content"]: total === 0 ? [] : lines,
      };
    }
  }
}

/** A row keyed by its headers; a row without usable headers stays an array. */
function tableRow(headers: readonly string[], row: readonly string[], max: number): Record<string, string> | string[] {
  const keys = headers.map((h) => oneLine(h));
  const usable = keys.length >= row.length && keys.every((k) => k !== "") && new Set(keys).size === keys.length;
  if (!usable) return row.map((c) => truncate(c, max, CUT));
  const out: Record<string, string> = {};
  keys.forEach((k, i) => {
    out[k] = truncate(row[i] ?? "", max, CUT);
  });
  return out;
}

function cutList<T, U>(items: readonly T[], max: number, what: string, map: (item: T) => U): (U | string)[] {
  const shown = items.slice(0, max).map(map);
  return items.length <= max ? shown : [...shown, `… ${items.length - max} more ${what} cut`];
}

function cutRecord(r: Readonly<Record<string, string>>, max: number, entries: number): Record<string, string> {
  const out: Record<string, string> = {};
  const all = Object.entries(r);
  for (const [k, v] of all.slice(0, entries)) out[truncate(k, 200)] = truncate(v, max, CUT);
  if (all.length > entries) out["kubecano_cut"] = `${all.length - entries} more left out`;
  return out;
}

function eventLinks(issue: Issue): PagerDutyLink[] {
  const all: Link[] = [...issue.links];
  for (const e of issue.enrichments) for (const b of e.blocks) if (b.type === "links") all.push(...b.links);
  const seen = new Set<string>();
  const out: PagerDutyLink[] = [];
  for (const l of all) {
    if (!isHttpUrl(l.url) || l.url.length > 2000 || seen.has(l.url)) continue;
    seen.add(l.url);
    out.push({ href: l.url, text: truncate(oneLine(l.name) || l.url, 200) });
    if (out.length === 20) break;
  }
  return out;
}

/** Lines of a text, a final newline not starting another. */
function lineCount(s: string): number {
  if (s === "") return 0;
  let n = 1;
  for (let i = s.indexOf("\n"); i !== -1 && i < s.length - 1; i = s.indexOf("\n", i + 1)) n++;
  return n;
}

function uniqueKey(obj: Record<string, unknown>, key: string): string {
  if (!(key in obj)) return key;
  for (let i = 2; ; i++) if (!(`${key} (${i})` in obj)) return `${key} (${i})`;
}

/** ISO-8601 with milliseconds (Alertmanager sends nanoseconds), or undefined when unparseable. */
function isoTime(s: string): string | undefined {
  const t = Date.parse(s);
  return Number.isFinite(t) ? new Date(t).toISOString() : undefined;
}

function isHttpUrl(u: string): boolean {
  try {
    const p = new URL(u).protocol;
    return p === "http:" || p === "https:";
  } catch {
    return false;
  }
}

function oneLine(s: string): string {
  return s.replace(/\s*[\r\n]+\s*/g, " ").trim();
}
