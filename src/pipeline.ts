import type { Config } from "./config/schema.js";
import { withEnrichment, type Issue } from "./core/issue.js";
import type { DeliveryEngine, IssueProcessor, Processed } from "./delivery/engine.js";
import { BacklogFullError, StoreUnavailableError, type AcceptResult } from "./delivery/store.js";
import type { ClusterAccess } from "./kube/access.js";
import type { Logger } from "./observability/logger.js";
import type { CountCell, Metrics } from "./observability/metrics.js";
import { Router, type RoutingResult } from "./routing/router.js";
import { alertmanagerToIssues, type AlertmanagerOptions } from "./sources/alertmanager/to-issues.js";
import { parseWebhookBody, PayloadError } from "./sources/alertmanager/parse.js";
import type { ActionStatus, WorkflowEngine, WorkflowResult } from "./workflows/engine.js";

/** What happened to one webhook request; the HTTP layer maps it to a status code. */
export type IngestOutcome =
  | { readonly kind: "accepted"; readonly alerts: number; readonly issues: number; readonly deliveries: number; readonly duplicates: number }
  | { readonly kind: "invalid"; readonly error: PayloadError }
  | { readonly kind: "unavailable"; readonly reason: "backlog_full" | "store_unavailable"; readonly message: string; readonly retryAfterSeconds: number };

export interface PipelineDeps {
  readonly config: Config;
  readonly log: Logger;
  readonly metrics?: Metrics | undefined;
  readonly workflows?: WorkflowEngine | undefined;
  readonly cluster?: ClusterAccess | undefined;
  /** Where the destinations of each firing fingerprint are remembered, so its resolution follows it. */
  readonly state?: { getState(ns: string, key: string): string | undefined; setState(ns: string, key: string, value: string | undefined): void } | undefined;
  readonly now?: () => Date;
}

const ROUTED_NS = "routed";

/**
 * The data path between sources and delivery: raw input → Issues → workflows
 * (enrichment) → routing → the delivery engine. The HTTP server knows none of
 * this; the engine calls back into `process` for Issues whose workflows read
 * the cluster.
 */
export class Pipeline implements IssueProcessor {
  private engine: DeliveryEngine | undefined;
  private readonly router: Router;
  private readonly actionCounts: ActionCounts | undefined;
  private readonly alertsCell: CountCell | undefined;
  private readonly alertmanagerOptions: AlertmanagerOptions;

  constructor(private readonly deps: PipelineDeps) {
    this.alertmanagerOptions = { clusterName: deps.config.clusterName, severityMap: deps.config.severityMap };
    this.actionCounts = deps.metrics !== undefined ? new ActionCounts(deps.metrics) : undefined;
    this.alertsCell = deps.metrics?.count(deps.metrics.alertsReceived, { source: "alertmanager" });
    const all = deps.config.destinations.map((d) => d.name);
    this.router = new Router(deps.config.routes, deps.config.defaultDestinations ?? all, deps.config.defaultDestinations !== undefined);
  }

  /** The engine to hand Issues to (set once both exist: the engine also calls back into the pipeline). */
  attach(engine: DeliveryEngine): void {
    this.engine = engine;
  }

  /** Parses, converts and queues one Alertmanager webhook body. Never rejects for bad input. */
  ingestAlertmanager(body: Uint8Array | string): Promise<IngestOutcome> {
    let issues: Issue[];
    let alerts: number;
    try {
      const parsed = parseWebhookBody(body);
      if (!parsed.ok) return Promise.resolve({ kind: "invalid", error: parsed.error });
      alerts = parsed.value.alerts.length;
      issues = alertmanagerToIssues(parsed.value, this.alertmanagerOptions);
    } catch (e) {
      // A bug, not bad input: rejected like the async function this was.
      return Promise.reject(e as Error);
    }
    return this.submit(issues).then((outcome) => {
      if (outcome.kind !== "accepted") return outcome;
      this.alertsCell?.inc(alerts);
      // One Issue per alert: submit counted the same already.
      return outcome.alerts === alerts ? outcome : { ...outcome, alerts };
    });
  }

  /** Queues Issues from any source. Refuses (never drops) when the backlog or store cannot take them. */
  async submit(issues: readonly Issue[]): Promise<Exclude<IngestOutcome, { kind: "invalid" }>> {
    if (this.engine === undefined) throw new Error("Pipeline.submit before attach()");
    let result: AcceptResult;
    try {
      result = await this.engine.submit(issues);
    } catch (e) {
      if (e instanceof BacklogFullError) {
        return { kind: "unavailable", reason: "backlog_full", message: `${e.message}; retry later`, retryAfterSeconds: 30 };
      }
      if (e instanceof StoreUnavailableError) {
        return { kind: "unavailable", reason: "store_unavailable", message: `cannot store alerts: ${e.message}`, retryAfterSeconds: 30 };
      }
      throw e;
    }
    return { kind: "accepted", alerts: issues.length, issues: result.issues, deliveries: result.deliveries, duplicates: result.duplicates };
  }

  // ---- IssueProcessor --------------------------------------------------------

  isPure(issue: Issue): boolean {
    // Without a reachable cluster, cluster actions are skipped: nothing left to wait for.
    return this.deps.workflows === undefined || this.deps.cluster?.reader() === undefined || this.deps.workflows.isPure(issue);
  }

  process(issue: Issue, signal: AbortSignal): Processed | Promise<Processed> {
    const r = this.workflowsNow(issue, signal);
    return r instanceof Promise ? r.then((x) => this.routed(x)) : this.routed(r);
  }

  private routed(r: WorkflowResult): Processed {
    // The engine only reads the destinations: no copy (unlike route()).
    return { issue: r.issue, destinations: this.routeExplained(r.issue).destinations, silenced: r.silenced };
  }

  fallback(issue: Issue, error: string): Processed {
    const noted = withEnrichment(issue, { title: "Enrichment failed", source: "kubecano", blocks: [{ type: "markdown", text: `:warning: ${error}` }] });
    return { issue: noted, destinations: this.route(noted) };
  }

  /** Runs the workflows over an Issue (also used by `replay`, which shows the trace). */
  async runWorkflows(issue: Issue, signal?: AbortSignal): Promise<WorkflowResult> {
    return this.workflowsNow(issue, signal);
  }

  /** runWorkflows, without a promise when no action had to be waited for (see WorkflowEngine.runNow). */
  private workflowsNow(issue: Issue, signal: AbortSignal | undefined): WorkflowResult | Promise<WorkflowResult> {
    if (this.deps.workflows === undefined) return { issue, trace: [] };
    const r = this.deps.workflows.runNow(issue, { kube: this.deps.cluster?.reader(), log: this.deps.log, signal });
    return r instanceof Promise ? r.then((x) => this.counted(x)) : this.counted(r);
  }

  private counted(r: WorkflowResult): WorkflowResult {
    const counts = this.actionCounts;
    if (counts !== undefined) {
      const trace = r.trace;
      for (let i = 0; i < trace.length; i++) {
        const actions = trace[i]!.actions;
        for (let j = 0; j < actions.length; j++) counts.add(actions[j]!.action, actions[j]!.status);
      }
    }
    return r;
  }

  /** Issue → destination names (see routeExplained). */
  route(issue: Issue): string[] {
    return [...this.routeExplained(issue).destinations];
  }

  /**
   * The routes' decision, plus one rule they cannot express: a resolution
   * also goes wherever its firing notification went, even if a route's
   * window has closed since, so no incident stays open in a pager.
   */
  routeExplained(issue: Issue): RoutingResult {
    const r = this.router.route(issue, this.deps.now?.() ?? new Date());
    const state = this.deps.state;
    if (state === undefined || !this.router.statusOrTimeDependent) return r;
    if (issue.status === "FIRING") {
      if (r.destinations.length > 0) state.setState(ROUTED_NS, issue.fingerprint, JSON.stringify(r.destinations));
      return r;
    }
    const saved = state.getState(ROUTED_NS, issue.fingerprint);
    if (saved === undefined) return r;
    state.setState(ROUTED_NS, issue.fingerprint, undefined);
    let earlier: string[] = [];
    try {
      earlier = (JSON.parse(saved) as unknown[]).filter((d): d is string => typeof d === "string");
    } catch {
      return r;
    }
    const extra = earlier.filter((d) => !r.destinations.includes(d));
    if (extra.length === 0) return r;
    return { ...r, destinations: [...r.destinations, ...extra], why: `${r.why}; plus ${extra.join(", ")}, where it fired` };
  }
}

/** kubecano_workflow_actions_total by action and status, counted as plain numbers (Metrics.count). */
class ActionCounts {
  /** By action, then status: two lookups of strings already hashed, rather than a key string built per action. */
  private readonly cells = new Map<string, Map<ActionStatus, CountCell>>();
  constructor(private readonly metrics: Metrics) {}

  add(action: string, status: ActionStatus): void {
    let byStatus = this.cells.get(action);
    if (byStatus === undefined) this.cells.set(action, (byStatus = new Map()));
    let cell = byStatus.get(status);
    if (cell === undefined) byStatus.set(status, (cell = this.metrics.count(this.metrics.actions, { action, status })));
    cell.inc();
  }
}
