import { z } from "zod";
import { patternProblem } from "../core/match.js";
import { windowSchema } from "./window.js";

const pattern = z.string().superRefine((p, ctx) => {
  const problem = patternProblem(p);
  if (problem !== undefined) ctx.addIssue({ code: "custom", message: problem });
});
const patterns = z.union([pattern, z.array(pattern).min(1)]).transform((v) => (typeof v === "string" ? [v] : v));

/** What a route matches; every field given must match (each field: any of its patterns). */
const matchFields = z
  .strictObject({
    namespaces: patterns.optional(),
    labels: z.record(z.string(), patterns).optional().meta({ description: 'Every label must match: exact, glob, /regex/, or "!=value".' }),
    severity: patterns.optional().meta({ description: "HIGH, LOW, INFO, DEBUG." }),
    alert_names: patterns.optional().meta({ description: "Alert name, or the reason of a Kubernetes event." }),
    reasons: patterns.optional().meta({ description: "Alias of alert_names, reads better for events." }),
    sources: patterns.optional().meta({ description: "prometheus, kubernetes, helm, manual." }),
    types: patterns.optional().meta({ description: "alert or event." }),
    status: z.enum(["firing", "resolved", "all"]).default("all"),
  });
export const routeMatchSchema = matchFields.prefault({});
export type RouteMatch = z.output<typeof routeMatchSchema>;

export const routeSchema = z.strictObject({
  name: z.string().min(1).max(100),
  match: routeMatchSchema,
  // Without the prefault: an absent exclude must stay absent, not become {} (which excludes everything).
  exclude: matchFields.optional().meta({ description: "Issues that match this are not taken by the route." }),
  destinations: z.array(z.string().min(1)).min(1),
  continue: z.boolean().default(false).meta({ description: "Keep trying later routes after this one matched." }),
  active: windowSchema.optional().meta({ description: "The route applies only inside this window." }),
  mute: windowSchema.optional().meta({ description: "The route does not apply inside this window." }),
});
export type RouteConfig = z.output<typeof routeSchema>;

export const routesSchema = z.array(routeSchema).default([]).superRefine((list, ctx) => {
  const seen = new Map<string, number>();
  list.forEach((r, i) => {
    const prev = seen.get(r.name);
    if (prev !== undefined) ctx.addIssue({ code: "custom", path: [i, "name"], message: `duplicate route name "${r.name}" (also routes[${prev}])` });
    seen.set(r.name, i);
  });
});
