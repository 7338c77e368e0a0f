import type { Issue } from "../../core/issue.js";
import { makeScrubber } from "../../config/redact.js";
import { VERSION } from "../../version.js";
import { requestJson, safeTarget, type HttpResponse } from "../http.js";
import { DeliveryError, parseRetryAfter, type Destination, type DestinationDeps, type SendContext, type SendResult } from "../types.js";
import type { WebhookParams } from "./params.js";
import { renderWebhook } from "./render.js";

/**
 * The generic webhook destination. Each Issue, firing or resolved, is one
 * request carrying a kubecano.issue/v1 document; the resolution is an
 * `issue.resolved` event with the firing one's fingerprint, so a receiver
 * that tracks incidents closes what it opened (`resolvesIncidents`).
 * Receivers deduplicate on X-Kubecano-Delivery: a retried delivery carries
 * the same one.
 */
export function create(name: string, params: WebhookParams, deps: DestinationDeps): Destination {
  const { url, basicAuth, userinfo } = splitUserinfo(params.url);
  const target = safeTarget(url);
  const headers = { ...params.headers, ...(basicAuth !== undefined ? { authorization: basicAuth } : {}) };
  // Receivers may echo the request in an error body: everything secret-ish is scrubbed from remote text.
  const parsed = new URL(url);
  const scrub = makeScrubber(
    [
      params.url,
      url,
      `${parsed.pathname}${parsed.search}`,
      parsed.search.slice(1),
      ...[...parsed.searchParams.values()],
      ...(parsed.pathname.length > 1 ? parsed.pathname.split("/").filter((s) => s.length >= 8) : []),
      ...(params.secret !== undefined ? [params.secret] : []),
      ...Object.values(headers),
      // "Bearer abc..." is echoed as often as the whole value.
      ...Object.values(headers).map((v) => v.replace(/^\S+\s+/, "")),
      ...userinfo,
    ].sort((a, b) => b.length - a.length),
  );
  const log = deps.log.child({ destination: name });
  const request = (issue: Issue, sentAt: Date) => renderWebhook(issue, { destination: name, sentAt, version: VERSION, secret: params.secret, headers });
  return {
    name,
    type: "webhook",
    resolvesIncidents: true,
    render: (issue) => ({ kind: "json", body: request(issue, new Date()).document }),
    async send(issue: Issue, ctx: SendContext): Promise<SendResult> {
      const req = request(issue, new Date());
      const res = await requestJson(params.method, url, req.body, { headers: req.headers, signal: ctx.signal, timeoutMs: params.timeout });
      if (res.status >= 200 && res.status < 300) {
        log.debug({ status: res.status, event: req.document.event }, "webhook accepted");
        return { detail: `${req.document.event} accepted by ${target} (HTTP ${res.status})` };
      }
      throw statusFailure(res, target, scrub);
    },
  };
}

/** Status → DeliveryError: 5xx, 408 and 429 are retryable (Retry-After honoured); anything else is not. */
function statusFailure(res: HttpResponse, target: string, scrub: (s: string) => string): DeliveryError {
  const s = res.status;
  const retryable = s >= 500 || s === 408 || s === 429;
  const detail = scrub(res.text.replace(/\s+/g, " ").trim()).slice(0, 200);
  const ra = res.headers["retry-after"];
  return new DeliveryError(`webhook ${target} answered HTTP ${s}${detail !== "" ? `: ${detail}` : ""}`, {
    retryable,
    code: `http_${s}`,
    hint: retryable ? undefined : hintFor(s),
    retryAfterMs: parseRetryAfter(Array.isArray(ra) ? ra[0] : ra),
  });
}

function hintFor(status: number): string {
  if (status >= 300 && status < 400) return "the receiver redirects and kubecano does not follow redirects: set params.url to the final URL";
  switch (status) {
    case 400:
    case 422:
      return "the receiver refused the kubecano.issue/v1 document: check that it accepts this schema (docs/webhook-schema.v1.json)";
    case 401:
    case 403:
      return "the receiver refused kubecano's credentials: check params.headers (Authorization), the user:password in params.url, or params.secret";
    case 404:
      return "nothing answers at this URL: check the path in params.url";
    case 405:
      return "the receiver does not take this method: check params.method (POST or PUT)";
    case 410:
      return "the receiver says this URL is gone: check params.url";
    case 413:
      return "the Issue is larger than the receiver accepts: raise the receiver's body size limit";
    case 415:
      return "the receiver does not accept application/json";
    default:
      return "the receiver refused the request: check params.url and params.headers";
  }
}

/** undici ignores user:password@ in a URL: it becomes a Basic Authorization header here. */
function splitUserinfo(raw: string): { url: string; basicAuth?: string; userinfo: string[] } {
  const u = new URL(raw);
  if (u.username === "" && u.password === "") return { url: raw, userinfo: [] };
  const encoded = u.password;
  const pass = decodeURIComponent(u.password);
  const token = Buffer.from(`${decodeURIComponent(u.username)}:${pass}`).toString("base64");
  u.username = "";
  u.password = "";
  return { url: u.toString(), basicAuth: `Basic ${token}`, userinfo: [encoded, pass, token].filter((s) => s.length >= 4) };
}
