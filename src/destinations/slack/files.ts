import { createHash } from "node:crypto";
import type { Logger } from "../../observability/logger.js";
import { DeliveryError } from "../types.js";
import type { SlackApi } from "./client.js";
import { deferral } from "./errors.js";
import { waitForSlot, type PaceContext, type Pacer } from "./pacer.js";
import { cutEscaped, type PlannedFile } from "./render.js";
import type { Kv } from "./threads.js";

export interface FilesDeps {
  readonly api: SlackApi;
  readonly kv: Kv;
  readonly pacer: Pacer;
  readonly log: Logger;
  readonly warnOnce: (key: string, msg: string, fields?: Record<string, unknown>) => void;
}

export interface FileTarget {
  readonly channelId: string;
  readonly threadTs: string;
  readonly lane: string;
}

/** Retryable upload failures of one message's files before kubecano gives up and says so in the thread. */
const MAX_UPLOAD_ATTEMPTS = 3;

/** `files:<owner>`: the files of this message are settled. */
interface FilesDone {
  readonly done: true;
  readonly failed?: string;
}

/**
 * Attaches files to a thread with the files v2 flow: for each file
 * files.getUploadURLExternal and a POST of its bytes to the returned
 * upload_url, then one files.completeUploadExternal sharing them all in one
 * message (one slot of the channel's pacing). Progress is kept in the state
 * (`file:<owner>:<i>` = the uploaded file's id, `files:<owner>` once
 * shared), so a retried delivery never uploads or shares a file twice; a
 * file whose content the thread already has is not attached again.
 * A failure that retrying cannot fix (or that keeps happening) degrades to
 * a reply saying which files could not be attached; the message's inline
 * excerpts stay. Throws only to be retried or deferred.
 */
export async function attachFiles(d: FilesDeps, owner: string, planned: readonly PlannedFile[], target: FileTarget, ctx: PaceContext): Promise<void> {
  if (planned.length === 0 || d.kv.get<FilesDone>(`files:${owner}`) !== undefined) return;
  // A file the thread already has (the same logs on a repeat) is not attached again.
  const threadKey = `thread-files:${target.channelId}:${target.threadTs}`;
  const inThread = new Set(d.kv.get<string[]>(threadKey) ?? []);
  const hashes = planned.map((f) => createHash("sha256").update(f.content).digest("base64url").slice(0, 22));
  const files = planned.filter((_, i) => !inThread.has(hashes[i]!));
  const fresh = hashes.filter((h) => !inThread.has(h));
  if (files.length === 0) {
    d.kv.set(`files:${owner}`, { done: true } satisfies FilesDone);
    return;
  }
  const shared: { id: string; title: string }[] = [];
  try {
    for (const [i, f] of files.entries()) {
      const key = `file:${owner}:${i}`;
      let id = d.kv.raw(key);
      if (id === undefined) {
        const bytes = Buffer.from(f.content, "utf8");
        const u = await d.api.uploadUrl(f.filename, bytes.length);
        await d.api.uploadBytes(u.url, bytes, ctx.signal);
        id = u.fileId;
        d.kv.set(key, id);
      }
      shared.push({ id, title: f.title });
    }
    await waitForSlot(d.pacer, target.lane, `${owner}:files`, ctx, "this channel");
    const completing = d.kv.raw(`files-sharing:${owner}`) !== undefined;
    d.kv.set(`files-sharing:${owner}`, "1");
    try {
      await d.api.completeUpload(shared, target.channelId, target.threadTs);
    } catch (e) {
      // Uploaded files can be shared once: an earlier attempt whose answer was lost did it.
      if (!(completing && e instanceof DeliveryError && e.code === "file_not_found")) throw e;
    }
    d.kv.set(threadKey, [...(d.kv.get<string[]>(threadKey) ?? []), ...fresh].slice(-200));
    d.kv.set(`files:${owner}`, { done: true } satisfies FilesDone);
  } catch (e) {
    if (!(e instanceof DeliveryError)) throw e;
    if (e.defer) throw e;
    if (e.code === "ratelimited") {
      if (e.retryAfterMs !== undefined) d.pacer.pause(target.lane, e.retryAfterMs);
      throw deferral(e.retryAfterMs ?? 1000, `Slack rate limited a file upload: trying again in ${e.retryAfterMs ?? 1000} ms`, "ratelimited");
    }
    const tries = (d.kv.get<number>(`files-tries:${owner}`) ?? 0) + 1;
    d.kv.set(`files-tries:${owner}`, tries);
    if (e.retryable && tries < MAX_UPLOAD_ATTEMPTS) throw e;
    await giveUp(d, owner, files, target, ctx, e);
  }
}

/** Says in the thread which files could not be attached, once. */
async function giveUp(d: FilesDeps, owner: string, files: readonly PlannedFile[], target: FileTarget, ctx: PaceContext, e: DeliveryError): Promise<void> {
  d.warnOnce(`files:${e.code}`, `cannot attach files in Slack (${e.code}); the messages keep their inline excerpts`, { code: e.code, ...(e.hint !== undefined ? { hint: e.hint } : {}) });
  const names = files.map((f) => f.filename);
  const shown = names.slice(0, 5).map((n) => cutEscaped(n, 80)).join(", ") + (names.length > 5 ? `, and ${names.length - 5} more` : "");
  const why = e.code === "missing_scope" ? " (the bot token needs the files:write scope)" : "";
  const text = `:warning: Could not attach ${shown}: ${cutEscaped(e.code, 80)}${why}. The excerpt above is all there is in Slack.`;
  try {
    await waitForSlot(d.pacer, target.lane, `${owner}:files-note`, ctx, "this channel");
    await d.api.post(target.channelId, { text, blocks: [], attachments: [] }, target.threadTs);
  } catch (noteError) {
    if (noteError instanceof DeliveryError && (noteError.defer || noteError.retryable)) throw noteError;
    d.log.debug({ code: (noteError as DeliveryError).code }, "could not post the note about files that could not be attached");
  }
  d.kv.set(`files:${owner}`, { done: true, failed: e.code } satisfies FilesDone);
}
