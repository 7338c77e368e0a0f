import type { Block, Enrichment } from "../../core/blocks.js";
import { tailLines } from "../../core/blocks.js";
import { formatDuration, type Issue } from "../../core/issue.js";
import type { Logger } from "../../observability/logger.js";
import type { DestinationState } from "../types.js";
import type { HistoryMessage, SlackApi } from "./client.js";
import { bold, METADATA_EVENT_TYPE, slackDate, whereText, type StoredFileBlock, type StoredTableBlock } from "./render.js";

/**
 * Where an Issue's fingerprint lives in a channel: the root message of its
 * thread (or, for Issues folded into a storm, the storm summary), and
 * whether the root shows FIRING or RESOLVED. Kept in the delivery store's
 * state as `thread:<channelId>:<fingerprint>`.
 */
export interface ThreadRecord {
  readonly channel: string;
  readonly ts: string;
  readonly status: "FIRING" | "RESOLVED";
  readonly startedAt: string;
  /** When the root was posted (ISO). */
  readonly firedAt: string;
  /** The Issue whose message is the root. */
  readonly issueId: string;
  readonly resolvedAt?: string;
  /** The root is a storm summary shared by many fingerprints: replies name their alert, the root is not edited. */
  readonly storm?: true;
  /** The root Issue, compacted (compactIssue), to re-render the root when it resolves. */
  readonly root?: Issue;
  /** The previous occurrence's permalink, shown on the root. */
  readonly previous?: string;
}

export type SentKind = "root" | "repeat" | "resolution" | "resolved-root" | "folded";

/** `sent:<issueId>`: the Issue's message is posted; the steps after it can resume from here. */
export interface SentRecord {
  readonly kind: SentKind;
  readonly channel: string;
  readonly ts: string;
  /** The thread it went into (replies, and files of a root: the root itself). */
  readonly threadTs?: string;
  /** The pacing lane of its channel. */
  readonly lane: string;
  /** A re-fire's link to the previous occurrence (kept on the root when it is edited). */
  readonly previous?: string;
}

/** JSON values under one namespace of the destination state. */
export class Kv {
  constructor(
    private readonly state: DestinationState,
    private readonly ns: string,
  ) {}

  get<T>(key: string): T | undefined {
    const raw = this.state.getState(this.ns, key);
    if (raw === undefined) return undefined;
    try {
      return JSON.parse(raw) as T;
    } catch {
      return undefined;
    }
  }

  raw(key: string): string | undefined {
    return this.state.getState(this.ns, key);
  }

  set(key: string, value: unknown): void {
    this.state.setState(this.ns, key, value === undefined ? undefined : typeof value === "string" ? value : JSON.stringify(value));
  }
}

/** A DestinationState in memory, for one-shot commands that have no store. */
export function memoryState(): DestinationState {
  const m = new Map<string, string>();
  return {
    getState: (ns, key) => m.get(`${ns}\u0000${key}`),
    setState: (ns, key, value) => void (value === undefined ? m.delete(`${ns}\u0000${key}`) : m.set(`${ns}\u0000${key}`, value)),
  };
}

/** How far back the history fallback looks, and how much of it. */
const HISTORY_DAYS = 7;
const HISTORY_PAGE = 200;
const HISTORY_PAGES = 2;
/** A channel's history is searched again after this long (another replica may have posted). */
const SCAN_TTL_MS = 10 * 60_000;
/** After a failed search, or an unknown channel name, ask again after this long. */
const RETRY_TTL_MS = 60_000;

interface RootHit {
  readonly ts: string;
  readonly status: "FIRING" | "RESOLVED";
  readonly issueId: string;
}

/**
 * Threads by fingerprint: the state first, then (a new state directory,
 * another replica) a bounded search of the channel's recent history for
 * the newest root carrying the fingerprint in its metadata. One search per
 * channel serves every fingerprint for SCAN_TTL_MS.
 */
export class ThreadIndex {
  private readonly scans = new Map<string, { at: number; ttl: number; roots: Promise<Map<string, RootHit>> }>();
  private readonly unknownNames = new Map<string, number>();
  private readonly listing = new Map<string, Promise<string | undefined>>();

  constructor(
    private readonly kv: Kv,
    private readonly api: SlackApi,
    private readonly log: Logger,
    private readonly warnOnce: (key: string, msg: string, fields?: Record<string, unknown>) => void,
    private readonly now: () => number = Date.now,
  ) {}

  get(channelId: string, fingerprint: string): ThreadRecord | undefined {
    return this.kv.get<ThreadRecord>(`thread:${channelId}:${fingerprint}`);
  }

  save(fingerprint: string, t: ThreadRecord): void {
    this.kv.set(`thread:${t.channel}:${fingerprint}`, t);
  }

  /** The state's thread, else the history fallback's (recorded in the state when found). */
  async find(channelId: string, fingerprint: string): Promise<ThreadRecord | undefined> {
    const known = this.get(channelId, fingerprint);
    if (known !== undefined) return known;
    const hit = (await this.scan(channelId)).get(fingerprint);
    if (hit === undefined) return undefined;
    const t: ThreadRecord = { channel: channelId, ts: hit.ts, status: hit.status, startedAt: "", firedAt: tsToIso(hit.ts), issueId: hit.issueId };
    // Another process may have recorded it meanwhile: the state wins.
    if (this.get(channelId, fingerprint) === undefined) this.save(fingerprint, t);
    return this.get(channelId, fingerprint);
  }

  /** The channel ID for a name: the state, a C…/G… reference, else conversations.list (best effort). */
  async channelId(ref: string): Promise<string | undefined> {
    const direct = idOf(ref, this.kv);
    if (direct !== undefined) return direct;
    const name = channelName(ref);
    const failedAt = this.unknownNames.get(name);
    if (failedAt !== undefined && this.now() - failedAt < RETRY_TTL_MS) return undefined;
    let p = this.listing.get(name);
    if (p === undefined) {
      p = this.list(name).finally(() => this.listing.delete(name));
      this.listing.set(name, p);
    }
    const id = await p;
    if (id === undefined) this.unknownNames.set(name, this.now());
    return id;
  }

  /** Records what a post told us: the channel's ID for its name. */
  learn(ref: string, channelId: string): void {
    if (ref === channelId || idOf(ref, this.kv) === channelId) return;
    this.kv.set(`channel-id:${channelName(ref)}`, channelId);
  }

  /** Forgets the cached history of a channel (a root was found missing). */
  forget(channelId: string): void {
    this.scans.delete(channelId);
  }

  private async list(name: string): Promise<string | undefined> {
    let cursor: string | undefined;
    try {
      for (let page = 0; page < 10; page++) {
        const r = await this.api.channels(cursor);
        const hit = r.channels.find((c) => c.name === name);
        if (hit !== undefined) {
          this.kv.set(`channel-id:${name}`, hit.id);
          return hit.id;
        }
        cursor = r.next;
        if (cursor === undefined) break;
      }
    } catch (e) {
      this.warnOnce(`list:${(e as { code?: string }).code ?? "error"}`, `cannot look up the ID of #${name} (conversations.list): threads of Issues posted before this state directory existed will not be found; use the channel ID in params.channel or add the channels:read scope`, { code: (e as { code?: string }).code, hint: (e as { hint?: string }).hint });
    }
    return undefined;
  }

  private scan(channelId: string): Promise<Map<string, RootHit>> {
    const cached = this.scans.get(channelId);
    if (cached !== undefined && this.now() - cached.at < cached.ttl) return cached.roots;
    const entry = { at: this.now(), ttl: SCAN_TTL_MS, roots: Promise.resolve(new Map<string, RootHit>()) };
    entry.roots = this.search(channelId).catch((e: unknown) => {
      entry.ttl = RETRY_TTL_MS;
      this.warnOnce(`history:${(e as { code?: string }).code ?? "error"}`, "cannot search the channel history for existing threads; new Issues start new threads", { code: (e as { code?: string }).code, hint: (e as { hint?: string }).hint });
      return new Map<string, RootHit>();
    });
    this.scans.set(channelId, entry);
    return entry.roots;
  }

  private async search(channelId: string): Promise<Map<string, RootHit>> {
    const roots = new Map<string, RootHit>();
    const oldest = ((this.now() - HISTORY_DAYS * 86_400_000) / 1000).toFixed(6);
    let cursor: string | undefined;
    for (let page = 0; page < HISTORY_PAGES; page++) {
      const r = await this.api.history(channelId, { oldest, limit: HISTORY_PAGE, cursor });
      // Newest first: the first root seen for a fingerprint is its newest.
      for (const m of r.messages) {
        const p = kubecanoPayload(m);
        if (p === undefined || p["kind"] !== undefined || (m.thread_ts !== undefined && m.thread_ts !== m.ts)) continue;
        const fp = p["fingerprint"];
        const status = p["status"];
        const issueId = p["issue_id"];
        if (typeof fp !== "string" || roots.has(fp) || (status !== "FIRING" && status !== "RESOLVED") || typeof issueId !== "string") continue;
        roots.set(fp, { ts: m.ts, status, issueId });
      }
      cursor = r.next;
      if (cursor === undefined) break;
    }
    this.log.debug({ channel: channelId, roots: roots.size }, "searched the channel history for threads");
    return roots;
  }
}

/** The kubecano metadata payload of a message, if it has one. */
export function kubecanoPayload(m: HistoryMessage): Record<string, unknown> | undefined {
  return m.metadata?.event_type === METADATA_EVENT_TYPE ? m.metadata.event_payload : undefined;
}

/** "#Alerts" and "alerts" are the same channel; IDs stay as they are. */
export function channelName(ref: string): string {
  const r = ref.trim();
  return isChannelId(r) ? r : r.replace(/^#/, "").toLowerCase();
}

export function isChannelId(ref: string): boolean {
  return /^[CGD][A-Z0-9]{6,}$/.test(ref);
}

function idOf(ref: string, kv: Kv): string | undefined {
  if (isChannelId(ref.trim())) return ref.trim();
  return kv.raw(`channel-id:${channelName(ref)}`);
}

/** A Slack ts ("1732617486.000100") as ISO time. */
export function tsToIso(ts: string): string {
  const ms = Math.floor(Number(ts) * 1000);
  return Number.isFinite(ms) ? new Date(ms).toISOString() : new Date(0).toISOString();
}

/**
 * The root Issue as kept for re-rendering: file contents cut to their
 * excerpt (with the line count), long tables to their first rows (with the
 * row count), oversized text cut. Rendering it gives the same message.
 */
export function compactIssue(issue: Issue, excerptLines = 15): Issue {
  const block = (b: Block): Block => {
    switch (b.type) {
      case "file": {
        const n = b.excerptLines ?? excerptLines;
        const total = b.content === "" ? 0 : b.content.replace(/\n$/, "").split("\n").length;
        const excerpt = tailLines(b.content, n);
        const stored: StoredFileBlock = { ...b, content: excerpt.length > 20_000 ? excerpt.slice(excerpt.length - 20_000) : excerpt, totalLines: total };
        return stored;
      }
      case "table": {
        if (b.rows.length <= 200) return b;
        const stored: StoredTableBlock = { ...b, rows: b.rows.slice(0, 200), totalRows: b.rows.length };
        return stored;
      }
      case "markdown":
        return b.text.length > 12_000 ? { ...b, text: b.text.slice(0, 12_000) } : b;
      case "json": {
        let size = 0;
        try {
          size = JSON.stringify(b.data)?.length ?? 0;
        } catch {
          size = Infinity;
        }
        return size > 50_000 ? { ...b, data: "(too large to keep for re-rendering)" } : b;
      }
      default:
        return b;
    }
  };
  const enrichments: Enrichment[] = issue.enrichments.map((e) => ({ ...e, blocks: e.blocks.map(block) }));
  return {
    ...issue,
    ...(issue.description !== undefined && issue.description.length > 20_000 ? { description: issue.description.slice(0, 20_000) } : {}),
    enrichments,
  };
}

/** The repeat's enrichments that the root does not already show. */
export function newEnrichments(repeat: Issue, root: Issue | undefined): Enrichment[] {
  if (root === undefined) return [...repeat.enrichments];
  const seen = new Set(root.enrichments.map((e) => JSON.stringify(e)));
  const compacted = compactIssue(repeat).enrichments;
  return repeat.enrichments.filter((_, i) => !seen.has(JSON.stringify(compacted[i])));
}

/** The first line of a "still firing" reply. */
export function repeatLead(issue: Issue, inStormThread: boolean): string {
  const started = Date.parse(issue.startsAt);
  const received = Date.parse(issue.receivedAt);
  const since = Number.isFinite(started) ? ` · for ${formatDuration(Math.max(0, (Number.isFinite(received) ? received : started) - started))} (since ${slackDate(started)})` : "";
  const who = inStormThread ? ` · ${bold(issue.title)} (${whereText(issue)})` : "";
  return `:repeat: *Still firing* · ${issue.severity}${since}${who}`;
}

/** The first line of a resolution reply: "Resolved after 12m at 10:50 UTC". */
export function resolvedLead(issue: Issue, inStormThread: boolean): string {
  const ended = Date.parse(issue.endsAt ?? issue.receivedAt);
  const started = Date.parse(issue.startsAt);
  const after = Number.isFinite(ended) && Number.isFinite(started) ? ` after ${formatDuration(Math.floor(ended / 1000) * 1000 - Math.floor(started / 1000) * 1000)}` : "";
  const at = Number.isFinite(ended) ? ` at ${new Date(ended).toISOString().slice(11, 16)} UTC` : "";
  const who = inStormThread ? ` · ${bold(issue.title)} (${whereText(issue)})` : "";
  return `:white_check_mark: *Resolved*${after}${at}${who}`;
}

/** A root Issue shown resolved: its firing context, the resolution's status and end. */
export function resolvedRoot(root: Issue, resolved: Issue): Issue {
  return { ...root, status: "RESOLVED", endsAt: resolved.endsAt ?? resolved.receivedAt };
}
