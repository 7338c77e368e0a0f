import { z } from "zod";
import type { Block } from "../../core/blocks.js";
import { ActionError, defineAction } from "../types.js";
import { ago, cell, requireKube } from "./kube-shared.js";

const PRESSURE = ["MemoryPressure", "DiskPressure", "PIDPressure", "NetworkUnavailable"];

export const nodeInfo = defineAction({
  name: "node_info",
  description: "The node's conditions (Ready, pressure), capacity and allocatable, and the pods on it that are not running well.",
  kind: "cluster",
  params: z.strictObject({
    pods: z.boolean().default(true).meta({ description: "List the node's pods that are not Running and ready." }),
    max_pods: z.number().int().min(1).max(200).default(20),
  }),
  async run(p, ctx) {
    const kube = requireKube(ctx);
    const s = ctx.issue.subject;
    const name = s.kind === "Node" ? s.name : (s.node ?? s.labels["node"] ?? s.labels["instance"]?.replace(/:\d+$/, ""));
    if (name === undefined || name === "") throw new ActionError("this Issue names no node");
    const node = await kube.getNode(name);
    if (node === undefined) throw new ActionError(`node ${name} no longer exists`);
    const now = ctx.now();
    const conds = node.status?.conditions ?? [];
    const ready = conds.find((c) => c.type === "Ready");
    const pressures = conds.filter((c) => PRESSURE.includes(c.type) && c.status === "True").map((c) => c.type);
    const info = node.status?.nodeInfo;
    const facts = [
      `*Ready* ${ready?.status ?? "Unknown"}${ready?.reason !== undefined ? ` (${ready.reason})` : ""} since ${ago(ready?.lastTransitionTime, now)}`,
      pressures.length > 0 ? `:warning: *${pressures.join(", ")}*` : "no pressure",
      ...(node.spec?.unschedulable === true ? ["*cordoned*"] : []),
      ...(info !== undefined ? [`kubelet ${info.kubeletVersion}, ${info.osImage}`] : []),
    ];
    const blocks: Block[] = [{ type: "markdown", text: facts.join("  ·  ") }];
    blocks.push({ type: "table", title: "Conditions", headers: ["Condition", "Status", "Reason", "Message", "Since"], rows: conds.map((c) => [c.type, c.status, cell(c.reason), cell(c.message, 160), ago(c.lastTransitionTime, now)]) });
    const cap = node.status?.capacity ?? {};
    const alloc = node.status?.allocatable ?? {};
    const keys = [...new Set([...Object.keys(cap), ...Object.keys(alloc)])].filter((k) => ["cpu", "memory", "pods", "ephemeral-storage"].includes(k));
    if (keys.length > 0) blocks.push({ type: "table", title: "Resources", headers: ["Resource", "Capacity", "Allocatable"], rows: keys.map((k) => [k, cap[k] ?? "-", alloc[k] ?? "-"]) });
    let podNote = "";
    if (p.pods) {
      const pods = await kube.listPods(undefined, { fieldSelector: `spec.nodeName=${name}` });
      const unwell = pods.filter((pod) => pod.status?.phase !== "Succeeded" && (pod.status?.phase !== "Running" || (pod.status?.containerStatuses ?? []).some((c) => !c.ready)));
      podNote = `, ${pods.length} pods (${unwell.length} not ready)`;
      if (unwell.length > 0) {
        blocks.push({
          type: "table",
          title: `Pods on ${name} not running well (${unwell.length} of ${pods.length})`,
          headers: ["Pod", "Phase", "Restarts", "Reason"],
          rows: unwell.slice(0, p.max_pods).map((pod) => {
            const cs = pod.status?.containerStatuses ?? [];
            const notReady = cs.filter((c) => !c.ready).map((c) => c.name);
            const reason = cs.map((c) => c.state?.waiting?.reason ?? c.state?.terminated?.reason).find((r) => r !== undefined) ?? pod.status?.reason ?? (notReady.length > 0 ? `not ready: ${notReady.join(", ")}` : undefined);
            return [`${pod.metadata?.namespace}/${pod.metadata?.name}`, pod.status?.phase ?? "Unknown", String(cs.reduce((n, c) => n + (c.restartCount ?? 0), 0)), cell(reason)];
          }),
        });
      }
    }
    return { enrichments: [{ title: `Node ${name}`, blocks }], note: `Ready=${ready?.status ?? "Unknown"}${pressures.length > 0 ? `, ${pressures.join(", ")}` : ""}${podNote}` };
  },
});
