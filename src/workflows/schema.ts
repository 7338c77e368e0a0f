import { z } from "zod";
import { duration } from "../config/duration.js";
import { patternProblem } from "../core/match.js";

import { ACTION_NAMES, BUILTIN_ACTIONS } from "./actions/registry.js";

/**
 * Workflow config: triggers (pure predicates over an Issue) and actions
 * (validated here, at start-up, with each action's own parameter schema).
 */

const pattern = z.string().superRefine((p, ctx) => {
  const problem = patternProblem(p);
  if (problem !== undefined) ctx.addIssue({ code: "custom", message: problem });
});
/** One pattern or a list (any of them). */
export const patternInput = z.union([pattern, z.array(pattern).min(1)]);

const issueMatchers = {
  alert_name: patternInput.optional().meta({ description: "Alert name (or event reason): exact, glob (Kube*) or /regex/." }),
  status: z.enum(["firing", "resolved", "all"]).default("all"),
  severity: patternInput.optional().meta({ description: "HIGH, LOW, INFO or DEBUG (or a pattern)." }),
  namespace: patternInput.optional(),
  labels: z.record(z.string(), patternInput).optional().meta({ description: 'Label patterns, all must match; "!=x" negates.' }),
};

/**
 * A trigger's conditions; `on_issue:` with no value (YAML null) means none.
 * The key itself is required: a trigger that names one kind fails only as
 * that kind, so its mistakes are reported with their path (a bad pattern, a
 * misspelt condition) rather than as "not a trigger".
 */
function conditions<S extends z.ZodObject>(s: S) {
  return s.nullable().transform((v): z.output<S> => v ?? s.parse({}));
}

export const triggerSchema = z.union([
  z.strictObject({ on_alertmanager_alert: conditions(z.strictObject(issueMatchers)) }),
  z.strictObject({
    on_kubernetes_event: conditions(
      z.strictObject({
        reason: patternInput.optional().meta({ description: "CrashLoopBackOff, OOMKilled, ImagePullBackOff, NodeNotReady, HelmReleaseFailed... (a pattern)." }),
        kind: patternInput.optional().meta({ description: "Kind of the object: Pod, Job, Node, HelmRelease... (a pattern)." }),
        namespace: patternInput.optional(),
        labels: z.record(z.string(), patternInput).optional().meta({ description: 'Label patterns of the object, all must match; "!=x" negates.' }),
        type: z.enum(["Normal", "Warning"]).optional().meta({ description: "Warning for trouble, Normal for a recovery." }),
        severity: patternInput.optional(),
        status: z.enum(["firing", "resolved", "all"]).default("all"),
      }),
    ),
  }),
  z.strictObject({
    on_issue: conditions(
      z.strictObject({
        ...issueMatchers,
        source: patternInput.optional().meta({ description: "prometheus, kubernetes, helm or manual." }),
        type: z.enum(["alert", "event"]).optional(),
      }),
    ),
  }),
], { error: () => "a trigger is on_alertmanager_alert: {...} or on_issue: {...} (or on_kubernetes_event: {...})" });
export type TriggerConfig = z.output<typeof triggerSchema>;

const customSchema = z.strictObject({
  module: z.string().min(1).meta({ description: "Path of a .js/.mjs/.ts module (relative to the config file) whose default export is the action." }),
  params: z.record(z.string(), z.unknown()).default({}),
  name: z.string().min(1).optional().meta({ description: "Name shown in explanations; default: the module's." }),
});

export type ActionConfig =
  | { readonly action: string; readonly params: unknown; readonly timeoutMs?: number | undefined }
  | { readonly action: "custom"; readonly params: z.output<typeof customSchema>; readonly timeoutMs?: number | undefined };

/** `- pod_logs: { previous: true }` (plus an optional sibling `timeout: 5s`). */
export const actionSchema = z.unknown().transform((raw, ctx): ActionConfig => {
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) {
    ctx.addIssue({ code: "custom", message: `an action is a mapping with one action name as key, e.g. { pod_logs: { previous: true } }; known actions: ${ACTION_NAMES.join(", ")}` });
    return z.NEVER;
  }
  const entries = Object.entries(raw as Record<string, unknown>);
  let timeoutMs: number | undefined;
  const names = entries.filter(([k]) => k !== "timeout");
  const t = entries.find(([k]) => k === "timeout");
  if (t !== undefined) {
    const r = duration.safeParse(t[1]);
    if (!r.success) {
      ctx.addIssue({ code: "custom", path: ["timeout"], message: r.error.issues[0]?.message ?? "invalid duration" });
      return z.NEVER;
    }
    timeoutMs = r.data;
  }
  if (names.length !== 1) {
    ctx.addIssue({ code: "custom", message: names.length === 0 ? "no action named here" : `one action per list entry, found ${names.map(([k]) => k).join(", ")}` });
    return z.NEVER;
  }
  const [name, params] = names[0]!;
  if (name === "custom") {
    const r = customSchema.safeParse(params ?? {});
    if (!r.success) {
      for (const i of r.error.issues) ctx.addIssue({ code: "custom", path: ["custom", ...(i.path as PropertyKey[])] as (string | number)[], message: i.message });
      return z.NEVER;
    }
    return { action: "custom", params: r.data, timeoutMs };
  }
  const def = BUILTIN_ACTIONS[name];
  if (def === undefined) {
    ctx.addIssue({ code: "custom", path: [name], message: `unknown action "${name}": use one of ${ACTION_NAMES.join(", ")}` });
    return z.NEVER;
  }
  const r = def.params.safeParse(params ?? {});
  if (!r.success) {
    for (const i of r.error.issues) {
      const msg = i.code === "unrecognized_keys" ? `unknown parameter${i.keys.length > 1 ? "s" : ""} ${i.keys.join(", ")} of ${name}` : i.message.replace(/^Invalid input: /, "");
      ctx.addIssue({ code: "custom", path: [name, ...(i.path as PropertyKey[])] as (string | number)[], message: msg });
    }
    return z.NEVER;
  }
  return { action: name, params: r.data, timeoutMs };
}).meta({ description: `One action: { <name>: <params> } with name one of ${ACTION_NAMES.join(", ")}; optional sibling timeout.` });

export const workflowSchema = z.strictObject({
  name: z.string().min(1).max(100),
  enabled: z.boolean().default(true).meta({ description: "false disables the workflow (also a built-in one, by its name)." }),
  triggers: z.array(triggerSchema).default([]).meta({ description: "The workflow runs when any trigger matches. Empty: never (unless it overrides a built-in's triggers)." }),
  actions: z.array(actionSchema).default([]),
  stop: z.boolean().default(false).meta({ description: "When this workflow matched, run no later workflow." }),
});
export type WorkflowConfig = z.output<typeof workflowSchema>;

export const workflowsSchema = z.array(workflowSchema).default([]).superRefine((list, ctx) => {
  const seen = new Map<string, number>();
  list.forEach((w, i) => {
    const prev = seen.get(w.name);
    if (prev !== undefined) ctx.addIssue({ code: "custom", path: [i, "name"], message: `duplicate workflow name "${w.name}" (also workflows[${prev}])` });
    seen.set(w.name, i);
  });
});

export const enrichmentSchema = z.strictObject({
  concurrency: z.number().int().min(1).max(64).default(8).meta({ description: "Issues enriched at once." }),
  actionTimeout: duration.default(10_000).meta({ description: "Default upper bound of one action." }),
  defaults: z.boolean().default(true).meta({ description: "Run the built-in workflows (each can still be disabled or overridden by name)." }),
});

