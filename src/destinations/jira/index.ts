import { makeScrubber } from "../../config/redact.js";
import type { Issue } from "../../core/issue.js";
import type { Logger } from "../../observability/logger.js";
import { header, jsonBody, requestJson, safeTarget, type HttpResponse } from "../http.js";
import { DeliveryError, parseRetryAfter, type Destination, type DestinationDeps, type FindContext, type SendContext, type SendResult } from "../types.js";
import type { AdfDoc } from "./adf.js";
import type { JiraParams } from "./params.js";
import { fingerprintLabel, renderComment, renderCreate, type JiraRenderOptions } from "./render.js";

/** What kubecano needs to know about an issue it found. */
interface FoundIssue {
  readonly key: string;
  readonly status: string;
  /** Jira's status category: "new" (To Do), "indeterminate" (In Progress) or "done". */
  readonly category: string;
  readonly created?: string | undefined;
}

interface Transition {
  readonly id: string;
  readonly name: string;
  readonly to?: { readonly name?: string; readonly statusCategory?: { readonly key?: string } };
}

type Method = "GET" | "POST";

/**
 * Jira Cloud. One issue per incident (fingerprint), found again by its label
 * `kubecano-fp-<fingerprint>`: the first FIRING creates it, repeats comment
 * on it, RESOLVED runs `resolve_transition` (with a comment), and a FIRING
 * after that reopens it. The fingerprint → issue key map lives in this
 * process and in the delivery store (`jira:<name>`); when both are empty
 * (another replica, lost state) a JQL search by the label finds the issue.
 */
export function create(name: string, params: JiraParams, deps: DestinationDeps): Destination {
  const ns = `jira:${name}`;
  const authorization = `Basic ${Buffer.from(`${params.user}:${params.api_token}`).toString("base64")}`;
  const scrub = makeScrubber([params.api_token, authorization.slice(6)]);
  const target = safeTarget(params.url);
  const keys = new Map<string, string>();
  // Set once Jira refused the priority field (not on the project's create screen): later issues go without it.
  let sendPriority = true;

  const renderOpts = (issue: Issue): JiraRenderOptions => ({
    project: params.project,
    issueType: params.issue_type,
    priority: sendPriority ? params.priority_map[issue.severity] : undefined,
    labels: params.labels,
    components: params.components,
    resolveTransition: params.resolve_transition,
  });

  const call = (method: Method, path: string, body: unknown, signal: AbortSignal): Promise<HttpResponse> =>
    requestJson(method, `${params.url}${path}`, body, { headers: { authorization }, signal, timeoutMs: params.timeout });

  const fail = (res: HttpResponse, what: string): DeliveryError => jiraError(res, what, params, scrub);

  const remember = (fingerprint: string, key: string): void => {
    keys.set(fingerprint, key);
    if (deps.state?.getState(ns, fingerprint) !== key) deps.state?.setState(ns, fingerprint, key);
  };
  const forget = (fingerprint: string): void => {
    keys.delete(fingerprint);
    deps.state?.setState(ns, fingerprint, undefined);
  };

  /** The latest issue with the fingerprint's label, newest first. */
  async function search(fingerprint: string, signal: AbortSignal): Promise<FoundIssue | undefined> {
    const jql = `project = ${jqlString(params.project)} AND labels = ${jqlString(fingerprintLabel(fingerprint))} ORDER BY created DESC`;
    const res = await call("POST", "/rest/api/3/search/jql", { jql, fields: ["status", "created"], maxResults: 1 }, signal);
    if (res.status !== 200) throw fail(res, "search for the incident's issue");
    const body = jsonBody(res) as { issues?: unknown } | undefined;
    if (!Array.isArray(body?.issues)) throw unexpected(res, "search");
    const first = body.issues[0] as IssueJson | undefined;
    return first === undefined ? undefined : found(first);
  }

  /** The incident's issue: from the key map (checked against Jira), else by label. */
  async function locate(fingerprint: string, signal: AbortSignal): Promise<FoundIssue | undefined> {
    const known = keys.get(fingerprint) ?? deps.state?.getState(ns, fingerprint);
    if (known !== undefined) {
      const res = await call("GET", `/rest/api/3/issue/${encodeURIComponent(known)}?fields=status,created`, undefined, signal);
      if (res.status === 200) {
        const f = found(jsonBody(res) as IssueJson | undefined, known);
        remember(fingerprint, f.key);
        return f;
      }
      // Deleted, or no longer visible to this account: look again by label.
      if (res.status !== 404) throw fail(res, `reading ${known}`);
      forget(fingerprint);
    }
    const f = await search(fingerprint, signal);
    if (f !== undefined) remember(fingerprint, f.key);
    return f;
  }

  async function createIssue(issue: Issue, log: Logger, signal: AbortSignal): Promise<string> {
    for (;;) {
      const body = renderCreate(issue, renderOpts(issue));
      const res = await call("POST", "/rest/api/3/issue", body, signal);
      if (res.status === 201 || res.status === 200) {
        const key = (jsonBody(res) as { key?: unknown } | undefined)?.key;
        if (typeof key !== "string" || key === "") throw unexpected(res, "issue creation");
        return key;
      }
      if (res.status === 400 && body.fields.priority !== undefined && fieldErrors(res)["priority"] !== undefined) {
        sendPriority = false;
        log.warn({ project: params.project }, "Jira refused the priority field (it is not on the project's create screen, or the name is unknown): creating issues without a priority; add Priority to the screen or fix params.priority_map");
        continue;
      }
      throw fail(res, `creating an issue in project ${params.project}`);
    }
  }

  async function transitions(key: string, signal: AbortSignal): Promise<Transition[]> {
    const res = await call("GET", `/rest/api/3/issue/${encodeURIComponent(key)}/transitions`, undefined, signal);
    if (res.status !== 200) throw fail(res, `listing the transitions of ${key}`);
    const list = (jsonBody(res) as { transitions?: unknown } | undefined)?.transitions;
    if (!Array.isArray(list)) throw unexpected(res, "transition list");
    return list.filter((t): t is Transition => typeof (t as Transition).id === "string" && typeof (t as Transition).name === "string");
  }

  /** Runs a transition with a comment; without it when the transition has no screen to take one. */
  async function transition(key: string, t: Transition, comment: AdfDoc, signal: AbortSignal): Promise<void> {
    const path = `/rest/api/3/issue/${encodeURIComponent(key)}/transitions`;
    const res = await call("POST", path, { transition: { id: t.id }, update: { comment: [{ add: { body: comment } }] } }, signal);
    if (res.status === 204 || res.status === 200) return;
    if (res.status !== 400 || fieldErrors(res)["comment"] === undefined) throw fail(res, `running the transition "${t.name}" on ${key}`);
    const bare = await call("POST", path, { transition: { id: t.id } }, signal);
    if (bare.status !== 204 && bare.status !== 200) throw fail(bare, `running the transition "${t.name}" on ${key}`);
    await addComment(key, comment, signal);
  }

  async function addComment(key: string, body: AdfDoc, signal: AbortSignal): Promise<void> {
    const res = await call("POST", `/rest/api/3/issue/${encodeURIComponent(key)}/comment`, { body }, signal);
    if (res.status !== 201 && res.status !== 200) throw fail(res, `commenting on ${key}`);
  }

  async function fire(issue: Issue, ctx: SendContext): Promise<SendResult> {
    const existing = await locate(issue.fingerprint, ctx.signal);
    if (existing !== undefined && existing.category !== "done") {
      await addComment(existing.key, renderComment(issue, "repeat", renderOpts(issue)), ctx.signal);
      return { remoteId: existing.key, detail: `commented on ${existing.key} (still ${existing.status})` };
    }
    if (existing !== undefined) {
      const list = await transitions(existing.key, ctx.signal);
      const t = pick(list, params.reopen_transition, ["new", "indeterminate"]);
      if (t !== undefined) {
        await transition(existing.key, t, renderComment(issue, "reopen", renderOpts(issue)), ctx.signal);
        return { remoteId: existing.key, detail: `reopened ${existing.key} (${t.name})` };
      }
      // A closed issue its workflow cannot reopen: a new issue loses nothing.
      ctx.log.warn(
        { key: existing.key, transitions: list.map((x) => x.name) },
        `cannot reopen a resolved Jira issue: no transition "${params.reopen_transition}" nor any to a To Do or In Progress status; creating a new issue (set params.reopen_transition)`,
      );
    }
    const key = await createIssue(issue, ctx.log, ctx.signal);
    remember(issue.fingerprint, key);
    return { remoteId: key, detail: `created ${key} in ${params.project}${existing !== undefined ? ` (${existing.key} could not be reopened)` : ""}` };
  }

  async function resolve(issue: Issue, ctx: SendContext): Promise<SendResult> {
    const existing = await locate(issue.fingerprint, ctx.signal);
    if (existing === undefined) return { detail: `no Jira issue for this incident in ${params.project}: nothing to resolve` };
    if (existing.category === "done") return { remoteId: existing.key, detail: `${existing.key} is already ${existing.status}` };
    const list = await transitions(existing.key, ctx.signal);
    const t = pick(list, params.resolve_transition, ["done"]);
    if (t === undefined) {
      throw new DeliveryError(`cannot resolve ${existing.key}: its workflow offers no transition "${params.resolve_transition}" (nor any to a Done status) from "${existing.status}"`, {
        retryable: false,
        code: "transition_not_found",
        hint:
          list.length > 0
            ? `set params.resolve_transition to one of the transitions available from "${existing.status}": ${list.map((x) => x.name).join(", ")}`
            : "the account cannot transition this issue: it needs the Transition issues permission in the project",
      });
    }
    if (t.name.toLowerCase() !== params.resolve_transition.toLowerCase() && t.to?.name?.toLowerCase() !== params.resolve_transition.toLowerCase()) {
      ctx.log.warn({ key: existing.key, used: t.name }, `no Jira transition "${params.resolve_transition}": used "${t.name}", which also leads to a Done status (set params.resolve_transition)`);
    }
    await transition(existing.key, t, renderComment(issue, "resolve", renderOpts(issue)), ctx.signal);
    return { remoteId: existing.key, detail: `moved ${existing.key} to ${t.to?.name ?? t.name}` };
  }

  return {
    name,
    type: "jira",
    resolvesIncidents: true,
    render(issue: Issue) {
      if (issue.status === "RESOLVED") {
        // The transition's id is looked up when sending; its name is what the config says.
        return { kind: "json", body: { transition: { name: params.resolve_transition }, update: { comment: [{ add: { body: renderComment(issue, "resolve", renderOpts(issue)) } }] } } };
      }
      return { kind: "json", body: renderCreate(issue, renderOpts(issue)) };
    },
    send(issue: Issue, ctx: SendContext): Promise<SendResult> {
      return issue.status === "RESOLVED" ? resolve(issue, ctx) : fire(issue, ctx);
    },
    async findExisting(issue: Issue, ctx: FindContext): Promise<SendResult | undefined> {
      try {
        if (issue.status === "RESOLVED") {
          const f = await locate(issue.fingerprint, ctx.signal);
          return f !== undefined && f.category === "done" ? { remoteId: f.key, detail: `${f.key} is already ${f.status}` } : undefined;
        }
        // Only an issue created by the interrupted attempt counts (a minute of clock slack).
        const f = await search(issue.fingerprint, ctx.signal);
        const created = f?.created !== undefined ? Date.parse(f.created.replace(/([+-]\d{2})(\d{2})$/, "$1:$2")) : NaN;
        if (f === undefined || !(created >= ctx.since - 60_000) || f.category === "done") return undefined;
        remember(issue.fingerprint, f.key);
        return { remoteId: f.key, detail: `found ${f.key}, created before the interruption` };
      } catch (e) {
        ctx.log.warn({ code: e instanceof DeliveryError ? e.code : "error", target }, "cannot check Jira for an issue created before a restart; sending again");
        return undefined;
      }
    },
  };
}

interface IssueJson {
  readonly key?: unknown;
  readonly fields?: { readonly status?: { readonly name?: unknown; readonly statusCategory?: { readonly key?: unknown } }; readonly created?: unknown };
}

function found(j: IssueJson | undefined, fallbackKey = ""): FoundIssue {
  const key = typeof j?.key === "string" && j.key !== "" ? j.key : fallbackKey;
  const status = j?.fields?.status;
  return {
    key,
    status: typeof status?.name === "string" ? status.name : "unknown",
    category: typeof status?.statusCategory?.key === "string" ? status.statusCategory.key : "unknown",
    created: typeof j?.fields?.created === "string" ? j.fields.created : undefined,
  };
}

/**
 * The transition to run: the one named `wanted` (or leading to a status of
 * that name), else one leading to a status in the first matching category.
 */
export function pick(list: readonly Transition[], wanted: string, categories: readonly string[]): Transition | undefined {
  const w = wanted.trim().toLowerCase();
  const named = list.find((t) => t.name.toLowerCase() === w) ?? list.find((t) => t.to?.name?.toLowerCase() === w);
  if (named !== undefined) return named;
  for (const c of categories) {
    const inCategory = list.filter((t) => t.to?.statusCategory?.key === c);
    // "Won't Do" is a Done status too: prefer the usual names.
    const usual = inCategory.find((t) => /^(done|resolved?|closed?|to do|open|reopen(ed)?|in progress)$/i.test(t.to?.name ?? t.name));
    if (usual !== undefined || inCategory[0] !== undefined) return usual ?? inCategory[0];
  }
  return undefined;
}

/** A JQL string literal. */
export function jqlString(s: string): string {
  return `"${s.replace(/\\/g, "\\\\").replace(/"/g, '\\"')}"`;
}

/** Jira's `errors` object: field → message. */
function fieldErrors(res: HttpResponse): Record<string, unknown> {
  const errors = (jsonBody(res) as { errors?: unknown } | undefined)?.errors;
  return errors !== null && typeof errors === "object" && !Array.isArray(errors) ? (errors as Record<string, unknown>) : {};
}

/**
 * A failed Jira call. The message quotes Jira's own error messages and field
 * errors (scrubbed of the token: Jira may echo a request), never the
 * request's headers. 5xx, 408 and 429 are retryable; other statuses are not.
 */
export function jiraError(res: HttpResponse, what: string, params: Pick<JiraParams, "project" | "issue_type" | "user">, scrub: (s: string) => string): DeliveryError {
  const body = jsonBody(res) as { errorMessages?: unknown } | undefined;
  const fields = fieldErrors(res);
  const messages = [
    ...(Array.isArray(body?.errorMessages) ? body.errorMessages.filter((m): m is string => typeof m === "string") : []),
    ...Object.entries(fields).map(([k, v]) => `${k}: ${typeof v === "string" ? v : JSON.stringify(v)}`),
  ].map((m) => scrub(m.replace(/\s+/g, " ").trim()).slice(0, 200));
  const detail = messages.join("; ").slice(0, 600);
  const retryable = res.status >= 500 || res.status === 429 || res.status === 408;
  return new DeliveryError(`Jira ${what} failed: HTTP ${res.status}${detail !== "" ? `: ${detail}` : ""}`, {
    retryable,
    code: `http_${res.status}`,
    hint: retryable ? undefined : jiraHint(res.status, fields, messages, params),
    retryAfterMs: parseRetryAfter(header(res, "retry-after")),
  });
}

function jiraHint(status: number, fields: Record<string, unknown>, messages: readonly string[], params: Pick<JiraParams, "project" | "issue_type" | "user">): string {
  switch (status) {
    case 401:
      return "Jira did not accept the credentials: check params.user (the Atlassian account's email) and params.api_token (create one at https://id.atlassian.com/manage-profile/security/api-tokens)";
    case 403:
      return `the account ${params.user} lacks a permission in project ${params.project}: it needs Browse projects, Create issues, Add comments and Transition issues`;
    case 404:
      return `check params.url (the Jira site, e.g. https://example.atlassian.net) and params.project (${params.project})`;
    case 400: {
      if (fields["project"] !== undefined) return `check params.project: ${params.project} must be the key of a project this account can see`;
      if (fields["issuetype"] !== undefined) return `check params.issue_type: project ${params.project} has no issue type "${params.issue_type}" the account may create`;
      if (fields["components"] !== undefined) return "check params.components: every component must exist in the project";
      if (fields["labels"] !== undefined) return "check params.labels: labels cannot contain spaces";
      if (fields["description"] !== undefined || fields["comment"] !== undefined || messages.some((m) => /INVALID_INPUT/.test(m))) {
        return "kubecano rendered a document Jira refused: please report this bug";
      }
      if (messages.some((m) => /project/i.test(m))) return `check params.project: ${params.project} must be the key of a project this account can see`;
      const required = Object.keys(fields).filter((k) => k.startsWith("customfield_") || /required/i.test(String(fields[k])));
      if (required.length > 0) return `the project requires fields kubecano does not set (${required.join(", ")}): make them optional for issue type "${params.issue_type}", or pick another issue type`;
      return "Jira refused the request: check the destination's params against the message";
    }
    default:
      return status >= 300 && status < 400 ? "check params.url: it must be the Jira site itself (https://example.atlassian.net), not a page behind a login" : "check the destination's params";
  }
}

function unexpected(res: HttpResponse, what: string): DeliveryError {
  return new DeliveryError(`Jira answered the ${what} with HTTP ${res.status} but not the JSON it documents`, {
    retryable: false,
    code: "unexpected_response",
    hint: "check params.url: it must be the Jira site itself (https://example.atlassian.net)",
  });
}
