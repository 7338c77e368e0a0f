import { z } from "zod";
import { duration } from "../../config/duration.js";
import { SEVERITIES, type Severity } from "../../core/severity.js";

const httpUrl = z.url({ protocol: /^https?$/, error: "expected an http(s) URL" });

/** Jira's own default priority scheme: Highest, High, Medium, Low, Lowest. */
export const DEFAULT_PRIORITY_MAP: Readonly<Record<Severity, string>> = { HIGH: "Highest", LOW: "Medium", INFO: "Low", DEBUG: "Low" };

const label = z
  .string()
  .min(1)
  .max(255)
  .regex(/^\S+$/, "Jira labels cannot contain spaces");

/**
 * Jira Cloud (REST API v3, basic auth with an Atlassian account's email and
 * API token). One issue per fingerprint: created on the first FIRING,
 * commented on repeats, moved through `resolve_transition` on RESOLVED and
 * reopened when it fires again. `api_url` is accepted as an alias of `url`.
 */
export const jiraParamsSchema = z
  .strictObject({
    url: httpUrl.optional().meta({ description: "Jira base URL, e.g. https://example.atlassian.net." }),
    api_url: httpUrl.optional().meta({ description: "Alias of url." }),
    user: z.string().min(1).meta({ description: "Email of the Atlassian account the API token belongs to." }),
    api_token: z.string().min(1).meta({ description: "API token (id.atlassian.com → Security → API tokens). Secret." }),
    project: z
      .string()
      .regex(/^[A-Za-z][A-Za-z0-9_]{0,254}$/, "expected a project key like OPS (letters, digits, '_', starting with a letter)")
      .transform((k) => k.toUpperCase())
      .meta({ description: "Key of the project issues are created in (OPS)." }),
    issue_type: z.string().min(1).default("Bug").meta({ description: 'Issue type name (default "Bug").' }),
    priority_map: z
      .partialRecord(z.enum(SEVERITIES), z.string().min(1))
      .default({})
      .meta({ description: 'Issue severity → Jira priority name, over the defaults HIGH → "Highest", LOW → "Medium", INFO/DEBUG → "Low".' }),
    labels: z.array(label).max(50).default([]).meta({ description: 'Labels added to every issue, besides "kubecano" and the fingerprint label.' }),
    components: z.array(z.string().min(1)).max(20).default([]).meta({ description: "Component names set on created issues." }),
    resolve_transition: z.string().min(1).default("Done").meta({ description: 'Workflow transition (or target status) run on RESOLVED (default "Done").' }),
    reopen_transition: z.string().min(1).default("Reopen").meta({ description: 'Transition run when a resolved issue fires again (default "Reopen"; else any transition to a To Do or In Progress status).' }),
    timeout: duration.default(10_000).meta({ description: "Per-request timeout (default 10s)." }),
  })
  .superRefine((p, ctx) => {
    if (p.url !== undefined && p.api_url !== undefined) ctx.addIssue({ code: "custom", path: ["api_url"], message: "set either url or its alias api_url, not both" });
    if (p.url === undefined && p.api_url === undefined) ctx.addIssue({ code: "custom", path: ["url"], message: "is required: the Jira base URL, e.g. https://example.atlassian.net" });
  })
  .transform((p) => ({
    url: (p.url ?? p.api_url ?? "").replace(/\/+$/, ""),
    user: p.user,
    api_token: p.api_token,
    project: p.project,
    issue_type: p.issue_type,
    priority_map: { ...DEFAULT_PRIORITY_MAP, ...p.priority_map } as Record<Severity, string>,
    labels: p.labels,
    components: p.components,
    resolve_transition: p.resolve_transition,
    reopen_transition: p.reopen_transition,
    timeout: p.timeout,
  }))
  .meta({ description: "Jira Cloud: one issue per incident, commented on repeats, transitioned on resolution." });

export type JiraParams = z.output<typeof jiraParamsSchema>;
