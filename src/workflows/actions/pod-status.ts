import type { V1ContainerStatus } from "@kubernetes/client-node";
import { z } from "zod";
import type { Block } from "../../core/blocks.js";
import { formatDuration } from "../../core/issue.js";
import { defineAction } from "../types.js";
import { ago, allStatuses, cell, exitCodeText, requirePod, resourcesText, toMs } from "./kube-shared.js";

export const podStatus = defineAction({
  name: "pod_status",
  description: "The pod's phase and, per container: state, restarts, how the last instance ended (reason, exit code and signal, OOMKilled marked), requests and limits.",
  kind: "cluster",
  params: z.strictObject({}),
  async run(_p, ctx) {
    const pod = await requirePod(ctx);
    const now = ctx.now();
    const specs = new Map([...(pod.spec?.initContainers ?? []), ...(pod.spec?.containers ?? [])].map((c) => [c.name, c]));
    const statuses = allStatuses(pod);
    const oom = statuses.filter((s) => s.lastState?.terminated?.reason === "OOMKilled" || s.state?.terminated?.reason === "OOMKilled");
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
      const t = s.state?.terminated?.reason === "OOMKilled" ? s.state.terminated : s.lastState?.terminated;
      blocks.push({ type: "markdown", text: `:warning: *${s.name} was OOMKilled* — exit code ${exitCodeText(t?.exitCode ?? 137, t?.signal)}, ${limit !== undefined ? `memory limit ${limit}` : "no memory limit set: the node ran out of memory"}` });
    }
    // Two narrow tables rather than one wide one: every cell stays readable in a chat message.
    blocks.push({ type: "table", title: "Containers", headers: ["Container", "State", "Restarts", "Last termination"], rows: statuses.map((s) => row(s, now)) });
    if (statuses.some((s) => hasResources(specs.get(s.name)?.resources))) {
      blocks.push({
        type: "table",
        title: "Resources",
        headers: ["Container", "Requests", "Limits"],
        rows: statuses.map((s) => [s.name, resourcesText(specs.get(s.name)?.resources?.requests), resourcesText(specs.get(s.name)?.resources?.limits)]),
      });
    }
    const unready = (st?.conditions ?? []).filter((c) => c.status !== "True");
    if (unready.length > 0) {
      blocks.push({ type: "table", title: "Conditions not met", headers: ["Condition", "Reason", "Message", "Since"], rows: unready.map((c) => [c.type, cell(c.reason), cell(c.message, 200), ago(c.lastTransitionTime, now)]) });
    }
    const restarts = statuses.reduce((n, s) => n + (s.restartCount ?? 0), 0);
    return {
      enrichments: [{ title: `Pod ${pod.metadata?.namespace}/${pod.metadata?.name}`, blocks }],
      note: `${statuses.length} containers, ${restarts} restarts${oom.length > 0 ? `, OOMKilled: ${oom.map((s) => s.name).join(", ")}` : ""}`,
    };
  },
});

/** "CrashLoopBackOff", "Running", "Running, not ready", "Completed (exit 0)". */
function stateText(s: V1ContainerStatus): string {
  if (s.state?.waiting !== undefined) return cell(s.state.waiting.reason ?? "Waiting");
  if (s.state?.running !== undefined) return s.ready ? "Running" : "Running, not ready";
  const t = s.state?.terminated;
  if (t !== undefined) return `${t.reason === "OOMKilled" ? "⚠ OOMKilled" : cell(t.reason ?? "Terminated")} (exit ${exitCodeText(t.exitCode, t.signal)})`;
  return "Unknown";
}

/** "⚠ OOMKilled, exit 137 (SIGKILL), 1m ago after 5s": how the previous instance ended. */
function lastTermination(s: V1ContainerStatus, now: Date): string {
  const last = s.lastState?.terminated;
  if (last === undefined) return "-";
  const start = toMs(last.startedAt);
  const end = toMs(last.finishedAt);
  const ran = start !== undefined && end !== undefined ? ` after ${formatDuration(end - start)}` : "";
  return `${last.reason === "OOMKilled" ? "⚠ OOMKilled" : cell(last.reason ?? "Terminated")}, exit ${exitCodeText(last.exitCode, last.signal)}, ${ago(last.finishedAt, now)}${ran}`;
}

function row(s: V1ContainerStatus, now: Date): string[] {
  return [s.name, stateText(s), String(s.restartCount ?? 0), lastTermination(s, now)];
}

function hasResources(r: { requests?: Record<string, string>; limits?: Record<string, string> } | undefined): boolean {
  return Object.keys(r?.requests ?? {}).length > 0 || Object.keys(r?.limits ?? {}).length > 0;
}
