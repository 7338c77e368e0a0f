import type { Block, Enrichment, Link } from "./blocks.js";
import type { Issue } from "./issue.js";

/**
 * The `kubecano.issue/v1` document: an Issue as the webhook destination
 * POSTs it and the file destination appends it (one JSON line), and as
 * `kubecano replay` reads it back. Its JSON Schema is
 * docs/webhook-schema.v1.json; a change to this shape is a change to that
 * published contract.
 *
 * Rules receivers rely on: every documented key is always present (a value
 * that is not set is `null`, never a missing key); keys may be added within
 * v1 (receivers ignore keys they do not know); removing or changing a key
 * means a new version string.
 */
export const ISSUE_DOCUMENT_VERSION = "kubecano.issue/v1";

export type IssueEvent = "issue.firing" | "issue.resolved";

export interface IssueDocument {
  readonly version: typeof ISSUE_DOCUMENT_VERSION;
  readonly event: IssueEvent;
  /** When this document was produced (ISO-8601, UTC). */
  readonly sentAt: string;
  readonly issue: IssueDocumentIssue;
}

export interface IssueDocumentIssue {
  readonly id: string;
  readonly fingerprint: string;
  readonly title: string;
  readonly description: string | null;
  readonly aggregationKey: string;
  readonly severity: Issue["severity"];
  readonly status: Issue["status"];
  readonly source: Issue["source"];
  readonly type: Issue["type"];
  readonly subject: {
    readonly kind: string;
    readonly name: string;
    readonly namespace: string | null;
    readonly node: string | null;
    readonly container: string | null;
    readonly labels: Readonly<Record<string, string>>;
    readonly annotations: Readonly<Record<string, string>>;
  };
  readonly startsAt: string;
  readonly endsAt: string | null;
  readonly receivedAt: string;
  readonly links: readonly DocumentLink[];
  readonly groupKey: string | null;
  readonly clusterName: string;
  readonly enrichments: readonly {
    readonly title: string;
    readonly source: string | null;
    readonly blocks: readonly DocumentBlock[];
  }[];
}

export interface DocumentLink {
  readonly name: string;
  readonly url: string;
  readonly kind: NonNullable<Link["kind"]> | null;
}

/** Blocks as in src/core/blocks.ts, with every optional field present (null when unset). */
export type DocumentBlock =
  | { readonly type: "markdown"; readonly text: string }
  | { readonly type: "header"; readonly text: string }
  | { readonly type: "divider" }
  | { readonly type: "list"; readonly items: readonly string[] }
  | { readonly type: "links"; readonly links: readonly DocumentLink[] }
  | { readonly type: "table"; readonly title: string | null; readonly headers: readonly string[]; readonly rows: readonly (readonly string[])[] }
  | { readonly type: "file"; readonly filename: string; readonly title: string | null; readonly content: string; readonly excerptLines: number | null }
  | { readonly type: "json"; readonly title: string | null; readonly data: unknown };

export function issueEvent(issue: Pick<Issue, "status">): IssueEvent {
  return issue.status === "RESOLVED" ? "issue.resolved" : "issue.firing";
}

/** The v1 document of an Issue. Pure: the same Issue and `sentAt` give the same document. */
export function toIssueDocument(issue: Issue, sentAt: Date): IssueDocument {
  const s = issue.subject;
  return {
    version: ISSUE_DOCUMENT_VERSION,
    event: issueEvent(issue),
    sentAt: sentAt.toISOString(),
    issue: {
      id: issue.id,
      fingerprint: issue.fingerprint,
      title: issue.title,
      description: issue.description ?? null,
      aggregationKey: issue.aggregationKey,
      severity: issue.severity,
      status: issue.status,
      source: issue.source,
      type: issue.type,
      subject: {
        kind: s.kind,
        name: s.name,
        namespace: s.namespace ?? null,
        node: s.node ?? null,
        container: s.container ?? null,
        labels: { ...s.labels },
        annotations: { ...s.annotations },
      },
      startsAt: issue.startsAt,
      endsAt: issue.endsAt ?? null,
      receivedAt: issue.receivedAt,
      links: issue.links.map(documentLink),
      groupKey: issue.groupKey ?? null,
      clusterName: issue.clusterName,
      enrichments: issue.enrichments.map((e: Enrichment) => ({ title: e.title, source: e.source ?? null, blocks: e.blocks.map(documentBlock) })),
    },
  };
}

function documentLink(l: Link): DocumentLink {
  return { name: l.name, url: l.url, kind: l.kind ?? null };
}

function documentBlock(b: Block): DocumentBlock {
  switch (b.type) {
    case "markdown":
    case "header":
      return { type: b.type, text: b.text };
    case "divider":
      return { type: "divider" };
    case "list":
      return { type: "list", items: [...b.items] };
    case "links":
      return { type: "links", links: b.links.map(documentLink) };
    case "table":
      return { type: "table", title: b.title ?? null, headers: [...b.headers], rows: b.rows.map((r) => [...r]) };
    case "file":
      return { type: "file", filename: b.filename, title: b.title ?? null, content: b.content, excerptLines: b.excerptLines ?? null };
    case "json":
      // undefined is not JSON: a json block whose data is undefined says null.
      return { type: "json", title: b.title ?? null, data: b.data === undefined ? null : b.data };
  }
}
