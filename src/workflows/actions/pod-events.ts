import { z } from "zod";
import { defineAction } from "../types.js";
import { ActionError } from "../types.js";
import { cell, eventCount, eventLastSeen, requireKube } from "./kube-shared.js";
import { formatDuration } from "../../core/issue.js";

export const podEvents = defineAction({
  name: "pod_events",
  description: "Recent Kubernetes events of the Issue's object (pod, deployment, node...), newest first.",
  kind: "cluster",
  params: z.strictObject({
    limit: z.number().int().min(1).max(100).default(15),
    types: z.array(z.enum(["Normal", "Warning"])).min(1).default(["Normal", "Warning"]),
  }),
  async run(p, ctx) {
    const kube = requireKube(ctx);
    const s = ctx.issue.subject;
    if (s.kind === "" || s.kind === "Namespace") throw new ActionError("this Issue names no Kubernetes object");
    const selector = [`involvedObject.name=${s.name}`, `involvedObject.kind=${s.kind}`].join(",");
    const events = await kube.listEvents(s.namespace, { fieldSelector: selector });
    const now = ctx.now().getTime();
    const rows = events
      .filter((e) => p.types.includes((e.type ?? "Normal") as "Normal" | "Warning"))
      .map((e) => ({ e, at: eventLastSeen(e) ?? 0 }))
      .sort((a, b) => b.at - a.at)
      .slice(0, p.limit)
      .map(({ e, at }) => [at > 0 ? `${formatDuration(now - at)} ago` : "-", e.type ?? "Normal", cell(e.reason), String(eventCount(e)), cell(e.message, 300)]);
    if (rows.length === 0) return { note: "no events (Kubernetes keeps them about an hour)" };
    return {
      enrichments: [{ title: `Events of ${s.kind.toLowerCase()} ${s.name}`, blocks: [{ type: "table", headers: ["Last seen", "Type", "Reason", "Count", "Message"], rows }] }],
      note: `${rows.length} events`,
    };
  },
});
