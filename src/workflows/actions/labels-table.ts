import { defineAction } from "../types.js";
import { tableParams, keyFilter } from "./shared.js";

export const labelsTable = defineAction({
  name: "labels_table",
  description: "A table of the alert's labels (include/exclude by pattern).",
  kind: "pure",
  params: tableParams,
  run(p, { issue }) {
    const keep = keyFilter(p);
    const rows = Object.entries(issue.subject.labels).filter(([k]) => keep(k)).sort(([a], [b]) => a.localeCompare(b));
    if (rows.length === 0) return { note: "no labels to show" };
    return { enrichments: [{ title: p.title ?? "Labels", blocks: [{ type: "table", headers: ["Label", "Value"], rows }] }], note: `${rows.length} labels` };
  },
});
