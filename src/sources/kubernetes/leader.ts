import { randomBytes } from "node:crypto";
import { hostname } from "node:os";
import type { Logger } from "../../observability/logger.js";
import { KubeApiError, type KubeApiLike } from "./api.js";
import { decodeLedger, type LedgerEntry } from "./noise.js";
import { Pause } from "./pause.js";

/**
 * Leader election on a coordination.k8s.io/v1 Lease, by client-go's rules
 * (tools/leaderelection): a replica takes the lease when it is free or when
 * its record has not changed for a whole lease duration *as observed on this
 * replica's clock* (the remote timestamps are never compared with ours);
 * every write carries the resourceVersion it read, so of two replicas
 * racing for it one gets 409 and stays a follower; the leader renews every
 * retry period and gives up when it could not renew for the renew deadline;
 * on shutdown it releases the lease (empty holder) so another replica takes
 * over at once. A takeover increments leaseTransitions.
 *
 * The Lease also carries what the leader has reported (the incident ledger,
 * an annotation): a new leader knows what the old one already sent. The
 * leader writes it before it sends anything (`persist`), so a replica that
 * lost the lease can send nothing the new leader does not know about.
 */

export const LEDGER_ANNOTATION = "kubecano.io/incidents";

export interface LeaderSettings {
  readonly leaseName: string;
  readonly namespace: string;
  readonly leaseDurationMs: number;
  readonly renewDeadlineMs: number;
  readonly retryPeriodMs: number;
  /** Default: POD_NAME or HOSTNAME (or the host name) plus a random suffix. */
  readonly identity?: string;
}

export interface LeaderCallbacks {
  /** This replica leads from now on; `ledger` is what the Lease holds. */
  onStartedLeading(ledger: Map<string, LedgerEntry>): void;
  /** It no longer does: stop watching and sending at once. */
  onStoppedLeading(): void;
  /** The ledger to write with each renewal (what has been reported so far). */
  ledger(): string;
}

export interface LeaderStatus {
  readonly leader: boolean;
  readonly identity: string;
  /** The holder this replica last observed ("" for a free lease), undefined before the first read. */
  readonly holder?: string | undefined;
  readonly lease: string;
  /** Why the last Lease request failed, while it keeps failing. */
  readonly error?: string | undefined;
}

interface LeaseRecord {
  readonly holder: string;
  readonly leaseDurationSeconds: number;
  readonly acquireTime: string | undefined;
  readonly renewTime: string | undefined;
  readonly transitions: number;
}

interface LeaseObject {
  metadata?: { resourceVersion?: string; annotations?: Record<string, string> };
  spec?: { holderIdentity?: string; leaseDurationSeconds?: number; acquireTime?: string; renewTime?: string; leaseTransitions?: number };
}

export function defaultIdentity(env: NodeJS.ProcessEnv = process.env): string {
  const base = env["POD_NAME"] ?? env["HOSTNAME"] ?? hostname();
  return `${base}_${randomBytes(3).toString("hex")}`;
}

/** metav1.MicroTime as the API server prints it. */
function microTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.(\d{3})Z$/, ".$1000Z");
}

export class LeaderElector {
  readonly identity: string;
  private leading = false;
  private stopped = true;
  private loopDone: Promise<void> | undefined;
  private readonly pause = new Pause();
  private callbacks: LeaderCallbacks | undefined;
  /** The record last read and when (our clock) it was first seen as it is. */
  private observed: { record: LeaseRecord; at: number } | undefined;
  private rv: string | undefined;
  private annotations: Record<string, string> = {};
  private acquireTime: string | undefined;
  private transitions = 0;
  private lastRenew = 0;
  private requested = 0;
  private waiters: { gen: number; resolve: (ok: boolean) => void }[] = [];
  private lastError: string | undefined;
  private watchdog: NodeJS.Timeout | undefined;
  private readonly path: string;
  private readonly now: () => number;

  constructor(
    private readonly api: KubeApiLike,
    private readonly settings: LeaderSettings,
    private readonly log: Logger,
    opts: { now?: () => number; onLeaderChange?: (leading: boolean) => void } = {},
  ) {
    this.identity = settings.identity ?? defaultIdentity();
    this.path = `/apis/coordination.k8s.io/v1/namespaces/${encodeURIComponent(settings.namespace)}/leases`;
    this.now = opts.now ?? Date.now;
    this.onLeaderChange = opts.onLeaderChange;
  }

  private readonly onLeaderChange: ((leading: boolean) => void) | undefined;

  get lease(): string {
    return `${this.settings.namespace}/${this.settings.leaseName}`;
  }

  isLeader(): boolean {
    return this.leading;
  }

  status(): LeaderStatus {
    return { leader: this.leading, identity: this.identity, holder: this.observed?.record.holder, lease: this.lease, ...(this.lastError !== undefined ? { error: this.lastError } : {}) };
  }

  start(callbacks: LeaderCallbacks): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.callbacks = callbacks;
    this.loopDone = this.loop().catch((e: unknown) => {
      this.log.error({ err: e }, "leader election stopped on an internal error");
      this.lose("internal error");
    });
  }

  /**
   * Writes the ledger to the Lease now. Resolves true once a write that
   * started after this call succeeded; false when this replica is not (or
   * stops being) the leader: then nothing may be sent.
   */
  persist(): Promise<boolean> {
    if (!this.leading) return Promise.resolve(false);
    const gen = ++this.requested;
    const p = new Promise<boolean>((resolve) => this.waiters.push({ gen, resolve }));
    this.pause.wake();
    return p;
  }

  /** Stops electing; a leader releases the Lease (with its last ledger) so another replica takes over at once. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.pause.wake();
    // A Lease request in flight is bounded by its own timeout; do not wait longer than that for it.
    await bounded(this.loopDone, this.leaseTimeoutMs() + 500);
    if (this.leading) {
      await bounded(this.release(), this.leaseTimeoutMs() + 500);
      this.lose("shutting down");
    }
    this.stopWatchdog();
  }

  /**
   * While leading: give up as soon as the renew deadline passes, even while
   * a renewal is still waiting for an answer (client-go bounds its renewal by
   * the deadline the same way).
   */
  private startWatchdog(): void {
    this.stopWatchdog();
    this.watchdog = setInterval(() => {
      if (this.leading && this.now() - this.lastRenew >= this.settings.renewDeadlineMs) this.lose(`could not renew the lease for ${Math.round(this.settings.renewDeadlineMs / 100) / 10} s`);
    }, Math.max(50, Math.min(this.settings.retryPeriodMs, 1_000)));
    this.watchdog.unref();
  }

  private stopWatchdog(): void {
    if (this.watchdog !== undefined) clearInterval(this.watchdog);
    this.watchdog = undefined;
  }

  private leaseTimeoutMs(): number {
    return Math.max(200, Math.min(5_000, Math.floor(this.settings.renewDeadlineMs / 2)));
  }

  private sleep(ms: number): Promise<void> {
    return this.stopped ? Promise.resolve() : this.pause.sleep(ms);
  }

  private async loop(): Promise<void> {
    while (!this.stopped) {
      if (!this.leading) {
        const got = await this.tryAcquire();
        if (this.stopped) break;
        if (got) {
          this.lastRenew = this.now();
          this.leading = true;
          this.startWatchdog();
          this.onLeaderChange?.(true);
          this.log.info({ lease: this.lease, identity: this.identity, transitions: this.transitions }, `leading: this replica (${this.identity}) watches the cluster and sends`);
          this.callbacks?.onStartedLeading(decodeLedger(this.annotations[LEDGER_ANNOTATION]));
          continue;
        }
        // client-go's jitter: followers do not retry in lockstep.
        await this.sleep(Math.round(this.settings.retryPeriodMs * (1 + Math.random() * 1.2)));
        continue;
      }
      // Leading: renew every retry period, or at once when a persist is waiting.
      if (this.waiters.length === 0) {
        const due = this.lastRenew + this.settings.retryPeriodMs - this.now();
        if (due > 0) await this.sleep(due);
        if (this.stopped) break;
      }
      await this.renew();
    }
  }

  private record(l: LeaseObject): LeaseRecord {
    const s = l.spec ?? {};
    return {
      holder: s.holderIdentity ?? "",
      leaseDurationSeconds: s.leaseDurationSeconds ?? Math.ceil(this.settings.leaseDurationMs / 1000),
      acquireTime: s.acquireTime,
      renewTime: s.renewTime,
      transitions: s.leaseTransitions ?? 0,
    };
  }

  private observe(l: LeaseObject): LeaseRecord {
    const r = this.record(l);
    const o = this.observed?.record;
    const same = o !== undefined && o.holder === r.holder && o.renewTime === r.renewTime && o.acquireTime === r.acquireTime && o.leaseDurationSeconds === r.leaseDurationSeconds && o.transitions === r.transitions;
    if (!same) this.observed = { record: r, at: this.now() };
    this.rv = l.metadata?.resourceVersion;
    this.annotations = { ...(l.metadata?.annotations ?? {}) };
    return r;
  }

  private body(spec: Record<string, unknown>, annotations: Record<string, string>): Record<string, unknown> {
    return {
      apiVersion: "coordination.k8s.io/v1",
      kind: "Lease",
      metadata: { name: this.settings.leaseName, namespace: this.settings.namespace, ...(this.rv !== undefined ? { resourceVersion: this.rv } : {}), annotations },
      spec,
    };
  }

  private durationSeconds(): number {
    return Math.max(1, Math.ceil(this.settings.leaseDurationMs / 1000));
  }

  private async tryAcquire(): Promise<boolean> {
    let current: LeaseObject;
    try {
      current = await this.api.request<LeaseObject>("GET", `${this.path}/${encodeURIComponent(this.settings.leaseName)}`, { timeoutMs: this.leaseTimeoutMs() });
    } catch (e) {
      if (e instanceof KubeApiError && e.status === 404) return this.create();
      this.failed(e, "reading");
      return false;
    }
    const r = this.observe(current);
    const now = this.now();
    if (r.holder !== "" && r.holder !== this.identity && this.observed !== undefined && now - this.observed.at < r.leaseDurationSeconds * 1000) return false;
    const mine = r.holder === this.identity;
    const stamp = microTime(now);
    const acquireTime = mine && r.acquireTime !== undefined ? r.acquireTime : stamp;
    const transitions = mine ? r.transitions : r.transitions + 1;
    try {
      const written = await this.api.request<LeaseObject>("PUT", `${this.path}/${encodeURIComponent(this.settings.leaseName)}`, {
        body: this.body({ holderIdentity: this.identity, leaseDurationSeconds: this.durationSeconds(), acquireTime, renewTime: stamp, leaseTransitions: transitions }, this.annotations),
        timeoutMs: this.leaseTimeoutMs(),
      });
      this.observe(written);
      this.acquireTime = acquireTime;
      this.transitions = transitions;
      this.lastError = undefined;
      if (!mine && r.holder !== "") this.log.info({ lease: this.lease, previous: r.holder }, `took over the lease from ${r.holder}, which had not renewed it for ${r.leaseDurationSeconds} s`);
      return true;
    } catch (e) {
      // 409: another replica wrote first; it leads.
      if (!(e instanceof KubeApiError && e.status === 409)) this.failed(e, "taking");
      return false;
    }
  }

  private async create(): Promise<boolean> {
    const stamp = microTime(this.now());
    this.rv = undefined;
    this.annotations = {};
    try {
      const written = await this.api.request<LeaseObject>("POST", this.path, {
        body: this.body({ holderIdentity: this.identity, leaseDurationSeconds: this.durationSeconds(), acquireTime: stamp, renewTime: stamp, leaseTransitions: 0 }, {}),
        timeoutMs: this.leaseTimeoutMs(),
      });
      this.observe(written);
      this.acquireTime = stamp;
      this.transitions = 0;
      this.lastError = undefined;
      return true;
    } catch (e) {
      if (!(e instanceof KubeApiError && e.status === 409)) this.failed(e, "creating");
      return false;
    }
  }

  private async renew(): Promise<void> {
    const gen = this.requested;
    const now = this.now();
    const annotations = { ...this.annotations, [LEDGER_ANNOTATION]: this.callbacks?.ledger() ?? "" };
    try {
      const written = await this.api.request<LeaseObject>("PUT", `${this.path}/${encodeURIComponent(this.settings.leaseName)}`, {
        body: this.body({ holderIdentity: this.identity, leaseDurationSeconds: this.durationSeconds(), acquireTime: this.acquireTime, renewTime: microTime(now), leaseTransitions: this.transitions }, annotations),
        timeoutMs: this.leaseTimeoutMs(),
      });
      if (!this.leading) return;
      this.observe(written);
      this.lastRenew = now;
      this.lastError = undefined;
      const done = this.waiters.filter((w) => w.gen <= gen);
      this.waiters = this.waiters.filter((w) => w.gen > gen);
      for (const w of done) w.resolve(true);
      return;
    } catch (e) {
      if (e instanceof KubeApiError && e.status === 409) {
        // Someone else wrote the Lease: read who holds it now.
        try {
          const cur = await this.api.request<LeaseObject>("GET", `${this.path}/${encodeURIComponent(this.settings.leaseName)}`, { timeoutMs: this.leaseTimeoutMs() });
          const r = this.observe(cur);
          if (r.holder !== this.identity) return this.lose(`the lease is now held by ${r.holder === "" ? "nobody" : r.holder}`);
          return;
        } catch (e2) {
          this.failed(e2, "reading");
        }
      } else if (e instanceof KubeApiError && e.status === 404) {
        return this.lose("the lease was deleted");
      } else {
        this.failed(e, "renewing");
      }
    }
    if (this.now() - this.lastRenew >= this.settings.renewDeadlineMs) this.lose(`could not renew the lease for ${Math.round(this.settings.renewDeadlineMs / 100) / 10} s`);
    else await this.sleep(Math.min(this.settings.retryPeriodMs, 500));
  }

  private async release(): Promise<void> {
    const stamp = microTime(this.now());
    const annotations = { ...this.annotations, [LEDGER_ANNOTATION]: this.callbacks?.ledger() ?? "" };
    try {
      await this.api.request("PUT", `${this.path}/${encodeURIComponent(this.settings.leaseName)}`, {
        body: this.body({ holderIdentity: "", leaseDurationSeconds: 1, acquireTime: stamp, renewTime: stamp, leaseTransitions: this.transitions }, annotations),
        timeoutMs: this.leaseTimeoutMs(),
      });
      this.log.info({ lease: this.lease }, "released the lease");
    } catch (e) {
      this.log.warn({ lease: this.lease, err: e instanceof Error ? e.message : String(e) }, "could not release the lease: another replica takes over once it expires");
    }
  }

  private lose(why: string): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w.resolve(false);
    if (!this.leading) return;
    this.leading = false;
    this.stopWatchdog();
    this.onLeaderChange?.(false);
    this.log.warn({ lease: this.lease, identity: this.identity }, `no longer leading (${why}): watching and sending stop`);
    this.callbacks?.onStoppedLeading();
  }

  private failed(e: unknown, doing: string): void {
    const msg = e instanceof Error ? e.message : String(e);
    if (this.lastError !== msg) this.log.warn({ lease: this.lease }, `leader election: ${doing} the lease failed: ${msg}`);
    this.lastError = msg;
  }
}

/** Waits for `p`, but no longer than `ms`. */
function bounded(p: Promise<unknown> | undefined, ms: number): Promise<void> {
  if (p === undefined) return Promise.resolve();
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    t.unref();
    void p.then(
      () => {
        clearTimeout(t);
        resolve();
      },
      () => {
        clearTimeout(t);
        resolve();
      },
    );
  });
}
