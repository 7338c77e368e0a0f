import { makeScrubber, REDACTED } from "../../config/redact.js";
import type { Issue } from "../../core/issue.js";
import { compileTemplate } from "../../workflows/template.js";
import { header, jsonBody, postJson, statusError, type HttpResponse } from "../http.js";
import { DeliveryError, parseRetryAfter, type Destination, type DestinationDeps, type SendContext, type SendResult } from "../types.js";
import type { PagerDutyParams } from "./params.js";
import { renderPagerDuty, type PagerDutyRenderOptions } from "./render.js";

const ROUTING_KEY_HINT = "check routing_key: it must be the Integration Key of an Events API v2 integration on the service (Service → Integrations → Events API v2), not a REST API token or a v1 key";

/**
 * PagerDuty Events API v2. Every event for an Issue carries its fingerprint
 * as dedup_key, so PagerDuty itself folds repeats into the open alert and a
 * resolve closes it; sending the same event twice is harmless, which is why
 * there is no findExisting: a delivery in doubt is simply sent again.
 */
export function create(name: string, params: PagerDutyParams, _deps: DestinationDeps): Destination {
  const url = `${params.api_url}/v2/enqueue`;
  const scrub = makeScrubber([params.routing_key]);
  const opts: PagerDutyRenderOptions = {
    source: params.source !== undefined ? compileTemplate(params.source) : undefined,
    component: params.component !== undefined ? compileTemplate(params.component) : undefined,
    group: params.group !== undefined ? compileTemplate(params.group) : undefined,
    class: params.class !== undefined ? compileTemplate(params.class) : undefined,
    severityMap: params.severity_map,
  };
  return {
    name,
    type: "pagerduty",
    resolvesIncidents: true,
    render: (issue: Issue) => ({ kind: "json", body: { routing_key: REDACTED, ...renderPagerDuty(issue, opts) } }),
    async send(issue: Issue, ctx: SendContext): Promise<SendResult> {
      const event = renderPagerDuty(issue, opts);
      const res = await postJson(url, { routing_key: params.routing_key, ...event }, { signal: ctx.signal, timeoutMs: params.timeout });
      if (res.status >= 200 && res.status < 300) {
        const body = jsonBody(res) as { dedup_key?: unknown } | undefined;
        const key = typeof body?.dedup_key === "string" ? body.dedup_key : event.dedup_key;
        const what = event.event_action === "trigger" ? "triggered" : "resolved";
        return { remoteId: key, detail: `${what} PagerDuty alert (dedup_key ${key})` };
      }
      throw pagerDutyError(res, scrub);
    },
  };
}

/**
 * Maps a PagerDuty answer to a DeliveryError. 400 is PagerDuty refusing the
 * event ({status:"invalid event", message, errors:[...]}): never retried.
 * 429 and 5xx are retried (PagerDuty asks for a back-off; Retry-After is
 * honoured when sent). The remote text is scrubbed of the routing key.
 */
export function pagerDutyError(res: HttpResponse, scrub: (s: string) => string): DeliveryError {
  const body = jsonBody(res) as { status?: unknown; message?: unknown; errors?: unknown } | undefined;
  const errors = Array.isArray(body?.errors) ? body.errors.filter((e): e is string => typeof e === "string") : [];
  const message = typeof body?.message === "string" ? body.message : "";
  const detail = scrub(oneLine([message, ...errors].filter((s) => s !== "").join(": ")).slice(0, 300));
  if (res.status === 400) {
    const aboutKey = errors.some((e) => /routing.?key|integration.?key|service.?key/i.test(e)) || /routing.?key/i.test(message);
    return new DeliveryError(`PagerDuty refused the event (HTTP 400${typeof body?.status === "string" ? `, ${scrub(body.status)}` : ""})${detail !== "" ? `: ${detail}` : ""}`, {
      retryable: false,
      code: aboutKey ? "invalid_routing_key" : "invalid_event",
      hint: aboutKey ? ROUTING_KEY_HINT : "PagerDuty refused an event kubecano built: please report this bug with the error above",
    });
  }
  if (res.status === 429) {
    return new DeliveryError(`PagerDuty is throttling events for this integration (HTTP 429)${detail !== "" ? `: ${detail}` : ""}`, {
      retryable: true,
      code: "rate_limited",
      retryAfterMs: parseRetryAfter(header(res, "retry-after")),
      hint: "PagerDuty accepts about 120 events a minute per integration key; kubecano retries with back-off",
    });
  }
  const hint =
    res.status === 404 || res.status === 405
      ? "check api_url: it must be the Events API base URL (https://events.pagerduty.com, without /v2/enqueue)"
      : res.status === 401 || res.status === 403
        ? ROUTING_KEY_HINT
        : res.status === 413
          ? "the event was over PagerDuty's 512 KB limit: please report this bug"
          : undefined;
  return statusError({ ...res, text: detail !== "" ? detail : scrub(res.text) }, "PagerDuty", hint);
}

function oneLine(s: string): string {
  return s.replace(/\s+/g, " ").trim();
}
