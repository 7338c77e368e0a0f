/**
 * A local fake of the Slack Web API and of incoming webhooks, on node:http
 * (127.0.0.1, an ephemeral port). Point @slack/web-api at it with
 * `new WebClient(token, { slackApiUrl: fake.url })`, or give kubecano's Slack
 * destination `api_url: fake.url` / `webhook_url: fake.webhookUrl()`.
 *
 * It speaks the protocol as @slack/web-api v8 uses it: every call is a POST to
 * `/api/<method>`, form-urlencoded with objects (blocks, attachments,
 * metadata, files) JSON-encoded into one field, the token in
 * `Authorization: Bearer`; JSON bodies and a `token` form field are accepted
 * too, as Slack does. Errors come back as Slack sends them: HTTP 200 with
 * `{ok:false, error}`, HTTP 429 with `Retry-After` (seconds) past a rate limit.
 *
 * It is deliberately at least as strict as Slack about Block Kit: every
 * message is checked against the hard Slack limits (re-implemented here, so a
 * bug in kubecano's own `checkLimits` cannot hide a renderer bug) and, unless
 * `kubecanoLimits: false`, against kubecano's stricter budget (`checkLimits`).
 * A renderer bug therefore shows up as a rejected call in any test.
 *
 * Everything is recorded (`calls`, `messages`, `files`) so tests count what
 * was sent, and faults can be injected (HTTP 5xx, hangs, delays, closed
 * connections, a given `ok:false` error) per method and per channel.
 *
 * No dependency beyond node built-ins (and kubecano's own `checkLimits`).
 */
import { randomBytes } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { checkLimits, type SlackMessage } from "../../src/destinations/slack/limits.js";

// ───────────────────────────── public types ─────────────────────────────

/** The token every fake accepts unless `tokens` says otherwise. */
export const FAKE_TOKEN = "xoxb-fake-token";
export const FAKE_TEAM_ID = "T0FAKETEAM";
export const FAKE_BOT_USER_ID = "U0FAKEBOT";
export const FAKE_BOT_ID = "B0FAKEBOT";
export const FAKE_APP_ID = "A0FAKEAPP";

/** Scopes a default token holds: everything kubecano's Slack destination needs. */
export const DEFAULT_SCOPES: readonly string[] = ["chat:write", "files:write", "channels:history", "groups:history", "channels:read"];

export interface FakeChannel {
  /** Slack channel ID, e.g. "C0ALERTS01". */
  readonly id: string;
  /** Without the leading "#". */
  readonly name: string;
  archived?: boolean;
  /** Whether the bot is a member (default true). */
  member?: boolean;
  /** A private channel the bot is not in is invisible: channel_not_found. */
  private?: boolean;
}

/**
 * The channels a fake starts with (unless `channels` is given): one good
 * channel and one for each channel-level error.
 */
export const DEFAULT_CHANNELS: readonly FakeChannel[] = [
  { id: "C0ALERTS01", name: "alerts" },
  { id: "C0ARCHIVED", name: "archived", archived: true },
  { id: "C0OUTSIDE1", name: "outside", member: false },
  { id: "C0PRIVATE1", name: "private", private: true, member: false },
];

export interface FakeToken {
  scopes?: readonly string[];
  /** Answers token_revoked. */
  revoked?: boolean;
}

/** A token bucket: `burst` calls at once, refilled at `ratePerSec`. */
export interface TokenBucketSpec {
  readonly ratePerSec: number;
  readonly burst: number;
}

export interface RateLimitSpec {
  /**
   * Messages posted to one channel (chat.postMessage, incoming webhook
   * posts, files shared by files.completeUploadExternal): Slack allows about
   * one per second per channel with short bursts.
   */
  readonly perChannel?: TokenBucketSpec;
  /** Per Web API method, across the workspace (e.g. "chat.update", "conversations.history"). */
  readonly perMethod?: Readonly<Record<string, TokenBucketSpec>>;
}

export interface SlackFakeOptions {
  /** Accepted tokens (a list gets DEFAULT_SCOPES). Default: FAKE_TOKEN. */
  readonly tokens?: readonly string[] | Readonly<Record<string, FakeToken>>;
  /** Default: DEFAULT_CHANNELS. */
  readonly channels?: readonly FakeChannel[];
  readonly rateLimit?: RateLimitSpec;
  /** Also enforce kubecano's own budget (`checkLimits`). Default true. */
  readonly kubecanoLimits?: boolean;
  /** Aggregate text of all blocks above which Slack answers msg_blocks_too_long. Default 12000. */
  readonly maxBlockChars?: number;
  /** Fixes the seconds part of every `ts` (deterministic ts for snapshots). Default: the wall clock. */
  readonly tsBaseSeconds?: number;
}

/** Which requests a fault applies to. All given criteria must match. */
export interface FaultMatch {
  /**
   * Web API method ("chat.postMessage"), "webhook" for incoming webhook
   * posts, or "upload" for the bytes POSTed to a files upload_url.
   */
  readonly method?: string | readonly string[];
  /** Channel name ("#alerts", "alerts") or ID; matches the call's channel / channel_id. */
  readonly channel?: string;
}

export interface FaultHandle {
  /** Requests this fault has applied to so far. */
  readonly hits: number;
  remove(): void;
}

export interface HangHandle extends FaultHandle {
  /** Requests currently held. */
  readonly waiting: number;
  /** Lets the held requests (and later ones) proceed normally, and removes the fault. */
  release(): void;
}

export type CallOutcome = "pending" | "ok" | "error" | "rate_limited" | "fault" | "closed";

/** One HTTP request the fake received. Mutated in place as it is answered. */
export interface FakeCall {
  readonly seq: number;
  /** Web API method, "webhook", "upload", or the unknown path's first segment. */
  readonly method: string;
  /** Parsed params: JSON-encoded fields (blocks, attachments, metadata, files) decoded; the token removed. */
  readonly params: Record<string, unknown>;
  readonly token: string | undefined;
  /** The request's Content-Type (what the SDK sent: form-urlencoded, multipart, JSON). */
  readonly contentType: string | undefined;
  /** The channel ID the call targeted when it resolved, else the channel as given. */
  channel: string | undefined;
  readonly thread_ts: string | undefined;
  /** ms since the fake started (monotonic). */
  readonly at: number;
  /** HTTP status answered; undefined while pending or when the connection was closed. */
  status: number | undefined;
  /** Slack's error code for ok:false answers, webhook error texts and 429s. */
  error: string | undefined;
  outcome: CallOutcome;
  /** The body answered (JSON object, or text for webhooks and uploads). */
  response: unknown;
}

export interface FakeFileRef {
  readonly id: string;
  readonly title: string | undefined;
  readonly name: string;
  readonly size: number;
}

/** A message as stored in a channel. Updates mutate it in place. */
export interface FakeMessage {
  readonly channel: string;
  readonly ts: string;
  /** The parent's ts for replies (never set on top-level messages here). */
  readonly thread_ts: string | undefined;
  text: string;
  blocks: unknown[] | undefined;
  attachments: unknown[] | undefined;
  metadata: { event_type: string; event_payload: Record<string, unknown> } | undefined;
  readonly via: "api" | "webhook";
  readonly subtype: "file_share" | "thread_broadcast" | undefined;
  readonly files: readonly FakeFileRef[] | undefined;
  readonly username: string | undefined;
  readonly icon_emoji: string | undefined;
  /** How many times chat.update changed it. */
  edits: number;
  /** thread_ts named no message in the channel: Slack answers ok and the reply is lost. */
  readonly orphan: boolean;
  /** thread_ts named a reply instead of the parent (Slack files it under the parent). */
  readonly threadTsWasReply: boolean;
}

export interface FakeFile {
  readonly id: string;
  readonly filename: string;
  /** `length` as declared to files.getUploadURLExternal. */
  readonly declaredLength: number;
  /** The bytes POSTed to the upload_url, once they arrive. */
  bytes: Buffer | undefined;
  title: string | undefined;
  completed: boolean;
  channel: string | undefined;
  thread_ts: string | undefined;
  initial_comment: string | undefined;
}

export interface FakeStats {
  readonly calls: number;
  /** All messages stored, top-level and replies, from the API and webhooks. */
  readonly messages: number;
  readonly topLevel: number;
  readonly replies: number;
  /** Successful chat.update calls. */
  readonly updates: number;
  /** Files completed (shared or not). */
  readonly files: number;
  /** Answers with HTTP 429 (rate limits and injected 429s). */
  readonly rateLimited: number;
  /** ok:false answers and webhook error answers. */
  readonly errors: number;
}

export interface SlackFake {
  /** Web API base for `slackApiUrl` / `api_url`: "http://127.0.0.1:PORT/api/". */
  readonly url: string;
  /** "http://127.0.0.1:PORT". */
  readonly origin: string;
  /** The first accepted token. */
  readonly token: string;
  /** ID of the first channel ("C0ALERTS01" with the default channels). */
  readonly channelId: string;
  /**
   * An incoming webhook URL posting to `channel` (name or ID; default the
   * first channel): `<origin>/services/T…/B…/<secret>`. Stable per channel.
   */
  webhookUrl(channel?: string): string;
  /** Makes a webhook URL answer 404 no_service from now on. */
  revokeWebhook(url: string): void;

  readonly calls: readonly FakeCall[];
  readonly messages: readonly FakeMessage[];
  readonly files: readonly FakeFile[];
  readonly channels: readonly FakeChannel[];

  callsTo(method: string): FakeCall[];
  /** Top-level messages (oldest first), optionally of one channel (name or ID). */
  topLevel(channel?: string): FakeMessage[];
  /** Replies of a thread (oldest first). */
  replies(channel: string, threadTs: string): FakeMessage[];
  message(channel: string, ts: string): FakeMessage | undefined;
  stats(): FakeStats;
  /** Resolves once `predicate` holds (checked after every request); rejects after `timeoutMs` (default 10 s). */
  waitFor(predicate: () => boolean, timeoutMs?: number): Promise<void>;

  // Fault injection. Faults are checked in the order they were added; the first that matches applies.
  /** Answers HTTP `status` (default 500) to the next `n` matching requests. A 429 carries Retry-After (`retryAfter`, default 1). */
  failNext(n: number, opts?: FaultMatch & { status?: number; retryAfter?: number; body?: string }): FaultHandle;
  /** Answers HTTP `status` (default 503) to every matching request for `ms` milliseconds. */
  failFor(ms: number, opts?: FaultMatch & { status?: number; retryAfter?: number; body?: string }): FaultHandle;
  /** Holds matching requests without answering (the first `count`, default all) until `release()`. */
  hang(opts?: FaultMatch & { count?: number }): HangHandle;
  /** Delays the answer to matching requests (the next `count`, default all) by `ms`. */
  delay(ms: number, opts?: FaultMatch & { count?: number }): FaultHandle;
  /** Answers `{ok:false, error}` (webhooks: the error text with Slack's status) to matching requests (the next `count`, default all). */
  platformError(error: string, opts?: FaultMatch & { count?: number; needed?: string }): FaultHandle;
  /** Destroys the connection of the next `n` matching requests without an answer. */
  closeNext(n: number, opts?: FaultMatch): FaultHandle;
  /** Removes every fault and lets held requests proceed. */
  clearFaults(): void;

  // State controls.
  setRateLimit(spec: RateLimitSpec | undefined): void;
  addChannel(channel: FakeChannel): void;
  /** Sets flags on a channel (by name or ID), e.g. `{ archived: true }` or `{ member: false }`. */
  updateChannel(channel: string, changes: Partial<Omit<FakeChannel, "id" | "name">>): void;
  addToken(token: string, info?: FakeToken): void;
  revokeToken(token: string): void;
  setScopes(token: string, scopes: readonly string[]): void;
  /**
   * Forgets calls, messages, files, faults and rate-limit state (not
   * channels, tokens or webhooks). Held requests are dropped unprocessed, so
   * nothing from one test lands in the next.
   */
  reset(): void;
  /** Destroys held connections and stops the server. */
  close(): Promise<void>;
}

// ───────────────────────────── internals ─────────────────────────────

/** An error answer: `{ok:false, error, ...extra}` (HTTP 200), or the webhook's text + status. */
interface SlackErr {
  readonly error: string;
  readonly extra?: Record<string, unknown>;
}

type FaultAction =
  | { kind: "status"; status: number; retryAfter: number; body: string | undefined }
  | { kind: "hang" }
  | { kind: "delay"; ms: number }
  | { kind: "error"; error: string; needed: string | undefined }
  | { kind: "close" };

interface Fault {
  readonly match: FaultMatch;
  readonly action: FaultAction;
  /** Requests it still applies to. */
  remaining: number;
  /** Date.now() after which it no longer applies. */
  readonly until: number;
  hits: number;
  removed: boolean;
}

interface Bucket {
  tokens: number;
  last: number;
}

/** What a request handler produces; `send` writes it. */
type Answer =
  | { kind: "json"; status: number; body: Record<string, unknown>; headers?: Record<string, string> }
  | { kind: "text"; status: number; body: string; headers?: Record<string, string> };

/** Which scope each method needs (for missing_scope). */
const METHOD_SCOPES: Readonly<Record<string, string | undefined>> = {
  "auth.test": undefined,
  "chat.postMessage": "chat:write",
  "chat.update": "chat:write",
  "conversations.history": "channels:history",
  "conversations.replies": "channels:history",
  "conversations.list": "channels:read",
  "chat.getPermalink": undefined,
  "files.getUploadURLExternal": "files:write",
  "files.completeUploadExternal": "files:write",
};

/** Params that @slack/web-api JSON-encodes into one form field. */
const JSON_FIELDS = ["blocks", "attachments", "metadata", "files"] as const;

/** HTTP status Slack uses for each incoming-webhook error text (docs.slack.dev, incoming webhooks "Handling errors"). */
const WEBHOOK_ERROR_STATUS: Readonly<Record<string, number>> = {
  invalid_payload: 400,
  invalid_blocks: 400,
  invalid_blocks_format: 400,
  no_text: 400,
  too_many_attachments: 400,
  msg_too_long: 400,
  msg_blocks_too_long: 400,
  no_service_id: 400,
  no_team: 400,
  action_prohibited: 403,
  posting_to_general_channel_denied: 403,
  invalid_token: 403,
  no_service: 404,
  user_not_found: 404,
  channel_not_found: 404,
  team_disabled: 404,
  channel_is_archived: 410,
};

/** Marks a JSON field that did not parse. */
const INVALID_JSON = Symbol("invalid JSON");

const MAX_BODY_BYTES = 64 * 1024 * 1024;

export async function startSlackFake(opts: SlackFakeOptions = {}): Promise<SlackFake> {
  const started = performance.now();
  const kubecanoLimits = opts.kubecanoLimits ?? true;
  const maxBlockChars = opts.maxBlockChars ?? 12_000;

  // ── state ──
  const tokens = new Map<string, FakeToken>();
  if (opts.tokens === undefined) tokens.set(FAKE_TOKEN, { scopes: DEFAULT_SCOPES });
  else if (Array.isArray(opts.tokens)) for (const t of opts.tokens as readonly string[]) tokens.set(t, { scopes: DEFAULT_SCOPES });
  else for (const [t, info] of Object.entries(opts.tokens as Readonly<Record<string, FakeToken>>)) tokens.set(t, { scopes: DEFAULT_SCOPES, ...info });
  const channels: FakeChannel[] = (opts.channels ?? DEFAULT_CHANNELS).map((c) => ({ ...c }));
  if (channels.length === 0) throw new Error("startSlackFake: at least one channel is needed");
  const calls: FakeCall[] = [];
  const messages: FakeMessage[] = [];
  const files: FakeFile[] = [];
  const webhooks = new Map<string, { channel: string; revoked: boolean }>(); // path after /services/ → channel ID
  let faults: Fault[] = [];
  let rateLimit = opts.rateLimit;
  let buckets = new Map<string, Bucket>();
  const held = new Set<{ proceed: () => void; res: ServerResponse }>();
  const timers = new Set<NodeJS.Timeout>();
  const sockets = new Set<Socket>();
  const waiters = new Set<() => void>();
  let seq = 0;
  let fileSeq = 0;
  let lastSec = 0;
  let lastMicro = 0;
  let closing = false;
  /** Bumped by reset(): requests still waiting on a fault from before it are dropped. */
  let generation = 0;

  const now = (): number => performance.now() - started;
  const notify = (): void => {
    for (const w of [...waiters]) w();
  };

  // ── channels, tokens, ts ──

  /** By ID, or by name with or without "#" when `byName` (only chat.postMessage resolves names). */
  function findChannel(ref: string | undefined, byName: boolean): FakeChannel | undefined {
    if (ref === undefined || ref === "") return undefined;
    const byId = channels.find((c) => c.id === ref);
    if (byId !== undefined || !byName) return byId;
    const name = ref.startsWith("#") ? ref.slice(1) : ref;
    return channels.find((c) => c.name === name);
  }

  /** Resolves a channel reference for a fault or query: name or ID, never failing. */
  function channelIdOf(ref: string): string {
    return findChannel(ref, true)?.id ?? ref;
  }

  /**
   * Channel-level access as Slack checks it for a bot token. `write` decides
   * whether a non-member public channel is writable (chat:write.public).
   */
  function channelAccess(ref: string | undefined, byName: boolean, scopes: readonly string[], write: boolean): FakeChannel | SlackErr {
    const ch = findChannel(ref, byName);
    if (ch === undefined) return { error: "channel_not_found" };
    const member = ch.member ?? true;
    if (!member && ch.private === true) return { error: "channel_not_found" };
    if (ch.archived === true) return { error: "is_archived" };
    if (!member && !(write && scopes.includes("chat:write.public"))) return { error: "not_in_channel" };
    return ch;
  }

  /** Unique, increasing "1732617486.000100"-style timestamps. */
  function nextTs(): string {
    let sec = opts.tsBaseSeconds ?? Math.floor(Date.now() / 1000);
    if (sec < lastSec) sec = lastSec;
    let micro = sec === lastSec ? lastMicro + 100 : 100;
    if (micro > 999_999) {
      sec++;
      micro = 100;
    }
    lastSec = sec;
    lastMicro = micro;
    return `${sec}.${String(micro).padStart(6, "0")}`;
  }

  // ── rate limiting ──

  /** Takes one token from the bucket; returns the seconds to wait when it is empty. */
  function take(key: string, spec: TokenBucketSpec): number | undefined {
    const t = Date.now();
    const b = buckets.get(key) ?? { tokens: spec.burst, last: t };
    b.tokens = Math.min(spec.burst, b.tokens + ((t - b.last) / 1000) * spec.ratePerSec);
    b.last = t;
    buckets.set(key, b);
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return undefined;
    }
    return Math.max(1, Math.ceil((1 - b.tokens) / spec.ratePerSec));
  }

  /** Seconds to wait when the call is over a limit; `postsTo` is the channel a message is being posted to. */
  function rateLimited(method: string, postsTo: string | undefined): number | undefined {
    const perMethod = rateLimit?.perMethod?.[method];
    if (perMethod !== undefined) {
      const wait = take(`method:${method}`, perMethod);
      if (wait !== undefined) return wait;
    }
    const perChannel = rateLimit?.perChannel;
    if (perChannel !== undefined && postsTo !== undefined) return take(`channel:${postsTo}`, perChannel);
    return undefined;
  }

  // ── faults ──

  function addFault(match: FaultMatch, action: FaultAction, remaining: number, until = Number.POSITIVE_INFINITY): Fault {
    const f: Fault = { match, action, remaining, until, hits: 0, removed: false };
    faults.push(f);
    return f;
  }

  function removeFault(f: Fault): void {
    f.removed = true;
    faults = faults.filter((x) => x !== f);
  }

  function handleOf(f: Fault): FaultHandle {
    return {
      get hits() {
        return f.hits;
      },
      remove: () => removeFault(f),
    };
  }

  function faultMatches(f: Fault, method: string, channel: string | undefined): boolean {
    if (f.removed || f.remaining <= 0 || Date.now() > f.until) return false;
    const m = f.match.method;
    if (m !== undefined && !(typeof m === "string" ? m === method : m.includes(method))) return false;
    if (f.match.channel !== undefined && (channel === undefined || channelIdOf(f.match.channel) !== channel)) return false;
    return true;
  }

  /** The first applicable fault, consumed. */
  function takeFault(method: string, channel: string | undefined): Fault | undefined {
    faults = faults.filter((f) => f.remaining > 0 && Date.now() <= f.until && !f.removed);
    const f = faults.find((x) => faultMatches(x, method, channel));
    if (f === undefined) return undefined;
    f.remaining--;
    f.hits++;
    return f;
  }

  function releaseHeld(): void {
    for (const h of [...held]) {
      held.delete(h);
      h.proceed();
    }
  }

  /** Forgets held requests without processing them (their connections are closed). */
  function dropHeld(): void {
    for (const h of held) {
      h.res.destroy();
      h.res.socket?.destroy();
    }
    held.clear();
  }

  function sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        timers.delete(t);
        resolve();
      }, ms);
      timers.add(t);
    });
  }

  // ── HTTP plumbing ──

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((e: unknown) => {
      // A bug in the fake itself: answer 500 so the test sees it rather than hangs.
      if (!res.headersSent) {
        res.writeHead(500, { "content-type": "text/plain" });
        res.end(`slack fake crashed: ${e instanceof Error ? e.stack ?? e.message : String(e)}`);
      }
    });
  });
  server.on("connection", (s) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  const origin = `http://127.0.0.1:${port}`;

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", origin);
    const raw = await readBody(req);
    if (raw === undefined) {
      res.writeHead(413, { "content-type": "text/plain" }).end("request_too_large");
      return;
    }
    const path = url.pathname;
    if (path.startsWith("/api/")) return handleApi(req, res, url, raw);
    if (path.startsWith("/services/")) return handleWebhook(req, res, path.slice("/services/".length), raw);
    if (path.startsWith("/upload/v1/")) return handleUpload(req, res, path.slice("/upload/v1/".length), raw);
    res.writeHead(404, { "content-type": "text/plain" }).end("not_found");
  }

  /** Records the call, applies faults, then runs `work` unless a fault answered. */
  async function run(res: ServerResponse, call: FakeCall, webhook: boolean, work: () => Answer | Promise<Answer>): Promise<void> {
    calls.push(call);
    notify();
    const gen = generation;
    const fault = takeFault(call.method, call.channel);
    if (fault !== undefined) {
      const a = fault.action;
      switch (a.kind) {
        case "close":
          call.outcome = "closed";
          res.socket?.destroy();
          notify();
          return;
        case "hang":
          // Held even if the client gives up: on release the request is
          // processed as Slack would (a message may be posted that the client
          // never heard about, as after a real timeout).
          await new Promise<void>((resolve) => held.add({ proceed: resolve, res }));
          break;
        case "delay":
          await sleep(a.ms);
          break;
        case "status": {
          const headers: Record<string, string> = { "content-type": "text/plain; charset=utf-8" };
          if (a.status === 429) headers["retry-after"] = String(a.retryAfter);
          else if (a.status === 503 && a.retryAfter > 0) headers["retry-after"] = String(a.retryAfter);
          call.outcome = a.status === 429 ? "rate_limited" : "fault";
          call.error = a.status === 429 ? "ratelimited" : undefined;
          send(res, call, { kind: "text", status: a.status, body: a.body ?? `fake Slack: injected HTTP ${a.status}`, headers });
          return;
        }
        case "error": {
          call.outcome = "error";
          call.error = a.error;
          if (webhook) send(res, call, { kind: "text", status: WEBHOOK_ERROR_STATUS[a.error] ?? 400, body: a.error });
          else send(res, call, errorAnswer({ error: a.error, ...(a.needed !== undefined ? { extra: { needed: a.needed } } : {}) }));
          return;
        }
      }
    }
    if (closing || gen !== generation) {
      res.destroy();
      return;
    }
    const answer = await work();
    if (call.outcome === "pending") {
      if (answer.status === 429) call.outcome = "rate_limited";
      else if (answer.kind === "json" && answer.body["ok"] === false) call.outcome = "error";
      else if (answer.kind === "text" && answer.status !== 200) call.outcome = "error";
      else call.outcome = "ok";
    }
    if (call.error === undefined) {
      if (answer.kind === "json" && answer.body["ok"] === false) call.error = String(answer.body["error"]);
      else if (answer.kind === "text" && answer.status !== 200) call.error = answer.body;
    }
    send(res, call, answer);
  }

  function send(res: ServerResponse, call: FakeCall, a: Answer): void {
    call.status = a.status;
    call.response = a.body;
    if (!res.destroyed && !res.writableEnded) {
      if (a.kind === "json") {
        res.writeHead(a.status, { "content-type": "application/json; charset=utf-8", ...a.headers });
        res.end(JSON.stringify(a.body));
      } else {
        res.writeHead(a.status, { "content-type": "text/plain; charset=utf-8", ...a.headers });
        res.end(a.body);
      }
    }
    notify();
  }

  function newCall(req: IncomingMessage, method: string, params: Record<string, unknown>, token: string | undefined, channel: string | undefined, threadTs: string | undefined): FakeCall {
    return {
      seq: ++seq,
      method,
      params,
      token,
      contentType: req.headers["content-type"],
      channel,
      thread_ts: threadTs,
      at: now(),
      status: undefined,
      error: undefined,
      outcome: "pending",
      response: undefined,
    };
  }

  // ── Web API ──

  async function handleApi(req: IncomingMessage, res: ServerResponse, url: URL, raw: Buffer): Promise<void> {
    const method = url.pathname.slice("/api/".length);
    const parsed = await parseParams(req, url, raw);
    const params = parsed.params;
    const bearer = /^Bearer\s+(.+)$/i.exec(req.headers.authorization ?? "")?.[1]?.trim();
    const formToken = typeof params["token"] === "string" ? params["token"] : undefined;
    delete params["token"];
    const token = bearer ?? formToken;
    const channelRef = str(params["channel"]) ?? str(params["channel_id"]);
    const call = newCall(req, method, params, token, channelRef !== undefined ? channelIdOf(channelRef) : undefined, str(params["thread_ts"]));
    await run(res, call, false, () => {
      if (parsed.error !== undefined) return errorAnswer(parsed.error);
      const handler = API_METHODS[method];
      if (handler === undefined) return errorAnswer({ error: "unknown_method", extra: { req_method: method } });
      // Authentication, then the method's scope, as Slack checks them.
      if (token === undefined || token === "") return errorAnswer({ error: "not_authed" });
      const info = tokens.get(token);
      if (info === undefined) return errorAnswer({ error: "invalid_auth" });
      if (info.revoked === true) return errorAnswer({ error: "token_revoked" });
      const scopes = info.scopes ?? DEFAULT_SCOPES;
      const needed = METHOD_SCOPES[method];
      const scopeHeaders = { "x-oauth-scopes": scopes.join(","), "x-accepted-oauth-scopes": needed ?? "" };
      if (needed !== undefined && !scopes.includes(needed)) {
        return { ...errorAnswer({ error: "missing_scope", extra: { needed, provided: scopes.join(",") } }), headers: scopeHeaders };
      }
      const answer = handler({ params, scopes, call });
      return answer.kind === "json" ? { ...answer, headers: { ...scopeHeaders, ...answer.headers } } : answer;
    });
  }

  interface Ctx {
    readonly params: Record<string, unknown>;
    readonly scopes: readonly string[];
    readonly call: FakeCall;
  }

  const API_METHODS: Readonly<Record<string, (ctx: Ctx) => Answer>> = {
    "auth.test": () =>
      okAnswer({
        url: `${origin}/`,
        team: "Fake Workspace",
        user: "kubecano",
        team_id: FAKE_TEAM_ID,
        user_id: FAKE_BOT_USER_ID,
        bot_id: FAKE_BOT_ID,
        is_enterprise_install: false,
      }),

    "chat.postMessage": ({ params, scopes, call }) => {
      const ch = channelAccess(str(params["channel"]), true, scopes, true);
      if (isErr(ch)) return errorAnswer(ch);
      call.channel = ch.id;
      const content = messageContent(params);
      if (isErr(content)) return errorAnswer(content);
      const wait = rateLimited("chat.postMessage", ch.id);
      if (wait !== undefined) return rateLimitAnswer(wait);
      const thread = resolveThread(ch.id, str(params["thread_ts"]));
      const broadcast = thread.thread_ts !== undefined && bool(params["reply_broadcast"]);
      const msg: FakeMessage = {
        channel: ch.id,
        ts: nextTs(),
        thread_ts: thread.thread_ts,
        ...content,
        via: "api",
        subtype: broadcast ? "thread_broadcast" : undefined,
        files: undefined,
        username: str(params["username"]),
        icon_emoji: str(params["icon_emoji"]),
        edits: 0,
        orphan: thread.orphan,
        threadTsWasReply: thread.wasReply,
      };
      messages.push(msg);
      return okAnswer({ channel: ch.id, ts: msg.ts, message: messageJson(msg, true) });
    },

    "chat.update": ({ params, scopes, call }) => {
      // Like Slack, chat.update wants the channel ID, not a name.
      const ch = channelAccess(str(params["channel"]), false, scopes, true);
      if (isErr(ch)) return errorAnswer(ch);
      call.channel = ch.id;
      const ts = str(params["ts"]);
      const msg = ts !== undefined ? messages.find((m) => m.channel === ch.id && m.ts === ts) : undefined;
      if (msg === undefined) return errorAnswer({ error: "message_not_found" });
      if (msg.via === "webhook" || msg.subtype === "file_share") return errorAnswer({ error: "cant_update_message" });
      // Omitted blocks/attachments/metadata keep the previous ones; text is replaced when given.
      const next = {
        text: str(params["text"]) ?? (params["blocks"] !== undefined || params["attachments"] !== undefined ? "" : msg.text),
        blocks: params["blocks"] !== undefined ? params["blocks"] : msg.blocks,
        attachments: params["attachments"] !== undefined ? params["attachments"] : msg.attachments,
        metadata: params["metadata"] !== undefined ? params["metadata"] : msg.metadata,
      };
      const content = messageContent(next);
      if (isErr(content)) return errorAnswer(content);
      const wait = rateLimited("chat.update", undefined);
      if (wait !== undefined) return rateLimitAnswer(wait);
      Object.assign(msg, content);
      msg.edits++;
      return okAnswer({ channel: ch.id, ts: msg.ts, text: msg.text, message: messageJson(msg, true) });
    },

    "conversations.history": ({ params, scopes }) => {
      const ch = channelAccess(str(params["channel"]), false, scopes, false);
      if (isErr(ch)) return errorAnswer(ch);
      if (ch.private === true && !scopes.includes("groups:history")) return errorAnswer({ error: "missing_scope", extra: { needed: "groups:history" } });
      const wait = rateLimited("conversations.history", undefined);
      if (wait !== undefined) return rateLimitAnswer(wait);
      const withMeta = bool(params["include_all_metadata"]);
      const oldest = str(params["oldest"]);
      const latest = str(params["latest"]);
      const inclusive = bool(params["inclusive"]);
      const inRange = (m: FakeMessage): boolean =>
        (oldest === undefined || (inclusive ? tsCmp(m.ts, oldest) >= 0 : tsCmp(m.ts, oldest) > 0)) &&
        (latest === undefined || (inclusive ? tsCmp(m.ts, latest) <= 0 : tsCmp(m.ts, latest) < 0));
      // Top-level messages and broadcast replies, newest first.
      const list = messages
        .filter((m) => m.channel === ch.id && (m.thread_ts === undefined || m.subtype === "thread_broadcast") && inRange(m))
        .sort((a, b) => tsCmp(b.ts, a.ts));
      const page = paginate(list, params, "desc");
      if (isErr(page)) return errorAnswer(page);
      return okAnswer({
        messages: page.items.map((m) => messageJson(m, withMeta)),
        has_more: page.next !== undefined,
        pin_count: 0,
        channel_actions_ts: null,
        channel_actions_count: 0,
        response_metadata: { next_cursor: page.next ?? "" },
      });
    },

    "conversations.list": ({ params }) => {
      const wait = rateLimited("conversations.list", undefined);
      if (wait !== undefined) return rateLimitAnswer(wait);
      const types = (str(params["types"]) ?? "public_channel").split(",").map((t) => t.trim());
      const excludeArchived = bool(params["exclude_archived"]);
      // A bot sees every public channel, and the private ones it is a member of.
      const visible = channels.filter(
        (c) => (c.private === true ? types.includes("private_channel") && (c.member ?? true) : types.includes("public_channel")) && !(excludeArchived && c.archived === true),
      );
      let limit = Number(params["limit"] ?? 100);
      if (!Number.isFinite(limit) || limit <= 0) limit = 100;
      limit = Math.min(Math.floor(limit), 1000);
      let start = 0;
      const cursor = str(params["cursor"]);
      if (cursor !== undefined && cursor !== "") {
        const m = /^next_index:(\d+)$/.exec(Buffer.from(cursor, "base64").toString("utf8"));
        if (m === null) return errorAnswer({ error: "invalid_cursor" });
        start = Number(m[1]);
      }
      const page = visible.slice(start, start + limit);
      const next = start + limit < visible.length ? Buffer.from(`next_index:${start + limit}`).toString("base64") : "";
      return okAnswer({
        channels: page.map((c) => ({ id: c.id, name: c.name, is_channel: c.private !== true, is_private: c.private === true, is_archived: c.archived === true, is_member: c.member ?? true })),
        response_metadata: { next_cursor: next },
      });
    },

    "chat.getPermalink": ({ params, scopes }) => {
      const ch = channelAccess(str(params["channel"]), false, scopes, false);
      if (isErr(ch)) return errorAnswer(ch);
      const ts = str(params["message_ts"]);
      const msg = ts !== undefined ? messages.find((m) => m.channel === ch.id && m.ts === ts) : undefined;
      if (msg === undefined) return errorAnswer({ error: "message_not_found" });
      const p = `${origin}/archives/${ch.id}/p${msg.ts.replace(".", "")}`;
      return okAnswer({ channel: ch.id, permalink: msg.thread_ts !== undefined ? `${p}?thread_ts=${msg.thread_ts}&cid=${ch.id}` : p });
    },

    "conversations.replies": ({ params, scopes }) => {
      const ch = channelAccess(str(params["channel"]), false, scopes, false);
      if (isErr(ch)) return errorAnswer(ch);
      const ts = str(params["ts"]);
      if (ts === undefined) return errorAnswer({ error: "invalid_arguments" });
      const target = messages.find((m) => m.channel === ch.id && m.ts === ts);
      if (target === undefined) return errorAnswer({ error: "thread_not_found" });
      const wait = rateLimited("conversations.replies", undefined);
      if (wait !== undefined) return rateLimitAnswer(wait);
      const parentTs = target.thread_ts ?? target.ts;
      const parent = messages.find((m) => m.channel === ch.id && m.ts === parentTs);
      const thread = [...(parent !== undefined ? [parent] : []), ...threadReplies(ch.id, parentTs)];
      const page = paginate(thread, params, "asc");
      if (isErr(page)) return errorAnswer(page);
      return okAnswer({
        messages: page.items.map((m) => messageJson(m, bool(params["include_all_metadata"]))),
        has_more: page.next !== undefined,
        response_metadata: { next_cursor: page.next ?? "" },
      });
    },

    "files.getUploadURLExternal": ({ params }) => {
      const filename = str(params["filename"]);
      const length = Number(params["length"]);
      if (filename === undefined || filename === "" || !Number.isInteger(length) || length < 0) return errorAnswer({ error: "invalid_arguments" });
      const wait = rateLimited("files.getUploadURLExternal", undefined);
      if (wait !== undefined) return rateLimitAnswer(wait);
      const id = `F0FAKE${String(++fileSeq).padStart(5, "0")}`;
      files.push({ id, filename, declaredLength: length, bytes: undefined, title: undefined, completed: false, channel: undefined, thread_ts: undefined, initial_comment: undefined });
      return okAnswer({ upload_url: `${origin}/upload/v1/${id}`, file_id: id });
    },

    "files.completeUploadExternal": ({ params, scopes, call }) => {
      const list = params["files"];
      if (!Array.isArray(list) || list.length === 0) return errorAnswer({ error: "invalid_arguments" });
      const picked: { file: FakeFile; title: string | undefined }[] = [];
      for (const entry of list as unknown[]) {
        const id = isObj(entry) ? str(entry["id"]) : undefined;
        const file = files.find((f) => f.id === id);
        // The fake's choice of code: Slack does not document the error for an unknown or never-uploaded file.
        if (file === undefined || file.bytes === undefined || file.completed) return errorAnswer({ error: "file_not_found" });
        picked.push({ file, title: isObj(entry) ? str(entry["title"]) : undefined });
      }
      const channelId = str(params["channel_id"]) ?? str(params["channels"]);
      let ch: FakeChannel | undefined;
      if (channelId !== undefined) {
        const access = channelAccess(channelId, false, scopes, true);
        if (isErr(access)) return errorAnswer(access);
        ch = access;
        call.channel = ch.id;
      }
      const wait = rateLimited("files.completeUploadExternal", ch?.id);
      if (wait !== undefined) return rateLimitAnswer(wait);
      const initial = str(params["initial_comment"]);
      const threadTs = ch !== undefined ? str(params["thread_ts"]) : undefined;
      for (const { file, title } of picked) {
        file.completed = true;
        file.title = title ?? file.filename;
        file.channel = ch?.id;
        file.thread_ts = threadTs;
        file.initial_comment = initial;
      }
      let shareTs: string | undefined;
      if (ch !== undefined) {
        const thread = resolveThread(ch.id, threadTs);
        const msg: FakeMessage = {
          channel: ch.id,
          ts: nextTs(),
          thread_ts: thread.thread_ts,
          text: initial ?? "",
          blocks: undefined,
          attachments: undefined,
          metadata: undefined,
          via: "api",
          subtype: "file_share",
          files: picked.map(({ file }) => fileRef(file)),
          username: undefined,
          icon_emoji: undefined,
          edits: 0,
          orphan: thread.orphan,
          threadTsWasReply: thread.wasReply,
        };
        messages.push(msg);
        shareTs = msg.ts;
      }
      return okAnswer({
        files: picked.map(({ file }) => ({
          ...fileRef(file),
          filetype: "text",
          mimetype: "text/plain",
          user: FAKE_BOT_USER_ID,
          ...(ch !== undefined && shareTs !== undefined
            ? { shares: { [ch.private === true ? "private" : "public"]: { [ch.id]: [{ ts: shareTs, ...(file.thread_ts !== undefined ? { thread_ts: file.thread_ts } : {}) }] } } }
            : {}),
        })),
      });
    },
  };

  /** A reply goes under its parent; a thread_ts naming nothing is accepted and the reply is lost, as in Slack. */
  function resolveThread(channel: string, threadTs: string | undefined): { thread_ts: string | undefined; orphan: boolean; wasReply: boolean } {
    if (threadTs === undefined || threadTs === "") return { thread_ts: undefined, orphan: false, wasReply: false };
    const target = messages.find((m) => m.channel === channel && m.ts === threadTs);
    if (target === undefined) return { thread_ts: threadTs, orphan: true, wasReply: false };
    if (target.thread_ts !== undefined) return { thread_ts: target.thread_ts, orphan: false, wasReply: true };
    return { thread_ts: threadTs, orphan: false, wasReply: false };
  }

  function threadReplies(channel: string, parentTs: string): FakeMessage[] {
    return messages.filter((m) => m.channel === channel && m.thread_ts === parentTs && !m.orphan).sort((a, b) => tsCmp(a.ts, b.ts));
  }

  /** A message as conversations.* and chat.* return it. */
  function messageJson(m: FakeMessage, withMetadata: boolean): Record<string, unknown> {
    const out: Record<string, unknown> = {
      type: "message",
      ...(m.subtype !== undefined ? { subtype: m.subtype } : {}),
      text: m.text,
      ts: m.ts,
      user: FAKE_BOT_USER_ID,
      bot_id: FAKE_BOT_ID,
      app_id: FAKE_APP_ID,
      team: FAKE_TEAM_ID,
    };
    if (m.blocks !== undefined) out["blocks"] = m.blocks;
    if (m.attachments !== undefined) out["attachments"] = m.attachments.map((a, i) => (isObj(a) ? { id: i + 1, ...a } : a));
    if (m.files !== undefined) out["files"] = m.files;
    if (m.username !== undefined) out["username"] = m.username;
    if (m.icon_emoji !== undefined) out["icons"] = { emoji: m.icon_emoji };
    if (m.edits > 0) out["edited"] = { user: FAKE_BOT_USER_ID, ts: m.ts };
    if (withMetadata && m.metadata !== undefined) out["metadata"] = m.metadata;
    if (m.thread_ts !== undefined) {
      out["thread_ts"] = m.thread_ts;
      out["parent_user_id"] = FAKE_BOT_USER_ID;
    } else {
      const replies = threadReplies(m.channel, m.ts);
      if (replies.length > 0) {
        out["thread_ts"] = m.ts;
        out["reply_count"] = replies.length;
        out["reply_users_count"] = 1;
        out["reply_users"] = [FAKE_BOT_USER_ID];
        out["latest_reply"] = replies[replies.length - 1]!.ts;
      }
    }
    return out;
  }

  /**
   * Validates a message's text, blocks, attachments and metadata as Slack
   * would, returning the stored form or the error Slack answers.
   */
  function messageContent(p: Record<string, unknown>): SlackErr | Pick<FakeMessage, "text" | "blocks" | "attachments" | "metadata"> {
    const text = p["text"] === undefined || p["text"] === null ? "" : String(p["text"]);
    const blocks = p["blocks"];
    const attachments = p["attachments"];
    const metadata = p["metadata"];
    if (blocks === INVALID_JSON || (blocks !== undefined && !Array.isArray(blocks))) return { error: "invalid_blocks_format" };
    if (attachments === INVALID_JSON || (attachments !== undefined && !Array.isArray(attachments))) return { error: "invalid_attachments" };
    if (Array.isArray(attachments) && attachments.length > 100) return { error: "too_many_attachments" };
    const hasBlocks = Array.isArray(blocks) && blocks.length > 0;
    const hasAttachments = Array.isArray(attachments) && attachments.length > 0;
    if (text.trim() === "" && !hasBlocks && !hasAttachments) return { error: "no_text" };
    if (text.length > 40_000) return { error: "msg_too_long" };
    const problems = checkBlockKit(blocks as unknown[] | undefined, attachments as unknown[] | undefined, maxBlockChars);
    if (problems.tooLong) return { error: "msg_blocks_too_long", extra: { errors: problems.errors } };
    if (problems.errors.length > 0) return { error: "invalid_blocks", extra: { errors: problems.errors, response_metadata: { messages: problems.errors.map((e) => `[ERROR] ${e}`) } } };
    if (kubecanoLimits) {
      const kubecano = kubecanoCheck(text, blocks as unknown[] | undefined, attachments as unknown[] | undefined);
      if (kubecano !== undefined) return kubecano;
    }
    let meta: FakeMessage["metadata"];
    if (metadata !== undefined) {
      if (metadata === INVALID_JSON || !isObj(metadata)) return { error: "invalid_metadata_format" };
      const type = metadata["event_type"];
      const payload = metadata["event_payload"];
      if (typeof type !== "string" || type === "" || !isObj(payload)) return { error: "invalid_metadata_schema" };
      meta = { event_type: type, event_payload: payload };
    }
    return {
      text,
      blocks: Array.isArray(blocks) ? blocks : undefined,
      attachments: Array.isArray(attachments) ? attachments : undefined,
      metadata: meta,
    };
  }

  /** kubecano's own, stricter budget; a failure means a renderer bug. */
  function kubecanoCheck(text: string, blocks: unknown[] | undefined, attachments: unknown[] | undefined): SlackErr | undefined {
    let problems: string[];
    try {
      const atts = (attachments ?? []).map((a) => ({ color: "", ...(isObj(a) ? a : {}), blocks: isObj(a) && Array.isArray(a["blocks"]) ? a["blocks"] : [] }));
      problems = checkLimits({ text, blocks: (blocks ?? []) as SlackMessage["blocks"], attachments: atts as SlackMessage["attachments"] });
    } catch (e) {
      problems = [`checkLimits threw: ${e instanceof Error ? e.message : String(e)}`];
    }
    if (problems.length === 0) return undefined;
    const errors = problems.map((p) => `kubecano limits: ${p}`);
    if (problems.some((p) => p === "text is empty")) return { error: "no_text", extra: { errors } };
    if (problems.some((p) => p.startsWith("text has"))) return { error: "msg_too_long", extra: { errors } };
    if (problems.some((p) => p.startsWith("blocks hold"))) return { error: "msg_blocks_too_long", extra: { errors } };
    return { error: "invalid_blocks", extra: { errors } };
  }

  function paginate(list: FakeMessage[], params: Record<string, unknown>, order: "asc" | "desc"): SlackErr | { items: FakeMessage[]; next: string | undefined } {
    const limitRaw = params["limit"];
    let limit = limitRaw === undefined || limitRaw === "" ? 100 : Number(limitRaw);
    if (!Number.isFinite(limit) || limit <= 0) limit = 100;
    limit = Math.min(Math.floor(limit), 999);
    let start = 0;
    const cursor = str(params["cursor"]);
    if (cursor !== undefined && cursor !== "") {
      const m = /^next_ts:(\d+\.\d+)$/.exec(Buffer.from(cursor, "base64").toString("utf8"));
      if (m === null) return { error: "invalid_cursor" };
      const from = m[1]!;
      start = list.findIndex((x) => (order === "desc" ? tsCmp(x.ts, from) <= 0 : tsCmp(x.ts, from) >= 0));
      if (start < 0) start = list.length;
    }
    const items = list.slice(start, start + limit);
    const following = list[start + limit];
    return { items, next: following !== undefined ? Buffer.from(`next_ts:${following.ts}`).toString("base64") : undefined };
  }

  // ── files: the bytes POSTed to upload_url ──

  async function handleUpload(req: IncomingMessage, res: ServerResponse, id: string, raw: Buffer): Promise<void> {
    const call = newCall(req, "upload", { file_id: id, bytes: raw.length }, undefined, undefined, undefined);
    await run(res, call, false, async () => {
      const file = files.find((f) => f.id === id);
      if (file === undefined || file.completed) return { kind: "text", status: 404, body: "file_not_found" };
      let bytes = raw;
      const ct = req.headers["content-type"] ?? "";
      if (/^multipart\/form-data/i.test(ct)) {
        // @slack/web-api sends the bytes as a multipart form field (named "body").
        try {
          const form = await new Response(raw, { headers: { "content-type": ct } }).formData();
          const part = [...form.values()].find((v): v is File => typeof v !== "string");
          if (part === undefined) return { kind: "text", status: 400, body: "no_file_data" };
          bytes = Buffer.from(await part.arrayBuffer());
        } catch {
          return { kind: "text", status: 400, body: "invalid_multipart" };
        }
      }
      file.bytes = bytes;
      return { kind: "text", status: 200, body: `OK - ${bytes.length}` };
    });
  }

  // ── incoming webhooks ──

  async function handleWebhook(req: IncomingMessage, res: ServerResponse, hookPath: string, raw: Buffer): Promise<void> {
    const hook = webhooks.get(hookPath);
    const body = parseWebhookBody(req, raw);
    const params = body === undefined ? {} : body;
    const call = newCall(req, "webhook", params, undefined, hook?.channel, undefined);
    await run(res, call, true, () => {
      const fail = (error: string): Answer => ({ kind: "text", status: WEBHOOK_ERROR_STATUS[error] ?? 400, body: error });
      if (!/^T[A-Z0-9]+\/B[A-Z0-9]+\/[A-Za-z0-9]+$/.test(hookPath)) return fail(hookPath.startsWith("T") ? "no_service_id" : "no_team");
      if (hook === undefined || hook.revoked) return fail("no_service");
      if (body === undefined) return fail("invalid_payload");
      const ch = channels.find((c) => c.id === hook.channel);
      if (ch === undefined) return fail("channel_not_found");
      if (ch.archived === true) return fail("channel_is_archived");
      const content = messageContent(params);
      if (isErr(content)) return fail(content.error === "invalid_blocks_format" || content.error === "invalid_metadata_format" || content.error === "invalid_metadata_schema" ? "invalid_blocks" : content.error);
      const wait = rateLimited("webhook", ch.id);
      if (wait !== undefined) return { kind: "text", status: 429, body: "rate_limited", headers: { "retry-after": String(wait) } };
      // Incoming webhooks ignore metadata and the channel/username overrides.
      messages.push({
        channel: ch.id,
        ts: nextTs(),
        thread_ts: undefined,
        ...content,
        metadata: undefined,
        via: "webhook",
        subtype: undefined,
        files: undefined,
        username: undefined,
        icon_emoji: undefined,
        edits: 0,
        orphan: false,
        threadTsWasReply: false,
      });
      return { kind: "text", status: 200, body: "ok" };
    });
  }

  function webhookUrl(channel?: string): string {
    const ch = channel === undefined ? channels[0]! : findChannel(channel, true);
    if (ch === undefined) throw new Error(`slack fake: no channel ${channel}`);
    for (const [p, h] of webhooks) if (h.channel === ch.id && !h.revoked) return `${origin}/services/${p}`;
    const p = `${FAKE_TEAM_ID}/B${randomBytes(5).toString("hex").toUpperCase()}/${randomBytes(12).toString("hex")}`;
    webhooks.set(p, { channel: ch.id, revoked: false });
    return `${origin}/services/${p}`;
  }

  // ── the handle ──

  const fake: SlackFake = {
    url: `${origin}/api/`,
    origin,
    token: tokens.keys().next().value ?? FAKE_TOKEN,
    channelId: channels[0]!.id,
    webhookUrl,
    revokeWebhook(u: string) {
      const p = new URL(u).pathname.replace(/^\/services\//, "");
      const h = webhooks.get(p);
      if (h !== undefined) h.revoked = true;
    },
    calls,
    messages,
    files,
    channels,
    callsTo: (method) => calls.filter((c) => c.method === method),
    topLevel: (channel) => {
      const id = channel !== undefined ? channelIdOf(channel) : undefined;
      return messages.filter((m) => m.thread_ts === undefined && (id === undefined || m.channel === id));
    },
    replies: (channel, threadTs) => threadReplies(channelIdOf(channel), threadTs),
    message: (channel, ts) => messages.find((m) => m.channel === channelIdOf(channel) && m.ts === ts),
    stats: () => ({
      calls: calls.length,
      messages: messages.length,
      topLevel: messages.filter((m) => m.thread_ts === undefined).length,
      replies: messages.filter((m) => m.thread_ts !== undefined).length,
      updates: calls.filter((c) => c.method === "chat.update" && c.outcome === "ok").length,
      files: files.filter((f) => f.completed).length,
      rateLimited: calls.filter((c) => c.status === 429).length,
      errors: calls.filter((c) => c.outcome === "error").length,
    }),
    waitFor(predicate, timeoutMs = 10_000) {
      return new Promise<void>((resolve, reject) => {
        if (predicate()) return resolve();
        const check = (): void => {
          if (!predicate()) return;
          cleanup();
          resolve();
        };
        const timer = setTimeout(() => {
          cleanup();
          const s = fake.stats();
          reject(new Error(`slack fake: condition not met within ${timeoutMs} ms (calls ${s.calls}, messages ${s.messages}, 429s ${s.rateLimited}, errors ${s.errors})`));
        }, timeoutMs);
        const cleanup = (): void => {
          clearTimeout(timer);
          waiters.delete(check);
        };
        waiters.add(check);
      });
    },

    failNext(n, o = {}) {
      const status = o.status ?? 500;
      return handleOf(addFault(o, { kind: "status", status, retryAfter: o.retryAfter ?? (status === 429 ? 1 : 0), body: o.body }, n));
    },
    failFor(ms, o = {}) {
      const status = o.status ?? 503;
      return handleOf(addFault(o, { kind: "status", status, retryAfter: o.retryAfter ?? (status === 429 ? 1 : 0), body: o.body }, Number.POSITIVE_INFINITY, Date.now() + ms));
    },
    hang(o = {}) {
      const f = addFault(o, { kind: "hang" }, o.count ?? Number.POSITIVE_INFINITY);
      return {
        get hits() {
          return f.hits;
        },
        get waiting() {
          return held.size;
        },
        remove: () => removeFault(f),
        release() {
          removeFault(f);
          releaseHeld();
        },
      };
    },
    delay(ms, o = {}) {
      return handleOf(addFault(o, { kind: "delay", ms }, o.count ?? Number.POSITIVE_INFINITY));
    },
    platformError(error, o = {}) {
      return handleOf(addFault(o, { kind: "error", error, needed: o.needed }, o.count ?? Number.POSITIVE_INFINITY));
    },
    closeNext(n, o = {}) {
      return handleOf(addFault(o, { kind: "close" }, n));
    },
    clearFaults() {
      for (const f of faults) f.removed = true;
      faults = [];
      releaseHeld();
    },

    setRateLimit(spec) {
      rateLimit = spec;
      buckets = new Map();
    },
    addChannel(c) {
      if (channels.some((x) => x.id === c.id || x.name === c.name)) throw new Error(`slack fake: channel ${c.id}/${c.name} exists`);
      channels.push({ ...c });
    },
    updateChannel(ref, changes) {
      const ch = findChannel(ref, true);
      if (ch === undefined) throw new Error(`slack fake: no channel ${ref}`);
      Object.assign(ch, changes);
    },
    addToken(t, info = {}) {
      tokens.set(t, { scopes: DEFAULT_SCOPES, ...info });
    },
    revokeToken(t) {
      const info = tokens.get(t);
      if (info !== undefined) info.revoked = true;
    },
    setScopes(t, scopes) {
      const info = tokens.get(t);
      if (info === undefined) throw new Error("slack fake: unknown token");
      info.scopes = scopes;
    },
    reset() {
      generation++;
      for (const f of faults) f.removed = true;
      faults = [];
      dropHeld();
      calls.length = 0;
      messages.length = 0;
      files.length = 0;
      buckets = new Map();
    },
    async close() {
      closing = true;
      for (const f of faults) f.removed = true;
      faults = [];
      for (const t of timers) clearTimeout(t);
      timers.clear();
      dropHeld();
      for (const w of [...waiters]) w();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
        for (const s of sockets) s.destroy();
      });
    },
  };
  return fake;
}

// ───────────────────────────── Block Kit checks ─────────────────────────────

/**
 * Slack's hard Block Kit limits, re-implemented independently of kubecano's
 * `checkLimits` (docs.slack.dev block and composition-object reference).
 * `errors` look like Slack's: "must be less than 3001 characters
 * [json-pointer:/blocks/2/text/text]".
 */
export function checkBlockKit(blocks: readonly unknown[] | undefined, attachments: readonly unknown[] | undefined, maxBlockChars = 12_000): { errors: string[]; tooLong: boolean } {
  const errors: string[] = [];
  const all: { block: unknown; ptr: string }[] = [];
  (blocks ?? []).forEach((b, i) => all.push({ block: b, ptr: `/blocks/${i}` }));
  (attachments ?? []).forEach((a, i) => {
    if (!isObj(a)) {
      errors.push(`attachment must be an object [json-pointer:/attachments/${i}]`);
      return;
    }
    const ab = a["blocks"];
    if (ab === undefined) return;
    if (!Array.isArray(ab)) {
      errors.push(`must be an array [json-pointer:/attachments/${i}/blocks]`);
      return;
    }
    ab.forEach((b, j) => all.push({ block: b, ptr: `/attachments/${i}/blocks/${j}` }));
  });
  // Conservative: Slack's 50-block cap counted over the whole message.
  if (all.length > 50) errors.push(`no more than 50 items allowed [json-pointer:/blocks] (message has ${all.length})`);

  let chars = 0;
  const blockIds = new Set<string>();
  const textObj = (t: unknown, ptr: string, max: number, onlyPlain = false): number => {
    if (!isObj(t)) {
      errors.push(`must provide an object [json-pointer:${ptr}]`);
      return 0;
    }
    const type = t["type"];
    const text = t["text"];
    if (type !== "plain_text" && type !== "mrkdwn") errors.push(`must be plain_text or mrkdwn [json-pointer:${ptr}/type]`);
    else if (onlyPlain && type !== "plain_text") errors.push(`must be plain_text [json-pointer:${ptr}/type]`);
    if (type === "mrkdwn" && "emoji" in t) errors.push(`emoji is only allowed on plain_text [json-pointer:${ptr}/emoji]`);
    if (type === "plain_text" && "verbatim" in t) errors.push(`verbatim is only allowed on mrkdwn [json-pointer:${ptr}/verbatim]`);
    if (typeof text !== "string") {
      errors.push(`must provide a string [json-pointer:${ptr}/text]`);
      return 0;
    }
    if (text.length === 0) errors.push(`must be more than 0 characters [json-pointer:${ptr}/text]`);
    if (text.length > max) errors.push(`must be less than ${max + 1} characters [json-pointer:${ptr}/text]`);
    return text.length;
  };

  for (const { block: b, ptr } of all) {
    if (!isObj(b) || typeof b["type"] !== "string") {
      errors.push(`must provide an object with a type [json-pointer:${ptr}]`);
      continue;
    }
    const id = b["block_id"];
    if (id !== undefined) {
      if (typeof id !== "string" || id.length === 0 || id.length > 255) errors.push(`block_id must be 1..255 characters [json-pointer:${ptr}/block_id]`);
      else if (blockIds.has(id)) errors.push(`duplicate block_id ${id} [json-pointer:${ptr}/block_id]`);
      else blockIds.add(id);
    }
    switch (b["type"]) {
      case "section": {
        const hasText = b["text"] !== undefined;
        const fields = b["fields"];
        if (!hasText && fields === undefined) errors.push(`must provide text or fields [json-pointer:${ptr}]`);
        if (hasText) chars += textObj(b["text"], `${ptr}/text`, 3000);
        if (fields !== undefined) {
          if (!Array.isArray(fields) || fields.length === 0) errors.push(`fields must be a non-empty array [json-pointer:${ptr}/fields]`);
          else {
            if (fields.length > 10) errors.push(`no more than 10 items allowed [json-pointer:${ptr}/fields]`);
            fields.forEach((f, j) => (chars += textObj(f, `${ptr}/fields/${j}`, 2000)));
          }
        }
        break;
      }
      case "header":
        chars += textObj(b["text"], `${ptr}/text`, 150, true);
        break;
      case "context": {
        const els = b["elements"];
        if (!Array.isArray(els) || els.length === 0 || els.length > 10) errors.push(`elements must have 1..10 items [json-pointer:${ptr}/elements]`);
        else
          els.forEach((e, j) => {
            if (isObj(e) && e["type"] === "image") return;
            chars += textObj(e, `${ptr}/elements/${j}`, 3000);
          });
        break;
      }
      case "actions": {
        const els = b["elements"];
        if (!Array.isArray(els) || els.length === 0 || els.length > 25) {
          errors.push(`elements must have 1..25 items [json-pointer:${ptr}/elements]`);
          break;
        }
        const actionIds = new Set<string>();
        els.forEach((e, j) => {
          const ep = `${ptr}/elements/${j}`;
          if (!isObj(e)) return void errors.push(`must provide an object [json-pointer:${ep}]`);
          if (e["type"] !== "button") return; // Other interactive elements are not used by kubecano.
          chars += textObj(e["text"], `${ep}/text`, 75, true);
          const url = e["url"];
          if (url !== undefined && (typeof url !== "string" || url.length > 3000 || !/^[a-z][a-z0-9+.-]*:/i.test(url))) errors.push(`must be a valid URL of at most 3000 characters [json-pointer:${ep}/url]`);
          const aid = e["action_id"];
          if (aid !== undefined) {
            if (typeof aid !== "string" || aid.length === 0 || aid.length > 255) errors.push(`action_id must be 1..255 characters [json-pointer:${ep}/action_id]`);
            else if (actionIds.has(aid)) errors.push(`duplicate action_id ${aid} [json-pointer:${ep}/action_id]`);
            else actionIds.add(aid);
          }
          const style = e["style"];
          if (style !== undefined && style !== "primary" && style !== "danger") errors.push(`style must be primary or danger [json-pointer:${ep}/style]`);
        });
        break;
      }
      case "markdown": {
        const text = b["text"];
        if (typeof text !== "string" || text.length === 0 || text.length > 12_000) errors.push(`text must be 1..12000 characters [json-pointer:${ptr}/text]`);
        else chars += text.length;
        break;
      }
      case "divider":
      case "image":
      case "rich_text":
      case "file":
      case "video":
      case "input":
      case "context_actions":
        break;
      default:
        errors.push(`unsupported type: ${String(b["type"])} [json-pointer:${ptr}/type]`);
    }
  }
  return { errors, tooLong: errors.length === 0 && chars > maxBlockChars };
}

// ───────────────────────────── request parsing ─────────────────────────────

function readBody(req: IncomingMessage): Promise<Buffer | undefined> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let tooLarge = false;
    req.on("data", (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY_BYTES) tooLarge = true;
      else chunks.push(c);
    });
    req.on("end", () => resolve(tooLarge ? undefined : Buffer.concat(chunks)));
    req.on("error", () => resolve(undefined));
  });
}

/**
 * Query string + body (form-urlencoded, JSON, or multipart) into one params
 * object; the fields @slack/web-api JSON-encodes are decoded.
 */
async function parseParams(req: IncomingMessage, url: URL, raw: Buffer): Promise<{ params: Record<string, unknown>; error?: SlackErr }> {
  const params: Record<string, unknown> = {};
  for (const [k, v] of url.searchParams) params[k] = v;
  const ct = (req.headers["content-type"] ?? "").toLowerCase();
  if (raw.length > 0) {
    if (ct.startsWith("application/json")) {
      let body: unknown;
      try {
        body = JSON.parse(raw.toString("utf8"));
      } catch {
        return { params, error: { error: "invalid_json" } };
      }
      if (!isObj(body)) return { params, error: { error: "invalid_json" } };
      Object.assign(params, body);
    } else if (ct.startsWith("multipart/form-data")) {
      try {
        const form = await new Response(raw, { headers: { "content-type": req.headers["content-type"] ?? "" } }).formData();
        for (const [k, v] of form) params[k] = typeof v === "string" ? v : Buffer.from(await v.arrayBuffer());
      } catch {
        return { params, error: { error: "invalid_form_data" } };
      }
    } else {
      for (const [k, v] of new URLSearchParams(raw.toString("utf8"))) params[k] = v;
    }
  }
  for (const f of JSON_FIELDS) {
    const v = params[f];
    if (typeof v === "string") {
      try {
        params[f] = JSON.parse(v);
      } catch {
        params[f] = INVALID_JSON;
      }
    }
  }
  return { params };
}

/** An incoming webhook body: JSON, or a form with a `payload` JSON field. Undefined when unreadable. */
function parseWebhookBody(req: IncomingMessage, raw: Buffer): Record<string, unknown> | undefined {
  const ct = (req.headers["content-type"] ?? "").toLowerCase();
  let text = raw.toString("utf8");
  if (ct.startsWith("application/x-www-form-urlencoded")) text = new URLSearchParams(text).get("payload") ?? "";
  try {
    const v: unknown = JSON.parse(text);
    return isObj(v) ? v : undefined;
  } catch {
    return undefined;
  }
}

// ───────────────────────────── small helpers ─────────────────────────────

function okAnswer(body: Record<string, unknown>): Answer {
  return { kind: "json", status: 200, body: { ok: true, ...body } };
}

function errorAnswer(e: SlackErr): Answer {
  return { kind: "json", status: 200, body: { ok: false, error: e.error, ...e.extra } };
}

function rateLimitAnswer(retryAfterSec: number): Answer {
  return { kind: "json", status: 429, body: { ok: false, error: "ratelimited" }, headers: { "retry-after": String(retryAfterSec) } };
}

function fileRef(f: FakeFile): FakeFileRef {
  return { id: f.id, title: f.title, name: f.filename, size: f.bytes?.length ?? 0 };
}

function isErr(v: unknown): v is SlackErr {
  return isObj(v) && typeof v["error"] === "string";
}

function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function str(v: unknown): string | undefined {
  if (typeof v === "string") return v;
  if (typeof v === "number") return String(v);
  return undefined;
}

/** Slack booleans arrive as "true"/"1" in forms and as booleans in JSON. */
function bool(v: unknown): boolean {
  return v === true || v === "true" || v === "1" || v === 1;
}

/** Orders "1732617486.000100"-style timestamps numerically. */
export function tsCmp(a: string, b: string): number {
  const [as = "", af = ""] = a.split(".");
  const [bs = "", bf = ""] = b.split(".");
  const ka = as.padStart(12, "0") + af.padEnd(6, "0");
  const kb = bs.padStart(12, "0") + bf.padEnd(6, "0");
  return ka < kb ? -1 : ka > kb ? 1 : 0;
}
