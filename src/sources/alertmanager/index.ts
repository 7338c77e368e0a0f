export { parseWebhookBody, validatePayload, PayloadError, type ParseResult } from "./parse.js";
export { alertmanagerToIssues, alertToIssue, silenceUrl } from "./to-issues.js";
export type { WebhookPayload, AlertmanagerAlert } from "./schema.js";
