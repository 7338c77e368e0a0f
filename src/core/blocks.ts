/**
 * Enrichment blocks: data, not presentation. Each destination decides how to
 * draw them (Slack Block Kit, a terminal table, an Adaptive Card...).
 * Blocks must stay JSON-serialisable: the durable store and the live feed
 * persist and ship them as they are.
 */

export interface MarkdownBlock {
  readonly type: "markdown";
  /** Slack-flavoured markdown: *bold*, _italic_, `code`, ```fences```, <url|text>. */
  readonly text: string;
}

export interface TableBlock {
  readonly type: "table";
  readonly title?: string;
  readonly headers: readonly string[];
  readonly rows: readonly (readonly string[])[];
}

export interface FileBlock {
  readonly type: "file";
  readonly filename: string;
  readonly title?: string;
  /** UTF-8 text content (logs, long tables). Binary content is not supported. */
  readonly content: string;
  /** Lines of the content to show inline where the destination cannot attach files. */
  readonly excerptLines?: number;
}

export interface JsonBlock {
  readonly type: "json";
  readonly title?: string;
  readonly data: unknown;
}

export interface HeaderBlock {
  readonly type: "header";
  readonly text: string;
}

export interface ListBlock {
  readonly type: "list";
  readonly items: readonly string[];
}

export interface Link {
  readonly name: string;
  readonly url: string;
  /** What the link is, so destinations can pick an icon or a button style. */
  readonly kind?: "graph" | "runbook" | "silence" | "dashboard" | "other";
}

export interface LinksBlock {
  readonly type: "links";
  readonly links: readonly Link[];
}

export interface DividerBlock {
  readonly type: "divider";
}

export type Block =
  | MarkdownBlock
  | TableBlock
  | FileBlock
  | JsonBlock
  | HeaderBlock
  | ListBlock
  | LinksBlock
  | DividerBlock;

export type BlockType = Block["type"];

/** A titled group of blocks added to an Issue by one workflow action. */
export interface Enrichment {
  readonly title: string;
  readonly blocks: readonly Block[];
  /** Name of the action that produced it, for `replay --explain` and the TUI. */
  readonly source?: string;
}

/** The last `lines` lines of a text, for inline excerpts of logs. */
export function tailLines(text: string, lines: number): string {
  if (lines <= 0) return "";
  const trimmed = text.endsWith("\n") ? text.slice(0, -1) : text;
  let idx = trimmed.length;
  for (let i = 0; i < lines; i++) {
    // lastIndexOf clamps a negative start to 0 and would find a leading "\n" twice.
    if (idx === 0) return trimmed;
    const prev = trimmed.lastIndexOf("\n", idx - 1);
    if (prev < 0) return trimmed;
    idx = prev;
  }
  return trimmed.slice(idx + 1);
}
