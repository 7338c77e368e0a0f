import type { Logger } from "../../observability/logger.js";
import { KubeApiError, statusObjectError, type KubeApiLike, type WatchStream } from "./api.js";
import { Pause } from "./pause.js";

/**
 * A supervised list+watch of one resource: kubecano's own, not client-node's
 * informer (which in 1.4 stops on the first error, never asks for bookmarks,
 * can stall silently and leaks an agent per reconnect).
 *
 * Contract with the handler: every change of an object reaches it exactly
 * once, in order. The first complete list is delivered as `initial` ADDED
 * changes. After that the watcher resumes from the last resourceVersion it
 * saw (an event or a bookmark), so a dropped or server-ended watch loses
 * nothing; when the server no longer has that version (410 Expired) it lists
 * again and hands over only the difference against what it holds (objects
 * whose resourceVersion changed, new ones, and DELETED for the vanished), so
 * no change is lost and none is delivered twice. Errors back off (1 s
 * doubling to 30 s, reset after a healthy watch); a watch silent for longer
 * than the stall timeout (no event, no bookmark) is restarted.
 */

/** What the watcher keeps of every object: enough to compare versions. */
export interface Tracked {
  readonly uid: string;
  readonly rv: string;
}

/** What is kept per object: its projection, or only its resourceVersion (a string) where nothing else is needed. */
export type Kept = Tracked | string;
const versionOf = (k: Kept): string => (typeof k === "string" ? k : k.rv);

export interface WatchSpec<P extends Tracked, S extends Kept> {
  /** Plural resource name, for logs, metrics and readiness ("pods"). */
  readonly resource: string;
  /** The namespace this watcher is limited to (for status only; the path says it). */
  readonly namespace?: string | undefined;
  /** List/watch path: "/api/v1/pods", "/api/v1/namespaces/shop/events". */
  readonly path: string;
  readonly labelSelector?: string | undefined;
  readonly fieldSelector?: string | undefined;
  /** The small projection of a served object; undefined skips it (malformed). */
  project(raw: unknown): P | undefined;
  /** What is kept between changes (the `previous` of the next one); a string is taken for the resourceVersion alone. */
  retain(p: P): S;
}

export type ChangeType = "ADDED" | "MODIFIED" | "DELETED";

export interface Change<P, S> {
  readonly type: ChangeType;
  /** The state held before this change (undefined for ADDED). */
  readonly previous: S | undefined;
  /** The new state (undefined for DELETED). */
  readonly current: P | undefined;
  /** Part of the first complete list: the state found at start-up, not a change seen happening. */
  readonly initial: boolean;
}

export type RestartReason = "ended" | "expired" | "error" | "stall";

export interface WatcherOptions<P, S> {
  readonly log: Logger;
  readonly onChange: (change: Change<P, S>) => void;
  readonly stallTimeoutMs: number;
  /** Items per list page. Default 500. */
  readonly pageSize?: number;
  /** Bound of one list page request. Default 60 s. */
  readonly listTimeoutMs?: number;
  /** The server-side timeout asked of each watch. Default 5–10 min, random per watch (as client-go). */
  readonly watchTimeoutSeconds?: () => number;
  readonly backoff?: { readonly initialMs: number; readonly maxMs: number; readonly healthyAfterMs: number };
  readonly onRestart?: (reason: RestartReason) => void;
  /** Called per watch event and per listed object (for the events metric). */
  readonly onEvent?: () => void;
  /** After each complete list. */
  readonly onSynced?: () => void;
  readonly now?: () => number;
}

export type WatcherState = "listing" | "watching" | "backoff" | "stopped";

export interface WatcherStatus {
  readonly resource: string;
  readonly namespace?: string | undefined;
  /** The first complete list is done. */
  readonly synced: boolean;
  readonly state: WatcherState;
  readonly objects: number;
  readonly restarts: number;
  readonly resourceVersion: string;
  /** Why the last attempt failed, while the watcher is backing off or retrying. */
  readonly lastError?: string | undefined;
  /** HTTP status of that failure (0 = unreachable). */
  readonly lastErrorStatus?: number | undefined;
  /** When the next attempt starts (epoch ms), while backing off. */
  readonly retryAt?: number | undefined;
}

type Outcome = { kind: "ended" } | { kind: "expired" } | { kind: "stall" } | { kind: "stopped" } | { kind: "error"; error: KubeApiError };

const DEFAULT_BACKOFF = { initialMs: 1_000, maxMs: 30_000, healthyAfterMs: 30_000 };

export class ResourceWatcher<P extends Tracked, S extends Kept> {
  private readonly objects = new Map<string, S>();
  private rv = "";
  private synced = false;
  private state: WatcherState = "stopped";
  private stopped = true;
  private restarts = 0;
  private lastError: KubeApiError | undefined;
  private retryAt: number | undefined;
  private loop: Promise<void> | undefined;
  private stream: { abort(): void } | undefined;
  private readonly pause = new Pause();
  private readonly now: () => number;
  private readonly backoff: { initialMs: number; maxMs: number; healthyAfterMs: number };

  constructor(
    private readonly api: KubeApiLike,
    readonly spec: WatchSpec<P, S>,
    private readonly opts: WatcherOptions<P, S>,
  ) {
    this.now = opts.now ?? Date.now;
    this.backoff = opts.backoff ?? DEFAULT_BACKOFF;
  }

  /** The state held for an object (by uid). */
  get(uid: string): S | undefined {
    return this.objects.get(uid);
  }

  values(): IterableIterator<S> {
    return this.objects.values();
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.loop = this.run().catch((e: unknown) => {
      this.opts.log.error({ err: e, resource: this.spec.resource }, `the ${this.spec.resource} watcher stopped on an internal error`);
      this.state = "stopped";
    });
  }

  /** Stops at once (the open watch is cut) and forgets nothing: `start()` resumes from the last resourceVersion. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.stream?.abort();
    this.pause.wake();
    await this.loop;
    this.state = "stopped";
  }

  status(): WatcherStatus {
    return {
      resource: this.spec.resource,
      ...(this.spec.namespace !== undefined ? { namespace: this.spec.namespace } : {}),
      synced: this.synced,
      state: this.state,
      objects: this.objects.size,
      restarts: this.restarts,
      resourceVersion: this.rv,
      ...(this.lastError !== undefined ? { lastError: this.lastError.message, lastErrorStatus: this.lastError.status } : {}),
      ...(this.retryAt !== undefined && this.state === "backoff" ? { retryAt: this.retryAt } : {}),
    };
  }

  private get label(): string {
    return this.spec.namespace !== undefined ? `${this.spec.resource} in ${this.spec.namespace}` : this.spec.resource;
  }

  private async run(): Promise<void> {
    let needList = !this.synced || this.rv === "";
    let failures = 0;
    while (!this.stopped) {
      if (needList) {
        this.state = "listing";
        try {
          await this.list();
          needList = false;
        } catch (e) {
          if (this.stopped) break;
          failures += 1;
          await this.failed(toApiError(e, this.label), failures);
          continue;
        }
      }
      const started = this.now();
      const outcome = await this.watchOnce();
      if (this.stopped || outcome.kind === "stopped") break;
      const lasted = this.now() - started;
      if (lasted >= this.backoff.healthyAfterMs) failures = 0;
      this.restarts += 1;
      switch (outcome.kind) {
        case "ended":
          this.opts.onRestart?.("ended");
          // A server that ends every watch at once must not make us spin.
          if (lasted < 1_000) {
            failures += 1;
            await this.sleep(this.delay(failures));
          }
          break;
        case "expired":
          this.opts.onRestart?.("expired");
          this.opts.log.info({ resource: this.spec.resource, namespace: this.spec.namespace, resourceVersion: this.rv }, `the ${this.label} watch expired (410: resourceVersion too old): listing again`);
          needList = true;
          break;
        case "stall":
          this.opts.onRestart?.("stall");
          this.opts.log.warn({ resource: this.spec.resource, namespace: this.spec.namespace, resourceVersion: this.rv }, `the ${this.label} watch was silent for ${Math.round(this.opts.stallTimeoutMs / 1000)} s: restarting it`);
          break;
        case "error":
          this.opts.onRestart?.("error");
          if (outcome.error.status === 410) needList = true;
          failures += 1;
          await this.failed(outcome.error, failures);
          break;
      }
    }
    this.state = "stopped";
  }

  private delay(failures: number): number {
    const base = Math.min(this.backoff.initialMs * 2 ** Math.max(0, failures - 1), this.backoff.maxMs);
    return Math.round(base * (0.9 + Math.random() * 0.2));
  }

  private async failed(error: KubeApiError, failures: number): Promise<void> {
    const first = this.lastError === undefined;
    this.lastError = error;
    const ms = this.delay(failures);
    this.retryAt = this.now() + ms;
    this.state = "backoff";
    // The first failure of a streak is a warning; its repeats are debug lines (the status and /readyz keep the detail).
    const fields = { resource: this.spec.resource, namespace: this.spec.namespace, status: error.status, retryInMs: ms, failures };
    if (first) this.opts.log.warn(fields, `${error.message}: retrying in ${(ms / 1000).toFixed(1)} s`);
    else this.opts.log.debug(fields, `${error.message}: retrying in ${(ms / 1000).toFixed(1)} s`);
    await this.sleep(ms);
    this.retryAt = undefined;
  }

  private sleep(ms: number): Promise<void> {
    return this.stopped ? Promise.resolve() : this.pause.sleep(ms);
  }

  private emit(change: Change<P, S>): void {
    try {
      this.opts.onChange(change);
    } catch (e) {
      this.opts.log.error({ err: e, resource: this.spec.resource }, `handling a ${this.spec.resource} change failed`);
    }
  }

  /**
   * Lists every page and hands over the difference with what is held, page
   * by page: a list that fails half-way and is tried again delivers nothing
   * twice. Deletions are known only once the whole list is in.
   */
  private async list(): Promise<void> {
    const seen = new Set<string>();
    const initial = !this.synced;
    let cont: string | undefined;
    let listRv = "";
    do {
      let page: { metadata?: { resourceVersion?: string; continue?: string }; items?: unknown[] };
      try {
        page = await this.api.request("GET", this.spec.path, {
          query: { limit: this.opts.pageSize ?? 500, continue: cont, labelSelector: this.spec.labelSelector, fieldSelector: this.spec.fieldSelector },
          timeoutMs: this.opts.listTimeoutMs ?? 60_000,
        });
      } catch (e) {
        // An expired continue token: start the list over (what was handed over stays handed over).
        if (e instanceof KubeApiError && e.status === 410 && cont !== undefined) {
          cont = undefined;
          seen.clear();
          continue;
        }
        throw e;
      }
      for (const raw of page.items ?? []) {
        const p = this.spec.project(raw);
        if (p === undefined) continue;
        this.opts.onEvent?.();
        seen.add(p.uid);
        const held = this.objects.get(p.uid);
        if (held !== undefined && versionOf(held) === p.rv) continue;
        this.objects.set(p.uid, this.spec.retain(p));
        this.emit({ type: held === undefined ? "ADDED" : "MODIFIED", previous: held, current: p, initial });
      }
      listRv = page.metadata?.resourceVersion ?? listRv;
      cont = page.metadata?.continue !== undefined && page.metadata.continue !== "" ? page.metadata.continue : undefined;
      if (this.stopped) return;
    } while (cont !== undefined);
    for (const [uid, held] of [...this.objects]) {
      if (seen.has(uid)) continue;
      this.objects.delete(uid);
      this.emit({ type: "DELETED", previous: held, current: undefined, initial });
    }
    this.rv = listRv;
    this.synced = true;
    this.lastError = undefined;
    this.opts.onSynced?.();
  }

  private watchOnce(): Promise<Outcome> {
    return new Promise<Outcome>((resolve) => {
      let last = this.now();
      let settled = false;
      let stream: WatchStream | undefined;
      const settle = (o: Outcome): void => {
        if (settled) return;
        settled = true;
        clearInterval(timer);
        stream?.abort();
        this.stream = undefined;
        resolve(o);
      };
      this.stream = { abort: () => settle({ kind: "stopped" }) };
      this.state = "watching";
      const stallMs = this.opts.stallTimeoutMs;
      const timer = setInterval(() => {
        if (this.now() - last > stallMs) settle({ kind: "stall" });
      }, Math.max(50, Math.min(1_000, Math.floor(stallMs / 4))));
      const timeoutSeconds = this.opts.watchTimeoutSeconds?.() ?? 300 + Math.floor(Math.random() * 300);
      stream = this.api.watch(
        this.spec.path,
        { resourceVersion: this.rv, allowWatchBookmarks: true, timeoutSeconds, labelSelector: this.spec.labelSelector, fieldSelector: this.spec.fieldSelector },
        {
          onOpen: () => {
            last = this.now();
            this.state = "watching";
            this.lastError = undefined;
          },
          onEvent: (type, object) => {
            if (settled) return;
            last = this.now();
            switch (type) {
              case "BOOKMARK": {
                const rv = (object as { metadata?: { resourceVersion?: unknown } } | null)?.metadata?.resourceVersion;
                if (typeof rv === "string" && rv !== "") this.rv = rv;
                return;
              }
              case "ERROR": {
                const err = statusObjectError(`watch ${this.label}`, object);
                settle(err.status === 410 ? { kind: "expired" } : { kind: "error", error: err });
                return;
              }
              case "ADDED":
              case "MODIFIED":
              case "DELETED":
                this.opts.onEvent?.();
                this.apply(type, object);
                return;
              default:
                return;
            }
          },
          onEnd: (err) => settle(err === null ? { kind: "ended" } : err.status === 410 ? { kind: "expired" } : { kind: "error", error: err }),
        },
      );
      if (settled) stream.abort();
    });
  }

  private apply(type: ChangeType, raw: unknown): void {
    const p = this.spec.project(raw);
    if (p === undefined) {
      const rv = (raw as { metadata?: { resourceVersion?: unknown } } | null)?.metadata?.resourceVersion;
      if (typeof rv === "string" && rv !== "") this.rv = rv;
      return;
    }
    if (p.rv !== "") this.rv = p.rv;
    const held = this.objects.get(p.uid);
    if (type === "DELETED") {
      if (held === undefined) return;
      this.objects.delete(p.uid);
      this.emit({ type: "DELETED", previous: held, current: undefined, initial: false });
      return;
    }
    // A version already held (a replay overlapping what the list gave) is not a change.
    if (held !== undefined && versionOf(held) === p.rv) return;
    this.objects.set(p.uid, this.spec.retain(p));
    this.emit({ type: held === undefined ? "ADDED" : "MODIFIED", previous: held, current: p, initial: false });
  }
}

function toApiError(e: unknown, what: string): KubeApiError {
  if (e instanceof KubeApiError) return e;
  return new KubeApiError(`${what}: ${e instanceof Error ? e.message : String(e)}`, 0, "Internal");
}
