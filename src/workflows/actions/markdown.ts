import { z } from "zod";
import { compileTemplate, templateData } from "../template.js";
import { defineAction } from "../types.js";
import { template } from "./shared.js";

export const markdown = defineAction({
  name: "markdown",
  description: 'A text block from a template over the Issue: "Owner: {{ labels.team | default \\"unknown\\" }}".',
  kind: "pure",
  params: z.strictObject({ text: template, title: z.string().min(1).optional() }),
  run(p, { issue }) {
    const text = compileTemplate(p.text).render(templateData(issue));
    if (text.trim() === "") return { note: "the template rendered empty" };
    return { enrichments: [{ title: p.title ?? "Notes", blocks: [{ type: "markdown", text }] }] };
  },
});
