import { z } from "zod";
import type { Enrichment } from "../../core/blocks.js";
import { duration } from "../../config/duration.js";
import { KubeError } from "../../kube/client.js";
import { ActionError, defineAction } from "../types.js";
import { chooseContainer, hasTerminated, requireKube, requirePod } from "./kube-shared.js";
import { patternList } from "./shared.js";

const MAX_LIMIT_BYTES = 10 * 1024 * 1024;

export const podLogs = defineAction({
  name: "pod_logs",
  description: "Logs of the pod's container (the one named, else the crashing one, else the only one), current and/or previous, as a file.",
  kind: "cluster",
  params: z.strictObject({
    previous: z
      .union([z.boolean(), z.enum(["auto", "both"])])
      .default("auto")
      .meta({ description: "true: the previous (crashed) container; false: the current one; both; auto: previous when the container has restarted, else current." }),
    container: z.string().min(1).optional().meta({ description: "Container name; default: the `container` label, else the crashing one, else the only one." }),
    tail_lines: z.number().int().min(1).max(100_000).default(200),
    limit_bytes: z.number().int().min(1024).max(MAX_LIMIT_BYTES).default(512 * 1024),
    since: duration.optional().meta({ description: "Only lines newer than this, e.g. 30m." }),
    timestamps: z.boolean().default(false),
    redact: patternList.meta({ description: "Regexes (/.../) or globs; every match in the log is replaced by [REDACTED]." }),
    excerpt_lines: z.number().int().min(1).max(100).default(15).meta({ description: "Lines shown inline where files cannot be attached." }),
  }),
  async run(p, ctx) {
    const kube = requireKube(ctx);
    const pod = await requirePod(ctx);
    const namespace = pod.metadata?.namespace ?? "";
    const name = pod.metadata?.name ?? "";
    const container = chooseContainer(pod, p.container ?? ctx.issue.subject.container);
    if (container === undefined) {
      const names = (pod.spec?.containers ?? []).map((c) => c.name).join(", ");
      throw new ActionError(`pod ${namespace}/${name} has several containers (${names}) and none is in trouble: set pod_logs.container`);
    }
    const terminated = hasTerminated(pod, container);
    const which: ("current" | "previous")[] =
      p.previous === "both" ? (terminated ? ["previous", "current"] : ["current"]) : p.previous === true ? ["previous"] : p.previous === false ? ["current"] : terminated ? ["previous"] : ["current"];
    const redactors = (p.redact ?? []).map(toRedactor);
    const enrichments: Enrichment[] = [];
    const notes: string[] = [];
    for (const w of which) {
      let text: string;
      try {
        text = await kube.readPodLog(namespace, name, {
          container,
          previous: w === "previous",
          tailLines: p.tail_lines,
          limitBytes: p.limit_bytes,
          ...(p.since !== undefined ? { sinceSeconds: Math.max(1, Math.round(p.since / 1000)) } : {}),
          timestamps: p.timestamps,
        });
      } catch (e) {
        // The previous container's logs are gone (a node restart, a new pod): say so and try the current ones.
        if (e instanceof KubeError && e.status === 400 && w === "previous" && p.previous !== true) {
          notes.push("no previous logs");
          if (!which.includes("current")) which.push("current");
          continue;
        }
        throw e;
      }
      for (const r of redactors) text = r(text);
      const lines = text === "" ? 0 : text.replace(/\n$/, "").split("\n").length;
      notes.push(`${w}: ${lines} lines`);
      enrichments.push({
        title: `Logs of ${container}${w === "previous" ? " (previous container, before the last restart)" : ""}`,
        blocks: [
          {
            type: "file",
            filename: `${name}-${container}${w === "previous" ? "-previous" : ""}.log`,
            // "last N lines" only when the log was cut there: the renderers already say how many lines there are.
            title: `${namespace}/${name} ${container}${w === "previous" ? " (previous)" : ""}${lines >= p.tail_lines ? `: last ${p.tail_lines} lines` : ""}`,
            content: text === "" ? "(the container wrote no output)\n" : text,
            excerptLines: p.excerpt_lines,
          },
        ],
      });
    }
    return { enrichments, note: `container ${container}; ${notes.join(", ")}` };
  },
});

function toRedactor(pattern: string): (s: string) => string {
  const re = /^\/(.*)\/([a-z]*)$/s.exec(pattern);
  const r = re !== null ? new RegExp(re[1]!, re[2]!.includes("g") ? re[2]! : `${re[2]!}g`) : new RegExp(pattern.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, "\\S*").replace(/\?/g, "."), "g");
  return (s) => s.replace(r, "[REDACTED]");
}
