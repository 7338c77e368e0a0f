import { isLinkUrl, parseMrkdwn, type MrkdwnInline } from "../../core/mrkdwn.js";
import { stripControl, truncate } from "../../core/text.js";

/**
 * The part of the Atlassian Document Format (ADF) kubecano writes, and small
 * builders that only ever produce valid nodes: Jira refuses the whole
 * request (HTTP 400, INVALID_INPUT) for one bad node, e.g. an empty text
 * node, marks on code-block text, or a table row with no cells.
 */

export type AdfMark = { readonly type: "strong" | "em" | "strike" | "code" } | { readonly type: "link"; readonly attrs: { readonly href: string } };
export interface AdfText {
  readonly type: "text";
  readonly text: string;
  readonly marks?: readonly AdfMark[];
}
export type AdfInline = AdfText | { readonly type: "hardBreak" };
export interface AdfParagraph {
  readonly type: "paragraph";
  readonly content: readonly AdfInline[];
}
export interface AdfListItem {
  readonly type: "listItem";
  readonly content: readonly AdfParagraph[];
}
export interface AdfTableCell {
  readonly type: "tableHeader" | "tableCell";
  readonly content: readonly AdfParagraph[];
}
export interface AdfTableRow {
  readonly type: "tableRow";
  readonly content: readonly AdfTableCell[];
}
export type PanelType = "info" | "note" | "warning" | "error" | "success";
export type AdfNode =
  | AdfParagraph
  | { readonly type: "heading"; readonly attrs: { readonly level: 1 | 2 | 3 | 4 | 5 | 6 }; readonly content: readonly AdfInline[] }
  | { readonly type: "codeBlock"; readonly attrs: { readonly language?: string }; readonly content: readonly AdfText[] }
  | { readonly type: "bulletList"; readonly content: readonly AdfListItem[] }
  | { readonly type: "rule" }
  | { readonly type: "panel"; readonly attrs: { readonly panelType: PanelType }; readonly content: readonly AdfParagraph[] }
  | { readonly type: "table"; readonly attrs: { readonly isNumberColumnEnabled: false; readonly layout: "default" }; readonly content: readonly AdfTableRow[] };

export interface AdfDoc {
  readonly version: 1;
  readonly type: "doc";
  readonly content: readonly AdfNode[];
}

export function doc(content: readonly AdfNode[]): AdfDoc {
  // A document needs at least one node.
  return { version: 1, type: "doc", content: content.length > 0 ? content : [paragraph([])] };
}

/** A text node, or none for empty text (ADF refuses empty text nodes). */
export function text(s: string, ...marks: AdfMark[]): AdfText[] {
  const t = clean(s);
  return t === "" ? [] : [{ type: "text", text: t, ...(marks.length > 0 ? { marks } : {}) }];
}

export const strong: AdfMark = { type: "strong" };
export const em: AdfMark = { type: "em" };
export const code: AdfMark = { type: "code" };

/** A link mark for http(s)/mailto URLs; other URLs are shown as text. */
export function link(label: string, href: string): AdfText[] {
  if (!isLinkUrl(href) || href.length > 2000) return text(label === "" ? href : label);
  return text(label === "" ? href : label, { type: "link", attrs: { href } });
}

export function paragraph(content: readonly AdfInline[]): AdfParagraph {
  return { type: "paragraph", content: trimBreaks(content) };
}

export function heading(level: 1 | 2 | 3 | 4 | 5 | 6, s: string): AdfNode {
  return { type: "heading", attrs: { level }, content: text(oneLine(s)) };
}

/** Plain text: one paragraph per run of non-empty lines, line breaks kept. */
export function plainParagraphs(s: string): AdfParagraph[] {
  return clean(s)
    .split(/\n\s*\n/)
    .map((block) => block.split("\n").filter((l) => l.trim() !== ""))
    .filter((lines) => lines.length > 0)
    .map((lines) => paragraph(lines.flatMap((l, i) => [...(i > 0 ? [{ type: "hardBreak" as const }] : []), ...text(l)])));
}

/** A code block; its text carries no marks. */
export function codeBlock(s: string, language?: string): AdfNode {
  return { type: "codeBlock", attrs: language !== undefined ? { language } : {}, content: text(s.replace(/\n+$/, "")) };
}

export function bulletList(items: readonly (readonly AdfInline[])[]): AdfNode | undefined {
  const li = items.filter((i) => i.length > 0).map((i): AdfListItem => ({ type: "listItem", content: [paragraph(i)] }));
  return li.length === 0 ? undefined : { type: "bulletList", content: li };
}

export function panel(panelType: PanelType, content: readonly AdfParagraph[]): AdfNode {
  return { type: "panel", attrs: { panelType }, content: content.length > 0 ? content : [paragraph([])] };
}

export const rule: AdfNode = { type: "rule" };

/**
 * A table: a header row when `headers` has any, then the rows, every row
 * padded to the same number of cells. Cells hold one paragraph of plain text.
 */
export function table(headers: readonly string[], rows: readonly (readonly string[])[], opts: { cellMax?: number; maxCols?: number; rowHeaders?: boolean } = {}): AdfNode | undefined {
  const cols = Math.min(opts.maxCols ?? 20, Math.max(headers.length, ...rows.map((r) => r.length)));
  if (cols === 0 || (headers.length === 0 && rows.length === 0)) return undefined;
  const cell = (type: AdfTableCell["type"], s: string): AdfTableCell => ({ type, content: [paragraph(text(oneLine(truncate(s, opts.cellMax ?? 300))))] });
  const row = (r: readonly string[], header: boolean): AdfTableRow => ({
    type: "tableRow",
    content: Array.from({ length: cols }, (_, i) => cell(header || (opts.rowHeaders === true && i === 0) ? "tableHeader" : "tableCell", r[i] ?? "")),
  });
  const content = [...(headers.length > 0 ? [row(headers, true)] : []), ...rows.map((r) => row(r, false))];
  return { type: "table", attrs: { isNumberColumnEnabled: false, layout: "default" }, content };
}

/** Slack-flavoured markdown (a MarkdownBlock) as ADF paragraphs and code blocks. */
export function mrkdwnNodes(source: string, maxChars: number, maxCodeLines: number): AdfNode[] {
  const out: AdfNode[] = [];
  let left = maxChars;
  for (const block of parseMrkdwn(source)) {
    if (left <= 0) break;
    if (block.kind === "code") {
      const lines = block.text.split("\n");
      const shown = lines.slice(0, maxCodeLines).join("\n");
      const cut = truncate(shown, Math.max(left, 200));
      out.push(codeBlock(cut));
      if (lines.length > maxCodeLines) out.push(paragraph(text(`${lines.length - maxCodeLines} more lines not shown`, em)));
      left -= cut.length;
    } else {
      const content: AdfInline[] = [];
      block.lines.forEach((runs, i) => {
        if (left <= 0) return;
        if (i > 0) content.push({ type: "hardBreak" });
        for (const r of runs) {
          if (left <= 0) break;
          const t = truncate(r.text, left);
          left -= t.length;
          content.push(...inline({ ...r, text: t }));
        }
      });
      out.push(paragraph(content));
    }
  }
  return out;
}

function inline(r: MrkdwnInline): AdfText[] {
  if (r.href !== undefined) return link(r.text, r.href);
  // ADF allows code only together with link: a code run keeps just the code mark.
  if (r.code === true) return text(r.text, code);
  const marks: AdfMark[] = [...(r.bold === true ? [strong] : []), ...(r.italic === true ? [em] : []), ...(r.strike === true ? [{ type: "strike" as const }] : [])];
  return text(r.text, ...marks);
}

/** Characters of the document as Jira measures its fields (the serialised JSON, a safe upper bound). */
export function adfChars(v: unknown): number {
  return JSON.stringify(v).length;
}

/** Control characters and lone surrogates out; CR/LF normalised. */
function clean(s: string): string {
  return stripControl(s.replace(/\r\n?/g, "\n")).replace(/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g, "\ufffd");
}

function trimBreaks(content: readonly AdfInline[]): AdfInline[] {
  let a = 0;
  let b = content.length;
  while (a < b && content[a]!.type === "hardBreak") a++;
  while (b > a && content[b - 1]!.type === "hardBreak") b--;
  return content.slice(a, b);
}

export function oneLine(s: string): string {
  return s.replace(/\s*[\r\n]+\s*/g, " ").trim();
}
