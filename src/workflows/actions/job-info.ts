import { z } from "zod";
import type { Block, Enrichment } from "../../core/blocks.js";
import { ActionError, defineAction } from "../types.js";
import { ago, cell, chooseContainer, controllerOf, exitCodeText, requireKube, toMs } from "./kube-shared.js";

export const jobInfo = defineAction({
  name: "job_info",
  description: "The Job's status and conditions, its failed pods, and the logs of the most recent failed one.",
  kind: "cluster",
  params: z.strictObject({
    logs: z.boolean().default(true),
    tail_lines: z.number().int().min(1).max(100_000).default(100),
    max_pods: z.number().int().min(1).max(50).default(10),
  }),
  async run(p, ctx) {
    const kube = requireKube(ctx);
    const s = ctx.issue.subject;
    const ns = s.namespace;
    if (ns === undefined) throw new ActionError("this Issue names no namespace");
    let name = s.kind === "Job" ? s.name : s.labels["job_name"];
    if (name === undefined && s.kind === "Pod") {
      const owner = controllerOf((await kube.getPod(ns, s.name))?.metadata?.ownerReferences);
      if (owner?.kind === "Job") name = owner.name;
    }
    if (name === undefined) throw new ActionError("this Issue names no Job");
    const job = await kube.getJob(ns, name);
    if (job === undefined) throw new ActionError(`job ${ns}/${name} no longer exists (finished Jobs may be cleaned up by ttlSecondsAfterFinished)`);
    const now = ctx.now();
    const st = job.status;
    const blocks: Block[] = [
      {
        type: "table",
        headers: ["Active", "Succeeded", "Failed", "Completions", "Backoff limit", "Started"],
        rows: [[String(st?.active ?? 0), String(st?.succeeded ?? 0), String(st?.failed ?? 0), String(job.spec?.completions ?? 1), String(job.spec?.backoffLimit ?? 6), ago(st?.startTime, now)]],
      },
    ];
    const conds = (st?.conditions ?? []).filter((c) => c.status === "True");
    if (conds.length > 0) blocks.push({ type: "table", title: "Conditions", headers: ["Condition", "Reason", "Message", "Since"], rows: conds.map((c) => [c.type, cell(c.reason), cell(c.message, 200), ago(c.lastTransitionTime, now)]) });
    const pods = await kube.listPods(ns, { labelSelector: `job-name=${name}` });
    const failed = pods
      .filter((pod) => pod.status?.phase === "Failed" || (pod.status?.containerStatuses ?? []).some((c) => (c.state?.terminated?.exitCode ?? 0) !== 0 || (c.lastState?.terminated?.exitCode ?? 0) !== 0))
      .sort((a, b) => (toMs(b.status?.startTime) ?? 0) - (toMs(a.status?.startTime) ?? 0));
    if (failed.length > 0) {
      blocks.push({
        type: "table",
        title: `Failed pods (${failed.length})`,
        headers: ["Pod", "Phase", "Reason", "Exit code", "Started"],
        rows: failed.slice(0, p.max_pods).map((pod) => {
          const c = (pod.status?.containerStatuses ?? []).find((x) => x.state?.terminated !== undefined || x.lastState?.terminated !== undefined);
          const t = c?.state?.terminated ?? c?.lastState?.terminated;
          return [pod.metadata?.name ?? "?", pod.status?.phase ?? "?", cell(t?.reason ?? pod.status?.reason), exitCodeText(t?.exitCode, t?.signal), ago(pod.status?.startTime, now)];
        }),
      });
    }
    const enrichments: Enrichment[] = [{ title: `Job ${ns}/${name}`, blocks }];
    const latest = failed[0];
    if (p.logs && latest !== undefined) {
      const container = chooseContainer(latest, s.container);
      if (container !== undefined) {
        const podName = latest.metadata?.name ?? "";
        try {
          const text = await kube.readPodLog(ns, podName, { container, tailLines: p.tail_lines });
          const lines = text === "" ? 0 : text.replace(/\n$/, "").split("\n").length;
          enrichments.push({ title: `Logs of the failed pod ${podName}`, blocks: [{ type: "file", filename: `${podName}-${container}.log`, title: `${ns}/${podName} ${container}${lines >= p.tail_lines ? `: last ${p.tail_lines} lines` : ""}`, content: text === "" ? "(the container wrote no output)\n" : text }] });
        } catch (e) {
          enrichments.push({ title: `Logs of the failed pod ${podName}`, blocks: [{ type: "markdown", text: `could not read the logs: ${e instanceof Error ? e.message : String(e)}` }] });
        }
      }
    }
    return { enrichments, note: `${st?.failed ?? 0} failed, ${failed.length} failed pods found` };
  },
});
