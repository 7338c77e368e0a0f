import { z } from "zod";
import { isoTime } from "../../core/issue.js";

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
  const f = utcFields(ts);
  if (f !== undefined) return Date.UTC(f.year, f.month - 1, f.day, f.hour, f.minute, f.second, f.ms);
  return parseTimestampSlow(ts);
}

/**
 * The timestamp as `Date.toISOString()` gives it (ms precision, UTC), or
 * undefined when it does not parse: `new Date(parseTimestamp(ts)).toISOString()`
 * without the Date. The common form (what Alertmanager sends) is answered
 * from the text alone, and a timestamp already in that form is returned as is.
 */
export function isoMillis(ts: string): string | undefined {
  if (utcFields(ts) !== undefined) {
    // 'T', 'Z', in-range fields: the date and time part stays, the fraction is cut or padded to 3 digits.
    const n = ts.length;
    if (n === 24 && ts.charCodeAt(19) === 46) return ts;
    if (n === 20) return `${ts.slice(0, 19)}.000Z`;
    return n > 24 ? `${ts.slice(0, 23)}Z` : `${ts.slice(0, n - 1)}${"000".slice(n - 21)}Z`;
  }
  const ms = parseTimestampSlow(ts);
  return Number.isFinite(ms) ? isoTime(ms) : undefined;
}

interface UtcFields {
  year: number;
  month: number;
  day: number;
  hour: number;
  minute: number;
  second: number;
  ms: number;
}

const fields: UtcFields = { year: 0, month: 0, day: 0, hour: 0, minute: 0, second: 0, ms: 0 };

/**
 * The fields of `YYYY-MM-DDTHH:MM:SS[.fraction]Z` with every field in range
 * (year 100 on, so Date.UTC takes it as it is; no leap second; no 24:00),
 * or undefined for any other text, which parseTimestampSlow then decides:
 * for the text accepted here both give the same instant. The result is one
 * shared object, valid until the next call.
 */
function utcFields(ts: string): UtcFields | undefined {
  const n = ts.length;
  if (n < 20 || ts.charCodeAt(n - 1) !== 90 /* Z */ || ts.charCodeAt(4) !== 45 || ts.charCodeAt(7) !== 45 || ts.charCodeAt(10) !== 84 /* T */ || ts.charCodeAt(13) !== 58 || ts.charCodeAt(16) !== 58) return undefined;
  const year = digits(ts, 0, 4);
  const month = digits(ts, 5, 2);
  const day = digits(ts, 8, 2);
  const hour = digits(ts, 11, 2);
  const minute = digits(ts, 14, 2);
  const second = digits(ts, 17, 2);
  if (year < 100 || month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month) || hour < 0 || hour > 23 || minute < 0 || minute > 59 || second < 0 || second > 59) return undefined;
  let ms = 0;
  if (n > 20) {
    if (ts.charCodeAt(19) !== 46 /* . */ || n === 21) return undefined;
    for (let i = 20; i < n - 1; i++) {
      const c = ts.charCodeAt(i) - 48;
      if (c < 0 || c > 9) return undefined;
      if (i < 23) ms = ms * 10 + c;
    }
    for (let i = Math.min(n - 1, 23); i < 23; i++) ms *= 10;
  }
  fields.year = year;
  fields.month = month;
  fields.day = day;
  fields.hour = hour;
  fields.minute = minute;
  fields.second = second;
  fields.ms = ms;
  return fields;
}

/** The decimal number of `len` digits at `at`, or -1 when one is not a digit. */
function digits(s: string, at: number, len: number): number {
  let v = 0;
  for (let i = at; i < at + len; i++) {
    const c = s.charCodeAt(i) - 48;
    if (c < 0 || c > 9) return -1;
    v = v * 10 + c;
  }
  return v;
}

function daysInMonth(year: number, month: number): number {
  if (month === 2) return year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0) ? 29 : 28;
  return month === 4 || month === 6 || month === 9 || month === 11 ? 30 : 31;
}

function parseTimestampSlow(ts: string): number {
  const m = /^(.*?:\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/.exec(ts.replace(" ", "T"));
  if (m === null) return Number.NaN;
  const frac = m[2] !== undefined ? m[2].slice(0, 4).padEnd(4, "0") : "";
  return Date.parse(`${m[1]}${frac}${m[3]}`);
}

/** Go's zero time, which Alertmanager sends as endsAt of firing alerts. */
export function isZeroTime(ms: number): boolean {
  return !Number.isFinite(ms) || ms <= ZERO_TIME_END;
}

const ZERO_TIME_END = Date.parse("0001-01-02T00:00:00Z");

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
    if (typeof starts !== "string" || !isRfc3339(starts)) return false;
    const ends = a["endsAt"];
    if (ends !== undefined && (typeof ends !== "string" || !isRfc3339(ends))) return false;
    if (!optString(a["generatorURL"]) || !optString(a["fingerprint"])) return false;
  }
  return true;
}

/** RFC3339.test, answered without the regex for the usual form (which it accepts). */
function isRfc3339(ts: string): boolean {
  return utcFields(ts) !== undefined || RFC3339.test(ts);
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
