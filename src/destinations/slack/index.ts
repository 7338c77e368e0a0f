import { ErrorCode, LogLevel, WebClient, type Logger as SlackLogger } from "@slack/web-api";
import type { Issue } from "../../core/issue.js";
import type { Logger } from "../../observability/logger.js";
import { postJson, safeTarget, statusError } from "../http.js";
import { DeliveryError, type Destination, type DestinationDeps, type FindContext, type SendContext, type SendResult } from "../types.js";
import { platformError, WEBHOOK_ERRORS } from "./errors.js";
import type { SlackParams } from "./params.js";
import { METADATA_EVENT_TYPE, renderSlack } from "./render.js";

/**
 * Slack destination. Bot mode posts with chat.postMessage through
 * @slack/web-api (its own retries off: the delivery queue retries, and 429s
 * come back to us via rejectRateLimitedCalls). Webhook mode posts the same
 * layout to an incoming webhook, without metadata.
 */
export function create(name: string, params: SlackParams, deps: DestinationDeps): Destination {
  return params.mode === "bot" ? botDestination(name, params, deps) : webhookDestination(name, params);
}

function botDestination(name: string, params: SlackParams, deps: DestinationDeps): Destination {
  const client = new WebClient(params.token, {
    slackApiUrl: params.api_url,
    timeout: params.timeout,
    retryConfig: { retries: 0 },
    rejectRateLimitedCalls: true,
    logger: slackLogger(deps.log.child({ destination: name })),
    logLevel: LogLevel.ERROR,
  });
  const channel = params.channel!;
  const stateNs = `slack:${name}`;
  /** The channel's ID: conversations.* methods need it, and people configure names. */
  const channelId = async (): Promise<string | undefined> => {
    if (/^[CGD][A-Z0-9]{6,}$/.test(channel)) return channel;
    return deps.state?.getState(stateNs, `channel-id:${channel}`);
  };
  return {
    name,
    type: "slack",
    render(issue: Issue) {
      const msg = renderSlack(issue, { metadata: true });
      return { kind: "json", body: { channel, ...msg, ...(params.username !== undefined ? { username: params.username } : {}), ...(params.icon_emoji !== undefined ? { icon_emoji: params.icon_emoji } : {}), unfurl_links: false, unfurl_media: false } };
    },
    async findExisting(issue: Issue, ctx: FindContext): Promise<SendResult | undefined> {
      const id = await channelId();
      if (id === undefined) return undefined;
      // Bounded: only messages since the interrupted attempt (with a minute of clock slack), at most 5 pages.
      let cursor: string | undefined;
      for (let page = 0; page < 5; page++) {
        let res;
        try {
          res = await client.conversations.history({ channel: id, oldest: ((ctx.since - 60_000) / 1000).toFixed(6), include_all_metadata: true, limit: 200, ...(cursor !== undefined ? { cursor } : {}) });
        } catch (e) {
          ctx.log.warn({ code: slackClientError(e, "conversations.history", params.timeout).code }, "cannot check Slack for a message sent before a restart; sending it again (it may appear twice)");
          return undefined;
        }
        for (const m of res.messages ?? []) {
          const meta = (m as { metadata?: { event_type?: string; event_payload?: Record<string, unknown> } }).metadata;
          if (meta?.event_type === METADATA_EVENT_TYPE && meta.event_payload?.["issue_id"] === issue.id && typeof m.ts === "string") {
            return { remoteId: `${id}/${m.ts}`, detail: `found in ${id} (ts ${m.ts})` };
          }
        }
        cursor = res.response_metadata?.next_cursor;
        if (cursor === undefined || cursor === "" || res.has_more !== true) break;
      }
      return undefined;
    },
    async send(issue: Issue, _ctx: SendContext): Promise<SendResult> {
      const msg = renderSlack(issue, { metadata: true });
      try {
        const res = await client.chat.postMessage({
          channel,
          text: msg.text,
          blocks: msg.blocks,
          attachments: msg.attachments,
          ...(msg.metadata !== undefined ? { metadata: msg.metadata } : {}),
          ...(params.username !== undefined ? { username: params.username } : {}),
          ...(params.icon_emoji !== undefined ? { icon_emoji: params.icon_emoji } : {}),
          unfurl_links: false,
          unfurl_media: false,
        } as Parameters<WebClient["chat"]["postMessage"]>[0]);
        const ts = typeof res.ts === "string" ? res.ts : undefined;
        const ch = typeof res.channel === "string" ? res.channel : channel;
        if (ch !== channel && deps.state?.getState(stateNs, `channel-id:${channel}`) !== ch) deps.state?.setState(stateNs, `channel-id:${channel}`, ch);
        return { ...(ts !== undefined ? { remoteId: `${ch}/${ts}` } : {}), detail: `posted to ${ch}${ts !== undefined ? ` (ts ${ts})` : ""}` };
      } catch (e) {
        throw slackClientError(e, "chat.postMessage", params.timeout);
      }
    },
  };
}

function webhookDestination(name: string, params: SlackParams): Destination {
  const url = params.webhook_url!;
  const target = safeTarget(url);
  const payload = (issue: Issue): Record<string, unknown> => {
    const msg = renderSlack(issue, { metadata: false });
    return { text: msg.text, blocks: msg.blocks, attachments: msg.attachments, unfurl_links: false, unfurl_media: false };
  };
  return {
    name,
    type: "slack",
    render: (issue) => ({ kind: "json", body: payload(issue) }),
    async send(issue: Issue, ctx: SendContext): Promise<SendResult> {
      const res = await postJson(url, payload(issue), { signal: ctx.signal, timeoutMs: params.timeout });
      if (res.status >= 200 && res.status < 300) return { detail: `posted to the incoming webhook at ${target}` };
      const code = res.text.trim().split(/\s/)[0] ?? "";
      const known = WEBHOOK_ERRORS[code];
      if (known !== undefined && res.status < 500 && res.status !== 429) {
        throw new DeliveryError(`Slack incoming webhook answered HTTP ${res.status}: ${code}`, { retryable: known.retryable, code, hint: known.hint });
      }
      throw statusError(res, "Slack incoming webhook", res.status === 404 ? WEBHOOK_ERRORS["no_service"]?.hint : undefined);
    },
  };
}

/** Maps @slack/web-api's errors to DeliveryErrors (never carrying the token). */
export function slackClientError(e: unknown, method: string, timeoutMs: number): DeliveryError {
  const err = e as { code?: unknown; data?: { error?: unknown; needed?: unknown }; statusCode?: unknown; retryAfter?: unknown; original?: unknown; headers?: Record<string, string> };
  switch (err.code) {
    case ErrorCode.PlatformError: {
      const code = typeof err.data?.error === "string" ? err.data.error : "unknown_error";
      return platformError(code, method, { needed: typeof err.data?.needed === "string" ? err.data.needed : undefined });
    }
    case ErrorCode.RateLimitedError: {
      const secs = typeof err.retryAfter === "number" ? err.retryAfter : 1;
      return new DeliveryError(`Slack ${method} was rate limited (retry after ${secs}s)`, { retryable: true, code: "ratelimited", retryAfterMs: secs * 1000 });
    }
    case ErrorCode.HTTPError: {
      const status = typeof err.statusCode === "number" ? err.statusCode : 0;
      const retryAfter = err.headers?.["retry-after"];
      return new DeliveryError(`Slack ${method} answered HTTP ${status}`, {
        retryable: status >= 500 || status === 429 || status === 408,
        code: `http_${status}`,
        retryAfterMs: retryAfter !== undefined && Number.isFinite(Number(retryAfter)) ? Number(retryAfter) * 1000 : undefined,
      });
    }
    case ErrorCode.RequestError: {
      const original = err.original as { name?: unknown; code?: unknown; cause?: { code?: unknown } } | undefined;
      const name = typeof original?.name === "string" ? original.name : "";
      if (name === "TimeoutError" || name === "AbortError") {
        return new DeliveryError(`Slack ${method} got no answer within ${timeoutMs} ms`, { retryable: true, code: "timeout", maybeDelivered: true });
      }
      const code = original?.cause?.code ?? original?.code;
      return new DeliveryError(`cannot reach Slack for ${method}: ${typeof code === "string" ? code : "network error"}`, {
        retryable: true,
        code: typeof code === "string" ? code.toLowerCase() : "network_error",
        // Refused or unresolvable: the request never left. Anything else may have been processed.
        maybeDelivered: code !== "ECONNREFUSED" && code !== "ENOTFOUND" && code !== "EAI_AGAIN",
        hint: code === "ENOTFOUND" ? "check params.api_url and the network/DNS of this host" : undefined,
      });
    }
    default:
      if (e instanceof DeliveryError) return e;
      return new DeliveryError(`Slack ${method} failed: ${e instanceof Error ? e.message : String(e)}`, { retryable: false, code: "internal_error", hint: "please report this bug" });
  }
}

/** Routes the SDK's own log lines into kubecano's logger at debug level. */
function slackLogger(log: Logger): SlackLogger {
  let level = LogLevel.ERROR;
  return {
    debug: (...m: unknown[]) => log.debug({ sdk: "slack" }, m.map(String).join(" ")),
    info: (...m: unknown[]) => log.debug({ sdk: "slack" }, m.map(String).join(" ")),
    warn: (...m: unknown[]) => log.debug({ sdk: "slack" }, m.map(String).join(" ")),
    error: (...m: unknown[]) => log.debug({ sdk: "slack" }, m.map(String).join(" ")),
    setLevel: (l: LogLevel) => {
      level = l;
    },
    getLevel: () => level,
    setName: () => undefined,
  };
}

