import { defineAction, type ActionOutput } from "../types.js";
import { tableParams, keyFilter } from "./shared.js";

/** Shared: most alerts have no annotation beyond those every destination shows already. */
const NOTHING: ActionOutput = Object.freeze({ note: "no annotations to show" });

export const annotationsTable = defineAction({
  name: "annotations_table",
  description: "A table of the alert's annotations (include/exclude by pattern).",
  kind: "pure",
  params: tableParams,
  run(p, { issue }) {
    const keep = keyFilter(p);
    const annotations = issue.subject.annotations;
    let rows: [string, string][] | undefined;
    for (const k in annotations) {
      if (Object.hasOwn(annotations, k) && keep(k)) (rows ??= []).push([k, annotations[k]!]);
    }
    if (rows === undefined) return NOTHING;
    rows.sort(([a], [b]) => a.localeCompare(b));
    return { enrichments: [{ title: p.title ?? "Annotations", blocks: [{ type: "table", headers: ["Annotation", "Value"], rows }] }], note: `${rows.length} annotations` };
  },
});
