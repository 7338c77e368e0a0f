import type { Issue } from "../../core/issue.js";
import { LogOnce } from "../../observability/log-once.js";
import type { Logger } from "../../observability/logger.js";
import { compileTemplate, templateData, type CompiledTemplate } from "../../workflows/template.js";
import { postJson, safeTarget, statusError } from "../http.js";
import { DeliveryError, type Destination, type DestinationDeps, type FindContext, type Rendered, type SendContext, type SendResult } from "../types.js";
import { SlackApi, type HistoryMessage } from "./client.js";
import { deferral, WEBHOOK_ERRORS } from "./errors.js";
import { attachFiles, type FilesDeps } from "./files.js";
import { Pacer, sleep, waitForSlot, type PaceContext } from "./pacer.js";
import { MENTION_RE, type SlackParams } from "./params.js";
import { code, planReply, planSlack, renderSlack, type SlackPlan } from "./render.js";
import { StormManager } from "./storm.js";
import {
  channelName,
  compactIssue,
  isChannelId,
  kubecanoPayload,
  Kv,
  memoryState,
  newEnrichments,
  repeatLead,
  resolvedLead,
  resolvedRoot,
  ThreadIndex,
  tsToIso,
  type SentKind,
  type SentRecord,
  type ThreadRecord,
} from "./threads.js";

/**
 * Slack destination. Bot mode keeps one thread per Issue fingerprint and
 * channel: the first FIRING notification is a root message (metadata
 * carrying the fingerprint), repeats and the resolution are replies, the
 * root is edited to show RESOLVED, and files (logs, data that does not fit)
 * are attached in the thread. Each channel is paced (pacer.ts); a channel
 * with a long backlog folds waiting Issues into one storm summary
 * (storm.ts). Webhook mode posts the same layout to an incoming webhook:
 * no threads, edits, files or metadata.
 */
export function create(name: string, params: SlackParams, deps: DestinationDeps): Destination {
  return params.mode === "bot" ? new SlackBotDestination(name, params, deps) : webhookDestination(name, params);
}

/** A label or annotation with mentions for an Issue's root ("<@U123> <!subteam^S456>"). */
export const MENTION_KEY = "kubecano.io/slack-mention";

/** The configured mentions and the Issue's own, validated, for a FIRING root. */
export function mentionsOf(issue: Issue, configured: readonly string[] = []): string[] {
  const own = [issue.subject.labels[MENTION_KEY], issue.subject.annotations[MENTION_KEY]].flatMap((v) => (v ?? "").split(/[\s,]+/)).filter((t) => MENTION_RE.test(t));
  return [...new Set([...configured, ...own])].slice(0, 20);
}

/** How often a delivery waiting for its slot looks again whether it should be folded into a storm. */
const STORM_RECHECK_MS = 3_000;

/** A channel kubecano found missing is tried again after this long. */
const MISSING_CHANNEL_MS = 10 * 60_000;

interface Target {
  /** The channel as configured or templated (name or ID). */
  readonly ref: string;
  readonly lane: string;
  /** Context lines for a root (why it is in the fallback channel). */
  readonly notes: readonly string[];
  /** The ref came from the channel template (so channel_not_found falls back). */
  readonly templated: boolean;
}

type Step =
  | { readonly kind: "root"; readonly channelId: string | undefined; readonly previous: ThreadRecord | undefined }
  | { readonly kind: "repeat" | "resolution"; readonly channelId: string; readonly thread: ThreadRecord }
  | { readonly kind: "resolved-root"; readonly channelId: string | undefined };

class SlackBotDestination implements Destination {
  readonly type = "slack";
  private readonly api: SlackApi;
  private readonly kv: Kv;
  private readonly log: Logger;
  private readonly threads: ThreadIndex;
  private readonly pacer: Pacer;
  private readonly updates: Pacer;
  private readonly storm: StormManager | undefined;
  private readonly files: FilesDeps;
  private readonly template: CompiledTemplate | undefined;
  private readonly missing = new Map<string, number>();
  private readonly logOnce = new LogOnce(Date.now);

  constructor(
    readonly name: string,
    private readonly p: SlackParams,
    deps: DestinationDeps,
  ) {
    this.log = deps.log.child({ destination: name });
    this.kv = new Kv(deps.state ?? memoryState(), `slack:${name}`);
    this.api = new SlackApi({ token: p.token!, apiUrl: p.api_url, timeoutMs: p.timeout, username: p.username, iconEmoji: p.icon_emoji, log: this.log });
    this.pacer = new Pacer({ ratePerSecond: p.rate_per_second, burst: p.burst });
    this.updates = new Pacer({ ratePerSecond: 1000 / Math.max(1, p.update_interval), burst: 1 });
    const warnOnce = (key: string, msg: string, fields: Record<string, unknown> = {}): void => this.logOnce.log(this.log, "warn", key, fields, msg);
    this.threads = new ThreadIndex(this.kv, this.api, this.log, warnOnce);
    this.files = { api: this.api, kv: this.kv, pacer: this.pacer, log: this.log, warnOnce };
    this.template = p.channel!.includes("{{") ? compileTemplate(p.channel!) : undefined;
    this.storm =
      p.storm === false
        ? undefined
        : new StormManager({
            api: this.api,
            kv: this.kv,
            pacer: this.pacer,
            updates: this.updates,
            threads: this.threads,
            files: this.files,
            settings: { threshold: p.storm.threshold, updateIntervalMs: p.storm.update_interval, quietMs: p.storm.quiet },
            log: this.log,
            warnOnce,
          });
  }

  render(issue: Issue): Rendered {
    const target = this.target(issue);
    const plan = this.rootPlan(issue, target, undefined);
    return {
      kind: "json",
      body: {
        channel: target.ref,
        ...plan.message,
        ...(this.p.username !== undefined ? { username: this.p.username } : {}),
        ...(this.p.icon_emoji !== undefined ? { icon_emoji: this.p.icon_emoji } : {}),
        unfurl_links: false,
        unfurl_media: false,
        ...(plan.files.length > 0 ? { files: plan.files.map((f) => ({ filename: f.filename, title: f.title, bytes: Buffer.byteLength(f.content) })) } : {}),
      },
    };
  }

  async send(issue: Issue, ctx: SendContext): Promise<SendResult> {
    return this.deliver(issue, ctx);
  }

  /**
   * For an attempt that may have posted before a restart: the Issue's own
   * message, searched by its issue id in the thread it would have gone
   * into and in the channel's recent history. Found, the delivery resumes
   * after the post (thread bookkeeping, files), like a retry does.
   */
  async findExisting(issue: Issue, ctx: FindContext): Promise<SendResult | undefined> {
    const pace: PaceContext = { signal: ctx.signal, deferrable: ctx.deferrable };
    if (this.kv.get<SentRecord>(`sent:${issue.id}`) !== undefined || this.storm?.status(issue.id) !== undefined) return this.deliver(issue, pace);
    const target = this.target(issue);
    const channelId = await this.threads.channelId(target.ref);
    if (channelId === undefined) return undefined;
    const oldest = ((ctx.since - 60_000) / 1000).toFixed(6);
    let sent: SentRecord | undefined;
    try {
      const thread = this.threads.get(channelId, issue.fingerprint);
      if (thread !== undefined) {
        const m = await this.search((cursor) => this.api.replies(thread.channel, thread.ts, { oldest, limit: 200, cursor }), issue.id, true);
        if (m !== undefined) sent = { kind: issue.status === "FIRING" ? "repeat" : "resolution", channel: thread.channel, ts: m.ts, threadTs: thread.ts, lane: target.lane };
      }
      if (sent === undefined) {
        const m = await this.search((cursor) => this.api.history(channelId, { oldest, limit: 200, cursor }), issue.id, false);
        if (m !== undefined) sent = { kind: issue.status === "FIRING" ? "root" : "resolved-root", channel: channelId, ts: m.ts, threadTs: m.ts, lane: target.lane };
      }
    } catch (e) {
      ctx.log.warn({ code: (e as { code?: string }).code }, "cannot check Slack for a message sent before a restart; sending it again (it may appear twice)");
      return undefined;
    }
    if (sent === undefined) return undefined;
    this.kv.set(`sent:${issue.id}`, sent);
    return this.finish(issue, sent, pace);
  }

  async close(): Promise<void> {
    this.storm?.close();
  }

  // ---- the delivery ---------------------------------------------------------

  private async deliver(issue: Issue, ctx: PaceContext): Promise<SendResult> {
    const sent = this.kv.get<SentRecord>(`sent:${issue.id}`);
    if (sent !== undefined) return this.finish(issue, sent, ctx);
    const folded = this.storm?.status(issue.id);
    if (folded !== undefined && folded.kind !== "lost") return this.completeFolded(issue, ctx);
    if (folded?.kind === "lost") this.kv.set(`folded:${issue.id}`, undefined);
    const target = this.target(issue);
    if (this.storm?.shouldFold(target.lane) === true) {
      this.storm.fold(target.lane, target.ref, issue);
      this.storm.handOver(target.lane, `${issue.id}:post`);
      return this.completeFolded(issue, ctx);
    }
    const step = await this.decide(issue, target);
    return this.post(issue, target, step, ctx);
  }

  /** Root, reply in its thread, or a top-level resolution: what this Issue is in its channel. */
  private async decide(issue: Issue, target: Target): Promise<Step> {
    const channelId = await this.threads.channelId(target.ref);
    const thread = channelId !== undefined ? await this.threads.find(channelId, issue.fingerprint) : undefined;
    if (issue.status === "FIRING") {
      if (channelId !== undefined && thread?.status === "FIRING") return { kind: "repeat", channelId, thread };
      return { kind: "root", channelId, previous: thread };
    }
    if (channelId !== undefined && thread !== undefined) return { kind: "resolution", channelId, thread };
    return { kind: "resolved-root", channelId };
  }

  private async post(issue: Issue, target: Target, step: Step, ctx: PaceContext): Promise<SendResult> {
    const previous = step.kind === "root" && step.previous !== undefined ? await this.permalink(step.previous) : undefined;
    const plan = this.planFor(issue, target, step, previous);
    const threadTs = step.kind === "repeat" || step.kind === "resolution" ? step.thread.ts : undefined;
    const postTo = step.kind === "repeat" || step.kind === "resolution" ? step.thread.channel : (step.channelId ?? target.ref);
    const key = `${issue.id}:post`;
    // A waiting root may be folded if a storm starts: it looks again before its slot.
    await waitForSlot(this.pacer, target.lane, key, this.storm !== undefined ? { ...ctx, recheckMs: STORM_RECHECK_MS } : ctx, target.ref);
    let res: { channel: string; ts: string };
    try {
      res = await this.api.post(postTo, plan.message, threadTs);
    } catch (e) {
      if (e instanceof DeliveryError && e.code === "ratelimited") throw this.rateLimited(this.pacer, target.lane, key, e, ctx);
      if (e instanceof DeliveryError && e.code === "channel_not_found" && target.templated && this.p.fallback_channel !== undefined) {
        this.missing.set(channelName(target.ref), Date.now());
        this.logOnce.log(this.log, "warn", `missing-channel:${channelName(target.ref)}`, { channel: target.ref, fallback: this.p.fallback_channel }, `Slack has no channel ${target.ref} (or the bot cannot see it): posting to ${this.p.fallback_channel} instead`);
        return this.deliver(issue, ctx);
      }
      throw e;
    }
    this.threads.learn(target.ref, res.channel);
    const sent: SentRecord = {
      kind: step.kind,
      channel: res.channel,
      ts: res.ts,
      threadTs: threadTs ?? res.ts,
      lane: target.lane,
      ...(previous !== undefined ? { previous } : {}),
    };
    this.kv.set(`sent:${issue.id}`, sent);
    return this.finish(issue, sent, ctx, plan);
  }

  /** The steps after the post: thread bookkeeping, the root's edit, files. Each is recorded, so a retry resumes. */
  private async finish(issue: Issue, sent: SentRecord, ctx: PaceContext, plan?: SlackPlan): Promise<SendResult> {
    const fp = issue.fingerprint;
    const thread = this.threads.get(sent.channel, fp);
    switch (sent.kind) {
      case "root":
        if (thread?.ts !== sent.ts) {
          this.threads.save(fp, {
            channel: sent.channel,
            ts: sent.ts,
            status: "FIRING",
            startedAt: issue.startsAt,
            firedAt: tsToIso(sent.ts),
            issueId: issue.id,
            root: compactIssue(issue),
            ...(sent.previous !== undefined ? { previous: sent.previous } : {}),
          });
        }
        break;
      case "resolved-root":
        if (thread?.ts !== sent.ts) {
          this.threads.save(fp, { channel: sent.channel, ts: sent.ts, status: "RESOLVED", startedAt: issue.startsAt, firedAt: tsToIso(sent.ts), issueId: issue.id, resolvedAt: issue.endsAt ?? issue.receivedAt });
        }
        break;
      case "resolution":
        if (thread !== undefined && thread.ts === sent.threadTs && thread.status === "FIRING") await this.resolveRoot(issue, thread, sent.lane, ctx);
        break;
      case "folded":
        if (issue.status === "FIRING") {
          if (thread === undefined || thread.status === "RESOLVED") {
            this.threads.save(fp, { channel: sent.channel, ts: sent.ts, status: "FIRING", startedAt: issue.startsAt, firedAt: tsToIso(sent.ts), issueId: issue.id, storm: true });
          }
        } else if (thread !== undefined && thread.status === "FIRING") {
          await this.resolveRoot(issue, thread, sent.lane, ctx);
        }
        return { remoteId: `${sent.channel}/${sent.ts}`, detail: `folded into the storm summary in ${sent.channel} (ts ${sent.ts})` };
      case "repeat":
        break;
    }
    if (this.p.files) {
      const files = (plan ?? this.planFor(issue, { ref: sent.channel, lane: sent.lane, notes: [], templated: false }, this.stepOf(sent, thread), sent.previous)).files;
      await attachFiles(this.files, issue.id, files, { channelId: sent.channel, threadTs: sent.threadTs ?? sent.ts, lane: sent.lane }, ctx);
    }
    const root = sent.kind === "root" || sent.kind === "resolved-root";
    return { remoteId: `${sent.channel}/${sent.ts}`, detail: root ? `posted to ${sent.channel} (ts ${sent.ts})` : `replied in the thread of ${sent.channel} (ts ${sent.threadTs ?? sent.ts})` };
  }

  /** The root shows the resolution: edited in place (paced), then the thread is marked RESOLVED. */
  private async resolveRoot(issue: Issue, thread: ThreadRecord, lane: string, ctx: PaceContext): Promise<void> {
    if (thread.storm !== true) {
      const key = `${issue.id}:update`;
      await waitForSlot(this.updates, lane, key, ctx, "edits in this channel");
      const root = thread.root !== undefined ? resolvedRoot(thread.root, issue) : { ...issue, id: thread.issueId };
      const msg = planSlack(root, { metadata: true, files: this.p.files, ...(thread.previous !== undefined ? { previous: { permalink: thread.previous } } : {}) }).message;
      try {
        await this.api.update(thread.channel, thread.ts, msg);
      } catch (e) {
        if (!(e instanceof DeliveryError)) throw e;
        if (e.code === "ratelimited") throw this.rateLimited(this.updates, lane, key, e, ctx);
        if (e.retryable) throw e;
        // The reply already says it resolved; a root that cannot be edited is not worth failing the delivery for.
        this.logOnce.log(this.log, "warn", `update:${e.code}`, { code: e.code, ...(e.hint !== undefined ? { hint: e.hint } : {}) }, `cannot mark the first message of a thread RESOLVED: ${e.message}`);
      }
    }
    this.threads.save(issue.fingerprint, { ...thread, status: "RESOLVED", resolvedAt: issue.endsAt ?? issue.receivedAt });
  }

  /** A folded Issue completes once a summary that counts it is in Slack; until then it waits (deferred). */
  private async completeFolded(issue: Issue, ctx: PaceContext): Promise<SendResult> {
    for (;;) {
      const st = this.storm?.status(issue.id);
      if (st === undefined || st.kind === "lost") {
        this.kv.set(`folded:${issue.id}`, undefined);
        return this.deliver(issue, ctx);
      }
      if (st.kind === "failed") throw st.error;
      if (st.kind === "included") {
        const sent: SentRecord = { kind: "folded", channel: st.channel, ts: st.ts, threadTs: st.ts, lane: st.lane };
        this.kv.set(`sent:${issue.id}`, sent);
        return this.finish(issue, sent, ctx);
      }
      if (ctx.deferrable === true) throw deferral(st.ms, "folded into the storm summary: waiting for its next update", "storm");
      await sleep(st.ms, ctx.signal);
    }
  }

  // ---- rendering --------------------------------------------------------------

  private planFor(issue: Issue, target: Target, step: Step, previous: string | undefined): SlackPlan {
    switch (step.kind) {
      case "root":
        return this.rootPlan(issue, target, step.previous !== undefined ? { permalink: previous, resolvedAt: step.previous.resolvedAt } : undefined);
      case "resolved-root":
        return planSlack(issue, { metadata: true, files: this.p.files, notes: target.notes });
      case "repeat":
        return planReply(issue, { lead: repeatLead(issue, step.thread.storm === true), status: `STILL FIRING ${issue.severity}`, enrichments: newEnrichments(issue, step.thread.root), files: this.p.files });
      case "resolution":
        return planReply(issue, { lead: resolvedLead(issue, step.thread.storm === true), status: "RESOLVED", files: this.p.files });
    }
  }

  private rootPlan(issue: Issue, target: Target, previous: { permalink?: string | undefined; resolvedAt?: string | undefined } | undefined): SlackPlan {
    return planSlack(issue, {
      metadata: true,
      files: this.p.files,
      ...(issue.status === "FIRING" ? { mentions: mentionsOf(issue, this.p.mentions) } : {}),
      ...(previous !== undefined ? { previous } : {}),
      notes: target.notes,
    });
  }

  /** The step a recorded post was, for recomputing its files on a resumed delivery. */
  private stepOf(sent: SentRecord, thread: ThreadRecord | undefined): Step {
    const t: ThreadRecord = thread ?? { channel: sent.channel, ts: sent.threadTs ?? sent.ts, status: "FIRING", startedAt: "", firedAt: "", issueId: "" };
    const kind: SentKind = sent.kind;
    switch (kind) {
      case "repeat":
      case "resolution":
        return { kind, channelId: sent.channel, thread: t };
      case "resolved-root":
        return { kind, channelId: sent.channel };
      default:
        return { kind: "root", channelId: sent.channel, previous: undefined };
    }
  }

  /** The previous occurrence's link for a re-fire (best effort: without it the root says so in words). */
  private async permalink(t: ThreadRecord): Promise<string | undefined> {
    try {
      return await this.api.permalink(t.channel, t.ts);
    } catch (e) {
      this.logOnce.log(this.log, "warn", `permalink:${(e as { code?: string }).code ?? "error"}`, { code: (e as { code?: string }).code }, "cannot link a re-fired alert to its previous thread (chat.getPermalink)");
      return undefined;
    }
  }

  // ---- routing inside Slack ---------------------------------------------------

  /** The channel for an Issue: the template's result, or the fallback when it names a missing value or a missing channel. */
  private target(issue: Issue): Target {
    const fallback = this.p.fallback_channel;
    if (this.template === undefined || fallback === undefined) {
      const ref = this.p.channel!;
      return { ref, lane: channelName(ref), notes: [], templated: false };
    }
    const r = renderChannel(this.template, issue);
    if (r.channel === undefined) {
      return { ref: fallback, lane: channelName(fallback), notes: [`:twisted_rightwards_arrows: Posted here: the channel template \`${code(this.template.source)}\` ${r.why}.`], templated: false };
    }
    const missingAt = this.missing.get(channelName(r.channel));
    if (missingAt !== undefined && Date.now() - missingAt < MISSING_CHANNEL_MS) {
      return { ref: fallback, lane: channelName(fallback), notes: [`:twisted_rightwards_arrows: Posted here: Slack has no channel ${code(r.channel)} (or the bot cannot see it).`], templated: false };
    }
    return { ref: r.channel, lane: channelName(r.channel), notes: [], templated: true };
  }

  /** A 429: the lane waits Retry-After, and the delivery with it. */
  private rateLimited(pacer: Pacer, lane: string, key: string, e: DeliveryError, ctx: PaceContext): DeliveryError {
    const after = e.retryAfterMs ?? 1_000;
    pacer.pause(lane, after);
    const wait = Math.max(after, pacer.acquire(lane, key));
    return new DeliveryError(e.message, { retryable: true, code: "ratelimited", retryAfterMs: wait, defer: ctx.deferrable === true });
  }

  private async search(page: (cursor: string | undefined) => Promise<{ messages: HistoryMessage[]; next: string | undefined }>, issueId: string, replies: boolean): Promise<HistoryMessage | undefined> {
    let cursor: string | undefined;
    for (let n = 0; n < 5; n++) {
      const r = await page(cursor);
      const hit = r.messages.find((m) => {
        const p = kubecanoPayload(m);
        return p?.["issue_id"] === issueId && (replies ? p["kind"] === "reply" : p["kind"] === undefined);
      });
      if (hit !== undefined) return hit;
      cursor = r.next;
      if (cursor === undefined) return undefined;
    }
    return undefined;
  }
}

/**
 * Renders a channel template; undefined (with why) when a value it names
 * is missing or empty, or the result is no channel name.
 */
export function renderChannel(t: CompiledTemplate, issue: Issue): { channel?: string; why?: string } {
  const data = templateData(issue);
  for (const m of t.source.matchAll(/\{\{\s*([^}]*?)\s*\}\}/g)) {
    const expr = m[1] ?? "";
    // A default filter makes a missing value fine.
    if (/\|\s*default\b/.test(expr)) continue;
    if (compileTemplate(`{{ ${expr} }}`).render(data).trim() === "") return { why: `names ${expr.split("|")[0]!.trim()}, which this alert does not have` };
  }
  const raw = t.render(data).trim();
  if (isChannelId(raw)) return { channel: raw };
  const name = raw.replace(/^#/, "").toLowerCase();
  if (!/^[a-z0-9][a-z0-9._-]{0,79}$/.test(name)) return { why: `gives ${JSON.stringify(raw.slice(0, 90))}, which is no channel name` };
  return { channel: `#${name}` };
}

function webhookDestination(name: string, params: SlackParams): Destination {
  const url = params.webhook_url!;
  const target = safeTarget(url);
  const pacer = new Pacer({ ratePerSecond: params.rate_per_second, burst: params.burst });
  const payload = (issue: Issue): Record<string, unknown> => {
    const msg = renderSlack(issue, { metadata: false, ...(issue.status === "FIRING" ? { mentions: mentionsOf(issue, params.mentions) } : {}) });
    return { text: msg.text, blocks: msg.blocks, attachments: msg.attachments, unfurl_links: false, unfurl_media: false };
  };
  return {
    name,
    type: "slack",
    render: (issue) => ({ kind: "json", body: payload(issue) }),
    async send(issue: Issue, ctx: SendContext): Promise<SendResult> {
      const key = `${issue.id}:post`;
      await waitForSlot(pacer, "webhook", key, ctx, "the incoming webhook");
      const res = await postJson(url, payload(issue), { signal: ctx.signal, timeoutMs: params.timeout });
      if (res.status >= 200 && res.status < 300) return { detail: `posted to the incoming webhook at ${target}` };
      const errorCode = res.text.trim().split(/\s/)[0] ?? "";
      const known = WEBHOOK_ERRORS[errorCode];
      if (known !== undefined && res.status < 500 && res.status !== 429) {
        throw new DeliveryError(`Slack incoming webhook answered HTTP ${res.status}: ${errorCode}`, { retryable: known.retryable, code: errorCode, hint: known.hint });
      }
      const err = statusError(res, "Slack incoming webhook", res.status === 404 ? WEBHOOK_ERRORS["no_service"]?.hint : undefined);
      if (res.status !== 429) throw err;
      const after = err.retryAfterMs ?? 1_000;
      pacer.pause("webhook", after);
      const wait = Math.max(after, pacer.acquire("webhook", key));
      throw new DeliveryError(err.message, { retryable: true, code: err.code, retryAfterMs: wait, defer: ctx.deferrable === true });
    },
  };
}
