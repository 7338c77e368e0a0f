import type { Block, Enrichment } from "../../core/blocks.js";
import { tailLines } from "../../core/blocks.js";
import { formatDuration, type Issue } from "../../core/issue.js";
import type { Severity } from "../../core/severity.js";
import { describeSubject } from "../../core/subject.js";
import { truncate } from "../../core/text.js";
import { fitEnrichments, largest } from "../fit.js";
import {
  adfChars,
  bulletList,
  code,
  codeBlock,
  doc,
  em,
  heading,
  link,
  mrkdwnNodes,
  oneLine,
  panel,
  paragraph,
  plainParagraphs,
  rule,
  strong,
  table,
  text,
  type AdfDoc,
  type AdfInline,
  type AdfNode,
  type PanelType,
} from "./adf.js";

/**
 * Jira Cloud refuses a text field (description, comment) over 32,767
 * characters. kubecano keeps the serialised document under `maxChars`.
 */
export const JIRA_LIMITS = { fieldChars: 32_767, maxChars: 30_000, summary: 255, label: 255 } as const;

/** Marks every issue kubecano creates. */
export const KUBECANO_LABEL = "kubecano";

export interface JiraRenderOptions {
  readonly project: string;
  readonly issueType: string;
  /** Priority name; absent: the project's default priority. */
  readonly priority?: string | undefined;
  /** Extra labels. */
  readonly labels?: readonly string[];
  readonly components?: readonly string[];
  /** Name of the transition run on RESOLVED, for the footer. */
  readonly resolveTransition?: string;
  readonly excerptLines?: number;
  readonly maxChars?: number;
}

/** The create-issue request body (POST /rest/api/3/issue). */
export interface JiraCreateBody {
  readonly fields: {
    readonly project: { readonly key: string };
    readonly issuetype: { readonly name: string };
    readonly summary: string;
    readonly description: AdfDoc;
    readonly labels: readonly string[];
    readonly priority?: { readonly name: string };
    readonly components?: readonly { readonly name: string }[];
  };
}

export type CommentKind = "repeat" | "reopen" | "resolve";

const PANEL: Record<Severity, PanelType> = { HIGH: "error", LOW: "warning", INFO: "info", DEBUG: "note" };
const DESCRIPTION_MAX = 8000;
const TABLE_ROWS = 30;
const LIST_ITEMS = 30;
const JSON_LINES = 60;
const CODE_LINES = 40;

/**
 * The label that ties a Jira issue to an incident: how kubecano finds the
 * issue again (JQL `labels = "kubecano-fp-…"`) after its own state is lost.
 * Jira labels cannot contain spaces and are at most 255 characters.
 */
export function fingerprintLabel(fingerprint: string): string {
  return `kubecano-fp-${fingerprint.replace(/\s+/g, "_")}`.slice(0, JIRA_LIMITS.label);
}

export function issueLabels(fingerprint: string, extra: readonly string[] = []): string[] {
  return [...new Set([KUBECANO_LABEL, fingerprintLabel(fingerprint), ...extra])];
}

/** "Pod is crash looping. (shop/pod/api-7d9f, prod-eu-1)": one line, at most 255 characters. */
export function summary(issue: Issue): string {
  const where = [describeSubject(issue.subject), issue.clusterName].filter((s) => s !== "").join(", ");
  const title = oneLine(issue.title) === "" ? issue.aggregationKey : oneLine(issue.title);
  const s = oneLine(`${title}${where !== "" ? ` (${where})` : ""}`).replace(/[\u0000-\u001f\u007f]/g, "");
  return truncate(s === "" ? "kubecano issue" : s, JIRA_LIMITS.summary);
}

export function renderCreate(issue: Issue, opts: JiraRenderOptions): JiraCreateBody {
  return {
    fields: {
      project: { key: opts.project },
      issuetype: { name: opts.issueType },
      summary: summary(issue),
      description: renderDescription(issue, opts),
      labels: issueLabels(issue.fingerprint, opts.labels),
      ...(opts.priority !== undefined ? { priority: { name: opts.priority } } : {}),
      ...(opts.components !== undefined && opts.components.length > 0 ? { components: opts.components.map((name) => ({ name })) } : {}),
    },
  };
}

/**
 * The issue's description: status panel, description, facts, labels,
 * links, enrichments and a footer. Pure. Within `maxChars`: enrichment
 * content is cut first, then labels, then the description, with a note.
 */
export function renderDescription(issue: Issue, opts: JiraRenderOptions): AdfDoc {
  const resolveName = opts.resolveTransition ?? "Done";
  const about = [
    paragraph([
      ...text("Created by kubecano", em),
      ...text(` · cluster ${truncate(oneLine(issue.clusterName), 200)} · ${issue.source} · fingerprint `, em),
      ...text(truncate(issue.fingerprint, 200), code),
      ...text(`. kubecano comments here when the alert fires again, runs the "${truncate(resolveName, 100)}" transition when it resolves, and reopens the issue if it fires after that.`, em),
    ]),
  ];
  return fitDocument(issue, opts, {
    head: [statusPanel(issue)],
    middle: [heading(3, "Details"), factsTable(issue)],
    tail: [...linksNodes(issue), rule, ...about],
  });
}

/** A comment: on a repeat, on a reopen (fired again after its resolution), or on the resolution. */
export function renderComment(issue: Issue, kind: CommentKind, opts: JiraRenderOptions): AdfDoc {
  const at = utc(Date.parse(issue.receivedAt));
  if (kind === "resolve") {
    const started = Date.parse(issue.startsAt);
    const ended = Date.parse(issue.endsAt ?? issue.receivedAt);
    const lasted = Number.isFinite(started) && Number.isFinite(ended) ? ` after ${formatDuration(Math.floor(ended / 1000) * 1000 - Math.floor(started / 1000) * 1000)}` : "";
    return doc([
      panel("success", [
        paragraph([...text("RESOLVED", strong), ...text(` · the alert stopped firing at ${Number.isFinite(ended) ? utc(ended) : "an unknown time"}${lasted}.`)]),
      ]),
      paragraph(text(`Moved on by kubecano (transition "${truncate(opts.resolveTransition ?? "Done", 100)}").`, em)),
    ]);
  }
  const lead =
    kind === "reopen"
      ? [...text("FIRING AGAIN", strong), ...text(` · ${issue.severity} · it fired again after it was resolved (notification of ${at}); kubecano reopened this issue.`)]
      : [...text("STILL FIRING", strong), ...text(` · ${issue.severity} · repeated notification of ${at}.`)];
  return fitDocument(issue, opts, {
    head: [panel(kind === "reopen" ? PANEL[issue.severity] : "note", [paragraph(lead)])],
    middle: kind === "reopen" ? [factsTable(issue)] : [],
    tail: [],
    // A repeat says what is new (fresh logs); the issue already holds the rest.
    ...(kind === "repeat" ? { noDescription: true, noLabels: true } : {}),
  });
}

interface DocParts {
  readonly head: readonly AdfNode[];
  readonly middle: readonly AdfNode[];
  readonly tail: readonly AdfNode[];
  readonly noDescription?: boolean;
  readonly noLabels?: boolean;
}

function fitDocument(issue: Issue, opts: JiraRenderOptions, parts: DocParts): AdfDoc {
  const budget = opts.maxChars ?? JIRA_LIMITS.maxChars;
  const labels = Object.entries(issue.subject.labels);
  const description = parts.noDescription === true ? "" : (issue.description?.trim() ?? "");
  let labelsShown = parts.noLabels === true ? 0 : labels.length;
  let descriptionMax = DESCRIPTION_MAX;
  const noteReserve = 400;
  const build = (enrichments: readonly AdfNode[], note: AdfNode | undefined): AdfDoc =>
    doc([
      ...parts.head,
      ...(description !== "" && descriptionMax > 0 ? plainParagraphs(truncate(description, descriptionMax)) : []),
      ...parts.middle,
      ...(labelsShown > 0 ? [labelsParagraph(labels, labelsShown)] : []),
      ...enrichments,
      ...(note !== undefined ? [note] : []),
      ...parts.tail,
    ]);

  const cut: string[] = [];
  const fits = (): boolean => adfChars(build([], undefined)) + noteReserve <= budget;
  if (!fits() && labelsShown > 0) {
    labelsShown = largest(labelsShown, (n) => {
      labelsShown = n;
      return fits();
    });
    cut.push(`${labels.length - labelsShown} of ${labels.length} labels`);
  }
  if (!fits()) {
    descriptionMax = largest(DESCRIPTION_MAX, (n) => {
      descriptionMax = n;
      return fits();
    });
    if (description.length > descriptionMax) cut.push(descriptionMax === 0 ? "the description" : "the end of the description");
  }

  const fitted = fitEnrichments(issue.enrichments, (e, scale) => enrichmentUnits(e, opts, scale), budget - adfChars(build([], undefined)) - noteReserve, (u) => adfChars(u) + 1);
  if (fitted.omitted > 0) cut.unshift(`${fitted.omitted} enrichment block${fitted.omitted === 1 ? "" : "s"}`);
  else if (fitted.shrunk > 0) cut.unshift("the longest enrichments");
  const note = cut.length > 0 ? paragraph(text(`✂️ Cut to fit Jira's field size limit: ${cut.join(", ")}.`, em)) : undefined;
  const out = build(fitted.units.flat(), note);
  // By construction this cannot happen; if it ever does, a short document beats a refused one.
  if (adfChars(out) > budget) return doc([...parts.head, paragraph(text("✂️ This notification was too large for Jira: its details were left out.", em))]);
  return out;
}

function statusPanel(issue: Issue): AdfNode {
  const resolved = issue.status === "RESOLVED";
  return panel(resolved ? "success" : PANEL[issue.severity], [
    paragraph([...text(resolved ? "RESOLVED" : `FIRING · ${issue.severity}`, strong), ...text(" · "), ...text(truncate(oneLine(issue.title), 1000))]),
  ]);
}

function factsTable(issue: Issue): AdfNode {
  const f: [string, string][] = [["Cluster", issue.clusterName]];
  if (issue.subject.namespace !== undefined) f.push(["Namespace", issue.subject.namespace]);
  if (issue.subject.kind !== "") f.push([issue.subject.kind, issue.subject.name]);
  if (issue.subject.container !== undefined) f.push(["Container", issue.subject.container]);
  if (issue.subject.node !== undefined && issue.subject.kind !== "Node") f.push(["Node", issue.subject.node]);
  f.push([issue.type === "alert" ? "Alert" : "Reason", issue.aggregationKey]);
  f.push(["Severity", issue.severity]);
  const started = Date.parse(issue.startsAt);
  if (Number.isFinite(started)) f.push(["Started", utc(started)]);
  if (issue.status === "RESOLVED" && issue.endsAt !== undefined) {
    const ended = Date.parse(issue.endsAt);
    const lasted = Math.floor(ended / 1000) * 1000 - Math.floor(started / 1000) * 1000;
    if (Number.isFinite(ended)) f.push(["Resolved", `${utc(ended)}${Number.isFinite(started) ? ` (after ${formatDuration(lasted)})` : ""}`]);
  }
  return table([], f, { cellMax: 250, rowHeaders: true })!;
}

function labelsParagraph(labels: readonly (readonly [string, string])[], shown: number): AdfNode {
  const content: AdfInline[] = [...text("Labels: ", strong)];
  labels.slice(0, shown).forEach(([k, v], i) => {
    if (i > 0) content.push(...text(" "));
    content.push(...text(oneLine(truncate(`${k}=${v}`, 200)), code));
  });
  if (shown < labels.length) content.push(...text(` (+${labels.length - shown} more)`, em));
  return paragraph(content);
}

function linksNodes(issue: Issue): AdfNode[] {
  const items = issue.links.slice(0, 10).map((l) => link(truncate(oneLine(l.name), 100), l.url));
  const list = bulletList(items);
  return list === undefined ? [] : [heading(3, "Links"), list];
}

/** One enrichment as units kept or cut as a whole: its heading travels with its first block. */
export function enrichmentUnits(e: Enrichment, opts: JiraRenderOptions, scale: number): AdfNode[][] {
  const groups = e.blocks.map((b) => blockNodes(b, opts, scale)).filter((g) => g.length > 0);
  const title = oneLine(e.title);
  if (title !== "") {
    const h = heading(3, truncate(title, 250));
    if (groups.length === 0) groups.push([h]);
    else groups[0]!.unshift(h);
  }
  return groups;
}

/** ADF nodes for one enrichment block. `scale` < 1 shows fewer lines and rows. */
export function blockNodes(b: Block, opts: JiraRenderOptions, scale = 1): AdfNode[] {
  const n = (base: number): number => Math.max(3, Math.floor(base * scale));
  switch (b.type) {
    case "markdown":
      return mrkdwnNodes(b.text, Math.floor(4000 * scale), n(CODE_LINES));
    case "header":
      return oneLine(b.text) === "" ? [] : [heading(4, truncate(oneLine(b.text), 250))];
    case "divider":
      return [rule];
    case "list": {
      const items = b.items.filter((i) => oneLine(i) !== "");
      const shown = items.slice(0, n(LIST_ITEMS));
      const list = bulletList(shown.map((i) => text(truncate(oneLine(i), 500))));
      return [...(list !== undefined ? [list] : []), ...more(items.length - shown.length, "items")];
    }
    case "links": {
      const list = bulletList(b.links.slice(0, n(LIST_ITEMS)).map((l) => link(truncate(oneLine(l.name), 200), l.url)));
      return list === undefined ? [] : [list];
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
      return [...title(b.title), codeBlock(lines.slice(0, shown).map((l) => truncate(l, 500)).join("\n"), "json"), ...more(lines.length - shown, "lines")];
    }
    case "table": {
      const rows = b.rows.slice(0, n(TABLE_ROWS));
      const t = table(b.headers, rows, { cellMax: Math.max(40, Math.floor(300 * scale)) });
      return t === undefined ? [] : [...title(b.title), t, ...more(b.rows.length - rows.length, "rows")];
    }
    case "file": {
      const want = b.excerptLines ?? opts.excerptLines ?? 30;
      const shown = scale < 1 ? Math.max(3, Math.floor(want * scale)) : want;
      const total = b.content === "" ? 0 : b.content.replace(/\n$/, "").split("\n").length;
      const excerpt = tailLines(b.content, shown)
        .split("\n")
        .map((l) => (l.length > 500 ? `…${l.slice(-499)}` : l))
        .join("\n");
      const info = `${truncate(oneLine(b.filename), 200)}: ${total} line${total === 1 ? "" : "s"}${total > shown ? `, last ${shown} shown` : ""}`;
      return [paragraph([...text(truncate(oneLine(b.title ?? b.filename), 200) || "file", strong), ...text(` (${info})`, em)]), excerpt === "" ? paragraph(text("(empty)", em)) : codeBlock(excerpt)];
    }
  }
}

function title(t: string | undefined): AdfNode[] {
  const s = oneLine(t ?? "");
  return s === "" ? [] : [paragraph(text(truncate(s, 250), strong))];
}

function more(count: number, what: string): AdfNode[] {
  return count > 0 ? [paragraph(text(`${count} more ${what} not shown`, em))] : [];
}

/** "2026-11-26 10:38:06 UTC". */
function utc(ms: number): string {
  if (!Number.isFinite(ms)) return "an unknown time";
  const iso = new Date(ms).toISOString();
  return `${iso.slice(0, 10)} ${iso.slice(11, 19)} UTC`;
}
