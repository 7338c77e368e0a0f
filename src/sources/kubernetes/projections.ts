import { gunzipSync } from "node:zlib";
import type { Tracked } from "./watch.js";

/**
 * Per kind, only what the classifiers need: what a watcher keeps of every
 * object for its whole life, so 10,000 pods stay a few MB. Inputs are the
 * API's JSON (timestamps are strings; Dates are accepted too). Projections
 * never throw: a malformed object projects to undefined and is skipped.
 */

export const IGNORE_ANNOTATION = "kubecano.io/ignore";

export interface Ref {
  readonly kind: string;
  readonly name: string;
}

export interface Termination {
  readonly reason: string;
  readonly exitCode: number;
  readonly signal?: number | undefined;
  readonly finishedMs?: number | undefined;
  readonly message?: string | undefined;
}

export interface ContainerP {
  readonly name: string;
  readonly init: boolean;
  readonly ready: boolean;
  readonly restarts: number;
  readonly running: boolean;
  readonly waiting?: { readonly reason: string; readonly message?: string | undefined } | undefined;
  /** How the previous instance ended (lastState.terminated). */
  readonly lastTerm?: Termination | undefined;
}

export interface ConditionP {
  readonly status: string;
  readonly reason?: string | undefined;
  readonly message?: string | undefined;
  readonly sinceMs?: number | undefined;
}

export interface PodP extends Tracked {
  readonly namespace: string;
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly ignore: boolean;
  /** The workload the pod belongs to (ReplicaSet resolved to its Deployment), undefined for a bare pod. */
  readonly owner?: Ref | undefined;
  readonly node?: string | undefined;
  readonly phase: string;
  readonly reason?: string | undefined;
  readonly message?: string | undefined;
  readonly createdMs: number;
  readonly ready?: ConditionP | undefined;
  readonly scheduled?: ConditionP | undefined;
  /** The latest condition transition: when an evicted pod was evicted, as near as the status tells. */
  readonly lastTransitionMs?: number | undefined;
  readonly containers: readonly ContainerP[];
}

export interface EventP extends Tracked {
  readonly namespace: string;
  readonly name: string;
  readonly involved: { readonly kind: string; readonly name: string; readonly namespace?: string | undefined; readonly uid?: string | undefined; readonly fieldPath?: string | undefined };
  readonly reason: string;
  readonly message: string;
  readonly type: string;
  readonly count: number;
  readonly firstMs?: number | undefined;
  /** lastTimestamp ?? series.lastObservedTime ?? eventTime. */
  readonly lastMs?: number | undefined;
  readonly component?: string | undefined;
  readonly host?: string | undefined;
}


export interface JobP extends Tracked {
  readonly namespace: string;
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly ignore: boolean;
  /** The CronJob that created it. */
  readonly owner?: Ref | undefined;
  readonly failed?: ConditionP | undefined;
  readonly complete: boolean;
  readonly failedPods: number;
  readonly startMs?: number | undefined;
}

export interface NodeP extends Tracked {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly ignore: boolean;
  readonly ready?: ConditionP | undefined;
  /** MemoryPressure, DiskPressure, PIDPressure, NetworkUnavailable when True. */
  readonly pressures: readonly string[];
  readonly unschedulable: boolean;
}

export interface HelmP extends Tracked {
  readonly namespace: string;
  readonly secret: string;
  readonly release: string;
  readonly revision: number;
  readonly status: string;
  readonly chart?: string | undefined;
  readonly chartVersion?: string | undefined;
  readonly appVersion?: string | undefined;
  readonly description?: string | undefined;
  readonly firstDeployedMs?: number | undefined;
  readonly lastDeployedMs?: number | undefined;
  readonly ignore: boolean;
}

// ───────────────────────────── helpers ─────────────────────────────

type Obj = Record<string, unknown>;
const obj = (v: unknown): Obj | undefined => (v !== null && typeof v === "object" && !Array.isArray(v) ? (v as Obj) : undefined);
const str = (v: unknown): string | undefined => (typeof v === "string" ? v : undefined);
const num = (v: unknown): number | undefined => (typeof v === "number" && Number.isFinite(v) ? v : undefined);
const arr = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
const MESSAGE_CHARS = 1_000;
const short = (v: unknown): string | undefined => {
  const s = str(v);
  if (s === undefined || s === "") return undefined;
  return s.length > MESSAGE_CHARS ? `${s.slice(0, MESSAGE_CHARS - 1)}…` : s;
};

/** Epoch ms of an RFC 3339 string or a Date. */
export function timeMs(v: unknown): number | undefined {
  if (typeof v === "string") {
    const ms = Date.parse(v);
    return Number.isFinite(ms) ? ms : undefined;
  }
  if (v instanceof Date) {
    const ms = v.getTime();
    return Number.isFinite(ms) ? ms : undefined;
  }
  return undefined;
}

function labelsOf(meta: Obj): Readonly<Record<string, string>> {
  const l = obj(meta["labels"]);
  if (l === undefined) return EMPTY;
  for (const v of Object.values(l)) if (typeof v !== "string") return Object.fromEntries(Object.entries(l).filter((e): e is [string, string] => typeof e[1] === "string"));
  return l as Record<string, string>;
}
const EMPTY: Readonly<Record<string, string>> = Object.freeze({});

function ignored(meta: Obj): boolean {
  const a = obj(meta["annotations"]);
  return a !== undefined && str(a[IGNORE_ANNOTATION])?.toLowerCase() === "true";
}

function tracked(o: unknown): { meta: Obj; uid: string; rv: string } | undefined {
  const meta = obj(obj(o)?.["metadata"]);
  if (meta === undefined) return undefined;
  const uid = str(meta["uid"]);
  const name = str(meta["name"]);
  if (uid === undefined || uid === "" || name === undefined) return undefined;
  return { meta, uid, rv: str(meta["resourceVersion"]) ?? "" };
}

function condition(conds: unknown, type: string): ConditionP | undefined {
  for (const c of arr(conds)) {
    const o = obj(c);
    if (o === undefined || o["type"] !== type) continue;
    return { status: str(o["status"]) ?? "Unknown", reason: short(o["reason"]), message: short(o["message"]), sinceMs: timeMs(o["lastTransitionTime"]) };
  }
  return undefined;
}

function controllerRef(meta: Obj): Ref | undefined {
  const refs = arr(meta["ownerReferences"]).map(obj).filter((r): r is Obj => r !== undefined);
  const r = refs.find((x) => x["controller"] === true) ?? refs[0];
  if (r === undefined) return undefined;
  const kind = str(r["kind"]);
  const name = str(r["name"]);
  return kind !== undefined && name !== undefined ? { kind, name } : undefined;
}

/**
 * The workload a pod belongs to. A ReplicaSet made by a Deployment is named
 * `<deployment>-<pod-template-hash>` and its pods carry that hash as a label,
 * so the Deployment is known without reading the ReplicaSet.
 */
export function workloadOf(owner: Ref | undefined, labels: Readonly<Record<string, string>>): Ref | undefined {
  if (owner === undefined) return undefined;
  if (owner.kind === "ReplicaSet") {
    const hash = labels["pod-template-hash"];
    if (hash !== undefined && hash !== "" && owner.name.endsWith(`-${hash}`) && owner.name.length > hash.length + 1) {
      return { kind: "Deployment", name: owner.name.slice(0, owner.name.length - hash.length - 1) };
    }
  }
  return owner;
}

// ───────────────────────────── projections ─────────────────────────────

function container(s: unknown, init: boolean): ContainerP | undefined {
  const o = obj(s);
  const name = str(o?.["name"]);
  if (o === undefined || name === undefined) return undefined;
  const state = obj(o["state"]);
  const waiting = obj(state?.["waiting"]);
  const last = obj(obj(o["lastState"])?.["terminated"]);
  const c: ContainerP = {
    name,
    init,
    ready: o["ready"] === true,
    restarts: num(o["restartCount"]) ?? 0,
    running: obj(state?.["running"]) !== undefined,
    ...(waiting !== undefined ? { waiting: { reason: str(waiting["reason"]) ?? "", message: short(waiting["message"]) } } : {}),
    ...(last !== undefined
      ? {
          lastTerm: {
            reason: str(last["reason"]) ?? "",
            exitCode: num(last["exitCode"]) ?? 0,
            signal: num(last["signal"]),
            finishedMs: timeMs(last["finishedAt"]),
            message: short(last["message"]),
          },
        }
      : {}),
  };
  return c;
}

export function projectPod(raw: unknown): PodP | undefined {
  const t = tracked(raw);
  if (t === undefined) return undefined;
  const o = raw as Obj;
  const spec = obj(o["spec"]);
  const status = obj(o["status"]) ?? {};
  const labels = labelsOf(t.meta);
  const containers: ContainerP[] = [];
  for (const s of arr(status["initContainerStatuses"])) {
    const c = container(s, true);
    if (c !== undefined) containers.push(c);
  }
  for (const s of arr(status["containerStatuses"])) {
    const c = container(s, false);
    if (c !== undefined) containers.push(c);
  }
  let lastTransitionMs: number | undefined;
  for (const c of arr(status["conditions"])) {
    const ms = timeMs(obj(c)?.["lastTransitionTime"]);
    if (ms !== undefined && (lastTransitionMs === undefined || ms > lastTransitionMs)) lastTransitionMs = ms;
  }
  return {
    uid: t.uid,
    rv: t.rv,
    namespace: str(t.meta["namespace"]) ?? "default",
    name: str(t.meta["name"]) ?? "",
    labels,
    ignore: ignored(t.meta),
    owner: workloadOf(controllerRef(t.meta), labels),
    node: str(spec?.["nodeName"]),
    phase: str(status["phase"]) ?? "Unknown",
    reason: short(status["reason"]),
    message: short(status["message"]),
    createdMs: timeMs(t.meta["creationTimestamp"]) ?? 0,
    ready: condition(status["conditions"], "Ready"),
    scheduled: condition(status["conditions"], "PodScheduled"),
    lastTransitionMs,
    containers,
  };
}

export function projectEvent(raw: unknown): EventP | undefined {
  const t = tracked(raw);
  if (t === undefined) return undefined;
  const o = raw as Obj;
  const inv = obj(o["involvedObject"]) ?? obj(o["regarding"]);
  if (inv === undefined) return undefined;
  const series = obj(o["series"]);
  const source = obj(o["source"]);
  const firstMs = timeMs(o["firstTimestamp"]) ?? timeMs(o["eventTime"]);
  return {
    uid: t.uid,
    rv: t.rv,
    namespace: str(t.meta["namespace"]) ?? "default",
    name: str(t.meta["name"]) ?? "",
    involved: {
      kind: str(inv["kind"]) ?? "",
      name: str(inv["name"]) ?? "",
      namespace: str(inv["namespace"]),
      uid: str(inv["uid"]),
      fieldPath: str(inv["fieldPath"]),
    },
    reason: str(o["reason"]) ?? "",
    message: short(o["message"]) ?? short(o["note"]) ?? "",
    type: str(o["type"]) ?? "Normal",
    count: num(o["count"]) ?? num(series?.["count"]) ?? num(o["deprecatedCount"]) ?? 1,
    firstMs,
    lastMs: timeMs(o["lastTimestamp"]) ?? timeMs(series?.["lastObservedTime"]) ?? timeMs(o["eventTime"]) ?? firstMs,
    component: str(source?.["component"]) ?? str(o["reportingComponent"]),
    host: str(source?.["host"]),
  };
}

/** An event between changes: only its resourceVersion is needed (50,000 of them are a lot of small objects). */
export const keepVersion = (p: Tracked): string => p.rv;

export function projectJob(raw: unknown): JobP | undefined {
  const t = tracked(raw);
  if (t === undefined) return undefined;
  const status = obj((raw as Obj)["status"]) ?? {};
  const failed = condition(status["conditions"], "Failed");
  const complete = condition(status["conditions"], "Complete");
  const owner = controllerRef(t.meta);
  return {
    uid: t.uid,
    rv: t.rv,
    namespace: str(t.meta["namespace"]) ?? "default",
    name: str(t.meta["name"]) ?? "",
    labels: labelsOf(t.meta),
    ignore: ignored(t.meta),
    owner: owner?.kind === "CronJob" ? owner : undefined,
    failed: failed?.status === "True" ? failed : undefined,
    complete: complete?.status === "True",
    failedPods: num(status["failed"]) ?? 0,
    startMs: timeMs(status["startTime"]),
  };
}

const PRESSURES = ["MemoryPressure", "DiskPressure", "PIDPressure", "NetworkUnavailable"];

export function projectNode(raw: unknown): NodeP | undefined {
  const t = tracked(raw);
  if (t === undefined) return undefined;
  const o = raw as Obj;
  const conds = obj(o["status"])?.["conditions"];
  const pressures: string[] = [];
  for (const c of arr(conds)) {
    const co = obj(c);
    const type = str(co?.["type"]);
    if (type !== undefined && PRESSURES.includes(type) && co?.["status"] === "True") pressures.push(type);
  }
  return {
    uid: t.uid,
    rv: t.rv,
    name: str(t.meta["name"]) ?? "",
    labels: labelsOf(t.meta),
    ignore: ignored(t.meta),
    ready: condition(conds, "Ready"),
    pressures,
    unschedulable: obj(o["spec"])?.["unschedulable"] === true,
  };
}

/**
 * A Helm 3 release Secret (type helm.sh/release.v1, label owner=helm).
 * `data.release` is base64 (the Secret's encoding) of Helm's own base64 of
 * gzipped JSON (older Helm wrote plain JSON there). An undecodable release
 * still projects from the Secret's labels (name, status, version).
 */
export function projectHelmSecret(raw: unknown): HelmP | undefined {
  const t = tracked(raw);
  if (t === undefined) return undefined;
  const o = raw as Obj;
  const labels = labelsOf(t.meta);
  if (labels["owner"] !== "helm") return undefined;
  const release = decodeRelease(str(obj(o["data"])?.["release"]));
  const info = obj(release?.["info"]);
  const chartMeta = obj(obj(release?.["chart"])?.["metadata"]);
  const revision = num(release?.["version"]) ?? Number(labels["version"] ?? NaN);
  const name = str(release?.["name"]) ?? labels["name"];
  if (name === undefined || !Number.isFinite(revision)) return undefined;
  return {
    uid: t.uid,
    rv: t.rv,
    namespace: str(t.meta["namespace"]) ?? str(release?.["namespace"]) ?? "default",
    secret: str(t.meta["name"]) ?? "",
    release: name,
    revision,
    status: str(info?.["status"]) ?? labels["status"] ?? "unknown",
    chart: str(chartMeta?.["name"]),
    chartVersion: str(chartMeta?.["version"]),
    appVersion: str(chartMeta?.["appVersion"]),
    description: short(info?.["description"]),
    firstDeployedMs: timeMs(info?.["first_deployed"]),
    lastDeployedMs: timeMs(info?.["last_deployed"]) ?? (labels["modifiedAt"] !== undefined ? Number(labels["modifiedAt"]) * 1000 : undefined),
    ignore: ignored(t.meta),
  };
}

function decodeRelease(data: string | undefined): Obj | undefined {
  if (data === undefined) return undefined;
  try {
    const helmText = Buffer.from(data, "base64").toString("latin1");
    let bytes = Buffer.from(helmText, "base64");
    if (bytes[0] === 0x1f && bytes[1] === 0x8b) bytes = gunzipSync(bytes, { maxOutputLength: 64 * 1024 * 1024 });
    return obj(JSON.parse(bytes.toString("utf8")));
  } catch {
    return undefined;
  }
}
