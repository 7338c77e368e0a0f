import { ErrorCode, LogLevel, WebClient, type Logger, type WebClientOptions } from "@slack/web-api";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { FAKE_TOKEN, startSlackFake, type SlackFake } from "../fakes/slack.js";

/**
 * The Slack fake's own tests, driven through the real @slack/web-api
 * WebClient so the fake is proven to speak the protocol the SDK speaks.
 */

const silent: Logger = {
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
  setLevel: () => undefined,
  getLevel: () => LogLevel.ERROR,
  setName: () => undefined,
};

let fake: SlackFake;

beforeAll(async () => {
  fake = await startSlackFake();
});
afterAll(async () => {
  await fake.close();
});
afterEach(() => {
  fake.reset();
  fake.setRateLimit(undefined);
});

function client(token: string = FAKE_TOKEN, opts: WebClientOptions = {}): WebClient {
  return new WebClient(token, { slackApiUrl: fake.url, retryConfig: { retries: 0 }, rejectRateLimitedCalls: true, logger: silent, ...opts });
}

/** The error a promise rejects with (fails the test when it resolves). */
async function rejection(p: Promise<unknown>): Promise<{ code?: string; data?: { error?: string; needed?: string; errors?: string[] }; statusCode?: number; retryAfter?: number; original?: Error }> {
  try {
    await p;
  } catch (e) {
    return e as never;
  }
  throw new Error("expected the call to fail");
}

const section = (text: string, type: "mrkdwn" | "plain_text" = "mrkdwn") => ({ type: "section", text: { type, text } });

describe("slack fake: auth and scopes", () => {
  it("answers auth.test for a known token, with the token sent as a Bearer header", async () => {
    const res = await client().auth.test();
    expect(res.ok).toBe(true);
    expect(res.user_id).toBe("U0FAKEBOT");
    const call = fake.callsTo("auth.test")[0]!;
    expect(call.token).toBe(FAKE_TOKEN);
    expect(call.params).not.toHaveProperty("token");
  });

  it("answers invalid_auth for an unknown token and token_revoked for a revoked one", async () => {
    const e1 = await rejection(client("xoxb-unknown").auth.test());
    expect(e1.code).toBe(ErrorCode.PlatformError);
    expect(e1.data?.error).toBe("invalid_auth");

    fake.addToken("xoxb-soon-revoked");
    await client("xoxb-soon-revoked").auth.test();
    fake.revokeToken("xoxb-soon-revoked");
    const e2 = await rejection(client("xoxb-soon-revoked").chat.postMessage({ channel: "#alerts", text: "x" }));
    expect(e2.data?.error).toBe("token_revoked");
  });

  it("answers missing_scope with the scope needed", async () => {
    fake.addToken("xoxb-read-only", { scopes: ["channels:history"] });
    const e = await rejection(client("xoxb-read-only").chat.postMessage({ channel: "#alerts", text: "x" }));
    expect(e.data?.error).toBe("missing_scope");
    expect(e.data?.needed).toBe("chat:write");
    expect(fake.messages).toHaveLength(0);
  });
});

describe("slack fake: chat.postMessage", () => {
  it("posts by name or ID, answers the channel ID and increasing unique ts, and stores metadata", async () => {
    const c = client();
    const metadata = { event_type: "kubecano_issue", event_payload: { fingerprint: "abc123" } };
    const r1 = await c.chat.postMessage({ channel: "#alerts", text: "one", blocks: [section("*one*")], metadata });
    const r2 = await c.chat.postMessage({ channel: "alerts", text: "two" });
    const r3 = await c.chat.postMessage({ channel: fake.channelId, text: "three" });
    for (const r of [r1, r2, r3]) {
      expect(r.channel).toBe(fake.channelId);
      expect(r.ts).toMatch(/^\d{10}\.\d{6}$/);
    }
    expect(new Set([r1.ts, r2.ts, r3.ts]).size).toBe(3);
    expect(Number(r1.ts) < Number(r2.ts) && Number(r2.ts) < Number(r3.ts)).toBe(true);
    expect(r1.message?.text).toBe("one");

    expect(fake.messages).toHaveLength(3);
    expect(fake.messages[0]!.metadata).toEqual(metadata);
    expect(fake.messages[0]!.blocks).toEqual([section("*one*")]);

    // The SDK's wire format: form-urlencoded, objects JSON-encoded into one field (decoded in the record).
    const call = fake.callsTo("chat.postMessage")[0]!;
    expect(call.contentType).toMatch(/^application\/x-www-form-urlencoded/);
    expect(call.params["metadata"]).toEqual(metadata);
    expect(call.channel).toBe(fake.channelId);
  });

  it("accepts JSON bodies too", async () => {
    const res = await fetch(`${fake.url}chat.postMessage`, {
      method: "POST",
      headers: { authorization: `Bearer ${FAKE_TOKEN}`, "content-type": "application/json; charset=utf-8" },
      body: JSON.stringify({ channel: "#alerts", text: "json body", blocks: [section("hi")] }),
    });
    const body = (await res.json()) as { ok: boolean; channel: string };
    expect(body.ok).toBe(true);
    expect(fake.messages[0]!.blocks).toEqual([section("hi")]);
  });

  it.each([
    ["#nope", "channel_not_found"],
    ["#outside", "not_in_channel"],
    ["#archived", "is_archived"],
    ["#private", "channel_not_found"],
  ])("answers %s with %s", async (channel, error) => {
    const e = await rejection(client().chat.postMessage({ channel, text: "x" }));
    expect(e.code).toBe(ErrorCode.PlatformError);
    expect(e.data?.error).toBe(error);
    expect(fake.messages).toHaveLength(0);
  });

  it("answers no_text when there is nothing to show", async () => {
    const e = await rejection(client().chat.postMessage({ channel: "#alerts", text: "" }));
    expect(e.data?.error).toBe("no_text");
  });

  const many = (n: number, make: (i: number) => unknown) => Array.from({ length: n }, (_, i) => make(i));
  it.each([
    ["a section over 3000 chars", [section("x".repeat(3001))], "invalid_blocks"],
    ["an empty section text", [section("")], "invalid_blocks"],
    ["a header over 150 chars", [{ type: "header", text: { type: "plain_text", text: "h".repeat(151) } }], "invalid_blocks"],
    ["a mrkdwn header", [{ type: "header", text: { type: "mrkdwn", text: "h" } }], "invalid_blocks"],
    ["11 fields", [{ type: "section", fields: many(11, () => ({ type: "mrkdwn", text: "f" })) }], "invalid_blocks"],
    ["a field over 2000 chars", [{ type: "section", fields: [{ type: "mrkdwn", text: "f".repeat(2001) }] }], "invalid_blocks"],
    ["51 blocks", many(51, () => ({ type: "divider" })), "invalid_blocks"],
    ["emoji on mrkdwn", [{ type: "section", text: { type: "mrkdwn", text: "x", emoji: true } }], "invalid_blocks"],
    ["an unknown block type", [{ type: "sparkle" }], "invalid_blocks"],
    ["duplicate block_ids", [{ type: "divider", block_id: "a" }, { type: "divider", block_id: "a" }], "invalid_blocks"],
    ["14,500 chars of block text", many(5, () => section("y".repeat(2900))), "msg_blocks_too_long"],
  ])("rejects %s", async (_name, blocks, error) => {
    const e = await rejection(client().chat.postMessage({ channel: "#alerts", text: "fallback", blocks: blocks as never }));
    expect(e.data?.error).toBe(error);
    if (error === "invalid_blocks") expect(e.data?.errors?.[0]).toMatch(/json-pointer:\//);
    expect(fake.messages).toHaveLength(0);
  });

  it("checks blocks inside attachments as well", async () => {
    const e = await rejection(client().chat.postMessage({ channel: "#alerts", text: "t", attachments: [{ color: "#ff0000", blocks: [section("z".repeat(3001))] as never }] }));
    expect(e.data?.error).toBe("invalid_blocks");
    expect(e.data?.errors?.join(" ")).toContain("/attachments/0/blocks/0/text/text");
  });

  it("answers msg_too_long past 40,000 chars of text", async () => {
    const e = await rejection(client().chat.postMessage({ channel: "#alerts", text: "t".repeat(40_001) }));
    expect(e.data?.error).toBe("msg_too_long");
  });

  it("enforces kubecano's stricter budget unless told not to", async () => {
    // 11,600 chars: under Slack's aggregate, over kubecano's 10,000 budget.
    const blocks = Array.from({ length: 4 }, () => section("w".repeat(2900)));
    const e = await rejection(client().chat.postMessage({ channel: "#alerts", text: "t", blocks: blocks as never }));
    expect(e.data?.error).toBe("msg_blocks_too_long");
    expect(e.data?.errors?.[0]).toMatch(/^kubecano limits:/);

    const lenient = await startSlackFake({ kubecanoLimits: false });
    try {
      const c = new WebClient(FAKE_TOKEN, { slackApiUrl: lenient.url, retryConfig: { retries: 0 }, logger: silent });
      await c.chat.postMessage({ channel: "#alerts", text: "t", blocks: blocks as never });
      expect(lenient.messages).toHaveLength(1);
    } finally {
      await lenient.close();
    }
  });
});

describe("slack fake: threads, updates and history", () => {
  it("updates a message in place, keeping omitted blocks, and refuses unknown ones", async () => {
    const c = client();
    const { ts, channel } = await c.chat.postMessage({ channel: "#alerts", text: "firing", blocks: [section("firing")] });
    const up = await c.chat.update({ channel: channel!, ts: ts!, text: "resolved" });
    expect(up.ts).toBe(ts);
    const msg = fake.message("#alerts", ts!)!;
    expect(msg.text).toBe("resolved");
    expect(msg.blocks).toEqual([section("firing")]);
    expect(msg.edits).toBe(1);
    await c.chat.update({ channel: channel!, ts: ts!, text: "resolved", blocks: [section("resolved")] });
    expect(msg.blocks).toEqual([section("resolved")]);
    expect(fake.stats().updates).toBe(2);

    expect((await rejection(c.chat.update({ channel: channel!, ts: "1.000100", text: "x" }))).data?.error).toBe("message_not_found");
    // chat.update wants the channel ID.
    expect((await rejection(c.chat.update({ channel: "#alerts", ts: ts!, text: "x" }))).data?.error).toBe("channel_not_found");
  });

  it("threads replies under their parent and lists them with conversations.replies", async () => {
    const c = client();
    const parent = await c.chat.postMessage({ channel: "#alerts", text: "parent" });
    const r1 = await c.chat.postMessage({ channel: fake.channelId, text: "reply 1", thread_ts: parent.ts! });
    // A reply's ts as thread_ts: Slack files it under the parent.
    await c.chat.postMessage({ channel: fake.channelId, text: "reply 2", thread_ts: r1.ts! });
    // A thread_ts naming nothing: accepted, and the reply is lost.
    await c.chat.postMessage({ channel: fake.channelId, text: "lost", thread_ts: "1000000000.000100" });

    const replies = await c.conversations.replies({ channel: fake.channelId, ts: parent.ts! });
    expect(replies.messages?.map((m) => m.text)).toEqual(["parent", "reply 1", "reply 2"]);
    expect(replies.messages?.[0]?.reply_count).toBe(2);
    expect(fake.replies("#alerts", parent.ts!)).toHaveLength(2);
    expect(fake.messages.filter((m) => m.orphan)).toHaveLength(1);
    expect(fake.messages.filter((m) => m.threadTsWasReply)).toHaveLength(1);
    expect(fake.stats()).toMatchObject({ topLevel: 1, replies: 3 });

    expect((await rejection(c.conversations.replies({ channel: fake.channelId, ts: "1000000000.000100" }))).data?.error).toBe("thread_not_found");
  });

  it("lists top-level messages newest first, with metadata only on request, page by page", async () => {
    const c = client();
    const posted: string[] = [];
    for (let i = 0; i < 7; i++) {
      const r = await c.chat.postMessage({ channel: "#alerts", text: `m${i}`, metadata: { event_type: "kubecano_issue", event_payload: { fingerprint: `fp${i}` } } });
      posted.push(r.ts!);
    }
    await c.chat.postMessage({ channel: fake.channelId, text: "a reply", thread_ts: posted[0]! });

    const plain = await c.conversations.history({ channel: fake.channelId, limit: 100 });
    expect(plain.messages?.map((m) => m.text)).toEqual(["m6", "m5", "m4", "m3", "m2", "m1", "m0"]);
    expect(plain.messages?.[0]?.metadata).toBeUndefined();
    expect(plain.messages?.[6]?.reply_count).toBe(1);

    const seen: string[] = [];
    let cursor: string | undefined;
    let pages = 0;
    do {
      const page = await c.conversations.history({ channel: fake.channelId, include_all_metadata: true, limit: 3, ...(cursor !== undefined ? { cursor } : {}) });
      pages++;
      for (const m of page.messages ?? []) seen.push(String((m.metadata?.event_payload as Record<string, unknown> | undefined)?.["fingerprint"]));
      cursor = page.response_metadata?.next_cursor || undefined;
      expect(page.has_more).toBe(cursor !== undefined);
    } while (cursor !== undefined);
    expect(pages).toBe(3);
    expect(seen).toEqual(["fp6", "fp5", "fp4", "fp3", "fp2", "fp1", "fp0"]);

    expect((await rejection(c.conversations.history({ channel: fake.channelId, cursor: "bm9wZQ==" }))).data?.error).toBe("invalid_cursor");
  });
});

describe("slack fake: channel lookup and permalinks", () => {
  it("lists the channels a bot can see (public ones, private ones it is in), page by page, with channels:read", async () => {
    fake.addChannel({ id: "C0MEMBER01", name: "secret-in", private: true, member: true });
    const c = client();
    const names: string[] = [];
    let cursor: string | undefined;
    let pages = 0;
    do {
      const page = await c.conversations.list({ types: "public_channel,private_channel", exclude_archived: true, limit: 2, ...(cursor !== undefined ? { cursor } : {}) });
      pages++;
      for (const ch of page.channels ?? []) names.push(`${ch.id}:${ch.name}`);
      cursor = page.response_metadata?.next_cursor || undefined;
    } while (cursor !== undefined);
    expect(pages).toBe(2);
    // The archived channel is excluded; the private one the bot is not in is invisible.
    expect(names).toEqual(["C0ALERTS01:alerts", "C0OUTSIDE1:outside", "C0MEMBER01:secret-in"]);
    const publicOnly = await c.conversations.list({});
    expect(publicOnly.channels?.map((ch) => ch.name)).toEqual(["alerts", "archived", "outside"]);

    const limited = "xoxb-5555-NOREAD";
    fake.addToken(limited, { scopes: ["chat:write"] });
    const e = await rejection(client(limited).conversations.list({}));
    expect(e.data).toMatchObject({ error: "missing_scope", needed: "channels:read" });
  });

  it("answers a permalink for a message and a reply, message_not_found otherwise", async () => {
    const c = client();
    const parent = await c.chat.postMessage({ channel: "#alerts", text: "parent" });
    const reply = await c.chat.postMessage({ channel: "#alerts", text: "reply", thread_ts: parent.ts! });
    const p = await c.chat.getPermalink({ channel: fake.channelId, message_ts: parent.ts! });
    expect(p.permalink).toBe(`${fake.origin}/archives/${fake.channelId}/p${parent.ts!.replace(".", "")}`);
    const r = await c.chat.getPermalink({ channel: fake.channelId, message_ts: reply.ts! });
    expect(r.permalink).toContain(`?thread_ts=${parent.ts}`);
    expect((await rejection(c.chat.getPermalink({ channel: fake.channelId, message_ts: "1.000001" }))).data?.error).toBe("message_not_found");
  });

  it("edits metadata with chat.update, and history shows the edited metadata", async () => {
    const c = client();
    const root = await c.chat.postMessage({ channel: "#alerts", text: "root", metadata: { event_type: "kubecano_issue", event_payload: { fingerprint: "fp", status: "FIRING" } } });
    await c.chat.update({ channel: fake.channelId, ts: root.ts!, text: "root, resolved", metadata: { event_type: "kubecano_issue", event_payload: { fingerprint: "fp", status: "RESOLVED" } } });
    const h = await c.conversations.history({ channel: fake.channelId, include_all_metadata: true });
    expect(h.messages?.[0]?.metadata?.event_payload).toEqual({ fingerprint: "fp", status: "RESOLVED" });
    expect(fake.message("#alerts", root.ts!)?.edits).toBe(1);
  });
});

describe("slack fake: files v2", () => {
  it("takes an upload through filesUploadV2 into a thread", async () => {
    const c = client();
    const parent = await c.chat.postMessage({ channel: "#alerts", text: "parent" });
    const content = "line 1\nline 2\n".repeat(1000);
    const res = await c.filesUploadV2({ channel_id: fake.channelId, thread_ts: parent.ts!, content, filename: "api.log", title: "api logs" });
    expect(res.ok).toBe(true);

    expect(fake.callsTo("files.getUploadURLExternal")).toHaveLength(1);
    const upload = fake.callsTo("upload")[0]!;
    expect(upload.contentType).toMatch(/^multipart\/form-data/);
    const complete = fake.callsTo("files.completeUploadExternal")[0]!;
    expect(complete.params["files"]).toEqual([{ id: fake.files[0]!.id, title: "api logs" }]);
    expect(complete.thread_ts).toBe(parent.ts);

    const file = fake.files[0]!;
    expect(file.bytes?.toString("utf8")).toBe(content);
    expect(file.declaredLength).toBe(Buffer.byteLength(content));
    expect(file).toMatchObject({ completed: true, filename: "api.log", title: "api logs", channel: fake.channelId, thread_ts: parent.ts });
    const replies = fake.replies("#alerts", parent.ts!);
    expect(replies).toHaveLength(1);
    expect(replies[0]!.subtype).toBe("file_share");
    expect(fake.stats().files).toBe(1);
  });

  it("refuses to complete a file whose bytes never arrived", async () => {
    const c = client();
    const url = await c.files.getUploadURLExternal({ filename: "x.txt", length: 3 });
    expect(url.upload_url).toMatch(new RegExp(`^${fake.origin}/upload/v1/F`));
    const e = await rejection(c.files.completeUploadExternal({ files: [{ id: url.file_id! }], channel_id: fake.channelId }));
    expect(e.data?.error).toBe("file_not_found");
  });
});

describe("slack fake: rate limits", () => {
  it("answers 429 with Retry-After past the per-channel bucket, per channel", async () => {
    fake.setRateLimit({ perChannel: { ratePerSec: 0.01, burst: 5 } });
    fake.addChannel({ id: "C0SECOND01", name: "second" });
    const c = client();
    for (let i = 0; i < 5; i++) await c.chat.postMessage({ channel: "#alerts", text: `burst ${i}` });
    const e = await rejection(c.chat.postMessage({ channel: "#alerts", text: "one too many" }));
    expect(e.code).toBe(ErrorCode.RateLimitedError);
    expect(e.retryAfter).toBeGreaterThanOrEqual(1);
    // Another channel has its own bucket.
    await c.chat.postMessage({ channel: "#second", text: "elsewhere" });
    expect(fake.stats()).toMatchObject({ rateLimited: 1, messages: 6 });
    expect(fake.calls.filter((x) => x.outcome === "rate_limited")).toHaveLength(1);
  });

  it("sends Retry-After in seconds on the wire", async () => {
    fake.setRateLimit({ perChannel: { ratePerSec: 0.5, burst: 1 } });
    const post = () =>
      fetch(`${fake.url}chat.postMessage`, {
        method: "POST",
        headers: { authorization: `Bearer ${FAKE_TOKEN}`, "content-type": "application/x-www-form-urlencoded" },
        body: new URLSearchParams({ channel: "#alerts", text: "x" }).toString(),
      });
    expect((await post()).status).toBe(200);
    const limited = await post();
    expect(limited.status).toBe(429);
    expect(Number(limited.headers.get("retry-after"))).toBe(2);
    expect(await limited.json()).toEqual({ ok: false, error: "ratelimited" });
  });
});

describe("slack fake: fault injection", () => {
  it("answers HTTP errors for the next N calls, then recovers", async () => {
    const c = client();
    const f = fake.failNext(2, { status: 503 });
    for (let i = 0; i < 2; i++) {
      const e = await rejection(c.chat.postMessage({ channel: "#alerts", text: "x" }));
      expect(e.code).toBe(ErrorCode.HTTPError);
      expect(e.statusCode).toBe(503);
    }
    await c.chat.postMessage({ channel: "#alerts", text: "x" });
    expect(f.hits).toBe(2);
    expect(fake.messages).toHaveLength(1);
  });

  it("fails for a period until removed, only for the matching method", async () => {
    const c = client();
    const f = fake.failFor(60_000, { status: 500, method: "chat.postMessage" });
    expect((await rejection(c.chat.postMessage({ channel: "#alerts", text: "x" }))).statusCode).toBe(500);
    await c.auth.test();
    f.remove();
    await c.chat.postMessage({ channel: "#alerts", text: "x" });
    expect(fake.messages).toHaveLength(1);
  });

  it("answers a given platform error for one channel only", async () => {
    const c = client();
    fake.addChannel({ id: "C0THIRD001", name: "third" });
    fake.platformError("is_archived", { channel: "#alerts", count: 1 });
    expect((await rejection(c.chat.postMessage({ channel: fake.channelId, text: "x" }))).data?.error).toBe("is_archived");
    await c.chat.postMessage({ channel: "#third", text: "x" });
    await c.chat.postMessage({ channel: "#alerts", text: "x" });
    expect(fake.messages).toHaveLength(2);
  });

  it("hangs until released; the held request is then processed", async () => {
    const c = client(FAKE_TOKEN, { timeout: 200 });
    const h = fake.hang({ method: "chat.postMessage" });
    const e = await rejection(c.chat.postMessage({ channel: "#alerts", text: "held" }));
    expect(e.code).toBe(ErrorCode.RequestError);
    expect(e.original?.name).toBe("TimeoutError");
    expect(h.waiting).toBe(1);
    expect(fake.messages).toHaveLength(0);
    h.release();
    await fake.waitFor(() => fake.messages.length === 1);
    await client().chat.postMessage({ channel: "#alerts", text: "after" });
    expect(fake.messages.map((m) => m.text)).toEqual(["held", "after"]);
  });

  it("delays answers without changing them", async () => {
    fake.delay(50, { count: 1 });
    const r = await client().chat.postMessage({ channel: "#alerts", text: "slow" });
    expect(r.ok).toBe(true);
    expect(fake.calls[0]!.outcome).toBe("ok");
  });

  it("closes the connection without an answer", async () => {
    fake.closeNext(1);
    const e = await rejection(client().chat.postMessage({ channel: "#alerts", text: "x" }));
    expect(e.code).toBe(ErrorCode.RequestError);
    expect(fake.calls[0]!.outcome).toBe("closed");
    await client().chat.postMessage({ channel: "#alerts", text: "x" });
    expect(fake.messages).toHaveLength(1);
  });

  it("can inject 429s with a Retry-After", async () => {
    fake.failNext(1, { status: 429, retryAfter: 7 });
    const e = await rejection(client().chat.postMessage({ channel: "#alerts", text: "x" }));
    expect(e.code).toBe(ErrorCode.RateLimitedError);
    expect(e.retryAfter).toBe(7);
    expect(fake.stats().rateLimited).toBe(1);
  });
});

describe("slack fake: incoming webhooks", () => {
  const post = (url: string, body: unknown) =>
    fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body: typeof body === "string" ? body : JSON.stringify(body) });

  it("posts to the webhook's channel and answers ok", async () => {
    const url = fake.webhookUrl("#alerts");
    expect(url).toMatch(/\/services\/T[A-Z0-9]+\/B[A-Z0-9]+\/[a-z0-9]+$/);
    expect(fake.webhookUrl()).toBe(url);
    const res = await post(url, { text: "hello", blocks: [section("hello")] });
    expect(res.status).toBe(200);
    expect(await res.text()).toBe("ok");
    expect(fake.messages[0]).toMatchObject({ channel: fake.channelId, via: "webhook", text: "hello" });
  });

  it.each([
    ["an unknown secret", (u: string) => u.replace(/[a-z0-9]+$/, "0000"), { text: "x" }, 404, "no_service"],
    ["blocks over the limits", (u: string) => u, { text: "x", blocks: [section("x".repeat(3001))] }, 400, "invalid_blocks"],
    ["nothing to show", (u: string) => u, { text: "" }, 400, "no_text"],
    ["a body that is not JSON", (u: string) => u, "{nope", 400, "invalid_payload"],
  ])("answers %s with the status and text Slack uses", async (_name, mangle, body, status, text) => {
    const res = await post(mangle(fake.webhookUrl()), body);
    expect(res.status).toBe(status);
    expect(await res.text()).toBe(text);
    expect(fake.messages).toHaveLength(0);
  });

  it("answers 404 no_service once revoked and 410 for an archived channel", async () => {
    const url = fake.webhookUrl("#alerts");
    fake.revokeWebhook(url);
    expect((await post(url, { text: "x" })).status).toBe(404);
    const archived = fake.webhookUrl("#archived");
    const res = await post(archived, { text: "x" });
    expect(res.status).toBe(410);
    expect(await res.text()).toBe("channel_is_archived");
  });

  it("shares the per-channel rate limit with chat.postMessage", async () => {
    fake.setRateLimit({ perChannel: { ratePerSec: 0.01, burst: 1 } });
    const url = fake.webhookUrl("#alerts");
    await client().chat.postMessage({ channel: "#alerts", text: "x" });
    const res = await post(url, { text: "y" });
    expect(res.status).toBe(429);
    expect(res.headers.get("retry-after")).not.toBeNull();
    expect(fake.stats().rateLimited).toBe(1);
  });
});
