import { setTimeout as delay } from "node:timers/promises";
import { makeScrubber } from "../../config/redact.js";
import type { Issue } from "../../core/issue.js";
import { compileTemplate } from "../../workflows/template.js";
import { header, jsonBody, postJson, statusError, type HttpResponse } from "../http.js";
import { DeliveryError, parseRetryAfter, type Destination, type DestinationDeps, type SendContext, type SendResult } from "../types.js";
import type { OpsgenieParams } from "./params.js";
import { aliasOf, renderOpsgenie, type OpsgenieRenderOptions, type ResponderTemplate } from "./render.js";

const KEY_HINT = "check api_key: it must be the API key of an Opsgenie API integration (Settings → Integrations → API), for the region you use (region: us or eu)";
const RIGHTS_HINT = "the integration behind api_key may not do this: in Opsgenie open the API integration, enable it and tick 'Create and Update Access' (and 'Read Access'); a key from Settings → API key management or a heartbeat key does not work";

/**
 * Opsgenie Alert API v2. The Issue's fingerprint is the alert's alias: a
 * repeated create for an open alias is folded into that alert by Opsgenie
 * (its count goes up), and the resolution closes the alert by alias. Both
 * requests are answered 202 and processed asynchronously by Opsgenie.
 */
export function create(name: string, params: OpsgenieParams, _deps: DestinationDeps): Destination {
  const scrub = makeScrubber([params.api_key]);
  const opts: OpsgenieRenderOptions = {
    responders: (params.responders ?? []).map((r): ResponderTemplate => {
      const by = r.username !== undefined ? "username" : r.id !== undefined ? "id" : "name";
      return { type: r.type, by, template: compileTemplate(r[by] ?? "") };
    }),
    tags: (params.tags ?? []).map((t) => compileTemplate(t)),
    priorityMap: params.priority_map,
    entity: params.entity !== undefined ? compileTemplate(params.entity) : undefined,
  };
  const headers = { authorization: `GenieKey ${params.api_key}` };
  // alias → when this process's create for it was accepted (monotonic ms); the oldest are forgotten first.
  const recentCreates = new Map<string, number>();
  return {
    name,
    type: "opsgenie",
    resolvesIncidents: true,
    render: (issue: Issue) => ({ kind: "json", body: renderOpsgenie(issue, opts) }),
    async send(issue: Issue, ctx: SendContext): Promise<SendResult> {
      const req = renderOpsgenie(issue, opts);
      const alias = aliasOf(issue.fingerprint);
      const createdAt = recentCreates.get(alias);
      if (req.action === "close" && createdAt !== undefined) await settle(createdAt, ctx.signal);
      const res = await postJson(`${params.api_url}${req.path}`, req.body, { headers, signal: ctx.signal, timeoutMs: params.timeout });
      if (res.status >= 200 && res.status < 300) {
        if (req.action === "create") {
          recentCreates.delete(alias);
          recentCreates.set(alias, performance.now());
          if (recentCreates.size > 1_000) recentCreates.delete(recentCreates.keys().next().value!);
        }
        const body = jsonBody(res) as { requestId?: unknown } | undefined;
        const requestId = typeof body?.requestId === "string" ? ` (request ${scrub(body.requestId)})` : "";
        return { remoteId: alias, detail: `${req.action === "create" ? "created" : "closed"} Opsgenie alert with alias ${alias}${requestId}` };
      }
      if (req.action === "close" && res.status === 404 && /does not exist/i.test(res.text)) {
        // A create of ours may still be in Opsgenie's queue: try again later. Otherwise there is nothing to close.
        if (createdAt !== undefined && performance.now() - createdAt < NOT_YET_CREATED_MS) {
          throw new DeliveryError(`Opsgenie has no alert with alias ${alias} yet (HTTP 404): its create may still be processing`, { retryable: true, code: "alert_not_created_yet" });
        }
        return { remoteId: alias, detail: `no open Opsgenie alert with alias ${alias}: nothing to close` };
      }
      throw opsgenieError(res, req.action, scrub);
    },
  };
}

/**
 * Opsgenie processes requests asynchronously (202 means queued): a close sent
 * right behind its create (test-destination does exactly that) could be
 * processed first, find no alert, and leave the alert open. A close this soon
 * after a create of ours waits until the create has had CREATE_SETTLE_MS.
 */
const CREATE_SETTLE_MS = 1_500;
/** How long a 404 on close may still mean "the create is queued" rather than "nothing to close". */
const NOT_YET_CREATED_MS = 60_000;

async function settle(createdAt: number, signal: AbortSignal): Promise<void> {
  const wait = createdAt + CREATE_SETTLE_MS - performance.now();
  if (wait <= 0) return;
  try {
    await delay(wait, undefined, { signal });
  } catch {
    throw new DeliveryError("the close was aborted before it was sent", { retryable: true, code: "aborted" });
  }
}

/**
 * Maps an Opsgenie answer ({message, errors?, code?, took, requestId}) to a
 * DeliveryError: 401/403 are the key or its rights, 422 a field Opsgenie
 * refused (never retried); 429 and 5xx are retried. The remote text is
 * scrubbed of the API key.
 */
export function opsgenieError(res: HttpResponse, action: "create" | "close", scrub: (s: string) => string): DeliveryError {
  const body = jsonBody(res) as { message?: unknown; errors?: unknown } | undefined;
  const message = typeof body?.message === "string" ? body.message : "";
  const fieldErrors =
    body?.errors !== null && typeof body?.errors === "object" && !Array.isArray(body.errors)
      ? Object.entries(body.errors as Record<string, unknown>).map(([k, v]) => `${k}: ${typeof v === "string" ? v : JSON.stringify(v)}`)
      : [];
  const detail = scrub(oneLine([message, fieldErrors.join("; ")].filter((s) => s !== "").join(" ")).slice(0, 300));
  const what = `Opsgenie refused to ${action} the alert`;
  switch (res.status) {
    case 401:
      return new DeliveryError(`${what} (HTTP 401: the API key was not accepted)${detail !== "" ? `: ${detail}` : ""}`, { retryable: false, code: "unauthorized", hint: KEY_HINT });
    case 403:
      return new DeliveryError(`${what} (HTTP 403: no permission)${detail !== "" ? `: ${detail}` : ""}`, { retryable: false, code: "forbidden", hint: RIGHTS_HINT });
    case 422: {
      const aboutResponders = fieldErrors.some((e) => /^responders|^visibleTo/i.test(e)) || /responder|team|user|schedule|escalation/i.test(message);
      return new DeliveryError(`${what} (HTTP 422)${detail !== "" ? `: ${detail}` : ""}`, {
        retryable: false,
        code: "validation_failed",
        hint: aboutResponders
          ? "check responders: each needs a type (team, user, escalation, schedule) and a name, username or id Opsgenie knows"
          : "Opsgenie refused a field kubecano built: please report this bug with the error above",
      });
    }
    case 429:
      return new DeliveryError(`Opsgenie is rate limiting this integration (HTTP 429)${detail !== "" ? `: ${detail}` : ""}`, {
        retryable: true,
        code: "rate_limited",
        retryAfterMs: parseRetryAfter(header(res, "retry-after")),
      });
    default: {
      const hint = res.status === 404 || res.status === 405 ? "check api_url (or region): it must be the API base URL, e.g. https://api.opsgenie.com, without /v2/alerts" : undefined;
      return statusError({ ...res, text: detail !== "" ? detail : scrub(res.text) }, "Opsgenie", hint);
    }
  }
}

function oneLine(s: string): string {
  return s.replace(/\s+/g, " ").trim();
}
