import { EventEmitter, setMaxListeners } from "node:events";
import type { Issue } from "../core/issue.js";
import type { DeliveryConfig } from "../config/schema.js";
import { DeliveryError, type Destination, type SendContext, type SendResult } from "../destinations/types.js";
import { errorMessage } from "../errors.js";
import type { Logger } from "../observability/logger.js";
import type { CountCell, Metrics } from "../observability/metrics.js";
import { LogOnce } from "../observability/log-once.js";
import { tracer, type SpanHandle } from "../observability/tracing.js";
import { backoffDelay } from "./backoff.js";
import type { AcceptItem, AcceptResult, ClaimedDelivery, Delivery, DeliveryStore } from "./store.js";

/** Issues of one submit stored per transaction, with the event loop let go in between (see submit). */
const SUBMIT_CHUNK = 1_000;

export type DeliveryOutcome = "success" | "retry" | "failed";

export interface DeliveryEvent {
  readonly issueId: string;
  readonly fingerprint: string;
  readonly destination: string;
  readonly outcome: DeliveryOutcome;
  readonly attempt: number;
  readonly remoteId?: string | undefined;
  readonly error?: string | undefined;
  readonly code?: string | undefined;
  readonly hint?: string | undefined;
  readonly nextAttemptAt?: number | undefined;
}

/** Where an accepted Issue goes: `[PROCESS]` while its workflows still have to run. */
export interface AcceptedRoute {
  readonly destinations: readonly string[];
  readonly silenced?: string | undefined;
}

export interface EngineEvents {
  /** Issues recorded (duplicates excluded) as stored, so with a pure workflow's enrichments, and their routes. */
  accepted: [issues: readonly Issue[], routes: readonly AcceptedRoute[]];
  /** An Issue came out of the workflow stage (enriched, routed or silenced). */
  processed: [issue: Issue, destinations: readonly string[], silenced: string | undefined];
  delivery: [event: DeliveryEvent];
}

/** The internal stage, scheduled like a destination, that runs workflows and routing. */
export const PROCESS = "@process";

export interface Processed {
  readonly issue: Issue;
  /** Destination names; empty when silenced. */
  readonly destinations: readonly string[];
  readonly silenced?: string | undefined;
}

/**
 * Workflows and routing, as the engine sees them. `process` must not reject
 * for an action's failure (those become enrichments); when it rejects or
 * hangs anyway, `fallback` routes the Issue as it is, so it still goes out.
 */
export interface IssueProcessor {
  /** True when processing reads nothing but the Issue: it then runs before the webhook is answered. */
  isPure(issue: Issue): boolean;
  /** A pure Issue's processing may come back at once, without a promise (no turn of the microtask queue per Issue). */
  process(issue: Issue, signal: AbortSignal): Processed | Promise<Processed>;
  fallback(issue: Issue, error: string): Processed;
}

export interface EngineOptions {
  readonly store: DeliveryStore;
  readonly destinations: readonly Destination[];
  readonly config: DeliveryConfig;
  readonly log: Logger;
  readonly metrics?: Metrics | undefined;
  /** Issue → destination names when there is no processor: every destination by default. */
  readonly route?: (issue: Issue) => readonly string[];
  /** Workflows and routing. Issues that need cluster reads go through the durable PROCESS stage. */
  readonly processor?: IssueProcessor | undefined;
  readonly processing?: { readonly concurrency: number; readonly timeoutMs: number } | undefined;
  readonly now?: () => number;
  readonly random?: () => number;
}

/**
 * Owns the path from an accepted Issue to its destinations: one worker per
 * destination, so a slow or failing destination never delays another.
 * `submit` returns as soon as the store has the work; sending happens
 * afterwards, and every delivery ends delivered, retried later, or dead.
 */
export class DeliveryEngine extends EventEmitter<EngineEvents> {
  private readonly workers = new Map<string, Worker>();
  private readonly processWorker: ProcessWorker | undefined;
  private readonly route: (issue: Issue) => readonly string[];
  private readonly now: () => number;
  private readonly logOnce: LogOnce;
  private readonly shutdown = new AbortController();
  private idleWaiters: (() => void)[] = [];
  private poll: NodeJS.Timeout | undefined;
  /** Attempts in flight (destinations and processing), aborted together by stop(). */
  private readonly live = new LiveAttempts();
  private internalsCache: EngineInternals | undefined;
  /** See pumpSoon. */
  private pumpQueued = false;
  /** kubecano_issues_created_total by source and severity. */
  private readonly created = new Map<string, CountCell>();

  constructor(private readonly opts: EngineOptions) {
    super();
    // Every attempt in flight listens on it (destinations × concurrency, plus processing): not a leak past 10.
    setMaxListeners(0, this.shutdown.signal);
    this.now = opts.now ?? Date.now;
    const names = opts.destinations.map((d) => d.name);
    this.route = opts.route ?? (() => names);
    this.logOnce = new LogOnce(this.now);
    for (const d of opts.destinations) this.workers.set(d.name, new Worker(d, this));
    if (opts.processor !== undefined) this.processWorker = new ProcessWorker(opts.processor, this, opts.processing ?? { concurrency: 8, timeoutMs: 120_000 });
    opts.metrics?.setQueueDepthSource(() => names.map((name) => [name, opts.store.depth(name)] as const));
  }

  /**
   * Records the Issues and their deliveries (or their processing step);
   * throws BacklogFullError / StoreUnavailableError. Issues whose workflows
   * only read the Issue are processed first; those that need the cluster are
   * stored for the PROCESS stage, and so is any Issue whose fingerprint
   * already waits there (so its notifications stay in order).
   */
  submit(issues: readonly Issue[]): Promise<AcceptResult> {
    return issues.length <= SUBMIT_CHUNK ? this.submitChunk(issues) : this.submitChunked(issues);
  }

  private async submitChunked(issues: readonly Issue[]): Promise<AcceptResult> {
    // A huge webhook (tens of thousands of alerts) is taken in chunks, each
    // committed on its own, with the event loop free in between: health
    // checks and other webhooks are answered meanwhile. The caller answers
    // only once every chunk is stored; if one fails (backlog full, store
    // unavailable) the sender retries the whole webhook, and the chunks
    // already stored are recognised as duplicates, not delivered twice.
    const total = { issues: 0, deliveries: 0, duplicates: 0, duplicateIds: [] as string[] };
    for (let i = 0; i < issues.length; i += SUBMIT_CHUNK) {
      if (i > 0) await new Promise<void>((resolve) => setImmediate(resolve));
      const r = await this.submitChunk(issues.slice(i, i + SUBMIT_CHUNK));
      total.issues += r.issues;
      total.deliveries += r.deliveries;
      total.duplicates += r.duplicates;
      total.duplicateIds.push(...r.duplicateIds);
    }
    return total;
  }

  private async submitChunk(issues: readonly Issue[]): Promise<AcceptResult> {
    const items: AcceptItem[] = [];
    let silenced: Map<string, string> | undefined;
    const processor = this.opts.processor;
    for (const issue of issues) {
      if (processor === undefined) {
        items.push({ issue, destinations: this.known(this.route(issue)) });
      } else if (processor.isPure(issue) && !this.opts.store.isPending(PROCESS, issue.fingerprint)) {
        let r = processor.process(issue, this.shutdown.signal);
        if (r instanceof Promise) r = await r;
        items.push({ issue: r.issue, destinations: r.silenced !== undefined ? [] : this.known(r.destinations) });
        if (r.silenced !== undefined) this.opts.log.debug({ issue: issue.id, reason: r.silenced }, "silenced");
        if (r.silenced !== undefined) (silenced ??= new Map()).set(issue.id, r.silenced);
      } else {
        items.push({ issue, destinations: [PROCESS] });
      }
    }
    const result = await this.opts.store.accept(items);
    const dup = new Set(result.duplicateIds);
    const accepted = dup.size === 0 ? items : items.filter((i) => !dup.has(i.issue.id));
    const t = tracer();
    if (t !== undefined) for (const { issue } of accepted) t.remember(issue.id);
    const m = this.opts.metrics;
    if (m !== undefined) {
      for (const { issue } of accepted) {
        const key = `${issue.source}\u0000${issue.severity}`;
        let cell = this.created.get(key);
        if (cell === undefined) this.created.set(key, (cell = m.count(m.issuesCreated, { source: issue.source, severity: issue.severity })));
        cell.inc();
      }
    }
    if (dup.size > 0) this.opts.metrics?.duplicates.inc(dup.size);
    if (accepted.length > 0 && this.listenerCount("accepted") > 0) {
      this.emit("accepted", accepted.map((i) => i.issue), accepted.map((i) => ({ destinations: i.destinations, silenced: silenced?.get(i.issue.id) })));
    }
    this.pumpSoon();
    return result;
  }

  /**
   * pumpAll once the microtasks queued so far have run. An accept's commit
   * resolves every webhook of its turn at once, and their answers (202) are
   * microtasks further down the same chain: pumping here, before them, made
   * every answer of the turn wait for the turn's deliveries to be taken and
   * rendered (a console Issue is rendered when sent). A tick runs after the
   * microtask queue is empty, so the answers go out first, and the turn's
   * accepts share one pump.
   */
  private pumpSoon(): void {
    if (this.pumpQueued) return;
    this.pumpQueued = true;
    process.nextTick(() => {
      this.pumpQueued = false;
      this.pumpAll();
    });
  }

  private known(names: readonly string[]): string[] {
    return names.filter((n) => this.workers.has(n));
  }

  /** @internal the PROCESS stage's result: deliveries exist from here on. */
  fanOut(processing: Delivery, r: Processed): void {
    const destinations = r.silenced !== undefined ? [] : this.known(r.destinations);
    this.opts.store.fanOut(processing, r.issue, destinations);
    this.emit("processed", r.issue, destinations, r.silenced);
    for (const name of destinations) this.workers.get(name)?.pump();
  }

  private pumpAll(): void {
    this.processWorker?.pump();
    for (const w of this.workers.values()) w.pump();
  }

  private allWorkers(): BaseWorker[] {
    return [...(this.processWorker !== undefined ? [this.processWorker] : []), ...this.workers.values()];
  }

  /**
   * Starts sending what the store already holds (after a restart), and keeps
   * looking once a second: another process (`kubecano deliveries retry`) can
   * make work due that no submit or retry timer here knows about; the store
   * picks such changes up on take.
   */
  start(): void {
    this.pumpAll();
    if (this.poll === undefined && !this.shutdown.signal.aborted) {
      this.poll = setInterval(() => {
        this.opts.store.refresh?.();
        this.pumpAll();
      }, 1_000);
      this.poll.unref();
    }
  }

  /** Deliveries not yet finished. */
  backlog(): number {
    return this.opts.store.depth();
  }

  /**
   * Keeps delivering until nothing is pending or `graceMs` passes, then stops
   * the workers and aborts what is still in flight (it stays in the store).
   * Resolves with what was left undelivered.
   */
  async drain(graceMs: number): Promise<{ left: number }> {
    const deadline = this.now() + graceMs;
    while (this.backlog() > 0 && this.now() < deadline) {
      // Deliveries waiting for a retry later than the deadline cannot finish in time.
      const anyDueInTime = this.allWorkers().some((w) => w.busy() || (this.opts.store.nextDueAt(w.name) ?? Infinity) <= deadline);
      if (!anyDueInTime) break;
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.max(0, Math.min(250, deadline - this.now())));
        this.idleWaiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
    this.stop();
    await Promise.all(this.allWorkers().map((w) => w.settled()));
    return { left: this.backlog() };
  }

  /** Stops all workers at once; in-flight sends are aborted and retried on the next start. */
  stop(): void {
    if (this.poll !== undefined) clearInterval(this.poll);
    this.poll = undefined;
    this.shutdown.abort(new Error("kubecano is shutting down"));
    for (const a of this.live.all()) a.abort(this.shutdown.signal.reason);
    for (const w of this.allWorkers()) w.stop();
  }

  /** @internal used by workers. Built once: workers read it several times per attempt. */
  get internals(): EngineInternals {
    return (this.internalsCache ??= {
      store: this.opts.store,
      config: this.opts.config,
      log: this.opts.log,
      metrics: this.opts.metrics,
      now: this.now,
      random: this.opts.random ?? Math.random,
      shutdownSignal: this.shutdown.signal,
      logOnce: this.logOnce,
      emitDelivery: (e: DeliveryEvent) => this.emit("delivery", e),
      settledOne: () => {
        const waiters = this.idleWaiters;
        this.idleWaiters = [];
        for (const w of waiters) w();
      },
      attempt: (timeoutMs: number) => this.live.start(timeoutMs, this.shutdown.signal),
    });
  }

}

interface EngineInternals {
  readonly store: DeliveryStore;
  readonly config: DeliveryConfig;
  readonly log: Logger;
  readonly metrics: Metrics | undefined;
  readonly now: () => number;
  readonly random: () => number;
  readonly shutdownSignal: AbortSignal;
  readonly logOnce: LogOnce;
  emitDelivery(e: DeliveryEvent): void;
  settledOne(): void;
  /** Starts one attempt's deadline and cancellation; call its release() when the attempt ends. */
  attempt(timeoutMs: number): Attempt;
}

/** Scheduling shared by the stages: take due work up to a concurrency, sleep until the next is due. */
abstract class BaseWorker {
  private inflight = new Set<Promise<void>>();
  private timer: NodeJS.Timeout | undefined;
  private timerAt = Infinity;
  private stopped = false;

  constructor(
    readonly name: string,
    protected readonly engine: DeliveryEngine,
    private readonly concurrency: () => number,
    private readonly recordAttempt: boolean,
  ) {}

  busy(): boolean {
    return this.inflight.size > 0;
  }

  /** Starts as many due deliveries as concurrency allows, then sleeps until the next one is due. */
  pump(): void {
    if (this.stopped) return;
    const { store, now } = this.engine.internals;
    const t = now();
    const max = this.concurrency();
    while (this.inflight.size < max) {
      const claimed = store.take(this.name, t, { recordAttempt: this.recordAttempt });
      if (claimed === undefined) break;
      const p: Promise<void> = this.attempt(claimed).finally(() => {
        this.inflight.delete(p);
        this.engine.internals.settledOne();
        this.pump();
      });
      this.inflight.add(p);
    }
    const next = store.nextDueAt(this.name);
    if (next !== undefined && next > t && this.inflight.size < max) this.wakeAt(next);
  }

  stop(): void {
    this.stopped = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }

  async settled(): Promise<void> {
    await Promise.allSettled([...this.inflight]);
  }

  protected abstract attempt(claimed: ClaimedDelivery): Promise<void>;

  private wakeAt(at: number): void {
    if (this.timer !== undefined && this.timerAt <= at) return;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timerAt = at;
    const delay = Math.max(0, at - this.engine.internals.now());
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.timerAt = Infinity;
      this.pump();
    }, Math.min(delay, 2 ** 31 - 1));
    this.timer.unref?.();
  }
}

/**
 * The PROCESS stage: runs workflows and routing for an Issue, then turns its
 * processing step into deliveries in one store transaction. Processing never
 * fails for good: past its deadline, or on a bug, the Issue is routed as it
 * is, with a note, so it still goes out.
 */
class ProcessWorker extends BaseWorker {
  constructor(
    private readonly processor: IssueProcessor,
    engine: DeliveryEngine,
    private readonly settings: { readonly concurrency: number; readonly timeoutMs: number },
  ) {
    super(PROCESS, engine, () => settings.concurrency, false);
  }

  protected attempt(claimed: ClaimedDelivery): Promise<void> {
    const t = tracer();
    if (t === undefined) return this.run(claimed);
    // The parent of the action spans of Issues enriched in the background.
    return t.inSpan("workflows", "internal", { "kubecano.issue.id": claimed.issue.id, "kubecano.issue.fingerprint": claimed.issue.fingerprint }, () => this.run(claimed), { key: claimed.issue.id });
  }

  private async run({ delivery, issue }: ClaimedDelivery): Promise<void> {
    const { store, log, shutdownSignal, now, config, random, logOnce } = this.engine.internals;
    const scope = this.engine.internals.attempt(this.settings.timeoutMs);
    const timedOut = (): boolean => scope.timedOut;
    const started = performance.now();
    try {
      let result: Processed;
      try {
        result = await scope.race(Promise.resolve(this.processor.process(issue, scope.signal)));
      } catch (e) {
        if (shutdownSignal.aborted) {
          safely(log, () => store.release(delivery));
          return;
        }
        const why = timedOut() ? `enrichment took longer than ${this.settings.timeoutMs} ms` : `enrichment failed: ${errorMessage(e)}`;
        logOnce.log(log, "error", `process:${timedOut() ? "timeout" : "error"}`, { issue: issue.id }, `${why}; sending the Issue without it`);
        result = this.processor.fallback(issue, why);
      }
      try {
        this.engine.fanOut(delivery, result);
      } catch (e) {
        // The store could not take the result (disk full): try the whole step again later.
        const delay = backoffDelay({ initialDelayMs: config.retry.initialDelay, maxDelayMs: config.retry.maxDelay }, delivery.attempts + 1, undefined, random);
        logOnce.log(log, "error", "process:store", {}, `cannot record an enriched Issue: ${errorMessage(e)}; retrying in ${delay} ms`);
        safely(log, () => store.retry(delivery, now() + delay, errorMessage(e)));
      }
    } finally {
      scope.release();
      this.engine.internals.metrics?.enrichmentDuration.observe((performance.now() - started) / 1000);
    }
  }
}

/** One destination's worker: sends, then records success, a retry or a dead letter. */
class Worker extends BaseWorker {
  /** Made once: a pino child and labelled metric children per attempt cost more than the attempt's own work. */
  private readonly log: Logger;
  private readonly m: { success?: { inc(): void }; retry?: { inc(): void }; failed?: { inc(): void }; latency?: { observe(v: number): void }; duration?: { observe(v: number): void } };

  constructor(
    private readonly destination: Destination,
    engine: DeliveryEngine,
  ) {
    super(destination.name, engine, () => destination.concurrency ?? engine.internals.config.concurrency, destination.findExisting !== undefined);
    const { log, metrics } = engine.internals;
    this.log = log.child({ destination: destination.name });
    const labels = { destination: destination.name };
    this.m =
      metrics === undefined
        ? {}
        : {
            success: metrics.count(metrics.deliveries, { ...labels, outcome: "success" }),
            retry: metrics.count(metrics.deliveries, { ...labels, outcome: "retry" }),
            failed: metrics.count(metrics.deliveries, { ...labels, outcome: "failed" }),
            latency: metrics.deliveryLatency.labels(labels),
            duration: metrics.deliveryAttemptDuration.labels(labels),
          };
  }

  protected attempt(claimed: ClaimedDelivery): Promise<void> {
    const t = tracer();
    if (t === undefined) return this.deliver(claimed, undefined);
    const { delivery, issue } = claimed;
    return t.inSpan(
      `delivery ${this.name}`,
      "client",
      { "kubecano.destination": this.name, "kubecano.destination.type": this.destination.type, "kubecano.issue.id": issue.id, "kubecano.issue.fingerprint": issue.fingerprint, "kubecano.delivery.attempt": delivery.attempts + 1 },
      (span) => this.deliver(claimed, span),
      { key: issue.id },
    );
  }

  private async deliver({ delivery, issue }: ClaimedDelivery, span: SpanHandle | undefined): Promise<void> {
    const { store, config, log, now, random, shutdownSignal, logOnce } = this.engine.internals;
    const m = this.m;
    const attempt = delivery.attempts + 1;
    const scope = this.engine.internals.attempt(config.attemptTimeout);
    const timedOut = (): boolean => scope.timedOut;
    const started = performance.now();
    const attemptStartedAt = now();
    const dlog = this.log;
    const at = (): { issue: string; fingerprint: string; attempt: number } => ({ issue: issue.id, fingerprint: issue.fingerprint, attempt });
    try {
      let result: SendResult | undefined;
      if (delivery.inDoubtSince !== undefined && this.destination.findExisting !== undefined) {
        result = await scope.race(this.destination.findExisting(issue, { since: delivery.inDoubtSince, get signal() { return scope.signal; }, log: dlog, deferrable: true }));
        if (result !== undefined) dlog.info({ ...at(), remoteId: result.remoteId }, `an attempt interrupted by a restart had already reached ${this.name}: not sending it again`);
      }
      result ??= await scope.race(this.destination.send(issue, new AttemptContext(scope, attempt, dlog)));
      store.complete(delivery, result.remoteId);
      m.success?.inc();
      span?.setAttribute("kubecano.delivery.outcome", "success");
      m.latency?.observe(Math.max(0, now() - delivery.createdAt) / 1000);
      if (dlog.isLevelEnabled("debug")) dlog.debug({ ...at(), remoteId: result.remoteId }, result.detail ?? "delivered");
      this.engine.internals.emitDelivery({ issueId: issue.id, fingerprint: issue.fingerprint, destination: this.name, outcome: "success", attempt, remoteId: result.remoteId });
    } catch (e) {
      if (shutdownSignal.aborted) {
        // Not the destination's fault: keep the delivery for the next start, attempt not counted.
        safely(log, () => store.release(delivery));
        return;
      }
      const err = toDeliveryError(e, timedOut(), config.attemptTimeout);
      const t = now();
      if (err.defer) {
        // The destination's own pacing, not a failure: no attempt counted, nothing logged above debug.
        safely(log, () => store.defer(delivery, t + Math.max(0, err.retryAfterMs ?? 0)));
        span?.setAttribute("kubecano.delivery.outcome", "deferred");
        if (dlog.isLevelEnabled("debug")) dlog.debug({ ...at(), code: err.code, deferMs: err.retryAfterMs }, `deferred: ${err.message}`);
        return;
      }
      const delay = backoffDelay({ initialDelayMs: config.retry.initialDelay, maxDelayMs: config.retry.maxDelay }, attempt, err.retryAfterMs, random);
      const tooOld = t + delay - delivery.createdAt > config.retry.maxAge;
      const base = { issueId: issue.id, fingerprint: issue.fingerprint, destination: this.name, attempt, error: err.message, code: err.code, hint: err.hint };
      span?.setAttribute("kubecano.delivery.outcome", err.retryable && !tooOld ? "retry" : "failed");
      span?.setAttribute("error.type", err.code);
      span?.fail(err.message);
      if (err.retryable && !tooOld) {
        // A send that may have landed stays in doubt: the next attempt looks before sending again.
        const inDoubt = err.maybeDelivered && this.destination.findExisting !== undefined ? (delivery.inDoubtSince ?? attemptStartedAt) : undefined;
        safely(log, () => store.retry(delivery, t + delay, err.message, inDoubt));
        m.retry?.inc();
        logOnce.log(dlog, "warn", `${this.name}:retry:${err.code}`, { ...at(), code: err.code, retryInMs: delay }, `delivery to ${this.name} failed, will retry: ${err.message}`);
        this.engine.internals.emitDelivery({ ...base, outcome: "retry", nextAttemptAt: t + delay });
      } else {
        const why = err.retryable ? `gave up after ${attempt} attempts over ${Math.round((t - delivery.createdAt) / 1000)}s: ${err.message}` : err.message;
        safely(log, () => store.kill(delivery, why));
        m.failed?.inc();
        logOnce.log(dlog, "error", `${this.name}:failed:${err.code}`, { ...at(), code: err.code, ...(err.hint !== undefined ? { hint: err.hint } : {}) }, `delivery to ${this.name} failed: ${why}`);
        this.engine.internals.emitDelivery({ ...base, outcome: "failed", error: why });
      }
    } finally {
      scope.release();
      m.duration?.observe((performance.now() - started) / 1000);
    }
  }
}

/** Anything a destination throws, as a DeliveryError. Unknown errors are bugs: not retried. */
export function toDeliveryError(e: unknown, timedOut: boolean, timeoutMs: number): DeliveryError {
  if (e instanceof DeliveryError) return e;
  if (timedOut) return new DeliveryError(`no answer within ${timeoutMs} ms`, { retryable: true, code: "timeout", maybeDelivered: true });
  return new DeliveryError(`internal error: ${errorMessage(e)}`, {
    retryable: false,
    code: "internal_error",
    hint: "this is a bug in kubecano; please report it with the log line",
  });
}

/**
 * What a destination's send() gets. The signal is made on first read: a
 * destination that never looks at it (console) costs none.
 */
class AttemptContext implements SendContext {
  readonly deferrable = true;
  constructor(
    private readonly scope: Attempt,
    readonly attempt: number,
    readonly log: Logger,
  ) {}

  get signal(): AbortSignal {
    return this.scope.signal;
  }
}

/**
 * The attempts in flight and their deadlines. One timer per timeout length
 * (attempts, processing) instead of one per attempt: attempts of one length
 * start in order, so they also expire in order, and the timer only ever
 * waits for the oldest. The timers do not keep the process alive.
 */
export class LiveAttempts {
  private readonly groups = new Map<number, { readonly attempts: Set<Attempt>; timer: NodeJS.Timeout | undefined }>();

  /** Starts an attempt that aborts after `timeoutMs` (or when aborted). */
  start(timeoutMs: number, shutdown: AbortSignal): Attempt {
    const a = new Attempt(timeoutMs, this);
    if (shutdown.aborted) {
      a.abort(shutdown.reason);
      return a;
    }
    let g = this.groups.get(timeoutMs);
    if (g === undefined) this.groups.set(timeoutMs, (g = { attempts: new Set(), timer: undefined }));
    g.attempts.add(a);
    if (g.timer === undefined) this.arm(timeoutMs, g, timeoutMs);
    return a;
  }

  /** @internal Attempt.release */
  forget(a: Attempt): void {
    this.groups.get(a.timeoutMs)?.attempts.delete(a);
  }

  all(): Attempt[] {
    return [...this.groups.values()].flatMap((g) => [...g.attempts]);
  }

  private arm(timeoutMs: number, g: { readonly attempts: Set<Attempt>; timer: NodeJS.Timeout | undefined }, delay: number): void {
    g.timer = setTimeout(() => {
      g.timer = undefined;
      const now = performance.now();
      for (const a of g.attempts) {
        if (a.deadline > now) {
          this.arm(timeoutMs, g, a.deadline - now);
          return;
        }
        g.attempts.delete(a);
        a.expire();
      }
    }, Math.min(Math.max(1, Math.ceil(delay)), 2 ** 31 - 1));
    g.timer.unref();
  }
}

/**
 * One attempt's deadline and cancellation: it aborts when the attempt times
 * out or kubecano shuts down (DeliveryEngine.stop aborts the live ones), and
 * `release` must be called when the attempt ends. Not AbortSignal.any([
 * AbortSignal.timeout(), shutdown]): on Node 20 that pair costs several times
 * more per attempt and keeps every attempt's signals and timer alive for the
 * whole timeout (30 s by default), tens of thousands of live objects during
 * an alert storm. For the same reason of cost per webhook, the AbortSignal
 * handed to the destination is only made when it is read, and `race` waits
 * on a callback rather than an abort listener.
 */
export class Attempt {
  private controller: AbortController | undefined;
  private aborted = false;
  private reason: unknown;
  private onAbort: ((reason: unknown) => void) | undefined;
  /** performance.now() past which the attempt has timed out. */
  readonly deadline: number;
  timedOut = false;

  constructor(
    readonly timeoutMs: number,
    private readonly live: LiveAttempts,
  ) {
    this.deadline = performance.now() + timeoutMs;
  }

  /** Aborts when the attempt times out or kubecano shuts down. */
  get signal(): AbortSignal {
    if (this.controller === undefined) {
      this.controller = new AbortController();
      if (this.aborted) this.controller.abort(this.reason);
    }
    return this.controller.signal;
  }

  /** @internal LiveAttempts: the deadline passed. */
  expire(): void {
    if (this.aborted) return;
    this.timedOut = true;
    this.abort(new DOMException(`no answer within ${this.timeoutMs} ms`, "TimeoutError"));
  }

  abort(reason: unknown): void {
    if (this.aborted) return;
    this.aborted = true;
    this.reason = reason;
    this.controller?.abort(reason);
    const reject = this.onAbort;
    this.onAbort = undefined;
    reject?.(reason);
  }

  /** Resolves or rejects with `p`, or rejects with the abort reason as soon as the attempt aborts. */
  race<T>(p: Promise<T>): Promise<T> {
    if (this.aborted) return Promise.reject(this.reason as Error);
    return new Promise<T>((resolve, reject) => {
      const onAbort = (reason: unknown): void => reject(reason as Error);
      this.onAbort = onAbort;
      p.then(
        (v) => {
          if (this.onAbort === onAbort) this.onAbort = undefined;
          resolve(v);
        },
        (err: unknown) => {
          if (this.onAbort === onAbort) this.onAbort = undefined;
          reject(err as Error);
        },
      );
    });
  }

  release(): void {
    this.live.forget(this);
  }
}

function safely(log: Logger, fn: () => void): void {
  try {
    fn();
  } catch (e) {
    log.error({ err: e }, `cannot record a delivery result: ${errorMessage(e)}`);
  }
}
