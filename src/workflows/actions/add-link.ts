import { z } from "zod";
import { isSafeUrl } from "../../sources/alertmanager/to-issues.js";
import { compileTemplate, templateData } from "../template.js";
import { defineAction } from "../types.js";
import { template } from "./shared.js";

export const addLink = defineAction({
  name: "add_link",
  description: "Adds a link; name and url are templates: url: https://grafana/d/pods?var-pod={{ labels.pod | urlencode }}.",
  kind: "pure",
  params: z.strictObject({
    name: template,
    url: template,
    kind: z.enum(["graph", "runbook", "silence", "dashboard", "other"]).default("other"),
  }),
  run(p, { issue }) {
    const data = templateData(issue);
    const url = compileTemplate(p.url).render(data);
    const name = compileTemplate(p.name).render(data).trim() || "Link";
    if (!isSafeUrl(url)) return { note: `skipped: "${url.slice(0, 80)}" is not an http(s) URL` };
    return { links: [{ name, url, kind: p.kind }], note: url };
  },
});
