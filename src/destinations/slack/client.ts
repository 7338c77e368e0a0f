import { ErrorCode, LogLevel, WebClient, type Logger as SlackLogger } from "@slack/web-api";
import { request } from "undici";
import type { Logger } from "../../observability/logger.js";
import { tracedFetch, tracer } from "../../observability/tracing.js";
import { httpAgent, safeTarget } from "../http.js";
import { DeliveryError, parseRetryAfter } from "../types.js";
import { platformError } from "./errors.js";
import type { SlackMessage } from "./limits.js";

/** A message as chat.postMessage / chat.update take it. */
export interface OutgoingMessage extends Pick<SlackMessage, "text" | "blocks" | "attachments"> {
  readonly metadata?: SlackMessage["metadata"] | { event_type: string; event_payload: Record<string, string | number | boolean> } | undefined;
}

export interface HistoryMessage {
  readonly ts: string;
  readonly thread_ts?: string;
  readonly metadata?: { event_type?: string; event_payload?: Record<string, unknown> };
}

export interface ApiOptions {
  readonly token: string;
  readonly apiUrl: string;
  readonly timeoutMs: number;
  readonly username?: string | undefined;
  readonly iconEmoji?: string | undefined;
  readonly log: Logger;
}

/**
 * The Slack Web API calls the destination makes, through @slack/web-api
 * (its own retries off: the delivery queue retries, and 429s come back to
 * us via rejectRateLimitedCalls so each channel is paced on its own). Every
 * failure is a DeliveryError that never carries the token.
 */
export class SlackApi {
  private readonly client: WebClient;

  constructor(private readonly opts: ApiOptions) {
    // With tracing on, each Web API request carries the delivery attempt's trace context.
    const fetch = tracedFetch();
    this.client = new WebClient(opts.token, {
      ...(fetch !== undefined ? { fetch } : {}),
      slackApiUrl: opts.apiUrl,
      timeout: opts.timeoutMs,
      retryConfig: { retries: 0 },
      rejectRateLimitedCalls: true,
      logger: slackLogger(opts.log),
      logLevel: LogLevel.ERROR,
    });
  }

  async post(channel: string, msg: OutgoingMessage, threadTs?: string): Promise<{ channel: string; ts: string }> {
    const res = await this.call("chat.postMessage", {
      channel,
      text: msg.text,
      blocks: msg.blocks,
      attachments: msg.attachments,
      ...(msg.metadata !== undefined ? { metadata: msg.metadata } : {}),
      ...(threadTs !== undefined ? { thread_ts: threadTs } : {}),
      ...(this.opts.username !== undefined ? { username: this.opts.username } : {}),
      ...(this.opts.iconEmoji !== undefined ? { icon_emoji: this.opts.iconEmoji } : {}),
      unfurl_links: false,
      unfurl_media: false,
    });
    const ts = typeof res["ts"] === "string" ? res["ts"] : undefined;
    if (ts === undefined) throw new DeliveryError("Slack chat.postMessage answered without a ts", { retryable: false, code: "no_ts", hint: "check params.api_url: it does not look like the Slack Web API" });
    return { channel: typeof res["channel"] === "string" ? res["channel"] : channel, ts };
  }

  async update(channel: string, ts: string, msg: OutgoingMessage): Promise<void> {
    await this.call("chat.update", {
      channel,
      ts,
      text: msg.text,
      blocks: msg.blocks,
      attachments: msg.attachments,
      ...(msg.metadata !== undefined ? { metadata: msg.metadata } : {}),
    });
  }

  /** Top-level messages, newest first, one page. */
  async history(channel: string, opts: { oldest?: string; limit: number; cursor?: string | undefined }): Promise<{ messages: HistoryMessage[]; next: string | undefined }> {
    const res = await this.call("conversations.history", {
      channel,
      include_all_metadata: true,
      limit: opts.limit,
      ...(opts.oldest !== undefined ? { oldest: opts.oldest } : {}),
      ...(opts.cursor !== undefined ? { cursor: opts.cursor } : {}),
    });
    return { messages: messagesOf(res), next: nextCursor(res) };
  }

  /** A thread (its parent first), oldest first, one page. */
  async replies(channel: string, ts: string, opts: { oldest?: string; limit: number; cursor?: string | undefined }): Promise<{ messages: HistoryMessage[]; next: string | undefined }> {
    const res = await this.call("conversations.replies", {
      channel,
      ts,
      include_all_metadata: true,
      limit: opts.limit,
      ...(opts.oldest !== undefined ? { oldest: opts.oldest } : {}),
      ...(opts.cursor !== undefined ? { cursor: opts.cursor } : {}),
    });
    return { messages: messagesOf(res), next: nextCursor(res) };
  }

  async permalink(channel: string, ts: string): Promise<string | undefined> {
    const res = await this.call("chat.getPermalink", { channel, message_ts: ts });
    return typeof res["permalink"] === "string" ? res["permalink"] : undefined;
  }

  /** One page of the channels the token can see: name → ID. */
  async channels(cursor: string | undefined): Promise<{ channels: { id: string; name: string }[]; next: string | undefined }> {
    const res = await this.call("conversations.list", { types: "public_channel,private_channel", exclude_archived: true, limit: 1000, ...(cursor !== undefined ? { cursor } : {}) });
    const list = Array.isArray(res["channels"]) ? (res["channels"] as unknown[]) : [];
    const channels = list.flatMap((c) => {
      const o = c as { id?: unknown; name?: unknown };
      return typeof o.id === "string" && typeof o.name === "string" ? [{ id: o.id, name: o.name }] : [];
    });
    return { channels, next: nextCursor(res) };
  }

  async uploadUrl(filename: string, length: number): Promise<{ url: string; fileId: string }> {
    const res = await this.call("files.getUploadURLExternal", { filename, length });
    const url = res["upload_url"];
    const fileId = res["file_id"];
    if (typeof url !== "string" || typeof fileId !== "string") throw new DeliveryError("Slack files.getUploadURLExternal answered without upload_url/file_id", { retryable: false, code: "no_upload_url" });
    return { url, fileId };
  }

  /** POSTs the bytes to the absolute upload_url Slack gave (files v2, step 2). */
  async uploadBytes(url: string, bytes: Buffer, signal: AbortSignal | undefined): Promise<void> {
    const target = safeTarget(url);
    const timeout = Math.max(this.opts.timeoutMs, 30_000);
    let status: number;
    let retryAfter: string | undefined;
    try {
      const res = await request(url, {
        method: "POST",
        body: bytes,
        headers: traced({ "content-type": "application/octet-stream", "user-agent": "kubecano" }),
        dispatcher: httpAgent(),
        headersTimeout: timeout,
        bodyTimeout: timeout,
        ...(signal !== undefined ? { signal } : {}),
      });
      status = res.statusCode;
      const ra = res.headers["retry-after"];
      retryAfter = Array.isArray(ra) ? ra[0] : ra;
      await res.body.dump();
    } catch (e) {
      const name = (e as { name?: unknown }).name;
      const code = (e as { code?: unknown }).code;
      if (typeof name === "string" && /Timeout|Abort/.test(name)) throw new DeliveryError(`the file upload to ${target} got no answer within ${timeout} ms`, { retryable: true, code: "timeout" });
      throw new DeliveryError(`cannot reach ${target} to upload a file: ${typeof code === "string" ? code : "network error"}`, { retryable: true, code: typeof code === "string" ? code.toLowerCase() : "network_error" });
    }
    if (status < 200 || status >= 300) {
      throw new DeliveryError(`the file upload to ${target} answered HTTP ${status}`, {
        retryable: status >= 500 || status === 429 || status === 408,
        code: `http_${status}`,
        retryAfterMs: parseRetryAfter(retryAfter),
      });
    }
  }

  /** Shares uploaded files in one message of a thread (files v2, step 3). */
  async completeUpload(files: readonly { id: string; title: string }[], channelId: string, threadTs: string | undefined): Promise<void> {
    await this.call("files.completeUploadExternal", { files, channel_id: channelId, ...(threadTs !== undefined ? { thread_ts: threadTs } : {}) });
  }

  private async call(method: string, args: Record<string, unknown>): Promise<Record<string, unknown>> {
    try {
      return (await this.client.apiCall(method, args)) as unknown as Record<string, unknown>;
    } catch (e) {
      throw slackClientError(e, method, this.opts.timeoutMs);
    }
  }
}

function messagesOf(res: Record<string, unknown>): HistoryMessage[] {
  const list = Array.isArray(res["messages"]) ? (res["messages"] as unknown[]) : [];
  return list.filter((m): m is HistoryMessage => typeof (m as { ts?: unknown }).ts === "string");
}

function nextCursor(res: Record<string, unknown>): string | undefined {
  const c = (res["response_metadata"] as { next_cursor?: unknown } | undefined)?.next_cursor;
  return typeof c === "string" && c !== "" ? c : undefined;
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

/** `headers` with the active trace context added, when tracing is on. */
function traced(headers: Record<string, string>): Record<string, string> {
  tracer()?.inject(headers);
  return headers;
}
