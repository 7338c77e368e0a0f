import type { Issue } from "../core/issue.js";
import { compilePatterns, type PatternInput } from "../core/match.js";
import type { TriggerConfig } from "./schema.js";

export type MatchResult = { readonly ok: true; readonly why: string } | { readonly ok: false; readonly why: string };

export interface CompiledTrigger {
  /** "on_alertmanager_alert alert_name=KubePodCrashLooping status=firing" */
  readonly description: string;
  /**
   * The Issue sources it can match at all, when it is limited to some; for
   * any other source, match gives the same miss for every Issue of that source.
   */
  readonly sources?: ReadonlySet<string> | undefined;
  match(issue: Issue): MatchResult;
}

const ALERTMANAGER_SOURCES: ReadonlySet<string> = new Set(["prometheus"]);
const KUBERNETES_SOURCES: ReadonlySet<string> = new Set(["kubernetes", "helm"]);

interface Check {
  readonly what: string;
  /** The pattern, for "does not match X". */
  readonly want?: string;
  test(issue: Issue): boolean;
  value(issue: Issue): string | undefined;
  /** Its miss results by value (see miss). */
  misses?: Map<string | undefined, MatchResult>;
}

/** Compiles a trigger to a pure predicate that can say why it did not match. */
export function compileTrigger(t: TriggerConfig): CompiledTrigger {
  if ("on_kubernetes_event" in t) return compileKubernetesTrigger(t.on_kubernetes_event);
  const kind = "on_alertmanager_alert" in t ? "on_alertmanager_alert" : "on_issue";
  const m = "on_alertmanager_alert" in t ? t.on_alertmanager_alert : t.on_issue;
  const checks: Check[] = [];
  const parts: string[] = [kind];
  if (kind === "on_alertmanager_alert") checks.push({ what: "alertmanager", test: (i) => i.source === "prometheus", value: (i) => i.source });
  const pat = (what: string, input: PatternInput | undefined, value: (i: Issue) => string | undefined): void => {
    if (input === undefined) return;
    const p = compilePatterns(input);
    parts.push(`${what}=${p.source}`);
    checks.push({ what, want: p.source, test: (i) => p.test(value(i)), value });
  };
  pat("alert_name", m.alert_name, (i) => i.aggregationKey);
  if (m.status !== "all") {
    const want = m.status === "firing" ? "FIRING" : "RESOLVED";
    parts.push(`status=${m.status}`);
    checks.push({ what: "status", want: m.status, test: (i) => i.status === want, value: (i) => i.status.toLowerCase() });
  }
  pat("severity", m.severity, (i) => i.severity);
  pat("namespace", m.namespace, (i) => i.subject.namespace ?? i.subject.labels["namespace"]);
  for (const [label, input] of Object.entries(m.labels ?? {})) pat(`labels.${label}`, input, (i) => i.subject.labels[label]);
  if ("on_issue" in t) {
    pat("source", t.on_issue.source, (i) => i.source);
    if (t.on_issue.type !== undefined) {
      const want = t.on_issue.type;
      parts.push(`type=${want}`);
      checks.push({ what: "type", want, test: (i) => i.type === want, value: (i) => i.type });
    }
  }
  const description = parts.join(" ");
  const hit: MatchResult = Object.freeze({ ok: true, why: description });
  return {
    description,
    sources: kind === "on_alertmanager_alert" ? ALERTMANAGER_SOURCES : undefined,
    match(issue) {
      for (let i = 0; i < checks.length; i++) {
        const c = checks[i]!;
        if (!c.test(issue)) {
          if (c.what === "alertmanager") return NOT_ALERTMANAGER;
          return miss(c, c.value(issue));
        }
      }
      return hit;
    },
  };
}

const NOT_ALERTMANAGER: MatchResult = Object.freeze({ ok: false, why: "not an Alertmanager alert" });

/** Miss results are kept per check and value: every webhook runs every default workflow's triggers, mostly missing on the same few alert names. */
const MISSES_PER_CHECK = 256;

/** The (immutable, so shared) result of a failed check for this value. */
function miss(c: Check, v: string | undefined): MatchResult {
  const byValue = (c.misses ??= new Map());
  let r = byValue.get(v);
  if (r === undefined) {
    r = Object.freeze({ ok: false, why: v === undefined ? `${c.what} is not set (wanted ${c.want ?? "a value"})` : `${c.what} ${JSON.stringify(v)} does not match ${c.want ?? ""}`.trimEnd() });
    // Bounded: values from alerts are unbounded (labels, namespaces).
    if (byValue.size >= MISSES_PER_CHECK) byValue.clear();
    byValue.set(v, r);
  }
  return r;
}

/** The Kubernetes event type of a watched Issue (Warning for trouble, Normal for a recovery). */
export const EVENT_TYPE_ANNOTATION = "kubecano.io/event-type";

/** on_kubernetes_event: Issues from `kubecano watch` (sources kubernetes and helm) only. */
function compileKubernetesTrigger(m: Extract<TriggerConfig, { on_kubernetes_event: unknown }>["on_kubernetes_event"]): CompiledTrigger {
  const checks: Check[] = [{ what: "kubernetes", test: (i) => i.source === "kubernetes" || i.source === "helm", value: (i) => i.source }];
  const parts: string[] = ["on_kubernetes_event"];
  const pat = (what: string, input: PatternInput | undefined, value: (i: Issue) => string | undefined): void => {
    if (input === undefined) return;
    const p = compilePatterns(input);
    parts.push(`${what}=${p.source}`);
    checks.push({ what, want: p.source, test: (i) => p.test(value(i)), value });
  };
  pat("reason", m.reason, (i) => i.aggregationKey);
  pat("kind", m.kind, (i) => i.subject.kind);
  pat("namespace", m.namespace, (i) => i.subject.namespace);
  for (const [label, input] of Object.entries(m.labels ?? {})) pat(`labels.${label}`, input, (i) => i.subject.labels[label]);
  if (m.type !== undefined) pat("type", m.type, (i) => i.subject.annotations[EVENT_TYPE_ANNOTATION]);
  pat("severity", m.severity, (i) => i.severity);
  if (m.status !== "all") {
    const want = m.status === "firing" ? "FIRING" : "RESOLVED";
    parts.push(`status=${m.status}`);
    checks.push({ what: "status", want: m.status, test: (i) => i.status === want, value: (i) => i.status.toLowerCase() });
  }
  const description = parts.join(" ");
  const hit: MatchResult = Object.freeze({ ok: true, why: description });
  return {
    description,
    sources: KUBERNETES_SOURCES,
    match(issue) {
      for (let i = 0; i < checks.length; i++) {
        const c = checks[i]!;
        if (c.test(issue)) continue;
        if (c.what === "kubernetes") return notKubernetes(issue.source);
        return miss(c, c.value(issue));
      }
      return hit;
    },
  };
}

/** By source (a handful, but bounded anyway: replayed Issues are JSON from anywhere). */
const notKubernetesBySource = new Map<string, MatchResult>();

function notKubernetes(source: string): MatchResult {
  let r = notKubernetesBySource.get(source);
  if (r === undefined) {
    r = Object.freeze({ ok: false, why: `not a Kubernetes event (source ${source})` });
    if (notKubernetesBySource.size >= MISSES_PER_CHECK) notKubernetesBySource.clear();
    notKubernetesBySource.set(source, r);
  }
  return r;
}
