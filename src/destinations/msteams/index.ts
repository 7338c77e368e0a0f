import type { Issue } from "../../core/issue.js";
import { header, jsonBody, postJson, safeTarget, type HttpResponse } from "../http.js";
import { DeliveryError, parseRetryAfter, type Destination, type DestinationDeps, type SendContext, type SendResult } from "../types.js";
import type { MsTeamsParams } from "./params.js";
import { renderTeams } from "./render.js";

const RECREATE = "re-create the workflow in Teams (Workflows → \"Post to a channel when a webhook request is received\") and put its new URL in params.webhook_url";

/**
 * Microsoft Teams through a Workflows webhook. Every Issue is one card: the
 * webhook cannot edit or thread what it posted, so a resolution is a green
 * RESOLVED card of its own. The workflow answers 202 as soon as its flow is
 * queued; what the flow does next (posting the card) is not reported back.
 */
export function create(name: string, params: MsTeamsParams, _deps: DestinationDeps): Destination {
  const url = params.webhook_url;
  const target = safeTarget(url);
  const payload = (issue: Issue): unknown => renderTeams(issue, { mentions: params.mentions });
  return {
    name,
    type: "msteams",
    render: (issue) => ({ kind: "json", body: payload(issue) }),
    async send(issue: Issue, ctx: SendContext): Promise<SendResult> {
      const res = await postJson(url, payload(issue), { signal: ctx.signal, timeoutMs: params.timeout });
      if (res.status >= 200 && res.status < 300) {
        return { detail: `posted ${issue.status === "RESOLVED" ? "a RESOLVED card" : "a card"} to the Teams workflow at ${target}` };
      }
      throw teamsError(res);
    },
  };
}

/**
 * A failed post. Workflows (Logic Apps) errors are `{"error":{"code","message"}}`;
 * only the code is quoted: the message can repeat the URL, whose signature is the secret.
 */
export function teamsError(res: HttpResponse): DeliveryError {
  const err = (jsonBody(res) as { error?: { code?: unknown } } | undefined)?.error;
  const code = typeof err?.code === "string" && /^[A-Za-z0-9_.-]{1,80}$/.test(err.code) ? err.code : undefined;
  const retryable = res.status >= 500 || res.status === 429 || res.status === 408;
  const message = `Teams workflow answered HTTP ${res.status}${code !== undefined ? ` (${code})` : ""}`;
  let hint: string | undefined;
  switch (res.status) {
    case 400:
      hint = "the workflow refused the request body: check that the flow starts with the trigger \"When a Teams webhook request is received\" and posts the card it receives; if it does, please report this bug";
      break;
    case 401:
    case 403:
      hint = `the URL's signature is not accepted (a mistyped or cut URL, or a workflow whose owner left or turned it off): copy the URL again from the flow's trigger, or ${RECREATE}`;
      break;
    case 404:
      hint = `there is no workflow at this URL (deleted, or the URL is incomplete): ${RECREATE}`;
      break;
    case 413:
      hint = "the card was larger than the workflow accepts: please report this bug";
      break;
  }
  return new DeliveryError(message, {
    retryable,
    code: code !== undefined && !retryable ? code : `http_${res.status}`,
    hint,
    retryAfterMs: parseRetryAfter(header(res, "retry-after")),
  });
}
