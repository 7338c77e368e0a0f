import { z } from "zod";

/**
 * Alertmanager webhook payload, version "4" (notify/webhook/webhook.go).
 * Objects are loose: newer Alertmanagers add fields (notification_reason in
 * 0.32, routeLabels in 0.34) and we must keep accepting them.
 */

export const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/;

const stringMap = z.record(z.string(), z.string());

export const timestampSchema = z.string().regex(RFC3339, { message: "expected an RFC 3339 timestamp" });

export const alertSchema = z.looseObject({
  status: z.enum(["firing", "resolved"]),
  labels: stringMap,
  annotations: stringMap.optional(),
  startsAt: timestampSchema,
  endsAt: timestampSchema.optional(),
  generatorURL: z.string().optional(),
  fingerprint: z.string().optional(),
});

export const webhookPayloadSchema = z.looseObject({
  version: z.string().optional(),
  groupKey: z.string().optional(),
  truncatedAlerts: z.number().int().nonnegative().optional(),
  status: z.enum(["firing", "resolved"]).optional(),
  receiver: z.string().optional(),
  groupLabels: stringMap.optional(),
  commonLabels: stringMap.optional(),
  commonAnnotations: stringMap.optional(),
  externalURL: z.string().optional(),
  alerts: z.array(alertSchema),
});

export type AlertmanagerAlert = z.infer<typeof alertSchema>;
export type WebhookPayload = z.infer<typeof webhookPayloadSchema>;

/**
 * Parses an RFC 3339 timestamp (which may carry nanoseconds) to epoch ms.
 * Date.parse is not trusted with more than 3 fractional digits.
 */
export function parseTimestamp(ts: string): number {
  const m = /^(.*?:\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/.exec(ts.replace(" ", "T"));
  if (m === null) return Number.NaN;
  const frac = m[2] !== undefined ? m[2].slice(0, 4).padEnd(4, "0") : "";
  return Date.parse(`${m[1]}${frac}${m[3]}`);
}

/** Go's zero time, which Alertmanager sends as endsAt of firing alerts. */
export function isZeroTime(ms: number): boolean {
  return !Number.isFinite(ms) || ms <= Date.parse("0001-01-02T00:00:00Z");
}

/**
 * The same checks as webhookPayloadSchema, by hand, for the hot path: true
 * only for values the schema accepts. When it says false, the schema runs to
 * say precisely what is wrong; when true, the value is used as it is (the
 * schema would only have copied it).
 */
export function isWebhookPayload(v: unknown): v is WebhookPayload {
  if (!isRecord(v)) return false;
  if (!optString(v["version"]) || !optString(v["groupKey"]) || !optString(v["receiver"]) || !optString(v["externalURL"])) return false;
  const t = v["truncatedAlerts"];
  if (t !== undefined && !(typeof t === "number" && Number.isInteger(t) && t >= 0)) return false;
  const st = v["status"];
  if (st !== undefined && st !== "firing" && st !== "resolved") return false;
  if (!optStringMap(v["groupLabels"]) || !optStringMap(v["commonLabels"]) || !optStringMap(v["commonAnnotations"])) return false;
  const alerts = v["alerts"];
  if (!Array.isArray(alerts)) return false;
  for (const a of alerts) {
    if (!isRecord(a)) return false;
    if (a["status"] !== "firing" && a["status"] !== "resolved") return false;
    if (!isStringMap(a["labels"]) || !optStringMap(a["annotations"])) return false;
    const starts = a["startsAt"];
    if (typeof starts !== "string" || !RFC3339.test(starts)) return false;
    const ends = a["endsAt"];
    if (ends !== undefined && (typeof ends !== "string" || !RFC3339.test(ends))) return false;
    if (!optString(a["generatorURL"]) || !optString(a["fingerprint"])) return false;
  }
  return true;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function optString(v: unknown): boolean {
  return v === undefined || typeof v === "string";
}

function isStringMap(v: unknown): boolean {
  if (!isRecord(v)) return false;
  // A "__proto__" key (possible from JSON) is left to the schema, which drops it.
  if (Object.prototype.hasOwnProperty.call(v, "__proto__")) return false;
  for (const k in v) if (typeof v[k] !== "string") return false;
  return true;
}

function optStringMap(v: unknown): boolean {
  return v === undefined || isStringMap(v);
}
