import type { CoreV1Event, V1ContainerStatus, V1OwnerReference, V1Pod } from "@kubernetes/client-node";
import type { Issue } from "../../core/issue.js";
import { formatDuration } from "../../core/issue.js";
import type { KubeReader } from "../../kube/client.js";
import { ActionError, type ActionContext } from "../types.js";

/**
 * Helpers for the actions that read the cluster. Kubernetes objects come
 * from client-node, whose lists give Date objects and whose watches give
 * strings: every timestamp goes through `toMs`.
 */

export function requireKube(ctx: ActionContext): KubeReader {
  if (ctx.kube === undefined) throw new ActionError("no cluster access");
  return ctx.kube;
}

/** The pod an Issue is about: its subject, or the `pod` label when the subject is something else. */
export function podRef(issue: Issue): { namespace: string; name: string } | undefined {
  const ns = issue.subject.namespace ?? issue.subject.labels["namespace"];
  if (ns === undefined) return undefined;
  if (issue.subject.kind === "Pod") return { namespace: ns, name: issue.subject.name };
  const pod = issue.subject.labels["pod"];
  return pod !== undefined && pod !== "" ? { namespace: ns, name: pod } : undefined;
}

export async function requirePod(ctx: ActionContext): Promise<V1Pod> {
  const ref = podRef(ctx.issue);
  if (ref === undefined) throw new ActionError(`this Issue is not about a pod (subject: ${ctx.issue.subject.kind || "none"})`);
  const pod = await requireKube(ctx).getPod(ref.namespace, ref.name);
  if (pod === undefined) throw new ActionError(`pod ${ref.namespace}/${ref.name} no longer exists`);
  return pod;
}

export function allStatuses(pod: V1Pod): V1ContainerStatus[] {
  return [...(pod.status?.initContainerStatuses ?? []), ...(pod.status?.containerStatuses ?? [])];
}

/**
 * The container to look at: the one named (param, then the `container`
 * label), else the one in trouble (crash-looping, last terminated abnormally,
 * most restarts), else the only one.
 */
export function chooseContainer(pod: V1Pod, named: string | undefined): string | undefined {
  const names = [...(pod.spec?.initContainers ?? []), ...(pod.spec?.containers ?? [])].map((c) => c.name);
  if (named !== undefined && names.includes(named)) return named;
  const statuses = allStatuses(pod);
  const troubled = statuses
    .map((s) => ({ s, score: troubleScore(s) }))
    .filter((x) => x.score > 0)
    .sort((a, b) => b.score - a.score);
  if (troubled[0] !== undefined) return troubled[0].s.name;
  const main = pod.spec?.containers ?? [];
  if (main.length === 1) return main[0]!.name;
  return undefined;
}

function troubleScore(s: V1ContainerStatus): number {
  let score = 0;
  const waiting = s.state?.waiting?.reason;
  if (waiting === "CrashLoopBackOff") score += 1000;
  else if (waiting !== undefined && waiting !== "ContainerCreating" && waiting !== "PodInitializing") score += 500;
  const term = s.lastState?.terminated ?? s.state?.terminated;
  if (term !== undefined && (term.exitCode !== 0 || term.reason === "OOMKilled")) score += 300;
  score += Math.min(s.restartCount ?? 0, 200);
  return score;
}

export function hasTerminated(pod: V1Pod, container: string): boolean {
  const s = allStatuses(pod).find((c) => c.name === container);
  return s?.lastState?.terminated !== undefined || (s?.restartCount ?? 0) > 0;
}

/** Epoch ms from a Date, an RFC 3339 string or undefined. */
export function toMs(t: Date | string | undefined | null): number | undefined {
  if (t === undefined || t === null) return undefined;
  const ms = t instanceof Date ? t.getTime() : Date.parse(t);
  return Number.isFinite(ms) ? ms : undefined;
}

export function ago(t: Date | string | undefined | null, now: Date): string {
  const ms = toMs(t);
  return ms === undefined ? "-" : `${formatDuration(now.getTime() - ms)} ago`;
}

/** When an event last happened: lastTimestamp ?? series.lastObservedTime ?? eventTime ?? firstTimestamp. */
export function eventLastSeen(e: CoreV1Event): number | undefined {
  return toMs(e.lastTimestamp) ?? toMs(e.series?.lastObservedTime) ?? toMs(e.eventTime) ?? toMs(e.firstTimestamp) ?? toMs(e.metadata?.creationTimestamp);
}

export function eventCount(e: CoreV1Event): number {
  return e.series?.count ?? e.count ?? 1;
}

export function controllerOf(refs: readonly V1OwnerReference[] | undefined): V1OwnerReference | undefined {
  return refs?.find((r) => r.controller === true) ?? refs?.[0];
}

/** "cpu 100m, memory 128Mi" */
export function resourcesText(r: Record<string, string> | undefined): string {
  if (r === undefined) return "-";
  const parts = Object.entries(r).map(([k, v]) => `${k} ${v}`);
  return parts.length === 0 ? "-" : parts.join(", ");
}

/** Short one-line text for table cells. */
export function cell(s: string | number | undefined | null, max = 120): string {
  if (s === undefined || s === null || s === "") return "-";
  const t = String(s).replace(/\s+/g, " ").trim();
  return t.length > max ? `${t.slice(0, max - 1)}…` : t;
}

const SIGNALS: Record<number, string> = { 1: "SIGHUP", 2: "SIGINT", 3: "SIGQUIT", 6: "SIGABRT", 9: "SIGKILL", 11: "SIGSEGV", 13: "SIGPIPE", 15: "SIGTERM" };

/** "137 (SIGKILL)": exit codes above 128 are 128 + the signal that ended the process. */
export function exitCodeText(code: number | undefined, signal: number | undefined): string {
  if (code === undefined) return "-";
  const sig = signal ?? (code > 128 && code < 160 ? code - 128 : undefined);
  return sig !== undefined && SIGNALS[sig] !== undefined ? `${code} (${SIGNALS[sig]})` : String(code);
}
