import type { ChalkInstance } from "chalk";
import { describeSubject } from "../core/subject.js";
import { stripControl } from "../core/text.js";
import type { FeedEvent, FeedIssue, IssuesSnapshot } from "../server/feed-protocol.js";
import type { ConnectionState, FeedSource } from "./feed-client.js";

/**
 * `kubecano tui` without a terminal (`--no-tui`, or stdout is a pipe): one
 * line per Issue, or one JSON document per line with --json, printed once
 * its workflows have run (so the destinations are known). Issues come
 * oldest first; a reconnect or a reset never prints one twice.
 */

/** "2026-01-01T10:00:00Z FIRING   HIGH  Pod is crash looping  shop/pod/api  → slack, console" */
export function issueLine(f: FeedIssue, c: ChalkInstance): string {
  const i = f.issue;
  const s = (t: string): string => stripControl(t).replace(/\s*\n\s*/g, " ");
  const time = i.receivedAt.replace(/\.\d+Z$/, "Z");
  const status = i.status === "FIRING" ? c.red(i.status.padEnd(8)) : c.green(i.status.padEnd(8));
  const subject = describeSubject(i.subject);
  const where =
    f.stage === "silenced"
      ? `silenced: ${s(f.silenced ?? "")}`
      : f.stage === "processing"
        ? "enriching…"
        : f.deliveries.length === 0
          ? "no destination"
          : `→ ${f.deliveries.map((d) => s(d.destination)).join(", ")}`;
  return `${c.dim(time)} ${status} ${i.severity.padEnd(5)} ${s(i.title)}${subject !== "" ? `  ${c.cyan(s(subject))}` : ""}  ${c.dim(where)}`;
}

export function issueJson(f: FeedIssue): string {
  return JSON.stringify(f);
}

export interface PrintOptions {
  readonly out: NodeJS.WritableStream;
  readonly json: boolean;
  readonly chalk: ChalkInstance;
}

/** Prints a snapshot, oldest first (`--once`). */
export function printSnapshot(s: IssuesSnapshot, opts: PrintOptions): void {
  for (let i = s.issues.length - 1; i >= 0; i--) opts.out.write(`${format(s.issues[i]!, opts)}\n`);
}

function format(f: FeedIssue, opts: PrintOptions): string {
  return opts.json ? issueJson(f) : issueLine(f, opts.chalk);
}

/**
 * Follows `source` and prints each Issue once it is routed, until `until`
 * settles or the feed fails for good. Connection trouble is told on `err`.
 * Resolves with the reason the feed failed, if it did.
 */
export async function followLines(source: FeedSource, opts: PrintOptions & { readonly err: NodeJS.WritableStream; readonly until: Promise<unknown> }): Promise<{ failed?: { error: string; hint?: string | undefined } }> {
  const printed = new Set<string>();
  const waiting = new Map<string, FeedIssue>();
  const print = (f: FeedIssue): void => {
    if (printed.has(f.issue.id)) return;
    printed.add(f.issue.id);
    // Bounded: the oldest ids go first (a Set iterates in insertion order).
    if (printed.size > 50_000) printed.delete(printed.values().next().value as string);
    waiting.delete(f.issue.id);
    opts.out.write(`${format(f, opts)}\n`);
  };
  const offer = (f: FeedIssue): void => {
    if (f.stage === "processing") {
      if (!printed.has(f.issue.id)) waiting.set(f.issue.id, f);
      if (waiting.size > 10_000) waiting.delete(waiting.keys().next().value as string);
    } else {
      print(f);
    }
  };
  const onSnapshot = (s: IssuesSnapshot): void => {
    for (let i = s.issues.length - 1; i >= 0; i--) offer(s.issues[i]!);
  };
  const onEvent = (e: FeedEvent): void => {
    if (e.type === "issue") offer(e.data);
    else if (e.type === "update") print({ issue: e.data.issue, stage: e.data.stage, silenced: e.data.silenced, deliveries: e.data.deliveries });
  };
  let wasLive = false;
  let failed: { error: string; hint?: string | undefined } | undefined;
  let finish: () => void = () => undefined;
  const done = new Promise<void>((resolve) => {
    finish = resolve;
  });
  const onState = (s: ConnectionState): void => {
    if (s.kind === "live") {
      if (wasLive) opts.err.write("kubecano: the issue feed is back\n");
      wasLive = true;
    } else if (s.kind === "reconnecting") {
      opts.err.write(`kubecano: lost the issue feed (${s.error}); retrying in ${Math.max(1, Math.round((s.retryAt - Date.now()) / 1000))}s\n`);
    } else if (s.kind === "failed") {
      failed = { error: s.error, hint: s.hint };
      finish();
    }
  };
  source.on("snapshot", onSnapshot);
  source.on("event", onEvent);
  source.on("state", onState);
  source.start();
  try {
    await Promise.race([done, opts.until]);
  } finally {
    source.stop();
    source.off("snapshot", onSnapshot);
    source.off("event", onEvent);
    source.off("state", onState);
  }
  return failed !== undefined ? { failed } : {};
}
