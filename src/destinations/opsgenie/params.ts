import { z } from "zod";
import { duration } from "../../config/duration.js";
import { template } from "../../workflows/actions/shared.js";

export const OPSGENIE_REGIONS = { us: "https://api.opsgenie.com", eu: "https://api.eu.opsgenie.com" } as const;
export const OPSGENIE_PRIORITIES = ["P1", "P2", "P3", "P4", "P5"] as const;
export type OpsgeniePriority = (typeof OPSGENIE_PRIORITIES)[number];
export const RESPONDER_TYPES = ["team", "user", "escalation", "schedule"] as const;
export type ResponderType = (typeof RESPONDER_TYPES)[number];

const httpUrl = z.url({ protocol: /^https?$/, error: "expected an http(s) URL" });
const priority = z.enum(OPSGENIE_PRIORITIES);

/**
 * A responder as Opsgenie's Alert API takes it: a team, escalation or
 * schedule by `name` or `id`, a user by `username` or `id`. Names are
 * templates over the Issue (`{{ labels.team }}`), so one destination can page
 * the team that owns the workload.
 */
const responderSchema = z
  .strictObject({
    type: z.enum(RESPONDER_TYPES),
    name: template.optional().meta({ description: "Team, escalation or schedule name (template)." }),
    username: template.optional().meta({ description: "User's login e-mail (template); type user only." }),
    id: template.optional().meta({ description: "Opsgenie id (template)." }),
  })
  .superRefine((r, ctx) => {
    const given = (["name", "username", "id"] as const).filter((k) => r[k] !== undefined);
    const allowed = r.type === "user" ? "username or id" : "name or id";
    if (given.length !== 1) ctx.addIssue({ code: "custom", message: `set exactly one of ${allowed} for a ${r.type} responder` });
    else if (r.type === "user" && given[0] === "name") ctx.addIssue({ code: "custom", path: ["name"], message: "a user responder is named by username (the login e-mail) or id" });
    else if (r.type !== "user" && given[0] === "username") ctx.addIssue({ code: "custom", path: ["username"], message: `a ${r.type} responder is named by name or id` });
  });

export type ResponderParam = z.output<typeof responderSchema>;

/**
 * Opsgenie Alert API v2 with the key of an API integration (Settings →
 * Integrations → API, or a team's API integration) that has Create and
 * Update access.
 */
export const opsgenieParamsSchema = z
  .strictObject({
    api_key: z.string().min(1).meta({ description: "API key of an Opsgenie API integration. Secret: use ${OPSGENIE_API_KEY}." }),
    region: z.enum(["us", "eu"]).default("us").meta({ description: `Opsgenie instance: us (${OPSGENIE_REGIONS.us}) or eu (${OPSGENIE_REGIONS.eu}).` }),
    api_url: httpUrl.optional().meta({ description: "API base URL; overrides region (proxies, tests)." }),
    timeout: duration.default(10_000).meta({ description: "Per-request timeout (default 10s)." }),
    responders: z.array(responderSchema).max(50).optional().meta({ description: "Who is notified: teams, users, escalations, schedules; names may be templates. Default: the integration's own team and rules." }),
    tags: z.array(template).max(20).optional().meta({ description: "Alert tags (templates); empty results are left out, each is cut to 50 characters." }),
    priority_map: z
      .strictObject({ HIGH: priority.optional(), LOW: priority.optional(), INFO: priority.optional(), DEBUG: priority.optional() })
      .optional()
      .meta({ description: "Issue severity → Opsgenie priority, over the defaults HIGH → P1, LOW → P3, INFO and DEBUG → P5." }),
    entity: template.optional().meta({ description: "Alert entity (template; default: the subject, e.g. shop/pod/api-7d9f)." }),
  })
  .transform((p) => ({ ...p, api_url: (p.api_url ?? OPSGENIE_REGIONS[p.region]).replace(/\/+$/, "") }))
  .meta({ description: "Opsgenie Alert API v2: a FIRING Issue creates an alert with its fingerprint as alias, the RESOLVED one closes it." });

export type OpsgenieParams = z.output<typeof opsgenieParamsSchema>;
