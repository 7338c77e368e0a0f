/**
 * The Kubernetes object an Issue is about. Derived from alert labels (or, for
 * watched events, from the involved object).
 */
export interface Subject {
  /** Kubernetes kind (Pod, Deployment, Node...) or "" when the alert names no object. */
  readonly kind: string;
  readonly name: string;
  readonly namespace?: string;
  readonly node?: string;
  readonly container?: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly annotations: Readonly<Record<string, string>>;
}

/**
 * Label → kind, most specific first. `job` is deliberately absent: in
 * Prometheus it names the scrape job (e.g. kube-state-metrics), while
 * kube-state-metrics reports the Kubernetes Job as `job_name`.
 */
export const SUBJECT_LABEL_PRIORITY: ReadonlyArray<readonly [label: string, kind: string]> = [
  ["pod", "Pod"],
  ["deployment", "Deployment"],
  ["statefulset", "StatefulSet"],
  ["daemonset", "DaemonSet"],
  ["job_name", "Job"],
  ["cronjob", "CronJob"],
  ["replicaset", "ReplicaSet"],
  ["horizontalpodautoscaler", "HorizontalPodAutoscaler"],
  ["persistentvolumeclaim", "PersistentVolumeClaim"],
  ["persistentvolume", "PersistentVolume"],
  ["service", "Service"],
  ["node", "Node"],
];

/** Builds a Subject from alert labels using SUBJECT_LABEL_PRIORITY; falls back to the namespace. */
export function subjectFromLabels(
  labels: Readonly<Record<string, string>>,
  annotations: Readonly<Record<string, string>> = {},
): Subject {
  const namespace = nonEmpty(labels["namespace"]);
  const node = nonEmpty(labels["node"]);
  const container = nonEmpty(labels["container"]);
  let kind = "";
  let name = "";
  for (let i = 0; i < SUBJECT_LABEL_PRIORITY.length; i++) {
    const entry = SUBJECT_LABEL_PRIORITY[i]!;
    const v = nonEmpty(labels[entry[0]]);
    if (v !== undefined) {
      kind = entry[1];
      name = v;
      break;
    }
  }
  if (kind === "" && namespace !== undefined) {
    kind = "Namespace";
    name = namespace;
  }
  const clusterScoped = kind === "Node" || kind === "PersistentVolume" || kind === "Namespace";
  // Key order as written: it is the Subject's JSON form.
  const subject: { -readonly [K in keyof Subject]: Subject[K] } = { kind, name } as Subject;
  if (namespace !== undefined && !clusterScoped) subject.namespace = namespace;
  if (node !== undefined) subject.node = node;
  if (container !== undefined) subject.container = container;
  subject.labels = labels;
  subject.annotations = annotations;
  return subject;
}

/** "shop/pod/api-7d9f", "node/worker-1", or "" for no subject. */
export function describeSubject(s: Pick<Subject, "kind" | "name" | "namespace">): string {
  if (s.kind === "") return "";
  const kind = s.kind.toLowerCase();
  return s.namespace !== undefined ? `${s.namespace}/${kind}/${s.name}` : `${kind}/${s.name}`;
}

function nonEmpty(v: string | undefined): string | undefined {
  return v === undefined || v === "" ? undefined : v;
}
