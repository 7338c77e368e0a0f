import type { V1LabelSelector } from "@kubernetes/client-node";
import { z } from "zod";
import type { Block } from "../../core/blocks.js";
import { ActionError, defineAction } from "../types.js";
import { ago, cell, controllerOf, requireKube, toMs } from "./kube-shared.js";
import { conditionIsBad } from "./resource-owner.js";

export const deploymentStatus = defineAction({
  name: "deployment_status",
  description: "The Deployment's replicas (desired, ready, updated, available), its conditions, and its recent revisions with their images.",
  kind: "cluster",
  params: z.strictObject({ revisions: z.number().int().min(1).max(20).default(5) }),
  async run(p, ctx) {
    const kube = requireKube(ctx);
    const s = ctx.issue.subject;
    const ns = s.namespace;
    if (ns === undefined) throw new ActionError("this Issue names no namespace");
    let name = s.kind === "Deployment" ? s.name : s.labels["deployment"];
    if (name === undefined && s.kind === "Pod") {
      const pod = await kube.getPod(ns, s.name);
      const rsRef = controllerOf(pod?.metadata?.ownerReferences);
      if (rsRef?.kind === "ReplicaSet") name = controllerOf((await kube.getReplicaSet(ns, rsRef.name))?.metadata?.ownerReferences)?.name;
    } else if (name === undefined && s.kind === "ReplicaSet") {
      name = controllerOf((await kube.getReplicaSet(ns, s.name))?.metadata?.ownerReferences)?.name;
    }
    if (name === undefined) throw new ActionError("this Issue names no Deployment");
    const d = await kube.getDeployment(ns, name);
    if (d === undefined) throw new ActionError(`deployment ${ns}/${name} no longer exists`);
    const now = ctx.now();
    const st = d.status;
    const blocks: Block[] = [
      {
        type: "table",
        headers: ["Desired", "Ready", "Updated", "Available", "Unavailable", "Strategy"],
        rows: [[String(d.spec?.replicas ?? 1), String(st?.readyReplicas ?? 0), String(st?.updatedReplicas ?? 0), String(st?.availableReplicas ?? 0), String(st?.unavailableReplicas ?? 0), d.spec?.strategy?.type ?? "RollingUpdate"]],
      },
    ];
    const conds = st?.conditions ?? [];
    if (conds.length > 0) {
      blocks.push({ type: "table", title: "Conditions", headers: ["Condition", "Status", "Reason", "Message", "Since"], rows: conds.map((c) => [`${conditionIsBad(c) ? "⚠ " : ""}${c.type}`, c.status, cell(c.reason), cell(c.message, 200), ago(c.lastTransitionTime, now)]) });
    }
    const selector = selectorString(d.spec?.selector);
    if (selector !== undefined) {
      const owned = (await kube.listReplicaSets(ns, { labelSelector: selector })).filter((rs) => rs.metadata?.ownerReferences?.some((o) => o.kind === "Deployment" && o.name === name));
      const revs = owned
        .map((rs) => ({ rs, rev: Number(rs.metadata?.annotations?.["deployment.kubernetes.io/revision"] ?? "0") }))
        .sort((a, b) => b.rev - a.rev)
        .slice(0, p.revisions);
      if (revs.length > 0) {
        blocks.push({
          type: "table",
          title: "Recent revisions",
          headers: ["Revision", "ReplicaSet", "Images", "Ready", "Created"],
          rows: revs.map(({ rs, rev }) => [String(rev), rs.metadata?.name ?? "?", cell((rs.spec?.template?.spec?.containers ?? []).map((c) => c.image).join(", "), 200), `${rs.status?.readyReplicas ?? 0}/${rs.spec?.replicas ?? 0}`, toMs(rs.metadata?.creationTimestamp) !== undefined ? ago(rs.metadata?.creationTimestamp, now) : "-"]),
        });
      }
    }
    return { enrichments: [{ title: `Deployment ${ns}/${name}`, blocks }], note: `${st?.readyReplicas ?? 0}/${d.spec?.replicas ?? 1} ready` };
  },
});

/** matchLabels + matchExpressions as a label selector string. */
export function selectorString(sel: V1LabelSelector | undefined): string | undefined {
  if (sel === undefined) return undefined;
  const parts = Object.entries(sel.matchLabels ?? {}).map(([k, v]) => `${k}=${v}`);
  for (const e of sel.matchExpressions ?? []) {
    const values = (e.values ?? []).join(",");
    if (e.operator === "In") parts.push(`${e.key} in (${values})`);
    else if (e.operator === "NotIn") parts.push(`${e.key} notin (${values})`);
    else if (e.operator === "Exists") parts.push(e.key);
    else if (e.operator === "DoesNotExist") parts.push(`!${e.key}`);
  }
  return parts.length > 0 ? parts.join(",") : undefined;
}
