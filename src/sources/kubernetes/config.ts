import { z } from "zod";
import { duration } from "../../config/duration.js";
import { patternProblem } from "../../core/match.js";
import { SEVERITIES, type Severity } from "../../core/severity.js";

/**
 * The `watch:` config section: what `kubecano watch` and `listen --watch`
 * look at, how they classify it and how much they send.
 */

/** Every reason (Issue aggregationKey) the classifiers produce, with its default severity. */
export const WATCH_REASONS = {
  CrashLoopBackOff: "HIGH",
  OOMKilled: "HIGH",
  ImagePullBackOff: "LOW",
  CreateContainerConfigError: "LOW",
  Evicted: "LOW",
  FailedScheduling: "LOW",
  FailedMount: "LOW",
  QuotaExceeded: "LOW",
  JobFailed: "LOW",
  NodeNotReady: "HIGH",
  HelmReleaseFailed: "HIGH",
  HelmReleasePending: "LOW",
  Unhealthy: "LOW",
} as const satisfies Record<string, Severity>;
export type WatchReason = keyof typeof WATCH_REASONS;
export const WATCH_REASON_NAMES = Object.keys(WATCH_REASONS) as WatchReason[];

const pattern = z.string().min(1).superRefine((p, ctx) => {
  const problem = patternProblem(p);
  if (problem !== undefined) ctx.addIssue({ code: "custom", message: problem });
});

const leaderElectionSchema = z
  .strictObject({
    enabled: z.boolean().default(true).meta({ description: "Elect one replica (a coordination.k8s.io/v1 Lease) to watch and send; --no-leader-election turns it off." }),
    leaseName: z.string().regex(/^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/, "a Lease name is lowercase letters, digits, '-' and '.'").default("kubecano"),
    namespace: z.string().min(1).optional().meta({ description: "Namespace of the Lease (default: POD_NAMESPACE, the service account's namespace in a cluster, else the kubeconfig context's, else default)." }),
    leaseDuration: duration.default(15_000).meta({ description: "How long a silent leader keeps the lease before another replica takes over." }),
    renewDeadline: duration.default(10_000).meta({ description: "The leader gives up (stops watching and sending) when it could not renew for this long." }),
    retryPeriod: duration.default(2_000).meta({ description: "How often replicas try to acquire or renew." }),
  })
  .superRefine((l, ctx) => {
    if (l.renewDeadline >= l.leaseDuration) ctx.addIssue({ code: "custom", path: ["renewDeadline"], message: "must be shorter than leaseDuration" });
    if (l.retryPeriod >= l.renewDeadline) ctx.addIssue({ code: "custom", path: ["retryPeriod"], message: "must be shorter than renewDeadline" });
    if (l.leaseDuration < 1_000) ctx.addIssue({ code: "custom", path: ["leaseDuration"], message: "must be at least 1s (Leases count whole seconds)" });
  });

const atLeast = (min: number, what: string) => duration.refine((ms) => ms >= min, `must be at least ${what}`);

export const watchSchema = z
  .strictObject({
    namespaces: z.array(pattern).default([]).meta({ description: "Namespaces to watch (exact, glob, /regex/); empty: all (--namespace, --all-namespaces). Exact names are watched one by one, so a namespaced Role is enough." }),
    excludeNamespaces: z.array(pattern).default([]).meta({ description: "Namespaces never reported (patterns)." }),
    reasons: z
      .strictObject({
        include: z.array(pattern).default([]).meta({ description: `Only these reasons (patterns over ${WATCH_REASON_NAMES.join(", ")}); empty: all.` }),
        exclude: z.array(pattern).default([]),
      })
      .prefault({}),
    rateLimitWindow: duration.default(4 * 3_600_000).meta({ description: "At most one Issue per workload and reason in this window; a resolution closes it." }),
    lookback: duration.default(5 * 60_000).meta({ description: "At start-up, events and failures older than this are history, not reported." }),
    crashLoopRestarts: z.number().int().min(1).max(10_000).default(2).meta({ description: "Restarts before a container in CrashLoopBackOff is reported." }),
    imagePullDelay: duration.default(2 * 60_000).meta({ description: "An image pull failing for this long is reported (shorter ones are start-up noise)." }),
    schedulingDelay: duration.default(5 * 60_000).meta({ description: "A pod unschedulable for this long is reported." }),
    helmPendingDelay: duration.default(10 * 60_000).meta({ description: "A Helm release pending (install, upgrade, rollback) for this long is reported." }),
    resolveDelay: duration.default(2 * 60_000).meta({ description: "A pod must stay running and ready (no restart) this long before its Issue is resolved." }),
    unhealthy: z.boolean().default(false).meta({ description: "Report probe failures (Unhealthy events)." }),
    helm: z.boolean().default(true).meta({ description: "Watch Helm release Secrets (needs list/watch on secrets)." }),
    stallTimeout: atLeast(1_000, "1s").default(5 * 60_000).meta({ description: "A watch silent (no event, no bookmark) this long is restarted." }),
    severity: z
      .record(z.string(), z.enum(SEVERITIES))
      .default({})
      .superRefine((m, ctx) => {
        for (const k of Object.keys(m)) {
          if (!Object.hasOwn(WATCH_REASONS, k)) ctx.addIssue({ code: "custom", path: [k], message: `unknown reason "${k}": use ${WATCH_REASON_NAMES.join(", ")}` });
        }
      })
      .meta({ description: "Reason → severity, over the defaults (HIGH: CrashLoopBackOff, OOMKilled, NodeNotReady, HelmReleaseFailed; LOW: the rest)." }),
    leaderElection: leaderElectionSchema.prefault({}),
  })
  .meta({ description: "Kubernetes watching: `kubecano watch`, `kubecano listen --watch`." });

export type WatchConfig = z.output<typeof watchSchema>;

export function severityOf(config: Pick<WatchConfig, "severity">, reason: WatchReason): Severity {
  return config.severity[reason] ?? WATCH_REASONS[reason];
}
