import { z } from "zod";
import { SEVERITIES } from "../../core/severity.js";
import { defineAction } from "../types.js";

export const setSeverity = defineAction({
  name: "set_severity",
  description: "Overrides the Issue's severity.",
  kind: "pure",
  params: z.strictObject({ severity: z.enum(SEVERITIES) }),
  run(p, { issue }) {
    return { severity: p.severity, note: `${issue.severity} → ${p.severity}` };
  },
});
