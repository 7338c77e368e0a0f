import type { V1Condition, V1DeploymentCondition, V1JobCondition, V1ObjectMeta } from "@kubernetes/client-node";
import { z } from "zod";
import type { Block } from "../../core/blocks.js";
import type { KubeReader } from "../../kube/client.js";
import { ActionError, defineAction } from "../types.js";
import { ago, cell, controllerOf, requireKube } from "./kube-shared.js";

interface OwnerStep {
  readonly kind: string;
  readonly name: string;
  readonly status: string;
  readonly conditions: readonly (V1Condition | V1DeploymentCondition | V1JobCondition)[];
}

/** The workload chain above an object: Pod → ReplicaSet → Deployment, Pod → Job → CronJob, ... */
export async function ownerChain(kube: KubeReader, namespace: string, kind: string, name: string, maxDepth = 4): Promise<OwnerStep[]> {
  const chain: OwnerStep[] = [];
  let cur: { kind: string; name: string } | undefined = { kind, name };
  for (let depth = 0; cur !== undefined && depth <= maxDepth; depth++) {
    const found = await describe(kube, namespace, cur.kind, cur.name);
    if (found === undefined) {
      chain.push({ kind: cur.kind, name: cur.name, status: "not found (deleted?)", conditions: [] });
      break;
    }
    chain.push(found.step);
    const owner = controllerOf(found.meta.ownerReferences);
    cur = owner !== undefined ? { kind: owner.kind, name: owner.name } : undefined;
  }
  return chain;
}

async function describe(kube: KubeReader, ns: string, kind: string, name: string): Promise<{ step: OwnerStep; meta: V1ObjectMeta } | undefined> {
  switch (kind) {
    case "Pod": {
      const o = await kube.getPod(ns, name);
      if (o === undefined) return undefined;
      const cs = o.status?.containerStatuses ?? [];
      return { meta: o.metadata ?? {}, step: { kind, name, status: `${o.status?.phase ?? "Unknown"}, ${cs.filter((c) => c.ready).length}/${cs.length} containers ready`, conditions: [] } };
    }
    case "ReplicaSet": {
      const o = await kube.getReplicaSet(ns, name);
      if (o === undefined) return undefined;
      const s = o.status;
      return { meta: o.metadata ?? {}, step: { kind, name, status: `${s?.readyReplicas ?? 0}/${o.spec?.replicas ?? 0} ready${revision(o.metadata)}`, conditions: s?.conditions ?? [] } };
    }
    case "Deployment": {
      const o = await kube.getDeployment(ns, name);
      if (o === undefined) return undefined;
      const s = o.status;
      return {
        meta: o.metadata ?? {},
        step: { kind, name, status: `${s?.readyReplicas ?? 0}/${o.spec?.replicas ?? 1} ready, ${s?.updatedReplicas ?? 0} updated, ${s?.availableReplicas ?? 0} available${revision(o.metadata)}`, conditions: s?.conditions ?? [] },
      };
    }
    case "StatefulSet": {
      const o = await kube.getStatefulSet(ns, name);
      if (o === undefined) return undefined;
      const s = o.status;
      return { meta: o.metadata ?? {}, step: { kind, name, status: `${s?.readyReplicas ?? 0}/${o.spec?.replicas ?? 1} ready, ${s?.updatedReplicas ?? 0} updated, revision ${s?.updateRevision ?? "?"}`, conditions: s?.conditions ?? [] } };
    }
    case "DaemonSet": {
      const o = await kube.getDaemonSet(ns, name);
      if (o === undefined) return undefined;
      const s = o.status;
      return {
        meta: o.metadata ?? {},
        step: { kind, name, status: `${s?.numberReady ?? 0}/${s?.desiredNumberScheduled ?? 0} ready, ${s?.updatedNumberScheduled ?? 0} updated, ${s?.numberUnavailable ?? 0} unavailable`, conditions: s?.conditions ?? [] },
      };
    }
    case "Job": {
      const o = await kube.getJob(ns, name);
      if (o === undefined) return undefined;
      const s = o.status;
      return { meta: o.metadata ?? {}, step: { kind, name, status: `${s?.active ?? 0} active, ${s?.succeeded ?? 0} succeeded, ${s?.failed ?? 0} failed (backoff limit ${o.spec?.backoffLimit ?? 6})`, conditions: s?.conditions ?? [] } };
    }
    case "CronJob": {
      const o = await kube.getCronJob(ns, name);
      if (o === undefined) return undefined;
      return { meta: o.metadata ?? {}, step: { kind, name, status: `schedule ${o.spec?.schedule ?? "?"}${o.spec?.suspend === true ? ", suspended" : ""}, last scheduled ${o.status?.lastScheduleTime !== undefined ? new Date(o.status.lastScheduleTime).toISOString() : "never"}`, conditions: [] } };
    }
    default:
      return { meta: {}, step: { kind, name, status: "(kubecano does not read this kind)", conditions: [] } };
  }
}

const GOOD_WHEN_TRUE = new Set(["Available", "Progressing", "Ready"]);
const BAD_WHEN_TRUE = new Set(["ReplicaFailure", "Failed", "FailureTarget"]);

/** Conditions worth showing: a healthy one that is not met, or a failure one that is. */
export function conditionIsBad(c: { type: string; status: string }): boolean {
  return (GOOD_WHEN_TRUE.has(c.type) && c.status !== "True") || (BAD_WHEN_TRUE.has(c.type) && c.status === "True");
}

function revision(meta: V1ObjectMeta | undefined): string {
  const r = meta?.annotations?.["deployment.kubernetes.io/revision"];
  return r !== undefined ? `, revision ${r}` : "";
}

export const resourceOwner = defineAction({
  name: "resource_owner",
  description: "The workload that owns the Issue's object (Pod → ReplicaSet → Deployment / StatefulSet / DaemonSet / Job → CronJob) and its status.",
  kind: "cluster",
  params: z.strictObject({}),
  async run(_p, ctx) {
    const kube = requireKube(ctx);
    const s = ctx.issue.subject;
    if (s.namespace === undefined || s.kind === "" || s.kind === "Namespace" || s.kind === "Node") throw new ActionError(`no namespaced workload to follow (subject: ${s.kind || "none"})`);
    const chain = await ownerChain(kube, s.namespace, s.kind, s.name);
    const now = ctx.now();
    const blocks: Block[] = [{ type: "table", headers: ["Kind", "Name", "Status"], rows: chain.map((c) => [c.kind, c.name, c.status]) }];
    const top = chain[chain.length - 1];
    const bad = (top?.conditions ?? []).filter(conditionIsBad);
    if (top !== undefined && bad.length > 0) {
      blocks.push({ type: "table", title: `${top.kind} conditions`, headers: ["Condition", "Status", "Reason", "Message", "Since"], rows: bad.map((c) => [c.type, c.status, cell(c.reason), cell(c.message, 200), ago(c.lastTransitionTime, now)]) });
    }
    return { enrichments: [{ title: `Owner: ${top !== undefined ? `${top.kind} ${top.name}` : "none"}`, blocks }], note: chain.map((c) => `${c.kind}/${c.name}`).join(" → ") };
  },
});
