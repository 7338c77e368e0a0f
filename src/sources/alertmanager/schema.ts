import { z } from "zod";

/**
 * Alertmanager webhook payload, version "4" (notify/webhook/webhook.go).
 * Objects are loose: newer Alertmanagers add fields (notification_reason in
 * 0.32, routeLabels in 0.34) and we must keep accepting them.
 */

const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/;

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
