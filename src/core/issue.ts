import { randomFillSync } from "node:crypto";
import type { Enrichment, Link } from "./blocks.js";
import type { Severity } from "./severity.js";
import type { Subject } from "./subject.js";
import { computeFingerprint } from "./fingerprint.js";

export type IssueStatus = "FIRING" | "RESOLVED";
export type IssueSource = "prometheus" | "kubernetes" | "helm" | "manual";
export type IssueType = "alert" | "event";

/**
 * The central record: one alert or one cluster event, with everything a
 * destination needs to tell a person what happened. Plain JSON (timestamps
 * are ISO-8601 strings) so it can be stored, streamed and replayed as is.
 */
export interface Issue {
  /** Unique per received notification (a repeat gets a new id, the same fingerprint). */
  readonly id: string;
  /** Identity of the incident across repeats and its resolution. */
  readonly fingerprint: string;
  readonly title: string;
  readonly description?: string;
  /** What kind of problem this is: the alertname, or the event reason. */
  readonly aggregationKey: string;
  readonly severity: Severity;
  readonly status: IssueStatus;
  readonly source: IssueSource;
  readonly type: IssueType;
  readonly subject: Subject;
  /** When the problem started (ISO-8601, as precise as the source gave it). */
  readonly startsAt: string;
  /** When it ended; absent while firing. */
  readonly endsAt?: string;
  /** When kubecano received it. */
  readonly receivedAt: string;
  readonly links: readonly Link[];
  /** Alertmanager's groupKey, when the Issue came from a group notification. */
  readonly groupKey?: string;
  readonly clusterName: string;
  readonly enrichments: readonly Enrichment[];
}

export interface NewIssue {
  readonly title: string;
  readonly description?: string | undefined;
  readonly aggregationKey: string;
  readonly severity: Severity;
  readonly status: IssueStatus;
  readonly source: IssueSource;
  readonly type: IssueType;
  readonly subject: Subject;
  readonly startsAt: string;
  readonly endsAt?: string | undefined;
  readonly links?: readonly Link[];
  readonly groupKey?: string | undefined;
  readonly clusterName: string;
  readonly fingerprint?: string | undefined;
  readonly enrichments?: readonly Enrichment[];
  readonly receivedAt?: string;
}

/**
 * A UUID version 7 (RFC 9562): the creation time in ms, then 74 random bits.
 * Time-ordered rather than random (v4) because the durable store indexes
 * Issues and deliveries by id: ids that arrive in order land in the same
 * few index pages, so a commit writes a handful of pages instead of one
 * random page per Issue per index (most of the store's cost per alert).
 */
export function timeOrderedId(ms: number = Date.now()): string {
  // After "tttttttt-tttt-7": 12 random bits, "-", the RFC variant (binary 10) and 14 random bits, "-", 48 random bits.
  if (randomAt === RANDOM_POOL.length) {
    randomFillSync(RANDOM_POOL);
    randomAt = 0;
  }
  const b = RANDOM_POOL;
  const o = randomAt;
  randomAt += RANDOM_BYTES_PER_ID;
  const randA = HEX_DIGIT[b[o]! & 0x0f]! + HEX[b[o + 1]!]!;
  const variant = HEX[(b[o + 2]! & 0x3f) | 0x80]! + HEX[b[o + 3]!]!;
  const node = HEX[b[o + 4]!]! + HEX[b[o + 5]!]! + HEX[b[o + 6]!]! + HEX[b[o + 7]!]! + HEX[b[o + 8]!]! + HEX[b[o + 9]!]!;
  return `${timePrefix(ms)}${randA}-${variant}-${node}`;
}

/** Random bytes for ids, from the CSPRNG (as randomUUID's are), drawn a few hundred ids at a time. */
const RANDOM_BYTES_PER_ID = 10;
const RANDOM_POOL = new Uint8Array(RANDOM_BYTES_PER_ID * 512);
let randomAt = RANDOM_POOL.length;
const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"));
const HEX_DIGIT = Array.from({ length: 16 }, (_, i) => i.toString(16));

/** "tttttttt-tttt-7" for a ms; the last one is kept, since a burst of Issues shares its ms. */
function timePrefix(ms: number): string {
  if (ms === lastPrefixMs) return lastPrefix;
  const t = Math.max(0, Math.floor(ms)).toString(16).padStart(12, "0").slice(-12);
  lastPrefix = `${t.slice(0, 8)}-${t.slice(8)}-7`;
  lastPrefixMs = ms;
  return lastPrefix;
}

let lastPrefixMs = Number.NaN;
let lastPrefix = "";

/** isoTime, kept for the last ms asked (Issues of one webhook are received in the same ms). */
function isoAt(ms: number): string {
  if (ms !== lastIsoMs) {
    lastIso = isoTime(ms);
    lastIsoMs = ms;
  }
  return lastIso;
}

/**
 * `new Date(ms).toISOString()` ("2026-11-26T10:38:06.184Z"), without the
 * Date: on Node 20 toISOString costs about a microsecond, as much as
 * converting a whole alert. Years 0000-9999 are formatted here; other times
 * (and NaN, which throws) are left to Date.
 */
export function isoTime(ms: number): string {
  if (!(ms >= MIN_ISO_MS && ms <= MAX_ISO_MS)) return new Date(ms).toISOString();
  const t = Math.trunc(ms);
  const days = Math.floor(t / 86_400_000);
  let rest = t - days * 86_400_000;
  const hour = Math.floor(rest / 3_600_000);
  rest -= hour * 3_600_000;
  const minute = Math.floor(rest / 60_000);
  rest -= minute * 60_000;
  const second = Math.floor(rest / 1000);
  const milli = rest - second * 1000;
  // Days since 1970-01-01 → civil date (H. Hinnant's civil_from_days, proleptic Gregorian).
  const z = days + 719_468;
  const era = Math.floor(z / 146_097);
  const doe = z - era * 146_097;
  const yoe = Math.floor((doe - Math.floor(doe / 1460) + Math.floor(doe / 36_524) - Math.floor(doe / 146_096)) / 365);
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
  const mp = Math.floor((5 * doy + 2) / 153);
  const day = doy - Math.floor((153 * mp + 2) / 5) + 1;
  const month = mp < 10 ? mp + 3 : mp - 9;
  const year = yoe + era * 400 + (month <= 2 ? 1 : 0);
  return `${TWO_DIGITS[Math.floor(year / 100)]}${TWO_DIGITS[year % 100]}-${TWO_DIGITS[month]}-${TWO_DIGITS[day]}T${TWO_DIGITS[hour]}:${TWO_DIGITS[minute]}:${TWO_DIGITS[second]}.${THREE_DIGITS[milli]}Z`;
}

const MIN_ISO_MS = Date.parse("0000-01-01T00:00:00.000Z");
const MAX_ISO_MS = Date.parse("9999-12-31T23:59:59.999Z");
const TWO_DIGITS = Array.from({ length: 100 }, (_, i) => String(i).padStart(2, "0"));
const THREE_DIGITS = Array.from({ length: 1000 }, (_, i) => String(i).padStart(3, "0"));

let lastIsoMs = Number.NaN;
let lastIso = "";

/** Fills in id, receivedAt and (when the source has none) the fingerprint. */
export function createIssue(fields: NewIssue, now?: Date): Issue {
  const fingerprint =
    fields.fingerprint !== undefined && fields.fingerprint !== ""
      ? fields.fingerprint
      : computeFingerprint(fields.source, fields.subject, fields.aggregationKey);
  const ms = Date.now();
  // Built in one go, optional fields last and only when present: the key order is the Issue's JSON form.
  const issue: { -readonly [K in keyof Issue]: Issue[K] } = {
    id: timeOrderedId(ms),
    fingerprint,
    title: fields.title,
    aggregationKey: fields.aggregationKey,
    severity: fields.severity,
    status: fields.status,
    source: fields.source,
    type: fields.type,
    subject: fields.subject,
    startsAt: fields.startsAt,
    receivedAt: fields.receivedAt ?? (now !== undefined ? now.toISOString() : isoAt(ms)),
    links: fields.links ?? [],
    clusterName: fields.clusterName,
    enrichments: fields.enrichments ?? [],
  };
  if (fields.description !== undefined && fields.description !== "") issue.description = fields.description;
  if (fields.endsAt !== undefined) issue.endsAt = fields.endsAt;
  if (fields.groupKey !== undefined) issue.groupKey = fields.groupKey;
  return issue;
}

/** A copy of the Issue with one more enrichment. Issues are never mutated in place. */
export function withEnrichment(issue: Issue, enrichment: Enrichment): Issue {
  return { ...issue, enrichments: [...issue.enrichments, enrichment] };
}

/** "12m", "3h 4m", "2d 1h": how long something lasted, for people. */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return "0s";
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m`;
  const h = Math.floor(m / 60);
  if (h < 48) return m % 60 === 0 ? `${h}h` : `${h}h ${m % 60}m`;
  const d = Math.floor(h / 24);
  return h % 24 === 0 ? `${d}d` : `${d}d ${h % 24}h`;
}
