import { formatDuration } from "../../core/issue.js";
import type { WatchReason } from "./config.js";
import type { ContainerP, EventP, HelmP, JobP, NodeP, PodP, Ref } from "./projections.js";

/**
 * Pure classifiers: (previous projection, current projection, context) →
 * findings. A finding is an Issue candidate; whether it becomes an Issue is
 * noise control's decision (one per workload and reason per window), so
 * classifiers may report a lasting condition on every change they see.
 *
 * Two kinds of finding:
 * - conditions that hold while the object is in trouble (crash looping,
 *   image pull failing, node not ready...), reported whenever seen;
 * - transitions that happened once (an OOM kill, an eviction, a failed
 *   Job), reported when the change is seen, or at start-up only when they
 *   happened within the lookback (history is not replayed).
 */

export type FindingStatus = "FIRING" | "RESOLVED";

export interface FindingSubject {
  readonly kind: string;
  readonly name: string;
  readonly namespace?: string | undefined;
  readonly node?: string | undefined;
  readonly container?: string | undefined;
  readonly labels: Readonly<Record<string, string>>;
}

export interface Finding {
  readonly reason: WatchReason;
  readonly status: FindingStatus;
  readonly source: "kubernetes" | "helm";
  readonly subject: FindingSubject;
  /** What noise control counts one incident per: the pod's owner, not each pod. */
  readonly workload: Ref & { readonly namespace?: string | undefined };
  readonly title: string;
  readonly description?: string | undefined;
  /** When the trouble started (epoch ms). */
  readonly startsMs: number;
  /** The Kubernetes event type this amounts to (on_kubernetes_event `type`). */
  readonly eventType: "Normal" | "Warning";
  /** The object opted out (annotation kubecano.io/ignore: "true"). */
  readonly ignore: boolean;
  /**
   * Only report once the condition has held this long. `since` is when it
   * began if the object says so; otherwise the caller counts from when it
   * first saw the condition under `key`.
   */
  readonly delay?: { readonly key: string; readonly ms: number; readonly since?: number | undefined } | undefined;
  /** The pod whose trouble (or recovery) this is, for resolutions that wait for every pod. */
  readonly podUid?: string | undefined;
}

export interface ClassifySettings {
  readonly crashLoopRestarts: number;
  readonly imagePullDelay: number;
  readonly schedulingDelay: number;
  readonly helmPendingDelay: number;
  readonly unhealthy: boolean;
}

export interface ClassifyContext {
  readonly settings: ClassifySettings;
  readonly now: number;
  /** When watching started: with the lookback, what counts as history. */
  readonly startedMs: number;
  readonly lookbackMs: number;
}

/** Reasons a pod recovers from by running and being ready again. */
export const POD_RESOLVABLE: ReadonlySet<WatchReason> = new Set<WatchReason>(["CrashLoopBackOff", "OOMKilled", "ImagePullBackOff", "CreateContainerConfigError"]);

const recent = (ms: number | undefined, ctx: ClassifyContext): boolean => ms === undefined || ms >= ctx.startedMs - ctx.lookbackMs;

const iso = (ms: number): string => new Date(ms).toISOString().replace(/\.\d{3}Z$/, "Z");

function at(ms: number | undefined): string {
  return ms === undefined ? "" : ` at ${iso(ms)}`;
}

function exitText(t: NonNullable<ContainerP["lastTerm"]>): string {
  const sig = t.signal !== undefined && t.signal !== 0 ? `, signal ${t.signal}` : t.exitCode > 128 && t.exitCode < 160 ? `, signal ${t.exitCode - 128}` : "";
  return `${t.reason !== "" ? t.reason : "terminated"} (exit code ${t.exitCode}${sig})`;
}

function podSubject(p: PodP, container?: string): FindingSubject {
  return { kind: "Pod", name: p.name, namespace: p.namespace, node: p.node, ...(container !== undefined ? { container } : {}), labels: p.labels };
}

function podWorkload(p: PodP): Finding["workload"] {
  return p.owner !== undefined ? { ...p.owner, namespace: p.namespace } : { kind: "Pod", name: p.name, namespace: p.namespace };
}

export function isPodHealthy(p: PodP): boolean {
  return p.phase === "Running" && p.ready?.status === "True";
}

export interface PodVerdict {
  readonly findings: readonly Finding[];
  /** Running and ready: a candidate to resolve the workload's pod incidents (after resolveDelay). */
  readonly healthy: boolean;
}

export function classifyPod(prev: PodP | undefined, cur: PodP, ctx: ClassifyContext): PodVerdict {
  const s = ctx.settings;
  const findings: Finding[] = [];
  const workload = podWorkload(cur);
  const who = `${cur.namespace}/${cur.name}`;
  const base = { source: "kubernetes" as const, workload, eventType: "Warning" as const, ignore: cur.ignore, podUid: cur.uid };
  const notReadySince = cur.ready?.status === "False" ? cur.ready.sinceMs : undefined;

  for (const c of cur.containers) {
    const before = prev?.containers.find((x) => x.name === c.name && x.init === c.init);
    const last = c.lastTerm;
    const crashLooping = c.waiting?.reason === "CrashLoopBackOff" && c.restarts >= s.crashLoopRestarts;
    const oom = last?.reason === "OOMKilled";
    // A new OOM kill: a termination not seen before (another finish time, more restarts).
    const newOom =
      oom &&
      (prev === undefined || before === undefined
        ? recent(last.finishedMs, ctx)
        : before.lastTerm?.finishedMs !== last.finishedMs || before.restarts < c.restarts || before.lastTerm?.reason !== "OOMKilled");
    if (crashLooping || newOom) {
      // A crash loop caused by OOM kills is one incident with the OOM kill: reported as OOMKilled.
      const reason: WatchReason = oom ? "OOMKilled" : "CrashLoopBackOff";
      const title = crashLooping
        ? oom
          ? `Pod ${who} is crash looping: container ${c.name} was OOMKilled`
          : `Pod ${who} is crash looping`
        : `Container ${c.name} of pod ${who} was OOMKilled`;
      const lines = [
        `Container ${c.name}${c.init ? " (init)" : ""} restarted ${c.restarts} time${c.restarts === 1 ? "" : "s"}${last !== undefined ? `; the last instance ended ${exitText(last)}${at(last.finishedMs)}` : ""}.`,
        ...(oom ? ["The kernel's OOM killer stopped it: it used more memory than its limit allows, or the node ran out of memory."] : []),
        ...(crashLooping && c.waiting?.message !== undefined ? [c.waiting.message] : []),
        ...(last?.message !== undefined ? [last.message] : []),
      ];
      findings.push({
        ...base,
        reason,
        status: "FIRING",
        subject: podSubject(cur, c.name),
        title,
        description: lines.join("\n"),
        startsMs: (newOom && !crashLooping ? last?.finishedMs : undefined) ?? notReadySince ?? last?.finishedMs ?? ctx.now,
      });
      continue;
    }
    const waiting = c.waiting?.reason;
    if (waiting === "ImagePullBackOff" || waiting === "ErrImagePull") {
      findings.push({
        ...base,
        reason: "ImagePullBackOff",
        status: "FIRING",
        subject: podSubject(cur, c.name),
        title: `Pod ${who} cannot pull the image of container ${c.name}`,
        description: [`${waiting}: the image cannot be pulled.`, ...(c.waiting?.message !== undefined ? [c.waiting.message] : [])].join("\n"),
        startsMs: notReadySince ?? cur.createdMs,
        delay: { key: `${cur.uid}/${c.name}/ImagePullBackOff`, ms: s.imagePullDelay },
      });
    } else if (waiting === "CreateContainerConfigError") {
      findings.push({
        ...base,
        reason: "CreateContainerConfigError",
        status: "FIRING",
        subject: podSubject(cur, c.name),
        title: `Pod ${who} cannot start container ${c.name}: its configuration is broken`,
        description: c.waiting?.message ?? "CreateContainerConfigError: a referenced ConfigMap, Secret or key is missing.",
        startsMs: notReadySince ?? cur.createdMs,
      });
    }
  }

  if (cur.reason === "Evicted" && prev?.reason !== "Evicted" && (prev !== undefined || recent(cur.lastTransitionMs ?? cur.createdMs, ctx))) {
    findings.push({
      ...base,
      reason: "Evicted",
      status: "FIRING",
      subject: podSubject(cur),
      title: `Pod ${who} was evicted${cur.node !== undefined ? ` from node ${cur.node}` : ""}`,
      description: cur.message ?? "The kubelet evicted the pod.",
      startsMs: cur.lastTransitionMs ?? ctx.now,
    });
  }

  const sched = cur.scheduled;
  if (cur.phase === "Pending" && sched?.status === "False" && (sched.reason === undefined || sched.reason === "Unschedulable")) {
    const since = sched.sinceMs ?? cur.createdMs;
    findings.push({
      ...base,
      reason: "FailedScheduling",
      status: "FIRING",
      subject: podSubject(cur),
      title: `Pod ${who} cannot be scheduled`,
      description: [`Pending and unscheduled for ${formatDuration(ctx.now - since)}.`, ...(sched.message !== undefined ? [sched.message] : [])].join("\n"),
      startsMs: since,
      delay: { key: `${cur.uid}/FailedScheduling`, ms: s.schedulingDelay, since },
    });
  }

  return { findings, healthy: isPodHealthy(cur) };
}

/** A ReplicaSet's Deployment from the name alone (`<deployment>-<pod-template-hash>`), for events about ReplicaSets. */
export function replicaSetWorkload(name: string): Ref {
  const m = /^(.+)-[bcdfghjklmnpqrstvwxz2456789]{6,10}$/.exec(name);
  return m !== null ? { kind: "Deployment", name: m[1]! } : { kind: "ReplicaSet", name };
}

/**
 * Events that say what object state does not: a volume that cannot be
 * mounted, a quota that blocks pod creation, failing probes (off by
 * default). Pod-state reasons (BackOff, Failed, Evicted...) are left to the
 * pod classifier, so they are not reported twice. `pod` is the involved pod
 * when it is known, to name its workload.
 */
export function classifyEvent(e: EventP, ctx: ClassifyContext, pod: PodP | undefined): Finding | undefined {
  if (e.type !== "Warning") return undefined;
  let reason: WatchReason;
  if (e.reason === "FailedMount" || e.reason === "FailedAttachVolume") reason = "FailedMount";
  else if (e.reason === "FailedCreate" && /exceeded quota/i.test(e.message)) reason = "QuotaExceeded";
  else if (e.reason === "Unhealthy" && ctx.settings.unhealthy) reason = "Unhealthy";
  else return undefined;
  // History: an event last seen before start-up minus the lookback is not news.
  if (!recent(e.lastMs, ctx)) return undefined;
  const inv = e.involved;
  const namespace = inv.namespace ?? e.namespace;
  const workload: Finding["workload"] =
    pod !== undefined
      ? podWorkload(pod)
      : inv.kind === "ReplicaSet"
        ? { ...replicaSetWorkload(inv.name), namespace }
        : { kind: inv.kind, name: inv.name, namespace };
  const container = /spec\.(?:init)?[cC]ontainers\{(.+)\}/.exec(inv.fieldPath ?? "")?.[1];
  const who = `${inv.kind.toLowerCase()} ${namespace}/${inv.name}`;
  const titles: Record<string, string> = {
    FailedMount: `Pod ${namespace}/${inv.name} cannot mount a volume`,
    QuotaExceeded: `${inv.kind} ${namespace}/${inv.name} cannot create pods: a resource quota is exceeded`,
    Unhealthy: `Pod ${namespace}/${inv.name} fails its ${/liveness/i.test(e.message) ? "liveness" : /startup/i.test(e.message) ? "startup" : "readiness"} probe${container !== undefined ? ` (container ${container})` : ""}`,
  };
  return {
    reason,
    status: "FIRING",
    source: "kubernetes",
    subject: {
      kind: inv.kind,
      name: inv.name,
      namespace,
      node: pod?.node ?? e.host,
      ...(container !== undefined ? { container } : {}),
      labels: pod?.labels ?? {},
    },
    workload,
    title: titles[reason] ?? `${e.reason} on ${who}`,
    description: `${e.reason}${e.count > 1 ? ` (${e.count} times)` : ""}: ${e.message}`,
    startsMs: e.firstMs ?? e.lastMs ?? ctx.now,
    eventType: "Warning",
    ignore: pod?.ignore ?? false,
    ...(pod !== undefined ? { podUid: pod.uid } : {}),
  };
}

export function classifyJob(prev: JobP | undefined, cur: JobP, ctx: ClassifyContext): Finding | undefined {
  const f = cur.failed;
  if (f === undefined || prev?.failed !== undefined) return undefined;
  if (prev === undefined && !recent(f.sinceMs, ctx)) return undefined;
  const who = `${cur.namespace}/${cur.name}`;
  return {
    reason: "JobFailed",
    status: "FIRING",
    source: "kubernetes",
    subject: { kind: "Job", name: cur.name, namespace: cur.namespace, labels: cur.labels },
    workload: { ...(cur.owner ?? { kind: "Job", name: cur.name }), namespace: cur.namespace },
    title: `Job ${who} failed${cur.owner !== undefined ? ` (CronJob ${cur.owner.name})` : ""}`,
    description: [`${f.reason ?? "Failed"}${f.message !== undefined ? `: ${f.message}` : ""}`, `${cur.failedPods} failed pod${cur.failedPods === 1 ? "" : "s"}.`].join("\n"),
    startsMs: cur.startMs ?? f.sinceMs ?? ctx.now,
    eventType: "Warning",
    ignore: cur.ignore,
  };
}

export function classifyNode(cur: NodeP, ctx: ClassifyContext): Finding | undefined {
  const r = cur.ready;
  if (r === undefined) return undefined;
  const base = {
    reason: "NodeNotReady" as const,
    source: "kubernetes" as const,
    subject: { kind: "Node", name: cur.name, node: cur.name, labels: cur.labels },
    workload: { kind: "Node", name: cur.name },
    startsMs: r.sinceMs ?? ctx.now,
    ignore: cur.ignore,
  };
  if (r.status === "True") {
    return { ...base, status: "RESOLVED", eventType: "Normal", title: `Node ${cur.name} is ready again`, description: r.sinceMs !== undefined ? `Ready since ${iso(r.sinceMs)}.` : "Ready." };
  }
  const lines = [
    `Ready is ${r.status}${r.reason !== undefined ? ` (${r.reason})` : ""}${r.sinceMs !== undefined ? ` since ${iso(r.sinceMs)}` : ""}.`,
    ...(r.message !== undefined ? [r.message] : []),
    ...(cur.pressures.length > 0 ? [`Pressure: ${cur.pressures.join(", ")}.`] : []),
    ...(cur.unschedulable ? ["The node is cordoned."] : []),
  ];
  return { ...base, status: "FIRING", eventType: "Warning", title: `Node ${cur.name} is not ready${r.status === "Unknown" ? " (the kubelet stopped reporting)" : ""}`, description: lines.join("\n") };
}

/**
 * The newest revision of a Helm release decides its state: `failed` is a
 * failed release; a lingering pending-install/upgrade/rollback is an
 * interrupted one (reported after helmPendingDelay); `deployed` resolves
 * both.
 */
export function classifyHelm(latest: HelmP, ctx: ClassifyContext): Finding[] {
  const who = `${latest.namespace}/${latest.release}`;
  const base = {
    source: "helm" as const,
    subject: {
      kind: "HelmRelease",
      name: latest.release,
      namespace: latest.namespace,
      labels: {
        release: latest.release,
        revision: String(latest.revision),
        status: latest.status,
        ...(latest.chart !== undefined ? { chart: latest.chart } : {}),
        ...(latest.chartVersion !== undefined ? { chart_version: latest.chartVersion } : {}),
        ...(latest.appVersion !== undefined ? { app_version: latest.appVersion } : {}),
      },
    },
    workload: { kind: "HelmRelease", name: latest.release, namespace: latest.namespace },
    ignore: latest.ignore,
  };
  const chart = latest.chart !== undefined ? `chart ${latest.chart}${latest.chartVersion !== undefined ? `-${latest.chartVersion}` : ""}` : "";
  const description = [`Revision ${latest.revision}${chart !== "" ? `, ${chart}` : ""}: ${latest.status}.`, ...(latest.description !== undefined ? [latest.description] : [])].join("\n");
  const startsMs = latest.lastDeployedMs ?? ctx.now;
  if (latest.status === "failed") {
    return [{ ...base, reason: "HelmReleaseFailed", status: "FIRING", eventType: "Warning", title: `Helm release ${who} failed (revision ${latest.revision})`, description, startsMs }];
  }
  if (latest.status.startsWith("pending-")) {
    return [
      {
        ...base,
        reason: "HelmReleasePending",
        status: "FIRING",
        eventType: "Warning",
        title: `Helm release ${who} is stuck in ${latest.status} (revision ${latest.revision})`,
        description,
        startsMs,
        delay: { key: `${latest.uid}/HelmReleasePending`, ms: ctx.settings.helmPendingDelay, since: latest.lastDeployedMs },
      },
    ];
  }
  if (latest.status === "deployed") {
    const ok = { ...base, status: "RESOLVED" as const, eventType: "Normal" as const, title: `Helm release ${who} deployed (revision ${latest.revision})`, description, startsMs };
    return [
      { ...ok, reason: "HelmReleaseFailed" },
      { ...ok, reason: "HelmReleasePending" },
    ];
  }
  return [];
}
