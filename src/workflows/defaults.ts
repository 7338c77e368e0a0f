import { workflowSchema, type WorkflowConfig } from "./schema.js";

/**
 * The built-in workflows. Each can be disabled (`{ name, enabled: false }`)
 * or replaced (a workflow with the same name) in the config, and all of them
 * with `enrichment.defaults: false`. They run before user workflows, in this
 * order. Labels and links are not repeated here: every destination shows the
 * alert's labels and its runbook, graph, dashboard and silence links.
 */
const RAW = [
  {
    name: "silence-watchdog",
    triggers: [{ on_alertmanager_alert: { alert_name: ["Watchdog", "InfoInhibitor"] } }],
    actions: [{ silence: { reason: "Watchdog and InfoInhibitor always fire: they exist for Alertmanager's plumbing, not for people" } }],
    stop: true,
  },
  {
    name: "crashloop-context",
    triggers: [{ on_alertmanager_alert: { alert_name: "KubePodCrashLooping", status: "firing" } }],
    actions: [{ pod_status: {} }, { pod_logs: { previous: true, tail_lines: 200 } }, { pod_events: {} }],
  },
  {
    name: "pod-not-ready-context",
    triggers: [{ on_alertmanager_alert: { alert_name: ["KubePodNotReady", "KubeContainerWaiting"], status: "firing" } }],
    actions: [{ pod_status: {} }, { pod_events: {} }, { pod_logs: { previous: "auto", tail_lines: 100 } }],
  },
  {
    name: "job-failed-context",
    triggers: [{ on_alertmanager_alert: { alert_name: ["KubeJobFailed", "KubeJobNotCompleted"], status: "firing" } }],
    actions: [{ job_info: { logs: true, tail_lines: 100 } }],
  },
  {
    // A Deployment's revisions and their images answer "what changed?", which its owner chain (itself) does not.
    name: "deployment-rollout-context",
    triggers: [{ on_alertmanager_alert: { alert_name: ["KubeDeploymentReplicasMismatch", "KubeDeploymentRolloutStuck"], status: "firing" } }],
    actions: [{ deployment_status: {} }, { pod_events: {} }],
  },
  {
    name: "rollout-context",
    triggers: [
      {
        on_alertmanager_alert: {
          alert_name: ["KubeStatefulSetReplicasMismatch", "KubeStatefulSetUpdateNotRolledOut", "KubeDaemonSetRolloutStuck", "KubeDaemonSetNotScheduled"],
          status: "firing",
        },
      },
    ],
    actions: [{ resource_owner: {} }, { pod_events: {} }],
  },
  {
    name: "node-not-ready-context",
    triggers: [{ on_alertmanager_alert: { alert_name: ["KubeNodeNotReady", "KubeNodeUnreachable", "KubeNodePressure", "KubeletDown"], status: "firing" } }],
    actions: [{ node_info: {} }, { pod_events: { limit: 10 } }],
  },
  {
    name: "oom-context",
    triggers: [
      { on_alertmanager_alert: { alert_name: "/oom/i", status: "firing" } },
      { on_alertmanager_alert: { labels: { reason: "OOMKilled" }, status: "firing" } },
    ],
    actions: [{ pod_status: {} }],
  },
  {
    name: "alert-annotations",
    triggers: [{ on_alertmanager_alert: {} }],
    actions: [
      {
        annotations_table: {
          title: "More annotations",
          exclude: ["summary", "description", "message", "runbook_url", "runbook", "dashboard_url", "grafana_url", "dashboard"],
        },
      },
    ],
  },
  // Issues from `kubecano watch` / `listen --watch` (on_kubernetes_event: sources kubernetes and helm).
  {
    name: "watch-crashloop-context",
    triggers: [{ on_kubernetes_event: { reason: ["CrashLoopBackOff", "OOMKilled"], status: "firing" } }],
    actions: [{ pod_status: {} }, { pod_logs: { previous: true, tail_lines: 200 } }, { pod_events: {} }],
  },
  {
    name: "watch-pod-context",
    triggers: [{ on_kubernetes_event: { reason: ["ImagePullBackOff", "CreateContainerConfigError", "FailedScheduling", "FailedMount", "Evicted", "Unhealthy"], status: "firing" } }],
    actions: [{ pod_status: {} }, { pod_events: {} }],
  },
  {
    name: "watch-job-failed-context",
    triggers: [{ on_kubernetes_event: { reason: "JobFailed", status: "firing" } }],
    actions: [{ job_info: { logs: true, tail_lines: 100 } }],
  },
  {
    name: "watch-node-not-ready-context",
    triggers: [{ on_kubernetes_event: { reason: "NodeNotReady", status: "firing" } }],
    actions: [{ node_info: {} }, { pod_events: { limit: 10 } }],
  },
  {
    name: "watch-quota-context",
    triggers: [{ on_kubernetes_event: { reason: "QuotaExceeded", status: "firing" } }],
    actions: [{ pod_events: { limit: 10 } }],
  },
  {
    name: "helm-release-context",
    triggers: [{ on_kubernetes_event: { kind: "HelmRelease", status: "firing" } }],
    actions: [
      {
        markdown: {
          title: "Helm release",
          text: [
            "*Release* {{ namespace }}/{{ labels.release }} · *revision* {{ labels.revision }} · *status* {{ labels.status }}",
            '*Chart* {{ labels.chart | default "unknown" }} {{ labels.chart_version }} · *app version* {{ labels.app_version | default "unknown" }}',
            "`helm history {{ labels.release }} -n {{ namespace }}` lists the revisions; `helm rollback {{ labels.release }} -n {{ namespace }}` returns to the previous one.",
          ].join("\n"),
        },
      },
    ],
  },
];

export const DEFAULT_WORKFLOWS: readonly WorkflowConfig[] = RAW.map((w) => workflowSchema.parse(w));
