import { z } from "zod";
import type { Block, Enrichment, Link } from "../core/blocks.js";
import { ISSUE_DOCUMENT_VERSION } from "../core/issue-document.js";
import type { Issue } from "../core/issue.js";
import { SEVERITIES } from "../core/severity.js";
import { formatZodIssues, PayloadError, type ParseResult } from "./alertmanager/parse.js";

/**
 * Reads a `kubecano.issue/v1` document (a webhook body kubecano sent, or a
 * line the file destination wrote) back into the Issue it carries, for
 * `kubecano replay`. Unknown keys are ignored (v1 may gain keys); a document
 * of another version is refused with its version named.
 */

const nullable = <T extends z.ZodType>(t: T) => t.nullable().optional();
const stringMap = z.record(z.string(), z.string());

const linkSchema = z.object({
  name: z.string(),
  url: z.string(),
  kind: nullable(z.enum(["graph", "runbook", "silence", "dashboard", "other"])),
});

const blockSchema = z.discriminatedUnion("type", [
  z.object({ type: z.literal("markdown"), text: z.string() }),
  z.object({ type: z.literal("header"), text: z.string() }),
  z.object({ type: z.literal("divider") }),
  z.object({ type: z.literal("list"), items: z.array(z.string()) }),
  z.object({ type: z.literal("links"), links: z.array(linkSchema) }),
  z.object({ type: z.literal("table"), title: nullable(z.string()), headers: z.array(z.string()), rows: z.array(z.array(z.string())) }),
  z.object({ type: z.literal("file"), filename: z.string(), title: nullable(z.string()), content: z.string(), excerptLines: nullable(z.number().int().min(0)) }),
  z.object({ type: z.literal("json"), title: nullable(z.string()), data: z.unknown() }),
]);

const issueSchema = z.object({
  id: z.string().min(1),
  fingerprint: z.string().min(1),
  title: z.string(),
  description: nullable(z.string()),
  aggregationKey: z.string(),
  severity: z.enum(SEVERITIES),
  status: z.enum(["FIRING", "RESOLVED"]),
  source: z.enum(["prometheus", "kubernetes", "helm", "manual"]),
  type: z.enum(["alert", "event"]),
  subject: z.object({
    kind: z.string(),
    name: z.string(),
    namespace: nullable(z.string()),
    node: nullable(z.string()),
    container: nullable(z.string()),
    labels: stringMap,
    annotations: stringMap,
  }),
  startsAt: z.string().min(1),
  endsAt: nullable(z.string()),
  receivedAt: nullable(z.string()),
  links: z.array(linkSchema),
  groupKey: nullable(z.string()),
  clusterName: z.string(),
  enrichments: z.array(z.object({ title: z.string(), source: nullable(z.string()), blocks: z.array(blockSchema) })),
});

const documentSchema = z.object({
  version: z.literal(ISSUE_DOCUMENT_VERSION),
  event: z.enum(["issue.firing", "issue.resolved"]),
  sentAt: z.string(),
  issue: issueSchema,
});

/** Whether a parsed JSON value claims to be an Issue document (of any version). */
export function looksLikeIssueDocument(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v) && typeof (v as { version?: unknown }).version === "string" && (v as { version: string }).version.startsWith("kubecano.issue/");
}

/** The Issue a v1 document carries, as it was when the document was written. */
export function parseIssueDocument(v: unknown, now: Date = new Date()): ParseResult<Issue> {
  if (looksLikeIssueDocument(v) && v["version"] !== ISSUE_DOCUMENT_VERSION) {
    return { ok: false, error: new PayloadError("schema", `version ${JSON.stringify(String(v["version"]).slice(0, 60))} is not supported: this kubecano reads ${ISSUE_DOCUMENT_VERSION}`) };
  }
  const r = documentSchema.safeParse(v);
  if (!r.success) return { ok: false, error: new PayloadError("schema", formatZodIssues(r.error.issues)) };
  const d = r.data.issue;
  if ((r.data.event === "issue.resolved") !== (d.status === "RESOLVED")) {
    return { ok: false, error: new PayloadError("schema", `event ${r.data.event} does not agree with issue.status ${d.status}`) };
  }
  const s = d.subject;
  const issue: Issue = {
    id: d.id,
    fingerprint: d.fingerprint,
    title: d.title,
    ...(d.description != null ? { description: d.description } : {}),
    aggregationKey: d.aggregationKey,
    severity: d.severity,
    status: d.status,
    source: d.source,
    type: d.type,
    subject: {
      kind: s.kind,
      name: s.name,
      ...(s.namespace != null ? { namespace: s.namespace } : {}),
      ...(s.node != null ? { node: s.node } : {}),
      ...(s.container != null ? { container: s.container } : {}),
      labels: s.labels,
      annotations: s.annotations,
    },
    startsAt: d.startsAt,
    ...(d.endsAt != null ? { endsAt: d.endsAt } : {}),
    receivedAt: d.receivedAt ?? now.toISOString(),
    links: d.links.map(link),
    ...(d.groupKey != null ? { groupKey: d.groupKey } : {}),
    clusterName: d.clusterName,
    enrichments: d.enrichments.map((e): Enrichment => ({ title: e.title, ...(e.source != null ? { source: e.source } : {}), blocks: e.blocks.map(block) })),
  };
  return { ok: true, value: issue };
}

function link(l: z.output<typeof linkSchema>): Link {
  return { name: l.name, url: l.url, ...(l.kind != null ? { kind: l.kind } : {}) };
}

function block(b: z.output<typeof blockSchema>): Block {
  switch (b.type) {
    case "markdown":
    case "header":
      return { type: b.type, text: b.text };
    case "divider":
      return { type: "divider" };
    case "list":
      return { type: "list", items: b.items };
    case "links":
      return { type: "links", links: b.links.map(link) };
    case "table":
      return { type: "table", ...(b.title != null ? { title: b.title } : {}), headers: b.headers, rows: b.rows };
    case "file":
      return { type: "file", filename: b.filename, ...(b.title != null ? { title: b.title } : {}), content: b.content, ...(b.excerptLines != null ? { excerptLines: b.excerptLines } : {}) };
    case "json":
      return { type: "json", ...(b.title != null ? { title: b.title } : {}), data: b.data };
  }
}
