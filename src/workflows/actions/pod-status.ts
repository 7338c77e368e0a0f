import type { V1ContainerStatus } from "@kubernetes/client-node";
import { z } from "zod";
import type { Block } from "../../core/blocks.js";
import { defineAction } from "../types.js";
import { ago, allStatuses, cell, exitCodeText, requirePod, resourcesText, toMs } from "./kube-shared.js";

export const podStatus = defineAction({
  name: "pod_status",
  description: "The pod's phase and, per container: state, reason, exit code, signal, restarts, last termination (OOMKilled marked), requests and limits.",
  kind: "cluster",
  params: z.strictObject({}),
  async run(_p, ctx) {
    const pod = await requirePod(ctx);
    const now = ctx.now();
    const specs = new Map([...(pod.spec?.initContainers ?? []), ...(pod.spec?.containers ?? [])].map((c) => [c.name, c]));
    const rows = allStatuses(pod).map((s) => row(s, specs.get(s.name)?.resources, now));
    const oom = allStatuses(pod).filter((s) => s.lastState?.terminated?.reason === "OOMKilled" || s.state?.terminated?.reason === "OOMKilled");
    const st = pod.status;
    const facts = [
      `*Phase* ${st?.phase ?? "Unknown"}${st?.reason !== undefined ? ` (${st.reason})` : ""}`,
      `*Node* ${pod.spec?.nodeName ?? "not scheduled"}`,
      ...(st?.qosClass !== undefined ? [`*QoS* ${st.qosClass}`] : []),
      ...(st?.startTime !== undefined ? [`*Started* ${ago(st.startTime, now)}`] : []),
    ];
    const blocks: Block[] = [{ type: "markdown", text: facts.join("  ·  ") }];
    if (st?.message !== undefined && st.message !== "") blocks.push({ type: "markdown", text: `> ${st.message}` });
    for (const s of oom) {
      const limit = specs.get(s.name)?.resources?.limits?.["memory"];
      blocks.push({ type: "markdown", text: `:warning: *${s.name} was OOMKilled* (exit code 137)${limit !== undefined ? `: memory limit ${limit}` : ": no memory limit set, the node ran out of memory"}` });
    }
    blocks.push({
      type: "table",
      title: "Containers",
      headers: ["Container", "State", "Reason", "Exit code", "Restarts", "Last termination", "Requests", "Limits"],
      rows,
    });
    const unready = (st?.conditions ?? []).filter((c) => c.status !== "True");
    if (unready.length > 0) {
      blocks.push({ type: "table", title: "Conditions not met", headers: ["Condition", "Reason", "Message", "Since"], rows: unready.map((c) => [c.type, cell(c.reason), cell(c.message, 200), ago(c.lastTransitionTime, now)]) });
    }
    const restarts = allStatuses(pod).reduce((n, s) => n + (s.restartCount ?? 0), 0);
    return {
      enrichments: [{ title: `Pod ${pod.metadata?.namespace}/${pod.metadata?.name}`, blocks }],
      note: `${rows.length} containers, ${restarts} restarts${oom.length > 0 ? `, OOMKilled: ${oom.map((s) => s.name).join(", ")}` : ""}`,
    };
  },
});

function row(s: V1ContainerStatus, resources: { requests?: Record<string, string>; limits?: Record<string, string> } | undefined, now: Date): string[] {
  const state = s.state?.running !== undefined ? "Running" : s.state?.waiting !== undefined ? "Waiting" : s.state?.terminated !== undefined ? "Terminated" : "Unknown";
  const reason = s.state?.waiting?.reason ?? s.state?.terminated?.reason ?? (s.ready ? "Ready" : "Not ready");
  const current = s.state?.terminated;
  const last = s.lastState?.terminated;
  const lastText =
    last !== undefined
      ? `${last.reason === "OOMKilled" ? "⚠ OOMKilled" : cell(last.reason)} exit ${exitCodeText(last.exitCode, last.signal)} ${ago(last.finishedAt, now)}${
          toMs(last.startedAt) !== undefined && toMs(last.finishedAt) !== undefined ? ` after ${Math.round((toMs(last.finishedAt)! - toMs(last.startedAt)!) / 1000)}s` : ""
        }`
      : "-";
  return [
    s.name,
    state,
    reason === "OOMKilled" ? "⚠ OOMKilled" : cell(reason),
    current !== undefined ? exitCodeText(current.exitCode, current.signal) : last !== undefined ? exitCodeText(last.exitCode, last.signal) : "-",
    String(s.restartCount ?? 0),
    lastText,
    resourcesText(resources?.requests),
    resourcesText(resources?.limits),
  ];
}
