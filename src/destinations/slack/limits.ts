/**
 * Block Kit limits (docs.slack.dev block reference) and kubecano's own,
 * stricter budget. Slack rejects a message over any of these with
 * invalid_blocks / msg_too_long / msg_blocks_too_long and the alert is lost,
 * so the renderer keeps under them by construction and `checkLimits` proves it.
 */
export const SLACK_LIMITS = {
  maxBlocks: 50,
  sectionText: 3000,
  headerText: 150,
  maxFields: 10,
  fieldText: 2000,
  contextElements: 10,
  contextText: 2000,
  actionsElements: 25,
  buttonText: 75,
  buttonUrl: 3000,
  actionId: 255,
  blockId: 255,
  messageText: 40_000,
  /**
   * Total characters of text across all blocks. Slack has answered
   * msg_blocks_too_long near 13k; kubecano stays well under.
   */
  totalBlockChars: 10_000,
  /** Fallback `text` kept short: it is what notifications show. */
  fallbackText: 3000,
} as const;

export interface TextObject {
  type: "plain_text" | "mrkdwn";
  text: string;
  emoji?: boolean;
}

export interface SectionBlock {
  type: "section";
  text?: TextObject;
  fields?: TextObject[];
  block_id?: string;
}
export interface HeaderBlock {
  type: "header";
  text: TextObject & { type: "plain_text" };
  block_id?: string;
}
export interface ContextBlock {
  type: "context";
  elements: TextObject[];
  block_id?: string;
}
export interface DividerBlock {
  type: "divider";
  block_id?: string;
}
export interface ButtonElement {
  type: "button";
  text: TextObject & { type: "plain_text" };
  url: string;
  action_id: string;
  style?: "primary" | "danger";
}
export interface ActionsBlock {
  type: "actions";
  elements: ButtonElement[];
  block_id?: string;
}
export type SlackBlock = SectionBlock | HeaderBlock | ContextBlock | DividerBlock | ActionsBlock;

export interface SlackAttachment {
  color: string;
  blocks: SlackBlock[];
  fallback?: string;
}

export interface SlackMessage {
  text: string;
  blocks: SlackBlock[];
  attachments: SlackAttachment[];
  metadata?: { event_type: string; event_payload: Record<string, string | number | boolean> };
}

/** Characters of visible text in a block, as counted against the budget. */
export function blockChars(b: SlackBlock): number {
  switch (b.type) {
    case "section":
      return (b.text?.text.length ?? 0) + (b.fields ?? []).reduce((n, f) => n + f.text.length, 0);
    case "header":
      return b.text.text.length;
    case "context":
      return b.elements.reduce((n, e) => n + e.text.length, 0);
    case "actions":
      return b.elements.reduce((n, e) => n + e.text.text.length + e.url.length, 0);
    case "divider":
      return 0;
  }
}

/**
 * Every limit a message breaks; empty when Slack will accept it. The
 * renderer's tests and the local Slack fake both use this.
 */
export function checkLimits(msg: Pick<SlackMessage, "text" | "blocks" | "attachments">): string[] {
  const L = SLACK_LIMITS;
  const problems: string[] = [];
  const all = [...msg.blocks, ...msg.attachments.flatMap((a) => a.blocks)];
  if (msg.text.length === 0) problems.push("text is empty");
  if (msg.text.length > L.messageText) problems.push(`text has ${msg.text.length} chars (max ${L.messageText})`);
  if (all.length > L.maxBlocks) problems.push(`${all.length} blocks (max ${L.maxBlocks})`);
  let total = 0;
  all.forEach((b, i) => {
    total += blockChars(b);
    const where = `block ${i} (${b.type})`;
    if (b.block_id !== undefined && b.block_id.length > L.blockId) problems.push(`${where}: block_id too long`);
    switch (b.type) {
      case "section":
        if (b.text === undefined && (b.fields === undefined || b.fields.length === 0)) problems.push(`${where}: needs text or fields`);
        if (b.text !== undefined && (b.text.text.length === 0 || b.text.text.length > L.sectionText)) problems.push(`${where}: text has ${b.text.text.length} chars (1..${L.sectionText})`);
        if (b.fields !== undefined) {
          if (b.fields.length > L.maxFields) problems.push(`${where}: ${b.fields.length} fields (max ${L.maxFields})`);
          b.fields.forEach((f, j) => {
            if (f.text.length === 0 || f.text.length > L.fieldText) problems.push(`${where}: field ${j} has ${f.text.length} chars (1..${L.fieldText})`);
          });
        }
        break;
      case "header":
        if (b.text.type !== "plain_text") problems.push(`${where}: header text must be plain_text`);
        if (b.text.text.length === 0 || b.text.text.length > L.headerText) problems.push(`${where}: header has ${b.text.text.length} chars (1..${L.headerText})`);
        break;
      case "context":
        if (b.elements.length === 0 || b.elements.length > L.contextElements) problems.push(`${where}: ${b.elements.length} elements (1..${L.contextElements})`);
        b.elements.forEach((e, j) => {
          if (e.text.length === 0 || e.text.length > L.contextText) problems.push(`${where}: element ${j} has ${e.text.length} chars`);
        });
        break;
      case "actions": {
        if (b.elements.length === 0 || b.elements.length > L.actionsElements) problems.push(`${where}: ${b.elements.length} elements (1..${L.actionsElements})`);
        const ids = new Set<string>();
        b.elements.forEach((e, j) => {
          if (e.text.text.length === 0 || e.text.text.length > L.buttonText) problems.push(`${where}: button ${j} text has ${e.text.text.length} chars`);
          if (e.url.length > L.buttonUrl) problems.push(`${where}: button ${j} url too long`);
          if (e.action_id.length > L.actionId) problems.push(`${where}: button ${j} action_id too long`);
          if (ids.has(e.action_id)) problems.push(`${where}: duplicate action_id ${e.action_id}`);
          ids.add(e.action_id);
        });
        break;
      }
      case "divider":
        break;
    }
  });
  if (total > L.totalBlockChars) problems.push(`blocks hold ${total} chars in all (budget ${L.totalBlockChars})`);
  return problems;
}
