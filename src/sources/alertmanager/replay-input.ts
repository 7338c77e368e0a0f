import type { Issue } from "../../core/issue.js";
import { looksLikeIssueDocument, parseIssueDocument } from "../issue-document.js";
import { formatZodIssues, parseJson, PayloadError, validatePayload, type ParseResult } from "./parse.js";
import { alertSchema, type WebhookPayload } from "./schema.js";

/**
 * What `kubecano replay` accepts, in one file or on stdin:
 * - an Alertmanager webhook body (`{ alerts: [...], ... }`);
 * - a captured request `{ headers, body }` (what `listen --record` writes;
 *   `body` may be the JSON object or its text);
 * - one alert object (`{ labels, annotations, ... }`);
 * - a `kubecano.issue/v1` document (a webhook destination's body, a file
 *   destination's line): the Issue it carries, as it was sent;
 * - a JSON array of alerts, of webhook bodies or of Issue documents;
 * - NDJSON: one of the above per line.
 * Hand-written alerts may leave out `status` (firing) and `startsAt` (now).
 */
export type ReplayItem =
  | {
      /** "file.json", "file.ndjson:3", "file.json[2]": where it came from, for messages. */
      readonly where: string;
      readonly payload: WebhookPayload;
      readonly issue?: undefined;
    }
  | {
      readonly where: string;
      /** An Issue recorded by kubecano itself (already enriched when it was recorded). */
      readonly issue: Issue;
      readonly payload?: undefined;
    };

export function parseReplayText(text: string, source: string, now: Date = new Date()): ParseResult<ReplayItem[]> {
  // Not trimmed: line numbers in messages are the file's.
  const body = text.replace(/^\uFEFF/, "");
  if (body.trim() === "") return fail("json", `${source}: is empty`);
  const whole = parseJson(body);
  if (whole.ok) return fromValue(whole.value, source, now);
  // Not one JSON document: NDJSON, if it is named so or its first line is a document of its own.
  // A pretty-printed file with a syntax error is not NDJSON: its error is reported at its own line and column.
  const lines = body.split(/\r?\n/);
  const first = lines.find((l) => l.trim() !== "");
  if (lines.filter((l) => l.trim() !== "").length > 1 && first !== undefined && (/\.(ndjson|jsonl)$/i.test(source) || parseJson(first).ok)) {
    const items: ReplayItem[] = [];
    for (const [i, line] of lines.entries()) {
      if (line.trim() === "") continue;
      const where = `${source}:${i + 1}`;
      const v = parseJson(line);
      if (!v.ok) return fail("json", `${where}: ${v.error.message.replace(/ at line 1 column/, " at column")}`);
      const r = fromValue(v.value, where, now);
      if (!r.ok) return r;
      items.push(...r.value);
    }
    return { ok: true, value: items };
  }
  return fail("json", `${source}: ${whole.error.message}`);
}

function fromValue(v: unknown, where: string, now: Date): ParseResult<ReplayItem[]> {
  if (Array.isArray(v)) {
    if (v.length === 0) return fail("schema", `${where}: is an empty list`);
    const items: ReplayItem[] = [];
    const alerts: unknown[] = [];
    for (const [i, el] of v.entries()) {
      if (isObject(el) && ("alerts" in el || looksLikeIssueDocument(el))) {
        const r = fromValue(el, `${where}[${i}]`, now);
        if (!r.ok) return r;
        items.push(...r.value);
      } else {
        alerts.push(el);
      }
    }
    if (alerts.length > 0) {
      const r = payloadOfAlerts(alerts, where, now);
      if (!r.ok) return r;
      items.push({ where, payload: r.value });
    }
    return { ok: true, value: items };
  }
  if (!isObject(v)) return fail("schema", `${where}: expected an Alertmanager webhook body, a captured request, an alert object, or a kubecano.issue/v1 document`);
  if ("body" in v && ("headers" in v || "path" in v)) {
    let body = v["body"];
    if (typeof body === "string") {
      const parsed = parseJson(body);
      if (!parsed.ok) return fail("json", `${where}: body: ${parsed.error.message}`);
      body = parsed.value;
    }
    return fromValue(body, where, now);
  }
  if (looksLikeIssueDocument(v)) {
    const r = parseIssueDocument(v, now);
    if (!r.ok) return fail("schema", `${where}: ${r.error.message}`);
    return { ok: true, value: [{ where, issue: r.value }] };
  }
  if ("alerts" in v) {
    const r = validatePayload(v);
    if (!r.ok) return fail("schema", `${where}: ${r.error.message}`);
    return { ok: true, value: [{ where, payload: r.value }] };
  }
  if ("labels" in v) {
    const r = payloadOfAlerts([v], where, now);
    return r.ok ? { ok: true, value: [{ where, payload: r.value }] } : r;
  }
  return fail("schema", `${where}: expected an Alertmanager webhook body ("alerts"), a captured request ("headers" and "body"), an alert ("labels"), or a kubecano.issue/v1 document ("version")`);
}

function payloadOfAlerts(raw: readonly unknown[], where: string, now: Date): ParseResult<WebhookPayload> {
  const alerts = [];
  for (const [i, a] of raw.entries()) {
    if (!isObject(a)) return fail("schema", `${where}[${i}]: expected an alert object`);
    const filled = { status: "firing", startsAt: now.toISOString(), ...a };
    const r = alertSchema.safeParse(filled);
    if (!r.success) return fail("schema", `${where}${raw.length > 1 ? `[${i}]` : ""}: ${formatZodIssues(r.error.issues)}`);
    alerts.push(r.data);
  }
  return { ok: true, value: { alerts, version: "4", status: alerts.some((a) => a.status === "firing") ? "firing" : "resolved" } };
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function fail<T>(kind: "json" | "schema", message: string): ParseResult<T> {
  return { ok: false, error: new PayloadError(kind, message) };
}
