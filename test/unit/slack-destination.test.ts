import { Writable } from "node:stream";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { Block } from "../../src/core/blocks.js";
import { createIssue, withEnrichment, type Issue, type NewIssue } from "../../src/core/issue.js";
import { subjectFromLabels } from "../../src/core/subject.js";
import { closeHttpAgent } from "../../src/destinations/http.js";
import { DESTINATION_TYPES } from "../../src/destinations/registry.js";
import { create } from "../../src/destinations/slack/index.js";
import { METADATA_EVENT_TYPE, fallbackText } from "../../src/destinations/slack/render.js";
import { memoryState } from "../../src/destinations/slack/threads.js";
import { DeliveryError, type Destination, type DestinationState, type SendContext } from "../../src/destinations/types.js";
import { createLogger, silentLogger, type Logger } from "../../src/observability/logger.js";
import { startSlackFake, type FakeMessage, type SlackFake } from "../fakes/slack.js";

/**
 * The Slack destination against the local Slack fake, in bot and webhook
 * mode: threads that follow an Issue's life (root, repeats, resolution,
 * re-fire; the history fallback with an empty state), files in the thread,
 * routing inside Slack (channel templates, fallback, mentions), and how every
 * failure maps to a DeliveryError (retryable or not, with a hint) that never
 * carries a secret. Direct sends here are not deferrable: pacing waits in place.
 */

const TOKEN = "xoxb-1111-2222-SECRETtokenVALUE";
const OTHER_TOKEN = "xoxb-9999-UNKNOWN-SECRETvalue";
const log = silentLogger();

let fake: SlackFake;

beforeAll(async () => {
  fake = await startSlackFake({ tokens: [TOKEN] });
  fake.addChannel({ id: "C0PAYMENTS", name: "alerts-payments" });
  fake.addChannel({ id: "C0FALLBACK", name: "alerts-other" });
});
afterEach(() => {
  fake.reset();
  fake.setRateLimit(undefined);
});
afterAll(async () => {
  await fake.close();
  await closeHttpAgent();
});

const BASE: NewIssue = {
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
};

function issue(over: Partial<NewIssue> = {}): Issue {
  return createIssue({ ...BASE, ...over });
}

const LOG = Array.from({ length: 200 }, (_, i) => `2026-11-26T10:38:${String(i % 60).padStart(2, "0")}Z INFO request ${i} served`).join("\n").concat("\njava.lang.OutOfMemoryError: Java heap space\n");

/** A crash-looping pod's Issue with its logs (a file block), as the crash-loop workflow gives it. */
function withLogs(i: Issue, content = LOG): Issue {
  return withEnrichment(i, { title: "Logs of api (previous container)", blocks: [{ type: "file", filename: "api-7d9f.api.log", title: "api logs", content }] });
}

function resolved(i: Issue, endsAt = "2026-11-26T10:50:30.000Z"): Issue {
  return createIssue({ ...BASE, fingerprint: i.fingerprint, subject: i.subject, title: i.title, status: "RESOLVED", endsAt, startsAt: i.startsAt });
}

function ctx(): SendContext {
  return { signal: AbortSignal.timeout(20_000), attempt: 1, log };
}

function bot(params: Record<string, unknown> = {}, state: DestinationState = memoryState(), logger: Logger = log): Destination {
  // A generous timeout: only the hang tests want a short one (they pass "300ms").
  // Fast pacing unless a test is about pacing: the fake has no rate limit unless a test sets one.
  const p = DESTINATION_TYPES.slack.params.parse({ token: TOKEN, channel: "#alerts", api_url: fake.url, timeout: "10s", rate_per_second: 50, burst: 20, update_interval: "10ms", ...params });
  return create("slack-test", p, { log: logger, state });
}

function webhook(url: string = fake.webhookUrl("#alerts"), timeout = "10s"): Destination {
  return create("slack-hook", DESTINATION_TYPES.slack.params.parse({ webhook_url: url, timeout }), { log });
}

async function sendError(d: Destination, i: Issue = issue(), c: SendContext = ctx()): Promise<DeliveryError> {
  try {
    await d.send(i, c);
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

function payload(m: FakeMessage): Record<string, unknown> {
  return m.metadata?.event_payload ?? {};
}

function visible(m: FakeMessage): string {
  return JSON.stringify([m.text, m.blocks, m.attachments]);
}

/** A logger whose JSON lines the test can read. */
function capture(): { logger: Logger; lines: () => Record<string, unknown>[] } {
  const out: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer | string, _enc, cb) {
      out.push(chunk.toString());
      cb();
    },
  });
  return { logger: createLogger({ stream, format: "json", level: "debug" }), lines: () => out.join("").split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l) as Record<string, unknown>) };
}

describe("slack bot mode: one thread per fingerprint", () => {
  it("posts a FIRING Issue as the root of its thread, with metadata carrying the fingerprint, and answers channel/ts", async () => {
    const i = issue();
    const res = await bot().send(i, ctx());
    expect(fake.messages).toHaveLength(1);
    const msg = fake.messages[0]!;
    expect(msg.thread_ts).toBeUndefined();
    expect(res.remoteId).toBe(`${fake.channelId}/${msg.ts}`);
    expect(res.detail).toBe(`posted to ${fake.channelId} (ts ${msg.ts})`);
    expectNoSecrets(res);
    expect(msg.metadata?.event_type).toBe(METADATA_EVENT_TYPE);
    expect(msg.metadata?.event_payload).toEqual({ fingerprint: "0a732576aaf8ce3c", issue_id: i.id, status: "FIRING", severity: "HIGH", aggregation_key: "KubePodCrashLooping" });
    expect(msg.text).toBe(fallbackText(i));
    expect(msg.attachments).toHaveLength(1);
    const call = fake.callsTo("chat.postMessage")[0]!;
    expect(call.token).toBe(TOKEN);
    expect(call.params).toMatchObject({ unfurl_links: "false", unfurl_media: "false" });
  });

  it("posts by channel ID with username and icon", async () => {
    await bot({ channel: fake.channelId, username: "kubecano", icon_emoji: ":rotating_light:" }).send(issue(), ctx());
    expect(fake.messages[0]).toMatchObject({ channel: fake.channelId, username: "kubecano", icon_emoji: ":rotating_light:" });
    // With the ID at hand, no channel lookup is needed.
    expect(fake.callsTo("conversations.list")).toHaveLength(0);
  });

  it("fires, repeats and resolves: one root whose edit shows RESOLVED, the repeat and the resolution as replies", async () => {
    const d = bot();
    const firing = withLogs(issue());
    await d.send(firing, ctx());
    const root = fake.topLevel()[0]!;

    // The repeat brings fresh pod status: only that is shown, not the header, labels or the logs again.
    const repeat = withEnrichment(withLogs(issue({ startsAt: firing.startsAt })), { title: "Pod status", blocks: [{ type: "markdown", text: "*restarts* 9 (was 7)" }] });
    const r2 = await d.send(repeat, ctx());
    const end = resolved(firing);
    const r3 = await d.send(end, ctx());

    expect(fake.topLevel()).toHaveLength(1);
    const thread = fake.replies("#alerts", root.ts);
    const texts = thread.filter((m) => m.subtype !== "file_share");
    expect(texts.map((m) => payload(m)["kind"])).toEqual(["reply", "reply"]);
    const [still, done] = texts;
    expect(r2.detail).toBe(`replied in the thread of ${fake.channelId} (ts ${root.ts})`);
    expect(r3.remoteId).toBe(`${fake.channelId}/${done!.ts}`);
    expect(payload(still!)).toMatchObject({ fingerprint: firing.fingerprint, issue_id: repeat.id, status: "FIRING" });
    expect(visible(still!)).toContain("Still firing");
    expect(visible(still!)).toContain("restarts* 9 (was 7)");
    expect(visible(still!)).not.toContain("*Labels*");
    expect(visible(still!)).not.toContain("OutOfMemoryError");
    expect(still!.text).toMatch(/^STILL FIRING HIGH: Pod is crash looping/);

    expect(payload(done!)).toMatchObject({ issue_id: end.id, status: "RESOLVED", kind: "reply" });
    expect(visible(done!)).toContain("Resolved* after 12m at 10:50 UTC");

    // The root was edited in place: RESOLVED, green, metadata RESOLVED, and it keeps its firing context.
    const edited = fake.message("#alerts", root.ts)!;
    expect(edited.edits).toBe(1);
    expect(edited.metadata?.event_payload).toMatchObject({ status: "RESOLVED", issue_id: firing.id, fingerprint: firing.fingerprint });
    expect(JSON.stringify(edited.blocks)).toContain("RESOLVED · Pod is crash looping.");
    expect(JSON.stringify(edited.attachments)).toContain("#2EB67D");
    expect(JSON.stringify(edited.attachments)).toContain("*Resolved*");
    expect(JSON.stringify(edited.attachments)).toContain("(after 12m)");
    expect(JSON.stringify(edited.attachments)).toContain("java.lang.OutOfMemoryError: Java heap space");
    expect(JSON.stringify(edited.attachments)).toContain("the whole file is in the thread");
    // The logs were attached in the thread once: the repeat's identical logs are not shown or attached again.
    expect(fake.files.filter((f) => f.completed)).toHaveLength(1);
    expect(fake.files[0]).toMatchObject({ thread_ts: root.ts, filename: "api-7d9f.api.log" });
    expect(fake.stats().errors).toBe(0);
  });

  it("a re-fire after the resolution opens a new root that links the previous thread", async () => {
    const d = bot();
    const first = issue();
    await d.send(first, ctx());
    await d.send(resolved(first), ctx());
    const again = issue({ startsAt: "2026-11-26T12:00:00.000Z" });
    await d.send(again, ctx());
    const roots = fake.topLevel();
    expect(roots).toHaveLength(2);
    expect(payload(roots[1]!)).toMatchObject({ issue_id: again.id, status: "FIRING" });
    expect(payload(roots[0]!)).toMatchObject({ status: "RESOLVED" });
    const permalink = `${fake.origin}/archives/${fake.channelId}/p${roots[0]!.ts.replace(".", "")}`;
    expect(visible(roots[1]!)).toContain(`<${permalink}|previous occurrence>`);
    expect(fake.callsTo("chat.getPermalink")).toHaveLength(1);
    // Its resolution edits the new root, not the old one.
    await d.send(resolved(again, "2026-11-26T12:05:00.000Z"), ctx());
    expect(fake.message("#alerts", roots[1]!.ts)?.edits).toBe(1);
    expect(fake.message("#alerts", roots[0]!.ts)?.edits).toBe(1);
    expect(fake.replies("#alerts", roots[1]!.ts)).toHaveLength(1);
  });

  it("without a permalink the re-fire's root says in words that it fired before", async () => {
    const d = bot();
    const first = issue();
    await d.send(first, ctx());
    await d.send(resolved(first), ctx());
    fake.platformError("channel_not_found", { method: "chat.getPermalink" });
    await d.send(issue({ startsAt: "2026-11-26T12:00:00.000Z" }), ctx());
    expect(visible(fake.topLevel()[1]!)).toContain("This alert fired before (resolved");
  });

  it("a resolution with no thread is a top-level resolved message, which a later re-fire links", async () => {
    const d = bot();
    const end = resolved(issue());
    const r = await d.send(end, ctx());
    expect(fake.topLevel()).toHaveLength(1);
    expect(r.detail).toMatch(/^posted to /);
    expect(payload(fake.messages[0]!)).toMatchObject({ status: "RESOLVED", issue_id: end.id });
    await d.send(issue({ startsAt: "2026-11-26T12:00:00.000Z" }), ctx());
    expect(fake.topLevel()).toHaveLength(2);
    expect(visible(fake.topLevel()[1]!)).toContain("previous occurrence");
  });

  it("each fingerprint has its own thread; a channel's history is searched once for all of them", async () => {
    const d = bot();
    for (let k = 0; k < 5; k++) await d.send(issue({ fingerprint: `fp-many-${k}`, title: `Alert ${k}` }), ctx());
    for (let k = 0; k < 5; k++) await d.send(issue({ fingerprint: `fp-many-${k}`, title: `Alert ${k}`, startsAt: "2026-11-26T11:00:00.000Z" }), ctx());
    expect(fake.topLevel()).toHaveLength(5);
    for (const root of fake.topLevel()) expect(fake.replies("#alerts", root.ts)).toHaveLength(1);
    expect(fake.callsTo("conversations.history")).toHaveLength(1);
    // The channel name was looked up once, then learnt from the first post.
    expect(fake.callsTo("conversations.list").length).toBeLessThanOrEqual(1);
  });
});

describe("slack bot mode: the history fallback when the state is new", () => {
  it("finds a FIRING thread by the fingerprint in the channel's metadata and replies in it", async () => {
    const firing = issue();
    await bot({}, memoryState()).send(firing, ctx());
    // Another state (a new state directory, another replica): the thread is found in the history.
    const other = bot({}, memoryState());
    await other.send(issue({ startsAt: "2026-11-26T11:00:00.000Z" }), ctx());
    await other.send(resolved(firing), ctx());
    expect(fake.topLevel()).toHaveLength(1);
    const root = fake.topLevel()[0]!;
    expect(fake.replies("#alerts", root.ts)).toHaveLength(2);
    // Without the root Issue in its state, the edit renders the resolution itself as the root.
    expect(fake.message("#alerts", root.ts)?.metadata?.event_payload).toMatchObject({ status: "RESOLVED", issue_id: firing.id });
    expect(fake.callsTo("conversations.list")).toHaveLength(2);
    expect(fake.callsTo("conversations.history").length).toBeGreaterThanOrEqual(1);
  });

  it("a RESOLVED root found in the history makes a re-fire a new root that links it", async () => {
    const first = issue();
    const d1 = bot({}, memoryState());
    await d1.send(first, ctx());
    await d1.send(resolved(first), ctx());
    await bot({}, memoryState()).send(issue({ startsAt: "2026-11-26T12:00:00.000Z" }), ctx());
    expect(fake.topLevel()).toHaveLength(2);
    expect(visible(fake.topLevel()[1]!)).toContain("previous occurrence");
  });

  it("without channels:read a channel name cannot be searched: a new root, and one warning", async () => {
    const noRead = "xoxb-6666-NOREAD-token";
    fake.addToken(noRead, { scopes: ["chat:write", "channels:history", "files:write"] });
    await bot({ token: noRead }, memoryState()).send(issue(), ctx());
    const c = capture();
    const d = bot({ token: noRead }, memoryState(), c.logger);
    await d.send(issue({ startsAt: "2026-11-26T11:00:00.000Z" }), ctx());
    await d.send(issue({ fingerprint: "fp-other", startsAt: "2026-11-26T11:00:00.000Z" }), ctx());
    expect(fake.topLevel()).toHaveLength(3);
    const warnings = c.lines().filter((l) => l["level"] === "warn" && /conversations\.list/.test(String(l["msg"])));
    expect(warnings).toHaveLength(1);
    expect(JSON.stringify(warnings)).toContain("channels:read");
  });

  it("a channel given by ID needs no lookup, and a failed history search means a new root", async () => {
    await bot({ channel: fake.channelId }, memoryState()).send(issue(), ctx());
    fake.failNext(1, { status: 500, method: "conversations.history" });
    await bot({ channel: fake.channelId }, memoryState()).send(issue({ startsAt: "2026-11-26T11:00:00.000Z" }), ctx());
    expect(fake.topLevel()).toHaveLength(2);
    expect(fake.callsTo("conversations.list")).toHaveLength(0);
  });
});

describe("slack bot mode: an attempt in doubt (findExisting)", () => {
  it("finds its root in the history, records the thread and attaches the files without posting twice", async () => {
    const state = memoryState();
    const firing = withLogs(issue());
    const since = Date.now();
    // An earlier process posted the root and died before anything else.
    const c = await startSlackPost(firing);
    const d = bot({}, state);
    const found = await d.findExisting!(firing, { since, signal: AbortSignal.timeout(10_000), log });
    expect(found?.remoteId).toBe(`${fake.channelId}/${c}`);
    expect(fake.callsTo("chat.postMessage")).toHaveLength(1);
    expect(fake.files.filter((f) => f.completed && f.thread_ts === c)).toHaveLength(1);
    // The thread is known: the resolution replies in it.
    await d.send(resolved(firing), ctx());
    expect(fake.replies("#alerts", c).filter((m) => m.subtype !== "file_share")).toHaveLength(1);
  });

  it("finds an in-doubt reply in the thread (conversations.replies), and answers undefined when nothing was posted", async () => {
    const state = memoryState();
    const d = bot({}, state);
    const firing = issue();
    await d.send(firing, ctx());
    const root = fake.topLevel()[0]!;
    const repeat = issue({ startsAt: "2026-11-26T11:00:00.000Z" });
    const since = Date.now();
    expect(await d.findExisting!(repeat, { since, signal: AbortSignal.timeout(10_000), log })).toBeUndefined();
    // The reply reached Slack but its answer was lost.
    const hang = fake.hang({ method: "chat.postMessage", count: 1 });
    const cut = bot({ timeout: "300ms" }, state);
    const e = await sendError(cut, repeat);
    expect(e).toMatchObject({ code: "timeout", maybeDelivered: true });
    hang.release();
    await fake.waitFor(() => fake.replies("#alerts", root.ts).length === 1);
    const found = await d.findExisting!(repeat, { since, signal: AbortSignal.timeout(10_000), log });
    expect(found?.detail).toBe(`replied in the thread of ${fake.channelId} (ts ${root.ts})`);
    expect(fake.callsTo("conversations.replies").length).toBeGreaterThanOrEqual(1);
    expect(fake.replies("#alerts", root.ts)).toHaveLength(1);
  });
});

/** Posts a root as kubecano would have (via another destination instance) and returns its ts. */
async function startSlackPost(i: Issue): Promise<string> {
  const hang = fake.hang({ method: ["files.getUploadURLExternal"], count: 1 });
  const d = bot({ timeout: "300ms" }, memoryState());
  await d.send(i, ctx()).catch(() => undefined);
  hang.release();
  fake.clearFaults();
  // The earlier process's upload URL request may still land; drop it from the picture.
  const root = fake.topLevel().find((m) => payload(m)["issue_id"] === i.id);
  if (root === undefined) throw new Error("the root was not posted");
  return root.ts;
}

describe("slack bot mode: files in the thread", () => {
  it("attaches logs in the Issue's thread once (files v2), the root showing the excerpt and saying so", async () => {
    const i = withLogs(issue());
    await bot().send(i, ctx());
    const root = fake.topLevel()[0]!;
    expect(fake.callsTo("files.getUploadURLExternal")).toHaveLength(1);
    expect(fake.callsTo("upload")).toHaveLength(1);
    const complete = fake.callsTo("files.completeUploadExternal");
    expect(complete).toHaveLength(1);
    expect(complete[0]!.params).toMatchObject({ channel_id: fake.channelId, thread_ts: root.ts });
    const file = fake.files[0]!;
    expect(file).toMatchObject({ filename: "api-7d9f.api.log", title: "api logs", completed: true, thread_ts: root.ts });
    expect(file.bytes?.toString("utf8")).toBe(LOG);
    expect(visible(root)).toContain("201 lines, last 15 shown");
    expect(visible(root)).toContain("java.lang.OutOfMemoryError");
    expect(visible(root)).toContain("the whole file is in the thread");
  });

  it("a retryable upload failure fails the attempt; the retry neither posts again nor uploads twice", async () => {
    const d = bot();
    const i = withLogs(issue());
    fake.failNext(1, { status: 503, method: "files.completeUploadExternal" });
    const e = await sendError(d, i);
    expect(e).toMatchObject({ retryable: true, code: "http_503" });
    await d.send(i, ctx());
    expect(fake.callsTo("chat.postMessage")).toHaveLength(1);
    expect(fake.callsTo("files.getUploadURLExternal")).toHaveLength(1);
    expect(fake.callsTo("upload")).toHaveLength(1);
    expect(fake.files.filter((f) => f.completed)).toHaveLength(1);
  });

  it("a lost answer to the share is not shared twice (the file is already complete)", async () => {
    const d = bot({ timeout: "300ms" });
    const i = withLogs(issue());
    const hang = fake.hang({ method: "files.completeUploadExternal", count: 1 });
    const e = await sendError(d, i);
    expect(e.retryable).toBe(true);
    hang.release();
    await fake.waitFor(() => fake.files.some((f) => f.completed));
    await d.send(i, ctx());
    expect(fake.files.filter((f) => f.completed)).toHaveLength(1);
    expect(fake.messages.filter((m) => m.subtype === "file_share")).toHaveLength(1);
    expect(fake.messages.filter((m) => /Could not attach/.test(m.text))).toHaveLength(0);
  });

  it("a permanent failure (no files:write) degrades to a note in the thread; the delivery succeeds", async () => {
    const noFiles = "xoxb-7777-NOFILES-token";
    fake.addToken(noFiles, { scopes: ["chat:write", "channels:history", "channels:read"] });
    const res = await bot({ token: noFiles }).send(withLogs(issue()), ctx());
    expect(res.remoteId).toBeDefined();
    const root = fake.topLevel()[0]!;
    const notes = fake.replies("#alerts", root.ts);
    expect(notes).toHaveLength(1);
    expect(notes[0]!.text).toContain("Could not attach api-7d9f.api.log: missing_scope (the bot token needs the files:write scope)");
    expect(visible(root)).toContain("java.lang.OutOfMemoryError");
  });

  it("gives up after three retryable failures in a row, with a note, without failing the delivery", async () => {
    const d = bot();
    const i = withLogs(issue());
    fake.failFor(60_000, { status: 500, method: "files.getUploadURLExternal" });
    await sendError(d, i);
    await sendError(d, i);
    await d.send(i, ctx());
    const root = fake.topLevel()[0]!;
    expect(fake.replies("#alerts", root.ts).map((m) => m.text)).toEqual([expect.stringContaining("Could not attach api-7d9f.api.log: http_500")]);
    expect(fake.callsTo("chat.postMessage")).toHaveLength(2);
    // Settled: a later attempt does nothing more.
    await d.send(i, ctx());
    expect(fake.callsTo("chat.postMessage")).toHaveLength(2);
  });

  it("with files: false everything stays inline and nothing is uploaded", async () => {
    await bot({ files: false }).send(withLogs(issue()), ctx());
    expect(fake.callsTo("files.getUploadURLExternal")).toHaveLength(0);
    expect(visible(fake.messages[0]!)).toContain("OutOfMemoryError");
    expect(visible(fake.messages[0]!)).not.toContain("in the thread");
  });

  it("gets an oversized Issue accepted within Slack's limits, with what did not fit in files", async () => {
    await bot().send(bigIssue(), ctx());
    expect(fake.topLevel()).toHaveLength(1);
    expect(fake.stats().errors).toBe(0);
    const names = fake.files.filter((f) => f.completed).map((f) => f.filename);
    expect(names).toEqual(expect.arrayContaining(["description.txt", "labels.txt", "api.log", "enrichments.txt"]));
    expect(names.some((n) => /^e\d+\.txt$|^table/.test(n) || n.endsWith(".txt"))).toBe(true);
    const labels = fake.files.find((f) => f.filename === "labels.txt")!.bytes!.toString("utf8");
    expect(labels.split("\n").filter((l) => l !== "")).toHaveLength(200);
    expect(fake.files.find((f) => f.filename === "description.txt")!.bytes!.length).toBe(Buffer.byteLength("d&<>".repeat(2500)));
    expect(fake.files.find((f) => f.filename === "api.log")!.bytes!.length).toBeGreaterThan(5_000_000);
    // All files shared in one message of the thread.
    expect(fake.messages.filter((m) => m.subtype === "file_share")).toHaveLength(1);
  });
});

describe("slack bot mode: routing inside Slack", () => {
  const team = (t: string | undefined, extra: Record<string, string> = {}): Issue =>
    issue({ fingerprint: `fp-team-${t ?? "none"}`, subject: subjectFromLabels({ alertname: "KubePodCrashLooping", namespace: "shop", pod: "api-7d9f", ...(t !== undefined ? { team: t } : {}), ...extra }) });

  it("renders the channel template over labels", async () => {
    const d = bot({ channel: "#alerts-{{ labels.team }}", fallback_channel: "#alerts-other" });
    await d.send(team("payments"), ctx());
    expect(fake.messages[0]!.channel).toBe("C0PAYMENTS");
  });

  it("uses the fallback channel, with a note, when the template names a missing value", async () => {
    const d = bot({ channel: "#alerts-{{ labels.team }}", fallback_channel: "#alerts-other" });
    await d.send(team(undefined), ctx());
    expect(fake.messages[0]!.channel).toBe("C0FALLBACK");
    expect(visible(fake.messages[0]!)).toContain("names labels.team, which this alert does not have");
  });

  it("falls back when the templated channel does not exist, logs it once, and remembers it", async () => {
    const c = capture();
    const d = bot({ channel: "#alerts-{{ labels.team }}", fallback_channel: "#alerts-other" }, memoryState(), c.logger);
    await d.send(team("nope"), ctx());
    await d.send(issue({ fingerprint: "fp-team-nope-2", subject: subjectFromLabels({ alertname: "X", namespace: "shop", team: "nope" }) }), ctx());
    expect(fake.messages.map((m) => m.channel)).toEqual(["C0FALLBACK", "C0FALLBACK"]);
    for (const m of fake.messages) expect(visible(m)).toContain("Slack has no channel");
    expect(fake.callsTo("chat.postMessage").filter((x) => x.error === "channel_not_found")).toHaveLength(1);
    expect(c.lines().filter((l) => l["level"] === "warn" && /posting to #alerts-other instead/.test(String(l["msg"])))).toHaveLength(1);
  });

  it("adds mentions to FIRING roots only (configured and from the kubecano.io/slack-mention annotation), unescaped", async () => {
    const d = bot({ mentions: ["<@U0ONCALL1>"] });
    const i = issue({ subject: subjectFromLabels({ alertname: "KubePodCrashLooping", namespace: "shop", pod: "api-7d9f" }, { "kubecano.io/slack-mention": "<!subteam^S0PAYTEAM> <@nobody> <!here>" }) });
    await d.send(i, ctx());
    await d.send({ ...i, id: `${i.id}-repeat`, startsAt: "2026-11-26T11:00:00.000Z" }, ctx());
    await d.send(resolved(i), ctx());
    const root = fake.topLevel()[0]!;
    // As posted (the root is edited when it resolves).
    const posted = fake.callsTo("chat.postMessage")[0]!.params;
    expect(posted["text"]).toMatch(/^<@U0ONCALL1> <!subteam\^S0PAYTEAM> <!here> FIRING HIGH/);
    expect(JSON.stringify(posted["blocks"])).toContain(":bell: <@U0ONCALL1> <!subteam^S0PAYTEAM> <!here>");
    expect(JSON.stringify(posted)).not.toContain("<@nobody>");
    for (const m of fake.replies("#alerts", root.ts)) expect(visible(m)).not.toMatch(/<@U0ONCALL1>|<!subteam|<!here>/);
    // The edited root (RESOLVED) carries no mention either.
    expect(JSON.stringify(fake.message("#alerts", root.ts)!.blocks)).not.toContain("<@U0ONCALL1>");
  });
});

describe("slack bot mode: pacing", () => {
  it("posts a burst at once, then waits in place for a short slot (not deferrable)", async () => {
    fake.setRateLimit({ perChannel: { ratePerSec: 1, burst: 5 } });
    const d = bot({ channel: fake.channelId, burst: 3, rate_per_second: 1 });
    for (let k = 0; k < 5; k++) await d.send(issue({ fingerprint: `fp-pace-${k}` }), ctx());
    expect(fake.topLevel()).toHaveLength(5);
    expect(fake.stats().rateLimited).toBe(0);
  });

  it("defers a far slot when the caller can reschedule, each waiting Issue with its own slot", async () => {
    const d = bot({ channel: fake.channelId, burst: 1, rate_per_second: 0.5, storm: false });
    const deferrable = { ...ctx(), deferrable: true };
    await d.send(issue({ fingerprint: "fp-d-0" }), deferrable);
    const waits: number[] = [];
    for (let k = 1; k <= 4; k++) {
      const e = await sendError(d, issue({ fingerprint: `fp-d-${k}` }), deferrable);
      expect(e).toMatchObject({ defer: true, retryable: true, code: "paced" });
      waits.push(e.retryAfterMs!);
    }
    expect(fake.topLevel()).toHaveLength(1);
    // Distinct, increasing slots, not one time for all.
    expect([...waits].sort((a, b) => a - b)).toEqual(waits);
    expect(new Set(waits).size).toBe(4);
    // With storm mode on, a waiting Issue looks again every few seconds (it may be folded), keeping its slot.
    const stormy = bot({ channel: fake.channelId, burst: 1, rate_per_second: 0.1 });
    await stormy.send(issue({ fingerprint: "fp-s-0" }), deferrable);
    await sendError(stormy, issue({ fingerprint: "fp-s-1" }), deferrable);
    const far = await sendError(stormy, issue({ fingerprint: "fp-s-2" }), deferrable);
    expect(far).toMatchObject({ defer: true, retryAfterMs: 3000 });
  });

  it("a 429 pauses that channel only, for Retry-After", async () => {
    fake.setRateLimit({ perChannel: { ratePerSec: 0.25, burst: 1 } });
    const d = bot({ channel: "#{{ labels.chan }}", fallback_channel: "#alerts", rate_per_second: 1, burst: 3, storm: false });
    const to = (chan: string, fp: string): Issue => issue({ fingerprint: fp, subject: subjectFromLabels({ alertname: "X", namespace: "shop", chan }) });
    const deferrable = { ...ctx(), deferrable: true };
    await d.send(to("alerts", "fp-429-a"), deferrable);
    const e = await sendError(d, to("alerts", "fp-429-b"), deferrable);
    expect(e).toMatchObject({ code: "ratelimited", retryable: true, defer: true, retryAfterMs: 4000 });
    // The next Issue for that channel waits too (deferred, not sent into another 429)...
    const e2 = await sendError(d, to("alerts", "fp-429-c"), deferrable);
    expect(e2).toMatchObject({ defer: true, code: "paced" });
    expect(e2.retryAfterMs).toBeGreaterThan(3000);
    // ...while another channel goes at once.
    await d.send(to("alerts-payments", "fp-429-d"), deferrable);
    expect(fake.topLevel("#alerts-payments")).toHaveLength(1);
    expect(fake.stats().rateLimited).toBe(1);
  });
});

describe("slack bot mode: failures", () => {
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
    fake.platformError(code, { count: 1, method: "chat.postMessage" });
    const e = await sendError(bot());
    expect(e).toMatchObject({ code, retryable: false });
    expect(e.hint).toMatch(/report this bug/);
    expectNoSecrets(e);
  });

  it.each([500, 502, 503])("maps HTTP %i to a retryable error", async (status) => {
    fake.failNext(1, { status, method: "chat.postMessage" });
    const e = await sendError(bot());
    expect(e).toMatchObject({ code: `http_${status}`, retryable: true });
    expectNoSecrets(e);
    // The next attempt goes through.
    await bot().send(issue(), ctx());
    expect(fake.messages).toHaveLength(1);
  });

  it("maps a 429 past the per-channel rate limit to a retryable error with Retry-After", async () => {
    fake.setRateLimit({ perChannel: { ratePerSec: 0.25, burst: 1 } });
    const d = bot({ rate_per_second: 1, burst: 3 });
    await d.send(issue({ fingerprint: "fp-rl-1" }), ctx());
    const e = await sendError(d, issue({ fingerprint: "fp-rl-2" }));
    expect(e).toMatchObject({ code: "ratelimited", retryable: true });
    expect(e.retryAfterMs).toBe(4000);
    expect(fake.stats().rateLimited).toBe(1);
    expectNoSecrets(e);
  });

  it("passes on the Retry-After of an injected 429", async () => {
    fake.failNext(1, { status: 429, retryAfter: 7, method: "chat.postMessage" });
    const e = await sendError(bot());
    expect(e).toMatchObject({ code: "ratelimited", retryable: true, retryAfterMs: 7000 });
  });

  it("maps a hang past the timeout to a retryable timeout", async () => {
    const h = fake.hang({ method: "chat.postMessage" });
    const e = await sendError(bot({ timeout: "300ms", channel: fake.channelId }));
    expect(e).toMatchObject({ code: "timeout", retryable: true, maybeDelivered: true });
    expect(e.message).toContain("300 ms");
    expect(h.hits).toBe(1);
    expectNoSecrets(e);
  });

  it("maps a dropped connection to a retryable network error", async () => {
    fake.closeNext(1, { method: "chat.postMessage" });
    const e = await sendError(bot());
    expect(e.retryable).toBe(true);
    expectNoSecrets(e);
  });

  it("maps an unreachable API to a retryable network error", async () => {
    const down = await startSlackFake();
    const url = down.url;
    await down.close();
    const e = await sendError(bot({ api_url: url, channel: "C0ALERTS01" }));
    expect(e.retryable).toBe(true);
    expectNoSecrets(e);
  });

  it("a root that cannot be edited does not fail the resolution (the reply says it)", async () => {
    const d = bot();
    const firing = issue();
    await d.send(firing, ctx());
    fake.platformError("cant_update_message", { method: "chat.update", count: 1 });
    const r = await d.send(resolved(firing), ctx());
    expect(r.detail).toMatch(/^replied in the thread/);
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

  it("gets an oversized Issue accepted, everything inline (no files)", async () => {
    await webhook().send(bigIssue(), ctx());
    expect(fake.messages).toHaveLength(1);
    expect(fake.files).toHaveLength(0);
    expect(visible(fake.messages[0]!)).not.toContain("in the thread");
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
