import { defineAction } from "../types.js";
import { tableParams, keyFilter } from "./shared.js";

export const annotationsTable = defineAction({
  name: "annotations_table",
  description: "A table of the alert's annotations (include/exclude by pattern).",
  kind: "pure",
  params: tableParams,
  run(p, { issue }) {
    const keep = keyFilter(p);
    const rows = Object.entries(issue.subject.annotations).filter(([k]) => keep(k)).sort(([a], [b]) => a.localeCompare(b));
    if (rows.length === 0) return { note: "no annotations to show" };
    return { enrichments: [{ title: p.title ?? "Annotations", blocks: [{ type: "table", headers: ["Annotation", "Value"], rows }] }], note: `${rows.length} annotations` };
  },
});
