/**
 * Markdown blocks carry Slack-flavoured markdown (see MarkdownBlock). Other
 * destinations (Teams cards, Jira's document format) draw it with their own
 * syntax: this parses it once into plain structure. Pure; never throws.
 *
 * What it understands: ```fenced code```, `inline code`, *bold*, _italic_,
 * ~strike~, <url|text> and <url> links, the entities &amp; &lt; &gt;, and
 * Slack mentions (<!here>, <@U1>, <#C1|name>), which become plain text so no
 * other destination can ping anyone with them.
 */

export interface MrkdwnInline {
  readonly text: string;
  readonly bold?: true;
  readonly italic?: true;
  readonly strike?: true;
  readonly code?: true;
  /** An http(s) or mailto URL; other schemes stay plain text. */
  readonly href?: string;
}

export type MrkdwnBlock =
  | { readonly kind: "code"; readonly text: string }
  /** Consecutive lines of text; an empty line separates paragraphs. */
  | { readonly kind: "paragraph"; readonly lines: readonly (readonly MrkdwnInline[])[] };

export function parseMrkdwn(source: string): MrkdwnBlock[] {
  const out: MrkdwnBlock[] = [];
  const parts = source.replace(/\r\n?/g, "\n").split("```");
  parts.forEach((part, i) => {
    // Odd parts are inside a fence; an unclosed last fence is code too, as Slack shows it.
    if (i % 2 === 1) {
      const text = part.replace(/^\n/, "").replace(/\n$/, "");
      if (text.trim() !== "") out.push({ kind: "code", text: decodeEntities(text) });
      return;
    }
    let lines: MrkdwnInline[][] = [];
    const flush = (): void => {
      if (lines.length > 0) out.push({ kind: "paragraph", lines });
      lines = [];
    };
    for (const line of part.split("\n")) {
      if (line.trim() === "") flush();
      else lines.push(parseInline(line));
    }
    flush();
  });
  return out;
}

const INLINE = /`([^`\n]+)`|<([^<>\n]+)>|(?<![\p{L}\p{N}])\*(?!\s)([^*\n]+?)(?<!\s)\*(?![\p{L}\p{N}])|(?<![\p{L}\p{N}])_(?!\s)([^_\n]+?)(?<!\s)_(?![\p{L}\p{N}])|(?<![\p{L}\p{N}])~(?!\s)([^~\n]+?)(?<!\s)~(?![\p{L}\p{N}])/gu;

/** One line of mrkdwn as styled runs. Formatting does not nest (Slack's rarely does either). */
export function parseInline(line: string): MrkdwnInline[] {
  const out: MrkdwnInline[] = [];
  const plain = (t: string): void => {
    if (t !== "") out.push({ text: decodeEntities(t) });
  };
  let last = 0;
  for (const m of line.matchAll(INLINE)) {
    plain(line.slice(last, m.index));
    last = m.index + m[0].length;
    if (m[1] !== undefined) out.push({ text: decodeEntities(m[1]), code: true });
    else if (m[2] !== undefined) out.push(angle(m[2]));
    else if (m[3] !== undefined) out.push({ text: decodeEntities(m[3]), bold: true });
    else if (m[4] !== undefined) out.push({ text: decodeEntities(m[4]), italic: true });
    else if (m[5] !== undefined) out.push({ text: decodeEntities(m[5]), strike: true });
  }
  plain(line.slice(last));
  return out;
}

/** The plain text of a line of runs. */
export function inlineText(runs: readonly MrkdwnInline[]): string {
  return runs.map((r) => r.text).join("");
}

/** <...>: a link, or a mention that becomes plain text. */
function angle(inner: string): MrkdwnInline {
  const bar = inner.indexOf("|");
  const target = bar < 0 ? inner : inner.slice(0, bar);
  const label = bar < 0 ? undefined : inner.slice(bar + 1);
  if (target.startsWith("!")) {
    const name = target.slice(1).replace(/^subteam\^.*/, "team").replace(/^date\^.*/, "");
    return { text: decodeEntities(label ?? (name === "" ? "" : `@${name}`)) };
  }
  if (target.startsWith("@")) return { text: decodeEntities(label ?? target) };
  if (target.startsWith("#")) return { text: `#${decodeEntities(label ?? target.slice(1))}` };
  const href = decodeEntities(target);
  const text = decodeEntities(label ?? target);
  return isLinkUrl(href) ? { text: text === "" ? href : text, href } : { text: `<${decodeEntities(inner)}>` };
}

export function isLinkUrl(u: string): boolean {
  try {
    const p = new URL(u).protocol;
    return p === "http:" || p === "https:" || p === "mailto:";
  } catch {
    return false;
  }
}

function decodeEntities(s: string): string {
  return s.replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&amp;/g, "&");
}
