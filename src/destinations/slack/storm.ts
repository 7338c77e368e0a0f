import type { Issue } from "../../core/issue.js";
import { formatDuration } from "../../core/issue.js";
import { describeSubject } from "../../core/subject.js";
import { renderTable } from "../console/render.js";
import { DeliveryError } from "../types.js";
import type { SlackApi } from "./client.js";
import { attachFiles, type FilesDeps } from "./files.js";
import { SLACK_LIMITS as L, type SlackBlock, type SlackMessage } from "./limits.js";
import { sleep, type Pacer } from "./pacer.js";
import { codeBlock, cutEscaped, mrkdwn, oneLine, plain, safeCut, slackDate, wellFormed, type PlannedFile } from "./render.js";
import type { Kv, ThreadIndex } from "./threads.js";

/** Metadata event type of storm summaries (distinct from Issues': the thread search ignores them). */
export const STORM_EVENT_TYPE = "kubecano_storm";

export interface StormSettings {
  /** Reserved slots of a channel past which it folds new Issues. */
  readonly threshold: number;
  readonly updateIntervalMs: number;
  readonly quietMs: number;
}

export interface StormDeps {
  readonly api: SlackApi;
  readonly kv: Kv;
  /** The channels' message pacing (posts, file shares). */
  readonly pacer: Pacer;
  /** The channels' edit pacing (chat.update). */
  readonly updates: Pacer;
  readonly threads: ThreadIndex;
  readonly files: FilesDeps;
  readonly settings: StormSettings;
  readonly log: FilesDeps["log"];
  readonly warnOnce: FilesDeps["warnOnce"];
  readonly now?: () => number;
}

/** One folded Issue, as the summary counts it and the final list shows it. */
export interface FoldEntry {
  readonly issueId: string;
  readonly fingerprint: string;
  readonly status: "FIRING" | "RESOLVED";
  readonly severity: string;
  readonly alert: string;
  readonly where: string;
  readonly title: string;
  /** When it started firing, or resolved (ISO). */
  readonly time: string;
}

/** `storm:<id>`: a storm's durable record. */
interface StormRecord {
  readonly id: string;
  readonly lane: string;
  /** Where the summary is posted (the channel as configured or templated). */
  readonly channel: string;
  channelId?: string;
  summaryTs?: string;
  readonly startedAt: number;
  /** Issues folded (`fold:<id>:<n>` for n < this). */
  n: number;
  /** Issues the summary in Slack includes (the first `posted`). */
  posted: number;
  /** A summary post whose answer was lost: look for it before posting another. */
  postInDoubtSince?: number | undefined;
  lastFoldAt: number;
  ending?: boolean;
  ended?: boolean;
  end?: { summary?: boolean; list?: boolean; over?: boolean };
}

/** `folded:<issueId>`. */
interface FoldedRef {
  readonly storm: string;
  readonly n: number;
}

export type FoldStatus =
  | { readonly kind: "included"; readonly channel: string; readonly ts: string; readonly lane: string }
  | { readonly kind: "waiting"; readonly ms: number }
  | { readonly kind: "failed"; readonly error: DeliveryError }
  /** The storm is gone without the Issue in its summary (its state was lost): deliver it normally. */
  | { readonly kind: "lost" };

class Storm {
  readonly entries: FoldEntry[];
  timer: NodeJS.Timeout | undefined;
  ticker: NodeJS.Timeout | undefined;
  flushing = false;
  lastFlushAt = 0;
  nextFlushAt: number | undefined;
  retries = 0;
  failed: DeliveryError | undefined;
  constructor(
    readonly rec: StormRecord,
    entries: FoldEntry[],
  ) {
    this.entries = entries;
  }
}

/**
 * Storm mode, per channel: once a channel's backlog of reserved slots
 * passes the threshold, waiting Issues are folded into one summary message
 * (counts by alert, namespace and severity) that is posted once and then
 * edited in place as more arrive. A folded delivery completes once a
 * summary that counts it is in Slack. When the channel is quiet again the
 * storm ends: the summary says so, the list of every folded Issue is
 * attached in its thread with a "storm over" reply, and normal messages
 * resume. Everything is recorded in the destination state, so a restart
 * resumes a storm where it was.
 */
export class StormManager {
  /** The storm folding new Issues, per lane. */
  private readonly active = new Map<string, Storm>();
  /** Every storm in memory (folding or ending), by id. */
  private readonly byId = new Map<string, Storm>();
  private readonly abort = new AbortController();
  private readonly now: () => number;

  constructor(private readonly d: StormDeps) {
    this.now = d.now ?? Date.now;
    this.restore();
  }

  /** Whether a new Issue for this lane is folded rather than posted. */
  shouldFold(lane: string): boolean {
    return this.active.has(lane) || this.d.pacer.backlog(lane) > this.d.settings.threshold;
  }

  /** Counts `issue` in the lane's storm (starting one); idempotent per Issue. */
  fold(lane: string, channel: string, issue: Issue): void {
    if (this.d.kv.get<FoldedRef>(`folded:${issue.id}`) !== undefined) return;
    const s = this.active.get(lane) ?? this.start(lane, channel);
    const n = s.entries.length;
    const entry = foldEntry(issue);
    s.entries.push(entry);
    s.rec.n = n + 1;
    s.rec.lastFoldAt = this.now();
    this.d.kv.set(`fold:${s.rec.id}:${n}`, entry);
    this.d.kv.set(`folded:${issue.id}`, { storm: s.rec.id, n } satisfies FoldedRef);
    this.save(s);
    this.scheduleFlush(s);
  }

  /**
   * A folded delivery's reserved message slot goes to the storm's summary
   * while it waits to be posted (so it goes out at the first free slot, not
   * behind the whole backlog), else back to the lane.
   */
  handOver(lane: string, key: string): void {
    const s = this.active.get(lane);
    if (s !== undefined && s.rec.summaryTs === undefined) this.d.pacer.transfer(lane, key, `storm:${s.rec.id}:post`);
    else this.d.pacer.release(lane, key);
  }

  /** Where a folded Issue stands; undefined when it was never folded. */
  status(issueId: string): FoldStatus | undefined {
    const f = this.d.kv.get<FoldedRef>(`folded:${issueId}`);
    if (f === undefined) return undefined;
    const s = this.byId.get(f.storm);
    const rec = s?.rec ?? this.d.kv.get<StormRecord>(`storm:${f.storm}`);
    if (rec?.summaryTs !== undefined && rec.channelId !== undefined && rec.posted > f.n) return { kind: "included", channel: rec.channelId, ts: rec.summaryTs, lane: rec.lane };
    if (s?.failed !== undefined) return { kind: "failed", error: s.failed };
    if (s !== undefined && !this.abort.signal.aborted) {
      const next = s.nextFlushAt ?? this.now() + this.d.settings.updateIntervalMs;
      return { kind: "waiting", ms: Math.max(250, next - this.now() + 500) };
    }
    return { kind: "lost" };
  }

  /** Stops the timers; what is recorded resumes on the next start. */
  close(): void {
    this.abort.abort(new Error("the Slack destination is closing"));
    for (const s of this.byId.values()) {
      if (s.timer !== undefined) clearTimeout(s.timer);
      if (s.ticker !== undefined) clearInterval(s.ticker);
    }
  }

  private start(lane: string, channel: string): Storm {
    const t = this.now();
    const rec: StormRecord = { id: `${t.toString(36)}-${Math.random().toString(36).slice(2, 8)}`, lane, channel, startedAt: t, n: 0, posted: 0, lastFoldAt: t };
    const s = new Storm(rec, []);
    this.active.set(lane, s);
    this.byId.set(rec.id, s);
    this.d.kv.set("storms", [...(this.d.kv.get<string[]>("storms") ?? []).filter((x) => x !== rec.id), rec.id]);
    this.save(s);
    this.startTicker(s);
    this.d.log.warn({ lane, threshold: this.d.settings.threshold }, `alert storm: more than ${this.d.settings.threshold} messages waiting for ${channel}; folding new Issues into one summary message`);
    return s;
  }

  private save(s: Storm): void {
    this.d.kv.set(`storm:${s.rec.id}`, s.rec);
  }

  private restore(): void {
    for (const id of this.d.kv.get<string[]>("storms") ?? []) {
      const rec = this.d.kv.get<StormRecord>(`storm:${id}`);
      if (rec === undefined || rec.ended === true) continue;
      const entries: FoldEntry[] = [];
      for (let n = 0; n < rec.n; n++) entries.push(this.d.kv.get<FoldEntry>(`fold:${id}:${n}`) ?? lostEntry(n));
      const s = new Storm({ ...rec, lastFoldAt: this.now() }, entries);
      this.byId.set(id, s);
      if (rec.ending === true) {
        void this.finish(s);
        continue;
      }
      this.active.set(rec.lane, s);
      this.startTicker(s);
      if (rec.posted < rec.n || rec.summaryTs === undefined) this.scheduleFlush(s);
    }
  }

  private startTicker(s: Storm): void {
    s.ticker = setInterval(() => this.tick(s), 1_000);
    s.ticker.unref();
  }

  private scheduleFlush(s: Storm, delayMs?: number): void {
    if (s.timer !== undefined || s.flushing || s.failed !== undefined || this.abort.signal.aborted) return;
    const t = this.now();
    const at = delayMs !== undefined ? t + delayMs : Math.max(t, s.lastFlushAt + this.d.settings.updateIntervalMs);
    s.nextFlushAt = at;
    s.timer = setTimeout(() => {
      s.timer = undefined;
      void this.flush(s);
    }, at - t);
    s.timer.unref();
  }

  /** Posts the summary, or edits it to count what was folded since. */
  private async flush(s: Storm): Promise<void> {
    if (s.flushing || this.abort.signal.aborted) return;
    s.flushing = true;
    const count = s.entries.length;
    let retryIn: number | undefined;
    try {
      const msg = { ...renderStormSummary(s.rec, s.entries.slice(0, count), { ended: false }), metadata: stormMetadata(s.rec.id) };
      if (s.rec.summaryTs === undefined && s.rec.postInDoubtSince !== undefined) await this.adoptLostSummary(s);
      if (s.rec.summaryTs === undefined) {
        await this.slot(this.d.pacer, s.rec.lane, `storm:${s.rec.id}:post`);
        s.rec.postInDoubtSince = this.now();
        this.save(s);
        const r = await this.d.api.post(s.rec.channel, msg);
        s.rec.summaryTs = r.ts;
        s.rec.channelId = r.channel;
        s.rec.postInDoubtSince = undefined;
        this.d.threads.learn(s.rec.channel, r.channel);
      } else {
        await this.slot(this.d.updates, s.rec.lane, `storm:${s.rec.id}:update:${count}`);
        await this.d.api.update(s.rec.channelId!, s.rec.summaryTs, msg);
      }
      s.rec.posted = Math.max(s.rec.posted, count);
      this.save(s);
      s.lastFlushAt = this.now();
      s.retries = 0;
    } catch (e) {
      if (this.abort.signal.aborted) return;
      retryIn = this.flushFailed(s, e);
    } finally {
      s.flushing = false;
      if (retryIn !== undefined) this.scheduleFlush(s, retryIn);
      else if (s.entries.length > s.rec.posted) this.scheduleFlush(s);
      else s.nextFlushAt = undefined;
    }
  }

  /** What to do after a failed flush: the delay before trying again, or undefined when the storm failed for good. */
  private flushFailed(s: Storm, e: unknown): number | undefined {
    const err = e instanceof DeliveryError ? e : new DeliveryError(`storm summary: ${e instanceof Error ? e.message : String(e)}`, { retryable: false, code: "internal_error", hint: "please report this bug" });
    const posting = s.rec.summaryTs === undefined;
    if (err.code === "ratelimited") (posting ? this.d.pacer : this.d.updates).pause(s.rec.lane, err.retryAfterMs ?? 1_000);
    if (!posting && ["message_not_found", "cant_update_message", "edit_window_closed"].includes(err.code)) {
      // The summary is gone or frozen: post a new one.
      s.rec.summaryTs = undefined;
      s.rec.posted = 0;
      this.save(s);
      return 0;
    }
    if (!err.retryable) {
      s.failed = err;
      this.d.warnOnce(`storm:${err.code}`, `cannot post the storm summary: ${err.message}; the folded Issues fail with it`, { code: err.code, ...(err.hint !== undefined ? { hint: err.hint } : {}) });
      this.stop(s);
      return undefined;
    }
    if (posting && !err.maybeDelivered) {
      s.rec.postInDoubtSince = undefined;
      this.save(s);
    }
    s.retries++;
    return err.retryAfterMs ?? Math.min(30_000, 500 * 2 ** s.retries);
  }

  /** A summary post whose answer was lost may be in the channel: find it by its storm id. */
  private async adoptLostSummary(s: Storm): Promise<void> {
    const channelId = s.rec.channelId ?? (await this.d.threads.channelId(s.rec.channel));
    if (channelId === undefined) return;
    const oldest = ((s.rec.postInDoubtSince! - 60_000) / 1000).toFixed(6);
    const r = await this.d.api.history(channelId, { oldest, limit: 200 });
    const hit = r.messages.find((m) => m.metadata?.event_type === STORM_EVENT_TYPE && m.metadata.event_payload?.["storm_id"] === s.rec.id);
    if (hit !== undefined) {
      s.rec.summaryTs = hit.ts;
      s.rec.channelId = channelId;
    }
    s.rec.postInDoubtSince = undefined;
    this.save(s);
  }

  /** A background wait for a slot: polls, so a slot handed over by a folding delivery is taken at once. */
  private async slot(pacer: Pacer, lane: string, key: string): Promise<void> {
    for (;;) {
      const ms = pacer.acquire(lane, key);
      if (ms === 0) return;
      await sleep(Math.min(ms, 250), this.abort.signal);
    }
  }

  /** Ends a storm once its channel has been quiet long enough and the summary counts everything. */
  private tick(s: Storm): void {
    if (s.rec.ending === true || s.failed !== undefined || this.abort.signal.aborted) return;
    const quiet = this.now() - s.rec.lastFoldAt >= this.d.settings.quietMs;
    const caughtUp = !s.flushing && s.timer === undefined && s.rec.summaryTs !== undefined && s.rec.posted >= s.entries.length;
    if (quiet && caughtUp && this.d.pacer.backlog(s.rec.lane) < this.d.settings.threshold / 2) {
      s.rec.ending = true;
      this.save(s);
      if (this.active.get(s.rec.lane) === s) this.active.delete(s.rec.lane);
      if (s.ticker !== undefined) clearInterval(s.ticker);
      void this.finish(s);
    }
  }

  /** The end of a storm: the summary says it is over, the list of every Issue and a "storm over" reply go into its thread. */
  private async finish(s: Storm): Promise<void> {
    const rec = s.rec;
    for (let attempt = 0; attempt < 8 && !this.abort.signal.aborted; attempt++) {
      try {
        if (rec.summaryTs === undefined || rec.channelId === undefined) break;
        rec.end ??= {};
        if (rec.end.summary !== true) {
          await this.slot(this.d.updates, rec.lane, `storm:${rec.id}:ended`);
          await this.d.api.update(rec.channelId, rec.summaryTs, { ...renderStormSummary(rec, s.entries, { ended: true }), metadata: stormMetadata(rec.id) });
          rec.end.summary = true;
          this.save(s);
        }
        if (rec.end.list !== true) {
          await attachFiles(this.d.files, `storm:${rec.id}`, [stormListFile(rec, s.entries)], { channelId: rec.channelId, threadTs: rec.summaryTs, lane: rec.lane }, { signal: this.abort.signal, deferrable: false });
          rec.end.list = true;
          this.save(s);
        }
        if (rec.end.over !== true) {
          await this.slot(this.d.pacer, rec.lane, `storm:${rec.id}:over`);
          await this.d.api.post(rec.channelId, stormOverMessage(rec, s.entries), rec.summaryTs);
          rec.end.over = true;
          this.save(s);
        }
        break;
      } catch (e) {
        if (this.abort.signal.aborted) return;
        const err = e instanceof DeliveryError ? e : undefined;
        if (err?.code === "ratelimited") this.d.pacer.pause(rec.lane, err.retryAfterMs ?? 1_000);
        if (err !== undefined && !err.retryable && err.code !== "message_not_found") {
          this.d.warnOnce(`storm-end:${err.code}`, `cannot post the end of a storm: ${err.message}`, { code: err.code });
          break;
        }
        try {
          await sleep(err?.retryAfterMs ?? Math.min(30_000, 1_000 * 2 ** attempt), this.abort.signal);
        } catch {
          return;
        }
      }
    }
    if (this.abort.signal.aborted) return;
    rec.ended = true;
    this.stop(s);
    this.d.log.info({ lane: rec.lane, alerts: s.entries.length }, `alert storm over: ${s.entries.length} Issues folded into one summary`);
  }

  /** Forgets a storm that ended or failed. */
  private stop(s: Storm): void {
    if (s.timer !== undefined) clearTimeout(s.timer);
    if (s.ticker !== undefined) clearInterval(s.ticker);
    if (this.active.get(s.rec.lane) === s) this.active.delete(s.rec.lane);
    this.save(s);
    this.d.kv.set("storms", (this.d.kv.get<string[]>("storms") ?? []).filter((x) => x !== s.rec.id));
    // A failed storm stays in memory: its folded deliveries must still learn why.
    if (s.failed === undefined) this.byId.delete(s.rec.id);
  }
}

function foldEntry(issue: Issue): FoldEntry {
  return {
    issueId: issue.id,
    fingerprint: issue.fingerprint,
    status: issue.status,
    severity: issue.severity,
    alert: issue.aggregationKey.slice(0, 200),
    where: describeSubject(issue.subject).slice(0, 200),
    title: issue.title.slice(0, 300),
    time: issue.status === "RESOLVED" ? (issue.endsAt ?? issue.receivedAt) : issue.startsAt,
  };
}

function lostEntry(n: number): FoldEntry {
  return { issueId: `lost-${n}`, fingerprint: "", status: "FIRING", severity: "INFO", alert: "(record lost)", where: "", title: "", time: new Date(0).toISOString() };
}

function stormMetadata(id: string): { event_type: string; event_payload: Record<string, string> } {
  return { event_type: STORM_EVENT_TYPE, event_payload: { storm_id: id } };
}

function timeRange(entries: readonly FoldEntry[]): { from: number; to: number } | undefined {
  let from = Infinity;
  let to = -Infinity;
  for (const e of entries) {
    const t = Date.parse(e.time);
    if (!Number.isFinite(t) || t <= 0) continue;
    from = Math.min(from, t);
    to = Math.max(to, t);
  }
  return Number.isFinite(from) ? { from, to } : undefined;
}

/**
 * The storm summary: how many Issues, firing and resolved, by alert (or
 * reason), namespace and severity, over what time. Pure; within Slack's
 * limits however many Issues there are.
 */
export function renderStormSummary(rec: { readonly channel: string; readonly startedAt: number }, entries: readonly FoldEntry[], o: { readonly ended: boolean }): SlackMessage {
  const groups = new Map<string, { alert: string; ns: string; severity: string; firing: number; resolved: number }>();
  let firing = 0;
  for (const e of entries) {
    const ns = e.where.includes("/") ? e.where.slice(0, e.where.indexOf("/")) : "-";
    const key = `${e.alert}\u0000${ns}\u0000${e.severity}`;
    const g = groups.get(key) ?? { alert: e.alert, ns, severity: e.severity, firing: 0, resolved: 0 };
    if (e.status === "FIRING") {
      g.firing++;
      firing++;
    } else g.resolved++;
    groups.set(key, g);
  }
  const resolved = entries.length - firing;
  const sorted = [...groups.values()].sort((a, b) => b.firing + b.resolved - (a.firing + a.resolved) || a.alert.localeCompare(b.alert) || a.ns.localeCompare(b.ns));
  const lines = renderTable(
    ["Alert", "Namespace", "Severity", "Firing", "Resolved"],
    sorted.map((g) => [g.alert, g.ns, g.severity, String(g.firing), String(g.resolved)]),
    100,
  );
  let shown = lines.length;
  while (shown > 2 && lines.slice(0, shown).join("\n").length > 2300) shown--;
  const more = lines.length - shown;
  const range = timeRange(entries);
  const when = range !== undefined ? ` between ${slackDate(range.from)} and ${slackDate(range.to)}` : "";
  const n = entries.length;
  const header: SlackBlock = {
    type: "header",
    text: { type: "plain_text", text: plain(o.ended ? `:white_check_mark: Alert storm over · ${n} alerts` : `:cyclone: Alert storm · ${n} alerts and counting`, L.headerText), emoji: true },
  };
  const intro = `*${n} alert${n === 1 ? "" : "s"}* (${firing} firing, ${resolved} resolved)${when}, folded into this one message to stay within Slack's rate limits. ${
    o.ended ? "The storm is over: every alert is listed in the file in this thread." : "Every alert will be listed in this thread when the storm is over."
  }`;
  const blocks: SlackBlock[] = [
    header,
    { type: "section", text: mrkdwn(safeCut(intro, 2000)) },
    { type: "section", text: mrkdwn(`${codeBlock(lines.slice(0, shown).join("\n"), 2600, "end")}${more > 0 ? `\n_and ${more} more groups_` : ""}`) },
    { type: "context", elements: [mrkdwn(`kubecano · storm mode since ${slackDate(rec.startedAt)} · ${cutEscaped(oneLine(rec.channel), 100)}`)] },
  ];
  return { text: wellFormed(`Alert storm${o.ended ? " over" : ""}: ${n} alerts (${firing} firing, ${resolved} resolved)`), blocks, attachments: [] };
}

/** The file listing every folded Issue, one line each. */
export function stormListFile(rec: { readonly id: string; readonly startedAt: number }, entries: readonly FoldEntry[]): PlannedFile {
  const lines = renderTable(
    ["time", "status", "severity", "alert", "namespace/object", "title", "fingerprint"],
    entries.map((e) => [e.time, e.status, e.severity, e.alert, e.where, e.title, e.fingerprint]),
    Number.MAX_SAFE_INTEGER,
  );
  const day = new Date(rec.startedAt).toISOString().slice(0, 16).replace(/[-:]/g, "").replace("T", "-");
  return { filename: `storm-${day}.txt`, title: `All ${entries.length} alerts of the storm`, content: `${lines.join("\n")}\n` };
}

function stormOverMessage(rec: StormRecord, entries: readonly FoldEntry[]): SlackMessage {
  const lasted = formatDuration(Math.max(0, rec.lastFoldAt - rec.startedAt));
  const text = `:checkered_flag: Storm over: ${entries.length} alert${entries.length === 1 ? "" : "s"} in ${lasted}. Every one of them is in the list attached above; new alerts get their own messages again.`;
  return { text, blocks: [], attachments: [] };
}
