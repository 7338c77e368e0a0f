import { computeFingerprint } from "../../core/fingerprint.js";
import { createIssue, type Issue } from "../../core/issue.js";
import { errorMessage } from "../../errors.js";
import type { Logger } from "../../observability/logger.js";
import type { Metrics } from "../../observability/metrics.js";
import type { KubeApiLike } from "./api.js";
import { classifyEvent, classifyHelm, classifyJob, classifyNode, classifyPod, isPodHealthy, POD_RESOLVABLE, type ClassifyContext, type Finding } from "./classifiers.js";
import { severityOf, type WatchConfig } from "./config.js";
import type { LeaderElector } from "./leader.js";
import { encodeLedger, exactNamespaces, IncidentLedger, NoiseFilter, type LedgerEntry } from "./noise.js";
import { keepVersion, projectEvent, projectHelmSecret, projectJob, projectNode, projectPod, type EventP, type HelmP, type JobP, type NodeP, type PodP } from "./projections.js";
import { ResourceWatcher, type Change, type Kept, type Tracked, type WatcherOptions, type WatcherStatus, type WatchSpec } from "./watch.js";
import { Pause } from "./pause.js";

/**
 * The Kubernetes source: (leader election →) watchers → classifiers → noise
 * control → the sink (the pipeline's durable submit, or a dry-run printer).
 *
 * While this replica leads, it watches Events, Pods, Jobs, Nodes and Helm
 * release Secrets, classifies each change, and turns the findings noise
 * control lets through into Issues. Issues go to the sink in order; when
 * the sink cannot take them (backlog full, store down) they are kept and
 * offered again, never dropped. With leader election, the ledger of what was
 * reported is written to the Lease before the Issues reach the sink, so a
 * replica that lost the lease sends nothing the new leader does not know of.
 */

export type SinkOutcome = { readonly kind: "accepted" } | { readonly kind: "unavailable"; readonly message: string; readonly retryAfterSeconds?: number };

export interface SourceDeps {
  readonly api: KubeApiLike;
  readonly config: WatchConfig;
  readonly clusterName: string;
  readonly log: Logger;
  readonly metrics?: Metrics | undefined;
  readonly sink: (issues: readonly Issue[]) => Promise<SinkOutcome>;
  /** Undefined: no election, this process always leads (a laptop, `--no-leader-election`). */
  readonly leader?: LeaderElector | undefined;
  readonly now?: () => number;
  /** How often delayed findings and pending resolutions are checked. Default 1 s. */
  readonly tickMs?: number;
  /** For tests: watcher timings (backoff, watch timeout). */
  readonly watcher?: Pick<WatcherOptions<never, never>, "backoff" | "watchTimeoutSeconds" | "pageSize">;
  /** How long to wait before offering Issues again to a sink that could not take them. Default: what it asks, at most 5 s. */
  readonly resubmitMs?: number;
}

export interface SourceStatus {
  /** For /readyz: true once every watcher finished its first list (or was refused for good), or while on standby. */
  readonly ok: boolean;
  readonly detail: string;
  readonly leading: boolean;
  readonly watchers: readonly WatcherStatus[];
}

type AnyWatcher = ResourceWatcher<Tracked, Kept>;

interface Tracking {
  readonly reason: Finding["reason"];
  readonly workloadKey: string;
  /** Pods in trouble for this incident; it resolves when none is left and a pod of the workload ran well. */
  readonly troubled: Set<string>;
  healthySeen: boolean;
  /** The latest finding; absent for an incident a previous leader reported whose pods this one has not seen in trouble. */
  finding: Finding | undefined;
  /** When that leader reported it. */
  readonly firedMs?: number | undefined;
}

const workloadKey = (w: Finding["workload"]): string => `${w.namespace ?? ""}/${w.kind}/${w.name}`;
const podWorkloadKey = (p: PodP): string => workloadKey(p.owner !== undefined ? { ...p.owner, namespace: p.namespace } : { kind: "Pod", name: p.name, namespace: p.namespace });
const restartSum = (p: PodP): number => p.containers.reduce((n, c) => n + c.restarts, 0);
const iso = (ms: number): string => new Date(ms).toISOString();

/** One leadership period: its watchers and everything learnt from them. Thrown away when the lease is lost. */
class Term {
  readonly watchers: AnyWatcher[] = [];
  readonly podWatchers: ResourceWatcher<PodP, PodP>[] = [];
  readonly incidents = new Map<string, Tracking>();
  readonly byWorkload = new Map<string, Set<string>>();
  /** When a delayed condition was first seen, by its key, per object. */
  readonly firstSeen = new Map<string, Map<string, number>>();
  /** Objects to classify again at a due time (a delayed finding not due yet). */
  readonly pending = new Map<string, number>();
  /** Pods of workloads with open incidents that run well: since when, at which restart count. */
  readonly healthySince = new Map<string, { since: number; restarts: number }>();
  /** Helm release Secrets by release ("ns/name"), then by Secret uid. */
  readonly helm = new Map<string, Map<string, HelmP>>();
  helmSynced = false;
  active = true;
  constructor(
    readonly startedMs: number,
    readonly ledger: IncidentLedger,
  ) {}
}

export class KubernetesSource {
  private term: Term | undefined;
  private readonly filter: NoiseFilter;
  private readonly now: () => number;
  private outbox: Issue[] = [];
  private flushing: Promise<void> | undefined;
  private flushQueued = false;
  private ticker: NodeJS.Timeout | undefined;
  private started = false;
  private lastSinkProblem: string | undefined;
  /** The wait before Issues are offered again to a sink that refused them; stop() ends it. */
  private readonly resubmitPause = new Pause();

  constructor(private readonly deps: SourceDeps) {
    this.filter = new NoiseFilter(deps.config);
    this.now = deps.now ?? Date.now;
  }

  start(): void {
    if (this.started) return;
    this.started = true;
    this.ticker = setInterval(() => this.tick(), this.deps.tickMs ?? 1_000);
    this.ticker.unref();
    const leader = this.deps.leader;
    if (leader === undefined) {
      this.deps.metrics?.leader.set(1);
      this.begin(new Map());
      return;
    }
    leader.start({
      onStartedLeading: (ledger) => {
        this.deps.metrics?.leader.set(1);
        this.begin(ledger);
      },
      onStoppedLeading: () => {
        this.deps.metrics?.leader.set(0);
        this.end();
      },
      ledger: () => encodeLedger(this.term?.ledger.snapshot() ?? new Map()),
    });
  }

  /** Stops watching, hands what is queued to the sink (for up to `flushMs`), then releases the Lease. */
  async stop(flushMs = 5_000): Promise<void> {
    if (!this.started) return;
    this.started = false;
    if (this.ticker !== undefined) clearInterval(this.ticker);
    this.resubmitPause.wake();
    const term = this.term;
    if (term !== undefined) await Promise.all(term.watchers.map((w) => w.stop()));
    if (this.outbox.length > 0 || this.flushing !== undefined) {
      await Promise.race([this.flushNow(), new Promise((r) => setTimeout(r, flushMs).unref())]);
    }
    if (this.outbox.length > 0) this.deps.log.warn({ left: this.outbox.length }, `stopped with ${this.outbox.length} Issues not handed to delivery`);
    await this.deps.leader?.stop();
    this.end();
    this.deps.metrics?.leader.set(0);
  }

  status(): SourceStatus {
    const leader = this.deps.leader;
    const term = this.term;
    if (leader !== undefined && !leader.isLeader()) {
      const s = leader.status();
      const holder = s.holder === undefined ? "not known yet" : s.holder === "" ? "nobody" : s.holder;
      return { ok: true, leading: false, watchers: [], detail: `standby: lease ${s.lease} is held by ${holder}${s.error !== undefined ? ` (${s.error})` : ""}` };
    }
    const watchers = term?.watchers.map((w) => w.status()) ?? [];
    const refused = (w: WatcherStatus): boolean => w.lastErrorStatus === 401 || w.lastErrorStatus === 403 || w.lastErrorStatus === 404;
    const ok = watchers.length > 0 && watchers.every((w) => w.synced || refused(w));
    const parts = watchers.map((w) => {
      const name = w.namespace !== undefined ? `${w.resource} in ${w.namespace}` : w.resource;
      if (w.state === "backoff") return `${name}: backing off${w.retryAt !== undefined ? ` (retry in ${Math.max(0, Math.round((w.retryAt - this.now()) / 1000))} s)` : ""}: ${w.lastError ?? "error"}`;
      return `${name}: ${w.synced ? `${w.state}, ${w.objects} objects` : w.state === "listing" ? "listing" : w.state}`;
    });
    const who = leader !== undefined ? `leading (lease ${leader.status().lease}, ${leader.identity})` : "watching (no leader election)";
    return { ok, leading: true, watchers, detail: `${who}; ${parts.join("; ")}` };
  }

  // ───────────────────────────── terms ─────────────────────────────

  private begin(ledgerEntries: Map<string, LedgerEntry>): void {
    if (this.term !== undefined) this.end();
    const ledger = new IncidentLedger(this.deps.config.rateLimitWindow);
    ledger.load(ledgerEntries);
    const term = new Term(this.now(), ledger);
    this.term = term;
    // Pod incidents another leader reported stay open here: a pod of theirs that runs well resolves them.
    for (const [fp, e] of ledger.entriesView()) {
      if (e.workload === undefined || e.reason === undefined || !POD_RESOLVABLE.has(e.reason as Finding["reason"])) continue;
      term.incidents.set(fp, { reason: e.reason as Finding["reason"], workloadKey: e.workload, troubled: new Set(), healthySeen: false, finding: undefined, firedMs: e.firedMs });
      let set = term.byWorkload.get(e.workload);
      if (set === undefined) term.byWorkload.set(e.workload, (set = new Set()));
      set.add(fp);
    }
    this.outbox = [];
    const c = this.deps.config;
    const namespaces = exactNamespaces(c.namespaces) ?? [undefined];
    const base = (ns: string | undefined, group: string): string => `${group}${ns !== undefined ? `/namespaces/${encodeURIComponent(ns)}` : ""}`;
    for (const ns of namespaces) {
      const pods = this.watcher<PodP, PodP>(term, { resource: "pods", namespace: ns, path: `${base(ns, "/api/v1")}/pods`, project: projectPod, retain: (p) => p }, (ch) => this.onPod(term, ch));
      term.podWatchers.push(pods);
      this.watcher<EventP, string>(
        term,
        { resource: "events", namespace: ns, path: `${base(ns, "/api/v1")}/events`, fieldSelector: "type=Warning", project: projectEvent, retain: keepVersion },
        (ch) => this.onEvent(term, ch),
      );
      this.watcher<JobP, JobP>(term, { resource: "jobs", namespace: ns, path: `${base(ns, "/apis/batch/v1")}/jobs`, project: projectJob, retain: (p) => p }, (ch) => this.onJob(term, ch));
      if (c.helm) {
        this.watcher<HelmP, HelmP>(
          term,
          { resource: "secrets", namespace: ns, path: `${base(ns, "/api/v1")}/secrets`, labelSelector: "owner=helm", project: projectHelmSecret, retain: (p) => p },
          (ch) => this.onHelm(term, ch),
          () => this.onHelmSynced(term),
        );
      }
    }
    this.watcher<NodeP, NodeP>(term, { resource: "nodes", path: "/api/v1/nodes", project: projectNode, retain: (p) => p }, (ch) => this.onNode(term, ch));
    for (const w of term.watchers) w.start();
    this.deps.log.info(
      { namespaces: c.namespaces.length > 0 ? c.namespaces : "all", excludeNamespaces: c.excludeNamespaces, helm: c.helm, known: ledger.size },
      `watching the cluster: ${term.watchers.map((w) => (w.spec.namespace !== undefined ? `${w.spec.resource} in ${w.spec.namespace}` : w.spec.resource)).join(", ")}`,
    );
  }

  private watcher<P extends Tracked, S extends Kept>(term: Term, spec: WatchSpec<P, S>, onChange: (c: Change<P, S>) => void, onSynced?: () => void): ResourceWatcher<P, S> {
    const m = this.deps.metrics;
    const w = new ResourceWatcher<P, S>(this.deps.api, spec, {
      log: this.deps.log,
      stallTimeoutMs: this.deps.config.stallTimeout,
      onChange: (ch) => {
        if (term.active) onChange(ch);
      },
      ...(onSynced !== undefined ? { onSynced } : {}),
      onEvent: m !== undefined ? () => m.watchEvents.inc({ resource: spec.resource }) : undefined,
      onRestart: m !== undefined ? (reason) => m.watchRestarts.inc({ resource: spec.resource, reason }) : undefined,
      ...(this.deps.watcher ?? {}),
      now: this.now,
    } as WatcherOptions<P, S>);
    term.watchers.push(w as unknown as AnyWatcher);
    return w;
  }

  /** Lost the lease (or stopping): watchers stop at once, what was learnt and queued is dropped (the next leader classifies afresh). */
  private end(): void {
    const term = this.term;
    if (term === undefined) return;
    term.active = false;
    this.term = undefined;
    for (const w of term.watchers) void w.stop();
    if (this.outbox.length > 0) this.deps.log.info({ issues: this.outbox.length }, "not sending the queued Issues: the next leader reports what is still true");
    this.outbox = [];
  }

  private ctx(term: Term): ClassifyContext {
    const c = this.deps.config;
    return {
      settings: { crashLoopRestarts: c.crashLoopRestarts, imagePullDelay: c.imagePullDelay, schedulingDelay: c.schedulingDelay, helmPendingDelay: c.helmPendingDelay, unhealthy: c.unhealthy },
      now: this.now(),
      startedMs: term.startedMs,
      lookbackMs: c.lookback,
    };
  }

  private findPod(term: Term, uid: string | undefined): PodP | undefined {
    if (uid === undefined) return undefined;
    for (const w of term.podWatchers) {
      const p = w.get(uid);
      if (p !== undefined) return p;
    }
    return undefined;
  }

  // ───────────────────────────── changes ─────────────────────────────

  private onPod(term: Term, ch: Change<PodP, PodP>): void {
    if (ch.type === "DELETED") {
      if (ch.previous !== undefined) this.podGone(term, ch.previous);
      return;
    }
    const cur = ch.current!;
    if (!this.filter.namespaceWatched(cur.namespace)) return;
    this.classifyPodNow(term, ch.previous, cur, ch.initial);
  }

  private classifyPodNow(term: Term, prev: PodP | undefined, cur: PodP, initial: boolean): void {
    const verdict = classifyPod(prev, cur, this.ctx(term));
    const keys = new Set<string>();
    for (const f of verdict.findings) {
      if (f.delay !== undefined) keys.add(f.delay.key);
      this.consider(term, f, `pod:${cur.uid}`, initial);
    }
    // Forget when delayed conditions began once they no longer hold.
    const seen = term.firstSeen.get(cur.uid);
    if (seen !== undefined) {
      for (const k of [...seen.keys()]) if (!keys.has(k)) seen.delete(k);
      if (seen.size === 0) term.firstSeen.delete(cur.uid);
    }
    this.trackHealth(term, cur, verdict.healthy);
  }

  private podGone(term: Term, last: PodP): void {
    term.firstSeen.delete(last.uid);
    term.pending.delete(`pod:${last.uid}`);
    term.healthySince.delete(last.uid);
    for (const fp of [...(term.byWorkload.get(podWorkloadKey(last)) ?? [])]) {
      const t = term.incidents.get(fp);
      if (t === undefined || !t.troubled.delete(last.uid)) continue;
      if (t.troubled.size === 0 && t.healthySeen) this.resolveTracked(term, fp, t);
    }
  }

  private trackHealth(term: Term, pod: PodP, healthy: boolean): void {
    const open = term.byWorkload.get(podWorkloadKey(pod));
    if (!healthy || open === undefined || open.size === 0) {
      term.healthySince.delete(pod.uid);
      return;
    }
    const restarts = restartSum(pod);
    const h = term.healthySince.get(pod.uid);
    if (h === undefined || h.restarts !== restarts) term.healthySince.set(pod.uid, { since: this.now(), restarts });
  }

  /** A pod ran well for resolveDelay: it no longer keeps its workload's pod incidents open. */
  private podRecovered(term: Term, pod: PodP): void {
    for (const fp of [...(term.byWorkload.get(podWorkloadKey(pod)) ?? [])]) {
      const t = term.incidents.get(fp);
      if (t === undefined || !POD_RESOLVABLE.has(t.reason)) continue;
      t.troubled.delete(pod.uid);
      t.healthySeen = true;
      if (t.troubled.size === 0) this.resolveTracked(term, fp, t, pod);
    }
  }

  private onEvent(term: Term, ch: Change<EventP, string>): void {
    const e = ch.current;
    if (e === undefined) return;
    if (!this.filter.namespaceWatched(e.involved.namespace ?? e.namespace)) return;
    const pod = e.involved.kind === "Pod" ? this.findPod(term, e.involved.uid) : undefined;
    const f = classifyEvent(e, this.ctx(term), pod);
    if (f !== undefined) this.consider(term, f, undefined, ch.initial);
  }

  private onJob(term: Term, ch: Change<JobP, JobP>): void {
    const cur = ch.current;
    if (cur === undefined || !this.filter.namespaceWatched(cur.namespace)) return;
    const f = classifyJob(ch.previous, cur, this.ctx(term));
    if (f !== undefined) this.consider(term, f, undefined, ch.initial);
  }

  private onNode(term: Term, ch: Change<NodeP, NodeP>): void {
    const cur = ch.current;
    if (cur === undefined) return;
    const f = classifyNode(cur, this.ctx(term));
    if (f !== undefined) this.consider(term, f, undefined, ch.initial);
  }

  private onHelm(term: Term, ch: Change<HelmP, HelmP>): void {
    const p = ch.current ?? ch.previous;
    if (p === undefined) return;
    const key = `${p.namespace}/${p.release}`;
    let revisions = term.helm.get(key);
    if (ch.type === "DELETED") {
      revisions?.delete(p.uid);
      if (revisions !== undefined && revisions.size === 0) term.helm.delete(key);
      return;
    }
    if (revisions === undefined) term.helm.set(key, (revisions = new Map()));
    revisions.set(p.uid, ch.current!);
    // The first list arrives in name order (v1, v10, v2...): judge each release once it is complete.
    if (!term.helmSynced) return;
    const latest = this.latestRevision(revisions);
    if (latest !== undefined && latest.uid === p.uid) this.classifyHelmNow(term, latest, false);
  }

  private onHelmSynced(term: Term): void {
    if (term.helmSynced) return;
    term.helmSynced = true;
    for (const revisions of term.helm.values()) {
      const latest = this.latestRevision(revisions);
      if (latest !== undefined) this.classifyHelmNow(term, latest, true);
    }
  }

  private latestRevision(revisions: ReadonlyMap<string, HelmP>): HelmP | undefined {
    let latest: HelmP | undefined;
    for (const r of revisions.values()) if (latest === undefined || r.revision > latest.revision) latest = r;
    return latest;
  }

  private classifyHelmNow(term: Term, latest: HelmP, initial: boolean): void {
    if (!this.filter.namespaceWatched(latest.namespace)) return;
    for (const f of classifyHelm(latest, this.ctx(term))) this.consider(term, f, `helm:${latest.namespace}/${latest.release}`, initial);
  }

  // ───────────────────────────── decisions ─────────────────────────────

  private fingerprint(f: Finding): string {
    return computeFingerprint(f.source, { kind: f.workload.kind, name: f.workload.name, namespace: f.workload.namespace }, f.reason);
  }

  /**
   * One finding through noise control: filtered out, not due yet (delayed
   * conditions are looked at again at their due time), rate limited, or an
   * Issue. `object` names what to classify again when it is delayed.
   */
  private consider(term: Term, f: Finding, object: string | undefined, initial: boolean): void {
    const m = this.deps.metrics;
    const why = this.filter.rejects(f);
    if (why !== undefined) {
      m?.watchSuppressed.inc({ reason: f.reason, why });
      return;
    }
    const now = this.now();
    if (f.delay !== undefined && f.status === "FIRING") {
      let since = f.delay.since;
      if (since === undefined) {
        const owner = f.podUid ?? object ?? f.delay.key;
        let seen = term.firstSeen.get(owner);
        if (seen === undefined) term.firstSeen.set(owner, (seen = new Map()));
        since = seen.get(f.delay.key);
        if (since === undefined) {
          // Found at start-up: it has been so since at least when the object says trouble began.
          since = initial ? Math.min(f.startsMs, now) : now;
          seen.set(f.delay.key, since);
        }
      }
      const due = since + f.delay.ms;
      if (now < due) {
        if (object !== undefined) {
          const cur = term.pending.get(object);
          if (cur === undefined || due < cur) term.pending.set(object, due);
        }
        return;
      }
    }
    const fp = this.fingerprint(f);
    if (f.status === "RESOLVED") {
      const t = term.incidents.get(fp);
      if (t !== undefined) this.untrack(term, fp, t);
      if (term.ledger.resolve(fp)) this.emit(term, f, fp, "RESOLVED");
      return;
    }
    this.track(term, f, fp);
    const about = POD_RESOLVABLE.has(f.reason) ? { workload: workloadKey(f.workload), reason: f.reason } : undefined;
    if (term.ledger.fire(fp, now, about)) this.emit(term, f, fp, "FIRING");
    else m?.watchSuppressed.inc({ reason: f.reason, why: "rate_limited" });
  }

  /** Pod incidents are followed until their pods recover; other reasons resolve from their own findings, or not at all. */
  private track(term: Term, f: Finding, fp: string): void {
    if (!POD_RESOLVABLE.has(f.reason)) return;
    let t = term.incidents.get(fp);
    if (t === undefined) {
      const wk = workloadKey(f.workload);
      t = { reason: f.reason, workloadKey: wk, troubled: new Set(), healthySeen: false, finding: f };
      term.incidents.set(fp, t);
      let set = term.byWorkload.get(wk);
      if (set === undefined) term.byWorkload.set(wk, (set = new Set()));
      set.add(fp);
    }
    t.finding = f;
    if (f.podUid !== undefined) {
      t.troubled.add(f.podUid);
      term.healthySince.delete(f.podUid);
    }
  }

  private untrack(term: Term, fp: string, t: Tracking): void {
    term.incidents.delete(fp);
    const set = term.byWorkload.get(t.workloadKey);
    set?.delete(fp);
    if (set !== undefined && set.size === 0) term.byWorkload.delete(t.workloadKey);
  }

  private resolveTracked(term: Term, fp: string, t: Tracking, recovered?: PodP): void {
    this.untrack(term, fp, t);
    if (!term.ledger.resolve(fp)) return;
    const description = `Running and ready again (no restart for ${Math.round(this.deps.config.resolveDelay / 1000)} s).`;
    if (t.finding !== undefined) {
      this.emit(term, { ...t.finding, status: "RESOLVED", eventType: "Normal", description }, fp, "RESOLVED");
      return;
    }
    // Reported by an earlier leader: all that is known is the workload, the reason and the pod that now runs well.
    const [namespace = "", kind = "Pod", ...rest] = t.workloadKey.split("/");
    const name = rest.join("/");
    const pod = recovered;
    this.emit(
      term,
      {
        reason: t.reason,
        status: "RESOLVED",
        source: "kubernetes",
        subject: pod !== undefined ? { kind: "Pod", name: pod.name, namespace: pod.namespace, node: pod.node, labels: pod.labels } : { kind, name, namespace, labels: {} },
        workload: { kind, name, namespace },
        title: `${kind} ${namespace}/${name} recovered from ${t.reason}`,
        description,
        startsMs: t.firedMs ?? this.now(),
        eventType: "Normal",
        ignore: false,
      },
      fp,
      "RESOLVED",
    );
  }

  private emit(term: Term, f: Finding, fp: string, status: "FIRING" | "RESOLVED"): void {
    const now = this.now();
    const s = f.subject;
    const issue = createIssue(
      {
        title: f.title,
        description: f.description,
        aggregationKey: f.reason,
        severity: severityOf(this.deps.config, f.reason),
        status,
        source: f.source,
        type: "event",
        subject: {
          kind: s.kind,
          name: s.name,
          ...(s.namespace !== undefined && s.kind !== "Node" ? { namespace: s.namespace } : {}),
          ...(s.node !== undefined ? { node: s.node } : {}),
          ...(s.container !== undefined ? { container: s.container } : {}),
          labels: s.labels,
          annotations: { "kubecano.io/event-type": f.eventType, "kubecano.io/workload": `${f.workload.kind}/${f.workload.name}` },
        },
        startsAt: iso(Math.min(f.startsMs, now)),
        ...(status === "RESOLVED" ? { endsAt: iso(now) } : {}),
        clusterName: this.deps.clusterName,
        fingerprint: fp,
      },
      new Date(now),
    );
    this.deps.metrics?.watchIssues.inc({ reason: f.reason });
    this.deps.log.debug({ reason: f.reason, status, fingerprint: fp, subject: `${s.kind}/${s.namespace ?? ""}/${s.name}` }, `${status === "FIRING" ? "reporting" : "resolving"}: ${f.title}`);
    if (term !== this.term) return;
    this.outbox.push(issue);
    this.scheduleFlush();
  }

  // ───────────────────────────── timers ─────────────────────────────

  private tick(): void {
    const term = this.term;
    if (term === undefined || !term.active) return;
    const now = this.now();
    for (const [object, due] of [...term.pending]) {
      if (due > now) continue;
      term.pending.delete(object);
      if (object.startsWith("pod:")) {
        const pod = this.findPod(term, object.slice(4));
        if (pod !== undefined) this.classifyPodNow(term, pod, pod, false);
      } else if (object.startsWith("helm:")) {
        const revisions = term.helm.get(object.slice(5));
        const latest = revisions !== undefined ? this.latestRevision(revisions) : undefined;
        if (latest !== undefined) this.classifyHelmNow(term, latest, false);
      }
    }
    const wait = this.deps.config.resolveDelay;
    for (const [uid, h] of [...term.healthySince]) {
      if (now - h.since < wait) continue;
      term.healthySince.delete(uid);
      const pod = this.findPod(term, uid);
      if (pod !== undefined && isPodHealthy(pod) && restartSum(pod) === h.restarts) this.podRecovered(term, pod);
    }
    // Incidents no longer in the ledger (forgotten past its size) with no pod in trouble: nothing left to resolve.
    for (const [fp, t] of [...term.incidents]) if (t.troubled.size === 0 && !term.ledger.has(fp)) this.untrack(term, fp, t);
  }

  // ───────────────────────────── the sink ─────────────────────────────

  private scheduleFlush(): void {
    if (this.flushQueued) return;
    this.flushQueued = true;
    setImmediate(() => {
      this.flushQueued = false;
      void this.flushNow();
    });
  }

  private flushNow(): Promise<void> {
    if (this.flushing !== undefined) return this.flushing;
    this.flushing = this.flush().finally(() => {
      this.flushing = undefined;
    });
    return this.flushing;
  }

  private async flush(): Promise<void> {
    while (this.outbox.length > 0) {
      const term = this.term;
      const batch = this.outbox.splice(0, 500);
      // The ledger (with these Issues' decisions) is in the Lease before anything is sent.
      const persisted = this.deps.leader === undefined ? true : await this.deps.leader.persist();
      if (!persisted || term === undefined || term !== this.term) {
        if (this.term === term && term !== undefined) this.outbox.unshift(...batch);
        return;
      }
      let outcome: SinkOutcome;
      try {
        outcome = await this.deps.sink(batch);
      } catch (e) {
        outcome = { kind: "unavailable", message: errorMessage(e) };
      }
      if (outcome.kind === "accepted") {
        if (this.lastSinkProblem !== undefined) this.deps.log.info("delivery takes Issues again: sending the ones kept meanwhile");
        this.lastSinkProblem = undefined;
        continue;
      }
      // Kept, in order, and offered again: a full backlog or an unwritable store must not lose them.
      this.outbox.unshift(...batch);
      if (this.lastSinkProblem !== outcome.message) this.deps.log.warn({ kept: this.outbox.length }, `delivery cannot take Issues now (${outcome.message}): keeping ${this.outbox.length} and trying again`);
      this.lastSinkProblem = outcome.message;
      const wait = this.deps.resubmitMs ?? Math.min(5_000, (outcome.retryAfterSeconds ?? 5) * 1000);
      if (!this.started) return;
      await this.resubmitPause.sleep(wait);
      if (!this.started) return;
    }
  }
}
