import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { Block } from "../../src/core/blocks.js";
import { createIssue, withEnrichment, type Issue } from "../../src/core/issue.js";
import { subjectFromLabels } from "../../src/core/subject.js";
import { closeHttpAgent } from "../../src/destinations/http.js";
import { DESTINATION_TYPES } from "../../src/destinations/registry.js";
import { create } from "../../src/destinations/slack/index.js";
import { METADATA_EVENT_TYPE, fallbackText } from "../../src/destinations/slack/render.js";
import { DeliveryError, type Destination, type SendContext } from "../../src/destinations/types.js";
import { silentLogger } from "../../src/observability/logger.js";
import { startSlackFake, type SlackFake } from "../fakes/slack.js";

/**
 * The Slack destination against the local Slack fake, in bot and webhook
 * mode: what it posts, and how every failure maps to a DeliveryError
 * (retryable or not, with a hint) that never carries a secret.
 */

const TOKEN = "xoxb-1111-2222-SECRETtokenVALUE";
const OTHER_TOKEN = "xoxb-9999-UNKNOWN-SECRETvalue";
const log = silentLogger();

let fake: SlackFake;

beforeAll(async () => {
  fake = await startSlackFake({ tokens: [TOKEN] });
});
afterEach(() => {
  fake.reset();
  fake.setRateLimit(undefined);
});
afterAll(async () => {
  await fake.close();
  await closeHttpAgent();
});

function issue(): Issue {
  return createIssue({
    title: "Pod is crash looping.",
    description: "Pod shop/api-7d9f (api) is in waiting state (reason: CrashLoopBackOff).",
    aggregationKey: "KubePodCrashLooping",
    severity: "HIGH",
    status: "FIRING",
    source: "prometheus",
    type: "alert",
    subject: subjectFromLabels({ alertname: "KubePodCrashLooping", namespace: "shop", pod: "api-7d9f", severity: "critical" }),
    startsAt: "2026-11-26T10:38:06.184Z",
    links: [{ name: "Runbook", url: "https://runbooks.example.com/crashloop", kind: "runbook" }],
    clusterName: "prod-eu-1",
    fingerprint: "0a732576aaf8ce3c",
  });
}

function ctx(): SendContext {
  return { signal: new AbortController().signal, attempt: 1, log };
}

function bot(params: Record<string, unknown> = {}): Destination {
  // A generous timeout: only the hang tests want a short one (they pass "300ms").
  const p = DESTINATION_TYPES.slack.params.parse({ token: TOKEN, channel: "#alerts", api_url: fake.url, timeout: "10s", ...params });
  return create("slack-test", p, { log });
}

function webhook(url: string = fake.webhookUrl("#alerts"), timeout = "10s"): Destination {
  return create("slack-hook", DESTINATION_TYPES.slack.params.parse({ webhook_url: url, timeout }), { log });
}

async function sendError(d: Destination, i: Issue = issue()): Promise<DeliveryError> {
  try {
    await d.send(i, ctx());
  } catch (e) {
    expect(e).toBeInstanceOf(DeliveryError);
    return e as DeliveryError;
  }
  throw new Error("expected send to fail");
}

/** Nothing a person or a log could see carries the token or the webhook's secret path. */
function expectNoSecrets(e: DeliveryError | { detail?: string | undefined }, hookUrl?: string): void {
  const texts = e instanceof DeliveryError ? [e.message, e.hint ?? "", e.code, String(e), e.stack ?? "", JSON.stringify(e)] : [JSON.stringify(e)];
  const secrets = [TOKEN, OTHER_TOKEN, "SECRET"];
  if (hookUrl !== undefined) {
    const p = new URL(hookUrl).pathname;
    secrets.push(p, p.split("/").pop()!, "/services/");
  }
  for (const t of texts) for (const s of secrets) expect(t).not.toContain(s);
}

describe("slack destination, bot mode", () => {
  it("posts with metadata carrying the fingerprint and answers channel/ts as remoteId", async () => {
    const i = issue();
    const res = await bot().send(i, ctx());
    expect(fake.messages).toHaveLength(1);
    const msg = fake.messages[0]!;
    expect(res.remoteId).toBe(`${fake.channelId}/${msg.ts}`);
    expect(res.detail).toContain(fake.channelId);
    expectNoSecrets(res);
    expect(msg.metadata?.event_type).toBe(METADATA_EVENT_TYPE);
    expect(msg.metadata?.event_payload).toMatchObject({ fingerprint: "0a732576aaf8ce3c", issue_id: i.id, status: "FIRING" });
    expect(msg.text).toBe(fallbackText(i));
    expect(msg.attachments).toHaveLength(1);
    const call = fake.callsTo("chat.postMessage")[0]!;
    expect(call.token).toBe(TOKEN);
    expect(call.params).toMatchObject({ unfurl_links: "false", unfurl_media: "false" });
  });

  it("posts by channel ID with username and icon", async () => {
    await bot({ channel: fake.channelId, username: "kubecano", icon_emoji: ":rotating_light:" }).send(issue(), ctx());
    expect(fake.messages[0]).toMatchObject({ channel: fake.channelId, username: "kubecano", icon_emoji: ":rotating_light:" });
  });

  it("gets an oversized Issue accepted", async () => {
    await bot().send(bigIssue(), ctx());
    expect(fake.messages).toHaveLength(1);
    expect(fake.stats().errors).toBe(0);
  });

  it.each([
    ["channel_not_found", { channel: "#nope" }, /params\.channel/],
    ["not_in_channel", { channel: "#outside" }, /invite the bot/],
    ["is_archived", { channel: "#archived" }, /archived/],
    ["channel_not_found", { channel: "#private" }, /invite the bot/],
    ["invalid_auth", { token: OTHER_TOKEN }, /bot token/],
  ])("maps %s (%j) to a permanent error with a hint", async (code, params, hint) => {
    const e = await sendError(bot(params));
    expect(e).toMatchObject({ code, retryable: false });
    expect(e.hint).toMatch(hint);
    expectNoSecrets(e);
    expect(fake.messages).toHaveLength(0);
  });

  it("maps token_revoked to a permanent error with the token hint", async () => {
    const revoked = "xoxb-3333-REVOKED-SECRETtoken";
    fake.addToken(revoked);
    fake.revokeToken(revoked);
    const e = await sendError(bot({ token: revoked }));
    expect(e).toMatchObject({ code: "token_revoked", retryable: false });
    expect(e.hint).toMatch(/bot token/);
    expectNoSecrets(e);
    expect(e.message).not.toContain(revoked);
  });

  it("maps missing_scope to a permanent error naming the scope", async () => {
    const limited = "xoxb-4444-LIMITED-SECRETtoken";
    fake.addToken(limited, { scopes: ["channels:history"] });
    const e = await sendError(bot({ token: limited }));
    expect(e).toMatchObject({ code: "missing_scope", retryable: false });
    expect(e.hint).toContain("chat:write");
    expectNoSecrets(e);
    expect(JSON.stringify(e)).not.toContain(limited);
  });

  it.each(["invalid_blocks", "msg_too_long", "msg_blocks_too_long", "no_text"])("maps %s to a permanent renderer-bug error", async (code) => {
    fake.platformError(code, { count: 1 });
    const e = await sendError(bot());
    expect(e).toMatchObject({ code, retryable: false });
    expect(e.hint).toMatch(/report this bug/);
    expectNoSecrets(e);
  });

  it.each([500, 502, 503])("maps HTTP %i to a retryable error", async (status) => {
    fake.failNext(1, { status });
    const e = await sendError(bot());
    expect(e).toMatchObject({ code: `http_${status}`, retryable: true });
    expectNoSecrets(e);
    // The next attempt goes through.
    await bot().send(issue(), ctx());
    expect(fake.messages).toHaveLength(1);
  });

  it("maps a 429 past the per-channel rate limit to a retryable error with Retry-After", async () => {
    fake.setRateLimit({ perChannel: { ratePerSec: 0.25, burst: 1 } });
    const d = bot();
    await d.send(issue(), ctx());
    const e = await sendError(d);
    expect(e).toMatchObject({ code: "ratelimited", retryable: true });
    expect(e.retryAfterMs).toBe(4000);
    expect(fake.stats().rateLimited).toBe(1);
    expectNoSecrets(e);
  });

  it("passes on the Retry-After of an injected 429", async () => {
    fake.failNext(1, { status: 429, retryAfter: 7 });
    const e = await sendError(bot());
    expect(e).toMatchObject({ code: "ratelimited", retryable: true, retryAfterMs: 7000 });
  });

  it("maps a hang past the timeout to a retryable timeout", async () => {
    const h = fake.hang({ method: "chat.postMessage" });
    const e = await sendError(bot({ timeout: "300ms" }));
    expect(e).toMatchObject({ code: "timeout", retryable: true });
    expect(e.message).toContain("300 ms");
    expect(h.hits).toBe(1);
    expectNoSecrets(e);
  });

  it("maps a dropped connection to a retryable network error", async () => {
    fake.closeNext(1);
    const e = await sendError(bot());
    expect(e.retryable).toBe(true);
    expectNoSecrets(e);
  });

  it("maps an unreachable API to a retryable network error", async () => {
    const down = await startSlackFake();
    const url = down.url;
    await down.close();
    const e = await sendError(bot({ api_url: url }));
    expect(e.retryable).toBe(true);
    expectNoSecrets(e);
  });
});

describe("slack destination, webhook mode", () => {
  it("posts the same layout to the incoming webhook, without metadata", async () => {
    const url = fake.webhookUrl("#alerts");
    const i = issue();
    const res = await webhook(url).send(i, ctx());
    expect(res.remoteId).toBeUndefined();
    expectNoSecrets(res, url);
    expect(fake.messages).toHaveLength(1);
    expect(fake.messages[0]).toMatchObject({ via: "webhook", channel: fake.channelId, text: fallbackText(i), metadata: undefined });
    expect(fake.callsTo("webhook")[0]!.params).not.toHaveProperty("metadata");
  });

  it("gets an oversized Issue accepted", async () => {
    await webhook().send(bigIssue(), ctx());
    expect(fake.messages).toHaveLength(1);
  });

  it("maps 404 no_service to a permanent error with a hint", async () => {
    const url = fake.webhookUrl("#alerts");
    fake.revokeWebhook(url);
    const e = await sendError(webhook(url));
    expect(e).toMatchObject({ code: "no_service", retryable: false });
    expect(e.hint).toMatch(/webhook URL/);
    expectNoSecrets(e, url);
  });

  it("maps 410 channel_is_archived to a permanent error", async () => {
    const url = fake.webhookUrl("#archived");
    const e = await sendError(webhook(url));
    expect(e).toMatchObject({ code: "channel_is_archived", retryable: false });
    expectNoSecrets(e, url);
  });

  it("maps 400 invalid_blocks to a permanent error", async () => {
    const url = fake.webhookUrl("#alerts");
    fake.platformError("invalid_blocks", { method: "webhook", count: 1 });
    const e = await sendError(webhook(url));
    expect(e).toMatchObject({ code: "invalid_blocks", retryable: false });
    expectNoSecrets(e, url);
  });

  it.each([500, 503])("maps HTTP %i to a retryable error", async (status) => {
    const url = fake.webhookUrl("#alerts");
    fake.failNext(1, { status, method: "webhook" });
    const e = await sendError(webhook(url));
    expect(e).toMatchObject({ code: `http_${status}`, retryable: true });
    expectNoSecrets(e, url);
  });

  it("maps a 429 to a retryable error with Retry-After", async () => {
    const url = fake.webhookUrl("#alerts");
    fake.setRateLimit({ perChannel: { ratePerSec: 0.2, burst: 1 } });
    const d = webhook(url);
    await d.send(issue(), ctx());
    const e = await sendError(d);
    expect(e).toMatchObject({ code: "http_429", retryable: true, retryAfterMs: 5000 });
    expectNoSecrets(e, url);
  });

  it("maps a hang past the timeout to a retryable timeout", async () => {
    const url = fake.webhookUrl("#alerts");
    fake.hang({ method: "webhook" });
    const e = await sendError(webhook(url, "300ms"));
    expect(e).toMatchObject({ code: "timeout", retryable: true });
    expectNoSecrets(e, url);
  });

  it("maps a dropped connection to a retryable error", async () => {
    const url = fake.webhookUrl("#alerts");
    fake.closeNext(1, { method: "webhook" });
    const e = await sendError(webhook(url));
    expect(e.retryable).toBe(true);
    expectNoSecrets(e, url);
  });
});

/** Everything at once: long texts, many labels, 60 enrichments, a 5 MB log, a wide table. */
function bigIssue(): Issue {
  const base = issue();
  let i: Issue = {
    ...base,
    title: `${"T".repeat(300)} <!channel>`,
    description: "d&<>".repeat(2500),
    subject: subjectFromLabels(Object.fromEntries(Array.from({ length: 200 }, (_, n) => [`label_${n}`, `value ${n} <@U1>`]))),
  };
  const headers = Array.from({ length: 30 }, (_, n) => `col${n}`);
  const blocks: Block[] = [
    { type: "file", filename: "api.log", content: "x".repeat(100).concat("\n").repeat(52_000) },
    { type: "table", headers, rows: Array.from({ length: 500 }, (_, r) => headers.map((h) => `${h}-${r}`)) },
    { type: "markdown", text: "m".repeat(5000) },
    { type: "json", data: { deep: Array.from({ length: 500 }, (_, n) => ({ n })) } },
  ];
  for (let n = 0; n < 60; n++) i = withEnrichment(i, { title: `E${n}`, blocks: [blocks[n % blocks.length]!] });
  return i;
}
