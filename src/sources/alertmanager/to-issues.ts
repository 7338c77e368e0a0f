import type { Link } from "../../core/blocks.js";
import { createIssue, isoTime, type Issue } from "../../core/issue.js";
import { mapSeverity, type Severity } from "../../core/severity.js";
import { subjectFromLabels } from "../../core/subject.js";
import { isoMillis, isZeroTime, parseTimestamp, type AlertmanagerAlert, type WebhookPayload } from "./schema.js";

export interface AlertmanagerOptions {
  readonly clusterName: string;
  readonly severityMap?: Readonly<Record<string, Severity>>;
  readonly now?: Date;
}

/** Annotations that carry a dashboard link, in the order they are looked at. */
const DASHBOARD_ANNOTATIONS = ["dashboard_url", "grafana_url", "dashboard"] as const;
const RUNBOOK_ANNOTATIONS = ["runbook_url", "runbook"] as const;

/** One Issue per alert in the group notification. Pure: no I/O. */
export function alertmanagerToIssues(payload: WebhookPayload, opts: AlertmanagerOptions): Issue[] {
  return payload.alerts.map((alert) => alertToIssue(alert, payload, opts));
}

export function alertToIssue(alert: AlertmanagerAlert, payload: Pick<WebhookPayload, "externalURL" | "groupKey" | "commonAnnotations">, opts: AlertmanagerOptions): Issue {
  const labels = alert.labels;
  const annotations = alert.annotations ?? {};
  const alertname = nonEmpty(labels["alertname"]) ?? "UnnamedAlert";
  const status = alert.status === "resolved" ? "RESOLVED" : "FIRING";
  return createIssue(
    {
      title: nonEmpty(annotations["summary"]) ?? alertname,
      description: nonEmpty(annotations["description"]) ?? nonEmpty(annotations["message"]),
      aggregationKey: alertname,
      severity: mapSeverity(labels["severity"], opts.severityMap),
      status,
      source: "prometheus",
      type: "alert",
      subject: subjectFromLabels(labels, annotations),
      startsAt: isoMillis(alert.startsAt) ?? alert.startsAt,
      endsAt: status === "RESOLVED" ? resolvedAt(alert.endsAt) : undefined,
      links: alertLinks(alert, payload.externalURL),
      groupKey: nonEmpty(payload.groupKey),
      clusterName: opts.clusterName,
      fingerprint: nonEmpty(alert.fingerprint),
    },
    opts.now,
  );
}

/** The end of a resolved alert, unless it is Go's zero time (or does not parse). */
function resolvedAt(endsAt: string | undefined): string | undefined {
  if (endsAt === undefined) return undefined;
  const ms = parseTimestamp(endsAt);
  return isZeroTime(ms) ? undefined : isoTime(ms);
}

/** Graph, runbook, dashboard and silence links; only http(s) URLs survive. */
export function alertLinks(alert: AlertmanagerAlert, externalURL: string | undefined): Link[] {
  const annotations = alert.annotations ?? NO_ANNOTATIONS;
  const links: Link[] = [];
  for (const a of RUNBOOK_ANNOTATIONS) addLink(links, "Runbook", nonEmpty(annotations[a]), "runbook");
  addLink(links, "Source graph", nonEmpty(alert.generatorURL), "graph");
  for (const a of DASHBOARD_ANNOTATIONS) addLink(links, "Dashboard", nonEmpty(annotations[a]), "dashboard");
  const ext = nonEmpty(externalURL);
  if (ext !== undefined) {
    const url = silenceUrl(ext, alert.labels);
    // isSafeUrl(url), with the part before '#' judged once per externalURL: every silence link of one Alertmanager shares it.
    if (url.length <= MAX_URL_LENGTH && silenceBaseIsSafe(ext) && !links.some((l) => l.url === url)) links.push({ name: "Silence", url, kind: "silence" });
  }
  return links;
}

let lastExternalURL: string | undefined;
let lastExternalURLSafe = false;

/** Whether silence links under this externalURL pass isSafeUrl's scheme check (their length aside). */
function silenceBaseIsSafe(externalURL: string): boolean {
  if (externalURL !== lastExternalURL) {
    lastExternalURLSafe = isSafeUrl(silenceUrl(externalURL, {}));
    lastExternalURL = externalURL;
  }
  return lastExternalURLSafe;
}

const NO_ANNOTATIONS: Readonly<Record<string, string>> = Object.freeze({});

function addLink(links: Link[], name: string, url: string | undefined, kind: Link["kind"]): void {
  if (url === undefined || !isSafeUrl(url)) return;
  for (const l of links) if (l.url === url) return;
  links.push({ name, url, kind });
}

/**
 * Alertmanager UI link that opens a new silence pre-filled with the alert's
 * labels: `{externalURL}/#/silences/new?filter={a="b",c="d"}`.
 */
export function silenceUrl(externalURL: string, labels: Readonly<Record<string, string>>): string {
  const keys = Object.keys(labels);
  // Alertmanager (Go) sends labels sorted already; sort only when they are not.
  for (let i = 1; i < keys.length; i++) {
    if (keys[i - 1]! > keys[i]!) {
      keys.sort();
      break;
    }
  }
  const base = externalURL.charCodeAt(externalURL.length - 1) === 47 /* / */ ? externalURL.replace(/\/+$/, "") : externalURL;
  // encodeURIComponent of `{k1="v1",k2="v2"}`, piece by piece (the same text: the pieces are split at ASCII
  // characters, so no surrogate pair is cut); label names and most values need no encoding at all.
  let url = `${base}/#/silences/new?filter=%7B`;
  for (let i = 0; i < keys.length; i++) {
    const k = keys[i]!;
    const v = labels[k] ?? "";
    url += `${i === 0 ? "" : "%2C"}${URI_PLAIN.test(k) ? k : encodeURIComponent(wellFormed(k))}%3D%22${URI_PLAIN.test(v) ? v : encodeURIComponent(wellFormed(escapeMatcherValue(v)))}%22`;
  }
  return `${url}%7D`;
}

/** Text that encodeURIComponent leaves as it is (and that has nothing for escapeMatcherValue to escape). */
const URI_PLAIN = /^[\w.!~*'()-]*$/;

/** Lone surrogates (valid in JSON as \ud800 escapes) become U+FFFD: encodeURIComponent throws on them. */
function wellFormed(s: string): string {
  // String.prototype.isWellFormed/toWellFormed (ES2024; Node 20 has them, the ES2023 lib does not declare them).
  const w = s as string & { isWellFormed(): boolean; toWellFormed(): string };
  return w.isWellFormed() ? s : w.toWellFormed();
}

const MATCHER_SPECIAL = /[\\"\n]/;

function escapeMatcherValue(v: string): string {
  if (!MATCHER_SPECIAL.test(v)) return v;
  return v.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}

/** http(s) only, and short enough for every destination's button limit. */
export function isSafeUrl(url: string): boolean {
  if (url.length > MAX_URL_LENGTH) return false;
  // A fragment never makes a URL invalid nor changes its scheme, so the part
  // before '#' decides; that part repeats (every silence link of one
  // Alertmanager shares it), so its answer is kept.
  const hash = url.indexOf("#");
  const base = hash >= 0 ? url.slice(0, hash) : url;
  let ok = safeBases.get(base);
  if (ok === undefined) {
    ok = parsesAsHttp(base);
    if (safeBases.size >= 256) safeBases.clear();
    safeBases.set(base, ok);
  }
  return ok;
}

const safeBases = new Map<string, boolean>();
const MAX_URL_LENGTH = 3000;

function parsesAsHttp(url: string): boolean {
  try {
    const u = new URL(url);
    return u.protocol === "http:" || u.protocol === "https:";
  } catch {
    return false;
  }
}

function nonEmpty(v: string | undefined): string | undefined {
  return v === undefined || v.trim() === "" ? undefined : v;
}
