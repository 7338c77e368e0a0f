import { createHmac } from "node:crypto";
import { issueEvent, toIssueDocument, type IssueDocument } from "../../core/issue-document.js";
import type { Issue } from "../../core/issue.js";

export const SIGNATURE_HEADER = "x-kubecano-signature";
export const TIMESTAMP_HEADER = "x-kubecano-timestamp";
export const DELIVERY_HEADER = "x-kubecano-delivery";
export const EVENT_HEADER = "x-kubecano-event";

export interface WebhookRequest {
  /** Lower-case names: they override the HTTP client's defaults instead of being sent twice. */
  readonly headers: Readonly<Record<string, string>>;
  /** The exact bytes sent (and signed). */
  readonly body: string;
  readonly document: IssueDocument;
}

export interface WebhookRenderOptions {
  /** The destination's name: part of the delivery id. */
  readonly destination: string;
  readonly sentAt: Date;
  readonly version: string;
  readonly secret?: string | undefined;
  /** User headers from params (names in any case). */
  readonly headers?: Readonly<Record<string, string>> | undefined;
}

/**
 * The request for one Issue. Pure: the same Issue and options give the same
 * bytes and signature (golden-file tested).
 *
 * Signature: `X-Kubecano-Signature: sha256=<hex>` where hex is
 * HMAC-SHA256(secret, `${X-Kubecano-Timestamp}.${body}`) over the UTF-8
 * bytes, and the timestamp is Unix seconds of `sentAt`.
 */
export function renderWebhook(issue: Issue, opts: WebhookRenderOptions): WebhookRequest {
  const document = toIssueDocument(issue, opts.sentAt);
  const body = JSON.stringify(document);
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(opts.headers ?? {})) headers[k.toLowerCase()] = v;
  headers["content-type"] = "application/json";
  headers["user-agent"] = `kubecano/${opts.version}`;
  headers[DELIVERY_HEADER] = `${issue.id}/${opts.destination}`;
  headers[EVENT_HEADER] = issueEvent(issue);
  if (opts.secret !== undefined) {
    const timestamp = String(Math.floor(opts.sentAt.getTime() / 1000));
    headers[TIMESTAMP_HEADER] = timestamp;
    headers[SIGNATURE_HEADER] = signature(opts.secret, timestamp, body);
  }
  return { headers, body, document };
}

/** "sha256=<hex HMAC-SHA256 of `${timestamp}.${body}`>". */
export function signature(secret: string, timestamp: string, body: string): string {
  return `sha256=${createHmac("sha256", secret).update(`${timestamp}.${body}`, "utf8").digest("hex")}`;
}
